//! Rate-limit faults: what a burst of requests met (429s, stalls, errors).

use super::{Diagnosis, EnvState, Fault};

/// Root cause and fix of a fault of this family; `None` for another family's.
pub(super) fn word(f: &Fault) -> Option<Diagnosis> {
    let d = |root: String, remedy: String| {
        Some(Diagnosis {
            root_cause: root,
            remedy,
        })
    };
    match f {
        Fault::RateLimited { url, requests, limited, first, limiter, env, var, value } => {
            let who = match limiter {
                Some(l) => {
                    let window = l.window_s.map(|w| format!(" per {}", crate::support::duration::fmt(std::time::Duration::from_secs(w)))).unwrap_or_default();
                    format!("the backend's {} ({} requests{window}; {}) is active", l.name, l.max, l.how)
                }
                None => "a rate limiter is active".to_string(),
            };
            let seen = if *first == 0 {
                format!("{url} sends rate-limit headers, so {who}: a load test would meet 429s once its budget is spent")
            } else {
                format!("{limited} of {requests} requests to {url} answered 429 Too Many Requests from request #{first} on: {who}")
            };
            let (why, fix) = match env {
                EnvState::Process { source, value: Some(v), .. } if v == value => (
                    format!(" {var}={v} is set in {source}, yet requests are limited: a limiter without the {var} skip (a NestJS throttler, another middleware), or a proxy or gateway in front of the backend."),
                    format!("Find the limiter that ignores {var} (the 429 body and headers above name its style) and give it the same skip, or bypass the proxy for the load test; then rerun this check."),
                ),
                EnvState::Process { source, value: actual, in_shell } => {
                    let state = match actual {
                        Some(v) => format!("{var} is {v:?} in {source}"),
                        None => format!("{var} is not set in {source}"),
                    };
                    let shell = match in_shell {
                        Some(s) if s == value => format!(" It is set in your shell ({var}={s}) but not in the server: the backend was started from another shell, or before the export."),
                        _ => String::new(),
                    };
                    (
                        format!(" {state}.{shell}"),
                        format!("Restart the backend with {var}={value} in its own environment (`export {var}={value}` in the shell that starts it, or the service's env file); it is read once at start-up. Then rerun this check: zero 429s."),
                    )
                }
                EnvState::Unknown { in_shell } => (
                    match in_shell {
                        Some(s) if s == value => format!(" Your shell has {var}={s}, which proves nothing about the server process."),
                        _ => String::new(),
                    },
                    format!("Set {var}={value} in the backend process's environment and restart it (it is read once at start-up); then rerun this check: zero 429s."),
                ),
            };
            d(format!("{seen}.{why}"), fix)
        }
        Fault::BurstIncomplete { url, sent, planned } => d(
            format!("Only {sent} of {planned} requests to {url} were answered within the check's timeout: the backend slows down or stalls under a burst."),
            "Look at the backend's log and pg_stat_activity during a burst (`chatops watch-connections`); raise the check's timeout only if the backend is known to be slow.".to_string(),
        ),
        Fault::BurstErrors { url, failed, requests, first } => d(
            format!("No request was rate limited, but {failed} of {requests} requests to {url} failed (the first with {first}): the backend fails under concurrency."),
            "Read the backend's log for the failing requests; a pool timeout (Prisma P2024) means connection_limit is too small for the load: size it with `chatops pool-calc`.".to_string(),
        ),
        _ => None,
    }
}
