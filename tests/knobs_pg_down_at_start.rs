//! PostgreSQL down at start-up: the backend prints its banner, then
//! `Failed to connect to database` with the cause, and exits 1;
//! `start_backend` returns that as an error carrying the log.

#![allow(dead_code)]

use chatops::sandbox::pg::PgOptions;
use chatops::sandbox::{Knobs, Sandbox, SandboxError};
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
async fn the_backend_exits_at_start_up_and_the_error_carries_its_log() {
    let mut sb = sandbox(PgOptions::default()).await;
    sb.stop_database().await.expect("stop PostgreSQL");
    let err = match sb.start_backend(&Knobs::default()).await {
        Ok(b) => panic!("the backend started without its database (pid {})", b.pid),
        Err(e) => e,
    };
    let shown = err.to_string();
    let SandboxError::BackendExited {
        code, log, tail, ..
    } = err
    else {
        panic!("not a start-up exit: {shown}");
    };
    assert_eq!(code, Some(1), "{shown}");
    assert!(shown.contains(&log.display().to_string()), "{shown}");
    let text = read_log(&log);
    assert!(
        text.contains(tail.lines().last().unwrap_or("")),
        "the tail is the log's end"
    );
    let banner = text
        .find("Application is running on")
        .unwrap_or_else(|| panic!("no banner:\n{text}"));
    let failed = text
        .find("Failed to connect to database")
        .unwrap_or_else(|| panic!("no start-up failure:\n{text}"));
    assert!(banner < failed, "the banner comes first:\n{text}");
    let cause = format!(
        "Can't reach database server at `127.0.0.1:{}`",
        sb.pg.port()
    );
    assert!(tail.contains(&cause), "{tail}");
    assert!(sb.backend.is_none());
}
