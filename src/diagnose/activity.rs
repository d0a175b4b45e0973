//! Activity faults: what pg_stat_activity shows (too many active sessions, stuck ones).

use super::{Diagnosis, Fault};

/// Root cause and fix of a fault of this family; `None` for another family's.
pub(super) fn word(f: &Fault) -> Option<Diagnosis> {
    let d = super::worded;
    match f {
        Fault::ActivityAboveThreshold { database, active, threshold, critical } => d(
            format!("{active} sessions are active on `{database}`, above the {} threshold of {threshold}: the pool is close to exhausted and requests start to wait for a connection.", if *critical { "critical" } else { "warning" }),
            "Find what keeps sessions busy (the longest query in the evidence; `chatops watch-connections` live), then raise connection_limit within max_connections headroom (`chatops pool-calc`) or reduce the load.".into(),
        ),
        Fault::SessionsStuck { database, waiting_lock, idle_in_transaction, oldest_idle_s } => d(
            format!("Sessions on `{database}` are stuck: {waiting_lock} waiting for a lock, {idle_in_transaction} idle in a transaction{}. Each holds a pool connection (and idle transactions hold their locks).", oldest_idle_s.map(|s| format!(" (oldest {s:.1} s)")).unwrap_or_default()),
            "Find the blocker with `SELECT pid, pg_blocking_pids(pid), state, query FROM pg_stat_activity WHERE datname = current_database()`; fix the code path that leaves a transaction open (an interactive Prisma $transaction that awaits something slow), set idle_in_transaction_session_timeout, and end a stuck session with pg_terminate_backend(pid) if needed.".into(),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::diagnose::Fault;
    use crate::diagnose::samples::words;

    #[test]
    fn activity_faults_give_counts_and_the_query_to_find_blockers() {
        let a = |critical: bool| Fault::ActivityAboveThreshold {
            database: "chat_backend_db".into(),
            active: 49,
            threshold: 48,
            critical,
        };
        words(
            &a(true),
            &[
                "49 sessions",
                "`chat_backend_db`",
                "critical threshold of 48",
            ],
            &["chatops pool-calc"],
        );
        words(
            &a(false),
            &["warning threshold of 48"],
            &["watch-connections"],
        );
        let s = |oldest: Option<f64>| Fault::SessionsStuck {
            database: "chat_backend_db".into(),
            waiting_lock: 3,
            idle_in_transaction: 2,
            oldest_idle_s: oldest,
        };
        words(
            &s(Some(41.25)),
            &[
                "3 waiting for a lock",
                "2 idle in a transaction (oldest 41.2 s)",
            ],
            &[
                "pg_blocking_pids",
                "idle_in_transaction_session_timeout",
                "pg_terminate_backend",
            ],
        );
        let d = words(&s(None), &["2 idle in a transaction."], &[]);
        assert!(!d.root_cause.contains("oldest"), "{}", d.root_cause);
    }
}
