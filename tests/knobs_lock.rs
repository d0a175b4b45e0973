//! The lock knob: the send holds its conversation's row lock in a
//! transaction; a concurrent send is seen waiting on a Lock in
//! pg_stat_activity, blocked by the holder.

#![allow(dead_code)]

use chatops::sandbox::pg::PgOptions;
use chatops::sandbox::{DB_NAME, Knobs, Sandbox};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_wait_on_the_row_lock() {
    let mut sb = sandbox(PgOptions::default()).await;
    let (base, _, _) = start(
        &mut sb,
        Knobs {
            lock_ms: Some(3000),
            ..Knobs::default()
        },
    )
    .await;
    let http = reqwest::Client::new();
    let mut tasks = Vec::new();
    for i in 0..3 {
        let (http, base) = (http.clone(), base.clone());
        tasks.push(tokio::spawn(async move {
            send(&http, &base, &format!("locked {i}")).await
        }));
    }
    let pg = sb.pg.connect(DB_NAME).await.expect("connect");
    let t = Instant::now();
    let (waiter_query, blocker_state, blocker_query) = loop {
        let rows = pg
            .query(
                "SELECT w.query, b.state, b.query
                 FROM pg_stat_activity w
                 JOIN pg_stat_activity b ON b.pid = ANY (pg_blocking_pids(w.pid))
                 WHERE w.datname = $1 AND w.wait_event_type = 'Lock'
                   AND b.state = 'idle in transaction'",
                &[&DB_NAME],
            )
            .await
            .expect("pg_stat_activity");
        if let Some(r) = rows.first() {
            break (
                r.get::<_, String>(0),
                r.get::<_, Option<String>>(1).unwrap_or_default(),
                r.get::<_, String>(2),
            );
        }
        assert!(
            t.elapsed() < GUARD,
            "no send was ever seen waiting on a Lock held by a session idle in transaction"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(waiter_query.contains("FOR UPDATE"), "{waiter_query}");
    assert!(waiter_query.contains("conversations"), "{waiter_query}");
    // The holder does its work between statements, lock held.
    assert_eq!(blocker_state, "idle in transaction", "{blocker_query}");
    for task in tasks {
        let (status, body) = task.await.expect("send task");
        assert_eq!(
            status, 201,
            "the sends complete once the lock is free: {body}"
        );
    }
    let sent: i64 = pg
        .query_one(
            "SELECT count(*) FROM messages WHERE content LIKE 'locked %'",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(sent, 3);
}
