//! The session's connection: frames in, frames out, with output batched so that a reply and
//! its IDLE, or a burst of casts, leave in one write; and the connection's own limits.
//!
//! Limits (PROTOCOL.md §1.8 hardened): a frame may announce at most the current maximum
//! (small before login, larger after), and the read buffer grows only with the bytes that
//! arrive; a partly received frame that gets no new byte for `frame_stall` ends the
//! connection (the codec reports how many bytes wait in the read buffer after every read, and
//! [`Conn::next`] times how long that count stays the same); a write that takes longer than
//! `write_stall` ends it too; after a large frame the read buffer's memory is given back.
//! Large frames in a row (an upload) are decoded into the memory of earlier ones that the
//! session is done with ([`Recycler`]), so an upload allocates no buffer per chunk; what the
//! recycler holds is let go once no frame has arrived for [`RECYCLE_IDLE`].
//!
//! Invariant: a frame handed to [`Conn::feed`] is on the wire after the next [`Conn::flush`];
//! the session flushes whenever it has nothing else queued (`Session::serve`), and the codec
//! flushes on its own once its write buffer passes its boundary, so batching never holds
//! output back while the session waits. A large payload is written from its own buffer when
//! it is fed, after everything queued before it, so frames keep their order and the write
//! buffer never grows to a file chunk's size.

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use bytes::BytesMut;
use futures::{SinkExt, StreamExt};
use mrci_proto::{Frame, codec::MrciCodec, frame::READ_AHEAD, recycle::Recycler};
use tokio::{
    io::AsyncWriteExt as _,
    time::{Instant, Sleep},
};
use tokio_util::codec::{Decoder, Encoder, Framed};

use crate::stream::Stream;

/// How long a closing session waits for its last frames and TLS close_notify to go out to a
/// client that does not read: long enough for a healthy client, short enough that a stalled
/// one cannot hold a shutdown.
pub(crate) const CLOSE_WAIT: Duration = Duration::from_secs(3);

/// A read buffer this large and empty is replaced by a new, small one: memory a large frame
/// needed is given back instead of staying with the session.
const KEEP_READ_BUFFER: usize = 64 * 1024;

/// How many large payloads the decoder remembers for reuse: the last. An upload's next
/// chunk is read only once the last is written (`instance::FILE_SLOT`), so its memory is
/// free by then; should it not be, the decoder asks again at every step it grows.
const RECYCLE_KEEP: usize = 1;

/// How long the decoder keeps payloads for reuse after the last frame arrived.
const RECYCLE_IDLE: Duration = Duration::from_secs(1);

/// A payload at least this large is written from its own buffer right after its header
/// instead of being copied into the codec's write buffer, which would then keep an
/// allocation of the largest frame's size for the rest of the session.
const DIRECT_WRITE: usize = 64 * 1024;

/// The connection's limits (from `[limits]`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConnLimits {
    /// Largest payload while logged in.
    pub(crate) max_payload: usize,
    /// Largest payload before login.
    pub(crate) max_payload_before_login: usize,
    /// How long a partial frame may go without progress.
    pub(crate) frame_stall: Duration,
    /// How long one write may take.
    pub(crate) write_stall: Duration,
}

/// The session codec: [`MrciCodec`] decoding with a [`Recycler`], reporting after every
/// decode how many bytes wait in the read buffer (a partial frame).
struct WatchedCodec {
    inner: MrciCodec,
    recycler: Recycler,
    waiting: Arc<AtomicUsize>,
}

impl Decoder for WatchedCodec {
    type Item = Frame;
    type Error = mrci_proto::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, Self::Error> {
        let res = Frame::decode_recycling(src, self.inner.max(), &mut self.recycler);
        self.waiting.store(src.len(), Ordering::Relaxed);
        res
    }
}

impl Encoder<Frame> for WatchedCodec {
    type Error = mrci_proto::Error;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), Self::Error> {
        self.inner.encode(frame, dst)
    }
}

/// Times a partial frame: completes when the bytes waiting have not changed for the stall
/// period.
struct StallWatch {
    waiting: Arc<AtomicUsize>,
    stall: Duration,
    /// The count last seen, and its timer.
    seen: Option<(usize, Pin<Box<Sleep>>)>,
}

impl StallWatch {
    /// Ready with the stalled byte count once the partial frame made no progress for the
    /// stall period; pending (without a timer) while nothing waits.
    fn poll_stalled(&mut self, cx: &mut Context<'_>) -> Poll<usize> {
        let waiting = self.waiting.load(Ordering::Relaxed);
        if waiting == 0 {
            self.seen = None;
            return Poll::Pending;
        }
        match &mut self.seen {
            Some((len, _)) if *len == waiting => {}
            seen => {
                let timer = Box::pin(tokio::time::sleep_until(Instant::now() + self.stall));
                *seen = Some((waiting, timer));
            }
        }
        match &mut self.seen {
            Some((len, timer)) => timer.as_mut().poll(cx).map(|()| *len),
            None => Poll::Pending,
        }
    }
}

