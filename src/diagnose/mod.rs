//! Diagnosis: from what a check observed (a [`Fault`]) to the root cause and
//! the exact remedy. All the knowledge of what failures mean lives here, so
//! checks only report facts.

pub mod cause;
pub mod pg;
pub mod witness;

use serde::Serialize;

/// How a network attempt failed, classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NetError {
    Refused,
    Timeout,
    Dns,
    Tls,
    Reset,
    Unreachable,
    Other,
}

impl NetError {
    pub fn describe(self) -> &'static str {
        match self {
            NetError::Refused => "connection refused",
            NetError::Timeout => "timed out",
            NetError::Dns => "host name did not resolve",
            NetError::Tls => "TLS handshake failed",
            NetError::Reset => "connection reset",
            NetError::Unreachable => "network unreachable",
            NetError::Other => "connection failed",
        }
    }

    /// Classifies an I/O error.
    pub fn from_io(e: &std::io::Error) -> NetError {
        use std::io::ErrorKind as K;
        match e.kind() {
            K::ConnectionRefused => NetError::Refused,
            K::TimedOut | K::WouldBlock => NetError::Timeout,
            K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof => {
                NetError::Reset
            }
            K::HostUnreachable | K::NetworkUnreachable | K::AddrNotAvailable => {
                NetError::Unreachable
            }
            _ => {
                let m = e.to_string().to_ascii_lowercase();
                if m.contains("failed to lookup")
                    || m.contains("name or service not known")
                    || m.contains("no such host")
                    || m.contains("name resolution")
                    || m.contains("nodename nor servname")
                {
                    NetError::Dns
                } else {
                    NetError::Other
                }
            }
        }
    }
}

/// A failure as a check observed it.
#[derive(Debug, Clone)]
pub enum Fault {
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
    /// The TLS handshake the URL's sslmode asks for did not succeed.
    PgTlsFailed {
        host: String,
        port: u16,
        sslmode: String,
        message: String,
    },
    PgNoHbaEntry {
        message: String,
    },
    PgServerError {
        code: String,
        message: String,
    },
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
    /// The port listens, but another program holds it.
    PortHeldByOther {
        port: u16,
        pid: u32,
        service: String,
        holder: String,
        pattern: String,
        start_command: Option<String>,
    },
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
    /// A burst met no 429, but other errors.
    BurstErrors {
        url: String,
        failed: u32,
        requests: u32,
        first: String,
    },
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
}

/// The limiter that answered a 429, and how it was recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimiterMatch {
    pub name: String,
    pub max: u32,
    pub window_s: Option<u64>,
    pub how: String,
}

/// Whether the limiters' off switch is set in the backend process, and in
/// chatops's own shell.
#[derive(Debug, Clone)]
pub enum EnvState {
    /// The process could not be read (or was not named).
    Unknown { in_shell: Option<String> },
    Process {
        source: String,
        value: Option<String>,
        in_shell: Option<String>,
    },
}

#[derive(Debug, Clone, Default)]
pub struct Diagnosis {
    pub root_cause: String,
    pub remedy: String,
}

