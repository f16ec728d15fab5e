//! Host configuration: a TOML file in which every setting is optional (COMMANDS.md §5.4,
//! adapted). With no file at all the host listens on `0.0.0.0:35516` and keeps its database,
//! certificate and runtime files in `./mrci-data`.
//!
//! Invariant: `Config::default()` is a complete, working configuration.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Everything the host can be told.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// Directory for the database, certificate and runtime files; created if missing.
    pub data_dir: PathBuf,
    /// SQLite file name inside `data_dir`.
    pub db_file: String,
    /// Certificate settings.
    pub tls: TlsConfig,
    /// Resource limits and deadlines.
    pub limits: Limits,
    /// Account security.
    pub security: Security,
    /// Registration, recovery and email verification.
    pub accounts: Accounts,
    /// How the host sends mail (recovery tokens, verification codes).
    pub mail: Mail,
    /// Channel limits and presence updates.
    pub channels: Channels,
    /// Module executables loaded at start, besides those added with `add_mod`.
    pub modules: Modules,
    /// Several hosts as one: a shared PostgreSQL store and NATS between nodes.
    pub cluster: Cluster,
    /// The optional Prometheus endpoint.
    pub metrics: Metrics,
    /// The file-transfer commands and the directory they are confined to.
    pub files: Files,
}

/// Cluster settings. With neither URL set the host runs alone (SQLite file, in-process bus).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Cluster {
    /// The shared store, `postgres://user@host:port/database`; replaces the SQLite file.
    pub database_url: Option<String>,
    /// The NATS server(s) nodes deliver through, `nats://host:4222` (comma-separated for
    /// several); without it delivery stays in this process.
    pub nats_url: Option<String>,
    /// This node's name, unique in the cluster (default: the listen address).
    pub node: Option<String>,
    /// First token of every NATS subject, so several clusters can share one NATS.
    pub subject_prefix: String,
    /// Milliseconds between this node's heartbeats (its session list) on NATS.
    pub heartbeat_ms: u64,
    /// Heartbeats a node may miss before the others treat it as gone and close its sessions'
    /// links.
    pub missed_heartbeats: u32,
}

impl Default for Cluster {
    fn default() -> Self {
        Self {
            database_url: None,
            nats_url: None,
            node: None,
            subject_prefix: "mrci".into(),
            heartbeat_ms: 1000,
            missed_heartbeats: 3,
        }
    }
}

impl Cluster {
    /// This node's name: the configured one, else `listen`.
    pub fn node_name(&self, listen: SocketAddr) -> String {
        self.node.clone().unwrap_or_else(|| listen.to_string())
    }
}

/// When a module is listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Listing {
    /// By every session, with its memory keys (seed 001): at creation, login and logout.
    #[default]
    Session,
    /// Once for the whole host, for a module whose list never depends on the session.
    Once,
}

impl Listing {
    /// The name stored in the `modules` table and written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Session => "session",
            Self::Once => "once",
        }
    }

    /// The listing with this name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "session" => Some(Self::Session),
            "once" => Some(Self::Once),
            _ => None,
        }
    }
}

/// A module to load at start: its path alone (listed per session), or a table with how it is
/// listed: `{ path = "/opt/mod", listing = "once" }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ModuleEntry {
    /// A path, listed by every session.
    Path(PathBuf),
    /// A path with its listing.
    Entry {
        /// The module executable.
        path: PathBuf,
        /// When it is listed.
        #[serde(default)]
        listing: Listing,
    },
}

impl From<PathBuf> for ModuleEntry {
    fn from(path: PathBuf) -> Self {
        Self::Path(path)
    }
}

impl ModuleEntry {
    /// The executable.
    pub fn path(&self) -> &Path {
        match self {
            Self::Path(path) | Self::Entry { path, .. } => path,
        }
    }

    /// When it is listed.
    pub fn listing(&self) -> Listing {
        match self {
            Self::Path(_) => Listing::Session,
            Self::Entry { listing, .. } => *listing,
        }
    }
}

/// The Prometheus endpoint (`GET /metrics`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Metrics {
    /// Address to serve metrics on, e.g. `127.0.0.1:9185`; unset (the default) serves none.
    pub listen: Option<SocketAddr>,
}

