//! Modules in a live host: add_mod / rm_mod change every session's command set, module
//! commands run through the supervisor with the session's shared memory, ranks apply to
//! them, a crash is reported, modules named in the config load at start, and a module
//! command transfers files with a real client (GEN_FILE both ways, paced by the module).

use std::path::PathBuf;

use mrci_cli::client::{NoEvents, TransferOptions, TransferOutcome};
use mrci_proto::{BranchId, Frame, TypeId, async_id::AsyncId};
use mrci_tests::{TestClient, TestHost};

const PW: &str = "Module-tests1!";

fn fake_module() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_fake_module"))
}

async fn logged_in(host: &TestHost, name: &str, group: &str) -> anyhow::Result<TestClient> {
    host.add_user(name, PW, group).await?;
    let mut client = TestClient::connect(host.addr).await?;
    client.login(name, PW).await?;
    Ok(client)
}

#[tokio::test]
async fn add_run_rank_crash_and_remove_a_module_with_sessions_connected() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    let mut admin = logged_in(&host, "admin", "admin").await?;
    let mut mia = logged_in(&host, "mia", "users").await?;
    let mut guest = TestClient::connect(host.addr).await?;
    let path = fake_module().display().to_string();

    let out = admin
        .ok("add_mod", &format!("-mod_path {path} -listing once"))
        .await?;
    assert!(out.contains("added with 15 commands"), "{out}");
    assert!(
        admin
            .refused("add_mod", &format!("-mod_path {path}"))
            .await?
            .contains("already loaded")
    );
    // Every session hears of the new commands, each by its own class and rank.
    admin.until_command("count", true).await?;
    guest.until_command("whoami", true).await?;
    mia.until_command("exempt_only", true).await?;
    assert!(
        !mia.commands.contains_key("count"),
        "ranked module commands default to rank 1"
    );
    assert!(!guest.commands.contains_key("count"));

    // The module reads the session's user name and rank from shared memory.
    let who = admin.ok("whoami", "").await?;
    assert!(who.ends_with("user admin rank 1"), "{who}");
    let echo = admin.ok("echo", "hello").await?;
    assert!(echo.ends_with(":hello"), "{echo}");
    // One process per pair, reused after IDLE.
    let first = admin.ok("count", "").await?;
    let second = admin.ok("count", "").await?;
    let pid = |s: &str| s.rsplit(' ').next().map(str::to_owned);
    assert!(
        first.starts_with("count 1") && second.starts_with("count 2"),
        "{first} {second}"
    );
    assert_eq!(pid(&first), pid(&second));

    // A crash mid-command: the client gets the text so far, an ERR and an IDLE, and the
    // session reports the crash.
    let crash = admin.id("crash")?;
    admin.send(Frame::text(crash, BranchId(0), "")).await?;
    let frames = admin
        .until(|f| f.cmd_id == AsyncId::EXE_CRASH.cmd_id())
        .await?;
    assert!(
        frames
            .iter()
            .any(|f| f.cmd_id == crash && f.text_payload() == "dying"),
        "{frames:?}"
    );
    let out = admin.ok("echo", "still here").await?;
    assert!(out.ends_with(":still here"), "{out}");

    // Ranks apply to module commands like internal ones.
    admin
        .ok(
            "add_ranked_cmd",
            &format!("-command whoami -rank 2 -mod {path}"),
        )
        .await?;
    mia.until_command("whoami", true).await?;
    let who = mia.ok("whoami", "").await?;
    assert!(who.ends_with("user mia rank 2"), "{who}");

    // The session's shared memory follows its channel state.
    admin.ok("add_ch", "-ch_name shmtest").await?;
    admin
        .ok("add_sub_ch", "-ch_name shmtest -sub_name main")
        .await?;
    admin
        .ok("add_sub_ch", "-ch_name shmtest -sub_name read")
        .await?;
    admin
        .ok("add_rdonly_flag", "-ch_name shmtest -sub_id 1 -level 1")
        .await?;
    admin
        .ok("open_sub_ch", "-ch_name shmtest -sub_name main")
        .await?;
    admin
        .ok("open_sub_ch", "-ch_name shmtest -sub_name read")
        .await?;
    admin.ok("ch_owner_override", "-state 1").await?;
    let ch = host
        .ctx
        .store
        .channel("shmtest")
        .await?
        .expect("channel")
        .id;
    let shm = admin.ok("shm", "").await?;
    let expected = format!(
        "channels [{ch}] open [\"{ch}:0\", \"{ch}:1\"] writable [\"{ch}:0\"] active true override true peers 0"
    );
    assert!(shm.ends_with(&expected), "{shm}\nwanted {expected}");
    admin
        .ok("close_sub_ch", "-ch_name shmtest -sub_name main")
        .await?;
    let shm = admin.ok("shm", "").await?;
    assert!(
        shm.contains(&format!("open [\"{ch}:1\"] writable []")),
        "{shm}"
    );

    let listed = admin.ok("ls_mods", "").await?;
    assert!(listed.contains(&path), "{listed}");
    admin.ok("rm_mod", &format!("-mod_path {path}")).await?;
    mia.until_command("whoami", false).await?;
    guest.until_command("echo", false).await?;
    admin.until_command("count", false).await?;
    assert!(
        admin
            .refused("rm_mod", &format!("-mod_path {path}"))
            .await?
            .contains("not a module")
    );
    host.shutdown().await
}

