//! [`Fault`]: what a check observed going wrong, as data. Its wording (root
//! cause and fix) lives in the family's file (`pg.rs`, `http.rs`, …).

use super::cause::Cause;
use super::net::{NetError, TlsProblem};
use serde::{Deserialize, Serialize};

pub use super::fault_parts::{DriftItem, EnvFileItem, EnvState, Family, LimiterMatch};

/// A failure as a check observed it: plain data, kept in the check's result
/// and printed in the JSON report.
///
/// # Cause codes
/// A fault serializes as one object whose `cause` names the variant in
/// snake_case (`#[serde(tag = "cause", rename_all = "snake_case")]`), next
/// to the variant's fields: `PgAuthFailed { user, host }` is
/// `{"cause": "pg_auth_failed", "user": "…", "host": "…"}`.
/// [`Fault::cause_code`] gives the same string without serializing. The
/// codes are stable, machine-readable names: a renamed variant keeps its
/// old code with `#[serde(rename = "…")]` (and in `cause_code`); a test
/// checks that both agree.
///
/// The variants are grouped by [`Family`]; each group is worded in the
/// file of that name under `src/diagnose/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cause", rename_all = "snake_case")]
pub enum Fault {
    // ── pg: PostgreSQL itself (pg_ready, pg_connect, every login) ──────────
    /// pg_isready's "no response": nothing answered the PostgreSQL protocol.
    PgNoResponse {
        host: String,
        port: u16,
        error: NetError,
    },
    /// pg_isready's "rejecting connections": starting up or shutting down (57P03).
    PgRejecting {
        host: String,
        port: u16,
        message: String,
    },
    /// pg_isready's "no attempt": the parameters were unusable.
    PgNoAttempt {
        reason: String,
    },
    PgAuthFailed {
        user: String,
        host: String,
    },
    PgDatabaseMissing {
        database: String,
    },
    PgTooManyClients {
        message: String,
    },
    PgTlsRequired {
        message: String,
    },
    /// The TLS handshake the URL's sslmode asks for did not succeed. Built by
    /// `diagnose::pg::tls_failed` and `tls_failed_from`, which classify it.
    PgTlsFailed {
        host: String,
        port: u16,
        sslmode: String,
        message: String,
        /// What went wrong, which chooses the fix.
        #[serde(default)]
        problem: TlsProblem,
    },
    PgNoHbaEntry {
        message: String,
    },
    PgServerError {
        code: String,
        message: String,
    },

    // ── port: who listens where ──────────────────────────────────────────
    /// Nothing listens where the service should.
    PortNotListening {
        host: String,
        port: u16,
        service: String,
        start_command: Option<String>,
        health_url: Option<String>,
    },
    /// Something listens where we need the port free.
    PortTaken {
        host: String,
        port: u16,
        process: Option<String>,
    },
    /// Nothing listens, and the backend's log says why it stopped: it
    /// exited at start-up (`at_start_up`) or after serving requests.
    BackendExited {
        host: String,
        port: u16,
        service: String,
        at_start_up: bool,
        /// The cause its log names (see [`Cause`]).
        why: Cause,
        /// The error's own code when the log gives one (P1001, EADDRINUSE).
        code: Option<String>,
        summary: String,
        fix: String,
        /// The log lines that show it.
        evidence: Vec<String>,
        /// The log read, and why that file.
        log: String,
        start_command: Option<String>,
    },
    /// The port listens, but another program holds it.
    PortHeldByOther {
        port: u16,
        pid: u32,
        service: String,
        holder: String,
        pattern: String,
        start_command: Option<String>,
    },

