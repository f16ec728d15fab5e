//! A lean MRCI client for load: the handshake of PROTOCOL.md §1 (client header, host header,
//! HOST_CERT, TLS, ASYNC_RDY), login with the forced password change, and commands run to
//! their IDLE. The same [`Session`] type also talks to the baseline echo/relay server.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::{Context, bail};
use bytes::BytesMut;
use futures::{SinkExt, StreamExt};
use mrci_proto::{
    BranchId, CmdId, Frame, TypeId,
    async_id::AsyncId,
    codec::MrciCodec,
    header::{ClientHeader, HostHeader, Reply},
    payload::NewCmd,
};
use rustls::{ClientConfig, pki_types::ServerName};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tokio_rustls::{TlsConnector, client::TlsStream};
use tokio_util::codec::Framed;

/// How long the generator waits for a frame it expects before calling it an error.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A framed TLS connection.
pub type Conn = Framed<TlsStream<TcpStream>, MrciCodec>;

/// A command the host announced.
#[derive(Clone, Debug)]
pub struct Announced {
    /// The id the host assigned.
    pub id: CmdId,
    /// The library that provides it: the host itself or a module.
    pub lib: String,
}

/// The client TLS configuration for the last certificate seen. A real client checks the
/// HOST_CERT it is sent; building the configuration once per certificate keeps that cost out
/// of the connect figures, as a client with a certificate cache would.
#[derive(Default)]
pub struct TlsCache {
    last: Mutex<Option<(String, Arc<ClientConfig>)>>,
}

impl TlsCache {
    /// The configuration that trusts exactly `pem`.
    ///
    /// # Errors
    /// If the PEM holds no usable certificate.
    pub fn config_for(&self, pem: &str) -> anyhow::Result<Arc<ClientConfig>> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((seen, config)) = last.as_ref()
            && seen == pem
        {
            return Ok(Arc::clone(config));
        }
        let config = mrci_host::tls::client_config_trusting(pem)?;
        *last = Some((pem.to_owned(), Arc::clone(&config)));
        Ok(config)
    }
}

/// A session after the handshake.
pub struct Session {
    /// The framed TLS stream.
    pub conn: Conn,
    /// Commands announced so far, by name.
    pub commands: HashMap<String, Announced>,
}

impl Session {
    /// Connects to an MRCI host and completes the handshake up to ASYNC_RDY.
    ///
    /// # Errors
    /// Network and TLS failures; a host that refuses or does not offer TLS.
    pub async fn connect(addr: SocketAddr, tls: &TlsCache) -> anyhow::Result<Self> {
        let mut tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let header = ClientHeader {
            app_name: "mrci-load".into(),
            common_name: "localhost".into(),
        };
        tcp.write_all(&header.to_bytes()).await?;
        let mut raw = [0u8; HostHeader::LEN];
        tcp.read_exact(&mut raw).await?;
        let host_header = HostHeader::parse(&raw)?;
        if host_header.reply != Reply::TLS {
            bail!("host answered {:?} instead of TLS", host_header.reply);
        }
        let mut buf = BytesMut::new();
        let cert = loop {
            if let Some(frame) = Frame::decode(&mut buf, 1 << 20)? {
                break frame;
            }
            if tcp.read_buf(&mut buf).await? == 0 {
                bail!("connection closed before HOST_CERT");
            }
        };
        if cert.type_id != TypeId::HOST_CERT || !buf.is_empty() {
            bail!("expected HOST_CERT alone, got {:?}", cert.type_id);
        }
        let config = tls.config_for(std::str::from_utf8(&cert.payload)?)?;
        let tls = TlsConnector::from(config)
            .connect(ServerName::try_from("localhost")?, tcp)
            .await?;
        let mut session = Self::from_conn(Framed::new(tls, MrciCodec::new()));
        session
            .until(|f| f.cmd_id == AsyncId::RDY.cmd_id())
            .await
            .context("waiting for ASYNC_RDY")?;
        Ok(session)
    }

    /// Wraps an established connection.
    pub fn from_conn(conn: Conn) -> Self {
        Self {
            conn,
            commands: HashMap::new(),
        }
    }

    /// The id of an announced command.
    ///
    /// # Errors
    /// If the host has not announced it.
    pub fn id(&self, name: &str) -> anyhow::Result<CmdId> {
        self.commands
            .get(name)
            .map(|c| c.id)
            .with_context(|| format!("the host did not announce {name}"))
    }

