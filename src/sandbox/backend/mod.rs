//! The reference chat backend: a small HTTP server that speaks the seed
//! backend's API (NestJS 11 / Express 5 / Prisma 5 on PostgreSQL, see
//! `shared/reference/target-api.md`) and reproduces its faults on demand, so
//! that chatops can be demoed and tested against a real server and a real
//! database.
//!
//! Configured from the environment like the real backend (`PORT`,
//! `DATABASE_URL`, `PRISMA_CLIENT_MODE`, `DISABLE_RATE_LIMIT`, …) plus the
//! sandbox's fault knobs (`CHATOPS_SANDBOX_*`). [`serve`] runs until SIGTERM
//! or SIGINT.

mod db;
pub(crate) mod logs;
mod ratelimit;

use crate::support::percent;
use bytes::Bytes;
use db::{Db, PrismaError};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use logs::{Level, Logger};
use ratelimit::{Outcome, RateLimiter};
use serde::Serialize;
use serde_json::{Value, json};
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Request bodies above this answer 413.
const BODY_LIMIT: usize = 1024 * 1024;
/// The Node version the health endpoint reports.
const NODE_VERSION: &str = "v20.11.0";
const MESSAGE_TYPES: &[&str] = &["TEXT", "IMAGE", "FILE", "AUDIO", "VIDEO", "SYSTEM"];

/// Which Prisma client the backend uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientMode {
    /// `PRISMA_CLIENT_MODE=database`, or unset with a `DATABASE_URL`.
    Database,
    /// `PRISMA_CLIENT_MODE=mock`.
    Mock,
    /// Unset mode and no `DATABASE_URL`: mock, silently.
    ImplicitMock,
}

/// The backend's configuration, read from the environment once at start-up.
#[derive(Debug, Clone)]
pub struct BackendConfig {
    /// `PORT` (default 3001).
    pub port: u16,
    /// `HOST` (default 127.0.0.1).
    pub host: String,
    pub mode: ClientMode,
    /// The effective Prisma URL: `DATABASE_URL`, with
    /// `connection_limit`/`pool_timeout`/`connect_timeout` appended when it
    /// has no `connection_limit` (as the seed's `src/config/database.ts`).
    pub database_url: Option<String>,
    /// `DISABLE_RATE_LIMIT` is exactly `true`.
    pub disable_rate_limit: bool,
    /// `CHATOPS_SANDBOX_LIMITERS=all`: mount the five limiters, not only
    /// apiLimiter.
    pub all_limiters: bool,
    /// apiLimiter's max (`CHATOPS_SANDBOX_API_LIMIT`, default 100).
    pub api_limit: u64,
    /// `CHATOPS_SANDBOX_DRIFT=1`: the send path writes column `messageType`.
    pub drift: bool,
    /// `CHATOPS_SANDBOX_QUERY_MS`: extra `pg_sleep` per database operation.
    pub query_ms: u64,
    /// ANSI colours in Nest lines (unless `NO_COLOR` is set and non-empty).
    pub color: bool,
    /// `NODE_ENV` (default development).
    pub environment: String,
}

fn enhance_url(url: &str, get: &dyn Fn(&str) -> Option<String>) -> String {
    if url.contains("connection_limit") {
        return url.to_string();
    }
    let num = |k: &str, d: u64| {
        get(k)
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(d)
    };
    let sep = if url.contains('?') { '&' } else { '?' };
    format!(
        "{url}{sep}connection_limit={}&pool_timeout={}&connect_timeout={}",
        num("DATABASE_POOL_SIZE", 50),
        num("DATABASE_POOL_TIMEOUT", 30),
        num("DATABASE_CONNECTION_TIMEOUT", 10)
    )
}

impl BackendConfig {
    /// Read the process environment, as the real backend does at start-up.
    pub fn from_env() -> BackendConfig {
        BackendConfig::from_lookup(&|k| std::env::var(k).ok())
    }

