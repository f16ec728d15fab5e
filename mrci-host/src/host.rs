//! Host-wide context shared by every session and command: configuration, store, bus, TLS
//! material, password hasher, clock and the host shared-memory segment.
//!
//! Invariant: `HostCtx` is immutable after start except through its own synchronised parts
//! (store pool, bus, counters); sessions hold it behind an `Arc`.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use mrci_proto::{UserId, header::Version};

use crate::{
    Config, Result, Store,
    bus::Bus,
    config::Listing,
    password::Hasher,
    session::{SessionView, UserView},
    store::INTERNAL_MODULE,
    tls::TlsMaterial,
};

/// Where the host reads the time. Tests use [`Clock::manual`] to move time without waiting.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    manual: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self { manual: None }
    }

    /// A clock that stands still at `unix_secs` until [`Clock::advance`] moves it.
    pub fn manual(unix_secs: i64) -> Self {
        Self {
            manual: Some(Arc::new(AtomicI64::new(unix_secs))),
        }
    }

    /// Seconds since the Unix epoch.
    pub fn now(&self) -> i64 {
        match &self.manual {
            Some(t) => t.load(Ordering::SeqCst),
            None => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64),
        }
    }

    /// Moves a manual clock forward; does nothing to the system clock.
    pub fn advance(&self, secs: i64) {
        if let Some(t) = &self.manual {
            t.fetch_add(secs, Ordering::SeqCst);
        }
    }
}

/// Everything sessions share.
pub struct HostCtx {
    /// The configuration the host started with.
    pub config: Config,
    /// The SQLite store.
    pub store: Store,
    /// The session bus.
    pub bus: Arc<dyn Bus>,
    /// The same bus when this host is a cluster node (`cluster.nats_url` set): the nodes it
    /// hears from, undelivered counts.
    pub cluster: Option<crate::bus::NatsBus>,
    /// The certificate and rustls configuration (replaced by a reload).
    tls: std::sync::RwLock<Arc<TlsMaterial>>,
    /// The live settings: the configuration file's with `host_config`'s changes on top.
    live: crate::runtime::Live,
    /// Set when `close_host` or `restart_host` asks the listener to stop.
    stop: tokio::sync::watch::Sender<Option<Stop>>,
    /// Reloads done so far.
    reloads: tokio::sync::watch::Sender<u64>,
    /// Where the metrics endpoint listens, once bound.
    metrics_addr: std::sync::OnceLock<std::net::SocketAddr>,
    /// Password hashing.
    pub(crate) hasher: Hasher,
    /// The time source.
    pub clock: Clock,
    /// Per-address limit on password attempts.
    pub(crate) auth_limit: crate::limit::RateLimiter,
    /// Per-address limit on recovery requests and recovery-token attempts.
    pub(crate) recovery_limit: crate::limit::RateLimiter,
    /// Where recovery tokens and verification codes are mailed.
    pub(crate) mailer: crate::mail::Mailer,
    /// The registered modules.
    pub(crate) modules: crate::modules::Registry,
    /// Who may connect, and the connection count (also in the host shared-memory segment).
    pub(crate) admission: Arc<crate::admission::Admission>,
    /// Mails handed to the transport so far.
    mails_sent: tokio::sync::watch::Sender<u64>,
    /// The file commands' root, when `[files] root` is set.
    pub(crate) files: Option<Arc<crate::files::FileRoot>>,
}

impl std::fmt::Debug for HostCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostCtx")
            .field("listen", &self.config.listen)
            .finish_non_exhaustive()
    }
}

