//! pg_stat_activity sampling (src/pg/activity.rs) against a real cluster
//! with known sessions.

use crate::common::{cluster, unique};
use chatops::pg::DbUrl;
use chatops::pg::activity::{connect, sample};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_counts_exactly_the_sessions_opened() {
    let pg = cluster();
    let db = unique("act");
    pg.create_database(&db).await.expect("database");
    let url = pg.url(&db);
    let u = DbUrl::parse(&url).expect("url");
    let t = Duration::from_secs(10);
    let idle = connect(&u, "app_idle", t).await.expect("idle");
    idle.simple_query("SELECT 1").await.expect("q");
    let idle2 = connect(&u, "app_idle", t).await.expect("idle2");
    idle2.simple_query("SELECT 1").await.expect("q");
    let in_tx = connect(&u, "app_tx", t).await.expect("tx");
    in_tx.simple_query("BEGIN; SELECT 1").await.expect("begin");
    let active = connect(&u, "app_sleep", t).await.expect("active");
    let sleeper = tokio::spawn(async move {
        let _ = active.simple_query("SELECT pg_sleep(3)").await;
    });
    let me = connect(&u, "chatops", t).await.expect("me");
    let mut snap = None;
    for _ in 0..100 {
        let s = sample(&me, Some(&db)).await.expect("sample");
        if s.in_state("active") == 1 {
            snap = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let s = snap.expect("the pg_sleep session shows as active");
    let count = |app: &str, state: &str| {
        s.groups
            .iter()
            .find(|g| g.application_name == app && g.state == state)
            .map(|g| g.count)
            .unwrap_or(0)
    };
    assert_eq!(count("app_idle", "idle"), 2, "{s:#?}");
    assert_eq!(count("app_tx", "idle in transaction"), 1, "{s:#?}");
    assert_eq!(count("app_sleep", "active"), 1, "{s:#?}");
    assert_eq!(s.total(), 4, "our own session is not counted: {s:#?}");
    let longest = s.longest.as_ref().expect("longest");
    assert!(longest.query.contains("pg_sleep"), "{longest:?}");
    assert_eq!(longest.application_name, "app_sleep");
    assert!(s.oldest_idle_in_transaction_ms.is_some_and(|ms| ms > 0.0));
    assert!(s.max_connections >= 10 && s.usable() < s.max_connections);
    assert!(s.server_total >= 4);
    let without = s.without_app("app_idle");
    assert_eq!(without.total(), 2);
    drop((idle, idle2, in_tx));
    let _ = sleeper.await;
}
