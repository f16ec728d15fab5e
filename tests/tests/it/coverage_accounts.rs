//! Account commands that change another user, end to end (issue 13): `force_set_email` with
//! its rank and address rules, `request_new_user_name` and the forced rename inside `auth`,
//! and ASYNC_USER_RENAMED (42) reaching the user's other sessions and fellow channel members.
//!
//! Every async event is checked as the client receives it: the async id as the frame's
//! command id, branch 0, type TEXT and the exact seed TEXT of PROTOCOL.md §4.3. That an event
//! did *not* reach a session is shown with a marker: a display-name change sends that session
//! a MY_INFO through the same ordered event queue, after anything queued before it.

use anyhow::Context;
use mrci_proto::{
    BranchId, Frame, TypeId, async_cmd::AsyncCmd, async_id::AsyncId, payload::MyInfo,
};
use mrci_tests::{TestClient, TestHost};

use crate::events::{assert_seed, next_on, none_on, run_then, seed_on};

const PW: &str = "C0verage-accts!";

async fn logged_in(host: &TestHost, user: &str) -> anyhow::Result<TestClient> {
    let mut client = TestClient::connect(host.addr).await?;
    client.login(user, PW).await?;
    Ok(client)
}

/// The next MY_INFO (on ASYNC_SYS_MSG) that satisfies `wanted`; fails on a timeout.
async fn my_info_where(
    client: &mut TestClient,
    wanted: impl Fn(&MyInfo) -> bool,
) -> anyhow::Result<MyInfo> {
    loop {
        let frame = client
            .until(|f| f.cmd_id == AsyncId::SYS_MSG.cmd_id() && f.type_id == TypeId::MY_INFO)
            .await?
            .pop()
            .context("until returns the match")?;
        let info = MyInfo::parse(&frame.payload)?;
        if wanted(&info) {
            return Ok(info);
        }
    }
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

/// Starts `auth` for `user`, answers the password and returns the frames on `auth` up to the
/// next TEXT (the rename prompt) or IDLE.
async fn auth_to_prompt(client: &mut TestClient, user: &str) -> anyhow::Result<Vec<Frame>> {
    let id = client.id("auth")?;
    client
        .send(Frame::text(id, BranchId(0), &format!("-user {user}")))
        .await?;
    client.expect(id, TypeId::PRIV_TEXT).await?;
    client.send(Frame::text(id, BranchId(0), PW)).await?;
    auth_frames(client).await
}

/// Frames on `auth` up to the next TEXT or IDLE.
async fn auth_frames(client: &mut TestClient) -> anyhow::Result<Vec<Frame>> {
    let id = client.id("auth")?;
    let frames = client
        .until(|f| f.cmd_id == id && matches!(f.type_id, TypeId::TEXT | TypeId::IDLE))
        .await?;
    Ok(frames.into_iter().filter(|f| f.cmd_id == id).collect())
}

/// Sends `name` at the rename prompt; expects an ERR containing `why` and a new prompt.
async fn rename_refused(client: &mut TestClient, name: &str, why: &str) -> anyhow::Result<()> {
    let id = client.id("auth")?;
    client.send(Frame::text(id, BranchId(0), name)).await?;
    let frames = auth_frames(client).await?;
    let texts: Vec<(TypeId, String)> = frames
        .iter()
        .map(|f| (f.type_id, f.text_payload()))
        .collect();
    assert!(
        matches!(&texts[..], [(TypeId::ERR, e), (TypeId::TEXT, p)]
            if e.starts_with("err: ") && e.contains(why) && p.starts_with("You must choose a new user name")),
        "{name}: {texts:?}"
    );
    Ok(())
}

fn user_renamed(old: &str, new_name: &str) -> AsyncCmd {
    AsyncCmd::UserRenamed {
        old: old.into(),
        new_name: new_name.into(),
    }
}

/// `owner` creates `ch` and `member` joins it; both sessions have applied the membership.
async fn shared_channel(
    owner: &mut TestClient,
    member: &mut TestClient,
    ch: &str,
    member_name: &str,
) -> anyhow::Result<()> {
    let create = format!("-ch_name {ch}");
    run_then(owner, "add_ch", &create, AsyncId::NEW_CH_MEMBER).await?;
    owner
        .ok(
            "invite_to_ch",
            &format!("-ch_name {ch} -user {member_name}"),
        )
        .await?;
    run_then(member, "accept_ch", &create, AsyncId::INVITE_ACCEPTED).await?;
    Ok(())
}

#[tokio::test]
async fn force_set_email_reaches_the_live_session_and_keeps_the_rules() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    host.add_user("root_admin", PW, "admin").await?;
    host.add_user("other_admin", PW, "admin").await?;
    host.add_user("carl", PW, "users").await?;
    host.add_user("dora", PW, "users").await?;
    let store = &host.ctx.store;
    let carl_id = store.find_user("carl").await?.context("carl")?.id;
    store.set_email_verified(&carl_id, true).await?;
    let mut admin = logged_in(&host, "root_admin").await?;
    let mut carl = logged_in(&host, "carl").await?;
    assert_eq!(carl.ok("is_email_verified", "").await?, "true\n");
    let mut carl_two = logged_in(&host, "carl").await?;

    let out = admin
        .ok("force_set_email", "-user carl -new_email carl@example.org")
        .await?;
    assert_eq!(out, "Email address of carl set to carl@example.org.\n");
    for session in [&mut carl, &mut carl_two] {
        let info = my_info_where(session, |i| !i.email.is_empty()).await?;
        assert_eq!(
            (info.email.as_str(), info.peer.user_name.as_str()),
            ("carl@example.org", "carl")
        );
        assert!(!info.email_verified, "a new address is not verified");
    }
    assert_eq!(carl.ok("is_email_verified", "").await?, "false\n");
    admin
        .ok("force_set_email", "-user dora -new_email dora@example.org")
        .await?;

    // Refused: an equal rank, an invalid address, an address in use (in any case), no user.
    let email_of = |name: &'static str| async move {
        let user = store.find_user(name).await?.context("user exists")?;
        anyhow::Ok(user.email)
    };
    for (args, why) in [
        (
            "-user other_admin -new_email oa@example.org",
            "not below your rank",
        ),
        (
            "-user carl -new_email not-an-address",
            "invalid email address",
        ),
        (
            "-user carl -new_email carl@localhost",
            "invalid email address",
        ),
        (
            "-user carl -new_email \"c arl@example.org\"",
            "invalid email address",
        ),
        ("-user carl -new_email dora@example.org", "used by another"),
        ("-user carl -new_email DORA@Example.org", "used by another"),
        ("-user nobody -new_email n@example.org", "No user named"),
        ("-user carl", "-new_email is required"),
    ] {
        let err = admin.refused("force_set_email", args).await?;
        assert!(
            err.starts_with("err: ") && err.contains(why),
            "{args}: {err}"
        );
    }
    assert_eq!(email_of("carl").await?, "carl@example.org");
    assert_eq!(email_of("other_admin").await?, "");

    // A rank-2 user given the command still cannot touch an equal or a more powerful account.
    admin
        .ok("add_ranked_cmd", "-command force_set_email -rank 2")
        .await?;
    carl.until_command("force_set_email", true).await?;
    for args in [
        "-user dora -new_email d2@example.org",
        "-user root_admin -new_email r@example.org",
    ] {
        let err = carl.refused("force_set_email", args).await?;
        assert!(err.contains("is not below your rank (2)"), "{args}: {err}");
    }
    assert_eq!(email_of("dora").await?, "dora@example.org");
    assert_eq!(email_of("root_admin").await?, "");
    // The sessions still show the address the one accepted change set.
    none_on(&mut carl_two, &[], "Carl Two").await?;
    let info = my_info_where(&mut carl, |i| i.peer.display_name == "Carl Two").await?;
    assert_eq!(info.email, "carl@example.org");
    host.shutdown().await
}

