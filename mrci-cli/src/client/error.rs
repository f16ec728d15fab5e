//! The client library's one error type. Connection-level failures (network, handshake,
//! trust) and the few command-level ones a helper reports ([`Error::UnknownCommand`], a
//! refused login) are separate variants, so a caller can tell "try again later" from "this
//! certificate is not the one you pinned".

use std::{io, time::Duration};

use mrci_proto::header::Reply;

/// An error from a store of pinned certificates (see [`super::PinStore`]).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong while connecting to a host or talking to it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A `HOST[:PORT]` text that is not an address.
    #[error("invalid address {input:?}: {why}")]
    InvalidTarget {
        /// The text given.
        input: String,
        /// What is wrong with it.
        why: String,
    },
    /// The TCP connection could not be made.
    #[error("cannot connect to {target}")]
    Connect {
        /// `host:port`.
        target: String,
        /// The socket error.
        #[source]
        source: io::Error,
    },
    /// A socket error after the connection was made.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The host sent bytes that are not valid MRCI (header, frame or payload).
    #[error("protocol error: {0}")]
    Protocol(mrci_proto::Error),
    /// The host closed the connection during the handshake.
    #[error("{target} closed the connection during the handshake")]
    ClosedInHandshake {
        /// `host:port`.
        target: String,
    },
    /// Reply 4: the host has no certificate for the common name asked for.
    #[error("{target} has no certificate for the common name {common_name:?}")]
    NoCertificate {
        /// `host:port`.
        target: String,
        /// The common name sent in the client header.
        common_name: String,
    },
    /// Reply 3 or an unknown reply code.
    #[error("{target} refused the session (reply {reply:?})")]
    Refused {
        /// `host:port`.
        target: String,
        /// The reply code.
        reply: Reply,
    },
    /// The host offered a plaintext session from an address that is not loopback; hosts
    /// offer plaintext to loopback peers only, so this is refused as a downgrade.
    #[error("{target} offered an unencrypted session, accepted only on a loopback address")]
    PlaintextRefused {
        /// `host:port`.
        target: String,
    },
    /// The host asked for TLS but the client was set up for plaintext only.
    #[error("{target} requires TLS, but the client was set up for a plaintext loopback session")]
    TlsRequired {
        /// `host:port`.
        target: String,
    },
    /// The certificate is not the pinned one: a man-in-the-middle or a replaced certificate.
    #[error(
        "the certificate of {host} has changed: it has the SHA-256 fingerprint {presented}, \
         but {pinned} is pinned"
    )]
    PinMismatch {
        /// `host:port`.
        host: String,
        /// The fingerprint of the certificate the host presented.
        presented: String,
        /// The fingerprint that was expected.
        pinned: String,
    },
    /// A host seen for the first time whose certificate the pin store did not accept.
    #[error("the certificate of {host} (SHA-256 {fingerprint}) was not accepted")]
    NotAccepted {
        /// `host:port`.
        host: String,
        /// The fingerprint of its certificate.
        fingerprint: String,
    },
    /// The pin store failed (for example a known-hosts file that cannot be read).
    #[error(transparent)]
    PinStore(BoxError),
    /// A fingerprint text that is not 32 hex bytes.
    #[error("invalid SHA-256 fingerprint {0:?}")]
    InvalidFingerprint(String),
    /// The HOST_CERT payload or a CA file holds no usable certificate.
    #[error("unusable certificate: {0}")]
    Certificate(String),
    /// The TLS configuration could not be built or the name is not valid for TLS.
    #[error("TLS setup failed: {0}")]
    TlsSetup(String),
    /// The TLS handshake failed (including a certificate the verifier refused).
    #[error("TLS handshake with {target} failed")]
    Tls {
        /// `host:port`.
        target: String,
        /// The TLS error.
        #[source]
        source: io::Error,
    },
    /// No ASYNC_RDY within the ready timeout.
    #[error("the host did not become ready within {0:?}")]
    NotReady(Duration),
    /// No frame within the read timeout.
    #[error("no frame from the host within {0:?}")]
    Timeout(Duration),
    /// The host closed the connection where a frame was needed.
    #[error("the host closed the connection")]
    Closed,
    /// The host has not announced a command of this name.
    #[error("the host offers no command {0:?}")]
    UnknownCommand(String),
    /// A file transfer the host refused or ended early (its ERR texts, or what went wrong).
    #[error("transfer failed: {0}")]
    Transfer(String),
    /// `auth` ended without granting access.
    #[error("login refused: {}", errors.join("; "))]
    LoginRefused {
        /// The ERR texts the host sent.
        errors: Vec<String>,
    },
    /// `auth` asked for something the login helper cannot answer (a forced password change
    /// without a new password, or a forced user-name change); the login was cancelled.
    #[error("the host asks for more before granting access: {prompt}")]
    LoginPrompt {
        /// The host's prompt.
        prompt: String,
    },
}

impl From<mrci_proto::Error> for Error {
    fn from(e: mrci_proto::Error) -> Self {
        match e {
            mrci_proto::Error::Io(e) => Self::Io(e),
            other => Self::Protocol(other),
        }
    }
}

/// Result with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
