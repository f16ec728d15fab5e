//! MRCI frames, the unit of everything after the handshake (PROTOCOL.md §2.1):
//! `[type u8][cmd u16][branch u16][len u24][payload]`, little-endian, back to back.
//!
//! Invariant: [`Frame::decode`] checks the announced length against the caller's maximum
//! before it reserves a single byte for the payload, and then grows the buffer only with the
//! bytes that have arrived (see `reserve_for`), so an announced length alone costs
//! nothing; the buffer never grows past the frame's end, so a decoded payload holds an
//! allocation of about its own size and no more. [`Frame::decode_recycling`] may instead
//! continue a large frame in the allocation of an earlier payload that nobody holds any
//! more (see [`crate::recycle`]): memory that exists already, so the invariant holds.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::{Error, Result};
use crate::ids::{BranchId, CmdId};
use crate::recycle::Recycler;
use crate::text;
use crate::type_id::TypeId;

/// The least an incomplete frame's buffer grows by (unless less is missing): enough to read a
/// large payload in big steps, small enough that a stalled sender pins little memory.
pub const READ_AHEAD: usize = 64 * 1024;

/// Makes room in `src`, which holds the first bytes of a frame of `total` bytes, for more of
/// it: at least [`READ_AHEAD`] bytes (or what is missing, if less), rounded up to a power of
/// two once a read-ahead has arrived (so copying stays linear in the frame size), and never
/// past `total`. A large payload
/// thus ends in a buffer of its own size: split off, it pins no spare capacity, and the next
/// frame starts in a new, small buffer. (`BytesMut::reserve` would double past the frame's
/// end, leaving up to twice the payload allocated behind it.)
///
/// With a recycler, a frame larger than [`READ_AHEAD`] continues in a recycled buffer
/// when one is free (its bytes so far copied over), instead of a new allocation.
pub(crate) fn reserve_for(src: &mut BytesMut, total: usize, recycler: Option<&mut Recycler>) {
    let have = src.len();
    let want = total.saturating_sub(have).min(READ_AHEAD);
    if src.capacity() - have >= want {
        return;
    }
    if total > READ_AHEAD
        && let Some(mut reused) = recycler.and_then(|r| r.take(total))
    {
        reused.extend_from_slice(src);
        *src = reused;
        return;
    }
    // Past the first read-ahead, powers of two: every large frame passes through the same
    // buffer sizes, which the allocator then reuses from frame to frame instead of keeping
    // odd sizes around. A bare announcement still costs only the read-ahead.
    let cap = if have < READ_AHEAD {
        have + want
    } else {
        (have + want).next_power_of_two().min(total)
    };
    let mut grown = BytesMut::with_capacity(cap);
    grown.extend_from_slice(src);
    *src = grown;
}

/// The largest payload a 24-bit length can announce: 16,777,215 bytes.
pub const MAX_PAYLOAD: usize = 0xFF_FFFF;

/// One MRCI frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// What the payload is (PROTOCOL.md §3).
    pub type_id: TypeId,
    /// The command (256+) or async command (1–255) the frame belongs to.
    pub cmd_id: CmdId,
    /// The client-chosen instance of the command.
    pub branch_id: BranchId,
    /// The payload bytes; at most [`MAX_PAYLOAD`] long when encoded.
    pub payload: Bytes,
}

impl Frame {
    /// Size of the fixed frame header.
    pub const HEADER_LEN: usize = 8;

    /// A frame with the given fields.
    pub fn new(
        type_id: TypeId,
        cmd_id: CmdId,
        branch_id: BranchId,
        payload: impl Into<Bytes>,
    ) -> Self {
        Self {
            type_id,
            cmd_id,
            branch_id,
            payload: payload.into(),
        }
    }

    /// A frame whose payload is `s` as TEXT of the given type (TEXT, ERR, PRIV_TEXT, BIG_TEXT).
    pub fn with_text(type_id: TypeId, cmd_id: CmdId, branch_id: BranchId, s: &str) -> Self {
        Self::new(type_id, cmd_id, branch_id, text::encode(s))
    }

    /// A TEXT frame.
    pub fn text(cmd_id: CmdId, branch_id: BranchId, s: &str) -> Self {
        Self::with_text(TypeId::TEXT, cmd_id, branch_id, s)
    }

    /// An ERR frame.
    pub fn err(cmd_id: CmdId, branch_id: BranchId, s: &str) -> Self {
        Self::with_text(TypeId::ERR, cmd_id, branch_id, s)
    }

