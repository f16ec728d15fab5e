//! The soak's misbehaving clients: bad frames (a malformed client header, an unknown
//! command id, a frame longer than the limit before and after login, garbage under TLS
//! after login) and abrupt disconnects (half a client header, a ClientHello cut off and the
//! socket reset, a frame cut off after login with or without a reset).
//!
//! For each, the host must do the one right thing — answer an unknown command with ERR and
//! carry on, close on anything it cannot parse — and must give back what the connection
//! held, which the soak's descriptor and memory readings check.
//!
//! Invariant: every action ends within [`PATIENCE`] (a wait for the host to close within
//! ten seconds) and in exactly one [`Tally`](super::tally::Tally) count.

use std::{net::IpAddr, time::Duration};

use anyhow::{Context as _, bail};
use bytes::{BufMut as _, BytesMut};
use futures::{SinkExt as _, StreamExt as _};
use mrci_cli::client::Client;
use mrci_proto::{
    BranchId, CmdId, Frame, TypeId,
    async_id::AsyncId,
    client::{CommandTable, Handshake, Outcome},
    codec::MrciCodec,
    header::ClientHeader,
};
use rand::{RngCore as _, SeedableRng as _, rngs::StdRng};
use tokio::{
    io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};
use tokio_rustls::client::TlsStream;
use tokio_util::codec::Framed;

use super::Ctx;
use crate::load::{
    client::{self, PATIENCE},
    host::{PASSWORD, USER},
};

/// How long the host has to close a connection it must close.
const CLOSE_WITHIN: Duration = Duration::from_secs(10);
/// A command id no host announces.
const UNKNOWN: CmdId = CmdId(65_000);
const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

/// The misbehaviours, in the order the worker cycles through them.
pub const KINDS: [&str; 9] = [
    "malformed client header",
    "half a client header, then gone",
    "ClientHello cut off, then reset",
    "frame over the limit before login",
    "unknown command id",
    "frame over the limit after login",
    "garbage under TLS after login",
    "frame cut off after login, then closed",
    "frame cut off after login, then reset",
];

/// One misbehaving client: the kinds in turn until the soak stops.
pub async fn worker(id: u64, ctx: std::sync::Arc<Ctx>) {
    let mut rng = StdRng::seed_from_u64(id ^ 0xabcd);
    let mut turn = id as usize;
    while !ctx.stop.is_cancelled() {
        let kind = KINDS[turn % KINDS.len()];
        turn += 1;
        let res = tokio::time::timeout(PATIENCE, act(&ctx, kind, &mut rng)).await;
        match res {
            // The host refused or closed, as it must; or there was nothing to see.
            Ok(Ok(outcome @ ("closed" | "ERR, session carried on"))) => {
                ctx.tally.expected(&format!("{kind}: {outcome}"));
            }
            Ok(Ok(outcome)) => ctx.tally.ok(&format!("{kind}: {outcome}")),
            Ok(Err(e)) => ctx.tally.unexpected(&format!("{kind}: {e:#}")),
            Err(_) => ctx
                .tally
                .unexpected(&format!("{kind}: took longer than 30 s")),
        }
        ctx.rest(ctx.abuse_pause).await;
    }
}

/// Does one misbehaviour; returns what the host did when it did the right thing.
async fn act(ctx: &Ctx, kind: &str, rng: &mut StdRng) -> anyhow::Result<&'static str> {
    match kind {
        "malformed client header" => malformed_header(ctx).await,
        "half a client header, then gone" => half_header(ctx).await,
        "ClientHello cut off, then reset" => cut_client_hello(ctx).await,
        "frame over the limit before login" => oversize_before_login(ctx).await,
        "unknown command id" => unknown_command(ctx).await,
        "frame over the limit after login" => oversize_after_login(ctx).await,
        "garbage under TLS after login" => garbage_under_tls(ctx, rng).await,
        "frame cut off after login, then closed" => cut_frame(ctx, false).await,
        "frame cut off after login, then reset" => cut_frame(ctx, true).await,
        other => bail!("no such misbehaviour: {other}"),
    }
}

