//! `pg_activity`: one snapshot of pg_stat_activity for a database, grouped
//! by application_name and state (the seed's monitoring query), judged
//! against thresholds on active sessions (the seed: warn above 40, critical
//! above 48), sessions waiting for locks, transactions left idle, and the
//! longest-running statement.
//!
//! [`pg_snapshot`] observes; [`judge`] holds the snapshot against the thresholds.

use super::util::{SnapshotError, pg_snapshot, worst_finding};
use super::{Check, Ctx, Observation, Status};
use crate::diagnose::Fault;
use crate::pg::activity::Snapshot;
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
        match pg_snapshot(&u, Some(&db), ctx.timeout).await {
            Ok(s) => judge(&p, &db, s).command(cmd),
            Err(SnapshotError::Login { message, fault }) => {
                Observation::fail(format!("cannot log in: {message}"), *fault).command(cmd)
            }
            Err(SnapshotError::Failed(e)) => {
                Observation::error(format!("sampling failed: {e}")).command(cmd)
            }
            Err(SnapshotError::TimedOut) => Observation::error("sampling timed out").command(cmd),
        }
    }
}

/// Judges a snapshot of `db`: active sessions against the warning and
/// critical thresholds, lock waits, idle transactions, the longest statement.
pub fn judge(p: &Params, db: &str, s: Snapshot) -> Observation {
    // Other chatops sessions (parallel checks, a watch) are not the backend's.
    let mut s = s.without_app(crate::support::chat_backend::APP_NAME);
    for app in &p.exclude_apps {
        s = s.without_app(app);
    }
    let active = s.in_state("active");
    let idle_tx = s.in_state("idle in transaction") + s.in_state("idle in transaction (aborted)");
    let mut o = Observation::pass(format!(
        "{} session(s) on `{db}`: {active} active, {} idle, {idle_tx} idle in transaction",
        s.total(),
        s.in_state("idle")
    ))
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
    let stuck = || Fault::SessionsStuck {
        database: db.to_string(),
        waiting_lock: s.waiting_lock,
        idle_in_transaction: idle_tx,
        oldest_idle_s: s.oldest_idle_in_transaction_ms.map(|ms| ms / 1000.0),
    };
    let mut findings: Vec<(Status, String, Fault)> = Vec::new();
    if active > p.warn_active {
        let critical = active > p.critical_active;
        let threshold = if critical {
            p.critical_active
        } else {
            p.warn_active
        };
        findings.push((
            if critical { Status::Fail } else { Status::Warn },
            format!(
                "{active} active session(s) on `{db}`, above the {} threshold {threshold}",
                if critical { "critical" } else { "warning" },
            ),
            Fault::ActivityAboveThreshold {
                database: db.to_string(),
                active,
                threshold,
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
            stuck(),
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
            stuck(),
        ));
    }
    // The worst finding is the root cause; the others stay in the evidence.
    worst_finding(o, findings, |n| format!("(and {n} more finding(s))"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::activity::{Group, Longest};

    fn params(v: serde_json::Value) -> Params {
        let mut v = v;
        v["url"] = "postgresql://chat@127.0.0.1/chat_db".into();
        serde_json::from_value(v).unwrap()
    }

    fn snapshot(groups: &[(&str, &str, u32)]) -> Snapshot {
        Snapshot {
            max_connections: 100,
            superuser_reserved: 3,
            reserved: 0,
            server_total: groups.iter().map(|g| g.2).sum(),
            database: Some("chat_db".into()),
            groups: groups
                .iter()
                .map(|(a, s, c)| Group {
                    application_name: a.to_string(),
                    state: s.to_string(),
                    count: *c,
                })
                .collect(),
            waiting_lock: 0,
            longest: None,
            oldest_idle_in_transaction_ms: None,
        }
    }

    #[test]
    fn a_quiet_database_passes_without_chatops_itself() {
        let o = judge(
            &params(serde_json::json!({})),
            "chat_db",
            snapshot(&[
                ("", "idle", 10),
                ("", "active", 2),
                ("chatops", "active", 1),
            ]),
        );
        assert_eq!(o.status, Status::Pass);
        assert_eq!(
            o.summary,
            "12 session(s) on `chat_db`: 2 active, 10 idle, 0 idle in transaction"
        );
        assert_eq!(
            o.evidence,
            [
                "server: 12 client session(s) of max_connections 100 (97 usable)",
                "(no application_name) / idle: 10",
                "(no application_name) / active: 2",
            ]
        );
        assert_eq!(o.captures["active"], serde_json::json!(2));
    }

    #[test]
    fn thresholds_and_stuck_sessions() {
        let p = params(serde_json::json!({"max_query_time": "1s"}));
        let o = judge(&p, "chat_db", snapshot(&[("", "active", 45)]));
        assert_eq!(o.status, Status::Warn);
        assert_eq!(
            o.summary,
            "45 active session(s) on `chat_db`, above the warning threshold 40"
        );
        let mut s = snapshot(&[("", "active", 49), ("", "idle in transaction", 2)]);
        s.waiting_lock = 3;
        s.longest = Some(Longest {
            pid: 7,
            application_name: "".into(),
            state: "active".into(),
            ms: 2500.0,
            query: "UPDATE conversations SET x = 1".into(),
        });
        let o = judge(&p, "chat_db", s);
        assert_eq!(o.status, Status::Fail);
        assert_eq!(
            o.summary,
            "49 active session(s) on `chat_db`, above the critical threshold 48 (and 2 more finding(s))"
        );
        assert!(matches!(
            o.fault,
            Some(Fault::ActivityAboveThreshold {
                critical: true,
                threshold: 48,
                ..
            })
        ));
        assert!(
            o.evidence
                .contains(&"3 session(s) waiting for a lock".to_string())
        );
        let mut s = snapshot(&[("", "idle in transaction", 1)]);
        s.oldest_idle_in_transaction_ms = Some(12_000.0);
        let o = judge(&p, "chat_db", s);
        assert_eq!(o.status, Status::Warn);
        assert_eq!(
            o.summary,
            "0 session(s) waiting for a lock, 1 idle in transaction on `chat_db`"
        );
        assert!(
            o.evidence
                .contains(&"oldest idle transaction: 12.0 s".to_string())
        );
    }
}
