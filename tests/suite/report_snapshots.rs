//! Snapshots of the four doctor report formats (human, markdown, json,
//! junit), rendered from one fixed [`Report`] built here: no I/O, no clock.
//! The expected outputs are in `tests/fixtures/snapshots/`. After an
//! intended change of a format, rewrite them with
//! `CHATOPS_UPDATE_SNAPSHOTS=1 cargo test --test suite report_snapshots`
//! and review the diff.

use chatops::report::{Format, Style, render};
use serde_json::json;
use std::path::PathBuf;

use chatops::engine::{CheckResult, Report, Status};

const UPDATE_ENV: &str = "CHATOPS_UPDATE_SNAPSHOTS";

/// A run of two phases with one check of each status: a pass with
/// captures, a warning, a failure with evidence, command, root cause and
/// remedy, a check blocked by it, and an error. Strings carry the
/// characters each format must escape (`&`, `<`, `>`, `|`, quotes).
fn fixed_report() -> Report {
    let check = |id: &str, phase: &str, kind: &str, status: Status, summary: &str| CheckResult {
        id: id.to_string(),
        phase: phase.to_string(),
        kind: kind.to_string(),
        title: id.replace('_', " "),
        status,
        summary: summary.to_string(),
        evidence: Vec::new(),
        command: None,
        root_cause: None,
        remedy: None,
        blocked_by: None,
        cause: None,
        caused_by: None,
        fault: None,
        attempts: 1,
        duration_ms: 12,
        captures: serde_json::Map::new(),
    };
    let mut ready = check(
        "pg_ready",
        "Database",
        "pg_ready",
        Status::Pass,
        "127.0.0.1:5432 - accepting connections",
    );
    ready.command = Some("pg_isready -h 127.0.0.1 -p 5432".to_string());
    ready
        .captures
        .insert("server_version".into(), json!("15.8"));
    ready.captures.insert("max_connections".into(), json!(100));
    let mut idle = check(
        "idle_sessions",
        "Database",
        "pg_activity",
        Status::Warn,
        "3 sessions idle in a transaction",
    );
    idle.evidence = vec!["oldest idle in transaction: 42 s".to_string()];
    idle.root_cause = Some("a transaction is left open between requests".to_string());
    idle.remedy =
        Some("end every transaction; set idle_in_transaction_session_timeout".to_string());
    idle.duration_ms = 30;
    // A root cause and a finding it explains (`caused_by`): one fault, one finding.
    let mut login = check(
        "database_login",
        "Database",
        "pg_connect",
        Status::Fail,
        "password authentication failed for user \"chat_app\"",
    );
    login.root_cause = Some("PostgreSQL refuses the login of chat_app".to_string());
    login.remedy = Some("fix the password in DATABASE_URL".to_string());
    login.fault = Some(chatops::diagnose::Fault::PgAuthFailed {
        user: "chat_app".to_string(),
        host: "127.0.0.1:5432".to_string(),
    });
    login.cause = Some(chatops::diagnose::cause::Cause::DatabaseDown);
    let mut up = check(
        "backend_up",
        "Backend <startup> & health",
        "port",
        Status::Fail,
        "nothing listens on 127.0.0.1:3001; its log: it exited at start-up (database_down)",
    );
    up.evidence = vec![
        "log: /tmp/backend.log (the playbook's backend_log): 9 line(s) at its end, last written 4 s ago".to_string(),
        "log: prisma:error Authentication failed against database server at `127.0.0.1`".to_string(),
    ];
    up.root_cause = Some("The chat backend is not running: it exited at start-up".to_string());
    up.remedy = Some("fix DATABASE_URL, then start the backend".to_string());
    up.cause = Some(chatops::diagnose::cause::Cause::DatabaseDown);
    up.caused_by = Some("database_login".to_string());
    let mut health = check(
        "health",
        "Backend <startup> & health",
        "http",
        Status::Fail,
        "GET /api/v1/health answered 503 | \"database\": \"mock\"",
    );
    health.evidence = vec![
        "status 503 Service Unavailable".to_string(),
        "body: {\"status\":\"degraded\",\"database\":{\"overall\":\"mock\"}}".to_string(),
    ];
    health.command = Some("curl -sS -i 'http://127.0.0.1:3001/api/v1/health'".to_string());
    health.root_cause = Some("the backend runs in mock mode (PRISMA_CLIENT_MODE=mock)".to_string());
    health.remedy = Some("unset PRISMA_CLIENT_MODE & restart: `npm run start:dev`".to_string());
    health.fault = Some(chatops::diagnose::Fault::HttpAssertion {
        url: "http://127.0.0.1:3001/api/v1/health".to_string(),
        path: "database.overall".to_string(),
        expected: "healthy".to_string(),
        actual: "\"mock\"".to_string(),
    });
    health.attempts = 3;
    health.duration_ms = 1504;
    let mut send = check(
        "send_message",
        "Backend <startup> & health",
        "http",
        Status::Blocked,
        "blocked by health",
    );
    send.blocked_by = Some("health".to_string());
    send.duration_ms = 0;
    let mut logs = check(
        "backend_log",
        "Backend <startup> & health",
        "log_scan",
        Status::Error,
        "invalid pattern `(unclosed`: unclosed group",
    );
    logs.duration_ms = 1;
    Report {
        playbook: "Snapshot & <formats>".to_string(),
        file: "playbooks/snapshot.yaml".to_string(),
        status: Status::Fail,
        interrupted: false,
        started_at: "2026-11-28T12:00:00Z".to_string(),
        duration_ms: 1561,
        target: [
            ("base_url".to_string(), "http://127.0.0.1:3001".to_string()),
            (
                "database_url".to_string(),
                "postgresql://postgres:***@127.0.0.1:5432/chat_backend_db".to_string(),
            ),
        ]
        .into_iter()
        .collect(),
        phases: vec![
            "Database".to_string(),
            "Backend <startup> & health".to_string(),
        ],
        checks: vec![ready, idle, login, up, health, send, logs],
    }
}

