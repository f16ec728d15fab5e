//! The front door under hostile traffic (issue 12), over real sockets against the real host:
//! a flood of silent and idle connections from one address never keeps another address out,
//! sessions that do not log in are told why and closed, announced frame lengths cost nothing
//! until the bytes arrive and a stalled frame is closed, and a client that stops reading is
//! closed instead of pinning the host.

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use bytes::{BufMut, BytesMut};
use mrci_proto::{TypeId, async_id::AsyncId};
use mrci_tests::{PATIENCE, TestClient, TestHost};
use tokio::net::{TcpSocket, TcpStream};

const PW: &str = "Fr0nt-door!";

const ATTACKER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

/// A TCP connection from `from` that sends nothing.
async fn silent_socket(from: IpAddr, to: SocketAddr) -> anyhow::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    Ok(socket.connect(to).await?)
}

/// Waits until the host closes `client`'s connection, reading (and dropping) what it sends
/// before; false if it is still open after [`PATIENCE`].
async fn closed_by_host(client: &mut TestClient) -> bool {
    let until_closed = async {
        loop {
            match client.client().recv().await {
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return,
            }
        }
    };
    tokio::time::timeout(PATIENCE, until_closed).await.is_ok()
}

/// A frame header announcing `len` payload bytes to command 256, branch 0.
fn header(len: usize) -> BytesMut {
    let mut out = BytesMut::new();
    out.put_u8(TypeId::TEXT.0);
    out.put_u16_le(256);
    out.put_u16_le(0);
    out.put_slice(&u32::try_from(len).expect("a u24 length").to_le_bytes()[..3]);
    out
}

/// A `/proc/self/status` figure in bytes (the host runs inside the test process).
fn proc_status_bytes(field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .ok_or_else(|| anyhow::anyhow!("no {field} in /proc/self/status"))?;
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("bad {line}"))?
        .parse()?;
    Ok(kib * 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_one_address_never_keeps_another_out() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    host.add_user("alice", PW, "users").await?;
    let mut held = Vec::new();
    for _ in 0..300 {
        held.push(silent_socket(ATTACKER, host.addr).await?);
    }
    let mut idle = Vec::new();
    for _ in 0..300 {
        if let Ok(client) = TestClient::connect_from(ATTACKER, host.addr).await {
            idle.push(client);
        }
    }
    let cap = host.ctx.config.limits.max_unauthenticated_per_address as usize;
    assert!(
        host.ctx.unauthenticated_count() <= cap,
        "one address holds at most its cap of connections not logged in"
    );
    for attempt in 0..20 {
        let login = async {
            let mut client = TestClient::connect(host.addr).await?;
            client.login("alice", PW).await?;
            anyhow::Ok(client)
        };
        let client = tokio::time::timeout(Duration::from_secs(1), login)
            .await
            .map_err(|_| anyhow::anyhow!("attempt {attempt}: no login within 1 s"))??;
        drop(client);
    }
    drop((held, idle));
    host.shutdown().await
}

