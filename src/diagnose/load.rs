//! Load faults: why a `chatops load` stage failed (its breaking point),
//! ranked from the stage's measurements (`rank`: every cause that holds,
//! the one that explains the first failures first), and their wording.

use super::{Diagnosis, Fault};

/// Root cause and fix of a fault of this family; `None` for another family's.
pub(super) fn word(f: &Fault) -> Option<Diagnosis> {
    let d = super::worded;
    match f {
        Fault::LoadCrash { stage, refused, requests, backend_alive } => d(
            format!(
                "The backend stopped accepting connections during `{stage}`: {refused} of {requests} requests were refused{}.",
                match backend_alive {
                    Some(false) => " and its process is gone (a crash or an out-of-memory kill)",
                    Some(true) => " while its process still exists (listen backlog full or the port changed)",
                    None => "",
                }
            ),
            "Read the end of the backend's log (and `dmesg` for the OOM killer), restart it under a supervisor (systemd, pm2, a Kubernetes Deployment) so a crash is restarted, and rerun from this stage.".into(),
        ),
        Fault::LoadTransport { stage, transport, requests, tls } => d(
            format!(
                "In `{stage}`, {transport} of {requests} requests failed below HTTP: the connection was reset, closed mid-answer{}.",
                if *tls { ", or the TLS handshake failed" } else { " or spoke something other than HTTP/1.1" }
            ),
            if *tls {
                "The target is https://, and a handshake failure is the usual cause: give the server's CA with SSL_CERT_FILE=/path/ca.pem, or pass --insecure for a self-signed staging server (the preflight's health check names the TLS error).".into()
            } else {
                "Read the backend's log and any proxy's in front of it for resets (a crash loop behind a proxy, an idle timeout shorter than the keep-alive), check that the URL's port serves HTTP/1.1, and rerun.".into()
            },
        ),
        Fault::LoadRateLimited { stage, rate_limited, requests } => d(
            format!("A rate limiter answered 429 to {rate_limited} of {requests} requests in `{stage}`: the load test measured the limiter, not the backend."),
            "Restart the backend with DISABLE_RATE_LIMIT=true in its environment (read once at start-up; express-rate-limit and @nestjs/throttler count per client IP, and one load generator is one IP), then rerun.".into(),
        ),
        Fault::LoadPoolSaturated { stage, connection_limit, max_active, pool_timeouts, timeouts, headroom } => d(
            {
                let mut r = format!("The backend's database connection pool saturated in `{stage}`");
                let mut ev = Vec::new();
                if let (Some(a), Some(l)) = (max_active, connection_limit) {
                    ev.push(format!("{a} active sessions in pg_stat_activity against connection_limit={l}"));
                } else if let Some(a) = max_active {
                    ev.push(format!("up to {a} active sessions in pg_stat_activity"));
                }
                if *pool_timeouts > 0 {
                    ev.push(format!("{pool_timeouts} answers carried Prisma's P2024 (timed out fetching a new connection from the pool)"));
                }
                if *timeouts > 0 {
                    ev.push(format!("{timeouts} requests timed out waiting"));
                }
                if !ev.is_empty() {
                    r.push_str(": ");
                    r.push_str(&ev.join("; "));
                }
                r.push_str(". Requests queue for a connection, then fail.");
                r
            },
            {
                let mut r = match connection_limit {
                    Some(l) => format!("Raise connection_limit (now {l}) in the backend's DATABASE_URL"),
                    None => "Raise connection_limit in the backend's DATABASE_URL".to_string(),
                };
                match headroom {
                    Some(h) => r.push_str(&format!(", by at most {h} connections: that is the max_connections headroom left by the other sessions (every replica opens its own pool, so divide by the replica count)")),
                    None => r.push_str(" within max_connections headroom (every replica opens its own pool)"),
                }
                r.push_str("; size it as `chatops pool-calc` computes it, make slow queries faster (pg_stat_activity's longest statements), and restart the backend. A longer pool_timeout only hides the queue.");
                r
            },
        ),
        Fault::LoadMemoryGrowth { stage, from_bytes, to_bytes } => d(
            format!(
                "The backend's memory grew from {} MB to {} MB during `{stage}`: a leak or unbounded buffering under load.",
                from_bytes / 1_048_576,
                to_bytes / 1_048_576
            ),
            "Take heap snapshots before and after a stage (`node --inspect`, Chrome DevTools), look for caches and listeners that grow per request, and rerun the stage to see whether memory returns after the cooldown.".into(),
        ),
        Fault::LoadOverBudget { stage, p95_ms, p95_limit_ms, error_pct, error_limit_pct, max_active } => d(
            {
                let mut parts = Vec::new();
                if let Some(l) = p95_limit_ms && p95_ms >= l {
                    parts.push(format!("p95 {p95_ms:.1} ms is over the {l} ms bound"));
                }
                if let Some(l) = error_limit_pct && error_pct > l {
                    parts.push(format!("error rate {error_pct:.2}% is over {l}%"));
                }
                let mut r = format!("`{stage}` missed its criteria: {}", parts.join(", "));
                r.push_str(". Neither the pool, a limiter, a crash nor memory growth explains it");
                if let Some(a) = max_active {
                    r.push_str(&format!(" (at most {a} active database sessions)"));
                }
                r.push_str(": the backend itself (CPU, event loop) or slow queries are the limit.");
                r
            },
            "Profile the backend at this stage's load (CPU, event-loop lag), check the slow queries and indexes, and compare with the load generator's own CPU in the report: on a shared machine the generator competes with the backend.".into(),
        ),
        _ => None,
    }
}