impl HostCtx {
    /// Opens the data directory, store and TLS material for `config`.
    ///
    /// # Errors
    /// If the data directory, database or certificate cannot be prepared.
    pub async fn open(config: Config, clock: Clock) -> Result<Arc<Self>> {
        std::fs::create_dir_all(&config.data_dir)?;
        let store = crate::admin::open_store(&config).await?;
        let tls = TlsMaterial::load_or_generate(&config)?;
        let live = crate::runtime::Live::new(config.clone(), &store.host_settings().await?);
        let hasher = Hasher::new(&config);
        let removed = mrci_shm::cleanup_stale();
        if removed > 0 {
            tracing::info!(
                removed,
                "removed stale shared-memory segments of a crashed host"
            );
        }
        let host_shm = match mrci_shm::HostShm::create() {
            Ok(shm) => Some(shm),
            Err(e) => {
                tracing::warn!(error = %e, "host shared memory unavailable; modules cannot read the session count");
                None
            }
        };
        let auth_limit = crate::limit::RateLimiter::new(60);
        let recovery_limit = crate::limit::RateLimiter::new(60);
        let mailer = crate::mail::Mailer::from_config(&config)?;
        let modules = open_modules(&config, &store).await?;
        let files = crate::files::FileRoot::open(&config.files)?;
        let limits = crate::bus::BusLimits {
            events: config.limits.inbox_capacity,
            casts: config.channels.cast_queue,
            cast_wait: std::time::Duration::from_millis(config.channels.cast_wait_ms),
        };
        let cluster = &config.cluster;
        let (bus, cluster): (Arc<dyn Bus>, _) = match &cluster.nats_url {
            None => (Arc::new(crate::bus::LocalBus::new(limits)), None),
            Some(url) => {
                let settings = crate::bus::NatsSettings {
                    url: url.clone(),
                    node: cluster.node_name(config.listen),
                    prefix: cluster.subject_prefix.clone(),
                    heartbeat: std::time::Duration::from_millis(cluster.heartbeat_ms),
                    missed: cluster.missed_heartbeats,
                };
                tracing::info!(node = %settings.node, nats = %url, "cluster node");
                let nats = crate::bus::NatsBus::start(settings, limits).await?;
                (Arc::new(nats.clone()), Some(nats))
            }
        };
        let host = Arc::new(Self {
            modules,
            recovery_limit,
            mailer,
            config,
            store,
            bus,
            cluster,
            tls: std::sync::RwLock::new(Arc::new(tls)),
            live,
            stop: tokio::sync::watch::Sender::new(None),
            reloads: tokio::sync::watch::Sender::new(0),
            metrics_addr: std::sync::OnceLock::new(),
            hasher,
            auth_limit,
            clock,
            admission: crate::admission::Admission::new(host_shm),
            mails_sent: tokio::sync::watch::Sender::new(0),
            files,
        });
        if let Some(cluster) = &host.cluster {
            tokio::spawn(follow_remote_modules(
                Arc::downgrade(&host),
                cluster.watch_remote_modules(),
            ));
        }
        Ok(host)
    }

    /// The password hasher with the configured cost (for operator tools and tests that
    /// create accounts directly).
    pub fn hasher(&self) -> &Hasher {
        &self.hasher
    }

    /// Connections between accept and end, handshakes included.
    pub fn session_count(&self) -> usize {
        self.admission.count()
    }

    /// Connections not logged in (handshakes included).
    pub fn unauthenticated_count(&self) -> usize {
        self.admission.unauthenticated()
    }

    /// Follows [`HostCtx::session_count`] as it changes.
    pub fn watch_sessions(&self) -> tokio::sync::watch::Receiver<usize> {
        self.admission.watch()
    }

    /// Follows the number of mails handed to the mail transport.
    pub fn watch_mails_sent(&self) -> tokio::sync::watch::Receiver<u64> {
        self.mails_sent.subscribe()
    }

    /// Sends a mail through the configured transport and counts it.
    ///
    /// # Errors
    /// When no transport is configured or the transport fails.
    pub(crate) async fn send_mail(&self, to: &str, subject: &str, body: &str) -> Result<()> {
        self.mailer.send(to, subject, body).await?;
        self.mails_sent.send_modify(|n| *n += 1);
        Ok(())
    }

    /// The SHA-256 fingerprint of the certificate served by default.
    pub fn fingerprint(&self) -> String {
        self.tls().fingerprint.clone()
    }

