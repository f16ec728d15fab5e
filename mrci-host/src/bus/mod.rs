//! The in-process bus through which sessions deliver async commands to each other
//! (PROTOCOL.md §4.5, STYLE.md §2.4).
//!
//! The routing decision is made by the pure [`BusState`]; [`Bus`] wraps it with each session's
//! inbox and delivers with `try_send`, never awaiting while it holds its lock. A std mutex
//! replaces an actor task here: the critical section is a map lookup plus non-blocking sends,
//! so it is shorter than a channel hop, and one sender's events stay in send order.
//!
//! Delivery policy: inboxes are bounded. An event that [`Event::is_droppable`] is dropped and
//! counted when the receiver's inbox is full; any other event is never dropped, so a session
//! whose inbox is full of those is too slow to keep consistent and is cancelled instead.
//!
//! Invariant: the bus is the sole owner of the session registry; it never touches SQLite.

mod event;
mod state;

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicU64, Ordering},
};

use mrci_proto::{SessionId, UserId};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use event::Event;
pub use state::BusState;

/// What a session's inbox receives.
pub type Delivery = Arc<Event>;

struct Link {
    tx: mpsc::Sender<Delivery>,
    cancel: CancellationToken,
}

#[derive(Default)]
struct Inner {
    state: BusState,
    links: std::collections::HashMap<SessionId, Link>,
}

/// Cloneable handle to the bus shared by every session.
#[derive(Clone, Default)]
pub struct Bus {
    inner: Arc<Mutex<Inner>>,
    dropped: Arc<AtomicU64>,
}

/// Counters the operator can read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BusStats {
    /// Registered (ready) sessions.
    pub sessions: usize,
    /// Sessions logged in as some user.
    pub logged_in: usize,
    /// Droppable deliveries discarded because a receiver's inbox was full.
    pub dropped: u64,
}

impl Bus {
    /// A new, empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the maps half-updated in a way that
        // matters more than losing the host, so a poisoned lock is simply taken over.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a ready session with its inbox and cancellation token.
    pub fn register(
        &self,
        sid: SessionId,
        tx: mpsc::Sender<Delivery>,
        cancel: CancellationToken,
    ) -> bool {
        let mut inner = self.lock();
        if !inner.state.register(sid) {
            return false;
        }
        inner.links.insert(sid, Link { tx, cancel });
        true
    }

    /// Removes a session.
    pub fn unregister(&self, sid: &SessionId) {
        let mut inner = self.lock();
        inner.state.unregister(sid);
        inner.links.remove(sid);
    }

    /// Records the user a session is logged in as.
    pub fn set_user(&self, sid: &SessionId, user: Option<UserId>) {
        self.lock().state.set_user(sid, user);
    }

    /// Delivers to one session. Returns false if it is not registered.
    pub fn to_session(&self, sid: &SessionId, event: Event) -> bool {
        let inner = self.lock();
        let delivery = Arc::new(event);
        match inner.links.get(sid) {
            Some(link) => {
                self.deliver(link, &delivery);
                true
            }
            None => false,
        }
    }

    /// Delivers to every session logged in as `uid`. Returns how many it reached.
    pub fn to_user(&self, uid: &UserId, event: Event) -> usize {
        let inner = self.lock();
        let delivery = Arc::new(event);
        let targets = inner.state.sessions_of(uid);
        for sid in &targets {
            if let Some(link) = inner.links.get(sid) {
                self.deliver(link, &delivery);
            }
        }
        targets.len()
    }

    /// Delivers to every session but `origin`, then (with `feedback`) to `origin` itself last,
    /// as PUB_IPC and PUB_IPC_WITH_FEEDBACK do (PROTOCOL.md §4.1).
    pub fn broadcast(&self, origin: Option<&SessionId>, feedback: bool, event: Event) {
        let inner = self.lock();
        let delivery = Arc::new(event);
        for sid in inner.state.all_except(origin) {
            if let Some(link) = inner.links.get(&sid) {
                self.deliver(link, &delivery);
            }
        }
        if let (true, Some(origin)) = (feedback, origin)
            && let Some(link) = inner.links.get(origin)
        {
            self.deliver(link, &delivery);
        }
    }

    fn deliver(&self, link: &Link, delivery: &Delivery) {
        match link.tx.try_send(Arc::clone(delivery)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(_)) if delivery.is_droppable() => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(event = ?delivery, "session inbox full of events that cannot be dropped; ending the session");
                link.cancel.cancel();
            }
        }
    }

    /// Counters for the operator.
    pub fn stats(&self) -> BusStats {
        let inner = self.lock();
        BusStats {
            sessions: inner.state.len(),
            logged_in: inner.state.logged_in(),
            dropped: self.dropped.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sid(n: u8) -> SessionId {
        SessionId([n; 28])
    }

    #[tokio::test]
    async fn broadcast_with_feedback_reaches_the_origin_last() {
        let bus = Bus::new();
        let mut rx = Vec::new();
        for n in 1..=3 {
            let (tx, r) = mpsc::channel(4);
            bus.register(sid(n), tx, CancellationToken::new());
            rx.push(r);
        }
        bus.broadcast(Some(&sid(2)), false, Event::CmdRanksChanged);
        assert!(rx[0].try_recv().is_ok());
        assert!(
            rx[1].try_recv().is_err(),
            "origin excluded without feedback"
        );
        assert!(rx[2].try_recv().is_ok());
        bus.broadcast(Some(&sid(2)), true, Event::CmdRanksChanged);
        assert!(rx[1].try_recv().is_ok());
    }

    #[tokio::test]
    async fn a_full_inbox_drops_droppable_events_and_cancels_on_the_others() {
        let bus = Bus::new();
        let (tx, _rx) = mpsc::channel(1);
        let cancel = CancellationToken::new();
        bus.register(sid(1), tx, cancel.clone());
        bus.to_session(
            &sid(1),
            Event::SysMsg {
                text: "a".into(),
                is_err: false,
            },
        );
        bus.to_session(
            &sid(1),
            Event::SysMsg {
                text: "b".into(),
                is_err: false,
            },
        );
        assert_eq!(bus.stats().dropped, 1);
        assert!(!cancel.is_cancelled());
        bus.to_session(&sid(1), Event::EndSession);
        assert!(cancel.is_cancelled());
    }
}
