//! Logging in and out inside a session, and keeping the announced command set equal to what
//! the session may run (PROTOCOL.md §1.10, §5.4.3–5.4.4).
//!
//! Invariant: after every login, logout, rank change or module change the loaded set is
//! recomputed and the difference announced (ASYNC_RM_CMD before ASYNC_ADD_CMD), and the
//! published view lists exactly the announced commands.

use std::collections::HashMap;

use mrci_proto::{TypeId, UserId, async_id::AsyncId};

use super::{CmdSummary, Session, allowed_internal, allowed_modules, render};
use crate::cmd::{self, CmdRef, Refusal};

impl Session {
    /// Recomputes the allowed command set and announces the difference.
    pub(super) async fn reload_commands(&mut self) -> crate::Result<()> {
        let ranks = self.host.internal_command_ranks().await?;
        let rank = self.view.user.as_ref().map(|u| u.host_rank);
        let modules = self.host.modules.all();
        self.relist_modules(&modules).await;
        let mut module_ranks = HashMap::new();
        for m in &modules {
            let ranks = self
                .host
                .store
                .command_ranks(&m.path.to_string_lossy())
                .await?;
            module_ranks.insert(m.path.clone(), ranks);
        }
        let target: Vec<CmdRef> = allowed_internal(rank, &ranks, self.host.features())
            .into_iter()
            .map(CmdRef::Internal)
            .chain(
                allowed_modules(
                    rank,
                    modules
                        .iter()
                        .flat_map(|m| m.host_wide())
                        .chain(self.lists.cmds()),
                    &module_ranks,
                )
                .into_iter()
                .map(CmdRef::Module),
            )
            .collect();
        let diff = self.cmds.apply(&target);
        for id in &diff.removed {
            self.instances.stop_command(*id);
            let payload = id.0.to_le_bytes().to_vec();
            self.conn
                .feed(AsyncId::RM_CMD.frame(TypeId::CMD_ID, payload))
                .await?;
        }
        for id in &diff.added {
            let Some(loaded) = self.cmds.get(*id) else {
                continue;
            };
            let payload = cmd::announcement(&loaded.cmd, loaded.id, &loaded.name);
            self.conn
                .feed(AsyncId::ADD_CMD.frame(TypeId::NEW_CMD, payload))
                .await?;
        }
        self.conn.flush().await?;
        self.view.commands = self
            .cmds
            .iter()
            .map(|l| CmdSummary {
                id: l.id,
                name: l.name.clone(),
                def: l.cmd.clone(),
            })
            .collect::<Vec<_>>()
            .into();
        self.publish();
        Ok(())
    }

    /// Sends MY_INFO on the system-message channel.
    pub(super) async fn send_my_info(&mut self) -> crate::Result<()> {
        let payload = render::my_info_payload(&self.view);
        self.conn
            .feed(AsyncId::SYS_MSG.frame(TypeId::MY_INFO, payload))
            .await
    }

    pub(super) async fn login(&mut self, user_id: UserId) -> crate::Result<()> {
        if self.view.user.is_some() {
            self.logout(false).await?;
        }
        let Some(user) = self.host.user_view(&user_id).await? else {
            let why = Refusal::new("The account no longer exists.");
            return self.send_sys_text(&why.wire_text(), true).await;
        };
        self.view.user = Some(user);
        self.life.logged_in();
        self.conn.set_logged_in(true);
        self.host.bus.set_user(&self.view.sid, Some(user_id));
        self.load_channels().await?;
        self.send_my_info().await?;
        self.reload_commands().await
    }

    pub(super) async fn logout(&mut self, reload: bool) -> crate::Result<()> {
        if self.view.user.take().is_none() {
            return Ok(());
        }
        self.life.logged_out();
        self.conn.set_logged_in(false);
        // The next account starts at its own file root.
        self.view.cwd.clear();
        self.leave_channels(true).await;
        self.host.bus.set_user(&self.view.sid, None);
        self.publish();
        if reload {
            self.reload_commands().await
        } else {
            Ok(())
        }
    }

    /// Re-reads the logged-in account (group, rank, names), mirrors it, sends MY_INFO and
    /// announces the command-set difference (PROTOCOL.md §4.3 ids 9, 11, 12, 17, 23).
    pub(super) async fn refresh_user(&mut self) -> crate::Result<()> {
        let Some(user_id) = self.view.user.as_ref().map(|u| u.user_id) else {
            return Ok(());
        };
        match self.host.user_view(&user_id).await? {
            Some(user) => {
                let renamed = self.view.user.as_ref().is_some_and(|old| {
                    old.user_name != user.user_name || old.display_name != user.display_name
                });
                self.view.user = Some(user);
                self.publish();
                if renamed {
                    self.cast_peer_info().await;
                }
                self.send_my_info().await?;
                self.reload_commands().await
            }
            None => self.logout(true).await,
        }
    }
}
