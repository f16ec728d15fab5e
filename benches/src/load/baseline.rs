//! The baseline: the least an MRCI-like server on the same stack (tokio, tokio-rustls with
//! ring, the MRCI frame codec) can do, so the host's figures can be read as a ratio to what
//! this machine allows.
//!
//! One listener on its own runtime (as the host has its own process). Each connection does
//! the host's handshake (PROTOCOL.md §1: the 410-byte client header in, the 35-byte host
//! header and HOST_CERT out, TLS on the same socket), so clients connect to it with
//! [`Client::connect`] and every connect stage can be compared. Then it is one task that
//! `select!`s over its socket and a bounded inbox, the same shape as a host session: it sends
//! an IDLE on the ASYNC_RDY id (no command announcements before it), then:
//! - a frame for [`JOIN`] makes the connection a relay receiver (answered with IDLE);
//! - a frame for [`CAST`] is copied to every receiver's inbox as `[type][cmd 5][branch 0]
//!   [data]` with `try_send` (dropped when full, like the host's bus) and answered with IDLE;
//! - any other frame is echoed back as TEXT followed by IDLE, one command round trip.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use bytes::{Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use mrci_cli::client::{Client, ConnectOptions, Target};
use mrci_proto::{
    BranchId, CmdId, Frame, SessionId, TypeId,
    async_id::AsyncId,
    codec::MrciCodec,
    header::{ClientHeader, HostHeader, Reply, Version},
};
use rustls::{
    ServerConfig,
    pki_types::{CertificateDer, PrivateKeyDer},
};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
    sync::{mpsc, oneshot},
};
use tokio_rustls::TlsAcceptor;
use tokio_util::codec::Framed;

use super::client;

/// Command id that registers a relay receiver.
pub const JOIN: CmdId = CmdId(300);
/// Command id whose frames are relayed to every receiver.
pub const CAST: CmdId = CmdId(301);
/// Command id that is echoed.
pub const ECHO: CmdId = CmdId(302);

/// Command id whose data frames are written to a temporary file in the system's temporary
/// directory, on the disk the host's file root uses in the benchmark (bulk upload); an empty
/// frame ends it: the file is synced, as the host syncs an upload before it renames it.
pub const SINK: CmdId = CmdId(303);
/// Command id that streams the number of bytes its TEXT names (bulk download).
pub const SOURCE: CmdId = CmdId(304);
/// Bytes per frame of a [`SOURCE`] stream, as the host's downloads.
pub const BULK_CHUNK: usize = 1 << 20;

/// Inbox capacity per connection, as the host's default `limits.inbox_capacity`.
const INBOX: usize = 256;

type Receivers = Arc<Mutex<Vec<mpsc::Sender<Frame>>>>;

/// A running baseline server; stops when dropped.
pub struct Baseline {
    /// Where it listens.
    pub addr: SocketAddr,
    /// How clients connect: trust on first use, one TLS configuration shared by every
    /// session, as for the host.
    opts: ConnectOptions,
    receivers: Receivers,
    _stop: oneshot::Sender<()>,
}

impl Baseline {
    /// Generates a certificate and starts the server on a runtime of its own.
    ///
    /// # Errors
    /// Certificate, TLS or bind failures.
    pub fn start() -> anyhow::Result<Self> {
        let key = rcgen::KeyPair::generate()?;
        let cert =
            rcgen::CertificateParams::new(vec!["localhost".to_owned()])?.self_signed(&key)?;
        let cert_pem = Bytes::from(cert.pem().into_bytes());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(cert.der().to_vec())],
                PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )?;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let receivers = Receivers::default();
        let (stop, stopped) = oneshot::channel::<()>();
        let shared = Arc::clone(&receivers);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        std::thread::spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = TcpListener::from_std(std_listener) else {
                    return;
                };
                tokio::select! {
                    _ = stopped => {}
                    () = accept_loop(listener, acceptor, cert_pem, shared) => {}
                }
            });
        });
        Ok(Self {
            addr,
            opts: client::options(),
            receivers,
            _stop: stop,
        })
    }

    /// A new client session, past the ready frame, connected as to the host.
    ///
    /// # Errors
    /// Network, handshake and TLS failures.
    pub async fn session(&self) -> anyhow::Result<Client> {
        Ok(Client::connect(&Target::from(self.addr), &self.opts).await?)
    }

    /// Forgets every relay receiver (between fan-out runs).
    pub fn clear_receivers(&self) {
        self.receivers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    cert_pem: Bytes,
    receivers: Receivers,
) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let receivers = Arc::clone(&receivers);
        let cert_pem = cert_pem.clone();
        tokio::spawn(async move {
            let Ok(tcp) = handshake(tcp, cert_pem).await else {
                return;
            };
            if let Ok(tls) = acceptor.accept(tcp).await {
                serve(Framed::new(tls, MrciCodec::new()), receivers).await;
            }
        });
    }
}