    /// Same as [`from_env`](Self::from_env) with another source of variables.
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> BackendConfig {
        let port = get("PORT")
            .and_then(|p| p.trim().parse::<u16>().ok())
            .unwrap_or(3001);
        let host = get("HOST")
            .filter(|h| !h.trim().is_empty())
            .unwrap_or_else(|| "127.0.0.1".to_string());
        let raw_url = get("DATABASE_URL").filter(|u| !u.trim().is_empty());
        let mode = match get("PRISMA_CLIENT_MODE").as_deref().map(str::trim) {
            Some("mock") => ClientMode::Mock,
            Some("database") => ClientMode::Database,
            _ if raw_url.is_some() => ClientMode::Database,
            _ => ClientMode::ImplicitMock,
        };
        let database_url = raw_url.map(|u| enhance_url(u.trim(), get));
        let flag = |k: &str| {
            get(k)
                .map(|v| matches!(v.trim(), "1" | "true" | "yes" | "on"))
                .unwrap_or(false)
        };
        BackendConfig {
            port,
            host,
            mode,
            database_url,
            disable_rate_limit: get("DISABLE_RATE_LIMIT").as_deref() == Some("true"),
            all_limiters: get("CHATOPS_SANDBOX_LIMITERS")
                .map(|v| v.trim().eq_ignore_ascii_case("all"))
                .unwrap_or(false),
            api_limit: get("CHATOPS_SANDBOX_API_LIMIT")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(100),
            drift: flag("CHATOPS_SANDBOX_DRIFT"),
            query_ms: get("CHATOPS_SANDBOX_QUERY_MS")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0),
            color: get("NO_COLOR").is_none_or(|v| v.is_empty()),
            environment: get("NODE_ENV")
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "development".to_string()),
        }
    }
}

struct App {
    log: Arc<Logger>,
    db: Option<Db>,
    limiter: Option<RateLimiter>,
    environment: String,
    started: Instant,
}

/// Connect like PrismaService.onModuleInit: one `SELECT 1`, or fail start-up.
async fn connect(cfg: &BackendConfig, log: &Arc<Logger>) -> Option<Db> {
    let fail = |cause: &str| {
        log.nest(
            Level::Error,
            "PrismaService",
            "Failed to connect to database",
            false,
        );
        log.prisma_error(cause);
    };
    let Some(url) = cfg.database_url.as_deref() else {
        fail("error: Environment variable not found: DATABASE_URL.");
        return None;
    };
    let parsed = match db::parse_url(url) {
        Ok(p) => p,
        Err(e) => {
            fail(&e);
            return None;
        }
    };
    let db = match Db::new(parsed, cfg.drift, cfg.query_ms, log.clone()) {
        Ok(d) => d,
        Err(e) => {
            fail(&e);
            return None;
        }
    };
    let limit = Duration::from_secs(db.url().connect_timeout.max(1) + 5);
    if let Err(e) = db.ping(limit).await {
        fail(&e.message);
        return None;
    }
    log.console("✅ Database connected successfully");
    log.console("✅ Database connection test passed");
    log.nest(
        Level::Log,
        "PrismaService",
        "Successfully connected to PostgreSQL database via singleton",
        false,
    );
    Some(db)
}

/// Node's uncaught `listen` error, as printed when the port is taken.
fn listen_error(log: &Logger, e: &std::io::Error, port: u16) {
    use std::io::ErrorKind;
    let (code, errno, text) = match e.kind() {
        ErrorKind::AddrInUse => ("EADDRINUSE", -98, "address already in use"),
        ErrorKind::PermissionDenied => ("EACCES", -13, "permission denied"),
        ErrorKind::AddrNotAvailable => ("EADDRNOTAVAIL", -99, "address not available"),
        _ => ("EINVAL", -22, "invalid argument"),
    };
    // Errors Node would word differently: keep the OS's words too.
    let extra = if code == "EINVAL" {
        format!("\n(cause: {e})")
    } else {
        String::new()
    };
    log.console_error(&format!(
        "node:net:1904\n    const ex = new UVExceptionWithHostPort(err, 'listen', address, port);\n                ^\n\n\
Error: listen {code}: {text} :::{port}\n    at Server.setupListenHandle [as _listen2] (node:net:1904:16)\n    at listenInCluster (node:net:1961:12)\n    at Server.listen (node:net:2063:7)\n    at ExpressAdapter.listen (/app/node_modules/@nestjs/platform-express/adapters/express-adapter.js:95:32)\n    at NestApplication.listen (/app/node_modules/@nestjs/core/nest-application.js:180:30) {{\n  code: '{code}',\n  errno: {errno},\n  syscall: 'listen',\n  address: '::',\n  port: {port}\n}}\n\nNode.js {NODE_VERSION}{extra}"
    ));
}

