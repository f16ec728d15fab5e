//! Helpers for driving the real `mrci` binary: a host started as `mrci host run` in a
//! temporary data directory, and the client in a pseudo-terminal.
//!
//! The binary is found next to the test executable's directory (`target/debug/mrci`): cargo
//! builds every workspace binary when the workspace's tests are built, and `cargo build -p
//! mrci-cli` builds it for a single-package run.

use std::{
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::Duration,
};

use expectrl::{Expect as _, session::OsSession as Session};

/// How long an expectation waits; only a hang reaches it.
pub(crate) const PATIENCE: Duration = Duration::from_secs(20);

/// A password that satisfies the host's rules.
pub(crate) const NEW_PASSWORD: &str = "Fresh-Passw0rd!";

/// The `mrci` binary.
pub(crate) fn mrci() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let bin = dir.join("mrci");
    assert!(
        bin.exists(),
        "{} is missing; build it with `cargo build -p mrci-cli`",
        bin.display()
    );
    bin
}

/// `mrci host run` on a free loopback port with its own data directory.
pub(crate) struct Host {
    child: Child,
    /// The loopback port it listens on.
    pub(crate) port: u16,
    /// The certificate fingerprint it printed.
    pub(crate) fingerprint: String,
    /// Temporary directory: `data/`, `host.log`, and room for client files.
    pub(crate) dir: tempfile::TempDir,
}

impl Host {
    /// Starts the host and waits until it listens.
    pub(crate) fn start() -> Self {
        Self::start_prepared(|_| {})
    }

    /// Starts the host after `prepare` has put files into its (not yet created) data
    /// directory, e.g. a certificate and key to serve instead of a generated one.
    pub(crate) fn start_prepared(prepare: impl FnOnce(&Path)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).expect("data dir");
        prepare(&data);
        let (child, port, fingerprint) = launch(dir.path(), "127.0.0.1:0");
        Self {
            child,
            port,
            fingerprint,
            dir,
        }
    }

    /// Starts the host with the file commands on, rooted at `files/` in its temporary
    /// directory (a `config.toml` there sets `[files] root`).
    pub(crate) fn start_with_files() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("data")).expect("data dir");
        let root = dir.path().join("files");
        std::fs::write(
            dir.path().join("config.toml"),
            format!("[files]\nroot = {:?}\n", root.display().to_string()),
        )
        .expect("write config.toml");
        let (child, port, fingerprint) = launch(dir.path(), "127.0.0.1:0");
        Self {
            child,
            port,
            fingerprint,
            dir,
        }
    }

    /// Stops the host and starts it again on the same port and data directory.
    pub(crate) fn restart(&mut self) {
        self.stop();
        let (child, port, fingerprint) =
            launch(self.dir.path(), &format!("127.0.0.1:{}", self.port));
        assert_eq!((port, &fingerprint), (self.port, &self.fingerprint));
        self.child = child;
    }

    /// `127.0.0.1:PORT`.
    pub(crate) fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A path inside the temporary directory.
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The known-hosts file the tests' clients use.
    pub(crate) fn known_hosts(&self) -> PathBuf {
        self.path("known_hosts")
    }

    /// `mrci host add-admin NAME`; returns the one-time password it printed.
    pub(crate) fn add_admin(&self, name: &str) -> String {
        let out = Command::new(mrci())
            .args(["host", "add-admin", "--data-dir"])
            .arg(self.path("data"))
            .arg(name)
            .output()
            .expect("run add-admin");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "add-admin failed: {out:?}");
        stdout
            .lines()
            .find_map(|l| l.strip_prefix("One-time password: "))
            .expect("a one-time password")
            .trim()
            .to_owned()
    }

    /// `mrci run TARGET --known-hosts FILE ARGS...` without a terminal.
    pub(crate) fn run(&self, args: &[&str]) -> Output {
        Command::new(mrci())
            .arg("run")
            .arg(self.target())
            .arg("--known-hosts")
            .arg(self.known_hosts())
            .args(args)
            .env_remove("MRCI_PASSWORD")
            .env_remove("MRCI_USER")
            .stdin(Stdio::null())
            .output()
            .expect("run mrci run")
    }

    /// `mrci run TARGET --known-hosts FILE ARGS...` in a pseudo-terminal (stdin, stdout and
    /// stderr are the terminal).
    pub(crate) fn run_in_pty(&self, args: &[&str]) -> Session {
        let mut cmd = Command::new(mrci());
        cmd.arg("run")
            .arg(self.target())
            .arg("--known-hosts")
            .arg(self.known_hosts())
            .args(args)
            .env("TERM", "xterm")
            .env("COLUMNS", "200")
            .env_remove("MRCI_PASSWORD")
            .env_remove("MRCI_USER");
        let mut session = expectrl::Session::spawn(cmd).expect("spawn mrci run in a pty");
        session.set_expect_timeout(Some(PATIENCE));
        session
    }

    /// `mrci connect TARGET --known-hosts FILE ARGS...` in a pseudo-terminal.
    pub(crate) fn connect(&self, args: &[&str]) -> Session {
        let mut cmd = Command::new(mrci());
        cmd.arg("connect")
            .arg(self.target())
            .arg("--known-hosts")
            .arg(self.known_hosts())
            .args(args)
            .env("TERM", "xterm")
            .env("COLUMNS", "200")
            .env_remove("MRCI_USER");
        let mut session = expectrl::Session::spawn(cmd).expect("spawn mrci connect in a pty");
        session.set_expect_timeout(Some(PATIENCE));
        session
    }

    /// Logs `user` in for the first time through the interactive client, answering the
    /// forced password change with [`NEW_PASSWORD`]; leaves the session at the prompt.
    pub(crate) fn first_login(&self, user: &str) -> Session {
        let otp = self.add_admin(user);
        let mut client = self.connect(&["--accept-new"]);
        expect(&mut client, "Ready");
        type_line(&mut client, &format!("auth -user {user}"));
        expect(&mut client, "Enter password");
        type_line(&mut client, &otp);
        expect(&mut client, "You must set a new password");
        type_line(&mut client, NEW_PASSWORD);
        expect(&mut client, "Password changed");
        expect(&mut client, "Access granted");
        client
    }

    /// Writes [`NEW_PASSWORD`] to a file for `--password-file`.
    pub(crate) fn password_file(&self) -> PathBuf {
        let path = self.path("password");
        std::fs::write(&path, format!("{NEW_PASSWORD}\n")).expect("write password file");
        path
    }
}

