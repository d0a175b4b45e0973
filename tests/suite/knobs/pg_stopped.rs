//! PostgreSQL stopped mid-run: the backend answers the public code's 400
//! `Failed to send message: <cause>` and its log names the database server
//! (`prisma:error … Can't reach database server at …`); started again, the
//! sends succeed again.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_fail_naming_the_database_while_it_is_stopped() {
    let mut sb = sandbox(PgOptions::default()).await;
    let (base, _, log) = start(&mut sb, Knobs::default()).await;
    let http = reqwest::Client::new();
    let (status, body) = send(&http, &base, "before").await;
    assert_eq!(status, 201, "{body}");

    sb.stop_database().await.expect("stop PostgreSQL");
    assert!(!sb.pg.is_running());
    let needle = format!(
        "Can't reach database server at `127.0.0.1:{}`",
        sb.pg.port()
    );
    let t = Instant::now();
    // The pool's open connections fail first (the server closed them); then
    // new ones are refused, which Prisma reports as P1001.
    loop {
        let (status, body) = send(&http, &base, "while down").await;
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("Failed to send message: "), "{body}");
        let text = read_log(&log);
        if body.contains(&needle) {
            assert!(
                text.lines()
                    .any(|l| l.starts_with("prisma:error") && l.contains(&needle)),
                "{text}"
            );
            break;
        }
        assert!(
            t.elapsed() < GUARD,
            "no answer named the database; last: {body}\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Health still answers 200 "ok", with the database unhealthy.
    let h: serde_json::Value = http
        .get(format!("{base}/api/v1/health"))
        .send()
        .await
        .expect("health")
        .json()
        .await
        .expect("health JSON");
    assert_eq!(h["status"], "ok", "{h}");
    assert_eq!(h["database"]["overall"], "unhealthy", "{h}");

    sb.start_database().await.expect("start PostgreSQL again");
    let t = Instant::now();
    loop {
        let (status, body) = send(&http, &base, "after").await;
        if status == 201 {
            break;
        }
        assert!(
            t.elapsed() < GUARD,
            "sends never recovered: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
