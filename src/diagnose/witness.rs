//! What a backend's log and its HTTP answers say about a failure's cause.
//!
//! Classification works on documented texts — Prisma's error messages and
//! codes, node-postgres's and PostgreSQL's messages, Node's own crash output —
//! wherever they appear: a `prisma:error` line, a JSON log line, a coloured
//! Nest line, or inside a 400 body (`{"message":"Failed to send message:
//! <cause>"}`). Prisma does not print its codes in its messages, so the
//! message texts matter more than the codes.
//!
//! | cause | recognised by |
//! |---|---|
//! | `schema_drift` | P2021/P2022, ``The table/column `x` does not exist in the current database``, `relation "x" does not exist`, `column "x" does not exist` (42P01/42703) |
//! | `memory_growth` | `JavaScript heap out of memory`, `Reached heap limit` (a crash by OOM) |
//! | `crash` | `Environment variable not found: X` (P1012) and other missing settings, `EADDRINUSE` (port taken), an uncaught exception with its stack, Nest's `ERROR [ExceptionsHandler]` |
//! | `database_down` | P1000/`password authentication failed` (login), P1003/`database "x" does not exist`, P1001 `Can't reach database server`, P1002, P1017 `Server has closed the connection`, `connect ECONNREFUSED` to a database port, `Connection terminated unexpectedly`, `the database system is starting up` |
//! | `database_connections` | P2037, `sorry, too many clients already`, `remaining connection slots are reserved` (53300) |
//! | `pool_saturation` | P2024 `Timed out fetching a new connection from the connection pool` (with its limit and timeout), node-postgres's `timeout exceeded when trying to connect` |
//! | `lock_contention` | `deadlock detected`, `canceling statement due to lock timeout`, `could not obtain lock`, `still waiting for …Lock`, P2034 |
//! | `slow_queries` | `canceling statement due to statement timeout` (57014) |
//! | `rate_limiting` | an HTTP 429 answer |
//! | `prepared_statements` | `prepared statement "s0" already exists` (42P05), `prepared statement "s0" does not exist` (26000) |

use serde::Serialize;

use crate::diagnose::cause::Cause;
use crate::probe::log::{Level, LogLine, is_frame, strip_ansi};

/// Evidence lines kept per finding.
pub const MAX_EVIDENCE: usize = 5;
/// Characters kept of one evidence line.
pub const EVIDENCE_CHARS: usize = 240;
/// Stack frames kept as a crash's evidence.
const FRAMES: usize = 3;

/// A cause named from evidence, with the lines that show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub cause: Cause,
    /// The error's own code when the text names one or implies it: Prisma's
    /// (`P2024`), PostgreSQL's SQLSTATE (`53300`), Node's errno (`EADDRINUSE`).
    pub code: Option<String>,
    pub summary: String,
    pub fix: String,
    /// The lines that show it (trimmed, escape sequences removed, cut at
    /// [`EVIDENCE_CHARS`]), at most [`MAX_EVIDENCE`].
    pub evidence: Vec<String>,
    /// How many lines showed this cause.
    pub count: usize,
    /// Index of the first line that showed it (0 for a body).
    pub first: usize,
    /// Names and numbers taken from the texts.
    pub facts: Facts,
}

/// Names and numbers a text carried.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Facts {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_limit: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool_timeout_s: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// `host:port` the backend tried to reach, or the address it could not bind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env_var: Option<String>,
    /// The lock a statement waited for (`ShareLock on transaction 1234`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock: Option<String>,
}

/// What the caller knows about the ports, to tell a refused database
/// connection from a refused call elsewhere.
#[derive(Debug, Clone)]
pub struct Hints {
    /// Ports where a database listens (5432, PgBouncer's 6432, DATABASE_URL's).
    pub db_ports: Vec<u16>,
    /// The backend's own port: a refused connection there is not the database.
    pub backend_port: Option<u16>,
}

impl Default for Hints {
    fn default() -> Self {
        Hints {
            db_ports: vec![5432, 6432],
            backend_port: None,
        }
    }
}

mod rules;

use std::sync::LazyLock;

use regex::Regex;

use rules::{Match, classify_one};

/// One text (a log line, an answer's body) in the words of the evidence:
/// escape sequences removed, whitespace collapsed, cut at [`EVIDENCE_CHARS`].
pub fn evidence_line(s: &str) -> String {
    let one = strip_ansi(s)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if one.chars().count() > EVIDENCE_CHARS {
        let mut cut: String = one.chars().take(EVIDENCE_CHARS - 1).collect();
        cut.push('…');
        cut
    } else {
        one
    }
}

fn finding(m: Match, evidence: Vec<String>, first: usize) -> Finding {
    Finding {
        cause: m.cause,
        code: m.code.map(str::to_string),
        summary: m.summary,
        fix: m.fix,
        count: 1,
        evidence,
        first,
        facts: m.facts,
    }
}

/// The cause a text names (a message, an error string), with default [`Hints`].
pub fn classify_text(text: &str) -> Option<Finding> {
    classify_text_with(text, &Hints::default())
}

pub fn classify_text_with(text: &str, hints: &Hints) -> Option<Finding> {
    let m = classify_one(&strip_ansi(text), hints)?;
    Some(finding(m, vec![evidence_line(text)], 0))
}