/// The host's handshake up to TLS: the client header in, the host header and HOST_CERT
/// out in one write. The common name is not checked: the baseline has one certificate.
async fn handshake(mut tcp: TcpStream, cert_pem: Bytes) -> anyhow::Result<TcpStream> {
    let mut raw = [0u8; ClientHeader::LEN];
    tokio::time::timeout(client::PATIENCE, tcp.read_exact(&mut raw)).await??;
    ClientHeader::parse(&raw)?;
    let mut out = BytesMut::with_capacity(HostHeader::LEN + Frame::HEADER_LEN + cert_pem.len());
    HostHeader {
        reply: Reply::TLS,
        version: Version::default(),
        session_id: SessionId([0; 28]),
    }
    .write(&mut out);
    AsyncId::SYS_MSG
        .frame(TypeId::HOST_CERT, cert_pem)
        .encode(&mut out)?;
    tcp.write_all(&out).await?;
    Ok(tcp)
}

async fn serve(
    mut conn: Framed<tokio_rustls::server::TlsStream<TcpStream>, MrciCodec>,
    receivers: Receivers,
) {
    let (inbox_tx, mut inbox) = mpsc::channel::<Frame>(INBOX);
    let mut sink = None;
    if conn
        .send(Frame::idle(AsyncId::RDY.cmd_id(), BranchId(0)))
        .await
        .is_err()
    {
        return;
    }
    loop {
        let res = tokio::select! {
            frame = conn.next() => match frame {
                Some(Ok(frame)) => handle(&mut conn, frame, &receivers, &inbox_tx, &mut sink).await,
                _ => return,
            },
            Some(delivery) = inbox.recv() => deliver(&mut conn, delivery, &mut inbox).await,
        };
        if res.is_err() {
            return;
        }
    }
}

/// Writes a delivery and whatever else is already queued, then flushes once.
async fn deliver(
    conn: &mut Framed<tokio_rustls::server::TlsStream<TcpStream>, MrciCodec>,
    first: Frame,
    inbox: &mut mpsc::Receiver<Frame>,
) -> Result<(), ()> {
    conn.feed(first).await.map_err(drop)?;
    while let Ok(next) = inbox.try_recv() {
        conn.feed(next).await.map_err(drop)?;
    }
    SinkExt::<Frame>::flush(conn).await.map_err(drop)
}

async fn handle(
    conn: &mut Framed<tokio_rustls::server::TlsStream<TcpStream>, MrciCodec>,
    frame: Frame,
    receivers: &Receivers,
    own_inbox: &mpsc::Sender<Frame>,
    sink: &mut Option<tokio::fs::File>,
) -> Result<(), ()> {
    let (cmd, branch) = (frame.cmd_id, frame.branch_id);
    if cmd == SINK && !frame.payload.is_empty() {
        if sink.is_none() {
            let file = tempfile::tempfile().map_err(drop)?;
            *sink = Some(tokio::fs::File::from_std(file));
        }
        if let Some(file) = sink {
            file.write_all(&frame.payload).await.map_err(drop)?;
        }
        return Ok(());
    }
    if cmd == SOURCE {
        let mut left: usize = frame.text_payload().trim().parse().unwrap_or(0);
        let chunk = Bytes::from(vec![0x5a; BULK_CHUNK]);
        while left > 0 {
            let n = left.min(BULK_CHUNK);
            conn.feed(Frame::new(TypeId::GEN_FILE, cmd, branch, chunk.slice(..n)))
                .await
                .map_err(drop)?;
            left -= n;
        }
    } else if cmd == SINK {
        if let Some(mut file) = sink.take() {
            file.flush().await.map_err(drop)?;
            file.sync_all().await.map_err(drop)?;
        }
    } else if cmd == JOIN {
        receivers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(own_inbox.clone());
    } else if cmd == CAST {
        let delivery = Frame::new(
            frame.type_id,
            AsyncId::CAST.cmd_id(),
            BranchId(0),
            frame.payload,
        );
        let list = receivers.lock().unwrap_or_else(|e| e.into_inner());
        for rx in list.iter() {
            let _ = rx.try_send(delivery.clone());
        }
    } else {
        conn.feed(Frame::new(TypeId::TEXT, cmd, branch, frame.payload))
            .await
            .map_err(drop)?;
    }
    conn.send(Frame::idle(cmd, branch)).await.map_err(drop)
}
