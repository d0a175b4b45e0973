//! Slow statements and the scans behind them, read only: per-stage deltas of
//! `pg_stat_statements` (when the extension exists; chatops never creates
//! it) keyed by `queryid`, deltas of `pg_stat_user_tables`' sequential
//! scans, and an `EXPLAIN` (never ANALYZE: nothing is executed) of the worst
//! statement naming the relation scanned sequentially and the filter column
//! an index would serve.

use serde::Serialize;
use std::collections::BTreeMap;
use tokio_postgres::Client;

/// PgHero's slow statement: at least this many calls …
pub const SLOW_CALLS: i64 = 100;
/// … with at least this mean time, in milliseconds.
pub const SLOW_MEAN_MS: f64 = 20.0;
/// Tables smaller than this are not worth an index (PgHero's bound).
pub const LARGE_TABLE_ROWS: i64 = 10_000;

/// A statement's cumulative counters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Counters {
    pub queryid: i64,
    pub query: String,
    pub calls: i64,
    /// Execution (plus planning, when tracked) time in milliseconds.
    pub total_ms: f64,
    pub rows: i64,
}

/// What a statement did between two snapshots.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatementDelta {
    pub queryid: i64,
    pub query: String,
    pub calls: i64,
    pub total_ms: f64,
    pub mean_ms: f64,
    pub rows: i64,
}

impl StatementDelta {
    /// PgHero's slow query: calls ≥ 100 and mean ≥ 20 ms.
    pub fn is_slow(&self) -> bool {
        self.calls >= SLOW_CALLS && self.mean_ms >= SLOW_MEAN_MS
    }
}

/// Statements that ran between `before` and `after`, most total time first
/// (`top` of them). A statement first seen in `after` counts from zero; a
/// counter that went down (a reset) counts from zero as well.
pub fn deltas(before: &[Counters], after: &[Counters], top: usize) -> Vec<StatementDelta> {
    let prev: BTreeMap<i64, &Counters> = before.iter().map(|c| (c.queryid, c)).collect();
    let mut out: Vec<StatementDelta> = after
        .iter()
        .filter_map(|c| {
            let (calls, total_ms, rows) = match prev.get(&c.queryid) {
                Some(p) if c.calls >= p.calls => {
                    (c.calls - p.calls, c.total_ms - p.total_ms, c.rows - p.rows)
                }
                _ => (c.calls, c.total_ms, c.rows),
            };
            (calls > 0).then(|| StatementDelta {
                queryid: c.queryid,
                query: c.query.clone(),
                calls,
                total_ms: total_ms.max(0.0),
                mean_ms: total_ms.max(0.0) / calls as f64,
                rows: rows.max(0),
            })
        })
        .collect();
    out.sort_by(|a, b| b.total_ms.total_cmp(&a.total_ms));
    out.truncate(top);
    out
}

/// A table's scan counters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableCounters {
    pub relname: String,
    pub seq_scan: i64,
    pub seq_tup_read: i64,
    pub idx_scan: i64,
    pub n_live_tup: i64,
}

/// Sequential scans on a large table between two snapshots.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeqScanDelta {
    pub relname: String,
    pub seq_scan: i64,
    pub seq_tup_read: i64,
    pub idx_scan: i64,
    pub n_live_tup: i64,
}

/// Tables of at least [`LARGE_TABLE_ROWS`] rows scanned sequentially in
/// between, most rows read first.
pub fn seq_scans(before: &[TableCounters], after: &[TableCounters]) -> Vec<SeqScanDelta> {
    let prev: BTreeMap<&str, &TableCounters> =
        before.iter().map(|t| (t.relname.as_str(), t)).collect();
    let mut out: Vec<SeqScanDelta> = after
        .iter()
        .filter(|t| t.n_live_tup >= LARGE_TABLE_ROWS)
        .filter_map(|t| {
            let p = prev.get(t.relname.as_str());
            let d = |now: i64, f: fn(&TableCounters) -> i64| {
                (now - p.map(|p| f(p)).unwrap_or(0)).max(0)
            };
            let seq_scan = d(t.seq_scan, |p| p.seq_scan);
            (seq_scan > 0).then(|| SeqScanDelta {
                relname: t.relname.clone(),
                seq_scan,
                seq_tup_read: d(t.seq_tup_read, |p| p.seq_tup_read),
                idx_scan: d(t.idx_scan, |p| p.idx_scan),
                n_live_tup: t.n_live_tup,
            })
        })
        .collect();
    out.sort_by_key(|s| std::cmp::Reverse(s.seq_tup_read));
    out
}

/// Whether the connected database has the extension (never created here).
pub async fn available(client: &Client) -> bool {
    match client
        .query_opt(
            "SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'",
            &[],
        )
        .await
    {
        Ok(Some(_)) => client
            .query_opt("SELECT 1 FROM pg_stat_statements LIMIT 1", &[])
            .await
            .is_ok(),
        _ => false,
    }
}

/// The server's version number (`150004`).
pub async fn server_version(client: &Client) -> Option<i32> {
    let row = client
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .ok()?;
    row.try_get(0).ok()
}

/// The current counters of the connected database's statements.
pub async fn snapshot(client: &Client, version: i32) -> Result<Vec<Counters>, String> {
    let total = if version >= 130000 {
        "total_exec_time + total_plan_time"
    } else {
        "total_time"
    };
    let q = format!(
        "SELECT queryid, left(query, 500), calls, ({total})::float8, rows FROM pg_stat_statements \
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND queryid IS NOT NULL"
    );
    let rows = client
        .query(&q, &[])
        .await
        .map_err(|e| super::error_chain(&e))?;
    rows.iter()
        .map(|r| {
            Ok(Counters {
                queryid: r.try_get(0).map_err(|e| e.to_string())?,
                query: r.try_get(1).map_err(|e| e.to_string())?,
                calls: r.try_get(2).map_err(|e| e.to_string())?,
                total_ms: r.try_get(3).map_err(|e| e.to_string())?,
                rows: r.try_get(4).map_err(|e| e.to_string())?,
            })
        })
        .collect()
}

/// The current scan counters of the connected database's tables.
pub async fn tables(client: &Client) -> Result<Vec<TableCounters>, String> {
    let rows = client
        .query(
            "SELECT relname::text, coalesce(seq_scan, 0), coalesce(seq_tup_read, 0), \
             coalesce(idx_scan, 0), coalesce(n_live_tup, 0) FROM pg_stat_user_tables",
            &[],
        )
        .await
        .map_err(|e| super::error_chain(&e))?;
    rows.iter()
        .map(|r| {
            Ok(TableCounters {
                relname: r.try_get(0).map_err(|e| e.to_string())?,
                seq_scan: r.try_get(1).map_err(|e| e.to_string())?,
                seq_tup_read: r.try_get(2).map_err(|e| e.to_string())?,
                idx_scan: r.try_get(3).map_err(|e| e.to_string())?,
                n_live_tup: r.try_get(4).map_err(|e| e.to_string())?,
            })
        })
        .collect()
}

mod explain;
pub use explain::{Explained, SeqScan, explain, explain_plan, filter_column, parameters};
