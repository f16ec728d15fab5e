//! Connecting to a host (PROTOCOL.md §1): TCP, the 410-byte client header, the 35-byte host
//! header, then HOST_CERT and a TLS client handshake on the same socket (or a plaintext
//! session from a loopback host), and the frames up to ASYNC_RDY.
//!
//! The protocol decisions are [`mrci_proto::client::Handshake`]'s; this file only moves the
//! bytes it asks for and times each stage ([`ConnectTimings`]).
//!
//! Invariant: no frame is exchanged before the host's certificate was accepted by the
//! [`Trust`] policy, and a plaintext session is accepted only from a loopback peer address,
//! so a network attacker cannot downgrade a session to plaintext.

use std::{
    fmt,
    net::SocketAddr,
    str::FromStr,
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use mrci_proto::{
    Frame,
    client::{Handshake, Outcome},
    frame::MAX_PAYLOAD,
    header::HostHeader,
};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};
use tokio_rustls::TlsConnector;

use super::{
    Client,
    error::{Error, Result},
    transport::Transport,
    trust::{ConfigCache, Fingerprint, Trust, decide, leaf_of, server_name},
};

/// The port a host listens on unless told otherwise.
pub const DEFAULT_PORT: u16 = 35516;

/// A host to connect to: `HOST[:PORT]`, with an IPv6 address in brackets when a port is
/// given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Host name or address, without brackets.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl FromStr for Target {
    type Err = Error;

    /// Parses `HOST`, `HOST:PORT`, `[IPV6]:PORT` or a bare IPv6 address; the port defaults
    /// to [`DEFAULT_PORT`].
    fn from_str(input: &str) -> Result<Self> {
        let bad = |why: &str| Error::InvalidTarget {
            input: input.to_owned(),
            why: why.to_owned(),
        };
        let s = input.trim();
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (host, after) = rest
                .split_once(']')
                .ok_or_else(|| bad("missing ']' after the address"))?;
            match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None if after.is_empty() => (host, None),
                None => return Err(bad("unexpected text after the address")),
            }
        } else if s.matches(':').count() == 1 {
            let (host, port) = s.split_once(':').ok_or_else(|| bad("bad address"))?;
            (host, Some(port))
        } else {
            (s, None)
        };
        if host.is_empty() {
            return Err(bad("the host name is empty"));
        }
        let port = match port {
            Some(p) => p.parse().map_err(|_| bad("the port is not a number"))?,
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

impl From<SocketAddr> for Target {
    fn from(addr: SocketAddr) -> Self {
        Self {
            host: addr.ip().to_string(),
            port: addr.port(),
        }
    }
}

/// How to connect: the certificate policy and what the client tells the host.
///
/// Cloning is cheap and clones share the last TLS configuration built, so a program that
/// connects many times (a load generator, a pool) builds it once and can resume TLS
/// sessions.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    trust: Trust,
    app_name: String,
    common_name: Option<String>,
    ready_timeout: Duration,
    read_timeout: Option<Duration>,
    max_payload: usize,
    local_addr: Option<std::net::IpAddr>,
    cache: Arc<ConfigCache>,
}

impl ConnectOptions {
    /// Options with `trust`, the app name `mrci-cli VERSION`, no common name, a 30-second
    /// ready timeout, no read timeout and the protocol's largest frames.
    pub fn new(trust: Trust) -> Self {
        Self {
            trust,
            app_name: format!("mrci-cli {}", env!("CARGO_PKG_VERSION")),
            common_name: None,
            ready_timeout: Duration::from_secs(30),
            read_timeout: None,
            max_payload: MAX_PAYLOAD,
            local_addr: None,
            cache: Arc::default(),
        }
    }

    /// The application name the host shows to other sessions (at most 67 UTF-16 units).
    #[must_use]
    pub fn app_name(mut self, name: impl Into<String>) -> Self {
        self.app_name = name.into();
        self
    }

    /// The certificate common name to ask the host for. Unset, the client asks for the
    /// host's default certificate, except under [`Trust::Roots`], where it asks for the
    /// host name it connects to (the name the CA vouches for).
    #[must_use]
    pub fn common_name(mut self, name: impl Into<String>) -> Self {
        self.common_name = Some(name.into());
        self
    }

