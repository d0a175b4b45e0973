//! The slow-history knob: a large `messages` table without the history
//! query's index. pg_stat_statements has the backend's statement, and its
//! plan is a sequential scan.

use super::*;
use chatops::sandbox::{DB_NAME, HISTORY_INDEX, SLOW_HISTORY_ROWS};
use tokio_postgres::SimpleQueryMessage;

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