    /// An empty IDLE frame: "this instance finished its task".
    pub fn idle(cmd_id: CmdId, branch_id: BranchId) -> Self {
        Self::new(TypeId::IDLE, cmd_id, branch_id, Bytes::new())
    }

    /// The payload decoded as TEXT (lossy; see [`text::decode`]).
    pub fn text_payload(&self) -> String {
        text::decode(&self.payload)
    }

    /// Number of bytes [`Frame::encode`] appends.
    pub fn encoded_len(&self) -> usize {
        Self::HEADER_LEN + self.payload.len()
    }

    /// Decodes one frame from the front of `src`, consuming its bytes.
    ///
    /// Returns `Ok(None)` when `src` does not yet hold a whole frame; in that case it makes
    /// room for the next part of the frame ([`READ_AHEAD`] bytes or up to as many as have
    /// arrived, never past the frame's end), never the whole announced length at once.
    ///
    /// # Errors
    /// [`Error::FrameTooLarge`] if the header announces more than `max` payload bytes; the
    /// stream cannot be resynchronised after that and should be closed.
    pub fn decode(src: &mut BytesMut, max: usize) -> Result<Option<Self>> {
        Self::decode_with(src, max, None)
    }

    /// [`Frame::decode`], continuing a large frame in a buffer from `recycler` when it has
    /// one free, and remembering large payloads in it for later reuse. For a stream of
    /// large frames (a file upload) this keeps the decoder from allocating a buffer per
    /// frame.
    ///
    /// # Errors
    /// As [`Frame::decode`].
    pub fn decode_recycling(
        src: &mut BytesMut,
        max: usize,
        recycler: &mut Recycler,
    ) -> Result<Option<Self>> {
        Self::decode_with(src, max, Some(recycler))
    }

    fn decode_with(
        src: &mut BytesMut,
        max: usize,
        recycler: Option<&mut Recycler>,
    ) -> Result<Option<Self>> {
        let Some(head) = src.get(..Self::HEADER_LEN) else {
            return Ok(None);
        };
        let len = read_u24(&head[5..8]);
        if len > max.min(MAX_PAYLOAD) {
            return Err(Error::FrameTooLarge { len, max });
        }
        let total = Self::HEADER_LEN + len;
        if src.len() < total {
            reserve_for(src, total, recycler);
            return Ok(None);
        }
        let type_id = TypeId(src.get_u8());
        let cmd_id = CmdId(src.get_u16_le());
        let branch_id = BranchId(src.get_u16_le());
        src.advance(3);
        let payload = src.split_to(len).freeze();
        if let Some(r) = recycler {
            r.remember(&payload);
        }
        Ok(Some(Self {
            type_id,
            cmd_id,
            branch_id,
            payload,
        }))
    }

    /// Appends the frame to `dst`.
    ///
    /// # Errors
    /// [`Error::FrameTooLarge`] if the payload is longer than [`MAX_PAYLOAD`]; nothing is
    /// written then.
    pub fn encode(&self, dst: &mut BytesMut) -> Result<()> {
        dst.reserve(Self::HEADER_LEN + self.payload.len());
        self.encode_header(dst)?;
        dst.put_slice(&self.payload);
        Ok(())
    }

    /// Appends only the frame's header; the payload's bytes must follow it on the wire (for
    /// a writer that sends a large payload without copying it).
    ///
    /// # Errors
    /// As [`Frame::encode`].
    pub fn encode_header(&self, dst: &mut BytesMut) -> Result<()> {
        let len = self.payload.len();
        if len > MAX_PAYLOAD {
            return Err(Error::FrameTooLarge {
                len,
                max: MAX_PAYLOAD,
            });
        }
        dst.put_u8(self.type_id.0);
        dst.put_u16_le(self.cmd_id.0);
        dst.put_u16_le(self.branch_id.0);
        put_u24(dst, len);
        Ok(())
    }
}

/// Reads a little-endian 24-bit length from exactly three bytes.
pub(crate) fn read_u24(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .take(3)
        .enumerate()
        .fold(0, |acc, (i, b)| acc | usize::from(*b) << (8 * i))
}

