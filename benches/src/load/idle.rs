//! Scenario 4: idle sessions. Opens logged-in TLS sessions up to each level, lets them sit
//! (each drained by a small task, so the host never waits on a full socket) and reads the host
//! process's resident set size from `/proc/PID/status`.

use std::time::Duration;

use mrci_cli::client::Client;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{
    Plan,
    host::{HostProcess, rss_of},
    report::Report,
};

const SCENARIO: &str = "idle sessions";
/// Sessions opened at once.
const PARALLEL: usize = 32;
/// Time given to the host to settle before its memory is read.
const SETTLE: Duration = Duration::from_secs(2);
const MIB: f64 = 1024.0 * 1024.0;

fn park(mut session: Client, stop: CancellationToken, set: &mut JoinSet<()>) {
    session.set_read_timeout(None);
    set.spawn(async move {
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                f = session.recv() => if !matches!(f, Ok(Some(_))) { break },
            }
        }
    });
}

/// Runs the scenario against the host.
///
/// # Errors
/// Connection failures or an unreadable `/proc` entry.
pub async fn run(host: &HostProcess, plan: &Plan, report: &mut Report) -> anyhow::Result<()> {
    let stop = CancellationToken::new();
    let mut parked = JoinSet::new();
    let mut open = 0;
    let mut first: Option<(usize, u64)> = None;
    for &level in &plan.idle_levels {
        while open < level {
            let batch = (level - open).min(PARALLEL);
            let sessions =
                futures::future::try_join_all((0..batch).map(|_| host.session())).await?;
            for s in sessions {
                park(s, stop.clone(), &mut parked);
            }
            open += batch;
        }
        tokio::time::sleep(SETTLE).await;
        let rss = host.rss()?;
        let own = rss_of(std::process::id())?;
        report.row(
            SCENARIO,
            &format!("host RSS at {level}"),
            rss as f64 / MIB,
            "MiB",
            None,
            (level == 10_000).then_some("< 1024 MiB"),
        );
        report.notes.push(format!(
            "load generator RSS at {level} idle sessions: {:.1} MiB",
            own as f64 / MIB
        ));
        match first {
            None => first = Some((level, rss)),
            Some((l0, r0)) => report.row(
                SCENARIO,
                &format!("bytes/session {l0}->{level}"),
                rss.saturating_sub(r0) as f64 / (level - l0) as f64,
                "B",
                None,
                None,
            ),
        }
    }
    stop.cancel();
    while parked.join_next().await.is_some() {}
    Ok(())
}
