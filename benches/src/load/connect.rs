//! Scenario 1: connect. TCP connect, client header, host header, HOST_CERT, TLS handshake and
//! ASYNC_RDY, timed from the first byte to the ready frame and stage by stage (the client
//! library's [`ConnectTimings`]); then many workers connecting in parallel for the rate. The
//! baseline does the same handshake, TLS and its ready frame, without command announcements.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Instant,
};

use mrci_cli::client::{Client, ConnectTimings};

use super::{
    Plan,
    baseline::Baseline,
    host::HostProcess,
    report::Report,
    stats::{Samples, per_second},
};

const SCENARIO: &str = "connect";

/// The stages of a connect, in order, as the stage table names them.
pub const STAGES: [&str; 5] = [
    "TCP connect",
    "client header -> host header",
    "HOST_CERT received",
    "TLS done",
    "ready (ASYNC_RDY)",
];

/// Samples of each connect stage ([`STAGES`]) and of the whole connect.
#[derive(Clone, Debug, Default)]
pub struct Stages {
    /// One [`Samples`] per entry of [`STAGES`].
    pub stages: [Samples; 5],
    /// The whole connect, by the wall clock around [`Client::connect`].
    pub total: Samples,
}

impl Stages {
    /// Adds one connect's timings; a stage the connect did not have (no TLS) is left out.
    pub fn push(&mut self, t: &ConnectTimings) {
        let values = [
            Some(t.tcp),
            Some(t.host_header),
            t.host_cert,
            t.tls,
            Some(t.ready),
        ];
        for (samples, value) in self.stages.iter_mut().zip(values) {
            if let Some(d) = value {
                samples.push(d);
            }
        }
    }
}

/// `n` connects one after another, each closed before the next.
///
/// # Errors
/// The first failed connect.
pub async fn serial<F, Fut>(n: usize, connect: F) -> anyhow::Result<Stages>
where
    F: Fn() -> Fut,
    Fut: Future<Output = anyhow::Result<Client>>,
{
    let mut out = Stages::default();
    for _ in 0..n {
        let t0 = Instant::now();
        let session = connect().await?;
        out.total.push(t0.elapsed());
        out.push(&session.info().timings);
        drop(session);
    }
    Ok(out)
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

/// The stage table: median and p99 of each stage, host and baseline side by side.
fn stage_table(report: &mut Report, n: usize, host: &mut Stages, base: &mut Stages) {
    let ms = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"));
    let mut rows = Vec::new();
    let pairs = host.stages.iter_mut().zip(base.stages.iter_mut());
    let all = pairs
        .zip(STAGES)
        .map(|((h, b), name)| (name, h, b))
        .chain(std::iter::once(("total", &mut host.total, &mut base.total)));
    for (name, h, b) in all {
        let (h50, b50) = (h.median_ms(), b.median_ms());
        let ratio = match (h50, b50) {
            (Some(h), Some(b)) if b > 0.0 => format!("{:.2}", h / b),
            _ => "-".to_owned(),
        };
        rows.push(vec![
            name.to_owned(),
            ms(h50),
            ms(h.p99_ms()),
            ms(b50),
            ms(b.p99_ms()),
            ratio,
        ]);
    }
    report.table_of(
        &format!("connect stages, ms, {n} connects one after another"),
        &[
            "stage",
            "host p50",
            "host p99",
            "base p50",
            "base p99",
            "x base p50",
        ],
        rows,
        0,
    );
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
    let announced = host.connect().await?.commands().len();
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
        host_lat.total.median_ms().unwrap_or_default(),
        "ms",
        base_lat.total.median_ms(),
        Some("< 2 ms"),
    );
    report.row(
        SCENARIO,
        &format!("p99 of {n}"),
        host_lat.total.p99_ms().unwrap_or_default(),
        "ms",
        base_lat.total.p99_ms(),
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
    stage_table(report, n, &mut host_lat, &mut base_lat);
    report.notes.push(format!(
        "connect: the host announces {announced} commands before ASYNC_RDY (inside its ready \
         stage); the baseline announces none"
    ));
    report.series("connect: host", host_lat.total.curve());
    report.series("connect: baseline", base_lat.total.curve());
    Ok(())
}
