//! An async MRCI client: connect to a host with a certificate policy, then exchange frames,
//! run commands by name and log in.
//!
//! Layout:
//! - [`connect`](ConnectOptions): TCP, the handshake of [`mrci_proto::client::Handshake`],
//!   the TLS upgrade and the wait for ASYNC_RDY, timed per stage ([`ConnectTimings`]).
//! - [`Trust`], [`Fingerprint`], [`PinStore`], [`MemoryPins`], [`KnownHosts`]: deciding
//!   whether the host is the right one.
//! - [`Client`]: a ready session that keeps its [`CommandTable`] current from the host's
//!   announcements; [`Client::split`] gives a [`ReadHalf`] and a [`WriteHalf`] for
//!   concurrent use.
//! - [`Client::run`], [`Client::login`] and friends ([`Output`], [`Login`]): commands to
//!   their IDLE.
//! - [`Client::upload`] and [`Client::download`] ([`TransferOptions`], [`TransferEvents`]):
//!   files over the GEN_FILE mini-protocol, with resume and cancellation.
//!
//! Invariant: every frame a [`Client`] or [`ReadHalf`] returns has been applied to its
//! command table first, so a command name resolves to the id the host announced last.

mod connect;
mod error;
mod halves;
mod known_hosts;
mod session;
mod transfer;
mod transport;
mod trust;

use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt as _};
use mrci_proto::{
    BranchId, CmdId, Frame, TypeId,
    async_id::AsyncId,
    client::{Announcement, CommandTable},
    codec::MrciCodec,
    header::HostHeader,
};
use tokio_util::codec::Framed;

pub use connect::{ConnectInfo, ConnectOptions, ConnectTimings, DEFAULT_PORT, Target};
pub use error::{BoxError, Error, Result};
pub use halves::{ReadHalf, WriteHalf};
pub use known_hosts::KnownHosts;
pub use session::{Login, Output};
pub use transfer::{DEFAULT_CHUNK, NoEvents, TransferEvents, TransferOptions, TransferOutcome};
pub use transport::Transport;
pub use trust::{Fingerprint, MemoryPins, PinStore, Trust};

/// The framed connection both the whole client and its halves read and write.
type Frames = Framed<Transport, MrciCodec>;

/// A session with a host, after ASYNC_RDY.
///
/// Reading and writing through the whole client takes no lock; [`Client::split`] is for
/// reading and writing from different tasks.
#[derive(Debug)]
pub struct Client {
    frames: Frames,
    commands: CommandTable,
    info: ConnectInfo,
    read_timeout: Option<Duration>,
}

impl Client {
    /// Connects to `target`, completes the handshake under `opts`' certificate policy and
    /// waits for ASYNC_RDY.
    ///
    /// # Errors
    /// A host that cannot be reached, refuses the session, presents a certificate the policy
    /// does not accept, or does not become ready in time.
    pub async fn connect(target: &Target, opts: &ConnectOptions) -> Result<Self> {
        connect::connect(target, opts).await
    }

    /// A client over a connection whose handshake was done elsewhere (a relay, a test
    /// double); `header` is what that handshake produced. Call [`Client::wait_ready`] next
    /// if the peer sends ASYNC_RDY.
    pub fn from_transport(transport: Transport, header: HostHeader) -> Self {
        let mut info = ConnectInfo::new(header);
        info.peer_certificate = transport.peer_certificate().map(|c| c.to_vec());
        Self::new(transport, info, mrci_proto::frame::MAX_PAYLOAD, None)
    }

    fn new(
        transport: Transport,
        info: ConnectInfo,
        max_payload: usize,
        read_timeout: Option<Duration>,
    ) -> Self {
        Self {
            frames: Framed::new(transport, MrciCodec::with_max(max_payload)),
            commands: CommandTable::new(),
            info,
            read_timeout,
        }
    }

