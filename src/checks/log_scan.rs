//! `log_scan`: the backend's log has no errors: the last N lines, or what
//! was written since the run began. JSON log lines (pino, winston, bunyan)
//! are judged by their level, so `"errors":0` in an info line is no error.

use super::{Check, Ctx, Observation};
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
    /// The log file.
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

impl Check for LogScan {
    const KIND: &'static str = "log_scan";
    const HELP: &'static str = "the backend log has no errors (last N lines, or since the run began); JSON lines judged by level";
    type Params = Params;

    fn at_start(p: &Params) -> Option<serde_json::Value> {
        let (ino, len) = mark(&p.path).unwrap_or((0, 0));
        Some(serde_json::json!({ "ino": ino, "len": len }))
    }

    async fn run(p: Params, ctx: Ctx) -> Observation {
        let pattern = match compile(&p.pattern, "pattern") {
            Ok(r) => r,
            Err(e) => return Observation::error(e),
        };
        let mut ignore = Vec::new();
        for i in &p.ignore {
            match compile(i, "ignore") {
                Ok(r) => ignore.push(r),
                Err(e) => return Observation::error(e),
            }
        }
        // Since the run: from the length the file had when the run began,
        // or from its start if it was rotated or truncated since.
        let from = match p.since {
            Some(Since::Run) => {
                let start = ctx.start.as_ref();
                let ino0 = start.and_then(|s| s["ino"].as_u64()).unwrap_or(0);
                let len0 = start.and_then(|s| s["len"].as_u64()).unwrap_or(0);
                Some(match mark(&p.path) {
                    Some((ino, len)) if ino == ino0 && len >= len0 => len0,
                    _ => 0,
                })
            }
            None => None,
        };
        let path = p.path.clone();
        let lines = p.lines.max(1);
        let read = tokio::task::spawn_blocking(move || read_tail(&path, from, lines)).await;
        let (bytes, cut) = match read {
            Ok(Ok(x)) => x,
            Ok(Err(e)) => {
                let missing = e.kind() == std::io::ErrorKind::NotFound;
                let mut o = Observation::fail(
                    format!("cannot read {}: {e}", p.path),
                    Fault::LogUnreadable {
                        path: p.path.clone(),
                        error: e.to_string(),
                        missing,
                    },
                );
                if missing && p.if_missing == Severity::Warn {
                    o.status = super::Status::Warn;
                }
                return o;
            }
            Err(e) => return Observation::error(format!("reading the log failed: {e}")),
        };
        let text = String::from_utf8_lossy(&bytes);
        let (scanned, hits) = scan(&text, &pattern, &ignore, p.json_levels);
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
        o.status = match p.severity {
            Severity::Fail => super::Status::Fail,
            Severity::Warn => super::Status::Warn,
        };
        o.summary = format!(
            "{} problem line(s) in {scanned} line(s) of {} ({scope})",
            hits.len(),
            p.path
        );
        // The first line a known cause explains names the root cause.
        let known = hits
            .iter()
            .find(|h| crate::diagnose::known_error(h).is_some())
            .or(hits.first());
        o.fault = Some(Fault::LogMatches {
            path: p.path.clone(),
            count: hits.len() as u32,
            first: known.map(|s| s.to_string()).unwrap_or_default(),
        });
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
}
