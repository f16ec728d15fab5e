//! The module kits of `mrci-modrun/kits` in a live host: the Python, shell and C example
//! modules are added with `add_mod`, listed to every session by their class, and run;
//! the shared-memory commands read the session's user, rank and sub-channels at the seed
//! offsets without mrci-shm (plain `mmap`, `dd`/`od`, or C), in run mode, which gets the
//! session's real `-mem_ses` key.

use std::path::{Path, PathBuf};

use anyhow::{Context, ensure};
use mrci_proto::{BranchId, TypeId};
use mrci_tests::{TestClient, TestHost};

const PW: &str = "Kit-tests1!";

fn kit(file: &str) -> anyhow::Result<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../mrci-modrun/kits")
        .join(file);
    path.canonicalize()
        .with_context(|| format!("{}", path.display()))
}

async fn admin(host: &TestHost) -> anyhow::Result<TestClient> {
    host.add_user("admin", PW, "admin").await?;
    let mut client = TestClient::connect(host.addr).await?;
    client.login("admin", PW).await?;
    Ok(client)
}

/// Adds a module (listed by every session); `commands` counts its public commands.
async fn add_mod(client: &mut TestClient, path: &Path, commands: usize) -> anyhow::Result<()> {
    let out = client
        .ok("add_mod", &format!("-mod_path {}", path.display()))
        .await?;
    let want = format!("added ({commands} public commands)");
    ensure!(out.contains(&want), "{out}");
    Ok(())
}

/// Opens two sub-channels of a new channel `kits`, the second read-only for its owner, and
/// returns the channel id.
async fn open_two_sub_channels(host: &TestHost, client: &mut TestClient) -> anyhow::Result<u64> {
    client.ok("add_ch", "-ch_name kits").await?;
    client
        .ok("add_sub_ch", "-ch_name kits -sub_name main")
        .await?;
    client
        .ok("add_sub_ch", "-ch_name kits -sub_name news")
        .await?;
    client
        .ok("add_rdonly_flag", "-ch_name kits -sub_id 1 -level 1")
        .await?;
    client
        .ok("open_sub_ch", "-ch_name kits -sub_name main")
        .await?;
    client
        .ok("open_sub_ch", "-ch_name kits -sub_name news")
        .await?;
    Ok(host.ctx.store.channel("kits").await?.context("channel")?.id)
}

#[tokio::test]
async fn the_python_greeting_module_is_listed_and_runs() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    let mut admin = admin(&host).await?;
    let mut guest = TestClient::connect(host.addr).await?;
    add_mod(&mut admin, &kit("python/greet.py")?, 1).await?;

    // Public before login, exempt after: both sessions get it.
    guest.until_command("py_greet", true).await?;
    admin.until_command("py_greet", true).await?;
    let out = guest.ok("py_greet", "bob").await?;
    assert_eq!(out, "Hello, bob! (greeting 1 of this process)\n");

    // Without a name it asks, and the task stays open (no IDLE) until the answer.
    let id = admin.id("py_greet")?;
    admin.text_to("py_greet", 0, "").await?;
    assert_eq!(
        admin.expect(id, TypeId::TEXT).await?,
        "What is your name?\n"
    );
    admin.text_to("py_greet", 0, "Zoë").await?;
    let out = admin.collect(id, BranchId(0)).await?;
    assert_eq!(
        out,
        [(
            TypeId::TEXT,
            "Hello, Zoë! (greeting 1 of this process)\n".into()
        )]
    );
    // The same process again: its counter goes on.
    let out = admin.ok("py_greet", "-name \"Ann\"").await?;
    assert_eq!(out, "Hello, Ann! (greeting 2 of this process)\n");
    host.shutdown().await
}

#[tokio::test]
async fn the_python_shm_module_reads_user_rank_and_sub_channels() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    let mut admin = admin(&host).await?;
    add_mod(&mut admin, &kit("python/session_info.py")?, 0).await?;
    admin.until_command("py_session", true).await?;

    let out = admin.ok("py_session", "").await?;
    assert!(out.starts_with("user name: admin\n"), "{out}");
    assert!(out.contains("host rank: 1\n"), "{out}");
    assert!(out.contains("open sub-channels: -\n"), "{out}");

    let ch = open_two_sub_channels(&host, &mut admin).await?;
    let out = admin.ok("py_session", "").await?;
    let want = format!(
        "host rank: 1\nchannels: {ch}\nopen sub-channels: {ch}:0 {ch}:1\nwritable sub-channels: {ch}:0\n"
    );
    assert!(out.ends_with(&want), "{out}\nwanted the end {want}");
    host.shutdown().await
}

#[tokio::test]
async fn the_shell_module_is_listed_and_runs() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    let mut admin = admin(&host).await?;
    let mut guest = TestClient::connect(host.addr).await?;
    add_mod(&mut admin, &kit("shell/hello.sh")?, 1).await?;
    guest.until_command("sh_hello", true).await?;
    admin.until_command("sh_whoami", true).await?;

    let out = guest.ok("sh_hello", "sam").await?;
    assert!(
        out.starts_with("Hello, sam, from a shell module (pid "),
        "{out}"
    );
    let again = guest.ok("sh_hello", "").await?;
    assert!(again.starts_with("Hello, stranger,"), "{again}");
    let pid = |s: &str| s.rsplit(' ').next().map(str::to_owned);
    assert_eq!(pid(&out), pid(&again), "one process per pair, reused");

    // dd and od at the seed offsets 272 and 384, between two reads of the sequence.
    let out = admin.ok("sh_whoami", "").await?;
    assert_eq!(out, "user admin rank 1");
    assert!(!guest.commands.contains_key("sh_whoami"));
    host.shutdown().await
}

#[tokio::test]
async fn the_c_module_compiles_lists_and_reads_shared_memory() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let exe = dir.path().join("c_hello");
    let built = tokio::process::Command::new("cc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&exe)
        .arg(kit("c/hello.c")?)
        .output()
        .await?;
    ensure!(
        built.status.success(),
        "cc failed: {}",
        String::from_utf8_lossy(&built.stderr)
    );

    let host = TestHost::start().await?;
    let mut admin = admin(&host).await?;
    let mut guest = TestClient::connect(host.addr).await?;
    add_mod(&mut admin, &exe, 1).await?;
    guest.until_command("c_hello", true).await?;
    admin.until_command("c_whoami", true).await?;
    assert_eq!(guest.ok("c_hello", "Ünï").await?, "Hello, Ünï, from C.");

    let ch = open_two_sub_channels(&host, &mut admin).await?;
    let out = admin.ok("c_whoami", "").await?;
    assert_eq!(out, format!("user admin rank 1 open {ch}:0 {ch}:1"));
    host.shutdown().await
}
