//! `chatops watch-connections`: the seed's `watch -n 2 "psql … pg_stat_activity …"`
//! as one tool. Sampling (one pooled connection labelled `chatops`, which
//! reconnects after a server restart) is split from rendering: a refreshing
//! terminal view, JSON lines, or the Prometheus text format.

use crate::commands::cli::{WatchArgs, WatchFormat};
use crate::commands::exit;
use crate::pg::DbUrl;
use crate::pg::activity::{self, Snapshot};
use crate::support::redact::{self, Redactor};
use owo_colors::OwoColorize;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::Write;
use std::time::{Duration, Instant, SystemTime};

/// The application_name chatops's own session uses.
pub use crate::support::chat_backend::APP_NAME;
const TREND_LEN: usize = 30;

/// Thresholds on active sessions (the seed: warn above 40, critical above 48).
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    pub warn_active: u32,
    pub critical_active: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Ok,
    Warn,
    Critical,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warn => "warn",
            Level::Critical => "critical",
        }
    }
}

/// The level of a snapshot: active sessions against the thresholds, and
/// every usable connection taken is critical.
pub fn level(s: &Snapshot, t: Thresholds) -> Level {
    let active = s.in_state("active");
    if active > t.critical_active || (s.usable() > 0 && s.server_total >= s.usable()) {
        Level::Critical
    } else if active > t.warn_active {
        Level::Warn
    } else {
        Level::Ok
    }
}

/// One sample, or why there is none.
pub enum Frame {
    Up {
        time: SystemTime,
        snap: Snapshot,
        took: Duration,
    },
    Down {
        time: SystemTime,
        error: String,
    },
}

/// The JSON-lines record of a frame (documented in the README).
pub fn json_line(f: &Frame, t: Thresholds, red: &Redactor) -> String {
    let v = match f {
        Frame::Down { time, error } => serde_json::json!({
            "time": iso(*time),
            "connected": false,
            "error": red.redact(error),
        }),
        Frame::Up { time, snap, took } => serde_json::json!({
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
        }),
    };
    v.to_string()
}

/// A Prometheus label value: backslash, double quote and newline escaped.
pub fn label_value(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The Prometheus text exposition of a frame.
pub fn prometheus(f: &Frame, t: Thresholds) -> String {
    let mut o = String::new();
    let gauge = |o: &mut String, name: &str, help: &str, samples: &[(String, f64)]| {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (labels, v) in samples {
            let _ = writeln!(o, "{name}{labels} {v}");
        }
    };
    let snap = match f {
        Frame::Down { .. } => {
            gauge(
                &mut o,
                "chatops_pg_up",
                "1 when the last sample of pg_stat_activity succeeded.",
                &[(String::new(), 0.0)],
            );
            return o;
        }
        Frame::Up { snap, .. } => snap,
    };
    let db = label_value(snap.database.as_deref().unwrap_or(""));
    let dbl = format!("{{database=\"{db}\"}}");
    gauge(
        &mut o,
        "chatops_pg_up",
        "1 when the last sample of pg_stat_activity succeeded.",
        &[(String::new(), 1.0)],
    );
    gauge(
        &mut o,
        "chatops_pg_max_connections",
        "The server's max_connections.",
        &[(String::new(), snap.max_connections as f64)],
    );
    gauge(
        &mut o,
        "chatops_pg_usable_connections",
        "max_connections minus superuser_reserved_connections and reserved_connections.",
        &[(String::new(), snap.usable() as f64)],
    );
    gauge(
        &mut o,
        "chatops_pg_server_connections",
        "Client sessions on the whole server, chatops's own excluded.",
        &[(String::new(), snap.server_total as f64)],
    );
    gauge(
        &mut o,
        "chatops_pg_connections",
        "Client sessions of the database.",
        &[(dbl.clone(), snap.total() as f64)],
    );
    let groups: Vec<(String, f64)> = snap
        .groups
        .iter()
        .map(|g| {
            (
                format!(
                    "{{database=\"{db}\",application_name=\"{}\",state=\"{}\"}}",
                    label_value(&g.application_name),
                    label_value(&g.state)
                ),
                g.count as f64,
            )
        })
        .collect();
    gauge(
        &mut o,
        "chatops_pg_sessions",
        "Sessions of the database by application_name and state.",
        &groups,
    );
    gauge(
        &mut o,
        "chatops_pg_waiting_lock",
        "Sessions of the database waiting for a lock.",
        &[(dbl.clone(), snap.waiting_lock as f64)],
    );
    gauge(
        &mut o,
        "chatops_pg_longest_query_seconds",
        "Run time of the longest active statement (0 when none).",
        &[(
            dbl.clone(),
            snap.longest.as_ref().map(|l| l.ms / 1000.0).unwrap_or(0.0),
        )],
    );
    gauge(
        &mut o,
        "chatops_pg_oldest_idle_in_transaction_seconds",
        "Age of the oldest transaction left idle (0 when none).",
        &[(
            dbl.clone(),
            snap.oldest_idle_in_transaction_ms.unwrap_or(0.0) / 1000.0,
        )],
    );
    gauge(
        &mut o,
        "chatops_pg_level",
        "0 ok, 1 warn, 2 critical (active sessions against the thresholds).",
        &[(dbl, level(snap, t) as u8 as f64)],
    );
    o
}

/// A sparkline of the last values (scaled to `top`, at least 1).
pub fn sparkline(values: &VecDeque<u32>, top: u32) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let top = values.iter().copied().max().unwrap_or(0).max(top).max(1) as f64;
    values
        .iter()
        .map(|v| BARS[((*v as f64 / top) * 7.0).round().clamp(0.0, 7.0) as usize])
        .collect()
}

