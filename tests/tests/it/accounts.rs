//! Account commands across live sessions: creation, self-service changes with
//! re-authentication, renames reaching every session of the user, locks and deletes ending
//! sessions, forced changes, and the rank rule.

use mrci_proto::{BranchId, Frame, TypeId, async_id::AsyncId};
use mrci_tests::{TestClient, TestHost};

const PW: &str = "Acc0unt-tests!";

async fn logged_in(host: &TestHost, user: &str, pw: &str) -> anyhow::Result<TestClient> {
    let mut client = TestClient::connect(host.addr).await?;
    client.login(user, pw).await?;
    Ok(client)
}

/// Runs a command that prompts (PRIV_TEXT) and answers each prompt in turn.
async fn answer(
    client: &mut TestClient,
    name: &str,
    text: &str,
    answers: &[&str],
) -> anyhow::Result<Vec<(TypeId, String)>> {
    let id = client.id(name)?;
    client.send(Frame::text(id, BranchId(0), text)).await?;
    for a in answers {
        client.expect(id, TypeId::PRIV_TEXT).await?;
        client.send(Frame::text(id, BranchId(0), a)).await?;
    }
    client.collect(id, BranchId(0)).await
}

fn ok(out: &[(TypeId, String)]) -> bool {
    !out.iter().any(|(t, _)| *t == TypeId::ERR)
}

#[tokio::test]
async fn self_service_changes_reach_every_session_of_the_user() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    host.add_user("root_admin", PW, "admin").await?;
    let mut admin = logged_in(&host, "root_admin", PW).await?;
    let out = answer(
        &mut admin,
        "add_acct",
        "-name dana -email dana@example.org -disp \"Dana D\"",
        &["Fresh-Pass1!"],
    )
    .await?;
    assert!(
        out.iter().any(|(_, s)| s.contains("Account dana created")),
        "{out:?}"
    );

    let mut one = logged_in(&host, "dana", "Fresh-Pass1!").await?;
    let mut two = logged_in(&host, "dana", "Fresh-Pass1!").await?;
    assert_eq!(
        one.ok("set_disp_name", "-new_name \"Dana Two\"").await?,
        "Display name set to \"Dana Two\".\n"
    );
    assert_eq!(two.next_my_info().await?.peer.display_name, "Dana Two");

    let wrong = answer(
        &mut one,
        "set_user_name",
        "-new_name dee",
        &["Not-the-pw1!"],
    )
    .await?;
    assert!(
        wrong
            .iter()
            .any(|(_, s)| s.contains("current password is wrong")),
        "{wrong:?}"
    );
    assert!(ok(&answer(
        &mut one,
        "set_user_name",
        "-new_name dee",
        &["Fresh-Pass1!"]
    )
    .await?));
    let frames = two
        .until(|f| f.cmd_id == AsyncId::USER_RENAMED.cmd_id())
        .await?;
    assert_eq!(
        frames.last().map(Frame::text_payload).as_deref(),
        Some(r#"-old "dana" -new_name "dee""#)
    );
    // The MY_INFO with the new name comes first, then the seed TEXT on id 42.
    let info = frames
        .iter()
        .find(|f| f.type_id == TypeId::MY_INFO)
        .expect("MY_INFO before the rename");
    assert_eq!(
        mrci_proto::payload::MyInfo::parse(&info.payload)?
            .peer
            .user_name,
        "dee"
    );

    assert!(ok(&answer(
        &mut two,
        "set_pw",
        "",
        &["Fresh-Pass1!", "Newer-Pass2!"]
    )
    .await?));
    let mut three = TestClient::connect(host.addr).await?;
    three.login("dee", "Newer-Pass2!").await?;
    assert_eq!(three.ok("is_email_verified", "").await?, "false\n");
    assert!(ok(&answer(
        &mut three,
        "set_email",
        "-new_email dee@example.org",
        &["Newer-Pass2!"]
    )
    .await?));
    host.shutdown().await
}

