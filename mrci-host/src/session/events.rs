//! How a session applies the async events other sessions deliver through the bus
//! (PROTOCOL.md §4.3).
//!
//! Invariant: an event about an account or a group changes this session only if it is
//! logged in as that account or in that group; the session then re-reads the account from
//! the store rather than trusting the event's copy.

use mrci_proto::{TypeId, UserId, async_cmd::AsyncCmd};

use super::Session;
use crate::bus::{Event, GroupChange};

impl Session {
    pub(super) async fn handle_event(&mut self, event: &Event) -> crate::Result<()> {
        match event {
            Event::SysMsg { text, is_err } => self.send_sys_text(text, *is_err).await,
            Event::Logout { notice } => {
                self.logout(true).await?;
                match notice {
                    Some(text) => self.send_sys_text(text, false).await,
                    None => Ok(()),
                }
            }
            Event::EndSession => {
                self.life.end();
                Ok(())
            }
            Event::Banned { net } => {
                if net.contains(self.view.ip) {
                    tracing::info!(session = %self.view.sid, %net, "session ended: its address was banned");
                    let text = "\nYour address was banned by the host; the connection is closed.\n";
                    self.send_sys_text(text, true).await?;
                    self.life.end();
                }
                Ok(())
            }
            Event::CmdRanksChanged => self.reload_commands().await,
            Event::ModulesChanged => {
                self.lists.invalidate();
                self.reload_commands().await
            }
            Event::Group { group, change } => self.on_group_event(group, change).await,
            Event::AccountChanged { user_id } => {
                if self.is_user(user_id) {
                    self.refresh_user().await?;
                }
                Ok(())
            }
            Event::AccountHint { user_name } => {
                let named = self
                    .view
                    .user
                    .as_ref()
                    .is_some_and(|u| u.user_name.eq_ignore_ascii_case(user_name));
                if named {
                    self.refresh_user().await?;
                }
                Ok(())
            }
            Event::UserRenamed {
                user_id,
                old,
                new_name,
            } => self.on_user_renamed(user_id, old, new_name).await,
            Event::Channel {
                id,
                text,
                ch,
                effect,
            } => self.handle_channel_event(*id, text, *ch, effect).await,
            Event::P2p { src, kind, info } => self.handle_p2p(*src, *kind, info).await,
            Event::CloseP2p { sid } => self.handle_close_p2p(*sid).await,
        }
    }

    fn is_user(&self, user_id: &UserId) -> bool {
        self.view
            .user
            .as_ref()
            .is_some_and(|u| u.user_id == *user_id)
    }

    /// A group this session's user belongs to was renamed, re-ranked or emptied into
    /// another (seed ids 9, 11, 17): re-read the account.
    async fn on_group_event(&mut self, group: &str, change: &GroupChange) -> crate::Result<()> {
        let in_group = self
            .view
            .user
            .as_ref()
            .is_some_and(|u| u.group_name.eq_ignore_ascii_case(group));
        if in_group {
            tracing::debug!(session = %self.view.sid, ?change, group, "group changed");
            self.refresh_user().await?;
        }
        Ok(())
    }

    /// ASYNC_USER_RENAMED (42): the account's sessions re-read it and show the seed TEXT; a
    /// session sharing a channel with the user only shows the TEXT.
    async fn on_user_renamed(
        &mut self,
        user_id: &UserId,
        old: &str,
        new_name: &str,
    ) -> crate::Result<()> {
        if self.is_user(user_id) {
            self.refresh_user().await?;
        }
        let cmd = AsyncCmd::UserRenamed {
            old: old.to_owned(),
            new_name: new_name.to_owned(),
        };
        let frame = cmd.id().frame(TypeId::TEXT, cmd.to_bytes());
        self.conn.feed(frame).await
    }
}
