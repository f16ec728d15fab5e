//! [`NatsBus`]: several hosts as one. Each node delivers to its own sessions exactly as
//! [`LocalBus`] does, and publishes every delivery on NATS for the sessions of other nodes.
//!
//! Subjects (`P` is `cluster.subject_prefix`):
//! - `P.sub.CH.SUB`: casts and limited casts to sub-channel `SUB` of channel `CH`, and the
//!   channel events that close or change it; `P.chsub.CH`: channel events that reach every
//!   session with any sub-channel of `CH` open (its deletion);
//! - `P.user.UID`: events for an account's sessions (lock, delete, edits, renames, channel
//!   events naming the user); `P.chan.CH`: events for the sessions of `CH`'s members;
//! - `P.sess.SID`: P2P control, peer data and `to_peer` for one session;
//! - `P.all`: broadcasts (rank changes, group changes, module add/remove);
//! - `P.hb`: heartbeats, `P.pres`: sessions registering and leaving.
//!
//! Routing by interest: a node subscribes to `P.sub…`, `P.chsub…`, `P.user…`, `P.chan…` and
//! `P.sess…` only while at least one of its sessions needs the subject (reference counts
//! follow [`Bus::set_open`], [`Bus::set_user`], [`Bus::set_channels`], register and
//! unregister), so NATS hands a cast only to nodes with a receiver. A delivery that concerns
//! several subjects (a cast to six sub-channels, an event to a user and their channels) is
//! published on each, carrying the sender node's instance and a sequence number; a node that
//! receives it on several subjects applies it once (a window of recent ids), and applies it
//! with the routing rule of [`LocalBus`], so each session gets it once.
//!
//! Ordering: one node publishes from one task, in the order its sessions asked, and each
//! node applies what it receives from one task in arrival order; NATS keeps one
//! connection's order per subscriber, so a receiver sees one sender's casts in send order
//! (for casts with the same header; a sender that changes its open list between two casts
//! may see the two cross when they travel on different subjects). A node never applies
//! its own messages: its own sessions were served locally, which also keeps the sender out;
//! its connection is made without echo, so NATS does not even send them back to it.
//!
//! Presence and faults: every node publishes a presence message when a session registers
//! or leaves, so `to_session` and `to_peer` know whether a session exists on another node,
//! and a heartbeat every `cluster.heartbeat_ms`: its name, counts and a digest of its
//! sessions and their open lists ([`wire::digest`]), a few dozen bytes whatever the number
//! of sessions. A node whose own record of another node does not match that node's digest
//! (it joined late, or missed a presence message) asks for a full heartbeat, which lists
//! every session and open list; a node also sends one every [`FULL_BEAT_EVERY`] beats and
//! when it leaves. A node not heard from for `missed_heartbeats` beats while this node is
//! connected to NATS (or seen restarting with a new instance) is gone: its sessions' P2P
//! peers here get `CloseP2p`, as they would from a session ending cleanly. While this node
//! is cut from NATS it expires nobody (everyone would look silent), and the silence clock
//! restarts on reconnection.
//! While NATS is unreachable, local delivery goes on; what should have been published is
//! dropped and counted ([`NatsBus::undelivered`], also in the heartbeat) and logged once per
//! outage; async-nats reconnects by itself and re-subscribes, and publishing resumes.
//!
//! Departures of a dead node's sessions: a session that ends cleanly limited-casts its own
//! PEER_STAT (disconnected, no sub-channels) to the sub-channels it had open, if it took
//! active updates. So that a killed node's sessions are announced the same way, every node
//! tells the others where each session's leaving PEER_STAT would go: an `Open` message on
//! `P.pres` whenever that list changes (the open list while the session is active, else
//! empty), and the non-empty lists again in full heartbeats (so a node that joins late, or
//! missed an `Open`, learns them from the full beat its digest check asks for). When a node
//! is expired or seen restarting, each node limited-casts to its own sessions, for each of
//! the dead node's sessions with a list, the PEER_STAT that session would have sent; a
//! leaving heartbeat does the same for the sessions it still lists (those that had not
//! finished when their node stopped; the others already sent theirs). A session that left
//! cleanly just before its node died but whose `Presence` did not get through may be
//! announced twice.
//!
//! Session ids are 28 random bytes drawn by the accepting node, so they are unique across
//! the cluster without coordination. The counts [`Bus`] methods return are this node's
//! deliveries (a remote node's receivers are not known to the sender).
//!
//! Capacity per node: `limits.max_sessions` counts this node's sessions only; failed-login
//! counters, pauses and bans live in the shared PostgreSQL store and hold across nodes,
//! while `security.auth_attempts_per_minute` is kept in each node's memory.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use futures::{FutureExt, future::BoxFuture, stream::SelectAll};
use mrci_proto::{SessionId, SubChList, UserId};
use tokio::{sync::mpsc, time::Instant};
use tokio_util::sync::CancellationToken;

