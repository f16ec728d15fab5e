//! The in-process bus through which sessions deliver async commands to each other
//! (PROTOCOL.md §4.5, STYLE.md §2.4).
//!
//! The routing decision is made by the pure [`BusState`]; [`Bus`] wraps it with each session's
//! inbox and delivers with `try_send`, never awaiting while it holds its lock. A std mutex
//! replaces an actor task here: the critical section is a map lookup plus non-blocking sends,
//! so it is shorter than a channel hop, and one sender's events stay in send order.
//!
//! Delivery policy: every session has two bounded queues.
//! - Events (state changes) go to the inbox. An event that [`Event::is_droppable`] is dropped
//!   and counted when the inbox is full; any other event is never dropped, so a session whose
//!   inbox is full of those is too slow to keep consistent and is cancelled instead.
//! - Casts (CAST, LIMITED_CAST, TO_PEER and P2P data) go to the cast queue. The sender waits up
//!   to `cast_wait` for room in a full queue, so a receiver that is merely busy slows the
//!   sender down and loses nothing. A receiver still full after that is marked *lagging*: its
//!   casts are dropped (and counted in [`BusStats::dropped`]) without waiting until its queue
//!   is half empty again, so one stalled client costs the others one wait, not one per cast.
//!
//! Ordering: one sender's casts are delivered one after the other by the sender itself, so
//! every receiver sees them in send order; each cast reaches each matching session once.
//!
//! Invariant: the bus is the sole owner of the session registry and of the routing indexes
//! (who is logged in as whom, who has which sub-channel open, who belongs to which channel);
//! it never touches SQLite.

mod event;
mod state;

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use mrci_proto::{SessionId, SubChList, TypeId, UserId, async_id::AsyncId};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use event::{ChEffect, Event, P2pKind};
pub use state::BusState;

/// What a session's inbox receives.
pub type Delivery = Arc<Event>;

/// Data one session sends to others: a cast, a limited cast, or peer-to-peer data.
#[derive(Debug)]
pub struct Cast {
    /// The async id the receiving client sees it on (CAST, LIMITED_CAST, TO_PEER or P2P).
    pub id: AsyncId,
    /// The sending session.
    pub src: SessionId,
    /// The embedded frame's type.
    pub type_id: TypeId,
    /// The embedded payload.
    pub payload: Bytes,
}

/// What a session's cast queue receives.
pub type CastDelivery = Arc<Cast>;

/// A session's two queues, as registered.
pub struct Queues {
    /// State-changing events.
    pub events: mpsc::Sender<Delivery>,
    /// Casts and peer data.
    pub casts: mpsc::Sender<CastDelivery>,
}

struct Link {
    tx: mpsc::Sender<Delivery>,
    casts: mpsc::Sender<CastDelivery>,
    lagging: AtomicBool,
    cancel: CancellationToken,
}

#[derive(Default)]
struct Inner {
    state: BusState,
    links: std::collections::HashMap<SessionId, Arc<Link>>,
}

/// Cloneable handle to the bus shared by every session.
#[derive(Clone)]
pub struct Bus {
    inner: Arc<Mutex<Inner>>,
    dropped: Arc<AtomicU64>,
    cast_wait: Duration,
}

impl Default for Bus {
    fn default() -> Self {
        Self::new()
    }
}

/// Counters the operator can read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BusStats {
    /// Registered (ready) sessions.
    pub sessions: usize,
    /// Sessions logged in as some user.
    pub logged_in: usize,
    /// Droppable deliveries (system messages, casts, peer data) discarded because a
    /// receiver's queue was full.
    pub dropped: u64,
}

impl Bus {
    /// A new, empty bus whose casts wait up to 50 ms for a busy receiver.
    pub fn new() -> Self {
        Self::with_cast_wait(Duration::from_millis(50))
    }