    /// The certificate material new connections get.
    pub(crate) fn tls(&self) -> Arc<TlsMaterial> {
        Arc::clone(&self.tls.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// The live settings: the configuration file's, with the runtime changes of
    /// `host_config` on top (see [`crate::runtime`]).
    pub fn settings(&self) -> Arc<Config> {
        self.live.current()
    }

    /// The configuration file's settings (as last read).
    pub fn file_settings(&self) -> Arc<Config> {
        self.live.file()
    }

    /// Changes a runtime setting (`value`, as the operator typed it) or, with `None`, returns
    /// it to the configuration file's value; stored, so it outlives restarts. Returns the
    /// new value as a TOML literal.
    ///
    /// # Errors
    /// [`crate::Error::Invalid`] for a key that cannot change or a bad value; database
    /// failures.
    pub async fn set_setting(&self, key: &str, value: Option<&str>) -> Result<String> {
        let before = self.features();
        let next = match value {
            Some(text) => crate::runtime::with(&self.settings(), key, text)?,
            None => {
                let file = crate::runtime::get(&self.file_settings(), key)?;
                crate::runtime::with(&self.settings(), key, &file)?
            }
        };
        self.check_with_store(&next).await?;
        let literal = crate::runtime::get(&next, key)?;
        let stored = value.map(|_| literal.as_str());
        self.store
            .set_host_setting(key, stored, self.clock.now())
            .await?;
        self.live.set_current(next);
        tracing::info!(key, value = %literal, "runtime setting changed");
        if self.features() != before {
            self.bus
                .broadcast(None, false, crate::bus::Event::CmdRanksChanged);
        }
        Ok(literal)
    }

    /// What [`Config::validate`] cannot check without the database: the initial group
    /// exists.
    async fn check_with_store(&self, next: &Config) -> Result<()> {
        let group = &next.accounts.initial_group;
        if !group.is_empty() && self.store.group(group).await?.is_none() {
            return Err(crate::Error::Invalid(format!(
                "accounts.initial_group: no group named {group:?}"
            )));
        }
        Ok(())
    }

    /// Re-reads what can change without a restart: `file` (the configuration file read
    /// again) with the stored runtime settings on top, and the certificates. Settings that
    /// need a restart are logged when they differ.
    ///
    /// # Errors
    /// Database failures, or a certificate that cannot be loaded (the old one stays).
    pub async fn reload(&self, file: Config) -> Result<()> {
        let before = self.features();
        let tls = TlsMaterial::load_or_generate(&file)?;
        let stored = self.store.host_settings().await?;
        for ((key, old), (_, new)) in crate::runtime::flatten(&self.file_settings())
            .iter()
            .zip(crate::runtime::flatten(&file).iter())
        {
            if old != new && !crate::runtime::RUNTIME_KEYS.contains(&key.as_str()) {
                tracing::warn!(%key, "changed in the configuration file; takes effect at the next restart");
            }
        }
        self.live.reload(file, &stored);
        // Bans added from the data directory (`mrci host ban add`) end live sessions now.
        let now = self.clock.now();
        for ban in self.store.bans().await? {
            if ban.expires_at.is_none_or(|t| t > now)
                && let Ok(net) = crate::store::IpNet::parse(&ban.ip_address)
            {
                self.bus
                    .broadcast(None, false, crate::bus::Event::Banned { net });
            }
        }
        let fingerprint = tls.fingerprint.clone();
        *self.tls.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(tls);
        tracing::info!(%fingerprint, "configuration and certificates reloaded");
        self.reloads.send_modify(|n| *n += 1);
        if self.features() != before {
            self.bus
                .broadcast(None, false, crate::bus::Event::CmdRanksChanged);
        }
        Ok(())
    }

    /// Rebuilds the TLS material from the certificate files (after `add_cert` / `rm_cert`);
    /// new connections get the new material, established ones keep theirs.
    ///
    /// # Errors
    /// If the default certificate cannot be loaded (the old material stays).
    pub(crate) fn reload_tls(&self) -> Result<()> {
        let tls = TlsMaterial::load_or_generate(&self.file_settings())?;
        *self.tls.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(tls);
        Ok(())
    }

    /// Where the Prometheus endpoint listens (`[metrics] listen`), once the host is bound.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics_addr.get().copied()
    }

    pub(crate) fn set_metrics_addr(&self, addr: std::net::SocketAddr) {
        let _ = self.metrics_addr.set(addr);
    }

    /// Follows the number of reloads ([`HostCtx::reload`]) done.
    pub fn watch_reloads(&self) -> tokio::sync::watch::Receiver<u64> {
        self.reloads.subscribe()
    }

    /// Asks the listener to stop: close or restart the host.
    pub fn request_stop(&self, stop: Stop) {
        self.stop.send_replace(Some(stop));
    }

    /// Completes when [`HostCtx::request_stop`] was called.
    pub(crate) async fn stop_requested(&self) -> Stop {
        let mut rx = self.stop.subscribe();
        let stop = rx.wait_for(Option::is_some).await.ok().and_then(|s| *s);
        match stop {
            Some(stop) => stop,
            None => std::future::pending().await,
        }
    }

    /// Bans an address or range and ends the live sessions it covers.
    ///
    /// # Errors
    /// [`crate::Error::Invalid`] for a malformed address; database failures.
    pub async fn ban(
        &self,
        net: crate::store::IpNet,
        expires_at: Option<i64>,
        reason: &str,
        automatic: bool,
    ) -> Result<()> {
        self.store
            .ban(&net.to_string(), self.clock.now(), expires_at, reason)
            .await?;
        tracing::info!(%net, ?expires_at, reason, "address banned");
        crate::metrics::ban(automatic);
        self.bus
            .broadcast(None, false, crate::bus::Event::Banned { net });
        Ok(())
    }

    /// The self-service features on now: a feature that mails needs a mail transport.
    pub(crate) fn features(&self) -> crate::cmd::Features {
        let settings = self.settings();
        let accounts = &settings.accounts;
        let mail = self.mailer.is_enabled();
        crate::cmd::Features {
            registration: accounts.public_registration,
            recovery: accounts.password_reset && mail,
            email_verify: accounts.email_verify && mail,
            files: self.files.is_some(),
        }
    }

    /// The key of the host shared-memory segment, if it exists.
    pub(crate) fn host_shm_key(&self) -> Option<String> {
        self.admission.host_shm_key()
    }

    /// The admission limits of the configuration.
    pub(crate) fn admission_limits(&self) -> crate::admission::Limits {
        let settings = self.settings();
        let limits = &settings.limits;
        crate::admission::Limits {
            max_sessions: limits.max_sessions as usize,
            max_unauthenticated: limits.max_unauthenticated as usize,
            max_unauthenticated_per_address: limits.max_unauthenticated_per_address as usize,
        }
    }

    /// The host rank each internal command needs, from the `command_ranks` table.
    ///
    /// # Errors
    /// On a database failure.
    pub(crate) async fn internal_command_ranks(&self) -> Result<HashMap<String, u32>> {
        self.store.command_ranks(INTERNAL_MODULE).await
    }

    /// The logged-in view of an account, or `None` if it no longer exists.
    ///
    /// # Errors
    /// On a database failure.
    pub(crate) async fn user_view(&self, user_id: &UserId) -> Result<Option<UserView>> {
        let Some(user) = self.store.user_by_id(user_id).await? else {
            return Ok(None);
        };
        Ok(Some(UserView {
            user_id: user.id,
            user_name: user.name,
            display_name: user.display_name,
            email: user.email,
            group_name: user.group_name,
            host_rank: user.host_rank,
            email_verified: user.email_verified,
            created_at: user.created_at,
        }))
    }

    /// Writes an `ip_history` row for the session; failures are logged, not returned.
    pub(crate) async fn log_session_event(&self, view: &SessionView, event: &str) {
        let res = self
            .store
            .log_ip(
                &view.ip.to_string(),
                &view.sid.to_hex(),
                &view.app,
                event,
                self.clock.now(),
            )
            .await;
        if let Err(e) = res {
            tracing::warn!(error = %e, event, "could not write ip history");
        }
    }
}

/// How the host was asked to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// `close_host`, or a signal: stop for good.
    Close,
    /// `restart_host`: re-read the configuration and database, then listen again.
    Restart,
}

