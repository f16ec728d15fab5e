//! Scenario: the cluster (`mrci-load --cluster`, `cargo xtask bench --cluster`). Three
//! `mrci host run` processes on loopback share a fresh PostgreSQL database and one NATS
//! server; a sender on the first node casts to 100 receivers spread over the three, next to
//! the same fan-out on a single SQLite host of the same run. Connects and logins on a
//! cluster node (PostgreSQL store) are timed next to the single host (SQLite). While each
//! kind of work runs alone, PostgreSQL's and NATS's own counters are read around it, giving
//! the transactions, rows written, NATS messages and bytes per connect, login, cast and
//! event that the README's capacity model uses.
//!
//! NATS counters come from a private `nats-server` (`MRCI_TEST_NATS_SERVER`, else
//! `/usr/sbin/nats-server`) started with its monitoring port; without the binary the nodes
//! use the shared NATS (`MRCI_TEST_NATS`) and the NATS columns read "-". PostgreSQL is
//! `MRCI_TEST_PG` (an account that may create databases). Without PostgreSQL or NATS the
//! scenario prints one `SKIPPED` line and reports itself skipped.
//!
//! Invariant: the counts are deltas of the servers' own counters, less what the idle
//! cluster (heartbeats, the hosts' timers) adds in the same time; nothing is estimated.

use std::{
    path::Path,
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use mrci_cli::client::Client;
use mrci_proto::CmdId;
use mrci_tests::cluster::TestDb;
use sqlx::{Connection as _, PgConnection};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::{
    Plan, client, connect,
    fanout::{self, Outcome},
    host::{ClusterSetup, HostProcess, PASSWORD, Setup, USER},
    report::Report,
    roundtrip::open_many,
    stats::Samples,
};

const SCENARIO: &str = "cluster (3 nodes)";
/// The administrative PostgreSQL URL when `MRCI_TEST_PG` is unset.
const DEFAULT_PG: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// The NATS URL when `MRCI_TEST_NATS` is unset.
const DEFAULT_NATS: &str = "nats://127.0.0.1:4222";
/// An idle PostgreSQL 15 backend reports its statistics within 10 s.
const PG_FLUSH: Duration = Duration::from_secs(11);
/// Receivers of the fan-out, spread over the nodes.
const RECEIVERS: usize = 100;
/// Nodes of the cluster.
const NODES: usize = 3;

/// Runs the scenario, or reports it skipped when PostgreSQL or NATS does not answer.
///
/// # Errors
/// A host that does not start, a refused login or command, a broken connection, or a
/// database that cannot be created.
pub async fn run(mrci: &Path, out: &Path, plan: &Plan, report: &mut Report) -> anyhow::Result<()> {
    let pg = std::env::var("MRCI_TEST_PG").unwrap_or_else(|_| DEFAULT_PG.into());
    if !matches!(
        tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(&pg)).await,
        Ok(Ok(_))
    ) {
        println!("SKIPPED: cluster bench (no PostgreSQL at {pg})");
        report.skip(SCENARIO, "PostgreSQL does not answer");
        return Ok(());
    }
    let private = NatsServer::start().await?;
    let nats_url = match &private {
        Some(server) => server.url.clone(),
        None => std::env::var("MRCI_TEST_NATS").unwrap_or_else(|_| DEFAULT_NATS.into()),
    };
    if private.is_none() && !nats_answers(&nats_url).await {
        println!("SKIPPED: cluster bench (no NATS at {nats_url} and no nats-server binary)");
        report.skip(SCENARIO, "NATS does not answer");
        return Ok(());
    }
    let db = TestDb::create(&pg).await?;
    let res = measure(mrci, out, plan, report, &db, &nats_url, private.as_ref()).await;
    db.drop_db().await?;
    res
}

