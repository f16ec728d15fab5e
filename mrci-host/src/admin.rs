//! Operator actions behind `mrci host add-admin | elevate | status | migrate`. They work on
//! the data directory (or a cluster's PostgreSQL database) directly, whether or not a host
//! is running (SQLite WAL allows both); `status` of a cluster node also listens to the
//! nodes' heartbeats on NATS.

use std::{fmt, time::Duration};

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
    /// Whether something accepts connections on the listen address.
    pub listening: bool,
    /// For a cluster node (`cluster.nats_url` set): the nodes whose heartbeats arrived, or
    /// why none could be heard.
    pub cluster: Option<std::result::Result<Vec<crate::bus::NodeSeen>, String>>,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "data directory: {}", self.data_dir)?;
        writeln!(f, "listen address: {}", self.listen)?;
        writeln!(
            f,
            "host running:   {}",
            if self.listening { "yes" } else { "no" }
        )?;
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
    let mut probe = config.listen;
    if probe.ip().is_unspecified() {
        probe.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let connect = tokio::net::TcpStream::connect(probe);
    let listening = matches!(
        tokio::time::timeout(Duration::from_secs(2), connect).await,
        Ok(Ok(_))
    );
    let cluster = match &config.cluster.nats_url {
        None => None,
        Some(url) => {
            // Two and a half heartbeats: every live node is heard at least twice.
            let wait = Duration::from_millis(config.cluster.heartbeat_ms.saturating_mul(5) / 2);
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
        listening,
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
