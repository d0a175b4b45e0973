//! `rate_limit`: proves the backend's rate limiters are off by sending a
//! burst (the seed's 250 rapid requests) and counting 429s. On a 429 it
//! names the limiter from the rate-limit headers and the declared limiters,
//! and reads the backend process's environment to say why it is still on.

use super::env::{ProcessSel, read_env};
use super::http::{Prepared, Request};
use super::{Check, Ctx, Observation};
use crate::diagnose::{EnvState, Fault, LimiterMatch, NetError, excerpt};
use crate::support::duration::Dur;
use schemars::JsonSchema;
use serde::Deserialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub struct RateLimit;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The request to repeat (the `http` check's syntax). In string values
    /// of its JSON body, `{n}` becomes the request's number, so what the
    /// burst writes can be found later (with `${vars.run_id}`).
    pub request: Request,
    /// How many requests (default 250, as the seed).
    #[serde(default = "default_requests")]
    pub requests: u32,
    /// How many in flight at once (default 10).
    #[serde(default = "default_concurrency")]
    pub concurrency: u32,
    /// Send one request and judge from its rate-limit headers: when they
    /// show limiting is active, the failure is predicted without a burst.
    #[serde(default)]
    pub probe: bool,
    /// Timeout of each request (default 5s, within the check's timeout).
    pub request_timeout: Option<Dur>,
    /// The backend's limiters, so a 429 names the one that answered.
    #[serde(default)]
    pub limiters: Vec<Limiter>,
    /// The backend process (`{port: …}`, `{pid: …}` or `{name: …}`), to
    /// read whether its environment disables the limiters.
    pub process: Option<ProcessSel>,
    /// The variable that disables the limiters (default DISABLE_RATE_LIMIT)…
    #[serde(default = "default_var")]
    pub disable_var: String,
    /// …and the exact value that does it (default "true").
    #[serde(default = "default_value")]
    pub disable_value: String,
}

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

fn default_requests() -> u32 {
    250
}
fn default_concurrency() -> u32 {
    10
}
fn default_var() -> String {
    "DISABLE_RATE_LIMIT".into()
}
fn default_value() -> String {
    "true".into()
}

/// What came back for one request.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    Status(u16),
    Failed(NetError),
}

struct Sample {
    n: u32,
    outcome: Outcome,
    micros: u64,
}

/// The first 429 (or the probe's answer): its headers and body.
#[derive(Debug, Clone, Default)]
struct Answer {
    n: u32,
    headers: Vec<(String, String)>,
    body: String,
}

fn rate_headers(h: &reqwest::header::HeaderMap) -> Vec<(String, String)> {
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

/// `{n}` in the JSON body's strings becomes the request number.
fn label(v: &mut serde_json::Value, n: u32) {
    match v {
        serde_json::Value::String(s) if s.contains("{n}") => *s = s.replace("{n}", &n.to_string()),
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| label(x, n)),
        serde_json::Value::Object(m) => m.values_mut().for_each(|x| label(x, n)),
        _ => {}
    }
}

/// The limit (and limiter name, window) the rate-limit headers announce, in
/// any of express-rate-limit's header styles or @nestjs/throttler's.
pub fn announced_limit(headers: &[(String, String)]) -> (Option<u32>, Option<String>, Option<u64>) {
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
    };
    let num = |s: &str| s.trim().trim_matches('"').parse::<u32>().ok();
    let mut limit = get("ratelimit-limit")
        .and_then(|v| num(&v))
        .or_else(|| get("x-ratelimit-limit").and_then(|v| num(&v)));
    let mut name = None;
    let mut window = None;
    if let Some(policy) = get("ratelimit-policy") {
        // draft-6/7: `100;w=900`; draft-8: `"apiLimiter"; q=100; w=900`.
        for part in policy.split(';').map(str::trim) {
            if let Some(w) = part.strip_prefix("w=") {
                window = w.trim().parse().ok();
            } else if let Some(q) = part.strip_prefix("q=") {
                limit = limit.or_else(|| num(q));
            } else if part.starts_with('"') {
                name = Some(part.trim_matches('"').to_string());
            } else if let Some(n) = num(part) {
                limit = limit.or(Some(n));
            }
        }
    }
    if let Some(combined) = get("ratelimit") {
        // draft-7: `limit=100, remaining=0, reset=50`.
        for part in combined.split(',').map(str::trim) {
            if let Some(l) = part.strip_prefix("limit=") {
                limit = limit.or_else(|| num(l));
            }
        }
    }
    // @nestjs/throttler names: x-ratelimit-limit-NAME.
    if limit.is_none()
        && let Some((k, v)) = headers
            .iter()
            .find(|(k, _)| k.to_ascii_lowercase().starts_with("x-ratelimit-limit-"))
    {
        limit = num(v);
        name = Some(k["x-ratelimit-limit-".len()..].to_string());
    }
    (limit, name, window)
}

