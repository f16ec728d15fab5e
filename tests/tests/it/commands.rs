//! The first commands over a real session: the public set, login and its command diff,
//! wrong passwords, lockout and its expiry, forced password change, info commands.

use mrci_proto::{BranchId, Frame, TypeId, async_id::AsyncId, payload::MyInfo};
use mrci_tests::{TestClient, TestHost};

const PASSWORD: &str = "Corr3ct-horse";

fn names(client: &TestClient) -> Vec<String> {
    let mut names: Vec<String> = client.commands.keys().cloned().collect();
    names.sort();
    names
}

#[tokio::test]
async fn public_commands_before_login_and_the_diff_after() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    host.add_user("alice", PASSWORD, "users").await?;
    host.add_user("root_admin", PASSWORD, "admin").await?;
    let mut client = TestClient::connect(host.addr).await?;
    assert_eq!(names(&client), ["auth", "cmd_info", "ls_cmds", "my_info"]);
    let auth_id = client.id("auth")?;

    client.login("alice", PASSWORD).await?;
    // A rank-2 user: auth is removed; the exempt commands are added; ranked ones such as
    // host_info need rank 1.
    let after = names(&client);
    for name in [
        "cmd_info",
        "logout",
        "ls_cmds",
        "my_info",
        "set_pw",
        "set_disp_name",
    ] {
        assert!(
            after.iter().any(|n| n == name),
            "{name} missing from {after:?}"
        );
    }
    for name in ["auth", "host_info", "ls_groups", "lock_acct"] {
        assert!(
            !after.iter().any(|n| n == name),
            "{name} should not be in {after:?}"
        );
    }
    // PROTOCOL.md §5.4.3: new commands take the lowest free ids, so auth's id is reused.
    assert!(client.commands.values().any(|id| *id == auth_id));
    let free = mrci_proto::CmdId(client.commands.values().map(|id| id.0).max().unwrap_or(256) + 1);
    client
        .send(Frame::text(free, BranchId(0), "-user alice"))
        .await?;
    let reply = client.recv().await?;
    assert_eq!(
        reply.text_payload(),
        format!("err: No such command id: {}.", free.0)
    );

    let out = client.run("logout", "").await?;
    assert!(out.iter().any(|(_, t)| t.contains("Logged out")));
    assert_eq!(names(&client), ["auth", "cmd_info", "ls_cmds", "my_info"]);

    client.login("root_admin", PASSWORD).await?;
    assert!(client.commands.contains_key("host_info"));
    let info = client.run("host_info", "").await?;
    assert!(info.iter().any(|(_, t)| t.contains("sessions")));
    host.shutdown().await
}

#[tokio::test]
async fn login_sends_my_info_and_my_info_reports_the_account() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    host.add_user("bob_b", PASSWORD, "users").await?;
    let mut client = TestClient::connect(host.addr).await?;
    let id = client.id("auth")?;
    client
        .send(Frame::text(id, BranchId(0), "-user BOB_B"))
        .await?;
    client.expect(id, TypeId::PRIV_TEXT).await?;
    client.send(Frame::text(id, BranchId(0), PASSWORD)).await?;
    let frames = client.until(|f| f.type_id == TypeId::MY_INFO).await?;
    let info = MyInfo::parse(&frames.last().expect("MY_INFO").payload)?;
    assert_eq!(
        frames.last().expect("frame").cmd_id,
        AsyncId::SYS_MSG.cmd_id()
    );
    assert_eq!(info.peer.user_name, "bob_b");
    assert_eq!(info.host_rank, 2);
    assert_eq!(info.peer.session_id, client.header.session_id);
    client.collect(id, BranchId(0)).await?;
    let out = client.run("my_info", "").await?;
    let text = out
        .iter()
        .find(|(t, _)| *t == TypeId::TEXT)
        .map(|(_, s)| s.clone())
        .unwrap_or_default();
    assert!(
        text.contains("bob_b") && text.contains("Host rank:      2"),
        "{text}"
    );
    host.shutdown().await
}

#[tokio::test]
async fn wrong_password_lockout_and_expiry() -> anyhow::Result<()> {
    let host = TestHost::start_with(|c| {
        c.security.max_failed_logins = 3;
        c.security.lockout_secs = 600;
    })
    .await?;
    host.add_user("carol", PASSWORD, "users").await?;
    let mut client = TestClient::connect(host.addr).await?;
    let id = client.id("auth")?;
    client
        .send(Frame::text(id, BranchId(0), "-user carol"))
        .await?;
    client.expect(id, TypeId::PRIV_TEXT).await?;
    for _ in 0..2 {
        client
            .send(Frame::text(id, BranchId(0), "Wrong-pass1"))
            .await?;
        assert_eq!(client.expect(id, TypeId::ERR).await?, "err: Access denied.");
        client.expect(id, TypeId::PRIV_TEXT).await?;
    }
    client
        .send(Frame::text(id, BranchId(0), "Wrong-pass1"))
        .await?;
    let locked = client.expect(id, TypeId::ERR).await?;
    assert!(locked.contains("locked for 600 seconds"), "{locked}");
    client.collect(id, BranchId(0)).await?;

    // Even the right password is refused while locked.
    client
        .send(Frame::text(id, BranchId(0), "-user carol"))
        .await?;
    let msg = client.expect(id, TypeId::ERR).await?;
    assert!(msg.contains("locked"), "{msg}");
    client.collect(id, BranchId(0)).await?;

    host.ctx.clock.advance(601);
    client.login("carol", PASSWORD).await?;
    assert!(client.commands.contains_key("logout"));
    let rows = host.ctx.store.auth_log_count("carol").await?;
    assert_eq!(rows, (3, 1), "three failures and one success were logged");
    host.shutdown().await
}

