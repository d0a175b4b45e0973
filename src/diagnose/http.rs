//! HTTP faults: a request that could not be sent, or an answer that is not what the playbook expects.

use super::{Diagnosis, Fault, NetError, known_error};

/// Root cause and fix of a fault of this family; `None` for another family's.
pub(super) fn word(f: &Fault) -> Option<Diagnosis> {
    let d = super::worded;
    match f {
        Fault::HttpConnect { url, error, detail } => d(
            match error {
                NetError::Refused => format!("Nothing accepts connections at {url}: the server is not running or listens on another port ({detail})."),
                NetError::Timeout => format!("{url} did not answer in time ({detail}): the server is hung, overloaded, or a firewall drops the packets."),
                NetError::Dns => format!("The host of {url} does not resolve ({detail})."),
                NetError::Tls => format!("TLS with {url} failed ({detail}): a certificate or protocol mismatch (http vs https?)."),
                NetError::Protocol => format!("{url} did not answer valid HTTP ({detail}): another program holds the port, a proxy mangles the answer, or the server loops on redirects."),
                NetError::TooLarge => format!("{url} answered more than chatops reads ({detail}): a body or headers that never end, or an endpoint that returns far more than expected."),
                _ => format!("Could not reach {url}: {} ({detail}).", error.describe()),
            },
            match error {
                NetError::Refused => "Start the server (see the port check) and confirm it listens on this host and port.".into(),
                NetError::Timeout => "Check the server's log and CPU; raise the check's timeout only if the endpoint is known to be slow.".into(),
                NetError::Dns => "Fix the host name in the base URL.".into(),
                NetError::Tls => "Use the scheme the server speaks (http:// for a plain local backend) or fix its certificate.".into(),
                NetError::Protocol => "Check what listens on the port (the port check names the process) and the server's redirects; rerun the curl line to see the raw answer.".into(),
                NetError::TooLarge => "Rerun the curl line to see the answer's size; if it is expected, raise the check's max_body (e.g. `max_body: 10MB`).".into(),
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
        Fault::BackendError { url, status, code, summary, fix, log, .. } => d(
            format!(
                "{url} answered {status}. {summary}{}{}",
                code.as_deref()
                    .filter(|c| !summary.contains(*c))
                    .map(|c| format!(" [{c}]"))
                    .unwrap_or_default(),
                log.as_deref().map(|l| format!(" (the backend's log: {l})")).unwrap_or_default(),
            ),
            fix.clone(),
        ),
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

#[cfg(test)]
mod tests {
    use crate::diagnose::samples::words;
    use crate::diagnose::{Fault, NetError};

    const URL: &str = "http://localhost:3001/api/v1/health";

    fn connect(error: NetError) -> Fault {
        Fault::HttpConnect {
            url: URL.into(),
            error,
            detail: "the detail".into(),
        }
    }

    fn status(status: u16, body: &str) -> Fault {
        Fault::HttpStatus {
            url: URL.into(),
            expected: "200".into(),
            status,
            body: body.into(),
        }
    }

    #[test]
    fn connect_failures_are_worded_by_their_class() {
        let cases = [
            (
                NetError::Refused,
                "Nothing accepts connections",
                "Start the server",
            ),
            (NetError::Timeout, "did not answer in time", "CPU"),
            (NetError::Dns, "does not resolve", "host name"),
            (
                NetError::Tls,
                "TLS with",
                "http:// for a plain local backend",
            ),
            (NetError::Reset, "connection reset", "network path"),
        ];
        for (e, root, fix) in cases {
            words(&connect(e), &[URL, "the detail", root], &[fix]);
        }
    }

    #[test]
    fn statuses_and_bodies_choose_the_cause() {
        words(
            &status(429, ""),
            &["429", "rate limiter"],
            &["DISABLE_RATE_LIMIT=true"],
        );
        // A body the backend is known to send wins over the status's meaning.
        words(
            &status(
                500,
                "Timed out fetching a new connection from the connection pool",
            ),
            &["P2024"],
            &["connection_limit"],
        );
        words(
            &status(404, "Cannot GET"),
            &["404", "global prefix"],
            &["/api/v1"],
        );
        words(
            &status(502, ""),
            &["failed with 502"],
            &["ExceptionsHandler"],
        );
        words(
            &status(401, ""),
            &["answered 401, expected 200"],
            &["API contract"],
        );
    }

    #[test]
    fn an_error_answer_the_log_explains_names_the_cause_the_code_and_the_log() {
        let all = crate::diagnose::samples::all();
        let f = all
            .iter()
            .find(|f| f.cause_code() == "backend_error")
            .expect("a sample");
        words(
            f,
            &["answered 500", "messageType", "[P2022]", "/tmp/backend.log"],
            &["Regenerate the Prisma client"],
        );
        assert_eq!(f.cause(), Some(crate::diagnose::cause::Cause::SchemaDrift));
        // A bare status names a cause only when its body does.
        assert_eq!(status(500, "Internal server error").cause(), None);
        assert_eq!(
            status(
                400,
                "Failed to send message: sorry, too many clients already"
            )
            .cause(),
            Some(crate::diagnose::cause::Cause::DatabaseConnections)
        );
        assert_eq!(
            status(429, "").cause(),
            Some(crate::diagnose::cause::Cause::RateLimiting)
        );
    }

    #[test]
    fn assertions_recognise_mock_mode_and_a_sick_database() {
        let a = |path: &str, actual: &str| Fault::HttpAssertion {
            url: URL.into(),
            path: path.into(),
            expected: "\"healthy\"".into(),
            actual: actual.into(),
        };
        words(
            &a("database.overall", "\"mock\""),
            &["mock mode", "PRISMA_CLIENT_MODE=mock"],
            &["PRISMA_CLIENT_MODE=database", "DATABASE_URL"],
        );
        words(
            &a("database.overall", "\"unhealthy\""),
            &["database is unhealthy"],
            &["pg_ready"],
        );
        words(
            &a("status", "\"degraded\""),
            &["`status` is \"degraded\", expected \"healthy\""],
            &["assertion"],
        );
        words(
            &Fault::HttpLatency {
                url: URL.into(),
                limit_ms: 500,
                took_ms: 1830,
            },
            &["took 1830 ms", "500 ms bound"],
            &["slow queries"],
        );
        words(
            &Fault::HttpBody {
                url: URL.into(),
                message: "the body is not JSON".into(),
            },
            &["the body is not JSON"],
            &["application/json"],
        );
    }
}
