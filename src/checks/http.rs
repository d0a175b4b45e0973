//! `http`: one request, with expectations on status, JSON paths, headers,
//! body and latency, and values captured for later checks.

use super::{Check, Ctx, Observation, Status};
use crate::diagnose::{Fault, NetError, excerpt};
use crate::support::dotpath;
use crate::support::duration::Dur;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};
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
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// HTTP method (default GET).
    #[serde(default = "default_method")]
    pub method: String,
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Query parameters appended to the URL.
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// A JSON body (sets Content-Type: application/json).
    pub json: Option<serde_json::Value>,
    /// A text body.
    pub body: Option<String>,
}

fn default_method() -> String {
    "GET".into()
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

/// One assertion on a value.
#[derive(Debug, Clone, Default, JsonSchema)]
pub struct Assertion {
    pub equals: Option<serde_json::Value>,
    pub not_equals: Option<serde_json::Value>,
    pub exists: Option<bool>,
    pub matches: Option<String>,
    pub contains: Option<String>,
    pub one_of: Option<Vec<serde_json::Value>>,
    pub lt: Option<f64>,
    pub lte: Option<f64>,
    pub gt: Option<f64>,
    pub gte: Option<f64>,
}

const OPERATORS: &[&str] = &[
    "equals",
    "not_equals",
    "exists",
    "matches",
    "contains",
    "one_of",
    "lt",
    "lte",
    "gt",
    "gte",
];

impl<'de> Deserialize<'de> for Assertion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Assertion, D::Error> {
        use serde::de::Error;
        let v = serde_json::Value::deserialize(d)?;
        let serde_json::Value::Object(m) = v else {
            return Ok(Assertion {
                equals: Some(v),
                ..Default::default()
            });
        };
        let mut a = Assertion::default();
        let num = |k: &str, v: &serde_json::Value| {
            v.as_f64()
                .ok_or_else(|| D::Error::custom(format!("`{k}` expects a number")))
        };
        for (k, v) in m {
            match k.as_str() {
                "equals" => a.equals = Some(v),
                "not_equals" => a.not_equals = Some(v),
                "exists" => {
                    a.exists = Some(
                        v.as_bool()
                            .ok_or_else(|| D::Error::custom("`exists` expects true or false"))?,
                    )
                }
                "matches" => {
                    let s = v.as_str().ok_or_else(|| {
                        D::Error::custom("`matches` expects a regular expression")
                    })?;
                    regex::Regex::new(s).map_err(|e| {
                        D::Error::custom(format!("`matches`: invalid regular expression: {e}"))
                    })?;
                    a.matches = Some(s.to_string())
                }
                "contains" => {
                    a.contains = Some(
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string()),
                    )
                }
                "one_of" => {
                    a.one_of = Some(
                        v.as_array()
                            .cloned()
                            .ok_or_else(|| D::Error::custom("`one_of` expects a list"))?,
                    )
                }
                "lt" => a.lt = Some(num(&k, &v)?),
                "lte" => a.lte = Some(num(&k, &v)?),
                "gt" => a.gt = Some(num(&k, &v)?),
                "gte" => a.gte = Some(num(&k, &v)?),
                other => {
                    return Err(D::Error::custom(format!(
                        "unknown operator `{other}`, expected one of {}",
                        OPERATORS
                            .iter()
                            .map(|o| format!("`{o}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
            }
        }
        Ok(a)
    }
}

fn loose_eq(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value as J;
    match (a, b) {
        (J::Number(x), J::Number(y)) => x.as_f64() == y.as_f64(),
        (J::String(s), other) | (other, J::String(s)) if !matches!(other, J::String(_)) => {
            *s == dotpath::scalar_text(other)
        }
        _ => a == b,
    }
}

impl Assertion {
    /// Checks a value (None: absent). Returns what was expected when it fails.
    pub fn check(&self, v: Option<&serde_json::Value>) -> Result<(), String> {
        if let Some(want) = self.exists
            && want != v.is_some()
        {
            return Err(if want {
                "to exist".into()
            } else {
                "to be absent".into()
            });
        }
        let needs_value = self.equals.is_some()
            || self.not_equals.is_some()
            || self.matches.is_some()
            || self.contains.is_some()
            || self.one_of.is_some()
            || self.lt.is_some()
            || self.lte.is_some()
            || self.gt.is_some()
            || self.gte.is_some();
        let Some(v) = v else {
            return if needs_value {
                Err(self.describe())
            } else {
                Ok(())
            };
        };
        let text = dotpath::scalar_text(v);
        if let Some(e) = &self.equals
            && !loose_eq(v, e)
        {
            return Err(format!("equal to {e}"));
        }
        if let Some(e) = &self.not_equals
            && loose_eq(v, e)
        {
            return Err(format!("not equal to {e}"));
        }
        if let Some(re) = &self.matches
            && !regex::Regex::new(re).is_ok_and(|r| r.is_match(&text))
        {
            return Err(format!("matching /{re}/"));
        }
        if let Some(c) = &self.contains {
            let ok = match v {
                serde_json::Value::Array(items) => {
                    items.iter().any(|i| dotpath::scalar_text(i) == *c)
                }
                _ => text.contains(c.as_str()),
            };
            if !ok {
                return Err(format!("containing {c:?}"));
            }
        }
        if let Some(list) = &self.one_of
            && !list.iter().any(|x| loose_eq(v, x))
        {
            return Err(format!("one of {}", serde_json::Value::Array(list.clone())));
        }
        let n = v.as_f64().or_else(|| text.parse::<f64>().ok());
        for (bound, op, ok) in [
            (self.lt, "<", n.zip(self.lt).map(|(n, b)| n < b)),
            (self.lte, "<=", n.zip(self.lte).map(|(n, b)| n <= b)),
            (self.gt, ">", n.zip(self.gt).map(|(n, b)| n > b)),
            (self.gte, ">=", n.zip(self.gte).map(|(n, b)| n >= b)),
        ] {
            if let Some(b) = bound
                && ok != Some(true)
            {
                return Err(format!("{op} {b}"));
            }
        }
        Ok(())
    }

    fn describe(&self) -> String {
        self.check(Some(&serde_json::Value::Null))
            .err()
            .unwrap_or_else(|| "a value".into())
    }
}

/// Classifies a reqwest error (from its typed sources: see
/// [`crate::diagnose::net::classify_http`]).
pub fn classify(e: &reqwest::Error) -> (NetError, String) {
    crate::diagnose::net::classify_http(e)
}

/// A request ready to send (any number of times), with the equivalent curl
/// line (secret headers shown as `***`).
#[derive(Clone)]
pub struct Prepared {
    pub method: reqwest::Method,
    pub url: reqwest::Url,
    pub shown_url: String,
    pub curl: String,
    headers: Vec<(String, String)>,
    json: Option<serde_json::Value>,
    body: Option<String>,
}

impl Request {
    /// Validates the method and URL and builds the curl line.
    pub fn prepare(&self) -> Result<Prepared, String> {
        let method = reqwest::Method::from_bytes(self.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| format!("`{}` is not an HTTP method", self.method))?;
        let mut url = reqwest::Url::parse(&self.url)
            .map_err(|e| format!("invalid URL {:?}: {e}", self.url))?;
        if !self.query.is_empty() {
            url.query_pairs_mut().extend_pairs(self.query.iter());
        }
        let shown_url = url.to_string();
        let mut curl = format!("curl -sS -i -X {} {}", method, shell_quote(&shown_url));
        for (k, v) in &self.headers {
            let shown = if is_secret_header(k) {
                "***".to_string()
            } else {
                v.clone()
            };
            curl.push_str(&format!(" -H {}", shell_quote(&format!("{k}: {shown}"))));
        }
        if let Some(j) = &self.json {
            curl.push_str(&format!(
                " -H 'Content-Type: application/json' -d {}",
                shell_quote(&j.to_string())
            ));
        } else if let Some(b) = &self.body {
            curl.push_str(&format!(" -d {}", shell_quote(b)));
        }
        Ok(Prepared {
            method,
            url,
            shown_url,
            curl,
            headers: self.headers.clone().into_iter().collect(),
            json: self.json.clone(),
            body: self.body.clone(),
        })
    }
}

impl Prepared {
    /// A request builder for one send.
    pub fn builder(&self, client: &reqwest::Client, timeout: Duration) -> reqwest::RequestBuilder {
        let mut req = client
            .request(self.method.clone(), self.url.clone())
            .timeout(timeout);
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        if let Some(j) = &self.json {
            req = req.json(j);
        } else if let Some(b) = &self.body {
            req = req.body(b.clone());
        }
        req
    }

    /// The JSON body, for senders that vary it per request.
    pub fn json_mut(&mut self) -> Option<&mut serde_json::Value> {
        self.json.as_mut()
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn is_secret_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "authorization"
        || n == "cookie"
        || n == "proxy-authorization"
        || n.contains("token")
        || n.contains("api-key")
        || n.contains("apikey")
        || n.contains("secret")
}

impl Check for Http {
    const KIND: &'static str = "http";
    const HELP: &'static str =
        "one HTTP request: status, JSON path, header and latency assertions, captured values";
    type Params = Params;

    async fn run(p: Params, ctx: Ctx) -> Observation {
        let prepared = match p.request.prepare() {
            Ok(x) => x,
            Err(e) => return Observation::error(e),
        };
        let req = prepared.builder(ctx.http.get(), ctx.timeout);
        let Prepared {
            method,
            shown_url,
            curl,
            ..
        } = prepared;
        let started = Instant::now();
        let resp = req.send().await;
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                let (kind, detail) = classify(&e);
                let took = started.elapsed();
                return Observation::fail(
                    format!(
                        "{method} {shown_url}: {} after {}",
                        kind.describe(),
                        crate::support::duration::fmt(took)
                    ),
                    Fault::HttpConnect {
                        url: shown_url.clone(),
                        error: kind,
                        detail: excerpt(&detail, 200),
                    },
                )
                .evidence(excerpt(&detail, 300))
                .command(curl);
            }
        };
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body =
            match tokio::time::timeout(ctx.timeout.saturating_sub(started.elapsed()), resp.bytes())
                .await
            {
                Ok(Ok(b)) => b,
                Ok(Err(e)) => {
                    let (kind, detail) = classify(&e);
                    return Observation::fail(
                        format!(
                            "{method} {shown_url}: reading the body failed ({})",
                            kind.describe()
                        ),
                        Fault::HttpConnect {
                            url: shown_url.clone(),
                            error: kind,
                            detail,
                        },
                    )
                    .command(curl);
                }
                Err(_) => {
                    return Observation::fail(
                        format!("{method} {shown_url}: the body did not arrive in time"),
                        Fault::HttpConnect {
                            url: shown_url.clone(),
                            error: NetError::Timeout,
                            detail: "body read timed out".into(),
                        },
                    )
                    .command(curl);
                }
            };
        let took = started.elapsed();
        let took_ms = took.as_millis() as u64;
        let text = String::from_utf8_lossy(&body).into_owned();
        let json: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
        let mut o = Observation::pass(format!(
            "{method} {shown_url} → {status} in {}",
            crate::support::duration::fmt(took)
        ))
        .evidence(format!(
            "{method} {shown_url} → {status} in {}",
            crate::support::duration::fmt(took)
        ))
        .evidence(format!("body: {}", excerpt(&text, 300)))
        .command(curl)
        .capture("status", status)
        .capture("latency_ms", took_ms);
        if let Some(j) = &json {
            o = o.capture("json", j.clone());
        }
        let fail = |o: Observation, summary: String, fault: Fault| {
            let mut o = o;
            o.status = Status::Fail;
            o.summary = summary;
            o.fault = Some(fault);
            o
        };

        let expected_status = p
            .expect
            .status
            .as_ref()
            .map(|s| s.items())
            .unwrap_or_else(|| vec![StatusItem::Text("2xx".into())]);
        if !expected_status.iter().any(|s| s.matches(status)) {
            let exp = expected_status
                .iter()
                .map(StatusItem::text)
                .collect::<Vec<_>>()
                .join(" or ");
            return fail(
                o,
                format!("{method} {shown_url} answered {status}, expected {exp}"),
                Fault::HttpStatus {
                    url: shown_url,
                    expected: exp,
                    status,
                    body: excerpt(&text, 400),
                },
            );
        }
        if let Some(max) = p.expect.max_latency {
            let limit_ms = max.0.as_millis() as u64;
            if took_ms > limit_ms {
                return fail(
                    o,
                    format!("{shown_url} took {took_ms} ms (limit {limit_ms} ms)"),
                    Fault::HttpLatency {
                        url: shown_url,
                        limit_ms,
                        took_ms,
                    },
                );
            }
        }
        if let Some(c) = &p.expect.body_contains
            && !text.contains(c.as_str())
        {
            return fail(
                o,
                format!("the body does not contain {c:?}"),
                Fault::HttpAssertion {
                    url: shown_url,
                    path: "body".into(),
                    expected: format!("containing {c:?}"),
                    actual: excerpt(&text, 120),
                },
            );
        }
        if !p.expect.json.is_empty() && json.is_none() {
            return fail(
                o,
                format!("{shown_url} did not answer JSON"),
                Fault::HttpBody {
                    url: shown_url,
                    message: format!("the body is not JSON: {}", excerpt(&text, 120)),
                },
            );
        }
        for (path, a) in &p.expect.json {
            let j = json.as_ref().unwrap_or(&serde_json::Value::Null);
            let found = path
                .split('|')
                .map(str::trim)
                .find_map(|alt| dotpath::lookup(j, alt));
            match a.check(found) {
                Ok(()) => {
                    o = o.evidence(format!(
                        "✓ {path} = {}",
                        found
                            .map(|v| excerpt(&v.to_string(), 80))
                            .unwrap_or_else(|| "(absent)".into())
                    ));
                }
                Err(expected) => {
                    let actual = found
                        .map(|v| excerpt(&v.to_string(), 120))
                        .unwrap_or_else(|| "absent".into());
                    return fail(
                        o,
                        format!("`{path}` is {actual}, expected {expected}"),
                        Fault::HttpAssertion {
                            url: shown_url,
                            path: path.clone(),
                            expected,
                            actual,
                        },
                    );
                }
            }
        }
        for (name, a) in &p.expect.headers {
            let v = headers
                .get(name.as_str())
                .and_then(|v| v.to_str().ok())
                .map(|s| serde_json::Value::String(s.to_string()));
            if let Err(expected) = a.check(v.as_ref()) {
                let actual = v
                    .map(|v| dotpath::scalar_text(&v))
                    .unwrap_or_else(|| "absent".into());
                return fail(
                    o,
                    format!("header `{name}` is {actual}, expected {expected}"),
                    Fault::HttpAssertion {
                        url: shown_url,
                        path: format!("header {name}"),
                        expected,
                        actual,
                    },
                );
            }
        }
        for (name, from) in &p.capture {
            let value = if from == "status" {
                Some(serde_json::Value::from(status))
            } else if from == "body" {
                Some(serde_json::Value::String(text.clone()))
            } else if let Some(h) = from
                .strip_prefix("header.")
                .or_else(|| from.strip_prefix("headers."))
            {
                headers
                    .get(h)
                    .and_then(|v| v.to_str().ok())
                    .map(|s| serde_json::Value::String(s.to_string()))
            } else {
                let path = from.strip_prefix("json.").unwrap_or(from);
                json.as_ref()
                    .and_then(|j| {
                        path.split('|')
                            .map(str::trim)
                            .find_map(|alt| dotpath::lookup(j, alt))
                    })
                    .cloned()
            };
            match value {
                Some(v) => {
                    o = o
                        .evidence(format!(
                            "captured {name} = {}",
                            excerpt(&dotpath::scalar_text(&v), 80)
                        ))
                        .capture(name, v);
                }
                None => {
                    return fail(
                        o,
                        format!("nothing to capture as `{name}` at `{from}`"),
                        Fault::HttpAssertion {
                            url: shown_url,
                            path: from.clone(),
                            expected: "to exist (for a capture)".into(),
                            actual: "absent".into(),
                        },
                    );
                }
            }
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn a(v: serde_json::Value) -> Assertion {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn assertions() {
        assert!(a(json!("ok")).check(Some(&json!("ok"))).is_ok());
        assert!(a(json!("ok")).check(Some(&json!("mock"))).is_err());
        assert!(a(json!(200)).check(Some(&json!("200"))).is_ok());
        assert!(a(json!({"exists": true})).check(None).is_err());
        assert!(a(json!({"exists": false})).check(None).is_ok());
        assert!(
            a(json!({"matches": "^c[a-z0-9]+$"}))
                .check(Some(&json!("cmh0jvvdo")))
                .is_ok()
        );
        assert!(a(json!({"lt": 5})).check(Some(&json!(4.5))).is_ok());
        assert!(a(json!({"gte": 5})).check(Some(&json!(4))).is_err());
        assert!(
            a(json!({"one_of": ["healthy", "ok"]}))
                .check(Some(&json!("ok")))
                .is_ok()
        );
        assert!(
            a(json!({"contains": "x"}))
                .check(Some(&json!(["x", "y"])))
                .is_ok()
        );
        let e = serde_json::from_value::<Assertion>(json!({"equal": 1}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown operator `equal`"), "{e}");
    }

    #[test]
    fn status_classes() {
        assert!(StatusItem::Text("2xx".into()).matches(201));
        assert!(!StatusItem::Text("2xx".into()).matches(301));
        assert!(StatusItem::Code(429).matches(429));
        assert!(StatusItem::Text("404".into()).matches(404));
    }
}
