//! `pgbouncer`: PgBouncer in front of PostgreSQL, judged from its admin
//! console (SHOW VERSION, POOLS, STATS, CONFIG, DATABASES, CLIENTS, read
//! only, simple query protocol), the backend's DATABASE_URL (from the
//! running process, like `env`), PostgreSQL's limits (optional `url`) and
//! the backend's log (session features).
//!
//! Observes, then [`judge`]s: clients waiting (cl_waiting, maxwait), server
//! connections at the pool's limit, the pool against pool math for the
//! planned load, max_client_conn against the app's pools, PgBouncer's
//! server connections against PostgreSQL's usable ones, the pool mode, a
//! transaction-mode URL without `pgbouncer=true`, and session features in
//! the log under transaction pooling.

use super::env::{ProcessSel, read_env};
use super::util::{SnapshotError, pg_snapshot, worst_finding};
use super::{Check, Ctx, Observation, Status};
use crate::diagnose::{BouncerFault, Fault};
use crate::pg::DbUrl;
use crate::pg::pgbouncer::{self as pgb, Server, Snapshot};
use crate::poolcalc::{self, Inputs, Load, num};
use schemars::JsonSchema;
use serde::Deserialize;

pub struct PgBouncerCheck;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// PgBouncer's admin console as a stats or admin user (`postgresql://stats:…@host:6432/pgbouncer`). Omitted: the backend's DATABASE_URL with database `pgbouncer`.
    pub console: Option<String>,
    /// The backend process whose DATABASE_URL is judged: `{port: 3001}`, `{pid: …}` or `{name: …}`.
    pub process: Option<ProcessSel>,
    /// The app's DATABASE_URL given directly (instead of `process`).
    pub app_url: Option<String>,
    /// Variable holding the backend's URL (default DATABASE_URL).
    #[serde(default = "default_var")]
    pub var: String,
    /// PostgreSQL itself (not PgBouncer), for max_connections: PgBouncer's pools are judged against its usable connections.
    pub url: Option<String>,
    /// Processes that each open a pool to PgBouncer (default 1).
    #[serde(default = "one")]
    pub replicas: u32,
    /// Other client connections to PgBouncer (admin tools, workers; default 0).
    #[serde(default)]
    pub other_clients: u32,
    /// Other connections to PostgreSQL that bypass PgBouncer (default 0).
    #[serde(default)]
    pub other_connections: u32,
    /// The app's pool when its URL sets no connection_limit (default 50: the seed's backend appends it).
    pub default_pool: Option<u32>,
    /// Planned load: virtual users (default 120).
    #[serde(default = "crate::poolcalc::seed::vus")]
    pub vus: f64,
    /// Planned load: share of VUs querying at a time (default 0.7).
    #[serde(default = "crate::poolcalc::seed::activity_ratio")]
    pub activity_ratio: f64,
    /// Planned load: average transaction time in milliseconds (default 150).
    #[serde(default = "crate::poolcalc::seed::query_ms")]
    pub query_ms: f64,
    /// Burst multiplier (default 3).
    #[serde(default = "crate::poolcalc::seed::burst")]
    pub burst: f64,
    /// Connections for health checks and background tasks (default 10).
    #[serde(default = "crate::poolcalc::seed::overhead")]
    pub overhead: f64,
    /// Longest acceptable wait in PgBouncer's queue, seconds (default 1): beyond it, clients waiting fail the check.
    #[serde(default = "max_wait_default")]
    pub max_wait_s: f64,
    /// Lines at the end of the backend's log scanned for session features (default 2000; 0: none).
    #[serde(default = "log_lines_default")]
    pub log_lines: usize,
}

fn default_var() -> String {
    "DATABASE_URL".into()
}
fn one() -> u32 {
    1
}
fn max_wait_default() -> f64 {
    1.0
}
fn log_lines_default() -> usize {
    2000
}

