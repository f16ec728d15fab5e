//! The connection handshake: TLS and plaintext, HOST_CERT, and the failures that must close
//! only the offending connection.

use mrci_proto::{
    BranchId, CmdId, Frame, TypeId,
    header::{ClientHeader, HostHeader, Reply},
};
use mrci_tests::{TestClient, TestHost, raw_handshake};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// Reads until the host closes; true if it did so without sending anything.
async fn closed_silently(tcp: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(mrci_tests::PATIENCE, tcp.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test]
async fn tls_session_and_host_cert_matches_the_presented_certificate() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    let client = TestClient::connect(host.addr).await?;
    assert_eq!(client.header.reply, Reply::TLS);
    assert_eq!(client.header.version, mrci_host::host::version());
    let pem = client.host_cert.clone().expect("HOST_CERT was sent");
    let der = client.peer_certificate().expect("TLS peer certificate");
    let from_pem = mrci_host::tls::pem_to_der(&pem)?;
    assert_eq!(from_pem, der);
    assert!(client.commands.contains_key("auth"));
    host.shutdown().await
}

#[tokio::test]
async fn plaintext_only_for_loopback_when_enabled() -> anyhow::Result<()> {
    let host = TestHost::start_with(|c| c.tls.allow_plaintext_loopback = true).await?;
    let client = TestClient::connect(host.addr).await?;
    assert_eq!(client.header.reply, Reply::NO_TLS);
    assert!(client.peer_certificate().is_none());
    host.shutdown().await
}

#[tokio::test]
async fn unknown_common_name_gets_reply_4_and_is_closed() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    let (mut tcp, header) = raw_handshake(host.addr, "no-such-host.example").await?;
    assert_eq!(header.reply, Reply::NO_CERT);
    assert!(closed_silently(&mut tcp).await);
    host.shutdown().await
}

#[tokio::test]
async fn bad_tag_truncated_and_stalled_headers_close_only_that_connection() -> anyhow::Result<()> {
    let host = TestHost::start_with(|c| c.limits.header_timeout_secs = 1).await?;
    let mut good = TestClient::connect(host.addr).await?;

    let mut bad_tag = TcpStream::connect(host.addr).await?;
    let mut header = ClientHeader {
        app_name: "x".into(),
        common_name: "localhost".into(),
    }
    .to_bytes();
    header[0] = b'X';
    bad_tag.write_all(&header).await?;
    assert!(closed_silently(&mut bad_tag).await);

    let mut truncated = TcpStream::connect(host.addr).await?;
    truncated.write_all(&header[..100]).await?;
    truncated.shutdown().await?;
    assert!(closed_silently(&mut truncated).await);

    let mut stalled = TcpStream::connect(host.addr).await?;
    stalled.write_all(b"MRCI").await?;
    assert!(
        closed_silently(&mut stalled).await,
        "the header deadline closes a silent client"
    );

    // The established session is unaffected.
    let out = good.run("my_info", "").await?;
    assert!(
        out.iter()
            .any(|(t, s)| *t == TypeId::TEXT && s.contains("Session id"))
    );
    host.shutdown().await
}

#[tokio::test]
async fn stalled_tls_handshake_is_closed() -> anyhow::Result<()> {
    let host = TestHost::start_with(|c| c.limits.tls_timeout_secs = 1).await?;
    let (mut tcp, header) = raw_handshake(host.addr, "localhost").await?;
    assert_eq!(header.reply, Reply::TLS);
    // Read HOST_CERT, then never start TLS.
    let mut buf = [0u8; 8192];
    let mut closed = false;
    for _ in 0..64 {
        match tokio::time::timeout(mrci_tests::PATIENCE, tcp.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(_)) => {}
            Err(_) => break,
        }
    }
    assert!(closed, "the TLS deadline closes the connection");
    let _ = TestClient::connect(host.addr).await?;
    host.shutdown().await
}

/// Opens a TCP connection and sends a client header; true if the host answers with its
/// header, false if it closes the connection instead.
async fn host_answers(host: &TestHost) -> anyhow::Result<bool> {
    let mut tcp = TcpStream::connect(host.addr).await?;
    let header = ClientHeader {
        app_name: "x".into(),
        common_name: "localhost".into(),
    };
    tcp.write_all(&header.to_bytes()).await?;
    let mut raw = [0u8; HostHeader::LEN];
    let res = tokio::time::timeout(mrci_tests::PATIENCE, tcp.read_exact(&mut raw)).await?;
    Ok(res.is_ok())
}

#[tokio::test]
async fn max_sessions_refuses_only_when_every_session_is_logged_in() -> anyhow::Result<()> {
    let host = TestHost::start_with(|c| c.limits.max_sessions = 2).await?;
    host.add_user("alice", "Sunny-Day-42", "users").await?;
    let mut a = TestClient::connect(host.addr).await?;
    a.login("alice", "Sunny-Day-42").await?;
    let mut b = TestClient::connect(host.addr).await?;
    b.login("alice", "Sunny-Day-42").await?;
    assert!(
        !host_answers(&host).await?,
        "with every session logged in, a third connection is closed without a host header"
    );
    // When a logged-in session ends, its place is free again.
    let mut sessions = host.ctx.watch_sessions();
    drop(a);
    tokio::time::timeout(mrci_tests::PATIENCE, sessions.wait_for(|n| *n < 2)).await??;
    let mut c = TestClient::connect(host.addr).await?;
    // At the limit, a newcomer takes the place of the oldest session that is not logged in.
    let mut sessions = host.ctx.watch_sessions();
    let d = TestClient::connect(host.addr).await?;
    assert!(
        c.run("my_info", "").await.is_err(),
        "the not-logged-in session made room"
    );
    tokio::time::timeout(mrci_tests::PATIENCE, sessions.wait_for(|n| *n == 2)).await??;
    assert!(
        b.run("my_info", "").await.is_ok(),
        "a logged-in session never makes room"
    );
    drop(d);
    host.shutdown().await
}

#[tokio::test]
async fn unknown_command_id_gets_exactly_the_spec_error() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    let mut client = TestClient::connect(host.addr).await?;
    client
        .send(Frame::text(CmdId(999), BranchId(7), "hello"))
        .await?;
    let frame = client.recv().await?;
    assert_eq!(
        (frame.type_id, frame.cmd_id, frame.branch_id),
        (TypeId::ERR, CmdId(999), BranchId(7))
    );
    assert_eq!(frame.text_payload(), "err: No such command id: 999.");
    // Async ids are never commands either.
    client.send(Frame::text(CmdId(1), BranchId(0), "x")).await?;
    assert_eq!(
        client.recv().await?.text_payload(),
        "err: No such command id: 1."
    );
    host.shutdown().await
}
