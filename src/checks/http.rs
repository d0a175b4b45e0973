//! `http`: one request, with expectations on status, JSON paths, headers,
//! body and latency, and values captured for later checks.
//!
//! [`observe`] sends the request and collects what came back; [`judge`]
//! holds it against the expectations. The request syntax and its curl line
//! live in [`crate::probe::http`], the assertion language in [`super::expect`].

use super::expect::Assertion;
use super::util::failed;
use super::{Check, Ctx, Observation};
use crate::diagnose::{Fault, NetError, excerpt};
use crate::probe::http::{MaxBody, Prepared, Request, classify, read_body};
use crate::support::dotpath;
use crate::support::duration::{self, Dur};
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub struct Http;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The request: method, url, headers, query, json or body.
    pub request: Request,
    /// What the response must look like (default: a 2xx status).
    #[serde(default)]
    pub expect: Expect,
    /// Values to keep for later checks: `name: json.message.id`, `header.etag`, `status` or `body`.
    /// Use them as `${checks.ID.name}`; the whole JSON body is also kept as `${checks.ID.json.…}`.
    #[serde(default)]
    pub capture: BTreeMap<String, String>,
    /// How much of the body is read (default 1MB; `64KB`, `10MB` or a number
    /// of bytes): a longer body is cut there and the check fails as too large.
    #[serde(default)]
    pub max_body: MaxBody,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// A status (200), a class ("2xx"), or a list of them. Default "2xx".
    pub status: Option<StatusSpec>,
    /// Assertions by JSON path (`database.overall: healthy`, or `{exists: true}`, `{matches: …}`, `{lt: 5}`…).
    /// A path may list alternatives separated by `|` (the first that exists is used).
    #[serde(default)]
    pub json: BTreeMap<String, Assertion>,
    /// Assertions on response headers, by name.
    #[serde(default)]
    pub headers: BTreeMap<String, Assertion>,
    /// Text the body must contain.
    pub body_contains: Option<String>,
    /// Upper bound on the response time.
    pub max_latency: Option<Dur>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum StatusSpec {
    One(StatusItem),
    Many(Vec<StatusItem>),
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum StatusItem {
    Code(u16),
    Text(String),
}

impl StatusItem {
    fn matches(&self, s: u16) -> bool {
        match self {
            StatusItem::Code(c) => *c == s,
            StatusItem::Text(t) => {
                let t = t.trim().to_ascii_lowercase();
                match t.strip_suffix("xx") {
                    Some(d) => d.parse::<u16>().is_ok_and(|d| s / 100 == d),
                    None => t.parse::<u16>().is_ok_and(|c| c == s),
                }
            }
        }
    }
    fn text(&self) -> String {
        match self {
            StatusItem::Code(c) => c.to_string(),
            StatusItem::Text(t) => t.clone(),
        }
    }
}

impl StatusSpec {
    fn items(&self) -> Vec<StatusItem> {
        match self {
            StatusSpec::One(i) => vec![i.clone()],
            StatusSpec::Many(v) => v.clone(),
        }
    }
}

/// What one request brought back.
#[derive(Debug)]
pub enum Exchange {
    /// No answer: the connection or the request failed.
    NoAnswer {
        error: NetError,
        detail: String,
        took: Duration,
    },
    /// An answer whose body could not be read.
    BodyFailed {
        error: NetError,
        detail: String,
    },
    /// An answer whose body did not arrive within the check's time.
    BodyTimedOut,
    /// An answer whose body is longer than `max_body`: what was read of it.
    TooLarge {
        status: u16,
        head: Vec<u8>,
        limit: MaxBody,
        took: Duration,
    },
    Answered(Response),
}

/// A whole answer.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
    pub took: Duration,
}

