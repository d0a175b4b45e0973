//! Where the load goes: the base URL resolved once, before any stage, to
//! an address, the Host header every request carries, and TLS settings for
//! https:// (the wire client's [`Tls`]).

use super::wire::Tls;
use std::net::SocketAddr;

/// Why the base URL cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("`{url}` is not a URL ({source})")]
    NotAUrl {
        url: String,
        source: url::ParseError,
    },
    #[error("the load generator speaks http:// and https:// (got {0}://)")]
    Scheme(String),
    #[error("`{0}` has no host")]
    NoHost(String),
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        host: String,
        source: std::io::Error,
    },
    #[error("{0} resolves to no address")]
    NoAddress(String),
    #[error("{0}")]
    HostHeader(#[from] hyper::header::InvalidHeaderValue),
    /// The TLS client settings (see `support::tls`).
    #[error("{0}")]
    Tls(String),
    #[error("`{url}`: no TLS server name ({source})")]
    ServerName {
        url: String,
        source: rustls::pki_types::InvalidDnsNameError,
    },
}

/// Where the load goes: the resolved address, the Host header, and TLS
/// for https://.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub host: hyper::header::HeaderValue,
    pub tls: Option<Tls>,
}

/// The URL's host as a TLS server name (IP addresses without brackets).
fn host_name(u: &url::Url) -> String {
    match u.host() {
        Some(url::Host::Ipv6(a)) => a.to_string(),
        Some(h) => h.to_string(),
        None => String::new(),
    }
}

impl Target {
    /// Resolves an `http://` or `https://` base URL. For https, the
    /// certificate is checked against the system's roots (`SSL_CERT_FILE`
    /// adds a CA) unless `insecure`.
    pub async fn resolve(base_url: &str, insecure: bool) -> Result<Target, TargetError> {
        let u = url::Url::parse(base_url).map_err(|source| TargetError::NotAUrl {
            url: base_url.to_string(),
            source,
        })?;
        if !matches!(u.scheme(), "http" | "https") {
            return Err(TargetError::Scheme(u.scheme().to_string()));
        }
        let host = u
            .host_str()
            .ok_or_else(|| TargetError::NoHost(base_url.to_string()))?;
        let port = u.port_or_known_default().unwrap_or(80);
        let addr = tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
            .await
            .map_err(|source| TargetError::Resolve {
                host: host.to_string(),
                source,
            })?
            .next()
            .ok_or_else(|| TargetError::NoAddress(host.to_string()))?;
        let hv = match u.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        let host = hyper::header::HeaderValue::from_str(&hv)?;
        let tls = if u.scheme() == "https" {
            let config = crate::support::tls::http1_client(insecure).map_err(TargetError::Tls)?;
            let name =
                rustls::pki_types::ServerName::try_from(host_name(&u)).map_err(|source| {
                    TargetError::ServerName {
                        url: base_url.to_string(),
                        source,
                    }
                })?;
            Some(Tls {
                connector: tokio_rustls::TlsConnector::from(std::sync::Arc::new(config)),
                name,
            })
        } else {
            None
        };
        Ok(Target { addr, host, tls })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refusals_are_typed_and_worded() {
        let e = Target::resolve("ftp://127.0.0.1/", false)
            .await
            .err()
            .expect("ftp refused");
        assert!(
            matches!(e, TargetError::Scheme(ref s) if s == "ftp"),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "the load generator speaks http:// and https:// (got ftp://)"
        );
        let e = Target::resolve("not a url", false)
            .await
            .err()
            .expect("not a URL");
        assert!(matches!(e, TargetError::NotAUrl { .. }), "{e:?}");
        assert!(
            e.to_string().starts_with("`not a url` is not a URL ("),
            "{e}"
        );
        let t = Target::resolve("http://127.0.0.1:8/x", false)
            .await
            .expect("an IP address needs no lookup");
        assert_eq!(t.addr, "127.0.0.1:8".parse().expect("addr"));
        assert_eq!(t.host, "127.0.0.1:8");
        assert!(t.tls.is_none());
    }
}
