//! The client's handshake as a state machine (PROTOCOL.md §1.3–1.5): send the 410-byte
//! client header, read the 35-byte host header, and after reply 2 read the one plaintext
//! HOST_CERT frame that precedes the TLS client handshake on the same socket.
//!
//! Invariant: [`Handshake::wanted`] is exact. A client that reads exactly that many bytes and
//! hands them to [`Handshake::handle`] never reads past HOST_CERT, so the first byte it reads
//! afterwards is the host's first TLS (or, after reply 1, frame) byte. A HOST_CERT length
//! above [`Handshake::MAX_HOST_CERT`] is refused before anything is read for it.

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::frame::{Frame, read_u24};
use crate::header::{ClientHeader, HostHeader, Reply};
use crate::type_id::TypeId;

/// How a handshake ended, once the host header (and HOST_CERT, after reply 2) arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Reply 1: the session continues in plaintext; frames follow, ASYNC_RDY among the
    /// first. Hosts send it only to loopback peers.
    Plaintext(HostHeader),
    /// Reply 2 and its HOST_CERT: decide whether to trust `host_cert`, then run a TLS client
    /// handshake on the same socket.
    Tls {
        /// The host header.
        header: HostHeader,
        /// The HOST_CERT payload: the certificate as the host stores it, normally PEM text
        /// (ASCII, not UTF-16), possibly followed by its chain.
        host_cert: Bytes,
    },
    /// Reply 4: the host has no certificate for the common name asked for; it closes the
    /// connection.
    NoCert(HostHeader),
    /// Reply 3 (reserved: version rejected) or a reply this crate does not know: the host
    /// refused the session.
    Refused(HostHeader),
}

impl Outcome {
    /// The host header the outcome came with.
    pub fn header(&self) -> &HostHeader {
        match self {
            Self::Plaintext(header) | Self::NoCert(header) | Self::Refused(header) => header,
            Self::Tls { header, .. } => header,
        }
    }
}

#[derive(Debug)]
enum State {
    /// Waiting for the 35-byte host header.
    HostHeader,
    /// Reply 2 arrived; waiting for the 8-byte head of HOST_CERT.
    CertHead(HostHeader),
    /// Waiting for the HOST_CERT payload of this many bytes.
    CertBody(HostHeader, usize),
    /// An outcome was returned (or the handshake failed).
    Done,
}

/// The client's side of the handshake.
///
/// Call order: write [`Handshake::client_header`] to the socket; then, while
/// [`Handshake::wanted`] is not zero, read exactly that many bytes and pass them to
/// [`Handshake::handle`], which returns `Some(outcome)` at the end.
///
/// ```
/// use mrci_proto::{
///     BranchId, CmdId, Frame, SessionId, TypeId,
///     client::{Handshake, Outcome},
///     header::{ClientHeader, HostHeader, Reply, Version},
/// };
///
/// let mut handshake = Handshake::new("my-script", "");
/// let to_send = handshake.client_header().to_bytes();
/// assert_eq!(to_send.len(), ClientHeader::LEN);
///
/// // The host's answer: reply 2, then one plaintext HOST_CERT frame.
/// let reply = HostHeader {
///     reply: Reply::TLS,
///     version: Version { major: 2, minor: 0, patch: 1 },
///     session_id: SessionId([7; 28]),
/// };
/// let pem = "-----BEGIN CERTIFICATE-----\n...";
/// let mut cert_frame = bytes::BytesMut::new();
/// Frame::new(TypeId::HOST_CERT, CmdId(2), BranchId(0), pem.as_bytes().to_vec())
///     .encode(&mut cert_frame)?;
/// let mut wire = reply.to_bytes();
/// wire.extend_from_slice(&cert_frame);
///
/// // Read exactly what the handshake asks for, never more.
/// let mut offset = 0;
/// let outcome = loop {
///     let n = handshake.wanted();
///     let chunk = &wire[offset..offset + n];
///     offset += n;
///     if let Some(outcome) = handshake.handle(chunk)? {
///         break outcome;
///     }
/// };
/// assert_eq!(offset, wire.len());
/// match outcome {
///     Outcome::Tls { header, host_cert } => {
///         assert_eq!(header.session_id, SessionId([7; 28]));
///         assert_eq!(&host_cert[..], pem.as_bytes());
///     }
///     other => panic!("expected TLS, got {other:?}"),
/// }
/// # Ok::<(), mrci_proto::Error>(())
/// ```
#[derive(Debug)]
pub struct Handshake {
    client_header: ClientHeader,
    state: State,
}

impl Handshake {
    /// The largest HOST_CERT payload accepted: 64 KiB, far above a PEM chain of a few
    /// certificates, and a bound on what a hostile host can make the client buffer.
    pub const MAX_HOST_CERT: usize = 64 * 1024;