#[tokio::test]
async fn a_forced_rename_at_login_reprompts_and_reaches_sessions_and_channel_members()
-> anyhow::Result<()> {
    let host = TestHost::start().await?;
    host.add_user("root_admin", PW, "admin").await?;
    host.add_user("other_admin", PW, "admin").await?;
    for name in ["gail", "hank", "ivan"] {
        host.add_user(name, PW, "users").await?;
    }
    let mut admin = logged_in(&host, "root_admin").await?;
    let mut gail_live = logged_in(&host, "gail").await?;
    let mut hank = logged_in(&host, "hank").await?;
    let mut ivan = logged_in(&host, "ivan").await?;
    shared_channel(&mut hank, &mut gail_live, "guild", "gail").await?;

    // Only a strictly more powerful account may demand a rename; -req is 0 or 1.
    for (args, why) in [
        ("-user other_admin -req 1", "not below your rank"),
        ("-user gail -req 2", "-req must be 0 or 1"),
        ("-user nobody -req 1", "No user named"),
    ] {
        let err = admin.refused("request_new_user_name", args).await?;
        assert!(err.contains(why), "{args}: {err}");
    }
    let out = admin
        .ok("request_new_user_name", "-user gail -req 1")
        .await?;
    assert_eq!(out, "gail must choose a new user name at the next login.\n");

    let mut gail = TestClient::connect(host.addr).await?;
    let prompt = auth_to_prompt(&mut gail, "gail").await?;
    let last = prompt.last().context("a frame")?;
    assert_eq!(last.type_id, TypeId::TEXT, "{prompt:?}");
    assert!(
        last.text_payload()
            .starts_with("You must choose a new user name"),
        "{prompt:?}"
    );
    rename_refused(&mut gail, "ivan", "taken").await?;
    rename_refused(&mut gail, "IVAN", "taken").await?;
    rename_refused(&mut gail, "g", "invalid user name").await?;
    rename_refused(&mut gail, "gw en", "invalid user name").await?;
    rename_refused(&mut gail, &"g".repeat(25), "invalid user name").await?;

    let auth = gail.id("auth")?;
    gail.send(Frame::text(auth, BranchId(0), "gwen")).await?;
    let frames = gail
        .until(|f| f.cmd_id == auth && f.type_id == TypeId::IDLE)
        .await?;
    let texts: Vec<String> = frames
        .iter()
        .filter(|f| f.cmd_id == auth && f.type_id == TypeId::TEXT)
        .map(Frame::text_payload)
        .collect();
    assert_eq!(
        texts,
        [
            "User name changed from gail to gwen.\n",
            "Access granted.\n"
        ]
    );
    let info = frames
        .iter()
        .find(|f| f.type_id == TypeId::MY_INFO)
        .context("MY_INFO at login")?;
    assert_eq!(MyInfo::parse(&info.payload)?.peer.user_name, "gwen");
    assert!(gail.commands.contains_key("ls_chs"), "logged in");

    // The user's other live session: MY_INFO with the new name, then the seed TEXT on 42.
    let expected = user_renamed("gail", "gwen");
    let seed = r#"-old "gail" -new_name "gwen""#;
    let frames = gail_live
        .until(|f| f.cmd_id == AsyncId::USER_RENAMED.cmd_id())
        .await?;
    let info = frames
        .iter()
        .rfind(|f| f.type_id == TypeId::MY_INFO)
        .context("MY_INFO before the rename")?;
    assert_eq!(MyInfo::parse(&info.payload)?.peer.user_name, "gwen");
    assert_seed(frames.last().context("a frame")?, &expected, seed)?;
    // A fellow member of the user's channel sees the rename; a stranger does not.
    seed_on(&mut hank, &expected, seed).await?;
    none_on(&mut ivan, &[AsyncId::USER_RENAMED], "Ivan I").await?;
    let members = hank.ok("ls_ch_members", "-ch_name guild").await?;
    assert!(
        members.contains("gwen") && !members.contains("gail"),
        "{members}"
    );

    // The flag is cleared and the old name is gone.
    let mut again = TestClient::connect(host.addr).await?;
    again.login("gwen", PW).await?;
    let mut old = TestClient::connect(host.addr).await?;
    let auth = old.id("auth")?;
    old.send(Frame::text(auth, BranchId(0), "-user gail"))
        .await?;
    old.expect(auth, TypeId::PRIV_TEXT).await?;
    old.send(Frame::text(auth, BranchId(0), PW)).await?;
    assert_eq!(old.expect(auth, TypeId::ERR).await?, "err: Access denied.");
    host.shutdown().await
}

