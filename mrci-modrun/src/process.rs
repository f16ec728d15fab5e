//! Starting a module process: its private socket in the 0700 runtime directory, its own
//! process group (through the launcher when confined, `crate::confine`), its logged output,
//! and the forced kill of that group.
//!
//! When modules run as their own user ([`crate::confine::Confine::effective_run_as`]) the
//! runtime directory is `root:<module gid>` 0710 instead of 0700, each socket file belongs to
//! the module user, and so do the shared-memory objects a module is told to attach.
//!
//! Invariant: a [`SocketFile`] removes its file when dropped, and a [`Process`] is spawned
//! with `kill_on_drop`, so an early return or a panic leaves no socket file and no child
//! behind; the supervisor's forced kill goes to the whole process group.

use std::{
    fs,
    os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
    process::Stdio,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use nix::{
    errno::Errno,
    sys::signal::{Signal, killpg},
    unistd::{Gid, Pid, Uid, chown},
};
use tokio::{
    net::UnixListener,
    process::{Child, Command},
    task::JoinHandle,
};
use tracing::{debug, warn};

use crate::{
    args::ModuleArgs,
    config::Config,
    confine::RunAs,
    error::{Error, Result},
    output::{OutputStats, log_output},
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
    check_runtime_dir(dir, None)
}

/// The directory must be private: 0700, or 0710 with the module group when modules run as
/// their own user.
fn check_runtime_dir(dir: &Path, run_as: Option<RunAs>) -> Result<()> {
    let fail = |why: String| Error::RuntimeDir {
        path: dir.to_path_buf(),
        why,
    };
    let meta = fs::metadata(dir).map_err(|e| fail(e.to_string()))?;
    if !meta.is_dir() {
        return Err(fail("not a directory".into()));
    }
    let mode = meta.permissions().mode() & 0o777;
    let group_enters = run_as.is_some_and(|r| r.gid == meta.gid()) && mode & 0o067 == 0;
    if mode & 0o077 != 0 && !group_enters {
        return Err(fail(format!(
            "mode {mode:o} lets other users in; expected 0700"
        )));
    }
    Ok(())
}

/// Lets the module group enter (not list) the runtime directory: group `gid`, mode 0710.
fn open_runtime_dir(dir: &Path, run_as: RunAs) -> Result<()> {
    let fail = |why: String| Error::RuntimeDir {
        path: dir.to_path_buf(),
        why,
    };
    let meta = fs::metadata(dir).map_err(|e| fail(e.to_string()))?;
    if meta.gid() == run_as.gid && meta.permissions().mode() & 0o777 == 0o710 {
        return Ok(());
    }
    chown(dir, None, Some(Gid::from_raw(run_as.gid))).map_err(|e| fail(e.to_string()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o710)).map_err(|e| fail(e.to_string()))?;
    warn_if_unreachable(dir, run_as);
    Ok(())
}

/// Warns (once per host) if a parent of the runtime directory keeps the module user out.
fn warn_if_unreachable(dir: &Path, run_as: RunAs) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    let Ok(dir) = dir.canonicalize() else { return };
    for parent in dir.ancestors().skip(1) {
        let Ok(meta) = fs::metadata(parent) else {
            continue;
        };
        let mode = meta.permissions().mode();
        let enters = mode & 0o001 != 0
            || (meta.gid() == run_as.gid && mode & 0o010 != 0)
            || (meta.uid() == run_as.uid && mode & 0o100 != 0);
        if !enters && !WARNED.swap(true, Ordering::Relaxed) {
            warn!(
                dir = %parent.display(),
                uid = run_as.uid,
                "the module user cannot enter this parent of the runtime directory; modules will not reach their sockets"
            );
        }
    }
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

/// Binds a fresh socket `<dir>/<tag>-<serial>` with file mode 0600, owned by the module user
/// when modules run as their own user.
pub(crate) fn bind(cfg: &Config, tag: &str) -> Result<(UnixListener, SocketFile)> {
    static SERIAL: AtomicU64 = AtomicU64::new(0);
    let dir = &cfg.runtime_dir;
    let run_as = cfg.confine.effective_run_as();
    if let Some(r) = run_as {
        open_runtime_dir(dir, r)?;
    }
    check_runtime_dir(dir, run_as)?;
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
    if let Some(r) = run_as {
        chown(
            socket.path(),
            Some(Uid::from_raw(r.uid)),
            Some(Gid::from_raw(r.gid)),
        )
        .map_err(std::io::Error::from)?;
    }
    Ok((listener, socket))
}

/// Gives the shared-memory object `key` (`/name`, as mrci-shm makes them) to the module
/// user, who must open it read-write to take its lock.
fn give_shm(key: &str, run_as: RunAs) {
    let Some(name) = key.strip_prefix('/') else {
        return;
    };
    if name.is_empty() || name.contains('/') {
        return;
    }
    let path = Path::new("/dev/shm").join(name);
    if let Err(e) = chown(&path, Some(Uid::from_raw(run_as.uid)), None) {
        warn!(path = %path.display(), "cannot give shared memory to the module user: {e}");
    }
}

/// A started module process, leader of its own process group.
#[derive(Debug)]
pub(crate) struct Process {
    pub(crate) child: Child,
    pub(crate) pid: u32,
    pub(crate) exe: PathBuf,
    /// Whether it was started through the launcher.
    pub(crate) confined: bool,
    /// Its stdout and stderr so far, and the task logging them.
    pub(crate) output: Arc<Mutex<OutputStats>>,
    pub(crate) output_task: JoinHandle<()>,
}

impl Process {
    /// Starts `exe` with `args` in its own process group, through the launcher if the
    /// configuration has one; stdout and stderr go to the log (PROTOCOL.md §9 item 23).
    pub(crate) fn spawn(
        cfg: &Config,
        exe: &Path,
        args: &ModuleArgs,
        cwd: Option<&Path>,
    ) -> Result<Self> {
        let spawn_error = |source| Error::Spawn {
            exe: exe.to_path_buf(),
            source,
        };
        if cfg.confine.launcher.is_some() {
            // The launcher would only fail later; a missing module fails here, as unconfined.
            executable(exe).map_err(spawn_error)?;
        }
        if let Some(r) = cfg.confine.effective_run_as() {
            give_shm(&args.mem_ses, r);
            give_shm(&args.mem_host, r);
        }
        let (program, argv) = cfg.confine.command(exe, args.to_args());
        let mut cmd = Command::new(&program);
        cmd.args(argv)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if let Some(dir) = cwd {
            cmd.current_dir(dir);
        }
        let mut child = cmd.spawn().map_err(spawn_error)?;
        let pid = child
            .id()
            .expect("a just-spawned child has not been reaped");
        let output = Arc::new(Mutex::new(OutputStats::default()));
        let output_task = tokio::spawn(log_output(
            child.stdout.take(),
            child.stderr.take(),
            cfg.output,
            (exe.to_path_buf(), pid),
            Arc::clone(&output),
        ));
        let confined = cfg.confine.launcher.is_some();
        debug!(exe = %exe.display(), pid, confined, "module started");
        Ok(Self {
            child,
            pid,
            exe: exe.to_path_buf(),
            confined,
            output,
            output_task,
        })
    }

    /// What became of its output: waits up to `wait` for the streams to end (processes that
    /// escaped the group may hold them), then stops logging.
    pub(crate) async fn output_stats(&mut self, wait: std::time::Duration) -> OutputStats {
        if tokio::time::timeout(wait, &mut self.output_task)
            .await
            .is_err()
        {
            self.output_task.abort();
        }
        *self.output.lock().unwrap_or_else(|e| e.into_inner())
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

/// Checks that a module path with a directory part names an executable file (a bare name is
/// searched in PATH by the launcher).
fn executable(exe: &Path) -> std::io::Result<()> {
    if exe.components().count() < 2 {
        return Ok(());
    }
    let meta = fs::metadata(exe)?;
    if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
        Ok(())
    } else {
        Err(std::io::Error::from(std::io::ErrorKind::PermissionDenied))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.output_task.abort();
    }
}
