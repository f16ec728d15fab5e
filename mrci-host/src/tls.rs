//! TLS material: the host certificate and key (configured PEM files, or a self-signed ECDSA
//! P-256 certificate generated into the data directory on first start), the rustls server
//! configuration, and a client configuration that trusts exactly one certificate.
//!
//! Invariant: only the ring provider is used (never the process default), and the private
//! key file is created with mode 0600, never widened afterwards.

use std::{
    fs,
    io::{BufReader, Write},
    os::unix::fs::OpenOptionsExt,
    path::Path,
    sync::Arc,
};

use rustls::{ClientConfig, RootCertStore, ServerConfig, pki_types::CertificateDer};

use crate::{Config, Error, Result};

const CERT_FILE: &str = "cert.pem";
const KEY_FILE: &str = "key.pem";

/// The host's certificate and the rustls configuration built from it.
#[derive(Clone)]
pub struct TlsMaterial {
    /// The certificate chain as PEM (sent in HOST_CERT).
    pub cert_pem: String,
    /// The rustls server configuration.
    pub server_config: Arc<ServerConfig>,
    /// SHA-256 of the leaf certificate's DER, colon-separated upper-case hex.
    pub fingerprint: String,
    /// Common names a client may ask for.
    pub common_names: Vec<String>,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_err(e: impl std::fmt::Display) -> Error {
    Error::Tls(e.to_string())
}

impl TlsMaterial {
    /// Loads the configured certificate and key, or the generated pair in the data
    /// directory, generating it first if it does not exist yet.
    ///
    /// # Errors
    /// If files cannot be read or written, or the PEM does not hold a usable pair.
    pub fn load_or_generate(config: &Config) -> Result<Self> {
        let mut names = config.tls.common_names.clone();
        let (cert_path, key_path) = match (&config.tls.cert_path, &config.tls.key_path) {
            (Some(cert), Some(key)) => (cert.clone(), key.clone()),
            (None, None) => {
                let cert = config.data_dir.join(CERT_FILE);
                let key = config.data_dir.join(KEY_FILE);
                names.extend(["localhost".into(), "127.0.0.1".into(), "::1".into()]);
                names.dedup();
                if !cert.exists() || !key.exists() {
                    generate(&names, &cert, &key)?;
                    tracing::info!(cert = %cert.display(), "generated a self-signed certificate");
                }
                (cert, key)
            }
            _ => {
                return Err(Error::Config(
                    "tls.cert_path and tls.key_path must be set together".into(),
                ));
            }
        };
        let cert_pem = fs::read_to_string(&cert_path)
            .map_err(|e| Error::Tls(format!("cannot read {}: {e}", cert_path.display())))?;
        let key_pem = fs::read(&key_path)
            .map_err(|e| Error::Tls(format!("cannot read {}: {e}", key_path.display())))?;
        let certs = parse_certs(&cert_pem)?;
        let key = rustls_pemfile::private_key(&mut BufReader::new(&key_pem[..]))
            .map_err(tls_err)?
            .ok_or_else(|| Error::Tls(format!("no private key in {}", key_path.display())))?;
        let fingerprint = fingerprint(&certs[0]);
        let server_config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(tls_err)?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(tls_err)?;
        Ok(Self {
            cert_pem,
            server_config: Arc::new(server_config),
            fingerprint,
            common_names: names,
        })
    }

    /// True if a client asking for `common_name` can be served. An empty name (a client
    /// that does not care) gets the host's certificate.
    pub fn serves(&self, common_name: &str) -> bool {
        common_name.is_empty()
            || self
                .common_names
                .iter()
                .any(|n| n.eq_ignore_ascii_case(common_name))
    }

    /// The fingerprint of the certificate in the data directory or configuration, if one
    /// exists yet (for `mrci host status`).
    pub fn existing_fingerprint(config: &Config) -> Option<String> {
        let path = config
            .tls
            .cert_path
            .clone()
            .unwrap_or_else(|| config.data_dir.join(CERT_FILE));
        let pem = fs::read_to_string(path).ok()?;
        parse_certs(&pem).ok().map(|certs| fingerprint(&certs[0]))
    }
}

fn generate(names: &[String], cert_path: &Path, key_path: &Path) -> Result<()> {
    let mut params = rcgen::CertificateParams::new(names.to_vec()).map_err(tls_err)?;
    let cn = names.first().cloned().unwrap_or_else(|| "localhost".into());
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("MRCI host {cn}"));
    let key = rcgen::KeyPair::generate().map_err(tls_err)?;
    let cert = params.self_signed(&key).map_err(tls_err)?;
    if let Some(dir) = key_path.parent() {
        fs::create_dir_all(dir)?;
    }
    let mut key_file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(key_path)?;
    key_file.write_all(key.serialize_pem().as_bytes())?;
    fs::write(cert_path, cert.pem())?;
    Ok(())
}

fn parse_certs(pem: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs: Vec<_> = rustls_pemfile::certs(&mut BufReader::new(pem.as_bytes()))
        .collect::<std::result::Result<_, _>>()
        .map_err(tls_err)?;
    if certs.is_empty() {
        return Err(Error::Tls("no certificate in the PEM".into()));
    }
    Ok(certs)
}

fn fingerprint(der: &CertificateDer<'_>) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der.as_ref());
    digest
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The DER of the first certificate in a PEM text.
///
/// # Errors
/// If the PEM holds no certificate.
pub fn pem_to_der(pem: &str) -> Result<Vec<u8>> {
    Ok(parse_certs(pem)?.remove(0).to_vec())
}

/// A client configuration that trusts exactly the certificates in `cert_pem` (what a client
/// does with the HOST_CERT it was sent, or with a pinned certificate).
///
/// # Errors
/// If the PEM holds no usable certificate.
pub fn client_config_trusting(cert_pem: &str) -> Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    for cert in parse_certs(cert_pem)? {
        roots.add(cert).map_err(tls_err)?;
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[tokio::test]
    async fn generate_reload_and_handshake() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        assert!(TlsMaterial::existing_fingerprint(&config).is_none());
        let first = TlsMaterial::load_or_generate(&config).unwrap();
        let again = TlsMaterial::load_or_generate(&config).unwrap();
        assert_eq!(first.fingerprint, again.fingerprint);
        assert_eq!(
            TlsMaterial::existing_fingerprint(&config).as_ref(),
            Some(&first.fingerprint)
        );
        let mode = fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(first.serves("LOCALHOST") && first.serves("") && !first.serves("other.example"));

        let (client_io, server_io) = tokio::io::duplex(16 * 1024);
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&first.server_config));
        let connector =
            tokio_rustls::TlsConnector::from(client_config_trusting(&first.cert_pem).unwrap());
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let (server, client) = tokio::join!(
            acceptor.accept(server_io),
            connector.connect(name, client_io)
        );
        server.unwrap();
        let client = client.unwrap();
        let presented = client.get_ref().1.peer_certificates().unwrap()[0].to_vec();
        assert_eq!(presented, pem_to_der(&first.cert_pem).unwrap());
    }

    #[test]
    fn half_configured_pair_is_refused() {
        let mut config = Config::default();
        config.tls.cert_path = Some("x.pem".into());
        assert!(matches!(
            TlsMaterial::load_or_generate(&config),
            Err(Error::Config(_))
        ));
    }
}
