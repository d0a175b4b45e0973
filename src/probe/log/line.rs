//! Parsing one log line, whatever the logger: pino, winston, bunyan, Nest's
//! JSON and text loggers, Prisma, node's own crash output, PostgreSQL.

use std::sync::LazyLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use regex::Regex;
use serde_json::Value;

use super::strip_ansi;

// Parsing lines

/// A log level, whatever the logger called it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
}

impl Level {
    /// A level word (`error`, `ERR`, `warning`, Nest's `LOG` and `VERBOSE`, winston's `http`/`silly`).
    pub fn from_word(w: &str) -> Option<Level> {
        Some(match w.to_ascii_lowercase().as_str() {
            "trace" | "verbose" | "silly" => Level::Trace,
            "debug" => Level::Debug,
            "info" | "log" | "http" | "notice" => Level::Info,
            "warn" | "warning" => Level::Warn,
            "error" | "err" => Level::Error,
            "fatal" | "crit" | "critical" | "alert" | "emerg" | "panic" => Level::Fatal,
            _ => return None,
        })
    }

    /// pino's and bunyan's numbers: 10 trace … 60 fatal.
    pub fn from_number(n: f64) -> Option<Level> {
        Some(match n as i64 {
            i64::MIN..=0 => return None,
            1..=19 => Level::Trace,
            20..=29 => Level::Debug,
            30..=39 => Level::Info,
            40..=49 => Level::Warn,
            50..=59 => Level::Error,
            _ => Level::Fatal,
        })
    }
}

/// When a line was written: a point in time when the text says it
/// unambiguously, else the text (Nest's `10/21/2025, 5:50:38 PM` is local
/// time in an unknown zone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTime {
    At(SystemTime),
    Text(String),
}

/// One parsed log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub time: Option<LogTime>,
    pub level: Option<Level>,
    /// The message proper (`msg`, `message`, or the text after the prefix).
    pub message: String,
    /// Texts a JSON line carries beside its message: an error's message,
    /// code and stack, with JSON escapes undone.
    pub detail: Vec<String>,
    /// Nest's `[Context]`, a JSON `context` or `name`.
    pub context: Option<String>,
    pub request_id: Option<String>,
    /// The line as written, escape sequences removed, trailing space trimmed.
    pub raw: String,
}

impl LogLine {
    /// Everything the line says, in readable form: message then detail.
    pub fn text(&self) -> String {
        if self.detail.is_empty() {
            self.message.clone()
        } else {
            let mut s = self.message.clone();
            for d in &self.detail {
                s.push('\n');
                s.push_str(d);
            }
            s
        }
    }

    /// The time, when the line gives it unambiguously.
    pub fn at(&self) -> Option<SystemTime> {
        match self.time {
            Some(LogTime::At(t)) => Some(t),
            _ => None,
        }
    }

    /// A stack frame (`    at Foo (file.js:1:2)`).
    pub fn is_stack_frame(&self) -> bool {
        is_frame(&self.raw)
    }
}

/// A line that continues the record above it: no time, level, context or
/// request id of its own (stack frames, Prisma's multi-line messages).
fn continues(l: &LogLine) -> bool {
    l.is_stack_frame()
        || (l.time.is_none() && l.level.is_none() && l.context.is_none() && l.request_id.is_none())
}

/// The lines of one request: those carrying its id (as a field, or in the
/// text when the id is long enough not to match by chance), with the lines
/// that continue them.
pub fn for_request(lines: &[LogLine], id: &str) -> Vec<LogLine> {
    let mut out = Vec::new();
    let mut inside = false;
    for l in lines {
        let mine = l.request_id.as_deref() == Some(id) || (id.len() >= 8 && l.raw.contains(id));
        inside = mine || (inside && continues(l));
        if inside {
            out.push(l.clone());
        }
    }
    out
}

/// The lines written between `from` and `to` (widened by `slack` for clock
/// rounding). A line without a time of its own takes the time of the last
/// timed line above it; lines before the first timed line are kept only
/// when no line has a time at all (nothing to judge them by).
pub fn within(
    lines: &[LogLine],
    from: SystemTime,
    to: SystemTime,
    slack: Duration,
) -> Vec<LogLine> {
    let lo = from.checked_sub(slack).unwrap_or(from);
    let hi = to.checked_add(slack).unwrap_or(to);
    let any_time = lines.iter().any(|l| l.at().is_some());
    let mut last: Option<SystemTime> = None;
    let mut out = Vec::new();
    for l in lines {
        if let Some(t) = l.at() {
            last = Some(t);
        }
        let keep = match last {
            Some(t) => t >= lo && t <= hi,
            None => !any_time,
        };
        if keep {
            out.push(l.clone());
        }
    }
    out
}

