//! The shipped pre-load-test playbook, end to end, against the real sandbox:
//! a throwaway PostgreSQL cluster and the reference backend as a process,
//! with each fault of the seed switched on in turn.

use crate::common::*;
use chatops::sandbox::pg::PgOptions;
use chatops::sandbox::{Knobs, Sandbox};
use serde_json::Value;

/// `chatops doctor` with the shipped (embedded) playbook, as JSON. The
/// stability watch is one sample here (its own tests watch longer).
fn doctor(base_url: &str, database_url: &str) -> (i32, Value) {
    doctor_log(base_url, database_url, None)
}

fn doctor_log(base_url: &str, database_url: &str, log: Option<&Sandbox>) -> (i32, Value) {
    let log_var = format!(
        "backend_log={}",
        log.and_then(|sb| sb.backend.as_ref())
            .map(|b| b.log.to_string_lossy().into_owned())
            .unwrap_or_else(|| "/nonexistent/backend.log".into())
    );
    let r = chatops(
        &[
            "doctor",
            "--format",
            "json",
            "--base-url",
            base_url,
            "--database-url",
            database_url,
            "--var",
            "stability_duration=0s",
            "--var",
            &log_var,
        ],
        &[],
    );
    (r.code, r.json())
}

fn status<'a>(report: &'a Value, id: &str) -> &'a str {
    check(report, id)["status"].as_str().unwrap_or("?")
}

