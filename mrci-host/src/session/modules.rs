//! The session's side of module commands (PROTOCOL.md §5.5–5.6): routing client frames to
//! run-mode processes through a per-session [`mrci_modrun::Runner`], relaying their output,
//! and acting on their async requests.
//!
//! Invariant: the runner exists only while the session has started a module process, and
//! every process it started is stopped when the command is unloaded or the session ends.

use mrci_modrun::{
    Event as ModEvent, ExtRequest, InstanceKey, ModuleRequest, Request, Routed, Runner, Target,
};
use mrci_proto::{
    BranchId, Frame, IpcFrame, SubChKey, TypeId, async_cmd::AsyncCmd, async_id::AsyncId,
};

use super::Session;
use crate::{bus::Cast, modules::ModCmd};

impl Session {
    fn runner(&mut self) -> &mut Runner {
        let host = &self.host;
        let sid = self.view.sid;
        let shm_key = self.shm.as_ref().map(|s| s.key().to_owned());
        self.modrun.get_or_insert_with(|| {
            let ctx = mrci_modrun::Context {
                mem_ses: shm_key.unwrap_or_default(),
                mem_host: host.host_shm_key().unwrap_or_default(),
                cwd: None,
                // Short enough to keep socket paths under the Unix limit.
                tag: hex::encode(&sid.0[..8]),
            };
            Runner::new(host.modules.config(), ctx)
        })
    }

    /// Sends a client frame to the module command's process for its pair.
    pub(super) async fn dispatch_module(
        &mut self,
        cmd: &ModCmd,
        frame: Frame,
    ) -> crate::Result<()> {
        let (cmd_id, branch) = (frame.cmd_id, frame.branch_id);
        let key = InstanceKey {
            cmd_id,
            branch_id: branch,
        };
        let target = Target {
            exe: cmd.module.clone(),
            name: cmd.new_cmd.name.clone(),
        };
        let ipc = IpcFrame::new(frame.type_id, frame.payload);
        let routed = self.runner().route(key, &target, ipc);
        let refusal = match routed {
            Ok(Routed::Sent | Routed::Started) => return Ok(()),
            Ok(Routed::NoInstance) => {
                if matches!(frame.type_id, TypeId::KILL_CMD | TypeId::TERM_CMD) {
                    return self.write(Frame::idle(cmd_id, branch)).await;
                }
                return Ok(());
            }
            Ok(Routed::Busy) => {
                "err: The command is not accepting input this fast; the frame was dropped."
            }
            Ok(Routed::TooMany) => "err: Too many module commands are running in this session.",
            Err(ref e) => {
                tracing::error!(module = %cmd.module.display(), command = %cmd.new_cmd.name, error = %e, "module command failed to start");
                mrci_modrun::FAILED_TO_START.trim_end()
            }
        };
        self.write(Frame::err(cmd_id, branch, refusal)).await?;
        if !matches!(routed, Ok(Routed::Busy)) {
            self.write(Frame::idle(cmd_id, branch)).await?;
        }
        Ok(())
    }

    /// Waits for the next module event; pending forever when no runner exists.
    pub(super) async fn next_module_event(runner: &mut Option<Runner>) -> (InstanceKey, ModEvent) {
        match runner {
            Some(runner) => runner.next_event().await,
            None => std::future::pending().await,
        }
    }

    pub(super) async fn handle_module_event(
        &mut self,
        key: InstanceKey,
        event: ModEvent,
    ) -> crate::Result<()> {
        let (cmd, branch) = (key.cmd_id, key.branch_id);
        match event {
            ModEvent::Output(frame) => {
                self.write(Frame::new(frame.type_id, cmd, branch, frame.payload))
                    .await
            }
            ModEvent::Request(req) => {
                self.module_request(req).await;
                Ok(())
            }
            ModEvent::Ended(ended) => {
                if ended.cause.is_failure() {
                    let name = self
                        .cmds
                        .get(cmd)
                        .map_or_else(|| cmd.0.to_string(), |l| l.name.clone());
                    tracing::warn!(command = %name, cause = ?ended.cause, status = ?ended.status, pid = ended.pid, "module command ended abnormally");
                    let text = format!(
                        "err: The module command {name} ended abnormally ({:?}).",
                        ended.cause
                    );
                    self.write(Frame::err(AsyncId::EXE_CRASH.cmd_id(), BranchId(0), &text))
                        .await?;
                }
                if let Some(err) = ended.client_error() {
                    self.write(Frame::err(cmd, branch, err.trim_end())).await?;
                    self.write(Frame::idle(cmd, branch)).await?;
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
            Request::Ext(ExtRequest::OwnerOverride(on)) => {
                if self.view.user.is_some() {
                    self.view.owner_override = on;
                    self.publish();
                }
            }
            Request::Ext(ExtRequest::SetDir(dir)) => {
                self.runner().context_mut().cwd = Some(dir.into());
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
                if src != self.view.sid || !self.p2p.is_accepted(&dst) {
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
            Request::Seed(AsyncCmd::EndSession) => self.cancel.cancel(),
            other => {
                tracing::info!(session = %self.view.sid, request = ?other, "module request not supported by this host; dropped");
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
            Ok(None) => Ok(Err("err: No such sub-channel.".into())),
            Err(e) => Err(e),
        };
        let open = match planned {
            Ok(Ok(open)) => open,
            Ok(Err(why)) => {
                tracing::warn!(session = %self.view.sid, "module asked to open a sub-channel the session may not open: {why}");
                return;
            }
            Err(e) => {
                tracing::warn!(session = %self.view.sid, error = %e, "module open_sub failed");
                return;
            }
        };
        if let Err(why) = self.open_sub(open).await {
            tracing::info!(session = %self.view.sid, "module open_sub refused: {why}");
        }
    }

    /// Stops the module processes of unloaded command ids.
    pub(super) fn stop_module_commands(&mut self, ids: &[mrci_proto::CmdId]) {
        if let Some(runner) = &mut self.modrun {
            for id in ids {
                runner.stop_command(*id);
            }
        }
    }

    /// Ends every module process of the session (at session end).
    pub(super) async fn shutdown_modules(&mut self) {
        if let Some(runner) = self.modrun.take() {
            let grace = self.host.modules.config().timers.grace;
            let _ = tokio::time::timeout(grace * 2, runner.shutdown()).await;
        }
    }
}
