//! Deciding whether the host is the right one: the certificate fingerprint, the [`Trust`]
//! policies, the [`PinStore`] behind trust on first use, and the rustls configurations that
//! enforce the decision during the TLS handshake.
//!
//! Invariant: no TLS handshake starts before the HOST_CERT certificate was accepted by the
//! policy, and a pinned policy's verifier accepts in TLS only a certificate with the same
//! fingerprint, so a host cannot show one certificate in HOST_CERT and use another. Names
//! and validity dates are not checked under a pin, as with ssh host keys: the pin is the
//! identity. Handshake signatures are always verified.

use std::{
    collections::HashMap,
    fmt,
    str::FromStr,
    sync::{Arc, Mutex, PoisonError},
};

use rustls::{
    ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature},
    pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject as _},
};

use super::error::{BoxError, Error, Result};

/// The SHA-256 digest of a certificate's DER. Displayed as colon-separated upper-case hex
/// (`AB:CD:…`), the form `mrci host run` prints and known-hosts files hold.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The fingerprint of the certificate `der`.
    pub fn of(der: &[u8]) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, der);
        let mut out = [0; 32];
        out.copy_from_slice(digest.as_ref());
        Self(out)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl FromStr for Fingerprint {
    type Err = Error;

    /// Reads 64 hex digits in either case, with or without `:` between the bytes.
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::InvalidFingerprint(s.to_owned());
        let digits: Vec<u8> = s.trim().bytes().filter(|b| *b != b':').collect();
        if digits.len() != 64 {
            return Err(bad());
        }
        let mut out = [0; 32];
        for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
            let text = std::str::from_utf8(pair).map_err(|_| bad())?;
            *byte = u8::from_str_radix(text, 16).map_err(|_| bad())?;
        }
        Ok(Self(out))
    }
}

/// Where trust on first use keeps its pins, keyed by `host:port`.
///
/// Call order during a connect: [`PinStore::pinned`]; for a host without a pin,
/// [`PinStore::accept_new`]; after the TLS handshake succeeded, [`PinStore::pin`]. The calls
/// are synchronous and made from the connecting task; a store that asks a person should do
/// so with `tokio::task::block_in_place` or similar.
pub trait PinStore: Send + Sync {
    /// The fingerprint pinned for `host`, as stored (it is parsed with
    /// [`Fingerprint::from_str`]; a text that does not parse matches nothing).
    ///
    /// # Errors
    /// If the store cannot be read.
    fn pinned(&self, host: &str) -> Result<Option<String>, BoxError>;

    /// Whether to trust `host`, seen for the first time, with a certificate of this
    /// fingerprint. `Ok(false)` refuses with [`Error::NotAccepted`].
    ///
    /// # Errors
    /// A refusal with a reason of its own, reported as [`Error::PinStore`].
    fn accept_new(&self, host: &str, fingerprint: &Fingerprint) -> Result<bool, BoxError>;

    /// Records the pin of a newly trusted host.
    ///
    /// # Errors
    /// If the store cannot be written.
    fn pin(&self, host: &str, fingerprint: &Fingerprint) -> Result<(), BoxError>;
}

/// Pins kept in memory for the life of the value: every new host is accepted on first use,
/// and a later connect to the same `host:port` must present the same certificate.
#[derive(Debug, Default)]
pub struct MemoryPins {
    pins: Mutex<HashMap<String, Fingerprint>>,
}

impl PinStore for MemoryPins {
    fn pinned(&self, host: &str) -> Result<Option<String>, BoxError> {
        let pins = self.pins.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(pins.get(host).map(ToString::to_string))
    }

    fn accept_new(&self, _host: &str, _fingerprint: &Fingerprint) -> Result<bool, BoxError> {
        Ok(true)
    }

    fn pin(&self, host: &str, fingerprint: &Fingerprint) -> Result<(), BoxError> {
        let mut pins = self.pins.lock().unwrap_or_else(PoisonError::into_inner);
        pins.entry(host.to_owned()).or_insert(*fingerprint);
        Ok(())
    }
}

/// How the client decides that the host is the right one.
#[derive(Clone)]
pub enum Trust {
    /// Accept only the certificate with this fingerprint (as `mrci host run` prints it).
    Fingerprint(Fingerprint),
    /// Trust on first use: the first certificate seen for a `host:port` is pinned in the
    /// store and required from then on.
    FirstUse(Arc<dyn PinStore>),
    /// Verify the certificate chain and name against these CA certificates (webpki).
    Roots(Arc<RootCertStore>),
    /// No TLS: the host must answer with a plaintext session, which hosts offer (when
    /// configured to) only to loopback peers. A host that asks for TLS is refused.
    PlaintextLoopback,
}

