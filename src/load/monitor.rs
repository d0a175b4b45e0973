//! Watching the backend while it loads: once a second, pg_stat_activity on
//! the target database (active, idle, idle in transaction, lock waits) and
//! the backend's memory (its RSS when it runs here, else the health
//! endpoint's `memory.heapUsed`).

use crate::pg::DbUrl;
use crate::pg::activity;
use crate::probe::process;
use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Sample {
    /// Seconds since the load run started.
    pub t_s: f64,
    /// Sessions of the target database by state (None: no database sample).
    pub active: Option<u32>,
    pub idle: Option<u32>,
    pub idle_in_transaction: Option<u32>,
    pub waiting_lock: Option<u32>,
    pub sessions: Option<u32>,
    /// Client sessions on the whole server.
    pub server_sessions: Option<u32>,
    pub rss_bytes: Option<u64>,
    pub heap_used_bytes: Option<u64>,
    /// Whether the backend process still exists (local backends).
    pub backend_alive: Option<bool>,
}

/// What is known about the backend before the load starts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Backend {
    pub pid: Option<u32>,
    /// Prisma's `connection_limit` from the backend's own DATABASE_URL.
    pub connection_limit: Option<u32>,
    pub pool_timeout_s: Option<u32>,
    /// Connections an application may open (max_connections − reserved).
    pub usable_connections: Option<u32>,
    /// Why there are no database samples, if there are none.
    pub database_note: Option<String>,
}

/// Per-stage figures from the samples.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Summary {
    pub samples: usize,
    pub max_active: Option<u32>,
    pub max_sessions: Option<u32>,
    pub max_idle_in_transaction: Option<u32>,
    pub max_waiting_lock: Option<u32>,
    pub max_server_sessions: Option<u32>,
    pub rss_first_bytes: Option<u64>,
    pub rss_max_bytes: Option<u64>,
    pub rss_last_bytes: Option<u64>,
    pub heap_first_bytes: Option<u64>,
    pub heap_last_bytes: Option<u64>,
    pub backend_alive_at_end: Option<bool>,
}

pub fn summarize(samples: &[Sample]) -> Summary {
    let max32 = |f: fn(&Sample) -> Option<u32>| samples.iter().filter_map(f).max();
    let rss: Vec<u64> = samples.iter().filter_map(|s| s.rss_bytes).collect();
    let heap: Vec<u64> = samples.iter().filter_map(|s| s.heap_used_bytes).collect();
    Summary {
        samples: samples.len(),
        max_active: max32(|s| s.active),
        max_sessions: max32(|s| s.sessions),
        max_idle_in_transaction: max32(|s| s.idle_in_transaction),
        max_waiting_lock: max32(|s| s.waiting_lock),
        max_server_sessions: max32(|s| s.server_sessions),
        rss_first_bytes: rss.first().copied(),
        rss_max_bytes: rss.iter().max().copied(),
        rss_last_bytes: rss.last().copied(),
        heap_first_bytes: heap.first().copied(),
        heap_last_bytes: heap.last().copied(),
        backend_alive_at_end: samples.iter().rev().find_map(|s| s.backend_alive),
    }
}

/// The running sampler.
pub struct Watcher {
    samples: Arc<Mutex<Vec<Sample>>>,
    task: tokio::task::JoinHandle<()>,
    pub backend: Backend,
}

impl Watcher {
    /// Takes the samples gathered since the last call.
    pub fn take(&self) -> Vec<Sample> {
        self.samples
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default()
    }

