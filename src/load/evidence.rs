//! From a stage's measurements and samples to the ranking's
//! [`StageEvidence`]: the per-second series (client counts beside the
//! database's sessions), the backend's CPU and threads, lock waits, the
//! slow statement, the pool queue, a cold start, the generator's load and
//! the backend's exit.

use super::monitor::{self, Sample};
use super::result::StageResult;
use crate::diagnose::load::{
    self as judge, BackendCpu, BouncerQueue, ColdStart, ExitEvidence, GeneratorLoad, Heap,
    LockEvidence, PoolQueue, Second, SlowEvidence, StageEvidence, WitnessEvidence,
};
use serde::Serialize;

/// A busiest thread at or above this share of one core is saturated.
pub const THREAD_SATURATED_PCT: f64 = 90.0;

/// The structured evidence of a breaking point (what its lines say, as data).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Details {
    pub backend: Option<BackendCpu>,
    pub lock: Option<LockEvidence>,
    pub slow: Option<SlowEvidence>,
    pub pool_queue: Option<PoolQueue>,
    pub pgbouncer: Option<BouncerQueue>,
    pub cold_start: Option<ColdStart>,
    pub generator: Option<GeneratorLoad>,
    pub exit: Option<ExitEvidence>,
    pub heap: Option<Heap>,
    pub witness: Option<WitnessEvidence>,
}

impl Details {
    pub fn of(e: &StageEvidence) -> Details {
        Details {
            backend: e.backend.clone(),
            lock: e.lock.clone(),
            slow: e.slow.clone(),
            pool_queue: e.pool_queue.clone(),
            pgbouncer: e.pgbouncer.clone(),
            cold_start: e.cold_start.clone(),
            generator: e.generator.clone(),
            exit: e.exit.clone(),
            heap: e.heap,
            witness: e.witness.clone(),
        }
    }
}

fn in_stage(r: &StageResult, s: &Sample) -> f64 {
    s.t_s - r.offset_s
}

/// One [`Second`] per progress point: the requests finished in it, their
/// mean latency, and the most sessions the database had meanwhile.
pub fn seconds(r: &StageResult) -> Vec<Second> {
    let mut out = Vec::new();
    let mut prev = super::result::Progress::default();
    for p in &r.progress {
        let n = p.requests.saturating_sub(prev.requests);
        let within: Vec<&Sample> = r
            .samples
            .iter()
            .filter(|s| {
                let t = in_stage(r, s);
                t > prev.t_s - 0.5 && t <= p.t_s + 0.5
            })
            .collect();
        out.push(Second {
            t_s: p.t_s,
            requests: n,
            errors: p.errors.saturating_sub(prev.errors),
            mean_ms: (n > 0).then(|| (p.latency_ms - prev.latency_ms).max(0.0) / n as f64),
            sessions: within.iter().filter_map(|s| s.sessions).max(),
            active: within.iter().filter_map(|s| s.active).max(),
        });
        prev = *p;
    }
    out
}

fn backend_cpu(r: &StageResult) -> Option<BackendCpu> {
    let hot = r
        .samples
        .iter()
        .filter(|s| s.hottest_thread_pct.is_some())
        .max_by(|a, b| {
            a.hottest_thread_pct
                .unwrap_or(0.0)
                .total_cmp(&b.hottest_thread_pct.unwrap_or(0.0))
        })?;
    let sat = r.samples.iter().find(|s| {
        s.hottest_thread_pct
            .is_some_and(|p| p >= THREAD_SATURATED_PCT)
    });
    Some(BackendCpu {
        max_total_pct: r.watch.max_backend_cpu_pct.unwrap_or(0.0),
        hottest_thread: hot.hottest_thread.clone().unwrap_or_default(),
        hottest_pct: hot.hottest_thread_pct.unwrap_or(0.0),
        saturated_from_s: sat.map(|s| (in_stage(r, s).max(0.0) * 10.0).round() / 10.0),
        db_active_then: sat.or(Some(hot)).and_then(|s| s.active),
        threads: hot.threads.unwrap_or(0),
    })
}

