//! One sample of pg_stat_activity: the seed's monitoring query (sessions by
//! application_name and state) plus the server's connection limits, lock
//! waits and the longest-running statement, in a single round trip. Used by
//! the `pg_activity` and `pool_headroom` checks, `watch-connections` and the
//! load test's sampler.

use serde::Serialize;
use std::time::Duration;
use tokio_postgres::Client;

use super::DbUrl;

/// Sessions of one application in one state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Group {
    pub application_name: String,
    pub state: String,
    pub count: u32,
}

/// The statement that has been running longest (state `active`).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Longest {
    pub pid: i32,
    pub application_name: String,
    pub state: String,
    /// Milliseconds since the statement started.
    pub ms: f64,
    /// The statement text, truncated by the server to 300 characters.
    pub query: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    pub max_connections: u32,
    pub superuser_reserved: u32,
    /// `reserved_connections` (PostgreSQL 16+; 0 before).
    pub reserved: u32,
    /// Client sessions on the whole server (every database), except ours.
    pub server_total: u32,
    /// The database sampled (None: every database).
    pub database: Option<String>,
    /// Sessions of that database by application and state, largest first.
    pub groups: Vec<Group>,
    /// Sessions waiting for a lock.
    pub waiting_lock: u32,
    pub longest: Option<Longest>,
    /// Age in milliseconds of the oldest transaction left idle (it holds its
    /// locks and its pool connection).
    pub oldest_idle_in_transaction_ms: Option<f64>,
}

impl Snapshot {
    /// Connections an application may open: max_connections minus the
    /// superuser and reserved slots.
    pub fn usable(&self) -> u32 {
        self.max_connections
            .saturating_sub(self.superuser_reserved)
            .saturating_sub(self.reserved)
    }

    /// Sessions of the sampled database.
    pub fn total(&self) -> u32 {
        self.groups.iter().map(|g| g.count).sum()
    }

    /// Sessions in `state` (e.g. `active`, `idle`, `idle in transaction`).
    pub fn in_state(&self, state: &str) -> u32 {
        self.groups
            .iter()
            .filter(|g| g.state == state)
            .map(|g| g.count)
            .sum()
    }

    /// The same figures without the sessions of `application_name`.
    pub fn without_app(&self, application_name: &str) -> Snapshot {
        let mut s = self.clone();
        let removed: u32 = s
            .groups
            .iter()
            .filter(|g| g.application_name == application_name)
            .map(|g| g.count)
            .sum();
        s.groups.retain(|g| g.application_name != application_name);
        s.server_total = s.server_total.saturating_sub(removed);
        if s.longest
            .as_ref()
            .is_some_and(|l| l.application_name == application_name)
        {
            s.longest = None;
        }
        s
    }
}

/// The sampling query; `$1` is the database name, or NULL for every one.
pub const QUERY: &str = "\
WITH a AS (
  SELECT pid, coalesce(application_name, '') AS app, coalesce(state, 'unknown') AS state,
         wait_event_type, query_start, xact_start, query, datname::text AS db
  FROM pg_stat_activity
  WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
), d AS (SELECT * FROM a WHERE $1::text IS NULL OR db = $1::text)
SELECT
  current_setting('max_connections')::int,
  current_setting('superuser_reserved_connections')::int,
  coalesce(nullif(current_setting('reserved_connections', true), ''), '0')::int,
  (SELECT count(*) FROM a)::int,
  (SELECT coalesce(json_agg(g), '[]'::json) FROM (
     SELECT app AS application_name, state, count(*)::int AS count
     FROM d GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2) g)::text,
  (SELECT count(*) FROM d WHERE wait_event_type = 'Lock')::int,
  (SELECT row_to_json(l) FROM (
     SELECT pid, app AS application_name, state,
            (extract(epoch FROM clock_timestamp() - query_start) * 1000)::float8 AS ms,
            left(query, 300) AS query
     FROM d WHERE state = 'active' AND query_start IS NOT NULL
     ORDER BY query_start LIMIT 1) l)::text,
  (SELECT (extract(epoch FROM clock_timestamp() - min(xact_start)) * 1000)::float8
     FROM d WHERE state LIKE 'idle in transaction%')";

/// Takes one sample on an open connection.
pub async fn sample(client: &Client, database: Option<&str>) -> Result<Snapshot, SampleError> {
    let row = client
        .query_one(QUERY, &[&database])
        .await
        .map_err(|e| SampleError::Query(super::error_chain(&e)))?;
    from_row(&row, database)
}

/// Takes one sample with [`QUERY`] already prepared on this connection (one
/// round trip instead of two; for repeated sampling).
pub async fn sample_prepared(
    client: &Client,
    stmt: &tokio_postgres::Statement,
    database: Option<&str>,
) -> Result<Snapshot, SampleError> {
    let row = client
        .query_one(stmt, &[&database])
        .await
        .map_err(|e| SampleError::Query(super::error_chain(&e)))?;
    from_row(&row, database)
}

/// A pg_stat_activity sample that could not be taken or read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SampleError {
    /// The query failed (the server's words, with their sources).
    #[error("{0}")]
    Query(String),
    /// The answer did not have the expected shape.
    #[error("unexpected answer: {0}")]
    Shape(String),
}

fn from_row(row: &tokio_postgres::Row, database: Option<&str>) -> Result<Snapshot, SampleError> {
    let shape = |e: &dyn std::fmt::Display| SampleError::Shape(e.to_string());
    let int = |i: usize| -> Result<u32, SampleError> {
        row.try_get::<_, i32>(i)
            .map(|v| v.max(0) as u32)
            .map_err(|e| shape(&e))
    };
    let groups: String = row.try_get(4).map_err(|e| shape(&e))?;
    let longest: Option<String> = row.try_get(6).map_err(|e| shape(&e))?;
    Ok(Snapshot {
        max_connections: int(0)?,
        superuser_reserved: int(1)?,
        reserved: int(2)?,
        server_total: int(3)?,
        database: database.map(str::to_string),
        groups: serde_json::from_str(&groups).map_err(|e| shape(&e))?,
        waiting_lock: int(5)?,
        longest: match longest {
            Some(l) => Some(serde_json::from_str(&l).map_err(|e| shape(&e))?),
            None => None,
        },
        oldest_idle_in_transaction_ms: row.try_get(7).map_err(|e| shape(&e))?,
    })
}

/// Opens one connection labelled `application_name`, within `timeout`. The
/// connection task ends when the client is dropped.
pub async fn connect(
    url: &DbUrl,
    application_name: &str,
    timeout: Duration,
) -> Result<Client, ConnectError> {
    let mut cfg = url.config(application_name);
    cfg.connect_timeout(timeout);
    let tls = super::tls::connector(url).map_err(ConnectError::Tls)?;
    match tokio::time::timeout(timeout, cfg.connect(tls)).await {
        Err(_) => Err(ConnectError::Timeout),
        Ok(Err(e)) => Err(ConnectError::Pg(e)),
        Ok(Ok((client, conn))) => {
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok(client)
        }
    }
}

#[derive(Debug)]
pub enum ConnectError {
    Timeout,
    Pg(tokio_postgres::Error),
    /// The TLS setup the URL asks for cannot be built (an unreadable sslrootcert).
    Tls(super::tls::TlsSetupError),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Timeout => write!(f, "timed out"),
            ConnectError::Pg(e) => write!(f, "{}", super::error_chain(e)),
            ConnectError::Tls(m) => write!(f, "{m}"),
        }
    }
}
