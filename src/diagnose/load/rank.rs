//! One cause for a failed stage, from the evidence: every cause whose
//! trigger holds becomes a candidate with its evidence lines and fix; the
//! one that explains the first failures is named, the others contribute.
//! `over_budget` only when none holds, with what was ruled out and the
//! numbers. A passing run gets the same evidence as warnings.

use super::evidence::StageEvidence;
use crate::diagnose::cause::Cause;
use crate::diagnose::{Fault, diagnose};
use serde::Serialize;

/// A cause that holds, worded with its numbers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    pub cause: Cause,
    pub root_cause: String,
    pub fix: String,
    pub evidence: Vec<String>,
    /// Seconds into the stage when it first held (None: unknown).
    #[serde(skip)]
    pub at_s: Option<f64>,
}

/// The verdict on a failed stage.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    pub primary: Candidate,
    pub contributing: Vec<Candidate>,
    /// Causes checked and not holding, with their numbers.
    pub ruled_out: Vec<String>,
}

/// Order among causes that hold from the same moment: a root before its
/// symptoms (a lock or a slow statement holds pool connections longer;
/// a crash explains everything after it).
pub const PRECEDENCE: [Cause; 15] = [
    Cause::Crash,
    Cause::Transport,
    Cause::RateLimiting,
    Cause::DatabaseDown,
    Cause::DatabaseConnections,
    Cause::SchemaDrift,
    Cause::PreparedStatements,
    Cause::LockContention,
    Cause::SlowQueries,
    Cause::BackendCpu,
    Cause::PgbouncerQueue,
    Cause::PoolSaturation,
    Cause::MemoryGrowth,
    Cause::ColdStart,
    Cause::GeneratorSaturated,
];

fn precedence(c: Cause) -> usize {
    PRECEDENCE
        .iter()
        .position(|p| *p == c)
        .unwrap_or(PRECEDENCE.len())
}

fn mb(b: u64) -> String {
    format!("{:.0} MB", b as f64 / 1_048_576.0)
}

fn cand(cause: Cause, root: String, fix: String, ev: Vec<String>, at: Option<f64>) -> Candidate {
    Candidate {
        cause,
        root_cause: root,
        fix,
        evidence: ev,
        at_s: at,
    }
}

fn from_fault(cause: Cause, f: &Fault, ev: Vec<String>, at: Option<f64>) -> Candidate {
    let d = diagnose(f);
    cand(cause, d.root_cause, d.remedy, ev, at)
}

