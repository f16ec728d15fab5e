//! Scenario 5: module round trip. The hook for when `mrci-modrun` commands exist: a command
//! is a module's when its NEW_CMD names a library other than the host's. Until one is
//! announced the scenario reports itself skipped.

use super::{Plan, client::Session, host::HostProcess, report::Report, roundtrip};

const SCENARIO: &str = "module round trip";

/// The first announced command that a module provides, if any.
pub fn module_command(session: &Session) -> Option<(String, mrci_proto::CmdId)> {
    let mut cmds: Vec<_> = session
        .commands
        .iter()
        .filter(|(_, c)| !c.lib.starts_with("MRCI host"))
        .map(|(name, c)| (name.clone(), c.id))
        .collect();
    cmds.sort();
    cmds.into_iter().next()
}

/// Times a module command's round trip (sent with no text, read up to its IDLE), or reports
/// the scenario skipped.
///
/// # Errors
/// Connection failures.
pub async fn run(host: &HostProcess, plan: &Plan, report: &mut Report) -> anyhow::Result<()> {
    let mut session = host.session().await?;
    let Some((name, cmd)) = module_command(&session) else {
        report.skip(SCENARIO, "modules not yet available");
        return Ok(());
    };
    let n = plan.round_trips / 10;
    let mut rtt = roundtrip::serial(&mut session, cmd, "", n).await?;
    let scenario = format!("{SCENARIO} ({name})");
    report.row(
        &scenario,
        &format!("median of {n}"),
        rtt.median_ms().unwrap_or_default(),
        "ms",
        None,
        None,
    );
    report.row(
        &scenario,
        &format!("p99 of {n}"),
        rtt.p99_ms().unwrap_or_default(),
        "ms",
        None,
        None,
    );
    Ok(())
}
