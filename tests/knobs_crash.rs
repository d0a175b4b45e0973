//! The crash knob: after N chat requests the backend dies of an uncaught
//! exception, with Node's stack in its log and exit status 1.

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
async fn the_backend_dies_after_n_requests_with_a_stack_in_its_log() {
    let mut sb = sandbox(PgOptions::default()).await;
    let (base, _, log) = start(
        &mut sb,
        Knobs {
            crash_after: Some(3),
            ..Knobs::default()
        },
    )
    .await;
    let http = reqwest::Client::new();
    // Health probes do not count.
    for _ in 0..5 {
        let r = http
            .get(format!("{base}/api/v1/health"))
            .send()
            .await
            .expect("health");
        assert_eq!(r.status().as_u16(), 200);
    }
    for i in 0..2 {
        let (status, body) = send(&http, &base, &format!("before the crash {i}")).await;
        assert_eq!(status, 201, "{body}");
    }
    {
        let b = sb.backend.as_mut().expect("backend");
        assert!(b.is_running(), "alive after 2 of 3 requests");
    }
    // The third request is answered (or cut off); then the process dies.
    let _ = http
        .post(messages_url(&base))
        .json(&serde_json::json!({"userId": USER, "content": "the last one"}))
        .send()
        .await;
    let b = sb.backend.as_mut().expect("backend");
    let Some(status) = b.wait_exit(GUARD).await else {
        panic!(
            "the backend still runs {} s after its third request:\n{}",
            GUARD.as_secs(),
            read_log(&log)
        );
    };
    assert_eq!(status.code(), Some(1), "{status}");
    let text = read_log(&log);
    let lines: Vec<&str> = text.lines().collect();
    let err = lines
        .iter()
        .position(|l| l.starts_with("Error: "))
        .unwrap_or_else(|| panic!("no `Error: …` line in the log:\n{text}"));
    assert!(
        lines[err + 1].starts_with("    at "),
        "a stack follows the error:\n{text}"
    );
    assert!(text.contains("Node.js v"), "{text}");
    assert!(
        http.get(format!("{base}/api/v1/health"))
            .send()
            .await
            .is_err(),
        "nothing listens any more"
    );
}
