//! TLS for PostgreSQL sessions, with libpq's `sslmode` meanings: `disable`
//! (plain), `allow`/`prefer` (the default: TLS when the server offers it,
//! certificate not checked), `require` (TLS or nothing, certificate not
//! checked unless a root certificate is given), `verify-ca` (the chain must
//! lead to a trusted root) and `verify-full` (and the certificate must name
//! the host). Roots come from `sslrootcert` (a PEM file, or `system`), else
//! `~/.postgresql/root.crt` when it exists, else the system's store.
//! Prisma's `sslaccept=strict` means verify-full, and with `sslaccept` its
//! `sslcert` names the CA file (Prisma's meaning of that parameter).

use super::DbUrl;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, SignatureScheme};
use std::sync::Arc;
use tokio_postgres_rustls::MakeRustlsConnect;

/// How much of the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// Encrypted, certificate not checked (libpq's prefer and require).
    None,
    /// The chain must lead to a trusted root; any host name.
    Ca,
    /// The chain and the host name.
    Full,
}

/// What the URL asks for: the verification and where the roots come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub verify: Verify,
    /// A PEM file of trusted roots; None: `~/.postgresql/root.crt` or the system store.
    pub root_file: Option<String>,
}

impl Policy {
    pub fn of(u: &DbUrl) -> Policy {
        let mode = u.param("sslmode").unwrap_or("prefer");
        let prisma_strict = u.param("sslaccept") == Some("strict");
        let root_file = u
            .param("sslrootcert")
            .or_else(|| u.param("sslaccept").and(u.param("sslcert")))
            .map(str::to_string);
        let verify = match mode {
            "verify-full" => Verify::Full,
            "verify-ca" => Verify::Ca,
            _ if prisma_strict => Verify::Full,
            // libpq: with a root certificate, require behaves as verify-ca.
            "require" if root_file.is_some() => Verify::Ca,
            _ => Verify::None,
        };
        Policy { verify, root_file }
    }

    /// Where the trusted roots come from, for messages.
    pub fn roots_source(&self) -> String {
        match self.root_file.as_deref() {
            Some("system") | None if self.verify == Verify::None => "none (not verified)".into(),
            Some("system") => "the system's certificate store".into(),
            Some(f) => f.to_string(),
            None => match home_root() {
                Some(p) => p,
                None => "the system's certificate store".into(),
            },
        }
    }
}

fn home_root() -> Option<String> {
    let home = std::env::var_os("HOME")?;
    let p = std::path::Path::new(&home).join(".postgresql/root.crt");
    p.is_file().then(|| p.to_string_lossy().into_owned())
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn load_roots(p: &Policy) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    let file = match p.root_file.as_deref() {
        Some("system") => None,
        Some(f) => Some(f.to_string()),
        None => home_root(),
    };
    match file {
        Some(f) => {
            let certs = CertificateDer::pem_file_iter(&f)
                .map_err(|e| format!("cannot read the root certificate file {f}: {e}"))?;
            for c in certs {
                let c = c.map_err(|e| format!("{f} is not a PEM certificate file: {e}"))?;
                roots
                    .add(c)
                    .map_err(|e| format!("{f}: a certificate was refused: {e}"))?;
            }
            if roots.is_empty() {
                return Err(format!("{f} holds no certificate"));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for c in found.certs {
                let _ = roots.add(c);
            }
            if roots.is_empty() {
                return Err(
                    "the system's certificate store is empty: give the server's CA with sslrootcert=/path/ca.pem".into(),
                );
            }
        }
    }
    Ok(roots)
}

/// The TLS connector for this URL's policy (roots are only loaded when the
/// certificate is verified, so a plain local connection costs nothing).
pub fn connector(u: &DbUrl) -> Result<MakeRustlsConnect, String> {
    let policy = Policy::of(u);
    let provider = provider();
    let verifier: Arc<dyn ServerCertVerifier> = match policy.verify {
        Verify::None => Arc::new(Unchecked(provider.clone())),
        v => {
            let roots = load_roots(&policy)?;
            let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                provider.clone(),
            )
            .build()
            .map_err(|e| format!("cannot build the certificate verifier: {e}"))?;
            Arc::new(Checked {
                inner,
                names: v == Verify::Full,
            })
        }
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// prefer and require: the handshake's signatures are checked (the session
/// is really encrypted with the holder of the key), the certificate is not.
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// verify-ca and verify-full: webpki's verification, with a wrong host name
/// forgiven for verify-ca.
#[derive(Debug)]
struct Checked {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    names: bool,
}

impl ServerCertVerifier for Checked {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.names => Ok(ServerCertVerified::assertion()),
            r => r,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(q: &str) -> Policy {
        Policy::of(&DbUrl::parse(&format!("postgresql://u@h/db{q}")).expect("url"))
    }

    #[test]
    fn sslmode_means_what_libpq_says() {
        assert_eq!(policy("").verify, Verify::None);
        assert_eq!(policy("?sslmode=require").verify, Verify::None);
        assert_eq!(
            policy("?sslmode=require&sslrootcert=/ca.pem"),
            Policy {
                verify: Verify::Ca,
                root_file: Some("/ca.pem".into())
            }
        );
        assert_eq!(policy("?sslmode=verify-ca").verify, Verify::Ca);
        assert_eq!(policy("?sslmode=verify-full").verify, Verify::Full);
        // Prisma: sslaccept=strict verifies, and its sslcert is the CA.
        assert_eq!(
            policy("?sslmode=require&sslaccept=strict&sslcert=ca.pem"),
            Policy {
                verify: Verify::Full,
                root_file: Some("ca.pem".into())
            }
        );
        // Without sslaccept, sslcert is libpq's client certificate, not a root.
        assert_eq!(
            policy("?sslmode=require&sslcert=client.pem").root_file,
            None
        );
    }

    #[test]
    fn unreadable_roots_are_a_clear_error() {
        let u =
            DbUrl::parse("postgresql://u@h/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem")
                .expect("url");
        let e = connector(&u).err().expect("refused");
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
        let u = DbUrl::parse("postgresql://u@h/db?sslmode=require").expect("url");
        assert!(connector(&u).is_ok());
    }
}