/// The host's version, from the package version.
pub fn version() -> Version {
    let mut parts = env!("CARGO_PKG_VERSION")
        .split('.')
        .map(|p| p.parse::<u16>().unwrap_or(0));
    Version {
        major: parts.next().unwrap_or(0),
        minor: parts.next().unwrap_or(0),
        patch: parts.next().unwrap_or(0),
    }
}

/// The library name announced in NEW_CMD for internal commands.
pub(crate) fn library_name() -> String {
    format!("MRCI host {}", version())
}

/// An address in the form bans and logs use: IPv4-mapped IPv6 becomes IPv4.
pub(crate) fn normalise_ip(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// `N` bytes from the OS random generator.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    // The OS generator failing is not something a host can work around; ids must be random.
    getrandom::fill(&mut out).expect("the operating system's random generator is available");
    out
}

/// On a cluster node: whenever another node adds or removes a module, brings this node's
/// registry in line with the configuration and the `modules` table, then tells the sessions.
/// Ends with the host.
async fn follow_remote_modules(
    host: std::sync::Weak<HostCtx>,
    mut changed: tokio::sync::watch::Receiver<u64>,
) {
    while changed.changed().await.is_ok() {
        let Some(host) = host.upgrade() else { return };
        let wanted = match wanted_modules(&host.config, &host.store).await {
            Ok(wanted) => wanted,
            Err(e) => {
                tracing::warn!(error = %e, "module change on another node not applied: store unreachable");
                continue;
            }
        };
        for module in host.modules.all() {
            if !wanted.iter().any(|(path, _)| *path == module.path) {
                host.modules.remove(&module.path);
            }
        }
        for (path, listing) in &wanted {
            if !host.modules.contains(path)
                && let Err(e) = host.modules.add(path, *listing).await
            {
                tracing::error!(module = %path.display(), error = %e, "module not loaded");
            }
        }
        if let Some(cluster) = &host.cluster {
            cluster.broadcast_here(crate::bus::Event::ModulesChanged);
        }
    }
}