/// Run the backend until SIGTERM or SIGINT (returns 0) or a start-up failure
/// (returns 1: database unreachable in database mode, port not bindable).
pub async fn serve(cfg: BackendConfig) -> i32 {
    let started = Instant::now();
    let log = Arc::new(Logger::new(cfg.color));
    log.nest(
        Level::Log,
        "NestFactory",
        "Starting Nest application...",
        true,
    );
    for m in [
        "AppModule",
        "PrismaModule",
        "ConfigModule",
        "HealthModule",
        "ChatModule",
    ] {
        log.nest(
            Level::Log,
            "InstanceLoader",
            &format!("{m} dependencies initialized"),
            true,
        );
    }
    // The real main.ts prints its banner before `app.listen()`, which is
    // where the modules (and Prisma) initialise and the port is bound.
    log.console(&format!(
        "Application is running on http://localhost:{}",
        cfg.port
    ));
    log.console(&format!(
        "Health check available at http://localhost:{}/health",
        cfg.port
    ));
    let db = match cfg.mode {
        ClientMode::Database => match connect(&cfg, &log).await {
            Some(db) => Some(db),
            None => return 1,
        },
        ClientMode::Mock => {
            log.nest(
                Level::Warn,
                "PrismaService",
                "Using mock Prisma client (PRISMA_CLIENT_MODE=mock)",
                false,
            );
            None
        }
        ClientMode::ImplicitMock => None,
    };
    for (ctx, msg) in [
        ("RoutesResolver", "AppController {/api/v1}:"),
        ("RouterExplorer", "Mapped {/api/v1/health, GET} route"),
        ("RoutesResolver", "ChatController {/api/v1/chat}:"),
        (
            "RouterExplorer",
            "Mapped {/api/v1/chat/conversations/:conversationId/messages, POST} route",
        ),
        (
            "RouterExplorer",
            "Mapped {/api/v1/chat/conversations/:conversationId/messages, GET} route",
        ),
    ] {
        log.nest(Level::Log, ctx, msg, true);
    }
    let listener = match tokio::net::TcpListener::bind((cfg.host.as_str(), cfg.port)).await {
        Ok(l) => l,
        Err(e) => {
            listen_error(&log, &e, cfg.port);
            return 1;
        }
    };
    use tokio::signal::unix::{SignalKind, signal};
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(t), Ok(i)) => (t, i),
        (Err(e), _) | (_, Err(e)) => {
            log.nest(
                Level::Error,
                "NestApplication",
                &format!("cannot install signal handlers: {e}"),
                false,
            );
            return 1;
        }
    };
    log.nest(
        Level::Log,
        "NestApplication",
        "Nest application successfully started",
        true,
    );
    let app = Arc::new(App {
        limiter: (!cfg.disable_rate_limit)
            .then(|| RateLimiter::new(cfg.all_limiters, cfg.api_limit)),
        log,
        db,
        environment: cfg.environment.clone(),
        started,
    });
    loop {
        tokio::select! {
            _ = term.recv() => return 0,
            _ = int.recv() => return 0,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(_) => {
                        // EMFILE and the like: back off instead of spinning.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let app = app.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let app = app.clone();
                        async move { Ok::<_, Infallible>(app.handle(req, peer).await) }
                    });
                    let _ = http1::Builder::new()
                        .keep_alive(true)
                        .timer(TokioTimer::new())
                        .header_read_timeout(Duration::from_secs(65))
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        }
    }
}

type Resp = Response<Full<Bytes>>;

// Response bodies and log lines as structs, so that keys keep the order
// Express writes them in (serde_json's map is sorted here).

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NestError<'a> {
    message: Value,
    error: &'a str,
    status_code: u16,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LogLine<'a> {
    level: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    method: &'a str,
    url: &'a str,
    ip: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_ms: Option<u64>,
    time: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DbHealth<'a> {
    overall: &'a str,
    database: &'a str,
    operations_successful: bool,
    total_operations: u64,
    errors: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Memory {
    rss: u64,
    heap_total: u64,
    heap_used: u64,
    external: u64,
    array_buffers: u64,
}