mod detect;
mod evidence;
mod rank;
mod warn;
mod witness;

pub use detect::{Second, climbing, cold_start, first_failure, pool_queue};
pub use evidence::{
    BackendCpu, BouncerQueue, ColdStart, ExitEvidence, GeneratorLoad, Heap, LockEvidence,
    PoolQueue, SlowEvidence, StageEvidence, WitnessEvidence,
};
pub use rank::{Candidate, PRECEDENCE, Ranked, candidates, rank};
pub use warn::{Warning, warnings};
pub use witness::{ErrorBody, StageLog, witness_evidence};

/// The breaking point's cause and fault as before the ranking (crash,
/// transport, rate limiting, pool, memory, over budget): the ranked cause
/// with the fault worded for the first four families.
pub fn breaking_point(e: &StageEvidence) -> (crate::diagnose::cause::Cause, Ranked) {
    let r = rank(e);
    (r.primary.cause, r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev() -> StageEvidence {
        StageEvidence {
            stage: "high".into(),
            requests: 1000,
            p95_ms: 900.0,
            p95_limit_ms: Some(200.0),
            ..Default::default()
        }
    }

    #[test]
    fn breaking_point_causes_in_order() {
        let mut e = ev();
        assert_eq!(breaking_point(&e).0, "over_budget");
        // Most requests failing below HTTP (a TLS handshake, resets).
        let t = StageEvidence {
            transport: 600,
            tls: true,
            ..ev()
        };
        assert_eq!(breaking_point(&t).0, "transport");
        e.max_active = Some(10);
        e.connection_limit = Some(10);
        assert_eq!(breaking_point(&e).0, "pool_saturation");
        e.max_active = Some(3);
        assert_eq!(breaking_point(&e).0, "over_budget");
        e.pool_timeouts = 4;
        e.usable_connections = Some(97);
        e.max_server_sessions = Some(40);
        let (c, r) = breaking_point(&e);
        assert_eq!(c, "pool_saturation");
        assert!(r.primary.fix.contains("by at most 57 connections"), "{r:?}");
        assert!(r.primary.root_cause.contains("P2024"));
        e.rate_limited = 1;
        assert_eq!(breaking_point(&e).0, "rate_limiting");
        e.refused = 5; // 0.5%, process alive: not a crash
        e.backend_alive = Some(true);
        assert_eq!(breaking_point(&e).0, "rate_limiting");
        e.backend_alive = Some(false);
        assert_eq!(breaking_point(&e).0, "crash");
        let mut m = ev();
        m.memory = Some((100 << 20, 400 << 20));
        assert_eq!(breaking_point(&m).0, "memory_growth");
        m.memory = Some((100 << 20, 120 << 20));
        assert_eq!(breaking_point(&m).0, "over_budget");
    }

    #[test]
    fn clients_waiting_in_pgbouncer_come_before_the_apps_pool() {
        let q = |waiting, servers| StageEvidence {
            pgbouncer: Some(BouncerQueue {
                database: Some("chat".into()),
                max_waiting: waiting,
                max_maxwait_s: 0.0,
                max_servers: servers,
                pool_size: Some(2),
                max_clients: 40,
                waiting_from_s: Some(1.0),
            }),
            pool_timeouts: 3,
            first_failure_s: Some(1.0),
            ..ev()
        };
        let (c, r) = breaking_point(&q(17, 2));
        assert_eq!(c, "pgbouncer_queue");
        assert!(
            r.primary
                .root_cause
                .contains("17 client(s) wait in PgBouncer"),
            "{r:?}"
        );
        assert!(r.contributing.iter().any(|c| c.cause == "pool_saturation"));
        // Nobody waited: ruled out, with its numbers.
        let (c, r) = breaking_point(&q(0, 1));
        assert_eq!(c, "pool_saturation");
        assert!(
            r.ruled_out
                .iter()
                .any(|l| l.starts_with("PgBouncer: 0 waiting")),
            "{r:?}"
        );
    }

    #[test]
    fn breaking_point_thresholds() {
        // Every signal at once: the crash explains the rest.
        let all = StageEvidence {
            refused: 10,
            transport: 600,
            rate_limited: 9,
            pool_timeouts: 3,
            memory: Some((100 << 20, 400 << 20)),
            ..ev()
        };
        assert_eq!(breaking_point(&all).0, "crash");
        // 1% of the requests refused is a crash even with the process alive;
        // just under it is not.
        let refused = |n: u64| StageEvidence {
            refused: n,
            backend_alive: Some(true),
            ..ev()
        };
        assert_eq!(breaking_point(&refused(10)).0, "crash");
        assert_eq!(breaking_point(&refused(9)).0, "over_budget");
        // Transport failures must be half of the requests; they beat 429s.
        let transport = |n: u64| StageEvidence {
            transport: n,
            rate_limited: 1,
            ..ev()
        };
        assert_eq!(breaking_point(&transport(500)).0, "transport");
        assert_eq!(breaking_point(&transport(499)).0, "rate_limiting");
        // No request at all: nothing to share, no transport verdict.
        let none = StageEvidence {
            requests: 0,
            ..ev()
        };
        assert_eq!(breaking_point(&none).0, "over_budget");
        // Memory: more than 1.5× and more than 50 MB.
        let mem = |from: u64, to: u64| StageEvidence {
            memory: Some((from << 20, to << 20)),
            ..ev()
        };
        assert_eq!(breaking_point(&mem(60, 100)).0, "over_budget"); // 1.67×, +40 MB
        assert_eq!(breaking_point(&mem(200, 290)).0, "over_budget"); // +90 MB, 1.45×
        assert_eq!(breaking_point(&mem(200, 310)).0, "memory_growth");
        assert_eq!(breaking_point(&mem(0, 310)).0, "over_budget"); // no baseline
        // Without both samples, the pool's headroom is unknown.
        let (_, r) = breaking_point(&StageEvidence {
            pool_timeouts: 1,
            usable_connections: Some(97),
            ..ev()
        });
        assert!(
            r.primary.fix.contains("within max_connections headroom"),
            "{r:?}"
        );
    }

    #[test]
    fn load_faults_are_worded_with_the_stage_and_its_numbers() {
        use crate::diagnose::samples::words;
        let crash = |alive| Fault::LoadCrash {
            stage: "high".into(),
            refused: 420,
            requests: 9000,
            backend_alive: alive,
        };
        words(
            &crash(Some(false)),
            &["`high`", "420 of 9000", "process is gone"],
            &["dmesg", "supervisor"],
        );
        words(&crash(Some(true)), &["process still exists"], &[]);
        let t = |tls| Fault::LoadTransport {
            stage: "high".into(),
            transport: 700,
            requests: 1000,
            tls,
        };
        words(
            &t(true),
            &["700 of 1000", "TLS handshake failed"],
            &["SSL_CERT_FILE", "--insecure"],
        );
        words(&t(false), &["other than HTTP/1.1"], &["proxy"]);
        words(
            &Fault::LoadRateLimited {
                stage: "warm-up".into(),
                rate_limited: 350,
                requests: 450,
            },
            &["429 to 350 of 450", "`warm-up`"],
            &["DISABLE_RATE_LIMIT=true"],
        );
        let pool = |limit, headroom| Fault::LoadPoolSaturated {
            stage: "high".into(),
            connection_limit: limit,
            max_active: Some(10),
            pool_timeouts: 37,
            timeouts: 5,
            headroom,
        };
        words(
            &pool(Some(10), Some(57)),
            &[
                "10 active sessions",
                "connection_limit=10",
                "37 answers carried Prisma's P2024",
                "5 requests timed out",
            ],
            &[
                "Raise connection_limit (now 10)",
                "by at most 57 connections",
                "chatops pool-calc",
            ],
        );
        words(
            &pool(None, None),
            &["up to 10 active sessions"],
            &["within max_connections headroom"],
        );
        words(
            &Fault::LoadMemoryGrowth {
                stage: "soak".into(),
                from_bytes: 100 << 20,
                to_bytes: 400 << 20,
            },
            &["from 100 MB to 400 MB", "`soak`"],
            &["heap snapshots"],
        );
        let d = words(
            &Fault::LoadOverBudget {
                stage: "high".into(),
                p95_ms: 912.5,
                p95_limit_ms: Some(200.0),
                error_pct: 0.5,
                error_limit_pct: Some(1.0),
                max_active: Some(4),
            },
            &[
                "p95 912.5 ms is over the 200 ms bound",
                "at most 4 active database sessions",
            ],
            &["Profile the backend"],
        );
        // Within its error bound: the error rate is not blamed.
        assert!(!d.root_cause.contains("error rate"), "{}", d.root_cause);
    }
}
