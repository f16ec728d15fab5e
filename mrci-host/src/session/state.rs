//! The session's own state and the read-only view of it that commands see.
//!
//! Invariant: the session task is the only writer; every change is republished as a new
//! [`SessionView`] and mirrored into the session's shared-memory segment.

use std::net::IpAddr;

use mrci_proto::{CmdId, SessionId, SubChKey, SubChList, UserId};

/// The logged-in account as the session knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserView {
    /// The account's id.
    pub user_id: UserId,
    /// Current user name.
    pub user_name: String,
    /// Current display name.
    pub display_name: String,
    /// Email address, empty if none.
    pub email: String,
    /// The user's group.
    pub group_name: String,
    /// The group's host rank (1 highest).
    pub host_rank: u32,
    /// Whether the email address is verified.
    pub email_verified: bool,
    /// When the account was created (unix seconds).
    pub created_at: i64,
}

/// A loaded command as commands such as `ls_cmds` see it.
#[derive(Debug, Clone)]
pub struct CmdSummary {
    /// The announced id.
    pub id: CmdId,
    /// The announced (unique) name.
    pub name: String,
    /// The definition.
    pub def: crate::cmd::CmdRef,
}

/// A snapshot of the session, published after every change.
#[derive(Debug, Clone)]
pub struct SessionView {
    /// The session id.
    pub sid: SessionId,
    /// The client's address.
    pub ip: IpAddr,
    /// The client's application name from its header.
    pub app: String,
    /// Whether the connection is encrypted.
    pub tls: bool,
    /// The logged-in user, if any.
    pub user: Option<UserView>,
    /// The channel owner override flag.
    pub owner_override: bool,
    /// The commands the session has announced, in id order.
    pub commands: Vec<CmdSummary>,
    /// Channels the user is a full member of.
    pub channels: Vec<u64>,
    /// Open sub-channels, in opening order (at most [`SubChList::SLOTS`]).
    pub open: Vec<OpenSub>,
    /// Whether the session takes limited casts (PEER_INFO, PEER_STAT, pings).
    pub active: bool,
    /// Peer-to-peer links waiting for an answer, either direction.
    pub p2p_pending: Vec<SessionId>,
    /// Peer-to-peer links both sides accepted.
    pub p2p_accepted: Vec<SessionId>,
}

/// One open sub-channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenSub {
    /// The channel and sub-channel id.
    pub key: SubChKey,
    /// The session may cast to it (no read-only flag at its level).
    pub writable: bool,
    /// The sub-channel's active-update flag.
    pub active: bool,
}

impl SessionView {
    /// A view of a new, logged-out session.
    pub fn new(sid: SessionId, ip: IpAddr, app: String, tls: bool) -> Self {
        Self {
            sid,
            ip,
            app,
            tls,
            user: None,
            owner_override: false,
            commands: Vec::new(),
            channels: Vec::new(),
            open: Vec::new(),
            active: false,
            p2p_pending: Vec::new(),
            p2p_accepted: Vec::new(),
        }
    }

    /// The host rank, 0 when logged out.
    pub fn rank(&self) -> u32 {
        self.user.as_ref().map_or(0, |u| u.host_rank)
    }

    /// The open list as it crosses the wire and shared memory.
    pub fn open_list(&self) -> SubChList {
        let mut list = SubChList::default();
        for sub in &self.open {
            list.insert(sub.key);
        }
        list
    }

    /// The writable list: the cast header.
    pub fn writable_list(&self) -> SubChList {
        let mut list = SubChList::default();
        for sub in self.open.iter().filter(|s| s.writable) {
            list.insert(sub.key);
        }
        list
    }
}
