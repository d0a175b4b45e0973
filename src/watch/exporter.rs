//! What `watch-connections` exports to Prometheus beyond pg_stat_activity:
//! one [`Scrape`] rendered as the text exposition. The PostgreSQL families
//! come from [`super::prometheus::exposition`] (the single renderer of a
//! frame, shared with `--format prometheus`); this adds the families the
//! alert rules need beside them (active sessions, the thresholds, the
//! backend's `connection_limit`), the backend's health figures, and the
//! exporter's own metrics named as postgres_exporter names its own
//! (`pg_exporter_last_scrape_duration_seconds` → `chatops_exporter_…`).

use super::prometheus::{exposition, gauge, label_value};
use super::{Frame, Thresholds};
use crate::probe::health::BackendHealth;
use std::fmt::Write as _;
use std::time::Duration;

/// What the exporter was configured with.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub thresholds: Thresholds,
    /// The watched database (None: every database), the `database` label.
    pub database: Option<String>,
    /// The backend's Prisma `connection_limit`, when known.
    pub connection_limit: Option<u32>,
    /// A health URL was given: the `chatops_backend_*` families are exported.
    pub health: bool,
}

/// One scrape: the PostgreSQL frame, the health answer (when a health URL
/// was given), and how long both took.
pub struct Scrape {
    pub frame: Frame,
    pub health: Option<Result<BackendHealth, String>>,
    pub took: Duration,
}

impl Scrape {
    /// Every source answered (PostgreSQL, and the health URL when given).
    pub fn complete(&self) -> bool {
        matches!(self.frame, Frame::Up { .. }) && !matches!(self.health, Some(Err(_)))
    }
}

/// The metric families this module adds, in the order rendered.
pub const FAMILIES: [&str; 16] = [
    "chatops_pg_active_sessions",
    "chatops_active_sessions_warn_threshold",
    "chatops_active_sessions_critical_threshold",
    "chatops_backend_connection_limit",
    "chatops_backend_up",
    "chatops_backend_heap_used_bytes",
    "chatops_backend_heap_total_bytes",
    "chatops_backend_rss_bytes",
    "chatops_backend_database_healthy",
    "chatops_backend_database_status",
    "chatops_up",
    "chatops_exporter_last_scrape_duration_seconds",
    "chatops_exporter_last_scrape_error",
    "chatops_exporter_scrapes_total",
    "chatops_exporter_scrape_errors_total",
    "chatops_pg_sample_duration_seconds",
];

/// Counters over the exporter's life, this scrape included.
#[derive(Debug, Clone, Copy, Default)]
pub struct Totals {
    pub scrapes: u64,
    pub errors: u64,
}

impl Totals {
    /// Counts a scrape.
    pub fn add(&mut self, s: &Scrape) {
        self.scrapes += 1;
        if !s.complete() {
            self.errors += 1;
        }
    }
}

fn counter(o: &mut String, name: &str, help: &str, v: u64) {
    let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
}

