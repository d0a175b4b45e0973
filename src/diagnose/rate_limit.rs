//! Rate-limit faults: what a burst of requests met (429s, stalls, errors).

use super::{Diagnosis, EnvState, Fault};

/// Root cause and fix of a fault of this family; `None` for another family's.
pub(super) fn word(f: &Fault) -> Option<Diagnosis> {
    let d = super::worded;
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
                EnvState::Process { source, value: actual, in_shell, similar } => {
                    let state = match actual {
                        Some(v) if truthy(v) => format!("{var} is {v:?} in {source}: the backend skips its limiters only when it is exactly {value:?}"),
                        Some(v) => format!("{var} is {v:?} in {source}"),
                        None if !similar.is_empty() => format!("{var} is not set in {source}, but {} is: a misspelt name; the backend reads {var}", similar.join(", ")),
                        None => format!("{var} is not set in {source}"),
                    };
                    let shell = match in_shell {
                        Some(s) if s == value => format!(" It is set in your shell ({var}={s}) but not in the server: the backend was started from another shell, or before the export."),
                        _ => String::new(),
                    };
                    (
                        format!(" {state}.{shell}"),
                        format!("Restart the backend with {var}={value} (exactly) in its own environment (`export {var}={value}` in the shell that starts it, or the service's env file); it is read once at start-up. Then rerun this check: zero 429s."),
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

/// A value someone meant as "on" (`1`, `yes`, `TRUE`…).
fn truthy(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on" | "y"
    )
}

#[cfg(test)]
mod tests {
    use crate::diagnose::samples::words;
    use crate::diagnose::{EnvState, Fault, LimiterMatch};

    const URL: &str = "http://localhost:3001/api/v1/conversations";

    fn limited(first: u32, limiter: Option<LimiterMatch>, env: EnvState) -> Fault {
        Fault::RateLimited {
            url: URL.into(),
            requests: 150,
            limited: 50,
            first,
            limiter,
            env,
            var: "DISABLE_RATE_LIMIT".into(),
            value: "true".into(),
        }
    }

    fn process(value: Option<&str>, in_shell: Option<&str>) -> EnvState {
        EnvState::Process {
            source: "process 77 (node)".into(),
            value: value.map(String::from),
            in_shell: in_shell.map(String::from),
            similar: vec![],
        }
    }

    #[test]
    fn the_environment_explains_why_a_limiter_is_on() {
        // `1` where the backend wants exactly `true`.
        words(
            &limited(101, None, process(Some("1"), None)),
            &[
                "DISABLE_RATE_LIMIT is \"1\" in process 77 (node)",
                "only when it is exactly \"true\"",
            ],
            &["DISABLE_RATE_LIMIT=true (exactly)"],
        );
        // A misspelt name.
        words(
            &limited(
                101,
                None,
                EnvState::Process {
                    source: "process 77 (node)".into(),
                    value: None,
                    in_shell: None,
                    similar: vec!["DISABLE_RATELIMIT=true".into()],
                },
            ),
            &[
                "DISABLE_RATE_LIMIT is not set in process 77 (node), but DISABLE_RATELIMIT=true is",
                "misspelt",
            ],
            &["DISABLE_RATE_LIMIT=true"],
        );
    }

    #[test]
    fn a_limiter_is_named_with_its_budget_and_the_switch_where_it_matters() {
        let api = LimiterMatch {
            name: "apiLimiter".into(),
            max: 100,
            window_s: Some(900),
            how: "RateLimit-Limit: 100".into(),
        };
        // Off switch missing in the server, set in the shell: the shell is
        // not the server.
        words(
            &limited(101, Some(api.clone()), process(None, Some("true"))),
            &[
                "50 of 150 requests",
                "from request #101",
                "apiLimiter (100 requests per 900.00s; RateLimit-Limit: 100)",
                "DISABLE_RATE_LIMIT is not set in process 77 (node)",
                "set in your shell",
            ],
            &[
                "Restart the backend with DISABLE_RATE_LIMIT=true",
                "zero 429s",
            ],
        );
        // Set in the server and still limited: another limiter or a proxy.
        words(
            &limited(101, None, process(Some("true"), None)),
            &[
                "a rate limiter is active",
                "DISABLE_RATE_LIMIT=true is set",
                "proxy",
            ],
            &["Find the limiter that ignores DISABLE_RATE_LIMIT"],
        );
        // Predicted from headers, process unknown.
        words(
            &limited(
                0,
                Some(api),
                EnvState::Unknown {
                    in_shell: Some("true".into()),
                },
            ),
            &[
                "sends rate-limit headers",
                "proves nothing about the server",
            ],
            &["Set DISABLE_RATE_LIMIT=true in the backend process's environment"],
        );
    }

    #[test]
    fn bursts_that_stall_or_fail_say_how_many() {
        words(
            &Fault::BurstIncomplete {
                url: URL.into(),
                sent: 60,
                planned: 150,
            },
            &["Only 60 of 150 requests", URL],
            &["chatops watch-connections"],
        );
        words(
            &Fault::BurstErrors {
                url: URL.into(),
                failed: 12,
                requests: 150,
                first: "500".into(),
            },
            &["12 of 150 requests", "the first with 500"],
            &["P2024", "chatops pool-calc"],
        );
    }
}
