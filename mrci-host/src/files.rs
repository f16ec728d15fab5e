//! The confined file tree behind the file commands (COMMANDS.md §3.7, adapted): one root
//! directory from `[files] root`, optionally one subdirectory per account, reached only
//! through `cap-std` directory capabilities.
//!
//! Invariant: every path a client names is relative to its base directory (the root, or its
//! account's subdirectory) and is opened through a [`Dir`] capability, so `..`, absolute
//! paths and symlinks that lead out are refused by the kernel-level resolution (`openat2`
//! with `RESOLVE_BENEATH` where available, else component-by-component `O_NOFOLLOW`), also
//! when a directory is swapped for a symlink while an operation runs. [`resolve`] refuses
//! `..` and absolute paths before anything is opened, so the refusal reads clearly.
//!
//! All file system calls block, so commands run them through [`blocking`] (tokio's blocking
//! pool) and never on the session's task.

use std::{
    collections::HashMap,
    io,
    path::{Component, Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use cap_std::{ambient_authority, fs::Dir};
use mrci_proto::UserId;

use crate::{Error, Result, config};

/// Suffix of the file an upload writes before it is complete; see [`part_name`].
pub(crate) const PART_SUFFIX: &str = ".part";

/// The configured file root, shared by every session (its size limits are runtime settings,
/// read from the live configuration at each upload).
#[derive(Debug)]
pub(crate) struct FileRoot {
    root: Dir,
    per_user: bool,
    uploads: Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>,
}

impl FileRoot {
    /// Opens (creating it if needed) the configured root; `None` when file commands are off.
    ///
    /// # Errors
    /// [`Error::Config`] if the root cannot be created or opened.
    pub(crate) fn open(cfg: &config::Files) -> Result<Option<Arc<Self>>> {
        let Some(path) = &cfg.root else {
            return Ok(None);
        };
        let open = || -> io::Result<Dir> {
            std::fs::create_dir_all(path)?;
            Dir::open_ambient_dir(path, ambient_authority())
        };
        let root =
            open().map_err(|e| Error::Config(format!("files.root {}: {e}", path.display())))?;
        Ok(Some(Arc::new(Self {
            root,
            per_user: cfg.per_user,
            uploads: Mutex::new(HashMap::new()),
        })))
    }

    /// The directory `user`'s paths resolve in (blocking): the root, or the account's own
    /// subdirectory, created on first use.
    pub(crate) fn base(&self, user: &UserId) -> io::Result<Dir> {
        if !self.per_user {
            return self.root.try_clone();
        }
        let name = user.to_hex();
        self.root.create_dir_all(&name)?;
        self.root.open_dir(&name)
    }

    /// The key two uploads to the same file share.
    pub(crate) fn upload_key(&self, user: &UserId, path: &Path) -> PathBuf {
        if self.per_user {
            Path::new(&user.to_hex()).join(path)
        } else {
            path.to_owned()
        }
    }

    /// Waits up to `wait` until no other upload writes `key`, and holds it until the
    /// returned lock drops; `None` if it stayed busy. Uploads to one path are serialised,
    /// never interleaved.
    pub(crate) async fn lock_upload(
        self: &Arc<Self>,
        key: PathBuf,
        wait: Duration,
    ) -> Option<UploadLock> {
        let mutex = {
            let mut uploads = self.uploads.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(uploads.entry(key.clone()).or_default())
        };
        let guard = tokio::time::timeout(wait, Arc::clone(&mutex).lock_owned())
            .await
            .ok()?;
        Some(UploadLock {
            _guard: guard,
            root: Arc::clone(self),
            key,
            mutex,
        })
    }

    /// Bytes available to this process on the root's file system (blocking).
    pub(crate) fn free_bytes(&self) -> io::Result<u64> {
        let st = nix::sys::statvfs::fstatvfs(&self.root).map_err(io::Error::from)?;
        Ok(st.blocks_available().saturating_mul(st.fragment_size()))
    }
}

/// One upload's hold on its destination; see [`FileRoot::lock_upload`].
#[derive(Debug)]
pub(crate) struct UploadLock {
    _guard: tokio::sync::OwnedMutexGuard<()>,
    root: Arc<FileRoot>,
    key: PathBuf,
    mutex: Arc<tokio::sync::Mutex<()>>,
}

impl Drop for UploadLock {
    fn drop(&mut self) {
        let mut uploads = self.root.uploads.lock().unwrap_or_else(|e| e.into_inner());
        // The map and this lock hold the only references: nobody waits, forget the path.
        if Arc::strong_count(&self.mutex) == 2 {
            uploads.remove(&self.key);
        }
    }
}

/// Why a client's path was refused before anything was opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BadPath {
    /// It starts at `/`.
    Absolute,
    /// It has a `..` component.
    Parent,
}

impl std::fmt::Display for BadPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Absolute => {
                "absolute paths are not allowed; paths are relative to your file root"
            }
            Self::Parent => "'..' is not allowed in paths",
        })
    }
}

/// `path` taken relative to the working directory `cwd`, as a relative path inside the base
/// directory (`.` components dropped; empty means the base itself).
///
/// # Errors
/// [`BadPath`] for an absolute path or a `..` component (in either part).
pub(crate) fn resolve(cwd: &str, path: &str) -> std::result::Result<PathBuf, BadPath> {
    let mut out = PathBuf::new();
    for part in [cwd, path] {
        for c in Path::new(part).components() {
            match c {
                Component::Normal(name) => out.push(name),
                Component::CurDir => {}
                Component::ParentDir => return Err(BadPath::Parent),
                Component::RootDir | Component::Prefix(_) => return Err(BadPath::Absolute),
            }
        }
    }
    Ok(out)
}

/// The file an upload to `path` writes until it is complete: `.NAME.part` beside it. A failed
/// or cancelled upload leaves it for a resume with `-offset`; a complete one is renamed over
/// `path`, so `path` never holds a partial upload.
pub(crate) fn part_name(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_string_lossy();
    Some(path.with_file_name(format!(".{name}{PART_SUFFIX}")))
}

/// Runs blocking file system work on tokio's blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(io::Error::other(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_relative_to_the_base() {
        assert_eq!(resolve("", "a/b.txt"), Ok(PathBuf::from("a/b.txt")));
        assert_eq!(resolve("d", "./x"), Ok(PathBuf::from("d/x")));
        assert_eq!(resolve("", ""), Ok(PathBuf::new()));
        assert_eq!(resolve("", "/etc/passwd"), Err(BadPath::Absolute));
        assert_eq!(resolve("", "a/../../b"), Err(BadPath::Parent));
        assert_eq!(resolve("..", "b"), Err(BadPath::Parent));
    }

    #[test]
    fn part_files_sit_beside_their_target() {
        assert_eq!(
            part_name(Path::new("d/f.bin")),
            Some(PathBuf::from("d/.f.bin.part"))
        );
        assert_eq!(part_name(Path::new("")), None);
    }
}
