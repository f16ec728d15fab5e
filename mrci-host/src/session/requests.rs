//! Seed async commands a module may send that only *tell* the host something changed
//! (seed 002; PROTOCOL.md §5.6): the host turns each into a hint that makes the concerned
//! sessions re-read the store, so a module can prompt a refresh but can never make a session
//! believe something the store does not say. Every other request is refused (MODULES.md §6).
//!
//! Invariant: a hint never carries data into a session; sessions re-read accounts, groups
//! and command ranks from the store themselves.

use mrci_proto::async_cmd::AsyncCmd;

use super::Session;
use crate::bus::{Event, GroupChange};

impl Session {
    /// Acts on a seed request that is a change notice; logs and drops the rest.
    pub(super) fn module_hint(&mut self, cmd: AsyncCmd) {
        let bus = &self.host.bus;
        let sid = self.view.sid;
        let hint = |user_name: String| Event::AccountHint { user_name };
        match cmd {
            AsyncCmd::UserDeleted { user }
            | AsyncCmd::DispRenamed { user, .. }
            | AsyncCmd::UserGroupChanged { user, .. }
            | AsyncCmd::RwMyInfo { user } => bus.broadcast(Some(&sid), true, hint(user)),
            AsyncCmd::UserRenamed { old, new_name } => {
                bus.broadcast(Some(&sid), true, hint(old));
                bus.broadcast(Some(&sid), true, hint(new_name));
            }
            AsyncCmd::GroupRenamed { src, dst } => {
                let change = GroupChange::Renamed(dst.clone());
                for group in [src, dst] {
                    let event = Event::Group {
                        group,
                        change: change.clone(),
                    };
                    bus.broadcast(Some(&sid), true, event);
                }
            }
            AsyncCmd::GrpTrans { src, dst } => {
                let event = Event::Group {
                    group: src,
                    change: GroupChange::Transferred(dst),
                };
                bus.broadcast(Some(&sid), true, event);
            }
            AsyncCmd::GroupUpdated { name, rank } => {
                let event = Event::Group {
                    group: name,
                    change: GroupChange::Reranked(rank),
                };
                bus.broadcast(Some(&sid), true, event);
            }
            AsyncCmd::CmdRanksChanged => bus.broadcast(Some(&sid), true, Event::CmdRanksChanged),
            other => {
                tracing::info!(session = %sid, request = ?other.id(), "module request refused by this host (see MODULES.md §6); dropped");
            }
        }
    }
}
