//! TLS material: the host certificate and key (configured PEM files, or a self-signed ECDSA
//! P-256 certificate generated into the data directory on first start), the rustls server
//! configuration, and a client configuration that trusts exactly one certificate.
//!
//! Invariant: only the ring provider is used (never the process default), and the private
//! key file is created with mode 0600, never widened afterwards.

use std::{
    fs,
    io::{BufReader, Write},
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::Path,
    sync::Arc,
};

use rustls::{ClientConfig, RootCertStore, ServerConfig, pki_types::CertificateDer};

use crate::{Config, Error, Result};

const CERT_FILE: &str = "cert.pem";
const KEY_FILE: &str = "key.pem";
/// Where `add_cert` keeps certificates per common name, inside the data directory:
/// `<name>.pem` and `<name>.key` (mode 0600).
const CERT_DIR: &str = "certs";

/// A certificate expiring within this many days is warned about (log, `mrci host status`).
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// The host's certificate and the rustls configuration built from it, and the certificates
/// added per common name.
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
    /// Certificates added with `add_cert`, by lower-case common name; they win over the
    /// default certificate for their name.
    pub named: std::collections::BTreeMap<String, Served>,
}

/// One certificate the host can serve.
#[derive(Clone)]
pub struct Served {
    /// The certificate chain as PEM.
    pub cert_pem: String,
    /// The rustls server configuration.
    pub server_config: Arc<ServerConfig>,
    /// SHA-256 of the leaf certificate's DER.
    pub fingerprint: String,
}

/// What `cert_info` shows about a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertInfo {
    /// The subject's distinguished name.
    pub subject: String,
    /// The issuer's distinguished name.
    pub issuer: String,
    /// Issued by itself (issuer is the subject and its own key verifies the signature).
    pub self_signed: bool,
    /// Valid from (Unix seconds).
    pub not_before: i64,
    /// Valid until (Unix seconds).
    pub not_after: i64,
    /// SHA-256 of the DER, colon-separated upper-case hex.
    pub fingerprint: String,
    /// The DNS names of its subject alternative names.
    pub dns_names: Vec<String>,
}

impl CertInfo {
    /// Reads the first certificate of a PEM text.
    ///
    /// # Errors
    /// If the PEM holds no certificate X.509 can parse.
    pub fn from_pem(pem: &str) -> Result<Self> {
        let certs = parse_certs(pem)?;
        let der = certs.first().ok_or_else(|| tls_err("no certificate"))?;
        let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(tls_err)?;
        let self_signed = cert.subject() == cert.issuer() && cert.verify_signature(None).is_ok();
        let validity = cert.validity();
        Ok(Self {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            self_signed,
            not_before: validity.not_before.timestamp(),
            not_after: validity.not_after.timestamp(),
            fingerprint: fingerprint(der),
            dns_names: dns_names(der),
        })
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Logs a warning for a certificate that expired or expires within
/// [`EXPIRY_WARNING_DAYS`].
fn warn_expiry(what: &str, pem: &str) {
    let Ok(info) = CertInfo::from_pem(pem) else {
        return;
    };
    let left = info.not_after - now_secs();
    if left <= 0 {
        tracing::warn!(cert = what, "the certificate has expired");
    } else if left < EXPIRY_WARNING_DAYS * 86_400 {
        tracing::warn!(
            cert = what,
            days = left / 86_400,
            "the certificate expires soon"
        );
    }
}

/// True for a common name `add_cert` accepts: 1–200 characters of letters, digits and
/// `. - _ : *`, not starting with a dot (it names files in the data directory).
pub fn valid_common_name(cn: &str) -> bool {
    (1..=200).contains(&cn.len())
        && !cn.starts_with('.')
        && cn
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_:*".contains(c))
}

/// A certificate and key that belong together, ready to serve.
///
/// # Errors
/// If the PEM texts hold no certificate or key, or the key is not the certificate's.
pub fn load_pair(cert_pem: &str, key_pem: &[u8]) -> Result<Served> {
    let certs = parse_certs(cert_pem)?;
    let key = rustls_pemfile::private_key(&mut BufReader::new(key_pem))
        .map_err(tls_err)?
        .ok_or_else(|| tls_err("no private key in the key file"))?;
    let fingerprint = fingerprint(certs.first().ok_or_else(|| tls_err("no certificate"))?);
    let server_config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| Error::Tls(format!("the key does not fit the certificate: {e}")))?;
    Ok(Served {
        cert_pem: cert_pem.to_owned(),
        server_config: Arc::new(server_config),
        fingerprint,
    })
}

/// Checks a certificate and key for `cn` (they belong together, the certificate is valid
/// now) and stores them in the data directory, replacing an earlier pair of that name.
/// Returns what the certificate says.
///
/// # Errors
/// [`Error::Invalid`] for a bad name, an unusable pair or a certificate outside its
/// validity; IO failures.
pub fn install_named(
    data_dir: &Path,
    cn: &str,
    cert_pem: &str,
    key_pem: &[u8],
) -> Result<CertInfo> {
    if !valid_common_name(cn) {
        return Err(Error::Invalid(format!("{cn:?} is not a valid common name")));
    }
    let invalid = |e: Error| Error::Invalid(e.to_string());
    load_pair(cert_pem, key_pem).map_err(invalid)?;
    let info = CertInfo::from_pem(cert_pem).map_err(invalid)?;
    let now = now_secs();
    if info.not_after <= now {
        return Err(Error::Invalid("the certificate has expired".into()));
    }
    if info.not_before > now {
        return Err(Error::Invalid("the certificate is not valid yet".into()));
    }
    let dir = data_dir.join(CERT_DIR);
    fs::create_dir_all(&dir)?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
    let cn = cn.to_ascii_lowercase();
    write_new(&dir.join(format!("{cn}.key")), key_pem, 0o600)?;
    write_new(&dir.join(format!("{cn}.pem")), cert_pem.as_bytes(), 0o644)?;
    Ok(info)
}

/// Removes the pair stored for `cn`. False if there was none.
///
/// # Errors
/// IO failures.
pub fn remove_named(data_dir: &Path, cn: &str) -> Result<bool> {
    if !valid_common_name(cn) {
        return Ok(false);
    }
    let dir = data_dir.join(CERT_DIR);
    let cn = cn.to_ascii_lowercase();
    let found = match fs::remove_file(dir.join(format!("{cn}.pem"))) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(e.into()),
    };
    match fs::remove_file(dir.join(format!("{cn}.key"))) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    Ok(found)
}

