//! The session's side of module commands (PROTOCOL.md §5.5–5.6): the per-session
//! [`mrci_modrun::Runner`] that `Instances` routes client frames through, relaying module
//! output, and acting on modules' async requests.
//!
//! Invariant: the runner exists only once the session has started a module process, and
//! every process it started is stopped when the command is unloaded or the session ends.

use mrci_modrun::{Event as ModEvent, ExtRequest, InstanceKey, ModuleRequest, Request, Runner};
use mrci_proto::{Frame, SessionId, SubChKey, TypeId, async_cmd::AsyncCmd, async_id::AsyncId};

use super::{Published, Session};
use crate::{
    bus::Cast,
    cmd::{Fail, Refusal, refuse},
    host::HostCtx,
};

/// The session's module runner: its processes get the session's shared-memory key.
pub(super) fn runner(host: &HostCtx, published: &mut Published, sid: SessionId) -> Runner {
    let ctx = mrci_modrun::Context {
        mem_ses: published.shm_key(),
        mem_host: host.host_shm_key().unwrap_or_default(),
        cwd: None,
        // Short enough to keep socket paths under the Unix limit.
        tag: hex::encode(&sid.0[..8]),
    };
    Runner::new(host.modules.config(), ctx)
}

impl Session {
    pub(super) async fn handle_module_event(
        &mut self,
        key: InstanceKey,
        event: ModEvent,
    ) -> crate::Result<()> {
        let (cmd, branch) = (key.cmd_id, key.branch_id);
        match event {
            ModEvent::Output(frame) => {
                if frame.type_id == TypeId::IDLE {
                    self.instances.module_invocation_ended(key);
                }
                self.conn
                    .feed(Frame::new(frame.type_id, cmd, branch, frame.payload))
                    .await
            }
            ModEvent::Request(req) => {
                self.module_request(req).await;
                Ok(())
            }
            ModEvent::Ended(ended) => {
                self.instances.module_invocation_ended(key);
                if ended.cause.is_failure() {
                    crate::metrics::module(false);
                    let name = self
                        .cmds
                        .get(cmd)
                        .map_or_else(|| cmd.0.to_string(), |l| l.name.clone());
                    tracing::warn!(command = %name, cause = ?ended.cause, status = ?ended.status, pid = ended.pid, "module command ended abnormally");
                    let why = refuse!(
                        "The module command {name} ended abnormally ({:?}).",
                        ended.cause
                    );
                    let crash = AsyncId::EXE_CRASH
                        .frame(TypeId::ERR, mrci_proto::text::encode(&why.wire_text()));
                    self.conn.feed(crash).await?;
                }
                if let Some(err) = ended.client_error() {
                    self.conn
                        .feed(Frame::err(cmd, branch, err.trim_end()))
                        .await?;
                    self.conn.feed(Frame::idle(cmd, branch)).await?;
                }
                Ok(())
            }
        }
    }

    /// Acts on a validated module request (PROTOCOL.md §5.6). Requests that need session
    /// state are checked here; the rest of the seed's inter-session events are logged and
    /// dropped, since account and channel changes go through the host's own commands.
    async fn module_request(&mut self, req: ModuleRequest) {
        match req.request {
            Request::Ext(ExtRequest::PingPeers) => {
                let _ = self.ping_peers().await;
            }
            Request::Ext(ExtRequest::OpenSubCh(key)) => self.module_open_sub(key).await,
            Request::Ext(ExtRequest::CloseSubCh(key)) => {
                self.close_subs(|o| o.key == key).await;
            }
            Request::Ext(ExtRequest::OwnerOverride(on)) => self.set_owner_override(on),
            Request::Ext(ExtRequest::SetDir(dir)) => {
                if let Some(runner) = self.instances.runner_mut() {
                    runner.context_mut().cwd = Some(dir.into());
                }
            }
            Request::Ext(ExtRequest::DebugText(text)) => {
                tracing::info!(session = %self.view.sid, "module: {text}");
            }
            Request::Seed(AsyncCmd::Cast { subs, frame }) => {
                self.module_cast(subs, frame, false).await;
            }
            Request::Seed(AsyncCmd::LimitedCast { subs, frame }) => {
                self.module_cast(subs, frame, true).await;
            }
            Request::Seed(AsyncCmd::P2p { dst, src, frame }) => {
                if src != self.view.sid || !self.view.p2p.is_accepted(&dst) {
                    tracing::warn!(session = %self.view.sid, "module P2P data without an accepted link; dropped");
                    return;
                }
                let cast = Cast {
                    id: AsyncId::P2P,
                    src,
                    type_id: frame.type_id,
                    payload: frame.data,
                };
                self.host.bus.to_peer(&dst, cast).await;
            }
            Request::Seed(AsyncCmd::Logout) => {
                let _ = self.logout(true).await;
            }
            Request::Seed(AsyncCmd::EndSession) => self.life.end(),
            Request::Seed(AsyncCmd::CloseP2p { sid }) => {
                if sid == self.view.sid {
                    self.close_all_p2p();
                } else {
                    tracing::warn!(session = %self.view.sid, "module asked to close another session's links; dropped");
                }
            }
            Request::Seed(cmd) => self.module_hint(cmd),
            other => {
                tracing::info!(session = %self.view.sid, request = ?other, "module request refused by this host (see MODULES.md §6); dropped");
            }
        }
    }

    /// A module's cast: its header may only name sub-channels the session may write to.
    async fn module_cast(
        &mut self,
        subs: mrci_proto::SubChList,
        frame: mrci_proto::async_cmd::Embedded,
        limited: bool,
    ) {
        let writable = self.view.writable_list();
        if frame.type_id == TypeId::PING_PEERS || !subs.iter().all(|k| writable.contains(k)) {
            tracing::warn!(session = %self.view.sid, "module cast to sub-channels the session may not write; dropped");
            return;
        }
        let cast = Cast {
            id: if limited {
                AsyncId::LIMITED_CAST
            } else {
                AsyncId::CAST
            },
            src: self.view.sid,
            type_id: frame.type_id,
            payload: frame.data,
        };
        self.host.bus.cast(&subs, limited, cast).await;
    }

    /// A module asked to open a sub-channel: the same access checks as `open_sub_ch`.
    async fn module_open_sub(&mut self, key: SubChKey) {
        let store = &self.host.store;
        let planned = match store.sub_channel_by_id(key.ch_id, key.sub_id).await {
            Ok(Some(sub)) => crate::cmd::plan_open(store, &self.view, &sub).await,
            Ok(None) => Err(Refusal::new("No such sub-channel.").into()),
            Err(e) => Err(e.into()),
        };
        let open = match planned {
            Ok(open) => open,
            Err(Fail::Refused(why)) => {
                tracing::warn!(session = %self.view.sid, "module asked to open a sub-channel the session may not open: {why}");
                return;
            }
            Err(Fail::Internal(e)) => {
                tracing::warn!(session = %self.view.sid, error = %e, "module open_sub failed");
                return;
            }
        };
        if let Err(why) = self.open_sub(open).await {
            tracing::info!(session = %self.view.sid, "module open_sub refused: {why}");
        }
    }
}
