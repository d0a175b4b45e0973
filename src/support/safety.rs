//! Safe by default: burst and load traffic go to loopback only, unless the
//! user explicitly allows a remote target.

/// What a host's spelling alone says: `Some(true)` for `localhost`, a
/// `*.localhost` name (RFC 6761 reserves them for loopback) or a loopback
/// address; `Some(false)` for any other address; `None` for a name that
/// must be resolved to know.
pub fn loopback_by_name(host: &str) -> Option<bool> {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    let lower = h.to_ascii_lowercase();
    if lower == "localhost" || lower.ends_with(".localhost") {
        return Some(true);
    }
    h.parse::<std::net::IpAddr>()
        .ok()
        .map(|ip| ip.is_loopback())
}

/// Why traffic was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SafetyError {
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error(
        "refusing to send {what} to {host}: it is not a loopback address, and this traffic could \
         hurt a shared or production system. Pass --allow-remote (or set `settings.allow_remote: true` \
         in the playbook) if you own the target and mean it."
    )]
    Remote { what: String, host: String },
}

/// Whether every address `host` resolves to is a loopback address.
pub async fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    if let Some(known) = loopback_by_name(h) {
        return known;
    }
    match tokio::net::lookup_host((h, 0)).await {
        Ok(addrs) => {
            let addrs: Vec<_> = addrs.collect();
            !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback())
        }
        Err(_) => false,
    }
}

/// Refuses traffic of `what` to a non-loopback `url` unless `allow_remote`.
pub async fn ensure_loopback(url: &str, allow_remote: bool, what: &str) -> Result<(), SafetyError> {
    let parsed = url::Url::parse(url).map_err(|e| SafetyError::InvalidUrl {
        url: url.to_string(),
        reason: e.to_string(),
    })?;
    if allow_remote {
        return Ok(());
    }
    let host = parsed.host_str().unwrap_or_default();
    if is_loopback_host(host).await {
        return Ok(());
    }
    Err(SafetyError::Remote {
        what: what.to_string(),
        host: host.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn loopback_names_and_addresses() {
        for h in ["127.0.0.1", "127.3.4.5", "localhost", "::1", "[::1]"] {
            assert!(is_loopback_host(h).await, "{h}");
        }
        for h in [
            "10.0.0.1",
            "192.168.1.10",
            "8.8.8.8",
            "0.0.0.0",
            "example.invalid",
        ] {
            assert!(!is_loopback_host(h).await, "{h}");
        }
        assert!(
            ensure_loopback("http://10.1.2.3:3001/x", false, "a burst")
                .await
                .is_err_and(|e| e.to_string().contains("--allow-remote"))
        );
        assert!(
            ensure_loopback("http://10.1.2.3:3001/x", true, "a burst")
                .await
                .is_ok()
        );
        assert!(ensure_loopback("not a url", true, "load").await.is_err());
        assert!(is_loopback_host("api.localhost").await);
    }
}
