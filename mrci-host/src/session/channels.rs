//! The session's side of channels, casting and peer-to-peer links (COMMANDS.md §2.7–2.10,
//! PROTOCOL.md §4.3 ids 5, 21, 22, 24–39, §9.4).
//!
//! The session owns its open list, channel list and P2P links; after every change it tells
//! the bus (which routes casts and channel events by them), mirrors them into shared memory
//! and republishes its view. Casts and peer data are delivered straight from here rather
//! than through a command task, so a cast costs one hop.
//!
//! Invariant: the bus's routing entry, the shared-memory lists and the published view are
//! updated together, by [`Session::sync_channels`], after every change.

use bytes::{Bytes, BytesMut};
use futures::SinkExt;
use mrci_proto::{
    BranchId, Frame, SessionId, SubChKey, SubChList, TypeId,
    async_id::AsyncId,
    payload::{PeerInfo, PeerStat},
};

use super::{OpenSub, Session};
use crate::bus::{Cast, ChEffect, P2pKind};

/// Links per direction and state (seed 000 sizes the shared-memory lists at 100).
pub(crate) const MAX_P2P: usize = 100;

/// Types a client may not cast (COMMANDS.md §2.9).
fn cast_blocked(type_id: TypeId) -> bool {
    matches!(
        type_id,
        TypeId::PRIV_IPC
            | TypeId::PUB_IPC
            | TypeId::PUB_IPC_WITH_FEEDBACK
            | TypeId::PING_PEERS
            | TypeId::PEER_STAT
            | TypeId::MY_INFO
            | TypeId::PEER_INFO
            | TypeId::HOST_CERT
            | TypeId::IDLE
            | TypeId::NEW_CMD
            | TypeId::P2P_REQUEST
            | TypeId::P2P_OPEN
            | TypeId::P2P_CLOSE
    )
}

/// The P2P state machine of PROTOCOL.md §4.3 id 24, with the direction of pending links kept
/// so only the receiver of a request can open it.
#[derive(Debug, Default)]
pub(crate) struct P2pLinks {
    outgoing: Vec<SessionId>,
    incoming: Vec<SessionId>,
    accepted: Vec<SessionId>,
}

impl P2pLinks {
    fn knows(&self, peer: &SessionId) -> bool {
        self.outgoing.contains(peer) || self.incoming.contains(peer) || self.accepted.contains(peer)
    }

    /// This session asks `dst` for a link.
    pub(crate) fn request(&mut self, dst: SessionId) -> Result<(), &'static str> {
        if self.accepted.contains(&dst) {
            return Err("err: You are already connected to that peer.");
        }
        if self.outgoing.contains(&dst) || self.incoming.contains(&dst) {
            return Err("err: A request with that peer is already pending.");
        }
        if self.outgoing.len() + self.incoming.len() >= MAX_P2P {
            return Err("err: Too many pending peer requests.");
        }
        self.outgoing.push(dst);
        Ok(())
    }

    /// `src` asked this session for a link; false if the request is ignored.
    pub(crate) fn on_request(&mut self, src: SessionId) -> bool {
        if self.knows(&src) || self.outgoing.len() + self.incoming.len() >= MAX_P2P {
            return false;
        }
        self.incoming.push(src);
        true
    }

    /// This session accepts the request of `dst`.
    pub(crate) fn open(&mut self, dst: SessionId) -> Result<(), &'static str> {
        if self.accepted.contains(&dst) {
            return Err("err: You are already connected to that peer.");
        }
        if !self.incoming.contains(&dst) {
            return Err("err: That peer has not asked for a link.");
        }
        if self.accepted.len() >= MAX_P2P {
            return Err("err: Too many peer links.");
        }
        self.incoming.retain(|s| *s != dst);
        self.accepted.push(dst);
        Ok(())
    }

    /// `src` accepted this session's request; false if there was none.
    pub(crate) fn on_open(&mut self, src: SessionId) -> bool {
        if !self.outgoing.contains(&src) || self.accepted.len() >= MAX_P2P {
            return false;
        }
        self.outgoing.retain(|s| *s != src);
        self.accepted.push(src);
        true
    }

    /// Forgets `peer` in every list; true if it was there.
    pub(crate) fn close(&mut self, peer: &SessionId) -> bool {
        let known = self.knows(peer);
        self.outgoing.retain(|s| s != peer);
        self.incoming.retain(|s| s != peer);
        self.accepted.retain(|s| s != peer);
        known
    }

    /// True when both sides accepted.
    pub(crate) fn is_accepted(&self, peer: &SessionId) -> bool {
        self.accepted.contains(peer)
    }

    /// Forgets everything; returns every peer it knew.
    pub(crate) fn clear(&mut self) -> Vec<SessionId> {
        let mut all = std::mem::take(&mut self.outgoing);
        all.append(&mut self.incoming);
        all.append(&mut self.accepted);
        all
    }

    fn pending(&self) -> Vec<SessionId> {
        self.outgoing
            .iter()
            .chain(&self.incoming)
            .copied()
            .collect()
    }
}

