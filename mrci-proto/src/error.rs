//! The error type of the wire crate. Decoding errors describe what was wrong with the bytes;
//! none of them is ever a panic.

use std::io;

/// Everything that can go wrong while decoding or validating MRCI data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A length field announced more than the configured maximum payload.
    #[error("frame payload of {len} bytes exceeds the maximum of {max}")]
    FrameTooLarge {
        /// The announced payload length.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// A fixed-size value had the wrong number of bytes.
    #[error("{what} must be {expected} bytes, got {got}")]
    BadLength {
        /// What was being read.
        what: &'static str,
        /// The required size.
        expected: usize,
        /// The size found.
        got: usize,
    },
    /// A value was shorter than its layout requires.
    #[error("{what} is truncated")]
    Truncated {
        /// What was being read.
        what: &'static str,
    },
    /// The client header did not start with `MRCI`.
    #[error("client header tag is not MRCI")]
    BadTag,
    /// A value was malformed in a way the other variants do not cover.
    #[error("invalid {what}: {why}")]
    Invalid {
        /// What was being read.
        what: &'static str,
        /// Why it was rejected.
        why: String,
    },
    /// An IO error from the stream under a codec (required by tokio-util's `Decoder`).
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Result with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