/// Sends the request once and reads the answer (its body up to `max_body`)
/// within `timeout`.
pub async fn observe(
    prep: &Prepared,
    client: &reqwest::Client,
    timeout: Duration,
    max_body: MaxBody,
) -> Exchange {
    let req = prep.builder(client, timeout);
    let started = Instant::now();
    let mut resp = match req.send().await {
        Ok(r) => r,
        Err(e) => {
            let (kind, detail) = classify(&e);
            return Exchange::NoAnswer {
                error: kind,
                detail,
                took: started.elapsed(),
            };
        }
    };
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let left = timeout.saturating_sub(started.elapsed());
    match tokio::time::timeout(left, read_body(&mut resp, max_body)).await {
        Ok(Ok(body)) if body.cut => Exchange::TooLarge {
            status,
            head: body.bytes.into_iter().take(400).collect(),
            limit: max_body,
            took: started.elapsed(),
        },
        Ok(Ok(body)) => Exchange::Answered(Response {
            status,
            headers,
            body: body.bytes,
            took: started.elapsed(),
        }),
        Ok(Err(e)) => {
            let (kind, detail) = classify(&e);
            Exchange::BodyFailed {
                error: kind,
                detail,
            }
        }
        Err(_) => Exchange::BodyTimedOut,
    }
}

/// Judges what came back against the expectations and takes the captures.
pub fn judge(p: &Params, prep: &Prepared, x: Exchange) -> Observation {
    let (method, url) = (&prep.method, &prep.shown_url);
    let connect = |error: NetError, detail: String| Fault::HttpConnect {
        url: url.clone(),
        error,
        detail,
    };
    match x {
        Exchange::NoAnswer {
            error,
            detail,
            took,
        } => Observation::fail(
            format!(
                "{method} {url}: {} after {}",
                error.describe(),
                duration::fmt(took)
            ),
            connect(error, excerpt(&detail, 200)),
        )
        .evidence(excerpt(&detail, 300))
        .command(prep.curl.clone()),
        Exchange::BodyFailed { error, detail } => Observation::fail(
            format!(
                "{method} {url}: reading the body failed ({})",
                error.describe()
            ),
            connect(error, detail),
        )
        .command(prep.curl.clone()),
        Exchange::BodyTimedOut => Observation::fail(
            format!("{method} {url}: the body did not arrive in time"),
            connect(NetError::Timeout, "body read timed out".into()),
        )
        .command(prep.curl.clone()),
        Exchange::TooLarge {
            status,
            head,
            limit,
            took,
        } => Observation::fail(
            format!(
                "{method} {url}: the answer ({status}) is larger than max_body ({})",
                limit.human()
            ),
            connect(
                NetError::TooLarge,
                format!("the body was cut at {} (max_body)", limit.human()),
            ),
        )
        .evidence(format!(
            "{method} {url} → {status} in {}, body over {}",
            duration::fmt(took),
            limit.human()
        ))
        .evidence(format!(
            "body: {} … (cut: only the first {} were read; raise max_body to read more)",
            excerpt(&String::from_utf8_lossy(&head), 300),
            limit.human()
        ))
        .command(prep.curl.clone()),
        Exchange::Answered(r) => judge_answer(p, prep, &r),
    }
}

/// A failed expectation: the summary and the fault. Each `expect_*`
/// gives `None` when its expectation holds (or was not asked for).
type Problem = (String, Fault);

/// The answer, decoded once for every expectation.
struct Seen<'a> {
    url: &'a str,
    r: &'a Response,
    text: String,
    json: Option<serde_json::Value>,
}

fn judge_answer(p: &Params, prep: &Prepared, r: &Response) -> Observation {
    let seen = Seen {
        url: &prep.shown_url,
        r,
        text: String::from_utf8_lossy(&r.body).into_owned(),
        json: serde_json::from_slice(&r.body).ok(),
    };
    let line = format!(
        "{} {} → {} in {}",
        prep.method,
        prep.shown_url,
        r.status,
        duration::fmt(r.took)
    );
    let mut o = Observation::pass(line.clone())
        .evidence(line)
        .evidence(format!("body: {}", excerpt(&seen.text, 300)))
        .command(prep.curl.clone())
        .capture("status", r.status)
        .capture("latency_ms", r.took.as_millis() as u64);
    if let Some(j) = &seen.json {
        o = o.capture("json", j.clone());
    }
    // A backend that echoes the request id lets its log lines be told apart.
    if let Some(id) = header_value(&seen, "x-request-id") {
        o = o.capture("request_id", id);
    }
    // The first expectation that does not hold is the finding.
    let problem = expect_status(&p.expect, &seen, &prep.method)
        .or_else(|| expect_latency(&p.expect, &seen))
        .or_else(|| expect_body(&p.expect, &seen))
        .or_else(|| expect_json(&p.expect, &seen, &mut o))
        .or_else(|| expect_headers(&p.expect, &seen))
        .or_else(|| take_captures(&p.capture, &seen, &mut o));
    match problem {
        None => o,
        Some((summary, fault)) => failed(o, summary, fault),
    }
}

