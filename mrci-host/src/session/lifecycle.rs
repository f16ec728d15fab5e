//! A session's life: its cancellation, its place in the host's admission, and its login
//! deadline (a session that does not log in in time is told why and closed).
//!
//! Invariant: the admission stage follows the login state exactly (`Ready` while not logged
//! in, `LoggedIn` while logged in), and a login deadline runs exactly while not logged in.

use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::admission::{Stage, Ticket};

/// See the module docs.
pub(crate) struct Lifecycle {
    cancel: CancellationToken,
    ticket: Ticket,
    login_timeout: Duration,
    login_deadline: Option<Instant>,
}

impl Lifecycle {
    /// A new session's life: not logged in, its deadline running.
    pub(crate) fn new(cancel: CancellationToken, ticket: Ticket, login_timeout: Duration) -> Self {
        Self {
            cancel,
            ticket,
            login_timeout,
            login_deadline: Some(Instant::now() + login_timeout),
        }
    }

    /// The session logged in.
    pub(crate) fn logged_in(&mut self) {
        self.ticket.set_stage(Stage::LoggedIn);
        self.login_deadline = None;
    }

    /// The session logged out: it counts as not logged in again and has a new deadline.
    pub(crate) fn logged_out(&mut self) {
        self.ticket.set_stage(Stage::Ready);
        self.login_deadline = Some(Instant::now() + self.login_timeout);
    }

    /// How long a session may stay without logging in.
    pub(crate) fn login_timeout(&self) -> Duration {
        self.login_timeout
    }

    /// Completes when the login deadline passes; never while logged in.
    pub(crate) async fn login_expired(&self) {
        match self.login_deadline {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    }

    /// Asks the session to end.
    pub(crate) fn end(&self) {
        self.cancel.cancel();
    }

    /// Completes when the session was asked to end.
    pub(crate) async fn ending(&self) {
        self.cancel.cancelled().await;
    }
}
