//! Session-describing payloads: PEER_INFO (306 bytes), MY_INFO (439) and PEER_STAT (83)
//! (PROTOCOL.md §3.3.8–3.3.10, sizes resolved in §9 item 8). PING_PEERS and a delivered
//! P2P_REQUEST reuse the PEER_INFO layout.
//!
//! Invariant: parse demands the exact size; write always produces it.

use bytes::{BufMut, BytesMut};

use super::reader::Reader;
use crate::error::{Error, Result};
use crate::ids::{SessionId, SubChList, UserId};
use crate::text;

fn exact(bytes: &[u8], what: &'static str, expected: usize) -> Result<()> {
    if bytes.len() == expected {
        Ok(())
    } else {
        Err(Error::BadLength {
            what,
            expected,
            got: bytes.len(),
        })
    }
}

/// Who a session is: PEER_INFO.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerInfo {
    /// The session id.
    pub session_id: SessionId,
    /// The logged-in user's id, zero when not logged in.
    pub user_id: UserId,
    /// User name, FTEXT(48).
    pub user_name: String,
    /// Client app name, FTEXT(134).
    pub app_name: String,
    /// Display name, FTEXT(64).
    pub display_name: String,
}

impl PeerInfo {
    /// Size on the wire.
    pub const LEN: usize = 306;

    /// Parses exactly 306 bytes.
    ///
    /// # Errors
    /// [`Error::BadLength`] for any other size.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        exact(bytes, "PEER_INFO", Self::LEN)?;
        Self::read(&mut Reader::new(bytes, "PEER_INFO"))
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            session_id: SessionId::parse(r.take(SessionId::LEN)?)?,
            user_id: UserId::parse(r.take(UserId::LEN)?)?,
            user_name: r.fixed_text(48)?,
            app_name: r.fixed_text(134)?,
            display_name: r.fixed_text(64)?,
        })
    }

    /// Appends the 306 bytes.
    pub fn write(&self, dst: &mut BytesMut) {
        dst.reserve(Self::LEN);
        dst.put_slice(&self.session_id.0);
        dst.put_slice(&self.user_id.0);
        text::write_fixed(&self.user_name, 48, dst);
        text::write_fixed(&self.app_name, 134, dst);
        text::write_fixed(&self.display_name, 64, dst);
    }
}

/// The local session's own information: MY_INFO, sent on ASYNC_SYS_MSG.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MyInfo {
    /// The PEER_INFO part (bytes 0–305).
    pub peer: PeerInfo,
    /// Email address, FTEXT(128).
    pub email: String,
    /// Host rank; 0 when not logged in.
    pub host_rank: u32,
    /// Whether the email address was confirmed.
    pub email_verified: bool,
}

impl MyInfo {
    /// Size on the wire.
    pub const LEN: usize = 439;

    /// Parses exactly 439 bytes.
    ///
    /// # Errors
    /// [`Error::BadLength`] for any other size.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        exact(bytes, "MY_INFO", Self::LEN)?;
        let mut r = Reader::new(bytes, "MY_INFO");
        Ok(Self {
            peer: PeerInfo::read(&mut r)?,
            email: r.fixed_text(128)?,
            host_rank: r.u32()?,
            email_verified: r.flag()?,
        })
    }

    /// Appends the 439 bytes.
    pub fn write(&self, dst: &mut BytesMut) {
        dst.reserve(Self::LEN);
        self.peer.write(dst);
        text::write_fixed(&self.email, 128, dst);
        dst.put_u32_le(self.host_rank);
        dst.put_u8(u8::from(self.email_verified));
    }
}

/// A peer's sub-channel status: PEER_STAT.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerStat {
    /// The peer's session id.
    pub session_id: SessionId,
    /// The peer's open sub-channels.
    pub sub_channels: SubChList,
    /// True when the peer left and its session id is no longer valid.
    pub disconnected: bool,
}

impl PeerStat {
    /// Size on the wire.
    pub const LEN: usize = 83;

    /// Parses exactly 83 bytes.
    ///
    /// # Errors
    /// [`Error::BadLength`] for any other size.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        exact(bytes, "PEER_STAT", Self::LEN)?;
        let mut r = Reader::new(bytes, "PEER_STAT");
        Ok(Self {
            session_id: SessionId::parse(r.take(SessionId::LEN)?)?,
            sub_channels: SubChList::parse(r.take(SubChList::LEN)?)?,
            disconnected: r.flag()?,
        })
    }

    /// Appends the 83 bytes.
    pub fn write(&self, dst: &mut BytesMut) {
        dst.reserve(Self::LEN);
        dst.put_slice(&self.session_id.0);
        dst.put_slice(&self.sub_channels.to_bytes());
        dst.put_u8(u8::from(self.disconnected));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::SubChKey;

    fn peer() -> PeerInfo {
        PeerInfo {
            session_id: SessionId([1; 28]),
            user_id: UserId([2; 32]),
            user_name: "alice".into(),
            app_name: "MRCI terminal".into(),
            display_name: "Alice A.".into(),
        }
    }

    #[test]
    fn peer_info_offsets_match_the_table() {
        let mut out = BytesMut::new();
        peer().write(&mut out);
        assert_eq!(out.len(), 306);
        assert_eq!(&out[0..28], &[1; 28]);
        assert_eq!(&out[28..60], &[2; 32]);
        assert_eq!(&out[60..62], &[b'a', 0]);
        assert_eq!(&out[108..110], &[b'M', 0]);
        assert_eq!(&out[242..244], &[b'A', 0]);
        assert_eq!(PeerInfo::parse(&out).unwrap(), peer());
        assert!(PeerInfo::parse(&out[..305]).is_err());
    }

    #[test]
    fn my_info_offsets_match_the_table() {
        let info = MyInfo {
            peer: peer(),
            email: "a@b.c".into(),
            host_rank: 0x0102_0304,
            email_verified: true,
        };
        let mut out = BytesMut::new();
        info.write(&mut out);
        assert_eq!(out.len(), 439);
        assert_eq!(&out[306..308], &[b'a', 0]);
        assert_eq!(&out[434..438], &[4, 3, 2, 1]);
        assert_eq!(out[438], 1);
        assert_eq!(MyInfo::parse(&out).unwrap(), info);
    }

    #[test]
    fn peer_stat_offsets_match_the_table() {
        let mut subs = SubChList::default();
        subs.insert(SubChKey {
            ch_id: 7,
            sub_id: 3,
        });
        let stat = PeerStat {
            session_id: SessionId([9; 28]),
            sub_channels: subs,
            disconnected: true,
        };
        let mut out = BytesMut::new();
        stat.write(&mut out);
        assert_eq!(out.len(), 83);
        assert_eq!(out[82], 1);
        assert_eq!(PeerStat::parse(&out).unwrap(), stat);
    }
}
