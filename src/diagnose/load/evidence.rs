//! What a load stage measured, as the ranking reads it: the client's counts
//! and the server-side evidence (backend process, PostgreSQL, the pool, the
//! generator and the machine). Every piece is optional: a remote backend has
//! no threads to read, a run without `--database-url` no sessions.

use crate::diagnose::cause::Cause;
use serde::Serialize;

/// What a failed (or passing) load stage measured, for [`super::rank`].
#[derive(Debug, Clone, Default)]
pub struct StageEvidence {
    pub stage: String,
    pub requests: u64,
    pub p95_ms: f64,
    pub p95_limit_ms: Option<f64>,
    pub error_pct: f64,
    pub error_limit_pct: Option<f64>,
    pub refused: u64,
    /// Failures below HTTP: resets, answers cut short, TLS handshakes.
    pub transport: u64,
    /// The target is https://.
    pub tls: bool,
    pub timeouts: u64,
    pub rate_limited: u64,
    pub server_5xx: u64,
    pub pool_timeouts: u64,
    /// Most active sessions of the target database in pg_stat_activity.
    pub max_active: Option<u32>,
    /// Most sessions of the target database (any state).
    pub max_sessions: Option<u32>,
    /// Most client sessions on the server.
    pub max_server_sessions: Option<u32>,
    pub usable_connections: Option<u32>,
    pub connection_limit: Option<u32>,
    pub backend_alive: Option<bool>,
    /// Backend memory (RSS or heapUsed) at the stage's start and end.
    pub memory: Option<(u64, u64)>,
    /// Seconds into the stage of the first second with errors or latency
    /// over the bound (None: unknown).
    pub first_failure_s: Option<f64>,
    pub backend: Option<BackendCpu>,
    /// The backend exited (or was replaced) during the stage.
    pub exit: Option<ExitEvidence>,
    pub heap: Option<Heap>,
    pub lock: Option<LockEvidence>,
    pub slow: Option<SlowEvidence>,
    pub pool_queue: Option<PoolQueue>,
    /// PgBouncer's pools over the stage, when its console was sampled.
    pub pgbouncer: Option<BouncerQueue>,
    pub cold_start: Option<ColdStart>,
    pub generator: Option<GeneratorLoad>,
    /// A cause found in the backend's log or answers (schema drift, the
    /// database down, too many clients) with its lines.
    pub witness: Option<WitnessEvidence>,
    /// Per-second series, for the record when nothing explains the stage.
    pub db_cpu_pct: Option<f64>,
}

/// The backend process's CPU, the busiest second of the stage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackendCpu {
    /// Whole process, % of one core.
    pub max_total_pct: f64,
    /// Its busiest thread at that time, % of one core.
    pub hottest_thread: String,
    pub hottest_pct: f64,
    /// Seconds into the stage when the busiest thread first passed 90%.
    pub saturated_from_s: Option<f64>,
    /// Active sessions in PostgreSQL while it was saturated (the database idle?).
    pub db_active_then: Option<u32>,
    pub threads: u32,
}

/// Why the backend stopped: the end of its log, classified.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExitEvidence {
    pub pid: u32,
    /// The pid now listening, when another process replaced it (a restart).
    pub new_pid: Option<u32>,
    pub at_s: f64,
    /// The log's cause (crash, memory_growth for an OOM, database_down…).
    pub cause: Cause,
    pub summary: String,
    /// The log lines (with the first stack frames).
    pub lines: Vec<String>,
    /// Which log was read and why.
    pub log: Option<String>,
}

/// heapUsed against heapTotal from the health endpoint, at the stage's end.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Heap {
    pub used_bytes: u64,
    pub total_bytes: u64,
}

/// Sessions waiting for locks, and the head of the chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LockEvidence {
    pub max_waiting: u32,
    pub relation: Option<String>,
    pub blocker_pid: Option<i32>,
    pub blocker_query: Option<String>,
    pub blocker_state: Option<String>,
    pub blocker_xact_ms: Option<f64>,
    /// The longest a session was seen waiting, in milliseconds.
    pub max_wait_ms: f64,
    pub first_s: f64,
}

