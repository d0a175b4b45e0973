//! `log_scan`: the backend's log has no errors: the last N lines, or what
//! was written since the run began. JSON log lines (pino, winston, bunyan)
//! are judged by their level, so `"errors":0` in an info line is no error.
//!
//! `observe` reads the log's tail; `judge` finds the problem lines.

use super::util::judged;
use super::{Check, Ctx, Observation, Status};
use crate::diagnose::Fault;
use crate::support::shell;
use regex::Regex;
use schemars::JsonSchema;
use serde::Deserialize;
use std::io::{Read, Seek, SeekFrom};

pub struct LogScan;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The log file; empty or absent: the backend's log as the run found
    /// it (the playbook's `backend_log`, else where the process listening on
    /// the backend's port writes its output, else /tmp/backend.log).
    #[serde(default)]
    pub path: String,
    /// What counts as a problem, a regular expression (case-insensitive by
    /// default): error, warn, fail, exception, fatal, panic.
    #[serde(default = "default_pattern")]
    pub pattern: String,
    /// Lines matching any of these are not problems.
    #[serde(default)]
    pub ignore: Vec<String>,
    /// Scan the last N lines (default 200)…
    #[serde(default = "default_lines")]
    pub lines: usize,
    /// …or `run`: only what was written since this run began.
    pub since: Option<Since>,
    /// Judge JSON lines by their `level` field instead of the pattern
    /// (default true).
    #[serde(default = "yes")]
    pub json_levels: bool,
    /// Status when something matches: `fail` (default) or `warn`.
    #[serde(default)]
    pub severity: Severity,
    /// Status when the file does not exist: `fail` (default) or `warn` (a
    /// backend that logs to journald or docker has no file).
    #[serde(default)]
    pub if_missing: Severity,
    /// Matching lines shown as evidence (default 10).
    #[serde(default = "default_show")]
    pub show: usize,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Since {
    Run,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    #[default]
    Fail,
    Warn,
}

fn default_pattern() -> String {
    r"\b(error|err|warn|warning|fail|failed|failure|exception|fatal|panic|unhandled)\b".into()
}
fn default_lines() -> usize {
    200
}
fn default_show() -> usize {
    10
}
fn yes() -> bool {
    true
}

/// At most this much of a log is read.
const MAX_BYTES: u64 = 32 << 20;

/// A file's identity and length, to tell growth from rotation.
fn mark(path: &str) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.ino(), m.len()))
}

/// The bytes to scan: from `offset` to the end, or the last `lines` lines.
fn read_tail(path: &str, from: Option<u64>, lines: usize) -> std::io::Result<(Vec<u8>, bool)> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    if let Some(off) = from {
        let start = off.max(len.saturating_sub(MAX_BYTES));
        f.seek(SeekFrom::Start(start))?;
        let mut buf = Vec::new();
        f.take(len - start).read_to_end(&mut buf)?;
        return Ok((buf, start > off));
    }
    // Read backwards in chunks until enough newlines are in hand.
    let mut buf: Vec<u8> = Vec::new();
    let mut pos = len;
    let chunk = 64 * 1024;
    while pos > 0 && (len - pos) < MAX_BYTES {
        let step = chunk.min(pos);
        pos -= step;
        f.seek(SeekFrom::Start(pos))?;
        let mut part = vec![0u8; step as usize];
        f.read_exact(&mut part)?;
        part.extend_from_slice(&buf);
        buf = part;
        if buf.iter().filter(|b| **b == b'\n').count() > lines {
            break;
        }
    }
    let text_lines: Vec<&[u8]> = buf.split(|b| *b == b'\n').collect();
    let trimmed = if text_lines.last().is_some_and(|l| l.is_empty()) {
        &text_lines[..text_lines.len() - 1]
    } else {
        &text_lines[..]
    };
    let keep = &trimmed[trimmed.len().saturating_sub(lines)..];
    Ok((keep.join(&b'\n'), false))
}

