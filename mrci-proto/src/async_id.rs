//! Async command ids: the 43 of seed 002 (the wire numbering, spec/README.md) and the
//! host-internal extension ids 44–52 of PROTOCOL.md §4.4.
//!
//! Naming: each constant is the seed name without its `ASYNC_` prefix (`ASYNC_RDY` →
//! [`AsyncId::RDY`], `ASYNC_SUB_CH_LEVEL_CHG` → [`AsyncId::SUB_CH_LEVEL_CHG`]); `name()`
//! returns the full seed spelling.
//!
//! Invariant: [`HostExtId`] has no conversion to [`CmdId`], so an extension id can be read
//! from a module's request but can never be put on a frame to a client.

use std::fmt;

use bytes::Bytes;

use crate::{
    frame::Frame,
    ids::{BranchId, CmdId},
    type_id::TypeId,
};

/// A seed-002 async command id (1–43). Open, so an undefined id still has a value.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AsyncId(pub u8);

macro_rules! async_ids {
    ($($(#[$doc:meta])* $name:ident = $val:expr, $internal:expr;)*) => {
        impl AsyncId {
            $($(#[$doc])* pub const $name: Self = Self($val);)*

            /// Every seed id, in seed order.
            pub const ALL: &'static [Self] = &[$(Self::$name),*];

            /// The seed's name, such as `ASYNC_RDY`.
            pub fn name(self) -> Option<&'static str> {
                match self {
                    $(Self::$name => Some(concat!("ASYNC_", stringify!($name))),)*
                    _ => None,
                }
            }

            /// True for the ids seed 002 marks "internal only".
            pub fn is_internal_only(self) -> bool {
                match self {
                    $(Self::$name => $internal,)*
                    _ => true,
                }
            }
        }
    };
}

async_ids! {
    /// The session is ready (TEXT).
    RDY = 1, false;
    /// A system message: TEXT, ERR, HOST_CERT or MY_INFO.
    SYS_MSG = 2, false;
    /// A module failed to start, connect or stay alive (ERR; PROTOCOL.md §9 item 6).
    EXE_CRASH = 3, false;
    /// Stop the host.
    EXIT = 4, true;
    /// Cast to sub-channels; delivered data reaches clients on this id.
    CAST = 5, true;
    /// Change the maximum number of sessions.
    MAXSES = 6, true;
    /// Log the session out.
    LOGOUT = 7, true;
    /// A user account was deleted.
    USER_DELETED = 8, true;
    /// A group was renamed.
    GROUP_RENAMED = 9, true;
    /// A user's display name changed.
    DISP_RENAMED = 10, true;
    /// Users were moved from one group to another.
    GRP_TRANS = 11, true;
    /// A user's group changed.
    USER_GROUP_CHANGED = 12, true;
    /// The command-rank table changed.
    CMD_RANKS_CHANGED = 13, true;
    /// Restart the host.
    RESTART = 14, true;
    /// A module was enabled.
    ENABLE_MOD = 15, true;
    /// A module was disabled.
    DISABLE_MOD = 16, true;
    /// A group's rank changed.
    GROUP_UPDATED = 17, true;
    /// End the session.
    END_SESSION = 18, true;
    /// The session logged in.
    USER_LOGIN = 19, true;
    /// Reserved (crash recovery of the original design).
    RESTORE_AUTH = 20, true;
    /// Data for one peer session.
    TO_PEER = 21, false;
    /// A cast to peers that share a sub-channel with active updates.
    LIMITED_CAST = 22, false;
    /// Re-read and resend MY_INFO.
    RW_MY_INFO = 23, true;
    /// Peer-to-peer data.
    P2P = 24, false;
    /// A peer-to-peer link closed.
    CLOSE_P2P = 25, true;
    /// A channel gained a member.
    NEW_CH_MEMBER = 26, false;
    /// A channel was deleted.
    DEL_CH = 27, false;
    /// A channel was renamed.
    RENAME_CH = 28, false;
    /// A sub-channel's active-update flag changed.
    CH_ACT_FLAG = 29, false;
    /// A sub-channel was created.
    NEW_SUB_CH = 30, false;
    /// A sub-channel was removed.
    RM_SUB_CH = 31, false;
    /// A sub-channel was renamed.
    RENAME_SUB_CH = 32, false;
    /// A user was invited to a channel.
    INVITED_TO_CH = 33, false;
    /// A member or invitation was removed from a channel.
    RM_CH_MEMBER = 34, false;
    /// An invitation was accepted.
    INVITE_ACCEPTED = 35, false;
    /// A member's level changed.
    MEM_LEVEL_CHANGED = 36, false;
    /// A sub-channel's lowest level changed.
    SUB_CH_LEVEL_CHG = 37, false;
    /// A read-only flag was added.
    ADD_RDONLY = 38, false;
    /// A read-only flag was removed.
    RM_RDONLY = 39, false;
    /// A command was loaded (NEW_CMD).
    ADD_CMD = 40, false;
    /// A command was unloaded (CMD_ID).
    RM_CMD = 41, false;
    /// A user was renamed.
    USER_RENAMED = 42, false;
    /// Only public commands until login.
    PUBLIC_AUTH = 43, true;
}

impl AsyncId {
    /// The id as the frame's command id (async ids always use branch 0).
    pub fn cmd_id(self) -> CmdId {
        CmdId(u16::from(self.0))
    }

    /// A frame the host sends to a client on this async id: branch 0 (PROTOCOL.md §2.2).
    ///
    /// ```
    /// use mrci_proto::{TypeId, async_id::AsyncId};
    ///
    /// let frame = AsyncId::RM_CMD.frame(TypeId::CMD_ID, 300u16.to_le_bytes().to_vec());
    /// assert_eq!((frame.cmd_id.0, frame.branch_id.0), (41, 0));
    /// ```
    pub fn frame(self, type_id: TypeId, payload: impl Into<Bytes>) -> Frame {
        Frame::new(type_id, self.cmd_id(), BranchId(0), payload.into())
    }

    /// A TEXT frame (UTF-16LE) on this async id.
    pub fn text_frame(self, s: &str) -> Frame {
        Frame::text(self.cmd_id(), BranchId(0), s)
    }

    /// The seed async id a command id names, if it is one.
    pub fn from_cmd_id(id: CmdId) -> Option<Self> {
        u8::try_from(id.0).ok().map(Self).filter(|a| a.is_defined())
    }

    /// True for the 43 seed ids.
    pub fn is_defined(self) -> bool {
        (1..=43).contains(&self.0)
    }

    /// True if frames on this id reach a client: the ids the seed does not mark internal,
    /// plus CAST, whose delivered data arrives on id 5 (PROTOCOL.md §9 item 4).
    pub fn is_client_visible(self) -> bool {
        self.is_defined() && (!self.is_internal_only() || self == Self::CAST)
    }

    /// How the host routes this id when a module requests it (PROTOCOL.md §4.5); `None` for
    /// an undefined id.
    pub fn scope(self) -> Option<Scope> {
        Some(match self.0 {
            4 | 6 | 7 | 14 | 18 | 19 => Scope::Private,
            5 | 22 | 24 | 25 => Scope::Public,
            8..=13 | 15..=17 | 23 | 26..=39 | 42 => Scope::PublicWithFeedback,
            1..=3 | 20 | 21 | 40 | 41 | 43 => Scope::HostOnly,
            _ => return None,
        })
    }

    /// True for ids only the host may originate; a module's request for one is dropped
    /// (PROTOCOL.md §4.5 and §9 item 44): RDY, SYS_MSG, EXE_CRASH, RESTORE_AUTH, TO_PEER,
    /// ADD_CMD, RM_CMD and PUBLIC_AUTH.
    pub fn is_host_only(self) -> bool {
        self.scope() == Some(Scope::HostOnly)
    }

    /// True for the ids whose effect is on the whole server rather than one session (EXIT,
    /// MAXSES, RESTART; PROTOCOL.md §4.5).
    pub fn is_server_level(self) -> bool {
        matches!(self, Self::EXIT | Self::MAXSES | Self::RESTART)
    }
}

/// Where an async request from a module is delivered (PROTOCOL.md §4.5: the session routes
/// by id, whatever IPC type the module used).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Handled by the module's own session only (PRIV_IPC).
    Private,
    /// Delivered to every other ready session (PUB_IPC).
    Public,
    /// Delivered to every other ready session, then to the module's own session
    /// (PUB_IPC_WITH_FEEDBACK).
    PublicWithFeedback,
    /// Originated by the host only; a module's request is rejected.
    HostOnly,
}

impl fmt::Debug for AsyncId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "AsyncId({})", self.0),
        }
    }
}

