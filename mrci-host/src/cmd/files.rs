//! The file commands (COMMANDS.md §3.7, confined): `fs_upload`, `fs_download`, `fs_delete`,
//! `fs_mkpath`, `fs_list`, `fs_tree`, `fs_info`, `fs_cd` here, `fs_copy` and `fs_move` in
//! `filecopy`. They load only when `[files] root` is set, and every path resolves inside the
//! caller's base directory through the `files` module's capabilities.
//!
//! Upload policy: an upload writes `.NAME.part` beside its target and renames it over the
//! target only when every byte arrived, so the target never holds a partial upload. A failed
//! or cancelled upload leaves the `.part` file; an upload with `-offset N` continues it (its
//! first N bytes are kept, anything after them is cut). Limits (`max_upload_bytes`,
//! `keep_free_bytes`) are checked before anything is written, and two uploads to one path
//! are serialised (the second waits up to [`UPLOAD_WAIT`], then is refused).

use std::{
    io,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use bytes::BytesMut;
use cap_std::fs::{Dir, MetadataExt, OpenOptions};
use mrci_proto::{TypeId, UserId, args::Args, payload::FileInfo};

use super::{
    CmdCtx, CmdResult, CommandDef, Exec, Fail, Feature, Input, LoggedInClass, SessionRequest,
    refuse, task,
    transfer::{self, Ended},
    util::{arg, refused},
};
use crate::files::{self, FileRoot, UploadLock};

/// How long an upload waits for another upload of the same path to finish.
pub(crate) const UPLOAD_WAIT: Duration = Duration::from_secs(10);

/// A file command definition: ranked, behind [`Feature::Files`].
fn def(
    name: &'static str,
    gen_file: bool,
    summary: &'static str,
    io: &'static str,
    details: &'static str,
    exec: Exec,
) -> CommandDef {
    CommandDef {
        name,
        public: false,
        logged_in: LoggedInClass::Ranked,
        gen_file,
        feature: Some(Feature::Files),
        summary,
        io,
        details,
        exec,
    }
}

pub(super) fn commands() -> Vec<CommandDef> {
    let mut all = vec![
        def(
            "fs_upload",
            true,
            "upload a file to the host",
            "[{GEN_FILE} -remote_file (path) -len (bytes) {-offset (bytes)} {-force} {-single_step}]/[GEN_FILE]",
            "Receives -len bytes into -remote_file. The file appears only when every byte \
             arrived; until then they go to .NAME.part beside it, which a later upload with \
             -offset N continues. Asks before overwriting unless -force.",
            task!(fs_upload),
        ),
        def(
            "fs_download",
            true,
            "download a file from the host",
            "[{GEN_FILE} -remote_file (path) {-len (bytes)} {-offset (bytes)} {-single_step}]/[GEN_FILE]",
            "Sends -remote_file from -offset; -len 0 or absent means to the end. The reply \
             gives the length that will be sent.",
            task!(fs_download),
        ),
        def(
            "fs_delete",
            false,
            "delete a file, link or directory tree",
            "[-path (path) {-force}]/[text]",
            "Directories are deleted with everything in them. Asks first unless -force.",
            task!(fs_delete),
        ),
        def(
            "fs_mkpath",
            false,
            "create a directory and its missing parents",
            "[-path (path)]/[text]",
            "",
            task!(fs_mkpath),
        ),
        def(
            "fs_list",
            false,
            "list a directory",
            "[{-path (path)} {-info_frame} {-no_hidden}]/[text or FILE_INFO]",
            "Directories first, with a trailing /. -info_frame sends one FILE_INFO frame per \
             entry instead of text.",
            task!(fs_list),
        ),
        def(
            "fs_tree",
            false,
            "list a directory tree",
            "[{-path (path)} {-info_frame} {-no_hidden}]/[text or FILE_INFO]",
            "Breadth first. Links to directories are listed, not entered, so there are no \
             cycles.",
            task!(fs_tree),
        ),
        def(
            "fs_info",
            false,
            "show facts about a file",
            "[-path (path) {-info_frame}]/[text or FILE_INFO]",
            "",
            task!(fs_info),
        ),
        def(
            "fs_cd",
            false,
            "show or set the working directory of the file commands",
            "[{-path (path)}]/[text]",
            "Paths are relative to your file root; / is the root itself.",
            task!(fs_cd),
        ),
    ];
    all.extend(super::filecopy::commands());
    all
}

/// Where a caller's paths resolve: the shared root, the account and its working directory.
pub(super) struct Place {
    pub(super) root: Arc<FileRoot>,
    pub(super) user: UserId,
    pub(super) cwd: String,
}

impl Place {
    /// The caller's place; refused when file commands are off or nobody is logged in.
    pub(super) fn of(ctx: &CmdCtx) -> Result<Self, Fail> {
        let view = ctx.view();
        let (Some(root), Some(user)) = (ctx.host.files.clone(), view.user.as_ref()) else {
            return refused("File commands are not available.");
        };
        Ok(Self {
            root,
            user: user.user_id,
            cwd: view.cwd.clone(),
        })
    }

    /// A client path as a path inside the base directory.
    pub(super) fn path(&self, path: &str) -> Result<PathBuf, Fail> {
        files::resolve(&self.cwd, path).map_err(|e| Fail::Refused(refuse!("'{path}': {e}.")))
    }

    /// The required path argument `key`.
    pub(super) fn path_arg(&self, args: &Args, key: &str) -> Result<PathBuf, Fail> {
        self.path(arg(args, key)?)
    }

    /// Runs `f` on the blocking pool with the caller's base directory.
    pub(super) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Dir) -> io::Result<T> + Send + 'static,
    ) -> io::Result<T> {
        let (root, user) = (Arc::clone(&self.root), self.user);
        files::blocking(move || f(&root.base(&user)?)).await
    }
}

