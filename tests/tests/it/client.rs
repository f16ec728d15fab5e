//! The client library (`mrci_cli::client`) against a real host: each trust policy, the
//! per-stage timings, the split halves and the login helper's answers to `auth`.

use std::sync::Arc;

use mrci_cli::client::{
    Client, ConnectOptions, Error, Fingerprint, MemoryPins, PinStore, Target, Trust,
};
use mrci_proto::{BranchId, TypeId, header::Reply};
use mrci_tests::{PATIENCE, TestHost};

const PW: &str = "Test-Passw0rd!";

fn opts(trust: Trust) -> ConnectOptions {
    ConnectOptions::new(trust)
        .app_name("client-lib-test")
        .read_timeout(Some(PATIENCE))
}

/// The host's own fingerprint, in the client library's type.
fn host_fingerprint(host: &TestHost) -> Fingerprint {
    host.ctx
        .fingerprint()
        .parse()
        .expect("the host prints a fingerprint")
}

#[tokio::test]
async fn a_pinned_fingerprint_connects_and_any_other_is_refused_before_tls() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    let target = Target::from(host.addr);
    let pinned = host_fingerprint(&host);
    let client = Client::connect(&target, &opts(Trust::Fingerprint(pinned))).await?;
    let info = client.info();
    assert_eq!(info.header.reply, Reply::TLS);
    // The client computes the fingerprint itself, in the form the host prints.
    assert_eq!(
        info.fingerprint.map(|f| f.to_string()),
        Some(host.ctx.fingerprint().to_owned())
    );
    let der = info.peer_certificate.clone().expect("TLS peer certificate");
    assert_eq!(Fingerprint::of(&der), pinned);
    assert!(client.commands().contains("auth"));
    // The stages were timed.
    let t = info.timings;
    assert!(t.host_cert.is_some() && t.tls.is_some());
    assert!(t.total() >= t.tls.unwrap_or_default() + t.ready);

    let wrong = Fingerprint([0xAA; 32]);
    match Client::connect(&target, &opts(Trust::Fingerprint(wrong))).await {
        Err(Error::PinMismatch {
            presented, pinned, ..
        }) => {
            assert_eq!(presented, host.ctx.fingerprint());
            assert_eq!(pinned, wrong.to_string());
        }
        other => panic!("expected a pin mismatch, got {:?}", other.map(|_| ())),
    }
    host.shutdown().await
}

#[tokio::test]
async fn trust_on_first_use_pins_once_and_is_asked_only_for_new_hosts() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    let target = Target::from(host.addr);
    let pins = Arc::new(MemoryPins::default());
    let opts = opts(Trust::FirstUse(pins.clone()));
    drop(Client::connect(&target, &opts).await?);
    assert_eq!(
        pins.pinned(&target.to_string())
            .map_err(anyhow::Error::from_boxed)?,
        Some(host.ctx.fingerprint().to_owned())
    );
    // The second connect reuses the pin (and the cached TLS configuration).
    drop(Client::connect(&target, &opts).await?);
    // A pin for another certificate refuses the host.
    let stale = Arc::new(MemoryPins::default());
    stale
        .pin(&target.to_string(), &Fingerprint([1; 32]))
        .map_err(anyhow::Error::from_boxed)?;
    let refused = Client::connect(&target, &self::opts(Trust::FirstUse(stale))).await;
    assert!(matches!(refused, Err(Error::PinMismatch { .. })));
    host.shutdown().await
}

#[tokio::test]
async fn plaintext_loopback_policy() -> anyhow::Result<()> {
    let tls_host = TestHost::start().await?;
    let refused = Client::connect(
        &Target::from(tls_host.addr),
        &opts(Trust::PlaintextLoopback),
    )
    .await;
    assert!(matches!(refused, Err(Error::TlsRequired { .. })));
    tls_host.shutdown().await?;

    let host = TestHost::start_with(|c| c.tls.allow_plaintext_loopback = true).await?;
    let mut client =
        Client::connect(&Target::from(host.addr), &opts(Trust::PlaintextLoopback)).await?;
    assert_eq!(client.info().header.reply, Reply::NO_TLS);
    assert!(client.info().fingerprint.is_none() && client.info().timings.tls.is_none());
    let out = client.run("MY_INFO", "").await?;
    assert!(
        out.text().contains("Encrypted:      false"),
        "{}",
        out.text()
    );
    host.shutdown().await
}