#[derive(Serialize)]
struct Health<'a> {
    status: &'a str,
    timestamp: String,
    environment: &'a str,
    database: DbHealth<'a>,
    uptime: f64,
    memory: Memory,
    version: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FullSender {
    id: String,
    username: String,
    first_name: Option<String>,
    last_name: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SentMessage<'a> {
    id: String,
    content: String,
    #[serde(rename = "type")]
    kind: String,
    status: String,
    created_at: &'a str,
    sender: FullSender,
    attachments: [u8; 0],
}

#[derive(Serialize)]
struct Sent<'a> {
    success: bool,
    message: SentMessage<'a>,
}

#[derive(Serialize)]
struct ShortSender {
    id: String,
    username: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HistoryMessage {
    id: String,
    content: String,
    #[serde(rename = "type")]
    kind: String,
    created_at: String,
    sender: ShortSender,
    message_reads: Value,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Pagination {
    limit: i64,
    has_more: bool,
}

#[derive(Serialize)]
struct HistoryData {
    messages: Vec<HistoryMessage>,
    pagination: Pagination,
}

#[derive(Serialize)]
struct History {
    success: bool,
    data: HistoryData,
}

fn json_response<T: Serialize + ?Sized>(status: u16, body: &T) -> Resp {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut r = Response::new(Full::new(Bytes::from(bytes)));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    h.insert("x-powered-by", HeaderValue::from_static("Express"));
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

/// A NestJS HttpException body.
fn nest_error(status: u16, message: Value) -> Resp {
    let error = match status {
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        413 => "Payload Too Large",
        _ => "Internal Server Error",
    };
    json_response(
        status,
        &NestError {
            message,
            error,
            status_code: status,
        },
    )
}

fn forbidden() -> Resp {
    nest_error(403, json!("You are not a participant in this conversation"))
}

/// How Node prints a peer address on a dual-stack `::` listener.
fn node_ip(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("::ffff:{v4}"),
        IpAddr::V6(v6) => v6.to_string(),
    }
}

fn query_get(query: Option<&str>, key: &str) -> Option<String> {
    query?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (percent::decode_form(k) == key).then(|| percent::decode_form(v))
    })
}

/// Byte offset of a serde_json error, for a JSON.parse-like message.
fn json_error_message(body: &[u8], e: &serde_json::Error) -> String {
    if e.is_eof() {
        return "Unexpected end of JSON input".to_string();
    }
    let mut line = 1;
    let mut offset = 0;
    for (i, c) in body.iter().enumerate() {
        if line == e.line() {
            offset = i;
            break;
        }
        if *c == b'\n' {
            line += 1;
        }
    }
    let pos = (offset + e.column()).saturating_sub(1);
    format!("Unexpected token in JSON at position {pos}")
}

/// A class-validator style check of one required string field.
fn required_str(v: &Value, key: &str, errors: &mut Vec<String>) -> Option<String> {
    match v.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        Some(Value::String(_)) => {
            errors.push(format!("{key} should not be empty"));
            None
        }
        None | Some(Value::Null) => {
            errors.push(format!("{key} should not be empty"));
            errors.push(format!("{key} must be a string"));
            None
        }
        Some(_) => {
            errors.push(format!("{key} must be a string"));
            None
        }
    }
}

fn memory() -> Memory {
    let rss = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|pages| pages * 4096)
        .unwrap_or(64 * 1024 * 1024);
    // A V8-like split of the resident set: plausible, not measured.
    Memory {
        rss,
        heap_total: rss / 100 * 38,
        heap_used: rss / 100 * 27,
        external: 2_374_810 + rss / 1000,
        array_buffers: 174_618,
    }
}