    /// Stops sampling.
    pub fn stop(self) {
        self.task.abort();
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The backend process listening on the base URL's port, when it is local.
pub fn local_backend(base_url: &str) -> Option<u32> {
    let u = url::Url::parse(base_url).ok()?;
    let host = u.host_str()?;
    if !process::is_local_host(host) {
        return None;
    }
    let port = u.port_or_known_default()?;
    process::listeners(port).first().map(|p| p.pid)
}

/// Starts sampling. `database_url` is chatops's own URL to the target
/// database; `pid` the backend process (its RSS, and its DATABASE_URL's
/// pool settings).
pub async fn start(
    base_url: &str,
    database_url: Option<&str>,
    pid: Option<u32>,
    t0: Instant,
) -> Watcher {
    let mut backend = Backend {
        pid,
        ..Default::default()
    };
    if let Some(pid) = pid
        && let Ok(env) = process::environ(pid)
        && let Some((_, u)) = env.iter().find(|(k, _)| k == "DATABASE_URL")
        && let Ok(db) = DbUrl::parse(u)
    {
        backend.connection_limit = db.param("connection_limit").and_then(|v| v.parse().ok());
        backend.pool_timeout_s = db.param("pool_timeout").and_then(|v| v.parse().ok());
    }
    let mut client = None;
    let mut dbname = None;
    match database_url.map(DbUrl::parse) {
        None => {
            backend.database_note = Some("no --database-url: pg_stat_activity not sampled".into())
        }
        Some(Err(e)) => backend.database_note = Some(format!("--database-url is invalid: {e}")),
        Some(Ok(url)) => {
            match activity::connect(&url, "chatops-load", Duration::from_secs(5)).await {
                Ok(c) => {
                    if let Ok(s) = activity::sample(&c, Some(&url.database)).await {
                        backend.usable_connections = Some(s.usable());
                    }
                    dbname = Some(url.database.clone());
                    client = Some(c);
                }
                Err(e) => {
                    backend.database_note =
                        Some(format!("cannot connect to sample pg_stat_activity: {e}"))
                }
            }
        }
    }
    let health = if pid.is_none() {
        Some(format!("{}/api/v1/health", base_url.trim_end_matches('/')))
    } else {
        None
    };
    let samples = Arc::new(Mutex::new(Vec::new()));
    let out = samples.clone();
    let task = tokio::spawn(async move {
        let http = reqwest::Client::new();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let mut s = Sample {
                t_s: (t0.elapsed().as_secs_f64() * 10.0).round() / 10.0,
                active: None,
                idle: None,
                idle_in_transaction: None,
                waiting_lock: None,
                sessions: None,
                server_sessions: None,
                rss_bytes: None,
                heap_used_bytes: None,
                backend_alive: None,
            };
            if let Some(c) = &client
                && let Ok(Ok(snap)) = tokio::time::timeout(
                    Duration::from_millis(900),
                    activity::sample(c, dbname.as_deref()),
                )
                .await
            {
                s.active = Some(snap.in_state("active"));
                s.idle = Some(snap.in_state("idle"));
                s.idle_in_transaction = Some(
                    snap.in_state("idle in transaction")
                        + snap.in_state("idle in transaction (aborted)"),
                );
                s.waiting_lock = Some(snap.waiting_lock);
                s.sessions = Some(snap.total());
                s.server_sessions = Some(snap.server_total);
            }
            if let Some(pid) = pid {
                s.rss_bytes = process::rss_bytes(pid);
                s.backend_alive = Some(process::alive(pid));
            }
            if let Some(h) = &health
                && let Ok(Ok(r)) =
                    tokio::time::timeout(Duration::from_millis(900), http.get(h).send()).await
                && let Ok(v) = r.json::<serde_json::Value>().await
            {
                s.heap_used_bytes = v["memory"]["heapUsed"].as_u64();
            }
            if let Ok(mut v) = out.lock() {
                v.push(s);
            }
        }
    });
    Watcher {
        samples,
        task,
        backend,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: f64, active: u32, rss: u64) -> Sample {
        Sample {
            t_s: t,
            active: Some(active),
            idle: Some(1),
            idle_in_transaction: Some(0),
            waiting_lock: Some(0),
            sessions: Some(active + 1),
            server_sessions: Some(active + 3),
            rss_bytes: Some(rss),
            heap_used_bytes: None,
            backend_alive: Some(true),
        }
    }

    #[test]
    fn summary_takes_maxima_and_ends() {
        let m = summarize(&[s(0.0, 1, 10), s(1.0, 5, 30), s(2.0, 2, 20)]);
        assert_eq!(m.samples, 3);
        assert_eq!(m.max_active, Some(5));
        assert_eq!(m.max_sessions, Some(6));
        assert_eq!(m.max_server_sessions, Some(8));
        assert_eq!(
            (m.rss_first_bytes, m.rss_max_bytes, m.rss_last_bytes),
            (Some(10), Some(30), Some(20))
        );
        assert_eq!(m.heap_first_bytes, None);
        assert_eq!(m.backend_alive_at_end, Some(true));
        assert_eq!(summarize(&[]), Summary::default());
    }
}
