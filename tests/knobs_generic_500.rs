//! The generic-500 knob: a database error (here schema drift) answers
//! NestJS's default `500 Internal server error`; the cause (P2022's text) is
//! only in the log, on the ExceptionsHandler line and Prisma's own line.

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

const P2022: &str = "The column `messages.messageType` does not exist in the current database.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_answers_a_generic_500_and_logs_the_cause() {
    let mut sb = sandbox(PgOptions::default()).await;
    let http = reqwest::Client::new();

    // The default stays the public code's: 400 with the cause in the body.
    let (base, _, _) = start(
        &mut sb,
        Knobs {
            drift: true,
            ..Knobs::default()
        },
    )
    .await;
    let (status, body) = send(&http, &base, "drift").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains(&format!("Failed to send message: {P2022}")),
        "{body}"
    );

    let (base, _, log) = start(
        &mut sb,
        Knobs {
            drift: true,
            generic_500: true,
            ..Knobs::default()
        },
    )
    .await;
    let (status, body) = send(&http, &base, "drift").await;
    assert_eq!(status, 500, "{body}");
    // NestJS's default filter, keys in its order.
    assert_eq!(
        body,
        r#"{"statusCode":500,"message":"Internal server error"}"#
    );
    assert!(
        !body.contains("messageType"),
        "the cause is not in the body"
    );
    let text = wait_for_log(&log, "[ExceptionsHandler]").await;
    let handler = text
        .lines()
        .find(|l| l.contains("[ExceptionsHandler]"))
        .unwrap_or_default();
    assert!(handler.contains(P2022), "{handler}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("prisma:error") && l.contains(P2022)),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("    at ")),
        "the handler logs the stack:\n{text}"
    );
}