/// Root cause and remedy for a fault.
pub fn diagnose(f: &Fault) -> Diagnosis {
    let d = |root: String, remedy: String| Diagnosis {
        root_cause: root,
        remedy,
    };
    match f {
        Fault::PgNoResponse { host, port, error } => d(
            format!("PostgreSQL is not running or not reachable at {host}:{port} ({}).", error.describe()),
            match error {
                NetError::Dns => format!("Fix the host name `{host}` in DATABASE_URL, or use the server's IP address."),
                NetError::Timeout => format!("Check that {host}:{port} is reachable (firewall, security group, listen_addresses) and that the server is not overloaded."),
                _ => format!(
                    "Start PostgreSQL (`sudo systemctl start postgresql`, `brew services start postgresql`, or `pg_ctl -D DATADIR start`) and confirm with `pg_isready -h {host} -p {port}`. If it runs, check `listen_addresses` and `port` in postgresql.conf."
                ),
            },
        ),
        Fault::PgRejecting { host, port, message } => d(
            format!("PostgreSQL at {host}:{port} is up but rejecting connections: it is starting up, shutting down or in recovery ({message})."),
            "Wait for start-up or recovery to finish (watch the server log), then retry; if it stays, check the server log for a crash loop.".into(),
        ),
        Fault::PgNoAttempt { reason } => d(
            format!("The connection parameters are unusable: {reason}."),
            "Fix DATABASE_URL: postgresql://USER:PASSWORD@HOST:PORT/DATABASE.".into(),
        ),
        Fault::PgAuthFailed { user, host } => d(
            format!("PostgreSQL rejected the password for user `{user}` at {host} (SQLSTATE 28P01; Prisma P1000)."),
            format!("Put the right password for `{user}` in DATABASE_URL (percent-encode special characters), or reset it: `ALTER ROLE \"{user}\" PASSWORD '…'`."),
        ),
        Fault::PgDatabaseMissing { database } => d(
            format!("The database `{database}` does not exist (SQLSTATE 3D000; Prisma P1003)."),
            format!("Create it and apply the schema: `createdb {database}` then `npx prisma migrate deploy` (or `npx prisma db push`)."),
        ),
        Fault::PgTooManyClients { message } => d(
            format!("PostgreSQL has no connection slots left: max_connections is exhausted (SQLSTATE 53300: {message})."),
            "Lower the pools (connection_limit × replicas + other clients must stay under max_connections − reserved), find idle sessions in pg_stat_activity, or put PgBouncer in transaction mode in front.".into(),
        ),
        Fault::PgTlsRequired { message } => d(
            format!("The server requires an encrypted connection ({message})."),
            "Add `sslmode=require` to DATABASE_URL (Prisma: `?sslmode=require`), or allow non-TLS connections for this host in pg_hba.conf.".into(),
        ),
        Fault::PgTlsFailed { host, port, sslmode, message } => {
            let lower = message.to_ascii_lowercase();
            let remedy = if lower.contains("does not support tls") {
                format!("The server at {host}:{port} has TLS off. Turn it on (`ssl = on` with `ssl_cert_file` and `ssl_key_file` in postgresql.conf, then `SELECT pg_reload_conf()`), or connect with `sslmode=prefer` where encryption is optional.")
            } else if lower.contains("notvalidforname") || lower.contains("not valid for name") {
                format!("The certificate does not name `{host}`: connect by a name the certificate holds, or use `sslmode=verify-ca` (chain only). A certificate that names its host only in CN (the PostgreSQL docs' `openssl req -subj /CN=…` recipe) needs `subjectAltName=DNS:{host}` to be verified here.")
            } else if lower.contains("causedasendentity") {
                "The server presents a CA certificate (CA:TRUE, often a self-signed one that is also its own sslrootcert) as its own: libpq lets this pass, chatops does not. Issue a server certificate signed by that CA, or use `sslmode=require` to encrypt without verifying.".to_string()
            } else if lower.contains("unknownissuer") || lower.contains("unknown issuer") || lower.contains("badsignature") {
                "The certificate is not signed by a CA chatops trusts: give the CA with `sslrootcert=/path/ca.pem` in the URL (Amazon RDS: the region's bundle; Prisma: `sslcert` with `sslaccept=strict`), or use `sslmode=require` to encrypt without verifying.".to_string()
            } else if lower.contains("expired") || lower.contains("notvalidyet") {
                "The server's certificate is outside its validity period: renew it (or check this machine's clock).".to_string()
            } else if lower.contains("sslrootcert") || lower.contains("root certificate") || lower.contains("pem") || lower.contains("certificate store") {
                "Point `sslrootcert` at a readable PEM file holding the server's CA (or `sslrootcert=system` for the system's store).".to_string()
            } else {
                format!("Check the server's TLS settings (ssl, ssl_min_protocol_version) against sslmode={sslmode}.")
            };
            d(
                format!("TLS with PostgreSQL at {host}:{port} failed (sslmode={sslmode}): {message}."),
                remedy,
            )
        }
        Fault::PgNoHbaEntry { message } => d(
            format!("pg_hba.conf has no rule admitting this client ({message})."),
            "Add a `host` line for this client address, user and database to pg_hba.conf and reload (`SELECT pg_reload_conf()`).".into(),
        ),
        Fault::PgServerError { code, message } => d(
            format!("PostgreSQL refused the session: {message} (SQLSTATE {code})."),
            "Read the server log around this time for the full error.".into(),
        ),
        Fault::PortNotListening { host, port, service, start_command, health_url } => d(
            format!("The {service} is not running: nothing listens on {host}:{port} (connections are refused at once, the ECONNREFUSED-at-0-ms failure of the seed's 56,250 requests)."),
            {
                let mut r = format!("Start the {service} in the background and keep it running");
                if let Some(cmd) = start_command {
                    r.push_str(&format!(": `{cmd}`"));
                }
                r.push('.');
                if let Some(h) = health_url {
                    r.push_str(&format!(" Then wait for health before any load: `until curl -sf {h} >/dev/null; do sleep 1; done`."));
                }
                r
            },
        ),
        Fault::PortTaken { host, port, process } => d(
            match process {
                Some(p) => format!("Port {port} on {host} is already taken by {p}; the backend cannot bind it (EADDRINUSE)."),
                None => format!("Port {port} on {host} is already in use; the backend cannot bind it (EADDRINUSE)."),
            },
            format!("Stop the process holding it (`lsof -ti:{port} | xargs kill`) or run the backend on another PORT."),
        ),
        Fault::PortHeldByOther { port, pid, service, holder, pattern, start_command } => d(
            format!("Port {port} is held by {holder}, which is not the {service} (its command line does not match `{pattern}`). The {service} cannot bind the port (EADDRINUSE), so requests reach the wrong program: often an older instance, or another dev server."),
            format!(
                "Stop it (`kill {pid}`, or `lsof -ti:{port} | xargs kill`), then start the {service}{}. If that program is the {service} (a wrapper, a container proxy), widen `expect_command`.",
                start_command.as_deref().map(|c| format!(": `{c}`")).unwrap_or_default()
            ),
        ),
        Fault::HttpConnect { url, error, detail } => d(
            match error {
                NetError::Refused => format!("Nothing accepts connections at {url}: the server is not running or listens on another port ({detail})."),
                NetError::Timeout => format!("{url} did not answer in time ({detail}): the server is hung, overloaded, or a firewall drops the packets."),
                NetError::Dns => format!("The host of {url} does not resolve ({detail})."),
                NetError::Tls => format!("TLS with {url} failed ({detail}): a certificate or protocol mismatch (http vs https?)."),
                _ => format!("Could not reach {url}: {} ({detail}).", error.describe()),
            },
            match error {
                NetError::Refused => "Start the server (see the port check) and confirm it listens on this host and port.".into(),
                NetError::Timeout => "Check the server's log and CPU; raise the check's timeout only if the endpoint is known to be slow.".into(),
                NetError::Dns => "Fix the host name in the base URL.".into(),
                NetError::Tls => "Use the scheme the server speaks (http:// for a plain local backend) or fix its certificate.".into(),
                _ => "Check the URL and the network path to the server.".into(),
            },
        ),
        Fault::HttpStatus { url, expected, status, body } => {
            let (root, remedy) = if *status == 429 {
                (format!("{url} answered 429 Too Many Requests: a rate limiter is active."), "Set DISABLE_RATE_LIMIT=true in the backend process's environment and restart it.".to_string())
            } else if let Some(known) = known_error(body) {
                known
            } else if *status == 404 {
                (format!("{url} does not exist on this server (404): wrong path or global prefix."), "Check the route; the seed's backend serves everything under /api/v1 (its banner's /health is wrong).".to_string())
            } else if *status >= 500 {
                (format!("{url} failed with {status}: the backend threw an error."), "Read the backend log for the exception (ERROR [ExceptionsHandler] or prisma:error lines).".to_string())
            } else {
                (format!("{url} answered {status}, expected {expected}."), "Compare the request with the API contract; the body excerpt in the evidence says what the server objected to.".to_string())
            };
            d(root, remedy)
        }
        Fault::HttpAssertion { url, path, expected, actual } => {
            if (path.contains("overall") || path.contains("database")) && actual.contains("mock") {
                d(
                    "The backend runs in mock mode: health reports database.overall = \"mock\", so nothing reaches PostgreSQL (PRISMA_CLIENT_MODE=mock, or no DATABASE_URL, which silently means mock).".into(),
                    "Start the backend with PRISMA_CLIENT_MODE=database and DATABASE_URL set, then restart it.".into(),
                )
            } else if (path.contains("overall") || path.contains("database")) && (actual.contains("unhealthy") || actual.contains("down")) {
                d(
                    "The backend is up but its database is unhealthy (health still says \"connected\": it cannot be trusted alone).".into(),
                    "Check PostgreSQL directly (the pg_ready check) and the backend log for prisma:error lines; restart the backend once the database is back.".into(),
                )
            } else {
                d(format!("{url}: `{path}` is {actual}, expected {expected}."), "Compare the response with what the playbook expects; adjust the backend or the assertion.".into())
            }
        }
        Fault::HttpLatency { url, limit_ms, took_ms } => d(
            format!("{url} took {took_ms} ms, above the {limit_ms} ms bound."),
            "Look for slow queries (pg_stat_activity), a saturated pool, or a cold start; rerun to rule out a one-off.".into(),
        ),
        Fault::HttpBody { url, message } => d(format!("{url}: {message}."), "Check that the endpoint returns JSON (Content-Type application/json).".into()),
        Fault::ProcessNotFound { selector } => d(
            format!("No running process matches {selector}, so its environment cannot be read."),
            "Start the backend first (see the port check), or point the check at the right pid, name or port.".into(),
        ),
        Fault::EnvUnreadable { pid, message } => d(
            format!("The environment of process {pid} cannot be read ({message})."),
            "Run chatops as the same user as the backend (or root) so /proc/PID/environ is readable.".into(),
        ),
        Fault::EnvMissing { name, source } => d(env_root(name, source, None), env_fix(name, None, source)),
        Fault::EnvMismatch { name, source, expected, actual } => d(env_root(name, source, Some((expected, actual))), env_fix(name, Some(expected), source)),
        Fault::DbUrlInvalid { name, message } => d(format!("{name} is not a valid PostgreSQL URL: {message}."), "Use postgresql://USER:PASSWORD@HOST:PORT/DATABASE?connection_limit=50&pool_timeout=30&connect_timeout=10.".into()),
        Fault::DbUrlParam { name, param, expected, actual } => d(
            match actual {
                Some(a) => format!("{name} sets {param}={a}, expected {expected}."),
                None => format!("{name} does not set {param} (expected {expected}); Prisma then uses its default."),
            },
            format!("Set {param} in {name}'s query string (for example `?connection_limit=50&pool_timeout=30&connect_timeout=10`) and restart the backend."),
        ),
        Fault::RateLimited { url, requests, limited, first, limiter, env, var, value } => {
            let who = match limiter {
                Some(l) => {
                    let window = l.window_s.map(|w| format!(" per {}", crate::support::duration::fmt(std::time::Duration::from_secs(w)))).unwrap_or_default();
                    format!("the backend's {} ({} requests{window}; {}) is active", l.name, l.max, l.how)
                }
                None => "a rate limiter is active".to_string(),
            };
            let seen = if *first == 0 {
                format!("{url} sends rate-limit headers, so {who}: a load test would meet 429s once its budget is spent")
            } else {
                format!("{limited} of {requests} requests to {url} answered 429 Too Many Requests from request #{first} on: {who}")
            };
            let (why, fix) = match env {
                EnvState::Process { source, value: Some(v), .. } if v == value => (
                    format!(" {var}={v} is set in {source}, yet requests are limited: a limiter without the {var} skip (a NestJS throttler, another middleware), or a proxy or gateway in front of the backend."),
                    format!("Find the limiter that ignores {var} (the 429 body and headers above name its style) and give it the same skip, or bypass the proxy for the load test; then rerun this check."),
                ),
                EnvState::Process { source, value: actual, in_shell } => {
                    let state = match actual {
                        Some(v) => format!("{var} is {v:?} in {source}"),
                        None => format!("{var} is not set in {source}"),
                    };
                    let shell = match in_shell {
                        Some(s) if s == value => format!(" It is set in your shell ({var}={s}) but not in the server: the backend was started from another shell, or before the export."),
                        _ => String::new(),
                    };
                    (
                        format!(" {state}.{shell}"),
                        format!("Restart the backend with {var}={value} in its own environment (`export {var}={value}` in the shell that starts it, or the service's env file); it is read once at start-up. Then rerun this check: zero 429s."),
                    )
                }
                EnvState::Unknown { in_shell } => (
                    match in_shell {
                        Some(s) if s == value => format!(" Your shell has {var}={s}, which proves nothing about the server process."),
                        _ => String::new(),
                    },
                    format!("Set {var}={value} in the backend process's environment and restart it (it is read once at start-up); then rerun this check: zero 429s."),
                ),
            };
            d(format!("{seen}.{why}"), fix)
        }
        Fault::LogUnreadable { path, error, missing } => d(
            if *missing {
                format!("The log file {path} does not exist: the backend writes its log elsewhere, or was not started with its output redirected there.")
            } else {
                format!("The log file {path} cannot be read ({error}).")
            },
            format!("Start the backend with its output in that file (`… > {path} 2>&1 &`, as the seed does), or point the check at the real log (`--var backend_log=PATH` or CHATOPS_BACKEND_LOG for the shipped playbook)."),
        ),
        Fault::LogMatches { path, count, first } => match known_error(first) {
            Some((root, remedy)) => d(format!("{root} ({count} problem line(s) in {path}.)"), remedy),
            None => d(
                format!("The backend logged {count} problem line(s) in {path}, the first telling one: {}", excerpt(first, 200)),
                format!("Read them in context (`grep -n -iE 'error|warn|exception' {path} | tail`) and fix the cause; add an `ignore:` pattern to the check only for lines known to be harmless."),
            ),
        },
        Fault::ProcessRestarted { selector, from, to } => d(
            match to {
                Some(b) => format!("The backend restarted: {selector} was pid {from}, now pid {b}. A crash under a supervisor (nodemon, pm2, systemd, `npm run start:dev` watching files) or a deploy happened during the run."),
                None => format!("The backend exited: {selector} (pid {from}) is gone. It crashed or was stopped during the run."),
            },
            "Read the end of the backend's log for the exit reason (an unhandled exception, an out-of-memory kill: `dmesg | grep -i oom`); run the backend without file watching for a load test (`npm run start:prod`).".to_string(),
        ),
        Fault::HealthFlapping { url, failed, samples, first } => d(
            format!("{url} failed {failed} of {samples} times while the backend was watched (first: {first}): it is not stable enough for a load test."),
            "Watch the backend's log and pg_stat_activity (`chatops watch-connections`) while it runs; fix the errors behind the failing health answers before sending load.".to_string(),
        ),
        Fault::MemoryGrowth { what, from_mb, to_mb, percent, bound, over } => d(
            format!("The backend's {what} grew {percent:.0}% in {over} ({from_mb:.1} MB → {to_mb:.1} MB), above the {bound}% bound: a leak, or caches without a limit."),
            "Take heap snapshots (`node --inspect`, Chrome DevTools) before and after a burst and compare them; check for listeners, timers and maps that only grow.".to_string(),
        ),
        Fault::BurstIncomplete { url, sent, planned } => d(
            format!("Only {sent} of {planned} requests to {url} were answered within the check's timeout: the backend slows down or stalls under a burst."),
            "Look at the backend's log and pg_stat_activity during a burst (`chatops watch-connections`); raise the check's timeout only if the backend is known to be slow.".to_string(),
        ),
        Fault::BurstErrors { url, failed, requests, first } => d(
            format!("No request was rate limited, but {failed} of {requests} requests to {url} failed (the first with {first}): the backend fails under concurrency."),
            "Read the backend's log for the failing requests; a pool timeout (Prisma P2024) means connection_limit is too small for the load: size it with `chatops pool-calc`.".to_string(),
        ),
        Fault::PoolTooSmall { pool, source, concurrent, recommended, load } => d(
            if (*pool as f64) < *concurrent {
                format!("The pool is too small for the planned load: {source} is {pool}, but {load} keeps about {concurrent:.1} connections busy on average. Requests will queue for a connection and fail with Prisma P2024 after pool_timeout, before PostgreSQL is anywhere near its limit.")
            } else {
                format!("The pool has no room for bursts: {source} is {pool}; pool math for {load} gives {recommended} (× burst, + overhead).")
            },
            format!("Set connection_limit={recommended} in the backend's DATABASE_URL (`chatops pool-calc` shows the arithmetic and prints the URL) and restart the backend."),
        ),
        Fault::PoolExceedsHeadroom { pool, replicas, other, demand, usable, max_connections, fits } => d(
            if *fits {
                format!("The pools take {demand} of {usable} usable connections (max_connections {max_connections} minus reserved): above the 70% ceiling that leaves room for admin sessions, migrations and monitoring ({pool} × {replicas} replica(s) + {other} other).")
            } else {
                format!("The pools cannot fit: {pool} × {replicas} replica(s) + {other} other = {demand} connections, but PostgreSQL accepts only {usable} (max_connections {max_connections} minus reserved). Under load, new sessions fail with \"too many clients already\" (53300).")
            },
            {
                let per = ((*usable as f64 * crate::poolcalc::CEILING).floor() as u32).saturating_sub(*other) / (*replicas).max(1);
                format!("Lower connection_limit to {per} per replica, or put PgBouncer in transaction pooling mode in front of PostgreSQL (every replica then shares one small server pool), or raise max_connections (needs a restart and memory). Remember that every replica or autoscaled pod opens its own pool.")
            },
        ),
        Fault::SchemaDrift { schema, missing_tables, missing_columns, hints } => {
            let mut what = Vec::new();
            if !missing_tables.is_empty() {
                what.push(format!("table(s) {}", missing_tables.join(", ")));
            }
            if !missing_columns.is_empty() {
                what.push(format!("column(s) {}", missing_columns.join(", ")));
            }
            let hint = if hints.is_empty() { String::new() } else { format!(" Found instead: {}.", hints.join("; ")) };
            d(
                format!("Schema drift: the database (schema `{schema}`) lacks {} that the backend's queries name (Prisma P2021/P2022, \"does not exist in the current database\").{hint} The seed's case: the code used `messageType` and `readReceipts` while the schema has `type` and `messageReads`.", what.join(" and ")),
                "Make the code, the Prisma client and the database agree: apply the missing migration (`npx prisma migrate deploy`), or fix the field names in the code; then regenerate the Prisma client and rebuild cleanly (`rm -rf dist node_modules/.prisma && npx prisma generate && npm run build`) and restart the backend.".into(),
            )
        }
        Fault::ReadOnlyViolation { message } => d(
            format!("The SQL check tried to write, and PostgreSQL refused it inside the check's READ ONLY transaction (SQLSTATE 25006: {message}). Nothing was changed."),
            "Checks only read: rewrite the statement as a SELECT (an assertion on the data), and make changes with a migration instead.".into(),
        ),
        Fault::SqlTimeout { limit_ms } => d(
            format!("The SQL check's statement ran longer than its statement_timeout of {limit_ms} ms and was cancelled (SQLSTATE 57014)."),
            "Look for locks or a missing index (EXPLAIN the query; see pg_stat_activity for blockers), or raise the check's statement_timeout if the query is known to be slow.".into(),
        ),
        Fault::SqlError { code, message } => d(
            format!("The SQL check's statement failed: {message} (SQLSTATE {code})."),
            match code.as_str() {
                "42P01" | "42703" => "The table or column does not exist: see the schema checks (tables_exist, columns_exist) and apply the missing migration.".into(),
                "42601" => "Fix the SQL syntax of the check's query.".into(),
                "42501" => "Grant the check's role SELECT on what it reads.".into(),
                _ => "Run the query in psql to see the full error; values go in `params` as $1, $2, …".into(),
            },
        ),
        Fault::SqlAssertion { what, expected, actual } => d(
            format!("The query's {what} is {actual}, expected {expected}."),
            "Check the data the backend depends on (the seed's test user and conversation, for example), or adjust the assertion.".into(),
        ),
        Fault::ActivityAboveThreshold { database, active, threshold, critical } => d(
            format!("{active} sessions are active on `{database}`, above the {} threshold of {threshold}: the pool is close to exhausted and requests start to wait for a connection.", if *critical { "critical" } else { "warning" }),
            "Find what keeps sessions busy (the longest query in the evidence; `chatops watch-connections` live), then raise connection_limit within max_connections headroom (`chatops pool-calc`) or reduce the load.".into(),
        ),
        Fault::SessionsStuck { database, waiting_lock, idle_in_transaction, oldest_idle_s } => d(
            format!("Sessions on `{database}` are stuck: {waiting_lock} waiting for a lock, {idle_in_transaction} idle in a transaction{}. Each holds a pool connection (and idle transactions hold their locks).", oldest_idle_s.map(|s| format!(" (oldest {s:.1} s)")).unwrap_or_default()),
            "Find the blocker with `SELECT pid, pg_blocking_pids(pid), state, query FROM pg_stat_activity WHERE datname = current_database()`; fix the code path that leaves a transaction open (an interactive Prisma $transaction that awaits something slow), set idle_in_transaction_session_timeout, and end a stuck session with pg_terminate_backend(pid) if needed.".into(),
        ),
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
    }
}