async fn malformed_header(ctx: &Ctx) -> anyhow::Result<&'static str> {
    let mut tcp = TcpStream::connect(ctx.host.addr).await?;
    let mut header = client_header();
    header[..4].copy_from_slice(b"JUNK");
    tcp.write_all(&header).await?;
    closed(&mut tcp).await
}

async fn half_header(ctx: &Ctx) -> anyhow::Result<&'static str> {
    let mut tcp = TcpStream::connect(ctx.host.addr).await?;
    let header = client_header();
    tcp.write_all(&header[..ClientHeader::LEN / 2]).await?;
    Ok("dropped")
}

/// The first half of a real ClientHello after HOST_CERT, then a reset.
async fn cut_client_hello(ctx: &Ctx) -> anyhow::Result<&'static str> {
    let (mut tcp, outcome) = client::handshake_from(ctx.host.addr, LOOPBACK).await?;
    if !matches!(outcome, Outcome::Tls { .. }) {
        bail!("the host did not offer TLS");
    }
    let mut conn = rustls::ClientConnection::new(
        std::sync::Arc::clone(&ctx.rustls),
        rustls::pki_types::ServerName::try_from("localhost")?,
    )?;
    let mut hello = Vec::new();
    conn.write_tls(&mut hello)?;
    tcp.write_all(&hello[..hello.len() / 2]).await?;
    tcp.set_zero_linger()?;
    Ok("reset")
}

/// A TEXT header announcing 1 MiB, over the 64 KiB allowed before login.
async fn oversize_before_login(ctx: &Ctx) -> anyhow::Result<&'static str> {
    let (mut tls, _) = client::tls_from(ctx.host.addr, LOOPBACK, &ctx.cert, &ctx.tls).await?;
    tls.write_all(&frame_header(TypeId::TEXT, CmdId(1), 1 << 20))
        .await?;
    tls.flush().await?;
    closed(&mut tls).await
}

/// PROTOCOL.md §2.3: one ERR on the same id and branch, no IDLE after it, and the session
/// carries on.
async fn unknown_command(ctx: &Ctx) -> anyhow::Result<&'static str> {
    let mut session = ctx.host.session().await?;
    session.send_text(UNKNOWN, BranchId(0), "hello").await?;
    loop {
        let frame = session
            .recv()
            .await?
            .context("the host closed the session")?;
        if frame.cmd_id != UNKNOWN {
            continue;
        }
        if frame.type_id != TypeId::ERR || !frame.text_payload().contains("65000") {
            bail!(
                "an unknown command id was answered with {:?}",
                frame.type_id
            );
        }
        break;
    }
    client::ok(&mut session, "my_info", "")
        .await
        .context("my_info after an unknown command id")?;
    Ok("ERR, session carried on")
}

async fn oversize_after_login(ctx: &Ctx) -> anyhow::Result<&'static str> {
    let mut session = ctx.host.session().await?;
    let cmd = client::id(&session, "my_info")?;
    let big = vec![0u8; ctx.max_payload + 64 * 1024];
    // The host may close before it has read it all: a failed send is fine.
    let _ = session
        .send(Frame::new(TypeId::BYTES, cmd, BranchId(0), big))
        .await;
    closed_client(&mut session).await
}

/// Random bytes written to the socket under the TLS session, breaking its records.
async fn garbage_under_tls(ctx: &Ctx, rng: &mut StdRng) -> anyhow::Result<&'static str> {
    let mut session = ctx.host.session().await?;
    let mut garbage = [0u8; 64];
    rng.fill_bytes(&mut garbage);
    session.transport().tcp().writable().await?;
    session.transport().tcp().try_write(&garbage)?;
    closed_client(&mut session).await
}

