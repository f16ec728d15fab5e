//! List mode (PROTOCOL.md §5.4): start a module with `-public_cmds`, `-exempt_cmds` or
//! `-user_cmds`, send HOST_VER when it connects, and collect its valid NEW_CMD frames.
//!
//! Invariant: a [`Listing`] holds only commands whose NEW_CMD parsed (at least 259 bytes, a
//! valid name), each real name once, and unique names that collide neither with the
//! caller's taken names nor with each other (§5.4.3).

use std::{collections::HashSet, path::Path, sync::Arc};

use mrci_proto::payload::NewCmd;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::{
    args::{ListMode, Mode, ModuleArgs},
    budget::Budget,
    config::{Config, Context},
    driver::{Driver, DriverEvent, Report},
    ended::Ended,
    error::{Error, Result},
    filter::Classified,
    process::{self, Process},
    supervisor::ExitCause,
};

/// A command a module announced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedCommand {
    /// The name the client sees: the real name, or `name_1`, `name_2`, … if it was taken.
    pub unique_name: String,
    /// The module's announcement; `cmd.name` is the real name (for `-run_cmd`), `cmd.cmd_id`
    /// the module's placeholder.
    pub cmd: NewCmd,
}

/// The outcome of one list-mode run.
#[derive(Clone, Debug)]
pub struct Listing {
    /// Accepted commands, in the order the module sent them.
    pub commands: Vec<ListedCommand>,
    /// ERR texts the module sent (already logged).
    pub errors: Vec<String>,
    /// How the process ended.
    pub ended: Ended,
}

/// The unique name rule of PROTOCOL.md §5.4.3: `name` if it is free, else the first free
/// one of `name_1`, `name_2`, ….
pub fn unique_name(name: &str, taken: impl Fn(&str) -> bool) -> String {
    if !taken(name) {
        return name.to_owned();
    }
    (1u64..)
        .map(|n| format!("{name}_{n}"))
        .find(|candidate| !taken(candidate))
        .expect("some suffix is free")
}

/// Runs `exe` in list mode and returns the commands it announced. `taken` holds the unique
/// names already loaded in the session (from any module); duplicates get suffixes.
///
/// The module should exit after listing; a module that stays silent for the idle time gets
/// KILL_CMD and is force-killed after the grace time, and what it listed still counts.
///
/// # Errors
/// [`Error::Spawn`] or a socket error if it cannot be started, [`Error::NeverConnected`] if
/// it does not connect within the connect deadline, [`Error::ExitedEarly`] if it exits
/// without connecting, [`Error::Protocol`] if it breaks the IPC framing.
pub async fn list_commands(
    cfg: Arc<Config>,
    ctx: &Context,
    exe: &Path,
    mode: ListMode,
    taken: &HashSet<String>,
) -> Result<Listing> {
    let (listener, socket) = process::bind(&cfg, &format!("{}-mod", ctx.tag))?;
    let args = ModuleArgs {
        mode: Mode::List(mode),
        pipe: socket.path().to_path_buf(),
        mem_ses: ctx.mem_ses.clone(),
        mem_host: ctx.mem_host.clone(),
    };
    let process = Process::spawn(&cfg, exe, &args, ctx.cwd.as_deref())?;
    let (out, mut rx) = mpsc::channel(64);
    // Kept alive until the listing ends: dropping it (caller cancelled) stops the module.
    let (_inputs, inputs_rx) = mpsc::channel(1);
    let driver = Driver {
        serial: 0,
        process,
        listener: Some(listener),
        socket: Some(socket),
        list_mode: true,
        cfg: Arc::clone(&cfg),
        inputs: inputs_rx,
        stop: CancellationToken::new(),
        out,
        budget: Budget::new(cfg.queue_bytes),
    };
    tokio::spawn(driver.run());
    let mut names = taken.clone();
    let mut real = HashSet::new();
    let (mut commands, mut errors) = (Vec::new(), Vec::new());
    while let Some(Report { event, .. }) = rx.recv().await {
        match event {
            DriverEvent::Item(Classified::NewCmd(cmd)) => {
                if !real.insert(cmd.name.clone()) {
                    warn!(exe = %exe.display(), "NEW_CMD {} listed twice; the repeat is ignored", cmd.name);
                    continue;
                }
                let unique = unique_name(&cmd.name, |n| names.contains(n));
                names.insert(unique.clone());
                debug!(exe = %exe.display(), name = %cmd.name, %unique, "command listed");
                commands.push(ListedCommand {
                    unique_name: unique,
                    cmd,
                });
            }
            DriverEvent::Item(Classified::ErrText(text)) => errors.push(text),
            DriverEvent::Item(_) => {}
            DriverEvent::Ended(ended) => return finish(exe, commands, errors, ended),
        }
    }
    // Only reached if the runtime is shutting down under us.
    Err(Error::Io(std::io::Error::other(
        "module supervisor task ended early",
    )))
}

fn finish(
    exe: &Path,
    commands: Vec<ListedCommand>,
    errors: Vec<String>,
    ended: Ended,
) -> Result<Listing> {
    let exe = exe.to_path_buf();
    match (ended.cause, ended.status) {
        (ExitCause::NeverConnected, _) => Err(Error::NeverConnected(exe)),
        (ExitCause::Protocol, _) => Err(Error::Protocol {
            exe,
            why: "oversize or malformed IPC frame".into(),
        }),
        (_, Some(status)) if !ended.connected => Err(Error::ExitedEarly { exe, status }),
        _ => Ok(Listing {
            commands,
            errors,
            ended,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_follow_the_suffix_rule() {
        let taken: HashSet<String> = ["echo", "echo_1", "ls"].map(String::from).into();
        assert_eq!(unique_name("cat", |n| taken.contains(n)), "cat");
        assert_eq!(unique_name("ls", |n| taken.contains(n)), "ls_1");
        assert_eq!(unique_name("echo", |n| taken.contains(n)), "echo_2");
    }
}
