//! Channel payloads: CH_MEMBER_INFO (PROTOCOL.md §3.3.25) and CH_ID (§3.3.26).

use bytes::{BufMut, BytesMut};

use super::reader::Reader;
use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::text;

/// One channel member or invitee.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChMemberInfo {
    /// The channel id.
    pub ch_id: u64,
    /// The member's user id.
    pub user_id: UserId,
    /// True while the invitation is not yet accepted.
    pub pending: bool,
    /// Member level: 1 owner, 2 admin, 3 officer, 4 regular, 5 public.
    pub level: u8,
    /// The member's user name.
    pub user_name: String,
    /// The member's display name.
    pub display_name: String,
    /// The channel's name.
    pub ch_name: String,
}

impl ChMemberInfo {
    /// Parses a CH_MEMBER_INFO payload.
    ///
    /// # Errors
    /// [`Error::Truncated`] if a field or terminator is missing.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "CH_MEMBER_INFO");
        let info = Self {
            ch_id: r.u64()?,
            user_id: UserId::parse(r.take(UserId::LEN)?)?,
            pending: r.flag()?,
            level: r.u8()?,
            user_name: r.terminated_text()?,
            display_name: r.terminated_text()?,
            ch_name: r.terminated_text()?,
        };
        r.finish()?;
        Ok(info)
    }

    /// Appends the payload.
    pub fn write(&self, dst: &mut BytesMut) {
        dst.put_u64_le(self.ch_id);
        dst.put_slice(&self.user_id.0);
        dst.put_u8(u8::from(self.pending));
        dst.put_u8(self.level);
        text::write_terminated(&self.user_name, dst);
        text::write_terminated(&self.display_name, dst);
        text::write_terminated(&self.ch_name, dst);
    }
}

/// Parses a CH_ID payload: one little-endian u64.
///
/// # Errors
/// [`Error::BadLength`] unless the payload is eight bytes.
pub fn parse_ch_id(bytes: &[u8]) -> Result<u64> {
    let raw = <[u8; 8]>::try_from(bytes).map_err(|_| Error::BadLength {
        what: "CH_ID",
        expected: 8,
        got: bytes.len(),
    })?;
    Ok(u64::from_le_bytes(raw))
}

/// Appends a CH_ID payload.
pub fn write_ch_id(ch_id: u64, dst: &mut BytesMut) {
    dst.put_u64_le(ch_id);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_info_layout() {
        let info = ChMemberInfo {
            ch_id: 987,
            user_id: UserId([5; 32]),
            pending: true,
            level: 4,
            user_name: "u".into(),
            display_name: String::new(),
            ch_name: "chan".into(),
        };
        let mut out = BytesMut::new();
        info.write(&mut out);
        assert_eq!(&out[..8], &987u64.to_le_bytes());
        assert_eq!(&out[8..40], &[5; 32]);
        assert_eq!(&out[40..42], &[1, 4]);
        assert_eq!(&out[42..46], &[b'u', 0, 0, 0]);
        assert_eq!(&out[46..48], &[0, 0]);
        assert_eq!(ChMemberInfo::parse(&out).unwrap(), info);
        assert_eq!(parse_ch_id(&987u64.to_le_bytes()).unwrap(), 987);
        assert!(parse_ch_id(&[0; 7]).is_err());
    }
}
