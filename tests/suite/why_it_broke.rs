//! Why it broke, from evidence: the backend's log as a witness, against the
//! real sandbox. A send that fails names its cause with the log line that
//! shows it; a backend that exited because PostgreSQL was down is one root
//! cause (PostgreSQL's), not two; a healthy run gets no invented cause.

use crate::common::*;
use chatops::sandbox::pg::PgOptions;
use chatops::sandbox::{Knobs, Sandbox};
use serde_json::Value;

/// `chatops doctor` with the shipped playbook, as JSON, reading `log` as
/// the backend's log (`None`: the backend_log variable is left as the
/// playbook has it).
fn doctor(base_url: &str, database_url: &str, log: Option<&str>) -> (i32, Value) {
    let mut args = vec![
        "doctor".to_string(),
        "--format".into(),
        "json".into(),
        "--base-url".into(),
        base_url.into(),
        "--database-url".into(),
        database_url.into(),
        "--var".into(),
        "stability_duration=0s".into(),
    ];
    if let Some(l) = log {
        args.extend(["--var".into(), format!("backend_log={l}")]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = chatops(&args, &[]);
    (r.code, r.json())
}

fn log_of(sb: &Sandbox) -> String {
    sb.backend
        .as_ref()
        .map(|b| b.log.to_string_lossy().into_owned())
        .expect("a backend was started")
}

fn evidence(c: &Value) -> Vec<String> {
    c["evidence"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_send_that_writes_a_missing_column_is_schema_drift_with_the_log_line() {
    let rt = runtime();
    let (sb, url) = running(
        &rt,
        Knobs {
            drift: true,
            ..Knobs::default()
        },
    );
    let log = log_of(&sb);
    let (code, report) = doctor(&url, &sb.db_url, Some(&log));
    assert_eq!(code, 1, "{report:#}");
    let send = check(&report, "send_message");
    assert_eq!(send["status"], "fail", "{send:#}");
    assert_eq!(send["cause"], "schema_drift", "{send:#}");
    assert_eq!(send["fault"]["cause"], "backend_error", "{send:#}");
    assert_eq!(send["fault"]["why"], "schema_drift", "{send:#}");
    let ev = evidence(send);
    // Which log was read, and why that file.
    assert!(
        ev.iter()
            .any(|e| e.starts_with(&format!("log: {log} (the playbook's backend_log)"))),
        "{ev:#?}"
    );
    // The log's own line naming the column, not only the body.
    assert!(
        ev.iter()
            .any(|e| e.starts_with("log: prisma:error") && e.contains("messageType")),
        "{ev:#?}"
    );
    assert!(
        send["fault"]["log"]
            .as_str()
            .is_some_and(|l| l.contains(&log)),
        "{send:#}"
    );
    let rc = send["root_cause"].as_str().unwrap_or_default();
    assert!(rc.contains("messageType"), "{rc}");
    let remedy = send["remedy"].as_str().unwrap_or_default();
    assert!(remedy.contains("prisma generate"), "{remedy}");
    // The schema check passed (the database is right; the client is stale),
    // so nothing else explains it: it is a root cause of its own.
    assert_eq!(check(&report, "schema")["status"], "pass");
    assert!(send["caused_by"].is_null(), "{send:#}");
}

#[test]
fn the_log_is_found_through_the_backend_process_when_none_is_given() {
    let rt = runtime();
    let (sb, url) = running(
        &rt,
        Knobs {
            drift: true,
            ..Knobs::default()
        },
    );
    let log = log_of(&sb);
    let pid = sb.backend.as_ref().map(|b| b.pid).unwrap_or_default();
    // An empty backend_log is "not given": the listening process's output
    // file is the log.
    let (_, report) = doctor(&url, &sb.db_url, Some(""));
    let send = check(&report, "send_message");
    assert_eq!(send["cause"], "schema_drift", "{send:#}");
    let ev = evidence(send);
    let read = ev
        .iter()
        .find(|e| e.starts_with(&format!("log: {log} (")))
        .unwrap_or_else(|| panic!("the process's log named: {ev:#?}"));
    assert!(read.contains(&format!("process {pid}")), "{read}");
    assert!(
        ev.iter()
            .any(|e| e.starts_with("log: prisma:error") && e.contains("messageType")),
        "{ev:#?}"
    );
}

#[test]
fn postgres_down_at_start_up_is_one_root_cause_and_the_exit_is_caused_by_it() {
    // A cluster of its own: this test stops it.
    let pg = start_cluster(PgOptions::default());
    let rt = runtime();
    let mut sb = rt
        .block_on(Sandbox::on_cluster(&bin(), pg.clone(), &unique("chat")))
        .unwrap_or_else(|e| panic!("sandbox: {e}"));
    rt.block_on(pg.stop())
        .unwrap_or_else(|e| panic!("stop PostgreSQL: {}", e.message));
    // The backend starts without its database: it exits at start-up, and
    // the sandbox says so with its log.
    let port = chatops::sandbox::free_port();
    let knobs = Knobs {
        port: Some(port),
        ..Knobs::default()
    };
    let log = match rt.block_on(sb.start_backend(&knobs)) {
        Err(chatops::sandbox::SandboxError::BackendExited { code, log, .. }) => {
            assert_eq!(code, Some(1));
            log.to_string_lossy().into_owned()
        }
        Err(e) => panic!("the backend should have exited at start-up: {e}"),
        Ok(b) => panic!(
            "the backend should have exited at start-up; it runs as pid {}",
            b.pid
        ),
    };
    let url = format!("http://127.0.0.1:{port}");
    let (code, report) = doctor(&url, &sb.db_url, Some(&log));
    assert_eq!(code, 1, "{report:#}");
    let pg_ready = check(&report, "postgres_ready");
    assert_eq!(pg_ready["status"], "fail", "{pg_ready:#}");
    assert_eq!(pg_ready["cause"], "database_down", "{pg_ready:#}");
    assert!(pg_ready["caused_by"].is_null());
    let b = check(&report, "backend_listening");
    assert_eq!(b["status"], "fail", "{b:#}");
    assert_eq!(b["fault"]["cause"], "backend_exited", "{b:#}");
    assert_eq!(b["fault"]["at_start_up"], true, "{b:#}");
    assert_eq!(b["cause"], "database_down", "{b:#}");
    assert_eq!(b["caused_by"], "postgres_ready", "{b:#}");
    let ev = evidence(b);
    assert!(
        ev.iter()
            .any(|e| e.starts_with("log: ") && e.contains("reach database server")),
        "the log line as evidence: {ev:#?}"
    );
    // One fault, one root cause: every other failure is explained or blocked.
    assert_eq!(
        report["summary"]["root_causes"], 1,
        "{:#}",
        report["summary"]
    );
    let roots: Vec<&str> = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["status"] == "fail" || c["status"] == "error")
        .filter(|c| c["caused_by"].is_null())
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(roots, ["postgres_ready"], "{report:#}");
    // The human report says it in words.
    let r = chatops(
        &[
            "doctor",
            "--base-url",
            &url,
            "--database-url",
            &sb.db_url,
            "--var",
            "stability_duration=0s",
            "--var",
            &format!("backend_log={log}"),
        ],
        &[],
    );
    assert!(
        r.stdout.contains("Caused by: `postgres_ready`"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("Also explains: backend_listening"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_healthy_sandbox_gets_no_invented_cause() {
    let rt = runtime();
    let (sb, url) = running(&rt, Knobs::default());
    let log = log_of(&sb);
    // No backend_log given: the log scan reads the file the backend
    // process writes its output to, and says so.
    let (code, report) = doctor(&url, &sb.db_url, None);
    assert_eq!(code, 0, "{report:#}");
    let scan = evidence(check(&report, "backend_log"));
    assert!(
        scan.first()
            .is_some_and(|e| e.starts_with(&format!("log: {log} (")) && e.contains("process")),
        "{scan:#?}"
    );
    for c in report["checks"].as_array().expect("checks") {
        assert_eq!(c["status"], "pass", "{c:#}");
        assert!(c["cause"].is_null(), "{c:#}");
        assert!(c["caused_by"].is_null(), "{c:#}");
    }
    assert_eq!(report["summary"]["root_causes"], 0);
}

/// A backend stand-in that answers every request with a bare 500 whose
/// cause is only in its log: it appends a line of another request (a
/// cause that would outrank its own) and its own request's line, both
/// with request ids, and echoes its id in `X-Request-ID`.
fn generic_500_server(log: std::path::PathBuf) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(8) {
            let Ok(mut s) = stream else { continue };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let lines = concat!(
                r#"{"level":50,"time":1,"reqId":"req-other-11111111","msg":"sorry, too many clients already"}"#,
                "\n",
                r#"{"level":50,"time":1,"reqId":"req-mine-22222222","msg":"Invalid `prisma.message.create()` invocation: Timed out fetching a new connection from the connection pool. (Current connection pool timeout: 10, connection limit: 2)"}"#,
                "\n",
            );
            if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(&log) {
                let _ = f.write_all(lines.as_bytes());
            }
            let body = r#"{"statusCode":500,"message":"Internal server error"}"#;
            let _ = write!(
                s,
                "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nX-Request-ID: req-mine-22222222\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[test]
fn a_generic_500_is_named_from_the_request_s_own_log_lines_written_while_it_ran() {
    let log = scratch_dir().join(format!("{}.log", unique("generic500")));
    // Written before the run: another cause, which must not be blamed.
    std::fs::write(
        &log,
        "prisma:error The column `messageType` does not exist in the current database.\n",
    )
    .expect("log");
    let port = generic_500_server(log.clone());
    let (code, report) = doctor_json(
        &format!(
            r#"name: generic 500
target: {{ base_url: 'http://127.0.0.1:{port}' }}
vars: {{ backend_log: '{}' }}
phases:
  - name: p
    checks:
      - id: send
        kind: http
        request: {{ method: POST, url: "${{target.base_url}}/api/v1/messages", json: {{ content: hi }} }}
        expect: {{ status: 201 }}
"#,
            log.display()
        ),
        &[],
    );
    assert_eq!(code, 1, "{report:#}");
    let send = check(&report, "send");
    assert_eq!(send["cause"], "pool_saturation", "{send:#}");
    assert_eq!(send["fault"]["cause"], "backend_error", "{send:#}");
    assert_eq!(send["fault"]["status"], 500, "{send:#}");
    assert_eq!(send["captures"]["request_id"], "req-mine-22222222");
    let ev = evidence(send);
    assert!(
        ev.iter()
            .any(|e| e.starts_with("log: ") && e.contains("req-mine-22222222")),
        "{ev:#?}"
    );
    assert!(
        !ev.iter()
            .any(|e| e.contains("messageType") || e.contains("too many clients")),
        "only the request's own lines, written while it ran: {ev:#?}"
    );
    let rc = send["root_cause"].as_str().unwrap_or_default();
    assert!(rc.contains("answered 500"), "{rc}");
}
