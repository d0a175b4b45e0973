//! PgBouncer beside pg_stat_activity while the load runs: when the
//! backend's DATABASE_URL leads through PgBouncer (or `--pgbouncer` names
//! its console), `SHOW POOLS` is sampled with each fast pg_stat_activity
//! sample and its maxima kept per second.

use crate::pg::DbUrl;
use crate::pg::pgbouncer::{self as pgb, Pool, Server};
use serde::Serialize;
use std::time::Duration;

/// One second of PgBouncer's pools (maxima over the fast samples), summed
/// over the pools of the watched database.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct BouncerSample {
    /// Clients linked to a server or idle.
    pub cl_active: u32,
    /// Clients waiting for a server connection.
    pub cl_waiting: u32,
    pub sv_active: u32,
    /// Server connections open.
    pub servers: u32,
    /// The oldest waiting client's wait, seconds.
    pub maxwait_s: f64,
    /// Client connections (active + waiting) at one moment.
    pub clients: u32,
}

impl BouncerSample {
    /// Keeps the larger of each figure.
    pub fn max(&mut self, o: &BouncerSample) {
        self.cl_active = self.cl_active.max(o.cl_active);
        self.cl_waiting = self.cl_waiting.max(o.cl_waiting);
        self.sv_active = self.sv_active.max(o.sv_active);
        self.servers = self.servers.max(o.servers);
        self.maxwait_s = self.maxwait_s.max(o.maxwait_s);
        self.clients = self.clients.max(o.clients);
    }

    /// The pools of `database` (all when None), summed.
    pub fn of(pools: &[Pool], database: Option<&str>) -> BouncerSample {
        let mut s = BouncerSample::default();
        for p in pools
            .iter()
            .filter(|p| database.is_none_or(|d| p.database == d))
        {
            s.cl_active += p.cl_active;
            s.cl_waiting += p.cl_waiting;
            s.sv_active += p.sv_active;
            s.servers += p.servers();
            s.maxwait_s = s.maxwait_s.max(p.maxwait_s);
        }
        s.clients = s.cl_active + s.cl_waiting;
        s
    }
}

/// A stage's PgBouncer figures.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct BouncerSummary {
    pub max_clients: u32,
    pub max_waiting: u32,
    pub max_maxwait_s: f64,
    pub max_servers: u32,
    pub max_sv_active: u32,
}

/// Summarizes the seconds that have PgBouncer figures.
pub fn summarize<'a>(it: impl Iterator<Item = &'a BouncerSample>) -> Option<BouncerSummary> {
    let mut out: Option<BouncerSummary> = None;
    for s in it {
        let o = out.get_or_insert_with(BouncerSummary::default);
        o.max_clients = o.max_clients.max(s.clients);
        o.max_waiting = o.max_waiting.max(s.cl_waiting);
        o.max_maxwait_s = o.max_maxwait_s.max(s.maxwait_s);
        o.max_servers = o.max_servers.max(s.servers);
        o.max_sv_active = o.max_sv_active.max(s.sv_active);
    }
    out
}

/// The console being watched.
pub struct Watch {
    client: tokio_postgres::Client,
    /// The pools counted (the backend's database), or all.
    pub database: Option<String>,
    /// Where it is and why it is watched.
    pub note: String,
    /// default_pool_size (or the database's pool_size).
    pub pool_size: Option<u32>,
    /// pool_mode of the watched database.
    pub pool_mode: Option<String>,
}

impl Watch {
    /// One SHOW POOLS within `limit`.
    pub async fn sample(&self, limit: Duration) -> Option<BouncerSample> {
        let pools = tokio::time::timeout(limit, pgb::pools(&self.client))
            .await
            .ok()?
            .ok()?;
        Some(BouncerSample::of(&pools, self.database.as_deref()))
    }
}

/// Finds the console to watch: `given` (`--pgbouncer`), else the backend's
/// DATABASE_URL when it leads to PgBouncer (its port is 6432, or it
/// answers as PgBouncer on database `pgbouncer`). Returns the watch, or why
/// there is none (None when PgBouncer is simply not in the path).
pub async fn open(
    given: Option<&str>,
    backend_url: Option<&DbUrl>,
) -> (Option<Watch>, Option<String>) {
    let t = Duration::from_secs(3);
    let (console, why) = match (given, backend_url) {
        (Some(g), _) => match DbUrl::parse(g) {
            Ok(u) => (u, "--pgbouncer".to_string()),
            Err(e) => return (None, Some(format!("--pgbouncer is invalid: {e}"))),
        },
        (None, Some(b)) => {
            let why = if b.port == pgb::DEFAULT_PORT {
                "the backend's DATABASE_URL: port 6432".to_string()
            } else if matches!(pgb::identify(b, t).await, Server::PgBouncer { .. }) {
                "the backend's DATABASE_URL: it answers as PgBouncer".to_string()
            } else {
                return (None, None);
            };
            (pgb::console_of(b), why)
        }
        (None, None) => return (None, None),
    };
    let at = format!("{}:{}", console.host, console.port);
    let client = match pgb::connect_console(&console, t).await {
        Ok(c) => c,
        Err(e) => {
            return (
                None,
                Some(format!(
                    "PgBouncer at {at} ({why}) not sampled: {e}; give a stats user's console URL with --pgbouncer"
                )),
            );
        }
    };
    let snap = pgb::snapshot(&client, t).await.ok();
    let database = backend_url.map(|b| b.database.clone());
    let pool_size = snap
        .as_ref()
        .map(|s| s.pool_size_of(database.as_deref().unwrap_or("")));
    let pool_mode = snap
        .as_ref()
        .map(|s| s.mode_of(database.as_deref().unwrap_or("")).to_string());
    let version = snap.map(|s| s.version).unwrap_or_default();
    let note = format!("{version} at {at} ({why})");
    (
        Some(Watch {
            client,
            database,
            note,
            pool_size,
            pool_mode,
        }),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_are_summed_for_the_database_and_summarized() {
        let pools = vec![
            Pool {
                database: "chat".into(),
                cl_active: 20,
                cl_waiting: 30,
                sv_active: 20,
                maxwait_s: 1.5,
                ..Pool::default()
            },
            Pool {
                database: "other".into(),
                cl_waiting: 9,
                ..Pool::default()
            },
        ];
        let a = BouncerSample::of(&pools, Some("chat"));
        assert_eq!((a.cl_waiting, a.servers), (30, 20));
        let mut b = BouncerSample::default();
        b.max(&a);
        let s = summarize([a, b].iter());
        assert_eq!(s.map(|s| (s.max_clients, s.max_waiting)), Some((50, 30)));
        assert_eq!(summarize(std::iter::empty()), None);
    }
}
