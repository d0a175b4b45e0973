//! Small helpers: bounded child processes, ports, log files, SQL quoting.

use super::{PORT_MAX, PORT_MIN, PgError};
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::io::Read;
use std::path::Path;
use std::process::{Command as StdCommand, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Runs a command synchronously, killing it after `timeout`. Returns whether
/// it succeeded and (when `capture`) its stdout; None if it could not run or
/// timed out.
pub(super) fn run_sync(
    mut cmd: StdCommand,
    timeout: Duration,
    capture: bool,
) -> Option<(bool, String)> {
    cmd.stdin(Stdio::null()).stderr(Stdio::null());
    cmd.stdout(if capture {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd.spawn().ok()?;
    let receiver = child.stdout.take().map(|mut stdout| {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = stdout.read_to_end(&mut buf);
            let _ = tx.send(buf);
        });
        rx
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    };
    let out = match receiver {
        Some(rx) => {
            let remaining = deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(100));
            rx.recv_timeout(remaining).ok()?
        }
        None => Vec::new(),
    };
    Some((status.success(), String::from_utf8_lossy(&out).into_owned()))
}

pub(super) fn random_port(salt: u64) -> u16 {
    let mut hasher = std::hash::RandomState::new().build_hasher();
    hasher.write_u64(salt);
    hasher.write_u32(std::process::id());
    if let Ok(now) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        hasher.write_u128(now.as_nanos());
    }
    let span = u64::from(PORT_MAX - PORT_MIN);
    // `hash % span` is below PORT_MAX - PORT_MIN, so it fits in u16.
    PORT_MIN + u16::try_from(hasher.finish() % span).unwrap_or(0)
}

pub(super) fn file_len(path: &Path) -> u64 {
    fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// The file's content from byte `offset` on (lossy UTF-8; empty if unreadable).
pub(super) fn read_from(path: &Path, offset: u64) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let start = usize::try_from(offset)
                .unwrap_or(usize::MAX)
                .min(bytes.len());
            String::from_utf8_lossy(&bytes[start..]).into_owned()
        }
        Err(_) => String::new(),
    }
}

pub(super) fn tail_of_file(path: &Path, offset: u64, lines: usize) -> String {
    let text = read_from(path, offset);
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    all[start..].join("\n")
}

pub(super) fn pg_error(context: &str, e: &tokio_postgres::Error) -> PgError {
    let detail = match e.as_db_error() {
        Some(db) => format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        ),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(inner) = source {
                text.push_str(": ");
                text.push_str(&inner.to_string());
                source = inner.source();
            }
            text
        }
    };
    PgError::new(format!("{context}: {detail}"))
}

pub(super) fn validate_identifier(name: &str, what: &str) -> Result<(), PgError> {
    if name.is_empty() || name.len() > 63 || name.contains('\0') {
        Err(PgError::new(format!(
            "invalid {what} {name:?}: must be 1 to 63 bytes without NUL"
        )))
    } else {
        Ok(())
    }
}

pub(super) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A single-quoted literal for SQL and for postgresql.conf (which also
/// treats backslashes as escapes, so they are doubled too).
pub(super) fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
}
