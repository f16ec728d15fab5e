//! Events that sessions deliver to each other through the bus: the in-process form of the
//! async commands of seed 002 (PROTOCOL.md §4.5). Wire payloads are produced only when an
//! event reaches a client.

use mrci_proto::UserId;

/// One async event between sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// ASYNC_SYS_MSG (2): a system message for the receiving session's client.
    SysMsg {
        /// The text shown to the user.
        text: String,
        /// Sent as ERR rather than TEXT.
        is_err: bool,
    },
    /// ASYNC_LOGOUT (7): the receiving session logs out and reloads its public commands.
    Logout {
        /// Text shown to the client after the logout, if any.
        notice: Option<String>,
    },
    /// ASYNC_END_SESSION (18): the receiving session ends.
    EndSession,
    /// ASYNC_RW_MY_INFO (23): sessions of this user re-read the account and send MY_INFO.
    RwMyInfo {
        /// The account that changed.
        user_id: UserId,
    },
    /// ASYNC_CMD_RANKS_CHANGED (13): every session re-evaluates its command set.
    CmdRanksChanged,
    /// ASYNC_DISP_RENAMED (10) and other account edits: sessions of this user re-read the
    /// account and send MY_INFO.
    AccountChanged {
        /// The account that changed.
        user_id: UserId,
    },
    /// ASYNC_USER_RENAMED (42): sessions of this user re-read the account and forward the
    /// seed TEXT `-old "old" -new_name "new"` to their client.
    UserRenamed {
        /// The renamed account.
        user_id: UserId,
        /// The old user name.
        old: String,
        /// The new user name.
        new_name: String,
    },
    /// ASYNC_GROUP_RENAMED (9): sessions in group `src` now belong to `dst`.
    GroupRenamed {
        /// The old group name.
        src: String,
        /// The new group name.
        dst: String,
    },
    /// ASYNC_GRP_TRANS (11): every user of group `src` was moved to `dst`.
    GrpTrans {
        /// The group the users left.
        src: String,
        /// The group they joined.
        dst: String,
    },
    /// ASYNC_USER_GROUP_CHANGED (12): this user is now in `group`.
    UserGroupChanged {
        /// The user that moved.
        user_id: UserId,
        /// The new group's name.
        group: String,
    },
    /// ASYNC_GROUP_UPDATED (17): group `name` now has host rank `rank`.
    GroupUpdated {
        /// The group.
        name: String,
        /// Its new rank.
        rank: u32,
    },
}

impl Event {
    /// True for events a slow receiver may lose without becoming inconsistent. None of the
    /// session-level events qualify: each changes state the client must see.
    pub fn is_droppable(&self) -> bool {
        matches!(self, Self::SysMsg { .. })
    }
}
