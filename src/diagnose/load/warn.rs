//! What would break next, for a run whose stages passed: the same evidence
//! as the breaking point's, below the failure thresholds.

use super::detect::climbing;
use super::evidence::StageEvidence;
use crate::diagnose::cause::Cause;
use serde::Serialize;

/// A cause that is near, with its evidence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Warning {
    pub cause: Cause,
    /// The stage it was seen in (the last one for trends across stages).
    pub stage: String,
    pub message: String,
    pub fix: String,
}

/// Heap use the seed alerts on (heapUsed / heapTotal).
pub const HEAP_WARN: f64 = 0.8;
/// Memory retained per request that is worth a warning, in bytes.
pub const BYTES_PER_REQUEST_WARN: u64 = 4096;

/// Warnings over the stages run, in stage order.
pub fn warnings(stages: &[StageEvidence]) -> Vec<Warning> {
    let mut out = Vec::new();
    let mut w = |cause: Cause, stage: &str, message: String| {
        if !out.iter().any(|x: &Warning| x.cause == cause) {
            out.push(Warning {
                cause,
                stage: stage.to_string(),
                message,
                fix: cause.fix().into(),
            });
        }
    };
    for e in stages {
        if let Some(h) = e.heap
            && h.total_bytes > 0
            && h.used_bytes as f64 >= HEAP_WARN * h.total_bytes as f64
        {
            w(
                Cause::MemoryGrowth,
                &e.stage,
                format!(
                    "heapUsed {:.0} MB is {:.0}% of heapTotal {:.0} MB (the seed alerts above 80%)",
                    h.used_bytes as f64 / 1_048_576.0,
                    h.used_bytes as f64 * 100.0 / h.total_bytes as f64,
                    h.total_bytes as f64 / 1_048_576.0
                ),
            );
        }
        if let Some((from, to)) = e.memory
            && e.requests > 0
            && to > from
            && to - from >= 8 * 1_048_576
            && (to - from) / e.requests >= BYTES_PER_REQUEST_WARN
        {
            w(
                Cause::MemoryGrowth,
                &e.stage,
                format!(
                    "backend memory grew {:.0} MB → {:.0} MB over {} requests ({:.0} KB per request) and was not released",
                    from as f64 / 1_048_576.0,
                    to as f64 / 1_048_576.0,
                    e.requests,
                    (to - from) as f64 / e.requests as f64 / 1024.0
                ),
            );
        }
        if let (Some(a), Some(l)) = (
            e.max_active.max(e.pool_queue.as_ref().map(|q| q.sessions)),
            e.connection_limit,
        ) && l > 0
            && a * 10 >= l * 8
        {
            w(
                Cause::PoolSaturation,
                &e.stage,
                format!(
                    "{a} sessions busy or held against the backend's connection_limit of {l} ({:.0}%)",
                    a as f64 * 100.0 / l as f64
                ),
            );
        }
        if let Some(b) = &e.pgbouncer
            && b.max_waiting > 0
        {
            w(
                Cause::PgbouncerQueue,
                &e.stage,
                format!(
                    "up to {} client(s) waited in PgBouncer for a server connection (maxwait {:.1} s, {} server connection(s) of pool {})",
                    b.max_waiting,
                    b.max_maxwait_s,
                    b.max_servers,
                    b.pool_size.map_or("?".into(), |p| p.to_string())
                ),
            );
        }
        if let (Some(s), Some(u)) = (e.max_server_sessions, e.usable_connections)
            && u > 0
            && s * 10 >= u * 8
        {
            w(
                Cause::DatabaseConnections,
                &e.stage,
                format!(
                    "{s} client sessions on the server against {u} usable connections ({:.0}%)",
                    s as f64 * 100.0 / u as f64
                ),
            );
        }
        if let Some(l) = &e.lock
            && l.max_waiting > 0
        {
            w(
                Cause::LockContention,
                &e.stage,
                format!(
                    "{} session(s) waited on locks{} (longest {:.0} ms)",
                    l.max_waiting,
                    l.relation
                        .as_deref()
                        .map(|r| format!(" on {r}"))
                        .unwrap_or_default(),
                    l.max_wait_ms
                ),
            );
        }
        if let Some(s) = &e.slow
            && s.calls >= 100
            && s.mean_ms >= 20.0
        {
            w(
                Cause::SlowQueries,
                &e.stage,
                format!(
                    "a statement ran {} times at {:.1} ms on average (PgHero's slow: ≥ 100 calls, ≥ 20 ms): `{}`{}",
                    s.calls,
                    s.mean_ms,
                    s.query,
                    match (&s.relation, &s.column) {
                        (Some(r), Some(c)) => format!("; sequential scan on {r}, no index on {c}"),
                        _ => String::new(),
                    }
                ),
            );
        }
        if let Some(b) = &e.backend
            && b.hottest_pct >= 70.0
        {
            w(
                Cause::BackendCpu,
                &e.stage,
                format!(
                    "the backend's thread {} reached {:.0}% of one core",
                    b.hottest_thread, b.hottest_pct
                ),
            );
        }
        if let Some(g) = &e.generator
            && let Some(why) = g.why()
        {
            w(Cause::GeneratorSaturated, &e.stage, why);
        }
    }
    let p95s: Vec<(f64, Option<f64>)> = stages.iter().map(|e| (e.p95_ms, e.p95_limit_ms)).collect();
    if climbing(&p95s)
        && let Some(last) = stages.last()
    {
        let series: Vec<String> = stages.iter().map(|e| format!("{:.1}", e.p95_ms)).collect();
        w(
            Cause::OverBudget,
            &last.stage,
            format!(
                "p95 climbed from stage to stage: {} ms{}",
                series.join(" → "),
                last.p95_limit_ms
                    .map(|l| format!(" (bound {l} ms)"))
                    .unwrap_or_default()
            ),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::evidence::{Heap, LockEvidence};
    use super::*;

    fn st(name: &str) -> StageEvidence {
        StageEvidence {
            stage: name.into(),
            requests: 1000,
            p95_ms: 10.0,
            p95_limit_ms: Some(200.0),
            ..Default::default()
        }
    }

    #[test]
    fn clients_waiting_in_pgbouncer_warn_before_they_break_a_stage() {
        let mut e = st("crowd");
        e.pgbouncer = Some(super::super::evidence::BouncerQueue {
            database: Some("chat_backend_db".into()),
            max_waiting: 32,
            max_maxwait_s: 0.04,
            max_servers: 20,
            pool_size: Some(20),
            max_clients: 80,
            waiting_from_s: Some(3.0),
        });
        let w = warnings(&[e]);
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(w[0].cause, Cause::PgbouncerQueue);
        assert!(
            w[0].message.contains("up to 32 client(s) waited"),
            "{}",
            w[0].message
        );
        assert!(w[0].message.contains("20 server connection(s) of pool 20"));
        let mut quiet = st("calm");
        quiet.pgbouncer = Some(super::super::evidence::BouncerQueue {
            database: None,
            max_waiting: 0,
            max_maxwait_s: 0.0,
            max_servers: 4,
            pool_size: Some(20),
            max_clients: 10,
            waiting_from_s: None,
        });
        assert!(warnings(&[quiet]).is_empty());
    }

    #[test]
    fn a_healthy_run_has_no_warning() {
        let mut a = st("a");
        a.memory = Some((80 << 20, 82 << 20));
        a.max_active = Some(2);
        a.connection_limit = Some(10);
        a.heap = Some(Heap {
            used_bytes: 30 << 20,
            total_bytes: 60 << 20,
        });
        assert!(warnings(&[a.clone(), st("b")]).is_empty());
    }

    #[test]
    fn each_warning_and_its_numbers() {
        let mut a = st("a");
        a.heap = Some(Heap {
            used_bytes: 85 << 20,
            total_bytes: 100 << 20,
        });
        let w = warnings(&[a]);
        assert_eq!(w[0].cause, Cause::MemoryGrowth);
        assert!(w[0].message.contains("85%"), "{}", w[0].message);
        // 256 KB per request over 1000 requests: 250 MB retained.
        let mut leak = st("leak");
        leak.memory = Some((100 << 20, (100 << 20) + 1000 * 256 * 1024));
        let w = warnings(&[leak]);
        assert!(
            w[0].message.contains("256 KB per request"),
            "{}",
            w[0].message
        );
        let mut pool = st("p");
        pool.max_active = Some(8);
        pool.connection_limit = Some(10);
        assert_eq!(warnings(&[pool])[0].cause, Cause::PoolSaturation);
        let mut lock = st("l");
        lock.lock = Some(LockEvidence {
            max_waiting: 1,
            relation: Some("conversations".into()),
            blocker_pid: None,
            blocker_query: None,
            blocker_state: None,
            blocker_xact_ms: None,
            max_wait_ms: 40.0,
            first_s: 1.0,
        });
        let w = warnings(&[lock]);
        assert_eq!(w[0].cause, Cause::LockContention);
        assert!(w[0].message.contains("conversations"));
        let mut b = st("b");
        b.p95_ms = 40.0;
        let mut c = st("c");
        c.p95_ms = 120.0;
        let w = warnings(&[st("a"), b, c]);
        assert_eq!(w.len(), 1);
        assert!(
            w[0].message.contains("10.0 → 40.0 → 120.0"),
            "{}",
            w[0].message
        );
    }
}
