//! The session's own state and the read-only view of it that commands see.
//!
//! Invariant: the session task is the only writer; every change is republished as a new
//! [`SessionView`] and mirrored into the session's shared-memory segment.

use std::net::IpAddr;

use mrci_proto::{CmdId, SessionId, UserId};

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
    pub def: &'static crate::cmd::CommandDef,
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
}

impl SessionView {
    /// The host rank, 0 when logged out.
    pub fn rank(&self) -> u32 {
        self.user.as_ref().map_or(0, |u| u.host_rank)
    }
}
