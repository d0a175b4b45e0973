//! The backend's five express-rate-limit limiters (per client IP, fixed
//! 15-minute windows per client, `standardHeaders: true` (draft-6),
//! `legacyHeaders: false`), with the in-memory store's semantics: every
//! request counts, even a blocked one.

use hyper::Method;
use serde::Serialize;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub(crate) const WINDOW: Duration = Duration::from_secs(15 * 60);

#[derive(Clone, Copy, Debug)]
enum Scope {
    All,
    Writes,
    Messaging,
    Upload,
    Admin,
}

#[derive(Debug)]
struct Limiter {
    max: u64,
    scope: Scope,
    error: &'static str,
    message: &'static str,
}

impl Limiter {
    fn applies(&self, method: &Method, path: &str) -> bool {
        match self.scope {
            Scope::All => true,
            // express-rate-limit `skip: req => GET || HEAD`.
            Scope::Writes => method != Method::GET && method != Method::HEAD,
            Scope::Messaging => path.starts_with("/api/v1/chat") || path.starts_with("/api/chat"),
            Scope::Upload => path.contains("/upload") || path.contains("/attachments"),
            Scope::Admin => path.starts_with("/api/v1/admin") || path.starts_with("/admin"),
        }
    }
}

struct Hits {
    count: u64,
    reset_at: Instant,
}

pub(crate) struct RateLimiter {
    limiters: Vec<Limiter>,
    window: Duration,
    hits: Mutex<HashMap<(usize, IpAddr), Hits>>,
}

pub(crate) enum Outcome {
    /// Headers to add to the route's response.
    Allowed(Vec<(&'static str, String)>),
    /// A 429 with these headers and body.
    Blocked(Vec<(&'static str, String)>, Blocked),
}

/// The limiters' 429 body (their custom `handler`).
#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Blocked {
    pub success: bool,
    pub error: &'static str,
    pub message: &'static str,
    pub retry_after: u64,
}

impl RateLimiter {
    /// `all`: mount the five limiters of the older Express entry point;
    /// otherwise only the global apiLimiter (the public code).
    pub(crate) fn new(all: bool, api_max: u64) -> RateLimiter {
        let mut limiters = vec![Limiter {
            max: api_max,
            scope: Scope::All,
            error: "Rate limit exceeded",
            message: "Too many requests from this IP, please try again later.",
        }];
        if all {
            limiters.extend([
                Limiter {
                    max: 30,
                    scope: Scope::Writes,
                    error: "Write operation rate limit exceeded",
                    message: "Too many write operations from this IP, please try again later.",
                },
                Limiter {
                    max: 200,
                    scope: Scope::Messaging,
                    error: "Messaging rate limit exceeded",
                    message: "Too many messages sent from this IP, please slow down.",
                },
                Limiter {
                    max: 10,
                    scope: Scope::Upload,
                    error: "Upload rate limit exceeded",
                    message: "Too many file uploads from this IP, please try again later.",
                },
                Limiter {
                    max: 20,
                    scope: Scope::Admin,
                    error: "Admin rate limit exceeded",
                    message: "Too many admin requests from this IP, please try again later.",
                },
            ]);
        }
        RateLimiter {
            limiters,
            window: WINDOW,
            hits: Mutex::new(HashMap::new()),
        }
    }

    /// Run the request through the mounted limiters in order; the first that
    /// blocks answers. Later limiters' headers overwrite earlier ones, as
    /// `res.setHeader` does.
    pub(crate) fn check(&self, method: &Method, path: &str, ip: IpAddr) -> Outcome {
        let now = Instant::now();
        let mut headers: Vec<(&'static str, String)> = Vec::new();
        let window_s = self.window.as_secs();
        for (i, l) in self.limiters.iter().enumerate() {
            if !l.applies(method, path) {
                continue;
            }
            let (count, reset_at) = {
                let mut hits = self.hits.lock().unwrap_or_else(|e| e.into_inner());
                if hits.len() > 50_000 {
                    hits.retain(|_, h| h.reset_at > now);
                }
                let h = hits.entry((i, ip)).or_insert(Hits {
                    count: 0,
                    reset_at: now + self.window,
                });
                if h.reset_at <= now {
                    h.count = 0;
                    h.reset_at = now + self.window;
                }
                h.count += 1;
                (h.count, h.reset_at)
            };
            let left = reset_at.saturating_duration_since(now);
            let reset_s = left.as_millis().div_ceil(1000) as u64;
            headers.retain(|(n, _)| !n.starts_with("ratelimit-"));
            headers.push(("ratelimit-policy", format!("{};w={}", l.max, window_s)));
            headers.push(("ratelimit-limit", l.max.to_string()));
            headers.push((
                "ratelimit-remaining",
                l.max.saturating_sub(count).to_string(),
            ));
            headers.push(("ratelimit-reset", reset_s.to_string()));
            if count > l.max {
                headers.push(("retry-after", reset_s.to_string()));
                let body = Blocked {
                    success: false,
                    error: l.error,
                    message: l.message,
                    retry_after: reset_s,
                };
                return Outcome::Blocked(headers, body);
            }
        }
        Outcome::Allowed(headers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_max() {
        let rl = RateLimiter::new(false, 3);
        let ip: IpAddr = [127, 0, 0, 1].into();
        for n in 0..3 {
            match rl.check(&Method::GET, "/api/v1/health", ip) {
                Outcome::Allowed(h) => {
                    let rem = h.iter().find(|(k, _)| *k == "ratelimit-remaining");
                    assert_eq!(rem.map(|(_, v)| v.clone()), Some((2 - n).to_string()));
                }
                Outcome::Blocked(..) => panic!("blocked too early"),
            }
        }
        match rl.check(&Method::POST, "/x", ip) {
            Outcome::Blocked(h, body) => {
                assert!(
                    h.iter()
                        .any(|(k, v)| *k == "ratelimit-policy" && v == "3;w=900")
                );
                assert!(h.iter().any(|(k, _)| *k == "retry-after"));
                assert_eq!(body.error, "Rate limit exceeded");
            }
            Outcome::Allowed(_) => panic!("not blocked"),
        }
    }

    #[test]
    fn write_limiter_in_all_mode() {
        let rl = RateLimiter::new(true, 1000);
        let ip: IpAddr = [10, 0, 0, 1].into();
        for _ in 0..30 {
            assert!(matches!(
                rl.check(&Method::POST, "/api/v1/x", ip),
                Outcome::Allowed(_)
            ));
        }
        assert!(matches!(
            rl.check(&Method::GET, "/api/v1/x", ip),
            Outcome::Allowed(_)
        ));
        match rl.check(&Method::POST, "/api/v1/x", ip) {
            Outcome::Blocked(_, body) => {
                assert_eq!(body.error, "Write operation rate limit exceeded")
            }
            Outcome::Allowed(_) => panic!("not blocked"),
        }
    }
}