    /// A handshake for a client called `app_name` asking for the certificate of
    /// `common_name` (empty: the host's default certificate). Names too long for their
    /// fixed fields are truncated on a code-point boundary when the header is written.
    pub fn new(app_name: &str, common_name: &str) -> Self {
        Self {
            client_header: ClientHeader {
                app_name: app_name.to_owned(),
                common_name: common_name.to_owned(),
            },
            state: State::HostHeader,
        }
    }

    /// The header to send first ([`ClientHeader::to_bytes`] gives its 410 bytes).
    pub fn client_header(&self) -> &ClientHeader {
        &self.client_header
    }

    /// The host header, once it has arrived.
    pub fn host_header(&self) -> Option<&HostHeader> {
        match &self.state {
            State::CertHead(header) | State::CertBody(header, _) => Some(header),
            State::HostHeader | State::Done => None,
        }
    }

    /// How many bytes to read next and pass to [`Self::handle`]; zero once an outcome was
    /// returned or the handshake failed.
    pub fn wanted(&self) -> usize {
        match self.state {
            State::HostHeader => HostHeader::LEN,
            State::CertHead(_) => Frame::HEADER_LEN,
            State::CertBody(_, len) => len,
            State::Done => 0,
        }
    }

    /// Takes exactly [`Self::wanted`] bytes. Returns `None` while more are needed, then the
    /// outcome.
    ///
    /// # Errors
    /// [`Error::BadLength`] if `bytes` is not [`Self::wanted`] long (or the handshake is
    /// over); [`Error::Invalid`] if the frame after reply 2 is not HOST_CERT or is empty;
    /// [`Error::FrameTooLarge`] if HOST_CERT announces more than [`Self::MAX_HOST_CERT`]
    /// bytes. After an error the handshake is over.
    pub fn handle(&mut self, bytes: &[u8]) -> Result<Option<Outcome>> {
        let wanted = self.wanted();
        if bytes.len() != wanted || wanted == 0 {
            self.state = State::Done;
            return Err(Error::BadLength {
                what: "handshake input",
                expected: wanted,
                got: bytes.len(),
            });
        }
        match std::mem::replace(&mut self.state, State::Done) {
            State::HostHeader => {
                let header = HostHeader::parse(bytes)?;
                Ok(match header.reply {
                    Reply::NO_TLS => Some(Outcome::Plaintext(header)),
                    Reply::TLS => {
                        self.state = State::CertHead(header);
                        None
                    }
                    Reply::NO_CERT => Some(Outcome::NoCert(header)),
                    _ => Some(Outcome::Refused(header)),
                })
            }
            State::CertHead(header) => {
                let type_id = TypeId(bytes[0]);
                if type_id != TypeId::HOST_CERT {
                    return Err(Error::Invalid {
                        what: "frame after reply 2",
                        why: format!("expected HOST_CERT, got {type_id:?}"),
                    });
                }
                let len = read_u24(&bytes[5..8]);
                if len > Self::MAX_HOST_CERT {
                    return Err(Error::FrameTooLarge {
                        len,
                        max: Self::MAX_HOST_CERT,
                    });
                }
                if len == 0 {
                    return Err(Error::Invalid {
                        what: "HOST_CERT",
                        why: "the payload is empty".into(),
                    });
                }
                self.state = State::CertBody(header, len);
                Ok(None)
            }
            State::CertBody(header, _) => Ok(Some(Outcome::Tls {
                header,
                host_cert: Bytes::copy_from_slice(bytes),
            })),
            // Not reached: `wanted()` is zero when done, which is refused above.
            State::Done => Err(Error::BadLength {
                what: "handshake input",
                expected: 0,
                got: bytes.len(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::header::Version;
    use crate::ids::{BranchId, CmdId, SessionId};

    fn hex(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
        digits
            .chunks(2)
            .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
            .collect()
    }

    /// A host header with `reply`, version 2.0.1 and session id 0x11 × 28.
    fn host_header(reply: u8) -> Vec<u8> {
        let mut bytes = hex(&format!("{reply:02X} 0200 0000 0100"));
        bytes.extend_from_slice(&[0x11; 28]);
        bytes
    }

    /// Feeds `wire` the way a client does and returns the outcome and the bytes left over.
    fn drive(wire: &[u8]) -> Result<(Outcome, usize)> {
        let mut handshake = Handshake::new("t", "");
        let mut at = 0;
        loop {
            let n = handshake.wanted();
            let chunk = wire.get(at..at + n).expect("the test wire is long enough");
            at += n;
            if let Some(outcome) = handshake.handle(chunk)? {
                assert_eq!(handshake.wanted(), 0);
                return Ok((outcome, wire.len() - at));
            }
        }
    }

    fn expected_header(reply: Reply) -> HostHeader {
        HostHeader {
            reply,
            version: Version {
                major: 2,
                minor: 0,
                patch: 1,
            },
            session_id: SessionId([0x11; 28]),
        }
    }

    #[test]
    fn client_header_golden_bytes() {
        let handshake = Handshake::new("Cli", "host");
        let bytes = handshake.client_header().to_bytes();
        let mut expected = hex("4D524349 4300 6C00 6900");
        expected.resize(4 + 134, 0);
        expected.extend_from_slice(&hex("6800 6F00 7300 7400"));
        expected.resize(ClientHeader::LEN, 0);
        assert_eq!(&bytes[..], &expected[..]);
    }

    #[test]
    fn reply_1_is_plaintext_and_reads_nothing_more() {
        let mut wire = host_header(1);
        wire.extend_from_slice(&hex("02 0100 0000 000000"));
        let (outcome, left) = drive(&wire).unwrap();
        assert_eq!(outcome, Outcome::Plaintext(expected_header(Reply::NO_TLS)));
        assert_eq!(left, 8, "the first frame is left for the codec");
    }

    #[test]
    fn reply_2_reads_exactly_one_host_cert_frame() {
        let mut wire = host_header(2);
        // HOST_CERT (6) on ASYNC_SYS_MSG (2), branch 0, 5 bytes of "PEM!\n".
        wire.extend_from_slice(&hex("06 0200 0000 050000 50454D210A"));
        // The first TLS record byte must stay unread.
        wire.push(0x16);
        let (outcome, left) = drive(&wire).unwrap();
        assert_eq!(
            outcome,
            Outcome::Tls {
                header: expected_header(Reply::TLS),
                host_cert: Bytes::from_static(b"PEM!\n"),
            }
        );
        assert_eq!(left, 1);
    }

    #[test]
    fn reply_4_and_others_end_the_handshake() {
        let (outcome, _) = drive(&host_header(4)).unwrap();
        assert_eq!(outcome, Outcome::NoCert(expected_header(Reply::NO_CERT)));
        for reply in [0, 3, 9, 0xFF] {
            let (outcome, _) = drive(&host_header(reply)).unwrap();
            assert_eq!(outcome, Outcome::Refused(expected_header(Reply(reply))));
            assert_eq!(outcome.header().reply, Reply(reply));
        }
    }

    #[test]
    fn host_header_is_remembered_while_host_cert_is_read() {
        let mut handshake = Handshake::new("t", "");
        assert!(handshake.host_header().is_none());
        assert_eq!(handshake.handle(&host_header(2)).unwrap(), None);
        assert_eq!(handshake.host_header(), Some(&expected_header(Reply::TLS)));
        assert_eq!(handshake.wanted(), Frame::HEADER_LEN);
    }

    #[test]
    fn a_frame_other_than_host_cert_is_refused() {
        let mut wire = host_header(2);
        wire.extend_from_slice(&hex("02 0200 0000 010000 41"));
        assert!(matches!(drive(&wire), Err(Error::Invalid { .. })));
        let mut wire = host_header(2);
        wire.extend_from_slice(&hex("06 0200 0000 000000"));
        assert!(matches!(drive(&wire), Err(Error::Invalid { .. })));
    }

    #[test]
    fn an_oversize_host_cert_is_refused_before_it_is_read() {
        let mut handshake = Handshake::new("t", "");
        handshake.handle(&host_header(2)).unwrap();
        let err = handshake.handle(&hex("06 0200 0000 010001")).unwrap_err();
        assert!(matches!(
            err,
            Error::FrameTooLarge {
                len: 0x01_0001,
                max: Handshake::MAX_HOST_CERT
            }
        ));
        assert_eq!(handshake.wanted(), 0);
        // Exactly the maximum is fine.
        let mut handshake = Handshake::new("t", "");
        handshake.handle(&host_header(2)).unwrap();
        assert_eq!(handshake.handle(&hex("06 0200 0000 000001")).unwrap(), None);
        assert_eq!(handshake.wanted(), Handshake::MAX_HOST_CERT);
    }

    #[test]
    fn wrong_sized_input_and_input_after_the_end_are_errors() {
        let mut handshake = Handshake::new("t", "");
        assert!(matches!(
            handshake.handle(&[1; 34]),
            Err(Error::BadLength {
                expected: 35,
                got: 34,
                ..
            })
        ));
        assert_eq!(handshake.wanted(), 0);
        assert!(handshake.handle(&[]).is_err());
        let mut handshake = Handshake::new("t", "");
        handshake.handle(&host_header(1)).unwrap();
        assert!(handshake.handle(&host_header(1)).is_err());
    }

    #[test]
    fn host_cert_frame_round_trips_through_frame_encode() {
        let mut wire = BytesMut::from(&host_header(2)[..]);
        Frame::new(TypeId::HOST_CERT, CmdId(2), BranchId(0), vec![b'x'; 300])
            .encode(&mut wire)
            .unwrap();
        let (outcome, left) = drive(&wire).unwrap();
        assert_eq!(left, 0);
        assert!(matches!(outcome, Outcome::Tls { host_cert, .. } if host_cert.len() == 300));
    }
}
