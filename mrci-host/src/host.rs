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
    /// The certificate and rustls configuration.
    pub(crate) tls: TlsMaterial,
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
        let store = Store::open(&config.db_path()).await?;
        let tls = TlsMaterial::load_or_generate(&config)?;
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
        let auth_limit =
            crate::limit::RateLimiter::new(config.security.auth_attempts_per_minute, 60);
        let recovery_limit =
            crate::limit::RateLimiter::new(config.security.auth_attempts_per_minute, 60);
        let mailer = crate::mail::Mailer::from_config(&config)?;
        let modules = open_modules(&config, &store).await?;
        let files = crate::files::FileRoot::open(&config.files)?;
        let bus: Arc<dyn Bus> = Arc::new(crate::bus::LocalBus::new(crate::bus::BusLimits {
            events: config.limits.inbox_capacity,
            casts: config.channels.cast_queue,
            cast_wait: std::time::Duration::from_millis(config.channels.cast_wait_ms),
        }));
        Ok(Arc::new(Self {
            modules,
            recovery_limit,
            mailer,
            config,
            store,
            bus,
            tls,
            hasher,
            auth_limit,
            clock,
            admission: crate::admission::Admission::new(host_shm),
            mails_sent: tokio::sync::watch::Sender::new(0),
            files,
        }))
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
    pub fn fingerprint(&self) -> &str {
        &self.tls.fingerprint
    }

    /// The self-service features on now: a feature that mails needs a mail transport.
    pub(crate) fn features(&self) -> crate::cmd::Features {
        let accounts = &self.config.accounts;
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
        let limits = &self.config.limits;
        crate::admission::Limits {
            max_sessions: limits.max_sessions as usize,
            max_unauthenticated: limits.max_unauthenticated as usize,
            max_unauthenticated_per_address: limits.max_unauthenticated_per_address as usize,
        }
    }

    /// True if the host has a certificate for the common name a client asked for.
    pub(crate) fn serves_common_name(&self, cn: &str) -> bool {
        self.tls.serves(cn)
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

/// Prepares the module socket directory and lists every module of the config file and the
/// `modules` table; a module that cannot be listed is logged and left out.
async fn open_modules(config: &Config, store: &Store) -> Result<crate::modules::Registry> {
    let run_dir = config.runtime_dir();
    mrci_modrun::prepare_runtime_dir(&run_dir)
        .map_err(|e| crate::Error::Config(format!("{}: {e}", run_dir.display())))?;
    let registry =
        crate::modules::Registry::new(Arc::new(config.modules.modrun_config(run_dir, version())?));
    let mut paths = config.modules.paths.clone();
    for path in store.modules().await? {
        let path = std::path::PathBuf::from(path);
        if !paths.contains(&path) {
            paths.push(path);
        }
    }
    for path in paths {
        match registry.add(&path).await {
            Ok(m) => {
                tracing::info!(module = %path.display(), commands = m.cmds.len(), "module loaded")
            }
            Err(e) => tracing::error!(module = %path.display(), error = %e, "module not loaded"),
        }
    }
    Ok(registry)
}
