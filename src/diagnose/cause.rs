//! The vocabulary of root causes: one stable, machine-readable name per
//! cause, shared by doctor's findings and load's breaking point.
//!
//! | cause | meaning |
//! |---|---|
//! | `crash` | the backend process exited or threw an uncaught exception |
//! | `transport` | requests failed below HTTP: resets, answers cut short, TLS handshakes |
//! | `rate_limiting` | a rate limiter answered 429 |
//! | `database_down` | the backend cannot reach PostgreSQL, or PostgreSQL refuses its login or database |
//! | `database_connections` | PostgreSQL has no connection slots left (max_connections) |
//! | `pool_saturation` | requests queue for one of the backend's pooled connections |
//! | `lock_contention` | statements wait for locks held by other transactions |
//! | `slow_queries` | statements take long, typically a scan without an index |
//! | `backend_cpu` | the backend's CPU or event loop is saturated while the database is idle |
//! | `memory_growth` | the backend's memory grows and is not released |
//! | `schema_drift` | the backend's queries name tables or columns the database does not have |
//! | `cold_start` | latency is high only while the backend warms up |
//! | `generator_saturated` | the load generator or the machine is saturated: latencies are unreliable |
//! | `over_budget` | the criteria were missed and none of the above explains it |
//! | `pgbouncer_queue` | clients wait in PgBouncer for a server connection (its pool is too small) |
//! | `prepared_statements` | named prepared statements meet transaction pooling (42P05/26000) |
//!
//! The strings are part of chatops's JSON output: never rename one. Doctor
//! prints one as each finding's `cause` (`Fault::cause` maps the faults
//! onto the vocabulary; a finding explained by another one also names it
//! in `caused_by`), `chatops load` as its breaking point's `cause`.

use serde::{Deserialize, Serialize};

/// A root cause, from the documented vocabulary (see the module table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    Crash,
    Transport,
    RateLimiting,
    DatabaseDown,
    DatabaseConnections,
    PoolSaturation,
    LockContention,
    SlowQueries,
    BackendCpu,
    MemoryGrowth,
    SchemaDrift,
    ColdStart,
    GeneratorSaturated,
    OverBudget,
    PgbouncerQueue,
    PreparedStatements,
}

impl Cause {
    /// Every cause, in the documented order.
    pub const ALL: [Cause; 16] = [
        Cause::Crash,
        Cause::Transport,
        Cause::RateLimiting,
        Cause::DatabaseDown,
        Cause::DatabaseConnections,
        Cause::PoolSaturation,
        Cause::LockContention,
        Cause::SlowQueries,
        Cause::BackendCpu,
        Cause::MemoryGrowth,
        Cause::SchemaDrift,
        Cause::ColdStart,
        Cause::GeneratorSaturated,
        Cause::OverBudget,
        Cause::PgbouncerQueue,
        Cause::PreparedStatements,
    ];

