//! How a module process ended ([`Ended`]), and what that means in words for the log and the
//! client: the cause, the exit status or signal, and, for a confined process, which limit a
//! signal most likely stands for.
//!
//! Invariant: a limit is named as certain only where the signal proves it (SIGXCPU); every
//! other attribution is worded as a likelihood.

use std::{fmt, os::unix::process::ExitStatusExt, process::ExitStatus};

use nix::sys::signal::Signal;

use crate::{output::OutputStats, supervisor::ExitCause};

/// How a module process ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ended {
    /// Why, as far as the supervisor knows.
    pub cause: ExitCause,
    /// The exit status, if it could be read.
    pub status: Option<ExitStatus>,
    /// Whether the module ever connected to its socket.
    pub connected: bool,
    /// Whether a task was left without IDLE (frames were sent or queued after the last IDLE).
    pub task_open: bool,
    /// The process id it had.
    pub pid: u32,
    /// Whether it ran under the launcher's limits (`crate::confine`).
    pub confined: bool,
    /// What became of its stdout and stderr lines.
    pub output: OutputStats,
}

impl Ended {
    /// The ERR text the host sends before an IDLE on the pair when a task was left open
    /// (PROTOCOL.md §2.5), or `None` when the client is not waiting for anything.
    pub fn client_error(&self) -> Option<&'static str> {
        if !self.task_open {
            None
        } else if self.connected {
            Some(
                "err: The command has stopped unexpectedly or it has failed to send an IDLE \
                 frame before exiting.\n",
            )
        } else {
            Some("err: The command failed to start. error details were logged for admin review.\n")
        }
    }

    /// The signal that ended the process, if one did.
    pub fn signal(&self) -> Option<i32> {
        self.status.and_then(|s| s.signal())
    }
}

impl fmt::Display for Ended {
    /// One line for the log, such as "crashed (killed by SIGABRT; …)".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.cause {
            ExitCause::Finished => "finished",
            ExitCause::Crashed => "crashed",
            ExitCause::IdleStopped => "stopped after being idle",
            ExitCause::Stopped => "stopped",
            ExitCause::ForceKilled => "force-killed after ignoring KILL_CMD",
            ExitCause::NeverConnected => "never connected",
            ExitCause::Protocol => "force-killed for breaking the IPC framing",
            ExitCause::SpawnFailed => "could not be started",
            ExitCause::CpuLimit => "ended at its CPU-time limit",
        };
        f.write_str(what)?;
        match (self.status, self.signal()) {
            (_, Some(sig)) => {
                let name = Signal::try_from(sig).map_or("an unknown signal", Signal::as_str);
                write!(f, " (killed by {name}")?;
                if let Some(hint) = self.hint(sig) {
                    write!(f, "; {hint}")?;
                }
                f.write_str(")")
            }
            (Some(status), None) if !status.success() => {
                write!(f, " (exit status {})", status.code().unwrap_or(-1))
            }
            _ => Ok(()),
        }
    }
}

impl Ended {
    /// What a signal the host did not send most likely means for a confined process.
    fn hint(&self, sig: i32) -> Option<&'static str> {
        if !self.confined || self.cause != ExitCause::Crashed {
            return None;
        }
        match Signal::try_from(sig).ok()? {
            Signal::SIGABRT | Signal::SIGSEGV | Signal::SIGBUS => {
                Some("a failed allocation at the address-space limit often ends a module this way")
            }
            Signal::SIGKILL => Some(
                "not sent by the host: the CPU-time hard limit or the kernel's out-of-memory \
                 killer",
            ),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ended(cause: ExitCause, raw: i32, confined: bool) -> Ended {
        Ended {
            cause,
            status: Some(ExitStatus::from_raw(raw)),
            connected: true,
            task_open: true,
            pid: 1,
            confined,
            output: OutputStats::default(),
        }
    }

    #[test]
    fn descriptions_name_the_signal_and_hint_only_at_likely_limits() {
        let abort = ended(ExitCause::Crashed, 6, true);
        assert_eq!(abort.signal(), Some(6));
        let text = abort.to_string();
        assert!(
            text.starts_with("crashed (killed by SIGABRT; a failed allocation"),
            "{text}"
        );
        assert_eq!(
            ended(ExitCause::Crashed, 6, false).to_string(),
            "crashed (killed by SIGABRT)"
        );
        assert_eq!(
            ended(ExitCause::CpuLimit, 24, true).to_string(),
            "ended at its CPU-time limit (killed by SIGXCPU)"
        );
        assert!(
            ended(ExitCause::Crashed, 9, true)
                .to_string()
                .contains("hard limit")
        );
        assert_eq!(
            ended(ExitCause::Crashed, 2 << 8, true).to_string(),
            "crashed (exit status 2)"
        );
        assert_eq!(ended(ExitCause::Finished, 0, true).to_string(), "finished");
    }
}
