//! What a backend's rate-limit headers say about its budget: every style
//! express-rate-limit v8 writes (legacy `X-RateLimit-*`, draft-6
//! `RateLimit-Limit/-Remaining/-Reset`, draft-7's combined `RateLimit`,
//! draft-8's named `RateLimit` + `RateLimit-Policy`) and @nestjs/throttler's
//! (`X-RateLimit-*`, suffixed `-NAME` for a named throttler), plus
//! `Retry-After`.

/// One limiter's budget, as the headers announce it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Budget {
    /// The limiter's name (draft-8, or @nestjs/throttler's suffix).
    pub name: Option<String>,
    /// Requests allowed per window.
    pub limit: Option<u32>,
    /// Requests left in this window.
    pub remaining: Option<u32>,
    /// Seconds until the window resets (an epoch second for legacy headers
    /// above 10^9 is turned into seconds from `now`).
    pub reset_s: Option<u64>,
    /// The window's length in seconds (from a policy).
    pub window_s: Option<u64>,
    /// Which header style announced it.
    pub style: &'static str,
}

impl Budget {
    /// "apiLimiter: 99 of 100 left per 15m, reset in 900s"
    pub fn describe(&self) -> String {
        let fmt = |s: u64| format!("{s}s");
        let name = self.name.as_deref().unwrap_or("a limiter");
        let left = match (self.remaining, self.limit) {
            (Some(r), Some(l)) => format!("{r} of {l} left"),
            (Some(r), None) => format!("{r} left"),
            (None, Some(l)) => format!("limit {l}"),
            (None, None) => "no numbers".to_string(),
        };
        let window = self
            .window_s
            .map(|w| format!(" per {}", fmt(w)))
            .unwrap_or_default();
        let reset = self
            .reset_s
            .map(|r| format!(", reset in {}", fmt(r)))
            .unwrap_or_default();
        format!("{name}: {left}{window}{reset} ({} headers)", self.style)
    }
}

fn num<T: std::str::FromStr>(s: &str) -> Option<T> {
    s.trim().trim_matches('"').parse().ok()
}

/// Seconds from now: values above 10^9 are epoch seconds (express-rate-limit's
/// legacy `X-RateLimit-Reset`), others already relative.
fn relative(v: u64, now: u64) -> u64 {
    if v > 1_000_000_000 {
        v.saturating_sub(now)
    } else {
        v
    }
}

/// The values of a header (case-insensitive), every occurrence, split at
/// top-level commas (a structured-field list).
fn values<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

fn one<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

/// `"name"; k=v; k=v` or `100;w=900`: the leading item and its parameters.
fn item(s: &str) -> (&str, Vec<(&str, &str)>) {
    let mut parts = s.split(';').map(str::trim);
    let head = parts.next().unwrap_or("");
    let params = parts.filter_map(|p| p.split_once('=')).collect();
    (head, params)
}

fn param<'a>(params: &[(&'a str, &'a str)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k.trim().eq_ignore_ascii_case(key))
        .map(|(_, v)| *v)
}

