//! Identifiers that cross the wire: command and branch ids, session and user ids, and the
//! sub-channel key and 54-byte sub-channel list (PROTOCOL.md §0.2, §2.2, §3.5).
//!
//! Invariant: every fixed-size id is exactly its wire width; parsing a slice of any other
//! length is an error, never a panic.

use std::fmt;

use crate::error::{Error, Result};

/// A 16-bit command id. 1–255 are async ids, 256–65535 are commands (PROTOCOL.md §2.2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CmdId(pub u16);

impl CmdId {
    /// The lowest id a command (rather than an async command) may have.
    pub const FIRST_COMMAND: Self = Self(256);

    /// True for 1–255, the async ("virtual") command range.
    pub fn is_async(self) -> bool {
        (1..=255).contains(&self.0)
    }

    /// True for 256–65535, the range the host assigns to commands.
    pub fn is_command(self) -> bool {
        self.0 >= 256
    }
}

impl fmt::Display for CmdId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A 16-bit branch id chosen by the client so several instances of one command can run at once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BranchId(pub u16);

impl fmt::Display for BranchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The 32-bit key the host uses for per-instance state: `cmd | branch << 16` (PROTOCOL.md §2.1).
pub fn cmd_id32(cmd: CmdId, branch: BranchId) -> u32 {
    u32::from(cmd.0) | (u32::from(branch.0) << 16)
}

/// A channel level (COMMANDS.md §2.3): 1 owner, 2 admin, 3 officer, 4 regular member, and 5
/// for everyone who is not a member. A smaller number is more powerful, and levels compare
/// by number.
///
/// ```
/// use mrci_proto::ChLevel;
///
/// let mine = ChLevel::parse("3", true)?;
/// assert!(mine.at_least(ChLevel::REGULAR) && !mine.at_least(ChLevel::ADMIN));
/// assert!(ChLevel::parse("+3", true).is_err() && ChLevel::parse("5", false).is_err());
/// # Ok::<(), mrci_proto::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChLevel(u8);

impl ChLevel {
    /// The channel's owner (exactly one).
    pub const OWNER: Self = Self(1);
    /// An administrator.
    pub const ADMIN: Self = Self(2);
    /// An officer.
    pub const OFFICER: Self = Self(3);
    /// A regular member (the level an accepted invite gives).
    pub const REGULAR: Self = Self(4);
    /// Not a member: public sub-channels open at this level.
    pub const PUBLIC: Self = Self(5);

    /// The level `n`.
    ///
    /// # Errors
    /// [`Error::Invalid`] unless `n` is 1–5.
    pub fn new(n: u8) -> Result<Self> {
        if (1..=5).contains(&n) {
            Ok(Self(n))
        } else {
            Err(Error::Invalid {
                what: "channel level",
                why: format!("{n} is not 1-5"),
            })
        }
    }

    /// Parses a level argument: plain decimal digits, 1–5, or 1–4 (member levels) without
    /// `include_public`.
    ///
    /// # Errors
    /// [`Error::Invalid`] for anything else, a sign included.
    pub fn parse(s: &str, include_public: bool) -> Result<Self> {
        crate::constraints::level(s, include_public).map(Self)
    }

    /// The number.
    pub fn get(self) -> u8 {
        self.0
    }

    /// True for a member's level (1–4).
    pub fn is_member(self) -> bool {
        self.0 <= Self::REGULAR.0
    }

    /// True if this level may do what `needed` may.
    pub fn at_least(self, needed: Self) -> bool {
        self.0 <= needed.0
    }
}

impl fmt::Display for ChLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

macro_rules! hash_id {
    ($(#[$doc:meta])* $name:ident, $len:expr, $what:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// Width on the wire and in shared memory.
            pub const LEN: usize = $len;
            /// The all-zero value, which means "none".
            pub const ZERO: Self = Self([0; $len]);

            /// Reads exactly [`Self::LEN`] bytes.
            ///
            /// # Errors
            /// [`Error::BadLength`] if `bytes` is not exactly [`Self::LEN`] long.
            pub fn parse(bytes: &[u8]) -> Result<Self> {
                let arr: [u8; $len] = bytes.try_into().map_err(|_| Error::BadLength {
                    what: $what,
                    expected: $len,
                    got: bytes.len(),
                })?;
                Ok(Self(arr))
            }

            /// True when every byte is zero.
            pub fn is_zero(&self) -> bool {
                self.0.iter().all(|b| *b == 0)
            }

            /// Lowercase hex, as used for socket and segment names.
            pub fn to_hex(&self) -> String {
                let mut s = String::with_capacity($len * 2);
                for b in self.0 {
                    s.push(char::from_digit(u32::from(b >> 4), 16).expect("nibble < 16"));
                    s.push(char::from_digit(u32::from(b & 0xf), 16).expect("nibble < 16"));
                }
                s
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::ZERO
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.to_hex())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }
    };
}

hash_id!(
    /// A 28-byte session id (SID), SHA3-224 sized (PROTOCOL.md §1.7).
    SessionId,
    28,
    "session id"
);
hash_id!(
    /// A 32-byte user id (UID), Keccak-256 sized.
    UserId,
    32,
    "user id"
);

/// A sub-channel key `[u64 channel_id][u8 sub_id]`, 9 bytes (PROTOCOL.md §0.2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SubChKey {
    /// Channel id; 0 is never valid and marks an empty slot.
    pub ch_id: u64,
    /// Sub-channel id, 0–255.
    pub sub_id: u8,
}

