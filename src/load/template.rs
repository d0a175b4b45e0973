//! What the generator sends: the mix's request kinds compiled into
//! templates (their strings in the [`placeholder`](super::placeholder)
//! language) and rendered straight to the bytes the wire client writes;
//! captures keep values from answers for later requests of the same
//! virtual user.

use super::outcome::Answer;
use super::placeholder::{Escape, Names, Piece, RenderCx, Tmpl, pct};
use crate::probe::http::Request;
use bytes::Bytes;
use serde::Deserialize;
use std::collections::BTreeMap;

/// One request kind of the plan's mix, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixItem {
    pub name: String,
    #[serde(default = "one")]
    pub weight: u32,
    /// The same request syntax as the `http` check (method, url, headers,
    /// query, json, body). The url starts with `${base_url}` or `/`.
    pub request: Request,
    /// Values kept from this request's successful answers, per virtual
    /// user, for later requests as `${capture.NAME}` (the `http` check's
    /// syntax: `json.PATH`, `header.NAME`, `status`, `body`).
    #[serde(default)]
    pub capture: BTreeMap<String, String>,
}

fn one() -> u32 {
    1
}

/// What the mix's placeholders can name: the plan's lists and every
/// capture of the mix.
pub fn names(vars: &BTreeMap<String, Vec<String>>, mix: &[MixItem]) -> Names {
    Names::new(vars, mix.iter().flat_map(|m| m.capture.keys()))
}

/// Where a capture takes its value from (the `http` check's syntax).
#[derive(Debug, Clone)]
enum CaptureFrom {
    Status,
    Body,
    Header(hyper::header::HeaderName),
    /// JSON path alternatives separated by `|`.
    Json(Vec<String>),
}

/// A rendered request: its bytes on the wire.
pub type HttpRequest = Bytes;

/// Why a request could not be rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenderError {
    /// It uses a captured value this virtual user does not have yet.
    NotCaptured,
    /// The rendered request is not valid HTTP (a bad value in a list).
    Invalid,
}

/// Why a mix item does not compile: the field (`request.url`,
/// `capture.NAME`, …) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct TemplateError {
    pub field: String,
    pub message: String,
}

