//! The two tasks of a cluster node: the publisher, which sends what this node's sessions
//! asked for to NATS in order (counting what it cannot), and the receiver, which keeps the
//! node's subscriptions, applies what other nodes send once each, and follows the other
//! nodes' heartbeats and presence; plus `nodes_seen` for `mrci host status`.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use bytes::BytesMut;
use futures::{
    StreamExt,
    stream::{AbortHandle, Abortable, SelectAll},
};
use mrci_proto::{SessionId, SubChList, TypeId, async_id::AsyncId, payload::PeerStat};
use tokio::{sync::mpsc, time::Instant};

use super::{
    Bus, Cast, Ctl, Event, FULL_BEAT_EVERY, Msg, NatsBus, Node, NodeSeen, Outgoing, PUBLISH_WAIT,
    SEEN_WINDOW, Shared, lock,
    wire::{self, Beat, Body, Route},
};

/// Listens to the cluster's heartbeats for `wait` and returns the nodes heard, by name (for
/// `mrci host status`).
///
/// # Errors
/// If the NATS URL is invalid or NATS does not answer within `wait`.
pub async fn nodes_seen(url: &str, prefix: &str, wait: Duration) -> crate::Result<Vec<NodeSeen>> {
    let unreachable = || crate::Error::Config(format!("NATS at {url} does not answer"));
    let client = tokio::time::timeout(wait, async_nats::connect(url))
        .await
        .map_err(|_| unreachable())?
        .map_err(|_| unreachable())?;
    let mut sub = client
        .subscribe(format!("{prefix}.hb"))
        .await
        .map_err(|e| crate::Error::Config(format!("NATS subscribe: {e}")))?;
    let mut nodes: HashMap<String, NodeSeen> = HashMap::new();
    let deadline = Instant::now() + wait;
    while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, sub.next()).await {
        if let Ok(Msg::Heartbeat(beat)) = wire::decode(&msg.payload) {
            if beat.leaving {
                nodes.remove(&beat.node);
                continue;
            }
            let seen = NodeSeen {
                node: beat.node.clone(),
                sessions: beat.sessions_count as usize,
                logged_in: beat.logged_in,
                undelivered: beat.undelivered,
            };
            nodes.insert(beat.node, seen);
        }
    }
    let mut out: Vec<NodeSeen> = nodes.into_values().collect();
    out.sort_by(|a, b| a.node.cmp(&b.node));
    Ok(out)
}

/// Waits until the NATS server has processed everything this connection sent before the
/// call, subscriptions included. A flush only writes the buffer to the socket; the server
/// handles one connection's messages in order, so the answer to a request sent after them
/// proves they are in place. Nobody subscribes to `subject`: the server itself answers "no
/// responders".
async fn round_trip(client: &async_nats::Client, subject: String) {
    let request = async_nats::Request::new().timeout(Some(ROUND_TRIP_WAIT));
    match client.send_request(subject, request).await {
        Ok(_) => {}
        Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => {}
        Err(e) => tracing::warn!(error = %e, "NATS round trip failed"),
    }
}

/// How long [`round_trip`] waits for the server's answer.
const ROUND_TRIP_WAIT: Duration = Duration::from_secs(5);

impl NatsBus {
    pub(super) async fn receiver(
        self,
        client: async_nats::Client,
        mut streams: SelectAll<Abortable<async_nats::Subscriber>>,
        mut ctl: mpsc::UnboundedReceiver<Ctl>,
    ) {
        let mut subs: HashMap<String, AbortHandle> = HashMap::new();
        let mut seen = Seen::default();
        let mut tick = tokio::time::interval(self.shared.settings.heartbeat);
        loop {
            // Messages first: a node's heartbeat waiting in the queue must be applied before
            // the expiry check that would otherwise count it as missed.
            tokio::select! {
                biased;
                () = self.shared.halt.cancelled() => return,
                Some(c) = ctl.recv() => match c {
                    Ctl::Sub(subject) => match client.subscribe(subject.clone()).await {
                        Ok(sub) => {
                            let (stream, handle) = futures::stream::abortable(sub);
                            if let Some(old) = subs.insert(subject, handle) {
                                old.abort();
                            }
                            streams.push(stream);
                        }
                        Err(e) => tracing::error!(subject, error = %e, "NATS subscribe failed"),
                    },
                    Ctl::Unsub(subject) => {
                        if let Some(handle) = subs.remove(&subject) {
                            handle.abort();
                        }
                    }
                    Ctl::Barrier(done) => {
                        // The round trip is asked for now, behind every subscription asked
                        // for so far, and awaited elsewhere so messages keep flowing.
                        let client = client.clone();
                        let subject = self.subject("barrier");
                        tokio::spawn(async move {
                            round_trip(&client, subject).await;
                            let _ = done.send(());
                        });
                    }
                },
                Some(msg) = streams.next() => match wire::decode(&msg.payload) {
                    Ok(msg) => self.apply(msg, &mut seen).await,
                    Err(_) => {
                        self.shared.bad.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(subject = %msg.subject, "undecodable cluster message dropped");
                    }
                },
                _ = tick.tick() => self.expire_nodes().await,
                else => return,
            }
        }
    }