/// The strings of a JSON body that carry its error (`message`, `error`,
/// `detail`, `cause`, … at any depth), or the body itself.
fn body_text(body: &str) -> String {
    fn walk(v: &serde_json::Value, key: Option<&str>, out: &mut Vec<String>) {
        use serde_json::Value;
        const KEYS: [&str; 8] = [
            "message", "error", "detail", "details", "cause", "reason", "errors", "meta",
        ];
        match v {
            Value::String(s) if key.is_none_or(|k| KEYS.contains(&k)) => out.push(s.clone()),
            Value::Array(xs) => xs.iter().for_each(|x| walk(x, key, out)),
            Value::Object(m) => {
                for (k, x) in m {
                    walk(x, Some(k), out);
                }
            }
            _ => {}
        }
    }
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(v) => {
            let mut out = Vec::new();
            walk(&v, None, &mut out);
            out.join("\n")
        }
        Err(_) => body.to_string(),
    }
}

/// What an HTTP answer says about the cause: the same texts as in the log,
/// inside the body (the real backend answers 400 `{"message":"Failed to
/// send message: <cause>"}` for database errors), and 429 as rate limiting.
/// A bare 500 `Internal server error` names nothing: the cause is in the log.
pub fn classify_body(status: u16, body: &str) -> Option<Finding> {
    classify_body_with(status, body, &Hints::default())
}

pub fn classify_body_with(status: u16, body: &str, hints: &Hints) -> Option<Finding> {
    let evidence = vec![evidence_line(&format!("HTTP {status}: {body}"))];
    if let Some(m) = classify_one(&strip_ansi(&body_text(body)), hints) {
        return Some(finding(m, evidence, 0));
    }
    (status == 429).then(|| Finding {
        cause: Cause::RateLimiting,
        code: Some("429".into()),
        summary: "The backend answered 429 Too Many Requests: a rate limiter is active.".into(),
        fix: Cause::RateLimiting.fix().into(),
        evidence,
        count: 1,
        first: 0,
        facts: Facts::default(),
    })
}

/// An error header line of an uncaught exception (`Error: …`, `TypeError: …`).
static ERROR_HEAD: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r"^(?:Uncaught\s+)?(?:[A-Z][A-Za-z0-9_]*)?(?:Error|Exception)(?:\s\[[A-Z0-9_]+\])?:\s",
    )
    .ok()
});
static UNCAUGHT: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"(?i)uncaughtexception|unhandledrejection|unhandled (?:promise )?rejection|uncaught exception").ok()
});

/// An uncaught exception starting at `lines[i]`: its summary and its
/// evidence (the header and its first stack frames).
fn crash_at(lines: &[LogLine], i: usize) -> Option<(String, Vec<String>)> {
    let line = &lines[i];
    if line.is_stack_frame() {
        return None;
    }
    // The frames below the header, within the same record: stop at the next
    // line that starts a record of its own (a time, a Nest or Prisma prefix).
    let following = || -> Vec<String> {
        lines[i + 1..]
            .iter()
            .take(12)
            .take_while(|l| l.is_stack_frame() || (l.time.is_none() && l.context.is_none()))
            .filter(|l| l.is_stack_frame())
            .take(FRAMES)
            .map(|l| evidence_line(&l.raw))
            .collect()
    };
    let head = evidence_line(&line.raw);
    let stack = line.detail.iter().find(|d| d.contains("\n    at "));
    let stack_frames = || -> Vec<String> {
        stack
            .map(|s| {
                s.lines()
                    .filter(|l| is_frame(l))
                    .take(FRAMES)
                    .map(evidence_line)
                    .collect()
            })
            .unwrap_or_default()
    };
    if line.context.as_deref() == Some("ExceptionsHandler") {
        let mut ev = vec![head];
        ev.extend(following());
        ev.extend(stack_frames());
        ev.truncate(1 + FRAMES);
        let what = evidence_line(&line.message);
        return Some((
            format!(
                "A request handler threw an exception that Nest's default filter answered with 500{}.",
                if what.is_empty() {
                    String::new()
                } else {
                    format!(": {what}")
                }
            ),
            ev,
        ));
    }
    let error_level = line.level.is_none_or(|l| l >= Level::Error);
    // A JSON line carrying an error with its stack.
    if error_level && let Some(stack) = stack {
        let mut ev = vec![head];
        ev.extend(stack_frames());
        let first = stack.lines().next().unwrap_or_default();
        return Some((
            format!("The backend threw an exception: {}", evidence_line(first)),
            ev,
        ));
    }
    let header = ERROR_HEAD
        .as_ref()
        .is_some_and(|r| r.is_match(line.raw.trim_start()));
    let frames = following();
    if (header && !frames.is_empty()) || (error_level && is(&UNCAUGHT, &line.raw)) {
        let mut ev = vec![head.clone()];
        ev.extend(frames);
        return Some((
            format!("The backend threw an uncaught exception: {head}"),
            ev,
        ));
    }
    None
}

fn is(r: &LazyLock<Option<Regex>>, text: &str) -> bool {
    r.as_ref().is_some_and(|r| r.is_match(text))
}

struct Acc {
    rank: u8,
    finding: Finding,
}

