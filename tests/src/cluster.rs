//! Helpers for the cluster suite: the PostgreSQL and NATS it runs against (`MRCI_TEST_PG`,
//! `MRCI_TEST_NATS`), a fresh database per test, three hosts sharing it and one NATS subject
//! prefix, a TCP proxy a test can cut to make a server vanish, and a `nats-server` of the
//! test's own that it can kill and restart on the same port.
//!
//! Invariant: when either service is unreachable, [`Services::find`] says so with one visible
//! `SKIPPED` line per test binary and the suite's tests pass without running.

use std::{io::Write as _, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use mrci_host::Config;
use sqlx::{Connection, Executor, PgConnection};
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};

use crate::TestHost;

/// The administrative PostgreSQL URL when `MRCI_TEST_PG` is unset.
pub const DEFAULT_PG: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// The NATS URL when `MRCI_TEST_NATS` is unset.
pub const DEFAULT_NATS: &str = "nats://127.0.0.1:4222";

/// Where the services answer.
#[derive(Clone, Debug)]
pub struct Services {
    /// A PostgreSQL URL allowed to create databases.
    pub pg: String,
    /// The NATS URL.
    pub nats: String,
}

/// `host:port` of a `scheme://[user@]host:port/...` URL.
pub fn authority(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    Some(rest[..end].to_owned())
}

/// `url` with its `host:port` replaced by `addr`.
pub fn with_authority(url: &str, addr: SocketAddr) -> String {
    match authority(url) {
        Some(old) => url.replacen(&old, &addr.to_string(), 1),
        None => url.to_owned(),
    }
}

impl Services {
    /// The services if both answer; `None` after one visible SKIPPED line.
    pub async fn find() -> Option<Self> {
        static FOUND: tokio::sync::OnceCell<Option<Services>> = tokio::sync::OnceCell::const_new();
        FOUND
            .get_or_init(|| async {
                let pg = std::env::var("MRCI_TEST_PG").unwrap_or_else(|_| DEFAULT_PG.into());
                let nats = std::env::var("MRCI_TEST_NATS").unwrap_or_else(|_| DEFAULT_NATS.into());
                let pg_ok = matches!(
                    tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(&pg)).await,
                    Ok(Ok(_))
                );
                let nats_ok = match authority(&nats) {
                    Some(addr) => matches!(
                        tokio::time::timeout(
                            Duration::from_secs(5),
                            tokio::net::TcpStream::connect(addr)
                        )
                        .await,
                        Ok(Ok(_))
                    ),
                    None => false,
                };
                if pg_ok && nats_ok {
                    Some(Self { pg, nats })
                } else {
                    // Straight to the stream: the harness captures eprintln! of passing tests.
                    let _ = writeln!(
                        std::io::stderr(),
                        "SKIPPED: cluster suite (no PostgreSQL/NATS at {pg} / {nats})"
                    );
                    None
                }
            })
            .await
            .clone()
    }
}

/// A uniquely named PostgreSQL database, dropped by [`TestDb::drop_db`]; the cluster suite's
/// and the cluster benchmark's.
///
/// Invariant: the database does not outlive its `TestDb`: one that was not dropped
/// explicitly (a test that failed half-way) is dropped when the value is, from a thread of
/// its own, so failed runs leave no databases behind on a shared server.
pub struct TestDb {
    /// Its URL.
    pub url: String,
    /// The administrative URL it was created through.
    pub admin: String,
    /// Its name.
    pub name: String,
    dropped: std::sync::atomic::AtomicBool,
}