    /// How long to wait for ASYNC_RDY after the handshake.
    #[must_use]
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// How long [`Client::recv`] waits for a frame before [`Error::Timeout`]; `None` (the
    /// default) waits as long as the connection lasts.
    #[must_use]
    pub fn read_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// The largest frame payload accepted from the host (capped at the protocol's limit).
    #[must_use]
    pub fn max_payload(mut self, max: usize) -> Self {
        self.max_payload = max.min(MAX_PAYLOAD);
        self
    }

    /// The local address to connect from (any port), for a machine with several addresses
    /// or a load generator spreading its connections over loopback addresses.
    #[must_use]
    pub fn local_addr(mut self, ip: std::net::IpAddr) -> Self {
        self.local_addr = Some(ip);
        self
    }

    /// The certificate policy.
    pub fn trust(&self) -> &Trust {
        &self.trust
    }

    /// The common name sent for `target`.
    fn common_name_for(&self, target: &Target) -> String {
        match (&self.common_name, &self.trust) {
            (Some(cn), _) => cn.clone(),
            (None, Trust::Roots(_)) => target.host.clone(),
            (None, _) => String::new(),
        }
    }
}

/// How long each stage of a connect took.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnectTimings {
    /// The TCP connect.
    pub tcp: Duration,
    /// From the client header sent to the host header received.
    pub host_header: Duration,
    /// From the host header to the end of HOST_CERT (TLS only).
    pub host_cert: Option<Duration>,
    /// From HOST_CERT to the end of the TLS handshake, the trust decision included (TLS
    /// only).
    pub tls: Option<Duration>,
    /// From the session's start (TLS done, or the host header for plaintext) to ASYNC_RDY;
    /// the command announcements that precede it are included.
    pub ready: Duration,
}

impl ConnectTimings {
    /// The whole connect.
    pub fn total(&self) -> Duration {
        self.tcp
            + self.host_header
            + self.host_cert.unwrap_or_default()
            + self.tls.unwrap_or_default()
            + self.ready
    }
}

/// What the handshake told and how long it took.
#[derive(Clone, Debug)]
pub struct ConnectInfo {
    /// The host header: reply code, host version, this session's id.
    pub header: HostHeader,
    /// The HOST_CERT payload (normally PEM text), when TLS is used.
    pub host_cert: Option<Bytes>,
    /// The fingerprint of the host's certificate, when TLS is used.
    pub fingerprint: Option<Fingerprint>,
    /// The certificate the host presented in the TLS handshake (DER), when TLS is used.
    pub peer_certificate: Option<Vec<u8>>,
    /// Stage durations.
    pub timings: ConnectTimings,
    /// The frames that arrived before and with ASYNC_RDY other than command announcements
    /// (system messages and the ready frame itself), for a client to show.
    pub greeting: Vec<Frame>,
}

impl ConnectInfo {
    /// Info for a connection whose handshake produced `header` (see
    /// [`Client::from_transport`]).
    pub fn new(header: HostHeader) -> Self {
        Self {
            header,
            host_cert: None,
            fingerprint: None,
            peer_certificate: None,
            timings: ConnectTimings::default(),
            greeting: Vec::new(),
        }
    }
}

/// The TCP connection, from `local` if given (to the target's first address of its family).
async fn tcp_connect(
    target: &Target,
    local: Option<std::net::IpAddr>,
) -> std::io::Result<TcpStream> {
    let Some(local) = local else {
        return TcpStream::connect((target.host.as_str(), target.port)).await;
    };
    let remote = tokio::net::lookup_host((target.host.as_str(), target.port))
        .await?
        .find(|a| a.is_ipv4() == local.is_ipv4())
        .ok_or_else(|| {
            std::io::Error::other(format!("{target} has no address of {local}'s family"))
        })?;
    let socket = if local.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.bind(SocketAddr::new(local, 0))?;
    socket.connect(remote).await
}