fn paint(s: String, l: Level, color: bool) -> String {
    if !color {
        return s;
    }
    match l {
        Level::Ok => s.green().to_string(),
        Level::Warn => s.yellow().to_string(),
        Level::Critical => s.red().bold().to_string(),
    }
}

/// The terminal view of a frame.
pub fn human(
    f: &Frame,
    trend: &VecDeque<u32>,
    t: Thresholds,
    color: bool,
    red: &Redactor,
    target: &str,
) -> String {
    let mut o = String::new();
    match f {
        Frame::Down { time, error } => {
            let _ = writeln!(o, "chatops watch-connections — {target} — {}", iso(*time));
            let msg = format!("DISCONNECTED: {} (retrying)", red.redact(error));
            let _ = writeln!(o, "{}", paint(msg, Level::Critical, color));
        }
        Frame::Up { time, snap, took } => {
            let lv = level(snap, t);
            let _ = writeln!(
                o,
                "chatops watch-connections — {target} — {} (sample {:.1} ms)",
                iso(*time),
                took.as_secs_f64() * 1000.0
            );
            let usable = snap.usable().max(1);
            let total_line = format!(
                "server: {} of max_connections {} ({} usable, {:.0}%)   database: {} session(s)",
                snap.server_total,
                snap.max_connections,
                snap.usable(),
                snap.server_total as f64 / usable as f64 * 100.0,
                snap.total()
            );
            let _ = writeln!(o, "{total_line}");
            let active = snap.in_state("active");
            let active_line = format!(
                "active: {active} (warn > {}, critical > {})  [{}]",
                t.warn_active,
                t.critical_active,
                lv.as_str()
            );
            let _ = writeln!(o, "{}", paint(active_line, lv, color));
            let _ = writeln!(o, "trend:  {}", sparkline(trend, t.critical_active));
            let mut b = tabled::builder::Builder::default();
            b.push_record(["application_name", "state", "count"]);
            for g in &snap.groups {
                let name = if g.application_name.is_empty() {
                    "(none)".to_string()
                } else {
                    g.application_name.clone()
                };
                b.push_record([name, g.state.clone(), g.count.to_string()]);
            }
            if snap.groups.is_empty() {
                b.push_record(["(no sessions)".to_string(), String::new(), "0".to_string()]);
            }
            let mut table = b.build();
            table.with(tabled::settings::Style::rounded());
            let _ = writeln!(o, "{table}");
            let _ = writeln!(
                o,
                "waiting on locks: {}   idle in transaction: {}{}",
                snap.waiting_lock,
                snap.in_state("idle in transaction"),
                snap.oldest_idle_in_transaction_ms
                    .map(|ms| format!(" (oldest {:.1} s)", ms / 1000.0))
                    .unwrap_or_default()
            );
            match &snap.longest {
                Some(l) => {
                    let _ = writeln!(
                        o,
                        "longest query: {:.1} s, pid {} ({}): {}",
                        l.ms / 1000.0,
                        l.pid,
                        l.application_name,
                        redact::sql_text(red, &l.query, 100)
                    );
                }
                None => {
                    let _ = writeln!(o, "longest query: none active");
                }
            }
        }
    }
    o
}