fn expect_status(e: &Expect, s: &Seen, method: &reqwest::Method) -> Option<Problem> {
    let status = s.r.status;
    let expected = e
        .status
        .as_ref()
        .map(|s| s.items())
        .unwrap_or_else(|| vec![StatusItem::Text("2xx".into())]);
    if expected.iter().any(|i| i.matches(status)) {
        return None;
    }
    let exp = expected
        .iter()
        .map(StatusItem::text)
        .collect::<Vec<_>>()
        .join(" or ");
    Some((
        format!("{method} {} answered {status}, expected {exp}", s.url),
        Fault::HttpStatus {
            url: s.url.to_string(),
            expected: exp,
            status,
            body: excerpt(&s.text, 400),
        },
    ))
}

fn expect_latency(e: &Expect, s: &Seen) -> Option<Problem> {
    let took_ms = s.r.took.as_millis() as u64;
    let limit_ms = e.max_latency.map(|max| max.0.as_millis() as u64)?;
    (took_ms > limit_ms).then(|| {
        (
            format!("{} took {took_ms} ms (limit {limit_ms} ms)", s.url),
            Fault::HttpLatency {
                url: s.url.to_string(),
                limit_ms,
                took_ms,
            },
        )
    })
}

fn expect_body(e: &Expect, s: &Seen) -> Option<Problem> {
    match &e.body_contains {
        Some(c) if !s.text.contains(c.as_str()) => Some((
            format!("the body does not contain {c:?}"),
            Fault::HttpAssertion {
                url: s.url.to_string(),
                path: "body".into(),
                expected: format!("containing {c:?}"),
                actual: excerpt(&s.text, 120),
            },
        )),
        _ => None,
    }
}

/// The first of `path`'s `|`-separated alternatives that exists in `j`.
fn lookup_alternatives<'j>(j: &'j serde_json::Value, path: &str) -> Option<&'j serde_json::Value> {
    path.split('|')
        .map(str::trim)
        .find_map(|alt| dotpath::lookup(j, alt))
}

fn expect_json(e: &Expect, s: &Seen, o: &mut Observation) -> Option<Problem> {
    if e.json.is_empty() {
        return None;
    }
    let Some(j) = &s.json else {
        return Some((
            format!("{} did not answer JSON", s.url),
            Fault::HttpBody {
                url: s.url.to_string(),
                message: format!("the body is not JSON: {}", excerpt(&s.text, 120)),
            },
        ));
    };
    for (path, a) in &e.json {
        let found = lookup_alternatives(j, path);
        if let Err(expected) = a.check(found) {
            let actual = found
                .map(|v| excerpt(&v.to_string(), 120))
                .unwrap_or_else(|| "absent".into());
            return Some((
                format!("`{path}` is {actual}, expected {expected}"),
                Fault::HttpAssertion {
                    url: s.url.to_string(),
                    path: path.clone(),
                    expected,
                    actual,
                },
            ));
        }
        o.evidence.push(format!(
            "✓ {path} = {}",
            found
                .map(|v| excerpt(&v.to_string(), 80))
                .unwrap_or_else(|| "(absent)".into())
        ));
    }
    None
}

fn header_value(s: &Seen, name: &str) -> Option<serde_json::Value> {
    s.r.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| serde_json::Value::String(v.to_string()))
}

fn expect_headers(e: &Expect, s: &Seen) -> Option<Problem> {
    for (name, a) in &e.headers {
        let v = header_value(s, name);
        if let Err(expected) = a.check(v.as_ref()) {
            let actual = v
                .map(|v| dotpath::scalar_text(&v))
                .unwrap_or_else(|| "absent".into());
            return Some((
                format!("header `{name}` is {actual}, expected {expected}"),
                Fault::HttpAssertion {
                    url: s.url.to_string(),
                    path: format!("header {name}"),
                    expected,
                    actual,
                },
            ));
        }
    }
    None
}