/// The modules this host should have: those of the configuration file, then those of the
/// `modules` table that the file does not name, each with its listing.
async fn wanted_modules(
    config: &Config,
    store: &Store,
) -> Result<Vec<(std::path::PathBuf, Listing)>> {
    let mut entries: Vec<(std::path::PathBuf, Listing)> = config
        .modules
        .paths
        .iter()
        .map(|e| (e.path().to_owned(), e.listing()))
        .collect();
    for (path, listing) in store.modules().await? {
        let path = std::path::PathBuf::from(path);
        if entries.iter().any(|(p, _)| *p == path) {
            continue;
        }
        let listing = Listing::parse(&listing).unwrap_or_else(|| {
            tracing::warn!(module = %path.display(), listing, "unknown listing in the modules table; listed per session");
            Listing::Session
        });
        entries.push((path, listing));
    }
    Ok(entries)
}

/// Prepares the module socket directory and lists every module of the config file and the
/// `modules` table; a module that cannot be listed is logged and left out.
async fn open_modules(config: &Config, store: &Store) -> Result<crate::modules::Registry> {
    let run_dir = config.runtime_dir();
    mrci_modrun::prepare_runtime_dir(&run_dir)
        .map_err(|e| crate::Error::Config(format!("{}: {e}", run_dir.display())))?;
    let registry =
        crate::modules::Registry::new(Arc::new(config.modules.modrun_config(run_dir, version())?));
    let entries = wanted_modules(config, store).await?;
    for (path, listing) in entries {
        match registry.add(&path, listing).await {
            Ok(m) => {
                tracing::info!(module = %path.display(), listing = listing.as_str(), commands = m.cmds.len(), "module loaded")
            }
            Err(e) => tracing::error!(module = %path.display(), error = %e, "module not loaded"),
        }
    }
    Ok(registry)
}
