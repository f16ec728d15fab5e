//! The Prometheus endpoint (issue 15): scraped over HTTP and parsed as the text exposition
//! format after sessions, internal and module commands, a failed login and a ban.

use std::collections::HashMap;

use mrci_proto::{BranchId, Frame, TypeId};
use mrci_tests::{TestClient, TestHost};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PW: &str = "Oper4te-tests!";

/// `GET path` on `addr`: the status line and the body.
async fn get(addr: std::net::SocketAddr, path: &str) -> anyhow::Result<(String, String)> {
    let mut tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await?;
    let mut raw = String::new();
    tcp.read_to_string(&mut raw).await?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    Ok((
        head.lines().next().unwrap_or_default().to_owned(),
        body.to_owned(),
    ))
}

/// Samples by name with labels (`name{a="b"}`) → value; every line must parse.
fn parse(body: &str) -> anyhow::Result<HashMap<String, f64>> {
    let mut out = HashMap::new();
    for line in body
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (name, value) = line
            .rsplit_once(' ')
            .ok_or_else(|| anyhow::anyhow!("not a sample: {line}"))?;
        out.insert(name.to_owned(), value.parse::<f64>()?);
    }
    Ok(out)
}

#[tokio::test]
async fn the_metrics_endpoint_is_scraped_and_parsed() -> anyhow::Result<()> {
    let host = TestHost::start_with(|c| {
        c.metrics.listen = Some("127.0.0.1:0".parse().expect("address"));
        // The guesser's login prompt is still open at shutdown; end it at once.
        c.limits.shutdown_grace_secs = 0;
    })
    .await?;
    let metrics = host.ctx.metrics_addr().expect("metrics listen");
    host.add_user("root_admin", PW, "admin").await?;
    let mut admin = TestClient::connect(host.addr).await?;
    admin.login("root_admin", PW).await?;
    let _stranger = TestClient::connect(host.addr).await?;
    let mut guesser = TestClient::connect(host.addr).await?;
    let id = guesser.id("auth")?;
    guesser
        .send(Frame::text(id, BranchId(0), "-user root_admin"))
        .await?;
    guesser.expect(id, TypeId::PRIV_TEXT).await?;
    guesser.send(Frame::text(id, BranchId(0), "wrong")).await?;
    guesser.expect(id, TypeId::ERR).await?;
    admin.ok("add_ban", "-ip 198.51.100.1").await?;
    // A module command is counted and timed by name like an internal one.
    let module = env!("CARGO_BIN_EXE_fake_module");
    admin
        .ok("add_mod", &format!("-mod_path {module} -listing once"))
        .await?;
    admin.until_command("echo", true).await?;
    admin.ok("echo", "hi").await?;
    admin.ok("echo", "again").await?;
    admin.ok("host_config", "-get limits.max_sessions").await?;

    let (status, body) = get(metrics, "/metrics").await?;
    assert_eq!(status, "HTTP/1.1 200 OK");
    let samples = parse(&body)?;
    assert_eq!(
        samples.get("mrci_sessions{state=\"logged_in\"}"),
        Some(&1.0),
        "{body}"
    );
    assert_eq!(
        samples.get("mrci_sessions{state=\"not_logged_in\"}"),
        Some(&2.0),
        "{body}"
    );
    // The recorder is process-wide: other tests' hosts may add to the counters.
    assert!(
        samples["mrci_commands_total{command=\"host_config\"}"] >= 1.0,
        "{body}"
    );
    assert!(
        samples["mrci_command_seconds_count{command=\"auth\"}"] >= 1.0,
        "{body}"
    );
    assert!(
        samples["mrci_command_seconds_count{command=\"echo\"}"] >= 2.0,
        "{body}"
    );
    assert!(samples["mrci_module_starts_total"] >= 1.0, "{body}");
    assert!(samples["mrci_auth_failures_total"] >= 1.0, "{body}");
    assert!(
        samples["mrci_bans_total{kind=\"operator\"}"] >= 1.0,
        "{body}"
    );
    assert!(samples.contains_key("mrci_casts_dropped_total"), "{body}");
    // Every store statement is timed, labelled by kind and table: the ban check at accept,
    // the account lookup of auth, the ban written by add_ban.
    for query in ["select ban_list", "select users", "insert ban_list"] {
        let count = format!("mrci_db_query_seconds_count{{query=\"{query}\"}}");
        assert!(
            samples.get(&count).is_some_and(|n| *n >= 1.0),
            "{count}: {body}"
        );
    }
    assert_eq!(get(metrics, "/other").await?.0, "HTTP/1.1 404 Not Found");
    host.shutdown().await
}
