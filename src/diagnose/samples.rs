//! One fault of every variant, for the tests (test builds only).

use super::cause::Cause;
use super::{
    Diagnosis, DriftItem, EnvFileItem, EnvState, Fault, LimiterMatch, NetError, TlsProblem,
    diagnose,
};

/// Asserts that `text` names every one of `facts`.
pub fn says(text: &str, facts: &[&str]) {
    for f in facts {
        assert!(text.contains(f), "{f:?} is not in: {text}");
    }
}

/// The diagnosis of `f`, asserting that its root cause and its fix name
/// the given facts.
pub fn words(f: &Fault, root: &[&str], fix: &[&str]) -> Diagnosis {
    let d = diagnose(f);
    says(&d.root_cause, root);
    says(&d.remedy, fix);
    d
}

pub fn all() -> Vec<Fault> {
    let s = |x: &str| x.to_string();
    vec![
        Fault::PgNoResponse {
            host: s("db.internal"),
            port: 5433,
            error: NetError::Refused,
        },
        Fault::PgRejecting {
            host: s("db.internal"),
            port: 5433,
            message: s("the database system is starting up"),
        },
        Fault::PgNoAttempt {
            reason: s("invalid port `x`"),
        },
        Fault::PgAuthFailed {
            user: s("chat_app"),
            host: s("db.internal:5433"),
        },
        Fault::PgDatabaseMissing {
            database: s("chat_backend_db"),
        },
        Fault::PgTooManyClients {
            message: s("sorry, too many clients already"),
        },
        Fault::PgTlsRequired {
            message: s("no pg_hba.conf entry, no encryption"),
        },
        Fault::PgTlsFailed {
            host: s("db.internal"),
            port: 5433,
            sslmode: s("verify-full"),
            message: s("invalid peer certificate: certificate not valid for name"),
            problem: TlsProblem::NameMismatch,
        },
        Fault::PgNoHbaEntry {
            message: s("no pg_hba.conf entry for host 10.0.0.7"),
        },
        Fault::PgServerError {
            code: s("XX000"),
            message: s("internal error"),
        },
        Fault::PortNotListening {
            host: s("localhost"),
            port: 3001,
            service: s("chat backend"),
            start_command: Some(s("npm run start:prod > backend.log 2>&1 &")),
            health_url: Some(s("http://localhost:3001/api/v1/health")),
        },
        Fault::PortTaken {
            host: s("localhost"),
            port: 3001,
            process: Some(s("node (pid 77)")),
        },
        Fault::BackendExited {
            host: s("127.0.0.1"),
            port: 3001,
            service: s("chat backend"),
            at_start_up: true,
            why: Cause::DatabaseDown,
            code: Some(s("P1001")),
            summary: s(
                "The backend exited at start-up. It cannot reach PostgreSQL at 127.0.0.1:5432.",
            ),
            fix: s("Start PostgreSQL, then restart the backend."),
            evidence: vec![s(
                "prisma:error Can't reach database server at `127.0.0.1:5432`",
            )],
            log: s("/tmp/backend.log (the playbook's backend_log)"),
            start_command: Some(s("npm run start:dev")),
        },
        Fault::PortHeldByOther {
            port: 3001,
            pid: 77,
            service: s("chat backend"),
            holder: s("python3 -m http.server (pid 77)"),
            pattern: s("node|nest"),
            start_command: Some(s("npm run start:prod")),
        },
        Fault::HttpConnect {
            url: s("http://localhost:3001/api/v1/health"),
            error: NetError::Timeout,
            detail: s("operation timed out"),
        },
        Fault::HttpStatus {
            url: s("http://localhost:3001/api/v1/health"),
            expected: s("200"),
            status: 503,
            body: s("{\"status\":\"error\"}"),
        },
        Fault::BackendError {
            url: s("http://127.0.0.1:3001/api/v1/chat/conversations/c/messages"),
            status: 500,
            why: Cause::SchemaDrift,
            code: Some(s("P2022")),
            summary: s("The column `messageType` does not exist in the current database."),
            fix: s("Regenerate the Prisma client and rebuild, then restart the backend."),
            evidence: vec![s("prisma:error The column `messageType` does not exist")],
            log: Some(s("/tmp/backend.log (stdout of pid 42)")),
        },
        Fault::HttpAssertion {
            url: s("http://localhost:3001/api/v1/health"),
            path: s("database.overall"),
            expected: s("\"healthy\""),
            actual: s("\"degraded\""),
        },
        Fault::HttpLatency {
            url: s("http://localhost:3001/api/v1/health"),
            limit_ms: 500,
            took_ms: 1830,
        },
        Fault::HttpBody {
            url: s("http://localhost:3001/api/v1/health"),
            message: s("the body is not JSON"),
        },
        Fault::ProcessNotFound {
            selector: s("port 3001"),
        },
        Fault::EnvUnreadable {
            pid: 77,
            message: s("permission denied"),
        },
        Fault::EnvMissing {
            name: s("DATABASE_URL"),
            source: s("process 77 (node)"),
        },
        Fault::EnvMismatch {
            name: s("PRISMA_CLIENT_MODE"),
            source: s("process 77 (node)"),
            expected: s("equal to \"database\""),
            actual: s("mock"),
        },
        Fault::DbUrlInvalid {
            name: s("DATABASE_URL"),
            message: s("no host"),
        },
        Fault::DbUrlParam {
            name: s("DATABASE_URL"),
            param: s("connection_limit"),
            expected: s("at least 20"),
            actual: Some(s("5")),
        },
        Fault::RateLimited {
            url: s("http://localhost:3001/api/v1/conversations"),
            requests: 150,
            limited: 50,
            first: 101,
            limiter: Some(LimiterMatch {
                name: s("apiLimiter"),
                max: 100,
                window_s: Some(900),
                how: s("RateLimit-Limit: 100"),
            }),
            env: EnvState::Process {
                source: s("process 77 (node)"),
                value: None,
                in_shell: Some(s("true")),
                similar: vec![s("DISABLE_RATELIMIT=true")],
            },
            var: s("DISABLE_RATE_LIMIT"),
            value: s("true"),
        },
        Fault::BurstIncomplete {
            url: s("http://localhost:3001/api/v1/conversations"),
            sent: 60,
            planned: 150,
        },
        Fault::BurstErrors {
            url: s("http://localhost:3001/api/v1/conversations"),
            failed: 12,
            requests: 150,
            first: s("500 Internal Server Error"),
        },
        Fault::LogUnreadable {
            path: s("/var/log/chat/backend.log"),
            error: s("No such file or directory"),
            missing: true,
        },
        Fault::LogMatches {
            path: s("/var/log/chat/backend.log"),
            count: 3,
            first: s("ERROR [ExceptionsHandler] Cannot read properties of undefined"),
        },
        Fault::ProcessRestarted {
            selector: s("port 3001"),
            from: 77,
            to: Some(91),
        },
        Fault::HealthFlapping {
            url: s("http://localhost:3001/api/v1/health"),
            failed: 4,
            samples: 30,
            first: s("503"),
        },
        Fault::MemoryGrowth {
            what: s("RSS"),
            from_mb: 120.0,
            to_mb: 310.5,
            percent: 158.75,
            bound: 50.0,
            over: s("30s"),
        },
        Fault::PoolTooSmall {
            pool: 5,
            source: s("connection_limit in the backend's DATABASE_URL"),
            concurrent: 12.5,
            recommended: 23,
            load: s("120 VUs × 0.7 × 150 ms"),
        },
        Fault::PoolExceedsHeadroom {
            pool: 50,
            replicas: 2,
            other: 7,
            demand: 107,
            usable: 97,
            max_connections: 100,
            fits: false,
        },
        Fault::SchemaDrift {
            schema: s("public"),
            missing_tables: vec![s("readReceipts")],
            missing_columns: vec![s("messages.messageType")],
            hints: vec![s("messages has type, not messageType")],
        },
        Fault::ReadOnlyViolation {
            message: s("cannot execute DELETE in a read-only transaction"),
        },
        Fault::SqlTimeout { limit_ms: 2000 },
        Fault::SqlError {
            code: s("42P01"),
            message: s("relation \"users\" does not exist"),
        },
        Fault::SqlAssertion {
            what: s("row count"),
            expected: s("1"),
            actual: s("0"),
        },
        Fault::ActivityAboveThreshold {
            database: s("chat_backend_db"),
            active: 49,
            threshold: 48,
            critical: true,
        },
        Fault::SessionsStuck {
            database: s("chat_backend_db"),
            waiting_lock: 3,
            idle_in_transaction: 2,
            oldest_idle_s: Some(41.25),
        },
        Fault::LoadCrash {
            stage: s("high"),
            refused: 420,
            requests: 9000,
            backend_alive: Some(false),
        },
        Fault::LoadTransport {
            stage: s("high"),
            transport: 700,
            requests: 1000,
            tls: true,
        },
        Fault::LoadRateLimited {
            stage: s("warm-up"),
            rate_limited: 350,
            requests: 450,
        },
        Fault::LoadPoolSaturated {
            stage: s("high"),
            connection_limit: Some(10),
            max_active: Some(10),
            pool_timeouts: 37,
            timeouts: 5,
            headroom: Some(57),
        },
        Fault::LoadMemoryGrowth {
            stage: s("soak"),
            from_bytes: 100 << 20,
            to_bytes: 400 << 20,
        },
        Fault::LoadOverBudget {
            stage: s("high"),
            p95_ms: 912.5,
            p95_limit_ms: Some(200.0),
            error_pct: 0.5,
            error_limit_pct: Some(1.0),
            max_active: Some(4),
        },
        Fault::PrismaDrift {
            schema: s("prisma/schema.prisma"),
            database: s("schema `public` of chat_backend_db"),
            items: vec![DriftItem {
                model: s("Message"),
                field: Some(s("messageType")),
                problem: s("missing_column"),
                expected: s("column messages.messageType (text NOT NULL)"),
                actual: s("no such column; messages has type"),
                at: s("prisma/schema.prisma:42"),
            }],
        },
        Fault::PrismaIndexMissing {
            schema: s("prisma/schema.prisma"),
            database: s("schema `public` of chat_backend_db"),
            items: vec![DriftItem {
                model: s("Message"),
                field: None,
                problem: s("index"),
                expected: s(
                    "index messages_conversation_created_idx on messages (conversationId, createdAt)",
                ),
                actual: s("no index on these columns"),
                at: s("prisma/schema.prisma:50"),
            }],
        },
        Fault::StaleClient {
            client: s("node_modules/.prisma/client/schema.prisma"),
            schema: s("prisma/schema.prisma"),
            how: s("content"),
            differences: vec![s(
                "Message.messageType: in the client (column messageType String), not in the schema",
            )],
            client_time: Some(s("2026-12-01T10:00:00Z")),
            schema_time: Some(s("2026-12-01T11:00:00Z")),
        },
        Fault::StaleBuild {
            out_dir: s("dist"),
            newer: vec![s(
                "src/chat/chat.service.ts (2026-12-01T11:00:00Z) is newer than dist/chat/chat.service.js (2026-12-01T10:00:00Z)",
            )],
            missing: vec![s("src/chat/reactions.ts")],
        },
        Fault::StaleProcess {
            pid: 4242,
            started: s("2026-12-01T10:00:00Z"),
            newer: vec![s(
                "dist/main.js written 2026-12-01T10:05:00Z (300 s after the process started)",
            )],
        },
        Fault::MigrationsPending {
            dir: s("prisma/migrations"),
            names: vec![s("20261201000000_add_edited_at")],
        },
        Fault::MigrationFailed {
            name: s("20261115000000_bad"),
            started_at: Some(s("2026-11-15T00:00:00Z")),
            logs: s("ERROR: relation \"messages_status_idx\" already exists"),
        },
        Fault::MigrationsDiverged {
            dir: s("prisma/migrations"),
            missing_on_disk: vec![s("20250101000000_from_another_branch")],
            checksum_mismatch: vec![s(
                "20240101000000_init (database sha256 aaaa…, file sha256 bbbb…)",
            )],
        },
        Fault::MigrationsTableMissing {
            dir: s("prisma/migrations"),
            count: 3,
        },
        Fault::EnvFileNotLoaded {
            pid: 4242,
            started: Some(s("2026-12-01T10:00:00Z")),
            items: vec![EnvFileItem {
                name: s("DISABLE_RATE_LIMIT"),
                file: s(".env:3"),
                in_file: s("true"),
                in_process: None,
                changed_after_start: true,
            }],
        },
        Fault::PgBouncer(crate::diagnose::BouncerFault::PgbouncerClientsWaiting {
            database: s("chat_backend_db"),
            user: s("app"),
            waiting: 12,
            maxwait_s: 3.5,
            servers: 5,
            pool_size: 5,
        }),
        Fault::PgBouncer(crate::diagnose::BouncerFault::PgbouncerPoolTooSmall {
            database: s("chat_backend_db"),
            pool_size: 5,
            concurrent: 12.6,
            recommended: 50,
            load: s("120 VUs × 0.7 × 150 ms"),
        }),
        Fault::PgBouncer(crate::diagnose::BouncerFault::PgbouncerServersAtLimit {
            database: s("chat_backend_db"),
            servers: 20,
            limit: 20,
            setting: s("default_pool_size"),
        }),
        Fault::PgBouncer(crate::diagnose::BouncerFault::PgbouncerMaxClientConn {
            max_client_conn: 100,
            demand: 150,
            connection_limit: 50,
            replicas: 3,
            other: 0,
        }),
        Fault::PgBouncer(crate::diagnose::BouncerFault::PgbouncerExceedsPostgres {
            demand: 120,
            pools: s("default_pool_size 20 × 6 database/user pairs"),
            usable: 97,
            max_connections: 100,
        }),
        Fault::PgBouncer(crate::diagnose::BouncerFault::PgbouncerPreparedStatements {
            var: s("DATABASE_URL"),
            server: s("127.0.0.1:6432"),
            how: s("port 6432"),
            pool_mode: s("transaction"),
            version: s("PgBouncer 1.18.0"),
            fixed_url: s("postgresql://app:***@127.0.0.1:6432/chat?pgbouncer=true"),
        }),
        Fault::PgBouncer(crate::diagnose::BouncerFault::PgbouncerSessionMode {
            database: s("chat_backend_db"),
            clients: 150,
            pool_size: 20,
        }),
        Fault::PgBouncer(crate::diagnose::BouncerFault::PgbouncerSessionFeatures {
            pool_mode: s("transaction"),
            features: vec![s("advisory locks (pg_advisory_lock)")],
            lines: vec![s("prisma:query SELECT pg_advisory_lock(1)")],
            log: s("/tmp/backend.log"),
        }),
    ]
}