#[tokio::test]
async fn lock_and_delete_end_sessions_and_ranks_are_enforced() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    host.add_user("root_admin", PW, "admin").await?;
    host.add_user("erin", PW, "users").await?;
    let mut admin = logged_in(&host, "root_admin", PW).await?;
    let mut erin = logged_in(&host, "erin", PW).await?;

    // A rank-2 user given lock_acct still cannot lock a rank-1 account.
    admin
        .ok("add_ranked_cmd", "-command lock_acct -rank 2")
        .await?;
    erin.until_command("lock_acct", true).await?;
    let err = erin
        .refused("lock_acct", "-user root_admin -state 1")
        .await?;
    assert!(err.contains("not below your rank"), "{err}");

    admin.ok("lock_acct", "-user erin -state 1").await?;
    let notice = erin
        .until(|f| f.type_id == TypeId::ERR && f.cmd_id == AsyncId::SYS_MSG.cmd_id())
        .await?;
    assert!(
        notice
            .last()
            .map(Frame::text_payload)
            .unwrap_or_default()
            .contains("locked")
    );
    assert!(erin.closed().await, "a locked user's session ends");
    let mut again = TestClient::connect(host.addr).await?;
    assert!(again.login("erin", PW).await.is_err());
    admin.ok("lock_acct", "-user erin -state 0").await?;
    let mut erin = logged_in(&host, "erin", PW).await?;

    admin.ok("request_new_pw", "-user erin -req 1").await?;
    admin.ok("rm_acct", "-name erin -force").await?;
    let notice = erin
        .until(|f| f.type_id == TypeId::ERR && f.cmd_id == AsyncId::SYS_MSG.cmd_id())
        .await?;
    assert!(
        notice
            .last()
            .map(Frame::text_payload)
            .unwrap_or_default()
            .contains("deleted")
    );
    assert!(erin.closed().await, "a deleted user's session ends");
    let mut gone = TestClient::connect(host.addr).await?;
    let id = gone.id("auth")?;
    gone.send(Frame::text(id, BranchId(0), "-user erin"))
        .await?;
    gone.expect(id, TypeId::PRIV_TEXT).await?;
    gone.send(Frame::text(id, BranchId(0), PW)).await?;
    assert_eq!(gone.expect(id, TypeId::ERR).await?, "err: Access denied.");
    let logins = admin.ok("ls_auth_log", "-user_name root_admin").await?;
    assert!(logins.contains("password accepted"), "{logins}");
    let activity = admin.ok("ls_act_log", "-log_entry Ended").await?;
    assert!(activity.contains("Session Ended"), "{activity}");
    let users = admin.ok("ls_users", "").await?;
    assert!(
        users.contains("root_admin") && !users.contains("erin"),
        "{users}"
    );
    host.shutdown().await
}

#[tokio::test]
async fn request_new_pw_forces_a_change_at_the_next_login() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    host.add_user("root_admin", PW, "admin").await?;
    host.add_user("finn", PW, "users").await?;
    let mut admin = logged_in(&host, "root_admin", PW).await?;
    admin.ok("request_new_pw", "-user finn -req 1").await?;
    let mut finn = TestClient::connect(host.addr).await?;
    let out = answer(&mut finn, "auth", "-user finn", &[PW, "Finn-Changed9!"]).await?;
    assert!(
        out.iter().any(|(_, s)| s.contains("Access granted")),
        "{out:?}"
    );
    let mut later = TestClient::connect(host.addr).await?;
    later.login("finn", "Finn-Changed9!").await?;
    host.shutdown().await
}

#[tokio::test]
async fn account_table_filters_are_literal_and_act_log_rows_can_be_deleted() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    host.add_user("root_admin", PW, "admin").await?;
    host.add_user("ivy_2", PW, "users").await?;
    let mut admin = logged_in(&host, "root_admin", PW).await?;
    for (cmd, key) in [
        ("ls_users", "-user_name"),
        ("ls_users", "-group_name"),
        ("ls_auth_log", "-user_name"),
        ("ls_auth_log", "-ip_address"),
        ("ls_act_log", "-ip_address"),
        ("ls_act_log", "-log_entry"),
    ] {
        for hostile in ["x' OR '1'='1", "%", "__", "'; DROP TABLE users; --"] {
            let out = admin.ok(cmd, &format!("{key} \"{hostile}\"")).await?;
            assert_eq!(out, "No matching rows.\n", "{cmd} {key} {hostile}");
        }
    }
    // `_` is literal: it matches ivy_2 but would match any character as a wildcard.
    let users = admin.ok("ls_users", "-user_name y_").await?;
    assert!(
        users.contains("ivy_2") && !users.contains("root_admin"),
        "{users}"
    );
    assert!(
        admin.ok("ls_users", "").await?.contains("root_admin"),
        "the table survived"
    );

    let activity = admin.ok("ls_act_log", "").await?;
    assert!(activity.contains("Session Active"), "{activity}");
    let id = admin.id("ls_act_log")?;
    admin
        .send(Frame::text(id, BranchId(0), "-log_entry Active -delete"))
        .await?;
    let question = admin.expect(id, TypeId::TEXT).await?;
    assert!(
        question.starts_with("Delete ") && question.ends_with("(y/n): "),
        "{question}"
    );
    admin.send(Frame::text(id, BranchId(0), "y")).await?;
    let out = admin.collect(id, BranchId(0)).await?;
    assert!(
        out.iter().any(|(_, s)| s.starts_with("Deleted ")),
        "{out:?}"
    );
    assert_eq!(
        admin.ok("ls_act_log", "-log_entry Active").await?,
        "No matching rows.\n"
    );
    host.shutdown().await
}