/// The level of a JSON log line, if it has one: "error", "warn", "info"…
/// (pino's numbers: 60 fatal, 50 error, 40 warn, 30 info).
fn json_level(line: &str) -> Option<String> {
    let t = line.trim();
    if !t.starts_with('{') {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(t).ok()?;
    let lv = ["level", "severity", "lvl", "log.level"]
        .iter()
        .find_map(|k| v.get(*k))?;
    Some(match lv {
        serde_json::Value::Number(n) => match n.as_u64().unwrap_or(0) {
            60.. => "fatal".into(),
            50..=59 => "error".into(),
            40..=49 => "warn".into(),
            _ => "info".into(),
        },
        serde_json::Value::String(s) => s.to_ascii_lowercase(),
        _ => return None,
    })
}

fn is_problem_level(level: &str) -> bool {
    matches!(
        level,
        "error" | "err" | "warn" | "warning" | "fatal" | "critical" | "crit" | "alert" | "emerg"
    )
}

fn compile(p: &str, what: &str) -> Result<Regex, String> {
    regex::RegexBuilder::new(p)
        .case_insensitive(true)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| format!("invalid {what} regular expression {p:?}: {e}"))
}

/// The lines that are problems.
fn scan<'a>(
    text: &'a str,
    pattern: &Regex,
    ignore: &[Regex],
    json_levels: bool,
) -> (usize, Vec<&'a str>) {
    let mut n = 0;
    let mut hits = Vec::new();
    for line in text.lines() {
        n += 1;
        let problem = match json_levels.then(|| json_level(line)).flatten() {
            Some(level) => is_problem_level(&level),
            None => pattern.is_match(line),
        };
        if problem && !ignore.iter().any(|r| r.is_match(line)) {
            hits.push(line);
        }
    }
    (n, hits)
}

/// What reading the log gave.
#[derive(Debug)]
pub enum LogRead {
    /// The scanned text, and whether only its last `MAX_BYTES` were read.
    Read { text: String, cut: bool },
    /// The file could not be read.
    Failed { error: String, missing: bool },
    /// The reading task itself failed.
    Crashed(String),
}

/// Where the scan starts: `Some(offset)` for what was written since the
/// run began (from the file's length then, or 0 if it was rotated or
/// truncated since), `None` for the last lines.
fn scan_from(p: &Params, start: Option<&serde_json::Value>) -> Option<u64> {
    p.since.map(|Since::Run| {
        let ino0 = start.and_then(|s| s["ino"].as_u64()).unwrap_or(0);
        let len0 = start.and_then(|s| s["len"].as_u64()).unwrap_or(0);
        match mark(&p.path) {
            Some((ino, len)) if ino == ino0 && len >= len0 => len0,
            _ => 0,
        }
    })
}

/// Reads the log from `from`, or its last `lines` lines.
pub async fn observe(path: &str, from: Option<u64>, lines: usize) -> LogRead {
    let path = path.to_string();
    match tokio::task::spawn_blocking(move || read_tail(&path, from, lines)).await {
        Ok(Ok((bytes, cut))) => LogRead::Read {
            text: String::from_utf8_lossy(&bytes).into_owned(),
            cut,
        },
        Ok(Err(e)) => LogRead::Failed {
            missing: e.kind() == std::io::ErrorKind::NotFound,
            error: e.to_string(),
        },
        Err(e) => LogRead::Crashed(e.to_string()),
    }
}

/// The compiled `pattern` and `ignore` expressions.
struct Patterns {
    pattern: Regex,
    ignore: Vec<Regex>,
}

impl Patterns {
    fn of(p: &Params) -> Result<Patterns, String> {
        Ok(Patterns {
            pattern: compile(&p.pattern, "pattern")?,
            ignore: p
                .ignore
                .iter()
                .map(|i| compile(i, "ignore"))
                .collect::<Result<_, _>>()?,
        })
    }
}