/// The whole exposition of a scrape.
pub fn render(s: &Scrape, cfg: &Settings, totals: &Totals) -> String {
    let mut o = exposition(&s.frame, cfg.thresholds);
    let dbl = format!(
        "{{database=\"{}\"}}",
        label_value(cfg.database.as_deref().unwrap_or(""))
    );
    let one = |v: f64| vec![(dbl.clone(), v)];
    let active = match &s.frame {
        Frame::Up { snap, .. } => one(snap.in_state("active") as f64),
        Frame::Down { .. } => vec![],
    };
    gauge(
        &mut o,
        "chatops_pg_active_sessions",
        "Active sessions of the database (state = 'active'), chatops's own excluded.",
        &active,
    );
    gauge(
        &mut o,
        "chatops_active_sessions_warn_threshold",
        "Active sessions above this warn (--warn-active; the seed: 40).",
        &one(cfg.thresholds.warn_active as f64),
    );
    gauge(
        &mut o,
        "chatops_active_sessions_critical_threshold",
        "Active sessions above this are critical (--critical-active; the seed: 48).",
        &one(cfg.thresholds.critical_active as f64),
    );
    gauge(
        &mut o,
        "chatops_backend_connection_limit",
        "The backend's Prisma connection_limit (its pool size), when known.",
        &cfg.connection_limit
            .map(|l| one(l as f64))
            .unwrap_or_default(),
    );
    if cfg.health {
        health(&mut o, s.health.as_ref());
    }
    let complete = s.complete();
    gauge(
        &mut o,
        "chatops_up",
        "1 when the last scrape read every source (PostgreSQL, and the health URL when given).",
        &[(String::new(), if complete { 1.0 } else { 0.0 })],
    );
    gauge(
        &mut o,
        "chatops_exporter_last_scrape_duration_seconds",
        "Duration of the last scrape of PostgreSQL (and the health URL) in seconds.",
        &[(String::new(), s.took.as_secs_f64())],
    );
    gauge(
        &mut o,
        "chatops_exporter_last_scrape_error",
        "1 when the last scrape could not read a source.",
        &[(String::new(), if complete { 0.0 } else { 1.0 })],
    );
    counter(
        &mut o,
        "chatops_exporter_scrapes_total",
        "Scrapes since the exporter started.",
        totals.scrapes,
    );
    counter(
        &mut o,
        "chatops_exporter_scrape_errors_total",
        "Scrapes that could not read a source.",
        totals.errors,
    );
    let pg_took = match &s.frame {
        Frame::Up { took, .. } => vec![(String::new(), took.as_secs_f64())],
        Frame::Down { .. } => vec![],
    };
    gauge(
        &mut o,
        "chatops_pg_sample_duration_seconds",
        "Duration of the last pg_stat_activity sample in seconds (absent when it failed).",
        &pg_took,
    );
    o
}

fn health(o: &mut String, h: Option<&Result<BackendHealth, String>>) {
    let h = h.and_then(|r| r.as_ref().ok());
    let fig = |f: fn(&BackendHealth) -> Option<f64>| -> Vec<(String, f64)> {
        h.and_then(f)
            .map(|v| vec![(String::new(), v)])
            .unwrap_or_default()
    };
    gauge(
        o,
        "chatops_backend_up",
        "1 when the backend's health URL answered 2xx.",
        &[(
            String::new(),
            if h.is_some_and(|h| h.ok()) { 1.0 } else { 0.0 },
        )],
    );
    gauge(
        o,
        "chatops_backend_heap_used_bytes",
        "heapUsed as the backend's health answer reports it, in bytes.",
        &fig(|h| h.heap_used_bytes),
    );
    gauge(
        o,
        "chatops_backend_heap_total_bytes",
        "heapTotal as the backend's health answer reports it, in bytes.",
        &fig(|h| h.heap_total_bytes),
    );
    gauge(
        o,
        "chatops_backend_rss_bytes",
        "Resident set size as the backend's health answer reports it, in bytes.",
        &fig(|h| h.rss_bytes),
    );
    gauge(
        o,
        "chatops_backend_database_healthy",
        "1 when the database status the backend reports is healthy (connected, up, ok).",
        &fig(|h| h.database_healthy().map(|b| if b { 1.0 } else { 0.0 })),
    );
    let status: Vec<(String, f64)> = h
        .and_then(|h| h.database_status.as_deref())
        .map(|s| {
            // Bounded: the label is the backend's word, not a message.
            let s: String = s.chars().take(32).collect();
            vec![(format!("{{status=\"{}\"}}", label_value(&s)), 1.0)]
        })
        .unwrap_or_default();
    gauge(
        o,
        "chatops_backend_database_status",
        "The database status the backend reports, as a label (always 1).",
        &status,
    );
}

#[cfg(test)]
mod tests {
    use super::super::tests::{T, up};
    use super::*;
    use std::time::SystemTime;

    fn settings(health: bool) -> Settings {
        Settings {
            thresholds: T,
            database: Some("chat_backend_db".into()),
            connection_limit: Some(50),
            health,
        }
    }