fn lock(r: &StageResult) -> Option<LockEvidence> {
    let fast_max = r.watch.max_waiting_lock.unwrap_or(0);
    let with: Vec<&Sample> = r.samples.iter().filter(|s| s.lock.is_some()).collect();
    if with.is_empty() && fast_max == 0 {
        return None;
    }
    let worst = with.iter().max_by(|a, b| {
        let w = |s: &Sample| s.lock.as_ref().map_or(0.0, |l| l.wait_ms);
        w(a).total_cmp(&w(b))
    });
    let l = worst.and_then(|s| s.lock.as_ref());
    let first = r
        .samples
        .iter()
        .find(|s| s.lock.is_some() || s.waiting_lock.is_some_and(|w| w > 0))
        .map(|s| (in_stage(r, s).max(0.0) * 10.0).round() / 10.0)
        .unwrap_or(0.0);
    Some(LockEvidence {
        max_waiting: with
            .iter()
            .filter_map(|s| s.lock.as_ref().map(|l| l.waiting))
            .max()
            .unwrap_or(0)
            .max(fast_max),
        relation: l.and_then(|l| l.relation.clone()),
        blocker_pid: l.and_then(|l| l.blocker_pid),
        blocker_query: l.and_then(|l| l.blocker_query.clone()),
        blocker_state: l.and_then(|l| l.blocker_state.clone()),
        blocker_xact_ms: l.and_then(|l| l.blocker_xact_ms),
        max_wait_ms: l.map_or(0.0, |l| l.wait_ms),
        first_s: first,
    })
}

/// The stage's evidence for the ranking. `exit` is the backend's exit if
/// one was seen; `threads` the generator's thread count.
pub fn stage_evidence(
    r: &StageResult,
    backend: &monitor::Backend,
    tls: bool,
    exit: Option<&ExitEvidence>,
    threads: u32,
) -> StageEvidence {
    let t = r.stats.total();
    let w = &r.watch;
    let memory = match (w.rss_first_bytes, w.rss_max_bytes) {
        (Some(a), Some(b)) => Some((a, b)),
        _ => match (w.heap_first_bytes, w.heap_last_bytes) {
            (Some(a), Some(b)) => Some((a, b)),
            _ => None,
        },
    };
    let secs = seconds(r);
    let end = r.offset_s + r.elapsed.as_secs_f64() + 1.0;
    let exit = exit
        .filter(|x| x.at_s >= r.offset_s && x.at_s <= end)
        .map(|x| ExitEvidence {
            at_s: ((x.at_s - r.offset_s) * 10.0).round() / 10.0,
            ..x.clone()
        });
    let heap = r
        .samples
        .iter()
        .rev()
        .find_map(|s| match (s.heap_used_bytes, s.heap_total_bytes) {
            (Some(u), Some(t)) => Some(Heap {
                used_bytes: u,
                total_bytes: t,
            }),
            _ => None,
        });
    StageEvidence {
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
        server_5xx: t.errors.server_5xx,
        pool_timeouts: t.pool_timeouts,
        max_active: w.max_active,
        max_sessions: w.max_sessions,
        max_server_sessions: w.max_server_sessions,
        usable_connections: backend.usable_connections,
        connection_limit: backend.connection_limit,
        backend_alive: w.backend_alive_at_end,
        memory,
        first_failure_s: judge::first_failure(&secs, r.stage.p95_ms),
        backend: backend_cpu(r),
        exit,
        heap,
        lock: lock(r),
        slow: r.slow.clone(),
        pool_queue: judge::pool_queue(&secs, backend.connection_limit, r.stage.p95_ms),
        pgbouncer: w.pgbouncer.as_ref().map(|b| BouncerQueue {
            database: backend.pgbouncer_database.clone(),
            max_waiting: b.max_waiting,
            max_maxwait_s: b.max_maxwait_s,
            max_servers: b.max_servers,
            pool_size: backend.pgbouncer_pool_size,
            max_clients: b.max_clients,
            waiting_from_s: r
                .samples
                .iter()
                .find(|s| s.pgbouncer.as_ref().is_some_and(|p| p.cl_waiting > 0))
                .map(|s| in_stage(r, s)),
        }),
        cold_start: judge::cold_start(&secs, r.stage.p95_ms),
        generator: Some(GeneratorLoad {
            cpu_pct: r.cpu_pct,
            threads,
            machine_pct: {
                let m: Vec<f64> = r.samples.iter().filter_map(|s| s.machine_cpu_pct).collect();
                (!m.is_empty())
                    .then(|| (m.iter().sum::<f64>() / m.len() as f64 * 10.0).round() / 10.0)
            },
            cores: crate::probe::threads::cores(),
        }),
        witness: None,
        db_cpu_pct: w.max_db_cpu_pct,
    }
}

#[cfg(test)]
mod tests {
    use super::super::monitor::{LockSample, summarize};
    use super::super::plan::{Model, Stage};
    use super::super::result::{Progress, StageStatus};
    use super::super::stats::TaskStats;
    use super::*;
    use std::time::Duration;

