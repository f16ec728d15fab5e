//! The connection handshake (PROTOCOL.md §1.3–1.5): the 410-byte client header within its
//! deadline, the 35-byte host header, then either plaintext (reply 1, loopback and only when
//! allowed), HOST_CERT plus a TLS handshake on the same socket (reply 2), or reply 4 and close.
//!
//! Invariant: nothing is read past the client header before TLS starts, so a ClientHello the
//! client pipelines behind its header is left in the socket for rustls.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use bytes::BytesMut;
use mrci_proto::{
    SessionId, TypeId,
    async_id::AsyncId,
    header::{ClientHeader, HostHeader, Reply},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::{host::HostCtx, session::Admitted, stream::Stream};

/// Why a handshake ended without a session.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HandshakeError {
    /// The client sent no complete header in time.
    #[error("no client header within {0:?}")]
    HeaderTimeout(Duration),
    /// The header was malformed.
    #[error("bad client header: {0}")]
    BadHeader(#[from] mrci_proto::Error),
    /// The requested common name has no certificate (reply 4 was sent).
    #[error("no certificate for common name {0:?}")]
    NoCert(String),
    /// The TLS handshake did not complete in time.
    #[error("tls handshake not completed within {0:?}")]
    TlsTimeout(Duration),
    /// The TLS handshake failed.
    #[error("tls handshake failed: {0}")]
    Tls(std::io::Error),
    /// The socket failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Runs the handshake on a freshly accepted socket.
pub(crate) async fn handshake(
    host: &Arc<HostCtx>,
    mut tcp: TcpStream,
    peer: SocketAddr,
) -> Result<Admitted, HandshakeError> {
    let settings = host.settings();
    let limits = &settings.limits;
    let header_deadline = Duration::from_secs(limits.header_timeout_secs);
    let mut raw = [0u8; ClientHeader::LEN];
    tokio::time::timeout(header_deadline, tcp.read_exact(&mut raw))
        .await
        .map_err(|_| HandshakeError::HeaderTimeout(header_deadline))??;
    let header = ClientHeader::parse(&raw)?;
    let sid = SessionId(crate::host::random_bytes());
    let loopback = crate::host::normalise_ip(peer.ip()).is_loopback();
    let material = host.tls();
    let served = material.pick(&header.common_name);
    let reply = if loopback && host.config.tls.allow_plaintext_loopback {
        Reply::NO_TLS
    } else if served.is_some() {
        Reply::TLS
    } else {
        Reply::NO_CERT
    };
    let pem_len = served.map_or(0, |(pem, _)| pem.len());
    let mut out = BytesMut::with_capacity(HostHeader::LEN + 8 + pem_len);
    HostHeader {
        reply,
        version: crate::host::version(),
        session_id: sid,
    }
    .write(&mut out);
    if let (Reply::TLS, Some((pem, _))) = (reply, served) {
        let pem = bytes::Bytes::from(pem.to_owned().into_bytes());
        AsyncId::SYS_MSG
            .frame(TypeId::HOST_CERT, pem)
            .encode(&mut out)?;
    }
    tcp.write_all(&out).await?;
    let stream = match (reply, served) {
        (Reply::NO_TLS, _) => Stream::Plain(tcp),
        (Reply::TLS, Some((_, server_config))) => {
            let tls_deadline = Duration::from_secs(limits.tls_timeout_secs);
            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(server_config));
            let tls = tokio::time::timeout(tls_deadline, acceptor.accept(tcp))
                .await
                .map_err(|_| HandshakeError::TlsTimeout(tls_deadline))?
                .map_err(HandshakeError::Tls)?;
            Stream::Tls(Box::new(tls))
        }
        _ => {
            let _ = tcp.shutdown().await;
            return Err(HandshakeError::NoCert(header.common_name));
        }
    };
    Ok(Admitted {
        sid,
        peer,
        app: header.app_name,
        stream,
    })
}