/// A JavaScript stack frame line.
pub fn is_frame(s: &str) -> bool {
    let t = s.trim_start();
    t.starts_with("at ") && s.len() > t.len()
}

/// Parses one line (JSON or text). Never fails: an unknown shape is a line
/// with only `message` and `raw`.
pub fn parse_line(line: &str) -> LogLine {
    let raw = strip_ansi(line).trim_end().to_string();
    let t = raw.trim_start();
    if t.starts_with('{')
        && let Ok(Value::Object(map)) = serde_json::from_str::<Value>(t)
    {
        return parse_json(&map, raw.clone());
    }
    parse_text(raw)
}

fn parse_json(map: &serde_json::Map<String, Value>, raw: String) -> LogLine {
    let str_of = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let level = match map.get("level").or_else(|| map.get("severity")) {
        Some(Value::Number(n)) => n.as_f64().and_then(Level::from_number),
        Some(Value::String(s)) => Level::from_word(s.trim()),
        _ => None,
    };
    let time = ["time", "timestamp", "@timestamp", "ts", "date"]
        .iter()
        .find_map(|k| map.get(*k))
        .and_then(json_time);
    let message = ["msg", "message"]
        .iter()
        .find_map(|k| map.get(*k).and_then(Value::as_str))
        .unwrap_or_default()
        .to_string();
    let context = ["context", "name"]
        .iter()
        .find_map(|k| map.get(*k).and_then(Value::as_str))
        .map(str::to_string);
    let mut detail = Vec::new();
    for key in ["err", "error", "exception", "reason", "cause"] {
        match map.get(key) {
            Some(Value::String(s)) if !s.is_empty() => detail.push(s.clone()),
            Some(Value::Object(e)) => {
                for k in ["message", "code", "stack"] {
                    if let Some(s) = e.get(k).and_then(str_of)
                        && !s.is_empty()
                        && !message.contains(&s)
                    {
                        detail.push(s);
                    }
                }
            }
            _ => {}
        }
    }
    // Nest's JSON logger writes `stack` as an array of strings.
    for k in ["code", "stack", "trace"] {
        match map.get(k) {
            Some(Value::String(s)) if !s.is_empty() => detail.push(s.clone()),
            Some(Value::Array(xs)) => detail.extend(
                xs.iter()
                    .filter_map(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            ),
            _ => {}
        }
    }
    let request_id = request_id(map).and_then(str_of);
    LogLine {
        time,
        level,
        message,
        detail,
        context,
        request_id,
        raw,
    }
}

fn request_id(map: &serde_json::Map<String, Value>) -> Option<&Value> {
    const TOP: [&str; 7] = [
        "reqId",
        "requestId",
        "request_id",
        "x-request-id",
        "X-Request-ID",
        "x_request_id",
        "correlationId",
    ];
    if let Some(v) = TOP.iter().find_map(|k| map.get(*k)) {
        return Some(v);
    }
    let req = map.get("req").or_else(|| map.get("request"))?;
    req.get("id").or_else(|| req.get("requestId")).or_else(|| {
        let h = req.get("headers")?;
        h.get("x-request-id").or_else(|| h.get("X-Request-ID"))
    })
}

fn json_time(v: &Value) -> Option<LogTime> {
    match v {
        Value::Number(n) => {
            let x = n.as_f64()?;
            if !x.is_finite() || x <= 0.0 {
                return None;
            }
            // Milliseconds since the epoch (pino, Nest), or seconds (some loggers).
            let secs = if x > 1e11 { x / 1000.0 } else { x };
            Some(LogTime::At(
                UNIX_EPOCH + Duration::try_from_secs_f64(secs).ok()?,
            ))
        }
        Value::String(s) => Some(text_time(s)),
        _ => None,
    }
}

fn text_time(s: &str) -> LogTime {
    match humantime::parse_rfc3339_weak(s.trim()) {
        Ok(t) => LogTime::At(t),
        Err(_) => LogTime::Text(s.to_string()),
    }
}

static NEST: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r"^\[Nest\]\s+\d+\s+-\s+(.*?)\s+(LOG|ERROR|WARN|DEBUG|VERBOSE|FATAL)\s+(?:\[([^\]]*)\]\s*)?(.*?)(?:\s+\+\d+ms)?$",
    )
    .ok()
});