    /// Sends one frame.
    ///
    /// # Errors
    /// Network failures.
    pub async fn send(&mut self, frame: Frame) -> anyhow::Result<()> {
        self.conn.send(frame).await?;
        Ok(())
    }

    /// Receives the next frame, keeping the command table current.
    ///
    /// # Errors
    /// A closed connection, a codec error or [`PATIENCE`] without a frame.
    pub async fn recv(&mut self) -> anyhow::Result<Frame> {
        let frame = tokio::time::timeout(PATIENCE, self.conn.next())
            .await
            .context("no frame from the host")?
            .context("connection closed")??;
        if frame.cmd_id == AsyncId::ADD_CMD.cmd_id() && frame.type_id == TypeId::NEW_CMD {
            let cmd = NewCmd::parse(&frame.payload)?;
            let announced = Announced {
                id: cmd.cmd_id,
                lib: cmd.lib,
            };
            self.commands.insert(cmd.name, announced);
        } else if frame.cmd_id == AsyncId::RM_CMD.cmd_id() && frame.type_id == TypeId::CMD_ID {
            let id = mrci_proto::payload::parse_cmd_id(&frame.payload)?;
            self.commands.retain(|_, c| c.id != id);
        }
        Ok(frame)
    }

    /// Receives until `stop` matches; returns every frame including the match.
    ///
    /// # Errors
    /// As [`Session::recv`].
    pub async fn until(&mut self, stop: impl Fn(&Frame) -> bool) -> anyhow::Result<Vec<Frame>> {
        let mut out = Vec::new();
        loop {
            let frame = self.recv().await?;
            let done = stop(&frame);
            out.push(frame);
            if done {
                return Ok(out);
            }
        }
    }

    /// Sends TEXT to `cmd` on branch 0 and receives up to its IDLE; returns that command's
    /// frames without the IDLE.
    ///
    /// # Errors
    /// As [`Session::recv`].
    pub async fn call(&mut self, cmd: CmdId, text: &str) -> anyhow::Result<Vec<Frame>> {
        self.send(Frame::text(cmd, BranchId(0), text)).await?;
        let frames = self
            .until(|f| f.cmd_id == cmd && f.branch_id == BranchId(0) && f.type_id == TypeId::IDLE)
            .await?;
        Ok(frames
            .into_iter()
            .filter(|f| f.cmd_id == cmd && f.type_id != TypeId::IDLE)
            .collect())
    }

    /// Runs an announced command and fails if it answers with ERR.
    ///
    /// # Errors
    /// An unannounced command, an ERR answer, or as [`Session::recv`].
    pub async fn ok(&mut self, name: &str, text: &str) -> anyhow::Result<String> {
        let frames = self.call(self.id(name)?, text).await?;
        if let Some(err) = frames.iter().find(|f| f.type_id == TypeId::ERR) {
            bail!("{name} {text}: {}", err.text_payload());
        }
        Ok(frames.iter().map(Frame::text_payload).collect())
    }

    /// Logs in with `auth`. When the host demands a new password (an `add-admin` account's
    /// first login) it answers with `new_password` and returns true.
    ///
    /// # Errors
    /// A refused login, or as [`Session::recv`].
    pub async fn login(
        &mut self,
        user: &str,
        password: &str,
        new_password: &str,
    ) -> anyhow::Result<bool> {
        let id = self.id("auth")?;
        let is_prompt = move |f: &Frame| {
            f.cmd_id == id && (f.type_id == TypeId::PRIV_TEXT || f.type_id == TypeId::IDLE)
        };
        self.send(Frame::text(id, BranchId(0), &format!("-user {user}")))
            .await?;
        self.until(is_prompt).await?;
        self.send(Frame::text(id, BranchId(0), password)).await?;
        let mut frames = self.until(is_prompt).await?;
        let mut changed = false;
        if frames
            .last()
            .is_some_and(|f| f.type_id == TypeId::PRIV_TEXT)
        {
            self.send(Frame::text(id, BranchId(0), new_password))
                .await?;
            frames = self.until(is_prompt).await?;
            changed = true;
        }
        let text: String = frames.iter().map(Frame::text_payload).collect();
        if !text.contains("Access granted") {
            bail!("login as {user} failed: {text}");
        }
        Ok(changed)
    }
}