async fn measure(
    mrci: &Path,
    out: &Path,
    plan: &Plan,
    report: &mut Report,
    db: &TestDb,
    nats_url: &str,
    nats: Option<&NatsServer>,
) -> anyhow::Result<()> {
    let single = HostProcess::start(mrci, 2_000, &out.join("cluster-single-host.log")).await?;
    let prefix = format!("bench{}", std::process::id());
    let mut nodes = Vec::new();
    for i in 0..NODES {
        let setup = Setup {
            cluster: Some(ClusterSetup {
                database_url: db.url.clone(),
                nats_url: Some(nats_url.to_owned()),
                node: format!("b{}", i + 1),
                prefix: prefix.clone(),
            }),
            create_account: i == 0,
            ..Setup::load(2_000)
        };
        let log = out.join(format!("cluster-node{}.log", i + 1));
        nodes.push(HostProcess::start_with(mrci, &setup, &log).await?);
    }
    let meter = Meter {
        pg: db.admin.clone(),
        db: db.name.clone(),
        nats,
    };
    anyhow::ensure!(
        fanout::create_channel(&single).await? && fanout::create_channel(&nodes[0]).await?,
        "the host lacks channel commands"
    );
    // What the idle cluster adds per second (heartbeats, timers), to take off each count.
    let idle = meter.start().await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let idle = meter.finish(idle, 1).await?.rate();

    let n = plan.connects;
    let mut single_connect = connect::serial(n, || single.connect()).await?;
    let mark = meter.start().await?;
    let mut node_connect = connect::serial(n, || nodes[0].connect()).await?;
    let per_connect = meter.finish(mark, n).await?;
    report.row(
        SCENARIO,
        &format!("connect on PostgreSQL: median of {n}"),
        node_connect.total.median_ms().unwrap_or_default(),
        "ms",
        single_connect.total.median_ms(),
        None,
    );
    report.row(
        SCENARIO,
        &format!("connect on PostgreSQL: p99 of {n}"),
        node_connect.total.p99_ms().unwrap_or_default(),
        "ms",
        single_connect.total.p99_ms(),
        None,
    );

    let mut single_login = login_loop(&single, n).await?;
    let mut session = nodes[0].connect().await?;
    let mark = meter.start().await?;
    let mut node_login = login_loop_on(&mut session, n).await?;
    let per_login = meter.finish(mark, n).await?;
    drop(session);
    for (metric, host, base) in [
        ("median", node_login.median_ms(), single_login.median_ms()),
        ("p99", node_login.p99_ms(), single_login.p99_ms()),
    ] {
        report.row(
            SCENARIO,
            &format!("login + logout on PostgreSQL, cheap Argon2: {metric} of {n}"),
            host.unwrap_or_default(),
            "ms",
            base,
            None,
        );
    }

    let mut per_cast = None;
    for (window, total) in [
        (1, plan.casts_serial),
        (plan.cast_window, plan.casts_pipelined),
    ] {
        let label = format!("fan-out 1 -> {RECEIVERS} over {NODES} nodes, {window} in flight");
        let (sender, cast, receivers) = fan_out_sessions(&single, &[&single]).await?;
        let on_single = fanout::measure(sender, cast, receivers, total, window).await?;
        let hosts: Vec<&HostProcess> = nodes.iter().collect();
        let (sender, cast, receivers) = fan_out_sessions(&nodes[0], &hosts).await?;
        // The sessions are open before the counters are read and closed after, so that
        // only the casts are counted (in the pipelined run); the wait lets the receivers'
        // subscriptions reach NATS.
        let mark = if window > 1 {
            Some(meter.start().await?)
        } else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            None
        };
        let (on_cluster, held) =
            fanout::measure_held(sender, cast, receivers, total, window).await?;
        if let Some(mark) = mark {
            per_cast = Some(meter.finish(mark, on_cluster.sent).await?);
        }
        drop(held);
        record(report, &label, on_cluster, on_single);
    }

    let mut session = nodes[0].session().await?;
    let mark = meter.start().await?;
    for i in 0..n {
        client::ok(
            &mut session,
            "set_disp_name",
            &format!("-new_name \"Load {i}\""),
        )
        .await?;
    }
    let per_event = meter.finish(mark, n).await?;
    drop(session);

    let rows = [
        ("connect (no login)", per_connect),
        ("login + logout", per_login),
        ("cast to 100 over 3 nodes", per_cast.unwrap_or_default()),
        ("set_disp_name (user event)", per_event),
    ]
    .into_iter()
    .map(|(what, phase)| phase.per_op(&idle).cells(what, nats.is_some()))
    .collect();
    report.table_of(
        "cluster: server counters per operation (idle cluster subtracted)",
        &[
            "operation",
            "PG transactions",
            "PG rows written",
            "NATS msgs in",
            "NATS msgs out",
            "NATS bytes in",
            "NATS bytes out",
        ],
        rows,
        0,
    );
    report.notes.push(format!(
        "cluster: {NODES} host processes sharing a fresh PostgreSQL database and {}; \
         heartbeats every 1 s; the \"x base\" column of the cluster rows is cluster / single \
         SQLite host of the same run; idle cluster per second: {:.1} PG transactions, {:.1} \
         NATS msgs in, {:.1} out",
        if nats.is_some() {
            "a private nats-server"
        } else {
            "the shared NATS"
        },
        idle.xacts,
        idle.in_msgs,
        idle.out_msgs
    ));
    for node in nodes {
        node.stop()?;
    }
    single.stop()
}

