//! The soak (`mrci-load --soak`, `cargo xtask bench --soak`): a host of its own under a
//! mixed load from many clients for a set time (ten minutes by default, 30 seconds with
//! `--quick`), while the generator samples the host's memory and descriptors.
//!
//! The load: churning sessions that log in (some with a wrong password or an unknown user),
//! run commands and leave ([`mix`]); a warm module caller and a `my_info` canary ([`mix`]);
//! checked casts to a sub-channel ([`casts`]); bad frames and abrupt disconnects
//! ([`abuse`]). Every outcome is counted by kind ([`tally`]).
//!
//! The verdict, one PASS/FAIL line per criterion:
//! - memory: the host's RSS at the end of the load is within 10 % of its RSS after the
//!   warm-up (the first 10 % of the time, the first minute of the default ten), the same
//!   load running at both readings;
//! - descriptors: once every client has left, the host holds no more descriptors than
//!   before the load began;
//! - delivery: every cast reached every receiver exactly once, in order, intact;
//! - errors: nothing unexpected happened (a refused wrong password is expected).
//!
//! Invariant: only lost, duplicated, reordered or corrupted deliveries and a host that
//! died make the run fail ([`Verdict::failed`]); a figure outside its target is reported.

pub mod abuse;
pub mod casts;
pub mod mix;
pub mod tally;
pub mod verdict;

use std::{
    path::Path,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use mrci_cli::client::Client;
use tokio::task::JoinSet;
use tokio_rustls::TlsConnector;
use tokio_util::sync::CancellationToken;

use super::{
    client,
    host::{HostProcess, Setup},
    modules, procfs,
    report::Report,
};
use tally::Tally;

/// An account that only ever gets wrong passwords (it ends up locked, which is refused too).
pub const VICTIM: &str = "soak_victim";
/// `limits.max_payload` of the soak's host, so that a frame can announce more.
pub const MAX_PAYLOAD: usize = 1 << 20;
const CHANNEL: &str = "-ch_name soak_ch -sub_name soak_sub";

/// How long and how hard the soak runs.
#[derive(Clone, Debug)]
pub struct SoakPlan {
    /// How long the load runs.
    pub duration: Duration,
    /// The start of the load that memory is not judged on.
    pub warm_up: Duration,
    /// Time between two readings of the host.
    pub sample_every: Duration,
    /// Churning clients ([`mix::churn`]).
    pub churners: usize,
    /// Pause of a churning client between two actions.
    pub churn_pause: Duration,
    /// Misbehaving clients ([`abuse::worker`]).
    pub abusers: usize,
    /// Pause of a misbehaving client between two actions.
    pub abuse_pause: Duration,
    /// Cast senders and receivers.
    pub senders: usize,
    /// See [`Self::senders`].
    pub receivers: usize,
    /// Casts a sender may be ahead of its slowest receiver.
    pub cast_window: u64,
    /// The least time between two casts of one sender.
    pub cast_pace: Duration,
    /// Time between two warm module calls.
    pub module_every: Duration,
    /// Time between two canary `my_info` calls.
    pub canary_every: Duration,
}

impl SoakPlan {
    /// Ten minutes, 30 seconds when `quick`, or `duration` when given.
    pub fn new(quick: bool, duration: Option<Duration>) -> Self {
        let duration = duration.unwrap_or(Duration::from_secs(if quick { 30 } else { 600 }));
        Self {
            duration,
            warm_up: duration / 10,
            sample_every: if duration <= Duration::from_secs(120) {
                Duration::from_secs(1)
            } else {
                Duration::from_secs(5)
            },
            churners: 4,
            churn_pause: Duration::from_millis(50),
            abusers: 1,
            abuse_pause: Duration::from_millis(100),
            senders: 3,
            receivers: 6,
            cast_window: 32,
            cast_pace: Duration::from_millis(5),
            module_every: Duration::from_millis(100),
            canary_every: Duration::from_millis(250),
        }
    }
}

/// What every soak client shares.
pub struct Ctx {
    /// The host.
    pub host: Arc<HostProcess>,
    /// Its certificate (the HOST_CERT payload) and a TLS client trusting it.
    pub cert: Bytes,
    /// See [`Self::cert`].
    pub tls: TlsConnector,
    /// The same configuration, for a hand-made ClientHello.
    pub rustls: Arc<rustls::ClientConfig>,
    /// The module command to call, when a module was added.
    pub module_cmd: Option<String>,
    /// The host's `limits.max_payload`.
    pub max_payload: usize,
    /// Outcome counts.
    pub tally: Arc<Tally>,
    /// Cancelled when the time is up.
    pub stop: CancellationToken,
    /// Pause of a churning client between two actions.
    pub pause: Duration,
    /// Pause of a misbehaving client between two actions.
    pub abuse_pause: Duration,
}

impl Ctx {
    /// Waits `d`, or less if the soak stops meanwhile.
    pub async fn rest(&self, d: Duration) {
        tokio::select! {
            () = self.stop.cancelled() => {}
            () = tokio::time::sleep(d) => {}
        }
    }
}

/// One reading of the host (and of the generator).
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// Seconds since the load began.
    pub secs: f64,
    /// Host resident memory, bytes.
    pub host_rss: u64,
    /// Host open descriptors.
    pub host_fds: usize,
    /// Host child processes (modules).
    pub children: usize,
    /// Generator resident memory, bytes.
    pub own_rss: u64,
}