/// File commands (`fs_*`, COMMANDS.md §3.7): off unless `root` is set; every path they
/// take resolves inside it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Files {
    /// The directory the file commands are confined to; unset (the default) announces no
    /// file command at all. Created if missing.
    pub root: Option<PathBuf>,
    /// Give every account its own subdirectory of `root` (named by its user id), so users
    /// never see each other's files.
    pub per_user: bool,
    /// Largest file an upload may produce (`-offset` + `-len`), in bytes; 0 for no limit.
    pub max_upload_bytes: u64,
    /// Bytes that must stay free on the root's file system after an upload; an upload that
    /// would leave less is refused before it starts.
    pub keep_free_bytes: u64,
}

impl Default for Files {
    fn default() -> Self {
        Self {
            root: None,
            per_user: false,
            max_upload_bytes: 1 << 30,
            keep_free_bytes: 256 << 20,
        }
    }
}

/// Module settings: which modules, and the limits their processes run under
/// (`mrci_modrun::confine`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Modules {
    /// Module executables to load at start, as paths or `{ path, listing }` tables.
    pub paths: Vec<ModuleEntry>,
    /// How long a session waits for its modules' lists (at creation, login and logout), in
    /// milliseconds; a module that misses it is left out of that listing, with a log line.
    pub listing_timeout_ms: u64,
    /// The `mrci` binary that starts module processes under the limits below (through its
    /// hidden `confine-module` subcommand). `mrci host run` uses itself when this is unset;
    /// without a launcher modules run unconfined.
    pub launcher: Option<PathBuf>,
    /// The account module processes run as when the host runs as root (ignored otherwise).
    /// A dedicated account is better than the default `nobody`; empty keeps root (not
    /// recommended). It must be able to enter the data directory's parents.
    pub user: String,
    /// Their group (default: the user's primary group).
    pub group: Option<String>,
    /// Address space per module process, in MiB (0: no limit).
    pub address_space_mib: u64,
    /// CPU seconds per module process, over its whole life (0: no limit).
    pub cpu_secs: u64,
    /// Open files per module process (0: no limit).
    pub open_files: u64,
    /// Processes and threads of the module user, all modules of the host together (0: no
    /// limit); applied only when modules run as `user`.
    pub processes: u64,
    /// KiB of frames held between a session and its module processes, per direction.
    pub queue_kib: usize,
}

impl Modules {
    /// The module supervisor's settings for this host.
    ///
    /// # Errors
    /// [`Error::Config`] if the host runs as root with a launcher and `user` or `group` does
    /// not exist.
    pub fn modrun_config(
        &self,
        runtime_dir: PathBuf,
        version: mrci_proto::header::Version,
    ) -> Result<mrci_modrun::Config> {
        let some = |n: u64| (n > 0).then_some(n);
        let limits = mrci_modrun::Limits {
            address_space: some(self.address_space_mib).map(|m| m.saturating_mul(1 << 20)),
            cpu_secs: some(self.cpu_secs),
            open_files: some(self.open_files),
            processes: some(self.processes),
        };
        let launcher = self.launcher.clone().map(mrci_modrun::Launcher::mrci);
        if launcher.is_none() {
            tracing::warn!("no module launcher ([modules] launcher): modules run without limits");
        }
        let confine =
            mrci_modrun::Confine::for_host(launcher, limits, &self.user, self.group.as_deref())
                .map_err(|e| Error::Config(format!("modules.user: {e}")))?;
        let mut cfg = mrci_modrun::Config::new(runtime_dir, version);
        cfg.confine = confine;
        cfg.queue_bytes = self.queue_kib.saturating_mul(1024);
        Ok(cfg)
    }
}

impl Default for Modules {
    fn default() -> Self {
        Self {
            paths: Vec::new(),
            listing_timeout_ms: 2000,
            launcher: None,
            user: "nobody".into(),
            group: None,
            address_space_mib: 1024,
            cpu_secs: 60,
            open_files: 256,
            processes: 512,
            queue_kib: 4096,
        }
    }
}