impl Trust {
    /// Trust on first use with pins kept in memory ([`MemoryPins`]).
    pub fn first_use_in_memory() -> Self {
        Self::FirstUse(Arc::new(MemoryPins::default()))
    }

    /// CA roots from PEM text (one or more certificates).
    ///
    /// # Errors
    /// [`Error::Certificate`] if the text holds no usable certificate.
    pub fn roots_from_pem(pem: &[u8]) -> Result<Self> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| Error::Certificate(e.to_string()))?;
            roots
                .add(cert)
                .map_err(|e| Error::Certificate(e.to_string()))?;
        }
        if roots.is_empty() {
            return Err(Error::Certificate("no certificate in the CA PEM".into()));
        }
        Ok(Self::Roots(Arc::new(roots)))
    }
}

impl fmt::Debug for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fingerprint(fp) => f.debug_tuple("Fingerprint").field(fp).finish(),
            Self::FirstUse(_) => f.write_str("FirstUse(..)"),
            Self::Roots(roots) => write!(f, "Roots({} certificates)", roots.len()),
            Self::PlaintextLoopback => f.write_str("PlaintextLoopback"),
        }
    }
}

/// The leaf certificate of a HOST_CERT payload: the first certificate of PEM text, or the
/// payload itself when it is DER (the original host may store either).
pub(crate) fn leaf_of(host_cert: &[u8]) -> Result<CertificateDer<'static>> {
    match CertificateDer::pem_slice_iter(host_cert).next() {
        Some(Ok(cert)) => Ok(cert),
        Some(Err(e)) => Err(Error::Certificate(format!("HOST_CERT: {e}"))),
        None if host_cert.first() == Some(&0x30) => Ok(CertificateDer::from(host_cert.to_vec())),
        None => Err(Error::Certificate("HOST_CERT holds no certificate".into())),
    }
}

/// What the policy decided about a presented certificate.
pub(crate) struct Decision {
    /// Pin the certificate in this store once the TLS handshake succeeded.
    pub(crate) pin_after: Option<Arc<dyn PinStore>>,
    /// The fingerprint the TLS verifier must see; `None` verifies against CA roots.
    pub(crate) pinned: Option<Fingerprint>,
}

/// Applies `trust` to the certificate `presented` of `host` (`name:port`).
///
/// # Errors
/// [`Error::PinMismatch`], [`Error::NotAccepted`] or [`Error::PinStore`]; [`Error::TlsRequired`]
/// under [`Trust::PlaintextLoopback`].
pub(crate) fn decide(trust: &Trust, host: &str, presented: &Fingerprint) -> Result<Decision> {
    let mismatch = |pinned: String| Error::PinMismatch {
        host: host.to_owned(),
        presented: presented.to_string(),
        pinned,
    };
    match trust {
        Trust::Fingerprint(expected) if expected == presented => Ok(Decision {
            pin_after: None,
            pinned: Some(*expected),
        }),
        Trust::Fingerprint(expected) => Err(mismatch(expected.to_string())),
        Trust::FirstUse(store) => {
            let pin_after = match store.pinned(host).map_err(Error::PinStore)? {
                Some(pinned) if pinned.parse::<Fingerprint>().ok() == Some(*presented) => None,
                Some(pinned) => return Err(mismatch(pinned)),
                None if store.accept_new(host, presented).map_err(Error::PinStore)? => {
                    Some(Arc::clone(store))
                }
                None => {
                    return Err(Error::NotAccepted {
                        host: host.to_owned(),
                        fingerprint: presented.to_string(),
                    });
                }
            };
            Ok(Decision {
                pin_after,
                pinned: Some(*presented),
            })
        }
        Trust::Roots(_) => Ok(Decision {
            pin_after: None,
            pinned: None,
        }),
        Trust::PlaintextLoopback => Err(Error::TlsRequired {
            target: host.to_owned(),
        }),
    }
}

/// The last TLS configuration built, reused while the pin (or the roots) stay the same, so
/// that repeated connects skip building it and can resume TLS sessions.
#[derive(Debug, Default)]
pub(crate) struct ConfigCache {
    last: Mutex<Option<(Option<Fingerprint>, Arc<ClientConfig>)>>,
}