/// Every cause whose trigger holds, and what was ruled out.
pub fn candidates(e: &StageEvidence) -> (Vec<Candidate>, Vec<String>) {
    let mut out = Vec::new();
    let mut ruled = Vec::new();
    let share = |n: u64| e.requests > 0 && n * 100 >= e.requests;
    // crash
    if let Some(x) = &e.exit {
        let mut ev = vec![match x.new_pid {
            Some(n) => format!(
                "backend pid {} exited {:.1} s into the stage; pid {n} listens now (a restart)",
                x.pid, x.at_s
            ),
            None => format!(
                "backend pid {} exited {:.1} s into the stage",
                x.pid, x.at_s
            ),
        }];
        if let Some(l) = &x.log {
            ev.push(format!("log read: {l}"));
        }
        ev.extend(x.lines.iter().cloned());
        let cause = if x.cause == Cause::Crash || x.cause == Cause::OverBudget {
            Cause::Crash
        } else {
            x.cause
        };
        let root = format!(
            "The backend stopped during `{}`: its process is gone (pid {} exited {:.1} s in{}). {}",
            e.stage,
            x.pid,
            x.at_s,
            if e.refused > 0 {
                format!("; {} of {} requests were refused", e.refused, e.requests)
            } else {
                String::new()
            },
            x.summary
        );
        out.push(cand(cause, root, cause.fix().into(), ev, Some(x.at_s)));
    } else if e.refused > 0 && (share(e.refused) || e.backend_alive == Some(false)) {
        let f = Fault::LoadCrash {
            stage: e.stage.clone(),
            refused: e.refused,
            requests: e.requests,
            backend_alive: e.backend_alive,
        };
        let ev = vec![format!("{} of {} requests refused", e.refused, e.requests)];
        out.push(from_fault(Cause::Crash, &f, ev, e.first_failure_s));
    } else {
        ruled.push(format!(
            "crash: {} refused, backend alive {}",
            e.refused,
            e.backend_alive.map_or("unknown".into(), |a| a.to_string())
        ));
    }
    if e.requests > 0 && e.transport * 2 >= e.requests {
        let f = Fault::LoadTransport {
            stage: e.stage.clone(),
            transport: e.transport,
            requests: e.requests,
            tls: e.tls,
        };
        let ev = vec![format!(
            "{} of {} requests failed below HTTP",
            e.transport, e.requests
        )];
        out.push(from_fault(Cause::Transport, &f, ev, e.first_failure_s));
    }
    if e.rate_limited > 0 {
        let f = Fault::LoadRateLimited {
            stage: e.stage.clone(),
            rate_limited: e.rate_limited,
            requests: e.requests,
        };
        let ev = vec![format!("{} answers were 429", e.rate_limited)];
        out.push(from_fault(Cause::RateLimiting, &f, ev, e.first_failure_s));
    } else {
        ruled.push("rate limiting: 0 × 429".into());
    }
    if let (Some(s), Some(u)) = (e.max_server_sessions, e.usable_connections)
        && s >= u
        && !out.iter().any(|c| c.cause == Cause::DatabaseConnections)
    {
        let root = format!(
            "PostgreSQL ran out of connection slots in `{}`: {s} client sessions against {u} usable (max_connections − reserved).",
            e.stage
        );
        let ev = vec![format!("server sessions max {s}, usable {u}")];
        out.push(cand(
            Cause::DatabaseConnections,
            root,
            Cause::DatabaseConnections.fix().into(),
            ev,
            e.first_failure_s,
        ));
    }
    lock(e, &mut out, &mut ruled);
    slow(e, &mut out, &mut ruled);
    backend_cpu(e, &mut out, &mut ruled);
    bouncer(e, &mut out, &mut ruled);
    pool(e, &mut out, &mut ruled);
    memory(e, &mut out, &mut ruled);
    if let Some(c) = &e.cold_start {
        let root = format!(
            "`{}` was slow only in its first {:.0} s (mean {:.0} ms, then {:.0} ms) while the database's sessions rose from {} to {}: the pool was still opening connections (a cold start), not the backend's steady state.",
            e.stage, c.early_s, c.early_mean_ms, c.late_mean_ms, c.sessions_from, c.sessions_to
        );
        let ev = vec![format!(
            "mean latency {:.0} ms early, {:.0} ms after; sessions {} → {}",
            c.early_mean_ms, c.late_mean_ms, c.sessions_from, c.sessions_to
        )];
        out.push(cand(
            Cause::ColdStart,
            root,
            Cause::ColdStart.fix().into(),
            ev,
            Some(0.0),
        ));
    }
    match &e.generator {
        // Every request timed out: the server gave no answer at all, which a
        // busy generator or machine does not explain (it makes answers late,
        // not absent).
        Some(g) if g.saturated() && e.requests > 0 && e.timeouts >= e.requests => {
            ruled.push(format!(
                "generator: {}, but all {} requests timed out without an answer",
                g.why().unwrap_or_default(),
                e.requests
            ));
        }
        Some(g) if g.saturated() => {
            let why = g.why().unwrap_or_default();
            let root = format!("In `{}`, {why}.", e.stage);
            out.push(cand(
                Cause::GeneratorSaturated,
                root,
                Cause::GeneratorSaturated.fix().into(),
                vec![why],
                None,
            ));
        }
        Some(g) => ruled.push(format!(
            "generator: chatops {:.0}% CPU for {} thread(s), machine {}",
            g.cpu_pct,
            g.threads,
            g.machine_pct.map_or("unknown".into(), |m| format!(
                "{m:.0}% of {} cores",
                g.cores
            ))
        )),
        None => {}
    }
    super::witness::take_in(e, &mut out);
    (out, ruled)
}