/// A root cause and remedy for error text the seed's backend is known to
/// produce (a response body, a log line), by its Prisma code or message.
pub fn known_error(text: &str) -> Option<(String, String)> {
    let lower = text.to_ascii_lowercase();
    let has = |xs: &[&str]| xs.iter().any(|x| lower.contains(x));
    if has(&["does not exist in the current database", "p2022", "p2021"]) {
        Some((format!("The backend's queries name a column or table the database does not have (schema drift; Prisma P2021/P2022): {}", excerpt(text, 200)), "Regenerate the Prisma client and rebuild cleanly: `rm -rf dist && npx prisma generate && npm run build`, then restart; or apply the missing migration.".to_string()))
    } else if has(&["timed out fetching a new connection", "p2024"]) {
        Some(("The backend's connection pool is exhausted (Prisma P2024: timed out fetching a connection from the pool).".to_string(), "Raise connection_limit in DATABASE_URL to what `chatops pool-calc` gives for the load, within max_connections headroom.".to_string()))
    } else if has(&["not a participant"]) {
        Some(("The backend does not see the seeded conversation: it is most likely running in mock mode (an empty in-memory store).".to_string(), "Run the backend with PRISMA_CLIENT_MODE=database and a DATABASE_URL, then restart it.".to_string()))
    } else if has(&["can't reach database", "p1001"])
        || (has(&["econnrefused"]) && has(&["5432", "database", "prisma", "postgres"]))
    {
        Some(("The backend cannot reach PostgreSQL (Prisma P1001).".to_string(), "Start PostgreSQL or fix the host and port in the backend's DATABASE_URL, then restart the backend.".to_string()))
    } else if has(&["eaddrinuse", "address already in use"]) {
        Some(("The backend could not bind its port: another process holds it (EADDRINUSE), often an older instance of the backend.".to_string(), "Stop the process holding the port (`lsof -ti:PORT | xargs kill`), then start the backend again.".to_string()))
    } else if has(&[
        "too many clients",
        "53300",
        "remaining connection slots are reserved",
    ]) {
        Some(("PostgreSQL refuses new connections: max_connections is exhausted (53300 too many clients).".to_string(), "Lower the pools (connection_limit × replicas) to fit max_connections with headroom (`chatops pool-calc`), or put PgBouncer in front.".to_string()))
    } else {
        None
    }
}

