//! File transfer and the file commands end to end: GEN_FILE both ways through the client
//! library (64 MiB with equal SHA-256, resume after a cut connection, single-step, cancel),
//! the overwrite question, the limits, concurrent uploads, and confinement to the root
//! (traversal, symlinks out, a directory swapped for a symlink during `fs_copy`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use bytes::Bytes;
use mrci_cli::client::{
    Error as ClientError, NoEvents, TransferEvents, TransferOptions, TransferOutcome,
};
use mrci_proto::{BranchId, Frame, TypeId, payload::FileInfo, payload::GenFileArgs, text};
use mrci_tests::{PATIENCE, TestClient, TestHost};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

const PW: &str = "Files-tests1!";
const MIB: usize = 1 << 20;

/// A host with a file root, an admin logged in, and the paths the test needs.
struct Setup {
    host: TestHost,
    client: TestClient,
    root: PathBuf,
    /// A directory outside the root (next to it), for escape attempts.
    outside: PathBuf,
    local: tempfile::TempDir,
    _files: tempfile::TempDir,
}

async fn setup(tweak: impl FnOnce(&mut mrci_host::Config)) -> anyhow::Result<Setup> {
    let files = tempfile::tempdir()?;
    let root = files.path().join("root");
    let outside = files.path().join("outside");
    std::fs::create_dir_all(&outside)?;
    std::fs::write(outside.join("secret.txt"), b"secret")?;
    let root2 = root.clone();
    let host = TestHost::start_with(move |c| {
        c.files.root = Some(root2);
        c.files.keep_free_bytes = 0;
        c.files.max_upload_bytes = 0;
        tweak(c);
    })
    .await?;
    host.add_user("root_admin", PW, "admin").await?;
    let mut client = TestClient::connect(host.addr).await?;
    client.login("root_admin", PW).await?;
    client.until_command("fs_upload", true).await?;
    Ok(Setup {
        host,
        client,
        root,
        outside,
        local: tempfile::tempdir()?,
        _files: files,
    })
}

/// `n` bytes that differ from position to position (xorshift), seeded.
fn data(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(n);
    out
}

fn sha(path: &Path) -> anyhow::Result<Vec<u8>> {
    let mut h = Sha256::new();
    let mut f = std::fs::File::open(path).with_context(|| path.display().to_string())?;
    std::io::copy(&mut f, &mut h)?;
    Ok(h.finalize().to_vec())
}

/// Records progress and triggers `token` once `at` bytes are done.
#[derive(Default)]
struct Watch {
    len: u64,
    done: u64,
    at: Option<u64>,
    token: CancellationToken,
    answer: bool,
    asked: Vec<String>,
}

impl TransferEvents for Watch {
    fn started(&mut self, len: u64) {
        self.len = len;
    }
    fn progress(&mut self, done: u64) {
        self.done = done;
        if self.at.is_some_and(|at| done >= at) {
            self.token.cancel();
        }
    }
    fn confirm(&mut self, question: &str) -> bool {
        self.asked.push(question.to_owned());
        self.answer
    }
}