fn lock(e: &StageEvidence, out: &mut Vec<Candidate>, ruled: &mut Vec<String>) {
    match &e.lock {
        Some(l) if l.max_waiting >= 2 || l.max_wait_ms >= 200.0 => {
            let rel = l.relation.as_deref().unwrap_or("a row or relation");
            let mut root = format!(
                "Sessions wait for locks in `{}`: up to {} at once on `{rel}`",
                e.stage, l.max_waiting
            );
            if let Some(p) = l.blocker_pid {
                root.push_str(&format!(", behind pid {p}"));
                if let Some(s) = &l.blocker_state {
                    root.push_str(&format!(" ({s})"));
                }
                if let Some(q) = &l.blocker_query {
                    root.push_str(&format!(" running `{q}`"));
                }
                if let Some(x) = l.blocker_xact_ms {
                    root.push_str(&format!(" in a transaction open for {:.1} s", x / 1000.0));
                }
            }
            root.push('.');
            let ev = vec![format!(
                "lock waits: max {} sessions on {rel}, longest wait {:.0} ms, first seen {:.1} s into the stage",
                l.max_waiting, l.max_wait_ms, l.first_s
            )];
            out.push(cand(
                Cause::LockContention,
                root,
                Cause::LockContention.fix().into(),
                ev,
                Some(l.first_s),
            ));
        }
        Some(l) => ruled.push(format!(
            "locks: {} waiting at most, longest {:.0} ms",
            l.max_waiting, l.max_wait_ms
        )),
        None if e.max_active.is_some() => ruled.push("locks: no session waited on a lock".into()),
        None => {}
    }
}

fn slow(e: &StageEvidence, out: &mut Vec<Candidate>, ruled: &mut Vec<String>) {
    let Some(s) = &e.slow else { return };
    let slow = (s.calls >= 100 && s.mean_ms >= 20.0) || (s.calls >= 10 && s.mean_ms >= 100.0);
    if !slow {
        ruled.push(format!(
            "slow statements: the worst took {:.1} ms on average over {} calls",
            s.mean_ms, s.calls
        ));
        return;
    }
    let mut root = format!(
        "A slow statement dominated `{}`: {} calls, mean {:.1} ms ({:.0}% of the database's statement time): `{}`",
        e.stage, s.calls, s.mean_ms, s.share_pct, s.query
    );
    let mut fix = Cause::SlowQueries.fix().to_string();
    if let Some(r) = &s.relation {
        root.push_str(&format!(". EXPLAIN shows a sequential scan on `{r}`"));
        if let Some(c) = &s.column {
            root.push_str(&format!(" filtered on `{c}`: the index it lacks"));
            fix = format!(
                "Add the index: CREATE INDEX CONCURRENTLY ON \"{r}\" (\"{c}\") (as a migration: @@index([{c}]) in the Prisma model); chatops does not run it. Then rerun the stage."
            );
        }
    }
    root.push('.');
    let mut ev = vec![format!(
        "pg_stat_statements: {} calls, mean {:.1} ms, total {:.0} ms, {} rows",
        s.calls, s.mean_ms, s.total_ms, s.rows
    )];
    if let Some(n) = s.seq_tup_read {
        ev.push(format!(
            "pg_stat_user_tables: {n} rows read by sequential scans on {}",
            s.relation.as_deref().unwrap_or("?")
        ));
    }
    if let Some(x) = &s.explain {
        ev.push(x.clone());
    }
    out.push(cand(Cause::SlowQueries, root, fix, ev, e.first_failure_s));
}

/// The machine's CPU when it had no core to spare (≥ 90% busy).
fn contended(e: &StageEvidence) -> Option<f64> {
    e.generator
        .as_ref()
        .and_then(|g| g.machine_pct)
        .filter(|m| *m >= 90.0)
}

fn backend_cpu(e: &StageEvidence, out: &mut Vec<Candidate>, ruled: &mut Vec<String>) {
    let Some(b) = &e.backend else { return };
    let idle_db = b
        .db_active_then
        .is_none_or(|a| a <= 1 || e.connection_limit.is_some_and(|l| a * 2 <= l));
    // On a machine with no core to spare a thread never reaches a whole
    // core: the event loop is still the limit when it took at least half of
    // one, most of the process's CPU and more than the generator.
    let machine = contended(e);
    let starved = machine.is_some()
        && b.hottest_pct >= 50.0
        && b.hottest_pct >= 0.8 * b.max_total_pct
        && e.generator
            .as_ref()
            .is_none_or(|g| g.cpu_pct < b.hottest_pct);
    let held = match b.saturated_from_s {
        Some(at) => Some(Some(at)),
        None if starved => Some(None),
        None => None,
    };
    match held {
        Some(at) if idle_db => {
            let limit = match (at, machine) {
                (None, Some(m)) => format!(
                    " (all it could get: the machine was {m:.0}% busy, so its requests queued behind it)"
                ),
                _ => String::new(),
            };
            let root = format!(
                "The backend's CPU is the limit in `{}`: its thread `{}` ran at {:.0}% of one core{limit} (the process {:.0}% over {} threads) while PostgreSQL had {} active session(s): a single-threaded event loop is saturated although the machine may have idle cores.",
                e.stage,
                b.hottest_thread,
                b.hottest_pct,
                b.max_total_pct,
                b.threads,
                b.db_active_then.map_or("unknown".into(), |a| a.to_string())
            );
            let from = match at {
                Some(at) => format!("saturated from {at:.1} s"),
                None => format!("the machine {:.0}% busy", machine.unwrap_or_default()),
            };
            let ev = vec![format!(
                "backend CPU max {:.0}% (thread {} {:.0}%), {from}",
                b.max_total_pct, b.hottest_thread, b.hottest_pct
            )];
            out.push(cand(
                Cause::BackendCpu,
                root,
                Cause::BackendCpu.fix().into(),
                ev,
                at,
            ));
        }
        _ => ruled.push(format!(
            "backend CPU: max {:.0}% of one core, busiest thread {} at {:.0}%",
            b.max_total_pct, b.hottest_thread, b.hottest_pct
        )),
    }
}