use super::{
    Bus, BusLimits, BusStats, Cast, Event, Inbox, LocalBus,
    wire::{self, Beat, Body, Msg, Route, WireCast},
};

/// How many recent delivery ids a node remembers to apply each once.
const SEEN_WINDOW: usize = 8192;
/// Messages waiting to be published; beyond it they are dropped and counted.
const OUT_QUEUE: usize = 16 * 1024;
/// The longest a publish may wait for async-nats to take a message.
const PUBLISH_WAIT: Duration = Duration::from_secs(1);

/// Cluster settings the bus needs.
#[derive(Clone, Debug)]
pub struct NatsSettings {
    /// NATS server URL(s).
    pub url: String,
    /// This node's name.
    pub node: String,
    /// First token of every subject.
    pub prefix: String,
    /// Between heartbeats.
    pub heartbeat: Duration,
    /// Beats missed before a node counts as gone.
    pub missed: u32,
}

/// What this node knows about another.
#[derive(Debug, Clone)]
struct Node {
    instance: u64,
    seen: Instant,
    sessions: HashSet<SessionId>,
    /// What each session would send its sub-channel peers on leaving ([`Msg::Open`]).
    open: HashMap<SessionId, SubChList>,
    logged_in: u32,
    undelivered: u64,
}

impl Node {
    /// A node first heard of (or heard restarting) as `instance`: nothing known yet.
    fn new(instance: u64) -> Self {
        Self {
            instance,
            seen: Instant::now(),
            sessions: HashSet::new(),
            open: HashMap::new(),
            logged_in: 0,
            undelivered: 0,
        }
    }
}

/// Every this many heartbeats one is full even when nobody asked ([`wire::Beat`]): a
/// safety net under the digests.
const FULL_BEAT_EVERY: u64 = 30;

/// What the local sessions need from NATS.
#[derive(Default)]
struct Interest {
    wants: HashMap<SessionId, Want>,
    count: HashMap<String, usize>,
}

#[derive(Default, Clone)]
struct Want {
    user: Option<UserId>,
    open: SubChList,
    active: bool,
    channels: Vec<u64>,
}

impl Want {
    /// The sub-channels a PEER_STAT goes to when the session leaves: its open list when it
    /// takes active updates, else none.
    fn leaving_to(&self) -> SubChList {
        if self.active {
            self.open
        } else {
            SubChList::default()
        }
    }
}

/// One message for the publisher: its subjects, bytes, and whether failing to publish it
/// counts as an undelivered delivery (heartbeats and presence do not: the next beat
/// repeats them).
type Outgoing = (Vec<String>, Bytes, bool);

enum Ctl {
    Sub(String),
    Unsub(String),
    Barrier(tokio::sync::oneshot::Sender<()>),
}

struct Shared {
    client: async_nats::Client,
    settings: NatsSettings,
    instance: u64,
    seq: AtomicU64,
    out: mpsc::Sender<Outgoing>,
    ctl: mpsc::UnboundedSender<Ctl>,
    interest: Mutex<Interest>,
    nodes: Mutex<HashMap<String, Node>>,
    /// Remote session → local sessions it has P2P business with.
    p2p: Mutex<HashMap<SessionId, HashSet<SessionId>>>,
    /// Deliveries that could not be published, watched by [`NatsBus::until_undelivered`].
    undelivered: tokio::sync::watch::Sender<u64>,
    in_outage: AtomicBool,
    bad: AtomicU64,
    /// Moves whenever the set of remote sessions changes.
    changed: tokio::sync::watch::Sender<u64>,
    /// Whether NATS is connected now.
    connected: tokio::sync::watch::Sender<bool>,
    /// Stops this node's NATS tasks.
    halt: CancellationToken,
    /// Moves when another node added or removed a module.
    modules_changed: tokio::sync::watch::Sender<u64>,
    /// Another node asked for a full heartbeat ([`Msg::Resync`]).
    resync: AtomicBool,
    /// Full heartbeats this node asked other nodes for.
    resyncs_asked: AtomicU64,
}