/// `path` as the client sees it: `/` plus the path inside its base.
pub(super) fn shown(path: &Path) -> String {
    format!("/{}", path.display())
}

/// A refusal for an IO error on `path`, with the OS's reason.
pub(super) fn io_refusal(what: &str, path: &Path, e: &io::Error) -> Fail {
    let path = shown(path);
    Fail::Refused(match e.kind() {
        io::ErrorKind::NotFound => refuse!("'{path}' does not exist."),
        _ => refuse!("Cannot {what} '{path}': {e}."),
    })
}

/// Asks a y/n question; true only for `y` (TEXT or GEN_FILE).
pub(super) async fn confirm(ctx: &mut CmdCtx, question: &str) -> bool {
    ctx.text(question).await;
    matches!(ctx.next_input().await, Some(f) if transfer::answer(&f) == "y")
}

/// The part file an upload writes, renamed over its target when every byte arrived.
struct PartSink {
    file: std::fs::File,
    dir: Dir,
    part: PathBuf,
    target: PathBuf,
    _lock: UploadLock,
}

impl transfer::Sink for PartSink {
    fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        io::Write::write_all(&mut self.file, chunk)
    }
    fn complete(self) -> io::Result<()> {
        self.file.sync_all()?;
        self.dir.rename(&self.part, &self.dir, &self.target)
    }
    fn abandon(self) {
        // The part file stays for a resume; what arrived is on disk.
        let _ = self.file.sync_data();
    }
}

/// What an upload finds before it starts.
struct Existing {
    target: bool,
    part_len: Option<u64>,
}

