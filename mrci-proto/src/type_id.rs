//! Payload type ids (PROTOCOL.md §3.1): an open newtype so unknown ids still decode and can be
//! answered with an ERR rather than dropping the connection.

use std::fmt;

/// The type id of a frame's payload. Constants are named and ordered as in the spec table.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct TypeId(pub u8);

macro_rules! type_ids {
    ($($(#[$doc:meta])* $name:ident = $val:expr;)*) => {
        impl TypeId {
            $($(#[$doc])* pub const $name: Self = Self($val);)*

            /// Every named type id, in spec order.
            pub const ALL: &'static [Self] = &[$(Self::$name),*];

            /// The spec name of a known id, `None` for an unknown one.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($val => Some(stringify!($name)),)*
                    _ => None,
                }
            }
        }
    };
}

type_ids! {
    /// File transfer: TEXT arguments first, then raw file bytes (§3.4).
    GEN_FILE = 1;
    /// UTF-16LE text.
    TEXT = 2;
    /// An error message (TEXT).
    ERR = 3;
    /// A prompt after which the client should hide the user's input.
    PRIV_TEXT = 4;
    /// Empty: the command instance finished its task.
    IDLE = 5;
    /// The host certificate (PEM), sent once in clear text during the handshake.
    HOST_CERT = 6;
    /// File metadata (§3.3.7).
    FILE_INFO = 7;
    /// A peer's session, user and names, 306 bytes (§3.3.8).
    PEER_INFO = 8;
    /// The local session's PEER_INFO plus email, rank and verified flag, 439 bytes (§3.3.9).
    MY_INFO = 9;
    /// A peer's open sub-channels and disconnect flag, 83 bytes (§3.3.10).
    PEER_STAT = 10;
    /// A peer-to-peer request carrying the requester's PEER_INFO.
    P2P_REQUEST = 11;
    /// Closes or declines a peer-to-peer link: a session id.
    P2P_CLOSE = 12;
    /// Accepts a peer-to-peer request: a session id.
    P2P_OPEN = 13;
    /// Opaque bytes.
    BYTES = 14;
    /// A 28-byte session id.
    SESSION_ID = 15;
    /// A command announcement, at least 259 bytes (§3.3.16).
    NEW_CMD = 16;
    /// A u16 command id.
    CMD_ID = 17;
    /// Long, word-wrappable TEXT.
    BIG_TEXT = 18;
    /// Empty: abort the current task and keep the process.
    TERM_CMD = 19;
    /// Host version `[u16 major][u16 minor][u16 patch]`, host to module in list mode.
    HOST_VER = 20;
    /// Module to host: `[u16 async id][payload]`, handled by the module's own session.
    PRIV_IPC = 21;
    /// Module to host: `[u16 async id][payload]`, delivered to every other session.
    PUB_IPC = 22;
    /// Module to host: like PUB_IPC, then also the module's own session.
    PUB_IPC_WITH_FEEDBACK = 23;
    /// A ping request carried inside a limited cast, PEER_INFO layout.
    PING_PEERS = 24;
    /// A channel member's record (§3.3.25).
    CH_MEMBER_INFO = 25;
    /// A u64 channel id.
    CH_ID = 26;
    /// Empty: finish and exit.
    KILL_CMD = 27;
    /// Empty: pause a looping task.
    HALT_CMD = 28;
    /// Empty: resume a halted task.
    RESUME_CMD = 29;
}

impl TypeId {
    /// True for the empty lifecycle control types a client may send to a running command:
    /// TERM_CMD, KILL_CMD, HALT_CMD and RESUME_CMD (PROTOCOL.md §2.5).
    pub fn is_control(self) -> bool {
        matches!(
            self,
            Self::TERM_CMD | Self::KILL_CMD | Self::HALT_CMD | Self::RESUME_CMD
        )
    }

    /// True for types a client must never send to the host (PROTOCOL.md §9 item 20).
    pub fn is_refused_from_client(self) -> bool {
        matches!(
            self,
            Self::PRIV_IPC
                | Self::PUB_IPC
                | Self::PUB_IPC_WITH_FEEDBACK
                | Self::HOST_VER
                | Self::HOST_CERT
                | Self::NEW_CMD
        )
    }

    /// True for types only the host may originate, which a module's output must never carry
    /// to a client (PROTOCOL.md §9 item 20).
    pub fn is_blocked_from_module(self) -> bool {
        matches!(
            self,
            Self::HOST_CERT
                | Self::HOST_VER
                | Self::NEW_CMD
                | Self::CMD_ID
                | Self::MY_INFO
                | Self::PEER_INFO
                | Self::PEER_STAT
                | Self::PING_PEERS
                | Self::P2P_REQUEST
                | Self::P2P_OPEN
                | Self::P2P_CLOSE
                | Self::KILL_CMD
                | Self::HALT_CMD
                | Self::RESUME_CMD
                | Self::TERM_CMD
        )
    }

    /// True for the three module-to-host async request types.
    pub fn is_ipc_request(self) -> bool {
        matches!(
            self,
            Self::PRIV_IPC | Self::PUB_IPC | Self::PUB_IPC_WITH_FEEDBACK
        )
    }
}

impl fmt::Debug for TypeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "TypeId({})", self.0),
        }
    }
}

impl fmt::Display for TypeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_29_ids_are_numbered_as_in_the_spec() {
        assert_eq!(TypeId::ALL.len(), 29);
        for (i, t) in TypeId::ALL.iter().enumerate() {
            assert_eq!(usize::from(t.0), i + 1);
        }
        assert_eq!(TypeId::PUB_IPC_WITH_FEEDBACK.0, 23);
        assert_eq!(TypeId::RESUME_CMD.0, 29);
    }

    #[test]
    fn unknown_ids_have_no_name_but_still_print() {
        assert_eq!(TypeId(200).name(), None);
        assert_eq!(format!("{:?}", TypeId(200)), "TypeId(200)");
        assert_eq!(format!("{:?}", TypeId::TEXT), "TEXT");
    }
}
