//! One client session: a task that owns the connection, the session state, the loaded command
//! table and the instances running on it (PROTOCOL.md §1.6–1.10, §2.3–2.5, STYLE.md §2.4).
//!
//! [`Session::run`] is a single `select!` loop over cancellation, instance output, bus
//! deliveries and client frames. Nothing else ever touches the session's state.
//!
//! Invariant: the client can only run a command id that was announced to it, and every
//! command id announced was either still loaded or followed by ASYNC_RM_CMD.

mod channels;
mod cmds;
mod events;
mod modules;
mod state;

use std::{collections::HashMap, net::SocketAddr, sync::Arc, time::Duration};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use mrci_proto::{
    BranchId, Frame, SessionId, TypeId, async_id::AsyncId, codec::MrciCodec, ids::cmd_id32, text,
};
use tokio::sync::{mpsc, watch};
use tokio_util::{codec::Framed, sync::CancellationToken};

use self::channels::P2pLinks;
pub use self::{
    cmds::{LoadedCommands, allowed_internal, allowed_modules},
    state::{CmdSummary, OpenSub, SessionView, UserView},
};
use crate::{
    bus::{CastDelivery, Delivery},
    cmd::{self, InstanceHandle, SessionMsg, SessionRequest},
    host::HostCtx,
    stream::Stream,
};

/// How long in-flight commands may run on after the session was asked to end.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

struct Instance {
    handle: InstanceHandle,
    busy: bool,
}

/// A ready session (after the handshake).
pub struct Session {
    host: Arc<HostCtx>,
    conn: Framed<Stream, MrciCodec>,
    inbox: mpsc::Receiver<Delivery>,
    casts: mpsc::Receiver<CastDelivery>,
    p2p: P2pLinks,
    modrun: Option<mrci_modrun::Runner>,
    out_tx: mpsc::Sender<SessionMsg>,
    out_rx: mpsc::Receiver<SessionMsg>,
    cancel: CancellationToken,
    view: SessionView,
    view_tx: watch::Sender<Arc<SessionView>>,
    cmds: LoadedCommands,
    instances: HashMap<u32, Instance>,
    shm: Option<mrci_shm::SessionShm>,
    ending: bool,
}

/// The facts the handshake established.
pub struct Admitted {
    /// The session id sent in the host header.
    pub sid: SessionId,
    /// The client's address.
    pub peer: SocketAddr,
    /// The client's application name.
    pub app: String,
    /// The connection, plain or TLS.
    pub stream: Stream,
}

impl Session {
    /// Builds the session for an admitted connection and registers it on the bus.
    pub fn new(host: Arc<HostCtx>, admitted: Admitted, cancel: CancellationToken) -> Self {
        let Admitted {
            sid,
            peer,
            app,
            stream,
        } = admitted;
        let tls = stream.is_tls();
        let codec = MrciCodec::with_max(host.config.limits.max_payload);
        let conn = Framed::new(stream, codec);
        let (inbox_tx, inbox) = mpsc::channel(host.config.limits.inbox_capacity.max(8));
        let (cast_tx, casts) = mpsc::channel(host.config.channels.cast_queue.max(2));
        let (out_tx, out_rx) = mpsc::channel(256);
        let view = SessionView::new(sid, crate::host::normalise_ip(peer.ip()), app, tls);
        let (view_tx, _) = watch::channel(Arc::new(view.clone()));
        let shm = host.create_session_shm(&view);
        let queues = crate::bus::Queues {
            events: inbox_tx,
            casts: cast_tx,
        };
        host.bus.register(sid, queues, cancel.clone());
        Self {
            host,
            conn,
            inbox,
            casts,
            p2p: P2pLinks::default(),
            modrun: None,
            out_tx,
            out_rx,
            cancel,
            view,
            view_tx,
            cmds: LoadedCommands::default(),
            instances: HashMap::new(),
            shm,
            ending: false,
        }
    }

    /// Runs the session until the client leaves, the session is ended, or the host shuts down.
    pub async fn run(mut self) {
        let sid = self.view.sid;
        self.host
            .log_session_event(&self.view, "Session Active")
            .await;
        let res = self.serve().await;
        if let Err(e) = &res {
            tracing::info!(session = %sid, error = %e, "session closed");
        }
        self.finish().await;
    }

