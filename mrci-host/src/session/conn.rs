//! The session's connection: frames in, frames out, with output batched so that a reply and
//! its IDLE, or a burst of casts, leave in one write.
//!
//! Invariant: a frame handed to [`Conn::feed`] is on the wire after the next [`Conn::flush`];
//! the session flushes whenever it has nothing else queued (`Session::serve`), and the codec
//! flushes on its own once its write buffer passes its boundary, so batching never holds
//! output back while the session waits.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use mrci_proto::{Frame, codec::MrciCodec};
use tokio_util::codec::Framed;

use crate::stream::Stream;

/// How long a closing session waits for its last frames and TLS close_notify to go out to a
/// client that does not read: long enough for a healthy client, short enough that a stalled
/// one cannot hold a shutdown.
pub(crate) const CLOSE_WAIT: Duration = Duration::from_secs(3);

/// A session's framed connection.
pub(crate) struct Conn {
    framed: Framed<Stream, MrciCodec>,
    dirty: bool,
}

impl Conn {
    /// Frames `stream` with payloads up to `max_payload`.
    pub(crate) fn new(stream: Stream, max_payload: usize) -> Self {
        Self {
            framed: Framed::new(stream, MrciCodec::with_max(max_payload)),
            dirty: false,
        }
    }

    /// The next frame from the client; `None` when it closed the connection.
    pub(crate) async fn next(&mut self) -> Option<crate::Result<Frame>> {
        self.framed
            .next()
            .await
            .map(|res| res.map_err(crate::Error::from))
    }

    /// Queues a frame for the next flush.
    pub(crate) async fn feed(&mut self, frame: Frame) -> crate::Result<()> {
        self.framed.feed(frame).await?;
        self.dirty = true;
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
            SinkExt::<Frame>::flush(&mut self.framed).await?;
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
