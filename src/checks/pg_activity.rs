//! `pg_activity`: one snapshot of pg_stat_activity for a database, grouped
//! by application_name and state (the seed's monitoring query), judged
//! against thresholds on active sessions (the seed: warn above 40, critical
//! above 48), sessions waiting for locks, transactions left idle, and the
//! longest-running statement.

use super::{Check, Ctx, Observation, Status};
use crate::diagnose::Fault;
use crate::pg::activity;
use crate::support::duration::Dur;
use crate::support::redact::{self, Redactor};
use schemars::JsonSchema;
use serde::Deserialize;

pub struct PgActivity;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// PostgreSQL URL, e.g. `${target.database_url}`.
    pub url: String,
    /// Database whose sessions are counted (default: the URL's).
    pub database: Option<String>,
    /// Warn above this many active sessions (default 40, the seed's).
    #[serde(default = "warn_default")]
    pub warn_active: u32,
    /// Fail above this many active sessions (default 48, the seed's).
    #[serde(default = "critical_default")]
    pub critical_active: u32,
    /// Warn when more sessions than this wait for a lock (default 0).
    #[serde(default)]
    pub max_waiting: u32,
    /// Warn when more sessions than this are idle in a transaction (default 0).
    #[serde(default)]
    pub max_idle_in_transaction: u32,
    /// Warn when the longest active statement has run longer than this.
    pub max_query_time: Option<Dur>,
    /// Leave these application_names out of the counts (sessions named `chatops` always are).
    #[serde(default)]
    pub exclude_apps: Vec<String>,
}

fn warn_default() -> u32 {
    crate::support::chat_backend::WARN_ACTIVE
}
fn critical_default() -> u32 {
    crate::support::chat_backend::CRITICAL_ACTIVE
}

impl Check for PgActivity {
    const KIND: &'static str = "pg_activity";
    const HELP: &'static str = "pg_stat_activity by application_name and state, with thresholds on active sessions, lock waits, idle transactions and the longest query";
    type Params = Params;

    async fn run(p: Params, ctx: Ctx) -> Observation {
        let u = match super::db_url(&p.url) {
            Ok(u) => u,
            Err(o) => return *o,
        };
        if p.warn_active > p.critical_active {
            return Observation::error(format!(
                "invalid field `warn_active`: {} is above critical_active {}",
                p.warn_active, p.critical_active
            ));
        }
        let db = p.database.clone().unwrap_or_else(|| u.database.clone());
        let cmd = format!(
            "psql \"postgresql://{}@{}:{}/{}\" -c \"SELECT application_name, state, count(*) FROM pg_stat_activity WHERE datname = '{db}' GROUP BY 1, 2 ORDER BY 3 DESC\"",
            u.user, u.host, u.port, u.database
        );
        let client = match activity::connect(&u, "chatops", ctx.timeout).await {
            Ok(c) => c,
            Err(e) => {
                return Observation::fail(
                    format!("cannot log in: {e}"),
                    crate::diagnose::pg::connect_fault(&e, &u),
                )
                .command(cmd);
            }
        };
        let mut s = match tokio::time::timeout(ctx.timeout, activity::sample(&client, Some(&db)))
            .await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Observation::error(format!("sampling failed: {e}")).command(cmd),
            Err(_) => return Observation::error("sampling timed out").command(cmd),
        };
        drop(client);
        // Other chatops sessions (parallel checks, a watch) are not the backend's.
        s = s.without_app(crate::support::chat_backend::APP_NAME);
        for app in &p.exclude_apps {
            s = s.without_app(app);
        }
        let active = s.in_state("active");
        let idle_tx =
            s.in_state("idle in transaction") + s.in_state("idle in transaction (aborted)");
        let mut o = Observation::pass(format!(
            "{} session(s) on `{db}`: {active} active, {} idle, {idle_tx} idle in transaction",
            s.total(),
            s.in_state("idle")
        ))
        .command(cmd)
        .evidence(format!(
            "server: {} client session(s) of max_connections {} ({} usable)",
            s.server_total,
            s.max_connections,
            s.usable()
        ));
        for g in &s.groups {
            let app = if g.application_name.is_empty() {
                "(no application_name)"
            } else {
                &g.application_name
            };
            o = o.evidence(format!("{app} / {}: {}", g.state, g.count));
        }
        let red = Redactor::new();
        if let Some(l) = &s.longest {
            o = o.evidence(format!(
                "longest active statement: {:.1} s, pid {} ({}): {}",
                l.ms / 1000.0,
                l.pid,
                l.application_name,
                redact::sql_text(&red, &l.query, 120)
            ));
        }
        if s.waiting_lock > 0 {
            o = o.evidence(format!("{} session(s) waiting for a lock", s.waiting_lock));
        }
        if let Some(ms) = s.oldest_idle_in_transaction_ms {
            o = o.evidence(format!("oldest idle transaction: {:.1} s", ms / 1000.0));
        }
        o = o
            .capture("total", s.total())
            .capture("active", active)
            .capture("idle", s.in_state("idle"))
            .capture("idle_in_transaction", idle_tx)
            .capture("waiting_lock", s.waiting_lock)
            .capture("server_total", s.server_total)
            .capture("max_connections", s.max_connections)
            .capture("usable", s.usable());
        let mut findings: Vec<(Status, String, Fault)> = Vec::new();
        if active > p.warn_active {
            let critical = active > p.critical_active;
            findings.push((
                if critical { Status::Fail } else { Status::Warn },
                format!(
                    "{active} active session(s) on `{db}`, above the {} threshold {}",
                    if critical { "critical" } else { "warning" },
                    if critical {
                        p.critical_active
                    } else {
                        p.warn_active
                    }
                ),
                Fault::ActivityAboveThreshold {
                    database: db.clone(),
                    active,
                    threshold: if critical {
                        p.critical_active
                    } else {
                        p.warn_active
                    },
                    critical,
                },
            ));
        }
        if s.waiting_lock > p.max_waiting || idle_tx > p.max_idle_in_transaction {
            findings.push((
                Status::Warn,
                format!(
                    "{} session(s) waiting for a lock, {idle_tx} idle in transaction on `{db}`",
                    s.waiting_lock
                ),
                Fault::SessionsStuck {
                    database: db.clone(),
                    waiting_lock: s.waiting_lock,
                    idle_in_transaction: idle_tx,
                    oldest_idle_s: s.oldest_idle_in_transaction_ms.map(|ms| ms / 1000.0),
                },
            ));
        }
        if let (Some(limit), Some(l)) = (p.max_query_time, &s.longest)
            && l.ms > limit.0.as_secs_f64() * 1000.0
        {
            findings.push((
                Status::Warn,
                format!(
                    "a statement has run {:.1} s, longer than {}",
                    l.ms / 1000.0,
                    crate::support::duration::fmt(limit.0)
                ),
                Fault::SessionsStuck {
                    database: db.clone(),
                    waiting_lock: s.waiting_lock,
                    idle_in_transaction: idle_tx,
                    oldest_idle_s: s.oldest_idle_in_transaction_ms.map(|ms| ms / 1000.0),
                },
            ));
        }
        // The worst finding is the root cause; the others stay in the evidence.
        findings.sort_by_key(|f| std::cmp::Reverse(f.0));
        let n = findings.len();
        if let Some((status, summary, fault)) = findings.into_iter().next() {
            o.status = status;
            o.summary = if n > 1 {
                format!("{summary} (and {} more finding(s))", n - 1)
            } else {
                summary
            };
            o.fault = Some(fault);
        }
        o
    }
}
