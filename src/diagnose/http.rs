//! HTTP faults: a request that could not be sent, or an answer that is not what the playbook expects.

use super::{Diagnosis, Fault, NetError, known_error};

/// Root cause and fix of a fault of this family; `None` for another family's.
pub(super) fn word(f: &Fault) -> Option<Diagnosis> {
    let d = |root: String, remedy: String| {
        Some(Diagnosis {
            root_cause: root,
            remedy,
        })
    };
    match f {
        Fault::HttpConnect { url, error, detail } => d(
            match error {
                NetError::Refused => format!("Nothing accepts connections at {url}: the server is not running or listens on another port ({detail})."),
                NetError::Timeout => format!("{url} did not answer in time ({detail}): the server is hung, overloaded, or a firewall drops the packets."),
                NetError::Dns => format!("The host of {url} does not resolve ({detail})."),
                NetError::Tls => format!("TLS with {url} failed ({detail}): a certificate or protocol mismatch (http vs https?)."),
                _ => format!("Could not reach {url}: {} ({detail}).", error.describe()),
            },
            match error {
                NetError::Refused => "Start the server (see the port check) and confirm it listens on this host and port.".into(),
                NetError::Timeout => "Check the server's log and CPU; raise the check's timeout only if the endpoint is known to be slow.".into(),
                NetError::Dns => "Fix the host name in the base URL.".into(),
                NetError::Tls => "Use the scheme the server speaks (http:// for a plain local backend) or fix its certificate.".into(),
                _ => "Check the URL and the network path to the server.".into(),
            },
        ),
        Fault::HttpStatus { url, expected, status, body } => {
            let (root, remedy) = if *status == 429 {
                (format!("{url} answered 429 Too Many Requests: a rate limiter is active."), "Set DISABLE_RATE_LIMIT=true in the backend process's environment and restart it.".to_string())
            } else if let Some(known) = known_error(body) {
                known
            } else if *status == 404 {
                (format!("{url} does not exist on this server (404): wrong path or global prefix."), "Check the route; the seed's backend serves everything under /api/v1 (its banner's /health is wrong).".to_string())
            } else if *status >= 500 {
                (format!("{url} failed with {status}: the backend threw an error."), "Read the backend log for the exception (ERROR [ExceptionsHandler] or prisma:error lines).".to_string())
            } else {
                (format!("{url} answered {status}, expected {expected}."), "Compare the request with the API contract; the body excerpt in the evidence says what the server objected to.".to_string())
            };
            d(root, remedy)
        }
        Fault::HttpAssertion { url, path, expected, actual } => {
            if (path.contains("overall") || path.contains("database")) && actual.contains("mock") {
                d(
                    "The backend runs in mock mode: health reports database.overall = \"mock\", so nothing reaches PostgreSQL (PRISMA_CLIENT_MODE=mock, or no DATABASE_URL, which silently means mock).".into(),
                    "Start the backend with PRISMA_CLIENT_MODE=database and DATABASE_URL set, then restart it.".into(),
                )
            } else if (path.contains("overall") || path.contains("database")) && (actual.contains("unhealthy") || actual.contains("down")) {
                d(
                    "The backend is up but its database is unhealthy (health still says \"connected\": it cannot be trusted alone).".into(),
                    "Check PostgreSQL directly (the pg_ready check) and the backend log for prisma:error lines; restart the backend once the database is back.".into(),
                )
            } else {
                d(format!("{url}: `{path}` is {actual}, expected {expected}."), "Compare the response with what the playbook expects; adjust the backend or the assertion.".into())
            }
        }
        Fault::HttpLatency { url, limit_ms, took_ms } => d(
            format!("{url} took {took_ms} ms, above the {limit_ms} ms bound."),
            "Look for slow queries (pg_stat_activity), a saturated pool, or a cold start; rerun to rule out a one-off.".into(),
        ),
        Fault::HttpBody { url, message } => d(format!("{url}: {message}."), "Check that the endpoint returns JSON (Content-Type application/json).".into()),
        _ => None,
    }
}
