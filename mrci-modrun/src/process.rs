//! Starting a module process: its private socket in the 0700 runtime directory, its own
//! process group, and the forced kill of that group.
//!
//! Invariant: a [`SocketFile`] removes its file when dropped, and a [`Process`] is spawned
//! with `kill_on_drop`, so an early return or a panic leaves no socket file and no child
//! behind; the supervisor's forced kill goes to the whole process group.

use std::{
    fs,
    os::unix::fs::{DirBuilderExt, PermissionsExt},
    path::{Path, PathBuf},
    process::Stdio,
    sync::atomic::{AtomicU64, Ordering},
};

use nix::{
    errno::Errno,
    sys::signal::{Signal, killpg},
    unistd::Pid,
};
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, BufReader},
    net::UnixListener,
    process::{Child, Command},
};
use tracing::{debug, info, warn};

use crate::{
    args::ModuleArgs,
    error::{Error, Result},
};

/// `sockaddr_un.sun_path` holds 108 bytes including the terminating NUL (PROTOCOL.md §5.2).
const MAX_SOCKET_PATH: usize = 107;

/// Creates `dir` (and its parents) if needed and makes it private to this user (mode 0700).
///
/// # Errors
/// [`Error::RuntimeDir`] if it cannot be created, is not a directory or cannot be chmod-ed.
pub fn prepare_runtime_dir(dir: &Path) -> Result<()> {
    let fail = |why: String| Error::RuntimeDir {
        path: dir.to_path_buf(),
        why,
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| fail(e.to_string()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|e| fail(e.to_string()))?;
    check_runtime_dir(dir)
}

fn check_runtime_dir(dir: &Path) -> Result<()> {
    let fail = |why: String| Error::RuntimeDir {
        path: dir.to_path_buf(),
        why,
    };
    let meta = fs::metadata(dir).map_err(|e| fail(e.to_string()))?;
    if !meta.is_dir() {
        return Err(fail("not a directory".into()));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(fail(format!(
            "mode {:o} lets other users in; expected 0700",
            meta.permissions().mode() & 0o777
        )));
    }
    Ok(())
}

/// A socket file that is removed when this value is dropped.
#[derive(Debug)]
pub(crate) struct SocketFile {
    path: PathBuf,
}

impl SocketFile {
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_file(&self.path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            warn!(path = %self.path.display(), "cannot remove module socket: {e}");
        }
    }
}

/// Binds a fresh socket `<dir>/<tag>-<serial>` with file mode 0600.
pub(crate) fn bind(dir: &Path, tag: &str) -> Result<(UnixListener, SocketFile)> {
    static SERIAL: AtomicU64 = AtomicU64::new(0);
    check_runtime_dir(dir)?;
    let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
    let path = dir.join(format!("{tag}-{}-{serial}", std::process::id()));
    if path.as_os_str().len() > MAX_SOCKET_PATH {
        return Err(Error::PathTooLong(path));
    }
    // A stale file of the same name can only be ours from an earlier crash (the directory is
    // private), so it is safe to remove, as e7ea316 does (PROTOCOL.md §5.2).
    let _ = fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    let socket = SocketFile { path };
    fs::set_permissions(socket.path(), fs::Permissions::from_mode(0o600))?;
    Ok((listener, socket))
}

/// A started module process, leader of its own process group.
#[derive(Debug)]
pub(crate) struct Process {
    pub(crate) child: Child,
    pub(crate) pid: u32,
    pub(crate) exe: PathBuf,
}

impl Process {
    /// Starts `exe` with `args` in its own process group; stdout and stderr go to the log
    /// (PROTOCOL.md §9 item 23).
    pub(crate) fn spawn(exe: &Path, args: &ModuleArgs, cwd: Option<&Path>) -> Result<Self> {
        let mut cmd = Command::new(exe);
        cmd.args(args.to_args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if let Some(dir) = cwd {
            cmd.current_dir(dir);
        }
        let mut child = cmd.spawn().map_err(|source| Error::Spawn {
            exe: exe.to_path_buf(),
            source,
        })?;
        let pid = child
            .id()
            .expect("a just-spawned child has not been reaped");
        if let Some(out) = child.stdout.take() {
            tokio::spawn(log_lines(out, exe.to_path_buf(), pid, "stdout"));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(log_lines(err, exe.to_path_buf(), pid, "stderr"));
        }
        debug!(exe = %exe.display(), pid, "module started");
        Ok(Self {
            child,
            pid,
            exe: exe.to_path_buf(),
        })
    }

    /// Sends SIGKILL to the whole process group. A group that is already gone is not an
    /// error.
    pub(crate) fn kill_group(&self) {
        let Ok(pgid) = i32::try_from(self.pid) else {
            return;
        };
        match killpg(Pid::from_raw(pgid), Signal::SIGKILL) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(e) => warn!(pid = self.pid, "cannot kill module process group: {e}"),
        }
    }
}

async fn log_lines(stream: impl AsyncRead + Unpin, exe: PathBuf, pid: u32, what: &'static str) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        info!(exe = %exe.display(), pid, "module {what}: {line}");
    }
}