impl Sample {
    fn take(pid: u32, start: Instant) -> anyhow::Result<Self> {
        Ok(Self {
            secs: start.elapsed().as_secs_f64(),
            host_rss: procfs::rss(pid)?,
            host_fds: procfs::fd_count(pid)?,
            children: procfs::children(pid),
            own_rss: procfs::rss(std::process::id())?,
        })
    }
}

/// How the soak ended, for the exit status.
#[derive(Clone, Debug, Default)]
pub struct Verdict {
    /// Casts lost, duplicated, out of order or corrupted.
    pub delivery_faults: u64,
    /// Why the host is gone, if it died during the soak.
    pub host_died: Option<String>,
}

impl Verdict {
    /// True on a real error: a delivery fault or a dead host.
    pub fn failed(&self) -> bool {
        self.delivery_faults > 0 || self.host_died.is_some()
    }
}

/// Creates the channel, adds the module and returns the certificate and the module
/// command's name.
async fn prepare(
    host: &HostProcess,
    module: Option<&Path>,
    report: &mut Report,
) -> anyhow::Result<(Bytes, Option<String>)> {
    let mut admin = host.session().await?;
    let cert = admin
        .info()
        .host_cert
        .clone()
        .context("the host sent no HOST_CERT")?;
    client::ok(&mut admin, "add_ch", "-ch_name soak_ch").await?;
    client::ok(&mut admin, "add_sub_ch", CHANNEL).await?;
    let module_cmd = match module.filter(|m| m.is_file()) {
        Some(path) => {
            client::ok(
                &mut admin,
                "add_mod",
                &format!("-mod_path {}", path.display()),
            )
            .await?;
            let found = tokio::time::timeout(client::PATIENCE, async {
                loop {
                    if let Some((name, _)) = modules::module_command(&admin) {
                        return anyhow::Ok(name);
                    }
                    admin
                        .recv()
                        .await?
                        .context("the host closed the connection")?;
                }
            })
            .await
            .context("the module announced no command")??;
            Some(found)
        }
        None => {
            report
                .notes
                .push("soak: no module executable, so no module calls".into());
            None
        }
    };
    Ok((cert, module_cmd))
}

/// Sessions logging in at once to open the host's database pool to its size before the
/// descriptors are counted: the pool keeps its connections (three files each with SQLite)
/// for minutes, so they are part of the start, not something the load leaked.
const PRIME: usize = 32;

