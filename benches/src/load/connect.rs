//! Scenario 1: connect. TCP connect, client header, host header, HOST_CERT, TLS handshake and
//! ASYNC_RDY, timed from the first byte to the ready frame; then many workers connecting in
//! parallel for the rate. The baseline does TCP, TLS and its ready frame.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Instant,
};

use mrci_cli::client::Client;

use super::{
    Plan,
    baseline::Baseline,
    host::HostProcess,
    report::Report,
    stats::{Samples, per_second},
};

const SCENARIO: &str = "connect";

/// `n` connects one after another, each closed before the next.
///
/// # Errors
/// The first failed connect.
pub async fn serial<F, Fut>(n: usize, connect: F) -> anyhow::Result<Samples>
where
    F: Fn() -> Fut,
    Fut: Future<Output = anyhow::Result<Client>>,
{
    let mut samples = Samples::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        let session = connect().await?;
        samples.push(t0.elapsed());
        drop(session);
    }
    Ok(samples)
}

/// `n` connects made by `workers` tasks; returns connections per second.
///
/// # Errors
/// The first failed connect.
pub async fn parallel<F, Fut>(n: usize, workers: usize, connect: F) -> anyhow::Result<f64>
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = anyhow::Result<Client>> + Send,
{
    let left = Arc::new(AtomicUsize::new(n));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (left, connect) = (Arc::clone(&left), connect.clone());
        tasks.push(tokio::spawn(async move {
            while left
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |l| l.checked_sub(1))
                .is_ok()
            {
                drop(connect().await?);
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(per_second(n, start.elapsed()))
}

/// Runs the scenario against the host and the baseline.
///
/// # Errors
/// Connection failures.
pub async fn run(
    host: &Arc<HostProcess>,
    base: &Arc<Baseline>,
    plan: &Plan,
    report: &mut Report,
) -> anyhow::Result<()> {
    let n = plan.connects;
    let mut host_lat = serial(n, || host.connect()).await?;
    let mut base_lat = serial(n, || base.session()).await?;
    let (h, b) = (Arc::clone(host), Arc::clone(base));
    let host_rate = parallel(plan.parallel_connects, plan.connect_workers, move || {
        let h = Arc::clone(&h);
        async move { h.connect().await }
    })
    .await?;
    let base_rate = parallel(plan.parallel_connects, plan.connect_workers, move || {
        let b = Arc::clone(&b);
        async move { b.session().await }
    })
    .await?;
    report.row(
        SCENARIO,
        &format!("median of {n}"),
        host_lat.median_ms().unwrap_or_default(),
        "ms",
        base_lat.median_ms(),
        Some("< 2 ms"),
    );
    report.row(
        SCENARIO,
        &format!("p99 of {n}"),
        host_lat.p99_ms().unwrap_or_default(),
        "ms",
        base_lat.p99_ms(),
        None,
    );
    report.row(
        SCENARIO,
        &format!("{} workers in parallel", plan.connect_workers),
        host_rate,
        "conn/s",
        Some(base_rate),
        None,
    );
    report.series("connect: host", host_lat.curve());
    report.series("connect: baseline", base_lat.curve());
    Ok(())
}
