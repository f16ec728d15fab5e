//! Supervises MRCI module processes (PROTOCOL.md §5, seeds 001/004 §2) and gives module
//! authors a small API to write them.
//!
//! # For the host
//!
//! Once per host: build a [`Config`] (socket directory, made private with
//! [`prepare_runtime_dir`]; timers; payload limit; HOST_VER). Once per session: a
//! [`Context`] (shared-memory keys, working directory, socket name tag).
//!
//! - **List mode**: [`list_commands`]`(cfg, &ctx, exe, ListMode::Public, &taken).await`
//!   starts the module with `-public_cmds` (or `-exempt_cmds`, `-user_cmds`), sends HOST_VER,
//!   keeps only valid NEW_CMD frames and logs ERR texts, and returns a [`Listing`]: each
//!   [`ListedCommand`] has the module's [`NewCmd`](mrci_proto::payload::NewCmd) (real name)
//!   and a unique name (§5.4.3 suffix rule, see [`unique_name`]). Errors say why a module
//!   could not be listed (never connected, exited early, broke the framing).
//! - **Run mode**: a [`Runner`] per session. [`Runner::route`] sends a client frame to the
//!   (command id, branch id) pair's process, starting one with `-run_cmd` on first use and
//!   queueing frames until it connects; control frames never start a process
//!   ([`Routed::NoInstance`]). [`Runner::next_event`] (cancel-safe, for the session's
//!   `select!`) yields [`Event::Output`] frames for the client, [`Event::Request`] validated
//!   async requests ([`ModuleRequest`], route by [`ModuleRequest::scope`]) and one
//!   [`Event::Ended`] per process, whose [`Ended::client_error`] says whether the client
//!   needs ERR + IDLE and whose [`ExitCause::is_failure`] whether to report
//!   ASYNC_EXE_CRASH. [`Runner::stop`], [`Runner::stop_command`] and [`Runner::shutdown`]
//!   end processes with KILL_CMD and a forced kill after the grace time.
//!
//! Every process, in both modes, is watched by a [`Supervisor`]: it must connect within the
//! connect deadline, gets KILL_CMD after 2 minutes without pipe traffic and SIGKILL to its
//! process group 3 seconds later (seed 001), and is force-killed at once if it sends a frame
//! over [`Config::max_payload`]. Sockets are unlinked once connected or when the process
//! ends; processes are reaped and started with `kill_on_drop`.
//!
//! Bounds (issues 12 and 16): with a launcher in [`Config::confine`], every process runs
//! under resource limits, with `no_new_privs`, and as an unprivileged user when the host is
//! root ([`confine`]; a limit that ends a module is reported like a crash, SIGXCPU as
//! [`ExitCause::CpuLimit`]). Frames between a session and its processes are bounded in bytes
//! per direction ([`Config::queue_bytes`]): a full budget stops reading the modules' sockets.
//! Module stdout and stderr are logged line by line with a length cap and a rate limit
//! ([`OutputLimits`]).
//!
//! # For module authors
//!
//! The module guide, [`guide`] (`MODULES.md` in this crate's directory), has the whole
//! contract (options, frames, timers, the shared-memory layout and its lock-free read
//! recipe, async requests) and a walkthrough in Rust, Python, shell and C; the kits for the
//! other languages are in `kits/`.
//!
//! [`module`] has [`ModuleArgs::from_env`], a blocking [`module::Pipe`] and
//! [`module::serve`], which answers the list modes and runs commands; see
//! `examples/hello_module.rs`. Session data is read with `mrci_shm::SessionShm::attach`.
//!
//! A module needs only that part: depend on this crate with `default-features = false`,
//! which leaves out the default `host` feature (everything above) and with it nix, tokio's
//! runtime and tracing.
//!
//! # Layout
//!
//! Always built: [`args`], the command line shared by host and module; [`module`], the author
//! API; the error type. With the `host` feature:
//! - [`supervisor`]: the pure lifecycle and timer state machine (time passed in).
//! - `driver`: the tokio task that runs one process around a supervisor; `reader` reads its
//!   frames within the byte budget (`budget`).
//! - [`filter`]: which module frames are accepted in each mode; async request validation.
//! - `list`, `run`: the two modes; `process`: sockets, spawning, process groups; `output`:
//!   stdout and stderr; [`confine`]: the launcher and its limits.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// The crate docs above describe the host side too; without it their links have no target.
#![cfg_attr(not(feature = "host"), allow(rustdoc::broken_intra_doc_links))]

pub mod args;
mod error;
#[doc = include_str!("../MODULES.md")]
pub mod guide {}
pub mod module;

pub use args::{ListMode, Mode, ModuleArgs};
pub use error::{Error, Result};

#[cfg(feature = "host")]
mod budget;
#[cfg(feature = "host")]
mod config;
#[cfg(feature = "host")]
pub mod confine;
#[cfg(feature = "host")]
mod driver;
#[cfg(feature = "host")]
mod ended;
#[cfg(feature = "host")]
pub mod filter;
#[cfg(feature = "host")]
mod list;
#[cfg(feature = "host")]
mod output;
#[cfg(feature = "host")]
mod process;
#[cfg(feature = "host")]
mod reader;
#[cfg(feature = "host")]
mod run;
#[cfg(feature = "host")]
pub mod supervisor;

#[cfg(feature = "host")]
pub use {
    config::{Config, Context},
    confine::{Confine, Launcher, Limits, RunAs},
    ended::Ended,
    filter::{ExtRequest, ModuleRequest, Request},
    list::{ListedCommand, Listing, list_commands, unique_name},
    output::{OutputLimits, OutputStats},
    process::prepare_runtime_dir,
    run::{Event, InstanceKey, Paced, Routed, Runner, Target},
    supervisor::{ExitCause, Supervisor, Timers},
};

/// The ERR text for a command whose process could not be started (PROTOCOL.md §2.5).
pub const FAILED_TO_START: &str =
    "err: The command failed to start. error details were logged for admin review.\n";
