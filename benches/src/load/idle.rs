//! Scenario: idle sessions, up to 100,000. A host of its own (admission limits and the login
//! deadline raised, cheap Argon2) takes logged-in TLS sessions that then sit idle, each
//! drained by a small task so the host never waits on a full socket. Sessions come from
//! several loopback source addresses (127.0.0.2, 127.0.0.3, …, bound before the connect) so
//! that no address runs out of ephemeral ports, and are opened with bounded parallelism.
//!
//! As they grow, every `idle_sample_every` sessions, the scenario reads the host's resident
//! memory and open descriptors and the generator's own memory, and reports memory per
//! session above the empty host, a table of the samples and a plot
//! (`idle-sessions.svg`). When the clients close, it times how long the host takes to give
//! the descriptors back.
//!
//! Invariant: the scenario never fails the run because the host could not take every
//! session: it stops growing at the first of the target, too many failed connects, the
//! host's exit, low machine memory or its time limit, and reports how far it got and why.
//! Every wait is bounded.

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use bytes::Bytes;
use mrci_cli::client::Client;
use tokio::task::JoinSet;
use tokio_rustls::TlsConnector;
use tokio_util::sync::CancellationToken;

use super::{
    Plan,
    client::{self, PATIENCE},
    host::{HostProcess, PASSWORD, Setup, USER},
    plot::{Axis, Chart, Scale},
    procfs,
    report::{Report, Series},
};

const SCENARIO: &str = "idle sessions";
/// Sessions per loopback source address: well inside one address's ephemeral ports.
const PER_SOURCE: usize = 10_000;
/// Failed connects (or logins) after which the scenario stops growing.
const MAX_FAILURES: usize = 20;
/// Growth stops when the machine has less memory than this available.
const MIN_AVAILABLE: u64 = 1 << 30;
/// How long the host gets to give the descriptors back once the clients have closed.
const RELEASE_WITHIN: Duration = Duration::from_secs(60);
/// The host log line of a session created without its shared-memory segment.
const NO_SHM: &str = "session shared memory unavailable";
const MIB: f64 = 1024.0 * 1024.0;

/// One reading taken as sessions grow.
#[derive(Clone, Copy, Debug)]
struct Sample {
    sessions: usize,
    secs: f64,
    host_rss: u64,
    host_fds: usize,
    own_rss: u64,
    available: u64,
}

impl Sample {
    fn take(host: &HostProcess, sessions: usize, start: Instant) -> anyhow::Result<Self> {
        Ok(Self {
            sessions,
            secs: start.elapsed().as_secs_f64(),
            host_rss: procfs::rss(host.pid)?,
            host_fds: procfs::fd_count(host.pid)?,
            own_rss: procfs::rss(std::process::id())?,
            available: procfs::mem_available().unwrap_or(0),
        })
    }
}

/// How the growth went.
#[derive(Debug, Default)]
struct Growth {
    opened: usize,
    samples: Vec<Sample>,
    failures: BTreeMap<String, usize>,
    stopped: Option<String>,
    elapsed: Duration,
    /// The empty host's descriptors by kind.
    empty_kinds: BTreeMap<&'static str, usize>,
    /// Commands in a logged-in client's table, and about how many bytes they hold.
    table: (usize, usize),
}

/// About how many bytes a client's command table holds: every string (the name three
/// times: the entry, the key by name and the value by id) and each entry's fixed part.
fn table_bytes(session: &Client) -> (usize, usize) {
    let table = session.commands();
    let bytes = table
        .iter()
        .map(|c| {
            3 * c.name.len()
                + c.lib.len()
                + c.summary.len()
                + c.io.len()
                + c.details.len()
                + size_of_val(c)
                + 64
        })
        .sum();
    (table.len(), bytes)
}

/// What followed the growth.
struct Aftermath {
    /// The reading after the sessions settled.
    end: Sample,
    /// Sessions the host closed while they sat idle.
    closed_idle: usize,
    /// Sessions the host logged as lacking their shared-memory segment.
    shm_missing: usize,
    /// The host once every client closed, if it was still there.
    released: Option<Released>,
}

/// A parked session's task: read (and drop) whatever the host sends until told to stop,
/// counting a session the host closes.
fn park(
    mut session: Client,
    stop: CancellationToken,
    closed: Arc<AtomicUsize>,
) -> impl Future<Output = ()> + Send + 'static {
    session.set_read_timeout(None);
    async move {
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                f = session.recv() => if !matches!(f, Ok(Some(_))) {
                    closed.fetch_add(1, Ordering::AcqRel);
                    return;
                },
            }
        }
    }
}

