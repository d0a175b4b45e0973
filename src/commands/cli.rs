//! The command line (clap derive).

use crate::report::Format;
use crate::support::chat_backend::{CRITICAL_ACTIVE, WARN_ACTIVE};
use crate::support::duration;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(name = "chatops", version, about = "Operations and diagnostics for a chat backend and its PostgreSQL", long_about = None)]
pub struct Cli {
    /// When to use colours: auto (a terminal, and NO_COLOR unset), always, never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true)]
    pub color: ColorChoice,
    /// Print less: only findings and the result.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print more: evidence of passing checks too.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a playbook of checks and print a remediation report.
    Doctor(DoctorArgs),
    /// Walk through the seed's failures on a local sandbox (throwaway PostgreSQL + reference backend), then fix them.
    Demo(DemoArgs),
    /// Start the local sandbox (throwaway PostgreSQL + reference backend) and keep it up until Ctrl-C.
    Sandbox(SandboxArgs),
    /// Progressive load test: run the stages, stop at the breaking point and say why.
    Load(LoadArgs),
    /// Load a playbook and report its errors without running anything.
    Validate(ValidateArgs),
    /// List check kinds with their YAML fields.
    Checks {
        /// Show one kind only.
        kind: Option<String>,
    },
    /// Print the JSON Schema of the playbook format (for editors).
    Schema,
    /// Print shell completions.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Size the connection pool for a load (the seed's arithmetic, step by step) and check it against max_connections.
    PoolCalc(PoolCalcArgs),
    /// Compare two load runs (summary.json files or export directories) per stage; exit 1 on a regression.
    Compare(CompareArgs),
    /// Live view of pg_stat_activity: sessions by application and state, against max_connections (replaces `watch psql …`).
    WatchConnections(WatchArgs),
    /// Run the reference chat backend (used by the sandbox; reads PORT, DATABASE_URL, … from the environment).
    #[command(hide = true)]
    SandboxBackend,
}

#[derive(Args, Debug, Clone, Default)]
pub struct TargetArgs {
    /// Playbook file (default: the shipped pre-load-test playbook, embedded).
    #[arg(short, long)]
    pub playbook: Option<PathBuf>,
    /// The backend's base URL (overrides the playbook's target.base_url).
    #[arg(long)]
    pub base_url: Option<String>,
    /// The PostgreSQL URL chatops uses for its database checks (overrides target.database_url).
    #[arg(long)]
    pub database_url: Option<String>,
    /// Set a playbook variable (repeatable).
    #[arg(long = "var", value_name = "KEY=VALUE", value_parser = parse_kv)]
    pub vars: Vec<(String, String)>,
    /// The backend's project directory, for the working-tree checks (overrides
    /// target.project; default: the working directory of the process
    /// listening on the backend's port, walked up to its package.json).
    #[arg(long, value_name = "DIR")]
    pub project: Option<PathBuf>,
    /// Allow burst and load traffic to non-loopback targets.
    #[arg(long)]
    pub allow_remote: bool,
}

#[derive(Args, Debug, Clone)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Write the report to a file instead of standard output.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Treat warnings as failures (exit 1).
    #[arg(long)]
    pub strict: bool,
    /// How long to watch the backend stay up (`60s` is the seed's window);
    /// default: while the other checks run, at least 1s. The same as
    /// `--var stability_duration=…`.
    #[arg(long, value_name = "DURATION", value_parser = duration_text)]
    pub stability: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub struct ValidateArgs {
    /// Playbook file (the same as --playbook).
    #[arg(value_name = "FILE", conflicts_with = "playbook")]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub target: TargetArgs,
}

#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// Output format of each report.
    #[arg(short, long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Check this project directory instead of the sandbox backend's own.
    #[arg(long, value_name = "DIR")]
    pub project: Option<PathBuf>,
}

impl TargetArgs {
    /// The domain's view of these flags.
    pub fn to_target(&self) -> crate::session::Target {
        crate::session::Target {
            playbook: self.playbook.clone(),
            base_url: self.base_url.clone(),
            database_url: self.database_url.clone(),
            project: self
                .project
                .as_ref()
                .map(|p| p.to_string_lossy().into_owned()),
            vars: self.vars.clone(),
            allow_remote: self.allow_remote,
        }
    }
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not KEY=VALUE"))?;
    if k.is_empty()
        || !k
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(format!("`{k}` is not a valid variable name"));
    }
    Ok((k.to_string(), v.to_string()))
}

