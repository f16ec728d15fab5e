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
    /// ASYNC_CMD_RANKS_CHANGED (13): every session re-evaluates its command set.
    CmdRanksChanged,
    /// ASYNC_DISP_RENAMED (10), ASYNC_USER_GROUP_CHANGED (12), ASYNC_RW_MY_INFO (23) and
    /// every other account edit: sessions of this user re-read the account, send MY_INFO and
    /// announce their command-set difference.
    AccountChanged {
        /// The account that changed.
        user_id: UserId,
    },
    /// A module's hint that the account named `user_name` changed (seed ids 8, 10, 12, 23,
    /// 42 from a module): sessions logged in under that name re-read the account from the
    /// store, and log out if it is gone. Nothing in the hint is trusted beyond the name.
    AccountHint {
        /// The account's user name.
        user_name: String,
    },
    /// ASYNC_USER_RENAMED (42): sessions of this user re-read the account; they and the
    /// sessions of the user's fellow channel members show the seed TEXT
    /// `-old "old" -new_name "new"`.
    UserRenamed {
        /// The renamed account.
        user_id: UserId,
        /// The old user name.
        old: String,
        /// The new user name.
        new_name: String,
    },
    /// ASYNC_GROUP_RENAMED (9), ASYNC_GRP_TRANS (11), ASYNC_GROUP_UPDATED (17): the sessions
    /// of users in `group` (its name before the change) re-read their account.
    Group {
        /// The group's name before the change.
        group: String,
        /// What changed.
        change: GroupChange,
    },
    /// A channel event (ids 26–39): the seed TEXT the client sees and what it changes.
    Channel {
        /// The async id the client sees it on.
        id: mrci_proto::async_id::AsyncId,
        /// The seed TEXT form.
        text: String,
        /// The channel.
        ch: u64,
        /// What the receiving session changes.
        effect: ChEffect,
    },
    /// ASYNC_P2P (24) control: a link request, acceptance or close from session `src`.
    P2p {
        /// The sending session.
        src: mrci_proto::SessionId,
        /// What it does.
        kind: P2pKind,
        /// The sender's PEER_INFO (for requests).
        info: bytes::Bytes,
    },
    /// ASYNC_ENABLE_MOD (15) / ASYNC_DISABLE_MOD (16): the module registry changed; every
    /// session recomputes its command set (and stops processes of removed commands).
    ModulesChanged,
    /// An address or range was banned: sessions from it are told and end.
    Banned {
        /// The banned address or range.
        net: crate::store::IpNet,
    },
    /// ASYNC_CLOSE_P2P (25): session `sid` is going away or logged out.
    CloseP2p {
        /// The session that left.
        sid: mrci_proto::SessionId,
    },
}

/// How a group changed (the seed's group events, by kind).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupChange {
    /// ASYNC_GROUP_RENAMED (9): renamed to this name.
    Renamed(String),
    /// ASYNC_GRP_TRANS (11): every member moved to this group.
    Transferred(String),
    /// ASYNC_GROUP_UPDATED (17): the host rank changed to this.
    Reranked(u32),
}

/// What a channel event changes in the sessions it reaches (PROTOCOL.md §4.3 ids 26–39).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChEffect {
    /// Only tell the client.
    Forward,
    /// Sessions of `user` add the channel to their list (NEW_CH_MEMBER, INVITE_ACCEPTED).
    Joined {
        /// The new member.
        user: UserId,
    },
    /// Sessions of `user` close the channel's sub-channels and drop it from their list
    /// (RM_CH_MEMBER).
    Left {
        /// The former member.
        user: UserId,
    },
    /// Sessions of `user` close the channel's sub-channels (MEM_LEVEL_CHANGED).
    LevelChanged {
        /// The member whose level changed.
        user: UserId,
    },
    /// Every session closes the channel's sub-channels and drops it (DEL_CH).
    Deleted,
    /// Sessions with the sub-channel open close it (RM_SUB_CH, SUB_CH_LEVEL_CHG,
    /// ADD_RDONLY, RM_RDONLY).
    CloseSub {
        /// The sub-channel id.
        sub: u8,
    },
    /// Sessions with the sub-channel open take its new active-update flag (CH_ACT_FLAG).
    ActiveFlag {
        /// The sub-channel id.
        sub: u8,
        /// The new flag.
        on: bool,
    },
}

/// A peer-to-peer control message (PROTOCOL.md §4.3 id 24).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum P2pKind {
    /// The sender asks for a link.
    Request,
    /// The sender accepts the receiver's request.
    Open,
    /// The sender declines or ends the link.
    Close,
}

impl Event {
    /// True for events a slow receiver may lose without becoming inconsistent. None of the
    /// session-level events qualify: each changes state the client must see.
    pub fn is_droppable(&self) -> bool {
        matches!(self, Self::SysMsg { .. })
    }
}