/// Connects from `source` and logs in, within [`PATIENCE`].
async fn open(
    addr: SocketAddr,
    source: IpAddr,
    cert: Bytes,
    tls: TlsConnector,
) -> anyhow::Result<Client> {
    tokio::time::timeout(PATIENCE, async {
        let mut session = client::connect_from(addr, source, &cert, &tls).await?;
        session.login(USER, PASSWORD).await?;
        anyhow::Ok(session)
    })
    .await
    .map_err(|_| anyhow::anyhow!("connect and login took over {PATIENCE:?}"))?
}

/// Why growth must stop now, if it must.
fn must_stop(
    host: &mut HostProcess,
    sample: &Sample,
    start: Instant,
    plan: &Plan,
) -> Option<String> {
    if let Ok(Some(status)) = host.exited() {
        return Some(format!("the host exited ({status})"));
    }
    if sample.available > 0 && sample.available < MIN_AVAILABLE {
        return Some(format!(
            "the machine's available memory fell to {:.0} MiB",
            sample.available as f64 / MIB
        ));
    }
    (start.elapsed() > plan.idle_time_limit)
        .then(|| format!("the time limit ({:?}) passed", plan.idle_time_limit))
}

/// Opens sessions up to `target`, parking each, sampling as they grow.
async fn grow(
    host: &mut HostProcess,
    target: usize,
    plan: &Plan,
    parked: &mut JoinSet<()>,
    stop: &CancellationToken,
    closed: &Arc<AtomicUsize>,
) -> anyhow::Result<Growth> {
    let cert = host
        .connect()
        .await?
        .info()
        .host_cert
        .clone()
        .context("the host sent no HOST_CERT")?;
    let tls = TlsConnector::from(mrci_host::tls::client_config_trusting(
        std::str::from_utf8(&cert).context("HOST_CERT is not PEM text")?,
    )?);
    let sources: Vec<IpAddr> = (0..target.div_ceil(PER_SOURCE).clamp(1, 250))
        .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + u8::try_from(i).unwrap_or(0))))
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let start = Instant::now();
    let mut out = Growth {
        samples: vec![Sample::take(host, 0, start)?],
        empty_kinds: procfs::fd_kinds(host.pid)?,
        ..Growth::default()
    };
    let mut opening = JoinSet::new();
    let mut next = 0;
    loop {
        while out.stopped.is_none() && opening.len() < plan.idle_parallel && next < target {
            let source = sources[next % sources.len()];
            opening.spawn(open(host.addr, source, cert.clone(), tls.clone()));
            next += 1;
        }
        let Some(res) = opening.join_next().await else {
            break;
        };
        match res? {
            Ok(session) => {
                if out.opened == 0 {
                    out.table = table_bytes(&session);
                }
                parked.spawn(park(session, stop.clone(), Arc::clone(closed)));
                out.opened += 1;
                if out.opened.is_multiple_of(plan.idle_sample_every) || out.opened == target {
                    let sample = Sample::take(host, out.opened, start)?;
                    out.samples.push(sample);
                    if out.stopped.is_none() && out.opened < target {
                        out.stopped = must_stop(host, &sample, start, plan);
                    }
                }
            }
            Err(e) => {
                let kind: String = format!("{e:#}").chars().take(160).collect();
                *out.failures.entry(kind).or_default() += 1;
                let failed: usize = out.failures.values().sum();
                if failed >= MAX_FAILURES && out.stopped.is_none() {
                    out.stopped = Some(format!("{failed} connects or logins failed"));
                }
                if let Ok(Some(status)) = host.exited() {
                    out.stopped = Some(format!("the host exited ({status})"));
                }
            }
        }
    }
    out.elapsed = start.elapsed();
    Ok(out)
}