impl ConfigCache {
    /// The configuration for `pinned` (or, for `None`, the roots of `trust`).
    pub(crate) fn get(
        &self,
        trust: &Trust,
        pinned: Option<Fingerprint>,
    ) -> Result<Arc<ClientConfig>> {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((key, config)) = last.as_ref()
            && *key == pinned
        {
            return Ok(Arc::clone(config));
        }
        let config = Arc::new(build_config(trust, pinned)?);
        *last = Some((pinned, Arc::clone(&config)));
        Ok(config)
    }
}

fn build_config(trust: &Trust, pinned: Option<Fingerprint>) -> Result<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::TlsSetup(e.to_string()))?;
    let config = match (pinned, trust) {
        (Some(fingerprint), _) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedCert {
                fingerprint,
                provider,
            }))
            .with_no_client_auth(),
        (None, Trust::Roots(roots)) => builder
            .with_root_certificates(Arc::clone(roots))
            .with_no_client_auth(),
        (None, _) => return Err(Error::TlsSetup("no certificate policy".into())),
    };
    Ok(config)
}

/// The TLS server name: the common name asked for, else the host.
pub(crate) fn server_name(host: &str, common_name: &str) -> Result<ServerName<'static>> {
    let name = if common_name.is_empty() {
        host
    } else {
        common_name
    };
    if let Ok(ip) = name.parse::<std::net::IpAddr>() {
        return Ok(ServerName::IpAddress(ip.into()));
    }
    ServerName::try_from(name.to_owned())
        .map_err(|_| Error::TlsSetup(format!("{name:?} is not a valid TLS server name")))
}

/// Accepts one certificate, by fingerprint, and checks the handshake signatures.
#[derive(Debug)]
struct PinnedCert {
    fingerprint: Fingerprint,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if Fingerprint::of(end_entity) == self.fingerprint {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "the TLS certificate differs from the pinned HOST_CERT".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_golden_value_and_text_forms() {
        // SHA-256 of the empty input.
        let fp = Fingerprint::of(b"");
        let text = "E3:B0:C4:42:98:FC:1C:14:9A:FB:F4:C8:99:6F:B9:24:\
                    27:AE:41:E4:64:9B:93:4C:A4:95:99:1B:78:52:B8:55";
        assert_eq!(fp.to_string(), text);
        assert_eq!(text.parse::<Fingerprint>().unwrap(), fp);
        let bare = text.replace(':', "").to_lowercase();
        assert_eq!(bare.parse::<Fingerprint>().unwrap(), fp);
        assert!("AA:BB".parse::<Fingerprint>().is_err());
        assert!("zz".repeat(32).parse::<Fingerprint>().is_err());
    }

    #[test]
    fn first_use_pins_then_requires_the_same_certificate() {
        let trust = Trust::first_use_in_memory();
        let (a, b) = (Fingerprint([1; 32]), Fingerprint([2; 32]));
        let decision = decide(&trust, "h:1", &a).unwrap();
        let store = decision.pin_after.expect("a new host is pinned after TLS");
        assert_eq!(decision.pinned, Some(a));
        store.pin("h:1", &a).unwrap();
        assert!(decide(&trust, "h:1", &a).unwrap().pin_after.is_none());
        match decide(&trust, "h:1", &b) {
            Err(Error::PinMismatch { pinned, .. }) => assert_eq!(pinned, a.to_string()),
            other => panic!("expected a mismatch, got {:?}", other.map(|_| ())),
        }
        // Another port is another host.
        assert!(decide(&trust, "h:2", &b).is_ok());
    }

    #[test]
    fn fixed_fingerprint_and_plaintext_policies() {
        let a = Fingerprint([1; 32]);
        let trust = Trust::Fingerprint(a);
        assert_eq!(decide(&trust, "h:1", &a).unwrap().pinned, Some(a));
        assert!(matches!(
            decide(&trust, "h:1", &Fingerprint([3; 32])),
            Err(Error::PinMismatch { .. })
        ));
        assert!(matches!(
            decide(&Trust::PlaintextLoopback, "h:1", &a),
            Err(Error::TlsRequired { .. })
        ));
    }

    #[test]
    fn host_cert_as_pem_or_der() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let from_pem = leaf_of(cert.pem().as_bytes()).unwrap();
        assert_eq!(from_pem.as_ref(), cert.der().as_ref());
        let from_der = leaf_of(cert.der()).unwrap();
        assert_eq!(from_der.as_ref(), cert.der().as_ref());
        assert!(leaf_of(b"not a certificate").is_err());
        assert!(Trust::roots_from_pem(cert.pem().as_bytes()).is_ok());
        assert!(Trust::roots_from_pem(b"").is_err());
    }
}
