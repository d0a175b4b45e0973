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
    /// A PEM file of trusted roots (`sslrootcert`, Prisma's `sslcert`, or
    /// `~/.postgresql/root.crt`); None: the system's store.
    pub root_file: Option<String>,
}

impl Policy {
    /// libpq's rules, and its refusals: the system's public roots only with
    /// verify-full (with any other mode they would accept a certificate
    /// for any site), and verify-ca only with a CA file.
    pub fn of(u: &DbUrl) -> Result<Policy, TlsSetupError> {
        Policy::resolve(u, home_root())
    }

    /// `of`, with the `~/.postgresql/root.crt` found (or not) given.
    fn resolve(u: &DbUrl, home_root: Option<String>) -> Result<Policy, TlsSetupError> {
        let mode = u.param("sslmode");
        let prisma = u.param("sslaccept");
        let root_param = u
            .param("sslrootcert")
            .or_else(|| prisma.and(u.param("sslcert")));
        let system = root_param == Some("system");
        let root_file = match root_param {
            Some("system") => None,
            Some(f) => Some(f.to_string()),
            None => home_root,
        };
        let verify = match (mode, prisma) {
            (Some("verify-full"), _) | (_, Some("strict")) => Verify::Full,
            (Some("verify-ca"), _) => Verify::Ca,
            (_, Some(_)) => Verify::None,
            (None, None) if system => Verify::Full,
            // libpq: with a root certificate file, require is verify-ca.
            (Some("require"), None) if root_file.is_some() => Verify::Ca,
            _ => Verify::None,
        };
        if system && verify != Verify::Full {
            return Err(TlsSetupError::SystemRootsNeedVerifyFull {
                mode: mode.unwrap_or("prefer").to_string(),
            });
        }
        if verify == Verify::Ca && root_file.is_none() {
            return Err(TlsSetupError::VerifyCaNeedsCa);
        }
        Ok(Policy { verify, root_file })
    }

    /// Where the trusted roots come from, for messages.
    pub fn roots_source(&self) -> String {
        match (&self.root_file, self.verify) {
            (_, Verify::None) => "nothing (not verified)".into(),
            (Some(f), _) => f.clone(),
            (None, _) => "the system's certificate store".into(),
        }
    }
}

/// Why the TLS settings a URL asks for cannot be built (before any
/// connection is attempted).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TlsSetupError {
    #[error(
        "sslrootcert=system needs sslmode=verify-full (as libpq says): with sslmode={mode} the public roots would vouch for any site's certificate"
    )]
    SystemRootsNeedVerifyFull { mode: String },
    #[error(
        "sslmode=verify-ca needs the server's CA: give sslrootcert=/path/ca.pem (or put it in ~/.postgresql/root.crt); against the system's public roots, verify-ca would accept any site's certificate"
    )]
    VerifyCaNeedsCa,
    /// The root certificate file cannot be used.
    #[error("{why}")]
    RootFile { file: String, why: String },
    /// The system's certificate store has no roots.
    #[error("{0}")]
    SystemStore(String),
    #[error("{0}")]
    Rustls(String),
}

impl TlsSetupError {
    /// Whether the trusted roots are what is missing or unreadable.
    pub fn is_roots(&self) -> bool {
        matches!(
            self,
            TlsSetupError::RootFile { .. } | TlsSetupError::SystemStore(_)
        )
    }
}

fn home_root() -> Option<String> {
    let home = std::env::var_os("HOME")?;
    let p = std::path::Path::new(&home).join(".postgresql/root.crt");
    p.is_file().then(|| p.to_string_lossy().into_owned())
}

fn load_roots(p: &Policy) -> Result<rustls::RootCertStore, TlsSetupError> {
    let mut roots = rustls::RootCertStore::empty();
    match p.root_file.as_deref() {
        Some(f) => {
            let certs = CertificateDer::pem_file_iter(f).map_err(|e| TlsSetupError::RootFile {
                file: f.to_string(),
                why: format!("cannot read the root certificate file {f}: {e}"),
            })?;
            for c in certs {
                let c = c.map_err(|e| TlsSetupError::RootFile {
                    file: f.to_string(),
                    why: format!("{f} is not a PEM certificate file: {e}"),
                })?;
                roots.add(c).map_err(|e| TlsSetupError::RootFile {
                    file: f.to_string(),
                    why: format!("{f}: a certificate was refused: {e}"),
                })?;
            }
            if roots.is_empty() {
                return Err(TlsSetupError::RootFile {
                    file: f.to_string(),
                    why: format!("{f} holds no certificate"),
                });
            }
        }
        None => roots = crate::support::tls::native_roots().map_err(TlsSetupError::SystemStore)?,
    }
    Ok(roots)
}

/// The TLS connector for this URL's policy.
pub fn connector(u: &DbUrl) -> Result<Connector, TlsSetupError> {
    Policy::of(u)?.connector()
}

