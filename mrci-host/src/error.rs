//! The host's error type. Most failures a client causes are replies (ERR frames), not errors;
//! an `Err` ends at most the session or command it came from.

use std::io;

/// Everything that can go wrong inside the host.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An IO failure (sockets, files).
    #[error(transparent)]
    Io(#[from] io::Error),
    /// A database failure.
    #[error("database: {0}")]
    Sqlx(#[from] sqlx::Error),
    /// A migration failed.
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Bad bytes from a peer.
    #[error("protocol: {0}")]
    Proto(#[from] mrci_proto::Error),
    /// Certificate or TLS configuration problems.
    #[error("tls: {0}")]
    Tls(String),
    /// The configuration is unusable.
    #[error("configuration: {0}")]
    Config(String),
    /// Password hashing failed.
    #[error("password hashing: {0}")]
    Password(String),
    /// A mail could not be built or sent.
    #[error("mail: {0}")]
    Mail(String),
    /// An operator request was invalid (bad name, no such user, name taken).
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// True when the database could not be reached (connection refused or lost, no
    /// connection free in time), as opposed to a statement it refused: the condition a
    /// PostgreSQL outage produces, which ends when the database returns.
    pub fn is_db_unreachable(&self) -> bool {
        matches!(
            self,
            Self::Sqlx(
                sqlx::Error::Io(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Tls(_)
                    | sqlx::Error::Protocol(_)
                    | sqlx::Error::WorkerCrashed
            )
        )
    }

    /// True for a peer that went away (end of stream, reset, broken pipe): how clients
    /// usually leave, logged quietly rather than as a failure.
    pub fn is_disconnect(&self) -> bool {
        matches!(self, Self::Io(e) if matches!(
            e.kind(),
            io::ErrorKind::UnexpectedEof
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
        ))
    }
}

/// Result with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
