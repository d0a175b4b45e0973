//! HTTP probing shared by the checks and the load plan: the request syntax
//! (method, url, headers, query, json or body), a prepared request with the
//! `curl` line a human reruns, and how a request failed, classified.

use crate::support::shell;
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// One HTTP request, as playbooks and load plans write it.
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

/// Why a request cannot be prepared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrepareError {
    #[error("`{0}` is not an HTTP method")]
    Method(String),
    #[error("invalid URL {url:?}: {source}")]
    Url {
        url: String,
        source: url::ParseError,
    },
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
    pub fn prepare(&self) -> Result<Prepared, PrepareError> {
        let method = reqwest::Method::from_bytes(self.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| PrepareError::Method(self.method.clone()))?;
        let mut url = reqwest::Url::parse(&self.url).map_err(|source| PrepareError::Url {
            url: self.url.clone(),
            source,
        })?;
        if !self.query.is_empty() {
            url.query_pairs_mut().extend_pairs(self.query.iter());
        }
        let shown_url = url.to_string();
        let curl = curl_line(
            &method,
            &shown_url,
            &self.headers,
            self.json.as_ref(),
            self.body.as_deref(),
        );
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

/// The curl command that sends the same request.
fn curl_line(
    method: &reqwest::Method,
    url: &str,
    headers: &BTreeMap<String, String>,
    json: Option<&serde_json::Value>,
    body: Option<&str>,
) -> String {
    let mut curl = format!("curl -sS -i -X {} {}", method, shell::quote(url));
    for (k, v) in headers {
        let shown = if crate::support::redact::is_secret_name(k) {
            "***"
        } else {
            v
        };
        curl.push_str(&format!(" -H {}", shell::quote(&format!("{k}: {shown}"))));
    }
    if let Some(j) = json {
        curl.push_str(&format!(
            " -H 'Content-Type: application/json' -d {}",
            shell::quote(&j.to_string())
        ));
    } else if let Some(b) = body {
        curl.push_str(&format!(" -d {}", shell::quote(b)));
    }
    curl
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

/// How a network attempt (an HTTP request, a TCP or PostgreSQL connection)
/// failed before an answer came back. Faults carry it as data, so its
/// serialized names are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    Refused,
    Timeout,
    Dns,
    Tls,
    Reset,
    Unreachable,
    /// The answer is not HTTP: a status line, header or chunk size that does
    /// not parse, a redirect loop.
    Protocol,
    /// The answer's head or body is larger than the bound chatops reads.
    TooLarge,
    Other,
}

impl Failure {
    pub fn describe(self) -> &'static str {
        match self {
            Failure::Refused => "connection refused",
            Failure::Timeout => "timed out",
            Failure::Dns => "host name did not resolve",
            Failure::Tls => "TLS handshake failed",
            Failure::Reset => "connection reset",
            Failure::Unreachable => "network unreachable",
            Failure::Protocol => "the answer is not valid HTTP",
            Failure::TooLarge => "the answer is too large",
            Failure::Other => "connection failed",
        }
    }

    /// Classifies an I/O error by its kind (and, for name lookups, its text).
    pub fn from_io(e: &std::io::Error) -> Failure {
        use std::io::ErrorKind as K;
        match e.kind() {
            K::ConnectionRefused => Failure::Refused,
            K::TimedOut | K::WouldBlock => Failure::Timeout,
            K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof => {
                Failure::Reset
            }
            K::HostUnreachable | K::NetworkUnreachable | K::AddrNotAvailable => {
                Failure::Unreachable
            }
            _ => {
                let m = e.to_string().to_ascii_lowercase();
                if m.contains("failed to lookup")
                    || m.contains("name or service not known")
                    || m.contains("no such host")
                    || m.contains("name resolution")
                    || m.contains("nodename nor servname")
                {
                    Failure::Dns
                } else {
                    Failure::Other
                }
            }
        }
    }
}

