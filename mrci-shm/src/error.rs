//! The error type of the shared-memory crate.

use std::io;

/// What can go wrong creating, attaching or locking a segment.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system call failed.
    #[error("{op} failed: {source}")]
    Os {
        /// The call that failed.
        op: &'static str,
        /// The error it returned.
        source: io::Error,
    },
    /// The key is not a name this crate creates (`/mrci-…`, no further slashes).
    #[error("invalid shared-memory key {0:?}")]
    BadKey(String),
    /// The segment is smaller than the seed layout plus this crate's extension.
    #[error("segment is {got} bytes, expected at least {expected}")]
    BadSize {
        /// The size required.
        expected: usize,
        /// The size found.
        got: usize,
    },
    /// The segment's extension (magic, version, layout size) does not describe the expected
    /// layout.
    #[error("segment header mismatch: {0}")]
    BadHeader(&'static str),
    /// The lock could not be taken (for example, this thread already holds it).
    #[error("lock failed: {0}")]
    Lock(io::Error),
}

/// Result with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn os(op: &'static str) -> impl FnOnce(nix::Error) -> Error {
    move |e| Error::Os {
        op,
        source: io::Error::from(e),
    }
}
