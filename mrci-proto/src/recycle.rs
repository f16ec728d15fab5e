//! Reuse of large payload buffers: a [`Recycler`] remembers the last few large payloads it
//! handed out and gives an allocation back once every other holder of it has dropped it.
//!
//! Why: a file transfer moves one chunk-sized payload after another through the same
//! place (the frame decoder on upload, the file reader on download). Allocating each anew
//! and freeing it on another thread leaves the allocator with freed chunks it returns to
//! the system only later, so a host's resident memory grew by about a dozen chunks during a
//! fast transfer although it held one or two at any moment. With a recycler the next chunk
//! goes into the memory of one that is done with, and resident memory stays at the chunks
//! actually in flight.
//!
//! Invariants: a buffer is given back only when the recycler's own handle is the last one
//! ([`Bytes::is_unique`]), so nobody can observe the reuse; at most `keep` payloads are
//! remembered (the oldest are forgotten), so the recycler pins at most `keep` buffers; only
//! payloads of at least `min` bytes are remembered. No IO, no clock, no `unsafe`.

use bytes::{Bytes, BytesMut};

/// Gives back the allocations of large payloads once nobody else holds them.
#[derive(Debug)]
pub struct Recycler {
    held: Vec<Bytes>,
    keep: usize,
    min: usize,
}

impl Recycler {
    /// A recycler that remembers up to `keep` payloads of at least `min` bytes.
    pub fn new(keep: usize, min: usize) -> Self {
        Self {
            held: Vec::with_capacity(keep),
            keep,
            min,
        }
    }

    /// Remembers `payload` (sharing its allocation, not copying it) if it is at least `min`
    /// bytes long; forgets the oldest payload beyond `keep`.
    pub fn remember(&mut self, payload: &Bytes) {
        if payload.len() < self.min || self.keep == 0 {
            return;
        }
        if self.held.len() == self.keep {
            self.held.remove(0);
        }
        self.held.push(payload.clone());
    }

    /// An empty buffer with room for at least `cap` bytes, made from a remembered payload
    /// that nobody else holds any more; `None` if there is none. A payload too small for
    /// `cap` is forgotten when found unused.
    pub fn take(&mut self, cap: usize) -> Option<BytesMut> {
        let mut i = 0;
        while i < self.held.len() {
            if !self.held[i].is_unique() {
                i += 1;
                continue;
            }
            let payload = self.held.remove(i);
            if let Ok(mut buf) = payload.try_into_mut() {
                buf.clear();
                // The payload started after its frame's header: reclaim the whole
                // allocation, which moves nothing since the buffer is empty.
                if buf.try_reclaim(cap) {
                    return Some(buf);
                }
            }
        }
        None
    }

    /// Forgets every remembered payload (their memory goes back to the allocator once the
    /// other holders drop them).
    pub fn clear(&mut self) {
        self.held.clear();
    }

    /// How many payloads are remembered.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A payload as the decoder makes it: split off the front of a larger buffer, after an
    /// 8-byte header.
    fn decoded(len: usize) -> (Bytes, *const u8) {
        let mut buf = BytesMut::with_capacity(8 + len);
        buf.extend_from_slice(&[0; 8]);
        buf.resize(8 + len, 7);
        let base = buf.as_ptr();
        bytes::Buf::advance(&mut buf, 8);
        (buf.split_to(len).freeze(), base)
    }

    #[test]
    fn gives_back_a_payload_only_once_nobody_else_holds_it() {
        let mut r = Recycler::new(2, 1024);
        let (payload, base) = decoded(4096);
        r.remember(&payload);
        assert!(r.take(4096).is_none(), "still held by the payload");
        drop(payload);
        let buf = r.take(4096 + 8).expect("unique now");
        assert!(buf.is_empty());
        assert!(buf.capacity() >= 4096 + 8);
        assert_eq!(buf.as_ptr(), base, "the whole allocation, header included");
        assert!(r.is_empty());
    }

    #[test]
    fn small_payloads_are_not_remembered_and_keep_bounds_the_rest() {
        let mut r = Recycler::new(2, 1024);
        let (small, _) = decoded(100);
        r.remember(&small);
        assert!(r.is_empty());
        let payloads: Vec<Bytes> = (0..3).map(|_| decoded(2048).0).collect();
        for p in &payloads {
            r.remember(p);
        }
        assert_eq!(r.len(), 2, "the oldest is forgotten");
        drop(payloads);
        assert!(r.take(2048).is_some());
        assert!(r.take(2048).is_some());
        assert!(r.take(2048).is_none());
    }

    #[test]
    fn a_buffer_too_small_is_forgotten_not_grown() {
        let mut r = Recycler::new(2, 1024);
        let (p, _) = decoded(2048);
        r.remember(&p);
        drop(p);
        assert!(r.take(1 << 20).is_none());
        assert!(r.is_empty(), "forgotten once found unused and too small");
    }

    #[test]
    fn payloads_made_from_vectors_are_recycled_too() {
        let mut r = Recycler::new(1, 1024);
        let p = Bytes::from(vec![1u8; 4096]);
        r.remember(&p);
        assert!(r.take(4096).is_none());
        drop(p);
        assert!(r.take(4096).is_some());
    }
}
