//! Host-wide supervisor settings ([`Config`]) and the per-session facts every module process
//! of a session is started with ([`Context`]).

use std::path::PathBuf;

use mrci_proto::{frame::MAX_PAYLOAD, header::Version};

use crate::{confine::Confine, output::OutputLimits, supervisor::Timers};

/// Host-wide settings, shared by every session.
#[derive(Clone, Debug)]
pub struct Config {
    /// A private (0700) directory for module sockets; see [`crate::prepare_runtime_dir`].
    pub runtime_dir: PathBuf,
    /// Connect deadline, idle time and kill grace time.
    pub timers: Timers,
    /// The largest IPC payload a module may send; a larger frame kills the module.
    pub max_payload: usize,
    /// Sent to list-mode modules as HOST_VER (PROTOCOL.md §5.4.1).
    pub host_version: Version,
    /// Frames buffered per instance (while it starts, and while it is slow to read); a full
    /// buffer refuses further frames rather than growing.
    pub queue_len: usize,
    /// Bytes a [`crate::Runner`] holds in each direction between its session and its
    /// processes (client frames on their way to modules; module frames on their way to the
    /// session). A full module-to-session budget pauses reading the modules' sockets; a full
    /// session-to-module budget answers [`crate::Routed::Busy`]. A single frame larger than
    /// the budget is admitted alone. Default 4 MiB.
    pub queue_bytes: usize,
    /// Launcher, resource limits and user of module processes; none by default.
    pub confine: Confine,
    /// How much of a module's stdout and stderr is logged.
    pub output: OutputLimits,
    /// Run-mode processes a [`crate::Runner`] keeps at once (PROTOCOL.md §5.5.1).
    pub max_instances: usize,
}

impl Config {
    /// Defaults (seed timers, the protocol's payload limit, 64 frames and 4 MiB per queue,
    /// 64 instances, no launcher) with the given socket directory and host version. The
    /// default [`Confine::limits`] apply once a launcher is set.
    pub fn new(runtime_dir: impl Into<PathBuf>, host_version: Version) -> Self {
        Self {
            runtime_dir: runtime_dir.into(),
            timers: Timers::default(),
            max_payload: MAX_PAYLOAD,
            host_version,
            queue_len: 64,
            max_instances: 64,
            queue_bytes: 4 << 20,
            confine: Confine::default(),
            output: OutputLimits::default(),
        }
    }
}

/// What every module process of one session is started with.
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// The session shared-memory key, passed as `-mem_ses`.
    pub mem_ses: String,
    /// The host shared-memory key, passed as `-mem_host`.
    pub mem_host: String,
    /// The working directory of new processes (the session's current directory), or the
    /// host's when `None`.
    pub cwd: Option<PathBuf>,
    /// A short prefix for socket file names, such as the session id in hex (at most 56
    /// characters keeps paths within the socket limit under a short runtime directory).
    pub tag: String,
}