#[tokio::test]
async fn bad_module_paths_are_refused_and_config_modules_load_at_start() -> anyhow::Result<()> {
    let path = fake_module();
    let host = TestHost::start_with(|c| c.modules.paths = vec![path.clone().into()]).await?;
    let mut guest = TestClient::connect(host.addr).await?;
    assert!(
        guest.commands.contains_key("echo"),
        "public module command before login"
    );
    let out = guest.run("echo", "hi").await?;
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, TypeId::TEXT);

    let mut admin = logged_in(&host, "root2", "admin").await?;
    let not_exe = std::env::temp_dir().join("mrci-not-a-module.txt");
    std::fs::write(&not_exe, "plain text")?;
    let err = admin
        .refused("add_mod", &format!("-mod_path {}", not_exe.display()))
        .await?;
    assert!(err.contains("not an executable"), "{err}");
    assert!(
        admin
            .refused("add_mod", "-mod_path \"bad|path\"")
            .await?
            .starts_with("err: ")
    );
    assert!(
        admin
            .refused("add_mod", "-mod_path /no/such/module")
            .await?
            .contains("No such file")
    );
    host.shutdown().await
}

/// The fake module under another file name (it picks its behaviour from it).
fn fake_module_as(dir: &std::path::Path, role: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join(role);
    std::os::unix::fs::symlink(fake_module(), &path)?;
    Ok(path)
}

#[tokio::test]
async fn every_session_lists_modules_with_its_own_memory_at_creation_login_and_logout()
-> anyhow::Result<()> {
    let host = TestHost::start().await?;
    let mut admin = logged_in(&host, "admin", "admin").await?;
    host.add_user("mia", PW, "users").await?;
    let path = fake_module().display().to_string();
    let out = admin.ok("add_mod", &format!("-mod_path {path}")).await?;
    assert!(out.contains("every session lists it"), "{out}");
    let mods = admin.ok("ls_mods", "").await?;
    assert!(mods.contains("session"), "{mods}");

    // The module read the logged-in user from the session's segment while listing.
    admin.until_command("mine_admin", true).await?;
    let mut mia = TestClient::connect(host.addr).await?;
    assert!(mia.commands.contains_key("echo") && mia.commands.contains_key("whoami"));
    assert!(!mia.commands.keys().any(|n| n.starts_with("mine_")));
    mia.login("mia", PW).await?;
    mia.until_command("exempt_only", true).await?;
    mia.until_command("mine_mia", true).await?;
    assert!(!mia.commands.contains_key("mine_admin"));
    assert!(
        !admin.commands.contains_key("mine_mia"),
        "another session's list is its own"
    );

    // Logout lists the public commands again, with the user gone from the segment.
    mia.ok("logout", "").await?;
    mia.until_command("mine_mia", false).await?;
    mia.until_command("exempt_only", false).await?;
    assert!(mia.commands.contains_key("echo"));
    host.shutdown().await
}

#[tokio::test]
async fn a_module_that_hangs_while_listing_is_skipped_for_that_login() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let hung = fake_module_as(dir.path(), "hang_at_login")?;
    let host = TestHost::start_with(|c| {
        c.modules.listing_timeout_ms = 300;
        c.modules.paths = vec![fake_module().into(), hung.into()];
    })
    .await?;
    host.add_user("mia", PW, "users").await?;
    let mut mia = TestClient::connect(host.addr).await?;
    // Both list in public mode: the second `echo` gets a suffix.
    mia.until_command("echo_1", true).await?;
    // The hung module sleeps for an hour: the login cannot be waiting for it.
    let started = std::time::Instant::now();
    mia.login("mia", PW).await?;
    mia.until_command("mine_mia", true).await?;
    assert!(started.elapsed() < mrci_tests::PATIENCE);
    assert!(mia.commands.contains_key("exempt_only"));
    assert!(
        !mia.commands.contains_key("exempt_only_1"),
        "the hung module's list is left out"
    );
    // The session still works, and so does a second login.
    assert!(mia.ok("my_info", "").await?.contains("mia"));
    host.shutdown().await
}