/// The certificates stored per common name: (name, PEM), in name order.
pub fn named_pems(data_dir: &Path) -> Vec<(String, String)> {
    let Ok(entries) = fs::read_dir(data_dir.join(CERT_DIR)) else {
        return Vec::new();
    };
    let mut out: Vec<(String, String)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let cn = name.strip_suffix(".pem")?.to_owned();
            let pem = fs::read_to_string(e.path()).ok()?;
            Some((cn, pem))
        })
        .collect();
    out.sort();
    out
}

fn load_named(data_dir: &Path) -> std::collections::BTreeMap<String, Served> {
    let mut named = std::collections::BTreeMap::new();
    let dir = data_dir.join(CERT_DIR);
    for (cn, pem) in named_pems(data_dir) {
        let key = fs::read(dir.join(format!("{cn}.key")));
        match key
            .map_err(Error::from)
            .and_then(|key| load_pair(&pem, &key))
        {
            Ok(served) => {
                warn_expiry(&cn, &pem);
                named.insert(cn, served);
            }
            Err(e) => tracing::warn!(%cn, error = %e, "stored certificate not loaded"),
        }
    }
    named
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
    /// directory, generating it first if it does not exist yet. The names served are the
    /// configured common names plus the DNS names the certificate carries.
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
                names = unique(names);
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
        warn_if_key_readable(&key_path);
        let key_pem = fs::read(&key_path)
            .map_err(|e| Error::Tls(format!("cannot read {}: {e}", key_path.display())))?;
        let certs = parse_certs(&cert_pem)?;
        let key = rustls_pemfile::private_key(&mut BufReader::new(&key_pem[..]))
            .map_err(tls_err)?
            .ok_or_else(|| Error::Tls(format!("no private key in {}", key_path.display())))?;
        let leaf = certs.first().ok_or_else(|| tls_err("no certificate"))?;
        let fingerprint = fingerprint(leaf);
        let in_cert = dns_names(leaf);
        for name in &config.tls.common_names {
            if !in_cert.iter().any(|n| n.eq_ignore_ascii_case(name)) {
                tracing::warn!(%name, cert = %cert_path.display(), "the certificate does not cover a configured common name");
            }
        }
        names.extend(in_cert);
        let server_config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(tls_err)?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(tls_err)?;
        warn_expiry("default", &cert_pem);
        Ok(Self {
            cert_pem,
            server_config: Arc::new(server_config),
            fingerprint,
            common_names: unique(names),
            named: load_named(&config.data_dir),
        })
    }

    /// The certificate (PEM) and configuration for a client asking for `common_name`: the
    /// one added for that name, else the default certificate if it covers the name (an
    /// empty name takes the default). `None`: no certificate for that name.
    pub fn pick(&self, common_name: &str) -> Option<(&str, &Arc<ServerConfig>)> {
        if let Some(served) = self.named.get(&common_name.to_ascii_lowercase()) {
            return Some((&served.cert_pem, &served.server_config));
        }
        self.serves(common_name)
            .then_some((self.cert_pem.as_str(), &self.server_config))
    }

    /// The last day (Unix seconds) of the certificate served by default, if it can be read
    /// (for `mrci host status`).
    pub fn existing_not_after(config: &Config) -> Option<i64> {
        let pem = Self::existing_pem(config)?;
        CertInfo::from_pem(&pem).ok().map(|i| i.not_after)
    }

    /// The PEM of the certificate served by default (configured path, else the data
    /// directory's), if it exists yet.
    fn existing_pem(config: &Config) -> Option<String> {
        let path = config
            .tls
            .cert_path
            .clone()
            .unwrap_or_else(|| config.data_dir.join(CERT_FILE));
        fs::read_to_string(path).ok()
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
        let pem = Self::existing_pem(config)?;
        parse_certs(&pem).ok()?.first().map(|der| fingerprint(der))
    }
}

