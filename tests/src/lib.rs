//! Helpers for the end-to-end tests: a host on a loopback port with a temporary data
//! directory ([`TestHost`]) and a client that speaks the wire protocol through the real codec
//! ([`TestClient`]).
#![forbid(unsafe_code)]

pub mod fuzzing;

use std::{collections::HashMap, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::{Context, bail};
use bytes::BytesMut;
use futures::{SinkExt, StreamExt};
use mrci_host::{Config, Host, HostCtx, host::Clock};
use mrci_proto::{
    BranchId, CmdId, Frame, TypeId,
    async_id::AsyncId,
    codec::MrciCodec,
    header::{ClientHeader, HostHeader, Reply},
    payload::NewCmd,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::oneshot,
    task::JoinHandle,
};
use tokio_rustls::{TlsConnector, client::TlsStream};
use tokio_util::{codec::Framed, either::Either};

/// How long a test waits for something that should happen promptly. Only a hang reaches it.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A running host on `127.0.0.1` with its own temporary data directory.
pub struct TestHost {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its shared context (store, clock, config).
    pub ctx: Arc<HostCtx>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<mrci_host::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl TestHost {
    /// Starts a host with test defaults (cheap password hashing, manual clock).
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(|_| {}).await
    }

    /// Starts a host after `tweak` adjusts the configuration.
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut config = Config {
            data_dir: dir.path().join("data"),
            listen: "127.0.0.1:0".parse()?,
            ..Config::default()
        };
        config.security.argon2_memory_kib = 64;
        config.security.argon2_iterations = 1;
        tweak(&mut config);
        let ctx = HostCtx::open(config, Clock::manual(1_800_000_000)).await?;
        let host = Host::bind(Arc::clone(&ctx)).await?;
        let addr = host.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(host.run(async move {
            let _ = stopped.await;
        }));
        Ok(Self {
            addr,
            ctx,
            stop: Some(stop),
            task: Some(task),
            _dir: dir,
        })
    }

    /// Creates an account directly in the store and returns its name.
    pub async fn add_user(&self, name: &str, password: &str, group: &str) -> anyhow::Result<()> {
        let phc = self.ctx.hasher.hash(password).await?;
        self.ctx
            .store
            .create_user(name, None, group, &phc, false, false)
            .await?;
        Ok(())
    }

    /// Asks the host to shut down and waits for it.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(PATIENCE, task)
                .await
                .context("host did not stop")???;
        }
        Ok(())
    }
}

/// The client's end of a connection: plaintext or TLS, as the host's reply chose.
pub type ClientStream = Either<TcpStream, TlsStream<TcpStream>>;

/// A client connection after the handshake.
pub struct TestClient {
    conn: Framed<ClientStream, MrciCodec>,
    /// The commands announced so far: name → id.
    pub commands: HashMap<String, CmdId>,
    /// The host header received.
    pub header: HostHeader,
    /// The PEM of the HOST_CERT frame, when TLS was used.
    pub host_cert: Option<String>,
}

/// Sends a client header and reads the host header.
pub async fn raw_handshake(addr: SocketAddr, cn: &str) -> anyhow::Result<(TcpStream, HostHeader)> {
    let mut tcp = TcpStream::connect(addr).await?;
    let header = ClientHeader {
        app_name: "mrci-tests".into(),
        common_name: cn.into(),
    };
    tcp.write_all(&header.to_bytes()).await?;
    let mut raw = [0u8; HostHeader::LEN];
    tcp.read_exact(&mut raw).await?;
    Ok((tcp, HostHeader::parse(&raw)?))
}