/// A session's framed connection.
pub(crate) struct Conn {
    framed: Framed<Stream, WatchedCodec>,
    limits: ConnLimits,
    dirty: bool,
    stall: StallWatch,
}

/// Why the connection ended from this side.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnError {
    /// A frame stopped arriving half-way.
    #[error("a frame stalled: {0} bytes received, no progress for {1:?}")]
    FrameStalled(usize, Duration),
    /// The client stopped reading.
    #[error("the client has not read its output for {0:?}")]
    WriteStalled(Duration),
}

impl Conn {
    /// Frames `stream` for a session that is not logged in yet.
    pub(crate) fn new(stream: Stream, limits: ConnLimits) -> Self {
        let max = limits.max_payload_before_login.min(limits.max_payload);
        let waiting = Arc::new(AtomicUsize::new(0));
        let codec = WatchedCodec {
            inner: MrciCodec::with_max(max),
            recycler: Recycler::new(RECYCLE_KEEP, READ_AHEAD),
            waiting: Arc::clone(&waiting),
        };
        Self {
            framed: Framed::new(stream, codec),
            limits,
            dirty: false,
            stall: StallWatch {
                waiting,
                stall: limits.frame_stall,
                seen: None,
            },
        }
    }

    /// Switches to the logged-in (or back to the logged-out) frame limit.
    pub(crate) fn set_logged_in(&mut self, logged_in: bool) {
        let max = if logged_in {
            self.limits.max_payload
        } else {
            self.limits
                .max_payload_before_login
                .min(self.limits.max_payload)
        };
        self.framed.codec_mut().inner.set_max(max);
    }

    /// The next frame from the client; `None` when it closed the connection, an error when
    /// a partial frame stalled. Cancel-safe.
    pub(crate) async fn next(&mut self) -> Option<crate::Result<Frame>> {
        let (framed, stall) = (&mut self.framed, &mut self.stall);
        // The recycler fills only when a frame is decoded, which ends this call; the timer
        // exists only while it holds something (no clock read per frame otherwise).
        let mut recycling = !framed.codec().recycler.is_empty();
        let idle = async move {
            if recycling {
                tokio::time::sleep(RECYCLE_IDLE).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::pin!(idle);
        loop {
            tokio::select! {
                biased;
                next = framed.next() => {
                    let buffer = framed.read_buffer_mut();
                    if buffer.is_empty() && buffer.capacity() > KEEP_READ_BUFFER {
                        *buffer = BytesMut::new();
                    }
                    return next.map(|res| res.map_err(crate::Error::from));
                }
                len = std::future::poll_fn(|cx| stall.poll_stalled(cx)) => {
                    let why = ConnError::FrameStalled(len, stall.stall);
                    return Some(Err(crate::Error::Io(std::io::Error::other(why))));
                }
                () = &mut idle, if recycling => {
                    framed.codec_mut().recycler.clear();
                    recycling = false;
                }
            }
        }
    }

    /// Queues a frame for the next flush. A large payload ([`DIRECT_WRITE`]) is written
    /// at once, after everything queued before it, without a copy.
    pub(crate) async fn feed(&mut self, frame: Frame) -> crate::Result<()> {
        let stall = self.limits.write_stall;
        let res = if frame.payload.len() >= DIRECT_WRITE {
            tokio::time::timeout(stall, self.write_direct(frame)).await
        } else {
            tokio::time::timeout(stall, self.framed.feed(frame))
                .await
                .map(|res| res.map_err(crate::Error::from))
        };
        res.map_err(|_| crate::Error::Io(std::io::Error::other(ConnError::WriteStalled(stall))))??;
        self.dirty = true;
        Ok(())
    }

    /// Writes the header (behind what is queued) and then the payload from its own buffer;
    /// the TLS layer takes it in records and holds only a bounded part of it.
    async fn write_direct(&mut self, frame: Frame) -> crate::Result<()> {
        frame.encode_header(self.framed.write_buffer_mut())?;
        SinkExt::<Frame>::flush(&mut self.framed).await?;
        self.framed.get_mut().write_all(&frame.payload).await?;
        Ok(())
    }

    /// Sends a frame now, with everything queued before it.
    pub(crate) async fn send(&mut self, frame: Frame) -> crate::Result<()> {
        self.feed(frame).await?;
        self.flush().await
    }

    /// Writes everything queued.
    pub(crate) async fn flush(&mut self) -> crate::Result<()> {
        if self.dirty {
            let stall = self.limits.write_stall;
            tokio::time::timeout(stall, SinkExt::<Frame>::flush(&mut self.framed))
                .await
                .map_err(|_| {
                    crate::Error::Io(std::io::Error::other(ConnError::WriteStalled(stall)))
                })??;
            self.dirty = false;
        }
        Ok(())
    }

    /// True when frames wait for a flush.
    pub(crate) fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Flushes and closes the connection (TLS close_notify), giving up after [`CLOSE_WAIT`].
    pub(crate) async fn close(&mut self) {
        let _ = tokio::time::timeout(CLOSE_WAIT, SinkExt::<Frame>::close(&mut self.framed)).await;
    }
}