impl App {
    async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Resp {
        let start = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let url = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| path.clone());
        let ip = node_ip(peer.ip());
        self.log.json(&LogLine {
            level: "info",
            kind: "request",
            method: method.as_str(),
            url: &url,
            ip: &ip,
            status_code: None,
            duration_ms: None,
            time: logs::iso(SystemTime::now()),
        });
        let (mut resp, headers) = match self
            .limiter
            .as_ref()
            .map(|l| l.check(&method, &path, peer.ip()))
        {
            Some(Outcome::Blocked(h, body)) => (json_response(429, &body), h),
            Some(Outcome::Allowed(h)) => (self.route(req, &method, &path, &url).await, h),
            None => (self.route(req, &method, &path, &url).await, Vec::new()),
        };
        for (k, v) in headers {
            if let Ok(v) = HeaderValue::from_str(&v) {
                resp.headers_mut().insert(k, v);
            }
        }
        self.log.json(&LogLine {
            level: "info",
            kind: "response",
            method: method.as_str(),
            url: &url,
            ip: &ip,
            status_code: Some(resp.status().as_u16()),
            duration_ms: Some(start.elapsed().as_millis() as u64),
            time: logs::iso(SystemTime::now()),
        });
        resp
    }

    async fn route(&self, req: Request<Incoming>, method: &Method, path: &str, url: &str) -> Resp {
        // Express routing is not strict about one trailing slash.
        let p = match path.strip_suffix('/') {
            Some(s) if !s.is_empty() => s,
            _ => path,
        };
        let is_get = method == Method::GET || method == Method::HEAD;
        if p == "/api/v1/health" && is_get {
            return self.health().await;
        }
        if let Some(cid) = p
            .strip_prefix("/api/v1/chat/conversations/")
            .and_then(|r| r.strip_suffix("/messages"))
            .filter(|c| !c.is_empty() && !c.contains('/'))
        {
            let cid = percent::decode(cid);
            if method == Method::POST {
                return self.send(req, &cid).await;
            }
            if is_get {
                return self.history(req.uri().query(), &cid).await;
            }
        }
        nest_error(404, json!(format!("Cannot {} {}", method.as_str(), url)))
    }

    async fn health(&self) -> Resp {
        let (overall, ok, total, errors) = match &self.db {
            None => ("mock", true, 0, 0),
            Some(db) => {
                let r = db.ping(Duration::from_secs(3)).await;
                if let Err(e) = &r {
                    self.log.prisma_error(&format!(
                        "Invalid `prisma.$queryRaw()` invocation: {}",
                        e.message
                    ));
                }
                (
                    if r.is_ok() { "healthy" } else { "unhealthy" },
                    r.is_ok(),
                    db.total_operations(),
                    db.error_count(),
                )
            }
        };
        let uptime = (self.started.elapsed().as_secs_f64() * 100.0).round() / 100.0;
        json_response(
            200,
            &Health {
                status: "ok",
                timestamp: logs::iso(SystemTime::now()),
                environment: &self.environment,
                database: DbHealth {
                    overall,
                    database: "connected",
                    operations_successful: ok,
                    total_operations: total,
                    errors,
                },
                uptime,
                memory: memory(),
                version: NODE_VERSION,
            },
        )
    }

    async fn send(&self, req: Request<Incoming>, cid: &str) -> Resp {
        let is_json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains("json"));
        let declared = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > BODY_LIMIT as u64) {
            return nest_error(413, json!("request entity too large"));
        }
        let body = match Limited::new(req.into_body(), BODY_LIMIT).collect().await {
            Ok(c) => c.to_bytes(),
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
                return nest_error(413, json!("request entity too large"));
            }
            Err(_) => return nest_error(400, json!("request aborted")),
        };
        let value = if !is_json || body.iter().all(u8::is_ascii_whitespace) {
            json!({})
        } else {
            match serde_json::from_slice::<Value>(&body) {
                Ok(v) => v,
                Err(e) => return nest_error(400, json!(json_error_message(&body, &e))),
            }
        };
        let mut errors = Vec::new();
        let user_id = required_str(&value, "userId", &mut errors);
        let content = required_str(&value, "content", &mut errors);
        let kind = match value.get("messageType") {
            None | Some(Value::Null) => Some("TEXT".to_string()),
            Some(Value::String(s)) if MESSAGE_TYPES.contains(&s.as_str()) => Some(s.clone()),
            Some(_) => {
                errors.push(format!(
                    "messageType must be one of the following values: {}",
                    MESSAGE_TYPES.join(", ")
                ));
                None
            }
        };
        let (Some(user_id), Some(content), Some(kind), true) =
            (user_id, content, kind, errors.is_empty())
        else {
            return nest_error(400, json!(errors));
        };
        let Some(db) = &self.db else {
            return forbidden();
        };
        let failed = |e: PrismaError| {
            nest_error(400, json!(format!("Failed to send message: {}", e.message)))
        };
        match db.is_participant(cid, &user_id).await {
            Ok(true) => {}
            Ok(false) => return forbidden(),
            Err(e) => return failed(e),
        }
        let id = logs::cuid();
        let created_at = logs::iso(SystemTime::now());
        match db
            .create_message(&id, cid, &user_id, &content, &kind, &created_at)
            .await
        {
            Ok(Some(m)) => json_response(
                201,
                &Sent {
                    success: true,
                    message: SentMessage {
                        id: m.id,
                        content: m.content,
                        kind: m.kind,
                        status: m.status,
                        created_at: &created_at,
                        sender: FullSender {
                            id: m.sender.id,
                            username: m.sender.username,
                            first_name: m.sender.first_name,
                            last_name: m.sender.last_name,
                        },
                        attachments: [],
                    },
                },
            ),
            Ok(None) => nest_error(400, json!("Failed to send message: Sender not found")),
            Err(e) => failed(e),
        }
    }

    async fn history(&self, query: Option<&str>, cid: &str) -> Resp {
        let Some(user_id) = query_get(query, "userId").filter(|u| !u.trim().is_empty()) else {
            return nest_error(
                400,
                json!(["userId should not be empty", "userId must be a string"]),
            );
        };
        let limit = query_get(query, "limit")
            .and_then(|l| l.trim().parse::<i64>().ok())
            .filter(|l| *l > 0)
            .unwrap_or(50)
            .min(100);
        let Some(db) = &self.db else {
            return forbidden();
        };
        let failed = |e: PrismaError| {
            nest_error(400, json!(format!("Failed to get messages: {}", e.message)))
        };
        match db.is_participant(cid, &user_id).await {
            Ok(true) => {}
            Ok(false) => return forbidden(),
            Err(e) => return failed(e),
        }
        let mut rows = match db.list_messages(cid, &user_id, limit + 1).await {
            Ok(r) => r,
            Err(e) => return failed(e),
        };
        let has_more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let messages = rows
            .into_iter()
            .map(|m| HistoryMessage {
                id: m.id,
                content: m.content,
                kind: m.kind,
                created_at: m.created_at,
                sender: ShortSender {
                    id: m.sender_id,
                    username: m.sender_username,
                },
                message_reads: serde_json::from_str(&m.reads_json).unwrap_or_else(|_| json!([])),
            })
            .collect();
        json_response(
            200,
            &History {
                success: true,
                data: HistoryData {
                    messages,
                    pagination: Pagination { limit, has_more },
                },
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(vars: &[(&str, &str)]) -> BackendConfig {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        BackendConfig::from_lookup(&move |k| m.get(k).cloned())
    }

    #[test]
    fn config_from_env() {
        let c = cfg(&[]);
        assert_eq!(c.port, 3001);
        assert_eq!(c.mode, ClientMode::ImplicitMock);
        assert!(c.color && !c.disable_rate_limit && !c.all_limiters);
        let c = cfg(&[
            ("DATABASE_URL", "postgresql://u:p@h:5/db"),
            ("DISABLE_RATE_LIMIT", "TRUE"),
            ("NO_COLOR", "1"),
        ]);
        assert_eq!(c.mode, ClientMode::Database);
        assert_eq!(
            c.database_url.as_deref(),
            Some("postgresql://u:p@h:5/db?connection_limit=50&pool_timeout=30&connect_timeout=10")
        );
        assert!(!c.disable_rate_limit && !c.color);
        let c = cfg(&[
            ("DATABASE_URL", "postgresql://u:p@h:5/db?connection_limit=3"),
            ("PRISMA_CLIENT_MODE", "mock"),
        ]);
        assert_eq!(c.mode, ClientMode::Mock);
        assert_eq!(
            c.database_url.as_deref(),
            Some("postgresql://u:p@h:5/db?connection_limit=3")
        );
    }

    #[test]
    fn decodes() {
        assert_eq!(percent::decode_form("a%20b+c%"), "a b c%");
        assert_eq!(percent::decode("%zz%4"), "%zz%4");
        assert_eq!(
            query_get(Some("userId=00%2D1&limit=5"), "userId").as_deref(),
            Some("00-1")
        );
    }
}