/// `2026-11-28T12:00:00.000Z`.
pub fn iso(t: SystemTime) -> String {
    crate::support::time::rfc3339_millis(t)
}

/// Restores the terminal when the view ends, however it ends.
struct Screen {
    active: bool,
}

impl Screen {
    fn enter(on: bool) -> Screen {
        if on {
            let mut out = std::io::stdout();
            let _ = out.write_all(b"\x1b[?1049h\x1b[?25l");
            let _ = out.flush();
        }
        Screen { active: on }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        if self.active {
            let mut out = std::io::stdout();
            let _ = out.write_all(b"\x1b[?25h\x1b[?1049l");
            let _ = out.flush();
        }
    }
}

fn pool_for(u: &DbUrl, timeout: Duration) -> Result<deadpool_postgres::Pool, String> {
    let mut cfg = u.config(APP_NAME);
    // The URL's own application_name must not hide us.
    cfg.application_name(APP_NAME);
    cfg.connect_timeout(timeout);
    let tls = crate::pg::tls::connector(u)?;
    let mgr = deadpool_postgres::Manager::from_config(
        cfg,
        tls,
        deadpool_postgres::ManagerConfig {
            recycling_method: deadpool_postgres::RecyclingMethod::Fast,
        },
    );
    deadpool_postgres::Pool::builder(mgr)
        .max_size(1)
        .build()
        .map_err(|e| e.to_string())
}

async fn take(
    pool: &deadpool_postgres::Pool,
    db: Option<&str>,
    timeout: Duration,
) -> Result<Snapshot, String> {
    let work = async {
        let client = pool.get().await.map_err(|e| match e {
            deadpool_postgres::PoolError::Backend(e) => crate::pg::error_chain(&e),
            other => other.to_string(),
        })?;
        let stmt = client
            .prepare_cached(activity::QUERY)
            .await
            .map_err(|e| crate::pg::error_chain(&e))?;
        // Other chatops sessions (a second watch, parallel checks) are not the backend's.
        activity::sample_prepared(&client, &stmt, db)
            .await
            .map(|s| s.without_app(APP_NAME))
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "no answer within {}",
            crate::support::duration::fmt(timeout)
        )),
    }
}