impl TestDb {
    /// Creates a fresh database next to `admin`'s.
    pub async fn create(admin: &str) -> anyhow::Result<Self> {
        let name = format!("mrci_test_{}_{}", std::process::id(), rand::random::<u32>());
        let mut conn = PgConnection::connect(admin).await?;
        conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .context("create the test database")?;
        conn.close().await?;
        let base = admin.split('?').next().unwrap_or(admin);
        let scheme_end = base.find("://").map_or(0, |p| p + 3);
        let url = match base.rfind('/') {
            Some(i) if i >= scheme_end => format!("{}/{name}", &base[..i]),
            _ => format!("{base}/{name}"),
        };
        Ok(Self {
            url,
            admin: admin.to_owned(),
            name,
            dropped: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Drops the database (closing whatever still uses it).
    pub async fn drop_db(&self) -> anyhow::Result<()> {
        drop_database(&self.admin, &self.name).await?;
        self.dropped
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.dropped.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // A runtime of its own on a thread of its own: this may run inside a test's runtime,
        // which cannot be blocked on.
        let dropping = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime
                && let Err(e) = runtime.block_on(drop_database(&admin, &name))
            {
                eprintln!("could not drop the test database {name}: {e:#}");
            }
        });
        let _ = dropping.join();
    }
}

async fn drop_database(admin: &str, name: &str) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect(admin).await?;
    conn.execute(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .await?;
    conn.close().await?;
    Ok(())
}

/// Three (or more) hosts on loopback ports sharing one fresh database and one NATS prefix.
pub struct Cluster {
    /// The nodes, `n1`, `n2`, ...
    pub nodes: Vec<TestHost>,
    /// The shared database.
    pub db: TestDb,
    /// The services.
    pub services: Services,
    /// The NATS subject prefix of this cluster.
    pub prefix: String,
}

impl Cluster {
    /// Starts `n` nodes; `tweak(i, config)` adjusts node `i`'s configuration (0-based).
    /// `None` when the services are unreachable.
    pub async fn start(
        n: usize,
        tweak: impl Fn(usize, &mut Config),
    ) -> anyhow::Result<Option<Self>> {
        let Some(services) = Services::find().await else {
            return Ok(None);
        };
        let db = TestDb::create(&services.pg).await?;
        let prefix = format!("t{:016x}", rand::random::<u64>());
        let mut nodes = Vec::new();
        for i in 0..n {
            nodes.push(node(&services, &db, &prefix, i, |c| tweak(i, c)).await?);
        }
        for node in &nodes {
            node.bus().until_connected().await;
        }
        Ok(Some(Self {
            nodes,
            db,
            services,
            prefix,
        }))
    }

    /// Starts one more node (the next name) and waits until it is connected to NATS.
    pub async fn add_node(&mut self) -> anyhow::Result<&TestHost> {
        let i = self.nodes.len();
        let host = node(&self.services, &self.db, &self.prefix, i, |_| {}).await?;
        host.bus().until_connected().await;
        self.nodes.push(host);
        Ok(&self.nodes[i])
    }

    /// Waits until every node's subscriptions for its current sessions are in place.
    pub async fn settled(&self) {
        for node in &self.nodes {
            node.bus().settled().await;
        }
    }

    /// Shuts every node down and drops the database.
    pub async fn stop(self) -> anyhow::Result<()> {
        let mut res = Ok(());
        for node in self.nodes {
            if let Err(e) = node.shutdown().await {
                res = Err(e);
            }
        }
        self.db.drop_db().await?;
        res
    }
}

/// Starts node `i` (named `n{i+1}`) of a cluster on `db` and NATS prefix `prefix`.
async fn node(
    services: &Services,
    db: &TestDb,
    prefix: &str,
    i: usize,
    tweak: impl FnOnce(&mut Config),
) -> anyhow::Result<TestHost> {
    let host = TestHost::start_with(|c| {
        c.cluster.database_url = Some(db.url.clone());
        c.cluster.nats_url = Some(services.nats.clone());
        c.cluster.node = Some(format!("n{}", i + 1));
        c.cluster.subject_prefix = prefix.to_owned();
        c.cluster.heartbeat_ms = 200;
        c.cluster.missed_heartbeats = 5;
        c.security.auth_attempts_per_minute = 10_000;
        tweak(c);
    })
    .await
    .with_context(|| format!("start node n{}", i + 1))?;
    Ok(host)
}

impl TestHost {
    /// The host's cluster bus; panics on a host that is not a cluster node.
    pub fn bus(&self) -> &mrci_host::bus::NatsBus {
        self.ctx
            .cluster
            .as_ref()
            .expect("a cluster node (cluster.nats_url set)")
    }
}

/// A TCP proxy to `target` that a test can cut (closing every connection through it and
/// refusing new ones) and restore.
pub struct TcpProxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    up: Arc<watch::Sender<bool>>,
    task: JoinHandle<()>,
}

