//! The two fixed-size handshake headers (PROTOCOL.md §1.3–1.4): the 410-byte client header
//! and the 35-byte host header. They are read and written with `read_exact`/`write_all`
//! before the stream is wrapped in a frame codec, so the codec never has a handshake stage.
//!
//! Invariant: parsing takes exactly the header's length and never panics; the tag is checked
//! first, as the original host does.

use std::fmt;

use bytes::{BufMut, BytesMut};

use crate::error::{Error, Result};
use crate::ids::SessionId;
use crate::text;

/// The client header: tag `MRCI`, FTEXT(134) app name, FTEXT(272) common name.
///
/// ```
/// use mrci_proto::header::ClientHeader;
///
/// let header = ClientHeader {
///     app_name: "my client".into(),
///     common_name: "localhost".into(),
/// };
/// let wire = header.to_bytes();
/// assert_eq!((wire.len(), &wire[..4]), (ClientHeader::LEN, &b"MRCI"[..]));
/// assert_eq!(ClientHeader::parse(&wire)?, header);
/// assert!(ClientHeader::parse(&wire[..409]).is_err());
/// # Ok::<(), mrci_proto::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientHeader {
    /// The client application's name (at most 67 UTF-16 units), whitespace-trimmed.
    pub app_name: String,
    /// The TLS common name the client wants the host to present (at most 136 units).
    pub common_name: String,
}

impl ClientHeader {
    /// Size on the wire.
    pub const LEN: usize = 410;
    /// The ASCII tag that opens the header.
    pub const TAG: [u8; 4] = *b"MRCI";
    const APP_LEN: usize = 134;
    const CN_LEN: usize = 272;

    /// Parses a client header.
    ///
    /// Padding may be `0x00` or trailing spaces (PROTOCOL.md §9 item 9); both are trimmed.
    ///
    /// # Errors
    /// [`Error::BadLength`] unless `bytes` is exactly [`Self::LEN`] long, [`Error::BadTag`] if
    /// it does not start with `MRCI`, [`Error::Invalid`] if a text field is not valid UTF-16.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        if bytes.len() != Self::LEN {
            return Err(Error::BadLength {
                what: "client header",
                expected: Self::LEN,
                got: bytes.len(),
            });
        }
        if bytes[..4] != Self::TAG {
            return Err(Error::BadTag);
        }
        let (app, cn) = bytes[4..].split_at(Self::APP_LEN);
        Ok(Self {
            app_name: text::read_fixed_strict(app, "client app name")?,
            common_name: text::read_fixed_strict(cn, "common name")?,
        })
    }

    /// Appends the header; over-long names are truncated on a code-point boundary.
    pub fn write(&self, dst: &mut BytesMut) {
        dst.reserve(Self::LEN);
        dst.put_slice(&Self::TAG);
        text::write_fixed(&self.app_name, Self::APP_LEN, dst);
        text::write_fixed(&self.common_name, Self::CN_LEN, dst);
    }

    /// The header as bytes.
    pub fn to_bytes(&self) -> BytesMut {
        let mut out = BytesMut::with_capacity(Self::LEN);
        self.write(&mut out);
        out
    }
}

/// The host's reply code (PROTOCOL.md §1.4). Open, so an unknown code still parses.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Reply(pub u8);

impl Reply {
    /// Plaintext session; wait for `ASYNC_RDY`.
    pub const NO_TLS: Self = Self(1);
    /// A HOST_CERT frame follows, then the client must start TLS.
    pub const TLS: Self = Self(2);
    /// Reserved: client version not supported (never sent).
    pub const VERSION_REJECTED: Self = Self(3);
    /// No certificate for the requested common name; the session closes.
    pub const NO_CERT: Self = Self(4);

    /// The spec's name for a known code.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::NO_TLS => "NO_TLS",
            Self::TLS => "TLS",
            Self::VERSION_REJECTED => "VERSION_REJECTED",
            Self::NO_CERT => "NO_CERT",
            _ => return None,
        })
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "Reply::{name}"),
            None => write!(f, "Reply({})", self.0),
        }
    }
}

/// A `major.minor.patch` version, as in the host header and HOST_VER.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Major version.
    pub major: u16,
    /// Minor version.
    pub minor: u16,
    /// Patch version.
    pub patch: u16,
}

impl Version {
    /// Size on the wire.
    pub const LEN: usize = 6;