/// Clients waiting in PgBouncer for a server connection: its pool, not the
/// backend's own, is the queue.
fn bouncer(e: &StageEvidence, out: &mut Vec<Candidate>, ruled: &mut Vec<String>) {
    let Some(b) = &e.pgbouncer else {
        return;
    };
    let full = b.pool_size.is_some_and(|p| b.max_servers >= p);
    if b.max_waiting > 0 && (full || b.max_maxwait_s >= 0.1) {
        let f = Fault::PgBouncer(crate::diagnose::BouncerFault::PgbouncerClientsWaiting {
            database: b.database.clone().unwrap_or_else(|| "the database".into()),
            user: "the backend's user".into(),
            waiting: b.max_waiting,
            maxwait_s: b.max_maxwait_s,
            servers: b.max_servers,
            pool_size: b.pool_size.unwrap_or(b.max_servers),
        });
        let ev = vec![format!(
            "PgBouncer: up to {} client(s) waiting (cl_waiting), maxwait {:.1} s, {} server connection(s) of pool {}, {} client connection(s)",
            b.max_waiting,
            b.max_maxwait_s,
            b.max_servers,
            b.pool_size.map_or("?".into(), |p| p.to_string()),
            b.max_clients
        )];
        let at = match (b.waiting_from_s, e.first_failure_s) {
            (Some(w), Some(f)) => Some(w.min(f)),
            (w, f) => w.or(f),
        };
        out.push(from_fault(Cause::PgbouncerQueue, &f, ev, at));
    } else {
        ruled.push(format!(
            "PgBouncer: {} waiting at most, maxwait {:.1} s, {} of {} server connections",
            b.max_waiting,
            b.max_maxwait_s,
            b.max_servers,
            b.pool_size.map_or("?".into(), |p| p.to_string())
        ));
    }
}

fn pool(e: &StageEvidence, out: &mut Vec<Candidate>, ruled: &mut Vec<String>) {
    let at_limit = matches!((e.max_active, e.connection_limit), (Some(a), Some(l)) if a >= l);
    if e.pool_timeouts > 0 || at_limit || e.pool_queue.is_some() {
        let headroom = match (e.usable_connections, e.max_server_sessions) {
            (Some(u), Some(s)) => Some(u.saturating_sub(s)),
            _ => None,
        };
        let f = Fault::LoadPoolSaturated {
            stage: e.stage.clone(),
            connection_limit: e.connection_limit,
            // The queue's own sentence says how few were active.
            max_active: if e.pool_queue.is_some() && e.pool_timeouts == 0 {
                None
            } else {
                e.max_active
            },
            pool_timeouts: e.pool_timeouts,
            timeouts: e.timeouts,
            headroom,
        };
        let mut c = from_fault(Cause::PoolSaturation, &f, Vec::new(), e.first_failure_s);
        if let Some(q) = &e.pool_queue {
            let latency = if q.latency_to_ms >= 1.2 * q.latency_from_ms {
                format!(
                    "mean latency climbed from {:.0} ms to {:.0} ms",
                    q.latency_from_ms, q.latency_to_ms
                )
            } else {
                format!(
                    "mean latency was {:.0} ms from the first second, over the bound",
                    q.latency_to_ms
                )
            };
            c.root_cause.push_str(&format!(
                " Without a P2024: from {:.1} s its {} sessions sat at connection_limit={} while at most {} were active in PostgreSQL, and {latency}: requests queue for a pooled connection.",
                q.from_s, q.sessions, q.connection_limit, q.max_active
            ));
            c.evidence.push(format!(
                "sessions {} at connection_limit {}, active max {}, latency {:.0} → {:.0} ms",
                q.sessions, q.connection_limit, q.max_active, q.latency_from_ms, q.latency_to_ms
            ));
            c.at_s = Some(q.from_s);
        } else {
            c.evidence.push(format!(
                "{} P2024 answers; active max {} against connection_limit {}",
                e.pool_timeouts,
                e.max_active.map_or("?".into(), |a| a.to_string()),
                e.connection_limit.map_or("?".into(), |l| l.to_string())
            ));
        }
        out.push(c);
    } else if e.max_active.is_some() || e.connection_limit.is_some() {
        ruled.push(format!(
            "pool: 0 P2024, active max {} of connection_limit {}, sessions max {}",
            e.max_active.map_or("?".into(), |a| a.to_string()),
            e.connection_limit
                .map_or("unknown".into(), |l| l.to_string()),
            e.max_sessions.map_or("?".into(), |s| s.to_string())
        ));
    }
}