    /// Receives until ASYNC_RDY, keeping the frames other than announcements in
    /// [`ConnectInfo::greeting`] and the time taken in [`ConnectTimings::ready`].
    ///
    /// # Errors
    /// [`Error::NotReady`] after `within`; [`Error::Closed`] if the host closes first.
    pub async fn wait_ready(&mut self, within: Duration) -> Result<()> {
        let start = std::time::Instant::now();
        let res = tokio::time::timeout(within, async {
            loop {
                let frame = self.recv_now().await?.ok_or(Error::Closed)?;
                let ready = frame.cmd_id == AsyncId::RDY.cmd_id();
                if !Announcement::is_announcement(&frame) {
                    self.info.greeting.push(frame);
                }
                if ready {
                    return Ok(());
                }
            }
        })
        .await;
        self.info.timings.ready = start.elapsed();
        res.map_err(|_| Error::NotReady(within))?
    }

    /// What the handshake told and how long the connect took.
    pub fn info(&self) -> &ConnectInfo {
        &self.info
    }

    /// The commands the host has announced so far.
    pub fn commands(&self) -> &CommandTable {
        &self.commands
    }

    /// The connection underneath.
    pub fn transport(&self) -> &Transport {
        self.frames.get_ref()
    }

    /// Changes how long [`Self::recv`] waits for a frame (`None`: no limit).
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        self.read_timeout = timeout;
    }

    /// The next frame, or `None` when the host closed the connection. Command
    /// announcements update [`Self::commands`] (a malformed one is returned but changes
    /// nothing) and are returned too.
    ///
    /// Cancel-safe: a frame is never lost when the future is dropped, so `recv` can sit in
    /// a `select!`.
    ///
    /// # Errors
    /// A socket or framing error, or [`Error::Timeout`] past the read timeout.
    pub async fn recv(&mut self) -> Result<Option<Frame>> {
        match self.read_timeout {
            None => self.recv_now().await,
            Some(limit) => tokio::time::timeout(limit, self.recv_now())
                .await
                .map_err(|_| Error::Timeout(limit))?,
        }
    }

    async fn recv_now(&mut self) -> Result<Option<Frame>> {
        received(&mut self.commands, self.frames.next().await)
    }

    /// Sends one frame and flushes.
    ///
    /// # Errors
    /// A socket error, or a payload over the protocol's limit.
    pub async fn send(&mut self, frame: Frame) -> Result<()> {
        Ok(self.frames.send(frame).await?)
    }

    /// Queues one frame without flushing; frames fed back to back leave in as few writes
    /// as the buffer allows. [`Self::flush`] (or [`Self::send`]) sends them.
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
        Ok(SinkExt::<Frame>::flush(&mut self.frames).await?)
    }

    /// Writes `bytes` as they are after everything queued, bypassing the framing: for tools
    /// and tests that probe how a host treats malformed or partial frames.
    ///
    /// # Errors
    /// A socket error.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<()> {
        use tokio::io::AsyncWriteExt as _;
        self.flush().await?;
        let io = self.frames.get_mut();
        io.write_all(bytes).await?;
        Ok(io.flush().await?)
    }

    /// Sends TEXT to `(cmd, branch)`: a command line's arguments, or an answer to a prompt.
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

    /// Gives up the framing: the connection, and the bytes read past the last frame
    /// returned (for tools that continue with raw bytes).
    pub fn into_transport(self) -> (Transport, bytes::BytesMut) {
        let parts = self.frames.into_parts();
        (parts.io, parts.read_buf)
    }

    /// Splits the client into a half that receives (and keeps the command table) and a half
    /// that sends, for use from different tasks.
    pub fn split(self) -> (ReadHalf, WriteHalf) {
        let (sink, stream) = self.frames.split();
        (
            ReadHalf::new(stream, self.commands, self.info, self.read_timeout),
            WriteHalf::new(sink),
        )
    }
}

/// Applies a received item to the command table and turns it into the client's result.
fn received(
    commands: &mut CommandTable,
    item: Option<Result<Frame, mrci_proto::Error>>,
) -> Result<Option<Frame>> {
    match item {
        None => Ok(None),
        Some(Err(e)) => Err(e.into()),
        Some(Ok(frame)) => {
            // A malformed announcement is the host's bug; the frame still reaches the caller.
            let _ = commands.apply(&frame);
            Ok(Some(frame))
        }
    }
}