/// Runs the scenario with a host of its own (its log goes to `out/host-idle.log`).
///
/// # Errors
/// A host that does not start or an unreadable `/proc` entry; a host that cannot take
/// every session is reported, not an error.
pub async fn run(mrci: &Path, out: &Path, plan: &Plan, report: &mut Report) -> anyhow::Result<()> {
    let setup = Setup {
        max_unauthenticated: 4 * plan.idle_parallel,
        login_timeout_secs: 600,
        stop_within: Duration::from_secs(120),
        ..Setup::load(plan.idle_sessions + 1_000)
    };
    let log = out.join("host-idle.log");
    let mut host = HostProcess::start_with(mrci, &setup, &log).await?;
    let (target, limited) = room_for(plan.idle_sessions, host.pid);
    let stop = CancellationToken::new();
    let closed = Arc::new(AtomicUsize::new(0));
    let mut parked = JoinSet::new();
    let mut growth = grow(&mut host, target, plan, &mut parked, &stop, &closed).await?;
    if growth.stopped.is_none() && growth.opened == target {
        growth.stopped = limited;
    }
    tokio::time::sleep(plan.idle_settle).await;
    let end = Sample::take(&host, growth.opened, Instant::now())?;
    let closed_idle = closed.load(Ordering::Acquire);
    stop.cancel();
    while parked.join_next().await.is_some() {}
    let after = Aftermath {
        end,
        closed_idle,
        released: release(&host, &growth.empty_kinds).await,
        shm_missing: std::fs::read_to_string(&log)
            .map(|l| l.matches(NO_SHM).count())
            .unwrap_or(0),
    };
    if let Err(e) = host.stop() {
        report
            .notes
            .push(format!("idle sessions: stopping the host: {e:#}"));
    }
    record(report, plan, target, &growth, &after);
    Ok(())
}

/// Descriptors left over for the sessions' sockets, the generator's and the host's, beyond
/// what each holds now.
const FD_MARGIN: usize = 200;

/// How many of `wanted` sessions the open-file limits of the generator and the host allow
/// (one socket each side per session), and why fewer when they do.
fn room_for(wanted: usize, host: u32) -> (usize, Option<String>) {
    let own = procfs::fd_room(std::process::id()).unwrap_or(usize::MAX);
    let theirs = procfs::fd_room(host).unwrap_or(usize::MAX);
    let room = own.min(theirs).saturating_sub(FD_MARGIN);
    if room >= wanted {
        return (wanted, None);
    }
    let limit = |pid| procfs::nofile_limit(pid).map_or_else(|| "?".into(), |l| l.to_string());
    let why = format!(
        "the open-file limits allow no more (generator {}, host {}: one descriptor per \
         session on each side; a hard limit can only be raised with CAP_SYS_RESOURCE, e.g. \
         `docker run --ulimit nofile=...` or LimitNOFILE= in a systemd unit)",
        limit(std::process::id()),
        limit(host)
    );
    (room, Some(why))
}

/// The host's descriptors and memory once every client has closed.
struct Released {
    kinds: BTreeMap<&'static str, usize>,
    rss: u64,
    within: Duration,
}

/// Sockets among a host's descriptors.
fn sockets(kinds: &BTreeMap<&'static str, usize>) -> usize {
    kinds.get("socket").copied().unwrap_or(0)
}

