//! The load generator's use of the client library (`mrci_cli::client`): the options every
//! load session connects with, two helpers for commands that must succeed, and the
//! handshake, TLS and connect from a chosen source address (for the idle sessions and the
//! soak's malformed traffic).
//!
//! Sessions to the host trust on first use with pins in memory: the first connect pins the
//! certificate HOST_CERT announces, later ones must present the same one and share one TLS
//! configuration, as a client with a certificate cache would.

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use anyhow::{Context, bail};
use mrci_cli::client::{Client, ConnectOptions, Transport, Trust};
use mrci_proto::{
    CmdId,
    client::{Handshake, Outcome},
    header::HostHeader,
};
use rustls::pki_types::ServerName;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpSocket, TcpStream},
};
use tokio_rustls::{TlsConnector, client::TlsStream};

/// How long the generator waits for a frame it expects before calling it an error.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Connect options for the sessions to one host; clones share the pin and the TLS
/// configuration.
pub fn options() -> ConnectOptions {
    ConnectOptions::new(Trust::first_use_in_memory())
        .app_name("mrci-load")
        .common_name("localhost")
        .ready_timeout(PATIENCE)
        .read_timeout(Some(PATIENCE))
}

/// The id of an announced command.
///
/// # Errors
/// If the host has not announced it.
pub fn id(client: &Client, name: &str) -> anyhow::Result<CmdId> {
    client
        .commands()
        .id(name)
        .with_context(|| format!("the host did not announce {name}"))
}

/// Runs an announced command and fails if it answers with ERR.
///
/// # Errors
/// An unannounced command, an ERR answer, or a connection failure.
pub async fn ok(client: &mut Client, name: &str, text: &str) -> anyhow::Result<()> {
    let out = client.run(name, text).await?;
    if let Some(err) = out.errors().first() {
        bail!("{name} {text}: {err}");
    }
    Ok(())
}

/// Connects to `host` from `source` (bound before the connect, so that many sessions are
/// not limited by one address's ephemeral ports) and runs the handshake up to the host
/// header and, after reply 2, HOST_CERT; returns the socket, ready for TLS, with what the
/// host sent.
///
/// # Errors
/// Socket and handshake failures.
pub async fn handshake_from(
    host: SocketAddr,
    source: IpAddr,
) -> anyhow::Result<(TcpStream, Outcome)> {
    let socket = TcpSocket::new_v4()?;
    socket
        .bind(SocketAddr::new(source, 0))
        .with_context(|| format!("cannot bind {source}"))?;
    let mut tcp = socket
        .connect(host)
        .await
        .with_context(|| format!("cannot connect from {source}"))?;
    tcp.set_nodelay(true)?;
    let mut handshake = Handshake::new("mrci-load", "localhost");
    tcp.write_all(&handshake.client_header().to_bytes()).await?;
    let mut buf = Vec::with_capacity(HostHeader::LEN);
    loop {
        // `wanted` is at most Handshake::MAX_HOST_CERT.
        buf.resize(handshake.wanted(), 0);
        tcp.read_exact(&mut buf)
            .await
            .context("the host closed the connection in the handshake")?;
        if let Some(outcome) = handshake.handle(&buf)? {
            return Ok((tcp, outcome));
        }
    }
}

/// As [`handshake_from`], then checks that HOST_CERT is `cert_pem` and completes TLS
/// through `tls` (a configuration that trusts that certificate).
///
/// # Errors
/// Socket, handshake and TLS failures, a refused session or a different certificate.
pub async fn tls_from(
    host: SocketAddr,
    source: IpAddr,
    cert_pem: &[u8],
    tls: &TlsConnector,
) -> anyhow::Result<(TlsStream<TcpStream>, HostHeader)> {
    let (tcp, outcome) = handshake_from(host, source).await?;
    let Outcome::Tls { header, host_cert } = outcome else {
        bail!("the host did not offer TLS: {:?}", outcome.header().reply);
    };
    if host_cert.as_ref() != cert_pem {
        bail!("the host presented a different certificate");
    }
    let tls = tls
        .connect(ServerName::try_from("localhost")?, tcp)
        .await
        .context("TLS handshake")?;
    Ok((tls, header))
}

/// The client library's connect, from a chosen source address: [`tls_from`], then the
/// wait for ASYNC_RDY. (The library connects from the address the system picks.)
///
/// # Errors
/// As [`tls_from`], and a host that does not become ready in time.
pub async fn connect_from(
    host: SocketAddr,
    source: IpAddr,
    cert_pem: &[u8],
    tls: &TlsConnector,
) -> anyhow::Result<Client> {
    let (tls, header) = tls_from(host, source, cert_pem, tls).await?;
    let mut client = Client::from_transport(Transport::from(tls), header);
    client.set_read_timeout(Some(PATIENCE));
    client.wait_ready(PATIENCE).await?;
    Ok(client)
}