    // ── http: one request and its answer ─────────────────────────────────
    HttpConnect {
        url: String,
        error: NetError,
        detail: String,
    },
    HttpStatus {
        url: String,
        expected: String,
        status: u16,
        body: String,
    },
    /// A 4xx/5xx answer whose cause the body or the backend's log names.
    BackendError {
        url: String,
        status: u16,
        /// The cause named (see [`Cause`]).
        why: Cause,
        /// The error's own code when the texts give one (P2022, 53300).
        code: Option<String>,
        summary: String,
        fix: String,
        /// The body and log lines that show it.
        evidence: Vec<String>,
        /// The log read, and why that file (None: only the body named it).
        log: Option<String>,
    },
    HttpAssertion {
        url: String,
        path: String,
        expected: String,
        actual: String,
    },
    HttpLatency {
        url: String,
        limit_ms: u64,
        took_ms: u64,
    },
    HttpBody {
        url: String,
        message: String,
    },

    // ── env: the backend process's environment and its DATABASE_URL ──────
    ProcessNotFound {
        selector: String,
    },
    EnvUnreadable {
        pid: u32,
        message: String,
    },
    EnvMissing {
        name: String,
        source: String,
    },
    EnvMismatch {
        name: String,
        source: String,
        expected: String,
        actual: String,
    },
    DbUrlInvalid {
        name: String,
        message: String,
    },
    DbUrlParam {
        name: String,
        param: String,
        expected: String,
        actual: Option<String>,
    },

    // ── rate_limit: bursts of requests ───────────────────────────────────
    /// A burst met 429s: a rate limiter is active.
    RateLimited {
        url: String,
        requests: u32,
        limited: u32,
        /// Number of the first request answered 429 (0: predicted by a probe).
        first: u32,
        limiter: Option<LimiterMatch>,
        env: EnvState,
        /// The variable that disables the limiters, and its value.
        var: String,
        value: String,
    },
    /// A burst did not finish within the check's timeout.
    BurstIncomplete {
        url: String,
        sent: u32,
        planned: u32,
    },
    /// A burst met no 429, but other errors.
    BurstErrors {
        url: String,
        failed: u32,
        requests: u32,
        first: String,
    },

    // ── log: the backend's log file ──────────────────────────────────────
    LogUnreadable {
        path: String,
        error: String,
        missing: bool,
    },
    /// Problem lines in a log; `first` is the most telling one.
    LogMatches {
        path: String,
        count: u32,
        first: String,
    },

    // ── stability: the backend watched over time ─────────────────────────
    /// The backend process exited or was replaced.
    ProcessRestarted {
        selector: String,
        from: u32,
        to: Option<u32>,
    },
    HealthFlapping {
        url: String,
        failed: u32,
        samples: u32,
        first: String,
    },
    MemoryGrowth {
        what: String,
        from_mb: f64,
        to_mb: f64,
        percent: f64,
        bound: f64,
        over: String,
    },

    // ── pool: pool size against load and max_connections ─────────────────
    /// The pool is smaller than pool math gives for the planned load.
    PoolTooSmall {
        pool: u32,
        /// Where the pool size came from (`connection_limit` in the backend's DATABASE_URL, …).
        source: String,
        /// Connections busy on average under the load.
        concurrent: f64,
        recommended: u32,
        /// The planned load, for the text (`120 VUs × 0.7 × 150 ms`).
        load: String,
    },
    /// pool × replicas + other clients is above 70% of the usable
    /// connections (`fits`) or above all of them.
    PoolExceedsHeadroom {
        pool: u32,
        replicas: u32,
        other: u32,
        demand: u32,
        usable: u32,
        max_connections: u32,
        fits: bool,
    },

    // ── sql: the schema and read-only queries ────────────────────────────
    /// Tables or columns the backend needs are missing (Prisma P2021/P2022).
    SchemaDrift {
        schema: String,
        missing_tables: Vec<String>,
        missing_columns: Vec<String>,
        /// What exists instead (`messages has messageType, not type`).
        hints: Vec<String>,
    },
    /// A `sql` check tried to write: the read-only transaction refused it (25006).
    ReadOnlyViolation {
        message: String,
    },
    /// A `sql` check ran longer than its statement_timeout (57014).
    SqlTimeout {
        limit_ms: u64,
    },
    /// A `sql` check's statement failed.
    SqlError {
        code: String,
        message: String,
    },
    /// A `sql` check's result is not what was expected.
    SqlAssertion {
        what: String,
        expected: String,
        actual: String,
    },