    fn result(samples: Vec<Sample>, progress: Vec<Progress>) -> StageResult {
        StageResult {
            stage: Stage {
                name: "high".into(),
                vus: 50,
                rate: None,
                duration: Duration::from_secs(3),
                p95_ms: Some(200.0),
                max_error_pct: Some(1.0),
            },
            model: Model::Closed,
            elapsed: Duration::from_secs(3),
            kinds: vec!["send".into()],
            stats: TaskStats::new(1),
            planned: None,
            watch: summarize(&samples),
            samples,
            status: StageStatus::Fail,
            failures: Vec::new(),
            cpu_pct: 30.0,
            progress,
            seconds: Vec::new(),
            offset_s: 10.0,
            slow: None,
            unreliable: None,
        }
    }

    fn sample(t: f64, sessions: u32, active: u32) -> Sample {
        Sample {
            t_s: t,
            sessions: Some(sessions),
            active: Some(active),
            ..Default::default()
        }
    }

    #[test]
    fn seconds_pair_client_counts_with_the_sessions_of_the_same_second() {
        let p = |t, requests, errors, latency_ms| Progress {
            t_s: t,
            requests,
            errors,
            latency_ms,
        };
        let r = result(
            vec![sample(11.0, 2, 1), sample(12.0, 5, 2), sample(13.0, 5, 4)],
            vec![
                p(1.0, 100, 0, 1000.0),
                p(2.0, 150, 2, 6000.0),
                p(3.0, 150, 2, 6000.0),
            ],
        );
        let s = seconds(&r);
        assert_eq!(s.len(), 3);
        assert_eq!(
            (s[0].requests, s[0].mean_ms, s[0].sessions),
            (100, Some(10.0), Some(2))
        );
        assert_eq!(
            (s[1].requests, s[1].errors, s[1].mean_ms),
            (50, 2, Some(100.0))
        );
        assert_eq!(s[1].sessions, Some(5));
        assert_eq!(s[2].mean_ms, None, "no request finished in that second");
        assert_eq!(s[2].active, Some(4));
    }

    #[test]
    fn samples_become_lock_and_cpu_evidence_in_stage_time() {
        let mut a = sample(11.0, 5, 3);
        a.hottest_thread = Some("node".into());
        a.hottest_thread_pct = Some(97.0);
        a.backend_cpu_pct = Some(110.0);
        a.threads = Some(11);
        let mut b = sample(12.0, 5, 1);
        b.waiting_lock = Some(3);
        b.lock = Some(LockSample {
            waiting: 3,
            relation: Some("conversations".into()),
            wait_ms: 850.0,
            blocker_pid: Some(99),
            blocker_state: Some("idle in transaction".into()),
            blocker_query: Some("UPDATE conversations SET \"updatedAt\" = $1".into()),
            blocker_xact_ms: Some(4000.0),
        });
        let r = result(vec![a, b], Vec::new());
        let e = stage_evidence(&r, &monitor::Backend::default(), false, None, 2);
        let c = e.backend.clone().expect("cpu");
        assert_eq!((c.hottest_thread.as_str(), c.hottest_pct), ("node", 97.0));
        assert_eq!(c.saturated_from_s, Some(1.0));
        assert_eq!(c.db_active_then, Some(3));
        let l = e.lock.clone().expect("lock");
        assert_eq!(l.relation.as_deref(), Some("conversations"));
        assert_eq!(
            (l.max_waiting, l.blocker_pid, l.first_s),
            (3, Some(99), 2.0)
        );
        // The ranking reads it: a test can assert the cause and find the relation.
        let bp = crate::diagnose::load::rank(&e);
        assert_eq!(
            bp.primary.cause,
            crate::diagnose::cause::Cause::LockContention
        );
        assert!(bp.primary.root_cause.contains("`conversations`"));
        // An exit outside the stage's time belongs to another stage.
        let x = ExitEvidence {
            pid: 1,
            new_pid: None,
            at_s: 30.0,
            cause: crate::diagnose::cause::Cause::Crash,
            summary: String::new(),
            lines: Vec::new(),
            log: None,
        };
        let e = stage_evidence(&r, &monitor::Backend::default(), false, Some(&x), 2);
        assert_eq!(e.exit, None);
        let e = stage_evidence(
            &r,
            &monitor::Backend::default(),
            false,
            Some(&ExitEvidence { at_s: 11.5, ..x }),
            2,
        );
        assert_eq!(e.exit.map(|x| x.at_s), Some(1.5));
    }
}
