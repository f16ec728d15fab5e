//! Certificates per common name (issue 15): a client asking for a name gets the certificate
//! added for it, a replacement takes effect for the next connection, and `cert_info` tells
//! an expired certificate and one signed by a CA from a self-signed one.

use std::path::{Path, PathBuf};

use mrci_tests::{TestClient, TestHost};

const PW: &str = "Oper4te-tests!";

/// A certificate for `name` and its key, as PEM files in `dir`.
fn pair(dir: &Path, file: &str, params: rcgen::CertificateParams) -> (PathBuf, PathBuf, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("cert");
    let (cert_path, key_path) = (
        dir.join(format!("{file}.pem")),
        dir.join(format!("{file}.key")),
    );
    std::fs::write(&cert_path, cert.pem()).expect("write cert");
    std::fs::write(&key_path, key.serialize_pem()).expect("write key");
    (cert_path, key_path, mrci_host::tls::fingerprint(cert.der()))
}

fn params(name: &str) -> rcgen::CertificateParams {
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params
}

fn served_fingerprint(client: &TestClient) -> String {
    mrci_host::tls::fingerprint(&client.peer_certificate().expect("TLS"))
}

#[tokio::test]
async fn a_client_asking_for_a_name_gets_its_certificate_and_replacements_apply_at_once()
-> anyhow::Result<()> {
    let host = TestHost::start().await?;
    host.add_user("root_admin", PW, "admin").await?;
    let files = tempfile::tempdir()?;
    let mut admin = TestClient::connect(host.addr).await?;
    admin.login("root_admin", PW).await?;
    assert!(
        TestClient::connect_cn(host.addr, "alt.example")
            .await
            .is_err(),
        "no certificate for that name yet"
    );

    let (cert, key, first) = pair(files.path(), "one", params("alt.example"));
    let (_, other_key, _) = pair(files.path(), "other", params("alt.example"));
    let err = admin
        .refused(
            "add_cert",
            &format!(
                "-name alt.example -cert {} -priv {}",
                cert.display(),
                other_key.display()
            ),
        )
        .await?;
    assert!(err.contains("does not fit"), "{err}");
    let out = admin
        .ok(
            "add_cert",
            &format!(
                "-name alt.example -cert {} -priv {}",
                cert.display(),
                key.display()
            ),
        )
        .await?;
    assert!(out.contains(&first), "{out}");
    let client = TestClient::connect_cn(host.addr, "alt.example").await?;
    assert_eq!(served_fingerprint(&client), first);
    let default = TestClient::connect(host.addr).await?;
    assert_eq!(served_fingerprint(&default), host.ctx.fingerprint());

    let (cert2, key2, second) = pair(files.path(), "two", params("alt.example"));
    admin
        .ok(
            "add_cert",
            &format!(
                "-name alt.example -cert {} -priv {} -force",
                cert2.display(),
                key2.display()
            ),
        )
        .await?;
    let client = TestClient::connect_cn(host.addr, "ALT.example").await?;
    assert_eq!(served_fingerprint(&client), second);
    assert_ne!(first, second);

    let list = admin.ok("ls_certs", "").await?;
    assert!(
        list.contains("alt.example") && list.contains(&second),
        "{list}"
    );
    let info = admin.ok("cert_info", "-name alt.example").await?;
    assert!(info.contains("self-signed: yes"), "{info}");
    assert!(info.contains(&second), "{info}");
    let info = admin.ok("cert_info", "").await?;
    assert!(
        info.contains("(default)") && info.contains(&host.ctx.fingerprint()),
        "{info}"
    );

    assert!(
        admin
            .ok("rm_cert", "-name alt.example -force")
            .await?
            .contains("removed")
    );
    assert!(
        TestClient::connect_cn(host.addr, "alt.example")
            .await
            .is_err()
    );
    host.shutdown().await
}

#[tokio::test]
async fn cert_info_tells_expired_and_ca_signed_certificates() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    host.add_user("root_admin", PW, "admin").await?;
    let mut admin = TestClient::connect(host.addr).await?;
    admin.login("root_admin", PW).await?;
    let files = tempfile::tempdir()?;

    let mut old = params("old.example");
    old.not_before = rcgen::date_time_ymd(2020, 1, 1);
    old.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let (cert, key, _) = pair(files.path(), "old", old);
    let args = format!(
        "-name old.example -cert {} -priv {}",
        cert.display(),
        key.display()
    );
    let err = admin.refused("add_cert", &args).await?;
    assert!(err.contains("expired"), "{err}");
    // One that expired after it was added.
    let certs = host.ctx.config.data_dir.join("certs");
    std::fs::create_dir_all(&certs)?;
    std::fs::copy(&cert, certs.join("old.example.pem"))?;
    std::fs::copy(&key, certs.join("old.example.key"))?;
    let info = admin.ok("cert_info", "-name old.example").await?;
    assert!(info.contains("EXPIRED"), "{info}");

    let ca_key = rcgen::KeyPair::generate()?;
    let mut ca_params = params("Test CA");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key)?;
    let leaf_key = rcgen::KeyPair::generate()?;
    let leaf = params("leaf.example").signed_by(&leaf_key, &ca)?;
    std::fs::write(files.path().join("leaf.pem"), leaf.pem())?;
    std::fs::write(files.path().join("leaf.key"), leaf_key.serialize_pem())?;
    let args = format!(
        "-name leaf.example -cert {} -priv {}",
        files.path().join("leaf.pem").display(),
        files.path().join("leaf.key").display()
    );
    admin.ok("add_cert", &args).await?;
    let info = admin.ok("cert_info", "-name leaf.example").await?;
    assert!(info.contains("self-signed: no"), "{info}");
    assert!(info.contains("issuer:      CN=Test CA"), "{info}");
    host.shutdown().await
}