/// One sender on `sender_host` and [`RECEIVERS`] sessions spread over `hosts`, all with
/// the fan-out's sub-channel open, and the sender's `cast` id.
async fn fan_out_sessions(
    sender_host: &HostProcess,
    hosts: &[&HostProcess],
) -> anyhow::Result<(Client, CmdId, Vec<Client>)> {
    let sender = fanout::host_member(sender_host).await?;
    let cast = client::id(&sender, "cast")?;
    let next = AtomicUsize::new(0);
    let receivers = open_many(RECEIVERS, || {
        let host = hosts[next.fetch_add(1, Ordering::Relaxed) % hosts.len()];
        fanout::host_member(host)
    })
    .await?;
    Ok((sender, cast, receivers))
}

fn record(report: &mut Report, label: &str, mut cluster: Outcome, mut single: Outcome) {
    report.row(
        SCENARIO,
        &format!("{label}: casts/s"),
        cluster.rate,
        "casts/s",
        Some(single.rate),
        None,
    );
    for (metric, host, base) in [
        (
            "p50",
            cluster.latency.median_ms(),
            single.latency.median_ms(),
        ),
        ("p99", cluster.latency.p99_ms(), single.latency.p99_ms()),
    ] {
        report.row(
            SCENARIO,
            &format!("{label}: {metric} latency"),
            host.unwrap_or_default(),
            "ms",
            base,
            None,
        );
    }
    let faults = |o: &Outcome| (o.lost + o.duplicates + o.corrupt) as f64;
    report.row(
        SCENARIO,
        &format!("{label}: lost/dup/corrupt"),
        faults(&cluster),
        "count",
        Some(faults(&single)),
        None,
    );
}

async fn login_loop(host: &HostProcess, n: usize) -> anyhow::Result<Samples> {
    let mut session = host.connect().await?;
    login_loop_on(&mut session, n).await
}

/// `n` logins one after another on one session, each followed by `logout`; the login
/// alone is timed.
async fn login_loop_on(session: &mut Client, n: usize) -> anyhow::Result<Samples> {
    let mut out = Samples::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        session.login(USER, PASSWORD).await?;
        out.push(t0.elapsed());
        client::ok(session, "logout", "").await?;
    }
    Ok(out)
}

/// Server counters, or their change per operation.
#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    xacts: f64,
    writes: f64,
    in_msgs: f64,
    out_msgs: f64,
    in_bytes: f64,
    out_bytes: f64,
}

impl Counts {
    fn delta(&self, before: &Self) -> Self {
        Self {
            xacts: self.xacts - before.xacts,
            writes: self.writes - before.writes,
            in_msgs: self.in_msgs - before.in_msgs,
            out_msgs: self.out_msgs - before.out_msgs,
            in_bytes: self.in_bytes - before.in_bytes,
            out_bytes: self.out_bytes - before.out_bytes,
        }
    }

    fn scaled(&self, pg: f64, nats: f64) -> Self {
        Self {
            xacts: self.xacts * pg,
            writes: self.writes * pg,
            in_msgs: self.in_msgs * nats,
            out_msgs: self.out_msgs * nats,
            in_bytes: self.in_bytes * nats,
            out_bytes: self.out_bytes * nats,
        }
    }

    fn cells(&self, what: &str, nats: bool) -> Vec<String> {
        let nats_cell = |v: f64| {
            if nats {
                format!("{:.2}", v.max(0.0))
            } else {
                "-".to_owned()
            }
        };
        vec![
            what.to_owned(),
            format!("{:.2}", self.xacts.max(0.0)),
            format!("{:.2}", self.writes.max(0.0)),
            nats_cell(self.in_msgs),
            nats_cell(self.out_msgs),
            nats_cell(self.in_bytes),
            nats_cell(self.out_bytes),
        ]
    }
}

/// What changed during one phase, and over how long each server was watched.
#[derive(Clone, Copy, Debug, Default)]
struct Phase {
    delta: Counts,
    /// Seconds between the two NATS readings.
    nats_secs: f64,
    /// Seconds between the two PostgreSQL readings.
    pg_secs: f64,
    /// Operations done.
    n: usize,
}

impl Phase {
    /// Counts per second (for the idle phase).
    fn rate(&self) -> Counts {
        self.delta
            .scaled(1.0 / self.pg_secs.max(1e-9), 1.0 / self.nats_secs.max(1e-9))
    }