#[derive(Args, Debug, Clone, Default)]
pub struct SandboxArgs {
    /// Backend port (default: a free one).
    #[arg(long)]
    pub port: Option<u16>,
    /// Do not start the backend (the seed's Phase 1 fault).
    #[arg(long)]
    pub no_backend: bool,
    /// Run the backend in mock mode (PRISMA_CLIENT_MODE=mock).
    #[arg(long)]
    pub mock: bool,
    /// Leave the rate limiters on.
    #[arg(long)]
    pub rate_limit: bool,
    /// Schema drift: the backend writes a column that does not exist.
    #[arg(long)]
    pub drift: bool,
    /// Prisma connection_limit in the backend's DATABASE_URL.
    #[arg(long, default_value_t = 50)]
    pub connection_limit: u32,
    /// Prisma pool_timeout (seconds).
    #[arg(long, default_value_t = 30)]
    pub pool_timeout: u32,
    /// PostgreSQL max_connections.
    #[arg(long, default_value_t = 100)]
    pub max_connections: u32,
    /// Burn this many ms of CPU per chat request, one request at a time (a busy Node event loop).
    #[arg(long, value_name = "MS")]
    pub cpu_ms: Option<u64>,
    /// The send locks its conversation's row (SELECT … FOR UPDATE) and holds it this many ms.
    #[arg(long, value_name = "MS")]
    pub lock_ms: Option<u64>,
    /// Fill `messages` with ROWS rows and drop the history query's index (implies --pg-stat-statements).
    #[arg(long, value_name = "ROWS", num_args = 0..=1, default_missing_value = "200000")]
    pub slow_history: Option<u64>,
    /// Keep this many KB per chat request, never released (a memory leak).
    #[arg(long, value_name = "KB")]
    pub retain_kb: Option<u64>,
    /// Die of an uncaught exception (stack in the log, exit 1) after N chat requests.
    #[arg(long, value_name = "N")]
    pub crash_after: Option<u64>,
    /// Answer database errors with NestJS's generic 500; the cause is only in the log.
    #[arg(long)]
    pub generic_500: bool,
    /// Load pg_stat_statements in the cluster and create it in the chat database.
    #[arg(long)]
    pub pg_stat_statements: bool,
    /// Write `export` lines for the sandbox's URLs to this file once it is up.
    #[arg(long)]
    pub env_file: Option<PathBuf>,
    /// A working-tree fault in the backend's project directory: drifted-field,
    /// old-client, old-build, process-older-than-build, unapplied-migration,
    /// failed-migration, env-changed-after-start, unseen; or consistent.
    #[arg(long, value_name = "FAULT", default_value = "consistent")]
    pub project_fault: crate::sandbox::ProjectFault,
    #[command(flatten)]
    pub bouncer: SandboxBouncerArgs,
}

/// The sandbox's PgBouncer (Debian's `pgbouncer` binary).
#[derive(Args, Debug, Clone, Default)]
pub struct SandboxBouncerArgs {
    /// Put a real PgBouncer in front of the cluster (its console admits user `stats`); the backend connects through it.
    #[arg(long)]
    pub pgbouncer: bool,
    /// PgBouncer's pool_mode.
    #[arg(long, value_name = "MODE", default_value = "transaction", value_parser = ["transaction", "session"])]
    pub pgbouncer_mode: String,
    /// PgBouncer's default_pool_size (server connections per database/user).
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub pgbouncer_pool_size: u32,
    /// PgBouncer's max_client_conn.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub pgbouncer_max_client_conn: u32,
    /// PgBouncer's port (default: a free one).
    #[arg(long, value_name = "PORT")]
    pub pgbouncer_port: Option<u16>,
    /// Leave `pgbouncer=true` out of the backend's DATABASE_URL (named prepared statements under transaction pooling: 42P05/26000).
    #[arg(long)]
    pub no_pgbouncer_param: bool,
}