    /// Publishes this node's heartbeat every `heartbeat`, on its own task so that a busy
    /// receiver never delays it.
    pub(super) async fn heartbeats(self) {
        let mut tick = tokio::time::interval(self.shared.settings.heartbeat);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut beats = 0u64;
        while self
            .shared
            .halt
            .run_until_cancelled(tick.tick())
            .await
            .is_some()
        {
            let asked = self.shared.resync.swap(false, Ordering::Relaxed);
            let msg = self.beat(false, asked || beats.is_multiple_of(FULL_BEAT_EVERY));
            beats += 1;
            self.publish(vec![self.subject("hb")], &msg);
        }
    }

    async fn apply(&self, msg: Msg, seen: &mut Seen) {
        match msg {
            Msg::Deliver {
                origin,
                seq,
                route,
                body,
            } => {
                if origin == self.shared.instance || !seen.first(origin, seq) {
                    return;
                }
                self.apply_delivery(route, body).await;
            }
            Msg::Heartbeat(beat) => self.on_beat(beat).await,
            Msg::Resync { node } => {
                if node == self.shared.settings.node {
                    self.shared.resync.store(true, Ordering::Relaxed);
                }
            }
            Msg::Presence {
                instance,
                node,
                sid,
                up,
            } => {
                if instance == self.shared.instance {
                    return;
                }
                let mut nodes = lock(&self.shared.nodes);
                let entry = nodes.entry(node).or_insert_with(|| Node::new(instance));
                if entry.instance == instance {
                    if up {
                        entry.sessions.insert(sid);
                    } else {
                        entry.sessions.remove(&sid);
                        entry.open.remove(&sid);
                    }
                }
                drop(nodes);
                self.shared.changed.send_modify(|n| *n += 1);
            }
            Msg::Open {
                instance,
                node,
                sid,
                open,
            } => {
                if instance == self.shared.instance {
                    return;
                }
                let mut nodes = lock(&self.shared.nodes);
                if let Some(entry) = nodes.get_mut(&node)
                    && entry.instance == instance
                    && entry.sessions.contains(&sid)
                {
                    if open.is_empty() {
                        entry.open.remove(&sid);
                    } else {
                        entry.open.insert(sid, open);
                    }
                }
            }
        }
    }