/// The app's DATABASE_URL as observed.
#[derive(Debug, Clone)]
pub struct AppUrl {
    /// Where it was read (`process 42 (node)`).
    pub source: String,
    /// As written (redacted before it is shown).
    pub raw: String,
    pub url: DbUrl,
    /// Whether it leads to PgBouncer, and how that is known.
    pub via_pgbouncer: Option<String>,
}

/// Everything [`judge`] looks at.
#[derive(Debug, Clone)]
pub struct Observed {
    pub snap: Snapshot,
    /// Where the console was reached (`host:port`).
    pub console_at: String,
    pub app: Option<AppUrl>,
    /// PostgreSQL's max_connections and reserved slots, when `url` is given.
    pub limits: Option<(u32, u32)>,
    /// The backend's log: its description and its last lines.
    pub log: Option<(String, Vec<String>)>,
}

/// The app's pool: its URL's connection_limit, else the default.
fn app_pool(p: &Params, app: Option<&AppUrl>) -> (u32, String) {
    match app.and_then(|a| a.url.connection_limit()) {
        Some(n) => (n, format!("connection_limit={n} in the app's {}", p.var)),
        None => {
            let n = p.default_pool.unwrap_or(50);
            (n, format!("{n} (the app's URL sets no connection_limit)"))
        }
    }
}

/// Does the app's URL lead to PgBouncer? Its port is PgBouncer's, or it is
/// where the console answered, or the server says so when asked.
async fn leads_to_pgbouncer(u: &DbUrl, console: &DbUrl, ctx: &Ctx) -> Option<String> {
    if u.port == pgb::DEFAULT_PORT {
        return Some(format!("port {}", pgb::DEFAULT_PORT));
    }
    if (u.host.as_str(), u.port) == (console.host.as_str(), console.port) {
        return Some("the address of PgBouncer's console".into());
    }
    match pgb::identify(u, ctx.timeout).await {
        Server::PgBouncer { .. } => Some("it answers as PgBouncer on database pgbouncer".into()),
        _ => None,
    }
}

impl Check for PgBouncerCheck {
    const KIND: &'static str = "pgbouncer";
    const HELP: &'static str = "PgBouncer's console (SHOW POOLS/STATS/CONFIG/DATABASES/CLIENTS): clients waiting, pool size against the planned load and PostgreSQL, max_client_conn against the app's pools, pool mode, and Prisma's pgbouncer=true";
    type Params = Params;

