//! Connecting to a host (PROTOCOL.md §1): the 410-byte client header, the 35-byte host
//! header, then HOST_CERT and a TLS client handshake on the same socket, or plaintext when a
//! loopback host allows it.
//!
//! Invariant: no frame is exchanged over TLS before the certificate has been accepted, either
//! by its pinned fingerprint (trust on first use, [`Trust::Pinned`]) or by normal webpki
//! verification against a CA file ([`Trust::Ca`]).

use std::{
    fmt,
    io::{BufReader, IsTerminal as _, Write as _},
    net::IpAddr,
    path::PathBuf,
    str::FromStr,
    sync::Arc,
};

use anyhow::{Context, bail};
use bytes::BytesMut;
use mrci_proto::{
    Frame, TypeId,
    codec::MrciCodec,
    header::{ClientHeader, HostHeader, Reply},
};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::TcpStream,
};
use tokio_rustls::TlsConnector;
use tokio_util::codec::Framed;

use super::{
    known_hosts::{KnownHosts, Pin, fingerprint},
    verify::PinnedCert,
};

/// The port a host listens on unless told otherwise (mrci-host's default `listen`).
pub(crate) const DEFAULT_PORT: u16 = 35516;

/// A host to connect to: `HOST[:PORT]`, with IPv6 addresses in brackets when a port is given.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    /// Host name or address, without brackets.
    pub(crate) host: String,
    /// TCP port.
    pub(crate) port: u16,
}