#[tokio::test]
async fn unknown_user_is_denied_like_a_wrong_password() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    let mut client = TestClient::connect(host.addr).await?;
    let id = client.id("auth")?;
    client
        .send(Frame::text(id, BranchId(0), "-user nobody"))
        .await?;
    client.expect(id, TypeId::PRIV_TEXT).await?;
    client.send(Frame::text(id, BranchId(0), PASSWORD)).await?;
    assert_eq!(client.expect(id, TypeId::ERR).await?, "err: Access denied.");
    client.expect(id, TypeId::PRIV_TEXT).await?;
    // An empty answer cancels.
    client.send(Frame::text(id, BranchId(0), "")).await?;
    let out = client.collect(id, BranchId(0)).await?;
    assert!(out.iter().any(|(_, t)| t.contains("cancelled")));
    host.shutdown().await
}

#[tokio::test]
async fn add_admin_account_must_change_its_password_first() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    let one_time = mrci_host::admin::add_admin(&host.ctx.config, "first_admin").await?;
    let mut client = TestClient::connect(host.addr).await?;
    let id = client.id("auth")?;
    client
        .send(Frame::text(id, BranchId(0), "-user first_admin"))
        .await?;
    client.expect(id, TypeId::PRIV_TEXT).await?;
    client.send(Frame::text(id, BranchId(0), &one_time)).await?;
    let prompt = client.expect(id, TypeId::PRIV_TEXT).await?;
    assert!(prompt.contains("new password"), "{prompt}");
    client.send(Frame::text(id, BranchId(0), "weak")).await?;
    client.expect(id, TypeId::ERR).await?;
    client.expect(id, TypeId::PRIV_TEXT).await?;
    client
        .send(Frame::text(id, BranchId(0), "N3w-Secret!"))
        .await?;
    let out = client.collect(id, BranchId(0)).await?;
    assert!(
        out.iter().any(|(_, t)| t.contains("Access granted")),
        "{out:?}"
    );
    assert!(client.commands.contains_key("host_info"));
    client.run("logout", "").await?;
    client.login("first_admin", "N3w-Secret!").await?;
    host.shutdown().await
}

#[tokio::test]
async fn ls_cmds_and_cmd_info() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    let mut client = TestClient::connect(host.addr).await?;
    let out = client.run("ls_cmds", "-find info").await?;
    let (t, text) = &out[0];
    assert_eq!(*t, TypeId::BIG_TEXT);
    assert!(
        text.contains("cmd_info") && text.contains("my_info") && !text.contains("auth"),
        "{text}"
    );
    let out = client.run("cmd_info", "-cmd_name AUTH").await?;
    assert!(out[0].1.contains("log in with a user name"), "{out:?}");
    let out = client.run("cmd_info", "-cmd_id x").await?;
    assert_eq!(
        out,
        [(TypeId::ERR, "err: -cmd_id must be an integer.".to_owned())]
    );
    host.shutdown().await
}

#[tokio::test]
async fn host_only_frame_types_are_refused() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    let mut client = TestClient::connect(host.addr).await?;
    let id = client.id("my_info")?;
    client
        .send(Frame::new(TypeId::PUB_IPC, id, BranchId(3), vec![2, 0]))
        .await?;
    let reply = client.recv().await?;
    assert_eq!(
        (reply.type_id, reply.cmd_id, reply.branch_id),
        (TypeId::ERR, id, BranchId(3))
    );
    host.shutdown().await
}

#[tokio::test]
async fn password_attempts_are_limited_per_address() -> anyhow::Result<()> {
    let host = TestHost::start_with(|c| c.security.auth_attempts_per_minute = 3).await?;
    host.add_user("gus", PASSWORD, "users").await?;
    let mut client = TestClient::connect(host.addr).await?;
    let id = client.id("auth")?;
    client
        .send(Frame::text(id, BranchId(0), "-user nobody"))
        .await?;
    for _ in 0..3 {
        client.expect(id, TypeId::PRIV_TEXT).await?;
        client
            .send(Frame::text(id, BranchId(0), "Wrong-pass1"))
            .await?;
        assert_eq!(client.expect(id, TypeId::ERR).await?, "err: Access denied.");
    }
    client.expect(id, TypeId::PRIV_TEXT).await?;
    client.send(Frame::text(id, BranchId(0), PASSWORD)).await?;
    let limited = client.expect(id, TypeId::ERR).await?;
    assert!(limited.contains("Too many login attempts"), "{limited}");
    client.collect(id, BranchId(0)).await?;
    // A new window (on the host's manual clock) lets the address try again.
    host.ctx.clock.advance(60);
    client.login("gus", PASSWORD).await?;
    host.shutdown().await
}
