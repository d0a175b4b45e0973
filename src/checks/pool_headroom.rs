//! `pool_headroom`: does the backend's pool fit the server, and is it big
//! enough for the planned load? Reads max_connections and the reserved
//! slots live, takes the pool from a given value or from the backend's
//! DATABASE_URL (`connection_limit`, read from the running process like the
//! `env` check does), and judges both sides with [`crate::poolcalc`].
//!
//! The run observes (the backend's environment, the server's limits);
//! [`judge`] holds the pool against them.

use super::env::{ProcEnv, ProcessSel, read_env};
use super::util::{SnapshotError, pg_snapshot, worst_finding};
use super::{Check, Ctx, Observation, Status};
use crate::diagnose::Fault;
use crate::pg::DbUrl;
use crate::pg::activity::Snapshot;
use crate::poolcalc::{self, Inputs, Load, Verdict, num};
use schemars::JsonSchema;
use serde::Deserialize;

pub struct PoolHeadroom;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// PostgreSQL URL chatops reads the limits with, e.g. `${target.database_url}`.
    pub url: String,
    /// Pool size per process. Omitted: `connection_limit` of the backend's DATABASE_URL (see `process`), else of `url`, else `default_pool`.
    pub pool: Option<u32>,
    /// The pool when the URL sets no connection_limit: DATABASE_POOL_SIZE from the backend's environment, else this (default 50: the seed's backend appends `connection_limit=50`; a plain Prisma app uses CPUs × 2 + 1).
    pub default_pool: Option<u32>,
    /// The backend process whose DATABASE_URL holds the pool: `{port: 3001}`, `{pid: …}` or `{name: …}`.
    pub process: Option<ProcessSel>,
    /// Variable holding the backend's URL (default DATABASE_URL).
    #[serde(default = "default_var")]
    pub var: String,
    /// Processes that each open a pool (replicas, autoscaled pods; default 1).
    #[serde(default = "one")]
    pub replicas: u32,
    /// Connections other clients hold (admin, monitoring, other apps; default 0).
    #[serde(default)]
    pub other_connections: u32,
    /// Planned load: virtual users (default 120, the seed's).
    #[serde(default = "crate::poolcalc::seed::vus")]
    pub vus: f64,
    /// Planned load: share of VUs querying at a time (default 0.7).
    #[serde(default = "crate::poolcalc::seed::activity_ratio")]
    pub activity_ratio: f64,
    /// Planned load: average query time in milliseconds (default 150).
    #[serde(default = "crate::poolcalc::seed::query_ms")]
    pub query_ms: f64,
    /// Burst multiplier (default 3).
    #[serde(default = "crate::poolcalc::seed::burst")]
    pub burst: f64,
    /// Connections for health checks and background tasks (default 10).
    #[serde(default = "crate::poolcalc::seed::overhead")]
    pub overhead: f64,
}

fn default_var() -> String {
    "DATABASE_URL".into()
}
fn one() -> u32 {
    1
}

/// The seed's backend appends `connection_limit=${DATABASE_POOL_SIZE:-50}`
/// when DATABASE_URL has none.
const APP_DEFAULT_POOL: u32 = 50;

/// The pool used when the URL sets no connection_limit, and why.
fn default_pool(
    given: Option<u32>,
    env: Option<&std::collections::BTreeMap<String, String>>,
) -> (u32, String) {
    if let Some(n) = env
        .and_then(|e| e.get("DATABASE_POOL_SIZE"))
        .and_then(|v| v.trim().parse::<u32>().ok())
    {
        return (
            n,
            format!("DATABASE_POOL_SIZE={n} (the URL sets no connection_limit)"),
        );
    }
    match given {
        Some(n) => (
            n,
            format!("default_pool {n} (the URL sets no connection_limit)"),
        ),
        None => (
            APP_DEFAULT_POOL,
            format!(
                "the backend's default {APP_DEFAULT_POOL} (the URL sets no connection_limit, so it appends connection_limit={APP_DEFAULT_POOL})"
            ),
        ),
    }
}

fn pool_of(u: &DbUrl, name: &str) -> Result<Option<u32>, String> {
    match u.param("connection_limit") {
        None => Ok(None),
        Some(v) => v
            .parse::<u32>()
            .map(Some)
            .map_err(|_| format!("{name} has connection_limit={v}, not a number")),
    }
}

