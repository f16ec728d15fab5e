//! Operating a host from the shell (issue 15): `mrci host ban` on a running host ends the
//! banned address's live session through SIGHUP, `mrci host cert add` applies at the same
//! reload, `mrci host status` reports from the host's pid record rather than from whatever
//! answers on the port, and `--log-format json` writes JSON lines without colour codes.

use std::{
    io::{BufRead as _, BufReader},
    process::{Command, Output, Stdio},
};

use mrci_proto::{TypeId, async_id::AsyncId};
use mrci_tests::TestClient;

use crate::support::{Host, mrci};

/// `mrci host ARGS… --data-dir DATA` of `host`.
fn host_cmd(host: &Host, args: &[&str]) -> Output {
    Command::new(mrci())
        .arg("host")
        .args(args)
        .arg("--data-dir")
        .arg(host.path("data"))
        .env_remove("MRCI_CONFIG")
        .output()
        .expect("run mrci host")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn shell_bans_and_certificates_reach_the_running_host_through_sighup() -> anyhow::Result<()> {
    let host = Host::start();
    let addr = format!("127.0.0.1:{}", host.port).parse()?;
    let mut client = TestClient::connect(addr).await?;

    let files = tempfile::tempdir()?;
    let key = rcgen::KeyPair::generate()?;
    let cert = rcgen::CertificateParams::new(vec!["alt.example".to_owned()])?.self_signed(&key)?;
    let (cert_path, key_path) = (files.path().join("c.pem"), files.path().join("k.pem"));
    std::fs::write(&cert_path, cert.pem())?;
    std::fs::write(&key_path, key.serialize_pem())?;
    let out = host_cmd(
        &host,
        &[
            "cert",
            "add",
            "alt.example",
            "--cert",
            cert_path.to_str().unwrap_or_default(),
            "--key",
            key_path.to_str().unwrap_or_default(),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    assert!(stdout(&out).contains("told to reload"), "{out:?}");

    let out = host_cmd(&host, &["ban", "add", "127.0.0.1", "--reason", "shell"]);
    assert!(out.status.success(), "{out:?}");
    // The reload that follows the ban (and so the certificate) ends the live session.
    client
        .until(|f| {
            f.cmd_id == AsyncId::SYS_MSG.cmd_id()
                && f.type_id == TypeId::ERR
                && f.text_payload().contains("banned")
        })
        .await?;
    assert!(client.closed().await);
    assert!(TestClient::connect(addr).await.is_err());
    let out = host_cmd(&host, &["ban", "ls"]);
    assert!(stdout(&out).contains("127.0.0.1\t") && stdout(&out).contains("shell"));
    let out = host_cmd(&host, &["ban", "rm", "127.0.0.1"]);
    assert!(out.status.success(), "{out:?}");

    let client = TestClient::connect_cn(addr, "alt.example").await?;
    assert_eq!(
        mrci_host::tls::fingerprint(&client.peer_certificate().unwrap_or_default()),
        mrci_host::tls::fingerprint(cert.der())
    );
    let out = host_cmd(&host, &["cert", "info", "alt.example"]);
    assert!(stdout(&out).contains("self-signed: yes"), "{out:?}");
    Ok(())
}

#[test]
fn status_reports_the_data_directorys_host_not_whatever_holds_the_port() {
    let mut host = Host::start();
    let out = host_cmd(&host, &["status"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text.contains("host running:   yes (pid ")
            && text.contains(&format!("listening on 127.0.0.1:{})", host.port)),
        "{text}"
    );
    // Killed without a chance to clean up, then another program takes the port.
    host.stop();
    let _other = std::net::TcpListener::bind(("127.0.0.1", host.port)).expect("take the port");
    let out = host_cmd(&host, &["status"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(stdout(&out).contains("host running:   no"), "{out:?}");

    let admin_pw = host.add_admin("root");
    assert!(!admin_pw.is_empty());
    let out = host_cmd(&host, &["passwd", "root"]);
    assert!(
        stdout(&out).contains("New one-time password for root: "),
        "{out:?}"
    );
    let out = host_cmd(&host, &["passwd", "nobody_here"]);
    assert!(!out.status.success());
}

#[test]
fn json_logs_have_no_colour_codes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(mrci())
        .args([
            "--log-format",
            "json",
            "host",
            "run",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .env_remove("MRCI_CONFIG")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the host");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
    assert!(lines.any(|l| l.starts_with("MRCI host listening on")));
    // Keep reading, so the host never writes into a closed pipe.
    let drain = std::thread::spawn(move || lines.for_each(drop));
    nix_term(child.id());
    let out = child.wait_with_output().expect("host output");
    drain.join().expect("stdout drained");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{out:?}");
    assert!(!log.contains('\u{1b}'), "{log}");
    for line in log.lines() {
        assert!(line.starts_with('{') && line.ends_with('}'), "{line}");
    }
    assert!(log.contains("\"host stopped\""), "{log}");
}

/// Asks the host to stop as a service manager would (SIGTERM).
fn nix_term(pid: u32) {
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}
