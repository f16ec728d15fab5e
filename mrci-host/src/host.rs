//! Host-wide context shared by every session and command: configuration, store, bus, TLS
//! material, password hasher, clock and the host shared-memory segment.
//!
//! Invariant: `HostCtx` is immutable after start except through its own synchronised parts
//! (store pool, bus, counters); sessions hold it behind an `Arc`.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicI64, AtomicUsize, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use bytes::{Bytes, BytesMut};
use mrci_proto::{
    UserId,
    header::Version,
    payload::{MyInfo, PeerInfo},
};

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
    pub bus: Bus,
    /// The certificate and rustls configuration.
    pub tls: TlsMaterial,
    /// Password hashing.
    pub hasher: Hasher,
    /// The time source.
    pub clock: Clock,
    /// Per-address limit on password attempts.
    pub auth_limit: crate::limit::RateLimiter,
    /// Per-address limit on recovery requests and recovery-token attempts.
    pub recovery_limit: crate::limit::RateLimiter,
    /// Where recovery tokens and verification codes are mailed.
    pub mailer: crate::mail::Mailer,
    /// The registered modules.
    pub modules: crate::modules::Registry,
    /// The host segment modules read the session count from (None if shared memory failed).
    pub(crate) host_shm: Option<mrci_shm::HostShm>,
    /// Sessions between accept and end (handshaking included).
    pub(crate) n_sessions: AtomicUsize,
    /// Serialises the read-modify-write of the host segment's session count.
    shm_count: Mutex<()>,
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
        let bus = Bus::with_cast_wait(std::time::Duration::from_millis(
            config.channels.cast_wait_ms,
        ));
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
            host_shm,
            n_sessions: AtomicUsize::new(0),
            shm_count: Mutex::new(()),
        }))
    }

    /// The self-service features on now: a feature that mails needs a mail transport.
    pub fn features(&self) -> crate::cmd::Features {
        let accounts = &self.config.accounts;
        let mail = self.mailer.is_enabled();
        crate::cmd::Features {
            registration: accounts.public_registration,
            recovery: accounts.password_reset && mail,
            email_verify: accounts.email_verify && mail,
        }
    }

    /// The key of the host shared-memory segment, if it exists.
    pub fn host_shm_key(&self) -> Option<String> {
        self.host_shm.as_ref().map(|s| s.key().to_owned())
    }

    /// True if the host has a certificate for the common name a client asked for.
    pub fn serves_common_name(&self, cn: &str) -> bool {
        self.tls.serves(cn)
    }

    /// Counts a session in or out of the host segment.
    pub(crate) fn count_session(&self, delta: i64) {
        let Some(shm) = &self.host_shm else { return };
        let _serial = self.shm_count.lock().unwrap_or_else(|p| p.into_inner());
        let Ok(mut seg) = shm.lock() else {
            tracing::warn!("cannot lock the host shared memory; session count not updated");
            return;
        };
        let n = i64::from(seg.sessions()) + delta;
        seg.set_sessions(n.clamp(0, i64::from(u32::MAX)) as u32);
    }

    /// The host rank each internal command needs, from the `command_ranks` table.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn internal_command_ranks(&self) -> Result<HashMap<String, u32>> {
        self.store.command_ranks(INTERNAL_MODULE).await
    }

    /// The logged-in view of an account, or `None` if it no longer exists.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn user_view(&self, user_id: &UserId) -> Result<Option<UserView>> {
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
    pub async fn log_session_event(&self, view: &SessionView, event: &str) {
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

    /// Creates and fills the session's shared-memory segment, or logs why it cannot.
    pub(crate) fn create_session_shm(&self, view: &SessionView) -> Option<mrci_shm::SessionShm> {
        match mrci_shm::SessionShm::create() {
            Ok(shm) => {
                mirror_session(&shm, view);
                Some(shm)
            }
            Err(e) => {
                tracing::warn!(error = %e, "session shared memory unavailable");
                None
            }
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
pub fn library_name() -> String {
    format!("MRCI host {}", version())
}

/// An address in the form bans and logs use: IPv4-mapped IPv6 becomes IPv4.
pub fn normalise_ip(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// `N` bytes from the OS random generator.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    // The OS generator failing is not something a host can work around; ids must be random.
    getrandom::fill(&mut out).expect("the operating system's random generator is available");
    out
}

/// The PEER_INFO of a session.
pub fn peer_info(view: &SessionView) -> PeerInfo {
    let user = view.user.as_ref();
    PeerInfo {
        session_id: view.sid,
        user_id: user.map_or(UserId::ZERO, |u| u.user_id),
        user_name: user.map_or_else(String::new, |u| u.user_name.clone()),
        app_name: view.app.clone(),
        display_name: user.map_or_else(String::new, |u| u.display_name.clone()),
    }
}

/// Prepares the module socket directory and lists every module of the config file and the
/// `modules` table; a module that cannot be listed is logged and left out.
async fn open_modules(config: &Config, store: &Store) -> Result<crate::modules::Registry> {
    let run_dir = config.runtime_dir();
    mrci_modrun::prepare_runtime_dir(&run_dir)
        .map_err(|e| crate::Error::Config(format!("{}: {e}", run_dir.display())))?;
    let registry =
        crate::modules::Registry::new(Arc::new(mrci_modrun::Config::new(run_dir, version())));
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

/// The MY_INFO payload of a session (PROTOCOL.md §3.3.9).
pub fn my_info_payload(view: &SessionView) -> Bytes {
    let user = view.user.as_ref();
    let info = MyInfo {
        peer: peer_info(view),
        email: user.map_or_else(String::new, |u| u.email.clone()),
        host_rank: view.rank(),
        email_verified: user.is_some_and(|u| u.email_verified),
    };
    let mut out = BytesMut::with_capacity(MyInfo::LEN);
    info.write(&mut out);
    out.freeze()
}

/// Copies the session's view into its shared-memory segment (seed 000 §6.2).
pub fn mirror_session(shm: &mrci_shm::SessionShm, view: &SessionView) {
    let user = view.user.as_ref();
    let mut seg = match shm.lock() {
        Ok(seg) => seg,
        Err(e) => {
            tracing::warn!(error = %e, "cannot lock the session shared memory; not mirrored");
            return;
        }
    };
    seg.set_session_id(&view.sid.0);
    seg.set_user_id(&user.map_or(UserId::ZERO, |u| u.user_id).0);
    seg.set_client_ip(&view.ip.to_string());
    seg.set_client_app(&view.app);
    seg.set_user_name(user.map_or("", |u| &u.user_name));
    seg.set_display_name(user.map_or("", |u| &u.display_name));
    seg.set_host_rank(view.rank());
    seg.set_owner_override(view.owner_override);
    seg.set_active_update(view.active);
    seg.set_channels(&view.channels);
    let subs = |writable_only: bool| -> Vec<mrci_shm::SubCh> {
        view.open
            .iter()
            .filter(|o| !writable_only || o.writable)
            .map(|o| mrci_shm::SubCh {
                ch_id: o.key.ch_id,
                sub_id: o.key.sub_id,
            })
            .collect()
    };
    seg.set_open_subs(&subs(false));
    seg.set_writable_subs(&subs(true));
    let sids =
        |list: &[mrci_proto::SessionId]| -> Vec<[u8; 28]> { list.iter().map(|s| s.0).collect() };
    seg.set_pending_p2p(&sids(&view.p2p_pending));
    seg.set_accepted_p2p(&sids(&view.p2p_accepted));
}

#[cfg(test)]
mod tests {
    use mrci_proto::SessionId;

    use super::*;

    #[test]
    fn mirror_writes_the_session_view_into_shared_memory() {
        let shm = mrci_shm::SessionShm::create().expect("shared memory");
        let mut view = SessionView::new(
            SessionId([7; 28]),
            "::ffff:10.1.2.3".parse().expect("address"),
            "client app".into(),
            true,
        );
        view.ip = normalise_ip(view.ip);
        mirror_session(&shm, &view);
        view.user = Some(UserView {
            user_id: UserId([9; 32]),
            user_name: "alice".into(),
            display_name: "Alice".into(),
            email: String::new(),
            group_name: "users".into(),
            host_rank: 2,
            email_verified: false,
            created_at: 0,
        });
        mirror_session(&shm, &view);
        let reader = mrci_shm::SessionShm::attach(shm.key()).expect("attach");
        let seg = reader.lock().expect("lock");
        assert_eq!(seg.session_id(), [7; 28]);
        assert_eq!(seg.client_ip(), "10.1.2.3");
        assert_eq!(
            (seg.user_name(), seg.display_name(), seg.host_rank()),
            ("alice".into(), "Alice".into(), 2)
        );
        assert_eq!(seg.user_id(), [9; 32]);
        assert_eq!(seg.client_app(), "client app");
    }
}