#[tokio::test]
async fn an_empty_answer_at_the_forced_rename_cancels_the_login() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    host.add_user("root_admin", PW, "admin").await?;
    host.add_user("jill", PW, "users").await?;
    let mut admin = logged_in(&host, "root_admin").await?;
    admin
        .ok("request_new_user_name", "-user jill -req 1")
        .await?;

    let mut jill = TestClient::connect(host.addr).await?;
    auth_to_prompt(&mut jill, "jill").await?;
    let auth = jill.id("auth")?;
    jill.send(Frame::text(auth, BranchId(0), "")).await?;
    let out = jill.collect(auth, BranchId(0)).await?;
    assert_eq!(out, [(TypeId::TEXT, "Login cancelled.\n".to_owned())]);
    assert!(
        !jill.commands.contains_key("ls_chs") && jill.commands.contains_key("auth"),
        "still logged out: {:?}",
        jill.commands.keys()
    );
    let record = host.ctx.store.find_user("jill").await?.context("jill")?;
    assert!(record.must_change_name, "the demand stays");

    // The demand applies again at the next login, until an admin withdraws it.
    let prompt = auth_to_prompt(&mut jill, "jill").await?;
    assert!(
        prompt
            .last()
            .is_some_and(|f| f.text_payload().starts_with("You must choose")),
        "{prompt:?}"
    );
    jill.send(Frame::text(auth, BranchId(0), "")).await?;
    jill.collect(auth, BranchId(0)).await?;
    let out = admin
        .ok("request_new_user_name", "-user jill -req 0")
        .await?;
    assert_eq!(
        out,
        "jill no longer has to change the user name at the next login.\n"
    );
    jill.login("jill", PW).await?;
    host.shutdown().await
}

