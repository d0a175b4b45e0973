//! Log output in the seed backend's style: NestJS `ConsoleLogger` lines
//! (coloured unless `NO_COLOR`), plain `console.log` lines, Prisma's
//! `prisma:error` lines and one JSON line per request and per response.
//! Also the small time and id helpers the handlers need (no chrono here).

use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Level {
    Log,
    Warn,
    Error,
}

pub(crate) struct Logger {
    color: bool,
    pid: u32,
    /// When the last framework line (one with a `+Nms` suffix) was written.
    last: Mutex<Option<Instant>>,
}

fn write_out(s: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(s.as_bytes());
    let _ = out.flush();
}

fn write_err(s: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(s.as_bytes());
    let _ = err.flush();
}

impl Logger {
    pub(crate) fn new(color: bool) -> Logger {
        Logger {
            color,
            pid: std::process::id(),
            last: Mutex::new(None),
        }
    }

    /// A NestJS logger line. `framework` lines (NestFactory, InstanceLoader,
    /// RoutesResolver, …) carry the `+Nms` suffix, as Nest's own loggers are
    /// created with `timestamp: true`; application loggers don't.
    pub(crate) fn nest(&self, level: Level, context: &str, msg: &str, framework: bool) {
        let diff = if framework {
            let now = Instant::now();
            let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
            let d = last.map(|p| now.duration_since(p).as_millis());
            *last = Some(now);
            d
        } else {
            None
        };
        let (code, name) = match level {
            Level::Log => ("32", "LOG"),
            Level::Warn => ("33", "WARN"),
            Level::Error => ("31", "ERROR"),
        };
        let ts = nest_timestamp(SystemTime::now());
        let pid = self.pid;
        let line = if self.color {
            let diff = diff
                .map(|d| format!("\x1b[33m +{d}ms\x1b[39m"))
                .unwrap_or_default();
            format!(
                "\x1b[{code}m[Nest] {pid}  - \x1b[39m{ts} \x1b[{code}m{name:>7}\x1b[39m \x1b[33m[{context}] \x1b[39m\x1b[{code}m{msg}\x1b[39m{diff}\n"
            )
        } else {
            let diff = diff.map(|d| format!(" +{d}ms")).unwrap_or_default();
            format!("[Nest] {pid}  - {ts} {name:>7} [{context}] {msg}{diff}\n")
        };
        if level == Level::Error {
            write_err(&line);
        } else {
            write_out(&line);
        }
    }

    /// `console.log(msg)`.
    pub(crate) fn console(&self, msg: &str) {
        write_out(&format!("{msg}\n"));
    }

    /// `console.error(msg)`: raw text to stderr.
    pub(crate) fn console_error(&self, msg: &str) {
        write_err(&format!("{msg}\n"));
    }

    /// Prisma's error log line (plain: Prisma only colours a TTY).
    pub(crate) fn prisma_error(&self, msg: &str) {
        write_err(&format!("prisma:error {msg}\n"));
    }

    /// What NestJS's default exception filter (`ExceptionsHandler`) logs
    /// for an error that is not an HttpException, before it answers 500:
    /// the message on the Nest line, then the stack (uncoloured).
    pub(crate) fn exceptions_handler(&self, message: &str, stack: &str) {
        self.nest(Level::Error, "ExceptionsHandler", message, false);
        write_err(&format!("{stack}\n"));
    }

    /// One JSON line, as the backend's request logging middleware writes.
    pub(crate) fn json<T: serde::Serialize>(&self, v: &T) {
        let mut line = serde_json::to_vec(v).unwrap_or_default();
        line.push(b'\n');
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(&line);
        let _ = out.flush();
    }
}

/// `2025-10-21T12:38:29.532Z`, as JavaScript's `Date.toISOString()`.
pub(crate) fn iso(t: SystemTime) -> String {
    crate::support::time::rfc3339_millis(t)
}

/// `10/21/2025, 5:50:38 PM`, as Nest's `toLocaleString` in en-US (UTC here:
/// the sandbox has no time zone database to hand).
pub(crate) fn nest_timestamp(t: SystemTime) -> String {
    let (year, month, day, hour, min, sec) = crate::support::time::civil(t);
    let (h12, ampm) = match hour {
        0 => (12, "AM"),
        1..=11 => (hour, "AM"),
        12 => (12, "PM"),
        _ => (hour - 12, "PM"),
    };
    format!("{month:02}/{day:02}/{year:04}, {h12}:{min:02}:{sec:02} {ampm}")
}

static RNG: AtomicU64 = AtomicU64::new(0);
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A splitmix64 step on a process-wide state seeded from the clock and pid.
pub(crate) fn random_u64() -> u64 {
    let mut s = RNG.load(Ordering::Relaxed);
    if s == 0 {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        s = nanos ^ ((std::process::id() as u64) << 32) | 1;
        let _ = RNG.compare_exchange(0, s, Ordering::Relaxed, Ordering::Relaxed);
    }
    let z0 = RNG.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
    let mut z = z0.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn base36(mut n: u64, width: usize) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut buf = Vec::with_capacity(16);
    while n > 0 {
        buf.push(DIGITS[(n % 36) as usize]);
        n /= 36;
    }
    while buf.len() < width {
        buf.push(b'0');
    }
    buf.reverse();
    let s = String::from_utf8(buf).unwrap_or_default();
    // Keep the rightmost `width` characters, as cuid's `pad` does.
    s[s.len() - width..].to_string()
}

/// A cuid (v1) like Prisma's `@default(cuid())`: `c` + time + counter +
/// fingerprint + random, 25 characters, e.g. `cmh0jvvdo0002105eghtwzzat`.
pub(crate) fn cuid() -> String {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed) % (36u64.pow(4));
    let pid = std::process::id() as u64;
    let r = random_u64();
    format!(
        "c{}{}{}{}{}",
        base36(ms, 8),
        base36(count, 4),
        base36(pid, 2),
        base36(pid / 1296 + 7, 2),
        base36(r % 36u64.pow(8), 8)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_times() {
        let t = UNIX_EPOCH + Duration::from_millis(1_761_050_309_532);
        assert_eq!(iso(t), "2025-10-21T12:38:29.532Z");
        assert_eq!(nest_timestamp(t), "10/21/2025, 12:38:29 PM");
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(iso(t), "2000-02-29T00:00:00.000Z");
        assert_eq!(nest_timestamp(t), "02/29/2000, 12:00:00 AM");
    }

    #[test]
    fn cuids_look_right() {
        let a = cuid();
        let b = cuid();
        assert_eq!(a.len(), 25);
        assert!(a.starts_with('c'));
        assert_ne!(a, b);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
    }
}
