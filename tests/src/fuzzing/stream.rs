//! One check for both frame codecs over an arbitrary byte stream: the MRCI codec a client
//! link uses and the IPC codec a module socket uses.
//!
//! Invariant checked: decoding never panics; a decoded frame never exceeds the configured
//! maximum; the frames re-encode to exactly the bytes they were decoded from and decode back
//! to themselves; feeding the stream in small pieces gives the same frames and the same end
//! as feeding it at once; and the read buffer never grows past what the stream and the
//! maximum justify, whatever length a header announces.

use std::fmt::Debug;

use bytes::BytesMut;
use mrci_proto::Error;
use tokio_util::codec::{Decoder, Encoder};

/// What a stream target reads from the front of its input.
pub(crate) struct Params<'a> {
    /// The codec's maximum payload: bytes 0–1, little-endian (0–65,535), so that announced
    /// lengths land both under and over it.
    pub max: usize,
    /// The piece size for incremental feeding: byte 2 (0 counts as 1).
    pub chunk: usize,
    /// The rest: the byte stream.
    pub stream: &'a [u8],
}

impl<'a> Params<'a> {
    /// Splits an input; `None` if it is shorter than the three parameter bytes.
    pub(crate) fn parse(data: &'a [u8]) -> Option<Self> {
        let [a, b, c, stream @ ..] = data else {
            return None;
        };
        Some(Self {
            max: usize::from(u16::from_le_bytes([*a, *b])),
            chunk: usize::from(*c).max(1),
            stream,
        })
    }

    /// The input that selects `max` and `chunk` for `stream` (for seeds).
    pub(crate) fn encode(max: u16, chunk: u8, stream: &[u8]) -> Vec<u8> {
        let mut out = max.to_le_bytes().to_vec();
        out.push(chunk);
        out.extend_from_slice(stream);
        out
    }
}

/// How decoding a whole stream ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// Every byte formed whole frames.
    Clean,
    /// The stream stopped inside a frame.
    Partial,
    /// A header announced more than the maximum.
    Refused,
}

/// A frame codec under test: how long a frame's header is and how long its payload.
pub(crate) trait FrameCodec:
    Decoder<Item = Self::Frame, Error = Error> + Encoder<Self::Frame, Error = Error> + Clone
{
    /// The frame type.
    type Frame: Clone + PartialEq + Debug;
    /// Bytes before the payload.
    const HEADER_LEN: usize;
    /// The frame's payload length.
    fn payload_len(frame: &Self::Frame) -> usize;
}

impl FrameCodec for mrci_proto::codec::MrciCodec {
    type Frame = mrci_proto::Frame;
    const HEADER_LEN: usize = mrci_proto::Frame::HEADER_LEN;
    fn payload_len(frame: &Self::Frame) -> usize {
        frame.payload.len()
    }
}

impl FrameCodec for mrci_proto::codec::IpcCodec {
    type Frame = mrci_proto::IpcFrame;
    const HEADER_LEN: usize = mrci_proto::IpcFrame::HEADER_LEN;
    fn payload_len(frame: &Self::Frame) -> usize {
        frame.payload.len()
    }
}

/// Runs every check in the module doc on `p.stream` and returns the frames it holds.
pub(crate) fn check<C: FrameCodec>(codec: &C, p: &Params<'_>) -> Vec<C::Frame> {
    let bound = 2 * (p.stream.len() + C::HEADER_LEN + p.max) + 64;
    let mut buf = BytesMut::from(p.stream);
    let (frames, end) = decode_all(&mut codec.clone(), &mut buf, bound);
    if end == End::Partial {
        let mut rest = buf.clone();
        assert!(
            codec.clone().decode_eof(&mut rest).is_err(),
            "decode_eof accepted {} trailing bytes",
            buf.len()
        );
    }
    let mut out = BytesMut::new();
    for frame in &frames {
        let len = C::payload_len(frame);
        assert!(
            len <= p.max,
            "a {len}-byte payload passed a {} maximum",
            p.max
        );
        codec
            .clone()
            .encode(frame.clone(), &mut out)
            .expect("a decoded frame encodes");
    }
    assert_eq!(out.len(), p.stream.len() - buf.len(), "consumed bytes");
    assert_eq!(&out[..], &p.stream[..out.len()], "re-encoding differs");
    let mut again = out.clone();
    let (decoded, end_again) = decode_all(&mut codec.clone(), &mut again, bound);
    assert_eq!(decoded, frames, "decode(encode(frames))");
    assert_eq!(end_again, End::Clean);
    let (pieces, end_pieces) = decode_in_pieces(codec, p, bound);
    assert_eq!(
        pieces, frames,
        "frames differ when fed {} bytes at a time",
        p.chunk
    );
    assert_eq!(
        end_pieces, end,
        "end differs when fed {} bytes at a time",
        p.chunk
    );
    frames
}

fn decode_all<C: FrameCodec>(
    codec: &mut C,
    buf: &mut BytesMut,
    bound: usize,
) -> (Vec<C::Frame>, End) {
    let mut frames = Vec::new();
    let end = loop {
        match codec.decode(buf) {
            Ok(Some(frame)) => frames.push(frame),
            Ok(None) if buf.is_empty() => break End::Clean,
            Ok(None) => break End::Partial,
            Err(_) => break End::Refused,
        }
    };
    assert!(
        buf.capacity() <= bound,
        "the read buffer grew to {} bytes (bound {bound})",
        buf.capacity()
    );
    (frames, end)
}

fn decode_in_pieces<C: FrameCodec>(
    codec: &C,
    p: &Params<'_>,
    bound: usize,
) -> (Vec<C::Frame>, End) {
    let mut codec = codec.clone();
    let (mut buf, mut frames) = (BytesMut::new(), Vec::new());
    for piece in p.stream.chunks(p.chunk) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(_) => return (frames, End::Refused),
            }
        }
        assert!(
            buf.capacity() <= bound,
            "the read buffer grew to {} bytes (bound {bound})",
            buf.capacity()
        );
    }
    let end = if buf.is_empty() {
        End::Clean
    } else {
        End::Partial
    };
    (frames, end)
}
