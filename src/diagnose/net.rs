//! Network failures classified: I/O errors, HTTP client (reqwest) errors and
//! TLS errors, from their types where they have one.

use serde::{Deserialize, Serialize};
use std::error::Error;

/// How a network attempt failed, classified: the probe's classes, which
/// faults carry as data (`refused`, `timeout`, `dns`, …).
pub use crate::probe::http::Failure as NetError;

/// Why a TLS session could not be set up. It chooses the fix; the
/// message that goes with it says the details.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsProblem {
    /// The server does not speak TLS (PostgreSQL with `ssl = off`).
    ServerWithoutTls,
    /// The certificate does not name the host connected to.
    NameMismatch,
    /// The server presents a CA certificate as its own.
    CaAsServerCert,
    /// The chain does not lead to a trusted root, or a signature in it is bad.
    UnknownIssuer,
    /// Expired or not yet valid.
    Validity,
    /// The trusted roots could not be loaded (`sslrootcert`, the system's store).
    Roots,
    /// Anything else (protocol versions, ciphers, a reset mid-handshake).
    #[default]
    Other,
}

impl TlsProblem {
    /// From rustls's typed error.
    pub fn from_rustls(e: &rustls::Error) -> TlsProblem {
        use rustls::CertificateError as C;
        let rustls::Error::InvalidCertificate(c) = e else {
            return TlsProblem::Other;
        };
        match c {
            C::NotValidForName | C::NotValidForNameContext { .. } => TlsProblem::NameMismatch,
            C::UnknownIssuer | C::BadSignature => TlsProblem::UnknownIssuer,
            C::Expired
            | C::ExpiredContext { .. }
            | C::NotValidYet
            | C::NotValidYetContext { .. } => TlsProblem::Validity,
            // rustls passes webpki's errors it has no variant for as `Other`.
            C::Other(o) => match o.0.downcast_ref::<webpki::Error>() {
                Some(webpki::Error::CaUsedAsEndEntity) => TlsProblem::CaAsServerCert,
                _ => TlsProblem::Other,
            },
            _ => TlsProblem::Other,
        }
    }

    /// From an error's chain: its rustls error if it has one, else `None`.
    pub fn from_chain(e: &(dyn Error + 'static)) -> Option<TlsProblem> {
        find_rustls(e).map(TlsProblem::from_rustls)
    }

    /// From a message, where no typed error exists: tokio-postgres reports
    /// a server that declines TLS with a bare string ("server does not
    /// support TLS"), and chatops's TLS set-up (`pg::tls`) reports missing
    /// or unreadable roots as text.
    pub fn from_message(message: &str) -> TlsProblem {
        let lower = message.to_ascii_lowercase();
        if lower.contains("does not support tls") {
            TlsProblem::ServerWithoutTls
        } else if [
            "sslrootcert",
            "root certificate",
            "pem",
            "certificate store",
        ]
        .iter()
        .any(|m| lower.contains(m))
        {
            TlsProblem::Roots
        } else {
            TlsProblem::Other
        }
    }
}

/// An error and its sources, looking inside `std::io::Error`s: an
/// `io::Error` built around another error (how tokio-rustls returns
/// rustls's errors) skips that error in its own `source()`.
pub fn chain<'a>(e: &'a (dyn Error + 'static)) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
    fn next<'a>(x: &&'a (dyn Error + 'static)) -> Option<&'a (dyn Error + 'static)> {
        let x: &'a (dyn Error + 'static) = *x;
        match x
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn Error + 'static)),
            None => x.source(),
        }
    }
    std::iter::successors(Some(e), next)
}

/// The first rustls error in an error's chain.
pub fn find_rustls<'a>(e: &'a (dyn Error + 'static)) -> Option<&'a rustls::Error> {
    chain(e).find_map(|x| x.downcast_ref::<rustls::Error>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_carry_the_probe_classes_by_stable_names() {
        assert_eq!(NetError::Tls.describe(), "TLS handshake failed");
        assert_eq!(
            serde_json::to_value(NetError::Refused).ok(),
            Some(serde_json::json!("refused"))
        );
    }
    use rustls::CertificateError as C;

    fn wrapped(e: rustls::Error) -> std::io::Error {
        // How tokio-rustls hands a handshake error over.
        std::io::Error::new(std::io::ErrorKind::InvalidData, e)
    }

    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("error performing TLS handshake")
        }
    }
    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn tls_problems_come_from_rustls_variants_through_io_errors() {
        let cases = [
            (C::NotValidForName, TlsProblem::NameMismatch),
            (C::UnknownIssuer, TlsProblem::UnknownIssuer),
            (C::BadSignature, TlsProblem::UnknownIssuer),
            (C::Expired, TlsProblem::Validity),
            (C::NotValidYet, TlsProblem::Validity),
            (C::Revoked, TlsProblem::Other),
            (
                C::Other(rustls::OtherError(std::sync::Arc::new(
                    webpki::Error::CaUsedAsEndEntity,
                ))),
                TlsProblem::CaAsServerCert,
            ),
        ];
        for (c, want) in cases {
            let e = Outer(wrapped(rustls::Error::InvalidCertificate(c)));
            assert_eq!(TlsProblem::from_chain(&e), Some(want), "{e:?}");
        }
        let e = Outer(wrapped(rustls::Error::DecryptError));
        assert_eq!(TlsProblem::from_chain(&e), Some(TlsProblem::Other));
        // No rustls error at all: nothing typed to go by.
        let e = Outer(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert_eq!(TlsProblem::from_chain(&e), None);
    }

    #[test]
    fn untyped_tls_messages_fall_back_to_their_text() {
        assert_eq!(
            TlsProblem::from_message("server does not support TLS"),
            TlsProblem::ServerWithoutTls
        );
        assert_eq!(
            TlsProblem::from_message("cannot read the root certificate file /x/ca.pem: gone"),
            TlsProblem::Roots
        );
        // A Debug name in text is no longer trusted to mean anything.
        assert_eq!(
            TlsProblem::from_message("invalid peer certificate: UnknownIssuer"),
            TlsProblem::Other
        );
    }

    #[test]
    fn io_errors_are_classified_by_kind() {
        use std::io::{Error as E, ErrorKind as K};
        assert_eq!(
            NetError::from_io(&E::from(K::ConnectionRefused)),
            NetError::Refused
        );
        assert_eq!(NetError::from_io(&E::from(K::TimedOut)), NetError::Timeout);
        assert_eq!(NetError::from_io(&E::from(K::BrokenPipe)), NetError::Reset);
        assert_eq!(
            NetError::from_io(&E::other("failed to lookup address information")),
            NetError::Dns
        );
        assert_eq!(NetError::from_io(&E::other("odd")), NetError::Other);
    }
}
