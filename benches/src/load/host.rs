//! The host under test: a separate `mrci host run` process on a loopback port with a
//! temporary data directory and a configuration file written for the load ([`Setup`]: the
//! session and admission limits raised, the per-address password-attempt limit off, cheap
//! Argon2 so that thousands of logins finish in seconds unless a scenario asks for the
//! default cost). A separate process lets the generator read the host's own memory, open
//! files and CPU time.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use anyhow::{Context, bail};
use mrci_cli::client::{Client, ConnectOptions, Target};
use nix::{sys::signal, unistd::Pid};

use super::client;

/// The account every load session logs in as.
pub const USER: &str = "load_admin";
/// The password set at the account's first login.
pub const PASSWORD: &str = "L0ad-Bench!pw";

/// A running host process; killed when dropped.
pub struct HostProcess {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its process id, for `/proc/PID/status`.
    pub pid: u32,
    /// Connect options shared by every client of this host (its pin and TLS configuration).
    pub opts: ConnectOptions,
    stop_within: Duration,
    child: Child,
    _dir: tempfile::TempDir,
}

/// How the host under test is configured.
#[derive(Clone, Debug)]
pub struct Setup {
    /// `limits.max_sessions`.
    pub max_sessions: usize,
    /// `limits.max_unauthenticated` and `limits.max_unauthenticated_per_address`: the
    /// generator opens many sessions at once from one or a few addresses.
    pub max_unauthenticated: usize,
    /// `limits.login_timeout_secs`.
    pub login_timeout_secs: u64,
    /// Keep the host's default Argon2 cost instead of the cheap 64 KiB x 1.
    pub default_argon2: bool,
    /// `limits.max_payload`, when not the default.
    pub max_payload: Option<usize>,
    /// Further administrator accounts created before the host starts (their one-time
    /// passwords are thrown away: a scenario uses them only for refused logins).
    pub extra_accounts: Vec<String>,
    /// How long [`HostProcess::stop`] waits after SIGTERM.
    pub stop_within: Duration,
    /// Module executables in `[modules] paths` (listed by every session).
    pub modules: Vec<PathBuf>,
    /// `[files] root`, for the file-transfer scenario.
    pub files_root: Option<PathBuf>,
    /// `[cluster]`, for a node of the cluster scenario.
    pub cluster: Option<ClusterSetup>,
    /// Create the load account (and log in once to set [`PASSWORD`]); off for the second
    /// and later nodes of a cluster, which share the first node's store.
    pub create_account: bool,
}

/// The `[cluster]` settings of one node.
#[derive(Clone, Debug)]
pub struct ClusterSetup {
    /// `cluster.database_url` (PostgreSQL).
    pub database_url: String,
    /// `cluster.nats_url`, when the node delivers through NATS.
    pub nats_url: Option<String>,
    /// `cluster.node`.
    pub node: String,
    /// `cluster.subject_prefix`.
    pub prefix: String,
}

impl Setup {
    /// The configuration of the shared load host: room for `max_sessions`, cheap logins.
    pub fn load(max_sessions: usize) -> Self {
        Self {
            max_sessions,
            max_unauthenticated: 1_024,
            login_timeout_secs: 60,
            default_argon2: false,
            max_payload: None,
            extra_accounts: Vec::new(),
            stop_within: Duration::from_secs(10),
            modules: Vec::new(),
            files_root: None,
            cluster: None,
            create_account: true,
        }
    }

    /// The configuration file's text.
    fn config_text(&self, data_dir: &Path) -> String {
        let mut text = format!(
            "listen = \"127.0.0.1:0\"\n\
             data_dir = {data_dir:?}\n\
             [limits]\n\
             max_sessions = {}\n\
             max_unauthenticated = {}\n\
             max_unauthenticated_per_address = {}\n\
             login_timeout_secs = {}\n",
            self.max_sessions,
            self.max_unauthenticated,
            self.max_unauthenticated,
            self.login_timeout_secs,
        );
        if let Some(max) = self.max_payload {
            text.push_str(&format!("max_payload = {max}\n"));
        }
        text.push_str("[security]\nauth_attempts_per_minute = 0\n");
        if !self.default_argon2 {
            text.push_str("argon2_memory_kib = 64\nargon2_iterations = 1\n");
        }
        if !self.modules.is_empty() {
            text.push_str(&format!("[modules]\npaths = {:?}\n", self.modules));
        }
        if let Some(c) = &self.cluster {
            text.push_str(&format!(
                "[cluster]\ndatabase_url = {:?}\nnode = {:?}\nsubject_prefix = {:?}\n",
                c.database_url, c.node, c.prefix
            ));
            if let Some(url) = &c.nats_url {
                text.push_str(&format!("nats_url = {url:?}\n"));
            }
        }
        if let Some(root) = &self.files_root {
            text.push_str(&format!(
                "[files]\nroot = {root:?}\nmax_upload_bytes = 0\nkeep_free_bytes = 0\n"
            ));
        }
        text
    }
}