fn env_root(name: &str, source: &str, mismatch: Option<(&String, &String)>) -> String {
    let what = match (name, mismatch) {
        ("PRISMA_CLIENT_MODE", Some((_, a))) if a.contains("mock") => " The backend runs in mock mode: nothing reaches PostgreSQL.".to_string(),
        ("DATABASE_URL", None) => " Without DATABASE_URL the backend silently switches to mock mode.".to_string(),
        ("DISABLE_RATE_LIMIT", _) => " Its rate limiters are active, and answer 429 long before a load test ends (apiLimiter allows 100 requests per 15 minutes).".to_string(),
        _ => String::new(),
    };
    match mismatch {
        Some((e, a)) => format!("{name} is {a:?} in {source}, expected {e}.{what}"),
        None => format!("{name} is not set in {source}.{what}"),
    }
}

fn env_fix(name: &str, expected: Option<&String>, source: &str) -> String {
    if expected.is_some_and(|e| e.starts_with("to be absent")) {
        return if source.starts_with("process") {
            format!("Remove {name} from the backend's environment and restart it.")
        } else {
            format!("Unset it: `unset {name}`.")
        };
    }
    let value = match (name, expected) {
        ("DISABLE_RATE_LIMIT", _) => "true".to_string(),
        ("PRISMA_CLIENT_MODE", _) => "database".to_string(),
        (_, Some(e)) if e.starts_with("equal to ") => e
            .trim_start_matches("equal to ")
            .trim_matches('"')
            .to_string(),
        _ => "…".to_string(),
    };
    if source.starts_with("process") {
        format!(
            "Restart the backend with {name}={value} in its environment (`export` in the shell that starts it; the variable is read once at start-up, so a running server does not see a later change)."
        )
    } else {
        format!("Set {name}={value} (`export {name}={value}`).")
    }
}

