//! The backend's own health figures, as its health answer reports them:
//! heapUsed, heapTotal and RSS, and the database status (the exporter's
//! `--health-url`, and the load monitor's heap series).
//!
//! Real health endpoints differ. The seed's NestJS app answers
//! `{"memory": process.memoryUsage(), "database": {"overall": "healthy", "database": "connected"}}`
//! (always 200, and "connected" even when PostgreSQL is gone: `overall` is
//! the truth); hand-written ones print `"heapUsed": "45.2 MB"` or
//! `"heapUsedMB": 45`; @nestjs/terminus answers 503 with
//! `{"info"|"error": {"database": {"status": "up"|"down"}}}`. The figures
//! are read from the body whatever the status code.

use super::http::{Body, MaxBody, read_body};
use serde_json::{Map, Value};
use std::time::Duration;

/// What one health answer says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BackendHealth {
    /// The HTTP status of the answer.
    pub status: u16,
    pub heap_used_bytes: Option<f64>,
    pub heap_total_bytes: Option<f64>,
    pub rss_bytes: Option<f64>,
    /// The database status as the backend words it (lowercased, trimmed).
    pub database_status: Option<String>,
}

impl BackendHealth {
    /// The answer was 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Whether the database status means "usable" (None: none reported).
    /// `mock` is not: the backend is not using its database at all.
    pub fn database_healthy(&self) -> Option<bool> {
        self.database_status
            .as_deref()
            .map(|s| matches!(s, "healthy" | "connected" | "up" | "ok" | "true" | "online"))
    }
}

/// Reads the figures of a health body.
pub fn parse(status: u16, body: &Value) -> BackendHealth {
    BackendHealth {
        status,
        heap_used_bytes: figure(body, "heapused"),
        heap_total_bytes: figure(body, "heaptotal"),
        rss_bytes: figure(body, "rss"),
        database_status: database_status(body),
    }
}

/// Where memory figures live: `memory` (process.memoryUsage()), its other
/// usual names, or the top level.
const MEMORY_KEYS: [&str; 4] = ["memory", "memoryusage", "mem", "process"];

/// A key without case, `_` or `-`: `heap_used`, `heapUsed` → `heapused`.
fn norm(k: &str) -> String {
    k.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

fn figure(body: &Value, base: &str) -> Option<f64> {
    let Value::Object(top) = body else {
        return None;
    };
    let nested = top
        .iter()
        .filter(|(k, _)| MEMORY_KEYS.contains(&norm(k).as_str()))
        .filter_map(|(_, v)| v.as_object());
    for obj in nested.chain(std::iter::once(top)) {
        if let Some(b) = figure_in(obj, base) {
            return Some(b);
        }
    }
    None
}

/// `base` in one object: the bare key in bytes, or with a unit suffix
/// (`heapUsedMB`, `heap_used_bytes`). A string value may carry its own unit.
fn figure_in(obj: &Map<String, Value>, base: &str) -> Option<f64> {
    obj.iter().find_map(|(k, v)| {
        let k = norm(k);
        let rest = k.strip_prefix(base)?;
        let key_unit = unit(rest)?;
        match v {
            Value::Number(n) => n.as_f64().map(|x| x * key_unit),
            Value::String(s) => bytes_text(s, key_unit),
            _ => None,
        }
        .filter(|b| b.is_finite() && *b >= 0.0)
    })
}

/// A unit's multiplier to bytes (`""`: bytes).
fn unit(u: &str) -> Option<f64> {
    Some(match u.trim().to_ascii_lowercase().as_str() {
        "" | "b" | "bytes" | "byte" => 1.0,
        "kb" | "kib" | "k" => 1024.0,
        "mb" | "mib" | "m" => 1024.0 * 1024.0,
        "gb" | "gib" | "g" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    })
}

/// `"93224960"`, `"45.2 MB"`, `"512KiB"`; a bare number takes `default`.
fn bytes_text(s: &str, default: f64) -> Option<f64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, u) = s.split_at(split);
    let x: f64 = num.parse().ok()?;
    let m = if u.trim().is_empty() {
        default
    } else {
        unit(u)?
    };
    Some(x * m)
}

/// The database status: `database.overall` (the seed's app), else
/// `database.status`, `database` as text, `db…` alike, or terminus's
/// `info`/`error`/`details` `.database.status`.
fn database_status(body: &Value) -> Option<String> {
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.trim().to_lowercase()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    let Value::Object(top) = body else {
        return None;
    };
    for (k, v) in top {
        if !matches!(
            norm(k).as_str(),
            "database" | "db" | "postgres" | "postgresql"
        ) {
            continue;
        }
        if let Some(s) = text(v) {
            return Some(s);
        }
        for key in ["overall", "status", "state", "healthy"] {
            if let Some(s) = v.get(key).and_then(text) {
                return Some(s);
            }
        }
    }
    for section in ["error", "info", "details"] {
        let found = top
            .get(section)
            .and_then(|s| s.get("database").or_else(|| s.get("db")))
            .and_then(|d| d.get("status"))
            .and_then(text);
        if found.is_some() {
            return found;
        }
    }
    None
}

