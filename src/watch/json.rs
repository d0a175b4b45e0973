//! The JSON-lines record of a frame (documented in the README).

use super::{Frame, Thresholds, iso, level};
use crate::support::redact::{self, Redactor};

/// One line (no newline) of JSON for a frame.
pub fn line(f: &Frame, t: Thresholds, red: &Redactor) -> String {
    let v = match f {
        Frame::Down { time, error } => serde_json::json!({
            "time": iso(*time),
            "connected": false,
            "error": red.redact(error),
        }),
        Frame::Up {
            time,
            snap,
            took,
            pgbouncer,
        } => serde_json::json!({
            "time": iso(*time),
            "connected": true,
            "database": snap.database,
            "max_connections": snap.max_connections,
            "superuser_reserved": snap.superuser_reserved,
            "reserved": snap.reserved,
            "usable": snap.usable(),
            "server_total": snap.server_total,
            "total": snap.total(),
            "active": snap.in_state("active"),
            "idle": snap.in_state("idle"),
            "idle_in_transaction": snap.in_state("idle in transaction") + snap.in_state("idle in transaction (aborted)"),
            "waiting_lock": snap.waiting_lock,
            "level": level(snap, t).as_str(),
            "groups": snap.groups,
            "longest": snap.longest.as_ref().map(|l| serde_json::json!({
                "pid": l.pid,
                "application_name": l.application_name,
                "seconds": l.ms / 1000.0,
                "query": redact::sql_text(red, &l.query, 200),
            })),
            "oldest_idle_in_transaction_seconds": snap.oldest_idle_in_transaction_ms.map(|ms| ms / 1000.0),
            "sample_ms": took.as_secs_f64() * 1000.0,
            "pgbouncer": pgbouncer.as_ref().map(|b| serde_json::json!({
                "at": b.at,
                "default_pool_size": b.pool_size,
                "pools": b.pools,
                "error": b.error.as_ref().map(|e| red.redact(e)),
            })),
        }),
    };
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::super::tests::{T, up};
    use super::*;
    use std::time::SystemTime;

    #[test]
    fn json_line_schema() {
        let line = line(&up(), T, &Redactor::new());
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["time"], "1970-01-01T00:00:00.000Z");
        assert_eq!(v["max_connections"], 100);
        assert_eq!(v["total"], 45);
        assert_eq!(v["active"], 41);
        assert_eq!(v["level"], "warn");
        assert_eq!(v["groups"][0]["application_name"], "prisma");
        assert_eq!(v["groups"][0]["state"], "active");
        assert_eq!(v["groups"][0]["count"], 41);
        assert_eq!(v["longest"]["seconds"], 1.5);
        assert!(!line.contains("hunter2"), "{line}");
    }

    #[test]
    fn a_frame_without_sample_hides_the_password() {
        let down = super::line(
            &Frame::Down {
                time: SystemTime::UNIX_EPOCH,
                error: "connect postgresql://u:pw12345@h/d refused".into(),
            },
            T,
            &Redactor::new(),
        );
        let v: serde_json::Value = serde_json::from_str(&down).unwrap();
        assert_eq!(v["connected"], false);
        assert!(!down.contains("pw12345"));
    }
}