/// Connects, runs the handshake and waits for ASYNC_RDY.
pub(super) async fn connect(target: &Target, opts: &ConnectOptions) -> Result<Client> {
    let key = target.to_string();
    let t0 = Instant::now();
    let mut tcp = tcp_connect(target, opts.local_addr)
        .await
        .map_err(|source| Error::Connect {
            target: key.clone(),
            source,
        })?;
    tcp.set_nodelay(true)?;
    let common_name = opts.common_name_for(target);
    let mut handshake = Handshake::new(&opts.app_name, &common_name);
    let t_tcp = Instant::now();
    tcp.write_all(&handshake.client_header().to_bytes()).await?;
    let mut t_header = None;
    let mut buf = Vec::with_capacity(HostHeader::LEN);
    let outcome = loop {
        // `wanted` is at most Handshake::MAX_HOST_CERT.
        buf.resize(handshake.wanted(), 0);
        tcp.read_exact(&mut buf).await.map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => Error::ClosedInHandshake {
                target: key.clone(),
            },
            _ => Error::Io(e),
        })?;
        let outcome = handshake.handle(&buf)?;
        t_header.get_or_insert_with(Instant::now);
        if let Some(outcome) = outcome {
            break outcome;
        }
    };
    let t_header = t_header.unwrap_or_else(Instant::now);
    let mut timings = ConnectTimings {
        tcp: t_tcp - t0,
        host_header: t_header - t_tcp,
        ..ConnectTimings::default()
    };
    let (transport, mut info) = match outcome {
        Outcome::Plaintext(header) => {
            if !tcp.peer_addr()?.ip().is_loopback() {
                return Err(Error::PlaintextRefused { target: key });
            }
            (Transport::Tcp(tcp), ConnectInfo::new(header))
        }
        Outcome::Tls { header, host_cert } => {
            let t_cert = Instant::now();
            timings.host_cert = Some(t_cert - t_header);
            let leaf = leaf_of(&host_cert)?;
            let fingerprint = Fingerprint::of(&leaf);
            let decision = decide(&opts.trust, &key, &fingerprint)?;
            let config = opts.cache.get(&opts.trust, decision.pinned)?;
            let name = server_name(&target.host, &common_name)?;
            let tls = TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(|source| Error::Tls {
                    target: key.clone(),
                    source,
                })?;
            if let Some(store) = decision.pin_after {
                store.pin(&key, &fingerprint).map_err(Error::PinStore)?;
            }
            timings.tls = Some(t_cert.elapsed());
            let transport = Transport::from(tls);
            let info = ConnectInfo {
                host_cert: Some(host_cert),
                fingerprint: Some(fingerprint),
                peer_certificate: transport.peer_certificate().map(|c| c.to_vec()),
                ..ConnectInfo::new(header)
            };
            (transport, info)
        }
        Outcome::NoCert(_) => {
            return Err(Error::NoCertificate {
                target: key,
                common_name,
            });
        }
        Outcome::Refused(header) => {
            return Err(Error::Refused {
                target: key,
                reply: header.reply,
            });
        }
    };
    info.timings = timings;
    let mut client = Client::new(transport, info, opts.max_payload, opts.read_timeout);
    client.wait_ready(opts.ready_timeout).await?;
    Ok(client)
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
        assert!("[::1".parse::<Target>().is_err());
        let addr: SocketAddr = "[::1]:9".parse().unwrap();
        assert_eq!(Target::from(addr).to_string(), "[::1]:9");
    }

    #[test]
    fn common_name_defaults_follow_the_policy() {
        let target: Target = "example.org:1".parse().unwrap();
        let pinned = ConnectOptions::new(Trust::first_use_in_memory());
        assert_eq!(pinned.common_name_for(&target), "");
        assert_eq!(pinned.common_name("cn").common_name_for(&target), "cn");
        let roots = ConnectOptions::new(Trust::Roots(Arc::new(rustls::RootCertStore::empty())));
        assert_eq!(roots.common_name_for(&target), "example.org");
    }

    #[test]
    fn timings_add_up() {
        let ms = Duration::from_millis;
        let t = ConnectTimings {
            tcp: ms(1),
            host_header: ms(2),
            host_cert: Some(ms(3)),
            tls: None,
            ready: ms(4),
        };
        assert_eq!(t.total(), ms(10));
    }
}