/// A health answer is read up to this much: one that floods or never ends
/// costs nothing more.
pub const MAX_HEALTH_BODY: usize = 64 * 1024;

/// The body as JSON; a body that is not JSON, or was cut, is Null (the
/// status still tells something).
pub fn body_json(body: &Body) -> Value {
    if body.cut {
        return Value::Null;
    }
    serde_json::from_slice(&body.bytes).unwrap_or(Value::Null)
}

/// One request to the health URL: the figures, or why there are none.
pub async fn fetch(
    client: &reqwest::Client,
    url: &str,
    timeout: Duration,
) -> Result<BackendHealth, String> {
    let mut answer = client
        .get(url)
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| crate::probe::http::classify(&e).0.describe().to_string())?;
    let status = answer.status().as_u16();
    let body = read_body(&mut answer, MaxBody(MAX_HEALTH_BODY))
        .await
        .map_err(|e| crate::probe::http::classify(&e).0.describe().to_string())?;
    Ok(parse(status, &body_json(&body)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_seed_backend_answer() {
        let h = parse(
            200,
            &json!({"status":"ok","database":{"overall":"healthy","database":"connected","errors":0},
                    "memory":{"rss":93224960,"heapTotal":34000000,"heapUsed":24301024,"external":1}}),
        );
        assert_eq!(h.heap_used_bytes, Some(24301024.0));
        assert_eq!(h.heap_total_bytes, Some(34000000.0));
        assert_eq!(h.rss_bytes, Some(93224960.0));
        assert_eq!(h.database_status.as_deref(), Some("healthy"));
        assert_eq!(h.database_healthy(), Some(true));
        assert!(h.ok());
        // PostgreSQL gone: still 200 and "connected", but overall says it.
        let h = parse(
            200,
            &json!({"status":"ok","database":{"overall":"unhealthy","database":"connected","errors":3}}),
        );
        assert_eq!(h.database_healthy(), Some(false));
        assert_eq!(h.heap_used_bytes, None);
        let h = parse(200, &json!({"database":{"overall":"mock"}}));
        assert_eq!(
            h.database_healthy(),
            Some(false),
            "mock is not the database"
        );
    }

    #[test]
    fn hand_written_figures_with_units() {
        let h = parse(
            200,
            &json!({"memoryUsage":{"heapUsed":"45.5 MB","heapTotal":"64MB","rss":"1.5 GB"},"db":"Connected"}),
        );
        assert_eq!(h.heap_used_bytes, Some(45.5 * 1048576.0));
        assert_eq!(h.heap_total_bytes, Some(64.0 * 1048576.0));
        assert_eq!(h.rss_bytes, Some(1.5 * 1073741824.0));
        assert_eq!(h.database_healthy(), Some(true));
        let h = parse(
            200,
            &json!({"heap_used_mb": 12, "heapTotalMB": "16", "rss_bytes": "1000"}),
        );
        assert_eq!(h.heap_used_bytes, Some(12.0 * 1048576.0));
        assert_eq!(h.heap_total_bytes, Some(16.0 * 1048576.0));
        assert_eq!(h.rss_bytes, Some(1000.0));
        assert_eq!(h.database_status, None);
        // Nonsense is not a figure.
        let h = parse(
            200,
            &json!({"memory":{"heapUsed":"lots","heapTotal":-5,"rssx":3}}),
        );
        assert_eq!(
            (h.heap_used_bytes, h.heap_total_bytes, h.rss_bytes),
            (None, None, None)
        );
    }

    #[test]
    fn terminus_answers_503_with_the_database_down() {
        let h = parse(
            503,
            &json!({"status":"error","info":{},"error":{"database":{"status":"down","message":"x"}},
                    "details":{"database":{"status":"down"}}}),
        );
        assert!(!h.ok());
        assert_eq!(h.database_status.as_deref(), Some("down"));
        assert_eq!(h.database_healthy(), Some(false));
        let h = parse(200, &json!({"info":{"database":{"status":"up"}}}));
        assert_eq!(h.database_healthy(), Some(true));
        let h = parse(200, &Value::Null);
        assert_eq!(
            h,
            BackendHealth {
                status: 200,
                ..Default::default()
            }
        );
    }
}
