//! The reference backend's knobs: healthy by default, each field a fault of
//! the seed or a load-time cause (see issue 13, section 5), and the
//! `CHATOPS_SANDBOX_*` variables that carry them to the backend process.

/// `all`: mount the five rate limiters, not only apiLimiter.
pub const ENV_LIMITERS: &str = "CHATOPS_SANDBOX_LIMITERS";
/// apiLimiter's max.
pub const ENV_API_LIMIT: &str = "CHATOPS_SANDBOX_API_LIMIT";
/// `1`: the send writes column `messageType`, which does not exist.
pub const ENV_DRIFT: &str = "CHATOPS_SANDBOX_DRIFT";
/// Milliseconds of `pg_sleep` per database operation.
pub const ENV_QUERY_MS: &str = "CHATOPS_SANDBOX_QUERY_MS";
/// Milliseconds of CPU burnt per chat request, serialized like Node's event loop.
pub const ENV_CPU_MS: &str = "CHATOPS_SANDBOX_CPU_MS";
/// Milliseconds the send transaction holds its conversation row lock.
pub const ENV_LOCK_MS: &str = "CHATOPS_SANDBOX_LOCK_MS";
/// Kilobytes kept forever per chat request.
pub const ENV_RETAIN_KB: &str = "CHATOPS_SANDBOX_RETAIN_KB";
/// Crash with an uncaught exception after this many chat requests.
pub const ENV_CRASH_AFTER: &str = "CHATOPS_SANDBOX_CRASH_AFTER";
/// `1`: database errors answer NestJS's generic 500 (cause in the log only).
pub const ENV_GENERIC_500: &str = "CHATOPS_SANDBOX_GENERIC_500";

/// Rows [`Knobs::slow_history_rows`] suggests: enough for a sequential scan
/// of `messages` to cost tens of milliseconds.
pub const SLOW_HISTORY_ROWS: u64 = 200_000;

/// How the reference backend is configured: healthy by default, each field a
/// fault of the seed.
#[derive(Debug, Clone)]
pub struct Knobs {
    /// Port to listen on (default: a free one).
    pub port: Option<u16>,
    /// Prisma's `connection_limit` in DATABASE_URL (None: leave it out, so the
    /// backend appends its own 50).
    pub connection_limit: Option<u32>,
    pub pool_timeout: Option<u32>,
    /// Leave the rate limiters on (DISABLE_RATE_LIMIT unset).
    pub rate_limit: bool,
    /// Mount all five limiters instead of only apiLimiter.
    pub all_limiters: bool,
    /// Override apiLimiter's max (tests).
    pub api_limit: Option<u32>,
    /// PRISMA_CLIENT_MODE=mock.
    pub mock: bool,
    /// Start without DATABASE_URL (silently mock mode).
    pub no_database_url: bool,
    /// Write a column that does not exist (`messageType`).
    pub drift: bool,
    /// Hold each database connection this long per operation.
    pub query_ms: Option<u64>,
    /// `backend_cpu`: burn this many milliseconds of CPU per chat request
    /// (send or history), one request at a time, as JavaScript on Node's
    /// single event loop: the process sits at one core while others idle.
    pub cpu_ms: Option<u64>,
    /// `lock_contention`: the send runs in a transaction that locks its
    /// conversation's row (`SELECT … FOR UPDATE`) and holds it this many
    /// milliseconds before committing; concurrent sends wait on a Lock.
    pub lock_ms: Option<u64>,
    /// `slow_queries`: before the backend starts, fill `messages` with this
    /// many rows (in a conversation of their own) and drop the index the
    /// history query needs, so each history request scans the table. Done
    /// once per sandbox; see [`SLOW_HISTORY_ROWS`].
    pub slow_history_rows: Option<u64>,
    /// `memory_growth`: keep this many KB per chat request, never released
    /// (RSS and health's `memory.heapUsed` grow).
    pub retain_kb: Option<u64>,
    /// `crash`: after this many chat requests, die of an uncaught exception
    /// (Node's stack on stderr, exit status 1).
    pub crash_after: Option<u64>,
    /// Answer database errors with NestJS's default
    /// `500 {"statusCode":500,"message":"Internal server error"}` and log the
    /// cause (`ERROR [ExceptionsHandler]`, `prisma:error`) instead of the
    /// public code's `400 Failed to send message: <cause>`.
    pub generic_500: bool,
    /// Connect through the sandbox's PgBouncer (started with
    /// `Sandbox::start_pgbouncer`) instead of straight to PostgreSQL.
    pub through_pgbouncer: bool,
    /// With `through_pgbouncer`: put Prisma's `pgbouncer=true` in the URL
    /// (healthy). Off: named prepared statements meet transaction pooling
    /// and fail with 42P05 / 26000, as Prisma's do.
    pub pgbouncer_param: bool,
    /// Extra environment variables.
    pub extra_env: Vec<(String, String)>,
    /// The backend's project directory (its working directory): consistent
    /// with the database, or with one working-tree fault.
    pub project: super::project::ProjectFault,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            port: None,
            connection_limit: Some(50),
            pool_timeout: Some(30),
            rate_limit: false,
            all_limiters: false,
            api_limit: None,
            mock: false,
            no_database_url: false,
            drift: false,
            query_ms: None,
            cpu_ms: None,
            lock_ms: None,
            slow_history_rows: None,
            retain_kb: None,
            crash_after: None,
            generic_500: false,
            through_pgbouncer: false,
            pgbouncer_param: true,
            extra_env: Vec::new(),
            project: Default::default(),
        }
    }
}

impl Knobs {
    /// The `CHATOPS_SANDBOX_*` variables for these knobs (the healthy
    /// defaults set none).
    pub fn sandbox_env(&self) -> Vec<(&'static str, String)> {
        let mut env = Vec::new();
        if self.all_limiters {
            env.push((ENV_LIMITERS, "all".to_string()));
        }
        if let Some(l) = self.api_limit {
            env.push((ENV_API_LIMIT, l.to_string()));
        }
        if self.drift || self.project.backend_drifts() {
            env.push((ENV_DRIFT, "1".to_string()));
        }
        if self.generic_500 {
            env.push((ENV_GENERIC_500, "1".to_string()));
        }
        let numbers = [
            (ENV_QUERY_MS, self.query_ms),
            (ENV_CPU_MS, self.cpu_ms),
            (ENV_LOCK_MS, self.lock_ms),
            (ENV_RETAIN_KB, self.retain_kb),
            (ENV_CRASH_AFTER, self.crash_after),
        ];
        for (k, v) in numbers {
            if let Some(v) = v.filter(|v| *v > 0) {
                env.push((k, v.to_string()));
            }
        }
        env
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_knobs_set_no_fault_variables() {
        assert!(Knobs::default().sandbox_env().is_empty());
        let k = Knobs {
            cpu_ms: Some(20),
            lock_ms: Some(0),
            crash_after: Some(3),
            generic_500: true,
            ..Knobs::default()
        };
        let env = k.sandbox_env();
        assert!(env.contains(&(ENV_CPU_MS, "20".to_string())));
        assert!(env.contains(&(ENV_CRASH_AFTER, "3".to_string())));
        assert!(env.contains(&(ENV_GENERIC_500, "1".to_string())));
        assert!(!env.iter().any(|(k, _)| *k == ENV_LOCK_MS), "0 is off");
    }
}
