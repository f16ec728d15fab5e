//! Reading IPC frames from a module's socket within the session's byte budget (issue 12):
//! the header is read first, the frame's share of the budget is awaited, and only then are
//! its payload bytes read. A module that writes faster than the session consumes is therefore
//! paused by its own socket filling up, not buffered.
//!
//! Invariant: besides frames that hold their share of the budget, a reader keeps at most
//! [`READ_AHEAD`] bytes; small payloads are copied out of the read-ahead buffer so a frame
//! never pins a larger allocation, large ones are read into an allocation of their own size.
//! [`FrameReader::next`] is cancel-safe.

use std::io;

use bytes::{Buf, Bytes, BytesMut};
use mrci_proto::{IpcFrame, TypeId};
use tokio::{
    io::{AsyncRead, AsyncReadExt},
    net::unix::OwnedReadHalf,
};

use crate::budget::{Budget, Held};

/// Bytes read ahead of the frame being decoded.
pub(crate) const READ_AHEAD: usize = 64 * 1024;

/// Why no frame came.
#[derive(Debug)]
pub(crate) enum ReadError {
    Io(io::Error),
    /// The header announced more than the payload limit.
    TooLarge {
        len: usize,
        max: usize,
    },
}

/// The reading half of a module's connection.
#[derive(Debug)]
pub(crate) struct FrameReader<R = OwnedReadHalf> {
    read: R,
    head: BytesMut,
    body: Option<Body>,
    held: Option<Held>,
    max: usize,
    budget: Budget,
}

#[derive(Debug)]
struct Body {
    type_id: TypeId,
    len: usize,
    bytes: BytesMut,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// A reader accepting payloads of at most `max` bytes, within `budget`.
    pub(crate) fn new(read: R, max: usize, budget: Budget) -> Self {
        Self {
            read,
            head: BytesMut::with_capacity(READ_AHEAD),
            body: None,
            held: None,
            max,
            budget,
        }
    }

    /// The next frame with its share of the budget; `Ok(None)` at the end of the stream (an
    /// incomplete last frame is dropped). Cancel-safe: every await leaves the reader whole.
    pub(crate) async fn next(&mut self) -> Result<Option<(IpcFrame, Held)>, ReadError> {
        loop {
            if let Some(body) = &mut self.body {
                let want = body.len - body.bytes.len();
                if want == 0 {
                    let body = self.body.take().expect("checked just above");
                    return Ok(Some((
                        IpcFrame::new(body.type_id, body.bytes.freeze()),
                        self.take_held(),
                    )));
                }
                if read_into(&mut self.read, &mut body.bytes, want).await? == 0 {
                    return Ok(None);
                }
                continue;
            }
            if let Some(head) = self.head.get(..IpcFrame::HEADER_LEN) {
                let type_id = TypeId(head[0]);
                // The u24 little-endian length of PROTOCOL.md §5.3.
                let len =
                    usize::from(head[1]) | usize::from(head[2]) << 8 | usize::from(head[3]) << 16;
                if len > self.max {
                    return Err(ReadError::TooLarge { len, max: self.max });
                }
                if self.held.is_none() {
                    self.held = Some(self.budget.acquire(len).await);
                }
                let total = IpcFrame::HEADER_LEN + len;
                if self.head.len() >= total {
                    let payload = Bytes::copy_from_slice(&self.head[IpcFrame::HEADER_LEN..total]);
                    self.head.advance(total);
                    return Ok(Some((IpcFrame::new(type_id, payload), self.take_held())));
                }
                let mut bytes = BytesMut::with_capacity(len);
                bytes.extend_from_slice(&self.head[IpcFrame::HEADER_LEN..]);
                self.head.clear();
                self.body = Some(Body {
                    type_id,
                    len,
                    bytes,
                });
                continue;
            }
            let room = READ_AHEAD - self.head.len();
            if read_into(&mut self.read, &mut self.head, room).await? == 0 {
                return Ok(None);
            }
        }
    }

    fn take_held(&mut self) -> Held {
        self.held
            .take()
            .expect("a frame's share is taken before its payload is read")
    }
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// Reads at most `limit` bytes into `buf`; 0 at the end of the stream.
async fn read_into<R: AsyncRead + Unpin>(
    read: &mut R,
    buf: &mut BytesMut,
    limit: usize,
) -> io::Result<usize> {
    buf.reserve(limit);
    (&mut *read).take(limit as u64).read_buf(buf).await
}

#[cfg(test)]
mod tests {
    use std::future::Future;

    use mrci_proto::TypeId;
    use tokio::io::AsyncWriteExt;

    use super::*;

    fn wire(frames: &[IpcFrame]) -> Vec<u8> {
        let mut out = BytesMut::new();
        for f in frames {
            f.encode(&mut out).unwrap();
        }
        out.to_vec()
    }

    #[tokio::test]
    async fn frames_of_every_size_come_through_in_order() {
        let frames: Vec<_> = [0usize, 1, 70_000, 3, READ_AHEAD, 200_000]
            .iter()
            .enumerate()
            .map(|(i, &n)| IpcFrame::new(TypeId::BYTES, vec![i as u8; n]))
            .collect();
        let (mut tx, rx) = tokio::io::duplex(4096);
        let bytes = wire(&frames);
        let writer = tokio::spawn(async move { tx.write_all(&bytes).await });
        let mut reader = FrameReader::new(rx, 1 << 20, Budget::new(1 << 20));
        for f in &frames {
            let (got, held) = reader.next().await.unwrap().unwrap();
            assert_eq!(&got, f);
            drop(held);
        }
        writer.await.unwrap().unwrap();
        assert!(reader.next().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_reader_waits_for_the_budget_and_an_oversize_header_is_refused() {
        let budget = Budget::new(100);
        let frames = [
            IpcFrame::new(TypeId::TEXT, vec![1; 60]),
            IpcFrame::new(TypeId::TEXT, vec![2; 60]),
        ];
        let bytes = wire(&frames);
        let mut reader = FrameReader::new(&bytes[..], 1000, budget.clone());
        let (_, first) = reader.next().await.unwrap().unwrap();
        assert_eq!(budget.held(), 64);
        {
            let second = std::pin::pin!(reader.next());
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            let polled = second.poll(&mut cx);
            assert!(
                polled.is_pending(),
                "the second frame waits for the first's bytes"
            );
        }
        drop(first);
        let (got, _) = reader.next().await.unwrap().unwrap();
        assert_eq!(got, frames[1]);

        let big = wire(&[IpcFrame::new(TypeId::TEXT, vec![0; 2000])]);
        let mut reader = FrameReader::new(&big[..], 1000, budget);
        assert!(matches!(
            reader.next().await,
            Err(ReadError::TooLarge {
                len: 2000,
                max: 1000
            })
        ));
    }
}
