//! Operator actions behind `mrci host add-admin | elevate | status | migrate | ban | cert |
//! passwd`. They work on the data directory (or a cluster's PostgreSQL database) directly,
//! whether or not a host is running (SQLite WAL allows both); `status` of a cluster node also
//! listens to the nodes' heartbeats on NATS.
//!
//! A running host records itself in the data directory ([`PidFile`]: its pid and the address
//! it really listens on, locked while it runs, removed when it stops); `status` reports from
//! that file, so another program answering on the configured port is not taken for the host.

use std::fmt;

use crate::{Config, Error, Result, Store, password, store::TableCount, tls::TlsMaterial};

/// The group that carries host rank 1 (COMMANDS.md §1.2).
pub const ADMIN_GROUP: &str = "admin";

/// The store `config` names: `cluster.database_url` when set, else the SQLite file in the
/// data directory.
pub(crate) async fn open_store(config: &Config) -> Result<Store> {
    std::fs::create_dir_all(&config.data_dir)?;
    match &config.cluster.database_url {
        Some(url) => Store::connect(url).await,
        None => Store::open(&config.db_path()).await,
    }
}

/// Creates a user in the admin group with a one-time password that must be changed at the
/// first login, and returns that password.
///
/// # Errors
/// [`Error::Invalid`] for an invalid or taken name; database failures.
pub async fn add_admin(config: &Config, name: &str) -> Result<String> {
    mrci_proto::constraints::user_name(name).map_err(|e| Error::Invalid(e.to_string()))?;
    let store = open_store(config).await?;
    let one_time = password::one_time_password();
    let phc = password::Hasher::new(config).hash(&one_time).await?;
    let res = store
        .create_user(name, None, ADMIN_GROUP, &phc, true, false)
        .await;
    store.close().await;
    res?;
    Ok(one_time)
}

/// Moves an existing user into the admin group.
///
/// # Errors
/// [`Error::Invalid`] if there is no such user; database failures.
pub async fn elevate(config: &Config, name: &str) -> Result<()> {
    let store = open_store(config).await?;
    let res = store.set_group_by_name(name, ADMIN_GROUP).await;
    store.close().await;
    if res? {
        Ok(())
    } else {
        Err(Error::Invalid(format!("no user named {name:?}")))
    }
}

/// Bans an address or range from the data directory (`mrci host ban add`). A running host
/// refuses new connections from it at once; its live sessions from there end only when the
/// ban is added inside the host (`add_ban`).
///
/// # Errors
/// [`Error::Invalid`] for a malformed address; database failures.
pub async fn ban_add(
    config: &Config,
    ip: &str,
    expire_secs: Option<i64>,
    reason: &str,
) -> Result<String> {
    let net = crate::store::IpNet::parse(ip)?;
    let now = crate::host::Clock::system().now();
    let store = open_store(config).await?;
    let res = store
        .ban(&net.to_string(), now, expire_secs.map(|s| now + s), reason)
        .await;
    store.close().await;
    res.map(|()| net.to_string())
}

/// Lifts a ban (`mrci host ban rm`). False if there was none.
///
/// # Errors
/// [`Error::Invalid`] for a malformed address; database failures.
pub async fn ban_rm(config: &Config, ip: &str) -> Result<bool> {
    let store = open_store(config).await?;
    let res = store.remove_ban(ip).await;
    store.close().await;
    res
}

/// Every ban (`mrci host ban ls`).
///
/// # Errors
/// Database failures.
pub async fn bans(config: &Config) -> Result<Vec<crate::store::Ban>> {
    let store = open_store(config).await?;
    let res = store.bans().await;
    store.close().await;
    res
}

/// Gives a user a new one-time password that must be changed at the next login, and ends
/// the pauses its failed logins caused (`mrci host passwd`, for a user who is locked out).
///
/// # Errors
/// [`Error::Invalid`] if there is no such user; database failures.
pub async fn passwd(config: &Config, name: &str) -> Result<String> {
    let store = open_store(config).await?;
    let res = async {
        let user = store
            .find_user(name)
            .await?
            .ok_or_else(|| Error::Invalid(format!("no user named {name:?}")))?;
        let one_time = password::one_time_password();
        let phc = password::Hasher::new(config).hash(&one_time).await?;
        store.set_password(&user.id, &phc, true).await?;
        store.clear_login_failures(&user.id).await?;
        Ok(one_time)
    }
    .await;
    store.close().await;
    res
}

