//! What the target database's sessions wait for: the wait-event breakdown
//! of active sessions (Lock, LWLock, IO, Client…; `CPU` when they wait for
//! nothing), the blocking chains (`pg_blocking_pids`, with the relation from
//! `pg_locks` and the blocker's statement and transaction age), and the
//! server pids of the database's sessions (for their CPU when local). One
//! read-only round trip; `pg_blocking_pids` runs only for sessions that wait
//! on a lock.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tokio_postgres::Client;

/// A session waiting for a lock, and who it waits behind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Blocked {
    pub pid: i32,
    /// The relation it waits on (its ungranted lock's, else the user table
    /// it already holds a lock on, as for a row lock behind an UPDATE).
    pub relation: Option<String>,
    /// `relation`, `tuple`, `transactionid`…
    pub locktype: Option<String>,
    pub query: String,
    /// Milliseconds its statement has been running (waiting).
    pub ms: f64,
    pub blockers: Vec<i32>,
}

/// A session others wait behind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Blocker {
    pub pid: i32,
    pub state: String,
    pub query: String,
    /// Milliseconds since its transaction began.
    pub xact_ms: Option<f64>,
    /// It waits for another session itself (not the head of its chain).
    pub waiting: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Waits {
    /// Active sessions by wait_event_type (`CPU` when none).
    pub by_type: BTreeMap<String, u32>,
    pub blocked: Vec<Blocked>,
    pub blockers: Vec<Blocker>,
    /// Server pids of the database's client sessions (ours excluded).
    pub pids: Vec<i32>,
}

impl Waits {
    /// The heads of the chains: blockers that wait for nobody (pganalyze's
    /// root cause), the longest transaction first.
    pub fn heads(&self) -> Vec<&Blocker> {
        let mut h: Vec<&Blocker> = self.blockers.iter().filter(|b| !b.waiting).collect();
        h.sort_by(|a, b| {
            b.xact_ms
                .unwrap_or(0.0)
                .total_cmp(&a.xact_ms.unwrap_or(0.0))
        });
        h
    }

    /// Sessions waiting on locks, LWLocks or buffer pins (pgwatch's "waiting").
    pub fn waiting(&self) -> u32 {
        ["Lock", "LWLock", "BufferPin"]
            .iter()
            .filter_map(|t| self.by_type.get(*t))
            .sum()
    }
}

/// `$1` is the database name.
pub const QUERY: &str = "\
WITH a AS (
  SELECT pid, state, wait_event_type, query, query_start, xact_start
  FROM pg_stat_activity
  WHERE datname = $1::text AND backend_type = 'client backend' AND pid <> pg_backend_pid()
), w AS (
  SELECT pid, query, query_start, pg_blocking_pids(pid) AS by FROM a WHERE wait_event_type = 'Lock'
), heads AS (SELECT DISTINCT unnest(by) AS pid FROM w)
SELECT
  (SELECT coalesce(json_object_agg(t, n), '{}'::json) FROM (
     SELECT coalesce(wait_event_type, 'CPU') AS t, count(*)::int AS n
     FROM a WHERE state = 'active' GROUP BY 1) x)::text,
  (SELECT coalesce(json_agg(b), '[]'::json) FROM (
     SELECT w.pid, left(w.query, 300) AS query,
            coalesce((extract(epoch FROM clock_timestamp() - w.query_start) * 1000)::float8, 0) AS ms,
            w.by AS blockers,
            (SELECT l.relation::regclass::text FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
              WHERE l.pid = w.pid AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                AND c.relkind IN ('r', 'p') AND c.relnamespace <> 'pg_catalog'::regnamespace
              ORDER BY l.granted LIMIT 1) AS relation,
            (SELECT l.locktype FROM pg_locks l WHERE l.pid = w.pid AND NOT l.granted LIMIT 1) AS locktype
     FROM w ORDER BY w.query_start) b)::text,
  (SELECT coalesce(json_agg(h), '[]'::json) FROM (
     SELECT s.pid, coalesce(s.state, 'unknown') AS state, left(s.query, 300) AS query,
            (extract(epoch FROM clock_timestamp() - s.xact_start) * 1000)::float8 AS xact_ms,
            s.pid IN (SELECT pid FROM w) AS waiting
     FROM pg_stat_activity s JOIN heads USING (pid)) h)::text,
  (SELECT coalesce(json_agg(pid), '[]'::json) FROM a)::text";

/// Takes one reading on an open connection (prepare [`QUERY`] once with
/// `prepared` for repeated readings).
pub async fn sample(
    client: &Client,
    prepared: &tokio_postgres::Statement,
    database: &str,
) -> Result<Waits, String> {
    let row = client
        .query_one(prepared, &[&database])
        .await
        .map_err(|e| super::error_chain(&e))?;
    let text = |i: usize| -> Result<String, String> { row.try_get(i).map_err(|e| e.to_string()) };
    from_json(&text(0)?, &text(1)?, &text(2)?, &text(3)?)
}

/// The reading from the query's four JSON columns.
pub fn from_json(
    by_type: &str,
    blocked: &str,
    blockers: &str,
    pids: &str,
) -> Result<Waits, String> {
    let e = |e: serde_json::Error| e.to_string();
    Ok(Waits {
        by_type: serde_json::from_str(by_type).map_err(e)?,
        blocked: serde_json::from_str(blocked).map_err(e)?,
        blockers: serde_json::from_str(blockers).map_err(e)?,
        pids: serde_json::from_str(pids).map_err(e)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_parse_and_the_head_is_the_blocker_that_waits_for_nobody() {
        let w = from_json(
            r#"{"Lock": 3, "CPU": 1, "LWLock": 1, "Client": 2}"#,
            r#"[{"pid": 11, "query": "UPDATE conversations SET x = 1", "ms": 1500.5, "blockers": [10], "relation": "conversations", "locktype": "transactionid"}]"#,
            r#"[{"pid": 10, "state": "idle in transaction", "query": "LOCK TABLE conversations", "xact_ms": 9000.0, "waiting": false},
                {"pid": 12, "state": "active", "query": "UPDATE", "xact_ms": 20000.0, "waiting": true}]"#,
            "[10, 11, 12]",
        )
        .expect("parses");
        assert_eq!(w.waiting(), 4);
        assert_eq!(w.blocked[0].relation.as_deref(), Some("conversations"));
        let heads = w.heads();
        assert_eq!(heads.len(), 1);
        assert_eq!(heads[0].pid, 10);
        assert_eq!(w.pids, vec![10, 11, 12]);
        assert!(from_json("{}", "[]", "[]", "[]").is_ok_and(|w| w.waiting() == 0));
        assert!(from_json("nope", "[]", "[]", "[]").is_err());
    }
}