    async fn run(p: Params, ctx: Ctx) -> Observation {
        let mut evidence = Vec::new();
        // The app's URL.
        let raw_app = if let Some(u) = &p.app_url {
            Some(("the check's app_url".to_string(), u.clone()))
        } else if let Some(sel) = &p.process {
            match read_env(Some(sel)) {
                Ok(pe) => match pe.env.get(&p.var) {
                    Some(v) => Some((pe.source.clone(), v.clone())),
                    None => {
                        return Observation::fail(
                            format!("{} is not set in {}", p.var, pe.source),
                            Fault::EnvMissing {
                                name: p.var.clone(),
                                source: pe.source,
                            },
                        );
                    }
                },
                Err(o) => return *o,
            }
        } else {
            None
        };
        let app_parsed = match &raw_app {
            Some((src, raw)) => match DbUrl::parse(raw) {
                Ok(u) => Some((src.clone(), raw.clone(), u)),
                Err(e) => {
                    return Observation::fail(
                        format!("{} is not a valid PostgreSQL URL: {e}", p.var),
                        Fault::DbUrlInvalid {
                            name: p.var.clone(),
                            message: e.to_string(),
                        },
                    );
                }
            },
            None => None,
        };
        let console = match (&p.console, &app_parsed) {
            (Some(c), _) => match super::db_url(c) {
                Ok(u) => u,
                Err(o) => return *o,
            },
            (None, Some((_, _, u))) => pgb::console_of(u),
            (None, None) => {
                return Observation::error(
                    "give `console` (PgBouncer's admin console URL), `process` or `app_url`",
                );
            }
        };
        let console_at = format!("{}:{}", console.host, console.port);
        let client = match pgb::connect_console(&console, ctx.timeout).await {
            Ok(c) => c,
            Err(e) => return Observation::error(format!("{e} (at {console_at})")),
        };
        let snap = match pgb::snapshot(&client, ctx.timeout).await {
            Ok(s) => s,
            Err(e) => return Observation::error(e.to_string()),
        };
        let app = match app_parsed {
            Some((source, raw, url)) => {
                let via = leads_to_pgbouncer(&url, &console, &ctx).await;
                Some(AppUrl {
                    source,
                    raw,
                    url,
                    via_pgbouncer: via,
                })
            }
            None => None,
        };
        let limits = match &p.url {
            None => None,
            Some(raw) => {
                let u = match super::db_url(raw) {
                    Ok(u) => u,
                    Err(o) => return *o,
                };
                match pg_snapshot(&u, None, ctx.timeout).await {
                    Ok(s) => Some((s.max_connections, s.superuser_reserved + s.reserved)),
                    Err(SnapshotError::Login { message, .. })
                    | Err(SnapshotError::Failed(message)) => {
                        evidence.push(format!("PostgreSQL's limits unread: {message}"));
                        None
                    }
                    Err(SnapshotError::TimedOut) => {
                        evidence.push("PostgreSQL's limits unread: timed out".into());
                        None
                    }
                }
            }
        };
        let log = match (&ctx.witness, p.log_lines) {
            (Some(w), n) if n > 0 => crate::probe::log::tail(&w.path, 1 << 20).ok().map(|t| {
                let lines: Vec<String> = t.raw_lines().map(str::to_string).collect();
                let from = lines.len().saturating_sub(n);
                (w.describe(), lines[from..].to_vec())
            }),
            _ => None,
        };
        let obs = Observed {
            snap,
            console_at: console_at.clone(),
            app,
            limits,
            log,
        };
        let mut o = judge(&p, &obs);
        o.evidence.splice(0..0, evidence);
        o.command(format!(
            "psql \"postgresql://{}@{console_at}/pgbouncer\" -c 'SHOW POOLS' -c 'SHOW CONFIG'",
            console.user
        ))
    }
}

/// The database the app uses, else every configured one.
fn databases_of(p_app: Option<&AppUrl>, snap: &Snapshot) -> Vec<String> {
    if let Some(a) = p_app {
        return vec![a.url.database.clone()];
    }
    let mut v: Vec<String> = snap.databases.iter().map(|d| d.name.clone()).collect();
    v.retain(|d| d != "*");
    v
}

