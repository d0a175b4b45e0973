//! `rate_limit`: proves the backend's rate limiters are off by sending a
//! burst (the seed's 250 rapid requests) and counting 429s. On a 429 it
//! names the limiter from the rate-limit headers and the declared limiters,
//! and reads the backend process's environment to say why it is still on.
//!
//! The burst is sent here (its own small sender: a fixed number of requests
//! at a fixed concurrency, measured at 1.01× oha's time for the seed's 250
//! at 10 in flight); `judge_burst` and `judge_probe` judge what it saw.

pub mod limiter;

pub use limiter::{Limiter, announced_limit};
use limiter::{match_limiter, rate_headers};

use super::env::{ProcessSel, read_env};
use super::util::{failed, net_error};
use super::{Check, Ctx, Observation};
use crate::diagnose::{EnvState, Fault, NetError, excerpt};
use crate::probe::http::{Prepared, Request, classify};
use crate::support::duration::{self, Dur};
use crate::support::stats::Latencies;
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
pub enum Outcome {
    Status(u16),
    Failed(NetError),
}

impl Outcome {
    fn is_2xx(self) -> bool {
        matches!(self, Outcome::Status(s) if (200..300).contains(&s))
    }
}

/// One request of the burst: its number (from 1), what came back, how long it took.
#[derive(Debug, Clone)]
pub struct Sample {
    pub n: u32,
    pub outcome: Outcome,
    pub micros: u64,
}