/// The rustls connector, given a name for a unix-domain socket too:
/// tokio-postgres asks for a TLS connector for every host before it knows
/// whether TLS is used, with an empty name for a socket, which rustls
/// refuses as a server name. Over a socket TLS is never used (as in libpq:
/// [`DbUrl::config`] disables it), so the placeholder name is never checked.
#[derive(Clone)]
pub struct Connector(MakeRustlsConnect);

impl<S> tokio_postgres::tls::MakeTlsConnect<S> for Connector
where
    MakeRustlsConnect: tokio_postgres::tls::MakeTlsConnect<S>,
{
    type Stream = <MakeRustlsConnect as tokio_postgres::tls::MakeTlsConnect<S>>::Stream;
    type TlsConnect = <MakeRustlsConnect as tokio_postgres::tls::MakeTlsConnect<S>>::TlsConnect;
    type Error = <MakeRustlsConnect as tokio_postgres::tls::MakeTlsConnect<S>>::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<Self::TlsConnect, Self::Error> {
        let name = if domain.is_empty() {
            "localhost"
        } else {
            domain
        };
        tokio_postgres::tls::MakeTlsConnect::<S>::make_tls_connect(&mut self.0, name)
    }
}

impl Policy {
    /// The connector (roots are only loaded when the certificate is
    /// verified, so a plain local connection costs nothing).
    pub fn connector(&self) -> Result<Connector, TlsSetupError> {
        let provider = crate::support::tls::provider();
        let verifier: Arc<dyn ServerCertVerifier> = match self.verify {
            Verify::None => Arc::new(crate::support::tls::Unchecked(provider.clone())),
            v => {
                let roots = load_roots(self)?;
                let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider.clone(),
                )
                .build()
                .map_err(|e| {
                    TlsSetupError::Rustls(format!("cannot build the certificate verifier: {e}"))
                })?;
                Arc::new(Checked {
                    inner,
                    names: v == Verify::Full,
                })
            }
        };
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsSetupError::Rustls(format!("TLS setup: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(Connector(MakeRustlsConnect::new(config)))
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

    fn policy(q: &str) -> Result<Policy, TlsSetupError> {
        Policy::resolve(
            &DbUrl::parse(&format!("postgresql://u@h/db{q}")).expect("url"),
            None,
        )
    }
    fn verify(q: &str) -> Verify {
        policy(q).expect("allowed").verify
    }

    #[test]
    fn sslmode_means_what_libpq_says() {
        assert_eq!(verify(""), Verify::None);
        assert_eq!(verify("?sslmode=require"), Verify::None);
        assert_eq!(
            policy("?sslmode=require&sslrootcert=/ca.pem"),
            Ok(Policy {
                verify: Verify::Ca,
                root_file: Some("/ca.pem".into())
            })
        );
        assert_eq!(verify("?sslmode=verify-ca&sslrootcert=/ca.pem"), Verify::Ca);
        assert_eq!(verify("?sslmode=verify-full"), Verify::Full);
        // libpq 16: sslrootcert=system alone means verify-full ...
        assert_eq!(verify("?sslrootcert=system"), Verify::Full);
        // ... and weaker modes with the public roots are refused, as is
        // verify-ca without a CA file.
        for q in [
            "?sslmode=require&sslrootcert=system",
            "?sslmode=verify-ca&sslrootcert=system",
            "?sslmode=verify-ca",
        ] {
            let e = policy(q).expect_err(q);
            assert!(e.to_string().contains("any site"), "{q}: {e}");
        }
        // Prisma: sslaccept=strict verifies, and its sslcert is the CA;
        // accept_invalid_certs does not check, whatever else is given.
        assert_eq!(
            policy("?sslmode=require&sslaccept=strict&sslcert=ca.pem"),
            Ok(Policy {
                verify: Verify::Full,
                root_file: Some("ca.pem".into())
            })
        );
        assert_eq!(
            verify("?sslmode=require&sslaccept=accept_invalid_certs&sslcert=ca.pem"),
            Verify::None
        );
        // libpq: a ~/.postgresql/root.crt makes require verify the chain.
        let u = DbUrl::parse("postgresql://u@h/db?sslmode=require").expect("url");
        assert_eq!(
            Policy::resolve(&u, Some("/home/x/.postgresql/root.crt".into())).map(|p| p.verify),
            Ok(Verify::Ca)
        );
        // Without sslaccept, sslcert is libpq's client certificate, not a root.
        assert_eq!(
            policy("?sslmode=require&sslcert=client.pem").map(|p| p.root_file),
            Ok(None)
        );
    }

    #[test]
    fn unreadable_roots_are_a_clear_error() {
        let u =
            DbUrl::parse("postgresql://u@h/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem")
                .expect("url");
        let e = connector(&u).err().expect("refused");
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
        assert!(e.is_roots());
        let u = DbUrl::parse("postgresql://u@h/db?sslmode=require").expect("url");
        assert!(connector(&u).is_ok());
    }
}
