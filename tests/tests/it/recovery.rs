//! Self-service registration, recovery and verification end to end, with mail going to the
//! directory transport so the tests read tokens and codes the way a user reads mail.

use std::path::PathBuf;

use anyhow::Context;
use bytes::Bytes;
use mrci_host::config::MailTransport;
use mrci_proto::{BranchId, Frame, TypeId, text};
use mrci_tests::{PATIENCE, TestClient, TestHost};

const PW: &str = "Recover-tests1!";

async fn mail_host(tweak: impl FnOnce(&mut mrci_host::Config)) -> anyhow::Result<TestHost> {
    TestHost::start_with(|c| {
        c.mail.transport = MailTransport::Directory;
        c.accounts.public_registration = true;
        c.security.auth_attempts_per_minute = 1000;
        tweak(c);
    })
    .await
}

fn mail_dir(host: &TestHost) -> PathBuf {
    host.ctx.config.mail_dir()
}

/// Waits until the host has sent `n` mails and returns the newest one's text.
async fn nth_mail(host: &TestHost, n: usize) -> anyhow::Result<String> {
    let mut sent = host.ctx.watch_mails_sent();
    tokio::time::timeout(PATIENCE, sent.wait_for(|sent| *sent >= n as u64))
        .await
        .with_context(|| format!("only {} mails arrived", count_mails(host)))??;
    let mut files: Vec<PathBuf> = std::fs::read_dir(mail_dir(host))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    files.sort();
    let newest = files.last().context("a mail")?;
    Ok(std::fs::read_to_string(newest)?)
}

fn count_mails(host: &TestHost) -> usize {
    std::fs::read_dir(mail_dir(host)).map_or(0, |d| d.count())
}

/// The text after `label` on its line.
fn field(mail: &str, label: &str) -> anyhow::Result<String> {
    let line = mail
        .lines()
        .find_map(|l| l.split_once(label).map(|(_, rest)| rest))
        .with_context(|| format!("no {label:?} in {mail}"))?;
    Ok(line.trim().trim_end_matches('.').to_owned())
}

/// Runs `name`, answering each prompt in turn (PRIV_TEXT or a TEXT question); returns all
/// frames up to IDLE.
async fn dialogue(
    client: &mut TestClient,
    name: &str,
    args: &str,
    answers: &[&str],
) -> anyhow::Result<Vec<(TypeId, String)>> {
    let id = client.id(name)?;
    client.send(Frame::text(id, BranchId(0), args)).await?;
    let mut seen = Vec::new();
    for a in answers {
        let frames = client
            .until(|f| {
                f.cmd_id == id
                    && (f.type_id == TypeId::PRIV_TEXT
                        || f.type_id == TypeId::IDLE
                        || (f.type_id == TypeId::TEXT && f.text_payload().ends_with(": ")))
            })
            .await?;
        let last = frames.last().context("a frame")?;
        anyhow::ensure!(
            last.type_id != TypeId::IDLE,
            "{name} ended before all answers: {frames:?}"
        );
        seen.extend(
            frames
                .iter()
                .filter(|f| f.cmd_id == id)
                .map(|f| (f.type_id, f.text_payload())),
        );
        client.send(Frame::text(id, BranchId(0), a)).await?;
    }
    seen.extend(client.collect(id, BranchId(0)).await?);
    Ok(seen)
}

fn errs(out: &[(TypeId, String)]) -> Vec<&str> {
    out.iter()
        .filter(|(t, _)| *t == TypeId::ERR)
        .map(|(_, s)| s.as_str())
        .collect()
}

#[tokio::test]
async fn register_then_recover_with_a_mailed_single_use_token() -> anyhow::Result<()> {
    let host = mail_host(|_| {}).await?;
    let mut guest = TestClient::connect(host.addr).await?;
    let out = dialogue(
        &mut guest,
        "add_acct",
        "-name erin -email erin@example.org",
        &["Fresh-first-1!"],
    )
    .await?;
    assert!(errs(&out).is_empty(), "{out:?}");

    // The reply is the same for a real account, an unknown one and an address.
    let real = guest.run("request_pw_reset", "-user erin").await?;
    let unknown = guest.run("request_pw_reset", "-user nobody").await?;
    assert_eq!(real, unknown);
    assert!(real[0].1.contains("expires in 60 minutes"), "{real:?}");
    let mail = nth_mail(&host, 1).await?;
    assert!(mail.contains("To: erin@example.org"), "{mail}");
    let token = field(&mail, "Recovery token:")?;
    assert_eq!(count_mails(&host), 1, "no mail for the unknown account");

    let wrong = dialogue(&mut guest, "recover_acct", "-user erin", &["AAAAA-BBBBB"]).await?;
    assert_eq!(
        errs(&wrong),
        ["err: The recovery token is wrong, used or expired."]
    );
    let bad_pw = "erin-Weak-1!";
    let out = dialogue(
        &mut guest,
        "recover_acct",
        "-email erin@example.org",
        &[&token.to_lowercase(), bad_pw, "Second-pass-2!"],
    )
    .await?;
    assert_eq!(
        errs(&out),
        ["err: The password must not contain your user name."],
        "{out:?}"
    );
    assert!(
        out.iter().any(|(_, s)| s.contains("Password changed")),
        "{out:?}"
    );
    let reused = dialogue(&mut guest, "recover_acct", "-user erin", &[&token]).await?;
    assert_eq!(errs(&reused).len(), 1, "a token works once: {reused:?}");

    guest.login("erin", "Second-pass-2!").await?;
    let log = auth_log(&host, "erin").await?;
    assert!(log.contains("password recovered"), "{log}");
    host.shutdown().await
}