pub async fn run(a: &WatchArgs, color: bool) -> i32 {
    let Some(raw) = a.database_url.as_deref() else {
        eprintln!("chatops watch-connections: --database-url (or DATABASE_URL) is required");
        return exit::INVALID;
    };
    let mut red = Redactor::new();
    red.learn(raw);
    let u = match DbUrl::parse(raw) {
        Ok(u) => u,
        Err(e) => {
            eprintln!(
                "chatops watch-connections: --database-url: {}",
                red.redact(&e)
            );
            return exit::INVALID;
        }
    };
    let interval = match crate::support::duration::parse(&a.interval) {
        Ok(d) if d >= Duration::from_millis(50) => d,
        Ok(_) => {
            eprintln!("chatops watch-connections: --interval: must be at least 50ms");
            return exit::INVALID;
        }
        Err(e) => {
            eprintln!("chatops watch-connections: --interval: {e}");
            return exit::INVALID;
        }
    };
    let timeout = match crate::support::duration::parse(&a.timeout) {
        Ok(d) if d > Duration::ZERO => d,
        _ => {
            eprintln!(
                "chatops watch-connections: --timeout: `{}` is not a positive duration",
                a.timeout
            );
            return exit::INVALID;
        }
    };
    if a.warn_active > a.critical_active {
        eprintln!(
            "chatops watch-connections: --warn-active ({}) is above --critical-active ({})",
            a.warn_active, a.critical_active
        );
        return exit::INVALID;
    }
    let t = Thresholds {
        warn_active: a.warn_active,
        critical_active: a.critical_active,
    };
    let db: Option<String> = if a.all_databases {
        None
    } else {
        Some(a.database.clone().unwrap_or_else(|| u.database.clone()))
    };
    let target = format!(
        "{}:{} {}",
        u.host,
        u.port,
        db.as_deref().unwrap_or("(all databases)")
    );
    let pool = match pool_for(&u, timeout) {
        Ok(p) => p,
        Err(e) => {
            eprintln!(
                "chatops watch-connections: cannot build the connection pool: {}",
                red.redact(&e)
            );
            return exit::INVALID;
        }
    };
    let live_view = a.format == WatchFormat::Human
        && !a.once
        && std::io::IsTerminal::is_terminal(&std::io::stdout());
    let _screen = Screen::enter(live_view);
    let mut trend: VecDeque<u32> = VecDeque::with_capacity(TREND_LEN);
    let mut samples: u64 = 0;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stop = async {
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async {
                    match term.as_mut() {
                        Some(t) => { t.recv().await; }
                        None => std::future::pending::<()>().await,
                    }
                } => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    };
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return exit::INTERRUPTED,
            _ = ticker.tick() => {}
        }
        let started = Instant::now();
        let time = SystemTime::now();
        let frame = tokio::select! {
            _ = &mut stop => return exit::INTERRUPTED,
            r = take(&pool, db.as_deref(), timeout) => match r {
                Ok(snap) => Frame::Up { time, snap, took: started.elapsed() },
                Err(error) => Frame::Down { time, error },
            },
        };
        samples += 1;
        if let Frame::Up { snap, .. } = &frame {
            if trend.len() == TREND_LEN {
                trend.pop_front();
            }
            trend.push_back(snap.in_state("active"));
        }
        let text = match a.format {
            WatchFormat::Json => json_line(&frame, t, &red) + "\n",
            WatchFormat::Prometheus => prometheus(&frame, t),
            WatchFormat::Human => {
                let body = human(&frame, &trend, t, color, &red, &target);
                if live_view {
                    format!("\x1b[H\x1b[2J{body}")
                } else {
                    body + "\n"
                }
            }
        };
        if let Some(path) = &a.output {
            // Rewritten whole each sample (a textfile collector reads it).
            let tmp = path.with_extension("tmp");
            if let Err(e) =
                std::fs::write(&tmp, text.as_bytes()).and_then(|_| std::fs::rename(&tmp, path))
            {
                eprintln!(
                    "chatops watch-connections: cannot write {}: {e}",
                    path.display()
                );
                return exit::INVALID;
            }
        } else {
            let mut out = std::io::stdout().lock();
            if out
                .write_all(text.as_bytes())
                .and_then(|_| out.flush())
                .is_err()
            {
                // The reader went away (a closed pipe): stop quietly.
                return exit::OK;
            }
        }
        if a.once {
            return match &frame {
                Frame::Down { .. } => exit::FAILED,
                Frame::Up { snap, .. } => match level(snap, t) {
                    Level::Critical => exit::FAILED,
                    Level::Warn if a.strict => exit::FAILED,
                    _ => exit::OK,
                },
            };
        }
        if a.count.is_some_and(|n| samples >= n) {
            return exit::OK;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::activity::{Group, Longest};

    fn snap() -> Snapshot {
        Snapshot {
            max_connections: 100,
            superuser_reserved: 3,
            reserved: 0,
            server_total: 45,
            database: Some("chat_backend_db".into()),
            groups: vec![
                Group {
                    application_name: "prisma".into(),
                    state: "active".into(),
                    count: 41,
                },
                Group {
                    application_name: "we\"ird\\app".into(),
                    state: "idle".into(),
                    count: 4,
                },
            ],
            waiting_lock: 2,
            longest: Some(Longest {
                pid: 7,
                application_name: "prisma".into(),
                state: "active".into(),
                ms: 1500.0,
                query: "UPDATE users SET password = 'hunter2' WHERE id = 1".into(),
            }),
            oldest_idle_in_transaction_ms: None,
        }
    }

    const T: Thresholds = Thresholds {
        warn_active: 40,
        critical_active: 48,
    };

    #[test]
    fn levels_follow_the_seed_thresholds() {
        let mut s = snap();
        assert_eq!(level(&s, T), Level::Warn, "41 active > 40");
        s.groups[0].count = 40;
        assert_eq!(level(&s, T), Level::Ok);
        s.groups[0].count = 49;
        assert_eq!(level(&s, T), Level::Critical);
        s.groups[0].count = 1;
        s.server_total = 97;
        assert_eq!(level(&s, T), Level::Critical, "every usable slot taken");
    }

    #[test]
    fn json_line_schema() {
        let f = Frame::Up {
            time: SystemTime::UNIX_EPOCH,
            snap: snap(),
            took: Duration::from_millis(2),
        };
        let line = json_line(&f, T, &Redactor::new());
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
        let down = json_line(
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

    #[test]
    fn prometheus_exposition() {
        let f = Frame::Up {
            time: SystemTime::UNIX_EPOCH,
            snap: snap(),
            took: Duration::from_millis(2),
        };
        let p = prometheus(&f, T);
        assert!(p.contains("# TYPE chatops_pg_sessions gauge\n"));
        assert!(p.contains(
            "chatops_pg_sessions{database=\"chat_backend_db\",application_name=\"prisma\",state=\"active\"} 41\n"
        ));
        assert!(p.contains("application_name=\"we\\\"ird\\\\app\""), "{p}");
        assert!(p.contains("chatops_pg_max_connections 100\n"));
        assert!(p.contains("chatops_pg_longest_query_seconds{database=\"chat_backend_db\"} 1.5\n"));
        assert!(p.contains("chatops_pg_level{database=\"chat_backend_db\"} 1\n"));
        // Every sample line is NAME{labels} VALUE, every family has HELP and TYPE.
        for line in p.lines().filter(|l| !l.starts_with('#')) {
            let (_, v) = line.rsplit_once(' ').unwrap();
            v.parse::<f64>().unwrap();
        }
        let down = prometheus(
            &Frame::Down {
                time: SystemTime::UNIX_EPOCH,
                error: "x".into(),
            },
            T,
        );
        assert!(down.contains("chatops_pg_up 0\n"));
    }

    #[test]
    fn sparkline_scales() {
        let v: VecDeque<u32> = [0, 24, 48].into_iter().collect();
        assert_eq!(sparkline(&v, 48), "▁▅█");
        assert_eq!(sparkline(&VecDeque::new(), 48), "");
    }

    #[test]
    fn human_view_masks_the_query() {
        let f = Frame::Up {
            time: SystemTime::UNIX_EPOCH,
            snap: snap(),
            took: Duration::from_millis(2),
        };
        let h = human(&f, &VecDeque::new(), T, false, &Redactor::new(), "db");
        assert!(
            h.contains("active: 41 (warn > 40, critical > 48)  [warn]"),
            "{h}"
        );
        assert!(h.contains("prisma"));
        assert!(!h.contains("hunter2"));
    }
}
