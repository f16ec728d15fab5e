//! Cross-session delivery: how sessions deliver async commands, casts and peer data to each
//! other (PROTOCOL.md §4.5, STYLE.md §2.4).
//!
//! [`Bus`] is the interface sessions and commands use; [`LocalBus`], the in-process
//! implementation over the pure routing indexes of [`BusState`], is the default. Another
//! implementation (a cluster over a message broker) must keep the policy below for the
//! sessions it serves.
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
//! [`NatsBus`] (`bus/nats`) is the cluster implementation: [`LocalBus`] for this node's
//! sessions plus NATS between nodes, with its own routing and fault policy in its header;
//! `bus/wire` is what nodes send each other.
//!
//! Invariant: the bus is the sole owner of the session registry and of the routing indexes
//! (who is logged in as whom, who has which sub-channel open, who belongs to which channel);
//! it never touches SQLite.

mod event;
mod local;
mod nats;
mod state;
mod wire;

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use futures::future::BoxFuture;
use mrci_proto::{SessionId, SubChList, TypeId, UserId, async_id::AsyncId};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use event::{ChEffect, Event, GroupChange, P2pKind};
pub use local::LocalBus;
pub use nats::{NatsBus, NatsSettings, NodeSeen, connect_nats, nodes_seen};
pub use state::{BusState, SubReach};

/// Delivery between sessions, wherever they run.
///
/// Interest (who is logged in as whom, which sub-channels a session has open, which
/// channels its user belongs to) is pushed by each session after every change; routing
/// follows it. Counts returned are the sessions the delivery was handed to.
pub trait Bus: Send + Sync {
    /// Registers a ready session; `cancel` ends it if it falls behind on events it must not
    /// lose. Returns the session's receiving end.
    fn register(&self, sid: SessionId, cancel: CancellationToken) -> Inbox;

    /// Removes a session.
    fn unregister(&self, sid: &SessionId);

    /// Records the user a session is logged in as.
    fn set_user(&self, sid: &SessionId, user: Option<UserId>);

    /// Records the open sub-channels and active flag of a session (routing for casts).
    fn set_open(&self, sid: &SessionId, open: SubChList, active: bool);

    /// Records the channels a session's user is a full member of.
    fn set_channels(&self, sid: &SessionId, channels: &[u64]);

    /// Delivers to one session. False if it is not registered.
    fn to_session(&self, sid: &SessionId, event: Event) -> bool;

    /// Delivers to every session logged in as `uid`.
    fn to_user(&self, uid: &UserId, event: Event) -> usize;

    /// Delivers to the sessions of `user` and of the full members of `chs`, each once.
    fn to_members(&self, chs: &[u64], user: &UserId, event: Event) -> usize;

    /// Delivers a channel event (`Event::Channel`) to the channel's members, the sessions of
    /// `user`, and the sessions with a sub-channel open that its effect closes or changes.
    fn to_channel(&self, ch: u64, user: Option<&UserId>, event: Event) -> usize;

    /// Delivers to every session but `origin`, then (with `feedback`) to `origin` itself last,
    /// as PUB_IPC and PUB_IPC_WITH_FEEDBACK do (PROTOCOL.md §4.1).
    fn broadcast(&self, origin: Option<&SessionId>, feedback: bool, event: Event);

    /// Casts to every other session with one of `header`'s sub-channels open (only active
    /// ones when `limited`), waiting for busy receivers by the policy above.
    fn cast<'a>(&'a self, header: &'a SubChList, limited: bool, cast: Cast)
    -> BoxFuture<'a, usize>;

    /// Sends peer data to one session. False if it is not registered or dropped its copy.
    fn to_peer<'a>(&'a self, dst: &'a SessionId, cast: Cast) -> BoxFuture<'a, bool>;

    /// Counters for the operator.
    fn stats(&self) -> BusStats;
}

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

/// What a session receives from the bus.
#[derive(Debug)]
pub enum Incoming {
    /// A state-changing event.
    Event(Delivery),
    /// A cast or peer data.
    Cast(CastDelivery),
}

/// A session's receiving end: its two bounded queues (see the delivery policy above).
#[derive(Debug)]
pub struct Inbox {
    events: mpsc::Receiver<Delivery>,
    casts: mpsc::Receiver<CastDelivery>,
}

impl Inbox {
    /// The next delivery, events before casts; `None` once the bus dropped the session.
    pub async fn recv(&mut self) -> Option<Incoming> {
        tokio::select! {
            biased;
            Some(event) = self.events.recv() => Some(Incoming::Event(event)),
            Some(cast) = self.casts.recv() => Some(Incoming::Cast(cast)),
            else => None,
        }
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.casts.is_empty()
    }
}

/// The sizes and the wait of the delivery policy.
#[derive(Clone, Copy, Debug)]
pub struct BusLimits {
    /// Capacity of each session's event queue.
    pub events: usize,
    /// Capacity of each session's cast queue.
    pub casts: usize,
    /// How long a cast waits for room in a busy receiver's queue.
    pub cast_wait: Duration,
}

impl Default for BusLimits {
    fn default() -> Self {
        Self {
            events: 256,
            casts: 1024,
            cast_wait: Duration::from_millis(50),
        }
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
    /// Deliveries to other nodes of a cluster that could not be published (NATS
    /// unreachable); always 0 on a single host.
    pub undelivered: u64,
}
