//! The two halves of a split [`Client`](super::Client): one task receives (and keeps the
//! command table current) while another sends, as a load generator or a UI with its own
//! input loop needs.
//!
//! Invariant: the halves share the connection through one lock, taken only for the duration
//! of a single read or write; neither half ever waits on the other's pending operation.

use std::time::Duration;

use bytes::Bytes;
use futures::{
    SinkExt as _, StreamExt as _,
    stream::{SplitSink, SplitStream},
};
use mrci_proto::{BranchId, CmdId, Frame, TypeId, client::CommandTable};

use super::{ConnectInfo, Frames, error::Error, error::Result, received};

/// The receiving half: frames from the host and the command table they keep current.
#[derive(Debug)]
pub struct ReadHalf {
    frames: SplitStream<Frames>,
    commands: CommandTable,
    info: ConnectInfo,
    read_timeout: Option<Duration>,
}

impl ReadHalf {
    pub(super) fn new(
        frames: SplitStream<Frames>,
        commands: CommandTable,
        info: ConnectInfo,
        read_timeout: Option<Duration>,
    ) -> Self {
        Self {
            frames,
            commands,
            info,
            read_timeout,
        }
    }

    /// The next frame, or `None` when the host closed the connection; as
    /// [`Client::recv`](super::Client::recv), and cancel-safe like it.
    ///
    /// # Errors
    /// A socket or framing error, or [`Error::Timeout`] past the read timeout.
    pub async fn recv(&mut self) -> Result<Option<Frame>> {
        let next = async { received(&mut self.commands, self.frames.next().await) };
        match self.read_timeout {
            None => next.await,
            Some(limit) => tokio::time::timeout(limit, next)
                .await
                .map_err(|_| Error::Timeout(limit))?,
        }
    }

    /// The commands the host has announced so far.
    pub fn commands(&self) -> &CommandTable {
        &self.commands
    }

    /// What the handshake told and how long the connect took.
    pub fn info(&self) -> &ConnectInfo {
        &self.info
    }
}

/// The sending half.
#[derive(Debug)]
pub struct WriteHalf {
    frames: SplitSink<Frames, Frame>,
}

impl WriteHalf {
    pub(super) fn new(frames: SplitSink<Frames, Frame>) -> Self {
        Self { frames }
    }

    /// Sends one frame and flushes.
    ///
    /// # Errors
    /// A socket error, or a payload over the protocol's limit.
    pub async fn send(&mut self, frame: Frame) -> Result<()> {
        Ok(self.frames.send(frame).await?)
    }

    /// Queues one frame without flushing (see [`Client::feed`](super::Client::feed)).
    ///
    /// # Errors
    /// A socket error while making room, or a payload over the protocol's limit.
    pub async fn feed(&mut self, frame: Frame) -> Result<()> {
        Ok(self.frames.feed(frame).await?)
    }

    /// Sends whatever [`Self::feed`] queued.
    ///
    /// # Errors
    /// A socket error.
    pub async fn flush(&mut self) -> Result<()> {
        Ok(self.frames.flush().await?)
    }

    /// Sends TEXT to `(cmd, branch)`.
    ///
    /// # Errors
    /// As [`Self::send`].
    pub async fn send_text(&mut self, cmd: CmdId, branch: BranchId, text: &str) -> Result<()> {
        self.send(Frame::text(cmd, branch, text)).await
    }

    /// Sends an empty control frame (TERM_CMD, KILL_CMD, HALT_CMD, RESUME_CMD).
    ///
    /// # Errors
    /// As [`Self::send`].
    pub async fn send_control(
        &mut self,
        type_id: TypeId,
        cmd: CmdId,
        branch: BranchId,
    ) -> Result<()> {
        self.send(Frame::new(type_id, cmd, branch, Bytes::new()))
            .await
    }

    /// Flushes and shuts the sending direction down (TLS close_notify, then TCP FIN).
    ///
    /// # Errors
    /// A socket error.
    pub async fn close(&mut self) -> Result<()> {
        Ok(self.frames.close().await?)
    }
}