/// The pool size, from the backend's environment (`process`).
fn pool_from_env(p: &Params, pe: &ProcEnv) -> Result<(u32, String), Box<Observation>> {
    let Some(raw) = pe.env.get(&p.var) else {
        return Err(Box::new(Observation::fail(
            format!("{} is not set in {}", p.var, pe.source),
            Fault::EnvMissing {
                name: p.var.clone(),
                source: pe.source.clone(),
            },
        )));
    };
    let invalid = |message: String, summary: String| {
        Box::new(Observation::fail(
            summary,
            Fault::DbUrlInvalid {
                name: p.var.clone(),
                message,
            },
        ))
    };
    let bu = DbUrl::parse(raw).map_err(|e| {
        let summary = format!("{} is not a valid PostgreSQL URL: {e}", p.var);
        invalid(e.to_string(), summary)
    })?;
    match pool_of(&bu, &p.var) {
        Ok(Some(n)) => Ok((n, format!("connection_limit in the backend's {}", p.var))),
        Ok(None) => Ok(default_pool(p.default_pool, Some(&pe.env))),
        Err(e) => Err(invalid(e.clone(), e)),
    }
}

/// The planned load and the pool, as pool math's inputs.
fn inputs_of(p: &Params, pool: u32) -> Inputs {
    Inputs {
        load: Load::Vus {
            vus: p.vus,
            activity_ratio: p.activity_ratio,
        },
        query_s: p.query_ms / 1000.0,
        burst: p.burst,
        overhead: p.overhead,
        replicas: p.replicas,
        other_connections: p.other_connections,
        pool: Some(pool),
        ..Inputs::default()
    }
}

/// Where the pool came from, with what was seen finding it.
pub struct Pool {
    pub size: u32,
    pub source: String,
    pub evidence: Vec<String>,
}

impl Check for PoolHeadroom {
    const KIND: &'static str = "pool_headroom";
    const HELP: &'static str = "pool × replicas against max_connections − reserved (70% ceiling), and pool against pool math for the planned load";
    type Params = Params;

    async fn run(p: Params, ctx: Ctx) -> Observation {
        let u = match super::db_url(&p.url) {
            Ok(u) => u,
            Err(o) => return *o,
        };
        // Where the pool size comes from.
        let mut evidence = Vec::new();
        let found = if let Some(n) = p.pool {
            Ok((n, format!("the configured pool ({n})")))
        } else if let Some(sel) = &p.process {
            read_env(Some(sel)).and_then(|pe| {
                evidence.push(format!("backend: {}", pe.source));
                pool_from_env(&p, &pe)
            })
        } else {
            match pool_of(&u, "url") {
                Ok(Some(n)) => Ok((n, "connection_limit in the check's url".to_string())),
                Ok(None) => Ok(default_pool(p.default_pool, None)),
                Err(e) => Err(Box::new(Observation::error(e))),
            }
        };
        let (size, source) = match found {
            Ok(x) => x,
            Err(o) => return *o,
        };
        if let Err(e) = inputs_of(&p, size).validate() {
            let field = e.field.trim_start_matches("--").replace('-', "_");
            return Observation::error(format!("invalid field `{field}`: {}", e.message));
        }
        let snap = match pg_snapshot(&u, None, ctx.timeout).await {
            Ok(s) => s,
            Err(SnapshotError::Login { message, fault }) => {
                return Observation::fail(format!("cannot log in: {message}"), *fault);
            }
            Err(SnapshotError::Failed(e)) => {
                return Observation::error(format!("reading the limits failed: {e}"));
            }
            Err(SnapshotError::TimedOut) => {
                return Observation::error("reading the limits timed out");
            }
        };
        let pool = Pool {
            size,
            source,
            evidence,
        };
        judge(&p, &pool, &snap).command(format!(
            "psql \"postgresql://{}@{}:{}/{}\" -c 'SHOW max_connections' -c 'SHOW superuser_reserved_connections'",
            u.user, u.host, u.port, u.database
        ))
    }
}

