//! The optional Prometheus endpoint (`[metrics] listen`, off by default): the `metrics`
//! facade records, `metrics-exporter-prometheus` renders, and a small HTTP responder serves
//! `GET /metrics` on the configured address.
//!
//! What is measured (names as scraped):
//! - `mrci_sessions{state="logged_in"|"not_logged_in"}`: connections now (set at each scrape);
//! - `mrci_commands_total{command}` and `mrci_command_seconds{command}` (histogram): command
//!   invocations and how long each took, internal ones until their task ends and module
//!   ones from their first frame to their IDLE (or their process's end);
//! - `mrci_casts_delivered_total`, `mrci_casts_dropped_total`;
//! - `mrci_auth_failures_total`, `mrci_bans_total{kind="operator"|"automatic"}`;
//! - `mrci_module_starts_total`, `mrci_module_crashes_total`;
//! - `mrci_db_query_seconds{query}` (histogram): every statement the store runs on its pool,
//!   labelled by kind and first table (`select users`, `insert auth_log`; see
//!   `store::timed`).
//!
//! Invariant: the recorder is installed once per process; recording without it costs a
//! no-op call, so a host without `[metrics]` pays nothing measurable.

use std::{
    net::SocketAddr,
    sync::{Arc, OnceLock},
    time::Duration,
};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};
use tokio_util::sync::CancellationToken;

use crate::host::HostCtx;

/// Histogram buckets in seconds: 50 µs to 5 s.
const BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0,
];

/// The process's Prometheus recorder, once installed (`None` inside if another recorder was
/// installed first).
static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's Prometheus recorder, installed on first use; `None` if another recorder
/// was installed first.
fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new().set_buckets(BUCKETS).ok()?;
            match builder.install_recorder() {
                Ok(handle) => Some(handle),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot install the metrics recorder");
                    None
                }
            }
        })
        .as_ref()
}

/// Binds the metrics address, installing the recorder.
///
/// # Errors
/// If the address cannot be bound.
pub(crate) async fn bind(listen: SocketAddr) -> crate::Result<TcpListener> {
    let _ = handle();
    Ok(TcpListener::bind(listen).await?)
}

/// Serves scrapes until `cancel`.
pub(crate) async fn serve(listener: TcpListener, ctx: Arc<HostCtx>, cancel: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            () = cancel.cancelled() => return,
            res = listener.accept() => res,
        };
        let Ok((stream, _)) = accepted else { continue };
        let ctx = Arc::clone(&ctx);
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(5), answer(stream, &ctx)).await;
        });
    }
}

/// Reads one request head (at most 8 KiB) and answers it.
async fn answer(mut stream: tokio::net::TcpStream, ctx: &HostCtx) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || head.len() + n > 8192 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let path_ok = head.starts_with(b"GET /metrics ") || head.starts_with(b"GET /metrics?");
    let (status, body) = match (path_ok, handle()) {
        (true, Some(handle)) => {
            record_gauges(ctx);
            ("200 OK", handle.render())
        }
        (true, None) => ("503 Service Unavailable", "no recorder\n".to_owned()),
        (false, _) => ("404 Not Found", "try /metrics\n".to_owned()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// The values read at scrape time.
fn record_gauges(ctx: &HostCtx) {
    let (all, unauth) = (ctx.session_count(), ctx.unauthenticated_count());
    metrics::gauge!("mrci_sessions", "state" => "logged_in").set(all.saturating_sub(unauth) as f64);
    metrics::gauge!("mrci_sessions", "state" => "not_logged_in").set(unauth as f64);
    metrics::counter!("mrci_casts_dropped_total").absolute(ctx.bus.stats().dropped);
}

/// One invocation of `command` that took `elapsed`.
pub(crate) fn command(command: &str, elapsed: Duration) {
    metrics::counter!("mrci_commands_total", "command" => command.to_owned()).increment(1);
    metrics::histogram!("mrci_command_seconds", "command" => command.to_owned())
        .record(elapsed.as_secs_f64());
}

/// True once this process records metrics (a host with `[metrics] listen` started), for
/// measurements that cost something to take, such as the statement labels.
pub(crate) fn recording() -> bool {
    HANDLE.get().is_some_and(Option::is_some)
}

/// A database statement (labelled `select users`, `insert auth_log`, …) that took `elapsed`.
pub(crate) fn db_query(query: String, elapsed: Duration) {
    metrics::histogram!("mrci_db_query_seconds", "query" => query).record(elapsed.as_secs_f64());
}

/// Casts handed to `n` receivers.
pub(crate) fn casts_delivered(n: usize) {
    metrics::counter!("mrci_casts_delivered_total").increment(n as u64);
}

/// A failed login.
pub(crate) fn auth_failure() {
    metrics::counter!("mrci_auth_failures_total").increment(1);
}

/// A ban added by an operator or automatically.
pub(crate) fn ban(automatic: bool) {
    let kind = if automatic { "automatic" } else { "operator" };
    metrics::counter!("mrci_bans_total", "kind" => kind).increment(1);
}

/// A module process started, or ended without being asked to.
pub(crate) fn module(started: bool) {
    if started {
        metrics::counter!("mrci_module_starts_total").increment(1);
    } else {
        metrics::counter!("mrci_module_crashes_total").increment(1);
    }
}