impl Session {
    /// Recomputes the active flag and pushes the channel state to the bus, shared memory and
    /// the published view.
    pub(super) fn sync_channels(&mut self) {
        self.view.active =
            self.host.config.channels.active_updates || self.view.open.iter().any(|o| o.active);
        self.view.p2p_pending = self.p2p.pending();
        self.view.p2p_accepted.clone_from(&self.p2p.accepted);
        let sid = self.view.sid;
        self.host
            .bus
            .set_open(&sid, self.view.open_list(), self.view.active);
        self.host.bus.set_channels(&sid, &self.view.channels);
        self.publish();
    }

    fn peer_info_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(PeerInfo::LEN);
        crate::host::peer_info(&self.view).write(&mut out);
        out.freeze()
    }

    /// Limited-casts this session's PEER_STAT to the sub-channels of `header`.
    async fn peer_stat(&mut self, header: SubChList, disconnected: bool) {
        if header.is_empty() {
            return;
        }
        let stat = PeerStat {
            session_id: self.view.sid,
            sub_channels: self.view.open_list(),
            disconnected,
        };
        let mut payload = BytesMut::with_capacity(PeerStat::LEN);
        stat.write(&mut payload);
        let cast = Cast {
            id: AsyncId::LIMITED_CAST,
            src: self.view.sid,
            type_id: TypeId::PEER_STAT,
            payload: payload.freeze(),
        };
        self.host.bus.cast(&header, true, cast).await;
    }

    /// After a user or display rename: limited-casts the new PEER_INFO to the writable
    /// sub-channels when the session is active (PROTOCOL.md §4.3 id 22).
    pub(super) async fn cast_peer_info(&mut self) {
        let header = self.view.writable_list();
        if !self.view.active || header.is_empty() {
            return;
        }
        let cast = Cast {
            id: AsyncId::LIMITED_CAST,
            src: self.view.sid,
            type_id: TypeId::PEER_INFO,
            payload: self.peer_info_bytes(),
        };
        self.host.bus.cast(&header, true, cast).await;
    }

    /// Opens a sub-channel after the command checked access (COMMANDS.md §2.7).
    pub(super) async fn open_sub(&mut self, sub: OpenSub) -> Result<String, String> {
        if sub.key.ch_id == 0 {
            return Err("err: Channel id 0 is not valid.".into());
        }
        if self.view.open.iter().any(|o| o.key == sub.key) {
            return Err("err: That sub-channel is already open.".into());
        }
        if self.view.open.len() >= SubChList::SLOTS {
            return Err(format!(
                "err: The maximum of {} open sub-channels is reached.",
                SubChList::SLOTS
            ));
        }
        self.view.open.push(sub);
        self.sync_channels();
        if self.view.active {
            let header = self.view.writable_list();
            self.peer_stat(header, false).await;
        }
        Ok(if sub.writable {
            "Sub-channel opened.\n".into()
        } else {
            "Sub-channel opened read-only.\n".into()
        })
    }

    /// Closes the open sub-channels `which` selects, with a PEER_STAT to the old list when
    /// the session was active. Returns how many it closed.
    pub(super) async fn close_subs(&mut self, which: impl Fn(&OpenSub) -> bool) -> usize {
        let (old, was_active) = (self.view.open_list(), self.view.active);
        let before = self.view.open.len();
        self.view.open.retain(|o| !which(o));
        let closed = before - self.view.open.len();
        if closed > 0 {
            self.sync_channels();
            if was_active {
                self.peer_stat(old, false).await;
            }
        }
        closed
    }

    /// Loads the user's channel list after a login.
    pub(super) async fn load_channels(&mut self) -> crate::Result<()> {
        if let Some(user) = &self.view.user {
            self.view.channels = self.host.store.member_channels(&user.user_id).await?;
        }
        self.sync_channels();
        Ok(())
    }

    /// On logout or session end: PEER_STAT to the open sub-channels, close them, drop the
    /// channel list, and end every P2P link (PROTOCOL.md §1.9–1.10).
    pub(super) async fn leave_channels(&mut self, disconnected: bool) {
        let old = self.view.open_list();
        let was_active = self.view.active;
        self.view.open.clear();
        self.view.channels.clear();
        self.view.owner_override = false;
        let peers = self.p2p.clear();
        self.sync_channels();
        if was_active {
            self.peer_stat(old, disconnected).await;
        }
        let sid = self.view.sid;
        for peer in peers {
            self.host
                .bus
                .to_session(&peer, crate::bus::Event::CloseP2p { sid });
        }
    }

    /// `cast`: the client's frame goes to every session with a matching open sub-channel.
    pub(super) async fn inline_cast(&mut self, frame: Frame) -> crate::Result<()> {
        let header = self.view.writable_list();
        if !cast_blocked(frame.type_id) && !header.is_empty() {
            let cast = Cast {
                id: AsyncId::CAST,
                src: self.view.sid,
                type_id: frame.type_id,
                payload: frame.payload,
            };
            self.host.bus.cast(&header, false, cast).await;
        }
        self.write(Frame::idle(frame.cmd_id, frame.branch_id)).await
    }

    /// `to_peer`: `[28-byte session id][data]` to a peer with an accepted link.
    pub(super) async fn inline_to_peer(&mut self, frame: Frame) -> crate::Result<()> {
        let (cmd, branch) = (frame.cmd_id, frame.branch_id);
        let dst = frame
            .payload
            .get(..28)
            .and_then(|b| <[u8; 28]>::try_from(b).ok())
            .map(SessionId);
        let refusal = match dst {
            None => Some("err: The frame must start with the 28-byte session id of the peer."),
            Some(dst) if !self.p2p.is_accepted(&dst) => {
                Some("err: There is no accepted P2P link with that session.")
            }
            Some(_) if cast_blocked(frame.type_id) => {
                Some("err: Frames of that type cannot be sent to a peer.")
            }
            Some(dst) => {
                let cast = Cast {
                    id: AsyncId::P2P,
                    src: self.view.sid,
                    type_id: frame.type_id,
                    payload: frame.payload.slice(28..),
                };
                self.host.bus.to_peer(&dst, cast).await;
                None
            }
        };
        if let Some(msg) = refusal {
            self.write(Frame::err(cmd, branch, msg)).await?;
        }
        self.write(Frame::idle(cmd, branch)).await
    }

    /// Sends a ping (ext 44): a limited cast of this session's PEER_INFO.
    pub(super) async fn ping_peers(&mut self) -> Result<String, String> {
        if !self.view.active {
            return Err(
                "err: This session is not active-updating, so no peer would answer.".into(),
            );
        }
        let header = self.view.writable_list();
        let cast = Cast {
            id: AsyncId::LIMITED_CAST,
            src: self.view.sid,
            type_id: TypeId::PING_PEERS,
            payload: self.peer_info_bytes(),
        };
        let n = self.host.bus.cast(&header, true, cast).await;
        Ok(format!("Ping sent to {n} peers.\n"))
    }

    /// A P2P command of this session (request, open or close to `peer`).
    pub(super) fn p2p_command(&mut self, peer: SessionId, kind: P2pKind) -> Result<String, String> {
        if peer == self.view.sid {
            return Err("err: That is your own session.".into());
        }
        match kind {
            P2pKind::Request => self.p2p.request(peer)?,
            P2pKind::Open => self.p2p.open(peer)?,
            P2pKind::Close => {
                if !self.p2p.close(&peer) {
                    return Err("err: There is no pending request or link with that peer.".into());
                }
            }
        }
        let info = match kind {
            P2pKind::Request => self.peer_info_bytes(),
            P2pKind::Open | P2pKind::Close => Bytes::new(),
        };
        let event = crate::bus::Event::P2p {
            src: self.view.sid,
            kind,
            info,
        };
        if !self.host.bus.to_session(&peer, event) {
            self.p2p.close(&peer);
            self.sync_channels();
            return Err("err: No such session.".into());
        }
        self.sync_channels();
        Ok(match kind {
            P2pKind::Request => "Request sent.\n",
            P2pKind::Open => "Link open.\n",
            P2pKind::Close => "Link closed.\n",
        }
        .into())
    }

    /// A P2P control message from `src`.
    pub(super) async fn handle_p2p(
        &mut self,
        src: SessionId,
        kind: P2pKind,
        info: &Bytes,
    ) -> crate::Result<()> {
        let forward = match kind {
            P2pKind::Request => self
                .p2p
                .on_request(src)
                .then(|| (TypeId::P2P_REQUEST, info.clone())),
            P2pKind::Open => self
                .p2p
                .on_open(src)
                .then(|| (TypeId::P2P_OPEN, Bytes::copy_from_slice(&src.0))),
            P2pKind::Close => self
                .p2p
                .close(&src)
                .then(|| (TypeId::P2P_CLOSE, Bytes::copy_from_slice(&src.0))),
        };
        let Some((type_id, payload)) = forward else {
            return Ok(());
        };
        self.sync_channels();
        self.write(Frame::new(
            type_id,
            AsyncId::P2P.cmd_id(),
            BranchId(0),
            payload,
        ))
        .await
    }

    /// ASYNC_CLOSE_P2P: `sid` went away.
    pub(super) async fn handle_close_p2p(&mut self, sid: SessionId) -> crate::Result<()> {
        if !self.p2p.close(&sid) {
            return Ok(());
        }
        self.sync_channels();
        let payload = Bytes::copy_from_slice(&sid.0);
        self.write(Frame::new(
            TypeId::P2P_CLOSE,
            AsyncId::P2P.cmd_id(),
            BranchId(0),
            payload,
        ))
        .await
    }

    /// A cast or peer data from another session.
    pub(super) async fn handle_cast(&mut self, cast: &Cast) -> crate::Result<()> {
        let frame = match cast.id {
            AsyncId::LIMITED_CAST if cast.type_id == TypeId::PING_PEERS => {
                // Answer the pinger with our PEER_INFO, and show its info to our client.
                let reply = Cast {
                    id: AsyncId::TO_PEER,
                    src: self.view.sid,
                    type_id: TypeId::PEER_INFO,
                    payload: self.peer_info_bytes(),
                };
                self.host.bus.to_peer(&cast.src, reply).await;
                Frame::new(
                    TypeId::PEER_INFO,
                    AsyncId::LIMITED_CAST.cmd_id(),
                    BranchId(0),
                    cast.payload.clone(),
                )
            }
            AsyncId::P2P => {
                if !self.p2p.is_accepted(&cast.src) {
                    return Ok(());
                }
                let mut payload = BytesMut::with_capacity(28 + cast.payload.len());
                payload.extend_from_slice(&cast.src.0);
                payload.extend_from_slice(&cast.payload);
                Frame::new(
                    cast.type_id,
                    AsyncId::P2P.cmd_id(),
                    BranchId(0),
                    payload.freeze(),
                )
            }
            id => Frame::new(cast.type_id, id.cmd_id(), BranchId(0), cast.payload.clone()),
        };
        self.conn.feed(frame).await?;
        if self.casts.is_empty() {
            SinkExt::<Frame>::flush(&mut self.conn).await?;
        }
        Ok(())
    }

    /// Drops channel `ch` from the list and closes its sub-channels, publishing once.
    async fn drop_channel(&mut self, ch: u64) {
        self.view.channels.retain(|c| *c != ch);
        if self.close_subs(|o| o.key.ch_id == ch).await == 0 {
            self.sync_channels();
        }
    }

    /// A channel event the bus routed here: apply its effect, then show it to the client.
    pub(super) async fn handle_channel_event(
        &mut self,
        id: AsyncId,
        text: &str,
        ch: u64,
        effect: &ChEffect,
    ) -> crate::Result<()> {
        let me = self.view.user.as_ref().map(|u| u.user_id);
        let is_me = |user: &mrci_proto::UserId| me.as_ref() == Some(user);
        match effect {
            ChEffect::Forward => {}
            ChEffect::Joined { user } if is_me(user) => {
                if !self.view.channels.contains(&ch) {
                    self.view.channels.push(ch);
                    self.sync_channels();
                }
            }
            ChEffect::Left { user } if is_me(user) => self.drop_channel(ch).await,
            ChEffect::LevelChanged { user } if is_me(user) => {
                self.close_subs(|o| o.key.ch_id == ch).await;
            }
            ChEffect::Deleted => self.drop_channel(ch).await,
            ChEffect::CloseSub { sub } => {
                let key = SubChKey {
                    ch_id: ch,
                    sub_id: *sub,
                };
                self.close_subs(|o| o.key == key).await;
            }
            ChEffect::ActiveFlag { sub, on } => {
                let key = SubChKey {
                    ch_id: ch,
                    sub_id: *sub,
                };
                if let Some(open) = self.view.open.iter_mut().find(|o| o.key == key) {
                    open.active = *on;
                    self.sync_channels();
                }
            }
            ChEffect::Joined { .. } | ChEffect::Left { .. } | ChEffect::LevelChanged { .. } => {}
        }
        let frame = Frame::text(id.cmd_id(), BranchId(0), text);
        self.write(frame).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sid(n: u8) -> SessionId {
        SessionId([n; 28])
    }

    #[test]
    fn p2p_request_open_data_close() {
        let (mut a, mut b) = (P2pLinks::default(), P2pLinks::default());
        assert!(a.request(sid(2)).is_ok());
        assert!(a.request(sid(2)).is_err(), "already pending");
        assert!(b.on_request(sid(1)));
        assert!(!b.on_request(sid(1)), "a repeated request is ignored");
        assert!(
            a.open(sid(2)).is_err(),
            "only the receiver of a request opens it"
        );
        assert!(b.open(sid(1)).is_ok());
        assert!(a.on_open(sid(2)));
        assert!(a.is_accepted(&sid(2)) && b.is_accepted(&sid(1)));
        assert!(!a.on_open(sid(2)), "no second open");
        assert!(a.request(sid(2)).is_err(), "already connected");
        assert!(b.close(&sid(1)) && a.close(&sid(2)));
        assert!(!a.is_accepted(&sid(2)) && !a.close(&sid(2)));
        assert!(!b.on_open(sid(3)), "an open without a request is ignored");
    }

    #[test]
    fn p2p_lists_are_bounded() {
        let mut a = P2pLinks::default();
        for n in 0..MAX_P2P {
            let mut id = [0u8; 28];
            id[..8].copy_from_slice(&(n as u64).to_le_bytes());
            a.request(SessionId(id)).unwrap();
        }
        assert!(a.request(sid(200)).is_err());
        assert!(!a.on_request(sid(201)));
        assert_eq!(a.clear().len(), MAX_P2P);
    }
}
