//! A ready session with a host: the framed connection plus the command table it keeps
//! current. Both front ends ([`super::script`] and [`super::repl`]) talk through it.

use std::time::Duration;

use anyhow::Context;
use futures::{SinkExt, StreamExt};
use mrci_proto::{BranchId, CmdId, Frame, TypeId, async_id::AsyncId, header::HostHeader};

use super::{
    commands::Commands,
    conn::{self, Conn, ConnectOpts},
};

/// How long to wait for ASYNC_RDY after the handshake.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A session after ASYNC_RDY.
pub(crate) struct Link {
    conn: Conn,
    /// The commands announced so far.
    pub(crate) commands: Commands,
    /// The host header.
    pub(crate) header: HostHeader,
    /// The certificate fingerprint, when TLS is used.
    pub(crate) fingerprint: Option<String>,
}

impl Link {
    /// Connects and waits for ASYNC_RDY. Returns the link and the frames that came before
    /// ASYNC_RDY other than command announcements (system messages to show), followed by the
    /// ASYNC_RDY frame itself.
    ///
    /// # Errors
    /// If the connection fails or closes before ASYNC_RDY.
    pub(crate) async fn open(opts: &ConnectOpts) -> anyhow::Result<(Self, Vec<Frame>)> {
        let connected = conn::connect(opts).await?;
        let mut link = Self {
            conn: connected.conn,
            commands: Commands::default(),
            header: connected.header,
            fingerprint: connected.fingerprint,
        };
        let mut early = Vec::new();
        tokio::time::timeout(READY_TIMEOUT, async {
            loop {
                let frame = link
                    .recv()
                    .await?
                    .context("the host closed the connection before it was ready")?;
                let ready = frame.cmd_id == AsyncId::RDY.cmd_id();
                if !is_announcement(&frame) {
                    early.push(frame);
                }
                if ready {
                    return anyhow::Ok(());
                }
            }
        })
        .await
        .context("the host did not become ready")??;
        Ok((link, early))
    }

    /// The next frame, or `None` when the host closed the connection. Command announcements
    /// update [`Self::commands`] and are returned too.
    ///
    /// # Errors
    /// On a transport or framing error.
    pub(crate) async fn recv(&mut self) -> anyhow::Result<Option<Frame>> {
        match self.conn.next().await {
            None => Ok(None),
            Some(Err(e)) => Err(e.into()),
            Some(Ok(frame)) => {
                self.commands.handle(&frame);
                Ok(Some(frame))
            }
        }
    }

    /// Sends one frame.
    ///
    /// # Errors
    /// On a transport error.
    pub(crate) async fn send(&mut self, frame: Frame) -> anyhow::Result<()> {
        self.conn.send(frame).await?;
        Ok(())
    }

    /// Sends TEXT to `(cmd, branch)`.
    ///
    /// # Errors
    /// On a transport error.
    pub(crate) async fn send_text(
        &mut self,
        cmd: CmdId,
        branch: BranchId,
        text: &str,
    ) -> anyhow::Result<()> {
        self.send(Frame::text(cmd, branch, text)).await
    }

    /// Sends an empty control frame (TERM_CMD, KILL_CMD, HALT_CMD, RESUME_CMD).
    ///
    /// # Errors
    /// On a transport error.
    pub(crate) async fn control(
        &mut self,
        type_id: TypeId,
        cmd: CmdId,
        branch: BranchId,
    ) -> anyhow::Result<()> {
        self.send(Frame::new(type_id, cmd, branch, bytes::Bytes::new()))
            .await
    }
}

/// True for ADD_CMD and RM_CMD frames.
pub(crate) fn is_announcement(frame: &Frame) -> bool {
    frame.cmd_id == AsyncId::ADD_CMD.cmd_id() || frame.cmd_id == AsyncId::RM_CMD.cmd_id()
}
