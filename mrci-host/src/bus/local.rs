//! The in-process implementation of [`Bus`]: every session of this process, its two bounded
//! queues, and the routing indexes of [`BusState`], behind one std mutex.
//!
//! A std mutex replaces an actor task here: the critical section is a map lookup plus
//! non-blocking sends, so it is shorter than a channel hop, and one sender's events stay in
//! send order. Nothing awaits while holding the lock; a cast that must wait for room in a
//! busy receiver's queue clones the receiver's link and waits outside it.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicBool, AtomicU64, Ordering},
};

use futures::{FutureExt, future::BoxFuture};
use mrci_proto::{SessionId, SubChList, UserId};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{
    Bus, BusLimits, BusState, BusStats, Cast, CastDelivery, ChEffect, Delivery, Event, Inbox,
    SubReach,
};

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
pub struct LocalBus {
    inner: Arc<Mutex<Inner>>,
    dropped: Arc<AtomicU64>,
    limits: BusLimits,
}

impl Default for LocalBus {
    fn default() -> Self {
        Self::new(BusLimits::default())
    }
}

impl LocalBus {
    /// A new, empty bus with these queue sizes and cast wait.
    pub fn new(limits: BusLimits) -> Self {
        Self {
            inner: Arc::default(),
            dropped: Arc::default(),
            limits,
        }
    }

    /// True if `sid` is registered here.
    pub fn has(&self, sid: &SessionId) -> bool {
        self.lock().links.contains_key(sid)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the maps half-updated in a way that
        // matters more than losing the host, so a poisoned lock is simply taken over.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
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
            .send_timeout(Arc::clone(delivery), self.limits.cast_wait)
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
}

impl Bus for LocalBus {
    /// Registers a ready session; `cancel` ends it if it falls behind on events it must
    /// not lose. A session id registered twice gets a closed inbox.
    fn register(&self, sid: SessionId, cancel: CancellationToken) -> Inbox {
        let (events_tx, events) = mpsc::channel(self.limits.events.max(1));
        let (casts_tx, casts) = mpsc::channel(self.limits.casts.max(2));
        let mut inner = self.lock();
        if inner.state.register(sid) {
            let link = Link {
                tx: events_tx,
                casts: casts_tx,
                lagging: AtomicBool::new(false),
                cancel,
            };
            inner.links.insert(sid, Arc::new(link));
        } else {
            tracing::error!(session = %sid, "session id registered twice; its inbox is closed");
        }
        Inbox { events, casts }
    }

    /// Removes a session.
    fn unregister(&self, sid: &SessionId) {
        let mut inner = self.lock();
        inner.state.unregister(sid);
        inner.links.remove(sid);
    }

    /// Records the user a session is logged in as.
    fn set_user(&self, sid: &SessionId, user: Option<UserId>) {
        self.lock().state.set_user(sid, user);
    }

    /// Records the open sub-channels and active flag of a session (routing for casts).
    fn set_open(&self, sid: &SessionId, open: SubChList, active: bool) {
        self.lock().state.set_open(sid, open, active);
    }

    /// Records the channels a session's user is a full member of.
    fn set_channels(&self, sid: &SessionId, channels: &[u64]) {
        self.lock().state.set_channels(sid, channels);
    }

    /// Delivers a channel event to the channel's members, the sessions of `user`, and the
    /// sessions with `sub` (or any sub-channel of the channel) open. Returns how many.
    fn to_channel(&self, ch: u64, user: Option<&UserId>, event: Event) -> usize {
        let subs = match &event {
            Event::Channel { effect, .. } => match effect {
                ChEffect::Deleted => SubReach::All,
                ChEffect::CloseSub { sub } | ChEffect::ActiveFlag { sub, .. } => {
                    SubReach::One(*sub)
                }
                _ => SubReach::None,
            },
            _ => SubReach::None,
        };
        let inner = self.lock();
        let delivery = Arc::new(event);
        let targets = inner.state.channel_targets(ch, user, subs);
        for sid in &targets {
            if let Some(link) = inner.links.get(sid) {
                self.deliver(link, &delivery);
            }
        }
        targets.len()
    }

    /// Delivers to the sessions of `user` and of the full members of `chs`, each once.
    /// Returns how many it reached.
    fn to_members(&self, chs: &[u64], user: &UserId, event: Event) -> usize {
        let inner = self.lock();
        let delivery = Arc::new(event);
        let targets = inner.state.members_targets(chs, user);
        for sid in &targets {
            if let Some(link) = inner.links.get(sid) {
                self.deliver(link, &delivery);
            }
        }
        targets.len()
    }

    /// Casts to every other session with one of `header`'s sub-channels open (only active
    /// ones when `limited`). Returns how many sessions got it.
    fn cast<'a>(
        &'a self,
        header: &'a SubChList,
        limited: bool,
        cast: Cast,
    ) -> BoxFuture<'a, usize> {
        async move {
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
        .boxed()
    }

    /// Sends peer data to one session. False if it is not registered or dropped its copy.
    fn to_peer<'a>(&'a self, dst: &'a SessionId, cast: Cast) -> BoxFuture<'a, bool> {
        async move {
            let link = self.lock().links.get(dst).cloned();
            match link {
                Some(link) => self.deliver_cast(&link, &Arc::new(cast)).await,
                None => false,
            }
        }
        .boxed()
    }

    /// Delivers to one session. Returns false if it is not registered.
    fn to_session(&self, sid: &SessionId, event: Event) -> bool {
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
    fn to_user(&self, uid: &UserId, event: Event) -> usize {
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
    fn broadcast(&self, origin: Option<&SessionId>, feedback: bool, event: Event) {
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

    /// Counters for the operator.
    fn stats(&self) -> BusStats {
        let inner = self.lock();
        BusStats {
            sessions: inner.state.len(),
            logged_in: inner.state.logged_in(),
            dropped: self.dropped.load(Ordering::Relaxed),
            undelivered: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use mrci_proto::{TypeId, async_id::AsyncId};

    use super::*;

    fn sid(n: u8) -> SessionId {
        SessionId([n; 28])
    }

    fn limits(events: usize, casts: usize) -> BusLimits {
        BusLimits {
            events,
            casts,
            cast_wait: Duration::from_millis(50),
        }
    }

    #[tokio::test]
    async fn broadcast_with_feedback_reaches_the_origin_last() {
        let bus = LocalBus::new(limits(4, 4));
        let mut rx = Vec::new();
        for n in 1..=3 {
            rx.push(bus.register(sid(n), CancellationToken::new()));
        }
        bus.broadcast(Some(&sid(2)), false, Event::CmdRanksChanged);
        assert!(rx[0].events.try_recv().is_ok());
        assert!(
            rx[1].events.try_recv().is_err(),
            "origin excluded without feedback"
        );
        assert!(rx[2].events.try_recv().is_ok());
        bus.broadcast(Some(&sid(2)), true, Event::CmdRanksChanged);
        assert!(rx[1].events.try_recv().is_ok());
    }

    #[tokio::test]
    async fn a_full_inbox_drops_droppable_events_and_cancels_on_the_others() {
        let bus = LocalBus::new(limits(1, 2));
        let cancel = CancellationToken::new();
        let _inbox = bus.register(sid(1), cancel.clone());
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
        let bus = LocalBus::new(limits(4, 4));
        let mut list = SubChList::default();
        list.insert(key(7, 0));
        let mut cast_rx = Vec::new();
        for n in 1..=3 {
            let inbox = bus.register(sid(n), CancellationToken::new());
            bus.set_open(&sid(n), list, false);
            cast_rx.push(inbox.casts);
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