fn add(acc: &mut Vec<Acc>, rank: u8, f: Finding) {
    match acc.iter_mut().find(|a| a.finding.cause == f.cause) {
        Some(a) => {
            a.finding.count += 1;
            for e in &f.evidence {
                if a.finding.evidence.len() < MAX_EVIDENCE && !a.finding.evidence.contains(e) {
                    a.finding.evidence.push(e.clone());
                }
            }
            // A more specific text of the same cause names it better.
            if rank > a.rank {
                let (evidence, count, first) = (
                    std::mem::take(&mut a.finding.evidence),
                    a.finding.count,
                    a.finding.first,
                );
                a.rank = rank;
                a.finding = Finding {
                    evidence,
                    count,
                    first,
                    ..f
                };
            }
        }
        None => {
            let mut f = f;
            f.evidence.truncate(MAX_EVIDENCE);
            acc.push(Acc { rank, finding: f });
        }
    }
}

/// The causes a stretch of log names, one finding per cause, the most
/// specific first (a missing column explains the exception it throws; a
/// refused database connection explains the crash that follows), then the
/// earliest.
pub fn classify_lines(lines: &[LogLine]) -> Vec<Finding> {
    classify_lines_with(lines, &Hints::default())
}

pub fn classify_lines_with(lines: &[LogLine], hints: &Hints) -> Vec<Finding> {
    let mut acc: Vec<Acc> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        // A warning that a setting is missing (`REDIS_URL not set, using
        // memory`) is not the process stopping.
        let below_error = line.level.is_some_and(|l| l < Level::Error);
        if let Some(m) = classify_one(&line.text(), hints)
            && !(m.cause == Cause::Crash && below_error)
        {
            let rank = m.rank;
            add(
                &mut acc,
                rank,
                finding(m, vec![evidence_line(&line.raw)], i),
            );
        }
        if let Some((summary, evidence)) = crash_at(lines, i) {
            let f = Finding {
                cause: Cause::Crash,
                code: None,
                summary,
                fix: Cause::Crash.fix().into(),
                evidence,
                count: 1,
                first: i,
                facts: Facts::default(),
            };
            add(&mut acc, CRASH_RANK, f);
        }
    }
    acc.sort_by(|a, b| {
        b.rank
            .cmp(&a.rank)
            .then(a.finding.first.cmp(&b.finding.first))
    });
    acc.into_iter().map(|a| a.finding).collect()
}

/// An exception without a better name ranks below every known text.
const CRASH_RANK: u8 = 10;

/// When a process that is no longer running stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Before it served a request.
    StartUp,
    /// After it served requests.
    Running,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    pub phase: Phase,
    pub finding: Finding,
}

static START: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"(?i)starting nest application|^> node |^> nest start").ok());
static SERVED: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)"(?:method|statusCode)"\s*:|\b(?:GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS)\s+/\S*\s+(?:- )?\d{3}\b|request completed"#,
    )
    .ok()
});
static BANNER: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"(?i)(?:application|server|app)\s+(?:is\s+)?(?:running|listening|started)\s+(?:on|at)\s+\S+").ok()
});

/// From the end of the log of a process that is not running: did it stop
/// at start-up or after serving requests, and why. Only the lines after
/// the last start (Nest's `Starting Nest application...`, npm's `> node …`)
/// count. The banner `Application is running on …` does not prove that it
/// listened: the seed's backend prints it before `listen`.
pub fn exit_reason(lines: &[LogLine]) -> Option<Exit> {
    exit_reason_with(lines, &Hints::default())
}

pub fn exit_reason_with(lines: &[LogLine], hints: &Hints) -> Option<Exit> {
    let start = lines
        .iter()
        .rposition(|l| is(&START, l.raw.trim()) || is(&START, &l.message))
        .unwrap_or(0);
    let run = &lines[start..];
    let served = run
        .iter()
        .any(|l| is(&SERVED, &l.raw) || l.context.as_deref() == Some("ExceptionsHandler"));
    let mut f = match classify_lines_with(run, hints).into_iter().next() {
        Some(f) => f,
        None if !served => {
            // No known text: the last error line, if any, is the best witness.
            let (i, last) = run
                .iter()
                .enumerate()
                .rev()
                .find(|(_, l)| l.level.is_some_and(|v| v >= Level::Error))?;
            Finding {
                cause: Cause::Crash,
                code: None,
                summary: format!("Its last error: {}", evidence_line(&last.text())),
                fix: Cause::Crash.fix().into(),
                evidence: vec![evidence_line(&last.raw)],
                count: 1,
                first: i,
                facts: Facts::default(),
            }
        }
        None => return None,
    };
    f.first += start;
    let phase = if served {
        Phase::Running
    } else {
        Phase::StartUp
    };
    f.summary = match phase {
        Phase::StartUp => {
            let mut s = format!("The backend exited at start-up. {}", f.summary);
            if let Some(b) = run.iter().find_map(|l| BANNER.as_ref()?.find(&l.message)) {
                s.push_str(&format!(
                    " (Its banner \"{}\" does not show that it listened: it is printed before listening.)",
                    b.as_str()
                ));
            }
            s
        }
        Phase::Running => format!("The backend stopped after serving requests. {}", f.summary),
    };
    Some(Exit { phase, finding: f })
}