/// A host-internal extension id (PROTOCOL.md §4.4): a module's request to its own session
/// that has no seed id. Never sent to a client; deliberately not convertible to a [`CmdId`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HostExtId(u8);

impl HostExtId {
    /// Cast PING_PEERS to the session's sub-channels.
    pub const PING_PEERS: Self = Self(44);
    /// Open a sub-channel (9-byte SUBCH).
    pub const OPEN_SUBCH: Self = Self(45);
    /// Close a sub-channel (9-byte SUBCH).
    pub const CLOSE_SUBCH: Self = Self(46);
    /// Reload the ban cache.
    pub const UPDATE_BANS: Self = Self(47);
    /// Keep the module's idle timer alive.
    pub const KEEP_ALIVE: Self = Self(48);
    /// Set the working directory for future module processes (TEXT).
    pub const SET_DIR: Self = Self(49);
    /// Append TEXT to the host's debug log.
    pub const DEBUG_TEXT: Self = Self(50);
    /// Route all client input to this instance.
    pub const HOOK_INPUT: Self = Self(51);
    /// Set the session's channel owner override (u8 0/1).
    pub const OWNER_OVERRIDE: Self = Self(52);

    /// Every extension id.
    pub const ALL: &'static [Self] = &[
        Self::PING_PEERS,
        Self::OPEN_SUBCH,
        Self::CLOSE_SUBCH,
        Self::UPDATE_BANS,
        Self::KEEP_ALIVE,
        Self::SET_DIR,
        Self::DEBUG_TEXT,
        Self::HOOK_INPUT,
        Self::OWNER_OVERRIDE,
    ];

    /// The extension id a module's `[u16 async_id]` names, if any.
    pub fn from_wire(id: u16) -> Option<Self> {
        Self::ALL.iter().copied().find(|e| u16::from(e.0) == id)
    }

    /// The numeric value, for logs.
    pub fn value(self) -> u8 {
        self.0
    }

    /// The name PROTOCOL.md §4.4 gives, such as `ASYNC_KEEP_ALIVE`.
    pub fn name(self) -> &'static str {
        match self.0 {
            44 => "ASYNC_PING_PEERS",
            45 => "ASYNC_OPEN_SUBCH",
            46 => "ASYNC_CLOSE_SUBCH",
            47 => "ASYNC_UPDATE_BANS",
            48 => "ASYNC_KEEP_ALIVE",
            49 => "ASYNC_SET_DIR",
            50 => "ASYNC_DEBUG_TEXT",
            51 => "ASYNC_HOOK_INPUT",
            _ => "ASYNC_OWNER_OVERRIDE",
        }
    }

    /// Every extension id is handled by the module's own session (PROTOCOL.md §4.4).
    pub fn scope(self) -> Scope {
        Scope::Private
    }

    /// True for UPDATE_BANS, whose effect is on the server (PROTOCOL.md §4.5).
    pub fn is_server_level(self) -> bool {
        self == Self::UPDATE_BANS
    }
}