fn root_cause(report: &Value, id: &str) -> String {
    check(report, id)["root_cause"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn blocked_by(report: &Value, id: &str) -> String {
    check(report, id)["blocked_by"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn healthy_sandbox_passes_the_whole_checklist() {
    let rt = runtime();
    let (sb, url) = running(&rt, Knobs::default());
    let (code, report) = doctor_log(&url, &sb.db_url, Some(&sb));
    assert_eq!(code, 0, "{report:#}");
    for c in report["checks"].as_array().expect("checks") {
        assert_eq!(c["status"], "pass", "{c:#}");
    }
    // The smoke test's captured id is what history returned first.
    let id = check(&report, "send_message")["captures"]["message_id"]
        .as_str()
        .expect("captured message id")
        .to_string();
    assert!(!id.is_empty(), "a message id");
    // And the message really is in PostgreSQL, not in a mock.
    let n: i64 = rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(&sb.db_url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(conn);
        client
            .query_one("SELECT count(*) FROM messages WHERE id = $1", &[&id])
            .await
            .expect("query")
            .get(0)
    });
    assert_eq!(n, 1);
}

#[test]
fn backend_not_running_is_one_finding_and_blocks_the_rest() {
    let rt = runtime();
    let sb = sandbox(&rt);
    let port = chatops::sandbox::free_port();
    let url = format!("http://127.0.0.1:{port}");
    let (code, report) = doctor(&url, &sb.db_url);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(status(&report, "postgres_ready"), "pass");
    assert_eq!(status(&report, "backend_listening"), "fail");
    let cause = root_cause(&report, "backend_listening");
    assert!(cause.contains("not running"), "{cause}");
    assert!(cause.contains(&port.to_string()), "{cause}");
    let remedy = check(&report, "backend_listening")["remedy"]
        .as_str()
        .unwrap_or_default();
    assert!(remedy.contains(&format!("PORT={port}")), "{remedy}");
    for id in [
        "health",
        "backend_env",
        "rate_limit_burst",
        "send_message",
        "fetch_history",
    ] {
        assert_eq!(status(&report, id), "blocked", "{id}");
        assert_eq!(blocked_by(&report, id), "backend_listening", "{id}");
    }
    // Exactly one failure in the summary: one cause, one finding.
    assert_eq!(report["summary"]["fail"], 1, "{:#}", report["summary"]);
}

#[test]
fn mock_mode_is_the_cause_not_the_health_symptom() {
    let rt = runtime();
    let (sb, url) = running(
        &rt,
        Knobs {
            mock: true,
            ..Knobs::default()
        },
    );
    let pid = sb.backend.as_ref().map(|b| b.pid).unwrap_or_default();
    let (code, report) = doctor(&url, &sb.db_url);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(status(&report, "backend_listening"), "pass");
    assert_eq!(status(&report, "backend_env"), "fail");
    let cause = root_cause(&report, "backend_env");
    assert!(cause.contains("mock"), "{cause}");
    assert!(
        cause.contains(&pid.to_string()),
        "names the process: {cause}"
    );
    assert_eq!(status(&report, "health"), "blocked");
    assert_eq!(blocked_by(&report, "health"), "backend_env");
    assert_eq!(blocked_by(&report, "send_message"), "backend_env");
    // The burst needs the smoke tests: blocked by the same one cause.
    assert_eq!(blocked_by(&report, "rate_limit_burst"), "backend_env");
}

#[test]
fn mock_health_is_caught_by_the_health_assertions_alone() {
    // Without the env check (say, a backend on another host), the health
    // endpoint's own body gives mock mode away: database.overall is not
    // "healthy" even though the status is 200 "ok".
    let rt = runtime();
    let (_sb, url) = running(
        &rt,
        Knobs {
            mock: true,
            ..Knobs::default()
        },
    );
    let (code, report) = crate::common::doctor_json(
        &format!(
            r#"name: health only
target: {{ base_url: '{url}' }}
phases:
  - name: p
    checks:
      - include: chatops:checks/health.yaml
        needs: []
        retries: 0
"#
        ),
        &[],
    );
    assert_eq!(code, 1, "{report:#}");
    let h = check(&report, "health");
    assert_eq!(h["status"], "fail", "{h:#}");
    let text = h.to_string();
    assert!(text.contains("database.overall"), "{text}");
}

#[test]
fn missing_database_url_is_silent_mock_mode() {
    let rt = runtime();
    let (sb, url) = running(
        &rt,
        Knobs {
            no_database_url: true,
            ..Knobs::default()
        },
    );
    let (code, report) = doctor(&url, &sb.db_url);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(status(&report, "backend_env"), "fail");
    let text = check(&report, "backend_env").to_string();
    assert!(text.contains("DATABASE_URL"), "{text}");
    assert!(text.contains("PRISMA_CLIENT_MODE"), "{text}");
}

#[test]
fn rate_limiters_on_is_found_from_the_answers_and_explained_by_the_environment() {
    let rt = runtime();
    let (sb, url) = running(
        &rt,
        Knobs {
            rate_limit: true,
            ..Knobs::default()
        },
    );
    let (code, report) = doctor(&url, &sb.db_url);
    assert_eq!(code, 1, "{report:#}");
    // The probe's headers show apiLimiter's budget (100 per 15 minutes,
    // partly spent) cannot admit 250 requests: one finding, no burst sent.
    assert_eq!(status(&report, "rate_limit_burst"), "fail");
    let cause = root_cause(&report, "rate_limit_burst");
    assert!(cause.contains("apiLimiter"), "{cause}");
    assert!(
        cause.contains("DISABLE_RATE_LIMIT is not set in process"),
        "{cause}"
    );
    let summary = check(&report, "rate_limit_burst")["summary"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(summary.contains("it was not sent"), "{summary}");
    assert_eq!(report["summary"]["fail"], 1, "{:#}", report["summary"]);
    // Everything else still passes: the smoke tests send two requests.
    for id in ["health", "backend_env", "send_message", "fetch_history"] {
        assert_eq!(status(&report, id), "pass", "{id}: {report:#}");
    }
}

#[test]
fn backend_on_another_database_than_the_target_is_a_finding() {
    let rt = runtime();
    let (_sb, url) = running(&rt, Knobs::default());
    // chatops is told the target database is a different one than the
    // backend's DATABASE_URL names.
    let other = rt
        .block_on(cluster().setup_chat_db(&unique("other")))
        .expect("other db");
    let (code, report) = doctor(&url, &other);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(status(&report, "backend_env"), "fail");
    let text = check(&report, "backend_env").to_string();
    assert!(text.contains("database"), "{text}");
    assert!(!text.contains("postgres:postgres@"), "redacted: {text}");
}

#[test]
fn schema_drift_fails_the_send_smoke_test_as_a_named_finding() {
    let rt = runtime();
    let (sb, url) = running(
        &rt,
        Knobs {
            drift: true,
            ..Knobs::default()
        },
    );
    let (code, report) = doctor(&url, &sb.db_url);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(status(&report, "health"), "pass");
    let send = check(&report, "send_message");
    assert_eq!(send["status"], "fail", "{send:#}");
    let cause = root_cause(&report, "send_message");
    assert!(cause.contains("schema drift"), "{cause}");
    assert!(cause.contains("messageType"), "{cause}");
    let remedy = send["remedy"].as_str().unwrap_or_default();
    assert!(remedy.contains("prisma generate"), "{remedy}");
    assert_eq!(blocked_by(&report, "fetch_history"), "send_message");
}

#[test]
fn stopped_postgres_blocks_everything_that_needs_it() {
    let rt = runtime();
    // Its own cluster: this test stops it.
    let pg = start_cluster(PgOptions::default());
    let mut sb = rt
        .block_on(Sandbox::on_cluster(&bin(), pg.clone(), "chat_backend_db"))
        .unwrap_or_else(|e| panic!("sandbox: {e}"));
    let url = start(&rt, &mut sb, Knobs::default());
    rt.block_on(pg.stop()).expect("stop cluster");
    let (code, report) = doctor(&url, &sb.db_url);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(status(&report, "postgres_ready"), "fail");
    let summary = check(&report, "postgres_ready")["summary"]
        .as_str()
        .unwrap_or_default();
    assert!(summary.contains("no response"), "{summary}");
    assert_eq!(blocked_by(&report, "database_login"), "postgres_ready");
    assert_eq!(blocked_by(&report, "health"), "postgres_ready");
    assert_eq!(report["summary"]["fail"], 1, "{:#}", report["summary"]);
}

#[test]
fn markdown_report_of_a_failing_run_reads_like_the_seed() {
    let rt = runtime();
    let sb = sandbox(&rt);
    let port = chatops::sandbox::free_port();
    let url = format!("http://127.0.0.1:{port}");
    let r = chatops(
        &[
            "doctor",
            "--format",
            "markdown",
            "--base-url",
            &url,
            "--database-url",
            &sb.db_url,
        ],
        &[],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stdout.contains("Root cause"), "{}", r.stdout);
    assert!(r.stdout.contains("not running"), "{}", r.stdout);
    assert!(!r.stdout.contains("\u{1b}["), "no colour codes in markdown");
}

#[test]
fn another_program_on_the_backend_port_is_named() {
    let rt = runtime();
    let sb = sandbox(&rt);
    // This test process squats on the port, as an old instance would.
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = squatter.local_addr().expect("addr").port();
    let url = format!("http://127.0.0.1:{port}");
    let (code, report) = doctor(&url, &sb.db_url);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(status(&report, "backend_listening"), "fail");
    let cause = root_cause(&report, "backend_listening");
    assert!(
        cause.contains(&format!("pid {}", std::process::id())),
        "{cause}"
    );
    assert!(cause.contains("EADDRINUSE"), "{cause}");
    let remedy = check(&report, "backend_listening")["remedy"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        remedy.contains(&format!("kill {}", std::process::id())),
        "{remedy}"
    );
    assert_eq!(blocked_by(&report, "health"), "backend_listening");
    assert_eq!(report["summary"]["fail"], 1, "{:#}", report["summary"]);
    drop(squatter);
}

#[test]
fn pool_of_two_for_120_users_is_found_before_any_load() {
    let rt = runtime();
    let (sb, url) = running(
        &rt,
        Knobs {
            connection_limit: Some(2),
            pool_timeout: Some(2),
            ..Knobs::default()
        },
    );
    let (code, report) = doctor(&url, &sb.db_url);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(status(&report, "pool_headroom"), "fail");
    let cause = root_cause(&report, "pool_headroom");
    assert!(cause.contains("too small"), "{cause}");
    assert!(
        cause.contains("connection_limit"),
        "names the source: {cause}"
    );
    let remedy = check(&report, "pool_headroom")["remedy"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(remedy.contains("connection_limit=50"), "{remedy}");
    // The burst would only repeat it as P2024 errors: blocked.
    assert_eq!(blocked_by(&report, "rate_limit_burst"), "pool_headroom");
    assert_eq!(report["summary"]["fail"], 1, "{:#}", report["summary"]);
}

#[test]
fn pool_times_replicas_above_max_connections_is_found() {
    let rt = runtime();
    let (sb, url) = running(&rt, Knobs::default());
    let r = chatops(
        &[
            "doctor",
            "--format",
            "json",
            "--base-url",
            &url,
            "--database-url",
            &sb.db_url,
            "--var",
            "stability_duration=0s",
            "--var",
            "replicas=3",
        ],
        &[],
    );
    let report = r.json();
    assert_eq!(r.code, 1, "{report:#}");
    assert_eq!(status(&report, "pool_headroom"), "fail");
    let c = check(&report, "pool_headroom");
    let text = format!("{} {}", c["root_cause"], c["remedy"]);
    assert!(text.contains("150"), "50 × 3 = 150: {text}");
    assert!(text.contains("PgBouncer"), "{text}");
    assert_eq!(report["summary"]["fail"], 1, "{:#}", report["summary"]);
}