    /// Every line is a comment or `NAME{labels} VALUE`; every family has
    /// one HELP and one TYPE line, TYPE before its samples, no family twice.
    pub(crate) fn assert_valid(text: &str) {
        let mut typed: Vec<&str> = Vec::new();
        let mut helped: Vec<&str> = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let name = rest.split(' ').next().unwrap();
                assert!(!helped.contains(&name), "HELP twice for {name}");
                helped.push(name);
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, ty) = rest.split_once(' ').unwrap();
                assert!(matches!(ty, "gauge" | "counter"), "{line}");
                assert!(!typed.contains(&name), "TYPE twice for {name}");
                typed.push(name);
            } else {
                let (series, v) = line.rsplit_once(' ').unwrap();
                v.parse::<f64>().unwrap();
                let name = series.split('{').next().unwrap();
                assert_eq!(typed.last(), Some(&name), "{line} outside its family");
            }
        }
        assert_eq!(typed, helped);
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn a_scrape_with_health_renders_every_family() {
        let s = Scrape {
            frame: up(),
            health: Some(Ok(crate::probe::health::parse(
                200,
                &serde_json::json!({"memory": {"heapUsed": 80, "heapTotal": 100, "rss": 300},
                                    "database": {"overall": "healthy"}}),
            ))),
            took: Duration::from_millis(1500),
        };
        let mut totals = Totals::default();
        totals.add(&s);
        let p = render(&s, &settings(true), &totals);
        assert_valid(&p);
        for f in FAMILIES {
            assert!(p.contains(&format!("# TYPE {f} ")), "{f} missing:\n{p}");
        }
        for line in [
            "chatops_pg_up 1",
            "chatops_pg_active_sessions{database=\"chat_backend_db\"} 41",
            "chatops_active_sessions_warn_threshold{database=\"chat_backend_db\"} 40",
            "chatops_active_sessions_critical_threshold{database=\"chat_backend_db\"} 48",
            "chatops_backend_connection_limit{database=\"chat_backend_db\"} 50",
            "chatops_backend_up 1",
            "chatops_backend_heap_used_bytes 80",
            "chatops_backend_heap_total_bytes 100",
            "chatops_backend_rss_bytes 300",
            "chatops_backend_database_healthy 1",
            "chatops_backend_database_status{status=\"healthy\"} 1",
            "chatops_up 1",
            "chatops_exporter_last_scrape_duration_seconds 1.5",
            "chatops_exporter_last_scrape_error 0",
            "chatops_exporter_scrapes_total 1",
            "chatops_exporter_scrape_errors_total 0",
            "chatops_pg_sample_duration_seconds 0.002",
        ] {
            assert!(p.contains(&format!("{line}\n")), "no `{line}` in:\n{p}");
        }
    }

    #[test]
    fn a_failed_source_is_a_scrape_error() {
        let down = Scrape {
            frame: Frame::Down {
                time: SystemTime::UNIX_EPOCH,
                error: "refused".into(),
            },
            health: None,
            took: Duration::from_millis(3),
        };
        let mut totals = Totals::default();
        totals.add(&down);
        let mut cfg = settings(false);
        cfg.connection_limit = None;
        let p = render(&down, &cfg, &totals);
        assert_valid(&p);
        assert!(p.contains("chatops_pg_up 0\n"));
        assert!(p.contains("chatops_up 0\n"));
        assert!(p.contains("chatops_exporter_last_scrape_error 1\n"));
        assert!(p.contains("chatops_exporter_scrape_errors_total 1\n"));
        assert!(!p.contains("chatops_pg_active_sessions{"), "{p}");
        assert!(!p.contains("chatops_backend_connection_limit{"), "{p}");
        assert!(!p.contains("chatops_backend_up"), "no health URL: {p}");
        // PostgreSQL up, the health URL unreachable.
        let s = Scrape {
            frame: up(),
            health: Some(Err("connection refused".into())),
            took: Duration::ZERO,
        };
        totals.add(&s);
        let p = render(&s, &settings(true), &totals);
        assert_valid(&p);
        assert!(p.contains("chatops_backend_up 0\n"));
        assert!(p.contains("chatops_up 0\n"));
        assert!(p.contains("chatops_exporter_scrapes_total 2\n"));
        assert!(!p.contains("\nchatops_backend_heap_used_bytes "), "{p}");
        assert!(p.contains("# TYPE chatops_backend_heap_used_bytes gauge\n"));
    }
}