/// Waits (at most [`RELEASE_WITHIN`]) for the host's sockets to fall back to the count of
/// the empty host, `empty`.
async fn release(host: &HostProcess, empty: &BTreeMap<&'static str, usize>) -> Option<Released> {
    let start = Instant::now();
    loop {
        let kinds = procfs::fd_kinds(host.pid).ok()?;
        if sockets(&kinds) <= sockets(empty) || start.elapsed() > RELEASE_WITHIN {
            return Some(Released {
                kinds,
                rss: procfs::rss(host.pid).ok()?,
                within: start.elapsed(),
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn kinds_text(kinds: &BTreeMap<&'static str, usize>) -> String {
    let list: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
    list.join(", ")
}

fn record(report: &mut Report, plan: &Plan, target: usize, g: &Growth, after: &Aftermath) {
    record_figures(report, plan, g, after);
    record_samples(report, g);
    record_notes(report, plan, target, g, after);
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / MIB
}

/// Bytes per session between two readings.
fn per_session(g: &Growth, now: u64, then: u64) -> f64 {
    now.saturating_sub(then) as f64 / g.opened.max(1) as f64
}

fn record_figures(report: &mut Report, plan: &Plan, g: &Growth, after: &Aftermath) {
    let (empty, end, n) = (&g.samples[0], &after.end, g.opened);
    let wanted = plan.idle_sessions.to_string();
    let opened = n as f64;
    report.row(
        SCENARIO,
        "sessions reached",
        opened,
        "sessions",
        None,
        Some(&wanted),
    );
    let rate = opened / g.elapsed.as_secs_f64().max(1e-9);
    report.figure(SCENARIO, "connects + logins per second", rate, "conn/s");
    report.figure(SCENARIO, "host RSS, empty", mib(empty.host_rss), "MiB");
    if let Some(s) = g.samples.iter().find(|s| s.sessions == 10_000) {
        let rss = mib(s.host_rss);
        report.row(
            SCENARIO,
            "host RSS at 10000",
            rss,
            "MiB",
            None,
            Some("< 1024 MiB"),
        );
    }
    report.figure(
        SCENARIO,
        &format!("host RSS at {n}"),
        mib(end.host_rss),
        "MiB",
    );
    let host = per_session(g, end.host_rss, empty.host_rss);
    report.figure(SCENARIO, "host bytes/session above empty", host, "B");
    report.figure(
        SCENARIO,
        &format!("host fds at {n}"),
        end.host_fds as f64,
        "fds",
    );
    report.figure(
        SCENARIO,
        &format!("generator RSS at {n}"),
        mib(end.own_rss),
        "MiB",
    );
    let own = per_session(g, end.own_rss, empty.own_rss);
    report.figure(SCENARIO, "generator bytes/session", own, "B");
}

fn record_samples(report: &mut Report, g: &Growth) {
    let rows = g
        .samples
        .iter()
        .map(|s| {
            vec![
                s.sessions.to_string(),
                format!("{:.1}", s.secs),
                format!("{:.1}", mib(s.host_rss)),
                s.host_fds.to_string(),
                format!("{:.1}", mib(s.own_rss)),
                format!("{:.1}", s.available as f64 / (MIB * 1024.0)),
            ]
        })
        .collect();
    let columns = [
        "sessions",
        "secs",
        "host RSS MiB",
        "host fds",
        "generator RSS MiB",
        "available GiB",
    ];
    report.table_of(
        "idle sessions: samples as sessions grow",
        &columns,
        rows,
        11,
    );
    let line = |name: &str, f: fn(&Sample) -> f64| Series {
        name: name.to_owned(),
        points: g
            .samples
            .iter()
            .map(|s| (s.sessions as f64, f(s)))
            .collect(),
    };
    let chart = |what: &str, y: &str, series| Chart {
        title: format!("Idle logged-in TLS sessions: {what}"),
        x: Axis::new("sessions", Scale::Linear),
        y: Axis::new(y, Scale::Linear),
        series,
    };
    let memory = vec![
        line("host", |s| mib(s.host_rss)),
        line("load generator", |s| mib(s.own_rss)),
    ];
    let fds = vec![line("host fds", |s| s.host_fds as f64)];
    report.plot(
        "idle-sessions.svg",
        vec![
            chart("resident memory", "RSS, MiB", memory),
            chart("host descriptors", "open descriptors", fds),
        ],
    );
}

fn record_notes(report: &mut Report, plan: &Plan, target: usize, g: &Growth, after: &Aftermath) {
    let wanted = plan.idle_sessions;
    let how_far = match &g.stopped {
        Some(why) => format!("stopped at {} of {wanted}: {why}", g.opened),
        None if g.opened < wanted => format!("reached {} of {wanted}", g.opened),
        None => format!("reached all {wanted}"),
    };
    let mut notes = vec![
        format!(
            "{how_far} in {:.1} s, {} at a time from {} loopback source addresses; {} closed \
             by the host while idle; samples every {} sessions",
            g.elapsed.as_secs_f64(),
            plan.idle_parallel,
            target.div_ceil(PER_SOURCE).max(1),
            after.closed_idle,
            plan.idle_sample_every
        ),
        format!(
            "of the generator's {:.0} bytes per session, each client's command table ({} \
             commands) holds about {} bytes, its frame codec starts with 16,384 bytes of read \
             and write buffers (tokio-util's initial capacity), and the rest is the TLS \
             connection, the socket and the draining task",
            per_session(g, after.end.own_rss, g.samples[0].own_rss),
            g.table.0,
            g.table.1
        ),
    ];
    notes.extend(
        g.failures
            .iter()
            .map(|(kind, n)| format!("{n} failed: {kind}")),
    );
    if after.shm_missing > 0 {
        notes.push(format!(
            "{} sessions ran without their shared-memory segment (host log: \"{NO_SHM}\"; \
             each segment is a memory mapping, see vm.max_map_count)",
            after.shm_missing
        ));
    }
    notes.push(match &after.released {
        Some(r) => format!(
            "{:.1} s after the clients closed, the host had {} fds ({}; empty: {}) and {:.1} \
             MiB RSS",
            r.within.as_secs_f64(),
            r.kinds.values().sum::<usize>(),
            kinds_text(&r.kinds),
            kinds_text(&g.empty_kinds),
            mib(r.rss)
        ),
        None => "the host was gone before the clients closed".into(),
    });
    report
        .notes
        .extend(notes.into_iter().map(|n| format!("idle sessions: {n}")));
}