    /// The stable name, as in JSON (`pool_saturation`).
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Crash => "crash",
            Cause::Transport => "transport",
            Cause::RateLimiting => "rate_limiting",
            Cause::DatabaseDown => "database_down",
            Cause::DatabaseConnections => "database_connections",
            Cause::PoolSaturation => "pool_saturation",
            Cause::LockContention => "lock_contention",
            Cause::SlowQueries => "slow_queries",
            Cause::BackendCpu => "backend_cpu",
            Cause::MemoryGrowth => "memory_growth",
            Cause::SchemaDrift => "schema_drift",
            Cause::ColdStart => "cold_start",
            Cause::GeneratorSaturated => "generator_saturated",
            Cause::OverBudget => "over_budget",
            Cause::PgbouncerQueue => "pgbouncer_queue",
            Cause::PreparedStatements => "prepared_statements",
        }
    }

    /// The cause for a stable name.
    pub fn parse(s: &str) -> Option<Cause> {
        Cause::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// One line: what the cause means.
    pub fn describe(self) -> &'static str {
        match self {
            Cause::Crash => "the backend process exited or threw an uncaught exception",
            Cause::Transport => {
                "requests failed below HTTP: connection resets, answers cut short, TLS handshakes"
            }
            Cause::RateLimiting => "a rate limiter answered 429 Too Many Requests",
            Cause::DatabaseDown => {
                "the backend cannot reach PostgreSQL, or PostgreSQL refuses its login or database"
            }
            Cause::DatabaseConnections => {
                "PostgreSQL has no connection slots left: max_connections is exhausted"
            }
            Cause::PoolSaturation => {
                "requests queue for one of the backend's pooled database connections"
            }
            Cause::LockContention => "statements wait for locks held by other transactions",
            Cause::SlowQueries => "statements take long, typically a scan without an index",
            Cause::BackendCpu => {
                "the backend's CPU or event loop is saturated while the database is idle"
            }
            Cause::MemoryGrowth => "the backend's memory grows and is not released",
            Cause::SchemaDrift => {
                "the backend's queries name tables or columns the database does not have"
            }
            Cause::ColdStart => {
                "latency is high only while the backend warms up (JIT, pool connections opening)"
            }
            Cause::GeneratorSaturated => {
                "the load generator or the machine is saturated, so measured latencies are unreliable"
            }
            Cause::OverBudget => {
                "the criteria were missed and none of the other causes explains it"
            }
            Cause::PgbouncerQueue => {
                "clients wait in PgBouncer for a server connection: its pool is too small for the load"
            }
            Cause::PreparedStatements => {
                "named prepared statements meet PgBouncer's transaction pooling (42P05, 26000)"
            }
        }
    }

    /// The generic fix; findings refine it with their numbers and names.
    pub fn fix(self) -> &'static str {
        match self {
            Cause::Crash => {
                "Read the backend's log around the exit (the first stack frames name the code), fix the exception, and run the backend under a supervisor that restarts it."
            }
            Cause::Transport => {
                "Check TLS settings and proxies between chatops and the backend, and the backend's keep-alive and header timeouts."
            }
            Cause::RateLimiting => {
                "Disable or raise the rate limiter for the test client (the backend's switch, e.g. DISABLE_RATE_LIMIT=true, set in the backend process), or plan the load under its budget."
            }
            Cause::DatabaseDown => {
                "Start PostgreSQL or fix DATABASE_URL (host, port, user, password, database), confirm with `pg_isready`, then restart the backend."
            }
            Cause::DatabaseConnections => {
                "Keep connection_limit × replicas + other clients under max_connections − reserved: lower the pools, close idle sessions, or put PgBouncer in front."
            }
            Cause::PoolSaturation => {
                "Size connection_limit as `chatops pool-calc` computes it, within max_connections headroom, and make slow statements faster; a longer pool_timeout only hides the queue."
            }
            Cause::LockContention => {
                "Shorten the transactions that hold the lock (no network calls inside them), avoid hot rows updated by every request, and keep the blocking statement's transaction brief."
            }
            Cause::SlowQueries => {
                "Add the index the slow statement lacks (EXPLAIN shows a sequential scan), or bound the query (LIMIT, keyset pagination)."
            }
            Cause::BackendCpu => {
                "Profile the backend (`node --cpu-prof`, event-loop lag): move CPU work off the event loop (worker threads) or run more replicas."
            }
            Cause::MemoryGrowth => {
                "Take heap snapshots before and after load (`node --inspect`) and look for caches, listeners and buffers that grow per request; raise --max-old-space-size only after."
            }
            Cause::SchemaDrift => {
                "Apply the missing migration (`npx prisma migrate deploy`) or regenerate the client and rebuild (`npx prisma generate && npm run build`), then restart the backend."
            }
            Cause::ColdStart => {
                "Warm the backend up before measuring (a `warmup:` in the plan), or open the pool's connections at start-up."
            }
            Cause::GeneratorSaturated => {
                "Run the load generator on another machine, or lower its concurrency: on one box the backend, PostgreSQL and the generator compete for the same cores."
            }
            Cause::OverBudget => {
                "Profile the backend at this load and compare with what was ruled out; loosen the criteria only if they were unrealistic."
            }
            Cause::PgbouncerQueue => {
                "Raise PgBouncer's default_pool_size (or the database's pool_size) within PostgreSQL's usable connections, as `chatops pool-calc --pgbouncer` computes it, then RELOAD PgBouncer."
            }
            Cause::PreparedStatements => {
                "Add pgbouncer=true to the DATABASE_URL that points at PgBouncer (Prisma then uses no named prepared statements), give migrations a directUrl to PostgreSQL, and restart the backend."
            }
        }
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for Cause {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_stable_and_round_trip() {
        let expected = [
            "crash",
            "transport",
            "rate_limiting",
            "database_down",
            "database_connections",
            "pool_saturation",
            "lock_contention",
            "slow_queries",
            "backend_cpu",
            "memory_growth",
            "schema_drift",
            "cold_start",
            "generator_saturated",
            "over_budget",
            "pgbouncer_queue",
            "prepared_statements",
        ];
        assert_eq!(Cause::ALL.len(), expected.len());
        for (c, s) in Cause::ALL.into_iter().zip(expected) {
            assert_eq!(c.as_str(), s);
            assert_eq!(c.to_string(), s);
            let json = serde_json::to_string(&c).unwrap_or_default();
            assert_eq!(json, format!("\"{s}\""));
            let back: Cause = serde_json::from_str(&json).unwrap_or(Cause::OverBudget);
            assert_eq!(back, c, "{s}");
            assert_eq!(Cause::parse(s), Some(c));
        }
        assert_eq!(Cause::parse("pool"), None);
        assert!(serde_json::from_str::<Cause>("\"PoolSaturation\"").is_err());
    }

    #[test]
    fn every_cause_has_wording() {
        let mut seen = std::collections::BTreeSet::new();
        for c in Cause::ALL {
            assert!(c.describe().len() > 10, "{c}");
            assert!(c.fix().len() > 20, "{c}");
            assert!(!c.describe().ends_with('.'), "{c}: a meaning is a phrase");
            assert!(c.fix().ends_with('.'), "{c}: a fix is a sentence");
            assert!(seen.insert(c.describe()), "{c}: duplicate wording");
        }
    }
}