/// Stores a certificate and key for a common name in the data directory (`mrci host cert
/// add`); a running host serves it after a reload (SIGHUP) or restart.
///
/// # Errors
/// [`Error::Invalid`] for a bad name, unreadable files or an unusable pair; IO failures.
pub fn cert_add(
    config: &Config,
    name: &str,
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<crate::tls::CertInfo> {
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| Error::Invalid(format!("{}: {e}", p.display())))
    };
    let cert_pem = String::from_utf8(read(cert)?)
        .map_err(|_| Error::Invalid(format!("{} is not PEM text", cert.display())))?;
    crate::tls::install_named(&config.data_dir, name, &cert_pem, &read(key)?)
}

/// Removes the certificate of a common name (`mrci host cert rm`). False if there was none.
///
/// # Errors
/// IO failures.
pub fn cert_rm(config: &Config, name: &str) -> Result<bool> {
    crate::tls::remove_named(&config.data_dir, name)
}

/// The certificates per common name, and the default one first as `""`
/// (`mrci host cert ls`).
pub fn certs(config: &Config) -> Vec<(String, crate::tls::CertInfo)> {
    let path = config
        .tls
        .cert_path
        .clone()
        .unwrap_or_else(|| config.data_dir.join("cert.pem"));
    let default = std::fs::read_to_string(path)
        .ok()
        .map(|pem| (String::new(), pem));
    default
        .into_iter()
        .chain(crate::tls::named_pems(&config.data_dir))
        .filter_map(|(name, pem)| Some((name, crate::tls::CertInfo::from_pem(&pem).ok()?)))
        .collect()
}

/// The running host's record in its data directory: `host.pid` holds the pid and the
/// address the host listens on, locked for as long as the host runs and removed when it
/// stops.
#[derive(Debug)]
pub struct PidFile {
    path: std::path::PathBuf,
    file: std::fs::File,
}

/// The record's file name in the data directory.
pub const PID_FILE: &str = "host.pid";

impl PidFile {
    /// Creates and locks the record.
    ///
    /// # Errors
    /// [`Error::Invalid`] if another host holds it; IO failures.
    pub fn create(data_dir: &std::path::Path) -> Result<Self> {
        std::fs::create_dir_all(data_dir)?;
        let path = data_dir.join(PID_FILE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)?;
        if file.try_lock().is_err() {
            return Err(Error::Invalid(format!(
                "another host runs on the data directory {} ({})",
                data_dir.display(),
                std::fs::read_to_string(&path).unwrap_or_default().trim()
            )));
        }
        Ok(Self { path, file })
    }

    /// Records the address the host now listens on.
    ///
    /// # Errors
    /// IO failures.
    pub fn record(&mut self, addr: std::net::SocketAddr) -> Result<()> {
        use std::io::{Seek, Write};
        self.file.set_len(0)?;
        self.file.rewind()?;
        writeln!(self.file, "{} {addr}", std::process::id())?;
        self.file.sync_all()?;
        Ok(())
    }