/// The cluster implementation of [`Bus`] (see the module documentation).
#[derive(Clone)]
pub struct NatsBus {
    local: LocalBus,
    shared: Arc<Shared>,
}

/// One node of the cluster as another node (or `mrci host status`) sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSeen {
    /// The node's name.
    pub node: String,
    /// Registered sessions.
    pub sessions: usize,
    /// Sessions logged in.
    pub logged_in: u32,
    /// Deliveries the node could not publish.
    pub undelivered: u64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Connects to NATS with the options every node uses: reconnecting forever, quickly, and
/// without echo (the server does not hand the connection back what it published itself).
///
/// # Errors
/// If the URL is invalid.
pub async fn connect_nats(url: &str, name: &str) -> crate::Result<async_nats::Client> {
    connect_watched(url, name, tokio::sync::watch::Sender::new(false)).await
}

/// [`connect_nats`], with `connected` following the connection's state.
async fn connect_watched(
    url: &str,
    name: &str,
    connected: tokio::sync::watch::Sender<bool>,
) -> crate::Result<async_nats::Client> {
    async_nats::ConnectOptions::new()
        .name(name)
        .no_echo()
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(2))
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis((100 * attempts as u64).min(1000))
        })
        .event_callback(move |event| {
            let connected = connected.clone();
            async move {
                match event {
                    async_nats::Event::Connected => {
                        connected.send_replace(true);
                        tracing::info!("NATS connected");
                    }
                    async_nats::Event::Disconnected => {
                        connected.send_replace(false);
                        tracing::warn!("NATS disconnected; reconnecting");
                    }
                    other => tracing::warn!(event = %other, "NATS"),
                }
            }
        })
        .connect(url)
        .await
        .map_err(|e| crate::Error::Config(format!("cluster.nats_url {url}: {e}")))
}

mod tasks;

pub use tasks::nodes_seen;