/// Runs [`PRIME`] sessions at once (login, `ls_users`), closes them and waits (at most
/// ten seconds) until the host holds no more sockets than before.
async fn prime(host: &HostProcess) -> anyhow::Result<()> {
    let sockets = |pid| procfs::fd_kinds(pid).map(|k| k.get("socket").copied().unwrap_or(0));
    let idle = sockets(host.pid)?;
    let sessions = futures::future::try_join_all((0..PRIME).map(|_| async {
        let mut s = host.session().await?;
        client::ok(&mut s, "ls_users", "").await?;
        anyhow::Ok(s)
    }))
    .await?;
    drop(sessions);
    let t0 = Instant::now();
    while sockets(host.pid)? > idle && t0.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// A session that has the soak's sub-channel open.
async fn member(host: &HostProcess) -> anyhow::Result<Client> {
    let mut session = host.session().await?;
    client::ok(&mut session, "open_sub_ch", CHANNEL).await?;
    Ok(session)
}

/// Runs the soak against a host of its own (its log goes to `out/soak-host.log`) and adds
/// its figures, tables, verdict and plot (`soak.svg`) to `report`.
///
/// # Errors
/// A host that does not start or a setup command that fails; what happens during the load
/// is counted and judged, not an error.
pub async fn run(
    mrci: &Path,
    module: Option<&Path>,
    out: &Path,
    plan: &SoakPlan,
    report: &mut Report,
) -> anyhow::Result<Verdict> {
    let setup = Setup {
        max_payload: Some(MAX_PAYLOAD),
        extra_accounts: vec![VICTIM.to_owned()],
        stop_within: Duration::from_secs(30),
        ..Setup::load(2_000)
    };
    let host = Arc::new(HostProcess::start_with(mrci, &setup, &out.join("soak-host.log")).await?);
    let (cert, module_cmd) = prepare(&host, module, report).await?;
    let rustls = mrci_host::tls::client_config_trusting(
        std::str::from_utf8(&cert).context("HOST_CERT is not PEM text")?,
    )?;
    let ctx = Arc::new(Ctx {
        host: Arc::clone(&host),
        cert,
        tls: TlsConnector::from(Arc::clone(&rustls)),
        rustls,
        module_cmd,
        max_payload: MAX_PAYLOAD,
        tally: Arc::new(Tally::default()),
        stop: CancellationToken::new(),
        pause: plan.churn_pause,
        abuse_pause: plan.abuse_pause,
    });
    let pid = host.pid;
    prime(&host).await?;
    let before = (procfs::fd_count(pid)?, procfs::fd_kinds(pid)?);
    let start = Instant::now();
    let load = start_load(&ctx, plan, start).await?;
    let (samples, host_died) = watch(&ctx, plan, start).await;
    ctx.stop.cancel();
    let seen = load.finish().await?;
    let after = settle(pid, before.0).await;
    drop(ctx);
    let host_died = match (host_died, Arc::try_unwrap(host)) {
        (Some(why), _) => Some(why),
        (None, Ok(host)) => host.stop().err().map(|e| format!("{e:#}")),
        (None, Err(_)) => bail!("a soak client kept the host"),
    };
    let run = Run {
        samples,
        before_fds: before.0,
        before_kinds: before.1,
        after,
        seen,
        host_died,
    };
    Ok(verdict::record(report, plan, &run))
}

/// Everything a soak measured.
pub struct Run {
    /// Readings taken during the load.
    pub samples: Vec<Sample>,
    /// Host descriptors before the load began, and by kind.
    pub before_fds: usize,
    /// See [`Self::before_fds`].
    pub before_kinds: std::collections::BTreeMap<&'static str, usize>,
    /// The host once the clients had left, if it was still there.
    pub after: Option<After>,
    /// What the clients saw.
    pub seen: Seen,
    /// Why the host died, if it did.
    pub host_died: Option<String>,
}

/// The soak's running clients.
struct Load {
    ctx: Arc<Ctx>,
    group: Arc<casts::Group>,
    receivers: JoinSet<casts::Seen>,
    others: JoinSet<()>,
    canary: Arc<Mutex<mix::Canary>>,
}

/// What the load left to judge.
pub struct Seen {
    /// Per receiver, what it saw.
    pub receivers: Vec<casts::Seen>,
    /// Casts sent, per sender.
    pub sent: Vec<u64>,
    /// The canary's latencies.
    pub canary: mix::Canary,
    /// Outcome counts.
    pub tally: Vec<(tally::Class, String, u64)>,
}

impl Load {
    /// Waits for every client to finish (each does within its action's bound).
    async fn finish(mut self) -> anyhow::Result<Seen> {
        while let Some(res) = self.others.join_next().await {
            res?;
        }
        let mut receivers = Vec::new();
        while let Some(seen) = self.receivers.join_next().await {
            receivers.push(seen?);
        }
        let canary = std::mem::take(&mut *self.canary.lock().unwrap_or_else(|e| e.into_inner()));
        Ok(Seen {
            receivers,
            sent: self.group.board.sent(),
            canary,
            tally: self.ctx.tally.snapshot(),
        })
    }
}

/// Connects the cast group and starts every client.
async fn start_load(ctx: &Arc<Ctx>, plan: &SoakPlan, start: Instant) -> anyhow::Result<Load> {
    let group = Arc::new(casts::Group {
        board: casts::Board::new(plan.senders, plan.receivers),
        window: plan.cast_window,
        pace: plan.cast_pace,
        stop: ctx.stop.clone(),
        tally: Arc::clone(&ctx.tally),
    });
    let mut receivers = JoinSet::new();
    for me in 0..plan.receivers {
        let session = member(&ctx.host).await?;
        receivers.spawn(casts::receive(me, session, Arc::clone(&group)));
    }
    let mut others = JoinSet::new();
    for me in 0..plan.senders {
        let session = member(&ctx.host).await?;
        let cast = client::id(&session, "cast")?;
        let (answers, sink) = session.split();
        others.spawn(drain_answers(answers, cast, Arc::clone(ctx)));
        others.spawn(casts::send(me, sink, cast, Arc::clone(&group)));
    }
    let canary = Arc::new(Mutex::new(mix::Canary::default()));
    others.spawn(mix::canary(
        Arc::clone(ctx),
        plan.canary_every,
        start,
        Arc::clone(&canary),
    ));
    others.spawn(mix::module_caller(Arc::clone(ctx), plan.module_every));
    for id in 0..plan.churners {
        others.spawn(mix::churn(id as u64, Arc::clone(ctx)));
    }
    for id in 0..plan.abusers {
        others.spawn(abuse::worker(id as u64, Arc::clone(ctx)));
    }
    Ok(Load {
        ctx: Arc::clone(ctx),
        group,
        receivers,
        others,
        canary,
    })
}

/// Reads a cast sender's answers (an IDLE per cast) so the host never waits on it.
async fn drain_answers(
    mut answers: mrci_cli::client::ReadHalf,
    cast: mrci_proto::CmdId,
    ctx: Arc<Ctx>,
) {
    loop {
        let frame = tokio::select! {
            () = ctx.stop.cancelled() => return,
            f = answers.recv() => f,
        };
        match frame {
            Ok(Some(f)) if f.cmd_id == cast && f.type_id == mrci_proto::TypeId::ERR => {
                ctx.tally
                    .unexpected(&format!("cast answered ERR: {}", f.text_payload().trim()));
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => {
                ctx.tally
                    .unexpected("casts: the host closed a sender's session");
                return;
            }
        }
    }
}

/// Samples the host until the time is up or it dies; prints a line every tenth.
async fn watch(ctx: &Ctx, plan: &SoakPlan, start: Instant) -> (Vec<Sample>, Option<String>) {
    let pid = ctx.host.pid;
    let mut samples = Vec::new();
    let mut tick = tokio::time::interval(plan.sample_every);
    let mut next_line = Duration::ZERO;
    while start.elapsed() < plan.duration {
        tick.tick().await;
        if !procfs::alive(pid) {
            return (samples, Some("the host died during the soak".into()));
        }
        match Sample::take(pid, start) {
            Ok(s) => samples.push(s),
            Err(e) => return (samples, Some(format!("the host cannot be read: {e:#}"))),
        }
        if start.elapsed() >= next_line {
            next_line += plan.duration / 10;
            if let Some(s) = samples.last() {
                println!(
                    "soak: {:>4.0} s of {}: host RSS {:.1} MiB, {} fds, {} module processes; {} unexpected",
                    s.secs,
                    plan.duration.as_secs(),
                    s.host_rss as f64 / (1024.0 * 1024.0),
                    s.host_fds,
                    s.children,
                    ctx.tally.total(tally::Class::Unexpected)
                );
            }
        }
    }
    (samples, None)
}

/// The host once the clients have left: descriptors (waiting up to 30 seconds for them to
/// fall back to `start`), their kinds, memory and module processes.
pub struct After {
    /// Open descriptors.
    pub fds: usize,
    /// By kind.
    pub kinds: std::collections::BTreeMap<&'static str, usize>,
    /// Resident memory, bytes.
    pub rss: u64,
    /// Module processes still running.
    pub children: usize,
    /// How long the descriptors took to come back.
    pub within: Duration,
}

async fn settle(pid: u32, start: usize) -> Option<After> {
    let t0 = Instant::now();
    loop {
        let fds = procfs::fd_count(pid).ok()?;
        let children = procfs::children(pid);
        if (fds <= start && children == 0) || t0.elapsed() > Duration::from_secs(30) {
            return Some(After {
                fds,
                kinds: procfs::fd_kinds(pid).ok()?,
                rss: procfs::rss(pid).ok()?,
                children,
                within: t0.elapsed(),
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
