//! From a stage's figures to its verdict: the criteria it missed (which
//! decide pass or fail), and for the first failed stage the breaking point,
//! its cause, root cause and remedy worded by `diagnose`, with the evidence
//! it rests on.

use super::evidence::Details;
use super::monitor;
use super::result::{BreakingPoint, StageResult};
use crate::diagnose::load::{StageEvidence, rank};

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

/// The breaking point's diagnosis from a failed stage's evidence: the
/// ranked cause, its root cause and remedy, the contributing causes and
/// what was ruled out, with the stage's figures as evidence.
pub fn diagnose_stage(
    r: &StageResult,
    ev: &StageEvidence,
    backend: &monitor::Backend,
) -> BreakingPoint {
    let ranked = rank(ev);
    let t = r.stats.total();
    let w = &r.watch;
    let mut evidence = r.failures.clone();
    evidence.extend(ranked.primary.evidence.iter().cloned());
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
            "pg_stat_activity, 5 samples a second (maxima per second): active {} (max {}), sessions max {}, idle in transaction max {}, waiting on locks max {}{}",
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
        if !w.max_wait_events.is_empty() {
            let waits: Vec<String> = w
                .max_wait_events
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            evidence.push(format!(
                "active sessions by wait event (max at once): {}",
                waits.join(", ")
            ));
        }
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
    if let (Some(c), Some(t)) = (w.max_backend_cpu_pct, &w.hottest_thread) {
        evidence.push(format!(
            "backend CPU max {c:.0}% of one core, busiest thread {t} {:.0}%{}",
            w.hottest_thread_pct.unwrap_or(0.0),
            w.max_db_cpu_pct
                .map(|d| format!("; PostgreSQL's processes {d:.0}%"))
                .unwrap_or_default()
        ));
    }
    if let Some(u) = &r.unreliable {
        evidence.push(u.clone());
    }
    BreakingPoint {
        stage: r.stage.name.clone(),
        cause: ranked.primary.cause,
        root_cause: ranked.primary.root_cause,
        remedy: ranked.primary.fix,
        evidence,
        contributing: ranked.contributing,
        ruled_out: ranked.ruled_out,
        details: Details::of(ev),
        first_failure_s: ev.first_failure_s,
    }
}