    async fn serve(&mut self) -> crate::Result<()> {
        self.reload_commands().await?;
        self.write(Frame::text(
            AsyncId::RDY.cmd_id(),
            BranchId(0),
            "\nReady!\n\n",
        ))
        .await?;
        let mut drain_deadline = None;
        loop {
            if self.ending && self.instances.values().all(|i| !i.busy) {
                return Ok(());
            }
            let deadline = async {
                match drain_deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                _ = self.cancel.cancelled(), if !self.ending => {
                    self.ending = true;
                    drain_deadline = Some(tokio::time::Instant::now() + DRAIN_GRACE);
                }
                _ = deadline => return Ok(()),
                Some(msg) = self.out_rx.recv() => {
                    self.handle_instance(msg).await?;
                    self.flush_output().await?;
                }
                Some(delivery) = self.inbox.recv() => self.handle_event(&delivery).await?,
                Some(cast) = self.casts.recv() => self.handle_cast(&cast).await?,
                (key, event) = Self::next_module_event(&mut self.modrun) => {
                    self.handle_module_event(key, event).await?;
                }
                frame = self.conn.next() => match frame {
                    Some(Ok(frame)) => self.dispatch(frame).await?,
                    Some(Err(e)) => return Err(e.into()),
                    None => return Ok(()),
                },
            }
        }
    }