/// Channel settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Channels {
    /// Every session is active-updating (takes PEER_INFO / PEER_STAT / pings), whatever its
    /// sub-channels' flags say.
    pub active_updates: bool,
    /// Sub-channels per channel (1–256).
    pub max_sub_channels: u32,
    /// Channels (memberships and invites) per user.
    pub max_channels_per_user: u32,
    /// Capacity of each session's queue for casts and peer data.
    pub cast_queue: usize,
    /// Milliseconds a cast waits for room in a busy receiver's queue before that receiver
    /// is treated as stalled and its casts are dropped (and counted) until it catches up.
    pub cast_wait_ms: u64,
}

impl Default for Channels {
    fn default() -> Self {
        Self {
            active_updates: true,
            max_sub_channels: 50,
            max_channels_per_user: 200,
            cast_queue: 1024,
            cast_wait_ms: 50,
        }
    }
}

/// TLS settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain; with `key_path`. If unset, a self-signed certificate is
    /// generated into the data directory on first start.
    pub cert_path: Option<PathBuf>,
    /// PEM private key for `cert_path`.
    pub key_path: Option<PathBuf>,
    /// Common names this host serves (the client header names one). The self-signed
    /// certificate covers them too.
    pub common_names: Vec<String>,
    /// Let loopback clients use plaintext (host reply 1). Off by default.
    pub allow_plaintext_loopback: bool,
}

/// Limits and deadlines.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Maximum connections at once, handshakes included. When it is reached, the oldest
    /// connection still in its handshake (then the oldest not-logged-in session of the busiest
    /// address) makes room; a logged-in session never does.
    pub max_sessions: u32,
    /// Maximum connections not logged in (handshakes included), host-wide; reaching it makes
    /// room the same way.
    pub max_unauthenticated: u32,
    /// Maximum connections not logged in from one address; more are refused at once.
    pub max_unauthenticated_per_address: u32,
    /// Seconds a session has to log in (from its start, or from its last logout) before it
    /// is told why and closed.
    pub login_timeout_secs: u64,
    /// Largest frame payload accepted from a logged-in client, in bytes (at most 16,777,215).
    pub max_payload: usize,
    /// Largest frame payload accepted before login, in bytes: a login needs far less, so a
    /// stranger cannot make the host hold large frames.
    pub max_payload_before_login: usize,
    /// Seconds a partly received frame may go without a new byte before the connection is
    /// closed.
    pub frame_stall_secs: u64,
    /// Seconds a write to a client may take before the connection is closed (a client that
    /// stops reading).
    pub write_stall_secs: u64,
    /// Capacity of each session's inbox for events from other sessions.
    pub inbox_capacity: usize,
    /// Bytes of command output a session holds before the command producing it waits for
    /// the client to read (file downloads, large listings).
    pub output_budget_bytes: usize,
    /// Seconds a client has to send its 410-byte header.
    pub header_timeout_secs: u64,
    /// Seconds a client has to complete the TLS handshake.
    pub tls_timeout_secs: u64,
    /// Seconds in-flight commands may run on after shutdown begins.
    pub shutdown_grace_secs: u64,
}

/// Account security.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Security {
    /// Failed logins in a row from one address that lock that address out of the account
    /// (other addresses, the owner's included, are not affected).
    pub max_failed_logins: u32,
    /// Seconds of the first such lock; each further lock of the same address doubles it
    /// (capped at a day).
    pub lockout_secs: i64,
    /// Failed logins on one account from all addresses together (since its last success)
    /// that start an account-wide pause for addresses that have failed on it: the defence
    /// against guessing spread over many addresses. An address with no failures on the
    /// account is never paused.
    pub max_failed_logins_per_account: u32,
    /// Seconds of that pause.
    pub account_backoff_secs: i64,
    /// Password attempts (`auth`) allowed per client address per minute; 0 disables.
    pub auth_attempts_per_minute: u32,
    /// Failed logins from one address (on any accounts) within `auto_ban_window_secs` that
    /// ban the address; 0 (the default) disables the automatic ban.
    pub auto_ban_failed_logins: u32,
    /// Seconds over which `auto_ban_failed_logins` are counted.
    pub auto_ban_window_secs: i64,
    /// Seconds an automatic ban lasts; 0 bans until an operator lifts it.
    pub auto_ban_secs: i64,
    /// Argon2id memory cost in KiB.
    pub argon2_memory_kib: u32,
    /// Argon2id iterations.
    pub argon2_iterations: u32,
}