async fn fs_upload(ctx: &mut CmdCtx, input: Input) -> CmdResult {
    let args = transfer::args(&input.frame)?;
    let place = Place::of(ctx)?;
    let Some(remote) = args.remote_file.as_deref().filter(|r| !r.is_empty()) else {
        return refused("-remote_file is required.");
    };
    let Some(len) = args.len else {
        return refused("-len is required.");
    };
    let target = place.path(remote)?;
    let Some(part) = files::part_name(&target) else {
        return refused("-remote_file must name a file.");
    };
    let offset = args.offset;
    let size = offset.saturating_add(len);
    let root = Arc::clone(&place.root);
    let (max_upload, keep_free) = {
        let settings = ctx.host.settings();
        (
            settings.files.max_upload_bytes,
            settings.files.keep_free_bytes,
        )
    };
    if max_upload > 0 && size > max_upload {
        return refused(format!(
            "The upload would make a file of {size} bytes; the largest allowed is {max_upload}."
        ));
    }
    let free = {
        let root = Arc::clone(&root);
        files::blocking(move || root.free_bytes()).await
    };
    match free {
        Ok(free) if free < len.saturating_add(keep_free) => {
            return refused(format!(
                "Not enough free space: the upload needs {len} bytes and {keep_free} must stay free; {free} are free."
            ));
        }
        Ok(_) => {}
        Err(e) => return Err(io_refusal("check the free space for", &target, &e)),
    }
    let key = root.upload_key(&place.user, &target);
    let Some(lock) = root.lock_upload(key, UPLOAD_WAIT).await else {
        return refused(format!(
            "'{}' is being uploaded by another transfer; try again later.",
            shown(&target)
        ));
    };
    let (t, p) = (target.clone(), part.clone());
    let existing = place
        .run(move |dir| {
            let target = match dir.symlink_metadata(&t) {
                Ok(m) if m.is_dir() => {
                    return Err(io::Error::new(
                        io::ErrorKind::IsADirectory,
                        "it is a directory",
                    ));
                }
                Ok(_) => true,
                Err(e) if e.kind() == io::ErrorKind::NotFound => false,
                Err(e) => return Err(e),
            };
            let part_len = match dir.symlink_metadata(&p) {
                Ok(m) if m.is_file() => Some(m.len()),
                Ok(_) => None,
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => return Err(e),
            };
            Ok(Existing { target, part_len })
        })
        .await
        .map_err(|e| io_refusal("write", &target, &e))?;
    if offset > 0 && existing.part_len.is_none_or(|n| n < offset) {
        return refused(format!(
            "Nothing to resume at offset {offset}: the partial upload of '{}' has {} bytes.",
            shown(&target),
            existing.part_len.unwrap_or(0)
        ));
    }
    transfer::open(ctx, true, len, args.single_step).await;
    if existing.target && !args.force {
        let question = format!(
            "'{}' already exists, do you want to overwrite? (y/n): ",
            shown(&target)
        );
        if !confirm(ctx, &question).await {
            ctx.text(&format!("'{}' was not overwritten.\n", shown(&target)))
                .await;
            return Ok(());
        }
    }
    let (t, p) = (target.clone(), part);
    let sink = place
        .run(move |dir| {
            let mut opts = OpenOptions::new();
            opts.write(true).create(true);
            let mut file = dir.open_with(&p, &opts)?.into_std();
            // Keep the first `offset` bytes (a resume) and cut anything after them.
            file.set_len(offset)?;
            io::Seek::seek(&mut file, io::SeekFrom::Start(offset))?;
            Ok(PartSink {
                file,
                dir: dir.try_clone()?,
                part: p,
                target: t,
                _lock: lock,
            })
        })
        .await
        .map_err(|e| io_refusal("write", &target, &e))?;
    if transfer::receive_file(ctx, sink, len, args.single_step).await? == Ended::Stopped {
        transfer::stopped(ctx, "The upload").await;
    }
    Ok(())
}

async fn fs_download(ctx: &mut CmdCtx, input: Input) -> CmdResult {
    let args = transfer::args(&input.frame)?;
    let place = Place::of(ctx)?;
    let Some(remote) = args.remote_file.as_deref().filter(|r| !r.is_empty()) else {
        return refused("-remote_file is required.");
    };
    let path = place.path(remote)?;
    let p = path.clone();
    let (file, size) = place
        .run(move |dir| {
            let file = dir.open(&p)?.into_std();
            let meta = file.metadata()?;
            if !meta.is_file() {
                return Err(io::Error::other("it is not a regular file"));
            }
            Ok((file, meta.len()))
        })
        .await
        .map_err(|e| io_refusal("read", &path, &e))?;
    let offset = args.offset;
    if offset > size {
        return refused(format!(
            "-offset {offset} is past the end of '{}' ({size} bytes).",
            shown(&path)
        ));
    }
    let rest = size - offset;
    let len = match args.len {
        None | Some(0) => rest,
        Some(n) => n.min(rest),
    };
    transfer::open(ctx, false, len, args.single_step).await;
    if transfer::send_file(ctx, file, offset, len, args.single_step).await? == Ended::Stopped {
        transfer::stopped(ctx, "The download").await;
    }
    Ok(())
}

async fn fs_delete(ctx: &mut CmdCtx, input: Input) -> CmdResult {
    let place = Place::of(ctx)?;
    let path = place.path_arg(&input.args, "-path")?;
    if path.as_os_str().is_empty() {
        return refused("The file root itself cannot be deleted.");
    }
    let p = path.clone();
    place
        .run(move |dir| dir.symlink_metadata(&p).map(|_| ()))
        .await
        .map_err(|e| io_refusal("delete", &path, &e))?;
    if !input.args.has("-force") {
        let question = format!("Delete '{}'? (y/n): ", shown(&path));
        if !confirm(ctx, &question).await {
            ctx.text("Nothing was deleted.\n").await;
            return Ok(());
        }
    }
    let p = path.clone();
    place
        .run(move |dir| {
            if dir.symlink_metadata(&p)?.is_dir() {
                dir.remove_dir_all(&p)
            } else {
                dir.remove_file(&p)
            }
        })
        .await
        .map_err(|e| io_refusal("delete", &path, &e))?;
    ctx.text(&format!("Deleted '{}'.\n", shown(&path))).await;
    Ok(())
}