impl FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (host, after) = rest.split_once(']').ok_or("missing ']' in the address")?;
            match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None if after.is_empty() => (host, None),
                None => return Err(format!("unexpected {after:?} after the address")),
            }
        } else if s.matches(':').count() == 1 {
            let (host, port) = s.split_once(':').ok_or("bad address")?;
            (host, Some(port))
        } else {
            (s, None)
        };
        if host.is_empty() {
            return Err("the host name is empty".into());
        }
        let port = match port {
            Some(p) => p.parse().map_err(|_| format!("bad port {p:?}"))?,
            None => DEFAULT_PORT,
        };
        Ok(Self {
            host: host.to_owned(),
            port,
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// How to decide whether the host's certificate is the right one.
pub(crate) enum Trust {
    /// Trust on first use: the fingerprint is pinned in a known-hosts file.
    Pinned {
        /// The known-hosts file.
        known_hosts: KnownHosts,
        /// What to do with a host that is not in the file yet.
        new_host: NewHost,
    },
    /// Verify the certificate chain and name against the CA certificates in a PEM file.
    Ca(PathBuf),
}

/// What to do with a host whose certificate is not pinned yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NewHost {
    /// Ask on the terminal (refuse when there is none).
    Ask,
    /// Pin it without asking (`--accept-new`).
    Accept,
}

/// Everything [`connect`] needs.
pub(crate) struct ConnectOpts {
    /// Where to connect.
    pub(crate) target: Target,
    /// Certificate policy.
    pub(crate) trust: Trust,
    /// The common name asked for in the client header; `None` lets the host choose (or the
    /// host name, with a CA).
    pub(crate) common_name: Option<String>,
}

/// The byte stream under the codec: TCP, or TLS over TCP.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// A framed connection after the handshake (before ASYNC_RDY).
pub(crate) type Conn = Framed<Box<dyn Io>, MrciCodec>;

/// A connection and what the handshake told.
pub(crate) struct Connected {
    /// The framed stream.
    pub(crate) conn: Conn,
    /// The host header.
    pub(crate) header: HostHeader,
    /// The certificate fingerprint, when TLS is used.
    pub(crate) fingerprint: Option<String>,
}

/// Connects, sends the client header and completes the TLS upgrade the host asks for.
///
/// # Errors
/// If the host cannot be reached, refuses the session, or its certificate is not trusted.
pub(crate) async fn connect(opts: &ConnectOpts) -> anyhow::Result<Connected> {
    let target = &opts.target;
    let mut tcp = TcpStream::connect((target.host.as_str(), target.port))
        .await
        .with_context(|| format!("cannot connect to {target}"))?;
    let common_name = match (&opts.common_name, &opts.trust) {
        (Some(cn), _) => cn.clone(),
        (None, Trust::Ca(_)) => target.host.clone(),
        (None, Trust::Pinned { .. }) => String::new(),
    };
    let client_header = ClientHeader {
        app_name: format!("mrci-cli {}", env!("CARGO_PKG_VERSION")),
        common_name: common_name.clone(),
    };
    tcp.write_all(&client_header.to_bytes()).await?;
    let mut raw = [0u8; HostHeader::LEN];
    tcp.read_exact(&mut raw)
        .await
        .with_context(|| format!("{target} closed the connection during the handshake"))?;
    let header = HostHeader::parse(&raw).context("bad host header")?;
    let (stream, fingerprint): (Box<dyn Io>, _) = match header.reply {
        Reply::NO_TLS => (Box::new(tcp), None),
        Reply::TLS => {
            let pem = read_host_cert(&mut tcp).await?;
            let (tls, fp) = upgrade(opts, tcp, &pem, &common_name).await?;
            (Box::new(tls), Some(fp))
        }
        Reply::NO_CERT => bail!("{target} has no certificate for the common name {common_name:?}"),
        other => bail!(
            "{target} refused the session ({})",
            other.name().unwrap_or("unknown reply")
        ),
    };
    Ok(Connected {
        conn: Framed::new(stream, MrciCodec::new()),
        header,
        fingerprint,
    })
}

/// Reads the clear-text HOST_CERT frame that follows reply 2 (PROTOCOL.md §1.5 step 2),
/// without reading a byte past it.
async fn read_host_cert(tcp: &mut TcpStream) -> anyhow::Result<String> {
    let mut head = [0u8; Frame::HEADER_LEN];
    tcp.read_exact(&mut head)
        .await
        .context("connection closed before HOST_CERT")?;
    let len = usize::from(head[5]) | usize::from(head[6]) << 8 | usize::from(head[7]) << 16;
    let mut buf = BytesMut::from(&head[..]);
    buf.resize(Frame::HEADER_LEN + len, 0);
    tcp.read_exact(&mut buf[Frame::HEADER_LEN..])
        .await
        .context("connection closed inside HOST_CERT")?;
    let frame = Frame::decode(&mut buf, len)?.context("incomplete HOST_CERT")?;
    if frame.type_id != TypeId::HOST_CERT {
        bail!("expected HOST_CERT, got type {:?}", frame.type_id);
    }
    String::from_utf8(frame.payload.to_vec()).context("HOST_CERT is not PEM text")
}

/// Decides whether to trust the certificate and performs the TLS handshake.
async fn upgrade(
    opts: &ConnectOpts,
    tcp: TcpStream,
    pem: &str,
    common_name: &str,
) -> anyhow::Result<(tokio_rustls::client::TlsStream<TcpStream>, String)> {
    let certs = pem_certs(pem)?;
    let leaf = certs.first().context("HOST_CERT holds no certificate")?;
    let fp = fingerprint(leaf);
    let target = &opts.target;
    let key = target.to_string();
    let (config, pin_after) = match &opts.trust {
        Trust::Ca(path) => (ca_config(path)?, None),
        Trust::Pinned {
            known_hosts,
            new_host,
        } => {
            match known_hosts.lookup(&key)? {
                Pin::Known(pinned) if pinned.eq_ignore_ascii_case(&fp) => {}
                Pin::Known(pinned) => bail!(changed_warning(&key, &fp, &pinned, known_hosts)),
                Pin::Unknown => accept_new(&key, &fp, *new_host)?,
            }
            let verifier = PinnedCert::new(leaf.to_vec());
            let config = rustls::ClientConfig::builder_with_provider(verifier.provider())
                .with_safe_default_protocol_versions()?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_no_client_auth();
            (Arc::new(config), Some(known_hosts))
        }
    };
    let name = server_name(&target.host, common_name)?;
    let tls = TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .with_context(|| format!("TLS handshake with {target} failed"))?;
    if let Some(known_hosts) = pin_after
        && known_hosts.lookup(&key)? == Pin::Unknown
    {
        known_hosts.add(&key, &fp)?;
        eprintln!(
            "Pinned {key} in {} (SHA-256 {fp}).",
            known_hosts.path().display()
        );
    }
    Ok((tls, fp))
}

/// The first-contact question, ssh style.
fn accept_new(key: &str, fp: &str, new_host: NewHost) -> anyhow::Result<()> {
    eprintln!("The authenticity of host {key} can't be established.");
    eprintln!("Its certificate SHA-256 fingerprint is {fp}.");
    if new_host == NewHost::Accept {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        bail!("{key} is not a known host; pass --accept-new to trust its certificate");
    }
    eprint!("Trust this certificate and continue connecting (y/n)? ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    tokio::task::block_in_place(|| std::io::stdin().read_line(&mut answer))?;
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => bail!("host certificate not accepted"),
    }
}

fn changed_warning(key: &str, fp: &str, pinned: &str, known_hosts: &KnownHosts) -> String {
    format!(
        "\n@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n\
         @    WARNING: THE HOST CERTIFICATE HAS CHANGED!        @\n\
         @@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n\
         Someone could be intercepting this connection (a man-in-the-middle attack),\n\
         or the host's certificate was replaced.\n\
         The certificate {key} sent has the SHA-256 fingerprint\n  {fp}\n\
         but {} pins\n  {pinned}\n\
         If the new certificate is expected, remove the line for {key} from that file.\n\
         Connection refused",
        known_hosts.path().display()
    )
}

fn pem_certs(pem: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    rustls_pemfile::certs(&mut BufReader::new(pem.as_bytes()))
        .collect::<Result<Vec<_>, _>>()
        .context("cannot read the certificate PEM")
}

fn ca_config(path: &PathBuf) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let pem = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the CA file {}", path.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in pem_certs(&pem)? {
        roots.add(cert).context("unusable CA certificate")?;
    }
    if roots.is_empty() {
        bail!("no certificate in the CA file {}", path.display());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The TLS server name: the common name if one was asked for, else the host.
fn server_name(host: &str, common_name: &str) -> anyhow::Result<ServerName<'static>> {
    let name = if common_name.is_empty() {
        host
    } else {
        common_name
    };
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(ServerName::IpAddress(ip.into()));
    }
    ServerName::try_from(name.to_owned()).with_context(|| format!("{name:?} is not a valid name"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t: Target = "example.org".parse().unwrap();
        assert_eq!((t.host.as_str(), t.port), ("example.org", DEFAULT_PORT));
        let t: Target = "127.0.0.1:4000".parse().unwrap();
        assert_eq!(t.to_string(), "127.0.0.1:4000");
        let t: Target = "[::1]:5".parse().unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 5));
        assert_eq!(t.to_string(), "[::1]:5");
        let t: Target = "::1".parse().unwrap();
        assert_eq!(t.port, DEFAULT_PORT);
        assert!("host:x".parse::<Target>().is_err());
        assert!(":5".parse::<Target>().is_err());
    }
}
