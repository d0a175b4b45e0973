//! Watching the backend while it loads. pg_stat_activity on the target
//! database is sampled five times a second (about a millisecond each) and
//! its maxima kept; once a second a [`Sample`] records them with the wait
//! events and blocking chains, the backend process (CPU in total and per
//! thread, RSS, open files, its pid), the health endpoint's heap, the CPU
//! of PostgreSQL's processes, of chatops and of the machine. The sampling
//! loop is in [`super::sampler`]; per-stage statement deltas in
//! [`super::stage_db`].

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// One second of watching. Session counts are the maxima of the fast
/// samples taken within the second.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Sample {
    /// Seconds since the load run started.
    pub t_s: f64,
    /// Fast pg_stat_activity samples within this second.
    pub db_samples: u32,
    /// Whether PostgreSQL answered in this second (None: not sampled, no
    /// --database-url); false while it is down or unreachable.
    pub db_up: Option<bool>,
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
    pub heap_total_bytes: Option<u64>,
    /// The backend's pid this second (a change is a restart).
    pub backend_pid: Option<u32>,
    /// The backend's CPU over the second, % of one core, and its busiest thread.
    pub backend_cpu_pct: Option<f64>,
    pub hottest_thread: Option<String>,
    pub hottest_thread_pct: Option<f64>,
    pub threads: Option<u32>,
    pub open_files: Option<u32>,
    /// Active sessions by wait_event_type (`CPU`: waiting for nothing).
    pub wait_events: Option<BTreeMap<String, u32>>,
    /// The head of the longest blocking chain, when sessions wait on locks.
    pub lock: Option<LockSample>,
    /// CPU of PostgreSQL's processes serving the target database (local).
    pub db_cpu_pct: Option<f64>,
    /// chatops's own CPU, % of one core, and the machine's, % of all cores.
    pub generator_cpu_pct: Option<f64>,
    pub machine_cpu_pct: Option<f64>,
    /// PgBouncer's pools of the target database (SHOW POOLS), when watched.
    pub pgbouncer: Option<super::bouncer::BouncerSample>,
}

/// Who waits behind whom, in one second.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LockSample {
    pub waiting: u32,
    pub relation: Option<String>,
    pub wait_ms: f64,
    pub blocker_pid: Option<i32>,
    pub blocker_state: Option<String>,
    pub blocker_query: Option<String>,
    pub blocker_xact_ms: Option<f64>,
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
    /// The backend's log (which file and why), read when it exits.
    pub log: Option<String>,
    /// pg_stat_statements: present, or why there are no statement deltas.
    pub statements_note: Option<String>,
    /// PgBouncer's console sampled beside pg_stat_activity (version, where, why).
    pub pgbouncer: Option<String>,
    /// Why PgBouncer, in the path, is not sampled.
    pub pgbouncer_note: Option<String>,
    /// PgBouncer's pool size and mode for the target database.
    pub pgbouncer_pool_size: Option<u32>,
    pub pgbouncer_pool_mode: Option<String>,
    /// The database whose pools are counted.
    pub pgbouncer_database: Option<String>,
}

/// How long a stage's statement snapshots (and EXPLAIN) may take.
pub const STAGE_DB_BOUND: std::time::Duration = std::time::Duration::from_secs(3);

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
    pub heap_total_last_bytes: Option<u64>,
    pub backend_alive_at_end: Option<bool>,
    /// The backend's busiest second (% of one core) and busiest thread.
    pub max_backend_cpu_pct: Option<f64>,
    pub hottest_thread: Option<String>,
    pub hottest_thread_pct: Option<f64>,
    pub max_open_files: Option<u32>,
    /// Distinct backend pids seen (more than one: it restarted).
    pub backend_pids: Vec<u32>,
    /// Most active sessions at once per wait_event_type.
    pub max_wait_events: BTreeMap<String, u32>,
    pub max_db_cpu_pct: Option<f64>,
    pub max_generator_cpu_pct: Option<f64>,
    pub max_machine_cpu_pct: Option<f64>,
    /// Seconds PostgreSQL did not answer the sampler (down, restarting,
    /// unreachable), and when the first of them began (s since the run
    /// started); None when the database is not sampled.
    pub db_down_s: Option<u32>,
    pub db_down_from_s: Option<f64>,
    /// PgBouncer's pools over the stage (null: not watched).
    pub pgbouncer: Option<super::bouncer::BouncerSummary>,
}

