//! tokio-util codecs: thin glue from `Decoder`/`Encoder` to [`Frame::decode`]/[`Frame::encode`]
//! and the IPC equivalents. No state beyond the configured maximum payload.

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use crate::error::{Error, Result};
use crate::frame::{Frame, MAX_PAYLOAD};
use crate::ipc::IpcFrame;

/// Codec for MRCI frames on a client link.
#[derive(Clone, Copy, Debug)]
pub struct MrciCodec {
    max: usize,
}

impl MrciCodec {
    /// A codec accepting payloads up to the protocol limit of 16,777,215 bytes.
    pub fn new() -> Self {
        Self { max: MAX_PAYLOAD }
    }

    /// A codec accepting payloads up to `max` bytes (capped at the protocol limit).
    pub fn with_max(max: usize) -> Self {
        Self {
            max: max.min(MAX_PAYLOAD),
        }
    }

    /// The largest payload this codec accepts.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Changes the largest payload accepted from the next frame on (capped at the protocol
    /// limit), as a host does when a session logs in or out.
    pub fn set_max(&mut self, max: usize) {
        self.max = max.min(MAX_PAYLOAD);
    }
}

impl Default for MrciCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder for MrciCodec {
    type Item = Frame;
    type Error = Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>> {
        Frame::decode(src, self.max)
    }
}

impl Encoder<Frame> for MrciCodec {
    type Error = Error;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<()> {
        frame.encode(dst)
    }
}

impl Encoder<&Frame> for MrciCodec {
    type Error = Error;

    fn encode(&mut self, frame: &Frame, dst: &mut BytesMut) -> Result<()> {
        frame.encode(dst)
    }
}

/// Codec for IPC frames on a module's socket.
#[derive(Clone, Copy, Debug)]
pub struct IpcCodec {
    max: usize,
}

impl IpcCodec {
    /// A codec accepting payloads up to the protocol limit.
    pub fn new() -> Self {
        Self { max: MAX_PAYLOAD }
    }

    /// A codec accepting payloads up to `max` bytes (capped at the protocol limit).
    pub fn with_max(max: usize) -> Self {
        Self {
            max: max.min(MAX_PAYLOAD),
        }
    }
}

impl Default for IpcCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder for IpcCodec {
    type Item = IpcFrame;
    type Error = Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<IpcFrame>> {
        IpcFrame::decode(src, self.max)
    }
}

impl Encoder<IpcFrame> for IpcCodec {
    type Error = Error;

    fn encode(&mut self, frame: IpcFrame, dst: &mut BytesMut) -> Result<()> {
        frame.encode(dst)
    }
}