#[tokio::test]
async fn a_session_that_does_not_log_in_is_told_and_closed() -> anyhow::Result<()> {
    let host = TestHost::start_with(|c| c.limits.login_timeout_secs = 1).await?;
    host.add_user("alice", PW, "users").await?;
    let mut idle = TestClient::connect(host.addr).await?;
    let mut busy = TestClient::connect(host.addr).await?;
    busy.login("alice", PW).await?;
    let frames = idle
        .until(|f| f.cmd_id == AsyncId::SYS_MSG.cmd_id() && f.type_id == TypeId::TEXT)
        .await?;
    let notice = frames.last().map(mrci_proto::Frame::text_payload);
    assert!(
        notice
            .as_deref()
            .is_some_and(|t| t.contains("did not log in within 1 seconds")),
        "{notice:?}"
    );
    assert!(closed_by_host(&mut idle).await);
    // The logged-in session started as long ago and is not closed.
    assert!(!busy.run("my_info", "").await?.is_empty());
    host.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announced_lengths_cost_nothing_and_stalled_frames_are_closed() -> anyhow::Result<()> {
    let host = TestHost::start_with(|c| {
        c.limits.frame_stall_secs = 2;
        c.security.auth_attempts_per_minute = 0;
        c.limits.max_sessions = 200;
        c.limits.max_unauthenticated = 200;
        c.limits.max_unauthenticated_per_address = 200;
    })
    .await?;
    host.add_user("alice", PW, "users").await?;
    // Before login the largest frame is small: a 16 MiB announcement closes at once.
    let mut stranger = TestClient::connect(host.addr).await?;
    stranger.client().send_raw(&header(0xFF_FFFF)).await?;
    assert!(closed_by_host(&mut stranger).await);

    let mut clients = Vec::new();
    for _ in 0..100 {
        let mut client = TestClient::connect(host.addr).await?;
        client.login("alice", PW).await?;
        clients.push(client);
    }
    let before = proc_status_bytes("VmRSS:")?;
    // Restart the peak-RSS count (Linux: "5" resets VmHWM to the current RSS).
    std::fs::write("/proc/self/clear_refs", "5")?;
    let mut partial = header(0xFF_FFFF);
    partial.put_slice(&[b'x'; 1024]);
    for client in &mut clients {
        client.client().send_raw(&partial).await?;
    }
    for client in &mut clients {
        assert!(closed_by_host(client).await, "a stalled frame is closed");
    }
    let peak = proc_status_bytes("VmHWM:")?;
    let grew = peak.saturating_sub(before);
    assert!(
        grew < 20 << 20,
        "100 stalled 16 MiB frames raised the peak RSS by {} MiB",
        grew >> 20
    );
    host.shutdown().await
}

#[tokio::test]
async fn a_client_that_stops_reading_is_closed() -> anyhow::Result<()> {
    let host = TestHost::start_with(|c| c.limits.write_stall_secs = 1).await?;
    host.add_user("alice", PW, "users").await?;
    let mut client = TestClient::connect(host.addr).await?;
    client.login("alice", PW).await?;
    let id = client.id("my_info")?;
    let mut burst = BytesMut::new();
    for _ in 0..20_000 {
        mrci_proto::Frame::text(id, mrci_proto::BranchId(1), "")
            .encode(&mut burst)
            .map_err(anyhow::Error::msg)?;
    }
    // Send the requests without reading a single reply.
    client.client().send_raw(&burst).await?;
    let mut sessions = host.ctx.watch_sessions();
    tokio::time::timeout(PATIENCE, sessions.wait_for(|n| *n == 0))
        .await
        .map_err(|_| anyhow::anyhow!("the host still serves the stalled client"))??;
    host.shutdown().await
}

/// Answers `auth -user alice` with `password` on a fresh prompt; the ERR text if refused.
async fn try_login(client: &mut TestClient, password: &str) -> anyhow::Result<Option<String>> {
    let id = client.id("auth")?;
    let branch = mrci_proto::BranchId(0);
    client
        .send(mrci_proto::Frame::text(id, branch, "-user alice"))
        .await?;
    let asked = client
        .until(|f| f.cmd_id == id && matches!(f.type_id, TypeId::ERR | TypeId::PRIV_TEXT))
        .await?;
    if let Some(refused) = asked.last().filter(|f| f.type_id == TypeId::ERR) {
        let why = refused.text_payload();
        client
            .until(|f| f.cmd_id == id && f.type_id == TypeId::IDLE)
            .await?;
        return Ok(Some(why));
    }
    client
        .send(mrci_proto::Frame::text(id, branch, password))
        .await?;
    let frames = client
        .until(|f| f.cmd_id == id && matches!(f.type_id, TypeId::IDLE | TypeId::PRIV_TEXT))
        .await?;
    let err = frames
        .iter()
        .find(|f| f.cmd_id == id && f.type_id == TypeId::ERR)
        .map(mrci_proto::Frame::text_payload);
    if frames
        .last()
        .is_some_and(|f| f.type_id == TypeId::PRIV_TEXT)
    {
        // Denied and asked again: cancel with an empty answer.
        client.send(mrci_proto::Frame::text(id, branch, "")).await?;
        client
            .until(|f| f.cmd_id == id && f.type_id == TypeId::IDLE)
            .await?;
    }
    Ok(err)
}

#[tokio::test]
async fn guessing_from_one_address_never_locks_the_owner_out() -> anyhow::Result<()> {
    let host = TestHost::start_with(|c| {
        c.security.max_failed_logins = 3;
        c.security.max_failed_logins_per_account = 100;
    })
    .await?;
    host.add_user("alice", PW, "users").await?;
    let mut attacker = TestClient::connect_from(ATTACKER, host.addr).await?;
    let mut refusals = Vec::new();
    for _ in 0..4 {
        refusals.push(try_login(&mut attacker, "Wr0ng-guess!").await?);
    }
    let last = refusals.last().cloned().flatten().unwrap_or_default();
    assert!(
        last.contains("from your address"),
        "the guessing address is locked out: {refusals:?}"
    );
    // The right password from the guessing address is refused while its lock lasts…
    let again = try_login(&mut attacker, PW).await?;
    assert!(again.is_some_and(|why| why.contains("from your address")));
    // …and the owner, from an address with no failures, gets in.
    let mut owner = TestClient::connect(host.addr).await?;
    owner.login("alice", PW).await?;
    host.shutdown().await
}
