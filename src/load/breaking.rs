//! From a stage's figures to its verdict: the criteria it missed (which
//! decide pass or fail), and for the first failed stage the breaking point,
//! its cause, root cause and remedy worded by `diagnose`, with the evidence
//! it rests on.

use super::monitor;
use super::result::{BreakingPoint, StageResult};

/// The stage's criteria it missed, worded for the report.
pub fn criteria_failures(r: &StageResult) -> Vec<String> {
    let t = r.stats.total();
    let mut f = Vec::new();
    if t.requests() == 0 {
        f.push("no request completed".to_string());
        return f;
    }
    let p95 = t.latency().p95_ms;
    if let Some(l) = r.stage.p95_ms
        && p95 >= l
    {
        f.push(format!("p95 {p95:.1} ms ≥ {l} ms"));
    }
    let e = t.error_pct();
    match r.stage.max_error_pct {
        Some(l) if e > l => f.push(format!("error rate {e:.2}% > {l}%")),
        // Without an error bound a stage may have errors, but not only errors.
        None if t.ok == 0 => f.push(format!(
            "no request succeeded ({} of {} failed)",
            t.requests(),
            t.requests()
        )),
        _ => {}
    }
    if let Some(p) = r.planned
        && p > 0
        && r.stats.dropped * 100 > p
    {
        f.push(format!(
            "{} of {p} scheduled sends dropped: the target rate was not reached",
            r.stats.dropped
        ));
    }
    f
}

/// The breaking point's diagnosis from a failed stage's measurements and samples.
/// `tls`: the target is https:// (a handshake failure is then a likely cause).
pub fn diagnose_stage(r: &StageResult, backend: &monitor::Backend, tls: bool) -> BreakingPoint {
    use crate::diagnose::{StageEvidence, breaking_point, diagnose};
    let t = r.stats.total();
    let w = &r.watch;
    let memory = match (w.rss_first_bytes, w.rss_max_bytes) {
        (Some(a), Some(b)) => Some((a, b)),
        _ => match (w.heap_first_bytes, w.heap_last_bytes) {
            (Some(a), Some(b)) => Some((a, b)),
            _ => None,
        },
    };
    let ev = StageEvidence {
        stage: r.stage.name.clone(),
        requests: t.requests(),
        p95_ms: t.latency().p95_ms,
        p95_limit_ms: r.stage.p95_ms,
        error_pct: t.error_pct(),
        error_limit_pct: r.stage.max_error_pct,
        refused: t.errors.refused,
        transport: t.errors.transport,
        tls,
        timeouts: t.errors.timeout,
        rate_limited: t.errors.rate_limited,
        pool_timeouts: t.pool_timeouts,
        max_active: w.max_active,
        max_server_sessions: w.max_server_sessions,
        usable_connections: backend.usable_connections,
        connection_limit: backend.connection_limit,
        backend_alive: w.backend_alive_at_end,
        memory,
    };
    let (cause, fault) = breaking_point(&ev);
    let d = diagnose(&fault);
    let mut evidence = r.failures.clone();
    let e = &t.errors;
    evidence.push(format!(
        "{} requests: {} refused, {} timeout, {} × 429, {} other 4xx, {} 5xx, {} transport; {} carried P2024",
        t.requests(),
        e.refused,
        e.timeout,
        e.rate_limited,
        e.client_4xx,
        e.server_5xx,
        e.transport,
        t.pool_timeouts
    ));
    if w.samples > 0 && w.max_active.is_some() {
        let series: Vec<String> = r
            .samples
            .iter()
            .filter_map(|s| s.active.map(|a| format!("{a}")))
            .collect();
        evidence.push(format!(
            "pg_stat_activity, once a second: active {} (max {}), sessions max {}, idle in transaction max {}, waiting on locks max {}{}",
            series.join(" "),
            w.max_active.unwrap_or(0),
            w.max_sessions.unwrap_or(0),
            w.max_idle_in_transaction.unwrap_or(0),
            w.max_waiting_lock.unwrap_or(0),
            match backend.connection_limit {
                Some(l) => format!("; the backend's connection_limit is {l}"),
                None => String::new(),
            }
        ));
    } else if let Some(n) = &backend.database_note {
        evidence.push(n.clone());
    }
    if let (Some(a), Some(b)) = (w.rss_first_bytes, w.rss_max_bytes) {
        evidence.push(format!(
            "backend RSS {:.0} MB → max {:.0} MB",
            a as f64 / 1_048_576.0,
            b as f64 / 1_048_576.0
        ));
    }
    BreakingPoint {
        stage: r.stage.name.clone(),
        cause,
        root_cause: d.root_cause,
        remedy: d.remedy,
        evidence,
    }
}
