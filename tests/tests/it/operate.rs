//! Operating the host (issue 15): bans that end live sessions, the automatic ban, runtime
//! settings that take effect at once and survive a restart, `restart_host`, `close_host`,
//! a reload, and `ls_dbg`.

use std::net::IpAddr;

use mrci_proto::{BranchId, Frame, TypeId, async_id::AsyncId};
use mrci_tests::{TestClient, TestHost};

const PW: &str = "Oper4te-tests!";

async fn admin(host: &TestHost) -> anyhow::Result<TestClient> {
    host.add_user("root_admin", PW, "admin").await?;
    let mut admin = TestClient::connect(host.addr).await?;
    admin.login("root_admin", PW).await?;
    Ok(admin)
}

fn ip(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// Receives until the host's system message (TEXT or ERR) that contains `needle`.
async fn sys_msg(client: &mut TestClient, needle: &str) -> anyhow::Result<()> {
    client
        .until(|f| {
            f.cmd_id == AsyncId::SYS_MSG.cmd_id()
                && matches!(f.type_id, TypeId::TEXT | TypeId::ERR)
                && f.text_payload().contains(needle)
        })
        .await?;
    Ok(())
}

/// Receives until the host closes the connection; false if it never does.
async fn ends(client: &mut TestClient) -> bool {
    for _ in 0..1000 {
        if client.closed().await {
            return true;
        }
    }
    false
}

/// Receives up to the IDLE that ends the current invocation of `name`.
async fn idle(client: &mut TestClient, name: &str) -> anyhow::Result<()> {
    let id = client.id(name)?;
    client
        .until(|f| f.cmd_id == id && f.type_id == TypeId::IDLE)
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_ban_ends_live_sessions_and_refuses_reconnects_until_lifted() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    let mut admin = admin(&host).await?;
    let mut victim = TestClient::connect_from(ip(9), host.addr).await?;
    let mut bystander = TestClient::connect_from(ip(10), host.addr).await?;

    let err = admin.refused("add_ban", "-ip 127.0.0.0/8").await?;
    assert!(err.contains("your own address"), "{err}");
    let err = admin.refused("add_ban", "-ip 127.0.0.300").await?;
    assert!(err.contains("not an IP address"), "{err}");

    let out = admin
        .ok("add_ban", "-ip ::ffff:127.0.0.9 -reason \"test ban\"")
        .await?;
    assert_eq!(out, "Banned 127.0.0.9.\n");
    sys_msg(&mut victim, "banned").await?;
    assert!(ends(&mut victim).await, "the banned session ends");
    assert!(
        TestClient::connect_from(ip(9), host.addr).await.is_err(),
        "a banned address cannot reconnect"
    );
    assert!(bystander.ok("my_info", "").await?.contains("127.0.0.10"));

    let list = admin.ok("ls_bans", "").await?;
    assert!(
        list.contains("127.0.0.9") && list.contains("never") && list.contains("test ban"),
        "{list}"
    );
    // A range covers every address in it; an expiring ban ends by itself.
    admin
        .ok("add_ban", "-ip 127.0.1.7/24 -expire_secs 60")
        .await?;
    assert!(
        TestClient::connect_from(IpAddr::from([127, 0, 1, 99]), host.addr)
            .await
            .is_err()
    );
    host.ctx.clock.advance(61);
    TestClient::connect_from(IpAddr::from([127, 0, 1, 99]), host.addr).await?;

    assert_eq!(
        admin.ok("rm_ban", "-ip 127.0.0.9").await?,
        "Ban of 127.0.0.9 lifted.\n"
    );
    TestClient::connect_from(ip(9), host.addr).await?;
    // ls_bans -delete lifts what it lists, after a question.
    let id = admin.id("ls_bans")?;
    admin
        .send(Frame::text(id, BranchId(0), "-ip_address 127.0.1 -delete"))
        .await?;
    assert!(
        admin
            .expect(id, TypeId::TEXT)
            .await?
            .contains("Delete 1 bans?")
    );
    admin.send(Frame::text(id, BranchId(0), "y")).await?;
    assert_eq!(admin.expect(id, TypeId::TEXT).await?, "Lifted 1 bans.\n");
    idle(&mut admin, "ls_bans").await?;
    assert_eq!(admin.ok("ls_bans", "").await?, "No matching rows.\n");
    host.shutdown().await
}

#[tokio::test]
async fn failed_logins_from_one_address_ban_it() -> anyhow::Result<()> {
    let host = TestHost::start_with(|c| {
        c.security.auto_ban_failed_logins = 3;
    })
    .await?;
    host.add_user("someone", PW, "users").await?;
    let mut guesser = TestClient::connect_from(ip(20), host.addr).await?;
    let id = guesser.id("auth")?;
    guesser
        .send(Frame::text(id, BranchId(0), "-user someone"))
        .await?;
    for attempt in 1..=3 {
        guesser.expect(id, TypeId::PRIV_TEXT).await?;
        guesser
            .send(Frame::text(id, BranchId(0), &format!("wrong-{attempt}")))
            .await?;
        let err = guesser.expect(id, TypeId::ERR).await?;
        if attempt < 3 {
            assert_eq!(err, "err: Access denied.", "attempt {attempt}");
        } else {
            assert!(err.contains("your address is banned"), "{err}");
        }
    }
    assert!(ends(&mut guesser).await);
    assert!(TestClient::connect_from(ip(20), host.addr).await.is_err());
    let bans = host.ctx.store.bans().await?;
    assert_eq!(bans.len(), 1);
    assert_eq!(
        (bans[0].ip_address.as_str(), bans[0].reason.as_str()),
        ("127.0.0.20", "3 failed logins")
    );
    assert_eq!(bans[0].expires_at, Some(1_800_000_000 + 86_400));
    // Another address is not affected.
    let mut other = TestClient::connect_from(ip(21), host.addr).await?;
    other.login("someone", PW).await?;
    host.shutdown().await
}

#[tokio::test]
async fn host_config_changes_take_effect_at_once_and_survive_a_restart() -> anyhow::Result<()> {
    let mut host = TestHost::start().await?;
    let mut admin = admin(&host).await?;
    assert_eq!(
        admin.ok("host_config", "-get limits.max_sessions").await?,
        "limits.max_sessions = 100\n"
    );
    for (args, needle) in [
        ("-set limits.max_sessions=0", "must be at least 1"),
        ("-set limits.max_sessions=lots", "not a valid value"),
        ("-set listen=1.2.3.4:5", "cannot change while the host runs"),
        ("-set limits.max_sessions", "key=value"),
        ("-get no.such_key", "no setting named"),
    ] {
        let err = admin.refused("host_config", args).await?;
        assert!(err.contains(needle), "{args}: {err}");
    }
    assert_eq!(
        admin
            .ok("host_config", "-set limits.max_sessions=1")
            .await?,
        "limits.max_sessions = 1 (was 100)\n"
    );
    assert!(
        TestClient::connect(host.addr).await.is_err(),
        "the logged-in admin fills the one place"
    );
    let all = admin.ok("host_config", "-all").await?;
    assert!(all.contains("limits.max_sessions = 1\n"), "{all}");
    assert!(
        all.contains("listen = \"127.0.0.1:0\"  (restart to change)"),
        "{all}"
    );

    // The interactive menu: option 03 is max sessions.
    let id = admin.id("host_config")?;
    admin.send(Frame::text(id, BranchId(0), "")).await?;
    let menu = admin.expect(id, TypeId::BIG_TEXT).await?;
    assert!(
        menu.contains("03  limits.max_sessions = 1  (changed)"),
        "{menu}"
    );
    admin.expect(id, TypeId::TEXT).await?;
    admin.send(Frame::text(id, BranchId(0), "99")).await?;
    assert!(admin.expect(id, TypeId::ERR).await?.contains("from 01 to"));
    admin.expect(id, TypeId::TEXT).await?;
    admin.send(Frame::text(id, BranchId(0), "04")).await?;
    assert!(
        admin
            .expect(id, TypeId::TEXT)
            .await?
            .contains("accounts.public_registration")
    );
    admin.send(Frame::text(id, BranchId(0), "1")).await?;
    assert_eq!(
        admin.expect(id, TypeId::TEXT).await?,
        "accounts.public_registration = true (was false)\n"
    );
    admin.expect(id, TypeId::BIG_TEXT).await?;
    admin.expect(id, TypeId::TEXT).await?;
    admin.send(Frame::text(id, BranchId(0), "00")).await?;
    assert_eq!(admin.expect(id, TypeId::TEXT).await?, "Done.\n");

    // Restart: the stored settings win over the configuration file again.
    let id = admin.id("restart_host")?;
    admin.send(Frame::text(id, BranchId(0), "")).await?;
    admin.expect(id, TypeId::TEXT).await?;
    admin.send(Frame::text(id, BranchId(0), "RESTART")).await?;
    assert_eq!(
        admin.expect(id, TypeId::TEXT).await?,
        "Restarting the host.\n"
    );
    sys_msg(&mut admin, "restarting").await?;
    assert!(ends(&mut admin).await);
    let ctx = host.restarted().await?;
    assert_eq!(ctx.settings().limits.max_sessions, 1);
    assert!(ctx.settings().accounts.public_registration);
    let mut admin = TestClient::connect(host.addr).await?;
    admin.login("root_admin", PW).await?;
    assert_eq!(
        admin.ok("host_config", "-get limits.max_sessions").await?,
        "limits.max_sessions = 1\n"
    );
    assert!(TestClient::connect(host.addr).await.is_err());
    assert_eq!(
        admin
            .ok("host_config", "-unset limits.max_sessions")
            .await?,
        "limits.max_sessions = 100 (the configuration file's value)\n"
    );
    TestClient::connect(host.addr).await?;
    host.shutdown().await
}

#[tokio::test]
async fn restart_tells_every_session_ends_commands_and_keeps_what_was_written() -> anyhow::Result<()>
{
    // Commands waiting for input are ended at once.
    let mut host = TestHost::start_with(|c| c.limits.shutdown_grace_secs = 0).await?;
    let mut admin = admin(&host).await?;
    admin.ok("add_ban", "-ip 203.0.113.5").await?;
    // A command waiting for input in another session.
    let mut waiting = TestClient::connect_from(ip(30), host.addr).await?;
    let auth = waiting.id("auth")?;
    waiting
        .send(Frame::text(auth, BranchId(2), "-user root_admin"))
        .await?;
    waiting.expect(auth, TypeId::PRIV_TEXT).await.ok();
    let id = admin.id("restart_host")?;
    admin.send(Frame::text(id, BranchId(0), "")).await?;
    admin.expect(id, TypeId::TEXT).await?;
    admin.send(Frame::text(id, BranchId(0), "restart")).await?;
    assert!(
        admin
            .expect(id, TypeId::TEXT)
            .await?
            .contains("Type RESTART")
    );
    admin.send(Frame::text(id, BranchId(0), "RESTART")).await?;
    let frames = waiting
        .until(|f| f.cmd_id == auth && f.type_id == TypeId::IDLE)
        .await?;
    assert_eq!(frames.last().map(|f| f.branch_id), Some(BranchId(2)));
    assert!(
        frames
            .iter()
            .any(|f| f.cmd_id == AsyncId::SYS_MSG.cmd_id()
                && f.text_payload().contains("restarting")),
        "told first: {frames:?}"
    );
    assert!(ends(&mut waiting).await);
    assert!(ends(&mut admin).await);
    let ctx = host.restarted().await?;
    let bans = ctx.store.bans().await?;
    assert_eq!(bans.len(), 1, "written before the restart: {bans:?}");
    let mut again = TestClient::connect(host.addr).await?;
    again.login("root_admin", PW).await?;
    host.shutdown().await
}

#[tokio::test]
async fn close_host_asks_for_the_word_then_stops() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    let mut admin = admin(&host).await?;
    let id = admin.id("close_host")?;
    admin.send(Frame::text(id, BranchId(0), "")).await?;
    assert!(admin.expect(id, TypeId::TEXT).await?.contains("Type CLOSE"));
    admin.send(Frame::text(id, BranchId(0), "")).await?;
    assert_eq!(admin.expect(id, TypeId::TEXT).await?, "Cancelled.\n");
    idle(&mut admin, "close_host").await?;
    admin.send(Frame::text(id, BranchId(0), "")).await?;
    admin.expect(id, TypeId::TEXT).await?;
    admin.send(Frame::text(id, BranchId(0), "CLOSE")).await?;
    assert_eq!(admin.expect(id, TypeId::TEXT).await?, "Closing the host.\n");
    sys_msg(&mut admin, "closing").await?;
    assert!(ends(&mut admin).await);
    let addr = host.addr;
    host.closed().await?;
    assert!(TestClient::connect(addr).await.is_err(), "nothing listens");
    Ok(())
}