#[tokio::test]
async fn set_user_name_reaches_fellow_channel_members_but_not_invitees_or_strangers()
-> anyhow::Result<()> {
    let host = TestHost::start().await?;
    for name in ["kate", "liam", "mona", "nina"] {
        host.add_user(name, PW, "users").await?;
    }
    let mut kate = logged_in(&host, "kate").await?;
    let mut liam = logged_in(&host, "liam").await?;
    let mut mona = logged_in(&host, "mona").await?;
    let mut nina = logged_in(&host, "nina").await?;
    shared_channel(&mut kate, &mut liam, "den_of_kate", "liam").await?;
    kate.ok("invite_to_ch", "-ch_name den_of_kate -user nina")
        .await?;
    next_on(&mut nina, AsyncId::INVITED_TO_CH).await?;

    let out = answer(&mut kate, "set_user_name", "-new_name kira", &[PW]).await?;
    assert_eq!(
        out,
        [(
            TypeId::TEXT,
            "User name changed from kate to kira.\n".to_owned()
        )]
    );
    let expected = user_renamed("kate", "kira");
    let seed = r#"-old "kate" -new_name "kira""#;
    seed_on(&mut kate, &expected, seed).await?;
    seed_on(&mut liam, &expected, seed).await?;
    none_on(&mut mona, &[AsyncId::USER_RENAMED], "Mona M").await?;
    none_on(&mut nina, &[AsyncId::USER_RENAMED], "Nina N").await?;

    // The rename is the member's new identity in the channel.
    let members = liam.ok("ls_ch_members", "-ch_name den_of_kate").await?;
    assert!(
        members.contains("kira") && !members.contains("kate"),
        "{members}"
    );
    let out = answer(&mut liam, "set_user_name", "-new_name KIRA", &[PW]).await?;
    assert_eq!(
        out,
        [(TypeId::ERR, "err: That user name is taken.".to_owned())]
    );
    // A name that looks like an address would shadow an account's email (auth -email).
    let out = liam
        .run("set_user_name", "-new_name kira@example.org")
        .await?;
    assert_eq!(
        out,
        [(
            TypeId::ERR,
            "err: A user name cannot look like an email address.".to_owned()
        )]
    );
    host.shutdown().await
}
