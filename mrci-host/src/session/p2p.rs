//! Peer-to-peer links (PROTOCOL.md §4.3 ids 21, 24, 25; COMMANDS.md §2.10): the pure link
//! state [`P2pLinks`], and the session's side of requests, acceptances, closes and peer data.
//!
//! Invariant: a pending link keeps its direction, so only the receiver of a request can open
//! it; each list holds at most [`MAX_P2P`] sessions (the shared-memory lists' size), and a
//! session id is in at most one list.

use bytes::{Bytes, BytesMut};
use mrci_proto::{Frame, SessionId, TypeId, async_id::AsyncId};

use super::{Session, cast_blocked, render};
use crate::{
    bus::{Cast, Event, P2pKind},
    cmd::Refusal,
};

/// Links per direction and state (seed 000 sizes the shared-memory lists at 100).
pub(crate) const MAX_P2P: usize = 100;

/// The P2P state machine, with the direction of pending links kept.
#[derive(Clone, Debug, Default)]
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
    pub(crate) fn request(&mut self, dst: SessionId) -> Result<(), Refusal> {
        if self.accepted.contains(&dst) {
            return Err(Refusal::new("You are already connected to that peer."));
        }
        if self.outgoing.contains(&dst) || self.incoming.contains(&dst) {
            return Err(Refusal::new("A request with that peer is already pending."));
        }
        if self.outgoing.len() + self.incoming.len() >= MAX_P2P {
            return Err(Refusal::new("Too many pending peer requests."));
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
    pub(crate) fn open(&mut self, dst: SessionId) -> Result<(), Refusal> {
        if self.accepted.contains(&dst) {
            return Err(Refusal::new("You are already connected to that peer."));
        }
        if !self.incoming.contains(&dst) {
            return Err(Refusal::new("That peer has not asked for a link."));
        }
        if self.accepted.len() >= MAX_P2P {
            return Err(Refusal::new("Too many peer links."));
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

    /// Links waiting for an answer, either direction.
    pub(crate) fn pending(&self) -> Vec<SessionId> {
        self.outgoing
            .iter()
            .chain(&self.incoming)
            .copied()
            .collect()
    }

    /// Links both sides accepted.
    pub(crate) fn accepted(&self) -> &[SessionId] {
        &self.accepted
    }
}

impl Session {
    /// A P2P command of this session (request, open or close to `peer`).
    pub(super) fn p2p_command(
        &mut self,
        peer: SessionId,
        kind: P2pKind,
    ) -> Result<String, Refusal> {
        if peer == self.view.sid {
            return Err(Refusal::new("That is your own session."));
        }
        let links = &mut self.view.p2p;
        match kind {
            P2pKind::Request => links.request(peer)?,
            P2pKind::Open => links.open(peer)?,
            P2pKind::Close => {
                if !links.close(&peer) {
                    return Err(Refusal::new(
                        "There is no pending request or link with that peer.",
                    ));
                }
            }
        }
        let info = match kind {
            P2pKind::Request => render::peer_info_payload(&self.view),
            P2pKind::Open | P2pKind::Close => Bytes::new(),
        };
        let event = Event::P2p {
            src: self.view.sid,
            kind,
            info,
        };
        if !self.host.bus.to_session(&peer, event) {
            self.view.p2p.close(&peer);
            self.sync_channels();
            return Err(Refusal::new("No such session."));
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
        let links = &mut self.view.p2p;
        let forward = match kind {
            P2pKind::Request => links
                .on_request(src)
                .then(|| (TypeId::P2P_REQUEST, info.clone())),
            P2pKind::Open => links
                .on_open(src)
                .then(|| (TypeId::P2P_OPEN, Bytes::copy_from_slice(&src.0))),
            P2pKind::Close => links
                .close(&src)
                .then(|| (TypeId::P2P_CLOSE, Bytes::copy_from_slice(&src.0))),
        };
        let Some((type_id, payload)) = forward else {
            return Ok(());
        };
        self.sync_channels();
        self.conn.feed(AsyncId::P2P.frame(type_id, payload)).await
    }

    /// ASYNC_CLOSE_P2P: `sid` went away.
    pub(super) async fn handle_close_p2p(&mut self, sid: SessionId) -> crate::Result<()> {
        if !self.view.p2p.close(&sid) {
            return Ok(());
        }
        self.sync_channels();
        let payload = Bytes::copy_from_slice(&sid.0);
        self.conn
            .feed(AsyncId::P2P.frame(TypeId::P2P_CLOSE, payload))
            .await
    }

    /// `to_peer`: `[28-byte session id][data]` to a peer with an accepted link.
    pub(super) async fn inline_to_peer(&mut self, frame: Frame) -> crate::Result<()> {
        let (cmd, branch) = (frame.cmd_id, frame.branch_id);
        let dst = frame
            .payload
            .get(..SessionId::LEN)
            .and_then(|b| <[u8; SessionId::LEN]>::try_from(b).ok())
            .map(SessionId);
        let refusal = match dst {
            None => Some("The frame must start with the 28-byte session id of the peer."),
            Some(dst) if !self.view.p2p.is_accepted(&dst) => {
                Some("There is no accepted P2P link with that session.")
            }
            Some(_) if cast_blocked(frame.type_id) => {
                Some("Frames of that type cannot be sent to a peer.")
            }
            Some(dst) => {
                let cast = Cast {
                    id: AsyncId::P2P,
                    src: self.view.sid,
                    type_id: frame.type_id,
                    payload: frame.payload.slice(SessionId::LEN..),
                };
                self.host.bus.to_peer(&dst, cast).await;
                None
            }
        };
        if let Some(text) = refusal {
            self.refuse(cmd, branch, &Refusal::new(text)).await?;
        }
        self.conn.feed(Frame::idle(cmd, branch)).await
    }

    /// Peer data from `src` for the client: the source id goes in front (PROTOCOL.md §4.3
    /// id 24); data from a session without an accepted link is dropped.
    pub(super) fn peer_data_frame(&self, cast: &Cast) -> Option<Frame> {
        if !self.view.p2p.is_accepted(&cast.src) {
            return None;
        }
        let mut payload = BytesMut::with_capacity(SessionId::LEN + cast.payload.len());
        payload.extend_from_slice(&cast.src.0);
        payload.extend_from_slice(&cast.payload);
        Some(AsyncId::P2P.frame(cast.type_id, payload.freeze()))
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