/// Judges what was read: problem lines fail (or warn), a missing file fails
/// (or warns, with `if_missing: warn`).
fn judge(
    p: &Params,
    pats: &Patterns,
    from: Option<u64>,
    lines: usize,
    read: LogRead,
) -> Observation {
    let (text, cut) = match read {
        LogRead::Read { text, cut } => (text, cut),
        LogRead::Failed { error, missing } => {
            let mut o = Observation::fail(
                format!("cannot read {}: {error}", p.path),
                Fault::LogUnreadable {
                    path: p.path.clone(),
                    error,
                    missing,
                },
            );
            if missing && p.if_missing == Severity::Warn {
                o.status = Status::Warn;
            }
            return o;
        }
        LogRead::Crashed(e) => return Observation::error(format!("reading the log failed: {e}")),
    };
    let (scanned, hits) = scan(&text, &pats.pattern, &pats.ignore, p.json_levels);
    let scope = match from {
        Some(_) => "written since the run began".to_string(),
        None => format!("the last {lines}"),
    };
    let command = match from {
        Some(off) => format!(
            "tail -c +{} {} | grep -inE {}",
            off + 1,
            shell::quote(&p.path),
            shell::quote(&p.pattern)
        ),
        None => format!(
            "tail -n {lines} {} | grep -inE {}",
            shell::quote(&p.path),
            shell::quote(&p.pattern)
        ),
    };
    let mut o = Observation::pass(format!(
        "no errors in {scanned} line(s) of {} ({scope})",
        p.path
    ))
    .command(command)
    .capture("lines", scanned)
    .capture("matches", hits.len());
    if cut {
        o = o.evidence(format!("only the last {} MB were read", MAX_BYTES >> 20));
    }
    if hits.is_empty() {
        return o;
    }
    for h in hits.iter().take(p.show) {
        o = o.evidence(crate::diagnose::excerpt(h, 240));
    }
    if hits.len() > p.show {
        o = o.evidence(format!("… and {} more", hits.len() - p.show));
    }
    // The first line a known cause explains names the root cause.
    let known = hits
        .iter()
        .find(|h| crate::diagnose::known_error(h).is_some())
        .or(hits.first());
    judged(
        o,
        match p.severity {
            Severity::Fail => Status::Fail,
            Severity::Warn => Status::Warn,
        },
        format!(
            "{} problem line(s) in {scanned} line(s) of {} ({scope})",
            hits.len(),
            p.path
        ),
        Fault::LogMatches {
            path: p.path.clone(),
            count: hits.len() as u32,
            first: known.map(|s| s.to_string()).unwrap_or_default(),
        },
    )
}

/// The run-start mark of the witness log, in the form `at_start` records.
fn witness_start(w: &crate::engine::Witness) -> serde_json::Value {
    let (ino, len) = w
        .start
        .as_ref()
        .map(|t| (t.file.map_or(0, |f| f.1), t.end))
        .unwrap_or((0, 0));
    serde_json::json!({ "ino": ino, "len": len })
}

impl Check for LogScan {
    const KIND: &'static str = "log_scan";
    const HELP: &'static str = "the backend log has no errors (last N lines, or since the run began); JSON lines judged by level";
    type Params = Params;

    fn at_start(p: &Params) -> Option<serde_json::Value> {
        let (ino, len) = mark(&p.path).unwrap_or((0, 0));
        Some(serde_json::json!({ "ino": ino, "len": len }))
    }