fn take_captures(
    capture: &BTreeMap<String, String>,
    s: &Seen,
    o: &mut Observation,
) -> Option<Problem> {
    for (name, from) in capture {
        let value = if from == "status" {
            Some(serde_json::Value::from(s.r.status))
        } else if from == "body" {
            Some(serde_json::Value::String(s.text.clone()))
        } else if let Some(h) = from
            .strip_prefix("header.")
            .or_else(|| from.strip_prefix("headers."))
        {
            header_value(s, h)
        } else {
            let path = from.strip_prefix("json.").unwrap_or(from);
            s.json
                .as_ref()
                .and_then(|j| lookup_alternatives(j, path))
                .cloned()
        };
        let Some(v) = value else {
            return Some((
                format!("nothing to capture as `{name}` at `{from}`"),
                Fault::HttpAssertion {
                    url: s.url.to_string(),
                    path: from.clone(),
                    expected: "to exist (for a capture)".into(),
                    actual: "absent".into(),
                },
            ));
        };
        o.evidence.push(format!(
            "captured {name} = {}",
            excerpt(&dotpath::scalar_text(&v), 80)
        ));
        o.captures.insert(name.clone(), v);
    }
    None
}

impl Check for Http {
    const KIND: &'static str = "http";
    const HELP: &'static str =
        "one HTTP request: status, JSON path, header and latency assertions, captured values";
    type Params = Params;

