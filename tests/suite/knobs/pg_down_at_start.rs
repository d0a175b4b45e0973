//! PostgreSQL down at start-up: the backend prints its banner, then
//! `Failed to connect to database` with the cause, and exits 1;
//! `start_backend` returns that as an error carrying the log.

use super::*;
use chatops::sandbox::SandboxError;

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
