//! The session's side of channels and casting (COMMANDS.md §2.7–2.9, PROTOCOL.md §4.3 ids
//! 5, 21, 22, 26–39, §9.4).
//!
//! The session owns its open list and channel list; after every change it tells the bus
//! (which routes casts and channel events by them), mirrors them into shared memory and
//! republishes its view. Casts are delivered straight from here rather than through a command
//! task, so a cast costs one hop.
//!
//! Invariant: the bus's routing entry, the shared-memory lists and the published view are
//! updated together, by [`Session::sync_channels`], after every change; at most
//! [`SubChList::SLOTS`] sub-channels are open.

use bytes::BytesMut;
use mrci_proto::{Frame, SubChKey, SubChList, TypeId, async_id::AsyncId, payload::PeerStat};

use super::{OpenSub, Session, render};
use crate::{
    bus::{Cast, ChEffect},
    cmd::{Refusal, refuse},
};

/// Types a client may not cast or send to a peer (COMMANDS.md §2.9).
pub(super) fn cast_blocked(type_id: TypeId) -> bool {
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

impl Session {
    /// Recomputes the active flag and pushes the channel state to the bus, shared memory and
    /// the published view.
    pub(super) fn sync_channels(&mut self) {
        self.view.active =
            self.host.settings().channels.active_updates || self.view.open.iter().any(|o| o.active);
        let sid = self.view.sid;
        self.host
            .bus
            .set_open(&sid, self.view.open_list(), self.view.active);
        self.host.bus.set_channels(&sid, &self.view.channels);
        self.publish();
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
            payload: render::peer_info_payload(&self.view),
        };
        self.host.bus.cast(&header, true, cast).await;
    }

    /// Opens a sub-channel after the command checked access (COMMANDS.md §2.7).
    pub(super) async fn open_sub(&mut self, sub: OpenSub) -> Result<String, Refusal> {
        if sub.key.ch_id == 0 {
            return Err(Refusal::new("Channel id 0 is not valid."));
        }
        if self.view.open.iter().any(|o| o.key == sub.key) {
            return Err(Refusal::new("That sub-channel is already open."));
        }
        if self.view.open.len() >= SubChList::SLOTS {
            return Err(refuse!(
                "The maximum of {} open sub-channels is reached.",
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
        self.close_all_p2p();
        if was_active {
            self.peer_stat(old, disconnected).await;
        }
    }

    /// Ends every P2P link and request of this session and tells the peers
    /// (ASYNC_CLOSE_P2P).
    pub(super) fn close_all_p2p(&mut self) {
        let peers = self.view.p2p.clear();
        self.sync_channels();
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
            let n = self.host.bus.cast(&header, false, cast).await;
            crate::metrics::casts_delivered(n);
        }
        self.conn
            .feed(Frame::idle(frame.cmd_id, frame.branch_id))
            .await
    }

    /// Sends a ping (ext 44): a limited cast of this session's PEER_INFO.
    pub(super) async fn ping_peers(&mut self) -> Result<String, Refusal> {
        if !self.view.active {
            return Err(Refusal::new(
                "This session is not active-updating, so no peer would answer.",
            ));
        }
        let header = self.view.writable_list();
        let cast = Cast {
            id: AsyncId::LIMITED_CAST,
            src: self.view.sid,
            type_id: TypeId::PING_PEERS,
            payload: render::peer_info_payload(&self.view),
        };
        let n = self.host.bus.cast(&header, true, cast).await;
        Ok(format!("Ping sent to {n} peers.\n"))
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
                    payload: render::peer_info_payload(&self.view),
                };
                self.host.bus.to_peer(&cast.src, reply).await;
                AsyncId::LIMITED_CAST.frame(TypeId::PEER_INFO, cast.payload.clone())
            }
            AsyncId::P2P => match self.peer_data_frame(cast) {
                Some(frame) => frame,
                None => return Ok(()),
            },
            id => id.frame(cast.type_id, cast.payload.clone()),
        };
        self.conn.feed(frame).await
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
        self.conn.feed(id.text_frame(text)).await
    }
}
