//! PostgreSQL evidence seen from real clusters: a blocking chain (one
//! session holding `LOCK TABLE … IN ACCESS EXCLUSIVE MODE` in an open
//! transaction, another waiting behind it), and pg_stat_statements deltas
//! with the EXPLAIN of the worst statement when the extension is loaded.

use crate::common::{cluster, runtime, start_cluster, unique};
use chatops::load::stage_db::StageDb;
use chatops::pg::{DbUrl, statements, waits};
use chatops::sandbox::pg::PgOptions;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

#[test]
fn a_blocking_chain_names_the_relation_the_blocker_and_its_statement() {
    let rt = runtime();
    rt.block_on(async {
        let pg = cluster();
        let db = unique("locks");
        pg.create_database(&db).await.expect("database");
        let holder = pg.connect(&db).await.expect("holder");
        holder
            .batch_execute("CREATE TABLE conversations (id int PRIMARY KEY); INSERT INTO conversations VALUES (1)")
            .await
            .expect("table");
        let holder_pid: i32 = holder
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .expect("pid")
            .get(0);
        holder
            .batch_execute("BEGIN; LOCK TABLE conversations IN ACCESS EXCLUSIVE MODE")
            .await
            .expect("lock");
        let waiter = pg.connect(&db).await.expect("waiter");
        let waiting = tokio::spawn(async move {
            waiter
                .query("UPDATE conversations SET id = id WHERE id = 1", &[])
                .await
                .map(|r| r.len())
        });
        // chatops's own sampling session (read only, statement timeout).
        let url = DbUrl::parse(&pg.url(&db)).expect("url");
        let sampler = chatops::load::sampler::session(&url).await.expect("session");
        let stmt = sampler.prepare(waits::QUERY).await.expect("prepare");
        let deadline = Instant::now() + Duration::from_secs(10);
        let w = loop {
            let w = waits::sample(&sampler, &stmt, &db).await.expect("sample");
            if !w.blocked.is_empty() || Instant::now() > deadline {
                break w;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(w.blocked.len(), 1, "{w:#?}");
        let b = &w.blocked[0];
        assert_eq!(b.relation.as_deref(), Some("conversations"), "{w:#?}");
        assert_eq!(b.blockers, vec![holder_pid]);
        assert!(b.query.starts_with("UPDATE conversations"), "{b:?}");
        assert_eq!(w.by_type.get("Lock"), Some(&1), "{w:#?}");
        let heads = w.heads();
        assert_eq!(heads.len(), 1, "{w:#?}");
        assert_eq!(heads[0].pid, holder_pid);
        assert_eq!(heads[0].state, "idle in transaction");
        assert!(heads[0].query.contains("LOCK TABLE conversations"), "{heads:?}");
        assert!(heads[0].xact_ms.is_some_and(|ms| ms > 0.0));
        assert!(w.pids.contains(&holder_pid));
        // As the load sampler records it.
        let l = chatops::load::sampler::lock_sample(&w).expect("lock sample");
        assert_eq!(l.relation.as_deref(), Some("conversations"));
        assert_eq!(l.blocker_pid, Some(holder_pid));
        // The sampling session cannot write, even by mistake.
        let e = sampler
            .batch_execute("CREATE TABLE nope (x int)")
            .await
            .expect_err("read only");
        let e = chatops::pg::error_chain(&e);
        assert!(e.contains("read-only"), "{e}");
        holder.batch_execute("ROLLBACK").await.expect("release");
        let done = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the waiter finishes once the lock is released");
        assert!(matches!(done, Ok(Ok(_))), "{done:?}");
        let w = waits::sample(&sampler, &stmt, &db).await.expect("sample");
        assert!(w.blocked.is_empty() && w.heads().is_empty(), "{w:#?}");
    });
}

/// A cluster with pg_stat_statements preloaded (its own, for this test).
fn statements_cluster() -> std::sync::Arc<chatops::sandbox::pg::PgCluster> {
    static PG: OnceLock<std::sync::Arc<chatops::sandbox::pg::PgCluster>> = OnceLock::new();
    PG.get_or_init(|| {
        start_cluster(PgOptions {
            extra_settings: vec![(
                "shared_preload_libraries".into(),
                "pg_stat_statements".into(),
            )],
            ..PgOptions::default()
        })
    })
    .clone()
}

#[test]
fn statement_deltas_find_the_scan_and_the_index_it_lacks() {
    let rt = runtime();
    rt.block_on(async {
        let pg = statements_cluster();
        let db = unique("slow");
        pg.create_database(&db).await.expect("database");
        let c = pg.connect(&db).await.expect("connect");
        // The test's own setup (chatops never creates the extension).
        c.batch_execute(
            "CREATE EXTENSION pg_stat_statements;
             CREATE TABLE messages (id serial PRIMARY KEY, conversation_id int NOT NULL, body text);
             INSERT INTO messages (conversation_id, body)
               SELECT g % 500, 'message ' || g FROM generate_series(1, 20000) g;
             ANALYZE messages;",
        )
        .await
        .expect("setup");
        let url = DbUrl::parse(&pg.url(&db)).expect("url");
        let (stage, note) = StageDb::open(&url).await;
        assert_eq!(note, None, "the extension is there");
        let mut stage = stage.expect("stage db");
        stage.begin().await;
        let q = c
            .prepare("SELECT id, body FROM messages WHERE conversation_id = $1")
            .await
            .expect("prepare");
        for i in 0..120 {
            c.query(&q, &[&(i % 500)]).await.expect("history");
        }
        // A backend flushes its table statistics at most once a second
        // when it goes idle: the next statement after a second does it.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        c.batch_execute("SELECT 1").await.expect("flush");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let slow = stage.end().await.expect("the stage's worst statement");
        assert_eq!(slow.calls, 120, "{slow:#?}");
        assert!(
            slow.query
                .contains("FROM messages WHERE conversation_id = $1"),
            "{slow:#?}"
        );
        assert_eq!(slow.relation.as_deref(), Some("messages"), "{slow:#?}");
        assert_eq!(slow.column.as_deref(), Some("conversation_id"), "{slow:#?}");
        assert!(
            slow.explain
                .as_deref()
                .is_some_and(|x| x.contains("Seq Scan on messages")),
            "{slow:#?}"
        );
        assert!(
            slow.seq_tup_read.is_some_and(|n| n >= 120 * 20_000 / 2),
            "{slow:#?}"
        );
        // The pure parts on the same rows.
        let version = statements::server_version(&c).await.expect("version");
        let x = statements::explain(&c, &slow.query, version).await;
        assert_eq!(x.skipped, None, "{x:?}");
        let expected = if version >= 160000 {
            "EXPLAIN (GENERIC_PLAN)"
        } else {
            "PREPARE + force_generic_plan"
        };
        assert_eq!(x.method.as_deref(), Some(expected));
        assert_eq!(x.seq_scans[0].relation, "messages");
        assert_eq!(x.seq_scans[0].column.as_deref(), Some("conversation_id"));
        // With the index, the plan has no sequential scan any more.
        c.batch_execute("CREATE INDEX ON messages (conversation_id); ANALYZE messages")
            .await
            .expect("index");
        let x = statements::explain(&c, &slow.query, version).await;
        assert!(x.seq_scans.is_empty(), "{x:?}");
        // Writes are never explained.
        let x = statements::explain(&c, "UPDATE messages SET body = $1", version).await;
        assert!(x.skipped.is_some_and(|s| s.contains("only SELECT")));
        // Nothing ran since: no worst statement.
        stage.begin().await;
        let again = stage.end().await;
        assert!(
            again
                .as_ref()
                .is_none_or(|s| !s.query.contains("conversation_id")),
            "{again:?}"
        );
    });
}

#[test]
fn without_the_extension_there_are_no_statement_deltas_and_the_note_says_why() {
    let rt = runtime();
    rt.block_on(async {
        let pg = cluster();
        let db = unique("nostat");
        pg.create_database(&db).await.expect("database");
        let url = DbUrl::parse(&pg.url(&db)).expect("url");
        let (stage, note) = StageDb::open(&url).await;
        assert!(
            note.as_deref()
                .is_some_and(|n| n.contains("never creates it")),
            "{note:?}"
        );
        let mut stage = stage.expect("stage db");
        stage.begin().await;
        assert_eq!(stage.end().await, None);
        let c = pg.connect(&db).await.expect("connect");
        assert!(!statements::available(&c).await);
    });
}