/// Classifies a reqwest error, with its whole source chain as text. A TLS
/// error is recognised by its type (a `rustls::Error` inside an I/O error)
/// and, failing that, by the words of the chain.
pub fn classify(e: &reqwest::Error) -> (Failure, String) {
    let mut chain = e.to_string();
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    let mut io_kind = None;
    let mut tls = false;
    // hyper says by type when the answer's head did not parse.
    let mut http = e.is_redirect().then_some(Failure::Protocol);
    while let Some(s) = src {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        tls |= s.is::<rustls::Error>();
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            if h.is_parse_too_large() {
                http = Some(Failure::TooLarge);
            } else if h.is_parse() || h.is_parse_status() {
                http = http.or(Some(Failure::Protocol));
            }
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            io_kind = Some(Failure::from_io(io));
            tls |= holds_tls_error(io);
        }
        src = s.source();
    }
    let kind = match (classify_chain(e.is_timeout(), tls, io_kind, &chain), http) {
        (Failure::Other | Failure::Reset, Some(h)) => h,
        (k, _) => k,
    };
    (kind, chain)
}

/// Whether an I/O error carries a rustls error (hyper wraps it in one or
/// two I/O errors, which do not expose it as their `source`).
fn holds_tls_error(io: &std::io::Error) -> bool {
    match io.get_ref() {
        Some(inner) if inner.is::<rustls::Error>() => true,
        Some(inner) => inner
            .downcast_ref::<std::io::Error>()
            .is_some_and(holds_tls_error),
        None => false,
    }
}

/// The classification rules, on what was read off the error.
fn classify_chain(timeout: bool, tls: bool, io_kind: Option<Failure>, chain: &str) -> Failure {
    let lower = chain.to_ascii_lowercase();
    if timeout || lower.contains("timed out") {
        Failure::Timeout
    } else if lower.contains("dns error")
        || lower.contains("failed to lookup")
        || lower.contains("name or service not known")
    {
        Failure::Dns
    } else if tls
        || lower.contains("certificate")
        || lower.contains("tls")
        || lower.contains("handshake")
        || lower.contains("ssl")
        || lower.contains("corrupt message")
        || lower.contains("invalidcontenttype")
        || lower.contains("rustls")
    {
        Failure::Tls
    } else if lower.contains("too large") || lower.contains("too many headers") {
        Failure::TooLarge
    } else if lower.contains("invalid chunk size")
        || lower.contains("invalid http")
        || lower.contains("invalid status")
        || lower.contains("too many redirects")
        || lower.contains("redirect loop")
    {
        Failure::Protocol
    } else if let Some(k) = io_kind {
        k
    } else if lower.contains("connection refused") {
        Failure::Refused
    } else {
        Failure::Other
    }
}

/// How much of an answer's body chatops reads (`max_body`), by default
/// [`DEFAULT_MAX_BODY`]: a number of bytes or `64KB`, `1MB` (powers of 1024).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxBody(pub usize);

/// The default bound on a body: 1 MB.
pub const DEFAULT_MAX_BODY: MaxBody = MaxBody(1 << 20);

impl Default for MaxBody {
    fn default() -> MaxBody {
        DEFAULT_MAX_BODY
    }
}

impl MaxBody {
    /// `1048576`, `512B`, `64KB`, `1MB` (KB and MB are 1024 and 1024²).
    pub fn parse(s: &str) -> Result<MaxBody, String> {
        let t = s.trim().to_ascii_uppercase();
        let (num, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
            Some(i) => t.split_at(i),
            None => (t.as_str(), ""),
        };
        let unit = match unit.trim() {
            "" | "B" => 1,
            "K" | "KB" | "KIB" => 1 << 10,
            "M" | "MB" | "MIB" => 1 << 20,
            "G" | "GB" | "GIB" => 1 << 30,
            _ => {
                return Err(format!(
                    "expected a size such as 65536, 64KB or 1MB, found {s:?}"
                ));
            }
        };
        let n: usize = num
            .parse()
            .map_err(|_| format!("expected a size such as 65536, 64KB or 1MB, found {s:?}"))?;
        match n.checked_mul(unit) {
            Some(b) if b > 0 => Ok(MaxBody(b)),
            _ => Err(format!("{s:?}: a size must be above zero and below 2^64")),
        }
    }