    /// Parses three little-endian u16s.
    ///
    /// # Errors
    /// [`Error::BadLength`] unless `bytes` is exactly 6 bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let [a, b, c, d, e, f] = <[u8; 6]>::try_from(bytes).map_err(|_| Error::BadLength {
            what: "version",
            expected: Self::LEN,
            got: bytes.len(),
        })?;
        Ok(Self {
            major: u16::from_le_bytes([a, b]),
            minor: u16::from_le_bytes([c, d]),
            patch: u16::from_le_bytes([e, f]),
        })
    }

    /// Appends the version.
    pub fn write(&self, dst: &mut BytesMut) {
        dst.put_u16_le(self.major);
        dst.put_u16_le(self.minor);
        dst.put_u16_le(self.patch);
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The host header: reply code, host version and the session id.
///
/// ```
/// use mrci_proto::{SessionId, header::{HostHeader, Reply, Version}};
///
/// let header = HostHeader {
///     reply: Reply::TLS,
///     version: Version { major: 3, minor: 0, patch: 1 },
///     session_id: SessionId([7; 28]),
/// };
/// let wire = header.to_bytes();
/// assert_eq!((wire.len(), wire[0]), (HostHeader::LEN, 2));
/// assert_eq!(HostHeader::parse(&wire)?, header);
/// # Ok::<(), mrci_proto::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostHeader {
    /// What happens next.
    pub reply: Reply,
    /// The host's version.
    pub version: Version,
    /// The 28-byte session id the host assigned.
    pub session_id: SessionId,
}

impl HostHeader {
    /// Size on the wire.
    pub const LEN: usize = 35;

    /// Parses a host header.
    ///
    /// # Errors
    /// [`Error::BadLength`] unless `bytes` is exactly [`Self::LEN`] long.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        if bytes.len() != Self::LEN {
            return Err(Error::BadLength {
                what: "host header",
                expected: Self::LEN,
                got: bytes.len(),
            });
        }
        Ok(Self {
            reply: Reply(bytes[0]),
            version: Version::parse(&bytes[1..7])?,
            session_id: SessionId::parse(&bytes[7..])?,
        })
    }

    /// Appends the header.
    pub fn write(&self, dst: &mut BytesMut) {
        dst.reserve(Self::LEN);
        dst.put_u8(self.reply.0);
        self.version.write(dst);
        dst.put_slice(&self.session_id.0);
    }

    /// The header as bytes.
    pub fn to_bytes(&self) -> BytesMut {
        let mut out = BytesMut::with_capacity(Self::LEN);
        self.write(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_header_golden_bytes() {
        let header = ClientHeader {
            app_name: "Cli".into(),
            common_name: "host".into(),
        };
        let bytes = header.to_bytes();
        assert_eq!(bytes.len(), ClientHeader::LEN);
        assert_eq!(&bytes[..4], b"MRCI");
        // FTEXT(134) at offset 4, FTEXT(272) at offset 138 (PROTOCOL.md §1.3).
        assert_eq!(&bytes[4..10], &[b'C', 0, b'l', 0, b'i', 0]);
        assert!(bytes[10..138].iter().all(|b| *b == 0));
        assert_eq!(&bytes[138..146], &[b'h', 0, b'o', 0, b's', 0, b't', 0]);
        assert!(bytes[146..].iter().all(|b| *b == 0));
        assert_eq!(ClientHeader::parse(&bytes).unwrap(), header);
    }

    #[test]
    fn client_header_rejections() {
        let mut bytes = ClientHeader {
            app_name: "a".into(),
            common_name: "b".into(),
        }
        .to_bytes();
        assert!(matches!(
            ClientHeader::parse(&bytes[..409]),
            Err(Error::BadLength { .. })
        ));
        bytes[0] = b'X';
        assert!(matches!(ClientHeader::parse(&bytes), Err(Error::BadTag)));
        bytes[0] = b'M';
        // An unpaired high surrogate in the app name.
        bytes[4] = 0x00;
        bytes[5] = 0xD8;
        assert!(matches!(
            ClientHeader::parse(&bytes),
            Err(Error::Invalid { .. })
        ));
    }

    #[test]
    fn space_padding_is_trimmed() {
        let mut bytes = BytesMut::from(&b"MRCI"[..]);
        text::write_fixed(&format!("app{}", " ".repeat(64)), 134, &mut bytes);
        text::write_fixed("cn", 272, &mut bytes);
        assert_eq!(ClientHeader::parse(&bytes).unwrap().app_name, "app");
    }

    #[test]
    fn host_header_golden_bytes() {
        let header = HostHeader {
            reply: Reply::TLS,
            version: Version {
                major: 2,
                minor: 0,
                patch: 1,
            },
            session_id: SessionId([0xAB; 28]),
        };
        let bytes = header.to_bytes();
        let mut expected = vec![0x02, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00];
        expected.extend_from_slice(&[0xAB; 28]);
        assert_eq!(&bytes[..], &expected[..]);
        assert_eq!(HostHeader::parse(&bytes).unwrap(), header);
        assert_eq!(format!("{:?}", Reply(9)), "Reply(9)");
        assert_eq!(Reply::NO_CERT.0, 4);
    }
}