fn snapshot_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/snapshots")
        .join(name)
}

/// Compares `actual` with the snapshot file `name`, failing with the first
/// differing line and the whole output; with CHATOPS_UPDATE_SNAPSHOTS set,
/// rewrites the file instead.
fn assert_snapshot(name: &str, actual: &str) {
    let path = snapshot_path(name);
    if std::env::var_os(UPDATE_ENV).is_some() {
        std::fs::write(&path, actual)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "no snapshot {} ({e}); create it with {UPDATE_ENV}=1 and review it",
            path.display()
        )
    });
    if expected == actual {
        return;
    }
    let (exp, act): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let line = exp
        .iter()
        .zip(&act)
        .position(|(e, a)| e != a)
        .unwrap_or(exp.len().min(act.len()));
    panic!(
        "{name} differs from {} at line {}:\n  expected: {:?}\n  actual:   {:?}\n\
         (if the change is intended: {UPDATE_ENV}=1 cargo test --test suite report_snapshots)\n\
         --- whole output ---\n{actual}",
        path.display(),
        line + 1,
        exp.get(line).copied().unwrap_or("<end of file>"),
        act.get(line).copied().unwrap_or("<end of output>"),
    );
}

fn plain() -> Style {
    Style {
        color: false,
        verbose: false,
        quiet: false,
    }
}

#[test]
fn human() {
    assert_snapshot(
        "report.human.txt",
        &render(&fixed_report(), Format::Human, &plain()),
    );
}

#[test]
fn markdown() {
    assert_snapshot(
        "report.md",
        &render(&fixed_report(), Format::Markdown, &plain()),
    );
}

#[test]
fn json() {
    let out = render(&fixed_report(), Format::Json, &plain());
    serde_json::from_str::<serde_json::Value>(&out).expect("the JSON report parses");
    assert_snapshot("report.json", &out);
}

#[test]
fn junit() {
    assert_snapshot(
        "report.junit.xml",
        &render(&fixed_report(), Format::Junit, &plain()),
    );
}

#[test]
fn rendering_reads_nothing_but_the_report() {
    // Same report, same bytes: nothing from the clock or the environment.
    for format in [Format::Human, Format::Markdown, Format::Json, Format::Junit] {
        assert_eq!(
            render(&fixed_report(), format, &plain()),
            render(&fixed_report(), format, &plain()),
            "{format:?}"
        );
    }
}
