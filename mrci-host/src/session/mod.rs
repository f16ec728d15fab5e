//! One client session: a task that owns the connection and the session state, and routes the
//! client's frames to the commands it announced (PROTOCOL.md §1.6–1.10, §2.3–2.5).
//!
//! [`Session::run`] is a single `select!` loop over cancellation, instance output, bus
//! deliveries and client frames. The state is split among owners with their own invariants:
//! [`Conn`] (the connection and output batching), [`Instances`] (every running command
//! instance and the control-frame policy), [`LoadedCommands`] (what was announced), the
//! [`SessionView`] (user, channels, P2P links), [`Published`] (where the view is
//! published) and [`ModuleLists`] (what the session's modules listed for it). Nothing else ever touches the session's state.
//!
//! Invariant: the client can only run a command id that was announced to it, and every
//! command id announced was either still loaded or followed by ASYNC_RM_CMD.

mod channels;
mod cmds;
mod conn;
mod events;
mod instances;
mod lifecycle;
mod listing;
mod login;
mod modules;
mod p2p;
pub(crate) mod render;
mod requests;
mod state;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use mrci_modrun::InstanceKey;
use mrci_proto::{BranchId, CmdId, Frame, SessionId, TypeId, async_id::AsyncId};
use tokio_util::sync::CancellationToken;

pub(crate) use self::conn::CLOSE_WAIT;
use self::{
    channels::cast_blocked,
    conn::Conn,
    instances::{Fed, Instances, Next, TOO_FAST},
    lifecycle::Lifecycle,
    listing::ModuleLists,
};
pub(crate) use self::{
    cmds::{LoadedCommands, allowed_internal, allowed_modules},
    state::{CmdSummary, OpenSub, Published, SessionView, UserView},
};
use crate::{
    bus::{Inbox, Incoming},
    cmd::{Exec, Inline, Refusal, SessionMsg, SessionRequest, refuse},
    host::HostCtx,
    stream::Stream,
};

/// Completes at `at`; never without one.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Completes when the parked GEN_FILE frame (if any) reached its instance.
async fn delivered(parked: &mut Option<futures::future::BoxFuture<'static, ()>>) {
    match parked {
        Some(fut) => fut.await,
        None => std::future::pending().await,
    }
}

/// A ready session (after the handshake).
pub(crate) struct Session {
    host: Arc<HostCtx>,
    conn: Conn,
    /// A GEN_FILE frame waiting for room in its instance; no client frame is read meanwhile.
    parked: Option<futures::future::BoxFuture<'static, ()>>,
    inbox: Inbox,
    instances: Instances,
    cmds: LoadedCommands,
    view: SessionView,
    published: Published,
    life: Lifecycle,
    lists: ModuleLists,
}

/// The facts the handshake established.
pub(crate) struct Admitted {
    /// The session id sent in the host header.
    pub(crate) sid: SessionId,
    /// The client's address.
    pub(crate) peer: SocketAddr,
    /// The client's application name.
    pub(crate) app: String,
    /// The connection, plain or TLS.
    pub(crate) stream: Stream,
}

impl Session {
    /// Builds the session for an admitted connection and registers it on the bus.
    pub(crate) fn new(
        host: Arc<HostCtx>,
        admitted: Admitted,
        ticket: crate::admission::Ticket,
        cancel: CancellationToken,
    ) -> Self {
        let Admitted {
            sid,
            peer,
            app,
            stream,
        } = admitted;
        let view = SessionView::new(
            sid,
            crate::host::normalise_ip(peer.ip()),
            app,
            stream.is_tls(),
        );
        // The live settings: a runtime change of a limit applies to the next connection.
        let settings = host.settings();
        let limits = &settings.limits;
        let conn = Conn::new(
            stream,
            conn::ConnLimits {
                max_payload: limits.max_payload,
                max_payload_before_login: limits.max_payload_before_login,
                frame_stall: Duration::from_secs(limits.frame_stall_secs),
                write_stall: Duration::from_secs(limits.write_stall_secs),
            },
        );
        let instances = Instances::new(limits.output_budget_bytes);
        let published = Published::new(&view);
        let inbox = host.bus.register(sid, cancel.clone());
        let login_timeout = Duration::from_secs(limits.login_timeout_secs);
        let life = Lifecycle::new(cancel, ticket, login_timeout);
        Self {
            host,
            conn,
            parked: None,
            inbox,
            instances,
            cmds: LoadedCommands::default(),
            view,
            published,
            life,
            lists: ModuleLists::default(),
        }
    }