impl TcpProxy {
    /// Starts a proxy on a free loopback port.
    pub async fn start(target: String) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let up = Arc::new(watch::Sender::new(true));
        let flag = Arc::clone(&up);
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !*flag.borrow() {
                    continue;
                }
                let target = target.clone();
                let mut up = flag.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = up.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Ok(Self { addr, up, task })
    }

    /// Closes every connection through the proxy and refuses new ones.
    pub fn cut(&self) {
        self.up.send_replace(false);
    }

    /// Accepts and forwards connections again.
    pub fn restore(&self) {
        self.up.send_replace(true);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A `nats-server` process of the test's own (from `MRCI_TEST_NATS_SERVER`, else
/// `/usr/sbin/nats-server`) on a free loopback port with a JetStream store in a temporary
/// directory, which the test can kill and start again on the same port. Dropping it kills
/// the process.
pub struct NatsServer {
    /// `nats://127.0.0.1:PORT`.
    pub url: String,
    port: u16,
    binary: std::path::PathBuf,
    store: tempfile::TempDir,
    child: Option<tokio::process::Child>,
}

/// The nats-server binary the tests start.
pub fn nats_server_binary() -> std::path::PathBuf {
    std::env::var_os("MRCI_TEST_NATS_SERVER")
        .map_or_else(|| "/usr/sbin/nats-server".into(), Into::into)
}

impl NatsServer {
    /// Starts a server; `None` (after one visible SKIPPED line naming `test`) when the
    /// binary is absent.
    pub async fn start(test: &str) -> anyhow::Result<Option<Self>> {
        let binary = nats_server_binary();
        if !binary.is_file() {
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: {test} (no nats-server at {}; set MRCI_TEST_NATS_SERVER)",
                binary.display()
            );
            return Ok(None);
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut server = Self {
            url: format!("nats://127.0.0.1:{port}"),
            port,
            binary,
            store: tempfile::tempdir()?,
            child: None,
        };
        server.restart().await?;
        Ok(Some(server))
    }

    /// Kills the server at once (SIGKILL) and waits for the process to end.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().await?;
        }
        Ok(())
    }

    /// Starts the server again on the same port and returns once it says it is ready for
    /// clients (within 30 s).
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill().await?;
        let mut child = tokio::process::Command::new(&self.binary)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(self.store.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("start {}", self.binary.display()))?;
        let stderr = child.stderr.take().context("no stderr")?;
        self.child = Some(child);
        // The server logs "Server is ready" once it accepts clients; the rest of its log
        // is drained so that it never blocks on a full pipe.
        let (ready_tx, ready) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            use tokio::io::AsyncBufReadExt as _;
            let mut lines = tokio::io::BufReader::new(stderr).lines();
            let mut ready_tx = Some(ready_tx);
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("Server is ready")
                    && let Some(tx) = ready_tx.take()
                {
                    let _ = tx.send(());
                }
            }
        });
        match tokio::time::timeout(Duration::from_secs(30), ready).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => anyhow::bail!("nats-server on port {} exited at start", self.port),
            Err(_) => anyhow::bail!("nats-server on port {} not ready within 30 s", self.port),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_database_not_dropped_explicitly_goes_with_its_value() -> anyhow::Result<()> {
        let Some(services) = Services::find().await else {
            return Ok(());
        };
        let db = TestDb::create(&services.pg).await?;
        let name = db.name.clone();
        let count = async |name: &str| -> anyhow::Result<i64> {
            let mut conn = PgConnection::connect(&services.pg).await?;
            let n = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = $1")
                .bind(name)
                .fetch_one(&mut conn)
                .await?;
            conn.close().await?;
            Ok(n)
        };
        assert_eq!(count(&name).await?, 1);
        drop(db);
        assert_eq!(count(&name).await?, 0, "dropped with its value");
        Ok(())
    }
}