impl Host {
    /// Stops the host process.
    pub(crate) fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs `mrci host run` on `listen` with its data in `dir`; returns the process, its port
/// and its certificate fingerprint once it listens.
/// A `config.toml` in `dir` is used when there is one.
fn launch(dir: &Path, listen: &str) -> (Child, u16, String) {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("host.log"))
        .expect("log file");
    let mut cmd = Command::new(mrci());
    cmd.args(["host", "run", "--listen", listen, "--data-dir"])
        .arg(dir.join("data"))
        .env_remove("MRCI_CONFIG");
    let config = dir.join("config.toml");
    if config.exists() {
        cmd.arg("--config").arg(config);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("spawn mrci host run");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut port = None;
    let mut fingerprint = None;
    while port.is_none() || fingerprint.is_none() {
        let Some(Ok(line)) = lines.next() else {
            panic!("the host exited before listening; see its log");
        };
        if let Some(addr) = line.strip_prefix("MRCI host listening on ") {
            port = addr.rsplit(':').next().and_then(|p| p.parse().ok());
        } else if let Some(fp) = line.strip_prefix("certificate SHA-256 fingerprint: ") {
            fingerprint = Some(fp.trim().to_owned());
        }
    }
    // Keep draining stdout so the host never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (
        child,
        port.expect("port"),
        fingerprint.expect("fingerprint"),
    )
}

/// Waits for `needle` in the client's output; returns everything before it.
pub(crate) fn expect(session: &mut Session, needle: &str) -> String {
    match session.expect(needle) {
        Ok(found) => String::from_utf8_lossy(found.before()).into_owned(),
        Err(e) => panic!("waiting for {needle:?}: {e}"),
    }
}

/// Types `text` and Enter, as a person would (the terminal sends CR).
pub(crate) fn type_line(session: &mut Session, text: &str) {
    session
        .send(format!("{text}\r"))
        .expect("write to the terminal");
}

/// Types `text` without Enter.
pub(crate) fn type_text(session: &mut Session, text: &str) {
    session.send(text).expect("write to the terminal");
}