/// The auth-log rows of `user`, read through an admin session.
async fn auth_log(host: &TestHost, user: &str) -> anyhow::Result<String> {
    host.add_user("auditor", PW, "admin").await?;
    let mut admin = TestClient::connect(host.addr).await?;
    admin.login("auditor", PW).await?;
    let out = admin
        .run("ls_auth_log", &format!("-user_name {user}"))
        .await?;
    Ok(out.into_iter().map(|(_, s)| s).collect())
}

#[tokio::test]
async fn tokens_expire_and_wrong_guesses_void_them() -> anyhow::Result<()> {
    let host = mail_host(|c| c.accounts.recovery_max_attempts = 3).await?;
    let phc = host.ctx.hasher().hash(PW).await?;
    host.ctx
        .store
        .create_user(
            "finn",
            Some("finn@example.org"),
            "users",
            &phc,
            false,
            false,
        )
        .await?;
    let mut guest = TestClient::connect(host.addr).await?;

    guest.run("request_pw_reset", "-user finn").await?;
    let first = field(&nth_mail(&host, 1).await?, "Recovery token:")?;
    // Asking again at once sends nothing new; after the resend delay a new token replaces it.
    guest.run("request_pw_reset", "-user finn").await?;
    host.ctx.clock.advance(61);
    guest.run("request_pw_reset", "-user finn").await?;
    let second = field(&nth_mail(&host, 2).await?, "Recovery token:")?;
    assert_ne!(first, second);
    assert_eq!(count_mails(&host), 2);
    let old = dialogue(&mut guest, "recover_acct", "-user finn", &[&first]).await?;
    assert_eq!(errs(&old).len(), 1, "the replaced token is dead: {old:?}");

    // Two more wrong guesses (three with the old token) void the current token.
    for _ in 0..2 {
        dialogue(&mut guest, "recover_acct", "-user finn", &["ZZZZZ-ZZZZZ"]).await?;
    }
    let voided = dialogue(&mut guest, "recover_acct", "-user finn", &[&second]).await?;
    assert_eq!(errs(&voided).len(), 1, "{voided:?}");

    host.ctx.clock.advance(61);
    guest.run("request_pw_reset", "-user finn").await?;
    let third = field(&nth_mail(&host, 3).await?, "Recovery token:")?;
    host.ctx.clock.advance(3601);
    let expired = dialogue(&mut guest, "recover_acct", "-user finn", &[&third]).await?;
    assert_eq!(errs(&expired).len(), 1, "{expired:?}");
    guest.login("finn", PW).await?;
    host.shutdown().await
}

#[tokio::test]
async fn recovery_is_rate_limited_per_address() -> anyhow::Result<()> {
    let host = mail_host(|c| c.security.auth_attempts_per_minute = 3).await?;
    let mut guest = TestClient::connect(host.addr).await?;
    for _ in 0..3 {
        let out = guest.run("request_pw_reset", "-user someone").await?;
        assert!(errs(&out).is_empty(), "{out:?}");
    }
    let out = guest.run("request_pw_reset", "-user someone").await?;
    assert_eq!(
        errs(&out),
        ["err: Too many recovery attempts from your address; try again in a minute."]
    );
    host.ctx.clock.advance(60);
    assert!(errs(&guest.run("request_pw_reset", "-user someone").await?).is_empty());
    host.shutdown().await
}

#[tokio::test]
async fn features_are_off_without_mail_or_registration() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    host.add_user("boss", PW, "admin").await?;
    let mut guest = TestClient::connect(host.addr).await?;
    for name in [
        "add_acct",
        "request_pw_reset",
        "recover_acct",
        "verify_email",
    ] {
        assert!(!guest.commands.contains_key(name), "{name} offered");
    }
    guest.login("boss", PW).await?;
    assert!(guest.commands.contains_key("add_acct"));
    assert!(
        !guest.commands.contains_key("verify_email"),
        "no mail transport"
    );
    host.shutdown().await
}