#[tokio::test]
async fn no_certificate_for_the_common_name_is_reported() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    let opts = opts(Trust::first_use_in_memory()).common_name("no-such-host.example");
    match Client::connect(&Target::from(host.addr), &opts).await {
        Err(Error::NoCertificate { common_name, .. }) => {
            assert_eq!(common_name, "no-such-host.example");
        }
        other => panic!("expected reply 4, got {:?}", other.map(|_| ())),
    }
    host.shutdown().await
}

#[tokio::test]
async fn login_run_and_the_script_example_flow() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    host.add_user("alice", PW, "users").await?;
    let opts = opts(Trust::Fingerprint(host_fingerprint(&host)));
    let mut client = Client::connect(&Target::from(host.addr), &opts).await?;
    assert!(matches!(
        client.run("no_such_command", "").await,
        Err(Error::UnknownCommand(_))
    ));
    match client.login("alice", "Wrong-Passw0rd!").await {
        Err(Error::LoginRefused { errors }) => assert_eq!(errors, ["err: Access denied."]),
        other => panic!("expected a refusal, got {other:?}"),
    }
    let login = client.login("alice", PW).await?;
    assert!(login.text.contains("Access granted") && !login.password_changed);
    assert!(
        client.commands().contains("logout"),
        "announced after the login"
    );
    let out = client.run("my_info", "").await?;
    assert!(out.is_ok() && out.errors().is_empty());
    assert!(
        out.text().contains("User name:      alice"),
        "{}",
        out.text()
    );
    assert!(out.frames.iter().any(|f| f.type_id == TypeId::MY_INFO));
    let refused = client.run("cmd_info", "-cmd_name nope").await?;
    assert!(!refused.is_ok() && refused.errors()[0].starts_with("err:"));
    host.shutdown().await
}

#[tokio::test]
async fn a_forced_password_change_is_answered_only_when_a_new_password_is_given()
-> anyhow::Result<()> {
    let host = TestHost::start().await?;
    let phc = host.ctx.hasher().hash(PW).await?;
    host.ctx
        .store
        .create_user("bob", None, "users", &phc, true, false)
        .await?;
    let opts = opts(Trust::first_use_in_memory());
    let target = Target::from(host.addr);
    let mut client = Client::connect(&target, &opts).await?;
    match client.login("bob", PW).await {
        Err(Error::LoginPrompt { prompt }) => assert!(prompt.contains("new password"), "{prompt}"),
        other => panic!("expected the new-password prompt, got {other:?}"),
    }
    let mut client = Client::connect(&target, &opts).await?;
    let login = client
        .login_with_new_password("bob", PW, "Bobs-New-Passw0rd!")
        .await?;
    assert!(login.password_changed, "{login:?}");
    let mut again = Client::connect(&target, &opts).await?;
    again.login("bob", "Bobs-New-Passw0rd!").await?;
    host.shutdown().await
}

#[tokio::test]
async fn split_halves_read_and_write_from_different_tasks() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    let client = Client::connect(
        &Target::from(host.addr),
        &opts(Trust::first_use_in_memory()),
    )
    .await?;
    let my_info = client.commands().id("my_info").expect("my_info is public");
    let (mut reader, mut writer) = client.split();
    let n = 20;
    let reading = tokio::spawn(async move {
        let mut idles = 0;
        while idles < n {
            let frame = reader.recv().await?.ok_or(Error::Closed)?;
            if frame.cmd_id == my_info && frame.type_id == TypeId::IDLE {
                idles += 1;
            }
        }
        Ok::<_, Error>(reader)
    });
    // Fed back to back and flushed once.
    for branch in 1..=n {
        writer
            .feed(mrci_proto::Frame::text(my_info, BranchId(branch), ""))
            .await?;
    }
    writer.flush().await?;
    let reader = reading.await??;
    assert!(reader.commands().contains("auth"));
    writer.close().await?;
    host.shutdown().await
}