/// Self-service account features.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Accounts {
    /// Let clients that are not logged in create accounts with `add_acct`. Off by default.
    pub public_registration: bool,
    /// Offer `request_pw_reset` and `recover_acct` before login (needs a mail transport).
    pub password_reset: bool,
    /// Offer `verify_email` (needs a mail transport).
    pub email_verify: bool,
    /// Seconds a recovery token stays valid.
    pub recovery_token_secs: i64,
    /// Wrong recovery tokens that void the token.
    pub recovery_max_attempts: u32,
    /// Seconds before another recovery mail may be sent for the same account.
    pub recovery_resend_secs: i64,
    /// The group new accounts join (`add_acct`, public registration); empty for the
    /// built-in initial group (`users` at creation, whatever it is renamed to). A runtime
    /// setting: `host_config` refuses a group that does not exist.
    pub initial_group: String,
}

/// The mail transport.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransport {
    /// No mail: recovery and verification are not offered.
    #[default]
    None,
    /// SMTP submission (`smtp_host`, `smtp_port`, `smtp_security`, optional login).
    Smtp,
    /// A sendmail-compatible program, run without a shell, message on standard input.
    Sendmail,
    /// Each mail is written as a file into `directory` (for tests and inspection).
    Directory,
}

/// How SMTP is secured.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// STARTTLS, required.
    #[default]
    Starttls,
    /// TLS from the first byte (usually port 465).
    Tls,
    /// No encryption; only sensible for a relay on the same machine.
    None,
}

/// Mail settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Mail {
    /// Which transport to use.
    pub transport: MailTransport,
    /// The sender address.
    pub from: String,
    /// SMTP server name.
    pub smtp_host: String,
    /// SMTP port.
    pub smtp_port: u16,
    /// SMTP transport security.
    pub smtp_security: SmtpSecurity,
    /// SMTP login name; empty for none. The password comes from `MRCI_SMTP_PASSWORD`.
    pub smtp_user: String,
    /// The sendmail-compatible program.
    pub sendmail_program: PathBuf,
    /// Its arguments; the recipient address is appended after them.
    pub sendmail_args: Vec<String>,
    /// Directory for the `directory` transport.
    pub directory: PathBuf,
}

impl Default for Accounts {
    fn default() -> Self {
        Self {
            public_registration: false,
            password_reset: true,
            email_verify: true,
            recovery_token_secs: 3600,
            recovery_max_attempts: 5,
            recovery_resend_secs: 60,
            initial_group: String::new(),
        }
    }
}

impl Default for Mail {
    fn default() -> Self {
        Self {
            transport: MailTransport::None,
            from: "mrci@localhost".into(),
            smtp_host: "localhost".into(),
            smtp_port: 587,
            smtp_security: SmtpSecurity::Starttls,
            smtp_user: String::new(),
            sendmail_program: PathBuf::from("/usr/sbin/sendmail"),
            sendmail_args: vec!["-i".into(), "--".into()],
            directory: PathBuf::from("mail"),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 35516)),
            data_dir: PathBuf::from("mrci-data"),
            db_file: "mrci.db".into(),
            tls: TlsConfig::default(),
            limits: Limits::default(),
            security: Security::default(),
            accounts: Accounts::default(),
            mail: Mail::default(),
            channels: Channels::default(),
            modules: Modules::default(),
            cluster: Cluster::default(),
            metrics: Metrics::default(),
            files: Files::default(),
        }
    }
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            cert_path: None,
            key_path: None,
            common_names: vec!["localhost".into()],
            allow_plaintext_loopback: false,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_sessions: 100,
            max_unauthenticated: 64,
            max_unauthenticated_per_address: 8,
            login_timeout_secs: 60,
            max_payload: mrci_proto::frame::MAX_PAYLOAD,
            max_payload_before_login: 64 * 1024,
            frame_stall_secs: 30,
            write_stall_secs: 60,
            inbox_capacity: 256,
            output_budget_bytes: 4 << 20,
            header_timeout_secs: 5,
            tls_timeout_secs: 10,
            shutdown_grace_secs: 5,
        }
    }
}