/// Which declared limiter answered: by the name the headers give, by the
/// announced limit, or (without headers) the smallest limit that admits the
/// successes seen before the first 429.
fn match_limiter(
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

fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn ms(micros: u64) -> String {
    crate::support::duration::fmt(Duration::from_micros(micros))
}

/// Whether the backend process's environment disables the limiters, and
/// whether chatops's own shell does.
fn env_state(p: &Params) -> EnvState {
    let in_shell = std::env::var(&p.disable_var).ok();
    let Some(sel) = p.process.as_ref() else {
        return EnvState::Unknown { in_shell };
    };
    match read_env(Some(sel)) {
        Ok(e) => EnvState::Process {
            source: e.source,
            value: e.env.get(&p.disable_var).cloned(),
            in_shell,
        },
        Err(_) => EnvState::Unknown { in_shell },
    }
}

impl Check for RateLimit {
    const KIND: &'static str = "rate_limit";
    const HELP: &'static str = "a burst of requests (default 250) gets zero 429s; names the limiter and checks the backend's DISABLE_RATE_LIMIT";
    type Params = Params;

    async fn run(p: Params, ctx: Ctx) -> Observation {
        let prepared = match p.request.prepare() {
            Ok(x) => x,
            Err(e) => return Observation::error(e),
        };
        let n_total = if p.probe { 1 } else { p.requests.max(1) };
        if let Err(e) = crate::support::safety::ensure_loopback(
            prepared.url.as_str(),
            ctx.allow_remote,
            &format!("a burst of {n_total} requests"),
        )
        .await
        {
            return Observation::error(e);
        }
        let conc = p.concurrency.clamp(1, 1000).min(n_total);
        let per_request = p
            .request_timeout
            .map(|d| d.0)
            .unwrap_or(Duration::from_secs(5))
            .min(ctx.timeout);
        let client = match reqwest::Client::builder()
            .pool_max_idle_per_host(conc as usize)
            .no_proxy()
            .build()
        {
            Ok(c) => c,
            Err(e) => return Observation::error(format!("cannot build an HTTP client: {e}")),
        };
        let labelled = prepared.curl.contains("{n}");
        let shared = Arc::new((prepared, client));
        let next = Arc::new(AtomicU32::new(0));
        let started = Instant::now();
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..conc {
            let shared = shared.clone();
            let next = next.clone();
            workers.spawn(async move {
                let (prep, client) = &*shared;
                let mut samples = Vec::new();
                let mut first: Option<Answer> = None;
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed) + 1;
                    if n > n_total {
                        break;
                    }
                    let req = if labelled {
                        let mut one: Prepared = prep.clone();
                        if let Some(j) = one.json_mut() {
                            label(j, n);
                        }
                        one.builder(client, per_request)
                    } else {
                        prep.builder(client, per_request)
                    };
                    let t = Instant::now();
                    let outcome = match req.send().await {
                        Ok(resp) => {
                            let status = resp.status().as_u16();
                            let want = status == 429 || (n_total == 1);
                            if want && first.as_ref().is_none_or(|f| n < f.n) {
                                let headers = rate_headers(resp.headers());
                                let body = resp.text().await.unwrap_or_default();
                                first = Some(Answer { n, headers, body });
                            } else {
                                let _ = resp.bytes().await;
                            }
                            Outcome::Status(status)
                        }
                        Err(e) => Outcome::Failed(super::http::classify(&e).0),
                    };
                    samples.push(Sample {
                        n,
                        outcome,
                        micros: t.elapsed().as_micros() as u64,
                    });
                }
                (samples, first)
            });
        }
        let budget = ctx.timeout.saturating_sub(Duration::from_millis(50));
        let mut samples: Vec<Sample> = Vec::with_capacity(n_total as usize);
        let mut first: Option<Answer> = None;
        let collected = tokio::time::timeout(budget, async {
            while let Some(j) = workers.join_next().await {
                if let Ok((s, f)) = j {
                    samples.extend(s);
                    if let Some(f) = f
                        && first.as_ref().is_none_or(|x| f.n < x.n)
                    {
                        first = Some(f);
                    }
                }
            }
        })
        .await;
        workers.abort_all();
        let wall = started.elapsed();
        let (prep, _) = &*shared;
        let method = prep.method.to_string();
        let path = prep.url.path().to_string();
        let command = format!(
            "for i in $(seq {n_total}); do {} -o /dev/null -w '%{{http_code}}\\n'; done | sort | uniq -c",
            prep.curl.replacen("curl -sS -i", "curl -sS", 1)
        );
        if p.probe {
            return probe_result(&p, prep, first, samples.first(), command);
        }

        let count =
            |f: &dyn Fn(&Outcome) -> bool| samples.iter().filter(|s| f(&s.outcome)).count() as u32;
        let ok = count(&|o| matches!(o, Outcome::Status(s) if (200..300).contains(s)));
        let limited = count(&|o| matches!(o, Outcome::Status(429)));
        let other =
            count(&|o| matches!(o, Outcome::Status(s) if !(200..300).contains(s) && *s != 429));
        let failed = count(&|o| matches!(o, Outcome::Failed(_)));
        let mut lat: Vec<u64> = samples.iter().map(|s| s.micros).collect();
        lat.sort_unstable();
        let rps = samples.len() as f64 / wall.as_secs_f64().max(1e-9);
        let counts = format!(
            "{} requests ({} concurrent) in {}: {ok} × 2xx, {limited} × 429, {other} × other status, {failed} × transport errors ({rps:.0} req/s)",
            samples.len(),
            conc,
            crate::support::duration::fmt(wall)
        );
        let latency = format!(
            "latency p50 {} · p95 {} · p99 {} · max {}",
            ms(percentile(&lat, 0.50)),
            ms(percentile(&lat, 0.95)),
            ms(percentile(&lat, 0.99)),
            ms(lat.last().copied().unwrap_or(0))
        );
        let mut o = Observation::pass(format!(
            "{ok} of {} requests succeeded, zero 429s: the rate limiters are off",
            samples.len()
        ))
        .command(command)
        .evidence(counts)
        .evidence(latency)
        .capture("requests", samples.len())
        .capture("ok", ok)
        .capture("rate_limited", limited)
        .capture("p95_ms", percentile(&lat, 0.95) as f64 / 1000.0);
        if labelled {
            o = o.evidence("each request's body carries its number ({n}), so what the burst wrote can be found afterwards");
        }
        if limited > 0 {
            let a = first.unwrap_or_default();
            let ok_before = samples
                .iter()
                .filter(|s| {
                    s.n < a.n && matches!(s.outcome, Outcome::Status(s) if (200..300).contains(&s))
                })
                .count() as u32;
            for (k, v) in &a.headers {
                o = o.evidence(format!("first 429 header: {k}: {v}"));
            }
            if a.headers.is_empty() {
                o = o.evidence("the 429 carried no rate-limit headers");
            }
            o = o.evidence(format!("first 429 body: {}", excerpt(&a.body, 200)));
            let limiter = match_limiter(&p.limiters, &method, &path, &a.headers, ok_before);
            o.status = super::Status::Fail;
            o.summary = format!(
                "{limited} of {} requests answered 429 Too Many Requests, the first at request #{}",
                samples.len(),
                a.n
            );
            o = o.capture("first_429", a.n);
            o.fault = Some(Fault::RateLimited {
                url: prep.shown_url.clone(),
                requests: samples.len() as u32,
                limited,
                first: a.n,
                limiter,
                env: env_state(&p),
                var: p.disable_var.clone(),
                value: p.disable_value.clone(),
            });
            return o;
        }
        if collected.is_err() || (samples.len() as u32) < n_total {
            o.status = super::Status::Fail;
            o.summary = format!(
                "the burst did not finish within {}: {} of {n_total} requests answered",
                crate::support::duration::fmt(ctx.timeout),
                samples.len()
            );
            o.fault = Some(Fault::BurstIncomplete {
                url: prep.shown_url.clone(),
                sent: samples.len() as u32,
                planned: n_total,
            });
            return o;
        }
        if other + failed > 0 {
            let first_bad = samples
                .iter()
                .filter(|s| !matches!(s.outcome, Outcome::Status(c) if (200..300).contains(&c)))
                .min_by_key(|s| s.n);
            let what = match first_bad.map(|s| s.outcome) {
                Some(Outcome::Status(c)) => format!("status {c}"),
                Some(Outcome::Failed(e)) => e.describe().to_string(),
                None => "an error".into(),
            };
            o.status = super::Status::Fail;
            o.summary = format!(
                "zero 429s, but {} of {} requests failed (first: {what})",
                other + failed,
                samples.len()
            );
            o.fault = Some(Fault::BurstErrors {
                url: prep.shown_url.clone(),
                failed: other + failed,
                requests: samples.len() as u32,
                first: what,
            });
        }
        o
    }
}

