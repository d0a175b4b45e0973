//! The slow-history knob: a large `messages` table without the history
//! query's index. pg_stat_statements has the backend's statement, and its
//! plan is a sequential scan.

#![allow(dead_code)]

use chatops::sandbox::pg::PgOptions;
use chatops::sandbox::{DB_NAME, HISTORY_INDEX, Knobs, SLOW_HISTORY_ROWS, Sandbox};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio_postgres::SimpleQueryMessage;

// ---- helpers (copied per file: tests/common is being moved) ----

const CONVERSATION: &str = "8822dd87-d0c2-42be-93d2-1c0cb492e351";
const USER: &str = "00000000-0000-0000-0000-000000000000";
/// Guard for events the test waits for: long, so a slow machine only slows
/// the test; reaching it fails the test with what was awaited.
const GUARD: Duration = Duration::from_secs(60);

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_chatops"))
}

/// A throwaway cluster with the chat database (and its watchdog).
async fn sandbox(opts: PgOptions) -> Sandbox {
    Sandbox::start(&bin(), opts)
        .await
        .unwrap_or_else(|e| panic!("cannot start the sandbox: {e}"))
}

/// Starts the backend with these knobs; returns (base URL, pid, log path).
async fn start(sb: &mut Sandbox, knobs: Knobs) -> (String, u32, PathBuf) {
    let b = sb
        .start_backend(&knobs)
        .await
        .unwrap_or_else(|e| panic!("backend: {e}"));
    (b.base_url(), b.pid, b.log.clone())
}

fn messages_url(base: &str) -> String {
    format!("{base}/api/v1/chat/conversations/{CONVERSATION}/messages")
}

/// One send to the seeded conversation: (status, body).
async fn send(http: &reqwest::Client, base: &str, content: &str) -> (u16, String) {
    let r = http
        .post(messages_url(base))
        .json(&serde_json::json!({"userId": USER, "content": content}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("send to {base}: {e}"));
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

fn read_log(path: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
}

/// Waits until the log contains `needle`; fails with the log otherwise.
async fn wait_for_log(path: &Path, needle: &str) -> String {
    let t = Instant::now();
    loop {
        let log = read_log(path);
        if log.contains(needle) {
            return log;
        }
        assert!(
            t.elapsed() < GUARD,
            "the log {} never said {needle:?}:\n{log}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn has_history_index(pg: &tokio_postgres::Client) -> bool {
    pg.query_opt(
        "SELECT 1 FROM pg_indexes WHERE tablename = 'messages' AND indexname = $1",
        &[&HISTORY_INDEX],
    )
    .await
    .expect("pg_indexes")
    .is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_scans_a_large_table_without_its_index() {
    let mut sb = sandbox(PgOptions {
        stat_statements: true,
        ..PgOptions::default()
    })
    .await;
    assert!(sb.pg.has_stat_statements());
    let pg = sb.pg.connect(DB_NAME).await.expect("connect");
    // Healthy: the schema has the index.
    start(&mut sb, Knobs::default()).await;
    assert!(has_history_index(&pg).await);

    let (base, _, _) = start(
        &mut sb,
        Knobs {
            slow_history_rows: Some(SLOW_HISTORY_ROWS),
            ..Knobs::default()
        },
    )
    .await;
    assert!(!has_history_index(&pg).await, "{HISTORY_INDEX} was dropped");
    let rows: i64 = pg
        .query_one("SELECT count(*) FROM messages", &[])
        .await
        .expect("count")
        .get(0);
    assert!(rows >= SLOW_HISTORY_ROWS as i64, "{rows} rows");

    pg.batch_execute("SELECT pg_stat_statements_reset()")
        .await
        .expect("reset pg_stat_statements");
    let scans_before = seq_scans(&pg).await;
    let http = reqwest::Client::new();
    for _ in 0..5 {
        let r = http
            .get(format!("{}?userId={USER}&limit=5", messages_url(&base)))
            .send()
            .await
            .expect("history");
        let status = r.status().as_u16();
        let body = r.text().await.unwrap_or_default();
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\"success\":true"), "{body}");
    }

    // The backend's own statement, as pg_stat_statements recorded it.
    let stmt = pg
        .query_opt(
            "SELECT query, calls FROM pg_stat_statements
             WHERE query LIKE '%FROM messages m%' AND query LIKE '%ORDER BY%'
             ORDER BY calls DESC LIMIT 1",
            &[],
        )
        .await
        .expect("pg_stat_statements");
    let Some(stmt) = stmt else {
        panic!("pg_stat_statements has no history statement");
    };
    let (query, calls): (String, i64) = (stmt.get(0), stmt.get(1));
    assert!(calls >= 5, "{calls} calls of {query}");
    assert!(query.contains(r#"WHERE m."conversationId" = $"#), "{query}");

    // Each of those calls read the whole table (PostgreSQL's table
    // statistics reach the view within a few seconds).
    let t = Instant::now();
    loop {
        let (scans, tuples) = seq_scans(&pg).await;
        if scans - scans_before.0 >= 5 && tuples - scans_before.1 >= 5 * SLOW_HISTORY_ROWS as i64 {
            break;
        }
        assert!(
            t.elapsed() < GUARD,
            "messages saw {} sequential scans reading {} rows for 5 history requests",
            scans - scans_before.0,
            tuples - scans_before.1
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The plan of that statement's shape for the seeded conversation.
    let plan: Vec<String> = pg
        .simple_query(&format!(
            r#"EXPLAIN SELECT m.id, u.username FROM messages m JOIN users u ON u.id = m."senderId"
               WHERE m."conversationId" = '{CONVERSATION}'
               ORDER BY m."createdAt" DESC, m.id DESC LIMIT 6"#
        ))
        .await
        .expect("explain")
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .collect();
    let plan = plan.join("\n");
    assert!(plan.contains("Seq Scan on messages"), "{plan}");
    assert!(!plan.contains(HISTORY_INDEX), "{plan}");
}

/// Sequential scans of `messages` and the rows they read, so far.
async fn seq_scans(pg: &tokio_postgres::Client) -> (i64, i64) {
    let r = pg
        .query_one(
            "SELECT seq_scan, seq_tup_read FROM pg_stat_user_tables WHERE relname = 'messages'",
            &[],
        )
        .await
        .expect("pg_stat_user_tables");
    (r.get(0), r.get(1))
}