impl TemplateError {
    fn at(field: impl Into<String>, message: impl Into<String>) -> TemplateError {
        TemplateError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// One request kind of the mix, ready to render against the target.
#[derive(Debug, Clone)]
pub struct RequestTemplate {
    pub name: String,
    method: hyper::Method,
    /// Path and query.
    target: Tmpl,
    headers: Vec<(hyper::header::HeaderName, Tmpl)>,
    body: Option<Tmpl>,
    content_type: Option<&'static str>,
    lists: Vec<(String, Vec<String>)>,
    captures: Vec<(usize, CaptureFrom)>,
    /// The target and body when nothing varies ...
    fixed: Option<(String, Bytes)>,
    /// ... and then the whole request, serialized on first use.
    wire: std::sync::OnceLock<Bytes>,
}

impl RequestTemplate {
    /// Compiles a mix item; errors name the field (`request.url`, …).
    pub fn compile(m: &MixItem, names: &Names) -> Result<RequestTemplate, TemplateError> {
        let lists = names.lists.clone();
        let mut captures = Vec::new();
        for (name, from) in &m.capture {
            let at = format!("capture.{name}");
            let idx = names
                .captures
                .iter()
                .position(|n| n == name)
                .ok_or_else(|| TemplateError::at(at.clone(), "unknown capture"))?;
            let f = from.trim();
            let src = if f == "status" {
                CaptureFrom::Status
            } else if f == "body" {
                CaptureFrom::Body
            } else if let Some(h) = f
                .strip_prefix("header.")
                .or_else(|| f.strip_prefix("headers."))
            {
                CaptureFrom::Header(hyper::header::HeaderName::from_bytes(h.as_bytes()).map_err(
                    |_| TemplateError::at(at.clone(), format!("`{h}` is not a header name")),
                )?)
            } else if let Some(p) = f.strip_prefix("json.") {
                CaptureFrom::Json(p.split('|').map(|a| a.trim().to_string()).collect())
            } else {
                return Err(TemplateError::at(
                    at,
                    format!("`{f}`: capture from json.PATH, header.NAME, status or body"),
                ));
            };
            captures.push((idx, src));
        }
        let r = &m.request;
        let method = hyper::Method::from_bytes(r.method.trim().to_ascii_uppercase().as_bytes())
            .map_err(|_| {
                TemplateError::at(
                    "request.method",
                    format!("`{}` is not an HTTP method", r.method),
                )
            })?;
        let url = r.url.trim();
        let path = match url.strip_prefix("${base_url}") {
            Some(p) => p,
            None if url.starts_with('/') => url,
            None => {
                return Err(TemplateError::at(
                    "request.url",
                    format!(
                        "`{url}` must start with ${{base_url}} or `/`: a load test sends to one target, the base URL"
                    ),
                ));
            }
        };
        let path = if path.is_empty() { "/" } else { path };
        if !path.starts_with('/') {
            return Err(TemplateError::at(
                "request.url",
                format!("`{url}`: the path after ${{base_url}} must start with `/`"),
            ));
        }
        let mut pieces = Vec::new();
        Tmpl::parse(path, Escape::Url, names, &mut pieces)
            .map_err(|e| TemplateError::at("request.url", e))?;
        let mut sep = if path.contains('?') { '&' } else { '?' };
        for (k, v) in &r.query {
            let key = pct(k);
            pieces.push((Piece::Lit(format!("{sep}{key}=")), Escape::None));
            sep = '&';
            let mut vp = Vec::new();
            Tmpl::parse(v, Escape::Url, names, &mut vp)
                .map_err(|e| TemplateError::at(format!("request.query.{k}"), e))?;
            for (p, e) in vp {
                match p {
                    Piece::Lit(l) => pieces.push((Piece::Lit(pct(&l)), Escape::None)),
                    other => pieces.push((other, e)),
                }
            }
        }
        let target = Tmpl { pieces };
        let mut headers = Vec::new();
        for (k, v) in &r.headers {
            let name = hyper::header::HeaderName::from_bytes(k.as_bytes()).map_err(|_| {
                TemplateError::at(
                    format!("request.headers.{k}"),
                    format!("`{k}` is not a header name"),
                )
            })?;
            if v.contains(['\r', '\n']) {
                return Err(TemplateError::at(
                    format!("request.headers.{k}"),
                    "a header value cannot hold a line break",
                ));
            }
            let mut hp = Vec::new();
            Tmpl::parse(v, Escape::None, names, &mut hp)
                .map_err(|e| TemplateError::at(format!("request.headers.{k}"), e))?;
            headers.push((name, Tmpl { pieces: hp }));
        }
        let (body, content_type) = match (&r.json, &r.body) {
            (Some(_), Some(_)) => {
                return Err(TemplateError::at(
                    "request",
                    "give `json` or `body`, not both",
                ));
            }
            (Some(j), None) => {
                let text = serde_json::to_string(j)
                    .map_err(|e| TemplateError::at("request.json", e.to_string()))?;
                let mut bp = Vec::new();
                Tmpl::parse(&text, Escape::Json, names, &mut bp)
                    .map_err(|e| TemplateError::at("request.json", e))?;
                (Some(Tmpl { pieces: bp }), Some("application/json"))
            }
            (None, Some(b)) => {
                let mut bp = Vec::new();
                Tmpl::parse(b, Escape::None, names, &mut bp)
                    .map_err(|e| TemplateError::at("request.body", e))?;
                (Some(Tmpl { pieces: bp }), None)
            }
            (None, None) => (None, None),
        };
        let fixed = match (target.constant(), body.as_ref().map(Tmpl::constant)) {
            (Some(t), None) => Some((t, Bytes::new())),
            (Some(t), Some(Some(b))) => Some((t, Bytes::from(b))),
            _ => None,
        };
        let fixed = if headers.iter().all(|(_, t)| t.constant().is_some()) {
            fixed
        } else {
            None
        };
        Ok(RequestTemplate {
            name: m.name.clone(),
            method,
            target,
            headers,
            body,
            content_type,
            lists,
            captures,
            fixed,
            wire: std::sync::OnceLock::new(),
        })
    }

    /// Renders one request as the bytes sent on the wire (request line,
    /// headers, body) for `host` (the Host header). A request that does not
    /// vary is serialized once and shared.
    pub fn render(
        &self,
        host: &hyper::header::HeaderValue,
        cx: &mut RenderCx,
    ) -> Result<Bytes, RenderError> {
        if let Some((t, b)) = &self.fixed {
            if let Some(w) = self.wire.get() {
                return Ok(w.clone());
            }
            let w = self.serialize(host, t, &self.render_headers(cx), b)?;
            return Ok(self.wire.get_or_init(|| w).clone());
        }
        let mut t = String::with_capacity(96);
        let mut complete = self.target.render_checked(cx, &self.lists, &mut t);
        let b = match &self.body {
            Some(bt) => {
                let mut s = String::with_capacity(128);
                complete &= bt.render_checked(cx, &self.lists, &mut s);
                s
            }
            None => String::new(),
        };
        if !complete {
            return Err(RenderError::NotCaptured);
        }
        self.serialize(host, &t, &self.render_headers(cx), b.as_bytes())
    }

    fn render_headers(&self, cx: &mut RenderCx) -> Vec<(&hyper::header::HeaderName, String)> {
        self.headers
            .iter()
            .map(|(k, tm)| {
                let mut v = String::new();
                tm.render(cx, &self.lists, &mut v);
                (k, v)
            })
            .collect()
    }

    /// Whether the answer has no body whatever its headers say (HEAD).
    pub fn is_head(&self) -> bool {
        self.method == hyper::Method::HEAD
    }

    /// HTTP/1.1 framing of one request; a target or header value that
    /// cannot travel on the wire (a space or a line break from a list value)
    /// is `Invalid`.
    fn serialize(
        &self,
        host: &hyper::header::HeaderValue,
        target: &str,
        headers: &[(&hyper::header::HeaderName, String)],
        body: &[u8],
    ) -> Result<Bytes, RenderError> {
        if target.is_empty() || target.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(RenderError::Invalid);
        }
        let mut w = Vec::with_capacity(160 + target.len() + body.len());
        w.extend_from_slice(self.method.as_str().as_bytes());
        w.push(b' ');
        w.extend_from_slice(target.as_bytes());
        w.extend_from_slice(b" HTTP/1.1\r\nhost: ");
        w.extend_from_slice(host.as_bytes());
        w.extend_from_slice(b"\r\n");
        let mut agent = false;
        for (k, v) in headers {
            if v.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
                return Err(RenderError::Invalid);
            }
            agent |= **k == hyper::header::USER_AGENT;
            w.extend_from_slice(k.as_str().as_bytes());
            w.extend_from_slice(b": ");
            w.extend_from_slice(v.as_bytes());
            w.extend_from_slice(b"\r\n");
        }
        if !agent {
            w.extend_from_slice(
                concat!("user-agent: chatops/", env!("CARGO_PKG_VERSION"), "\r\n").as_bytes(),
            );
        }
        if let Some(ct) = self.content_type
            && !headers
                .iter()
                .any(|(k, _)| **k == hyper::header::CONTENT_TYPE)
        {
            w.extend_from_slice(b"content-type: ");
            w.extend_from_slice(ct.as_bytes());
            w.extend_from_slice(b"\r\n");
        }
        let sends_body = !body.is_empty()
            || matches!(
                self.method,
                hyper::Method::POST | hyper::Method::PUT | hyper::Method::PATCH
            );
        if sends_body {
            w.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
        }
        w.extend_from_slice(b"\r\n");
        w.extend_from_slice(body);
        Ok(Bytes::from(w))
    }