/// `pool-calc --pgbouncer`: both sides of PgBouncer.
#[derive(Args, Debug, Clone, Default)]
pub struct PoolCalcBouncerArgs {
    /// Size PgBouncer (transaction pooling) too: max_client_conn for the app's pools, default_pool_size against PostgreSQL; prints pgbouncer.ini settings and the DATABASE_URL with pgbouncer=true.
    #[arg(long)]
    pub pgbouncer: bool,
    /// Database/user pairs PgBouncer pools separately.
    #[arg(long, value_name = "N", default_value = "1", value_parser = at_least_one, requires = "pgbouncer")]
    pub pgbouncer_pairs: u32,
    /// Client connections to PgBouncer besides the app's pools.
    #[arg(long, value_name = "N", default_value = "0", value_parser = count, requires = "pgbouncer")]
    pub other_clients: u32,
    /// The app's URL through PgBouncer (default: --url / --database-url with port 6432).
    #[arg(long, value_name = "URL", requires = "pgbouncer")]
    pub pgbouncer_url: Option<String>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum PoolCalcFormat {
    Human,
    Json,
    Markdown,
}

/// Exit status: 0 when the pool fits (or max_connections is unknown), 1 when
/// it does not fit or the server cannot be read, 2 on bad input.
#[derive(Args, Debug, Clone)]
pub struct PoolCalcArgs {
    /// Virtual users of the planned load.
    #[arg(long, default_value_t = 120.0, allow_negative_numbers = true)]
    pub vus: f64,
    /// Share of the VUs querying at a time, 0 to 1 (the seed: 0.70, its send:history ratio).
    #[arg(long, default_value_t = 0.70, allow_negative_numbers = true)]
    pub activity_ratio: f64,
    /// Average query time in milliseconds (default 150).
    #[arg(long, allow_negative_numbers = true, conflicts_with = "query_s")]
    pub query_ms: Option<f64>,
    /// Average query time in seconds (instead of --query-ms).
    #[arg(long, allow_negative_numbers = true)]
    pub query_s: Option<f64>,
    /// Measured requests per second: Little's law (rps × query time) instead of VUs × ratio × time.
    #[arg(long, allow_negative_numbers = true)]
    pub rps: Option<f64>,
    /// Burst multiplier.
    #[arg(long, default_value_t = 3.0, allow_negative_numbers = true)]
    pub burst: f64,
    /// Connections added for health checks and background tasks.
    #[arg(long, default_value_t = 10.0, allow_negative_numbers = true)]
    pub overhead: f64,
    /// Rounding of the pool size.
    #[arg(long, value_enum, default_value_t = crate::poolcalc::Rounding::Tens)]
    pub round: crate::poolcalc::Rounding,
    /// The server's max_connections (instead of reading it with --database-url).
    #[arg(long, allow_negative_numbers = true, value_parser = at_least_one)]
    pub max_connections: Option<u32>,
    /// superuser_reserved_connections + reserved_connections (default 3, PostgreSQL's default; read live with --database-url).
    #[arg(long, allow_negative_numbers = true, value_parser = count)]
    pub reserved: Option<u32>,
    /// Read max_connections and the reserved slots from this server.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Processes that each open their own pool (replicas, autoscaled pods).
    #[arg(long, default_value = "1", allow_negative_numbers = true, value_parser = count)]
    pub replicas: u32,
    /// Connections held by other clients (admin, monitoring, other apps).
    #[arg(long, default_value = "0", allow_negative_numbers = true, value_parser = count)]
    pub other_connections: u32,
    /// CPU cores of the database server (known automatically for a local --database-url).
    #[arg(long, allow_negative_numbers = true, value_parser = at_least_one)]
    pub cores: Option<u32>,
    /// Effective spindle count for the cores × 2 + spindles rule (1 for SSD).
    #[arg(long, default_value = "1", allow_negative_numbers = true, value_parser = count)]
    pub spindles: u32,
    /// Judge this configured pool size instead of the computed one.
    #[arg(long, allow_negative_numbers = true, value_parser = at_least_one)]
    pub pool: Option<u32>,
    /// pool_timeout (seconds) to put in the URL.
    #[arg(long, default_value = "30", allow_negative_numbers = true, value_parser = seconds)]
    pub pool_timeout: Duration,
    /// connect_timeout (seconds) to put in the URL.
    #[arg(long, default_value = "10", allow_negative_numbers = true, value_parser = seconds)]
    pub connect_timeout: Duration,
    /// The backend's DATABASE_URL to print with the pool parameters (default: --database-url).
    #[arg(long)]
    pub url: Option<String>,
    /// Print the URL's password instead of ***.
    #[arg(long)]
    pub show_secrets: bool,
    #[command(flatten)]
    pub bouncer: PoolCalcBouncerArgs,
    /// Seconds to wait for the server.
    #[arg(long, default_value = "5", allow_negative_numbers = true, value_parser = positive_seconds)]
    pub timeout: Duration,
    #[arg(short, long, value_enum, default_value_t = PoolCalcFormat::Human)]
    pub format: PoolCalcFormat,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum WatchFormat {
    /// A refreshing terminal view.
    Human,
    /// One JSON object per sample per line.
    Json,
    /// The Prometheus text exposition format.
    Prometheus,
}

/// Exit status with --once: 0 below the thresholds, 1 above the critical
/// threshold (or the warning one with --strict) or when PostgreSQL cannot be
/// reached; 2 on bad input; 130 on Ctrl-C, 143 on SIGTERM.
#[derive(Args, Debug, Clone)]
pub struct WatchArgs {
    /// PostgreSQL URL to watch (default: $DATABASE_URL).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// PgBouncer's admin console (a stats user, database pgbouncer): its pools (SHOW POOLS) beside the sessions, and in the Prometheus metrics.
    #[arg(long, value_name = "URL", env = "CHATOPS_PGBOUNCER_URL")]
    pub pgbouncer: Option<String>,
    /// Database whose sessions are counted (default: the URL's).
    #[arg(long)]
    pub database: Option<String>,
    /// Count the sessions of every database.
    #[arg(long, conflicts_with = "database")]
    pub all_databases: bool,
    /// Time between samples: 2s, 500ms, …
    #[arg(long, default_value = "2s", value_parser = interval)]
    pub interval: Duration,
    /// Print one sample and exit with a status from the thresholds.
    #[arg(long)]
    pub once: bool,
    /// Stop after this many samples.
    #[arg(long)]
    pub count: Option<u64>,
    #[arg(short, long, value_enum, default_value_t = WatchFormat::Human)]
    pub format: WatchFormat,
    /// Warn above this many active sessions (the seed: 40).
    #[arg(long, default_value_t = WARN_ACTIVE)]
    pub warn_active: u32,
    /// Critical above this many active sessions (the seed: 48).
    #[arg(long, default_value_t = CRITICAL_ACTIVE)]
    pub critical_active: u32,
    /// With --once: exit 1 at the warning level too.
    #[arg(long)]
    pub strict: bool,
    /// Time to wait for a connection or a sample.
    #[arg(long, default_value = "5s", value_parser = positive_duration)]
    pub timeout: Duration,
    /// Rewrite this file with each sample instead of printing (e.g. for node_exporter's textfile collector).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics (and /healthz), sampling on each scrape: 127.0.0.1:9187.
    #[arg(long, value_name = "ADDR", value_parser = listen_addr,
          conflicts_with_all = ["once", "count", "output", "format", "interval"])]
    pub listen: Option<std::net::SocketAddr>,
    /// Let --listen bind an address other than loopback (the metrics are then readable from other machines).
    #[arg(long, requires = "listen")]
    pub allow_remote: bool,
    /// The backend's health URL: its heapUsed, heapTotal, RSS and database status become metrics (with --listen or --format prometheus).
    #[arg(long, value_name = "URL")]
    pub health_url: Option<String>,
    /// The backend's pool size (Prisma's connection_limit), exported for the pool alert; default: the connection_limit of --database-url.
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    pub connection_limit: Option<u32>,
}