async fn fs_mkpath(ctx: &mut CmdCtx, input: Input) -> CmdResult {
    let place = Place::of(ctx)?;
    let path = place.path_arg(&input.args, "-path")?;
    let p = path.clone();
    place
        .run(move |dir| dir.create_dir_all(&p))
        .await
        .map_err(|e| io_refusal("create", &path, &e))?;
    ctx.text(&format!("Created '{}'.\n", shown(&path))).await;
    Ok(())
}

/// Facts about `path` (not following a final symlink), named `name`.
pub(super) fn info_of(dir: &Dir, path: &Path, name: String) -> io::Result<FileInfo> {
    let meta = dir.symlink_metadata(path)?;
    let ms = |t: io::Result<cap_std::time::SystemTime>| {
        t.ok()
            .and_then(|t| t.into_std().duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    };
    let mut flags = 0;
    let (target_meta, symlink_target) = if meta.is_symlink() {
        flags |= FileInfo::IS_SYMLINK;
        let target = dir.read_link_contents(path)?.display().to_string();
        (dir.metadata(path).ok(), target)
    } else {
        (Some(meta.clone()), String::new())
    };
    if let Some(m) = &target_meta {
        flags |= FileInfo::EXISTS;
        if m.is_file() {
            flags |= FileInfo::IS_FILE;
        }
        if m.is_dir() {
            flags |= FileInfo::IS_DIR;
        }
        // The owner's bits: the files under the root belong to the host's own account.
        let mode = m.mode();
        for (bit, flag) in [
            (0o400, FileInfo::READABLE),
            (0o200, FileInfo::WRITABLE),
            (0o100, FileInfo::EXECUTABLE),
        ] {
            if mode & bit != 0 {
                flags |= flag;
            }
        }
    }
    let m = target_meta.as_ref().unwrap_or(&meta);
    Ok(FileInfo {
        flags,
        created_ms: ms(m.created()),
        modified_ms: ms(m.modified()),
        size: m.len(),
        name,
        symlink_target,
    })
}

/// The entries of directory `path`: directories first, then by name.
fn entries(dir: &Dir, path: &Path, no_hidden: bool) -> io::Result<Vec<FileInfo>> {
    let sub = if path.as_os_str().is_empty() {
        dir.try_clone()?
    } else {
        dir.open_dir(path)?
    };
    let mut out = Vec::new();
    for entry in sub.entries()? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if no_hidden && name.starts_with('.') {
            continue;
        }
        out.push(info_of(&sub, Path::new(&name.clone()), name)?);
    }
    out.sort_by(|a, b| {
        let dir =
            |i: &FileInfo| i.flags & FileInfo::IS_DIR == 0 || i.flags & FileInfo::IS_SYMLINK != 0;
        (dir(a), &a.name).cmp(&(dir(b), &b.name))
    });
    Ok(out)
}

/// One entry as text: directories (not links to them) end with `/`.
fn entry_line(info: &FileInfo, prefix: &str) -> String {
    let is_dir = info.flags & FileInfo::IS_DIR != 0 && info.flags & FileInfo::IS_SYMLINK == 0;
    let slash = if is_dir { "/" } else { "" };
    let link = if info.symlink_target.is_empty() {
        String::new()
    } else {
        format!(" -> {}", info.symlink_target)
    };
    format!("{prefix}{}{slash}{link}\n", info.name)
}

async fn send_info(ctx: &CmdCtx, info: &FileInfo) {
    let mut out = BytesMut::new();
    info.write(&mut out);
    ctx.send(TypeId::FILE_INFO, out.freeze()).await;
}

async fn fs_list(ctx: &mut CmdCtx, input: Input) -> CmdResult {
    let place = Place::of(ctx)?;
    let path = place.path(input.args.value("-path").unwrap_or(""))?;
    let (p, no_hidden) = (path.clone(), input.args.has("-no_hidden"));
    let list = place
        .run(move |dir| entries(dir, &p, no_hidden))
        .await
        .map_err(|e| io_refusal("list", &path, &e))?;
    if input.args.has("-info_frame") {
        for info in &list {
            send_info(ctx, info).await;
        }
    } else {
        let text: String = list.iter().map(|i| entry_line(i, "")).collect();
        ctx.big_text(&text).await;
    }
    Ok(())
}

