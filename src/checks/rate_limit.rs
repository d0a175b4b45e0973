//! `rate_limit`: judges the backend's rate limiting from what it does. The
//! first request goes alone (the probe): its rate-limit headers, in any
//! documented style, give the budget left; when the budget cannot admit the
//! burst (the seed's 250 rapid requests) the check fails naming the limiter
//! without sending it, else the burst is sent and its 429s counted. The
//! backend process's environment (the off switch: missing, misspelt, `1`
//! instead of `true`) explains the result; it never decides it.
//!
//! The burst is sent here (its own small sender: a fixed number of requests
//! at a fixed concurrency, measured at 1.01× oha's time for the seed's 250
//! at 10 in flight); `judge_probe` and `judge_burst` judge what it saw.

pub mod budget;
pub mod limiter;
mod probe;
pub mod switch;

pub use limiter::{Limiter, announced_limit};
use limiter::{match_limiter, rate_headers};
use probe::{Lead, judge_probe, probe_only};

use super::env::ProcessSel;
use super::util::failed;
use super::{Check, Ctx, Observation};
use crate::diagnose::{EnvState, Fault, NetError, excerpt};
use crate::probe::http::{MaxBody, Prepared, Request, classify, read_body};
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
    /// Send only the probe (one request) and judge from its rate-limit
    /// headers: a budget too small for `requests` fails, a budget that
    /// admits it warns, no headers pass. Without it the burst follows the
    /// probe whenever the budget admits it.
    #[serde(default)]
    pub probe: bool,
    /// Timeout of each request (default 5s, within the check's timeout).
    pub request_timeout: Option<Dur>,
    /// The backend's limiters, so a 429 names the one that answered.
    #[serde(default)]
    pub limiters: Vec<Limiter>,
    /// The backend process (`{port: …}`, `{pid: …}` or `{name: …}`): its
    /// environment explains the result (the switch missing, misspelt, or
    /// not exactly `disable_value`).
    pub process: Option<ProcessSel>,
    /// The variable that disables the limiters (default DISABLE_RATE_LIMIT)…
    #[serde(default = "default_var")]
    pub disable_var: String,
    /// …and the exact value that does it (default "true").
    #[serde(default = "default_value")]
    pub disable_value: String,
    /// How much of each answer's body is read (default 1MB): a longer one
    /// counts as a failed request (too large).
    #[serde(default)]
    pub max_body: MaxBody,
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

