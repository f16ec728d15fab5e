//! PRIV_IPC, PUB_IPC and PUB_IPC_WITH_FEEDBACK (PROTOCOL.md §3.3.21): an async command id
//! and its payload, sent by a run-mode module to its session.

use bytes::{BufMut, Bytes, BytesMut};

use super::reader::Reader;
use crate::error::Result;
use crate::ids::CmdId;

/// A module's request that its session (or every session) performs an async command.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AsyncRequest {
    /// The async command id (u16 on the wire; valid ids are 1–255).
    pub async_id: CmdId,
    /// The async command's payload.
    pub data: Bytes,
}

impl AsyncRequest {
    /// Parses `[u16 async_id][payload…]`.
    ///
    /// # Errors
    /// [`crate::Error::Truncated`] below two bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "IPC request");
        let async_id = CmdId(r.u16()?);
        Ok(Self {
            async_id,
            data: Bytes::copy_from_slice(r.rest()),
        })
    }

    /// Appends the payload.
    pub fn write(&self, dst: &mut BytesMut) {
        dst.put_u16_le(self.async_id.0);
        dst.put_slice(&self.data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_layout() {
        let req = AsyncRequest {
            async_id: CmdId(5),
            data: Bytes::from_static(&[9, 9]),
        };
        let mut out = BytesMut::new();
        req.write(&mut out);
        assert_eq!(&out[..], &[5, 0, 9, 9]);
        assert_eq!(AsyncRequest::parse(&out).unwrap(), req);
        assert!(AsyncRequest::parse(&[5]).is_err());
    }
}
