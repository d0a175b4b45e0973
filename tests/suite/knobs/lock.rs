//! The lock knob: the send holds its conversation's row lock in a
//! transaction; a concurrent send is seen waiting on a Lock in
//! pg_stat_activity, blocked by the holder.

use super::*;
use chatops::sandbox::{DB_NAME, Knobs};

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