    // ── activity: pg_stat_activity ───────────────────────────────────────
    /// Too many active sessions on the database (the seed: warn > 40, critical > 48).
    ActivityAboveThreshold {
        database: String,
        active: u32,
        threshold: u32,
        critical: bool,
    },
    /// Sessions blocked: waiting for locks, or transactions left idle holding them.
    SessionsStuck {
        database: String,
        waiting_lock: u32,
        idle_in_transaction: u32,
        oldest_idle_s: Option<f64>,
    },

    // ── project: the backend's working tree (schema, client, build, migrations, .env) ──
    /// The Prisma schema and the database disagree: tables, columns,
    /// types, nullability or enum values (indexes: [`Fault::PrismaIndexMissing`]).
    PrismaDrift {
        /// The schema file(s) read.
        schema: String,
        /// `schema `public`` of which database.
        database: String,
        items: Vec<DriftItem>,
    },
    /// Indexes the schema declares that the database lacks.
    PrismaIndexMissing {
        schema: String,
        database: String,
        items: Vec<DriftItem>,
    },
    /// The generated Prisma client was generated from another schema.
    StaleClient {
        /// The client's copy of the schema (or its package.json).
        client: String,
        schema: String,
        /// How it was told: `content` (the copies differ), `hash` (the
        /// package name's sha256 is not the schema's), `time` (older).
        how: String,
        /// What differs (`Message.messageType: in the client, not in the schema`).
        differences: Vec<String>,
        client_time: Option<String>,
        schema_time: Option<String>,
    },
    /// The compiled output is older than its sources, or lacks files.
    StaleBuild {
        out_dir: String,
        /// `src/x.ts (time) is newer than dist/x.js (time)`.
        newer: Vec<String>,
        /// Sources without a compiled file.
        missing: Vec<String>,
    },
    /// The backend process started before the files it runs were last written.
    StaleProcess {
        pid: u32,
        started: String,
        /// `dist/main.js written 2026-… (12 s after the process started)`.
        newer: Vec<String>,
    },
    /// Migrations on disk that the database has not applied.
    MigrationsPending {
        dir: String,
        names: Vec<String>,
    },
    /// A migration that started and did not finish (`finished_at` NULL).
    MigrationFailed {
        name: String,
        started_at: Option<String>,
        logs: String,
    },
    /// Applied migrations that are not on disk, or whose migration.sql changed.
    MigrationsDiverged {
        dir: String,
        missing_on_disk: Vec<String>,
        /// `NAME (database sha256 …, file sha256 …)`.
        checksum_mismatch: Vec<String>,
    },
    /// Migration folders exist but the database has no `_prisma_migrations` table.
    MigrationsTableMissing {
        dir: String,
        count: u32,
    },
    /// `.env` variables the running process does not have as the file says.
    EnvFileNotLoaded {
        pid: u32,
        started: Option<String>,
        items: Vec<EnvFileItem>,
    },

    // ── load: a `chatops load` stage's breaking point ────────────────────
    /// Load test: connections were refused during the stage (the backend
    /// crashed or stopped listening).
    LoadCrash {
        stage: String,
        refused: u64,
        requests: u64,
        backend_alive: Option<bool>,
    },
    /// Load test: most requests failed below HTTP.
    LoadTransport {
        stage: String,
        transport: u64,
        requests: u64,
        tls: bool,
    },
    /// Load test: the stage failed with 429 answers.
    LoadRateLimited {
        stage: String,
        rate_limited: u64,
        requests: u64,
    },
    /// Load test: the backend's pool was the bottleneck.
    LoadPoolSaturated {
        stage: String,
        connection_limit: Option<u32>,
        max_active: Option<u32>,
        pool_timeouts: u64,
        timeouts: u64,
        /// Connections the pool could grow by within max_connections.
        headroom: Option<u32>,
    },
    /// Load test: the backend's memory grew markedly during the stage.
    LoadMemoryGrowth {
        stage: String,
        from_bytes: u64,
        to_bytes: u64,
    },
    /// Load test: the stage missed its criteria with no cause above.
    LoadOverBudget {
        stage: String,
        p95_ms: f64,
        p95_limit_ms: Option<f64>,
        error_pct: f64,
        error_limit_pct: Option<f64>,
        max_active: Option<u32>,
    },