    /// The host recorded in `data_dir`, if one runs: its pid and listen address.
    pub fn running(data_dir: &std::path::Path) -> Option<(u32, String)> {
        let path = data_dir.join(PID_FILE);
        let file = std::fs::File::open(&path).ok()?;
        if file.try_lock_shared().is_ok() {
            // Nobody holds it: a host that crashed left it behind.
            return None;
        }
        let text = std::fs::read_to_string(&path).ok()?;
        let (pid, addr) = text.trim().split_once(' ')?;
        Some((pid.parse().ok()?, addr.to_owned()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What `mrci host status` prints.
#[derive(Debug)]
pub struct Status {
    /// The data directory.
    pub data_dir: String,
    /// The configured listen address.
    pub listen: String,
    /// Number of accounts.
    pub users: i64,
    /// Number of rank-1 accounts.
    pub admins: i64,
    /// Certificate fingerprint, if a certificate exists yet.
    pub fingerprint: Option<String>,
    /// Whether the host of this data directory runs.
    pub listening: bool,
    /// For a cluster node (`cluster.nats_url` set): the nodes whose heartbeats arrived, or
    /// why none could be heard.
    pub cluster: Option<std::result::Result<Vec<crate::bus::NodeSeen>, String>>,
    /// Its pid and the address it really listens on, when it runs.
    pub running: Option<(u32, String)>,
    /// The certificate's last day (Unix seconds), when it can be read.
    pub not_after: Option<i64>,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "data directory: {}", self.data_dir)?;
        writeln!(f, "listen address: {}", self.listen)?;
        match &self.running {
            Some((pid, addr)) => {
                writeln!(f, "host running:   yes (pid {pid}, listening on {addr})")
            }
            None => writeln!(f, "host running:   no"),
        }?;
        writeln!(
            f,
            "accounts:       {} ({} with host rank 1)",
            self.users, self.admins
        )?;
        match &self.fingerprint {
            Some(fp) => writeln!(f, "certificate:    SHA-256 {fp}"),
            None => writeln!(f, "certificate:    none yet (created at the first start)"),
        }?;
        match &self.cluster {
            None => {}
            Some(Err(why)) => writeln!(f, "cluster:        {why}")?,
            Some(Ok(nodes)) => {
                writeln!(f, "cluster:        {} node(s) heard", nodes.len())?;
                for n in nodes {
                    writeln!(
                        f,
                        "  {}: {} sessions ({} logged in), {} undelivered",
                        n.node, n.sessions, n.logged_in, n.undelivered
                    )?;
                }
            }
        }
        if let Some(not_after) = self.not_after {
            let now = crate::host::Clock::system().now();
            let days = (not_after - now).div_euclid(86_400);
            if not_after <= now {
                writeln!(f, "warning: the certificate has expired")?;
            } else if days < crate::tls::EXPIRY_WARNING_DAYS {
                writeln!(f, "warning: the certificate expires in {days} days")?;
            }
        }
        if self.admins == 0 {
            writeln!(
                f,
                "hint: create the first administrator with `mrci host add-admin NAME`"
            )?;
        }
        Ok(())
    }
}

/// Gathers the host's status.
///
/// # Errors
/// Database failures.
pub async fn status(config: &Config) -> Result<Status> {
    let store = open_store(config).await?;
    let counts = store.user_counts().await;
    store.close().await;
    let (users, admins) = counts?;
    let running = PidFile::running(&config.data_dir);
    let cluster = match &config.cluster.nats_url {
        None => None,
        Some(url) => {
            // Two and a half heartbeats: every live node is heard at least twice.
            let wait =
                std::time::Duration::from_millis(config.cluster.heartbeat_ms.saturating_mul(5) / 2);
            let prefix = &config.cluster.subject_prefix;
            Some(
                crate::bus::nodes_seen(url, prefix, wait)
                    .await
                    .map_err(|e| e.to_string()),
            )
        }
    };
    Ok(Status {
        cluster,
        data_dir: config.data_dir.display().to_string(),
        listen: config.listen.to_string(),
        users,
        admins,
        fingerprint: TlsMaterial::existing_fingerprint(config),
        listening: running.is_some(),
        running,
        not_after: TlsMaterial::existing_not_after(config),
    })
}

/// Copies the host's SQLite database (`data_dir/db_file` of `config`) into the PostgreSQL
/// database at `url` (`postgres://user@host/database`; an `options=-c search_path=…`
/// parameter picks a schema), for `mrci host migrate --to URL`. Returns the rows copied per
/// table, in copy order.
///
/// - The SQLite file is first brought up to the current schema, as a host start would.
/// - The target must be empty: either no tables at all in its schema, or this host's schema
///   with no rows besides the ones its migrations insert (the built-in groups and default
///   command ranks, which the copy replaces with the source's). Anything else is refused
///   before a row is written. The target's schema is created by its own migrations.
/// - Every table is copied with its ids (user ids, group, channel and log row ids, module
///   order), so foreign keys hold as they were; identity sequences continue after the
///   highest copied id.
/// - The copy reads one SQLite snapshot and writes one PostgreSQL transaction: on any
///   failure nothing is left in the target. Names that SQLite kept apart but PostgreSQL's
///   case-insensitive unique indexes do not (they differ only in the case of non-ASCII
///   letters) make it fail with the database's message.
/// - The source is left as it was. Stop the host first: what it writes after the snapshot
///   is not copied.
///
/// # Errors
/// [`Error::Invalid`] if there is no SQLite database in the data directory, the URL is not
/// a PostgreSQL one, or the target is not empty; database failures.
pub async fn migrate_to(config: &Config, url: &str) -> Result<Vec<TableCount>> {
    let path = config.db_path();
    if !path.is_file() {
        return Err(Error::Invalid(format!(
            "no SQLite database at {}",
            path.display()
        )));
    }
    let store = Store::open(&path).await?;
    let res = store.copy_to_postgres(url).await;
    store.close().await;
    res
}