/// First `n` characters of a body, on one line.
pub fn excerpt(s: &str, n: usize) -> String {
    let one: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() > n {
        let cut: String = one.chars().take(n).collect();
        format!("{cut}…")
    } else {
        one
    }
}

/// What a failed load stage measured, for [`breaking_point`].
#[derive(Debug, Clone, Default)]
pub struct StageEvidence {
    pub stage: String,
    pub requests: u64,
    pub p95_ms: f64,
    pub p95_limit_ms: Option<f64>,
    pub error_pct: f64,
    pub error_limit_pct: Option<f64>,
    pub refused: u64,
    /// Failures below HTTP: resets, answers cut short, TLS handshakes.
    pub transport: u64,
    /// The target is https://.
    pub tls: bool,
    pub timeouts: u64,
    pub rate_limited: u64,
    pub pool_timeouts: u64,
    /// Most active sessions of the target database in pg_stat_activity.
    pub max_active: Option<u32>,
    /// Most client sessions on the server.
    pub max_server_sessions: Option<u32>,
    pub usable_connections: Option<u32>,
    pub connection_limit: Option<u32>,
    pub backend_alive: Option<bool>,
    /// Backend memory (RSS or heapUsed) at the stage's start and end.
    pub memory: Option<(u64, u64)>,
}