/// Every budget the headers announce, `now` being the Unix time (for
/// legacy epoch resets). Empty when the answer carries no rate-limit headers.
pub fn budgets(headers: &[(String, String)], now: u64) -> Vec<Budget> {
    let mut out: Vec<Budget> = Vec::new();
    // draft-8: `RateLimit: "NAME"; r=…; t=…` with `RateLimit-Policy: "NAME"; q=…; w=…`.
    let combined = values(headers, "ratelimit");
    let draft7 = combined
        .iter()
        .any(|m| m.split(';').next().is_some_and(|h| h.contains('=')));
    let policies: Vec<(&str, Vec<(&str, &str)>)> = values(headers, "ratelimit-policy")
        .into_iter()
        .map(item)
        .collect();
    let named_policy = policies.iter().any(|(h, _)| h.starts_with('"'));
    if !draft7 && (!combined.is_empty() || named_policy) {
        let mut names: Vec<&str> = combined
            .iter()
            .map(|m| item(m).0.trim_matches('"'))
            .collect();
        for (h, _) in &policies {
            let n = h.trim_matches('"');
            if !names.contains(&n) {
                names.push(n);
            }
        }
        for name in names {
            let entry = combined
                .iter()
                .map(|m| item(m))
                .find(|(h, _)| h.trim_matches('"') == name);
            let ps = entry.map(|(_, p)| p).unwrap_or_default();
            let policy = policies.iter().find(|(h, _)| h.trim_matches('"') == name);
            out.push(Budget {
                name: Some(name.to_string()).filter(|n| !n.is_empty()),
                limit: policy.and_then(|(_, p)| param(p, "q")).and_then(num),
                remaining: param(&ps, "r").and_then(num),
                reset_s: param(&ps, "t").and_then(num),
                window_s: policy.and_then(|(_, p)| param(p, "w")).and_then(num),
                style: "draft-8",
            });
        }
        return out;
    }
    // The unnamed policy of draft-6/7: `100;w=900`.
    let policy = policies.first();
    let policy_limit = policy.and_then(|(h, _)| num::<u32>(h));
    let policy_window = policy.and_then(|(_, p)| param(p, "w")).and_then(num);
    if draft7 {
        // draft-7: `RateLimit: limit=100, remaining=99, reset=900`.
        let kv = |k: &str| {
            combined.iter().find_map(|m| {
                m.split_once('=')
                    .filter(|(a, _)| a.trim().eq_ignore_ascii_case(k))
                    .and_then(|(_, v)| num::<u64>(v.split(';').next().unwrap_or(v)))
            })
        };
        let small = |k: &str| kv(k).and_then(|v| u32::try_from(v).ok());
        out.push(Budget {
            name: None,
            limit: small("limit").or(policy_limit),
            remaining: small("remaining"),
            reset_s: kv("reset"),
            window_s: policy_window,
            style: "draft-7",
        });
        return out;
    }
    // draft-6: `RateLimit-Limit`, `-Remaining`, `-Reset` (seconds).
    let d6 = |k: &str| one(headers, &format!("ratelimit-{k}"));
    if d6("limit").is_some() || d6("remaining").is_some() || policy.is_some() {
        out.push(Budget {
            name: None,
            limit: d6("limit").and_then(num).or(policy_limit),
            remaining: d6("remaining").and_then(num),
            reset_s: d6("reset").and_then(num),
            window_s: policy_window,
            style: "draft-6",
        });
    }
    // Legacy and @nestjs/throttler: `X-RateLimit-Limit[-NAME]`, …
    let mut names: Vec<Option<String>> = Vec::new();
    for (k, _) in headers {
        let k = k.to_ascii_lowercase();
        for field in ["limit", "remaining", "reset"] {
            let prefix = format!("x-ratelimit-{field}");
            if let Some(rest) = k.strip_prefix(&prefix) {
                let name = rest.strip_prefix('-').map(str::to_string);
                if (rest.is_empty() || name.is_some()) && !names.contains(&name) {
                    names.push(name);
                }
            }
        }
    }
    for name in names {
        let get = |field: &str| {
            let key = match &name {
                Some(n) => format!("x-ratelimit-{field}-{n}"),
                None => format!("x-ratelimit-{field}"),
            };
            one(headers, &key)
        };
        out.push(Budget {
            limit: get("limit").and_then(num),
            remaining: get("remaining").and_then(num),
            reset_s: get("reset").and_then(num).map(|v| relative(v, now)),
            window_s: None,
            style: if name.is_some() {
                "@nestjs/throttler"
            } else {
                "X-RateLimit"
            },
            name,
        });
    }
    out
}

/// `Retry-After` in seconds (a number; an HTTP date is left out).
pub fn retry_after(headers: &[(String, String)]) -> Option<u64> {
    one(headers, "retry-after").and_then(num)
}

