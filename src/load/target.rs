//! Where the load goes: the base URL resolved once, before any stage, to
//! an address, the Host header every request carries, and TLS settings for
//! https:// (the wire client's [`Tls`]).

use super::wire::Tls;
use std::net::SocketAddr;

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
    pub async fn resolve(base_url: &str, insecure: bool) -> Result<Target, String> {
        let u =
            url::Url::parse(base_url).map_err(|e| format!("`{base_url}` is not a URL ({e})"))?;
        if !matches!(u.scheme(), "http" | "https") {
            return Err(format!(
                "the load generator speaks http:// and https:// (got {}://)",
                u.scheme()
            ));
        }
        let host = u
            .host_str()
            .ok_or_else(|| format!("`{base_url}` has no host"))?;
        let port = u.port_or_known_default().unwrap_or(80);
        let addr = tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
            .await
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .next()
            .ok_or_else(|| format!("{host} resolves to no address"))?;
        let hv = match u.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        let host = hyper::header::HeaderValue::from_str(&hv).map_err(|e| e.to_string())?;
        let tls = if u.scheme() == "https" {
            let config = crate::support::tls::http1_client(insecure)?;
            let name = rustls::pki_types::ServerName::try_from(host_name(&u))
                .map_err(|e| format!("`{base_url}`: no TLS server name ({e})"))?;
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
