//! Which of the backend's rate limiters answered a 429: from the
//! rate-limit headers (express-rate-limit's styles, @nestjs/throttler's)
//! and the limiters the playbook declares.

use crate::diagnose::LimiterMatch;
use crate::support::duration::Dur;
use schemars::JsonSchema;
use serde::Deserialize;

/// One of the backend's rate limiters.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Limiter {
    pub name: String,
    /// Requests allowed per window.
    pub max: u32,
    /// The window (e.g. 15m).
    pub window: Option<Dur>,
    /// Methods it applies to (default all).
    #[serde(default)]
    pub methods: Vec<String>,
    /// Regular expression on the request path it applies to (default all).
    pub path: Option<String>,
}

/// The rate-limit headers of an answer.
pub fn rate_headers(h: &reqwest::header::HeaderMap) -> Vec<(String, String)> {
    h.iter()
        .filter(|(k, _)| {
            let k = k.as_str();
            k.starts_with("ratelimit") || k.starts_with("x-ratelimit") || k == "retry-after"
        })
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// The limit (and limiter name, window) the rate-limit headers announce, in
/// any of express-rate-limit's header styles or @nestjs/throttler's: those
/// of the budget that runs out first.
pub fn announced_limit(headers: &[(String, String)]) -> (Option<u32>, Option<String>, Option<u64>) {
    let all = super::budget::budgets(headers, 0);
    match super::budget::binding(&all) {
        Some(b) => (b.limit, b.name.clone(), b.window_s),
        None => (None, None, None),
    }
}

/// Which declared limiter answered: by the name the headers give, by the
/// announced limit, or (without headers) the smallest limit that admits the
/// successes seen before the first 429.
pub fn match_limiter(
    limiters: &[Limiter],
    method: &str,
    path: &str,
    headers: &[(String, String)],
    ok_before: u32,
) -> Option<LimiterMatch> {
    let (limit, name, window) = announced_limit(headers);
    let applies = |l: &&Limiter| {
        (l.methods.is_empty() || l.methods.iter().any(|m| m.eq_ignore_ascii_case(method)))
            && l.path
                .as_deref()
                .is_none_or(|p| regex::Regex::new(p).is_ok_and(|r| r.is_match(path)))
    };
    let found = |l: &Limiter, how: &str| LimiterMatch {
        name: l.name.clone(),
        max: l.max,
        window_s: l.window.map(|w| w.0.as_secs()).or(window),
        how: how.to_string(),
    };
    if let Some(n) = &name
        && let Some(l) = limiters.iter().find(|l| l.name.eq_ignore_ascii_case(n))
    {
        return Some(found(l, "named in the RateLimit-Policy header"));
    }
    if let Some(limit) = limit {
        let same: Vec<&Limiter> = limiters
            .iter()
            .filter(applies)
            .filter(|l| l.max == limit)
            .collect();
        if let Some(l) = same.first() {
            return Some(found(l, &format!("its limit {limit} matches the headers")));
        }
        return Some(LimiterMatch {
            name: name.unwrap_or_else(|| "an undeclared limiter".into()),
            max: limit,
            window_s: window,
            how: "announced by the rate-limit headers".into(),
        });
    }
    limiters
        .iter()
        .filter(applies)
        .filter(|l| l.max >= ok_before)
        .min_by_key(|l| l.max)
        .map(|l| {
            found(
                l,
                &format!("no rate-limit headers; the smallest limit that admits the {ok_before} requests before it"),
            )
        })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::time::Duration;

    pub(in crate::checks::rate_limit) fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    pub(in crate::checks::rate_limit) fn seed_limiters() -> Vec<Limiter> {
        let l = |name: &str, max: u32, methods: &[&str], path: Option<&str>| Limiter {
            name: name.into(),
            max,
            window: Some(Dur(Duration::from_secs(900))),
            methods: methods.iter().map(|m| m.to_string()).collect(),
            path: path.map(str::to_string),
        };
        vec![
            l("apiLimiter", 100, &[], None),
            l(
                "writeOperationLimiter",
                30,
                &["POST", "PUT", "DELETE"],
                None,
            ),
            l("uploadLimiter", 10, &[], Some("/upload")),
            l("messagingLimiter", 200, &[], Some("/chat/")),
            l("adminLimiter", 20, &[], Some("/admin")),
        ]
    }

    #[test]
    fn header_styles() {
        assert_eq!(
            announced_limit(&h(&[
                ("RateLimit-Policy", "100;w=900"),
                ("RateLimit-Limit", "100")
            ])),
            (Some(100), None, Some(900))
        );
        assert_eq!(
            announced_limit(&h(&[("ratelimit", "limit=30, remaining=0, reset=12")])),
            (Some(30), None, None)
        );
        assert_eq!(
            announced_limit(&h(&[(
                "ratelimit-policy",
                "\"messagingLimiter\"; q=200; w=900"
            )])),
            (Some(200), Some("messagingLimiter".into()), Some(900))
        );
        assert_eq!(
            announced_limit(&h(&[("x-ratelimit-limit", "20")])),
            (Some(20), None, None)
        );
        assert_eq!(
            announced_limit(&h(&[("X-RateLimit-Limit-short", "3")])),
            (Some(3), Some("short".into()), None)
        );
        assert_eq!(announced_limit(&[]), (None, None, None));
    }

    #[test]
    fn names_the_seed_limiter() {
        let ls = seed_limiters();
        let m = match_limiter(
            &ls,
            "POST",
            "/api/v1/chat/x",
            &h(&[("ratelimit-limit", "100")]),
            99,
        )
        .map(|m| m.name);
        assert_eq!(m.as_deref(), Some("apiLimiter"));
        let m = match_limiter(
            &ls,
            "POST",
            "/api/v1/chat/x",
            &h(&[("ratelimit-limit", "30")]),
            29,
        )
        .map(|m| m.name);
        assert_eq!(m.as_deref(), Some("writeOperationLimiter"));
        // A GET is not counted by writeOperationLimiter: without headers,
        // 150 successes point at messagingLimiter (200) for a chat path.
        let m = match_limiter(&ls, "GET", "/api/v1/chat/x", &[], 150).map(|m| m.name);
        assert_eq!(m.as_deref(), Some("messagingLimiter"));
        let m = match_limiter(&ls, "POST", "/api/v1/chat/x", &[], 25).map(|m| m.name);
        assert_eq!(m.as_deref(), Some("writeOperationLimiter"));
        // A limit nobody declared is still reported.
        let m = match_limiter(&ls, "GET", "/x", &h(&[("ratelimit-limit", "7")]), 6);
        assert_eq!(
            m.map(|m| (m.name, m.max)),
            Some(("an undeclared limiter".into(), 7))
        );
    }
}
