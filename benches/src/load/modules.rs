//! Scenario 5: module round trip. An admin session adds a module with `add_mod` (the time
//! it takes is the listing: three list-mode processes), then calls one of its commands: the
//! first call starts the run-mode process, later calls reuse it. The warm round trip is
//! compared with the internal `my_info` round trip on the same session (target: within 2×).
//! Without a module executable the scenario reports itself skipped.

use std::{path::Path, time::Instant};

use anyhow::Context as _;

use mrci_cli::client::Client;

use super::{Plan, client, host::HostProcess, report::Report, roundtrip};

const SCENARIO: &str = "module round trip";

/// The first announced command that a module provides, if any.
pub fn module_command(session: &Client) -> Option<(String, mrci_proto::CmdId)> {
    session
        .commands()
        .iter()
        .find(|c| !c.lib.starts_with("MRCI host"))
        .map(|c| (c.name.clone(), c.cmd_id))
}

/// Adds `module` to the host and times its commands, or reports the scenario skipped.
///
/// # Errors
/// Connection failures, or a host that refuses the module.
pub async fn run(
    host: &HostProcess,
    module: Option<&Path>,
    plan: &Plan,
    report: &mut Report,
) -> anyhow::Result<()> {
    let Some(module) = module.filter(|m| m.is_file()) else {
        report.skip(
            SCENARIO,
            "no module executable (cargo xtask bench builds the hello_module example)",
        );
        return Ok(());
    };
    let mut session = host.session().await?;
    let t0 = Instant::now();
    client::ok(
        &mut session,
        "add_mod",
        &format!("-mod_path {}", module.display()),
    )
    .await?;
    let listing = t0.elapsed();
    while module_command(&session).is_none() {
        session
            .recv()
            .await?
            .context("the host closed the connection")?;
    }
    let Some((name, cmd)) = module_command(&session) else {
        anyhow::bail!("the module announced no command");
    };
    let t0 = Instant::now();
    session.call(cmd, "bench").await?;
    let first = t0.elapsed();
    let n = plan.round_trips / 10;
    let mut warm = roundtrip::serial(&mut session, cmd, "bench", n).await?;
    let my_info = client::id(&session, "my_info")?;
    let mut internal = roundtrip::serial(&mut session, my_info, "", n).await?;
    let scenario = format!("{SCENARIO} ({name})");
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    report.row(
        &scenario,
        "add_mod (listing)",
        ms(listing),
        "ms",
        None,
        None,
    );
    report.row(
        &scenario,
        "first call (process start)",
        ms(first),
        "ms",
        None,
        None,
    );
    report.row(
        &scenario,
        &format!("warm median of {n}, baseline = my_info"),
        warm.median_ms().unwrap_or_default(),
        "ms",
        internal.median_ms(),
        Some("within 2x of my_info"),
    );
    report.row(
        &scenario,
        &format!("warm p99 of {n}, baseline = my_info"),
        warm.p99_ms().unwrap_or_default(),
        "ms",
        internal.p99_ms(),
        None,
    );
    Ok(())
}