fn memory(e: &StageEvidence, out: &mut Vec<Candidate>, ruled: &mut Vec<String>) {
    match e.memory {
        Some((from, to))
            if from > 0 && to > from.saturating_mul(3) / 2 && to - from > 50 * 1_048_576 =>
        {
            let f = Fault::LoadMemoryGrowth {
                stage: e.stage.clone(),
                from_bytes: from,
                to_bytes: to,
            };
            let ev = vec![format!("backend memory {} → {}", mb(from), mb(to))];
            out.push(from_fault(Cause::MemoryGrowth, &f, ev, None));
        }
        Some((from, to)) => ruled.push(format!("memory: {} → {}", mb(from), mb(to))),
        None => {}
    }
}

/// The verdict: the highest-precedence cause among those that held by the
/// first failure (a second of tolerance); `cold_start` and
/// `generator_saturated` only when no other cause holds; `over_budget` when
/// none does.
pub fn rank(e: &StageEvidence) -> Ranked {
    let (mut all, ruled) = candidates(e);
    let last_resort = |c: Cause| matches!(c, Cause::ColdStart | Cause::GeneratorSaturated);
    let explains_first = |c: &Candidate| match (c.at_s, e.first_failure_s) {
        (Some(at), Some(first)) => at <= first + 1.0,
        _ => true,
    };
    let pick = all
        .iter()
        .enumerate()
        .filter(|(_, c)| !last_resort(c.cause))
        .min_by_key(|(_, c)| (!explains_first(c), precedence(c.cause)))
        .or_else(|| {
            all.iter()
                .enumerate()
                .min_by_key(|(_, c)| precedence(c.cause))
        })
        .map(|(i, _)| i);
    match pick {
        Some(i) => {
            let primary = all.remove(i);
            all.sort_by_key(|c| precedence(c.cause));
            Ranked {
                primary,
                contributing: all,
                ruled_out: ruled,
            }
        }
        None => {
            let f = Fault::LoadOverBudget {
                stage: e.stage.clone(),
                p95_ms: e.p95_ms,
                p95_limit_ms: e.p95_limit_ms,
                error_pct: e.error_pct,
                error_limit_pct: e.error_limit_pct,
                max_active: e.max_active,
            };
            let mut primary = from_fault(Cause::OverBudget, &f, Vec::new(), None);
            if !ruled.is_empty() {
                primary
                    .root_cause
                    .push_str(&format!(" Ruled out: {}.", ruled.join("; ")));
            }
            primary.evidence = ruled.iter().map(|r| format!("ruled out {r}")).collect();
            Ranked {
                primary,
                contributing: Vec::new(),
                ruled_out: ruled,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::evidence::*;
    use super::*;

    fn ev() -> StageEvidence {
        StageEvidence {
            stage: "high".into(),
            requests: 1000,
            p95_ms: 900.0,
            p95_limit_ms: Some(200.0),
            max_active: Some(3),
            max_sessions: Some(5),
            connection_limit: Some(10),
            first_failure_s: Some(2.0),
            ..Default::default()
        }
    }

    fn lock(waiting: u32, wait_ms: f64, first_s: f64) -> LockEvidence {
        LockEvidence {
            max_waiting: waiting,
            relation: Some("conversations".into()),
            blocker_pid: Some(4242),
            blocker_query: Some("LOCK TABLE conversations IN ACCESS EXCLUSIVE MODE".into()),
            blocker_state: Some("idle in transaction".into()),
            blocker_xact_ms: Some(12_500.0),
            max_wait_ms: wait_ms,
            first_s,
        }
    }

    fn slow(calls: i64, mean_ms: f64) -> SlowEvidence {
        SlowEvidence {
            query: "SELECT * FROM messages WHERE \"conversationId\" = $1".into(),
            calls,
            mean_ms,
            total_ms: calls as f64 * mean_ms,
            rows: calls * 20,
            relation: Some("messages".into()),
            column: Some("conversationId".into()),
            seq_tup_read: Some(5_000_000),
            explain: Some("EXPLAIN: Seq Scan on messages".into()),
            share_pct: 95.0,
        }
    }

    fn cpu(hot: f64, active: u32, from: Option<f64>) -> BackendCpu {
        BackendCpu {
            max_total_pct: hot + 5.0,
            hottest_thread: "node".into(),
            hottest_pct: hot,
            saturated_from_s: from,
            db_active_then: Some(active),
            threads: 11,
        }
    }

    fn generator(cpu_pct: f64, machine: f64) -> GeneratorLoad {
        GeneratorLoad {
            cpu_pct,
            threads: 2,
            machine_pct: Some(machine),
            cores: 2,
        }
    }

    #[test]
    fn nothing_holds_so_over_budget_lists_what_was_ruled_out_with_numbers() {
        let e = StageEvidence {
            backend: Some(cpu(40.0, 1, None)),
            memory: Some((80 << 20, 90 << 20)),
            generator: Some(generator(60.0, 70.0)),
            ..ev()
        };
        let r = rank(&e);
        assert_eq!(r.primary.cause, Cause::OverBudget);
        assert!(r.contributing.is_empty());
        let all = r.ruled_out.join("; ");
        for want in [
            "crash: 0 refused",
            "rate limiting: 0 × 429",
            "locks: no session waited",
            "backend CPU: max 45% of one core, busiest thread node at 40%",
            "pool: 0 P2024, active max 3 of connection_limit 10",
            "memory: 80 MB → 90 MB",
            "generator: chatops 60% CPU for 2 thread(s), machine 70% of 2 cores",
        ] {
            assert!(all.contains(want), "{want} in {all}");
        }
        assert!(
            r.primary.root_cause.contains("Ruled out:"),
            "{}",
            r.primary.root_cause
        );
    }

    #[test]
    fn lock_contention_names_the_relation_and_the_blocker() {
        let r = rank(&StageEvidence {
            lock: Some(lock(6, 3000.0, 1.0)),
            ..ev()
        });
        assert_eq!(r.primary.cause, Cause::LockContention);
        for want in [
            "`conversations`",
            "pid 4242",
            "LOCK TABLE",
            "idle in transaction",
            "12.5 s",
        ] {
            assert!(
                r.primary.root_cause.contains(want),
                "{want}: {}",
                r.primary.root_cause
            );
        }
        assert!(r.primary.evidence[0].contains("max 6 sessions on conversations"));
        // One brief wait is not contention.
        let r = rank(&StageEvidence {
            lock: Some(lock(1, 50.0, 1.0)),
            ..ev()
        });
        assert_eq!(r.primary.cause, Cause::OverBudget);
        assert!(
            r.ruled_out
                .iter()
                .any(|x| x.contains("1 waiting at most, longest 50 ms"))
        );
    }

    #[test]
    fn slow_queries_name_the_statement_and_the_missing_index() {
        let r = rank(&StageEvidence {
            slow: Some(slow(150, 45.0)),
            ..ev()
        });
        assert_eq!(r.primary.cause, Cause::SlowQueries);
        assert!(
            r.primary
                .root_cause
                .contains("sequential scan on `messages`")
        );
        assert!(r.primary.root_cause.contains("`conversationId`"));
        assert!(
            r.primary
                .fix
                .contains("CREATE INDEX CONCURRENTLY ON \"messages\" (\"conversationId\")"),
            "{}",
            r.primary.fix
        );
        assert!(
            r.primary
                .evidence
                .iter()
                .any(|l| l.contains("150 calls, mean 45.0 ms"))
        );
        // PgHero's bounds: under 100 calls at 45 ms, or 150 calls at 5 ms, is not slow.
        for (calls, mean) in [(50, 45.0), (150, 5.0)] {
            let r = rank(&StageEvidence {
                slow: Some(slow(calls, mean)),
                ..ev()
            });
            assert_eq!(r.primary.cause, Cause::OverBudget, "{calls} at {mean}");
        }
        // Few calls but very slow ones still count.
        let r = rank(&StageEvidence {
            slow: Some(slow(12, 800.0)),
            ..ev()
        });
        assert_eq!(r.primary.cause, Cause::SlowQueries);
    }

    #[test]
    fn backend_cpu_only_while_the_database_is_idle() {
        let r = rank(&StageEvidence {
            backend: Some(cpu(99.0, 1, Some(1.0))),
            ..ev()
        });
        assert_eq!(r.primary.cause, Cause::BackendCpu);
        assert!(
            r.primary.root_cause.contains("thread `node` ran at 99%"),
            "{}",
            r.primary.root_cause
        );
        // The busiest thread under 90%: not saturated.
        let r = rank(&StageEvidence {
            backend: Some(cpu(70.0, 1, None)),
            ..ev()
        });
        assert_eq!(r.primary.cause, Cause::OverBudget);
        // Saturated, but every pooled connection busy in PostgreSQL: the pool
        // (and the database) is the limit, not the event loop.
        let r = rank(&StageEvidence {
            backend: Some(cpu(95.0, 10, Some(1.0))),
            max_active: Some(10),
            ..ev()
        });
        assert_eq!(r.primary.cause, Cause::PoolSaturation);
        assert!(r.contributing.iter().all(|c| c.cause != Cause::BackendCpu));
    }

    #[test]
    fn backend_cpu_on_a_machine_with_no_core_to_spare() {
        // The CPU knob on a busy 2-core machine: the event loop got 66% of a
        // core (all the machine gave it), PostgreSQL idle, the generator at
        // 2%. It was named generator_saturated (a last resort) before.
        let e = StageEvidence {
            backend: Some(cpu(66.0, 0, None)),
            generator: Some(generator(2.0, 100.0)),
            ..ev()
        };
        let r = rank(&e);
        assert_eq!(r.primary.cause, Cause::BackendCpu, "{r:#?}");
        assert!(
            r.primary.root_cause.contains("machine was 100% busy"),
            "{}",
            r.primary.root_cause
        );
        assert_eq!(r.contributing[0].cause, Cause::GeneratorSaturated);
        // The machine had room: 66% is no saturated thread.
        let r = rank(&StageEvidence {
            generator: Some(generator(2.0, 60.0)),
            ..e.clone()
        });
        assert_eq!(r.primary.cause, Cause::OverBudget);
        // A healthy event loop on a busy machine, or a generator busier than
        // the backend: the machine, not the backend.
        for (hot, gen_pct) in [(30.0, 2.0), (60.0, 150.0)] {
            let r = rank(&StageEvidence {
                backend: Some(cpu(hot, 0, None)),
                generator: Some(generator(gen_pct, 100.0)),
                ..ev()
            });
            assert_eq!(
                r.primary.cause,
                Cause::GeneratorSaturated,
                "{hot}% {gen_pct}%"
            );
        }
    }

    #[test]
    fn the_pool_queue_is_pool_saturation_without_p2024() {
        let q = PoolQueue {
            connection_limit: 2,
            sessions: 2,
            max_active: 1,
            latency_from_ms: 20.0,
            latency_to_ms: 900.0,
            from_s: 1.0,
        };
        let r = rank(&StageEvidence {
            pool_queue: Some(q),
            connection_limit: Some(2),
            max_active: Some(1),
            ..ev()
        });
        assert_eq!(r.primary.cause, Cause::PoolSaturation);
        assert!(
            r.primary.root_cause.contains("Without a P2024"),
            "{}",
            r.primary.root_cause
        );
        assert!(r.primary.root_cause.contains("connection_limit=2"));
    }

    #[test]
    fn cold_start_only_when_nothing_else_holds() {
        let c = ColdStart {
            early_mean_ms: 900.0,
            late_mean_ms: 15.0,
            sessions_from: 1,
            sessions_to: 9,
            early_s: 1.0,
        };
        let r = rank(&StageEvidence {
            cold_start: Some(c.clone()),
            ..ev()
        });
        assert_eq!(r.primary.cause, Cause::ColdStart);
        assert!(r.primary.root_cause.contains("from 1 to 9"));
        // The backend's CPU saturated too: blame it, the cold start contributes.
        let r = rank(&StageEvidence {
            cold_start: Some(c),
            backend: Some(cpu(98.0, 0, Some(0.5))),
            ..ev()
        });
        assert_eq!(r.primary.cause, Cause::BackendCpu);
        assert_eq!(r.contributing[0].cause, Cause::ColdStart);
    }

    #[test]
    fn a_server_that_never_answers_is_not_blamed_on_a_busy_generator() {
        let r = rank(&StageEvidence {
            generator: Some(generator(190.0, 97.0)),
            timeouts: 1000,
            ..ev()
        });
        assert_ne!(r.primary.cause, Cause::GeneratorSaturated);
        assert!(
            r.ruled_out
                .iter()
                .any(|l| l.contains("all 1000 requests timed out")),
            "{:?}",
            r.ruled_out
        );
    }

    #[test]
    fn generator_saturated_only_when_the_server_side_explains_nothing() {
        let r = rank(&StageEvidence {
            generator: Some(generator(190.0, 97.0)),
            ..ev()
        });
        assert_eq!(r.primary.cause, Cause::GeneratorSaturated);
        assert!(
            r.primary.root_cause.contains("97% busy"),
            "{}",
            r.primary.root_cause
        );
        let r = rank(&StageEvidence {
            generator: Some(generator(190.0, 97.0)),
            lock: Some(lock(4, 2000.0, 1.0)),
            ..ev()
        });
        assert_eq!(r.primary.cause, Cause::LockContention);
        assert_eq!(r.contributing[0].cause, Cause::GeneratorSaturated);
        // Busy but not saturated.
        assert!(!generator(150.0, 85.0).saturated());
        assert!(
            generator(181.0, 10.0).saturated(),
            "90% of a core per thread"
        );
    }

    #[test]
    fn the_cause_of_the_first_failures_wins_over_precedence() {
        // The event loop saturated from the first second; locks only later.
        let e = StageEvidence {
            backend: Some(cpu(99.0, 0, Some(1.0))),
            lock: Some(lock(3, 900.0, 6.0)),
            first_failure_s: Some(1.0),
            ..ev()
        };
        let r = rank(&e);
        assert_eq!(r.primary.cause, Cause::BackendCpu);
        assert_eq!(r.contributing[0].cause, Cause::LockContention);
        // Both from the start: the lock is the root (precedence).
        let e = StageEvidence {
            lock: Some(lock(3, 900.0, 1.0)),
            ..e
        };
        assert_eq!(rank(&e).primary.cause, Cause::LockContention);
    }

    #[test]
    fn an_exit_is_a_crash_with_its_log_lines_or_the_logs_cause() {
        let x = ExitEvidence {
            pid: 77,
            new_pid: None,
            at_s: 2.5,
            cause: Cause::Crash,
            summary: "The backend stopped after serving requests. TypeError: boom".into(),
            lines: vec![
                "TypeError: boom".into(),
                "    at send (/app/dist/chat.js:10:5)".into(),
            ],
            log: Some("/tmp/backend.log (stdout and stderr of pid 77)".into()),
        };
        let r = rank(&StageEvidence {
            exit: Some(x.clone()),
            refused: 300,
            lock: Some(lock(3, 900.0, 1.0)),
            ..ev()
        });
        assert_eq!(r.primary.cause, Cause::Crash);
        assert!(
            r.primary
                .evidence
                .iter()
                .any(|l| l.contains("at send (/app/dist/chat.js"))
        );
        assert!(
            r.primary
                .evidence
                .iter()
                .any(|l| l.contains("/tmp/backend.log"))
        );
        let r = rank(&StageEvidence {
            exit: Some(ExitEvidence {
                cause: Cause::DatabaseDown,
                ..x
            }),
            ..ev()
        });
        assert_eq!(r.primary.cause, Cause::DatabaseDown);
    }

    #[test]
    fn database_connections_when_the_server_is_full() {
        let r = rank(&StageEvidence {
            max_server_sessions: Some(97),
            usable_connections: Some(97),
            ..ev()
        });
        assert_eq!(r.primary.cause, Cause::DatabaseConnections);
        let r = rank(&StageEvidence {
            max_server_sessions: Some(60),
            usable_connections: Some(97),
            ..ev()
        });
        assert_eq!(r.primary.cause, Cause::OverBudget);
    }
}
