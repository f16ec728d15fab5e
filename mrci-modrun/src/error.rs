//! The crate's one error type. Module misbehaviour during a run is not an `Err`: it is an
//! [`crate::Event`]; an `Err` means the supervisor could not do what it was asked.

use std::{io, path::PathBuf, process::ExitStatus};

/// Everything that can go wrong while starting, listing or talking to a module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The runtime directory for module sockets is missing, not a directory, or open to
    /// other users.
    #[error("runtime directory {path} is unusable: {why}")]
    RuntimeDir {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// A socket path would not fit in `sockaddr_un` (107 bytes).
    #[error("socket path {0} is longer than 107 bytes")]
    PathTooLong(PathBuf),
    /// The module executable could not be started.
    #[error("cannot start module {exe}: {source}")]
    Spawn {
        /// The executable.
        exe: PathBuf,
        /// Why the operating system refused.
        source: io::Error,
    },
    /// The module did not connect to its socket before the connect deadline.
    #[error("module {0} did not connect in time")]
    NeverConnected(PathBuf),
    /// The module exited before connecting to its socket.
    #[error("module {exe} exited before connecting ({status})")]
    ExitedEarly {
        /// The executable.
        exe: PathBuf,
        /// How it ended.
        status: ExitStatus,
    },
    /// A list-mode module broke the IPC framing (oversize or malformed frame) and was killed.
    #[error("module {exe} broke the IPC protocol: {why}")]
    Protocol {
        /// The executable.
        exe: PathBuf,
        /// What it did.
        why: String,
    },
    /// The configured module user or group does not exist.
    #[error("no such {kind} {name} for module processes")]
    UnknownAccount {
        /// `user` or `group`.
        kind: &'static str,
        /// The name looked up.
        name: String,
    },
    /// The launcher could not confine itself (a limit, `no_new_privs` or the user switch).
    #[error("cannot confine the module process: {step}: {source}")]
    Confine {
        /// What was being done.
        step: &'static str,
        /// Why the operating system refused.
        source: io::Error,
    },
    /// A module program was started with options it cannot use (module side).
    #[error("bad module options: {0}")]
    Usage(String),
    /// The peer sent bytes that do not decode (module side).
    #[error(transparent)]
    Proto(#[from] mrci_proto::Error),
    /// An IO error on a socket or process.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Result with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
