//! Per-stage statement evidence: pg_stat_statements and pg_stat_user_tables
//! snapshots at a stage's start and end (on a session of their own), the
//! stage's worst statement by total time, and a read-only EXPLAIN of it
//! naming the sequential scan and the column an index would serve.

use crate::diagnose::load::SlowEvidence;
use crate::pg::DbUrl;
use crate::pg::statements::{self, Counters, TableCounters};
use tokio_postgres::Client;

/// Statements explained only from this mean time on, in milliseconds.
const EXPLAIN_FROM_MS: f64 = statements::SLOW_MEAN_MS;

pub struct StageDb {
    client: Client,
    version: i32,
    statements: bool,
    before: Vec<Counters>,
    tables_before: Vec<TableCounters>,
}

impl StageDb {
    /// A session for the snapshots, and a note when pg_stat_statements is
    /// missing (never created here).
    pub async fn open(url: &DbUrl) -> (Option<StageDb>, Option<String>) {
        let client = match super::sampler::session(url).await {
            Ok(c) => c,
            Err(e) => return (None, Some(format!("no statement evidence: {e}"))),
        };
        let version = statements::server_version(&client).await.unwrap_or(0);
        let has = statements::available(&client).await;
        let note = (!has).then(|| {
            "pg_stat_statements is not installed in this database (shared_preload_libraries and CREATE EXTENSION; chatops never creates it): no per-statement deltas, sequential scans from pg_stat_user_tables only".to_string()
        });
        (
            Some(StageDb {
                client,
                version,
                statements: has,
                before: Vec::new(),
                tables_before: Vec::new(),
            }),
            note,
        )
    }

    pub async fn begin(&mut self) {
        if self.statements {
            self.before = statements::snapshot(&self.client, self.version)
                .await
                .unwrap_or_default();
        }
        self.tables_before = statements::tables(&self.client).await.unwrap_or_default();
    }

    /// The stage's worst statement with its scan, when statements ran.
    pub async fn end(&mut self) -> Option<SlowEvidence> {
        let tables = statements::tables(&self.client).await.unwrap_or_default();
        let scans = statements::seq_scans(&self.tables_before, &tables);
        if !self.statements {
            return None;
        }
        let after = statements::snapshot(&self.client, self.version)
            .await
            .ok()?;
        let all = statements::deltas(&self.before, &after, usize::MAX);
        let total: f64 = all.iter().map(|d| d.total_ms).sum();
        let worst = all
            .into_iter()
            .find(|d| !d.query.to_ascii_lowercase().contains("pg_stat_"))?;
        let mut ev = SlowEvidence {
            share_pct: if total > 0.0 {
                (worst.total_ms / total * 100.0).round()
            } else {
                0.0
            },
            query: crate::diagnose::witness::evidence_line(&worst.query),
            calls: worst.calls,
            mean_ms: (worst.mean_ms * 100.0).round() / 100.0,
            total_ms: worst.total_ms.round(),
            rows: worst.rows,
            relation: None,
            column: None,
            seq_tup_read: None,
            explain: None,
        };
        // Slow on average, or the stage scanned a large table sequentially.
        if worst.mean_ms >= EXPLAIN_FROM_MS || !scans.is_empty() {
            let x = statements::explain(&self.client, &worst.query, self.version).await;
            match (x.seq_scans.first(), &x.skipped) {
                (Some(s), _) => {
                    ev.relation = Some(s.relation.clone());
                    ev.column = s.column.clone();
                    ev.explain = Some(format!(
                        "EXPLAIN ({}, not ANALYZE): Seq Scan on {}{}",
                        x.method.as_deref().unwrap_or("plain"),
                        s.relation,
                        s.filter
                            .as_deref()
                            .map(|f| format!(", Filter: {f}"))
                            .unwrap_or_default()
                    ));
                }
                (None, Some(why)) => ev.explain = Some(format!("EXPLAIN skipped: {why}")),
                (None, None) => {
                    ev.explain = Some("EXPLAIN shows no sequential scan".into());
                }
            }
        }
        let rel = ev
            .relation
            .clone()
            .or_else(|| scans.first().map(|s| s.relname.clone()));
        if let Some(r) = rel
            && let Some(s) = scans.iter().find(|s| s.relname == r)
        {
            ev.seq_tup_read = Some(s.seq_tup_read);
            ev.relation.get_or_insert(r);
        }
        self.before = after;
        Some(ev)
    }
}