/// What a module's `[u16 async_id]` refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestId {
    /// A seed async id.
    Seed(AsyncId),
    /// A host-internal extension id.
    Ext(HostExtId),
}

impl RequestId {
    /// Classifies a wire value; `None` for an undefined id.
    pub fn from_wire(id: u16) -> Option<Self> {
        AsyncId::from_cmd_id(CmdId(id))
            .map(Self::Seed)
            .or_else(|| HostExtId::from_wire(id).map(Self::Ext))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_ids_and_names() {
        // Seed 002 §6.1, written out: (id, name, internal only).
        let seed: [(u8, &str, bool); 43] = [
            (1, "ASYNC_RDY", false),
            (2, "ASYNC_SYS_MSG", false),
            (3, "ASYNC_EXE_CRASH", false),
            (4, "ASYNC_EXIT", true),
            (5, "ASYNC_CAST", true),
            (6, "ASYNC_MAXSES", true),
            (7, "ASYNC_LOGOUT", true),
            (8, "ASYNC_USER_DELETED", true),
            (9, "ASYNC_GROUP_RENAMED", true),
            (10, "ASYNC_DISP_RENAMED", true),
            (11, "ASYNC_GRP_TRANS", true),
            (12, "ASYNC_USER_GROUP_CHANGED", true),
            (13, "ASYNC_CMD_RANKS_CHANGED", true),
            (14, "ASYNC_RESTART", true),
            (15, "ASYNC_ENABLE_MOD", true),
            (16, "ASYNC_DISABLE_MOD", true),
            (17, "ASYNC_GROUP_UPDATED", true),
            (18, "ASYNC_END_SESSION", true),
            (19, "ASYNC_USER_LOGIN", true),
            (20, "ASYNC_RESTORE_AUTH", true),
            (21, "ASYNC_TO_PEER", false),
            (22, "ASYNC_LIMITED_CAST", false),
            (23, "ASYNC_RW_MY_INFO", true),
            (24, "ASYNC_P2P", false),
            (25, "ASYNC_CLOSE_P2P", true),
            (26, "ASYNC_NEW_CH_MEMBER", false),
            (27, "ASYNC_DEL_CH", false),
            (28, "ASYNC_RENAME_CH", false),
            (29, "ASYNC_CH_ACT_FLAG", false),
            (30, "ASYNC_NEW_SUB_CH", false),
            (31, "ASYNC_RM_SUB_CH", false),
            (32, "ASYNC_RENAME_SUB_CH", false),
            (33, "ASYNC_INVITED_TO_CH", false),
            (34, "ASYNC_RM_CH_MEMBER", false),
            (35, "ASYNC_INVITE_ACCEPTED", false),
            (36, "ASYNC_MEM_LEVEL_CHANGED", false),
            (37, "ASYNC_SUB_CH_LEVEL_CHG", false),
            (38, "ASYNC_ADD_RDONLY", false),
            (39, "ASYNC_RM_RDONLY", false),
            (40, "ASYNC_ADD_CMD", false),
            (41, "ASYNC_RM_CMD", false),
            (42, "ASYNC_USER_RENAMED", false),
            (43, "ASYNC_PUBLIC_AUTH", true),
        ];
        assert_eq!(AsyncId::ALL.len(), 43);
        for ((id, name, internal), got) in seed.iter().zip(AsyncId::ALL) {
            assert_eq!(got.0, *id);
            assert_eq!(got.name(), Some(*name));
            assert_eq!(got.is_internal_only(), *internal, "{name}");
        }
        assert!(AsyncId::CAST.is_client_visible() && !AsyncId::LOGOUT.is_client_visible());
        assert!(AsyncId::USER_RENAMED.is_client_visible() && !AsyncId(44).is_client_visible());
        assert_eq!(AsyncId::from_cmd_id(CmdId(41)), Some(AsyncId::RM_CMD));
        assert_eq!(AsyncId::from_cmd_id(CmdId(44)), None);
        assert_eq!(AsyncId::from_cmd_id(CmdId(256)), None);
        assert_eq!(format!("{:?}", AsyncId(99)), "AsyncId(99)");
    }

    #[test]
    fn scopes_follow_the_rust_routing_table() {
        // PROTOCOL.md §4.5, written out.
        let private = [4, 6, 7, 14, 18, 19];
        let public = [5, 22, 24, 25];
        let host_only = [1, 2, 3, 20, 21, 40, 41, 43];
        for id in AsyncId::ALL {
            let want = if private.contains(&id.0) {
                Scope::Private
            } else if public.contains(&id.0) {
                Scope::Public
            } else if host_only.contains(&id.0) {
                Scope::HostOnly
            } else {
                Scope::PublicWithFeedback
            };
            assert_eq!(id.scope(), Some(want), "{id:?}");
            assert_eq!(id.is_host_only(), want == Scope::HostOnly, "{id:?}");
        }
        assert_eq!(AsyncId(0).scope(), None);
        assert_eq!(AsyncId(44).scope(), None);
        let server: Vec<u8> = AsyncId::ALL
            .iter()
            .filter(|a| a.is_server_level())
            .map(|a| a.0)
            .collect();
        assert_eq!(server, [4, 6, 14]);
        for ext in HostExtId::ALL {
            assert_eq!(ext.scope(), Scope::Private);
            assert_eq!(ext.is_server_level(), ext.value() == 47);
        }
    }

    #[test]
    fn extension_ids_are_disjoint_from_the_seed() {
        let names: Vec<(u8, &str)> = HostExtId::ALL
            .iter()
            .map(|e| (e.value(), e.name()))
            .collect();
        assert_eq!(
            names,
            [
                (44, "ASYNC_PING_PEERS"),
                (45, "ASYNC_OPEN_SUBCH"),
                (46, "ASYNC_CLOSE_SUBCH"),
                (47, "ASYNC_UPDATE_BANS"),
                (48, "ASYNC_KEEP_ALIVE"),
                (49, "ASYNC_SET_DIR"),
                (50, "ASYNC_DEBUG_TEXT"),
                (51, "ASYNC_HOOK_INPUT"),
                (52, "ASYNC_OWNER_OVERRIDE"),
            ]
        );
        for ext in HostExtId::ALL {
            assert!(AsyncId::ALL.iter().all(|a| a.0 != ext.value()));
            assert_eq!(AsyncId::from_cmd_id(CmdId(u16::from(ext.value()))), None);
        }
        for ext in HostExtId::ALL {
            assert!(ext.value() >= 44);
            assert_eq!(
                RequestId::from_wire(u16::from(ext.value())),
                Some(RequestId::Ext(*ext))
            );
        }
        assert_eq!(
            RequestId::from_wire(22),
            Some(RequestId::Seed(AsyncId::LIMITED_CAST))
        );
        assert_eq!(RequestId::from_wire(53), None);
        assert_eq!(RequestId::from_wire(0), None);
    }
}