impl HostProcess {
    /// Starts a host configured by [`Setup::load`]; see [`Self::start_with`].
    ///
    /// # Errors
    /// As [`Self::start_with`].
    pub async fn start(mrci: &Path, max_sessions: usize, log: &Path) -> anyhow::Result<Self> {
        Self::start_with(mrci, &Setup::load(max_sessions), log).await
    }

    /// Creates the data directory and the load account, starts `mrci` configured by
    /// `setup` and waits until it listens; `log` receives the host's stderr.
    ///
    /// # Errors
    /// If the account cannot be created or the host does not start within 30 seconds.
    pub async fn start_with(mrci: &Path, setup: &Setup, log: &Path) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let data_dir = dir.path().join("data");
        let config_path = dir.path().join("mrci.toml");
        let text = setup.config_text(&data_dir);
        std::fs::write(&config_path, &text)?;
        let config = mrci_host::Config::from_toml_str(&text)?;
        let one_time = if setup.create_account {
            Some(
                mrci_host::admin::add_admin(&config, USER)
                    .await
                    .context("cannot create the load account")?,
            )
        } else {
            None
        };
        for name in &setup.extra_accounts {
            mrci_host::admin::add_admin(&config, name)
                .await
                .with_context(|| format!("cannot create the account {name}"))?;
        }
        let mut child = Command::new(mrci)
            .args(["host", "run", "--config"])
            .arg(&config_path)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log)?)
            .spawn()
            .with_context(|| format!("cannot start {}", mrci.display()))?;
        let pid = child.id();
        let stdout = child.stdout.take().context("no stdout")?;
        let (found, address) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("MRCI host listening on ") {
                    let _ = found.send(addr.trim().to_owned());
                }
            }
        });
        let addr =
            tokio::task::spawn_blocking(move || address.recv_timeout(Duration::from_secs(30)))
                .await?
                .context("the host did not report its address")?
                .parse()?;
        let mut host = Self {
            addr,
            pid,
            opts: client::options(),
            stop_within: setup.stop_within,
            child,
            _dir: dir,
        };
        if let Some(one_time) = one_time {
            host.first_login(&one_time).await?;
        }
        Ok(host)
    }

    /// Logs in once with the one-time password so that later logins use [`PASSWORD`].
    async fn first_login(&mut self, one_time: &str) -> anyhow::Result<()> {
        let mut session = self.connect().await?;
        let login = session
            .login_with_new_password(USER, one_time, PASSWORD)
            .await?;
        if !login.password_changed {
            bail!("the host did not ask for a new password at the first login");
        }
        Ok(())
    }

    /// A new session, ready but not logged in.
    ///
    /// # Errors
    /// Connection failures.
    pub async fn connect(&self) -> anyhow::Result<Client> {
        Ok(Client::connect(&Target::from(self.addr), &self.opts).await?)
    }

    /// A new session logged in as [`USER`].
    ///
    /// # Errors
    /// Connection or login failures.
    pub async fn session(&self) -> anyhow::Result<Client> {
        let mut session = self.connect().await?;
        session.login(USER, PASSWORD).await?;
        Ok(session)
    }

    /// The host's resident set size in bytes.
    ///
    /// # Errors
    /// If `/proc/PID/status` cannot be read.
    pub fn rss(&self) -> anyhow::Result<u64> {
        rss_of(self.pid)
    }

    /// The host's open-file limit (soft), as the kernel reports it.
    pub fn nofile_limit(&self) -> Option<String> {
        let limits = std::fs::read_to_string(format!("/proc/{}/limits", self.pid)).ok()?;
        let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
        line.split_whitespace().nth(3).map(str::to_owned)
    }

    /// The host's exit status if it has exited (a crash, or the kernel's OOM killer).
    ///
    /// # Errors
    /// If the status cannot be read.
    pub fn exited(&mut self) -> anyhow::Result<Option<std::process::ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// Stops the host with SIGTERM and waits for it ([`Setup::stop_within`], ten seconds
    /// by default).
    ///
    /// # Errors
    /// If the host exits with a failure or does not stop in time.
    pub fn stop(mut self) -> anyhow::Result<()> {
        let pid = Pid::from_raw(i32::try_from(self.pid)?);
        signal::kill(pid, signal::Signal::SIGTERM)?;
        let deadline = std::time::Instant::now() + self.stop_within;
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    bail!("the host exited with {status}");
                }
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!(
            "the host did not stop within {:?} of SIGTERM",
            self.stop_within
        )
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The resident set size of a process, from `VmRSS` in `/proc/PID/status`.
///
/// # Errors
/// If the file cannot be read or has no `VmRSS` line.
pub fn rss_of(pid: u32) -> anyhow::Result<u64> {
    super::procfs::rss(pid)
}

/// Where the `mrci` binary is, next to this one unless told otherwise.
pub fn default_mrci() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("mrci")))
        .unwrap_or_else(|| PathBuf::from("mrci"))
}