    async fn run(mut p: Params, ctx: Ctx) -> Observation {
        let pats = match Patterns::of(&p) {
            Ok(x) => x,
            Err(e) => return Observation::error(e),
        };
        let mut start = ctx.start.clone();
        let mut found = None;
        if p.path.trim().is_empty() {
            let Some(w) = ctx.witness.as_deref() else {
                return Observation::error("no log file: give `path`");
            };
            p.path = w.path.to_string_lossy().into_owned();
            start = Some(witness_start(w));
            found = Some(format!("log: {}", w.describe()));
        }
        let from = scan_from(&p, start.as_ref());
        let lines = p.lines.max(1);
        let read = observe(&p.path, from, lines).await;
        let mut o = judge(&p, &pats, from, lines, read);
        if let Some(f) = found {
            o.evidence.insert(0, f);
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_by_level_text_lines_by_pattern() {
        let text = r#"{"level":"info","msg":"health","database":{"errors":0}}
{"level":50,"msg":"boom"}
{"level":30,"msg":"request failed? no, just a word"}
[Nest] 123  - 11/28/2026  ERROR [ExceptionsHandler] The column `messageType` does not exist
[Nest] 123  - 11/28/2026  LOG [RoutesResolver] ChatController
prisma:warn something odd
GET /api/v1/health 200 - errors=0 terror
"#;
        let pat = compile(&default_pattern(), "pattern").unwrap();
        let (n, hits) = scan(text, &pat, &[], true);
        assert_eq!(n, 7);
        assert_eq!(hits.len(), 3, "{hits:#?}");
        assert!(hits[0].contains("boom"));
        assert!(hits[1].contains("ExceptionsHandler"));
        assert!(hits[2].contains("prisma:warn"));
        // Without level parsing, the pattern decides: the info line with
        // "failed" matches, the level-50 line without a word does not.
        let (_, hits) = scan(text, &pat, &[], false);
        assert_eq!(hits.len(), 3, "{hits:#?}");
        assert!(hits[0].contains("request failed"));
        let ign = vec![compile("prisma:warn", "ignore").unwrap()];
        let (_, hits) = scan(text, &pat, &ign, true);
        assert_eq!(hits.len(), 2);
    }

    #[test]
    fn tail_reads_the_last_lines_across_chunks() {
        let dir = std::env::temp_dir().join(format!("chatops-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("big.log");
        let body: String = (0..50_000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&p, &body).unwrap();
        let path = p.to_string_lossy().into_owned();
        let (b, _) = read_tail(&path, None, 3).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&b),
            "line 49997\nline 49998\nline 49999"
        );
        let (b, _) = read_tail(&path, Some(body.len() as u64 - 11), 3).unwrap();
        assert_eq!(String::from_utf8_lossy(&b), "line 49999\n");
        let (b, _) = read_tail(&path, None, 100_000).unwrap();
        assert_eq!(String::from_utf8_lossy(&b).lines().count(), 50_000);
        let _ = std::fs::remove_dir_all(dir);
    }

    fn params(v: serde_json::Value) -> Params {
        serde_json::from_value(v).unwrap()
    }

    fn run(p: &Params, from: Option<u64>, read: LogRead) -> Observation {
        let pats = Patterns::of(p).unwrap();
        judge(p, &pats, from, p.lines, read)
    }

    fn read(text: &str) -> LogRead {
        LogRead::Read {
            text: text.into(),
            cut: false,
        }
    }

    #[test]
    fn judged_lines() {
        let p = params(serde_json::json!({"path": "/var/log/app.log", "lines": 50, "show": 1}));
        let o = run(&p, None, read("ok\nfine\n"));
        assert_eq!(o.status, Status::Pass);
        assert_eq!(
            o.summary,
            "no errors in 2 line(s) of /var/log/app.log (the last 50)"
        );
        assert_eq!(
            o.command.as_deref(),
            Some(
                "tail -n 50 '/var/log/app.log' | grep -inE '\\b(error|err|warn|warning|fail|failed|failure|exception|fatal|panic|unhandled)\\b'"
            )
        );
        let text = "boot\nERROR something odd\nERROR P1001: Can't reach database server at `localhost:5432`\n";
        let o = run(&p, Some(10), read(text));
        assert_eq!(o.status, Status::Fail);
        assert_eq!(
            o.summary,
            "2 problem line(s) in 3 line(s) of /var/log/app.log (written since the run began)"
        );
        assert_eq!(o.evidence, ["ERROR something odd", "… and 1 more"]);
        assert!(o.command.unwrap_or_default().starts_with("tail -c +11 "));
        match &o.fault {
            Some(Fault::LogMatches {
                count: 2, first, ..
            }) => {
                assert!(
                    first.contains("P1001"),
                    "the known cause is the root: {first}"
                )
            }
            f => panic!("{f:?}"),
        }
        let warn = params(serde_json::json!({"path": "/x", "severity": "warn"}));
        assert_eq!(run(&warn, None, read("fatal\n")).status, Status::Warn);
        let o = run(
            &p,
            None,
            LogRead::Read {
                text: "x\n".into(),
                cut: true,
            },
        );
        assert_eq!(o.evidence, ["only the last 32 MB were read"]);
    }

    #[test]
    fn a_missing_log() {
        let missing = LogRead::Failed {
            error: "No such file or directory (os error 2)".into(),
            missing: true,
        };
        let p = params(serde_json::json!({"path": "/x.log"}));
        let o = run(&p, None, missing);
        assert_eq!(o.status, Status::Fail);
        assert_eq!(
            o.summary,
            "cannot read /x.log: No such file or directory (os error 2)"
        );
        let p = params(serde_json::json!({"path": "/x.log", "if_missing": "warn"}));
        let o = run(
            &p,
            None,
            LogRead::Failed {
                error: "gone".into(),
                missing: true,
            },
        );
        assert_eq!(o.status, Status::Warn);
        assert!(Patterns::of(&params(serde_json::json!({"path": "/x", "ignore": ["("]}))).is_err());
    }
}