impl Default for Security {
    fn default() -> Self {
        Self {
            max_failed_logins: 5,
            lockout_secs: 300,
            max_failed_logins_per_account: 20,
            account_backoff_secs: 60,
            auth_attempts_per_minute: 20,
            auto_ban_failed_logins: 0,
            auto_ban_window_secs: 3600,
            auto_ban_secs: 86_400,
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
        }
    }
}

impl Config {
    /// Loads `path`, or the defaults when `path` is `None`.
    ///
    /// # Errors
    /// [`Error::Config`] if the file cannot be read or is not valid TOML for these settings.
    pub fn load(path: Option<&Path>) -> Result<Self> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
        Self::from_toml_str(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
    }

    /// Parses TOML text; missing settings keep their defaults.
    ///
    /// # Errors
    /// [`Error::Config`] for invalid TOML, unknown keys or values of the wrong type.
    pub fn from_toml_str(text: &str) -> Result<Self> {
        let config: Self = toml::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the values a type cannot: limits that would refuse every client or exceed the
    /// wire's maximum.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first unusable setting.
    pub fn validate(&self) -> Result<()> {
        let (limits, security) = (&self.limits, &self.security);
        let problems = [
            (
                !(1..=mrci_proto::frame::MAX_PAYLOAD).contains(&limits.max_payload)
                    || limits.max_payload_before_login == 0,
                "limits.max_payload must be between 1 and 16777215 and max_payload_before_login at least 1",
            ),
            (
                limits.frame_stall_secs == 0 || limits.write_stall_secs == 0,
                "limits.frame_stall_secs and limits.write_stall_secs must be at least 1",
            ),
            (
                limits.max_sessions == 0
                    || limits.max_unauthenticated == 0
                    || limits.max_unauthenticated_per_address == 0
                    || limits.login_timeout_secs == 0,
                "limits.max_sessions, max_unauthenticated, max_unauthenticated_per_address and login_timeout_secs must be at least 1",
            ),
            (
                limits.header_timeout_secs == 0 || limits.tls_timeout_secs == 0,
                "limits.header_timeout_secs and limits.tls_timeout_secs must be at least 1",
            ),
            (
                security.max_failed_logins == 0
                    || security.lockout_secs < 1
                    || security.max_failed_logins_per_account == 0
                    || security.account_backoff_secs < 1,
                "security.max_failed_logins, lockout_secs, max_failed_logins_per_account and account_backoff_secs must be at least 1",
            ),
            (
                security.auto_ban_window_secs < 1 || security.auto_ban_secs < 0,
                "security.auto_ban_window_secs must be at least 1 and auto_ban_secs at least 0",
            ),
            (
                self.tls.common_names.iter().any(|n| n.trim().is_empty()),
                "tls.common_names must not contain empty names",
            ),
            (self.db_file.is_empty(), "db_file must not be empty"),
            (
                !(1..=256).contains(&self.channels.max_sub_channels)
                    || self.channels.max_channels_per_user == 0
                    || self.channels.cast_queue < 2,
                "channels.max_sub_channels must be 1-256, max_channels_per_user at least 1 and cast_queue at least 2",
            ),
            (
                self.modules.queue_kib == 0,
                "modules.queue_kib must be at least 1",
            ),
            (
                self.modules.listing_timeout_ms == 0,
                "modules.listing_timeout_ms must be at least 1",
            ),
            (
                self.cluster.heartbeat_ms == 0
                    || self.cluster.missed_heartbeats == 0
                    || self.cluster.subject_prefix.is_empty()
                    || self.cluster.subject_prefix.contains(['*', '>', ' '])
                    || self.cluster.node.as_ref().is_some_and(|n| n.is_empty()),
                "cluster.heartbeat_ms and missed_heartbeats must be at least 1, subject_prefix a NATS subject without wildcards, node not empty",
            ),
            (
                !self.accounts.initial_group.is_empty()
                    && mrci_proto::constraints::group_name(&self.accounts.initial_group).is_err(),
                "accounts.initial_group must be empty or a valid group name",
            ),
            (
                self.accounts.recovery_token_secs < 60 || self.accounts.recovery_max_attempts == 0,
                "accounts.recovery_token_secs must be at least 60 and recovery_max_attempts at least 1",
            ),
            (
                self.mail.transport != MailTransport::None
                    && self.mail.from.parse::<lettre::Address>().is_err(),
                "mail.from must be an email address",
            ),
        ];
        match problems.iter().find(|(bad, _)| *bad) {
            Some((_, why)) => Err(Error::Config((*why).to_owned())),
            None => Ok(()),
        }
    }

    /// The SQLite file.
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join(&self.db_file)
    }