fn opts() -> TransferOptions {
    TransferOptions::default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_64_mib_file_goes_up_and_down_unchanged() -> anyhow::Result<()> {
    let mut s = setup(|_| {}).await?;
    let src = s.local.path().join("big.bin");
    std::fs::write(&src, data(64 * MIB, 7))?;
    let mut w = Watch::default();
    let out = s
        .client
        .client()
        .upload(&src, "big.bin", &opts(), &mut w)
        .await?;
    assert_eq!(
        out,
        TransferOutcome::Complete {
            bytes: 64 * MIB as u64
        }
    );
    assert_eq!((w.len, w.done), (64 * MIB as u64, 64 * MIB as u64));
    assert_eq!(sha(&s.root.join("big.bin"))?, sha(&src)?);
    assert!(
        !s.root.join(".big.bin.part").exists(),
        "the part file is renamed"
    );

    let back = s.local.path().join("back.bin");
    let out = s
        .client
        .client()
        .download("big.bin", &back, &opts(), &mut NoEvents)
        .await?;
    assert_eq!(
        out,
        TransferOutcome::Complete {
            bytes: 64 * MIB as u64
        }
    );
    assert_eq!(sha(&back)?, sha(&src)?);
    s.host.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_cut_halfway_resumes_from_the_part_file() -> anyhow::Result<()> {
    let mut s = setup(|_| {}).await?;
    let src = s.local.path().join("r.bin");
    std::fs::write(&src, data(8 * MIB, 3))?;
    let (addr, half) = (s.host.addr, 4 * MIB as u64);
    // Drop the whole connection once half has been sent.
    let mut w = Watch {
        at: Some(half),
        ..Watch::default()
    };
    let token = w.token.clone();
    let mut small = opts();
    small.chunk = 256 * 1024;
    tokio::select! {
        biased;
        () = token.cancelled() => {}
        res = s.client.client().upload(&src, "r.bin", &small, &mut w) => panic!("finished before the cut: {res:?}"),
    }
    drop(s.client);
    assert!(
        !s.root.join("r.bin").exists(),
        "no partial file under the real name"
    );

    let mut c = TestClient::connect(addr).await?;
    c.login("root_admin", PW).await?;
    c.until_command("fs_info", true).await?;
    let have = part_size(&mut c, ".r.bin.part").await?;
    // The cut comes a few chunks after half (the upload only yields when the socket is full).
    assert!(have < 8 * MIB as u64, "{have}");
    let mut resume = opts();
    resume.offset = have;
    let out = c
        .client()
        .upload(&src, "r.bin", &resume, &mut NoEvents)
        .await?;
    assert_eq!(
        out,
        TransferOutcome::Complete {
            bytes: 8 * MIB as u64 - have
        }
    );
    assert_eq!(sha(&s.root.join("r.bin"))?, sha(&src)?);
    assert!(!s.root.join(".r.bin.part").exists());
    s.host.shutdown().await
}

/// The size the host reports for `path` (FILE_INFO), 0 if it does not exist.
async fn part_size(c: &mut TestClient, path: &str) -> anyhow::Result<u64> {
    Ok(last_info(c, path).await.map_or(0, |i| i.size))
}

async fn last_info(c: &mut TestClient, path: &str) -> anyhow::Result<FileInfo> {
    let out = c
        .client()
        .run("fs_info", &format!("-path {path} -info_frame"))
        .await?;
    let frame = out
        .frames
        .iter()
        .find(|f| f.type_id == TypeId::FILE_INFO)
        .with_context(|| format!("no FILE_INFO: {:?}", out.errors()))?;
    Ok(FileInfo::parse(&frame.payload)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_cut_halfway_resumes_from_the_local_file() -> anyhow::Result<()> {
    let mut s = setup(|_| {}).await?;
    let content = data(8 * MIB, 5);
    std::fs::write(s.root.join("d.bin"), &content)?;
    let dst = s.local.path().join("d.bin");
    let mut w = Watch {
        at: Some(4 * MIB as u64),
        ..Watch::default()
    };
    let token = w.token.clone();
    let o = opts();
    tokio::select! {
        biased;
        () = token.cancelled() => {}
        res = s.client.client().download("d.bin", &dst, &o, &mut w) => panic!("finished before the cut: {res:?}"),
    }
    drop(s.client);
    let have = std::fs::metadata(&dst)?.len();
    assert!(have < content.len() as u64);
    let mut c = TestClient::connect(s.host.addr).await?;
    c.login("root_admin", PW).await?;
    c.until_command("fs_download", true).await?;
    let mut resume = opts();
    resume.offset = have;
    let out = c
        .client()
        .download("d.bin", &dst, &resume, &mut NoEvents)
        .await?;
    assert_eq!(
        out,
        TransferOutcome::Complete {
            bytes: content.len() as u64 - have
        }
    );
    assert_eq!(std::fs::read(&dst)?, content);
    s.host.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_step_acknowledges_every_chunk_both_ways() -> anyhow::Result<()> {
    let mut s = setup(|_| {}).await?;
    let src = s.local.path().join("s.bin");
    std::fs::write(&src, data(3 * MIB + 17, 9))?;
    let mut o = opts();
    o.single_step = true;
    o.chunk = 512 * 1024;
    let out = s
        .client
        .client()
        .upload(&src, "s.bin", &o, &mut NoEvents)
        .await?;
    assert_eq!(
        out,
        TransferOutcome::Complete {
            bytes: 3 * MIB as u64 + 17
        }
    );
    assert_eq!(sha(&s.root.join("s.bin"))?, sha(&src)?);

    // By hand: after each data frame the host waits for our empty GEN_FILE.
    let id = s.client.id("fs_download")?;
    let args = GenFileArgs {
        remote_file: Some("s.bin".into()),
        single_step: true,
        ..GenFileArgs::default()
    };
    let gen_file = |p: Bytes| Frame::new(TypeId::GEN_FILE, id, BranchId(0), p);
    s.client
        .send(gen_file(Bytes::from(args.to_bytes())))
        .await?;
    let reply = s.client.expect(id, TypeId::GEN_FILE).await;
    let reply = GenFileArgs::parse(&text::encode(&reply?))?;
    assert!(reply.from_host && reply.single_step);
    assert_eq!(reply.len, Some(3 * MIB as u64 + 17));
    s.client.send(gen_file(Bytes::new())).await?;
    let mut got = 0u64;
    let mut chunks = 0;
    while got < 3 * MIB as u64 + 17 {
        let f = s.client.recv().await?;
        if f.cmd_id != id || f.type_id != TypeId::GEN_FILE {
            continue;
        }
        got += f.payload.len() as u64;
        chunks += 1;
        // Nothing more arrives until we acknowledge: the next frames are progress or IDLE.
        if got < 3 * MIB as u64 + 17 {
            s.client.send(gen_file(Bytes::new())).await?;
        }
    }
    assert_eq!(chunks, 4, "1 MiB chunks");
    s.client
        .until(|f| f.cmd_id == id && f.type_id == TypeId::IDLE)
        .await?;
    s.host.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overwrite_question_is_answered_yes_and_no() -> anyhow::Result<()> {
    let mut s = setup(|_| {}).await?;
    std::fs::write(s.root.join("o.txt"), b"old")?;
    let src = s.local.path().join("o.txt");
    std::fs::write(&src, b"new content")?;
    let mut no = Watch::default();
    let out = s
        .client
        .client()
        .upload(&src, "o.txt", &opts(), &mut no)
        .await?;
    assert_eq!(out, TransferOutcome::Declined);
    assert!(no.asked[0].contains("already exists"), "{:?}", no.asked);
    assert_eq!(std::fs::read(s.root.join("o.txt"))?, b"old");
    let mut yes = Watch {
        answer: true,
        ..Watch::default()
    };
    let out = s
        .client
        .client()
        .upload(&src, "o.txt", &opts(), &mut yes)
        .await?;
    assert_eq!(out, TransferOutcome::Complete { bytes: 11 });
    assert_eq!(std::fs::read(s.root.join("o.txt"))?, b"new content");
    // -force asks nothing.
    let mut forced = opts();
    forced.force = true;
    let mut w = Watch::default();
    s.client
        .client()
        .upload(&src, "o.txt", &forced, &mut w)
        .await?;
    assert!(w.asked.is_empty());
    s.host.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_traversal_is_refused_and_nothing_is_written_outside() -> anyhow::Result<()> {
    let mut s = setup(|_| {}).await?;
    std::os::unix::fs::symlink(&s.outside, s.root.join("out"))?;
    std::os::unix::fs::symlink(s.outside.join("secret.txt"), s.root.join("secret_link"))?;
    std::os::unix::fs::symlink("../outside", s.root.join("rel_out"))?;
    let src = s.local.path().join("x.txt");
    std::fs::write(&src, b"payload")?;
    let outside = s.outside.display().to_string();
    for remote in [
        "../x.txt".to_owned(),
        "a/../../x.txt".into(),
        format!("{outside}/x.txt"),
        "out/x.txt".into(),
        "rel_out/x.txt".into(),
    ] {
        let mut f = opts();
        f.force = true;
        let res = s
            .client
            .client()
            .upload(&src, &remote, &f, &mut NoEvents)
            .await;
        assert!(
            matches!(res, Err(ClientError::Transfer(_))),
            "{remote}: {res:?}"
        );
        let dst = s.local.path().join("got");
        let res = s
            .client
            .client()
            .download(&remote, &dst, &opts(), &mut NoEvents)
            .await;
        assert!(
            matches!(res, Err(ClientError::Transfer(_))),
            "{remote}: {res:?}"
        );
    }
    for link in ["secret_link", "out/secret.txt", "rel_out/secret.txt"] {
        let dst = s.local.path().join("got");
        let res = s
            .client
            .client()
            .download(link, &dst, &opts(), &mut NoEvents)
            .await;
        assert!(
            matches!(res, Err(ClientError::Transfer(_))),
            "{link}: {res:?}"
        );
    }
    for (cmd, args) in [
        ("fs_list", "-path out"),
        ("fs_list", "-path .."),
        ("fs_mkpath", "-path out/newdir"),
        ("fs_mkpath", "-path ../newdir"),
        ("fs_delete", "-path out/secret.txt -force"),
        ("fs_copy", "-src secret_link -dst copied.txt"),
        ("fs_copy", "-src out -dst copied_dir"),
        ("fs_move", "-src out/secret.txt -dst stolen.txt -force"),
        ("fs_cd", "-path out"),
        ("fs_info", "-path /etc/passwd"),
    ] {
        let out = s.client.client().run(cmd, args).await?;
        let copied_ok = cmd == "fs_copy" && out.is_ok();
        assert!(!out.is_ok() || copied_ok, "{cmd} {args}: {}", out.text());
    }
    // A copied link is recreated as a link (never the outside file's bytes).
    for name in ["copied.txt", "copied_dir"] {
        if let Ok(m) = std::fs::symlink_metadata(s.root.join(name)) {
            assert!(!m.is_file(), "{name} holds the outside file's bytes");
        }
    }
    let mut names: Vec<_> = std::fs::read_dir(&s.outside)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()?;
    names.sort();
    assert_eq!(
        names,
        ["secret.txt"],
        "nothing was written outside the root"
    );
    assert_eq!(std::fs::read(s.outside.join("secret.txt"))?, b"secret");
    s.host.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_swapped_for_a_symlink_during_fs_copy_is_not_followed() -> anyhow::Result<()> {
    let mut s = setup(|_| {}).await?;
    let (src, dst) = (s.root.join("src"), s.root.join("dst"));
    std::fs::create_dir_all(src.join("sub"))?;
    std::fs::write(src.join("a.txt"), b"a")?;
    std::fs::write(src.join("sub/inner.txt"), b"inner")?;
    std::fs::create_dir_all(&dst)?;
    std::fs::write(dst.join("a.txt"), b"old a")?;
    let id = s.client.id("fs_copy")?;
    s.client
        .send(Frame::text(id, BranchId(0), "-src src -dst dst"))
        .await?;
    // The copy waits at the question about dst/a.txt: swap src/sub for a link out.
    let frames = s
        .client
        .until(|f| f.cmd_id == id && f.type_id == TypeId::TEXT && f.text_payload().contains("(y/n"))
        .await?;
    assert!(!frames.is_empty());
    std::fs::remove_dir_all(src.join("sub"))?;
    std::os::unix::fs::symlink(&s.outside, src.join("sub"))?;
    s.client.send(Frame::text(id, BranchId(0), "y")).await?;
    s.client
        .until(|f| f.cmd_id == id && f.type_id == TypeId::IDLE)
        .await?;
    assert_eq!(std::fs::read(dst.join("a.txt"))?, b"a");
    // Whatever was copied before the swap, nothing from outside arrived as a file.
    assert!(
        !dst.join("sub/secret.txt").is_file()
            || std::fs::symlink_metadata(dst.join("sub"))?.is_symlink()
    );
    if let Ok(m) = std::fs::symlink_metadata(dst.join("sub/secret.txt")) {
        assert!(!m.is_file(), "the outside file was copied in");
    }
    let n = std::fs::read_dir(&s.outside)?.count();
    assert_eq!(n, 1, "nothing written outside");
    s.host.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_uploads_to_one_path_are_serialised() -> anyhow::Result<()> {
    let mut s = setup(|_| {}).await?;
    // Upload A by hand: it holds the path after its first chunk.
    let id = s.client.id("fs_upload")?;
    let gen_file = |p: Bytes| Frame::new(TypeId::GEN_FILE, id, BranchId(0), p);
    let a = data(2 * MIB, 11);
    let args = GenFileArgs {
        remote_file: Some("same.bin".into()),
        len: Some(a.len() as u64),
        ..GenFileArgs::default()
    };
    s.client
        .send(gen_file(Bytes::from(args.to_bytes())))
        .await?;
    s.client
        .until(|f| f.cmd_id == id && f.type_id == TypeId::GEN_FILE && f.payload.is_empty())
        .await?;
    s.client
        .send(gen_file(Bytes::copy_from_slice(&a[..MIB])))
        .await?;
    s.client
        .until(|f| f.cmd_id == id && f.type_id == TypeId::TEXT)
        .await?;

    // B starts meanwhile on another connection.
    let b = data(3 * MIB, 12);
    let src_b = s.local.path().join("b.bin");
    std::fs::write(&src_b, &b)?;
    let mut cb = TestClient::connect(s.host.addr).await?;
    cb.login("root_admin", PW).await?;
    cb.until_command("fs_upload", true).await?;
    let b_task = tokio::spawn(async move {
        let mut f = opts();
        f.force = true;
        cb.client()
            .upload(&src_b, "same.bin", &f, &mut NoEvents)
            .await
    });
    // A finishes; B then runs to the end. The file is one or the other, never a mix.
    s.client
        .send(gen_file(Bytes::copy_from_slice(&a[MIB..])))
        .await?;
    s.client
        .until(|f| f.cmd_id == id && f.type_id == TypeId::IDLE)
        .await?;
    let out = tokio::time::timeout(PATIENCE, b_task).await???;
    assert_eq!(
        out,
        TransferOutcome::Complete {
            bytes: b.len() as u64
        }
    );
    assert_eq!(std::fs::read(s.root.join("same.bin"))?, b);
    s.host.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_over_the_limits_are_refused_before_a_byte_is_written() -> anyhow::Result<()> {
    let mut s = setup(|c| c.files.max_upload_bytes = MIB as u64).await?;
    let src = s.local.path().join("big.bin");
    std::fs::write(&src, data(MIB + 1, 1))?;
    let res = s
        .client
        .client()
        .upload(&src, "big.bin", &opts(), &mut NoEvents)
        .await;
    let Err(ClientError::Transfer(why)) = res else {
        panic!("{res:?}")
    };
    assert!(why.contains("largest allowed"), "{why}");
    assert!(!s.root.join("big.bin").exists() && !s.root.join(".big.bin.part").exists());
    s.host.shutdown().await?;

    let mut s = setup(|c| c.files.keep_free_bytes = u64::MAX / 2).await?;
    let src = s.local.path().join("small.bin");
    std::fs::write(&src, b"tiny")?;
    let res = s
        .client
        .client()
        .upload(&src, "small.bin", &opts(), &mut NoEvents)
        .await;
    let Err(ClientError::Transfer(why)) = res else {
        panic!("{res:?}")
    };
    assert!(why.contains("free space"), "{why}");
    assert!(!s.root.join(".small.bin.part").exists());
    s.host.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_transfer_leaves_no_complete_looking_file() -> anyhow::Result<()> {
    let mut s = setup(|_| {}).await?;
    let src = s.local.path().join("c.bin");
    std::fs::write(&src, data(8 * MIB, 4))?;
    let mut w = Watch {
        at: Some(2 * MIB as u64),
        ..Watch::default()
    };
    let mut o = opts();
    o.cancel = w.token.clone();
    o.chunk = 256 * 1024;
    let out = s.client.client().upload(&src, "c.bin", &o, &mut w).await?;
    assert!(matches!(out, TransferOutcome::Cancelled { .. }), "{out:?}");
    assert!(!s.root.join("c.bin").exists());
    // The connection goes on; the partial upload is there to resume.
    let have = last_info(&mut s.client, ".c.bin.part").await?.size;
    assert!(have < 8 * MIB as u64);
    // Chunks in flight at the cancel start nothing: the next upload on the pair just works.
    let mut resume = opts();
    resume.offset = have;
    let out = s
        .client
        .client()
        .upload(&src, "c.bin", &resume, &mut NoEvents)
        .await?;
    assert_eq!(
        out,
        TransferOutcome::Complete {
            bytes: 8 * MIB as u64 - have
        }
    );
    assert_eq!(sha(&s.root.join("c.bin"))?, sha(&src)?);

    std::fs::write(s.root.join("d.bin"), data(8 * MIB, 6))?;
    let dst = s.local.path().join("d.bin");
    let mut w = Watch {
        at: Some(MIB as u64),
        ..Watch::default()
    };
    let mut o = opts();
    o.cancel = w.token.clone();
    let out = s
        .client
        .client()
        .download("d.bin", &dst, &o, &mut w)
        .await?;
    assert!(matches!(out, TransferOutcome::Cancelled { .. }), "{out:?}");
    assert!(s.client.ok("fs_list", "").await?.contains("d.bin"));
    s.host.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fs_list_info_frames_decode_and_the_commands_work() -> anyhow::Result<()> {
    let mut s = setup(|_| {}).await?;
    std::fs::create_dir_all(s.root.join("dir/sub"))?;
    std::fs::write(s.root.join("file.txt"), b"12345")?;
    std::fs::write(s.root.join(".hidden"), b"")?;
    std::os::unix::fs::symlink("file.txt", s.root.join("link"))?;
    let out = s.client.client().run("fs_list", "-info_frame").await?;
    let infos: Vec<FileInfo> = out
        .frames
        .iter()
        .filter(|f| f.type_id == TypeId::FILE_INFO)
        .map(|f| FileInfo::parse(&f.payload))
        .collect::<Result<_, _>>()?;
    let names: Vec<&str> = infos.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(
        names,
        ["dir", ".hidden", "file.txt", "link"],
        "directories first"
    );
    let file = infos
        .iter()
        .find(|i| i.name == "file.txt")
        .context("file.txt")?;
    assert_eq!(file.size, 5);
    assert_eq!(
        file.flags & (FileInfo::IS_FILE | FileInfo::EXISTS),
        FileInfo::IS_FILE | FileInfo::EXISTS
    );
    let link = infos.iter().find(|i| i.name == "link").context("link")?;
    assert_eq!(link.symlink_target, "file.txt");
    assert!(link.flags & FileInfo::IS_SYMLINK != 0 && link.flags & FileInfo::EXISTS != 0);
    let dir = infos.iter().find(|i| i.name == "dir").context("dir")?;
    assert!(dir.flags & FileInfo::IS_DIR != 0);

    let text = s.client.ok("fs_list", "-no_hidden").await?;
    assert!(
        text.starts_with("dir/\n") && !text.contains(".hidden"),
        "{text}"
    );
    let tree = s.client.ok("fs_tree", "-no_hidden").await?;
    assert!(tree.contains("dir/sub/"), "{tree}");
    s.client.ok("fs_mkpath", "-path a/b/c").await?;
    assert!(s.root.join("a/b/c").is_dir());
    assert_eq!(s.client.ok("fs_cd", "-path a/b").await?, "/a/b\n");
    s.client.ok("fs_mkpath", "-path d").await?;
    assert!(s.root.join("a/b/d").is_dir());
    assert_eq!(s.client.ok("fs_cd", "").await?, "/a/b\n");
    s.client.ok("fs_cd", "-path /").await?;
    s.client
        .ok("fs_copy", "-src file.txt -dst a/copy.txt")
        .await?;
    assert_eq!(std::fs::read(s.root.join("a/copy.txt"))?, b"12345");
    s.client
        .ok("fs_move", "-src a/copy.txt -dst moved.txt")
        .await?;
    assert!(s.root.join("moved.txt").is_file() && !s.root.join("a/copy.txt").exists());
    s.client.ok("fs_delete", "-path a -force").await?;
    assert!(!s.root.join("a").exists());
    let info = s.client.ok("fs_info", "-path file.txt").await?;
    assert!(info.contains("bytes:       5"), "{info}");
    s.host.shutdown().await
}

#[tokio::test]
async fn file_commands_are_not_announced_without_a_root() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    host.add_user("root_admin", PW, "admin").await?;
    let mut c = TestClient::connect(host.addr).await?;
    c.login("root_admin", PW).await?;
    c.until_command("ls_cmds", true).await?;
    let list = c.ok("ls_cmds", "").await?;
    assert!(!list.contains("fs_"), "{list}");
    host.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_user_roots_keep_accounts_apart() -> anyhow::Result<()> {
    let mut s = setup(|c| c.files.per_user = true).await?;
    let src = s.local.path().join("mine.txt");
    std::fs::write(&src, b"mine")?;
    s.client
        .client()
        .upload(&src, "mine.txt", &opts(), &mut NoEvents)
        .await?;
    // The file is in the account's own subdirectory, not in the shared root.
    assert!(!s.root.join("mine.txt").exists());
    let dirs: Vec<_> = std::fs::read_dir(&s.root)?.collect::<Result<_, _>>()?;
    assert_eq!(dirs.len(), 1);
    assert_eq!(std::fs::read(dirs[0].path().join("mine.txt"))?, b"mine");
    s.host.add_user("other_admin", PW, "admin").await?;
    let mut other = TestClient::connect(s.host.addr).await?;
    other.login("other_admin", PW).await?;
    other.until_command("fs_list", true).await?;
    assert!(!other.ok("fs_list", "").await?.contains("mine.txt"));
    s.host.shutdown().await
}
