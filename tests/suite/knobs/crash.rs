//! The crash knob: after N chat requests the backend dies of an uncaught
//! exception, with Node's stack in its log and exit status 1.

use super::*;

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