pub fn summarize(samples: &[Sample]) -> Summary {
    let max32 = |f: fn(&Sample) -> Option<u32>| samples.iter().filter_map(f).max();
    let rss: Vec<u64> = samples.iter().filter_map(|s| s.rss_bytes).collect();
    let heap: Vec<u64> = samples.iter().filter_map(|s| s.heap_used_bytes).collect();
    let maxf = |f: fn(&Sample) -> Option<f64>| samples.iter().filter_map(f).reduce(f64::max);
    let hottest = samples
        .iter()
        .filter(|s| s.hottest_thread_pct.is_some())
        .max_by(|a, b| {
            a.hottest_thread_pct
                .unwrap_or(0.0)
                .total_cmp(&b.hottest_thread_pct.unwrap_or(0.0))
        });
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
        heap_total_last_bytes: samples.iter().rev().find_map(|s| s.heap_total_bytes),
        backend_alive_at_end: samples.iter().rev().find_map(|s| s.backend_alive),
        max_backend_cpu_pct: maxf(|s| s.backend_cpu_pct),
        hottest_thread: hottest.and_then(|s| s.hottest_thread.clone()),
        hottest_thread_pct: hottest.and_then(|s| s.hottest_thread_pct),
        max_open_files: max32(|s| s.open_files),
        backend_pids: {
            let mut v: Vec<u32> = Vec::new();
            for p in samples.iter().filter_map(|s| s.backend_pid) {
                if !v.contains(&p) {
                    v.push(p);
                }
            }
            v
        },
        max_wait_events: {
            let mut m: BTreeMap<String, u32> = BTreeMap::new();
            for w in samples.iter().filter_map(|s| s.wait_events.as_ref()) {
                for (k, n) in w {
                    let e = m.entry(k.clone()).or_default();
                    *e = (*e).max(*n);
                }
            }
            m
        },
        max_db_cpu_pct: maxf(|s| s.db_cpu_pct),
        max_generator_cpu_pct: maxf(|s| s.generator_cpu_pct),
        max_machine_cpu_pct: maxf(|s| s.machine_cpu_pct),
        db_down_s: samples
            .iter()
            .any(|s| s.db_up.is_some())
            .then(|| samples.iter().filter(|s| s.db_up == Some(false)).count() as u32),
        db_down_from_s: samples
            .iter()
            .find(|s| s.db_up == Some(false))
            .map(|s| s.t_s),
        pgbouncer: super::bouncer::summarize(samples.iter().filter_map(|s| s.pgbouncer.as_ref())),
    }
}

/// The running sampler.
pub struct Watcher {
    pub(super) samples: Arc<Mutex<Vec<Sample>>>,
    pub(super) task: Option<tokio::task::JoinHandle<()>>,
    pub backend: Backend,
    pub(super) db: Option<super::stage_db::StageDb>,
    /// The backend's exit, once seen.
    pub(super) exit: Arc<Mutex<Option<crate::diagnose::load::ExitEvidence>>>,
    /// Asks the loop for a sample now (the end of a stage's last second).
    pub(super) flush: tokio::sync::mpsc::Sender<tokio::sync::oneshot::Sender<()>>,
}

impl Watcher {
    /// Takes the samples gathered since the last call.
    pub fn take(&self) -> Vec<Sample> {
        self.samples
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default()
    }

    /// Records a sample now, covering the time since the last one (at most
    /// 1.5 s of waiting: a stuck query does not hold the stage up).
    pub async fn flush(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.flush.send(tx).await.is_ok() {
            let _ = tokio::time::timeout(std::time::Duration::from_millis(1500), rx).await;
        }
    }

    /// The backend's exit (its pid, when, and its log's last words).
    pub fn exit(&self) -> Option<crate::diagnose::load::ExitEvidence> {
        self.exit.lock().ok().and_then(|e| e.clone())
    }

    /// Statement and table counters at a stage's start (within
    /// [`STAGE_DB_BOUND`]: a database that stopped answering, or a network
    /// that stopped forwarding, never holds a stage up).
    pub async fn stage_begin(&mut self) {
        if let Some(db) = &mut self.db {
            let _ = tokio::time::timeout(STAGE_DB_BOUND, db.begin()).await;
        }
    }

    /// The stage's worst statement and sequential scans since
    /// [`Self::stage_begin`] (None when they could not be read in time).
    pub async fn stage_end(&mut self) -> Option<crate::diagnose::load::SlowEvidence> {
        match &mut self.db {
            Some(db) => tokio::time::timeout(STAGE_DB_BOUND, db.end())
                .await
                .ok()
                .flatten(),
            None => None,
        }
    }

    /// Stops sampling.
    pub fn stop(mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

pub use super::sampler::start;

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
            backend_alive: Some(true),
            ..Default::default()
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