impl NatsBus {
    /// Connects to NATS and starts this node's publisher and receiver tasks; they run until
    /// the runtime stops.
    ///
    /// # Errors
    /// If the NATS URL is invalid (an unreachable server is retried in the background).
    pub async fn start(settings: NatsSettings, limits: BusLimits) -> crate::Result<Self> {
        let connected = tokio::sync::watch::Sender::new(false);
        let client = connect_watched(&settings.url, &settings.node, connected.clone()).await?;
        let (out, out_rx) = mpsc::channel(OUT_QUEUE);
        let (ctl, ctl_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            client: client.clone(),
            settings,
            instance: u64::from_le_bytes(crate::host::random_bytes()),
            seq: AtomicU64::new(0),
            out,
            ctl,
            interest: Mutex::default(),
            nodes: Mutex::default(),
            p2p: Mutex::default(),
            undelivered: tokio::sync::watch::Sender::new(0),
            in_outage: AtomicBool::new(false),
            bad: AtomicU64::new(0),
            changed: tokio::sync::watch::Sender::new(0),
            connected,
            halt: CancellationToken::new(),
            modules_changed: tokio::sync::watch::Sender::new(0),
            resync: AtomicBool::new(false),
            resyncs_asked: AtomicU64::new(0),
        });
        let bus = Self {
            local: LocalBus::new(limits),
            shared,
        };
        tokio::spawn(tasks::publisher(
            client.clone(),
            Arc::clone(&bus.shared),
            out_rx,
        ));
        let mut fixed = SelectAll::new();
        for name in ["all", "hb", "pres"] {
            let subject = bus.subject(name);
            let sub = client
                .subscribe(subject.clone())
                .await
                .map_err(|e| crate::Error::Config(format!("NATS subscribe {subject}: {e}")))?;
            fixed.push(futures::stream::abortable(sub).0);
        }
        tokio::spawn(bus.clone().receiver(client, fixed, ctl_rx));
        tokio::spawn(bus.clone().heartbeats());
        Ok(bus)
    }

    /// Deliveries that could not be published to other nodes so far.
    pub fn undelivered(&self) -> u64 {
        *self.shared.undelivered.borrow()
    }

    /// Returns once at least `n` deliveries could not be published.
    pub async fn until_undelivered(&self, n: u64) {
        let _ = self
            .shared
            .undelivered
            .subscribe()
            .wait_for(|&k| k >= n)
            .await;
    }

    /// Full heartbeats this node asked for because what it knew of another node no longer
    /// matched that node's digest (it joined late, or missed a presence message).
    pub fn resyncs_asked(&self) -> u64 {
        self.shared.resyncs_asked.load(Ordering::Relaxed)
    }

    /// The other nodes heard from, by name.
    pub fn nodes(&self) -> Vec<NodeSeen> {
        let nodes = lock(&self.shared.nodes);
        let mut out: Vec<NodeSeen> = nodes
            .iter()
            .map(|(name, n)| NodeSeen {
                node: name.clone(),
                sessions: n.sessions.len(),
                logged_in: n.logged_in,
                undelivered: n.undelivered,
            })
            .collect();
        out.sort_by(|a, b| a.node.cmp(&b.node));
        out
    }

    /// Returns once every subscription the local sessions asked for so far is in place at
    /// the NATS server (so a cast published after it reaches them): a round trip to the
    /// server behind them, not just a flush of this node's buffer.
    pub async fn settled(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.shared.ctl.send(Ctl::Barrier(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Returns once this node is connected to NATS with its subscriptions in place.
    pub async fn until_connected(&self) {
        let mut rx = self.shared.connected.subscribe();
        loop {
            if *rx.borrow_and_update()
                && self.shared.client.connection_state() == async_nats::connection::State::Connected
            {
                self.settled().await;
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// Returns once this node has noticed that its NATS connection is lost.
    pub async fn until_disconnected(&self) {
        let mut rx = self.shared.connected.subscribe();
        let _ = rx.wait_for(|up| !*up).await;
    }

    /// Returns once session `sid` is known here, on this node or another.
    pub async fn until_known(&self, sid: &SessionId) {
        let mut changed = self.shared.changed.subscribe();
        while !self.remote_exists(sid) && !self.local.has(sid) {
            if changed.changed().await.is_err() {
                return;
            }
        }
    }

    /// Follows module additions and removals made on other nodes. The host reloads its
    /// module registry from the store, then tells its sessions with
    /// [`NatsBus::broadcast_here`]; the bus does not deliver those events itself, since
    /// sessions would recompute their commands from a registry that does not know the change
    /// yet.
    pub fn watch_remote_modules(&self) -> tokio::sync::watch::Receiver<u64> {
        self.shared.modules_changed.subscribe()
    }

    /// Delivers `event` to every session of this node only.
    pub fn broadcast_here(&self, event: Event) {
        self.local.broadcast(None, false, event);
    }

    /// Stops this node's part in the cluster at once, as a crash would look to the others:
    /// no more heartbeats, subscriptions or publishing (local delivery goes on). For tests
    /// of node failure.
    pub fn halt(&self) {
        self.shared.halt.cancel();
    }

    /// Cluster messages from other nodes that did not decode.
    pub fn bad_messages(&self) -> u64 {
        self.shared.bad.load(Ordering::Relaxed)
    }

    fn subject(&self, tail: &str) -> String {
        format!("{}.{tail}", self.shared.settings.prefix)
    }

    fn publish(&self, subjects: Vec<String>, msg: &Msg) {
        if subjects.is_empty() {
            return;
        }
        let n = subjects.len() as u64;
        let counted = matches!(msg, Msg::Deliver { .. });
        if self
            .shared
            .out
            .try_send((subjects, wire::encode(msg), counted))
            .is_err()
            && counted
        {
            self.shared.undelivered.send_modify(|k| *k += n);
        }
    }

    fn deliver(&self, subjects: Vec<String>, route: Route, body: Body) {
        let msg = Msg::Deliver {
            origin: self.shared.instance,
            seq: self.shared.seq.fetch_add(1, Ordering::Relaxed),
            route,
            body,
        };
        self.publish(subjects, &msg);
    }

    fn sess_subject(&self, sid: &SessionId) -> String {
        self.subject(&format!("sess.{}", sid.to_hex()))
    }

    fn user_subject(&self, uid: &UserId) -> String {
        self.subject(&format!("user.{}", uid.to_hex()))
    }

    fn sub_subject(&self, ch: u64, sub: u8) -> String {
        self.subject(&format!("sub.{ch}.{sub}"))
    }

    fn subjects_of(&self, sid: &SessionId, want: &Want) -> HashSet<String> {
        let mut out = HashSet::new();
        out.insert(self.sess_subject(sid));
        if let Some(uid) = &want.user {
            out.insert(self.user_subject(uid));
        }
        for key in want.open.iter() {
            out.insert(self.sub_subject(key.ch_id, key.sub_id));
            out.insert(self.subject(&format!("chsub.{}", key.ch_id)));
        }
        for ch in &want.channels {
            out.insert(self.subject(&format!("chan.{ch}")));
        }
        out
    }

    /// Applies a change to one session's interest and (un)subscribes what changed.
    fn update_want(&self, sid: &SessionId, change: impl FnOnce(&mut Option<Want>)) {
        let mut interest = lock(&self.shared.interest);
        let mut want = interest.wants.get(sid).cloned();
        let old = want
            .as_ref()
            .map(|w| self.subjects_of(sid, w))
            .unwrap_or_default();
        change(&mut want);
        let new = want
            .as_ref()
            .map(|w| self.subjects_of(sid, w))
            .unwrap_or_default();
        match want {
            Some(w) => interest.wants.insert(*sid, w),
            None => interest.wants.remove(sid),
        };
        for s in new.difference(&old) {
            let c = interest.count.entry(s.clone()).or_default();
            *c += 1;
            if *c == 1 {
                let _ = self.shared.ctl.send(Ctl::Sub(s.clone()));
            }
        }
        for s in old.difference(&new) {
            if let Some(c) = interest.count.get_mut(s) {
                *c -= 1;
                if *c == 0 {
                    interest.count.remove(s);
                    let _ = self.shared.ctl.send(Ctl::Unsub(s.clone()));
                }
            }
        }
    }

    fn remote_exists(&self, sid: &SessionId) -> bool {
        lock(&self.shared.nodes)
            .values()
            .any(|n| n.sessions.contains(sid))
    }

    fn note_p2p(&self, remote: SessionId, local: SessionId) {
        lock(&self.shared.p2p)
            .entry(remote)
            .or_default()
            .insert(local);
    }

    /// Tells the other nodes where session `sid`'s PEER_STAT goes if this node dies.
    fn announce_open(&self, sid: &SessionId, open: SubChList) {
        let msg = Msg::Open {
            instance: self.shared.instance,
            node: self.shared.settings.node.clone(),
            sid: *sid,
            open,
        };
        self.publish(vec![self.subject("pres")], &msg);
    }

    fn presence(&self, sid: &SessionId, up: bool) {
        let msg = Msg::Presence {
            instance: self.shared.instance,
            node: self.shared.settings.node.clone(),
            sid: *sid,
            up,
        };
        self.publish(vec![self.subject("pres")], &msg);
    }

    /// This node's heartbeat; `full` lists every session and open list (a leaving beat
    /// always does).
    pub(super) fn beat(&self, leaving: bool, full: bool) -> Msg {
        let full = full || leaving;
        let interest = lock(&self.shared.interest);
        let open = || {
            interest
                .wants
                .iter()
                .map(|(sid, w)| (*sid, w.leaving_to()))
                .filter(|(_, open)| !open.is_empty())
        };
        let digest = wire::digest(interest.wants.keys().copied(), open());
        Msg::Heartbeat(Beat {
            node: self.shared.settings.node.clone(),
            instance: self.shared.instance,
            sessions_count: u32::try_from(interest.wants.len()).unwrap_or(u32::MAX),
            logged_in: interest.wants.values().filter(|w| w.user.is_some()).count() as u32,
            undelivered: self.undelivered(),
            leaving,
            digest,
            full,
            sessions: if full {
                interest.wants.keys().copied().collect()
            } else {
                Vec::new()
            },
            open: if full { open().collect() } else { Vec::new() },
        })
    }

    /// Publishes a last heartbeat saying this node leaves, so the others close its
    /// sessions' links at once (waiting at most a second for NATS).
    pub async fn leave(&self) {
        let bytes = wire::encode(&self.beat(true, true));
        let client = &self.shared.client;
        let send = async {
            client.publish(self.subject("hb"), bytes).await.ok();
            client.flush().await.ok();
        };
        let _ = tokio::time::timeout(PUBLISH_WAIT, send).await;
    }
}

impl Bus for NatsBus {
    fn register(&self, sid: SessionId, cancel: CancellationToken) -> Inbox {
        let inbox = self.local.register(sid, cancel);
        self.update_want(&sid, |w| *w = Some(Want::default()));
        self.presence(&sid, true);
        inbox
    }

    fn unregister(&self, sid: &SessionId) {
        self.local.unregister(sid);
        self.update_want(sid, |w| *w = None);
        self.presence(sid, false);
        lock(&self.shared.p2p).retain(|_, locals| {
            locals.remove(sid);
            !locals.is_empty()
        });
    }

    fn set_user(&self, sid: &SessionId, user: Option<UserId>) {
        self.local.set_user(sid, user);
        self.update_want(sid, |w| {
            if let Some(w) = w {
                w.user = user;
            }
        });
    }

    fn set_open(&self, sid: &SessionId, open: SubChList, active: bool) {
        self.local.set_open(sid, open, active);
        let mut moved = None;
        self.update_want(sid, |w| {
            if let Some(w) = w {
                let before = w.leaving_to();
                (w.open, w.active) = (open, active);
                moved = (w.leaving_to() != before).then(|| w.leaving_to());
            }
        });
        if let Some(open) = moved {
            self.announce_open(sid, open);
        }
    }

    fn set_channels(&self, sid: &SessionId, channels: &[u64]) {
        self.local.set_channels(sid, channels);
        self.update_want(sid, |w| {
            if let Some(w) = w {
                w.channels = channels.to_vec();
            }
        });
    }

    fn to_session(&self, sid: &SessionId, event: Event) -> bool {
        if self.local.to_session(sid, event.clone()) {
            return true;
        }
        if !self.remote_exists(sid) {
            return false;
        }
        if let Event::P2p { src, .. } | Event::CloseP2p { sid: src } = &event {
            match &event {
                Event::CloseP2p { .. } => {
                    if let Some(set) = lock(&self.shared.p2p).get_mut(sid) {
                        set.remove(src);
                    }
                }
                _ => self.note_p2p(*sid, *src),
            }
        }
        self.deliver(
            vec![self.sess_subject(sid)],
            Route::Session(*sid),
            Body::Event(event),
        );
        true
    }

    fn to_user(&self, uid: &UserId, event: Event) -> usize {
        let n = self.local.to_user(uid, event.clone());
        self.deliver(
            vec![self.user_subject(uid)],
            Route::User(*uid),
            Body::Event(event),
        );
        n
    }

    fn to_members(&self, chs: &[u64], user: &UserId, event: Event) -> usize {
        let n = self.local.to_members(chs, user, event.clone());
        let mut subjects = vec![self.user_subject(user)];
        subjects.extend(chs.iter().map(|ch| self.subject(&format!("chan.{ch}"))));
        self.deliver(
            subjects,
            Route::Members(chs.to_vec(), *user),
            Body::Event(event),
        );
        n
    }

    fn to_channel(&self, ch: u64, user: Option<&UserId>, event: Event) -> usize {
        let n = self.local.to_channel(ch, user, event.clone());
        let mut subjects = vec![self.subject(&format!("chan.{ch}"))];
        subjects.extend(user.map(|u| self.user_subject(u)));
        if let Event::Channel { effect, .. } = &event {
            match effect {
                super::ChEffect::Deleted => subjects.push(self.subject(&format!("chsub.{ch}"))),
                super::ChEffect::CloseSub { sub } | super::ChEffect::ActiveFlag { sub, .. } => {
                    subjects.push(self.sub_subject(ch, *sub));
                }
                _ => {}
            }
        }
        self.deliver(
            subjects,
            Route::Channel(ch, user.copied()),
            Body::Event(event),
        );
        n
    }

    fn broadcast(&self, origin: Option<&SessionId>, feedback: bool, event: Event) {
        self.deliver(
            vec![self.subject("all")],
            Route::All,
            Body::Event(event.clone()),
        );
        self.local.broadcast(origin, feedback, event);
    }

    fn cast<'a>(
        &'a self,
        header: &'a SubChList,
        limited: bool,
        cast: Cast,
    ) -> BoxFuture<'a, usize> {
        async move {
            let wire = WireCast::from(&cast);
            let n = self.local.cast(header, limited, cast).await;
            let subjects = header
                .iter()
                .map(|k| self.sub_subject(k.ch_id, k.sub_id))
                .collect();
            self.deliver(
                subjects,
                Route::Cast {
                    header: *header,
                    limited,
                },
                Body::Cast(wire),
            );
            n
        }
        .boxed()
    }

    fn to_peer<'a>(&'a self, dst: &'a SessionId, cast: Cast) -> BoxFuture<'a, bool> {
        async move {
            let wire = WireCast::from(&cast);
            if self.local.to_peer(dst, cast).await {
                return true;
            }
            if !self.remote_exists(dst) {
                return false;
            }
            self.deliver(
                vec![self.sess_subject(dst)],
                Route::Peer(*dst),
                Body::Cast(wire),
            );
            true
        }
        .boxed()
    }

    fn stats(&self) -> BusStats {
        BusStats {
            undelivered: self.undelivered(),
            ..self.local.stats()
        }
    }
}