/// [`exit_reason`] when the process exited at start-up.
pub fn startup_exit(lines: &[LogLine]) -> Option<Finding> {
    exit_reason(lines)
        .filter(|e| e.phase == Phase::StartUp)
        .map(|e| e.finding)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::log::parse_line;

    fn lines(text: &str) -> Vec<LogLine> {
        crate::probe::log::clean(text.as_bytes())
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(parse_line)
            .collect()
    }

    fn cause_of(text: &str) -> Option<Cause> {
        classify_text(text).map(|f| f.cause)
    }

    /// One text per documented message, in several wrappings.
    #[test]
    fn documented_texts_name_their_cause() {
        let table: &[(&str, Cause, Option<&str>)] = &[
            (
                "prisma:error \nInvalid `prisma.message.create()` invocation:\n\nThe column `messageType` does not exist in the current database.",
                Cause::SchemaDrift,
                Some("P2022"),
            ),
            (
                r#"ERROR:  column "messageType" of relation "messages" does not exist at character 42"#,
                Cause::SchemaDrift,
                Some("42703"),
            ),
            (
                "column m.read_at does not exist",
                Cause::SchemaDrift,
                Some("42703"),
            ),
            (
                "The table `public.message_reads` does not exist in the current database.",
                Cause::SchemaDrift,
                Some("P2021"),
            ),
            (
                r#"error: relation "attachments" does not exist"#,
                Cause::SchemaDrift,
                Some("42P01"),
            ),
            (
                "PrismaClientKnownRequestError: code P2022",
                Cause::SchemaDrift,
                Some("P2022"),
            ),
            (
                "<--- Last few GCs --->\nFATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory",
                Cause::MemoryGrowth,
                None,
            ),
            (
                "error: Environment variable not found: DATABASE_URL.\n  -->  schema.prisma:10",
                Cause::Crash,
                Some("P1012"),
            ),
            ("Error: DATABASE_URL is not set", Cause::Crash, None),
            (
                "Authentication failed against database server at `db.internal`, the provided database credentials for `chat` are not valid.",
                Cause::DatabaseDown,
                Some("P1000"),
            ),
            (
                r#"error: password authentication failed for user "postgres""#,
                Cause::DatabaseDown,
                Some("28P01"),
            ),
            (
                "Database `chat_backend_db` does not exist on the database server at `localhost:5432`.",
                Cause::DatabaseDown,
                Some("P1003"),
            ),
            (
                r#"FATAL:  database "chat_backend_db" does not exist"#,
                Cause::DatabaseDown,
                Some("3D000"),
            ),
            (
                "FATAL:  sorry, too many clients already",
                Cause::DatabaseConnections,
                Some("53300"),
            ),
            (
                "FATAL:  remaining connection slots are reserved for non-replication superuser connections",
                Cause::DatabaseConnections,
                Some("53300"),
            ),
            (
                "Too many database connections opened: FATAL: sorry, too many clients already",
                Cause::DatabaseConnections,
                Some("P2037"),
            ),
            (
                "{ code: '53300', severity: 'FATAL' }",
                Cause::DatabaseConnections,
                Some("53300"),
            ),
            (
                r#"prisma:error Invalid `prisma.user.findFirst()` invocation: Error occurred during query execution: ConnectorError(ConnectorError { user_facing_error: None, kind: QueryError(PostgresError { code: "42P05", message: "prepared statement \"s0\" already exists", severity: "ERROR", detail: None, column: None, hint: None }) })"#,
                Cause::PreparedStatements,
                Some("42P05"),
            ),
            (
                r#"ERROR:  prepared statement "s3" does not exist"#,
                Cause::PreparedStatements,
                Some("26000"),
            ),
            (
                "{ code: '26000', severity: 'ERROR' }",
                Cause::PreparedStatements,
                Some("26000"),
            ),
            (
                "Error: listen EADDRINUSE: address already in use :::3001",
                Cause::Crash,
                Some("EADDRINUSE"),
            ),
            (
                "Timed out fetching a new connection from the connection pool. More info: http://pris.ly/d/connection-pool (Current connection pool timeout: 10, connection limit: 5)",
                Cause::PoolSaturation,
                Some("P2024"),
            ),
            (
                "Error: timeout exceeded when trying to connect",
                Cause::PoolSaturation,
                None,
            ),
            (
                "ERROR:  deadlock detected",
                Cause::LockContention,
                Some("40P01"),
            ),
            (
                "ERROR:  canceling statement due to lock timeout",
                Cause::LockContention,
                Some("55P03"),
            ),
            (
                "LOG:  process 8813 still waiting for ShareLock on transaction 1234 after 1000.052 ms",
                Cause::LockContention,
                None,
            ),
            (
                "Transaction failed due to a write conflict or a deadlock. Please retry your transaction",
                Cause::LockContention,
                Some("P2034"),
            ),
            (
                "ERROR:  canceling statement due to statement timeout",
                Cause::SlowQueries,
                Some("57014"),
            ),
            (
                "Can't reach database server at `localhost:5432`\n\nPlease make sure your database server is running at `localhost:5432`.",
                Cause::DatabaseDown,
                Some("P1001"),
            ),
            (
                "connect ECONNREFUSED 127.0.0.1:5432",
                Cause::DatabaseDown,
                Some("ECONNREFUSED"),
            ),
            (
                "Error: connect ECONNREFUSED ::1:6432",
                Cause::DatabaseDown,
                Some("ECONNREFUSED"),
            ),
            (
                "PrismaClientInitializationError: connect ECONNREFUSED 10.0.0.7:15432 (database)",
                Cause::DatabaseDown,
                Some("ECONNREFUSED"),
            ),
            (
                "Server has closed the connection.",
                Cause::DatabaseDown,
                Some("P1017"),
            ),
            (
                "Error: Connection terminated unexpectedly",
                Cause::DatabaseDown,
                None,
            ),
            (
                "FATAL:  the database system is starting up",
                Cause::DatabaseDown,
                Some("57P03"),
            ),
            (
                "Failed to connect to database: timeout",
                Cause::DatabaseDown,
                None,
            ),
        ];
        for (text, cause, code) in table {
            let f = classify_text(text).unwrap_or_else(|| panic!("nothing for {text:?}"));
            assert_eq!(f.cause, *cause, "{text}");
            assert_eq!(f.code.as_deref(), *code, "{text}");
            assert!(!f.summary.is_empty() && !f.fix.is_empty());
            // The same text, ANSI-coloured and JSON-wrapped in a log.
            let coloured = format!("\x1b[31m{}\x1b[39m", text.replace('\n', " "));
            assert_eq!(cause_of(&coloured), Some(*cause), "coloured {text}");
            let json = serde_json::json!({"level": 50, "time": 1_700_000_000_000u64, "msg": text})
                .to_string();
            let found = classify_lines(&[parse_line(&json)]);
            assert_eq!(found.first().map(|f| f.cause), Some(*cause), "json {text}");
            // Inside a 400 body, as the real backend answers database errors.
            let body = serde_json::json!({"message": format!("Failed to send message: {text}"), "error": "Bad Request", "statusCode": 400}).to_string();
            let b = classify_body(400, &body);
            assert_eq!(b.as_ref().map(|f| f.cause), Some(*cause), "body {text}");
            assert!(b.is_some_and(|f| f.evidence[0].starts_with("HTTP 400: ")));
        }
    }

    #[test]
    fn facts_are_extracted() {
        let f = classify_text(
            "Timed out fetching a new connection from the connection pool. More info: http://pris.ly/d/connection-pool (Current connection pool timeout: 30, connection limit: 2)",
        );
        let f = f.expect("P2024");
        assert_eq!(
            (f.facts.connection_limit, f.facts.pool_timeout_s),
            (Some(2), Some(30))
        );
        assert!(
            f.summary.contains("connection_limit 2, pool_timeout 30 s"),
            "{}",
            f.summary
        );
        assert!(f.fix.contains("(now 2)"));

        let c = classify_text("The column `messageType` does not exist in the current database.")
            .expect("drift");
        assert_eq!(c.facts.column.as_deref(), Some("messageType"));
        assert!(c.summary.contains("`messageType`"));
        let pg =
            classify_text(r#"column "type" of relation "messages" does not exist"#).expect("drift");
        assert_eq!(
            (pg.facts.column.as_deref(), pg.facts.table.as_deref()),
            (Some("type"), Some("messages"))
        );
        let t = classify_text(
            "The table `public.message_reads` does not exist in the current database.",
        )
        .expect("drift");
        assert_eq!(t.facts.table.as_deref(), Some("public.message_reads"));

        let port = classify_text("Error: listen EADDRINUSE: address already in use 0.0.0.0:8080")
            .expect("port");
        assert_eq!(port.facts.port, Some(8080));
        assert!(port.fix.contains(":8080"));
        let v6 = classify_text("listen EADDRINUSE: address already in use :::3001").expect("port");
        assert_eq!(v6.facts.port, Some(3001));

        let down = classify_text("connect ECONNREFUSED 127.0.0.1:5433 prisma").expect("down");
        assert_eq!(
            (down.facts.address.as_deref(), down.facts.port),
            (Some("127.0.0.1:5433"), Some(5433))
        );
        let reach =
            classify_text("Can't reach database server at `db.example.com:6543`").expect("down");
        assert_eq!(reach.facts.port, Some(6543));

        let user =
            classify_text(r#"password authentication failed for user "chat_app""#).expect("auth");
        assert_eq!(user.facts.user.as_deref(), Some("chat_app"));
        let env =
            classify_text("Environment variable not found: SHADOW_DATABASE_URL.").expect("env");
        assert_eq!(env.facts.env_var.as_deref(), Some("SHADOW_DATABASE_URL"));
        let lock = classify_text("process 8813 still waiting for AccessExclusiveLock on relation 16384 of database 5 after 1000.1 ms").expect("lock");
        assert_eq!(
            lock.facts.lock.as_deref(),
            Some("AccessExclusiveLock on relation 16384 of database 5")
        );
    }

    #[test]
    fn ports_decide_refused_connections() {
        // The backend's own port, or a port nobody called a database: not database_down.
        let hints = Hints {
            db_ports: vec![5432],
            backend_port: Some(3001),
        };
        assert!(classify_text_with("connect ECONNREFUSED 127.0.0.1:3001", &hints).is_none());
        assert!(
            classify_text_with(
                "connect ECONNREFUSED 127.0.0.1:3001 (database check)",
                &hints
            )
            .is_none()
        );
        assert!(classify_text("connect ECONNREFUSED 127.0.0.1:6379").is_none());
        assert!(classify_text("[ioredis] db 0: connect ECONNREFUSED 10.0.0.5:6380").is_none());
        assert!(classify_text("cache db: connect ECONNREFUSED 10.0.0.5:6379").is_none());
        // A database on a custom port the caller knows from DATABASE_URL.
        let custom = Hints {
            db_ports: vec![25432],
            backend_port: None,
        };
        assert_eq!(
            classify_text_with("connect ECONNREFUSED 10.1.2.3:25432", &custom).map(|f| f.cause),
            Some(Cause::DatabaseDown)
        );
        assert_eq!(
            classify_text("getaddrinfo ENOTFOUND postgres:5432").map(|f| f.cause),
            Some(Cause::DatabaseDown)
        );
    }

    #[test]
    fn healthy_logs_and_innocent_words_name_nothing() {
        let healthy = "\x1b[32m[Nest] 812  - \x1b[39m10/21/2025, 5:50:38 PM \x1b[32m    LOG\x1b[39m \x1b[33m[NestFactory] \x1b[39m\x1b[32mStarting Nest application...\x1b[39m\x1b[33m +2ms\x1b[39m
[Nest] 812  - 10/21/2025, 5:50:38 PM     LOG [RoutesResolver] ChatController {/api/v1/chat}: +1ms
[Nest] 812  - 10/21/2025, 5:50:38 PM     LOG [RouterExplorer] Mapped {/api/v1/chat/conversations/:conversationId/messages, POST} route +0ms
[Nest] 812  - 10/21/2025, 5:50:39 PM     LOG [NestApplication] Nest application successfully started +3ms
Application is running on http://localhost:3001
{\"level\":\"info\",\"message\":\"health\",\"database\":{\"overall\":\"healthy\",\"errors\":0},\"timestamp\":\"2025-10-21T17:50:40.000Z\"}
{\"type\":\"request\",\"method\":\"POST\",\"url\":\"/api/v1/chat/conversations/8822dd87-d0c2-42be-93d2-1c0cb492e351/messages\",\"requestId\":\"r1\"}
{\"type\":\"response\",\"method\":\"POST\",\"statusCode\":201,\"durationMs\":12,\"requestId\":\"r1\"}
[Nest] 812  - 10/21/2025, 5:50:41 PM     LOG [Health] errors: 0, error rate 0.00%, lastError: none
[Nest] 812  - 10/21/2025, 5:50:41 PM     LOG [Chat] error handling enabled; ErrorInterceptor registered
[Nest] 812  - 10/21/2025, 5:50:41 PM    WARN [Config] Rate limiting disabled (DISABLE_RATE_LIMIT=true)
prisma:query SELECT 1
[Nest] 812  - 10/21/2025, 5:50:41 PM    WARN [Cache] REDIS_URL is not set, using an in-memory cache
took 53300 ms in total
GET /api/v1/health 200 3 ms
";
        let ls = lines(healthy);
        assert_eq!(ls.len(), 15);
        assert_eq!(classify_lines(&ls), Vec::new());
        assert_eq!(exit_reason(&ls), None);
        assert!(
            classify_body(
                500,
                r#"{"statusCode":500,"message":"Internal server error"}"#
            )
            .is_none()
        );
        assert!(classify_body(400, r#"{"message":["content should not be empty"],"error":"Bad Request","statusCode":400}"#).is_none());
        assert!(classify_body(403, "You are not a participant in this conversation").is_none());
        assert!(classify_text("").is_none());
    }

    #[test]
    fn a_nest_500_with_drift_names_the_drift_first() {
        let log = "[Nest] 4242  - 03/02/2026, 11:04:09 AM   ERROR [ExceptionsHandler] 
Invalid `prisma.message.create()` invocation:


The column `messageType` does not exist in the current database.
PrismaClientKnownRequestError: 
Invalid `prisma.message.create()` invocation:
    at In.handleRequestError (/app/node_modules/@prisma/client/runtime/library.js:121:7315)
    at In.handleAndLogRequestError (/app/node_modules/@prisma/client/runtime/library.js:121:6623)
    at In.request (/app/node_modules/@prisma/client/runtime/library.js:121:6307)
    at async ChatService.sendMessage (/app/dist/chat/chat.service.js:88:25)
";
        let found = classify_lines(&lines(log));
        let causes: Vec<Cause> = found.iter().map(|f| f.cause).collect();
        assert_eq!(causes, [Cause::SchemaDrift, Cause::Crash]);
        assert_eq!(
            found[0].evidence,
            ["The column `messageType` does not exist in the current database."]
        );
        assert_eq!(found[0].first, 2);
        let crash = &found[1];
        assert!(
            crash.summary.contains("default filter answered with 500"),
            "{}",
            crash.summary
        );
        assert_eq!(crash.evidence.len(), 1 + FRAMES);
        assert!(crash.evidence[1].starts_with("at In.handleRequestError"));
    }

    #[test]
    fn uncaught_exceptions_with_stacks() {
        let log = "/app/dist/chat/chat.service.js:120
        throw new Error('boom after 100 requests');
        ^

Error: boom after 100 requests
    at ChatService.sendMessage (/app/dist/chat/chat.service.js:120:15)
    at ChatController.send (/app/dist/chat/chat.controller.js:30:33)
    at /app/node_modules/@nestjs/core/router/router-execution-context.js:38:29
    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)

Node.js v20.11.0
";
        let found = classify_lines(&lines(log));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].cause, Cause::Crash);
        assert_eq!(found[0].evidence[0], "Error: boom after 100 requests");
        assert_eq!(found[0].evidence.len(), 1 + FRAMES);

        // pino with a serialised error and its stack.
        let pino = r#"{"level":50,"time":1700000000000,"err":{"type":"TypeError","message":"Cannot read properties of undefined (reading 'id')","stack":"TypeError: Cannot read properties of undefined (reading 'id')\n    at ChatService.send (/app/dist/chat.service.js:10:5)\n    at processTicksAndRejections (node:internal/process/task_queues:95:5)"},"msg":"uncaught"}"#;
        let found = classify_lines(&[parse_line(pino)]);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].cause, Cause::Crash);
        assert_eq!(found[0].evidence.len(), 3);
        assert!(found[0].summary.contains("Cannot read properties"));

        // Nest's JSON logger: the default filter's line with `stack` as an array.
        let nest = r#"{"level":"error","pid":7,"timestamp":1700000000000,"message":"Cannot read properties of undefined (reading 'id')","context":"ExceptionsHandler","stack":["TypeError: Cannot read properties of undefined (reading 'id')\n    at ChatService.send (/app/dist/chat.service.js:10:5)\n    at /app/node_modules/@nestjs/core/router/router-execution-context.js:38:29"]}"#;
        let found = classify_lines(&[parse_line(nest)]);
        assert_eq!(found.len(), 1);
        assert!(
            found[0]
                .summary
                .contains("default filter answered with 500")
        );
        assert_eq!(found[0].evidence.len(), 3);
        assert!(found[0].evidence[1].starts_with("at ChatService.send"));

        // An Error line without a stack, and a warning about errors: no crash.
        assert!(classify_lines(&lines("Error: something odd\nnext line")).is_empty());
        let warn = r#"{"level":40,"msg":"retrying","err":{"message":"x","stack":"Error: x\n    at a (b.js:1:1)"}}"#;
        assert!(classify_lines(&[parse_line(warn)]).is_empty());
    }

    #[test]
    fn one_finding_per_cause_ranked_with_bounded_evidence() {
        let mut log = String::new();
        for i in 0..20 {
            log.push_str(&format!(
                "prisma:error Can't reach database server at `localhost:5432` (attempt {i})\n"
            ));
        }
        log.push_str("prisma:error Timed out fetching a new connection from the connection pool. More info: http://pris.ly/d/connection-pool (Current connection pool timeout: 10, connection limit: 5)\n");
        log.push_str(&format!("prisma:error {}\n", "x".repeat(1000)));
        let found = classify_lines(&lines(&log));
        let causes: Vec<Cause> = found.iter().map(|f| f.cause).collect();
        // P1001 beside P2024 under load: the pool explains it.
        assert_eq!(causes, [Cause::PoolSaturation, Cause::DatabaseDown]);
        assert_eq!(found[0].facts.connection_limit, Some(5));
        assert_eq!(found[1].count, 20);
        assert_eq!(found[1].evidence.len(), MAX_EVIDENCE);
        assert_eq!(found[1].first, 0);
        let long = evidence_line(&format!("\x1b[31m  {}  \x1b[0m", "é".repeat(1000)));
        assert_eq!(long.chars().count(), EVIDENCE_CHARS);
        assert!(long.ends_with('…') && !long.contains('\x1b'));
    }

    #[test]
    fn bodies() {
        let b = classify_body(400, r#"{"success":false,"message":"Failed to send message: connect ECONNREFUSED 127.0.0.1:5432"}"#).expect("down");
        assert_eq!(b.cause, Cause::DatabaseDown);
        assert_eq!(b.facts.port, Some(5432));
        // PostgreSQL's quotes survive JSON escaping.
        let e = classify_body(
            500,
            r#"{"error":{"message":"column \"messageType\" does not exist"}}"#,
        )
        .expect("drift");
        assert_eq!(e.facts.column.as_deref(), Some("messageType"));
        let t = classify_body(
            503,
            "<html><body>Too many database connections opened</body></html>",
        )
        .expect("html");
        assert_eq!(t.cause, Cause::DatabaseConnections);
        let r = classify_body(
            429,
            r#"{"success":false,"error":"Rate limit exceeded","retryAfter":900}"#,
        )
        .expect("429");
        assert_eq!(r.cause, Cause::RateLimiting);
        // Ids and other fields do not count as the error's text.
        assert!(classify_body(400, r#"{"message":"bad","id":"P2024"}"#).is_none());
    }

    #[test]
    fn exit_at_start_up_because_postgres_is_down() {
        let log = "\x1b[32m[Nest] 9001  - \x1b[39m12/01/2026, 9:00:00 AM \x1b[32m    LOG\x1b[39m \x1b[33m[NestFactory] \x1b[39m\x1b[32mStarting Nest application...\x1b[39m
[Nest] 9001  - 12/01/2026, 9:00:00 AM     LOG [InstanceLoader] AppModule dependencies initialized +12ms
Application is running on http://localhost:3001
prisma:error Can't reach database server at `localhost:5432`

Please make sure your database server is running at `localhost:5432`.
[Nest] 9001  - 12/01/2026, 9:00:01 AM   ERROR [PrismaService] Failed to connect to database
PrismaClientInitializationError: Can't reach database server at `localhost:5432`
    at t (/app/node_modules/@prisma/client/runtime/library.js:112:2488)
    at async PrismaService.onModuleInit (/app/dist/prisma/prisma.service.js:24:9)
";
        let exit = exit_reason(&lines(log)).expect("an exit");
        assert_eq!(exit.phase, Phase::StartUp);
        assert_eq!(exit.finding.cause, Cause::DatabaseDown);
        assert_eq!(
            exit.finding.facts.address.as_deref(),
            Some("localhost:5432")
        );
        assert!(
            exit.finding
                .summary
                .starts_with("The backend exited at start-up.")
        );
        assert!(
            exit.finding.summary.contains("printed before listening"),
            "{}",
            exit.finding.summary
        );
        assert_eq!(
            startup_exit(&lines(log)).map(|f| f.cause),
            Some(Cause::DatabaseDown)
        );
    }

    #[test]
    fn exit_at_start_up_on_a_taken_port_and_a_missing_variable() {
        let port =
            "[Nest] 77  - 12/01/2026, 9:00:00 AM     LOG [NestFactory] Starting Nest application...
Application is running on http://localhost:3001
node:net:1908
    const ex = new UVExceptionWithHostPort(err, 'listen', address, port);
               ^

Error: listen EADDRINUSE: address already in use :::3001
    at Server.setupListenHandle [as _listen2] (node:net:1908:16)
    at listenInCluster (node:net:1965:12)
";
        let f = startup_exit(&lines(port)).expect("port");
        assert_eq!(
            (f.cause, f.code.as_deref(), f.facts.port),
            (Cause::Crash, Some("EADDRINUSE"), Some(3001))
        );
        assert!(
            f.evidence
                .iter()
                .any(|e| e.starts_with("at Server.setupListenHandle"))
        );

        let env = r#"{"level":"error","message":"error: Environment variable not found: DATABASE_URL.\n  -->  schema.prisma:10\n   | \n 9 |   provider = \"postgresql\"\n10 |   url      = env(\"DATABASE_URL\")","timestamp":"2026-12-01T09:00:00.000Z"}"#;
        let f = startup_exit(&[parse_line(env)]).expect("env");
        assert_eq!(f.facts.env_var.as_deref(), Some("DATABASE_URL"));

        // An unknown last error at start-up is the witness.
        let other = lines(
            "[Nest] 1  - 1/1/2026, 1:00:00 AM     LOG [NestFactory] Starting Nest application...\n[Nest] 1  - 1/1/2026, 1:00:00 AM   ERROR [Bootstrap] Config file ./config/app.yaml is invalid",
        );
        let f = startup_exit(&other).expect("last error");
        assert_eq!(f.cause, Cause::Crash);
        assert!(f.summary.contains("app.yaml is invalid"));
    }

    #[test]
    fn a_crash_after_serving_requests_is_not_a_start_up_exit() {
        let log = r#"[Nest] 5  - 1/1/2026, 1:00:00 AM     LOG [NestFactory] Starting Nest application...
Application is running on http://localhost:3001
{"type":"request","method":"POST","url":"/api/v1/chat/conversations/c/messages","requestId":"a1"}
{"type":"response","method":"POST","statusCode":201,"durationMs":9,"requestId":"a1"}

<--- JS stacktrace --->
FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory
"#;
        let exit = exit_reason(&lines(log)).expect("exit");
        assert_eq!(exit.phase, Phase::Running);
        assert_eq!(exit.finding.cause, Cause::MemoryGrowth);
        assert!(
            exit.finding
                .summary
                .starts_with("The backend stopped after serving requests.")
        );
        assert_eq!(startup_exit(&lines(log)), None);

        // Only the last run counts: an old failure before a restart is history.
        let restarted = format!("Error: listen EADDRINUSE: address already in use :::3001\n{log}");
        let exit = exit_reason(&lines(&restarted)).expect("exit");
        assert_eq!(exit.finding.cause, Cause::MemoryGrowth);
        assert_eq!(exit.finding.first, 6);
    }

    /// Garbage and fragments of known texts, cut anywhere (also inside
    /// multi-byte characters): parsing and classifying never panic, and
    /// evidence stays bounded.
    #[test]
    fn hostile_input_never_panics() {
        let pieces: [&[u8]; 14] = [
            b"Can't reach database server at `",
            b"connect ECONNREFUSED ",
            b"::1:",
            b"(Current connection pool timeout: ",
            b", connection limit: ",
            b"The column `",
            b"\x1b[31m",
            b"\x1b]0;",
            "é€😀".as_bytes(),
            b"{\"level\":50,\"msg\":\"",
            b"\n    at X (y.js:1:2)\n",
            b"Error: ",
            b"\xff\xfe\x00\r",
            b"[Nest] 1  - x   ERROR [ExceptionsHandler] ",
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..300 {
            let mut bytes = Vec::new();
            for _ in 0..(next() % 40) {
                let r = next();
                if r % 3 == 0 {
                    bytes.extend((0..r % 17).map(|_| (next() % 256) as u8));
                } else {
                    let p = pieces[(r % pieces.len() as u64) as usize];
                    let cut = (next() as usize) % (p.len() + 1);
                    bytes.extend_from_slice(&p[..cut]);
                }
            }
            let ls = lines(&String::from_utf8_lossy(&bytes));
            for f in classify_lines(&ls) {
                assert!(f.evidence.len() <= MAX_EVIDENCE);
                assert!(
                    f.evidence
                        .iter()
                        .all(|e| e.chars().count() <= EVIDENCE_CHARS)
                );
            }
            let _ = exit_reason(&ls);
            let _ = classify_body(400, &String::from_utf8_lossy(&bytes));
        }
    }
}