/// How the burst is sent.
struct Plan {
    /// The first request's number (the probe is #1, the burst #2 on).
    from: u32,
    /// The last request's number.
    requests: u32,
    concurrency: u32,
    per_request: Duration,
    /// Whether `{n}` in the JSON body is replaced by each request's number.
    labelled: bool,
    /// Keep the headers and body of every answer (the probe), not only a 429's.
    keep: bool,
    /// How much of each body is read.
    max_body: MaxBody,
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
        let (from, n_total) = (plan.from, plan.requests);
        let (per_request, labelled, keep) = (plan.per_request, plan.labelled, plan.keep);
        let max_body = plan.max_body;
        workers.spawn(async move {
            let (prep, client) = &*shared;
            let mut samples = Vec::new();
            let mut first: Option<Answer> = None;
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed) + from;
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
                    Ok(mut resp) => {
                        let status = resp.status().as_u16();
                        let want = status == 429 || keep;
                        let headers = rate_headers(resp.headers());
                        // The body is read whole (up to the bound) so that a
                        // body that breaks off or never ends is a failure.
                        match read_body(&mut resp, max_body).await {
                            Ok(b) if b.cut => Outcome::Failed(NetError::TooLarge),
                            Ok(b) => {
                                if want && first.as_ref().is_none_or(|f| n < f.n) {
                                    let body = String::from_utf8_lossy(&b.bytes).into_owned();
                                    first = Some(Answer { n, headers, body });
                                }
                                Outcome::Status(status)
                            }
                            Err(e) => Outcome::Failed(classify(&e).0),
                        }
                    }
                    Err(e) => Outcome::Failed(classify(&e).0),
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
    const HELP: &'static str = "rate limiting judged from the backend's answers: a probe's rate-limit headers (budget left), then a burst (default 250) that must get zero 429s; the backend's DISABLE_RATE_LIMIT explains, never decides";
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
            from: 1,
            requests: n_total,
            concurrency: p.concurrency.clamp(1, 1000).min(n_total),
            per_request: p
                .request_timeout
                .map(|d| d.0)
                .unwrap_or(Duration::from_secs(5))
                .min(ctx.timeout),
            labelled: prepared.curl.contains("{n}"),
            keep: false,
            max_body: p.max_body,
        };
        let client = match reqwest::Client::builder()
            .pool_max_idle_per_host(plan.concurrency as usize)
            .no_proxy()
            .build()
        {
            Ok(c) => c,
            Err(e) => return Observation::error(format!("cannot build an HTTP client: {e}")),
        };
        let started = Instant::now();
        let budget = ctx.timeout.saturating_sub(Duration::from_millis(50));
        // Request #1 alone: the probe.
        let probe_plan = Plan {
            requests: 1,
            concurrency: 1,
            keep: true,
            ..plan
        };
        let probe = send_burst(prepared.clone(), client.clone(), &probe_plan, budget).await;
        let env = switch::env_state(&p.disable_var, p.process.as_ref());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let lead = match judge_probe(&p, &prepared, &probe, &env, now) {
            Ok(lead) => lead,
            Err(o) => return *o,
        };
        if p.probe {
            return probe_only(&p, &prepared, lead);
        }
        // The rest of the burst, #2 on.
        let mut burst = if n_total > 1 {
            let rest = Plan {
                from: 2,
                concurrency: plan.concurrency.min(n_total - 1),
                ..plan
            };
            send_burst(
                prepared.clone(),
                client,
                &rest,
                budget.saturating_sub(started.elapsed()),
            )
            .await
        } else {
            Burst {
                finished: true,
                ..Burst::default()
            }
        };
        burst.samples.extend(probe.samples);
        burst.wall = started.elapsed();
        judge_burst(&p, &prepared, &plan, ctx.timeout, &burst, &env, &lead)
    }
}

/// The command that repeats the burst and counts the statuses.
fn burst_command(prep: &Prepared, n_total: u32) -> String {
    format!(
        "for i in $(seq {n_total}); do {} -o /dev/null -w '%{{http_code}}\\n'; done | sort | uniq -c",
        prep.curl.replacen("curl -sS -i", "curl -sS", 1)
    )
}

