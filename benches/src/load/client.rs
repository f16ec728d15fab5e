//! The load generator's use of the client library (`mrci_cli::client`): the options every
//! load session connects with, and two helpers for commands that must succeed.
//!
//! Sessions to the host trust on first use with pins in memory: the first connect pins the
//! certificate HOST_CERT announces, later ones must present the same one and share one TLS
//! configuration, as a client with a certificate cache would.

use std::time::Duration;

use anyhow::{Context, bail};
use mrci_cli::client::{Client, ConnectOptions, Trust};
use mrci_proto::CmdId;

/// How long the generator waits for a frame it expects before calling it an error.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Connect options for the sessions to one host; clones share the pin and the TLS
/// configuration.
pub fn options() -> ConnectOptions {
    ConnectOptions::new(Trust::first_use_in_memory())
        .app_name("mrci-load")
        .common_name("localhost")
        .ready_timeout(PATIENCE)
        .read_timeout(Some(PATIENCE))
}

/// The id of an announced command.
///
/// # Errors
/// If the host has not announced it.
pub fn id(client: &Client, name: &str) -> anyhow::Result<CmdId> {
    client
        .commands()
        .id(name)
        .with_context(|| format!("the host did not announce {name}"))
}

/// Runs an announced command and fails if it answers with ERR.
///
/// # Errors
/// An unannounced command, an ERR answer, or a connection failure.
pub async fn ok(client: &mut Client, name: &str, text: &str) -> anyhow::Result<()> {
    let out = client.run(name, text).await?;
    if let Some(err) = out.errors().first() {
        bail!("{name} {text}: {err}");
    }
    Ok(())
}