/// Judges the pool against the server's limits (it must fit, under the 70%
/// ceiling) and against pool math for the planned load.
pub fn judge(p: &Params, pool: &Pool, snap: &Snapshot) -> Observation {
    let Pool {
        size: pool,
        source,
        evidence,
    } = pool;
    let pool = *pool;
    let mut inputs = inputs_of(p, pool);
    inputs.max_connections = Some(snap.max_connections);
    inputs.reserved = snap.superuser_reserved + snap.reserved;
    if let Err(e) = inputs.validate() {
        return Observation::error(format!("the server's limits are unusable: {e}"));
    }
    let plan = poolcalc::plan(&inputs);
    let usable = plan.usable.unwrap_or(0);
    let mut o = Observation::pass("");
    o.evidence = evidence.clone();
    o = o
        .evidence(format!("pool: {pool} from {source}"))
        .evidence(format!(
            "server: max_connections {} − {} superuser_reserved − {} reserved = {usable} usable; {} client session(s) now",
            snap.max_connections, snap.superuser_reserved, snap.reserved, snap.server_total
        ))
        .evidence(format!(
            "demand: {pool} × {} replica(s) + {} other = {} = {:.1}% of usable (ceiling 70% = {})",
            p.replicas,
            p.other_connections,
            plan.demand,
            plan.pct_of_usable.unwrap_or(0.0),
            plan.ceiling_connections.unwrap_or(0)
        ));
    let load = format!(
        "{} VUs × {} × {} ms",
        num(p.vus),
        num(p.activity_ratio),
        num(p.query_ms)
    );
    for s in plan.steps.iter().take(4) {
        o = o.evidence(format!(
            "pool math: {} = {} ({})",
            s.formula,
            num(s.value),
            s.label
        ));
    }
    o = o
        .capture("pool", pool)
        .capture("demand", plan.demand)
        .capture("usable", usable)
        .capture("max_connections", snap.max_connections)
        .capture("recommended_pool", plan.recommended_pool);
    let mut findings: Vec<(Status, String, Fault)> = Vec::new();
    let headroom = |fits| Fault::PoolExceedsHeadroom {
        pool,
        replicas: p.replicas,
        other: p.other_connections,
        demand: plan.demand,
        usable,
        max_connections: snap.max_connections,
        fits,
    };
    match plan.verdict {
        Verdict::DoesNotFit => findings.push((
            Status::Fail,
            format!(
                "pools need {} connection(s), the server accepts {usable}",
                plan.demand
            ),
            headroom(false),
        )),
        Verdict::AboveCeiling => findings.push((
            Status::Warn,
            format!(
                "pools take {} of {usable} usable connections ({:.0}%, above 70%)",
                plan.demand,
                plan.pct_of_usable.unwrap_or(0.0)
            ),
            headroom(true),
        )),
        _ => {}
    }
    let too_small = Fault::PoolTooSmall {
        pool,
        source: source.clone(),
        concurrent: plan.concurrent,
        recommended: plan.recommended_pool,
        load: load.clone(),
    };
    if (pool as f64) < plan.concurrent {
        findings.push((
            Status::Fail,
            format!(
                "pool of {pool} is below the {} connections {load} keeps busy",
                num(plan.concurrent)
            ),
            too_small,
        ));
    } else if pool < plan.recommended_pool {
        findings.push((
            Status::Warn,
            format!(
                "pool of {pool} is below the {} pool math gives for {load}",
                plan.recommended_pool
            ),
            too_small,
        ));
    }
    if findings.is_empty() {
        o.summary = format!(
            "pool of {pool} × {} = {} of {usable} usable connections ({:.0}%), enough for {load}",
            p.replicas,
            plan.demand,
            plan.pct_of_usable.unwrap_or(0.0)
        );
        return o;
    }
    worst_finding(o, findings, |_| "(and 1 more finding)".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(v: serde_json::Value) -> Params {
        let mut v = v;
        v["url"] = "postgresql://chat@127.0.0.1/chat_db".into();
        serde_json::from_value(v).unwrap()
    }

    fn snap(max_connections: u32) -> Snapshot {
        Snapshot {
            max_connections,
            superuser_reserved: 3,
            reserved: 0,
            server_total: 5,
            database: None,
            groups: vec![],
            waiting_lock: 0,
            longest: None,
            oldest_idle_in_transaction_ms: None,
        }
    }

    fn pool(size: u32) -> Pool {
        Pool {
            size,
            source: format!("the configured pool ({size})"),
            evidence: vec![],
        }
    }

    #[test]
    fn a_pool_that_fits_and_suffices_passes() {
        let p = params(serde_json::json!({"vus": 10, "query_ms": 100}));
        let o = judge(&p, &pool(20), &snap(100));
        assert_eq!(o.status, Status::Pass, "{o:?}");
        assert!(
            o.summary
                .starts_with("pool of 20 × 1 = 20 of 97 usable connections ("),
            "{}",
            o.summary
        );
        assert_eq!(o.evidence[0], "pool: 20 from the configured pool (20)");
        assert!(o.evidence[1].starts_with(
            "server: max_connections 100 − 3 superuser_reserved − 0 reserved = 97 usable"
        ));
        assert_eq!(o.captures["usable"], serde_json::json!(97));
    }

    #[test]
    fn too_big_for_the_server_and_too_small_for_the_load() {
        let p = params(serde_json::json!({"replicas": 3}));
        let o = judge(&p, &pool(50), &snap(100));
        assert_eq!(o.status, Status::Fail);
        assert!(
            o.summary
                .starts_with("pools need 150 connection(s), the server accepts 97"),
            "{}",
            o.summary
        );
        assert!(matches!(
            o.fault,
            Some(Fault::PoolExceedsHeadroom { fits: false, .. })
        ));
        let p = params(serde_json::json!({}));
        let o = judge(&p, &pool(5), &snap(200));
        assert_eq!(o.status, Status::Fail);
        assert!(
            o.summary.starts_with("pool of 5 is below the "),
            "{}",
            o.summary
        );
        assert!(matches!(o.fault, Some(Fault::PoolTooSmall { pool: 5, .. })));
    }

    #[test]
    fn warnings_below_pool_math_and_above_the_ceiling() {
        let p = params(serde_json::json!({}));
        let o = judge(&p, &pool(20), &snap(400));
        assert_eq!(o.status, Status::Warn, "{o:?}");
        assert!(
            o.summary.starts_with("pool of 20 is below the ")
                && o.summary
                    .ends_with(" pool math gives for 120 VUs × 0.7 × 150 ms"),
            "{}",
            o.summary
        );
        let o = judge(&p, &pool(80), &snap(100));
        assert_eq!(o.status, Status::Warn, "{o:?}");
        assert!(
            o.summary
                .starts_with("pools take 80 of 97 usable connections ("),
            "{}",
            o.summary
        );
        assert!(matches!(
            o.fault,
            Some(Fault::PoolExceedsHeadroom { fits: true, .. })
        ));
    }

    #[test]
    fn the_pool_from_the_backends_environment() {
        let p = params(serde_json::json!({}));
        let pe = |vars: &[(&str, &str)]| ProcEnv {
            source: "process 42 (node)".into(),
            env: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            command: String::new(),
            pid: Some(42),
        };
        let got = pool_from_env(
            &p,
            &pe(&[("DATABASE_URL", "postgresql://u@h/db?connection_limit=17")]),
        );
        assert_eq!(
            got.ok(),
            Some((
                17,
                "connection_limit in the backend's DATABASE_URL".to_string()
            ))
        );
        let got = pool_from_env(
            &p,
            &pe(&[
                ("DATABASE_URL", "postgresql://u@h/db"),
                ("DATABASE_POOL_SIZE", "30"),
            ]),
        );
        assert_eq!(got.ok().map(|x| x.0), Some(30));
        let got = pool_from_env(&p, &pe(&[]));
        assert_eq!(
            got.err().map(|o| o.summary),
            Some("DATABASE_URL is not set in process 42 (node)".to_string())
        );
        let got = pool_from_env(
            &p,
            &pe(&[("DATABASE_URL", "postgresql://u@h/db?connection_limit=many")]),
        );
        assert_eq!(
            got.err().map(|o| o.summary),
            Some("DATABASE_URL has connection_limit=many, not a number".to_string())
        );
    }
}
