//! `pool_headroom`: does the backend's pool fit the server, and is it big
//! enough for the planned load? Reads max_connections and the reserved
//! slots live, takes the pool from a given value or from the backend's
//! DATABASE_URL (`connection_limit`, read from the running process like the
//! `env` check does), and judges both sides with [`crate::poolcalc`].

use super::env::{ProcessSel, read_env};
use super::{Check, Ctx, Observation, Status};
use crate::diagnose::Fault;
use crate::pg::{DbUrl, activity};
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
    #[serde(default = "vus_default")]
    pub vus: f64,
    /// Planned load: share of VUs querying at a time (default 0.7).
    #[serde(default = "ratio_default")]
    pub activity_ratio: f64,
    /// Planned load: average query time in milliseconds (default 150).
    #[serde(default = "query_ms_default")]
    pub query_ms: f64,
    /// Burst multiplier (default 3).
    #[serde(default = "burst_default")]
    pub burst: f64,
    /// Connections for health checks and background tasks (default 10).
    #[serde(default = "overhead_default")]
    pub overhead: f64,
}

fn default_var() -> String {
    "DATABASE_URL".into()
}
fn one() -> u32 {
    1
}
fn vus_default() -> f64 {
    120.0
}
fn ratio_default() -> f64 {
    0.7
}
fn query_ms_default() -> f64 {
    150.0
}
fn burst_default() -> f64 {
    3.0
}
fn overhead_default() -> f64 {
    10.0
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
        let (pool, source) = if let Some(n) = p.pool {
            (n, format!("the configured pool ({n})"))
        } else if let Some(sel) = &p.process {
            let pe = match read_env(Some(sel)) {
                Ok(pe) => pe,
                Err(o) => return *o,
            };
            evidence.push(format!("backend: {}", pe.source));
            let Some(raw) = pe.env.get(&p.var) else {
                return Observation::fail(
                    format!("{} is not set in {}", p.var, pe.source),
                    Fault::EnvMissing {
                        name: p.var.clone(),
                        source: pe.source,
                    },
                );
            };
            let bu = match DbUrl::parse(raw) {
                Ok(b) => b,
                Err(e) => {
                    return Observation::fail(
                        format!("{} is not a valid PostgreSQL URL: {e}", p.var),
                        Fault::DbUrlInvalid {
                            name: p.var.clone(),
                            message: e,
                        },
                    );
                }
            };
            match pool_of(&bu, &p.var) {
                Ok(Some(n)) => (n, format!("connection_limit in the backend's {}", p.var)),
                Ok(None) => default_pool(p.default_pool, Some(&pe.env)),
                Err(e) => {
                    return Observation::fail(
                        e.clone(),
                        Fault::DbUrlInvalid {
                            name: p.var.clone(),
                            message: e,
                        },
                    );
                }
            }
        } else {
            match pool_of(&u, "url") {
                Ok(Some(n)) => (n, "connection_limit in the check's url".to_string()),
                Ok(None) => default_pool(p.default_pool, None),
                Err(e) => return Observation::error(e),
            }
        };
        let mut inputs = Inputs {
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
        };
        if let Err(e) = inputs.validate() {
            let field = e.field.trim_start_matches("--").replace('-', "_");
            return Observation::error(format!("invalid field `{field}`: {}", e.message));
        }
        let client = match activity::connect(&u, "chatops", ctx.timeout).await {
            Ok(c) => c,
            Err(e) => {
                return Observation::fail(
                    format!("cannot log in: {e}"),
                    crate::diagnose::pg::connect_fault(&e, &u),
                );
            }
        };
        let snap = match tokio::time::timeout(ctx.timeout, activity::sample(&client, None)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Observation::error(format!("reading the limits failed: {e}")),
            Err(_) => return Observation::error("reading the limits timed out"),
        };
        drop(client);
        inputs.max_connections = Some(snap.max_connections);
        inputs.reserved = snap.superuser_reserved + snap.reserved;
        if let Err(e) = inputs.validate() {
            return Observation::error(format!("the server's limits are unusable: {e}"));
        }
        let plan = poolcalc::plan(&inputs);
        let usable = plan.usable.unwrap_or(0);
        let mut o = Observation::pass("").command(format!(
            "psql \"postgresql://{}@{}:{}/{}\" -c 'SHOW max_connections' -c 'SHOW superuser_reserved_connections'",
            u.user, u.host, u.port, u.database
        ));
        o.evidence = evidence;
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
        findings.sort_by_key(|f| std::cmp::Reverse(f.0));
        let n = findings.len();
        match findings.into_iter().next() {
            Some((status, summary, fault)) => {
                o.status = status;
                o.summary = if n > 1 {
                    format!("{summary} (and 1 more finding)")
                } else {
                    summary
                };
                o.fault = Some(fault);
            }
            None => {
                o.summary = format!(
                    "pool of {pool} × {} = {} of {usable} usable connections ({:.0}%), enough for {load}",
                    p.replicas,
                    plan.demand,
                    plan.pct_of_usable.unwrap_or(0.0)
                );
            }
        }
        o
    }
}