impl TestClient {
    /// Connects, completes the handshake (TLS when the host asks for it) and waits for
    /// ASYNC_RDY, collecting the announced commands.
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        let (mut tcp, header) = raw_handshake(addr, "localhost").await?;
        let (stream, host_cert) = match header.reply {
            Reply::NO_TLS => (Either::Left(tcp), None),
            Reply::TLS => {
                let mut buf = BytesMut::new();
                let cert = loop {
                    if let Some(frame) = Frame::decode(&mut buf, 1 << 20)? {
                        break frame;
                    }
                    if tcp.read_buf(&mut buf).await? == 0 {
                        bail!("connection closed before HOST_CERT");
                    }
                };
                if cert.type_id != TypeId::HOST_CERT {
                    bail!("expected HOST_CERT, got {:?}", cert.type_id);
                }
                let pem = String::from_utf8(cert.payload.to_vec())?;
                let config = mrci_host::tls::client_config_trusting(&pem)?;
                let name = rustls::pki_types::ServerName::try_from("localhost")?;
                let tls = TlsConnector::from(config).connect(name, tcp).await?;
                (Either::Right(tls), Some(pem))
            }
            other => bail!("host refused the session: {other:?}"),
        };
        let mut client = Self {
            conn: Framed::new(stream, MrciCodec::new()),
            commands: HashMap::new(),
            header,
            host_cert,
        };
        client.until(|f| f.cmd_id == AsyncId::RDY.cmd_id()).await?;
        Ok(client)
    }

    /// The TLS session's peer certificate (DER), when TLS is used.
    pub fn peer_certificate(&self) -> Option<Vec<u8>> {
        match self.conn.get_ref() {
            Either::Right(tls) => tls
                .get_ref()
                .1
                .peer_certificates()?
                .first()
                .map(|c| c.to_vec()),
            Either::Left(_) => None,
        }
    }

    /// Gives up the codec for raw bytes: the stream, and whatever the codec had read past
    /// the last frame it returned.
    pub fn into_stream(self) -> (ClientStream, BytesMut) {
        let parts = self.conn.into_parts();
        (parts.io, parts.read_buf)
    }

    /// Sends one frame.
    pub async fn send(&mut self, frame: Frame) -> anyhow::Result<()> {
        self.conn.send(frame).await?;
        Ok(())
    }

    /// Receives the next frame, keeping the command table current.
    pub async fn recv(&mut self) -> anyhow::Result<Frame> {
        let frame = tokio::time::timeout(PATIENCE, self.conn.next())
            .await
            .context("no frame from the host")?
            .context("connection closed")??;
        if frame.cmd_id == AsyncId::ADD_CMD.cmd_id() && frame.type_id == TypeId::NEW_CMD {
            let cmd = NewCmd::parse(&frame.payload)?;
            self.commands.insert(cmd.name, cmd.cmd_id);
        } else if frame.cmd_id == AsyncId::RM_CMD.cmd_id() && frame.type_id == TypeId::CMD_ID {
            let id = mrci_proto::payload::parse_cmd_id(&frame.payload)?;
            self.commands.retain(|_, v| *v != id);
        }
        Ok(frame)
    }

    /// Receives until `stop` matches, returning every frame received including the match.
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

    /// True when the host closed the connection (end of stream or a reset).
    pub async fn closed(&mut self) -> bool {
        matches!(
            tokio::time::timeout(PATIENCE, self.conn.next()).await,
            Ok(None | Some(Err(_)))
        )
    }

    /// Receives until `name` is (or is no longer) announced.
    pub async fn until_command(&mut self, name: &str, present: bool) -> anyhow::Result<()> {
        while self.commands.contains_key(name) != present {
            self.recv().await?;
        }
        Ok(())
    }

    /// Receives until the next MY_INFO and returns it.
    pub async fn next_my_info(&mut self) -> anyhow::Result<mrci_proto::payload::MyInfo> {
        let frames = self.until(|f| f.type_id == TypeId::MY_INFO).await?;
        let last = frames.last().context("no frame")?;
        Ok(mrci_proto::payload::MyInfo::parse(&last.payload)?)
    }

    /// Runs a command and returns its output as one string, failing on ERR.
    pub async fn ok(&mut self, name: &str, text: &str) -> anyhow::Result<String> {
        let out = self.run(name, text).await?;
        if let Some((_, err)) = out.iter().find(|(t, _)| *t == TypeId::ERR) {
            bail!("{name} {text}: {err}");
        }
        Ok(out.into_iter().map(|(_, t)| t).collect())
    }

    /// Runs a command that must answer with ERR; returns the error text.
    pub async fn refused(&mut self, name: &str, text: &str) -> anyhow::Result<String> {
        let out = self.run(name, text).await?;
        match out.into_iter().find(|(t, _)| *t == TypeId::ERR) {
            Some((_, err)) => Ok(err),
            None => bail!("{name} {text} was not refused"),
        }
    }

    /// The id of an announced command.
    pub fn id(&self, name: &str) -> anyhow::Result<CmdId> {
        self.commands
            .get(name)
            .copied()
            .with_context(|| format!("{name} was not announced"))
    }

    /// Sends TEXT to a command on `branch`.
    pub async fn text_to(&mut self, name: &str, branch: u16, text: &str) -> anyhow::Result<()> {
        let id = self.id(name)?;
        self.send(Frame::text(id, BranchId(branch), text)).await
    }

    /// Runs a command to its IDLE and returns its frames' (type, text) without the IDLE;
    /// frames for other ids that arrive meanwhile are processed but not returned.
    pub async fn run(&mut self, name: &str, text: &str) -> anyhow::Result<Vec<(TypeId, String)>> {
        let id = self.id(name)?;
        self.send(Frame::text(id, BranchId(0), text)).await?;
        self.collect(id, BranchId(0)).await
    }

    /// Collects the frames of `(cmd, branch)` up to its IDLE.
    pub async fn collect(
        &mut self,
        cmd: CmdId,
        branch: BranchId,
    ) -> anyhow::Result<Vec<(TypeId, String)>> {
        let frames = self
            .until(|f| f.cmd_id == cmd && f.branch_id == branch && f.type_id == TypeId::IDLE)
            .await?;
        Ok(frames
            .into_iter()
            .filter(|f| f.cmd_id == cmd && f.branch_id == branch && f.type_id != TypeId::IDLE)
            .map(|f| (f.type_id, f.text_payload()))
            .collect())
    }

    /// Receives frames for `(cmd, branch 0)` until one of type `type_id` arrives; returns its text.
    pub async fn expect(&mut self, cmd: CmdId, type_id: TypeId) -> anyhow::Result<String> {
        let frames = self
            .until(|f| f.cmd_id == cmd && (f.type_id == type_id || f.type_id == TypeId::IDLE))
            .await?;
        let last = frames.last().context("no frame")?;
        if last.type_id != type_id {
            bail!("expected {type_id:?}, the command ended; frames: {frames:?}");
        }
        Ok(last.text_payload())
    }

    /// Logs in with `auth` and waits for the command set to change.
    pub async fn login(&mut self, user: &str, password: &str) -> anyhow::Result<()> {
        let id = self.id("auth")?;
        self.send(Frame::text(id, BranchId(0), &format!("-user {user}")))
            .await?;
        self.expect(id, TypeId::PRIV_TEXT).await?;
        self.send(Frame::text(id, BranchId(0), password)).await?;
        let out = self.collect(id, BranchId(0)).await?;
        if !out.iter().any(|(_, t)| t.contains("Access granted")) {
            bail!("login failed: {out:?}");
        }
        Ok(())
    }
}