/// Names in their first order, without case-insensitive repeats.
fn unique(names: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(names.len());
    for name in names {
        if !out.iter().any(|n| n.eq_ignore_ascii_case(&name)) {
            out.push(name);
        }
    }
    out
}

/// The DNS names in a certificate's subject alternative names (none if it cannot be parsed).
fn dns_names(der: &CertificateDer<'_>) -> Vec<String> {
    webpki::EndEntityCert::try_from(der)
        .map(|cert| cert.valid_dns_names().map(str::to_owned).collect())
        .unwrap_or_default()
}

fn warn_if_key_readable(key_path: &Path) {
    if let Ok(meta) = fs::metadata(key_path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(key = %key_path.display(), "the private key file is readable by other users");
    }
}

/// Writes the key and then the certificate. Each goes to a fresh temporary file (the key's
/// created with mode 0600) that is renamed into place, so a crash never leaves a partial
/// file and an older key file's permissions are never inherited.
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
    write_new(key_path, key.serialize_pem().as_bytes(), 0o600)?;
    write_new(cert_path, cert.pem().as_bytes(), 0o644)
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = Path::new(&tmp);
    if let Err(e) = fs::remove_file(tmp)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        return Err(e.into());
    }
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(tmp, path)?;
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

/// The SHA-256 fingerprint of a DER certificate as colon-separated upper-case hex: the form
/// the host prints and clients pin.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
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
    let certs = parse_certs(pem)?;
    certs
        .first()
        .map(|c| c.to_vec())
        .ok_or_else(|| tls_err("no certificate"))
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

    #[test]
    fn configured_pair_serves_its_names_and_the_configured_ones() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["mrci.example.org".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let (cert_path, key_path) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        fs::write(&cert_path, cert.pem()).unwrap();
        fs::write(&key_path, key.serialize_pem()).unwrap();
        let mut config = Config {
            data_dir: dir.path().join("data"),
            ..Config::default()
        };
        config.tls.cert_path = Some(cert_path);
        config.tls.key_path = Some(key_path);
        config.tls.common_names = vec!["alias.example.org".into(), "Alias.Example.org".into()];
        let material = TlsMaterial::load_or_generate(&config).unwrap();
        assert_eq!(
            material.common_names,
            ["alias.example.org", "mrci.example.org"]
        );
        assert!(material.serves("MRCI.example.org") && !material.serves("localhost"));
        assert!(!config.data_dir.exists(), "nothing generated");
        assert_eq!(material.fingerprint, fingerprint(cert.der()));
    }

    #[test]
    fn generated_names_are_unique_and_a_stale_temp_file_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        config.tls.common_names = vec!["LOCALHOST".into(), "host.example".into()];
        fs::write(dir.path().join("key.pem.tmp"), "stale").unwrap();
        let material = TlsMaterial::load_or_generate(&config).unwrap();
        assert_eq!(
            material.common_names,
            ["LOCALHOST", "host.example", "127.0.0.1", "::1"]
        );
        assert!(!dir.path().join("key.pem.tmp").exists());
        let mode = fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