    /// Counts per operation, less what the idle cluster (`idle` per second) adds meanwhile.
    fn per_op(&self, idle: &Counts) -> Counts {
        let background = idle.scaled(self.pg_secs, self.nats_secs);
        self.delta
            .delta(&background)
            .scaled(1.0 / self.n.max(1) as f64, 1.0 / self.n.max(1) as f64)
    }
}

/// Reads PostgreSQL's statistics for the cluster's database and the private NATS server's.
struct Meter<'a> {
    pg: String,
    db: String,
    nats: Option<&'a NatsServer>,
}

/// Counters at the start of a phase.
struct Mark {
    counts: Counts,
    at: Instant,
}

impl Meter<'_> {
    async fn start(&self) -> anyhow::Result<Mark> {
        // Whatever earlier work left unreported reaches the statistics first.
        tokio::time::sleep(PG_FLUSH).await;
        let mut counts = self.pg_counts().await?;
        self.add_nats(&mut counts).await?;
        Ok(Mark {
            counts,
            at: Instant::now(),
        })
    }

    /// The change since `mark` over `n` operations; NATS is read at once, PostgreSQL once
    /// its backends have reported.
    async fn finish(&self, mark: Mark, n: usize) -> anyhow::Result<Phase> {
        let mut after = Counts::default();
        self.add_nats(&mut after).await?;
        let nats_secs = mark.at.elapsed().as_secs_f64();
        tokio::time::sleep(PG_FLUSH).await;
        let pg = self.pg_counts().await?;
        after.xacts = pg.xacts;
        after.writes = pg.writes;
        Ok(Phase {
            delta: after.delta(&mark.counts),
            nats_secs,
            pg_secs: mark.at.elapsed().as_secs_f64(),
            n,
        })
    }

    async fn pg_counts(&self) -> anyhow::Result<Counts> {
        let mut conn = PgConnection::connect(&self.pg).await?;
        let (xacts, writes): (f64, f64) = sqlx::query_as(
            "SELECT (xact_commit + xact_rollback)::float8, \
             (tup_inserted + tup_updated + tup_deleted)::float8 \
             FROM pg_stat_database WHERE datname = $1",
        )
        .bind(&self.db)
        .fetch_one(&mut conn)
        .await?;
        conn.close().await?;
        Ok(Counts {
            xacts,
            writes,
            ..Counts::default()
        })
    }

    async fn add_nats(&self, counts: &mut Counts) -> anyhow::Result<()> {
        if let Some(server) = self.nats {
            let v = server.varz().await?;
            let get = |k: &str| v.get(k).and_then(serde_json::Value::as_f64).unwrap_or(0.0);
            counts.in_msgs = get("in_msgs");
            counts.out_msgs = get("out_msgs");
            counts.in_bytes = get("in_bytes");
            counts.out_bytes = get("out_bytes");
        }
        Ok(())
    }
}

async fn nats_answers(url: &str) -> bool {
    let Some(rest) = url.split_once("://").map(|(_, r)| r) else {
        return false;
    };
    let addr = rest.split(['/', ',']).next().unwrap_or(rest).to_owned();
    matches!(
        tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr)).await,
        Ok(Ok(_))
    )
}

/// A private `nats-server` with its monitoring port, killed when dropped.
struct NatsServer {
    url: String,
    monitor: u16,
    _child: tokio::process::Child,
    _store: tempfile::TempDir,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl NatsServer {
    /// Starts one when the binary is there; `None` otherwise.
    async fn start() -> anyhow::Result<Option<Self>> {
        let binary: std::path::PathBuf = std::env::var_os("MRCI_TEST_NATS_SERVER")
            .map_or_else(|| "/usr/sbin/nats-server".into(), Into::into);
        if !binary.is_file() {
            return Ok(None);
        }
        let (port, monitor) = (free_port()?, free_port()?);
        let store = tempfile::tempdir()?;
        let child = tokio::process::Command::new(&binary)
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .args(["-m", &monitor.to_string(), "-js", "-sd"])
            .arg(store.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("start {}", binary.display()))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", monitor))
            .await
            .is_err()
        {
            anyhow::ensure!(Instant::now() < deadline, "nats-server did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Some(Self {
            url: format!("nats://127.0.0.1:{port}"),
            monitor,
            _child: child,
            _store: store,
        }))
    }

    /// The server's `/varz` (its counters) as JSON.
    async fn varz(&self) -> anyhow::Result<serde_json::Value> {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.monitor)).await?;
        stream
            .write_all(b"GET /varz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .await?;
        let mut text = String::new();
        stream.read_to_string(&mut text).await?;
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b)
            .context("no body in the /varz answer")?;
        Ok(serde_json::from_str(body)?)
    }
}
