//! Helpers for the end-to-end tests: a host on a loopback port with a temporary data
//! directory ([`TestHost`]) and a client built on the `mrci_cli::client` library
//! ([`TestClient`]), which is the client every MRCI user runs.
#![forbid(unsafe_code)]

pub mod cluster;
pub mod fuzzing;

use std::{collections::HashMap, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::{Context, bail};
use mrci_cli::client::{Client, ConnectOptions, Error as ClientError, Target, Trust};
use mrci_host::{Config, HostCtx, host::Clock};
use mrci_proto::{
    BranchId, CmdId, Frame, TypeId,
    client::{Announcement, CommandTable, Handshake},
    header::HostHeader,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::{oneshot, watch},
    task::JoinHandle,
};

/// How long a test waits for something that should happen promptly. Only a hang reaches it.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A running host on `127.0.0.1` with its own temporary data directory. It runs as
/// `mrci host run` does ([`mrci_host::listener::run_until_closed`]), so `restart_host`
/// restarts it on the same address and `close_host` ends it.
pub struct TestHost {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its shared context (store, clock, config) as first started; [`TestHost::current`]
    /// follows restarts.
    pub ctx: Arc<HostCtx>,
    started: watch::Receiver<Option<Arc<HostCtx>>>,
    config: Arc<std::sync::Mutex<Config>>,
    reload: Arc<tokio::sync::Notify>,
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
        install_debug_log();
        let dir = tempfile::tempdir()?;
        let mut config = Config {
            data_dir: dir.path().join("data"),
            listen: "127.0.0.1:0".parse()?,
            ..Config::default()
        };
        config.security.argon2_memory_kib = 64;
        config.security.argon2_iterations = 1;
        tweak(&mut config);
        let config = Arc::new(std::sync::Mutex::new(config));
        let load = {
            let config = Arc::clone(&config);
            move || Ok(config.lock().unwrap_or_else(|p| p.into_inner()).clone())
        };
        let (started_tx, mut started) = watch::channel(None);
        let (addr_tx, addr_rx) = oneshot::channel();
        let mut addr_tx = Some(addr_tx);
        let (stop, stopped) = oneshot::channel::<()>();
        let reload = Arc::new(tokio::sync::Notify::new());
        let task = tokio::spawn(mrci_host::listener::run_until_closed(
            load,
            Clock::manual(1_800_000_000),
            async move {
                let _ = stopped.await;
            },
            Arc::clone(&reload),
            move |ctx, addr| {
                if let Some(tx) = addr_tx.take() {
                    let _ = tx.send(addr);
                }
                started_tx.send_replace(Some(Arc::clone(ctx)));
            },
        ));
        let Ok(addr) = addr_rx.await else {
            task.await??;
            bail!("the host ended before it started");
        };
        let ctx = started
            .wait_for(Option::is_some)
            .await?
            .clone()
            .context("started")?;
        started.mark_unchanged();
        Ok(Self {
            addr,
            ctx,
            started,
            config,
            reload,
            stop: Some(stop),
            task: Some(task),
            _dir: dir,
        })
    }

    /// The context of the host running now (a restart opens a new one).
    pub fn current(&self) -> Arc<HostCtx> {
        self.started
            .borrow()
            .clone()
            .unwrap_or_else(|| Arc::clone(&self.ctx))
    }

    /// Waits until the host has started again after a restart; returns its new context.
    pub async fn restarted(&mut self) -> anyhow::Result<Arc<HostCtx>> {
        tokio::time::timeout(PATIENCE, self.started.changed())
            .await
            .context("the host did not restart")??;
        Ok(self.current())
    }

    /// Waits until the host has ended by itself (`close_host`).
    pub async fn closed(mut self) -> anyhow::Result<()> {
        if let Some(task) = self.task.take() {
            tokio::time::timeout(PATIENCE, task)
                .await
                .context("host did not stop")???;
        }
        Ok(())
    }

    /// Changes the configuration the host reads at a reload or restart.
    pub fn edit_config(&self, edit: impl FnOnce(&mut Config)) {
        edit(&mut self.config.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// Asks the host to re-read its configuration and certificates (what SIGHUP does) and
    /// waits until it has.
    pub async fn reload(&self) -> anyhow::Result<()> {
        let ctx = self.current();
        let mut reloads = ctx.watch_reloads();
        reloads.mark_unchanged();
        self.reload.notify_one();
        tokio::time::timeout(PATIENCE, reloads.changed())
            .await
            .context("the host did not reload")??;
        Ok(())
    }

    /// Creates an account directly in the store and returns its name.
    pub async fn add_user(&self, name: &str, password: &str, group: &str) -> anyhow::Result<()> {
        let phc = self.ctx.hasher().hash(password).await?;
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

/// Installs the host's debug-log layer (`ls_dbg`) as this process's subscriber, once.
fn install_debug_log() {
    use tracing_subscriber::{layer::SubscriberExt, util::SubscriberInitExt};
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = tracing_subscriber::registry()
            .with(mrci_host::debug_log::layer())
            .try_init();
    });
}

/// The client's end of a connection, plaintext or TLS, as raw bytes.
pub type ClientStream = mrci_cli::client::Transport;

/// A client connection after the handshake: the [`mrci_cli::client`] library with the
/// helpers the tests use. Every receive waits at most [`PATIENCE`].
pub struct TestClient {
    inner: Client,
    /// The commands announced so far: name → id (a mirror of the library's command table).
    pub commands: HashMap<String, CmdId>,
    /// The host header received.
    pub header: HostHeader,
    /// The PEM of the HOST_CERT frame, when TLS was used.
    pub host_cert: Option<String>,
}

/// Sends a client header and reads the host header.
pub async fn raw_handshake(addr: SocketAddr, cn: &str) -> anyhow::Result<(TcpStream, HostHeader)> {
    let mut tcp = TcpStream::connect(addr).await?;
    let handshake = Handshake::new(APP_NAME, cn);
    tcp.write_all(&handshake.client_header().to_bytes()).await?;
    let mut raw = [0u8; HostHeader::LEN];
    tcp.read_exact(&mut raw).await?;
    Ok((tcp, HostHeader::parse(&raw)?))
}

/// The app name test clients send.
const APP_NAME: &str = "mrci-tests";

impl TestClient {
    /// Connects, completes the handshake (TLS when the host asks for it, trusting the
    /// certificate HOST_CERT announces) and waits for ASYNC_RDY, collecting the announced
    /// commands.
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        Self::connect_with(addr, None).await
    }

    /// [`TestClient::connect`] from the local address `from` (a loopback address such as
    /// 127.0.0.2, so a test can be several clients at once).
    pub async fn connect_from(from: std::net::IpAddr, addr: SocketAddr) -> anyhow::Result<Self> {
        Self::connect_with(addr, Some(from)).await
    }

    /// [`TestClient::connect`] asking the host for the certificate of `common_name`.
    pub async fn connect_cn(addr: SocketAddr, common_name: &str) -> anyhow::Result<Self> {
        Self::connect_opts(addr, None, common_name).await
    }

    async fn connect_with(
        addr: SocketAddr,
        from: Option<std::net::IpAddr>,
    ) -> anyhow::Result<Self> {
        Self::connect_opts(addr, from, "localhost").await
    }

    async fn connect_opts(
        addr: SocketAddr,
        from: Option<std::net::IpAddr>,
        common_name: &str,
    ) -> anyhow::Result<Self> {
        let mut opts = ConnectOptions::new(Trust::first_use_in_memory())
            .app_name(APP_NAME)
            .common_name(common_name)
            .ready_timeout(PATIENCE)
            .read_timeout(Some(PATIENCE));
        if let Some(from) = from {
            opts = opts.local_addr(from);
        }
        let inner = Client::connect(&Target::from(addr), &opts).await?;
        let info = inner.info();
        let host_cert = match &info.host_cert {
            Some(pem) => Some(String::from_utf8(pem.to_vec())?),
            None => None,
        };
        Ok(Self {
            commands: mirror(inner.commands()),
            header: info.header.clone(),
            host_cert,
            inner,
        })
    }

    /// The TLS session's peer certificate (DER), when TLS is used.
    pub fn peer_certificate(&self) -> Option<Vec<u8>> {
        self.inner.info().peer_certificate.clone()
    }

    /// The library client underneath.
    pub fn client(&mut self) -> &mut Client {
        &mut self.inner
    }

    /// Gives up the codec for raw bytes: the stream, and whatever the codec had read past
    /// the last frame it returned.
    pub fn into_stream(self) -> (ClientStream, bytes::BytesMut) {
        self.inner.into_transport()
    }

    /// Sends one frame.
    pub async fn send(&mut self, frame: Frame) -> anyhow::Result<()> {
        Ok(self.inner.send(frame).await?)
    }

    /// Receives the next frame, keeping the command table current; a malformed
    /// announcement fails the test.
    pub async fn recv(&mut self) -> anyhow::Result<Frame> {
        let frame = self.inner.recv().await?.context("connection closed")?;
        self.saw(std::slice::from_ref(&frame))?;
        Ok(frame)
    }

    /// Brings [`Self::commands`] up to date after `frames` were received through the
    /// library; a malformed announcement among them fails the test.
    fn saw(&mut self, frames: &[Frame]) -> anyhow::Result<()> {
        let mut changed = false;
        for frame in frames {
            match Announcement::parse(frame) {
                Some(Err(e)) => bail!("malformed command announcement: {e}"),
                Some(Ok(_)) => changed = true,
                None => {}
            }
        }
        if changed {
            self.sync_commands();
        }
        Ok(())
    }

    fn sync_commands(&mut self) {
        self.commands = mirror(self.inner.commands());
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
            self.inner.recv().await,
            Ok(None) | Err(ClientError::Io(_) | ClientError::Protocol(_))
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
        let out = self.inner.collect(cmd, branch).await?;
        self.saw(&out.other)?;
        Ok(out
            .frames
            .into_iter()
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

    /// Logs in with `auth`, answering its password prompt; fails if the host asks for
    /// anything more.
    pub async fn login(&mut self, user: &str, password: &str) -> anyhow::Result<()> {
        let res = self.inner.login(user, password).await;
        self.sync_commands();
        let login = res?;
        if !login.text.contains("Access granted") {
            bail!("login failed: {}", login.text);
        }
        Ok(())
    }
}

/// The name → id map of a command table.
fn mirror(commands: &CommandTable) -> HashMap<String, CmdId> {
    commands
        .iter()
        .map(|c| (c.name.clone(), c.cmd_id))
        .collect()
}