    /// Runs the session until the client leaves, the session is ended, or the host shuts down.
    pub(crate) async fn run(mut self) {
        let sid = self.view.sid;
        self.host
            .log_session_event(&self.view, "Session Active")
            .await;
        let res = self.serve().await;
        match &res {
            Err(e) if e.is_disconnect() => {
                tracing::debug!(session = %sid, error = %e, "client disconnected");
            }
            Err(e) => tracing::info!(session = %sid, error = %e, "session closed"),
            Ok(()) => {}
        }
        self.finish().await;
    }

    async fn serve(&mut self) -> crate::Result<()> {
        self.reload_commands().await?;
        self.conn
            .send(AsyncId::RDY.text_frame("\nReady!\n\n"))
            .await?;
        let grace = Duration::from_secs(self.host.settings().limits.shutdown_grace_secs);
        let mut drain_deadline = None;
        loop {
            // An ending session still delivers the events already queued for it (the
            // host's closing message, a ban's notice).
            if self.instances.is_draining() && !self.instances.any_busy() && self.inbox.is_empty() {
                return Ok(());
            }
            // Output leaves once nothing more is queued, so replies and casts are batched.
            if self.conn.is_dirty() && !self.instances.has_output() && self.inbox.is_empty() {
                self.conn.flush().await?;
            }
            let deadline = sleep_until(drain_deadline);
            tokio::select! {
                biased;
                () = self.life.ending(), if !self.instances.is_draining() => {
                    self.instances.drain();
                    drain_deadline = Some(tokio::time::Instant::now() + grace);
                }
                () = self.life.login_expired(), if !self.instances.is_draining() => {
                    let secs = self.life.login_timeout().as_secs();
                    tracing::info!(session = %self.view.sid, secs, "not logged in in time; closing");
                    let why = format!("\nYou did not log in within {secs} seconds; the connection is closed.\n");
                    self.send_sys_text(&why, false).await?;
                    self.life.end();
                }
                () = deadline => return Ok(()),
                next = self.instances.next() => self.handle_instance(next).await?,
                Some(incoming) = self.inbox.recv() => match incoming {
                    Incoming::Event(event) => match self.handle_event(&event).await {
                        // The database being away must not end sessions; the event's re-read
                        // is lost, the next one catches up.
                        Err(e) if e.is_db_unreachable() => {
                            tracing::warn!(session = %self.view.sid, error = %e, "event not applied: database unreachable");
                        }
                        other => other?,
                    },
                    Incoming::Cast(cast) => self.handle_cast(&cast).await?,
                },
                () = delivered(&mut self.parked) => self.parked = None,
                frame = self.conn.next(), if self.parked.is_none() => match frame {
                    Some(frame) => self.dispatch(frame?).await?,
                    None => return Ok(()),
                },
            }
        }
    }

    async fn finish(&mut self) {
        let sid = self.view.sid;
        self.leave_channels(true).await;
        self.host.bus.unregister(&sid);
        let grace = self.host.modules.config().timers.grace;
        // Killed instances report their IDLE; a client that is still there sees them.
        for idle in self.instances.shutdown(grace, CLOSE_WAIT).await {
            let _ = self.conn.feed(idle).await;
        }
        self.conn.close().await;
        self.host
            .log_session_event(&self.view, "Session Ended")
            .await;
    }

    /// Publishes the view to commands and mirrors it into shared memory.
    fn publish(&mut self) {
        self.published.publish(&self.view);
    }

    /// Queues a refusal for the client on a command's pair.
    async fn refuse(
        &mut self,
        cmd: CmdId,
        branch: BranchId,
        refusal: &Refusal,
    ) -> crate::Result<()> {
        self.conn
            .feed(Frame::err(cmd, branch, &refusal.wire_text()))
            .await
    }