    /// Directory of the `directory` mail transport (relative paths are inside `data_dir`).
    pub fn mail_dir(&self) -> PathBuf {
        self.data_dir.join(&self.mail.directory)
    }

    /// Directory for module sockets (mode 0700).
    pub fn runtime_dir(&self) -> PathBuf {
        self.data_dir.join("run")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let config = Config::default();
        assert_eq!(config.listen.to_string(), "0.0.0.0:35516");
        assert!(!config.tls.allow_plaintext_loopback);
        assert_eq!(config.db_path(), Path::new("mrci-data/mrci.db"));
        let config = Config::from_toml_str(
            "listen = \"127.0.0.1:4000\"\n[limits]\nmax_sessions = 7\n[tls]\nallow_plaintext_loopback = true\n",
        )
        .unwrap();
        assert_eq!(config.listen.port(), 4000);
        assert_eq!(config.limits.max_sessions, 7);
        assert_eq!(config.limits.header_timeout_secs, 5);
        assert!(config.tls.allow_plaintext_loopback);
        let err = Config::from_toml_str("no_such_setting = 1").unwrap_err();
        assert!(err.to_string().contains("no_such_setting"), "{err}");
    }

    #[test]
    fn unusable_values_are_refused() {
        assert!(Config::default().validate().is_ok());
        for (text, needle) in [
            ("[limits]\nmax_payload = 16777216", "max_payload"),
            ("[limits]\nmax_sessions = 0", "max_sessions"),
            ("[limits]\ntls_timeout_secs = 0", "tls_timeout_secs"),
            ("[security]\nlockout_secs = 0", "lockout_secs"),
            ("[tls]\ncommon_names = [\"\"]", "common_names"),
            ("[modules]\nqueue_kib = 0", "queue_kib"),
        ] {
            let err = Config::from_toml_str(text).unwrap_err();
            assert!(
                matches!(&err, Error::Config(m) if m.contains(needle)),
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn module_entries_are_paths_or_tables() {
        let cfg: Config = toml::from_str(
            "[modules]\npaths = [\"/opt/a\", { path = \"/opt/b\", listing = \"once\" }, \
             { path = \"/opt/c\" }]\nlisting_timeout_ms = 500",
        )
        .unwrap();
        let got: Vec<_> = cfg
            .modules
            .paths
            .iter()
            .map(|e| (e.path().to_str().unwrap(), e.listing()))
            .collect();
        assert_eq!(
            got,
            [
                ("/opt/a", Listing::Session),
                ("/opt/b", Listing::Once),
                ("/opt/c", Listing::Session)
            ]
        );
        assert_eq!(cfg.modules.listing_timeout_ms, 500);
        let bad =
            toml::from_str::<Config>("[modules]\npaths = [{ path = \"/a\", listing = \"often\" }]");
        assert!(bad.is_err());
    }

    #[test]
    fn load_reads_a_file_or_defaults() {
        assert_eq!(Config::load(None).unwrap().db_file, "mrci.db");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mrci.toml");
        std::fs::write(
            &path,
            "data_dir = \"/var/lib/mrci\"\n[security]\nmax_failed_logins = 9\n",
        )
        .unwrap();
        let config = Config::load(Some(&path)).unwrap();
        assert_eq!(config.runtime_dir(), Path::new("/var/lib/mrci/run"));
        assert_eq!(config.security.max_failed_logins, 9);
        let err = Config::load(Some(&dir.path().join("missing.toml"))).unwrap_err();
        assert!(err.to_string().contains("missing.toml"), "{err}");
        let text = toml::to_string(&Config::default()).unwrap();
        assert!(
            Config::from_toml_str(&text).is_ok(),
            "defaults round-trip:\n{text}"
        );
    }
}