/// Why a load stage failed: the cause's short name (`crash`, `transport`,
/// `rate_limiting`, `pool_saturation`, `memory_growth`, `over_budget`) and
/// the fault, checked in that order (a crash explains everything after it;
/// 429s are answered before the pool is touched).
pub fn breaking_point(e: &StageEvidence) -> (&'static str, Fault) {
    let share = |n: u64| e.requests > 0 && n * 100 >= e.requests; // at least 1%
    if e.refused > 0 && (share(e.refused) || e.backend_alive == Some(false)) {
        return (
            "crash",
            Fault::LoadCrash {
                stage: e.stage.clone(),
                refused: e.refused,
                requests: e.requests,
                backend_alive: e.backend_alive,
            },
        );
    }
    if e.requests > 0 && e.transport * 2 >= e.requests {
        return (
            "transport",
            Fault::LoadTransport {
                stage: e.stage.clone(),
                transport: e.transport,
                requests: e.requests,
                tls: e.tls,
            },
        );
    }
    if e.rate_limited > 0 {
        return (
            "rate_limiting",
            Fault::LoadRateLimited {
                stage: e.stage.clone(),
                rate_limited: e.rate_limited,
                requests: e.requests,
            },
        );
    }
    let at_limit = matches!((e.max_active, e.connection_limit), (Some(a), Some(l)) if a >= l);
    if e.pool_timeouts > 0 || at_limit {
        let headroom = match (e.usable_connections, e.max_server_sessions) {
            (Some(u), Some(s)) => Some(u.saturating_sub(s)),
            _ => None,
        };
        return (
            "pool_saturation",
            Fault::LoadPoolSaturated {
                stage: e.stage.clone(),
                connection_limit: e.connection_limit,
                max_active: e.max_active,
                pool_timeouts: e.pool_timeouts,
                timeouts: e.timeouts,
                headroom,
            },
        );
    }
    if let Some((from, to)) = e.memory
        && from > 0
        && to > from.saturating_mul(3) / 2
        && to - from > 50 * 1_048_576
    {
        return (
            "memory_growth",
            Fault::LoadMemoryGrowth {
                stage: e.stage.clone(),
                from_bytes: from,
                to_bytes: to,
            },
        );
    }
    (
        "over_budget",
        Fault::LoadOverBudget {
            stage: e.stage.clone(),
            p95_ms: e.p95_ms,
            p95_limit_ms: e.p95_limit_ms,
            error_pct: e.error_pct,
            error_limit_pct: e.error_limit_pct,
            max_active: e.max_active,
        },
    )
}

#[cfg(test)]
mod load_tests {
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
        let (c, f) = breaking_point(&e);
        assert_eq!(c, "pool_saturation");
        assert!(matches!(
            f,
            Fault::LoadPoolSaturated {
                headroom: Some(57),
                ..
            }
        ));
        assert!(diagnose(&f).root_cause.contains("P2024"));
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
}