/// Directories a tree listing enters at most, so one command cannot walk a huge tree.
const TREE_MAX_DIRS: usize = 10_000;

async fn fs_tree(ctx: &mut CmdCtx, input: Input) -> CmdResult {
    let place = Place::of(ctx)?;
    let path = place.path(input.args.value("-path").unwrap_or(""))?;
    let (no_hidden, frames) = (input.args.has("-no_hidden"), input.args.has("-info_frame"));
    let mut queue = std::collections::VecDeque::from([PathBuf::new()]);
    let mut seen = 0;
    while let Some(rel) = queue.pop_front() {
        seen += 1;
        if seen > TREE_MAX_DIRS {
            return refused(format!(
                "The tree has more than {TREE_MAX_DIRS} directories."
            ));
        }
        let p = path.join(&rel);
        let q = p.clone();
        let list = place
            .run(move |dir| entries(dir, &q, no_hidden))
            .await
            .map_err(|e| io_refusal("list", &p, &e))?;
        let prefix = if rel.as_os_str().is_empty() {
            String::new()
        } else {
            format!("{}/", rel.display())
        };
        let mut text = String::new();
        for info in list {
            let is_dir =
                info.flags & FileInfo::IS_DIR != 0 && info.flags & FileInfo::IS_SYMLINK == 0;
            if is_dir {
                queue.push_back(rel.join(&info.name));
            }
            if frames {
                let named = FileInfo {
                    name: format!("{prefix}{}", info.name),
                    ..info
                };
                send_info(ctx, &named).await;
            } else {
                text.push_str(&entry_line(&info, &prefix));
            }
        }
        if !text.is_empty() {
            ctx.big_text(&text).await;
        }
    }
    Ok(())
}

async fn fs_info(ctx: &mut CmdCtx, input: Input) -> CmdResult {
    let place = Place::of(ctx)?;
    let path = place.path_arg(&input.args, "-path")?;
    let p = path.clone();
    let name = path
        .file_name()
        .map_or_else(|| "/".to_owned(), |n| n.to_string_lossy().into_owned());
    let info = place
        .run(move |dir| info_of(dir, &p, name))
        .await
        .map_err(|e| io_refusal("read", &path, &e))?;
    if input.args.has("-info_frame") {
        send_info(ctx, &info).await;
        return Ok(());
    }
    let yes = |flag| if info.flags & flag != 0 { "yes" } else { "no" };
    let text = format!(
        "path:        {}\nis_file:     {}\nis_dir:      {}\nis_symlnk:   {}\ncan_read:    {}\n\
         can_write:   {}\ncan_execute: {}\nexists:      {}\nbytes:       {}\ncreated_ms:  {}\n\
         modified_ms: {}\n{}",
        shown(&path),
        yes(FileInfo::IS_FILE),
        yes(FileInfo::IS_DIR),
        yes(FileInfo::IS_SYMLINK),
        yes(FileInfo::READABLE),
        yes(FileInfo::WRITABLE),
        yes(FileInfo::EXECUTABLE),
        yes(FileInfo::EXISTS),
        info.size,
        info.created_ms,
        info.modified_ms,
        if info.symlink_target.is_empty() {
            String::new()
        } else {
            format!("target:      {}\n", info.symlink_target)
        }
    );
    ctx.text(&text).await;
    Ok(())
}

async fn fs_cd(ctx: &mut CmdCtx, input: Input) -> CmdResult {
    let place = Place::of(ctx)?;
    let Some(arg) = input.args.value("-path") else {
        ctx.text(&format!("{}\n", shown(Path::new(&place.cwd))))
            .await;
        return Ok(());
    };
    // `/` (or `-path /x`) starts from the root rather than the working directory.
    let path = match arg.strip_prefix('/') {
        Some(rest) => files::resolve("", rest),
        None => files::resolve(&place.cwd, arg),
    }
    .map_err(|e| Fail::Refused(refuse!("'{arg}': {e}.")))?;
    let p = path.clone();
    let is_dir = place
        .run(move |dir| {
            if p.as_os_str().is_empty() {
                return Ok(true);
            }
            dir.metadata(&p).map(|m| m.is_dir())
        })
        .await
        .map_err(|e| io_refusal("enter", &path, &e))?;
    if !is_dir {
        return refused(format!("'{}' is not a directory.", shown(&path)));
    }
    let cwd = path.to_string_lossy().into_owned();
    ctx.request(SessionRequest::SetDir(cwd)).await;
    ctx.text(&format!("{}\n", shown(&path))).await;
    Ok(())
}
