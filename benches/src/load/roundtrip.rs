//! Scenario 2: command round trip. `my_info` on a logged-in TLS session, sent and read up to
//! its IDLE: sequential calls for the latency figures, then many sessions in parallel for the
//! rate. The baseline runs the same loop against its echo.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use mrci_cli::client::Client;
use mrci_proto::CmdId;

use super::{
    Plan,
    baseline::{self, Baseline},
    client,
    host::HostProcess,
    report::Report,
    stats::{Samples, per_second},
};

const SCENARIO: &str = "round trip my_info";
/// Calls made before measuring, so connections and caches are warm.
const WARM_UP: usize = 200;

/// `n` sequential calls of `cmd` with `text`.
///
/// # Errors
/// Connection failures.
pub async fn serial(
    session: &mut Client,
    cmd: CmdId,
    text: &str,
    n: usize,
) -> anyhow::Result<Samples> {
    for _ in 0..WARM_UP.min(n) {
        session.call(cmd, text).await?;
    }
    let mut samples = Samples::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        session.call(cmd, text).await?;
        samples.push(t0.elapsed());
    }
    Ok(samples)
}

/// Every session calls `cmd` in a loop for `run_for`; returns calls per second.
///
/// # Errors
/// Connection failures.
pub async fn parallel(
    sessions: Vec<Client>,
    cmd: CmdId,
    text: &str,
    run_for: Duration,
) -> anyhow::Result<f64> {
    let done = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + run_for;
    let mut tasks = Vec::new();
    for mut session in sessions {
        let (done, text) = (Arc::clone(&done), text.to_owned());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                session.call(cmd, &text).await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(per_second(done.load(Ordering::Relaxed), start.elapsed()))
}

/// Opens `n` sessions with `open`, 16 at a time.
///
/// # Errors
/// The first failure of `open`.
pub async fn open_many<F, Fut>(n: usize, open: F) -> anyhow::Result<Vec<Client>>
where
    F: Fn() -> Fut,
    Fut: Future<Output = anyhow::Result<Client>>,
{
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let batch = (n - out.len()).min(16);
        let opened = futures::future::try_join_all((0..batch).map(|_| open())).await?;
        out.extend(opened);
    }
    Ok(out)
}

/// Runs the scenario against the host and the baseline.
///
/// # Errors
/// Connection failures.
pub async fn run(
    host: &HostProcess,
    base: &Baseline,
    plan: &Plan,
    report: &mut Report,
) -> anyhow::Result<()> {
    let mut session = host.session().await?;
    let cmd = client::id(&session, "my_info")?;
    let mut host_rtt = serial(&mut session, cmd, "", plan.round_trips).await?;
    let mut base_session = base.session().await?;
    let mut base_rtt = serial(&mut base_session, baseline::ECHO, "", plan.round_trips).await?;
    drop((session, base_session));

    let sessions = open_many(plan.rtt_sessions, || host.session()).await?;
    let host_rate = parallel(sessions, cmd, "", plan.rtt_parallel_for).await?;
    let sessions = open_many(plan.rtt_sessions, || base.session()).await?;
    let base_rate = parallel(sessions, baseline::ECHO, "", plan.rtt_parallel_for).await?;

    let n = plan.round_trips;
    report.row(
        SCENARIO,
        &format!("median of {n}"),
        host_rtt.median_ms().unwrap_or_default(),
        "ms",
        base_rtt.median_ms(),
        Some("<= 1.5x base and <= 0.093 ms"),
    );
    report.row(
        SCENARIO,
        &format!("p99 of {n}"),
        host_rtt.p99_ms().unwrap_or_default(),
        "ms",
        base_rtt.p99_ms(),
        None,
    );
    report.row(
        SCENARIO,
        &format!("{} sessions in parallel", plan.rtt_sessions),
        host_rate,
        "cmd/s",
        Some(base_rate),
        None,
    );
    report.series("round trip: host", host_rtt.curve());
    report.series("round trip: baseline", base_rtt.curve());
    Ok(())
}
