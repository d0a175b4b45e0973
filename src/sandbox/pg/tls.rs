//! Certificates for a TLS-enabled sandbox cluster, made in-process with
//! rcgen (no `openssl` command needed): a CA (`ca.crt`) and a server
//! certificate for `localhost` (`server.crt`, `server.key`) signed by it,
//! ECDSA P-256, naming its host in subjectAltName (DNS:localhost) and in CN.

use super::PgError;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256,
};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// The host name the server certificate is for.
pub const TLS_HOST: &str = "localhost";

/// Writes `ca.crt`, `server.crt` and `server.key` (mode 0600) into `dir`.
pub fn write_test_certs(dir: &Path) -> Result<(), PgError> {
    let gen_err = |e: rcgen::Error| PgError::new(format!("making test certificates: {e}"));
    let io_err = |f: &str, e: std::io::Error| {
        PgError::new(format!("writing {}: {e}", dir.join(f).display()))
    };

    let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(gen_err)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(gen_err)?;
    ca.distinguished_name
        .push(DnType::CommonName, "chatops test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).map_err(gen_err)?;
    let issuer = Issuer::new(ca, ca_key);

    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(gen_err)?;
    let mut server = CertificateParams::new(vec![TLS_HOST.to_string()]).map_err(gen_err)?;
    server.distinguished_name.push(DnType::CommonName, TLS_HOST);
    let server_cert = server.signed_by(&key, &issuer).map_err(gen_err)?;

    fs::write(dir.join("ca.crt"), ca_cert.pem()).map_err(|e| io_err("ca.crt", e))?;
    fs::write(dir.join("server.crt"), server_cert.pem()).map_err(|e| io_err("server.crt", e))?;
    let key_path = dir.join("server.key");
    fs::write(&key_path, key.serialize_pem()).map_err(|e| io_err("server.key", e))?;
    fs::set_permissions(&key_path, fs::Permissions::from_mode(0o600))
        .map_err(|e| io_err("server.key", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::WebPkiServerVerifier;
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use std::sync::Arc;

    /// The server certificate chains to the CA and names `localhost` (what
    /// verify-full checks), and does not name another host.
    #[test]
    fn the_server_certificate_is_verified_for_localhost_by_the_ca() {
        let dir = std::env::temp_dir().join(format!("chatops-tls-unit-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("dir");
        write_test_certs(&dir).expect("certs");
        let mut roots = rustls::RootCertStore::empty();
        let ca = CertificateDer::from_pem_file(dir.join("ca.crt")).expect("ca pem");
        roots.add(ca).expect("ca accepted as a root");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .expect("verifier");
        let leaf = CertificateDer::from_pem_file(dir.join("server.crt")).expect("server pem");
        let check = |host: &'static str| {
            verifier.verify_server_cert(
                &leaf,
                &[],
                &ServerName::try_from(host).expect("name"),
                &[],
                UnixTime::now(),
            )
        };
        assert!(check("localhost").is_ok(), "{:?}", check("localhost"));
        assert!(check("db.example").is_err());
        let mode = fs::metadata(dir.join("server.key"))
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let _ = fs::remove_dir_all(&dir);
    }
}