#[tokio::test]
async fn a_module_listed_once_serves_every_session_from_the_host_wide_list() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    let mut admin = logged_in(&host, "admin", "admin").await?;
    let path = fake_module().display().to_string();
    let out = admin
        .ok("add_mod", &format!("-mod_path {path} -listing once"))
        .await?;
    assert!(out.contains("added with 15 commands, listed once"), "{out}");
    let err = admin
        .refused("add_mod", &format!("-mod_path {path} -listing often"))
        .await?;
    assert!(err.contains("-listing is session or once"), "{err}");
    admin.until_command("exempt_only", true).await?;
    admin.until_command("count", true).await?;
    // Listed with no session memory: no per-user command.
    assert!(!admin.commands.keys().any(|n| n.starts_with("mine_")));
    assert!(admin.ok("ls_mods", "").await?.contains("once"));
    // Sessions created afterwards use the same list without a listing of their own.
    let mut mia = logged_in(&host, "mia", "users").await?;
    mia.until_command("exempt_only", true).await?;
    assert!(!mia.commands.keys().any(|n| n.starts_with("mine_")));
    host.shutdown().await
}

#[tokio::test]
async fn a_module_change_notice_makes_the_users_sessions_reread_the_store() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    let mut admin = logged_in(&host, "admin", "admin").await?;
    let mut mia = logged_in(&host, "mia", "users").await?;
    let path = fake_module().display().to_string();
    admin.ok("add_mod", &format!("-mod_path {path}")).await?;
    admin.until_command("hint", true).await?;
    // The store changes behind the sessions' back; only the module's notice tells them.
    let user = host.ctx.store.find_user("mia").await?.expect("mia exists");
    host.ctx.store.set_display_name(&user.id, "Mia M.").await?;
    assert_eq!(admin.ok("hint", "mia").await?, "hinted");
    let info = mia.next_my_info().await?;
    assert_eq!(info.peer.display_name, "Mia M.", "re-read from the store");
    host.shutdown().await
}

#[tokio::test]
async fn a_module_command_uploads_and_downloads_with_a_real_client() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    let mut admin = logged_in(&host, "admin", "admin").await?;
    let path = fake_module().display().to_string();
    admin
        .ok("add_mod", &format!("-mod_path {path} -listing once"))
        .await?;
    admin.until_command("file_in", true).await?;
    admin.until_command("file_out", true).await?;
    let dir = tempfile::tempdir()?;
    // Over the session's 4 MiB budget for module input: the upload must be paced, not refused.
    let data: Vec<u8> = (0..(9 << 20) + 123).map(|i| (i % 247) as u8).collect();
    let src = dir.path().join("src.bin");
    std::fs::write(&src, &data)?;
    let stored = dir.path().join("stored.bin");
    let stored_s = stored.display().to_string();

    let up = TransferOptions {
        command: Some("file_in".into()),
        ..TransferOptions::default()
    };
    let outcome = admin
        .client()
        .upload(&src, &stored_s, &up, &mut NoEvents)
        .await?;
    assert_eq!(
        outcome,
        TransferOutcome::Complete {
            bytes: data.len() as u64
        }
    );
    assert!(
        std::fs::read(&stored)? == data,
        "the upload arrived changed"
    );

    // A resumed download (the local file has the first 5000 bytes), single-step.
    let back = dir.path().join("back.bin");
    std::fs::write(&back, &data[..5000])?;
    let down = TransferOptions {
        command: Some("file_out".into()),
        offset: 5000,
        single_step: true,
        ..TransferOptions::default()
    };
    let outcome = admin
        .client()
        .download(&stored_s, &back, &down, &mut NoEvents)
        .await?;
    assert_eq!(
        outcome,
        TransferOutcome::Complete {
            bytes: data.len() as u64 - 5000
        }
    );
    assert!(
        std::fs::read(&back)? == data,
        "the download arrived changed"
    );

    // A missing file is the module's ERR, and the client reports it.
    let missing = dir.path().join("missing.bin").display().to_string();
    let res = admin
        .client()
        .download(&missing, &dir.path().join("m.bin"), &down, &mut NoEvents)
        .await;
    assert!(res.is_err(), "{res:?}");
    Ok(())
}
