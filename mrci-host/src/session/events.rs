//! How a session applies the async events other sessions deliver through the bus
//! (PROTOCOL.md §4.3).

use crate::bus::Event;

use super::Session;

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
                self.cancel.cancel();
                Ok(())
            }
            Event::RwMyInfo { user_id } => {
                if self
                    .view
                    .user
                    .as_ref()
                    .is_some_and(|u| u.user_id == *user_id)
                    && let Some(user) = self.host.user_view(user_id).await?
                {
                    self.view.user = Some(user);
                    self.publish();
                    self.send_my_info().await?;
                    self.reload_commands().await?;
                }
                Ok(())
            }
            Event::CmdRanksChanged | Event::ModulesChanged => self.reload_commands().await,
            Event::GroupRenamed { src, .. }
            | Event::GrpTrans { src, .. }
            | Event::GroupUpdated { name: src, .. } => {
                let in_group = self
                    .view
                    .user
                    .as_ref()
                    .is_some_and(|u| u.group_name.eq_ignore_ascii_case(src));
                if in_group {
                    self.refresh_user().await
                } else {
                    Ok(())
                }
            }
            Event::UserRenamed {
                user_id,
                old,
                new_name,
            } => {
                if self
                    .view
                    .user
                    .as_ref()
                    .is_none_or(|u| u.user_id != *user_id)
                {
                    return Ok(());
                }
                self.refresh_user().await?;
                let cmd = mrci_proto::async_cmd::AsyncCmd::UserRenamed {
                    old: old.clone(),
                    new_name: new_name.clone(),
                };
                let frame = cmd.id().frame(mrci_proto::TypeId::TEXT, cmd.to_bytes());
                self.conn.feed(frame).await
            }
            Event::Channel {
                id,
                text,
                ch,
                effect,
            } => self.handle_channel_event(*id, text, *ch, effect).await,
            Event::P2p { src, kind, info } => self.handle_p2p(*src, *kind, info).await,
            Event::CloseP2p { sid } => self.handle_close_p2p(*sid).await,
            Event::AccountChanged { user_id } | Event::UserGroupChanged { user_id, .. } => {
                if self
                    .view
                    .user
                    .as_ref()
                    .is_some_and(|u| u.user_id == *user_id)
                {
                    self.refresh_user().await
                } else {
                    Ok(())
                }
            }
        }
    }
}