/// Judges a burst: zero 429s pass (a warning when the probe's headers
/// announced a limiter whose budget the burst fit in); a 429 names the
/// limiter, with the backend's environment as the explanation; an
/// unfinished burst or other failures fail too.
fn judge_burst(
    p: &Params,
    prep: &Prepared,
    plan: &Plan,
    timeout: Duration,
    b: &Burst,
    env: &EnvState,
    lead: &Lead,
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
    for line in &lead.lines {
        o = o.evidence(line.clone());
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
                env: env.clone(),
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
    o = o.evidence(switch::explain_unlimited(
        env,
        &p.disable_var,
        &p.disable_value,
    ));
    if let Some(budget) = &lead.budget {
        o.status = super::Status::Warn;
        o.summary = format!(
            "{ok} of {} requests succeeded, zero 429s, but a limiter is on ({}): a load test beyond its budget will meet 429s",
            samples.len(),
            budget.describe()
        );
    }
    o
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
            from: 1,
            keep: false,
            requests,
            concurrency: 2,
            per_request: Duration::from_secs(5),
            labelled: true,
            max_body: MaxBody::default(),
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

    const UNKNOWN: EnvState = EnvState::Unknown { in_shell: None };

    fn judge(p: &Params, b: &Burst) -> Observation {
        judge_env(p, b, &UNKNOWN)
    }

    /// The check's judgement of a probe (the first sample) and a burst.
    fn judge_env(p: &Params, b: &Burst, env: &EnvState) -> Observation {
        let prep = p.request.prepare().unwrap();
        let probe = Burst {
            samples: b.samples.first().cloned().into_iter().collect(),
            first: b.first.clone().filter(|a| a.n == 1 || p.probe),
            wall: b.wall,
            finished: true,
        };
        let lead = match judge_probe(p, &prep, &probe, env, 1_764_650_000) {
            Ok(lead) => lead,
            Err(o) => return *o,
        };
        if p.probe {
            return probe_only(p, &prep, lead);
        }
        judge_burst(
            p,
            &prep,
            &plan(p.requests),
            Duration::from_secs(30),
            b,
            env,
            &lead,
        )
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
            "one probe request, no rate-limit headers: no limiter announces itself on this path"
        );
        // The sandbox's apiLimiter, draft-6 style: 97 left admits a burst of 4.
        let loud = Answer {
            n: 1,
            headers: h(&[
                ("ratelimit-policy", "100;w=900"),
                ("ratelimit-limit", "100"),
                ("ratelimit-remaining", "97"),
                ("ratelimit-reset", "880"),
            ]),
            body: String::new(),
        };
        let o = judge(&params(true), &burst(&[OK], Some(loud.clone())));
        assert_eq!(o.status, Status::Warn, "{o:?}");
        assert!(
            o.summary.starts_with(
                "rate-limit headers show limiting is active (a limiter: 97 of 100 left per 900s"
            ),
            "{}",
            o.summary
        );
        assert!(
            o.evidence
                .contains(&"probe header ratelimit-policy: 100;w=900".to_string())
        );
        // The same headers before a burst of 250: failed without sending it.
        let mut p = params(true);
        p.requests = 250;
        let o = judge(&p, &burst(&[OK], Some(loud)));
        assert_eq!(o.status, Status::Fail);
        assert!(
            o.summary
                .contains("a burst of 250 would meet 429s from about request #99"),
            "{}",
            o.summary
        );
        let o = judge(
            &params(true),
            &burst(&[Outcome::Failed(NetError::Refused)], None),
        );
        assert_eq!(o.summary, "the probe request failed: connection refused");
        // No answer in time: a failure classified as a timeout.
        let o = judge(&params(true), &burst(&[], None));
        assert_eq!(o.status, Status::Fail);
        assert!(
            matches!(
                o.fault,
                Some(Fault::HttpConnect {
                    error: NetError::Timeout,
                    ..
                })
            ),
            "{o:?}"
        );
    }

    fn seed(requests: u32) -> Params {
        let mut p = params(false);
        p.requests = requests;
        p
    }

    fn outcomes(n: usize, o: Outcome) -> Vec<Outcome> {
        vec![o; n]
    }

    #[test]
    fn a_budget_too_small_for_the_burst_fails_without_sending_it() {
        // The seed's backend: standardHeaders (draft-6), apiLimiter 100 per
        // 15 minutes, the health probe already spent one.
        let probe = Answer {
            n: 1,
            headers: h(&[
                ("ratelimit-policy", "100;w=900"),
                ("ratelimit-limit", "100"),
                ("ratelimit-remaining", "98"),
                ("ratelimit-reset", "899"),
            ]),
            body: String::new(),
        };
        // Only the probe's answer: the judgement needs no 250 requests.
        let o = judge(&seed(250), &burst(&[OK], Some(probe)));
        assert_eq!(o.status, Status::Fail, "{o:?}");
        assert_eq!(
            o.summary,
            "rate-limit headers show limiting is active (a limiter: 98 of 100 left per 900s, reset in 899s (draft-6 headers)): a burst of 250 would meet 429s from about request #100, so it was not sent"
        );
        assert!(o.evidence.iter().any(|e| e.ends_with("not sent")));
        match &o.fault {
            Some(Fault::RateLimited {
                limiter: Some(l),
                first: 0,
                requests: 1,
                ..
            }) => assert_eq!((l.name.as_str(), l.max), ("apiLimiter", 100)),
            f => panic!("{f:?}"),
        }
        let d = crate::diagnose::diagnose(o.fault.as_ref().unwrap());
        assert!(
            d.root_cause.contains("apiLimiter (100 requests"),
            "{}",
            d.root_cause
        );
        // draft-8, a named limiter nobody declared.
        let probe = Answer {
            n: 1,
            headers: h(&[
                ("ratelimit", "\"burstGuard\"; r=9; t=60"),
                ("ratelimit-policy", "\"burstGuard\"; q=10; w=60"),
            ]),
            body: String::new(),
        };
        let o = judge(&seed(250), &burst(&[OK], Some(probe)));
        match &o.fault {
            Some(Fault::RateLimited {
                limiter: Some(l), ..
            }) => assert_eq!((l.name.as_str(), l.max), ("burstGuard", 10)),
            f => panic!("{f:?}"),
        }
    }

    #[test]
    fn a_budget_that_admits_the_burst_lets_the_burst_decide() {
        let probe = Answer {
            n: 1,
            headers: h(&[
                ("x-ratelimit-limit", "10000"),
                ("x-ratelimit-remaining", "9999"),
                ("x-ratelimit-reset", "1764650900"),
            ]),
            body: String::new(),
        };
        let o = judge(&seed(250), &burst(&outcomes(250, OK), Some(probe.clone())));
        assert_eq!(o.status, Status::Warn, "{o:?}");
        assert!(
            o.evidence.contains(
                &"the budget admits 9999 more request(s), the burst needs 249: sending it to prove it"
                    .to_string()
            ),
            "{:?}",
            o.evidence
        );
        assert!(o.summary.starts_with("250 of 250 requests succeeded, zero 429s, but a limiter is on (a limiter: 9999 of 10000 left, reset in 900s"), "{}", o.summary);
        // The budget said yes, the backend said 429: the answers win.
        let mut seen = outcomes(250, OK);
        seen[200] = Outcome::Status(429);
        let first = Answer {
            n: 201,
            headers: h(&[("x-ratelimit-limit", "10000"), ("retry-after", "60")]),
            body: "{\"error\":\"Rate limit exceeded\"}".into(),
        };
        let mut b = burst(&seen, Some(first));
        b.samples[0].n = 1;
        let prep = params(false).request.prepare().unwrap();
        let lead = judge_probe(
            &seed(250),
            &prep,
            &burst(&[OK], Some(probe)),
            &UNKNOWN,
            1_764_650_000,
        )
        .expect("the budget admits the burst");
        let o = judge_burst(
            &seed(250),
            &prep,
            &plan(250),
            Duration::from_secs(30),
            &b,
            &UNKNOWN,
            &lead,
        );
        assert_eq!(o.status, Status::Fail);
        assert!(
            o.summary.starts_with("1 of 250 requests answered 429"),
            "{}",
            o.summary
        );
    }

    #[test]
    fn no_headers_and_no_429_pass_from_behaviour_whatever_the_environment() {
        // No switch at all in the process: the answers decide, the
        // environment only explains.
        let env = EnvState::Process {
            source: "process 9 (node dist/main)".into(),
            value: None,
            in_shell: None,
            similar: vec![],
        };
        let o = judge_env(&seed(250), &burst(&outcomes(250, OK), None), &env);
        assert_eq!(o.status, Status::Pass, "{o:?}");
        assert_eq!(
            o.summary,
            "250 of 250 requests succeeded, zero 429s: the rate limiters are off"
        );
        assert!(o.evidence.contains(
            &"no rate-limit budget announced: sending the burst of 250 to find out".to_string()
        ));
        assert!(
            o.evidence
                .iter()
                .any(|e| e.starts_with("environment: DISABLE_RATE_LIMIT is not set in process 9")),
            "{:?}",
            o.evidence
        );
    }

    #[test]
    fn the_environment_explains_a_429_with_the_switch_set_to_1() {
        let env = EnvState::Process {
            source: "process 9 (node dist/main)".into(),
            value: Some("1".into()),
            in_shell: None,
            similar: vec![],
        };
        let first = Answer {
            n: 3,
            headers: vec![],
            body: "Too many requests".into(),
        };
        let o = judge_env(
            &params(false),
            &burst(
                &[OK, OK, Outcome::Status(429), Outcome::Status(429)],
                Some(first),
            ),
            &env,
        );
        assert_eq!(o.status, Status::Fail);
        let d = crate::diagnose::diagnose(o.fault.as_ref().unwrap());
        assert!(
            d.root_cause.contains("DISABLE_RATE_LIMIT is \"1\" in process 9 (node dist/main): the backend skips its limiters only when it is exactly \"true\""),
            "{}",
            d.root_cause
        );
        assert!(
            d.remedy.contains("DISABLE_RATE_LIMIT=true (exactly)"),
            "{}",
            d.remedy
        );
    }
}