impl SubChKey {
    /// Width on the wire.
    pub const LEN: usize = 9;

    /// An all-zero slot.
    pub fn is_empty(&self) -> bool {
        self.ch_id == 0 && self.sub_id == 0
    }

    /// Reads exactly 9 bytes.
    ///
    /// # Errors
    /// [`Error::BadLength`] if `bytes` is not 9 bytes long.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let arr: [u8; 9] = bytes.try_into().map_err(|_| Error::BadLength {
            what: "sub-channel key",
            expected: 9,
            got: bytes.len(),
        })?;
        let mut ch = [0u8; 8];
        ch.copy_from_slice(&arr[..8]);
        Ok(Self {
            ch_id: u64::from_le_bytes(ch),
            sub_id: arr[8],
        })
    }

    /// The 9 wire bytes.
    pub fn to_bytes(&self) -> [u8; 9] {
        let mut out = [0u8; 9];
        out[..8].copy_from_slice(&self.ch_id.to_le_bytes());
        out[8] = self.sub_id;
        out
    }
}

/// The 54-byte open-sub-channel list: six [`SubChKey`] slots, empty slots anywhere, order
/// irrelevant (PROTOCOL.md §3.5). Helpers scan every slot (§9 item 31).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SubChList(pub [SubChKey; 6]);

impl SubChList {
    /// Width on the wire.
    pub const LEN: usize = 54;
    /// Number of slots, which is also the maximum number of open sub-channels.
    pub const SLOTS: usize = 6;

    /// Reads exactly 54 bytes.
    ///
    /// # Errors
    /// [`Error::BadLength`] if `bytes` is not 54 bytes long.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        if bytes.len() != Self::LEN {
            return Err(Error::BadLength {
                what: "sub-channel list",
                expected: 54,
                got: bytes.len(),
            });
        }
        let mut list = Self::default();
        for (slot, chunk) in list.0.iter_mut().zip(bytes.chunks_exact(SubChKey::LEN)) {
            *slot = SubChKey::parse(chunk)?;
        }
        Ok(list)
    }

    /// The 54 wire bytes.
    pub fn to_bytes(&self) -> [u8; 54] {
        let mut out = [0u8; 54];
        for (chunk, slot) in out.chunks_exact_mut(SubChKey::LEN).zip(self.0.iter()) {
            chunk.copy_from_slice(&slot.to_bytes());
        }
        out
    }

    /// The non-empty slots.
    pub fn iter(&self) -> impl Iterator<Item = SubChKey> + '_ {
        self.0.iter().copied().filter(|k| !k.is_empty())
    }

    /// Number of non-empty slots.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// True when every slot is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when `key` is in a non-empty slot.
    pub fn contains(&self, key: SubChKey) -> bool {
        !key.is_empty() && self.iter().any(|k| k == key)
    }

    /// Puts `key` in the first empty slot. Returns false if it is empty, already present, or
    /// the list is full.
    pub fn insert(&mut self, key: SubChKey) -> bool {
        if key.is_empty() || self.contains(key) {
            return false;
        }
        match self.0.iter_mut().find(|k| k.is_empty()) {
            Some(slot) => {
                *slot = key;
                true
            }
            None => false,
        }
    }

    /// Clears every slot holding `key`. Returns true if one was cleared.
    pub fn remove(&mut self, key: SubChKey) -> bool {
        let mut found = false;
        for slot in self.0.iter_mut().filter(|k| **k == key && !k.is_empty()) {
            *slot = SubChKey::default();
            found = true;
        }
        found
    }

    /// True when some non-empty slot of `self` is a non-empty slot of `other` (§9 item 33).
    pub fn intersects(&self, other: &Self) -> bool {
        self.iter().any(|k| other.contains(k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmd_id32_keeps_the_branch() {
        assert_eq!(cmd_id32(CmdId(0x0102), BranchId(0x0304)), 0x0304_0102);
    }

    #[test]
    fn sub_ch_list_round_trips_and_scans_every_slot() {
        let mut list = SubChList::default();
        for i in 1..=6u64 {
            assert!(list.insert(SubChKey {
                ch_id: i,
                sub_id: i as u8
            }));
        }
        assert!(
            !list.insert(SubChKey {
                ch_id: 7,
                sub_id: 0
            }),
            "full"
        );
        assert!(
            list.contains(SubChKey {
                ch_id: 6,
                sub_id: 6
            }),
            "last slot is scanned"
        );
        assert!(list.remove(SubChKey {
            ch_id: 3,
            sub_id: 3
        }));
        assert_eq!(list.len(), 5);
        let bytes = list.to_bytes();
        assert_eq!(&bytes[..9], &[1, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(SubChList::parse(&bytes).unwrap(), list);
        assert!(SubChList::parse(&bytes[..53]).is_err());
    }

    #[test]
    fn intersects_ignores_empty_slots() {
        let a = SubChList::default();
        let b = SubChList::default();
        assert!(!a.intersects(&b));
    }

    #[test]
    fn hash_ids_check_length() {
        assert!(SessionId::parse(&[0; 27]).is_err());
        assert!(
            SessionId::parse(&[1; 28])
                .unwrap()
                .to_hex()
                .starts_with("0101")
        );
        assert!(UserId::ZERO.is_zero());
    }
}