/// An ISO-like timestamp at the start of a line (`2025-10-21T12:38:29.532Z`,
/// PostgreSQL's `2025-10-21 12:38:29.532 UTC`).
static ISO_PREFIX: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r"^\[?(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)(?: ([A-Z]{2,5}))?\]?\s+",
    )
    .ok()
});

/// A level word after the time: `[ERROR]`, `error:`, `ERROR:`, `ERROR ` (upper case only), or
/// `level=error`.
static LEVEL_PREFIX: LazyLock<Option<Regex>> = LazyLock::new(|| {
    let words =
        "trace|debug|info|log|notice|warn|warning|error|err|fatal|verbose|crit|critical|panic";
    Regex::new(&format!(
        r"^(?:\[\s*(?i:({words}))\s*\]:?|(?i:({words})):|([A-Z]{{3,8}})\s|level=(?i:({words})))\s*"
    ))
    .ok()
});

/// A JavaScript error line: `Error: …`, `TypeError: …`, `PrismaClientKnownRequestError: …`,
/// `Error [ERR_X]: …`, `Uncaught Error: …`.
static JS_ERROR: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r"^(?:Uncaught\s+)?(?:[A-Z][A-Za-z0-9_]*)?(?:Error|Exception)(?:\s\[[A-Z0-9_]+\])?:\s",
    )
    .ok()
});