    /// A new, empty bus whose casts wait up to `cast_wait` for a busy receiver.
    pub fn with_cast_wait(cast_wait: Duration) -> Self {
        Self {
            inner: Arc::default(),
            dropped: Arc::default(),
            cast_wait,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the maps half-updated in a way that
        // matters more than losing the host, so a poisoned lock is simply taken over.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a ready session with its inbox and cancellation token.
    pub fn register(&self, sid: SessionId, queues: Queues, cancel: CancellationToken) -> bool {
        let mut inner = self.lock();
        if !inner.state.register(sid) {
            return false;
        }
        let link = Link {
            tx: queues.events,
            casts: queues.casts,
            lagging: AtomicBool::new(false),
            cancel,
        };
        inner.links.insert(sid, Arc::new(link));
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

    /// Records the open sub-channels and active flag of a session (routing for casts).
    pub fn set_open(&self, sid: &SessionId, open: SubChList, active: bool) {
        self.lock().state.set_open(sid, open, active);
    }

    /// Records the channels a session's user is a full member of.
    pub fn set_channels(&self, sid: &SessionId, channels: &[u64]) {
        self.lock().state.set_channels(sid, channels);
    }

    /// Delivers a channel event to the channel's members, the sessions of `user`, and the
    /// sessions with `sub` (or any sub-channel of the channel) open. Returns how many.
    pub fn to_channel(
        &self,
        ch: u64,
        user: Option<&UserId>,
        sub: Option<u8>,
        event: Event,
    ) -> usize {
        let inner = self.lock();
        let delivery = Arc::new(event);
        let targets = inner.state.channel_targets(ch, user, sub);
        for sid in &targets {
            if let Some(link) = inner.links.get(sid) {
                self.deliver(link, &delivery);
            }
        }
        targets.len()
    }

    /// Casts to every other session with one of `header`'s sub-channels open (only active
    /// ones when `limited`). Returns how many sessions got it.
    pub async fn cast(&self, header: &SubChList, limited: bool, cast: Cast) -> usize {
        let links: Vec<Arc<Link>> = {
            let inner = self.lock();
            inner
                .state
                .cast_targets(&cast.src, header, limited)
                .iter()
                .filter_map(|sid| inner.links.get(sid).cloned())
                .collect()
        };
        let delivery = Arc::new(cast);
        let mut n = 0;
        for link in &links {
            n += usize::from(self.deliver_cast(link, &delivery).await);
        }
        n
    }

    /// Sends peer data to one session. False if it is not registered or dropped its copy.
    pub async fn to_peer(&self, dst: &SessionId, cast: Cast) -> bool {
        let link = self.lock().links.get(dst).cloned();
        match link {
            Some(link) => self.deliver_cast(&link, &Arc::new(cast)).await,
            None => false,
        }
    }

    async fn deliver_cast(&self, link: &Link, delivery: &CastDelivery) -> bool {
        if link.lagging.load(Ordering::Relaxed) {
            if link.casts.capacity() * 2 < link.casts.max_capacity() {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                return false;
            }
            link.lagging.store(false, Ordering::Relaxed);
        }
        match link.casts.try_send(Arc::clone(delivery)) {
            Ok(()) => return true,
            Err(mpsc::error::TrySendError::Closed(_)) => return false,
            Err(mpsc::error::TrySendError::Full(_)) => {}
        }
        match link
            .casts
            .send_timeout(Arc::clone(delivery), self.cast_wait)
            .await
        {
            Ok(()) => true,
            Err(mpsc::error::SendTimeoutError::Closed(_)) => false,
            Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                tracing::warn!(
                    "a receiver's cast queue stayed full; dropping its casts until it catches up"
                );
                link.lagging.store(true, Ordering::Relaxed);
                self.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
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
            let (casts, _) = mpsc::channel(4);
            bus.register(
                sid(n),
                Queues { events: tx, casts },
                CancellationToken::new(),
            );
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
        let (casts, _) = mpsc::channel(1);
        let cancel = CancellationToken::new();
        bus.register(sid(1), Queues { events: tx, casts }, cancel.clone());
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

    fn key(ch_id: u64, sub_id: u8) -> mrci_proto::SubChKey {
        mrci_proto::SubChKey { ch_id, sub_id }
    }

    fn cast(src: u8, n: u32) -> Cast {
        Cast {
            id: AsyncId::CAST,
            src: sid(src),
            type_id: TypeId::TEXT,
            payload: Bytes::copy_from_slice(&n.to_le_bytes()),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_receiver_costs_one_wait_and_the_others_lose_nothing() {
        let bus = Bus::with_cast_wait(Duration::from_millis(50));
        let mut list = SubChList::default();
        list.insert(key(7, 0));
        let mut cast_rx = Vec::new();
        for n in 1..=3 {
            let (events, _) = mpsc::channel(4);
            let (casts, rx) = mpsc::channel(4);
            bus.register(sid(n), Queues { events, casts }, CancellationToken::new());
            bus.set_open(&sid(n), list, false);
            cast_rx.push(rx);
        }
        let mut stalled = cast_rx.remove(1);
        let mut readers = cast_rx;
        let started = tokio::time::Instant::now();
        let mut seen = Vec::new();
        for n in 0..20u32 {
            bus.cast(&list, false, cast(1, n)).await;
            // Session 3 reads everything as it arrives; session 2 never reads.
            while let Ok(c) = readers[1].try_recv() {
                seen.push(u32::from_le_bytes(c.payload[..].try_into().unwrap()));
            }
        }
        assert_eq!(
            seen,
            (0..20).collect::<Vec<_>>(),
            "in order, once each, none lost"
        );
        // 4 fit into the stalled queue, the 5th waited once, the rest were dropped at once.
        assert_eq!(started.elapsed(), Duration::from_millis(50));
        assert_eq!(bus.stats().dropped, 16);
        let mut got = Vec::new();
        while let Ok(c) = stalled.try_recv() {
            got.push(u32::from_le_bytes(c.payload[..].try_into().unwrap()));
        }
        assert_eq!(got, [0, 1, 2, 3]);
        assert!(
            readers[0].try_recv().is_err(),
            "the sender never gets its own cast"
        );
        // Once the stalled queue drains, it receives again.
        bus.cast(&list, false, cast(1, 99)).await;
        assert_eq!(stalled.try_recv().map(|c| c.payload.len()).ok(), Some(4));
    }
}