/// `HOST:PORT` for --listen: an IP address or `localhost`; `:PORT` is every
/// interface (as postgres_exporter's `:9187`).
fn listen_addr(s: &str) -> Result<std::net::SocketAddr, String> {
    let t = s.trim();
    let t = match t.strip_prefix("localhost:") {
        Some(port) => format!("127.0.0.1:{port}"),
        None if t.starts_with(':') => format!("0.0.0.0{t}"),
        None => t.to_string(),
    };
    t.parse().map_err(|_| {
        format!("`{s}` is not HOST:PORT (an IP address or localhost, e.g. 127.0.0.1:9187)")
    })
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum CompareFormat {
    Human,
    Markdown,
    Json,
    Html,
}

#[derive(Args, Debug, Clone)]
pub struct CompareArgs {
    /// The baseline run: its summary.json or its --export-dir directory.
    pub baseline: PathBuf,
    /// The run to judge against it.
    pub current: PathBuf,
    /// The throughput drop or p95/p99 rise that counts as a regression.
    #[arg(long, value_name = "PCT", default_value = "10%", value_parser = crate::load::compare::parse_percent)]
    pub max_regression: f64,
    /// Output: a table, markdown, JSON, or an HTML page of its own.
    #[arg(short, long, value_enum, default_value_t = CompareFormat::Human)]
    pub format: CompareFormat,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum LoadFormat {
    Human,
    Json,
}

#[derive(Args, Debug, Clone)]
pub struct LoadArgs {
    /// Target and preflight: --base-url (default $CHATOPS_BASE_URL or http://127.0.0.1:3001),
    /// --database-url (default $DATABASE_URL; for pg_stat_activity sampling), --playbook (the preflight's).
    #[command(flatten)]
    pub target: TargetArgs,
    /// Load plan file (default: the shipped seed plan, playbooks/progressive-load.yaml, embedded).
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
    /// Stages instead of the plan's: NAME:VUS:DURATION[:P95_MS[:ERR_PCT]],… (open model: NAME:RATE/s[*CONNS]:DURATION…).
    #[arg(long, value_name = "LIST")]
    pub stages: Option<String>,
    /// Scale every duration down (÷30, at least 1 s a stage) for a smoke run.
    #[arg(long)]
    pub quick: bool,
    /// closed (fixed virtual users) or open (arrival rate, latency from the scheduled send).
    #[arg(long, value_enum)]
    pub model: Option<crate::load::plan::Model>,
    /// Think time between a virtual user's requests (overrides the plan's).
    #[arg(long, value_name = "DURATION", value_parser = duration::parse)]
    pub think_time: Option<Duration>,
    /// Pause between stages (overrides the plan's).
    #[arg(long, value_name = "DURATION", value_parser = duration::parse)]
    pub cooldown: Option<Duration>,
    /// Warm-up before the first stage, not counted (overrides the plan's
    /// 3s default; 0s for none; none with --stages unless given).
    #[arg(long, value_name = "DURATION", value_parser = duration::parse)]
    pub warmup: Option<Duration>,
    /// Per-request timeout (overrides the plan's).
    #[arg(long, value_name = "DURATION", value_parser = longer_than_zero)]
    pub timeout: Option<Duration>,
    /// Bound on the whole run, cooldowns included.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = longer_than_zero)]
    pub max_duration: Duration,
    /// Start the load even when the doctor preflight fails.
    #[arg(long)]
    pub skip_preflight: bool,
    /// https:// targets: accept any certificate (a self-signed staging
    /// server). Without it, the system's roots are used (SSL_CERT_FILE adds a CA).
    #[arg(long)]
    pub insecure: bool,
    /// The backend's process id (default: the process listening on the base URL's port, when local).
    #[arg(long)]
    pub pid: Option<u32>,
    /// The backend's log, read as a witness during each stage (default: the
    /// file the backend process's stdout or stderr go to, when local).
    #[arg(long, value_name = "PATH")]
    pub backend_log: Option<PathBuf>,
    /// PgBouncer's admin console to sample (SHOW POOLS) beside pg_stat_activity (default: the backend's DATABASE_URL's, when it leads through PgBouncer).
    #[arg(long, value_name = "URL", env = "CHATOPS_PGBOUNCER_URL")]
    pub pgbouncer: Option<String>,
    /// Output format of the summary.
    #[arg(short, long, value_enum, default_value_t = LoadFormat::Human)]
    pub format: LoadFormat,
    /// Write one JSON file per stage, summary.json, report.md and report.html here.
    #[arg(long, value_name = "DIR")]
    pub export_dir: Option<PathBuf>,
    /// Write the HTML report (per-second charts, tables, diagnosis; one offline file) to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Compare with an earlier run (its summary.json, or its export directory); exit 1 on a regression.
    #[arg(long, value_name = "SUMMARY")]
    pub baseline: Option<PathBuf>,
    /// With --baseline: the throughput drop or p95/p99 rise that counts as a regression.
    #[arg(long, value_name = "PCT", default_value = "10%", value_parser = crate::load::compare::parse_percent)]
    pub max_regression: f64,
    /// Write the equivalent k6 script to FILE and exit without sending anything.
    #[arg(long, value_name = "FILE")]
    pub emit_k6: Option<PathBuf>,
}

// Value parsers: durations and counts are typed here, at the boundary; clap
// names the flag in its message and exits 2.

/// A duration longer than zero (a time bound, a timeout).
/// A duration as the playbook writes it (`60s`, `1m`, `0s`), checked here.
fn duration_text(s: &str) -> Result<String, String> {
    duration::parse(s).map(|_| s.trim().to_string())
}

fn longer_than_zero(s: &str) -> Result<Duration, String> {
    match duration::parse(s)? {
        d if d.is_zero() => Err("must be longer than 0s".into()),
        d => Ok(d),
    }
}

/// watch-connections' `--timeout`.
fn positive_duration(s: &str) -> Result<Duration, String> {
    match duration::parse(s) {
        Ok(d) if !d.is_zero() => Ok(d),
        _ => Err(format!("`{s}` is not a positive duration")),
    }
}

/// watch-connections' `--interval`: at least 50 ms between samples.
fn interval(s: &str) -> Result<Duration, String> {
    match duration::parse(s)? {
        d if d < Duration::from_millis(50) => Err("must be at least 50ms".into()),
        d => Ok(d),
    }
}

/// A number of seconds ≥ 0 (pool-calc's URL timeouts); a unit is accepted too (`30s`).
fn seconds(s: &str) -> Result<Duration, String> {
    if let Ok(v) = s.trim().parse::<f64>()
        && (!v.is_finite() || v < 0.0)
    {
        return Err(format!("must be a number of seconds ≥ 0, got {v}"));
    }
    duration::parse(s)
}

/// A number of seconds > 0 (pool-calc's `--timeout`).
fn positive_seconds(s: &str) -> Result<Duration, String> {
    match seconds(s)? {
        d if d.is_zero() => Err("must be a number of seconds > 0, got 0".into()),
        d => Ok(d),
    }
}

fn whole(s: &str) -> Result<i64, String> {
    s.trim()
        .parse::<i64>()
        .map_err(|_| format!("`{s}` is not a whole number"))
}

fn fits(v: i64) -> Result<u32, String> {
    u32::try_from(v).map_err(|_| format!("{v} is too large"))
}

/// A count ≥ 0 (replicas, other connections, spindles, reserved slots).
fn count(s: &str) -> Result<u32, String> {
    match whole(s)? {
        v if v < 0 => Err(format!("must be a number ≥ 0, got {v}")),
        v => fits(v),
    }
}

/// A count ≥ 1 (max_connections, cores, a pool size).
fn at_least_one(s: &str) -> Result<u32, String> {
    match whole(s)? {
        v if v < 1 => Err(format!("must be at least 1, got {v}")),
        v => fits(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("chatops").chain(args.iter().copied()))
    }

    #[test]
    fn stability_is_a_duration() {
        let Ok(Cli {
            command: Command::Doctor(d),
            ..
        }) = parse(&["doctor", "--stability", "60s"])
        else {
            panic!("doctor --stability 60s parses");
        };
        assert_eq!(d.stability.as_deref(), Some("60s"));
        assert!(parse(&["doctor", "--stability", "0s"]).is_ok());
        assert!(parse(&["doctor", "--stability", "soon"]).is_err());
    }

    fn refused(args: &[&str]) -> String {
        match parse(args) {
            Ok(c) => panic!("{args:?} parsed: {c:?}"),
            Err(e) => {
                assert!(e.use_stderr(), "{e}");
                e.to_string()
            }
        }
    }

    #[test]
    fn watch_listen_addresses() {
        let listen = |a: &str| match parse(&["watch-connections", "--listen", a]) {
            Ok(Cli {
                command: Command::WatchConnections(w),
                ..
            }) => w.listen.map(|l| l.to_string()),
            other => panic!("{a}: {other:?}"),
        };
        assert_eq!(listen("127.0.0.1:9187").as_deref(), Some("127.0.0.1:9187"));
        assert_eq!(listen("localhost:9187").as_deref(), Some("127.0.0.1:9187"));
        assert_eq!(listen(":9187").as_deref(), Some("0.0.0.0:9187"));
        assert_eq!(listen("[::1]:0").as_deref(), Some("[::1]:0"));
        assert!(
            refused(&["watch-connections", "--listen", "example.com:9187"]).contains("HOST:PORT")
        );
        assert!(refused(&["watch-connections", "--listen", "9187"]).contains("HOST:PORT"));
        refused(&["watch-connections", "--listen", ":1", "--once"]);
        refused(&["watch-connections", "--listen", ":1", "--format", "json"]);
        refused(&["watch-connections", "--allow-remote"]);
        assert!(parse(&["watch-connections", "--connection-limit", "0"]).is_err());
    }

    #[test]
    fn watch_durations_and_defaults() {
        let Command::WatchConnections(w) = parse(&["watch-connections"]).unwrap().command else {
            panic!("not watch")
        };
        assert_eq!(w.interval, Duration::from_secs(2));
        assert_eq!(w.timeout, Duration::from_secs(5));
        assert_eq!((w.warn_active, w.critical_active), (40, 48));
        let Command::WatchConnections(w) = parse(&["watch-connections", "--interval", "500ms"])
            .unwrap()
            .command
        else {
            panic!("not watch")
        };
        assert_eq!(w.interval, Duration::from_millis(500));
        let e = refused(&["watch-connections", "--interval", "fast"]);
        assert!(
            e.contains("--interval") && e.contains("not a duration"),
            "{e}"
        );
        let e = refused(&["watch-connections", "--interval", "10ms"]);
        assert!(
            e.contains("--interval") && e.contains("at least 50ms"),
            "{e}"
        );
        let e = refused(&["watch-connections", "--timeout", "0s"]);
        assert!(
            e.contains("--timeout") && e.contains("not a positive duration"),
            "{e}"
        );
    }

    #[test]
    fn load_durations() {
        let Command::Load(l) = parse(&[
            "load",
            "--think-time",
            "1s",
            "--cooldown",
            "2m",
            "--timeout",
            "1.5",
        ])
        .unwrap()
        .command
        else {
            panic!("not load")
        };
        assert_eq!(l.think_time, Some(Duration::from_secs(1)));
        assert_eq!(l.cooldown, Some(Duration::from_secs(120)));
        assert_eq!(l.timeout, Some(Duration::from_millis(1500)));
        assert_eq!(l.max_duration, Duration::from_secs(3600));
        let e = refused(&["load", "--max-duration", "0s"]);
        assert!(
            e.contains("--max-duration") && e.contains("longer than 0s"),
            "{e}"
        );
        let e = refused(&["load", "--think-time", "soon"]);
        assert!(e.contains("--think-time"), "{e}");
    }

    #[test]
    fn pool_calc_counts_and_seconds() {
        let Command::PoolCalc(p) = parse(&["pool-calc"]).unwrap().command else {
            panic!("not pool-calc")
        };
        assert_eq!((p.replicas, p.other_connections, p.spindles), (1, 0, 1));
        assert_eq!(p.pool_timeout, Duration::from_secs(30));
        assert_eq!(p.connect_timeout, Duration::from_secs(10));
        assert_eq!(p.timeout, Duration::from_secs(5));
        for (args, needle) in [
            (&["--replicas", "-2"][..], "must be a number ≥ 0, got -2"),
            (&["--max-connections", "-5"], "must be at least 1, got -5"),
            (&["--pool", "0"], "must be at least 1, got 0"),
            (
                &["--pool-timeout", "-1"],
                "must be a number of seconds ≥ 0, got -1",
            ),
            (
                &["--timeout", "0"],
                "must be a number of seconds > 0, got 0",
            ),
            (&["--cores", "many"], "`many` is not a whole number"),
            (&["--reserved", "99999999999"], "is too large"),
        ] {
            let mut a = vec!["pool-calc"];
            a.extend(args);
            let e = refused(&a);
            assert!(e.contains(args[0]) && e.contains(needle), "{a:?}: {e}");
        }
    }
}