/// Judges what the console, the app's URL, PostgreSQL and the log showed.
pub fn judge(p: &Params, obs: &Observed) -> Observation {
    let s = &obs.snap;
    let mode = s.pool_mode().to_string();
    let mut o = Observation::pass("")
        .evidence(format!(
            "console {}: {}; pool_mode {mode}, default_pool_size {}, max_client_conn {}, max_db_connections {}, max_prepared_statements {}",
            obs.console_at,
            s.version,
            s.setting("default_pool_size").unwrap_or("?"),
            s.setting("max_client_conn").unwrap_or("?"),
            s.setting("max_db_connections").unwrap_or("?"),
            s.setting("max_prepared_statements").unwrap_or("absent (before 1.21)")
        ));
    for pool in &s.pools {
        o = o.evidence(format!(
            "pool {}/{} ({}): cl_active {}, cl_waiting {}, sv_active {}, sv_idle {}, sv_used {}, maxwait {:.1} s",
            pool.database,
            pool.user,
            pool.pool_mode,
            pool.cl_active,
            pool.cl_waiting,
            pool.sv_active,
            pool.sv_idle,
            pool.sv_used,
            pool.maxwait_s
        ));
    }
    for st in s.stats.iter().take(3) {
        let g = |k: &str| st.get(k).map(String::as_str).unwrap_or("?");
        o = o.evidence(format!(
            "stats {}: {} transactions, avg_xact_time {} µs, avg_wait_time {} µs",
            g("database"),
            g("total_xact_count"),
            g("avg_xact_time"),
            g("avg_wait_time")
        ));
    }
    let (waiting, maxwait) = s.waiting();
    o = o
        .capture("cl_waiting", waiting)
        .capture("maxwait_s", maxwait)
        .capture("pool_mode", mode.clone())
        .capture("servers", s.servers());
    let mut findings: Vec<(Status, String, Fault)> = Vec::new();
    let mut add = |st: Status, summary: String, f: BouncerFault| {
        findings.push((st, summary, Fault::PgBouncer(f)));
    };
    let app = obs.app.as_ref();
    let (pool, pool_source) = app_pool(p, app);
    if let Some(a) = app {
        o = o.evidence(format!(
            "app: {} from {} ({}); {}",
            p.var,
            a.source,
            a.via_pgbouncer
                .as_ref()
                .map_or("not PgBouncer's address".to_string(), |h| format!(
                    "PgBouncer: {h}"
                )),
            pool_source
        ));
    }
    // Clients waiting now.
    for pl in s.pools.iter().filter(|pl| pl.cl_waiting > 0) {
        let st = if pl.maxwait_s >= p.max_wait_s {
            Status::Fail
        } else {
            Status::Warn
        };
        add(
            st,
            format!(
                "{} client(s) wait in PgBouncer for {} (maxwait {:.1} s)",
                pl.cl_waiting, pl.database, pl.maxwait_s
            ),
            BouncerFault::PgbouncerClientsWaiting {
                database: pl.database.clone(),
                user: pl.user.clone(),
                waiting: pl.cl_waiting,
                maxwait_s: pl.maxwait_s,
                servers: pl.servers(),
                pool_size: s.pool_size_of(&pl.database),
            },
        );
    }
    // Server connections at the pool's limit.
    for pl in &s.pools {
        let size = s.pool_size_of(&pl.database);
        let max_db = s
            .databases
            .iter()
            .find(|d| d.name == pl.database)
            .map(|d| d.max_connections)
            .filter(|m| *m > 0)
            .or_else(|| s.setting_u32("max_db_connections").filter(|m| *m > 0));
        let (limit, setting) = match max_db {
            Some(m) if m < size => (m, "max_db_connections"),
            _ => (size, "default_pool_size"),
        };
        if pl.servers() >= limit && pl.cl_waiting == 0 && limit > 0 {
            add(
                Status::Warn,
                format!(
                    "PgBouncer's server connections to {} are at their limit ({} of {limit}, {setting})",
                    pl.database,
                    pl.servers()
                ),
                BouncerFault::PgbouncerServersAtLimit {
                    database: pl.database.clone(),
                    servers: pl.servers(),
                    limit,
                    setting: setting.into(),
                },
            );
        }
    }
    // The pool against pool math for the planned load (transaction mode:
    // server connections serve transactions, as a pool serves queries).
    let inputs = Inputs {
        load: Load::Vus {
            vus: p.vus,
            activity_ratio: p.activity_ratio,
        },
        query_s: p.query_ms / 1000.0,
        burst: p.burst,
        overhead: p.overhead,
        ..Inputs::default()
    };
    let plan = poolcalc::plan(&inputs);
    let load = format!(
        "{} VUs × {} × {} ms",
        num(p.vus),
        num(p.activity_ratio),
        num(p.query_ms)
    );
    let dbs = databases_of(app, s);
    for db in &dbs {
        let size = s.pool_size_of(db);
        let mut small = |st: Status, what: String| {
            add(
                st,
                format!("PgBouncer's pool for {db} ({size}) is below {what} for {load}"),
                BouncerFault::PgbouncerPoolTooSmall {
                    database: db.clone(),
                    pool_size: size,
                    concurrent: plan.concurrent,
                    recommended: plan.recommended_pool,
                    load: load.clone(),
                },
            )
        };
        if (size as f64) < plan.concurrent {
            small(
                Status::Fail,
                format!("the {} connections kept busy", num(plan.concurrent)),
            );
        } else if size < plan.recommended_pool && s.mode_of(db) != "session" {
            small(
                Status::Warn,
                format!("the {} pool math gives", plan.recommended_pool),
            );
        }
        if s.mode_of(db) == "session" {
            let clients = pool * p.replicas + p.other_clients;
            if clients > size {
                add(
                    Status::Warn,
                    format!(
                        "{db} is pooled per session: {clients} app connection(s) for {size} server connection(s)"
                    ),
                    BouncerFault::PgbouncerSessionMode {
                        database: db.clone(),
                        clients,
                        pool_size: size,
                    },
                );
            }
        }
    }
    o = o.evidence(format!(
        "pool math: {load} → {} busy on average, × {} burst + {} = {} recommended",
        num(plan.concurrent),
        num(p.burst),
        num(p.overhead),
        plan.recommended_pool
    ));
    // max_client_conn against the app's pools.
    if let Some(max_client) = s.setting_u32("max_client_conn") {
        let demand = pool * p.replicas + p.other_clients;
        o = o.evidence(format!(
            "clients: {pool} × {} replica(s) + {} other = {demand} against max_client_conn {max_client}",
            p.replicas, p.other_clients
        ));
        if demand > max_client {
            add(
                Status::Fail,
                format!(
                    "the app's pools open {demand} client connection(s), PgBouncer accepts {max_client} (max_client_conn)"
                ),
                BouncerFault::PgbouncerMaxClientConn {
                    max_client_conn: max_client,
                    demand,
                    connection_limit: pool,
                    replicas: p.replicas,
                    other: p.other_clients,
                },
            );
        }
    }
    // PgBouncer's server connections against PostgreSQL's usable ones.
    if let Some((max_connections, reserved)) = obs.limits {
        let usable = max_connections.saturating_sub(reserved);
        let mut pairs: Vec<(String, String)> = s
            .pools
            .iter()
            .map(|pl| (pl.database.clone(), pl.user.clone()))
            .collect();
        for db in &dbs {
            if !pairs.iter().any(|(d, _)| d == db) {
                pairs.push((db.clone(), "(app)".into()));
            }
        }
        let per = |db: &str| {
            let d = s.databases.iter().find(|d| d.name == db);
            s.pool_size_of(db) + d.map_or(0, |d| d.reserve_pool)
        };
        let raw: u32 = pairs.iter().map(|(d, _)| per(d)).sum();
        let cap = s.setting_u32("max_db_connections").filter(|m| *m > 0);
        let from_pools = cap.map_or(raw, |c| raw.min(c * dbs.len().max(1) as u32));
        let demand = from_pools + p.other_connections;
        let pools = format!(
            "{} database/user pool(s) × pool size (+ reserve){} + {} other",
            pairs.len(),
            cap.map(|c| format!(", max_db_connections {c}"))
                .unwrap_or_default(),
            p.other_connections
        );
        o = o.evidence(format!(
            "PostgreSQL: max_connections {max_connections} − {reserved} reserved = {usable} usable; PgBouncer may open {demand} ({pools})"
        ));
        if demand > usable {
            add(
                Status::Fail,
                format!(
                    "PgBouncer's pools may open {demand} server connections, PostgreSQL accepts {usable}"
                ),
                BouncerFault::PgbouncerExceedsPostgres {
                    demand,
                    pools,
                    usable,
                    max_connections,
                },
            );
        }
    }
    // Prisma through transaction pooling without pgbouncer=true.
    if let Some(a) = app
        && let Some(how) = &a.via_pgbouncer
    {
        let db_mode = s.mode_of(&a.url.database).to_string();
        let flagged = a.url.param("pgbouncer") == Some("true");
        if db_mode != "session" && !flagged && s.max_prepared_statements() == 0 {
            let fixed = crate::pg::with_params(&a.raw, &[("pgbouncer", "true".into())])
                .unwrap_or_else(|_| format!("{}?pgbouncer=true", a.raw));
            add(
                Status::Fail,
                format!(
                    "{} points at PgBouncer in {db_mode} mode without pgbouncer=true: prepared statements fail (42P05/26000)",
                    p.var
                ),
                BouncerFault::PgbouncerPreparedStatements {
                    var: p.var.clone(),
                    server: format!("{}:{}", a.url.host, a.url.port),
                    how: how.clone(),
                    pool_mode: db_mode,
                    version: s.version.clone(),
                    fixed_url: crate::poolcalc::render::hide_password(&fixed),
                },
            );
        }
    }
    // Session features in the log, under transaction pooling.
    if let Some((log, lines)) = &obs.log
        && mode != "session"
    {
        let (features, shown) = crate::diagnose::pgbouncer::session_features(lines);
        if !features.is_empty() {
            add(
                Status::Warn,
                format!(
                    "the backend's log shows {} under {mode} pooling",
                    features.join(", ")
                ),
                BouncerFault::PgbouncerSessionFeatures {
                    pool_mode: mode.clone(),
                    features,
                    lines: shown,
                    log: log.clone(),
                },
            );
        }
    }
    if findings.is_empty() {
        o.summary = format!(
            "PgBouncer ({mode} pooling): no client waiting, pool fits {load}, {} server connection(s) open",
            s.servers()
        );
        return o;
    }
    worst_finding(o, findings, |n| format!("(and {n} more finding(s))"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::pgbouncer::{Database, Pool};

    fn params(v: serde_json::Value) -> Params {
        serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}"))
    }

    fn snap(mode: &str, pool_size: u32, max_client: u32, waiting: u32, maxwait: f64) -> Snapshot {
        let cfg = [
            ("pool_mode", mode.to_string()),
            ("default_pool_size", pool_size.to_string()),
            ("max_client_conn", max_client.to_string()),
            ("max_db_connections", "0".to_string()),
        ];
        Snapshot {
            version: "PgBouncer 1.18.0".into(),
            pools: vec![Pool {
                database: "chat".into(),
                user: "app".into(),
                cl_active: 10,
                cl_waiting: waiting,
                sv_active: 2,
                sv_idle: 1,
                maxwait_s: maxwait,
                pool_mode: mode.into(),
                ..Pool::default()
            }],
            databases: vec![Database {
                name: "chat".into(),
                ..Database::default()
            }],
            config: cfg
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            ..Snapshot::default()
        }
    }

    fn app(url: &str, via: bool) -> Option<AppUrl> {
        Some(AppUrl {
            source: "process 42 (node)".into(),
            raw: url.into(),
            url: DbUrl::parse(url).unwrap_or_else(|e| panic!("{e}")),
            via_pgbouncer: via.then(|| "port 6432".to_string()),
        })
    }

    fn obs(snap: Snapshot, app: Option<AppUrl>) -> Observed {
        Observed {
            snap,
            console_at: "127.0.0.1:6432".into(),
            app,
            limits: Some((100, 3)),
            log: None,
        }
    }

    const GOOD: &str = "postgresql://app:pw@127.0.0.1:6432/chat?pgbouncer=true&connection_limit=20";

    fn code(o: &Observation) -> &'static str {
        o.fault.as_ref().map_or("", Fault::cause_code)
    }

    #[test]
    fn a_healthy_pooler_passes() {
        let p = params(serde_json::json!({}));
        let o = judge(
            &p,
            &obs(snap("transaction", 50, 100, 0, 0.0), app(GOOD, true)),
        );
        assert_eq!(o.status, Status::Pass, "{o:?}");
        assert!(
            o.summary.starts_with("PgBouncer (transaction pooling)"),
            "{}",
            o.summary
        );
    }

    #[test]
    fn a_transaction_mode_url_without_pgbouncer_true_is_named_with_its_fix() {
        let p = params(serde_json::json!({}));
        let url = "postgresql://app:pw@127.0.0.1:6432/chat?connection_limit=20";
        let o = judge(
            &p,
            &obs(snap("transaction", 50, 100, 0, 0.0), app(url, true)),
        );
        assert_eq!(o.status, Status::Fail);
        assert_eq!(code(&o), "pgbouncer_prepared_statements");
        let Some(Fault::PgBouncer(BouncerFault::PgbouncerPreparedStatements { fixed_url, .. })) =
            &o.fault
        else {
            panic!("{o:?}")
        };
        assert_eq!(
            fixed_url,
            "postgresql://app:***@127.0.0.1:6432/chat?connection_limit=20&pgbouncer=true"
        );
        // Session mode, or a URL that does not lead to PgBouncer: no finding.
        let o = judge(&p, &obs(snap("session", 50, 100, 0, 0.0), app(url, true)));
        assert_ne!(code(&o), "pgbouncer_prepared_statements");
        let o = judge(
            &p,
            &obs(snap("transaction", 50, 100, 0, 0.0), app(url, false)),
        );
        assert_eq!(o.status, Status::Pass, "{o:?}");
    }

    #[test]
    fn a_small_pool_waiting_clients_and_max_client_conn() {
        let p = params(serde_json::json!({}));
        let o = judge(
            &p,
            &obs(snap("transaction", 5, 100, 0, 0.0), app(GOOD, true)),
        );
        assert_eq!(
            (o.status, code(&o)),
            (Status::Fail, "pgbouncer_pool_too_small")
        );
        let o = judge(
            &p,
            &obs(snap("transaction", 50, 100, 7, 2.5), app(GOOD, true)),
        );
        assert_eq!(
            (o.status, code(&o)),
            (Status::Fail, "pgbouncer_clients_waiting")
        );
        let o = judge(
            &p,
            &obs(snap("transaction", 50, 100, 1, 0.1), app(GOOD, true)),
        );
        assert_eq!(
            (o.status, code(&o)),
            (Status::Warn, "pgbouncer_clients_waiting")
        );
        let p3 = params(serde_json::json!({"replicas": 6}));
        let o = judge(
            &p3,
            &obs(snap("transaction", 50, 100, 0, 0.0), app(GOOD, true)),
        );
        assert_eq!(
            (o.status, code(&o)),
            (Status::Fail, "pgbouncer_max_client_conn")
        );
        assert!(
            o.summary
                .contains("open 120 client connection(s), PgBouncer accepts 100")
        );
    }

    #[test]
    fn pools_above_postgres_and_session_mode() {
        let p = params(serde_json::json!({}));
        let mut s = snap("transaction", 60, 100, 0, 0.0);
        s.pools.push(Pool {
            database: "chat".into(),
            user: "admin".into(),
            ..Pool::default()
        });
        let o = judge(&p, &obs(s, app(GOOD, true)));
        assert_eq!(
            (o.status, code(&o)),
            (Status::Fail, "pgbouncer_exceeds_postgres")
        );
        let p = params(serde_json::json!({"replicas": 3}));
        let o = judge(&p, &obs(snap("session", 50, 100, 0, 0.0), app(GOOD, true)));
        assert_eq!(
            (o.status, code(&o)),
            (Status::Warn, "pgbouncer_session_mode")
        );
    }

    #[test]
    fn session_features_in_the_log_under_transaction_pooling() {
        let p = params(serde_json::json!({}));
        let mut ob = obs(snap("transaction", 50, 100, 0, 0.0), app(GOOD, true));
        ob.log = Some((
            "/tmp/backend.log".into(),
            vec!["prisma:query SELECT pg_advisory_lock(42)".into()],
        ));
        let o = judge(&p, &ob);
        assert_eq!(
            (o.status, code(&o)),
            (Status::Warn, "pgbouncer_session_features")
        );
    }
}
