//! IPC frames between the host and a module process (seed 001 §2.2, PROTOCOL.md §5.3):
//! `[type u8][len u24][payload]`, the MRCI frame without command and branch ids.
//!
//! Invariant: as with [`crate::frame::Frame`], the length is checked against the maximum
//! before anything is reserved.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::{Error, Result};
use crate::frame::{MAX_PAYLOAD, put_u24, read_u24, reserve_for};
use crate::text;
use crate::type_id::TypeId;

/// One IPC frame (seed 001 §2.2): `[type u8][len u24][payload]`, no command or branch id.
///
/// ```
/// use bytes::BytesMut;
/// use mrci_proto::{IpcFrame, TypeId};
///
/// let frame = IpcFrame::with_text(TypeId::TEXT, "hi");
/// let mut wire = BytesMut::new();
/// frame.encode(&mut wire)?;
/// assert_eq!(&wire[..], &[0x02, 0x04, 0x00, 0x00, b'h', 0, b'i', 0]);
/// assert_eq!(IpcFrame::decode(&mut wire, 1024)?, Some(frame));
/// # Ok::<(), mrci_proto::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpcFrame {
    /// What the payload is (PROTOCOL.md §3).
    pub type_id: TypeId,
    /// The payload bytes; at most [`MAX_PAYLOAD`] long when encoded.
    pub payload: Bytes,
}

impl IpcFrame {
    /// Size of the fixed IPC frame header.
    pub const HEADER_LEN: usize = 4;

    /// A frame with the given fields.
    pub fn new(type_id: TypeId, payload: impl Into<Bytes>) -> Self {
        Self {
            type_id,
            payload: payload.into(),
        }
    }

    /// A frame whose payload is `s` as TEXT of the given type.
    pub fn with_text(type_id: TypeId, s: &str) -> Self {
        Self::new(type_id, text::encode(s))
    }

    /// Decodes one frame from the front of `src`; `Ok(None)` means "need more bytes".
    ///
    /// # Errors
    /// [`Error::FrameTooLarge`] if the header announces more than `max` payload bytes.
    pub fn decode(src: &mut BytesMut, max: usize) -> Result<Option<Self>> {
        let Some(head) = src.get(..Self::HEADER_LEN) else {
            return Ok(None);
        };
        let len = read_u24(&head[1..4]);
        if len > max.min(MAX_PAYLOAD) {
            return Err(Error::FrameTooLarge { len, max });
        }
        let total = Self::HEADER_LEN + len;
        if src.len() < total {
            reserve_for(src, total, None);
            return Ok(None);
        }
        let type_id = TypeId(src.get_u8());
        src.advance(3);
        let payload = src.split_to(len).freeze();
        Ok(Some(Self { type_id, payload }))
    }

    /// Appends the frame to `dst`.
    ///
    /// # Errors
    /// [`Error::FrameTooLarge`] if the payload is longer than [`MAX_PAYLOAD`].
    pub fn encode(&self, dst: &mut BytesMut) -> Result<()> {
        let len = self.payload.len();
        if len > MAX_PAYLOAD {
            return Err(Error::FrameTooLarge {
                len,
                max: MAX_PAYLOAD,
            });
        }
        dst.reserve(Self::HEADER_LEN + len);
        dst.put_u8(self.type_id.0);
        put_u24(dst, len);
        dst.put_slice(&self.payload);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_ipc_frames() {
        // HOST_VER 2.0.1 as the host sends it to a list-mode module (PROTOCOL.md §5.4.1).
        let bytes = [0x14, 0x06, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00];
        let frame = IpcFrame::new(TypeId::HOST_VER, vec![2, 0, 0, 0, 1, 0]);
        let mut buf = BytesMut::from(&bytes[..]);
        assert_eq!(
            IpcFrame::decode(&mut buf, MAX_PAYLOAD).unwrap(),
            Some(frame.clone())
        );
        let mut out = BytesMut::new();
        frame.encode(&mut out).unwrap();
        assert_eq!(&out[..], &bytes[..]);
        // An empty KILL_CMD.
        let mut buf = BytesMut::from(&[0x1B, 0, 0, 0][..]);
        assert_eq!(
            IpcFrame::decode(&mut buf, 0).unwrap(),
            Some(IpcFrame::new(TypeId::KILL_CMD, Bytes::new()))
        );
    }

    #[test]
    fn oversize_and_incomplete() {
        let mut buf = BytesMut::from(&[0x02, 0xFF, 0xFF, 0xFF][..]);
        assert!(matches!(
            IpcFrame::decode(&mut buf, 100),
            Err(Error::FrameTooLarge { .. })
        ));
        let mut buf = BytesMut::from(&[0x02, 0x02, 0x00, 0x00, 0x41][..]);
        assert_eq!(IpcFrame::decode(&mut buf, 100).unwrap(), None);
        buf.put_u8(0);
        assert_eq!(
            IpcFrame::decode(&mut buf, 100).unwrap(),
            Some(IpcFrame::with_text(TypeId::TEXT, "A"))
        );
    }
}