#[tokio::test]
async fn a_reload_reads_the_file_but_runtime_changes_still_win() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    let mut admin = admin(&host).await?;
    admin
        .ok("host_config", "-set channels.max_sub_channels=7")
        .await?;
    host.edit_config(|c| {
        c.channels.max_sub_channels = 9;
        c.limits.max_sessions = 42;
    });
    host.reload().await?;
    assert_eq!(
        admin.ok("host_config", "-get limits.max_sessions").await?,
        "limits.max_sessions = 42\n"
    );
    assert_eq!(
        admin
            .ok("host_config", "-get channels.max_sub_channels")
            .await?,
        "channels.max_sub_channels = 7\n"
    );
    host.shutdown().await
}

#[tokio::test]
async fn ls_dbg_shows_a_provoked_warning_and_deletes_it() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    let mut admin = admin(&host).await?;
    let id = admin.id("my_info")?;
    admin
        .send(Frame::new(
            TypeId::HOST_CERT,
            id,
            BranchId(0),
            bytes::Bytes::new(),
        ))
        .await?;
    admin.expect(id, TypeId::ERR).await?;
    let list = admin.ok("ls_dbg", "-log_entry host-only").await?;
    assert!(
        list.contains("WARN") && list.contains("client sent a host-only frame type"),
        "{list}"
    );
    let id = admin.id("ls_dbg")?;
    admin
        .send(Frame::text(id, BranchId(0), "-log_entry host-only -delete"))
        .await?;
    assert!(admin.expect(id, TypeId::TEXT).await?.starts_with("Delete "));
    admin.send(Frame::text(id, BranchId(0), "y")).await?;
    assert!(
        admin
            .expect(id, TypeId::TEXT)
            .await?
            .starts_with("Deleted ")
    );
    idle(&mut admin, "ls_dbg").await?;
    assert_eq!(
        admin.ok("ls_dbg", "-log_entry host-only").await?,
        "No matching rows.\n"
    );
    host.shutdown().await
}