    async fn run(p: Params, ctx: Ctx) -> Observation {
        let prepared = match p.request.prepare() {
            Ok(x) => x,
            Err(e) => return Observation::error(e.to_string()),
        };
        // The backend's log is read only for requests to the backend.
        let witness = ctx.witness.as_deref().filter(|w| {
            w.hints.backend_port.is_some()
                && w.hints.backend_port == prepared.url.port_or_known_default()
        });
        let mark = witness.map(super::witness::mark);
        let x = observe(&prepared, ctx.http.get(), ctx.timeout, p.max_body).await;
        let o = judge(&p, &prepared, x);
        match (&o.fault, witness, mark) {
            (Some(Fault::HttpStatus { .. }), Some(w), Some(m)) => {
                let seen = m.read();
                let id = o
                    .captures
                    .get("request_id")
                    .and_then(|v| v.as_str())
                    .map(str::to_string);
                super::witness::explain_answer(o, Some(&seen), id.as_deref(), &w.hints)
            }
            (Some(Fault::HttpStatus { .. }), _, _) => {
                super::witness::explain_answer(o, None, None, &Default::default())
            }
            _ => o,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Status;
    use serde_json::json;

    fn params(yaml_expect: serde_json::Value, capture: serde_json::Value) -> Params {
        serde_json::from_value(json!({
            "request": {"url": "http://127.0.0.1:3001/api/v1/health"},
            "expect": yaml_expect,
            "capture": capture,
        }))
        .unwrap()
    }

    fn answer(status: u16, body: &str, ms: u64) -> Exchange {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("etag", reqwest::header::HeaderValue::from_static("\"v1\""));
        Exchange::Answered(Response {
            status,
            headers,
            body: body.as_bytes().to_vec(),
            took: Duration::from_millis(ms),
        })
    }

    fn run(p: &Params, x: Exchange) -> Observation {
        let prep = p.request.prepare().unwrap();
        judge(p, &prep, x)
    }

    fn fault(o: &Observation) -> String {
        format!("{:?}", o.fault)
    }

    #[test]
    fn status_classes() {
        assert!(StatusItem::Text("2xx".into()).matches(201));
        assert!(!StatusItem::Text("2xx".into()).matches(301));
        assert!(StatusItem::Code(429).matches(429));
        assert!(StatusItem::Text("404".into()).matches(404));
    }

    #[test]
    fn a_healthy_answer_passes_with_its_evidence_and_captures() {
        let p = params(
            json!({"status": 200, "json": {"status": "ok", "database.overall": "healthy"}}),
            json!({"tag": "header.etag", "state": "json.status"}),
        );
        let o = run(
            &p,
            answer(
                200,
                r#"{"status":"ok","database":{"overall":"healthy"}}"#,
                12,
            ),
        );
        assert_eq!(o.status, Status::Pass, "{o:?}");
        let line = "GET http://127.0.0.1:3001/api/v1/health → 200 in 12ms";
        assert_eq!(o.summary, line);
        assert_eq!(o.evidence[0], line);
        assert!(o.evidence[1].starts_with("body: {"), "{:?}", o.evidence);
        assert!(o.evidence.contains(&"✓ status = \"ok\"".to_string()));
        assert!(o.evidence.contains(&"captured tag = \"v1\"".to_string()));
        assert_eq!(o.captures["status"], json!(200));
        assert_eq!(o.captures["latency_ms"], json!(12));
        assert_eq!(o.captures["state"], json!("ok"));
        assert_eq!(o.captures["json"]["database"]["overall"], json!("healthy"));
        assert_eq!(
            o.command.as_deref(),
            Some("curl -sS -i -X GET 'http://127.0.0.1:3001/api/v1/health'")
        );
    }

    #[test]
    fn a_wrong_status_fails_with_the_body() {
        let p = params(json!({}), json!({}));
        let o = run(&p, answer(503, "down", 5));
        assert_eq!(o.status, Status::Fail);
        assert_eq!(
            o.summary,
            "GET http://127.0.0.1:3001/api/v1/health answered 503, expected 2xx"
        );
        assert!(fault(&o).contains("HttpStatus"), "{o:?}");
        // The evidence gathered before the judgement stays.
        assert_eq!(o.evidence[1], "body: down");
    }

    #[test]
    fn latency_body_json_header_and_capture_failures() {
        let p = params(json!({"max_latency": "10ms"}), json!({}));
        let o = run(&p, answer(200, "{}", 25));
        assert_eq!(
            o.summary,
            "http://127.0.0.1:3001/api/v1/health took 25 ms (limit 10 ms)"
        );
        let p = params(json!({"body_contains": "ok"}), json!({}));
        let o = run(&p, answer(200, "mock", 1));
        assert_eq!(o.summary, "the body does not contain \"ok\"");
        let p = params(json!({"json": {"status": "ok"}}), json!({}));
        let o = run(&p, answer(200, "<html>", 1));
        assert_eq!(
            o.summary,
            "http://127.0.0.1:3001/api/v1/health did not answer JSON"
        );
        assert!(fault(&o).contains("HttpBody"));
        let o = run(&p, answer(200, r#"{"status":"mock"}"#, 1));
        assert_eq!(o.summary, "`status` is \"mock\", expected equal to \"ok\"");
        let p = params(json!({"json": {"a|b": {"exists": true}}}), json!({}));
        let o = run(&p, answer(200, r#"{"b":1}"#, 1));
        assert_eq!(o.status, Status::Pass, "alternatives: {o:?}");
        assert!(o.evidence.contains(&"✓ a|b = 1".to_string()));
        let p = params(json!({"headers": {"etag": "\"v2\""}}), json!({}));
        let o = run(&p, answer(200, "{}", 1));
        assert_eq!(
            o.summary,
            "header `etag` is \"v1\", expected equal to \"\\\"v2\\\"\""
        );
        let p = params(json!({}), json!({"id": "json.message.id"}));
        let o = run(&p, answer(200, "{}", 1));
        assert_eq!(o.status, Status::Fail);
        assert_eq!(o.summary, "nothing to capture as `id` at `json.message.id`");
    }

    #[test]
    fn transport_failures() {
        let p = params(json!({}), json!({}));
        let o = run(
            &p,
            Exchange::NoAnswer {
                error: NetError::Refused,
                detail: "error sending request: Connection refused".into(),
                took: Duration::from_millis(3),
            },
        );
        assert_eq!(o.status, Status::Fail);
        assert_eq!(
            o.summary,
            "GET http://127.0.0.1:3001/api/v1/health: connection refused after 3ms"
        );
        assert_eq!(o.evidence, ["error sending request: Connection refused"]);
        assert!(fault(&o).contains("Refused"));
        let o = run(&p, Exchange::BodyTimedOut);
        assert_eq!(
            o.summary,
            "GET http://127.0.0.1:3001/api/v1/health: the body did not arrive in time"
        );
        let o = run(
            &p,
            Exchange::BodyFailed {
                error: NetError::Reset,
                detail: "reset".into(),
            },
        );
        assert_eq!(
            o.summary,
            "GET http://127.0.0.1:3001/api/v1/health: reading the body failed (connection reset)"
        );
    }
}