    /// Whether answers to this kind feed captures (their headers and body are kept).
    pub fn captures(&self) -> bool {
        !self.captures.is_empty()
    }

    /// Stores this kind's captures from a successful answer.
    pub fn capture(&self, status: u16, answer: &Answer, cx: &mut RenderCx) {
        let mut json: Option<Option<serde_json::Value>> = None;
        for (idx, from) in &self.captures {
            let v = match from {
                CaptureFrom::Status => Some(status.to_string()),
                CaptureFrom::Body => Some(String::from_utf8_lossy(&answer.body).into_owned()),
                CaptureFrom::Header(h) => answer
                    .headers
                    .get(h)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string),
                CaptureFrom::Json(alts) => {
                    let j = json.get_or_insert_with(|| serde_json::from_slice(&answer.body).ok());
                    j.as_ref().and_then(|j| {
                        alts.iter()
                            .find_map(|a| crate::support::dotpath::lookup(j, a))
                            .map(crate::support::dotpath::scalar_text)
                    })
                }
            };
            if let (Some(v), Some(slot)) = (v, cx.captures.get_mut(*idx)) {
                *slot = Some(v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(yaml: &str) -> MixItem {
        serde_saphyr::from_str(yaml).expect("mix item")
    }

    fn vars() -> BTreeMap<String, Vec<String>> {
        let mut v = BTreeMap::new();
        v.insert("users".into(), vec!["u\"1".into()]);
        v.insert("rooms".into(), vec!["a b".into()]);
        v
    }

    #[test]
    fn renders_templates_with_escaping() {
        let m = item(
            "name: send\nrequest:\n  method: post\n  url: \"${base_url}/c/${pick.rooms}/m\"\n  query: {user: \"${pick.users}\", n: \"a&b\"}\n  json: {userId: \"${pick.users}\", seq: \"${seq}\"}\n",
        );
        let t = RequestTemplate::compile(&m, &names(&vars(), &[])).expect("compiles");
        let host = hyper::header::HeaderValue::from_static("127.0.0.1:1");
        let mut cx = RenderCx::new(3, 0);
        cx.seq = 7;
        let wire = t.render(&host, &mut cx).expect("request");
        let (method, target, headers, body) = parse_request(&wire);
        assert_eq!(method, "POST");
        assert_eq!(target, "/c/a%20b/m?n=a%26b&user=u%221");
        assert!(headers.contains(&("content-type".into(), "application/json".into())));
        assert!(headers.contains(&("host".into(), "127.0.0.1:1".into())));
        let len = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .expect("length");
        assert_eq!(len.1, body.len().to_string());
        let v: serde_json::Value = serde_json::from_slice(&body).expect("JSON body");
        assert_eq!(v["userId"], "u\"1");
        assert_eq!(v["seq"], "7");
    }

    /// Method, target, headers (lower-cased names) and body of a rendered request.
    fn parse_request(wire: &[u8]) -> (String, String, Vec<(String, String)>, Vec<u8>) {
        let mut hs = [httparse::EMPTY_HEADER; 32];
        let mut r = httparse::Request::new(&mut hs);
        let n = match r.parse(wire).expect("valid HTTP/1.1") {
            httparse::Status::Complete(n) => n,
            httparse::Status::Partial => panic!("incomplete request"),
        };
        let headers = r
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_ascii_lowercase(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect();
        (
            r.method.unwrap_or_default().to_string(),
            r.path.unwrap_or_default().to_string(),
            headers,
            wire[n..].to_vec(),
        )
    }

    #[test]
    fn fixed_requests_are_serialized_once_and_bad_values_refused() {
        let m =
            item("name: g\nrequest: {url: \"${base_url}/api/v1/health\", headers: {x-run: r1}}\n");
        let t = RequestTemplate::compile(&m, &names(&vars(), &[])).expect("compiles");
        let host = hyper::header::HeaderValue::from_static("h:1");
        let mut cx = RenderCx::new(0, 0);
        let a = t.render(&host, &mut cx).expect("first");
        let b = t.render(&host, &mut cx).expect("second");
        assert_eq!(a.as_ptr(), b.as_ptr(), "shared, not rebuilt");
        let (method, target, headers, body) = parse_request(&a);
        assert_eq!(
            (method.as_str(), target.as_str()),
            ("GET", "/api/v1/health")
        );
        assert!(headers.contains(&("x-run".into(), "r1".into())));
        assert!(!headers.iter().any(|(k, _)| k == "content-length"));
        assert!(body.is_empty());
        // A list value with a line break cannot go into a header.
        let mut v = vars();
        v.insert("evil".into(), vec!["a\r\nx: y".into()]);
        let m = item("name: g\nrequest: {url: \"/\", headers: {x-user: \"${pick.evil}\"}}\n");
        let t = RequestTemplate::compile(&m, &names(&v, &[])).expect("compiles");
        assert_eq!(t.render(&host, &mut cx).err(), Some(RenderError::Invalid));
    }

    #[test]
    fn captures_feed_later_requests_of_the_same_user() {
        let send = item(
            "name: send\nrequest: {method: POST, url: \"/m\"}\ncapture: {mid: \"json.message.id|json.id\", etag: header.etag}\n",
        );
        let read = item("name: read\nrequest: {url: \"/m/${capture.mid}?e=${capture.etag}\"}\n");
        let names = names(&vars(), &[send.clone(), read.clone()]);
        assert_eq!(names.captures, vec!["etag".to_string(), "mid".to_string()]);
        let send = RequestTemplate::compile(&send, &names).expect("send");
        let read = RequestTemplate::compile(&read, &names).expect("read");
        assert!(send.captures() && !read.captures());
        let host = hyper::header::HeaderValue::from_static("h");
        let mut cx = RenderCx::new(0, names.captures.len());
        assert_eq!(
            read.render(&host, &mut cx).err(),
            Some(RenderError::NotCaptured)
        );
        let mut headers = hyper::HeaderMap::new();
        headers.insert("etag", hyper::header::HeaderValue::from_static("v 1"));
        let answer = Answer {
            headers,
            body: Bytes::from_static(b"{\"message\":{\"id\":\"abc\"}}"),
        };
        send.capture(201, &answer, &mut cx);
        let r = read.render(&host, &mut cx).expect("rendered");
        assert_eq!(parse_request(&r).1, "/m/abc?e=v%201");
        let bad = item("name: x\nrequest: {url: \"/\"}\ncapture: {a: \"cookie\"}\n");
        let names = super::names(&vars(), std::slice::from_ref(&bad));
        assert!(RequestTemplate::compile(&bad, &names).is_err());
        let dangling = item("name: x\nrequest: {url: \"/${capture.nope}\"}\n");
        assert!(RequestTemplate::compile(&dangling, &names).is_err());
    }

    #[test]
    fn rejects_other_targets_and_unknown_placeholders() {
        for (y, field) in [
            ("name: x\nrequest: {url: \"http://other/x\"}", "request.url"),
            (
                "name: x\nrequest: {url: \"${base_url}/${who}\"}",
                "request.url",
            ),
            (
                "name: x\nrequest: {url: \"/x\", json: {a: \"${pick.none}\"}}",
                "request.json",
            ),
            (
                "name: x\nrequest: {url: \"/x\", method: \"BAD METHOD\"}",
                "request.method",
            ),
        ] {
            let e = RequestTemplate::compile(&item(y), &names(&vars(), &[])).expect_err(y);
            assert_eq!(e.field, field, "{y}: {}", e.message);
        }
    }
}