    #[serde(untagged)]
    PgBouncer(super::pgbouncer::BouncerFault),
}

impl Fault {
    /// The family whose file words this fault.
    pub fn family(&self) -> Family {
        self.code().0
    }

    /// The stable machine-readable cause: the serialized `cause` tag.
    pub fn cause_code(&self) -> &'static str {
        self.code().1
    }

    /// The root cause in the shared vocabulary ([`Cause`]), when one fits;
    /// doctor's JSON prints it as each finding's `cause`.
    ///
    /// | faults | cause |
    /// |---|---|
    /// | PostgreSQL silent, rejecting, refusing the login, database, TLS or pg_hba entry | `database_down` |
    /// | too many clients (53300); a pool × replicas above max_connections | `database_connections` |
    /// | a pool too small for the planned load | `pool_saturation` |
    /// | 429 answers, a burst limited | `rate_limiting` |
    /// | a TLS failure or a reset below HTTP | `transport` |
    /// | the backend restarted | `crash` |
    /// | memory growth | `memory_growth` |
    /// | missing tables or columns; the Prisma schema against the database; a stale client; migrations pending or failed | `schema_drift` |
    /// | a statement over its timeout | `slow_queries` |
    /// | sessions waiting for locks or idle in a transaction | `lock_contention` |
    /// | an error answer or log lines: what their texts name (`diagnose::witness`) | any |
    /// | the backend exited: what its log names | any |
    /// | a load stage's breaking point | its cause |
    ///
    /// Everything else (a port not listening with no log to say why, mock
    /// mode, a wrong assertion, a bad URL) has none: the vocabulary names
    /// why a backend breaks, not every way a check can fail.
    pub fn cause(&self) -> Option<Cause> {
        use super::witness;
        Some(match self {
            Fault::PgNoResponse { .. }
            | Fault::PgRejecting { .. }
            | Fault::PgAuthFailed { .. }
            | Fault::PgDatabaseMissing { .. }
            | Fault::PgTlsRequired { .. }
            | Fault::PgTlsFailed { .. }
            | Fault::PgNoHbaEntry { .. } => Cause::DatabaseDown,
            Fault::PgTooManyClients { .. } | Fault::PoolExceedsHeadroom { .. } => {
                Cause::DatabaseConnections
            }
            Fault::BackendExited { why, .. } | Fault::BackendError { why, .. } => *why,
            Fault::HttpConnect {
                error: NetError::Tls | NetError::Reset | NetError::Protocol,
                ..
            } => Cause::Transport,
            Fault::HttpStatus { status, body, .. } => {
                return witness::classify_body(*status, body).map(|f| f.cause);
            }
            Fault::RateLimited { .. } | Fault::LoadRateLimited { .. } => Cause::RateLimiting,
            Fault::LogMatches { first, .. } => {
                return witness::classify_text(first).map(|f| f.cause);
            }
            Fault::ProcessRestarted { .. } | Fault::LoadCrash { .. } => Cause::Crash,
            Fault::MemoryGrowth { .. } | Fault::LoadMemoryGrowth { .. } => Cause::MemoryGrowth,
            Fault::PoolTooSmall { .. } | Fault::LoadPoolSaturated { .. } => Cause::PoolSaturation,
            Fault::SchemaDrift { .. }
            | Fault::PrismaDrift { .. }
            | Fault::StaleClient { .. }
            | Fault::MigrationsPending { .. }
            | Fault::MigrationFailed { .. } => Cause::SchemaDrift,
            Fault::SqlTimeout { .. } => Cause::SlowQueries,
            Fault::SessionsStuck { .. } => Cause::LockContention,
            Fault::LoadTransport { .. } => Cause::Transport,
            Fault::LoadOverBudget { .. } => Cause::OverBudget,
            Fault::PgBouncer(b) => return b.cause(),
            _ => return None,
        })
    }

    /// One exhaustive match, so that a new variant must be given a family
    /// and a code.
    fn code(&self) -> (Family, &'static str) {
        use Family::*;
        match self {
            Fault::PgNoResponse { .. } => (Pg, "pg_no_response"),
            Fault::PgRejecting { .. } => (Pg, "pg_rejecting"),
            Fault::PgNoAttempt { .. } => (Pg, "pg_no_attempt"),
            Fault::PgAuthFailed { .. } => (Pg, "pg_auth_failed"),
            Fault::PgDatabaseMissing { .. } => (Pg, "pg_database_missing"),
            Fault::PgTooManyClients { .. } => (Pg, "pg_too_many_clients"),
            Fault::PgTlsRequired { .. } => (Pg, "pg_tls_required"),
            Fault::PgTlsFailed { .. } => (Pg, "pg_tls_failed"),
            Fault::PgNoHbaEntry { .. } => (Pg, "pg_no_hba_entry"),
            Fault::PgServerError { .. } => (Pg, "pg_server_error"),
            Fault::PortNotListening { .. } => (Port, "port_not_listening"),
            Fault::PortTaken { .. } => (Port, "port_taken"),
            Fault::BackendExited { .. } => (Port, "backend_exited"),
            Fault::PortHeldByOther { .. } => (Port, "port_held_by_other"),
            Fault::HttpConnect { .. } => (Http, "http_connect"),
            Fault::HttpStatus { .. } => (Http, "http_status"),
            Fault::BackendError { .. } => (Http, "backend_error"),
            Fault::HttpAssertion { .. } => (Http, "http_assertion"),
            Fault::HttpLatency { .. } => (Http, "http_latency"),
            Fault::HttpBody { .. } => (Http, "http_body"),
            Fault::ProcessNotFound { .. } => (Env, "process_not_found"),
            Fault::EnvUnreadable { .. } => (Env, "env_unreadable"),
            Fault::EnvMissing { .. } => (Env, "env_missing"),
            Fault::EnvMismatch { .. } => (Env, "env_mismatch"),
            Fault::DbUrlInvalid { .. } => (Env, "db_url_invalid"),
            Fault::DbUrlParam { .. } => (Env, "db_url_param"),
            Fault::RateLimited { .. } => (RateLimit, "rate_limited"),
            Fault::BurstIncomplete { .. } => (RateLimit, "burst_incomplete"),
            Fault::BurstErrors { .. } => (RateLimit, "burst_errors"),
            Fault::LogUnreadable { .. } => (Log, "log_unreadable"),
            Fault::LogMatches { .. } => (Log, "log_matches"),
            Fault::ProcessRestarted { .. } => (Stability, "process_restarted"),
            Fault::HealthFlapping { .. } => (Stability, "health_flapping"),
            Fault::MemoryGrowth { .. } => (Stability, "memory_growth"),
            Fault::PoolTooSmall { .. } => (Pool, "pool_too_small"),
            Fault::PoolExceedsHeadroom { .. } => (Pool, "pool_exceeds_headroom"),
            Fault::SchemaDrift { .. } => (Sql, "schema_drift"),
            Fault::ReadOnlyViolation { .. } => (Sql, "read_only_violation"),
            Fault::SqlTimeout { .. } => (Sql, "sql_timeout"),
            Fault::SqlError { .. } => (Sql, "sql_error"),
            Fault::SqlAssertion { .. } => (Sql, "sql_assertion"),
            Fault::ActivityAboveThreshold { .. } => (Activity, "activity_above_threshold"),
            Fault::SessionsStuck { .. } => (Activity, "sessions_stuck"),
            Fault::LoadCrash { .. } => (Load, "load_crash"),
            Fault::LoadTransport { .. } => (Load, "load_transport"),
            Fault::LoadRateLimited { .. } => (Load, "load_rate_limited"),
            Fault::LoadPoolSaturated { .. } => (Load, "load_pool_saturated"),
            Fault::LoadMemoryGrowth { .. } => (Load, "load_memory_growth"),
            Fault::LoadOverBudget { .. } => (Load, "load_over_budget"),
            Fault::PrismaDrift { .. } => (Project, "prisma_drift"),
            Fault::PrismaIndexMissing { .. } => (Project, "prisma_index_missing"),
            Fault::StaleClient { .. } => (Project, "stale_client"),
            Fault::StaleBuild { .. } => (Project, "stale_build"),
            Fault::StaleProcess { .. } => (Project, "stale_process"),
            Fault::MigrationsPending { .. } => (Project, "migrations_pending"),
            Fault::MigrationFailed { .. } => (Project, "migration_failed"),
            Fault::MigrationsDiverged { .. } => (Project, "migrations_diverged"),
            Fault::MigrationsTableMissing { .. } => (Project, "migrations_table_missing"),
            Fault::EnvFileNotLoaded { .. } => (Project, "env_file_not_loaded"),
            Fault::PgBouncer(b) => (PgBouncer, b.code()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::samples;
    use serde_json::json;

    #[test]
    fn every_fault_round_trips_and_its_tag_is_its_cause_code() {
        for f in samples::all() {
            let v = serde_json::to_value(&f).expect("serializes");
            assert_eq!(v["cause"], f.cause_code(), "{v}");
            let back: Fault = serde_json::from_value(v.clone()).expect("deserializes");
            assert_eq!(back, f, "{v}");
        }
    }

    #[test]
    fn cause_codes_and_fields_are_stable() {
        let f = Fault::PgAuthFailed {
            user: "chat_app".into(),
            host: "db:5432".into(),
        };
        assert_eq!(
            serde_json::to_value(&f).expect("json"),
            json!({"cause": "pg_auth_failed", "user": "chat_app", "host": "db:5432"})
        );
        assert_eq!(f.family(), Family::Pg);
        let f = Fault::HttpConnect {
            url: "http://x/".into(),
            error: NetError::Refused,
            detail: "d".into(),
        };
        assert_eq!(
            serde_json::to_value(&f).expect("json"),
            json!({"cause": "http_connect", "url": "http://x/", "error": "refused", "detail": "d"})
        );
        let all = samples::all();
        let by = |code: &str| {
            let f = all.iter().find(|f| f.cause_code() == code).expect(code);
            serde_json::to_value(f).expect("json")
        };
        let r = by("rate_limited");
        assert_eq!(r["env"]["state"], "process");
        assert_eq!(r["limiter"]["window_s"], 900);
        assert_eq!(by("pg_tls_failed")["problem"], "name_mismatch");
        assert_eq!(by("load_pool_saturated")["headroom"], 57);
        assert_eq!(by("activity_above_threshold")["critical"], true);
        for (code, family) in [
            ("port_held_by_other", Family::Port),
            ("env_mismatch", Family::Env),
            ("burst_errors", Family::RateLimit),
            ("log_matches", Family::Log),
            ("health_flapping", Family::Stability),
            ("pool_exceeds_headroom", Family::Pool),
            ("schema_drift", Family::Sql),
            ("sessions_stuck", Family::Activity),
            ("load_over_budget", Family::Load),
        ] {
            let f = all.iter().find(|f| f.cause_code() == code).expect(code);
            assert_eq!(f.family(), family, "{code}");
        }
    }

    #[test]
    fn faults_map_to_the_cause_vocabulary_as_documented() {
        use crate::diagnose::cause::Cause as C;
        let expected: &[(&str, Option<C>)] = &[
            ("pg_no_response", Some(C::DatabaseDown)),
            ("pg_auth_failed", Some(C::DatabaseDown)),
            ("pg_no_attempt", None),
            ("pg_too_many_clients", Some(C::DatabaseConnections)),
            ("pool_exceeds_headroom", Some(C::DatabaseConnections)),
            ("port_not_listening", None),
            ("port_held_by_other", None),
            ("backend_exited", Some(C::DatabaseDown)),
            ("backend_error", Some(C::SchemaDrift)),
            ("http_assertion", None),
            ("env_missing", None),
            ("rate_limited", Some(C::RateLimiting)),
            ("process_restarted", Some(C::Crash)),
            ("memory_growth", Some(C::MemoryGrowth)),
            ("pool_too_small", Some(C::PoolSaturation)),
            ("schema_drift", Some(C::SchemaDrift)),
            ("sql_timeout", Some(C::SlowQueries)),
            ("sessions_stuck", Some(C::LockContention)),
            ("load_crash", Some(C::Crash)),
            ("load_transport", Some(C::Transport)),
            ("load_pool_saturated", Some(C::PoolSaturation)),
            ("load_over_budget", Some(C::OverBudget)),
        ];
        let all = samples::all();
        for (code, cause) in expected {
            let f = all.iter().find(|f| f.cause_code() == *code).expect(code);
            assert_eq!(f.cause(), *cause, "{code}");
        }
        // A log's first problem line names the cause it shows.
        let log = Fault::LogMatches {
            path: "/tmp/backend.log".into(),
            count: 1,
            first: "Timed out fetching a new connection from the connection pool".into(),
        };
        assert_eq!(log.cause(), Some(C::PoolSaturation));
        let reset = Fault::HttpConnect {
            url: "http://x/".into(),
            error: NetError::Reset,
            detail: "d".into(),
        };
        assert_eq!(reset.cause(), Some(C::Transport));
    }

    #[test]
    fn reading_faults_back() {
        // A fault written before `problem` existed reads as an unclassified one.
        let f: Fault = serde_json::from_value(json!({
            "cause": "pg_tls_failed", "host": "h", "port": 5432, "sslmode": "require", "message": "m"
        }))
        .expect("reads");
        assert!(matches!(
            f,
            Fault::PgTlsFailed {
                problem: TlsProblem::Other,
                ..
            }
        ));
        let unknown = serde_json::from_value::<Fault>(json!({"cause": "no_such_cause"}));
        assert!(unknown.is_err());
        let missing =
            serde_json::from_value::<Fault>(json!({"cause": "pg_auth_failed", "user": "u"}));
        assert!(missing.is_err());
    }

    #[test]
    fn map_strings_reaches_every_text_field_and_nothing_else() {
        let f = Fault::RateLimited {
            url: "http://x/?token=s3cret".into(),
            requests: 10,
            limited: 3,
            first: 8,
            limiter: Some(LimiterMatch {
                name: "s3cret limiter".into(),
                max: 5,
                window_s: None,
                how: "h".into(),
            }),
            env: EnvState::Process {
                source: "process 1".into(),
                value: Some("s3cret".into()),
                in_shell: None,
                similar: vec!["DISABLE_RATELIMIT=s3cret".into()],
            },
            var: "V".into(),
            value: "s3cret".into(),
        };
        let g = f
            .map_strings(|s| s.replace("s3cret", "***"))
            .expect("still a fault");
        let text = format!("{g:?}");
        assert!(!text.contains("s3cret"), "{text}");
        assert!(matches!(
            g,
            Fault::RateLimited {
                requests: 10,
                limited: 3,
                first: 8,
                ..
            }
        ));
        assert_eq!(g.cause_code(), "rate_limited");
        // The tag itself is not text to rewrite.
        let h = f
            .map_strings(|s| s.replace("rate_limited", "x"))
            .expect("kept");
        assert_eq!(h.cause_code(), "rate_limited");
    }
}