#[tokio::test]
async fn verify_email_with_a_mailed_code() -> anyhow::Result<()> {
    let host = mail_host(|_| {}).await?;
    let phc = host.ctx.hasher().hash(PW).await?;
    host.ctx
        .store
        .create_user(
            "gina",
            Some("gina@example.org"),
            "users",
            &phc,
            false,
            false,
        )
        .await?;
    let mut one = TestClient::connect(host.addr).await?;
    one.login("gina", PW).await?;
    let mut two = TestClient::connect(host.addr).await?;
    two.login("gina", PW).await?;
    assert_eq!(one.run("is_email_verified", "").await?[0].1, "false\n");

    let id = one.id("verify_email")?;
    one.send(Frame::text(id, BranchId(0), "")).await?;
    let prompt = one.expect(id, TypeId::TEXT).await?;
    assert!(prompt.contains("gina@example.org"), "{prompt}");
    let code = field(&nth_mail(&host, 1).await?, "verification code is")?;
    let code = code.split_whitespace().next().context("code")?.to_owned();
    assert_eq!(code.len(), 6);
    one.send(Frame::text(id, BranchId(0), "000000")).await?;
    assert_eq!(
        one.expect(id, TypeId::ERR).await?,
        "err: That code is wrong."
    );
    one.send(Frame::text(id, BranchId(0), &code)).await?;
    let out = one.collect(id, BranchId(0)).await?;
    assert!(
        out.iter().any(|(_, s)| s == "Email address verified.\n"),
        "{out:?}"
    );
    assert!(
        two.next_my_info().await?.email_verified,
        "every session hears of it"
    );
    assert_eq!(one.run("is_email_verified", "").await?[0].1, "true\n");
    host.shutdown().await
}

#[tokio::test]
async fn templates_are_checked_uploaded_previewed_and_used() -> anyhow::Result<()> {
    let host = mail_host(|_| {}).await?;
    host.add_user("hank", PW, "admin").await?;
    host.ctx
        .store
        .set_email(&user_id(&host, "hank").await?, "hank@example.org")
        .await?;
    let mut admin = TestClient::connect(host.addr).await?;
    admin.login("hank", PW).await?;

    let out = admin
        .run(
            "set_email_template",
            "-reset_template -body \"no placeholders\"",
        )
        .await?;
    assert_eq!(errs(&out), ["err: The body must contain %user_name%."]);
    let out = admin.run("set_email_template", "-body x").await?;
    assert_eq!(
        errs(&out),
        ["err: Give exactly one of -reset_template or -confirm_template."]
    );

    // Upload a body through the GEN_FILE mini-protocol.
    let body = "Hi %user_name%, on %date% your token is: %temp_pw%\n";
    let id = admin.id("set_email_template")?;
    let args = format!(
        "-reset_template -subject \"Custom reset\" -client_file t.txt -len {}",
        body.len()
    );
    admin
        .send(Frame::new(
            TypeId::GEN_FILE,
            id,
            BranchId(0),
            text::encode(&args),
        ))
        .await?;
    let reply = admin.expect(id, TypeId::GEN_FILE).await?;
    assert!(reply.contains("-to_host"), "{reply}");
    admin
        .send(Frame::new(
            TypeId::GEN_FILE,
            id,
            BranchId(0),
            Bytes::from(body),
        ))
        .await?;
    let out = admin.collect(id, BranchId(0)).await?;
    assert!(out.iter().any(|(_, s)| s == "Template saved.\n"), "{out:?}");

    let preview = admin.run("preview_email", "-reset_email").await?;
    assert_eq!(preview[0].1, "Subject: Custom reset\n\n");
    assert!(preview[1].1.starts_with("Hi hank, on 2027-"), "{preview:?}");

    let mut guest = TestClient::connect(host.addr).await?;
    guest.run("request_pw_reset", "-user hank").await?;
    let mail = nth_mail(&host, 1).await?;
    assert!(mail.contains("Subject: Custom reset"), "{mail}");
    let token = field(&mail, "your token is:")?;
    assert_eq!(token.len(), 23, "{mail}");

    // An empty body returns to the default.
    admin
        .run(
            "set_email_template",
            "-reset_template -body \"\" -subject \"\"",
        )
        .await?;
    let preview = admin.run("preview_email", "-reset_email").await?;
    assert_eq!(preview[0].1, "Subject: Password Reset\n\n");
    host.shutdown().await
}

async fn user_id(host: &TestHost, name: &str) -> anyhow::Result<mrci_proto::UserId> {
    Ok(host.ctx.store.find_user(name).await?.context("user")?.id)
}