#[tokio::test]
async fn the_initial_group_and_the_front_door_limits_change_at_run_time() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    let mut admin = admin(&host).await?;

    // The group new accounts join.
    let err = admin
        .refused("host_config", "-set accounts.initial_group=nobody")
        .await?;
    assert!(err.contains("no group named \"nobody\""), "{err}");
    admin.ok("add_group", "-name staff -rank 5").await?;
    assert_eq!(
        admin
            .ok("host_config", "-set accounts.initial_group=staff")
            .await?,
        "accounts.initial_group = \"staff\" (was \"\")\n"
    );
    let id = admin.id("add_acct")?;
    admin
        .send(Frame::text(
            id,
            BranchId(0),
            "-name newbie -email newbie@example.org",
        ))
        .await?;
    admin.expect(id, TypeId::PRIV_TEXT).await?;
    admin
        .send(Frame::text(id, BranchId(0), "Fresh-Pass1!"))
        .await?;
    let out = admin.collect(id, BranchId(0)).await?;
    assert!(
        out.iter()
            .any(|(_, s)| s.contains("Account newbie created in group staff")),
        "{out:?}"
    );
    let err = admin.refused("rm_group", "-name staff").await?;
    assert!(err.contains("accounts.initial_group"), "{err}");
    admin
        .ok("rename_group", "-name staff -new_name crew")
        .await?;
    assert_eq!(
        admin
            .ok("host_config", "-get accounts.initial_group")
            .await?,
        "accounts.initial_group = \"crew\"\n",
        "a renamed initial group stays the initial group"
    );

    // The largest frame before login: 2,000 bytes are answered under the default (64 KiB)
    // and close a new connection once the limit is 1,024.
    let long = format!("-user {}", "x".repeat(2000));
    let mut before = TestClient::connect(host.addr).await?;
    before.refused("auth", &long).await?;
    admin
        .ok("host_config", "-set limits.max_payload_before_login=1024")
        .await?;
    let mut after = TestClient::connect(host.addr).await?;
    let id = after.id("auth")?;
    after.send(Frame::text(id, BranchId(0), &long)).await?;
    assert!(
        ends(&mut after).await,
        "the new limit closes the connection"
    );
    host.shutdown().await
}
