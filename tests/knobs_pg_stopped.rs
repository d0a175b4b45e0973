//! PostgreSQL stopped mid-run: the backend answers the public code's 400
//! `Failed to send message: <cause>` and its log names the database server
//! (`prisma:error … Can't reach database server at …`); started again, the
//! sends succeed again.

#![allow(dead_code)]

use chatops::sandbox::pg::PgOptions;
use chatops::sandbox::{Knobs, Sandbox};
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