/// Probe mode: one request, judged by its rate-limit headers.
fn probe_result(
    p: &Params,
    prep: &Prepared,
    answer: Option<Answer>,
    sample: Option<&Sample>,
    command: String,
) -> Observation {
    let Some(s) = sample else {
        return Observation::error("the probe request did not complete in time");
    };
    let status = match s.outcome {
        Outcome::Failed(e) => {
            return Observation::fail(
                format!("the probe request failed: {}", e.describe()),
                Fault::HttpConnect {
                    url: prep.shown_url.clone(),
                    error: e,
                    detail: e.describe().to_string(),
                },
            );
        }
        Outcome::Status(c) => c,
    };
    let a = answer.unwrap_or_default();
    let mut o = Observation::pass(format!(
        "one probe request → {status}, no rate-limit headers: the limiters skip this request"
    ))
    .command(command)
    .evidence(format!(
        "probe {} {} → {status} in {}",
        prep.method,
        prep.shown_url,
        ms(s.micros)
    ));
    for (k, v) in &a.headers {
        o = o.evidence(format!("header {k}: {v}"));
    }
    let (limit, _, _) = announced_limit(&a.headers);
    if status == 429 || limit.is_some() {
        let limiter = match_limiter(
            &p.limiters,
            prep.method.as_str(),
            prep.url.path(),
            &a.headers,
            0,
        );
        o.status = super::Status::Fail;
        o.summary = if status == 429 {
            "the probe request already answered 429 Too Many Requests".to_string()
        } else {
            format!(
                "rate-limit headers present (limit {}): limiting is active, a burst of {} would meet 429s",
                limit.unwrap_or(0),
                p.requests
            )
        };
        o.fault = Some(Fault::RateLimited {
            url: prep.shown_url.clone(),
            requests: 1,
            limited: u32::from(status == 429),
            first: if status == 429 { 1 } else { 0 },
            limiter,
            env: env_state(p),
            var: p.disable_var.clone(),
            value: p.disable_value.clone(),
        });
    }
    o
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

    fn seed_limiters() -> Vec<Limiter> {
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

    #[test]
    fn labels_and_percentiles() {
        let mut v = serde_json::json!({"content": "burst {n}", "x": ["{n}", 1]});
        label(&mut v, 42);
        assert_eq!(
            v,
            serde_json::json!({"content": "burst 42", "x": ["42", 1]})
        );
        let xs: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&xs, 0.95), 95);
        assert_eq!(percentile(&xs, 0.5), 50);
        assert_eq!(percentile(&[], 0.5), 0);
    }
}