/// The stage's worst statement (pg_stat_statements deltas) and the scan
/// behind it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlowEvidence {
    pub query: String,
    pub calls: i64,
    pub mean_ms: f64,
    pub total_ms: f64,
    pub rows: i64,
    /// The relation EXPLAIN scans sequentially, and the filter column.
    pub relation: Option<String>,
    pub column: Option<String>,
    /// Rows read by sequential scans on that relation during the stage.
    pub seq_tup_read: Option<i64>,
    pub explain: Option<String>,
    /// The share of the database's statement time this statement took.
    pub share_pct: f64,
}

/// Requests queuing for a pooled connection: the backend's sessions at its
/// connection_limit while few of them are active in PostgreSQL.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolQueue {
    pub connection_limit: u32,
    pub sessions: u32,
    pub max_active: u32,
    pub latency_from_ms: f64,
    pub latency_to_ms: f64,
    pub from_s: f64,
}

/// PgBouncer's pools of the target database over a stage (SHOW POOLS).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BouncerQueue {
    pub database: Option<String>,
    /// Most clients waiting for a server connection at once (cl_waiting).
    pub max_waiting: u32,
    /// The longest wait seen (maxwait), seconds.
    pub max_maxwait_s: f64,
    /// Most server connections open, and the pool's size.
    pub max_servers: u32,
    pub pool_size: Option<u32>,
    /// Most client connections (active + waiting).
    pub max_clients: u32,
    /// Seconds into the stage when clients first waited.
    pub waiting_from_s: Option<f64>,
}

/// High latency only early in the stage, while the pool was opening connections.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColdStart {
    pub early_mean_ms: f64,
    pub late_mean_ms: f64,
    pub sessions_from: u32,
    pub sessions_to: u32,
    pub early_s: f64,
}

/// The load generator's and the machine's CPU.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GeneratorLoad {
    /// chatops's CPU, % of one core.
    pub cpu_pct: f64,
    pub threads: u32,
    /// The machine's busiest second, % of all cores.
    pub machine_pct: Option<f64>,
    pub cores: u32,
}

impl GeneratorLoad {
    /// Saturated: the machine above 90% of its cores, or the generator
    /// above 90% of a core per generator thread.
    pub fn saturated(&self) -> bool {
        self.machine_pct.is_some_and(|m| m >= 90.0)
            || self.cpu_pct >= 90.0 * self.threads.max(1) as f64
    }

    /// Why latencies are unreliable, when they are.
    pub fn why(&self) -> Option<String> {
        if !self.saturated() {
            return None;
        }
        let mut parts = Vec::new();
        if let Some(m) = self.machine_pct.filter(|m| *m >= 90.0) {
            parts.push(format!(
                "the machine was {m:.0}% busy over its {} cores",
                self.cores
            ));
        }
        if self.cpu_pct >= 90.0 * self.threads.max(1) as f64 {
            parts.push(format!(
                "chatops used {:.0}% CPU for {} generator thread(s)",
                self.cpu_pct, self.threads
            ));
        }
        Some(format!(
            "latencies are unreliable: {} (the generator competes with the backend and PostgreSQL for the same cores)",
            parts.join(" and ")
        ))
    }
}

/// A cause the backend's log (the lines written while the stage ran) or
/// its error answers' bodies named, with the lines that show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WitnessEvidence {
    pub cause: Cause,
    /// The error's own code (`P2022`, `P2024`, `53300` …) when known.
    pub code: Option<String>,
    pub summary: String,
    pub fix: String,
    /// The log's lines, then the bodies' (`HTTP 400: …`), of that cause.
    pub lines: Vec<String>,
    /// Which log was read and why (None: none was found; the bodies alone).
    pub log: Option<String>,
    /// Names and numbers the texts carried (the pool's limit, the address).
    pub facts: crate::diagnose::witness::Facts,
    /// Other causes the log or the bodies named.
    pub also: Vec<Cause>,
}