/// Appends `len` (at most [`MAX_PAYLOAD`]) as a little-endian 24-bit integer.
pub(crate) fn put_u24(dst: &mut BytesMut, len: usize) {
    let bytes = (len as u32).to_le_bytes();
    dst.put_slice(&bytes[..3]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
        digits
            .chunks(2)
            .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
            .collect()
    }

    /// Checks both directions: `bytes` decodes to `frame` and `frame` encodes to `bytes`.
    fn check(bytes: &str, frame: &Frame) {
        let bytes = hex(bytes);
        let mut buf = BytesMut::from(&bytes[..]);
        assert_eq!(
            Frame::decode(&mut buf, MAX_PAYLOAD).unwrap().as_ref(),
            Some(frame)
        );
        assert!(buf.is_empty());
        let mut out = BytesMut::new();
        frame.encode(&mut out).unwrap();
        assert_eq!(&out[..], &bytes[..]);
    }

    #[test]
    fn golden_frames() {
        // PROTOCOL.md §2.3: the reply to a TEXT frame for unknown command 999 on branch 7.
        let err = Frame::err(CmdId(999), BranchId(7), "err: No such command id: 999.");
        let mut expected = String::from("03 E703 0700 3A0000");
        for unit in "err: No such command id: 999.".encode_utf16() {
            expected.push_str(&format!(" {:02X}{:02X}", unit & 0xff, unit >> 8));
        }
        check(&expected, &err);
        // An empty IDLE on command 256, branch 1.
        check("05 0001 0100 000000", &Frame::idle(CmdId(256), BranchId(1)));
        // ASYNC_RDY (cmd 1) "\nReady!\n\n" (PROTOCOL.md §1.6).
        check(
            "02 0100 0000 120000 0A00 52006500610064007900 2100 0A00 0A00",
            &Frame::text(CmdId(1), BranchId(0), "\nReady!\n\n"),
        );
        // An unknown type id still decodes.
        check(
            "FE 3412 7856 020000 AABB",
            &Frame::new(
                TypeId(0xFE),
                CmdId(0x1234),
                BranchId(0x5678),
                vec![0xAA, 0xBB],
            ),
        );
    }

    #[test]
    fn incomplete_input_waits_and_reserves_no_more_than_the_frame() {
        let mut buf = BytesMut::from(&hex("02 0001 0000 100000")[..]);
        assert!(Frame::decode(&mut buf, 1024).unwrap().is_none());
        assert!(buf.capacity() >= 8 + 16);
        // A 16 MiB announcement reserves only the read-ahead, however large the maximum.
        let mut buf = BytesMut::from(&hex("02 0001 0000 FFFFFF")[..]);
        assert!(Frame::decode(&mut buf, MAX_PAYLOAD).unwrap().is_none());
        assert!(buf.capacity() <= 8 + READ_AHEAD + 64, "{}", buf.capacity());
        let mut buf = BytesMut::from(&hex("02 0001")[..]);
        assert!(Frame::decode(&mut buf, 1024).unwrap().is_none());
        assert_eq!(buf.len(), 3);
    }

    #[test]
    fn a_large_payload_arriving_in_pieces_ends_in_a_buffer_of_its_own_size() {
        // 1 MiB arriving 16 KiB at a time, as TLS records do.
        let len = 1 << 20;
        let frame = Frame::new(TypeId::GEN_FILE, CmdId(256), BranchId(0), vec![7u8; len]);
        let mut wire = BytesMut::new();
        frame.encode(&mut wire).unwrap();
        let mut buf = BytesMut::new();
        let mut decoded = None;
        for piece in wire.chunks(16 * 1024) {
            assert!(decoded.is_none());
            buf.extend_from_slice(piece);
            decoded = Frame::decode(&mut buf, MAX_PAYLOAD).unwrap();
            if decoded.is_none() {
                // Growth follows what arrived: at most double it and the read-ahead.
                assert!(
                    buf.capacity() <= 2 * (buf.len() + READ_AHEAD),
                    "{}",
                    buf.capacity()
                );
            }
        }
        assert_eq!(decoded, Some(frame));
        // Nothing past the frame's end was allocated; the buffer holds no spare capacity.
        assert_eq!(buf.capacity(), 0);
    }

    #[test]
    fn large_frames_in_a_row_reuse_a_payload_nobody_holds() {
        let len = 1 << 20;
        let frames: Vec<Frame> = (0..4u8)
            .map(|k| Frame::new(TypeId::GEN_FILE, CmdId(256), BranchId(0), vec![k; len]))
            .collect();
        let mut wire = BytesMut::new();
        for f in &frames {
            f.encode(&mut wire).unwrap();
        }
        let mut recycler = Recycler::new(2, READ_AHEAD);
        let mut buf = BytesMut::new();
        let mut ptrs = Vec::new();
        let mut kept = None;
        // Read as a framed reader does: into the spare capacity only (16 KiB at most, as
        // TLS records arrive), reserving a byte when there is none.
        let mut at = 0;
        while at < wire.len() {
            buf.reserve(1);
            let n = (buf.capacity() - buf.len())
                .min(16 * 1024)
                .min(wire.len() - at);
            buf.extend_from_slice(&wire[at..at + n]);
            at += n;
            while let Some(f) =
                Frame::decode_recycling(&mut buf, MAX_PAYLOAD, &mut recycler).unwrap()
            {
                assert_eq!(f, frames[ptrs.len()], "payload intact");
                ptrs.push(f.payload.as_ptr());
                // The consumer drops every payload at once, except the third, which it
                // keeps (as a slow writer would).
                if ptrs.len() == 3 {
                    kept = Some(f);
                }
            }
        }
        assert_eq!(ptrs.len(), 4);
        assert_eq!(
            ptrs[1], ptrs[0],
            "the second frame reused the first's memory"
        );
        assert_eq!(ptrs[2], ptrs[0], "and so did the third");
        assert_ne!(ptrs[3], ptrs[2], "not the memory of a payload still held");
        assert_eq!(kept.unwrap().payload[..], vec![2u8; len][..]);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Frames of any mix of sizes, arriving in pieces of any size, with the consumer
        /// keeping some payloads and dropping others: decoding with a recycler gives the
        /// same frames, byte for byte, and never a buffer larger than the frame it holds
        /// or the read-ahead.
        #[test]
        fn recycling_never_changes_what_is_decoded(
            sizes in proptest::collection::vec(
                proptest::prop_oneof![0usize..300, 60_000usize..200_000],
                1..12,
            ),
            piece in 1usize..40_000,
            keep_every in 1usize..4,
        ) {
            let frames: Vec<Frame> = sizes
                .iter()
                .enumerate()
                .map(|(i, &n)| {
                    let fill = u8::try_from(i % 251).unwrap_or(0);
                    Frame::new(TypeId::GEN_FILE, CmdId(256), BranchId(0), vec![fill; n])
                })
                .collect();
            let mut wire = BytesMut::new();
            for f in &frames {
                f.encode(&mut wire).unwrap();
            }
            let mut recycler = Recycler::new(2, READ_AHEAD);
            let (mut buf, mut kept, mut n) = (BytesMut::new(), Vec::new(), 0);
            let mut at = 0;
            while at < wire.len() {
                buf.reserve(1);
                let k = (buf.capacity() - buf.len()).min(piece).min(wire.len() - at);
                buf.extend_from_slice(&wire[at..at + k]);
                at += k;
                while let Some(f) =
                    Frame::decode_recycling(&mut buf, MAX_PAYLOAD, &mut recycler).unwrap()
                {
                    proptest::prop_assert_eq!(&f, &frames[n]);
                    n += 1;
                    if n % keep_every == 0 {
                        kept.push((n - 1, f));
                    }
                }
                let largest = sizes.iter().max().copied().unwrap_or(0) + Frame::HEADER_LEN;
                proptest::prop_assert!(buf.capacity() <= largest.max(2 * READ_AHEAD));
            }
            proptest::prop_assert_eq!(n, frames.len());
            for (i, f) in kept {
                proptest::prop_assert_eq!(&f, &frames[i], "a kept payload was overwritten");
            }
        }
    }

    #[test]
    fn oversize_length_is_an_error_before_any_allocation() {
        let mut buf = BytesMut::from(&hex("02 0001 0000 FFFFFF")[..]);
        let before = buf.capacity();
        let err = Frame::decode(&mut buf, 1024).unwrap_err();
        assert!(matches!(
            err,
            Error::FrameTooLarge {
                len: 0xFF_FFFF,
                max: 1024
            }
        ));
        assert_eq!(buf.capacity(), before);
        // Exactly the maximum is fine.
        let mut buf = BytesMut::from(&hex("0E 0001 0000 040000 01020304")[..]);
        assert!(Frame::decode(&mut buf, 4).unwrap().is_some());
    }

    #[test]
    fn encode_refuses_oversize_payloads() {
        let frame = Frame::new(
            TypeId::BYTES,
            CmdId(256),
            BranchId(0),
            vec![0; MAX_PAYLOAD + 1],
        );
        let mut out = BytesMut::new();
        assert!(frame.encode(&mut out).is_err());
        assert!(out.is_empty());
    }
}