/// The budget that runs out first: the smallest `remaining` (else the
/// smallest limit).
pub fn binding(budgets: &[Budget]) -> Option<&Budget> {
    budgets
        .iter()
        .filter(|b| b.remaining.is_some())
        .min_by_key(|b| b.remaining)
        .or_else(|| {
            budgets
                .iter()
                .filter(|b| b.limit.is_some())
                .min_by_key(|b| b.limit)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const NOW: u64 = 1_764_650_000;

    fn b(
        name: Option<&str>,
        limit: u32,
        remaining: u32,
        reset: u64,
        window: Option<u64>,
        style: &'static str,
    ) -> Budget {
        Budget {
            name: name.map(str::to_string),
            limit: Some(limit),
            remaining: Some(remaining),
            reset_s: Some(reset),
            window_s: window,
            style,
        }
    }

    #[test]
    fn legacy_x_ratelimit_with_an_epoch_reset() {
        // express-rate-limit, legacyHeaders: true (its default).
        let got = budgets(
            &h(&[
                ("X-RateLimit-Limit", "100"),
                ("X-RateLimit-Remaining", "99"),
                ("X-RateLimit-Reset", "1764650900"),
            ]),
            NOW,
        );
        assert_eq!(got, [b(None, 100, 99, 900, None, "X-RateLimit")]);
    }

    #[test]
    fn draft_6_separate_headers_and_policy() {
        // standardHeaders: true / 'draft-6' (the seed's limiters).
        let got = budgets(
            &h(&[
                ("ratelimit-policy", "100;w=900"),
                ("ratelimit-limit", "100"),
                ("ratelimit-remaining", "97"),
                ("ratelimit-reset", "842"),
            ]),
            NOW,
        );
        assert_eq!(got, [b(None, 100, 97, 842, Some(900), "draft-6")]);
    }

    #[test]
    fn draft_7_combined_header() {
        let got = budgets(
            &h(&[
                ("RateLimit-Policy", "30;w=900"),
                ("RateLimit", "limit=30, remaining=0, reset=12"),
            ]),
            NOW,
        );
        assert_eq!(got, [b(None, 30, 0, 12, Some(900), "draft-7")]);
    }

    #[test]
    fn draft_8_named_entries_one_per_limiter() {
        // Two limiters on one route: one header line each, or one list.
        let got = budgets(
            &h(&[
                ("RateLimit", "\"apiLimiter\"; r=99; t=900"),
                ("RateLimit", "\"writeOperationLimiter\";r=29;t=900"),
                ("RateLimit-Policy", "\"apiLimiter\"; q=100; w=900"),
                ("RateLimit-Policy", "\"writeOperationLimiter\"; q=30; w=900"),
            ]),
            NOW,
        );
        assert_eq!(
            got,
            [
                b(Some("apiLimiter"), 100, 99, 900, Some(900), "draft-8"),
                b(
                    Some("writeOperationLimiter"),
                    30,
                    29,
                    900,
                    Some(900),
                    "draft-8"
                ),
            ]
        );
        assert_eq!(
            binding(&got).and_then(|b| b.name.as_deref()),
            Some("writeOperationLimiter")
        );
        let listed = budgets(
            &h(&[
                ("ratelimit", "\"a\";r=5;t=60, \"b\";r=50;t=60"),
                ("ratelimit-policy", "\"a\";q=10;w=60, \"b\";q=100;w=60"),
            ]),
            NOW,
        );
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[1], b(Some("b"), 100, 50, 60, Some(60), "draft-8"));
    }

    #[test]
    fn nestjs_throttler_default_and_named() {
        // @nestjs/throttler: the default throttler unsuffixed, named ones suffixed.
        let got = budgets(
            &h(&[
                ("X-RateLimit-Limit-short", "3"),
                ("X-RateLimit-Remaining-short", "2"),
                ("X-RateLimit-Reset-short", "1"),
                ("X-RateLimit-Limit-long", "100"),
                ("X-RateLimit-Remaining-long", "99"),
                ("X-RateLimit-Reset-long", "60"),
            ]),
            NOW,
        );
        assert_eq!(
            got,
            [
                b(Some("short"), 3, 2, 1, None, "@nestjs/throttler"),
                b(Some("long"), 100, 99, 60, None, "@nestjs/throttler"),
            ]
        );
        assert_eq!(binding(&got).map(|b| b.limit), Some(Some(3)));
        let plain = budgets(
            &h(&[
                ("x-ratelimit-limit", "10"),
                ("x-ratelimit-remaining", "9"),
                ("x-ratelimit-reset", "60"),
            ]),
            NOW,
        );
        assert_eq!(plain, [b(None, 10, 9, 60, None, "X-RateLimit")]);
    }

    #[test]
    fn retry_after_and_no_headers() {
        assert_eq!(retry_after(&h(&[("Retry-After", "842")])), Some(842));
        assert_eq!(
            retry_after(&h(&[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")])),
            None
        );
        assert!(budgets(&h(&[("content-type", "application/json")]), NOW).is_empty());
        assert!(binding(&[]).is_none());
        assert_eq!(
            b(Some("apiLimiter"), 100, 99, 900, Some(900), "draft-8").describe(),
            "apiLimiter: 99 of 100 left per 900s, reset in 900s (draft-8 headers)"
        );
    }
}