    async fn apply_delivery(&self, route: Route, body: Body) {
        match (route, body) {
            (Route::Cast { header, limited }, Body::Cast(c)) => {
                self.local.cast(&header, limited, c.into()).await;
            }
            (Route::Peer(dst), Body::Cast(c)) => {
                self.local.to_peer(&dst, c.into()).await;
            }
            (Route::Session(dst), Body::Event(e)) => {
                match &e {
                    Event::P2p { src, .. } => self.note_p2p(*src, dst),
                    Event::CloseP2p { sid } => {
                        if let Some(set) = lock(&self.shared.p2p).get_mut(sid) {
                            set.remove(&dst);
                        }
                    }
                    _ => {}
                }
                self.local.to_session(&dst, e);
            }
            (Route::User(uid), Body::Event(e)) => {
                self.local.to_user(&uid, e);
            }
            (Route::Members(chs, uid), Body::Event(e)) => {
                self.local.to_members(&chs, &uid, e);
            }
            (Route::Channel(ch, uid), Body::Event(e)) => {
                self.local.to_channel(ch, uid.as_ref(), e);
            }
            (Route::All, Body::Event(Event::ModulesChanged)) => {
                self.shared.modules_changed.send_modify(|n| *n += 1);
            }
            (Route::All, Body::Event(e)) => self.local.broadcast(None, false, e),
            (route, _) => {
                self.shared.bad.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    ?route,
                    "cluster message with a body its route does not take"
                );
            }
        }
    }

    async fn on_beat(&self, beat: Beat) {
        if beat.instance == self.shared.instance {
            return;
        }
        let mut resync = false;
        let (gone, dead) = {
            let mut nodes = lock(&self.shared.nodes);
            let old = nodes.remove(&beat.node);
            let mut gone: Vec<SessionId> = Vec::new();
            let mut dead: Vec<(SessionId, SubChList)> = Vec::new();
            let restarted = old.as_ref().is_some_and(|o| o.instance != beat.instance);
            if let Some(old) = &old {
                if beat.leaving || restarted {
                    gone.extend(old.sessions.iter().copied());
                } else if beat.full {
                    let now: HashSet<&SessionId> = beat.sessions.iter().collect();
                    gone.extend(old.sessions.iter().filter(|s| !now.contains(s)).copied());
                }
                // A node that restarted lost every session it had, uncleanly.
                if restarted {
                    dead.extend(old.open.iter().map(|(s, l)| (*s, *l)));
                }
            }
            if beat.leaving {
                // Sessions still registered when their node stops never said goodbye;
                // those that ended first sent their own PEER_STAT.
                dead.extend(beat.open);
            } else {
                let mut node = match old {
                    Some(old) if !restarted => old,
                    _ => Node::new(beat.instance),
                };
                node.seen = Instant::now();
                node.logged_in = beat.logged_in;
                node.undelivered = beat.undelivered;
                if beat.full {
                    node.sessions = beat.sessions.into_iter().collect();
                    node.open = beat.open.into_iter().collect();
                } else {
                    // What presence messages told this node no longer matches: ask for
                    // the whole state (the next beat brings it).
                    let open = node.open.iter().map(|(sid, list)| (*sid, *list));
                    resync = wire::digest(node.sessions.iter().copied(), open) != beat.digest;
                }
                nodes.insert(beat.node.clone(), node);
            }
            (gone, dead)
        };
        if resync {
            self.shared.resyncs_asked.fetch_add(1, Ordering::Relaxed);
            self.publish(
                vec![self.subject("hb")],
                &Msg::Resync {
                    node: beat.node.clone(),
                },
            );
        }
        self.shared.changed.send_modify(|n| *n += 1);
        self.close_remote(gone, dead).await;
    }

    async fn expire_nodes(&self) {
        // While this node is cut from NATS every other node looks silent; only a node
        // silent while this one hears NATS is gone. The clock restarts on reconnection.
        if !*self.shared.connected.borrow() {
            for node in lock(&self.shared.nodes).values_mut() {
                node.seen = Instant::now();
            }
            return;
        }
        let limit = self.shared.settings.heartbeat * self.shared.settings.missed;
        let (gone, dead) = {
            let mut nodes = lock(&self.shared.nodes);
            let silent: Vec<String> = nodes
                .iter()
                .filter(|(_, n)| n.seen.elapsed() > limit)
                .map(|(name, _)| name.clone())
                .collect();
            let mut gone = Vec::new();
            let mut dead = Vec::new();
            for name in silent {
                tracing::warn!(node = %name, "cluster node silent; closing its sessions' links");
                if let Some(node) = nodes.remove(&name) {
                    gone.extend(node.sessions);
                    dead.extend(node.open);
                }
            }
            (gone, dead)
        };
        self.close_remote(gone, dead).await;
    }

    /// Sessions of another node are gone: their P2P peers here get `CloseP2p`, and the
    /// `dead` ones (their node died or restarted under them) are announced to their
    /// sub-channel peers here with the PEER_STAT they would have sent on leaving
    /// (PROTOCOL.md §4.3 id 22: disconnected, no sub-channels open).
    async fn close_remote(&self, gone: Vec<SessionId>, dead: Vec<(SessionId, SubChList)>) {
        for sid in gone {
            let peers = lock(&self.shared.p2p).remove(&sid);
            for local in peers.into_iter().flatten() {
                self.local.to_session(&local, Event::CloseP2p { sid });
            }
        }
        for (sid, open) in dead {
            let stat = PeerStat {
                session_id: sid,
                sub_channels: SubChList::default(),
                disconnected: true,
            };
            let mut payload = BytesMut::with_capacity(PeerStat::LEN);
            stat.write(&mut payload);
            let cast = Cast {
                id: AsyncId::LIMITED_CAST,
                src: sid,
                type_id: TypeId::PEER_STAT,
                payload: payload.freeze(),
            };
            self.local.cast(&open, true, cast).await;
        }
    }
}

/// Recently applied delivery ids.
#[derive(Default)]
struct Seen {
    set: HashSet<(u64, u64)>,
    order: VecDeque<(u64, u64)>,
}

impl Seen {
    /// True the first time `(origin, seq)` comes.
    fn first(&mut self, origin: u64, seq: u64) -> bool {
        if !self.set.insert((origin, seq)) {
            return false;
        }
        self.order.push_back((origin, seq));
        if self.order.len() > SEEN_WINDOW
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        true
    }
}

pub(super) async fn publisher(
    client: async_nats::Client,
    shared: Arc<Shared>,
    mut rx: mpsc::Receiver<Outgoing>,
) {
    while let Some(Some((subjects, bytes, counted))) =
        shared.halt.run_until_cancelled(rx.recv()).await
    {
        let connected = client.connection_state() == async_nats::connection::State::Connected;
        let mut failed = 0u64;
        for subject in subjects {
            let sent = connected
                && matches!(
                    tokio::time::timeout(PUBLISH_WAIT, client.publish(subject, bytes.clone()))
                        .await,
                    Ok(Ok(()))
                );
            failed += u64::from(!sent);
        }
        if !counted {
            continue;
        }
        if failed > 0 {
            shared.undelivered.send_modify(|k| *k += failed);
            let total = *shared.undelivered.borrow();
            if !shared.in_outage.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    undelivered = total,
                    "NATS unreachable: deliveries to other nodes are being dropped"
                );
            }
        } else if shared.in_outage.swap(false, Ordering::Relaxed) {
            tracing::info!(
                undelivered = *shared.undelivered.borrow(),
                "NATS reachable again: delivering to other nodes"
            );
        }
    }
}
