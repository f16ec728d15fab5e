//! `--ca FILE`: a host whose certificate a CA signed is verified the usual way (chain and
//! name), with no fingerprint to confirm, and a certificate from another CA is refused.

use std::{
    path::Path,
    process::{Command, Output, Stdio},
};

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

use crate::support::{Host, mrci};

/// A CA certificate (PEM) and the issuer that signs with it.
fn ca() -> (String, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().expect("CA key");
    let cert = params.self_signed(&key).expect("CA certificate");
    (cert.pem(), Issuer::new(params, key))
}

/// Writes a certificate for localhost/127.0.0.1 signed by `issuer` where the host looks for
/// its certificate and key.
fn install_leaf(data: &Path, issuer: &Issuer<'static, KeyPair>) {
    let params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("leaf params");
    let key = KeyPair::generate().expect("leaf key");
    let cert = params.signed_by(&key, issuer).expect("leaf certificate");
    std::fs::write(data.join("cert.pem"), cert.pem()).expect("write cert");
    std::fs::write(data.join("key.pem"), key.serialize_pem()).expect("write key");
}

fn run_with_ca(host: &Host, ca_file: &Path, password_file: &Path) -> Output {
    Command::new(mrci())
        .arg("run")
        .arg(host.target())
        .arg("--ca")
        .arg(ca_file)
        .args(["--user", "admin", "--password-file"])
        .arg(password_file)
        .arg("my_info")
        .env_remove("MRCI_PASSWORD")
        .stdin(Stdio::null())
        .output()
        .expect("run mrci run")
}

#[test]
fn a_ca_signed_host_is_verified_without_pinning_and_another_ca_is_refused() {
    let (ca_pem, issuer) = ca();
    let host = Host::start_prepared(|data| install_leaf(data, &issuer));
    drop(host.first_login("admin"));
    let password_file = host.password_file();
    let ca_file = host.path("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();

    let out = run_with_ca(&host, &ca_file, &password_file);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("User name:      admin"),
        "{out:?}"
    );

    let (other_pem, _) = ca();
    let other = host.path("other-ca.pem");
    std::fs::write(&other, other_pem).unwrap();
    let refused = run_with_ca(&host, &other, &password_file);
    assert!(!refused.status.success(), "{refused:?}");
    let stderr = String::from_utf8_lossy(&refused.stderr).to_lowercase();
    assert!(stderr.contains("certificate"), "{stderr}");
}