    /// `1 MB`, `64 KB`, `100 B`.
    pub fn human(self) -> String {
        match self.0 {
            b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MB", b >> 20),
            b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KB", b >> 10),
            b => format!("{b} B"),
        }
    }
}

impl<'de> Deserialize<'de> for MaxBody {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<MaxBody, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        let s = match &v {
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::String(s) => s.clone(),
            other => {
                return Err(serde::de::Error::custom(format!(
                    "expected a size such as 65536, 64KB or 1MB, found {other}"
                )));
            }
        };
        MaxBody::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for MaxBody {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "MaxBody".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A size in bytes: 65536, 512B, 64KB, 1MB (default 1MB)",
            "type": ["string", "integer"]
        })
    }
}

/// A body read up to a bound.
#[derive(Debug, Clone, Default)]
pub struct Body {
    pub bytes: Vec<u8>,
    /// The answer had more than the bound: the rest was not read.
    pub cut: bool,
}

/// Reads `resp`'s body, at most `max` bytes: what is beyond is not read
/// (the connection is dropped with the response), so an endless or huge
/// body costs neither memory nor time.
pub async fn read_body(resp: &mut reqwest::Response, max: MaxBody) -> Result<Body, reqwest::Error> {
    let mut body = Body::default();
    while let Some(chunk) = resp.chunk().await? {
        let room = max.0.saturating_sub(body.bytes.len());
        if chunk.len() > room {
            body.bytes.extend_from_slice(&chunk[..room]);
            body.cut = true;
            break;
        }
        body.bytes.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, url: &str) -> Request {
        Request {
            method: method.into(),
            url: url.into(),
            headers: BTreeMap::new(),
            query: BTreeMap::new(),
            json: None,
            body: None,
        }
    }

    #[test]
    fn curl_line_quotes_and_hides_secrets() {
        let mut r = req("post", "http://127.0.0.1:3001/api/v1/chat");
        r.headers
            .insert("Authorization".into(), "Bearer abc".into());
        r.headers.insert("X-Request-Id".into(), "it's".into());
        r.query.insert("limit".into(), "5".into());
        r.json = Some(serde_json::json!({"content": "hi"}));
        let p = r.prepare().unwrap();
        assert_eq!(p.method, reqwest::Method::POST);
        assert_eq!(p.shown_url, "http://127.0.0.1:3001/api/v1/chat?limit=5");
        assert_eq!(
            p.curl,
            "curl -sS -i -X POST 'http://127.0.0.1:3001/api/v1/chat?limit=5' \
             -H 'Authorization: ***' -H 'X-Request-Id: it'\\''s' \
             -H 'Content-Type: application/json' -d '{\"content\":\"hi\"}'"
        );
    }

    #[test]
    fn bad_method_and_url_are_typed() {
        assert_eq!(
            req("GE T", "http://x/")
                .prepare()
                .err()
                .map(|e| e.to_string()),
            Some("`GE T` is not an HTTP method".into())
        );
        let e = req("GET", "not a url").prepare().err();
        assert!(matches!(e, Some(PrepareError::Url { .. })), "{e:?}");
        assert!(
            e.map(|e| e.to_string())
                .unwrap_or_default()
                .starts_with("invalid URL \"not a url\": ")
        );
    }

    #[test]
    fn classification_rules() {
        assert_eq!(classify_chain(true, false, None, "x"), Failure::Timeout);
        assert_eq!(
            classify_chain(
                false,
                false,
                None,
                "error sending request: dns error: failed to lookup address"
            ),
            Failure::Dns
        );
        assert_eq!(
            classify_chain(false, true, Some(Failure::Reset), "x"),
            Failure::Tls
        );
        assert_eq!(
            classify_chain(
                false,
                false,
                None,
                "invalid peer certificate: UnknownIssuer"
            ),
            Failure::Tls
        );
        assert_eq!(
            classify_chain(false, false, Some(Failure::Reset), "connection closed"),
            Failure::Reset
        );
        assert_eq!(
            classify_chain(false, false, None, "tcp connect error: Connection refused"),
            Failure::Refused
        );
        assert_eq!(
            classify_chain(false, false, None, "something"),
            Failure::Other
        );
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(Failure::from_io(&io), Failure::Refused);
        for (text, class) in [
            (
                "client error (SendRequest): message head is too large",
                Failure::TooLarge,
            ),
            (
                "error reading a body from connection: Invalid chunk size line: missing size digit",
                Failure::Protocol,
            ),
            (
                "client error (SendRequest): invalid HTTP version parsed",
                Failure::Protocol,
            ),
            (
                "error following redirect: too many redirects",
                Failure::Protocol,
            ),
        ] {
            assert_eq!(classify_chain(false, false, None, text), class, "{text}");
        }
    }

    #[test]
    fn max_body_sizes() {
        assert_eq!(MaxBody::parse("65536"), Ok(MaxBody(65536)));
        assert_eq!(MaxBody::parse("64KB"), Ok(MaxBody(64 << 10)));
        assert_eq!(MaxBody::parse("1mb"), Ok(MaxBody(1 << 20)));
        assert_eq!(MaxBody::parse(" 512 B "), Ok(MaxBody(512)));
        assert!(MaxBody::parse("0").is_err());
        assert!(MaxBody::parse("lots").is_err());
        assert!(MaxBody::parse("99999999999999999999GB").is_err());
        assert_eq!(DEFAULT_MAX_BODY.human(), "1 MB");
        assert_eq!(MaxBody(64 << 10).human(), "64 KB");
        assert_eq!(MaxBody(1000).human(), "1000 B");
    }

    #[tokio::test]
    async fn read_body_stops_at_the_bound() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            if let Ok((mut s, _)) = l.accept().await {
                let mut request = [0u8; 1024];
                let _ = s.read(&mut request).await;
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n")
                    .await;
                let block = vec![b'x'; 8192];
                while s.write_all(&block).await.is_ok() {}
            }
        });
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let mut r = client
            .get(format!("http://127.0.0.1:{port}/"))
            .send()
            .await
            .unwrap();
        let b = read_body(&mut r, MaxBody(10_000)).await.unwrap();
        assert!(b.cut);
        assert_eq!(b.bytes.len(), 10_000);
        server.abort();
    }

    #[tokio::test]
    async fn a_refused_connection_is_classified_refused() {
        // Bind then drop to get a port nothing listens on.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let e = client
            .get(format!("http://127.0.0.1:{port}/"))
            .send()
            .await
            .err()
            .unwrap();
        let (kind, chain) = classify(&e);
        assert_eq!(kind, Failure::Refused, "{chain}");
    }

    #[test]
    fn tls_errors_are_found_by_type_inside_io_errors() {
        use std::io::{Error, ErrorKind};
        let tls = rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType);
        let wrapped = Error::other(Error::new(ErrorKind::InvalidData, tls));
        assert!(holds_tls_error(&wrapped));
        assert!(!holds_tls_error(&Error::other("plain")));
        assert!(!holds_tls_error(&Error::from(ErrorKind::ConnectionReset)));
    }

    #[tokio::test]
    async fn a_plain_text_answer_to_https_is_a_tls_failure() {
        use tokio::io::AsyncWriteExt;
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            if let Ok((mut s, _)) = l.accept().await {
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                    .await;
                let _ = s.shutdown().await;
            }
        });
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let e = client
            .get(format!("https://127.0.0.1:{port}/"))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .err()
            .unwrap();
        let (kind, chain) = classify(&e);
        assert_eq!(kind, Failure::Tls, "{chain}");
        server.abort();
    }
}