/// The first 429 (or the probe's answer): its headers and body.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    pub n: u32,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// What a burst saw.
#[derive(Debug, Default)]
pub struct Burst {
    /// One per request that completed, in no particular order.
    pub samples: Vec<Sample>,
    /// The first 429 (the probe's answer in probe mode).
    pub first: Option<Answer>,
    pub wall: Duration,
    /// Whether every sender finished within the check's time.
    pub finished: bool,
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

fn ms(micros: u64) -> String {
    duration::fmt(Duration::from_micros(micros))
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

/// How the burst is sent.
struct Plan {
    requests: u32,
    concurrency: u32,
    per_request: Duration,
    /// Whether `{n}` in the JSON body is replaced by each request's number.
    labelled: bool,
}

/// Sends the burst: `concurrency` senders take request numbers until all
/// are taken; what has not come back within `budget` is not waited for.
async fn send_burst(
    prep: Prepared,
    client: reqwest::Client,
    plan: &Plan,
    budget: Duration,
) -> Burst {
    let shared = Arc::new((prep, client));
    let next = Arc::new(AtomicU32::new(0));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..plan.concurrency {
        let (shared, next) = (shared.clone(), next.clone());
        let (n_total, per_request, labelled) = (plan.requests, plan.per_request, plan.labelled);
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
                    Err(e) => Outcome::Failed(net_error(classify(&e).0)),
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
    let mut burst = Burst {
        samples: Vec::with_capacity(plan.requests as usize),
        ..Burst::default()
    };
    let collected = tokio::time::timeout(budget, async {
        while let Some(j) = workers.join_next().await {
            if let Ok((s, f)) = j {
                burst.samples.extend(s);
                if let Some(f) = f
                    && burst.first.as_ref().is_none_or(|x| f.n < x.n)
                {
                    burst.first = Some(f);
                }
            }
        }
    })
    .await;
    workers.abort_all();
    burst.wall = started.elapsed();
    burst.finished = collected.is_ok();
    burst
}

impl Check for RateLimit {
    const KIND: &'static str = "rate_limit";
    const HELP: &'static str = "a burst of requests (default 250) gets zero 429s; names the limiter and checks the backend's DISABLE_RATE_LIMIT";
    type Params = Params;

    async fn run(p: Params, ctx: Ctx) -> Observation {
        let prepared = match p.request.prepare() {
            Ok(x) => x,
            Err(e) => return Observation::error(e.to_string()),
        };
        let n_total = if p.probe { 1 } else { p.requests.max(1) };
        if let Err(e) = crate::support::safety::ensure_loopback(
            prepared.url.as_str(),
            ctx.allow_remote,
            &format!("a burst of {n_total} requests"),
        )
        .await
        {
            return Observation::error(e.to_string());
        }
        let plan = Plan {
            requests: n_total,
            concurrency: p.concurrency.clamp(1, 1000).min(n_total),
            per_request: p
                .request_timeout
                .map(|d| d.0)
                .unwrap_or(Duration::from_secs(5))
                .min(ctx.timeout),
            labelled: prepared.curl.contains("{n}"),
        };
        let client = match reqwest::Client::builder()
            .pool_max_idle_per_host(plan.concurrency as usize)
            .no_proxy()
            .build()
        {
            Ok(c) => c,
            Err(e) => return Observation::error(format!("cannot build an HTTP client: {e}")),
        };
        let budget = ctx.timeout.saturating_sub(Duration::from_millis(50));
        let burst = send_burst(prepared.clone(), client, &plan, budget).await;
        let env = || env_state(&p);
        if p.probe {
            return judge_probe(&p, &prepared, &burst, &env);
        }
        judge_burst(&p, &prepared, &plan, ctx.timeout, &burst, &env)
    }
}

/// The command that repeats the burst and counts the statuses.
fn burst_command(prep: &Prepared, n_total: u32) -> String {
    format!(
        "for i in $(seq {n_total}); do {} -o /dev/null -w '%{{http_code}}\\n'; done | sort | uniq -c",
        prep.curl.replacen("curl -sS -i", "curl -sS", 1)
    )
}

/// Judges a burst: zero 429s pass; a 429 names the limiter and reads the
/// backend's environment (`env`, asked only then); an unfinished burst or
/// other failures fail too.
fn judge_burst(
    p: &Params,
    prep: &Prepared,
    plan: &Plan,
    timeout: Duration,
    b: &Burst,
    env: &dyn Fn() -> EnvState,
) -> Observation {
    let samples = &b.samples;
    let n_total = plan.requests;
    let count =
        |f: &dyn Fn(&Outcome) -> bool| samples.iter().filter(|s| f(&s.outcome)).count() as u32;
    let ok = count(&|o| o.is_2xx());
    let limited = count(&|o| matches!(o, Outcome::Status(429)));
    let other = count(&|o| matches!(o, Outcome::Status(s) if !(200..300).contains(s) && *s != 429));
    let failed_n = count(&|o| matches!(o, Outcome::Failed(_)));
    let lat: Latencies = samples
        .iter()
        .map(|s| Duration::from_micros(s.micros))
        .collect();
    // The exact largest, not the histogram's bucket.
    let max = samples.iter().map(|s| s.micros).max().unwrap_or(0);
    let rps = samples.len() as f64 / b.wall.as_secs_f64().max(1e-9);
    let counts = format!(
        "{} requests ({} concurrent) in {}: {ok} × 2xx, {limited} × 429, {other} × other status, {failed_n} × transport errors ({rps:.0} req/s)",
        samples.len(),
        plan.concurrency,
        duration::fmt(b.wall)
    );
    let latency = format!(
        "latency p50 {} · p95 {} · p99 {} · max {}",
        duration::fmt(lat.quantile(0.50)),
        duration::fmt(lat.quantile(0.95)),
        duration::fmt(lat.quantile(0.99)),
        ms(max)
    );
    let mut o = Observation::pass(format!(
        "{ok} of {} requests succeeded, zero 429s: the rate limiters are off",
        samples.len()
    ))
    .command(burst_command(prep, n_total))
    .evidence(counts)
    .evidence(latency)
    .capture("requests", samples.len())
    .capture("ok", ok)
    .capture("rate_limited", limited)
    .capture("p95_ms", lat.quantile(0.95).as_micros() as f64 / 1000.0);
    if plan.labelled {
        o = o.evidence("each request's body carries its number ({n}), so what the burst wrote can be found afterwards");
    }
    let url = prep.shown_url.clone();
    if limited > 0 {
        let a = b.first.clone().unwrap_or_default();
        let ok_before = samples
            .iter()
            .filter(|s| s.n < a.n && s.outcome.is_2xx())
            .count() as u32;
        for (k, v) in &a.headers {
            o = o.evidence(format!("first 429 header: {k}: {v}"));
        }
        if a.headers.is_empty() {
            o = o.evidence("the 429 carried no rate-limit headers");
        }
        o = o
            .evidence(format!("first 429 body: {}", excerpt(&a.body, 200)))
            .capture("first_429", a.n);
        let limiter = match_limiter(
            &p.limiters,
            prep.method.as_str(),
            prep.url.path(),
            &a.headers,
            ok_before,
        );
        return failed(
            o,
            format!(
                "{limited} of {} requests answered 429 Too Many Requests, the first at request #{}",
                samples.len(),
                a.n
            ),
            Fault::RateLimited {
                url,
                requests: samples.len() as u32,
                limited,
                first: a.n,
                limiter,
                env: env(),
                var: p.disable_var.clone(),
                value: p.disable_value.clone(),
            },
        );
    }
    if !b.finished || (samples.len() as u32) < n_total {
        return failed(
            o,
            format!(
                "the burst did not finish within {}: {} of {n_total} requests answered",
                duration::fmt(timeout),
                samples.len()
            ),
            Fault::BurstIncomplete {
                url,
                sent: samples.len() as u32,
                planned: n_total,
            },
        );
    }
    if other + failed_n > 0 {
        let first_bad = samples
            .iter()
            .filter(|s| !s.outcome.is_2xx())
            .min_by_key(|s| s.n);
        let what = match first_bad.map(|s| s.outcome) {
            Some(Outcome::Status(c)) => format!("status {c}"),
            Some(Outcome::Failed(e)) => e.describe().to_string(),
            None => "an error".into(),
        };
        return failed(
            o,
            format!(
                "zero 429s, but {} of {} requests failed (first: {what})",
                other + failed_n,
                samples.len()
            ),
            Fault::BurstErrors {
                url,
                failed: other + failed_n,
                requests: samples.len() as u32,
                first: what,
            },
        );
    }
    o
}

/// Probe mode: one request, judged by its rate-limit headers.
fn judge_probe(p: &Params, prep: &Prepared, b: &Burst, env: &dyn Fn() -> EnvState) -> Observation {
    let Some(s) = b.samples.first() else {
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
    let a = b.first.clone().unwrap_or_default();
    let mut o = Observation::pass(format!(
        "one probe request → {status}, no rate-limit headers: the limiters skip this request"
    ))
    .command(burst_command(prep, 1))
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
    if status != 429 && limit.is_none() {
        return o;
    }
    let limiter = match_limiter(
        &p.limiters,
        prep.method.as_str(),
        prep.url.path(),
        &a.headers,
        0,
    );
    let summary = if status == 429 {
        "the probe request already answered 429 Too Many Requests".to_string()
    } else {
        format!(
            "rate-limit headers present (limit {}): limiting is active, a burst of {} would meet 429s",
            limit.unwrap_or(0),
            p.requests
        )
    };
    failed(
        o,
        summary,
        Fault::RateLimited {
            url: prep.shown_url.clone(),
            requests: 1,
            limited: u32::from(status == 429),
            first: if status == 429 { 1 } else { 0 },
            limiter,
            env: env(),
            var: p.disable_var.clone(),
            value: p.disable_value.clone(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::limiter::tests::{h, seed_limiters};
    use super::*;
    use crate::checks::Status;

    #[test]
    fn label_numbers_the_body() {
        let mut v = serde_json::json!({"content": "burst {n}", "x": ["{n}", 1]});
        label(&mut v, 42);
        assert_eq!(
            v,
            serde_json::json!({"content": "burst 42", "x": ["42", 1]})
        );
    }

    fn params(probe: bool) -> Params {
        let mut p: Params = serde_json::from_value(serde_json::json!({
            "request": {"method": "POST", "url": "http://127.0.0.1:3001/api/v1/chat/messages",
                        "json": {"content": "burst {n}"}},
            "requests": 4,
            "probe": probe,
        }))
        .unwrap();
        p.limiters = seed_limiters();
        p
    }

    fn plan(requests: u32) -> Plan {
        Plan {
            requests,
            concurrency: 2,
            per_request: Duration::from_secs(5),
            labelled: true,
        }
    }

    fn burst(outcomes: &[Outcome], first: Option<Answer>) -> Burst {
        Burst {
            samples: outcomes
                .iter()
                .enumerate()
                .map(|(i, o)| Sample {
                    n: i as u32 + 1,
                    outcome: *o,
                    micros: 1000 * (i as u64 + 1),
                })
                .collect(),
            first,
            wall: Duration::from_millis(10),
            finished: true,
        }
    }

    fn judge(p: &Params, b: &Burst) -> Observation {
        let prep = p.request.prepare().unwrap();
        let env = || EnvState::Unknown { in_shell: None };
        if p.probe {
            judge_probe(p, &prep, b, &env)
        } else {
            judge_burst(
                p,
                &prep,
                &plan(p.requests),
                Duration::from_secs(30),
                b,
                &env,
            )
        }
    }

    const OK: Outcome = Outcome::Status(201);

    #[test]
    fn a_clean_burst_passes_with_counts_and_latency() {
        let o = judge(&params(false), &burst(&[OK, OK, OK, OK], None));
        assert_eq!(o.status, Status::Pass, "{o:?}");
        assert_eq!(
            o.summary,
            "4 of 4 requests succeeded, zero 429s: the rate limiters are off"
        );
        assert_eq!(
            o.evidence[0],
            "4 requests (2 concurrent) in 10ms: 4 × 2xx, 0 × 429, 0 × other status, 0 × transport errors (400 req/s)"
        );
        assert_eq!(
            o.evidence[1],
            "latency p50 2ms · p95 4ms · p99 4ms · max 4ms"
        );
        assert!(o.evidence[2].starts_with("each request's body carries its number"));
        assert_eq!(o.captures["rate_limited"], serde_json::json!(0));
        assert!(
            o.command
                .unwrap_or_default()
                .starts_with("for i in $(seq 4); do curl -sS -X POST")
        );
    }

    #[test]
    fn a_429_names_the_limiter() {
        let first = Answer {
            n: 3,
            headers: h(&[("ratelimit-limit", "30")]),
            body: "Too many requests".into(),
        };
        let o = judge(
            &params(false),
            &burst(
                &[OK, OK, Outcome::Status(429), Outcome::Status(429)],
                Some(first),
            ),
        );
        assert_eq!(o.status, Status::Fail);
        assert_eq!(
            o.summary,
            "2 of 4 requests answered 429 Too Many Requests, the first at request #3"
        );
        assert!(
            o.evidence
                .contains(&"first 429 header: ratelimit-limit: 30".to_string())
        );
        assert!(
            o.evidence
                .contains(&"first 429 body: Too many requests".to_string())
        );
        assert_eq!(o.captures["first_429"], serde_json::json!(3));
        match o.fault {
            Some(Fault::RateLimited {
                limiter: Some(l),
                first: 3,
                limited: 2,
                ..
            }) => {
                assert_eq!(l.name, "writeOperationLimiter")
            }
            f => panic!("{f:?}"),
        }
    }

    #[test]
    fn unfinished_and_failing_bursts_fail() {
        let mut b = burst(&[OK, OK], None);
        b.finished = false;
        let o = judge(&params(false), &b);
        assert_eq!(
            o.summary,
            "the burst did not finish within 30.00s: 2 of 4 requests answered"
        );
        assert!(matches!(
            o.fault,
            Some(Fault::BurstIncomplete {
                sent: 2,
                planned: 4,
                ..
            })
        ));
        let o = judge(
            &params(false),
            &burst(
                &[
                    OK,
                    Outcome::Failed(NetError::Reset),
                    Outcome::Status(500),
                    OK,
                ],
                None,
            ),
        );
        assert_eq!(
            o.summary,
            "zero 429s, but 2 of 4 requests failed (first: connection reset)"
        );
        assert!(matches!(
            o.fault,
            Some(Fault::BurstErrors { failed: 2, .. })
        ));
    }

    #[test]
    fn the_probe_judges_by_headers() {
        let quiet = Answer {
            n: 1,
            headers: vec![],
            body: String::new(),
        };
        let o = judge(&params(true), &burst(&[OK], Some(quiet)));
        assert_eq!(o.status, Status::Pass);
        assert_eq!(
            o.summary,
            "one probe request → 201, no rate-limit headers: the limiters skip this request"
        );
        let loud = Answer {
            n: 1,
            headers: h(&[("ratelimit-policy", "100;w=900")]),
            body: String::new(),
        };
        let o = judge(&params(true), &burst(&[OK], Some(loud)));
        assert_eq!(o.status, Status::Fail);
        assert_eq!(
            o.summary,
            "rate-limit headers present (limit 100): limiting is active, a burst of 4 would meet 429s"
        );
        assert!(
            o.evidence
                .contains(&"header ratelimit-policy: 100;w=900".to_string())
        );
        let o = judge(
            &params(true),
            &burst(&[Outcome::Failed(NetError::Refused)], None),
        );
        assert_eq!(o.summary, "the probe request failed: connection refused");
        let o = judge(&params(true), &burst(&[], None));
        assert_eq!(o.status, Status::Error);
    }
}