fn parse_text(raw: String) -> LogLine {
    let mut line = LogLine {
        time: None,
        level: None,
        message: String::new(),
        detail: Vec::new(),
        context: None,
        request_id: None,
        raw,
    };
    let t = line.raw.trim();
    if let Some(c) = NEST.as_ref().and_then(|r| r.captures(t)) {
        let g = |i| c.get(i).map_or("", |m| m.as_str());
        line.time = Some(LogTime::Text(g(1).to_string()));
        line.level = Level::from_word(g(2));
        line.context = c.get(3).map(|m| m.as_str().to_string());
        line.message = g(4).to_string();
        return line;
    }
    // `prisma:error …`, `prisma:warn …`, `prisma:query …`.
    if let Some(rest) = t.strip_prefix("prisma:") {
        let (word, msg) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        line.level = Level::from_word(word).or(Some(Level::Debug));
        line.context = Some("prisma".into());
        line.message = msg.trim().to_string();
        return line;
    }
    let mut rest = t;
    if let Some(c) = ISO_PREFIX.as_ref().and_then(|r| r.captures(rest)) {
        let stamp = c.get(1).map_or("", |m| m.as_str());
        line.time = Some(match c.get(2) {
            // A zone name (PostgreSQL's `UTC`): only UTC and GMT are certain.
            Some(z) if z.as_str() != "UTC" && z.as_str() != "GMT" => {
                LogTime::Text(format!("{stamp} {}", z.as_str()))
            }
            _ => text_time(stamp),
        });
        rest = &rest[c.get(0).map_or(0, |m| m.end())..];
        // PostgreSQL's `[1234] ` process id.
        if let Some(after) = rest.strip_prefix('[')
            && let Some((pid, tail)) = after.split_once(']')
            && pid.chars().all(|c| c.is_ascii_digit() || c == '-')
        {
            rest = tail.trim_start();
        }
    }
    if JS_ERROR.as_ref().is_some_and(|r| r.is_match(rest)) {
        line.level = Some(Level::Error);
        line.message = rest.to_string();
        return line;
    }
    if let Some(c) = LEVEL_PREFIX.as_ref().and_then(|r| r.captures(rest)) {
        let word = [1, 2, 3, 4]
            .iter()
            .find_map(|&i| c.get(i))
            .map_or("", |m| m.as_str());
        if let Some(level) = Level::from_word(word) {
            line.level = Some(level);
            rest = &rest[c.get(0).map_or(0, |m| m.end())..];
        }
    }
    line.message = rest.trim().to_string();
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEST_COLOURED: &str = super::super::tests::NEST_COLOURED;

    #[test]
    fn nest_text_lines() {
        let l = parse_line(NEST_COLOURED);
        assert_eq!(l.level, Some(Level::Info));
        assert_eq!(l.context.as_deref(), Some("NestFactory"));
        assert_eq!(l.message, "Starting Nest application...");
        assert_eq!(l.time, Some(LogTime::Text("10/21/2025, 5:50:38 PM".into())));
        assert!(!l.raw.contains('\x1b'));

        let e = parse_line(
            "[Nest] 4242  - 03/02/2026, 11:04:09 AM   ERROR [ExceptionsHandler] Invalid `prisma.message.create()` invocation:",
        );
        assert_eq!(e.level, Some(Level::Error));
        assert_eq!(e.context.as_deref(), Some("ExceptionsHandler"));
        assert!(e.message.starts_with("Invalid `prisma.message.create()`"));

        let w = parse_line(
            "[Nest] 7  - 1/2/2026, 9:00:00 AM    WARN [Bootstrap] Rate limiting disabled",
        );
        assert_eq!(w.level, Some(Level::Warn));
        let v = parse_line("[Nest] 7  - 1/2/2026, 9:00:00 AM VERBOSE [X] detail");
        assert_eq!(v.level, Some(Level::Trace));
    }

    #[test]
    fn pino_winston_bunyan_and_nest_json() {
        let p = parse_line(
            r#"{"level":50,"time":1700000000000,"pid":1,"hostname":"h","reqId":"req-7","err":{"type":"PrismaClientKnownRequestError","message":"Timed out fetching a new connection from the connection pool.","code":"P2024","stack":"PrismaClientKnownRequestError: x\n    at a (b.js:1:2)"},"msg":"request failed"}"#,
        );
        assert_eq!(p.level, Some(Level::Error));
        assert_eq!(p.message, "request failed");
        assert_eq!(p.request_id.as_deref(), Some("req-7"));
        assert_eq!(
            p.time,
            Some(LogTime::At(UNIX_EPOCH + Duration::from_secs(1_700_000_000)))
        );
        assert!(p.detail.iter().any(|d| d == "P2024"));
        assert!(p.text().contains("\n    at a (b.js:1:2)"));

        let pino_req = parse_line(
            r#"{"level":30,"time":1700000000123,"req":{"id":42,"method":"POST"},"msg":"request completed"}"#,
        );
        assert_eq!(pino_req.request_id.as_deref(), Some("42"));
        assert_eq!(pino_req.level, Some(Level::Info));

        let w = parse_line(
            r#"{"level":"error","message":"connect ECONNREFUSED 127.0.0.1:5432","timestamp":"2025-10-21T12:38:29.532Z","requestId":"abc"}"#,
        );
        assert_eq!(w.level, Some(Level::Error));
        assert_eq!(w.message, "connect ECONNREFUSED 127.0.0.1:5432");
        assert_eq!(w.request_id.as_deref(), Some("abc"));
        let Some(LogTime::At(t)) = w.time else {
            panic!("winston time not parsed: {:?}", w.time)
        };
        assert_eq!(
            t.duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0),
            1_761_050_309_532
        );

        let b = parse_line(
            r#"{"name":"chat","hostname":"h","pid":9,"level":40,"msg":"slow","time":"2025-10-21T12:38:29.000Z","v":0}"#,
        );
        assert_eq!(b.level, Some(Level::Warn));
        assert_eq!(b.context.as_deref(), Some("chat"));
        assert!(matches!(b.time, Some(LogTime::At(_))));

        let n = parse_line(
            r#"{"level":"log","pid":19096,"timestamp":1607370779834,"message":"Starting Nest application...","context":"NestFactory"}"#,
        );
        assert_eq!(n.level, Some(Level::Info));
        assert_eq!(n.context.as_deref(), Some("NestFactory"));

        let h = parse_line(r#"{"msg":"in","req":{"headers":{"x-request-id":"r-1"}}}"#);
        assert_eq!(h.request_id.as_deref(), Some("r-1"));
        let x = parse_line(r#"{"message":"x","x-request-id":"hdr"}"#);
        assert_eq!(x.request_id.as_deref(), Some("hdr"));
    }

    #[test]
    fn plain_text_shapes() {
        let p = parse_line("prisma:error \n  Invalid `prisma.message.create()` invocation:");
        assert_eq!(p.level, Some(Level::Error));
        assert_eq!(p.context.as_deref(), Some("prisma"));

        let f = parse_line("    at PrismaService.connect (/app/dist/prisma.service.js:21:9)");
        assert!(f.is_stack_frame());
        assert_eq!(f.level, None);
        assert!(!parse_line("at the end").is_stack_frame());

        let e = parse_line("Error: listen EADDRINUSE: address already in use :::3001");
        assert_eq!(e.level, Some(Level::Error));
        assert_eq!(
            e.message,
            "Error: listen EADDRINUSE: address already in use :::3001"
        );
        let te = parse_line("TypeError: Cannot read properties of undefined (reading 'id')");
        assert_eq!(te.level, Some(Level::Error));

        let pg = parse_line("2025-10-21 12:38:29.532 UTC [8812] ERROR:  deadlock detected");
        assert_eq!(pg.level, Some(Level::Error));
        assert_eq!(pg.message, "deadlock detected");
        assert!(matches!(pg.time, Some(LogTime::At(_))));
        let pglog = parse_line(
            "2025-10-21 12:38:30.001 CEST [8813] LOG:  process 8813 still waiting for ShareLock on transaction 1234 after 1000.052 ms",
        );
        assert_eq!(pglog.level, Some(Level::Info));
        assert!(matches!(pglog.time, Some(LogTime::Text(ref s)) if s.ends_with("CEST")));

        let w = parse_line("error: something broke");
        assert_eq!(
            (w.level, w.message.as_str()),
            (Some(Level::Error), "something broke")
        );
        let iso = parse_line("2025-10-21T12:00:00Z [WARN] pool nearly full");
        assert_eq!(iso.level, Some(Level::Warn));
        assert_eq!(iso.message, "pool nearly full");
        let lf = parse_line("level=error msg=boom");
        assert_eq!(lf.level, Some(Level::Error));

        // Not levels: an HTTP verb, a sentence starting with "Log".
        let get = parse_line("GET /api/v1/health 200");
        assert_eq!(
            (get.level, get.message.as_str()),
            (None, "GET /api/v1/health 200")
        );
        assert_eq!(parse_line("Log in succeeded").level, None);
        assert_eq!(parse_line("").message, "");
        // Broken JSON is text.
        let broken = parse_line(r#"{"level":50,"msg":"cut"#);
        assert_eq!(broken.level, None);
        assert_eq!(broken.message, r#"{"level":50,"msg":"cut"#);
    }

    #[test]
    fn levels() {
        for (w, l) in [
            ("ERROR", Level::Error),
            ("err", Level::Error),
            ("Fatal", Level::Fatal),
            ("warning", Level::Warn),
            ("info", Level::Info),
            ("LOG", Level::Info),
            ("debug", Level::Debug),
            ("verbose", Level::Trace),
            ("trace", Level::Trace),
        ] {
            assert_eq!(Level::from_word(w), Some(l), "{w}");
        }
        assert_eq!(Level::from_word("GET"), None);
        assert_eq!(Level::from_number(10.0), Some(Level::Trace));
        assert_eq!(Level::from_number(30.0), Some(Level::Info));
        assert_eq!(Level::from_number(60.0), Some(Level::Fatal));
        assert_eq!(Level::from_number(0.0), None);
    }

    #[test]
    fn lines_of_a_request_and_of_a_time_window() {
        let log = [
            r#"{"level":30,"time":1700000000000,"reqId":"req-1","msg":"incoming"}"#,
            r#"{"level":50,"time":1700000001000,"reqId":"req-2","msg":"failed"}"#,
            "prisma:error Timed out fetching a new connection from the connection pool.",
            r#"{"level":50,"time":1700000002000,"reqId":"req-1","err":{"message":"boom"},"msg":"failed"}"#,
            "    at ChatService.send (/app/dist/chat.service.js:1:2)",
            r#"{"level":30,"time":1700000009000,"reqId":"req-3","msg":"later"}"#,
            "untimed tail",
        ]
        .map(parse_line);
        let r1 = for_request(&log, "req-1");
        assert_eq!(r1.len(), 3);
        assert!(r1[2].is_stack_frame());
        assert_eq!(for_request(&log, "req-2").len(), 1);
        assert!(for_request(&log, "req").is_empty());

        let at = |s| UNIX_EPOCH + Duration::from_secs(s);
        let w = within(&log, at(1_700_000_001), at(1_700_000_002), Duration::ZERO);
        let msgs: Vec<&str> = w.iter().map(|l| l.message.as_str()).collect();
        assert_eq!(
            msgs,
            [
                "failed",
                "Timed out fetching a new connection from the connection pool.",
                "failed",
                "at ChatService.send (/app/dist/chat.service.js:1:2)"
            ]
        );
        let w = within(
            &log,
            at(1_700_000_009),
            at(1_700_000_010),
            Duration::from_millis(500),
        );
        assert_eq!(w.len(), 2);
        let untimed = [parse_line("a"), parse_line("b")];
        assert_eq!(within(&untimed, at(1), at(2), Duration::ZERO).len(), 2);
    }
}