    /// Routes one client frame (PROTOCOL.md §2.3): by the command's [`Exec`] alone.
    async fn dispatch(&mut self, frame: Frame) -> crate::Result<()> {
        let (cmd, branch) = (frame.cmd_id, frame.branch_id);
        let key = InstanceKey {
            cmd_id: cmd,
            branch_id: branch,
        };
        let Some(loaded) = self.cmds.get(cmd) else {
            return self
                .refuse(cmd, branch, &refuse!("No such command id: {}.", cmd.0))
                .await;
        };
        let (exec, name) = (loaded.cmd.exec(), loaded.name.clone());
        if frame.type_id.is_refused_from_client() {
            return self.refuse_private_type(frame).await;
        }
        if frame.type_id.is_control() {
            if !self.instances.control(key, frame.type_id)
                && matches!(frame.type_id, TypeId::TERM_CMD | TypeId::KILL_CMD)
            {
                self.conn.feed(Frame::idle(cmd, branch)).await?;
            }
            return Ok(());
        }
        let fed = match exec {
            Exec::Task(run) => {
                let view = self.published.subscribe();
                self.instances
                    .feed_task(key, (&name, run), &self.host, view, frame)
            }
            Exec::Module(module) => {
                let (host, published, sid) = (&self.host, &mut self.published, self.view.sid);
                let runner = || modules::runner(host, published, sid);
                self.instances.feed_module(key, &module, runner, frame)
            }
            Exec::Local(_) | Exec::Inline(_) if self.instances.is_draining() => Fed::Draining,
            Exec::Local(reply) => {
                for (type_id, payload) in reply(&self.view) {
                    self.conn
                        .feed(Frame::new(type_id, cmd, branch, payload))
                        .await?;
                }
                return self.conn.feed(Frame::idle(cmd, branch)).await;
            }
            Exec::Inline(Inline::Cast) => return self.inline_cast(frame).await,
            Exec::Inline(Inline::ToPeer) => return self.inline_to_peer(frame).await,
        };
        match fed {
            Fed::Delivered => Ok(()),
            Fed::Parked(parked) => {
                self.parked = Some(parked);
                Ok(())
            }
            Fed::TooFast => self.refuse(cmd, branch, &Refusal::new(TOO_FAST)).await,
            Fed::Draining => {
                let why = Refusal::new("The host is shutting down.");
                self.refuse(cmd, branch, &why).await?;
                self.conn.feed(Frame::idle(cmd, branch)).await
            }
            Fed::Failed(why) => {
                self.refuse(cmd, branch, &Refusal::new(why)).await?;
                self.conn.feed(Frame::idle(cmd, branch)).await
            }
        }
    }

    /// A client sent a frame type only the host may send: ERR, and an activity-log entry.
    async fn refuse_private_type(&mut self, frame: Frame) -> crate::Result<()> {
        tracing::warn!(session = %self.view.sid, type_id = %frame.type_id, "client sent a host-only frame type");
        let entry = format!(
            "Suspicious action: client attempted to send a private TypeID: {}",
            frame.type_id.0
        );
        self.host.log_session_event(&self.view, &entry).await;
        let why = refuse!(
            "Frames of type {} cannot be sent to a command.",
            frame.type_id
        );
        self.refuse(frame.cmd_id, frame.branch_id, &why).await
    }

    async fn handle_instance(&mut self, next: Next) -> crate::Result<()> {
        match next {
            Next::Task(SessionMsg::Frame {
                cmd,
                branch,
                type_id,
                payload,
                budget,
            }) => {
                self.conn
                    .feed(Frame::new(type_id, cmd, branch, payload))
                    .await?;
                // The frame is in the connection's write buffer; its budget is free again.
                drop(budget);
                Ok(())
            }
            Next::Task(SessionMsg::Idle { cmd, branch }) => {
                self.instances.on_idle(InstanceKey {
                    cmd_id: cmd,
                    branch_id: branch,
                });
                self.conn.feed(Frame::idle(cmd, branch)).await
            }
            Next::Task(SessionMsg::Ended { cmd, branch }) => {
                self.instances.on_ended(InstanceKey {
                    cmd_id: cmd,
                    branch_id: branch,
                });
                Ok(())
            }
            Next::Task(SessionMsg::Request(req)) => self.apply(req).await,
            Next::Module(key, event) => self.handle_module_event(key, event).await,
        }
    }

    async fn apply(&mut self, req: SessionRequest) -> crate::Result<()> {
        match req {
            SessionRequest::Login { user_id } => self.login(user_id).await,
            SessionRequest::Logout => self.logout(true).await,
            SessionRequest::OpenSub { sub, reply } => {
                let _ = reply.send(self.open_sub(sub).await);
                Ok(())
            }
            SessionRequest::CloseSub { key, reply } => {
                let res = match self.close_subs(|o| o.key == key).await {
                    0 => Err(Refusal::new("That sub-channel is not open.")),
                    _ => Ok("Sub-channel closed.\n".into()),
                };
                let _ = reply.send(res);
                Ok(())
            }
            SessionRequest::SetDir(dir) => {
                self.view.cwd = dir;
                self.publish();
                Ok(())
            }
            SessionRequest::OwnerOverride(on) => {
                self.set_owner_override(on);
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

    /// Sets the channel owner override (only for a logged-in session).
    fn set_owner_override(&mut self, on: bool) {
        if self.view.user.is_some() {
            self.view.owner_override = on;
            self.publish();
        }
    }

    /// A system message (ASYNC_SYS_MSG) as TEXT or ERR.
    async fn send_sys_text(&mut self, s: &str, is_err: bool) -> crate::Result<()> {
        let frame = if is_err {
            AsyncId::SYS_MSG.frame(TypeId::ERR, mrci_proto::text::encode(s))
        } else {
            AsyncId::SYS_MSG.text_frame(s)
        };
        self.conn.feed(frame).await
    }
}