    async fn finish(&mut self) {
        let sid = self.view.sid;
        for inst in self.instances.values() {
            inst.handle.kill.cancel();
        }
        self.leave_channels(true).await;
        self.shutdown_modules().await;
        self.host.bus.unregister(&sid);
        // Let killed instances report their IDLE; a client that is still there sees them.
        let flush = async {
            while !self.instances.is_empty() {
                match self.out_rx.recv().await {
                    Some(SessionMsg::Ended { cmd, branch }) => {
                        self.instances.remove(&cmd_id32(cmd, branch));
                    }
                    Some(SessionMsg::Idle { cmd, branch }) => {
                        let _ = self.conn.feed(Frame::idle(cmd, branch)).await;
                    }
                    Some(_) => {}
                    None => break,
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(3), flush).await;
        // Closing the sink flushes and sends TLS close_notify.
        let _ = tokio::time::timeout(
            Duration::from_secs(3),
            SinkExt::<Frame>::close(&mut self.conn),
        )
        .await;
        self.host
            .log_session_event(&self.view, "Session Ended")
            .await;
        drop(self.shm.take());
    }

    async fn write(&mut self, frame: Frame) -> crate::Result<()> {
        self.conn.send(frame).await?;
        Ok(())
    }

    /// Queues a command's output frame; [`Session::flush_output`] sends it once no more
    /// output is waiting, so a reply and its IDLE usually leave in one write.
    async fn write_batched(&mut self, frame: Frame) -> crate::Result<()> {
        self.conn.feed(frame).await?;
        Ok(())
    }

    /// Flushes queued output unless more command output is already waiting.
    async fn flush_output(&mut self) -> crate::Result<()> {
        if self.out_rx.is_empty() {
            SinkExt::<Frame>::flush(&mut self.conn).await?;
        }
        Ok(())
    }

    async fn dispatch(&mut self, frame: Frame) -> crate::Result<()> {
        let (cmd, branch) = (frame.cmd_id, frame.branch_id);
        let Some(target) = self.cmds.get(cmd).map(|l| l.def.clone()) else {
            let msg = format!("err: No such command id: {}.", cmd.0);
            return self.write(Frame::err(cmd, branch, &msg)).await;
        };
        if frame.type_id.is_refused_from_client() {
            tracing::warn!(session = %self.view.sid, type_id = %frame.type_id, "client sent a host-only frame type");
            let entry = format!(
                "Suspicious action: client attempted to send a private TypeID: {}",
                frame.type_id.0
            );
            self.host.log_session_event(&self.view, &entry).await;
            let msg = format!(
                "err: Frames of type {} cannot be sent to a command.",
                frame.type_id
            );
            return self.write(Frame::err(cmd, branch, &msg)).await;
        }
        let key = cmd_id32(cmd, branch);
        let def = match target {
            cmd::CmdRef::Module(m) => {
                if self.ending && !frame.type_id.is_control() {
                    let msg = "err: The host is shutting down.";
                    self.write(Frame::err(cmd, branch, msg)).await?;
                    return self.write(Frame::idle(cmd, branch)).await;
                }
                return self.dispatch_module(&m, frame).await;
            }
            cmd::CmdRef::Internal(def) => def,
        };
        if frame.type_id.is_control() {
            return self.control(key, frame.type_id);
        }
        // Casts and peer data run in the session itself: one hop, in send order.
        match def.name {
            cmd::CAST => return self.inline_cast(frame).await,
            cmd::TO_PEER => return self.inline_to_peer(frame).await,
            _ => {}
        }
        if !self.instances.contains_key(&key)
            && let Some(reply) = cmd::local_reply(def.name, &self.view)
        {
            for (type_id, payload) in reply {
                self.conn
                    .feed(Frame::new(type_id, cmd, branch, payload))
                    .await?;
            }
            return self.write(Frame::idle(cmd, branch)).await;
        }
        if !self.instances.contains_key(&key) {
            if self.ending {
                return self
                    .write(Frame::err(cmd, branch, "err: The host is shutting down."))
                    .await;
            }
            let handle = cmd::spawn_instance(
                def,
                Arc::clone(&self.host),
                cmd,
                branch,
                self.out_tx.clone(),
                self.view_tx.subscribe(),
            );
            self.instances.insert(
                key,
                Instance {
                    handle,
                    busy: false,
                },
            );
        }
        let Some(inst) = self.instances.get_mut(&key) else {
            return Ok(());
        };
        inst.busy = true;
        if inst.handle.input.try_send(frame).is_err() {
            let msg = "err: The command is not accepting input this fast; the frame was dropped.";
            return self.write(Frame::err(cmd, branch, msg)).await;
        }
        Ok(())
    }

    /// TERM/KILL/HALT/RESUME never start an instance (PROTOCOL.md §9 item 19).
    fn control(&mut self, key: u32, type_id: TypeId) -> crate::Result<()> {
        let Some(inst) = self.instances.get(&key) else {
            return Ok(());
        };
        match type_id {
            TypeId::TERM_CMD if inst.busy => {
                let _ = inst.handle.term.send(());
            }
            TypeId::KILL_CMD => inst.handle.kill.cancel(),
            // Internal commands do not loop, so there is nothing to halt or resume.
            _ => {}
        }
        Ok(())
    }

    async fn handle_instance(&mut self, msg: SessionMsg) -> crate::Result<()> {
        match msg {
            SessionMsg::Frame {
                cmd,
                branch,
                type_id,
                payload,
            } => {
                self.write_batched(Frame {
                    type_id,
                    cmd_id: cmd,
                    branch_id: branch,
                    payload,
                })
                .await
            }
            SessionMsg::Idle { cmd, branch } => {
                if let Some(inst) = self.instances.get_mut(&cmd_id32(cmd, branch)) {
                    inst.busy = false;
                }
                self.write_batched(Frame::idle(cmd, branch)).await
            }
            SessionMsg::Ended { cmd, branch } => {
                self.instances.remove(&cmd_id32(cmd, branch));
                Ok(())
            }
            SessionMsg::Request(req) => self.apply(req).await,
        }
    }

    async fn apply(&mut self, req: SessionRequest) -> crate::Result<()> {
        match req {
            SessionRequest::Login { user_id } => self.login(user_id).await,
            SessionRequest::Logout => self.logout(true).await,
            SessionRequest::End => {
                self.cancel.cancel();
                Ok(())
            }
            SessionRequest::OpenSub { sub, reply } => {
                let _ = reply.send(self.open_sub(sub).await);
                Ok(())
            }
            SessionRequest::CloseSub { key, reply } => {
                let res = match self.close_subs(|o| o.key == key).await {
                    0 => Err("err: That sub-channel is not open.".into()),
                    _ => Ok("Sub-channel closed.\n".into()),
                };
                let _ = reply.send(res);
                Ok(())
            }
            SessionRequest::OwnerOverride(on) => {
                if self.view.user.is_some() {
                    self.view.owner_override = on;
                    self.publish();
                }
                Ok(())
            }
            SessionRequest::Ping { reply } => {
                let _ = reply.send(self.ping_peers().await);
                Ok(())
            }
            SessionRequest::P2p { peer, kind, reply } => {
                let _ = reply.send(self.p2p_command(peer, kind));
                Ok(())
            }
        }
    }

    /// Publishes the view to commands and mirrors it into shared memory.
    fn publish(&mut self) {
        self.view.commands = self
            .cmds
            .iter()
            .map(|l| CmdSummary {
                id: l.id,
                name: l.name.clone(),
                def: l.def.clone(),
            })
            .collect();
        if let Some(shm) = &self.shm {
            crate::host::mirror_session(shm, &self.view);
        }
        self.view_tx.send_replace(Arc::new(self.view.clone()));
    }

    /// Recomputes the allowed command set and announces the difference.
    async fn reload_commands(&mut self) -> crate::Result<()> {
        let ranks = self.host.internal_command_ranks().await?;
        let rank = self.view.user.as_ref().map(|u| u.host_rank);
        let modules = self.host.modules.all();
        let mut module_ranks = HashMap::new();
        for m in &modules {
            let ranks = self
                .host
                .store
                .command_ranks(&m.path.to_string_lossy())
                .await?;
            module_ranks.insert(m.path.clone(), ranks);
        }
        let target: Vec<cmd::CmdRef> = allowed_internal(rank, &ranks, self.host.features())
            .into_iter()
            .map(cmd::CmdRef::Internal)
            .chain(
                allowed_modules(rank, &modules, &module_ranks)
                    .into_iter()
                    .map(cmd::CmdRef::Module),
            )
            .collect();
        let diff = self.cmds.apply(&target);
        self.stop_module_commands(&diff.removed);
        for id in &diff.removed {
            for inst in self
                .instances
                .iter()
                .filter(|(k, _)| (**k & 0xffff) as u16 == id.0)
                .map(|(_, i)| i)
            {
                inst.handle.kill.cancel();
            }
            let payload = Bytes::copy_from_slice(&id.0.to_le_bytes());
            self.write(Frame {
                type_id: TypeId::CMD_ID,
                cmd_id: AsyncId::RM_CMD.cmd_id(),
                branch_id: BranchId(0),
                payload,
            })
            .await?;
        }
        for id in &diff.added {
            let Some(loaded) = self.cmds.get(*id) else {
                continue;
            };
            let payload = cmd::announcement(&loaded.def, loaded.id, &loaded.name);
            self.write(Frame {
                type_id: TypeId::NEW_CMD,
                cmd_id: AsyncId::ADD_CMD.cmd_id(),
                branch_id: BranchId(0),
                payload,
            })
            .await?;
        }
        self.publish();
        Ok(())
    }

    async fn send_sys_text(&mut self, s: &str, is_err: bool) -> crate::Result<()> {
        let type_id = if is_err { TypeId::ERR } else { TypeId::TEXT };
        let payload = Bytes::from(text::encode(s));
        self.write(Frame {
            type_id,
            cmd_id: AsyncId::SYS_MSG.cmd_id(),
            branch_id: BranchId(0),
            payload,
        })
        .await
    }

    async fn send_my_info(&mut self) -> crate::Result<()> {
        let payload = crate::host::my_info_payload(&self.view);
        self.write(Frame {
            type_id: TypeId::MY_INFO,
            cmd_id: AsyncId::SYS_MSG.cmd_id(),
            branch_id: BranchId(0),
            payload,
        })
        .await
    }

    async fn login(&mut self, user_id: mrci_proto::UserId) -> crate::Result<()> {
        if self.view.user.is_some() {
            self.logout(false).await?;
        }
        let Some(user) = self.host.user_view(&user_id).await? else {
            return self
                .send_sys_text("err: The account no longer exists.", true)
                .await;
        };
        self.view.user = Some(user);
        self.host.bus.set_user(&self.view.sid, Some(user_id));
        self.load_channels().await?;
        self.send_my_info().await?;
        self.reload_commands().await
    }

    async fn logout(&mut self, reload: bool) -> crate::Result<()> {
        if self.view.user.take().is_none() {
            return Ok(());
        }
        self.leave_channels(true).await;
        self.host.bus.set_user(&self.view.sid, None);
        self.publish();
        if reload {
            self.reload_commands().await
        } else {
            Ok(())
        }
    }
}