/// A frame header announcing 1,000 bytes and 100 of them, then the connection dropped
/// (without TLS close_notify) or reset.
async fn cut_frame(ctx: &Ctx, reset: bool) -> anyhow::Result<&'static str> {
    let (mut framed, table) = logged_in_raw(ctx).await?;
    let cmd = framed_id(&table, "my_info")?;
    let tls = framed.get_mut();
    tls.write_all(&frame_header(TypeId::TEXT, cmd, 1_000))
        .await?;
    tls.write_all(&[b'x'; 100]).await?;
    tls.flush().await?;
    if reset {
        tls.get_ref().0.set_zero_linger()?;
        return Ok("reset");
    }
    Ok("dropped")
}

/// A well-formed client header (PROTOCOL.md §1.4).
fn client_header() -> BytesMut {
    Handshake::new("mrci-load", "localhost")
        .client_header()
        .to_bytes()
}

/// A frame header (PROTOCOL.md §2.1) announcing `len` payload bytes.
fn frame_header(type_id: TypeId, cmd: CmdId, len: u32) -> BytesMut {
    let mut out = BytesMut::with_capacity(Frame::HEADER_LEN);
    out.put_u8(type_id.0);
    out.put_u16_le(cmd.0);
    out.put_u16_le(0);
    out.put_uint_le(u64::from(len), 3);
    out
}

/// Waits for the host to close a raw connection, reading and dropping what it sends.
async fn closed<S: AsyncRead + Unpin>(stream: &mut S) -> anyhow::Result<&'static str> {
    let mut buf = [0u8; 4096];
    let res = tokio::time::timeout(CLOSE_WITHIN, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    match res {
        Ok(()) => Ok("closed"),
        Err(_) => bail!("the host kept the connection open for {CLOSE_WITHIN:?}"),
    }
}

/// As [`closed`], through the client library.
async fn closed_client(session: &mut Client) -> anyhow::Result<&'static str> {
    session.set_read_timeout(None);
    let res = tokio::time::timeout(CLOSE_WITHIN, async {
        while let Ok(Some(_)) = session.recv().await {}
    })
    .await;
    match res {
        Ok(()) => Ok("closed"),
        Err(_) => bail!("the host kept the connection open for {CLOSE_WITHIN:?}"),
    }
}

type RawSession = (Framed<TlsStream<TcpStream>, MrciCodec>, CommandTable);

fn framed_id(table: &CommandTable, name: &str) -> anyhow::Result<CmdId> {
    table
        .id(name)
        .with_context(|| format!("the host did not announce {name}"))
}

/// The next frame of a raw session, applied to its command table.
async fn next(
    framed: &mut Framed<TlsStream<TcpStream>, MrciCodec>,
    table: &mut CommandTable,
) -> anyhow::Result<Frame> {
    let frame = framed
        .next()
        .await
        .context("the host closed the connection")??;
    let _ = table.apply(&frame);
    Ok(frame)
}

/// A logged-in session on a bare framed TLS stream, so that bytes can be written below the
/// frame layer: the handshake, the announcements up to `auth`, the password prompt.
async fn logged_in_raw(ctx: &Ctx) -> anyhow::Result<RawSession> {
    let (tls, _) = client::tls_from(ctx.host.addr, LOOPBACK, &ctx.cert, &ctx.tls).await?;
    let mut framed = Framed::new(tls, MrciCodec::new());
    let mut table = CommandTable::new();
    let mut ready = false;
    while !ready || !table.contains("auth") {
        ready |= next(&mut framed, &mut table).await?.cmd_id == AsyncId::RDY.cmd_id();
    }
    let auth = framed_id(&table, "auth")?;
    framed
        .send(Frame::text(auth, BranchId(0), &format!("-user {USER}")))
        .await?;
    loop {
        let frame = next(&mut framed, &mut table).await?;
        if frame.cmd_id != auth {
            continue;
        }
        match frame.type_id {
            TypeId::PRIV_TEXT => {
                framed
                    .send(Frame::text(auth, BranchId(0), PASSWORD))
                    .await?;
            }
            TypeId::ERR => bail!("login refused: {}", frame.text_payload().trim()),
            TypeId::IDLE => break,
            _ => {}
        }
    }
    while !table.contains("my_info") {
        next(&mut framed, &mut table).await?;
    }
    Ok((framed, table))
}
