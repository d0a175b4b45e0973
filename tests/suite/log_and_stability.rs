//! `log_scan` and `stability` against real files and the real sandbox
//! backend.

use crate::common::*;
use chatops::sandbox::{Knobs, Sandbox};
use std::io::{Read, Write};
use std::time::Duration;

fn temp_log(name: &str, text: &str) -> std::path::PathBuf {
    let p = scratch_dir().join(format!("{}-{name}", unique("log")));
    std::fs::write(&p, text).expect("write");
    p
}

fn scan_playbook(path: &str, extra: &str) -> String {
    format!(
        r#"phases:
  - name: logs
    checks:
      - id: logs
        kind: log_scan
        path: '{path}'
{extra}"#
    )
}

#[test]
fn log_scan_finds_problems_and_names_known_causes() {
    let p = temp_log(
        "backend.log",
        "[Nest] 1 - LOG [NestApplication] Nest application successfully started\n\
         {\"level\":\"info\",\"msg\":\"health\",\"errors\":0}\n\
         [Nest] 1 - ERROR [ExceptionsHandler] Invalid `prisma.message.create()` invocation: The column `messageType` does not exist in the current database.\n\
         password=hunter2secret in a careless line with error\n",
    );
    let (code, report) = doctor_json(&scan_playbook(&p.to_string_lossy(), ""), &[]);
    assert_eq!(code, 1, "{report:#}");
    let c = check(&report, "logs");
    assert_eq!(c["captures"]["matches"], 2, "{c:#}");
    let cause = c["root_cause"].as_str().unwrap_or_default();
    assert!(cause.contains("schema drift"), "{cause}");
    let text = report.to_string();
    assert!(!text.contains("hunter2secret"), "redacted: {text}");
}

#[test]
fn log_scan_since_run_ignores_older_lines_and_handles_missing_files() {
    let p = temp_log("old.log", "ERROR an old failure before this run\n");
    let pb = scan_playbook(&p.to_string_lossy(), "        since: run\n");
    let (code, report) = doctor_json(&pb, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(check(&report, "logs")["captures"]["matches"], 0);

    let (code, report) = doctor_json(&scan_playbook("/nonexistent/backend.log", ""), &[]);
    assert_eq!(code, 1, "{report:#}");
    let c = check(&report, "logs");
    assert_eq!(c["status"], "fail");
    assert!(
        c["root_cause"]
            .as_str()
            .unwrap_or_default()
            .contains("does not exist")
    );
    let (code, report) = doctor_json(
        &scan_playbook("/nonexistent/backend.log", "        if_missing: warn\n"),
        &[],
    );
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(check(&report, "logs")["status"], "warn");

    let (code, _) = doctor_json(
        &scan_playbook(&p.to_string_lossy(), "        pattern: '(unclosed'\n"),
        &[],
    );
    assert_eq!(code, 1, "a bad regex is the check's error");
}

#[test]
fn log_scan_since_run_sees_what_the_run_caused() {
    // The drift knob makes the smoke test's send fail; the backend logs
    // the Prisma error during the run, and the log check names it.
    let rt = runtime();
    let mut sb = rt
        .block_on(Sandbox::on_cluster(&bin(), cluster(), &unique("logs")))
        .unwrap_or_else(|e| panic!("{e}"));
    let b = rt
        .block_on(sb.start_backend(&Knobs {
            drift: true,
            ..Knobs::default()
        }))
        .unwrap_or_else(|e| panic!("{e}"));
    let (url, log) = (b.base_url(), b.log.to_string_lossy().into_owned());
    let pb = format!(
        "target: {{ base_url: '{url}' }}
vars: {{ user_id: 00000000-0000-0000-0000-000000000000, conversation_id: 8822dd87-d0c2-42be-93d2-1c0cb492e351 }}
phases:
  - name: p
    checks:
      - id: send
        kind: http
        request:
          method: POST
          url: '{url}/api/v1/chat/conversations/${{vars.conversation_id}}/messages'
          json: {{ userId: '${{vars.user_id}}', content: drift }}
        expect: {{ status: 400 }}
      - id: logs
        kind: log_scan
        needs: [send]
        path: '{log}'
        since: run
"
    );
    let (code, report) = doctor_json(&pb, &[]);
    assert_eq!(code, 1, "{report:#}");
    let c = check(&report, "logs");
    assert_eq!(c["status"], "fail", "{c:#}");
    let cause = c["root_cause"].as_str().unwrap_or_default();
    assert!(cause.contains("schema drift"), "{cause}");
}

#[test]
fn stability_watches_the_backend_and_sees_it_die() {
    let rt = runtime();
    let mut sb = rt
        .block_on(Sandbox::on_cluster(&bin(), cluster(), &unique("stab")))
        .unwrap_or_else(|e| panic!("{e}"));
    let b = rt
        .block_on(sb.start_backend(&Knobs::default()))
        .unwrap_or_else(|e| panic!("{e}"));
    let (url, port, pid) = (b.base_url(), b.port, b.pid);
    let pb = format!(
        "phases:
  - name: p
    checks:
      - id: stable
        kind: stability
        process: {{ port: {port} }}
        health: '{url}/api/v1/health'
        duration: 1s
        every: 250ms
"
    );
    let (code, report) = doctor_json(&pb, &[]);
    assert_eq!(code, 0, "{report:#}");
    let c = check(&report, "stable");
    assert_eq!(c["captures"]["pid"], pid);
    assert_eq!(c["captures"]["samples"], 5);
    let ev = c["evidence"].to_string();
    assert!(ev.contains("5 of 5 answered 2xx"), "{ev}");
    assert!(ev.contains("RSS"), "{ev}");

    // Now kill the backend while it is watched: once the backend's request
    // log shows the longer run's first health probe (marked `?run=long`).
    let log = b.log.clone();
    let killer = std::thread::spawn(move || {
        wait_until(
            Duration::from_secs(60),
            "the stability check's first probe in the backend's log",
            || {
                std::fs::read_to_string(&log)
                    .ok()
                    .filter(|l| l.contains("/api/v1/health?run=long"))
            },
        );
        signal(pid, libc::SIGKILL);
    });
    let long = pb
        .replace("duration: 1s", "duration: 3s")
        .replace("/api/v1/health'", "/api/v1/health?run=long'");
    let (code, report) = doctor_json(&long, &[]);
    killer.join().expect("the killer thread");
    assert_eq!(code, 1, "{report:#}");
    let c = check(&report, "stable");
    assert_eq!(c["status"], "fail", "{c:#}");
    let cause = c["root_cause"].as_str().unwrap_or_default();
    assert!(cause.contains("exited"), "{cause}");
    assert!(cause.contains(&pid.to_string()), "{cause}");

    // A duration that does not fit the timeout is a clear error.
    let (code, report) = doctor_json(&pb.replace("duration: 1s", "duration: 30s"), &[]);
    assert_eq!(code, 1);
    let s = check(&report, "stable")["summary"].to_string();
    assert!(s.contains("timeout"), "{s}");
    drop(sb);
}

#[test]
fn log_lines_appended_during_a_run_are_seen() {
    let p = temp_log("grow.log", "fine\n");
    // The first check's request makes the server append to the log: the
    // line is written during the run, before the log check reads.
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let path = p.clone();
    let server = std::thread::spawn(move || {
        let (mut s, _) = l.accept().expect("the check's request");
        let mut buf = [0u8; 8192];
        let _ = s.read(&mut buf);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("open the log");
        writeln!(
            f,
            "prisma:error Timed out fetching a new connection from the connection pool (P2024)"
        )
        .expect("append");
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    });
    let pb = format!(
        r#"phases:
  - name: logs
    checks:
      - id: write
        kind: http
        request: {{url: "http://127.0.0.1:{port}/"}}
      - id: logs
        kind: log_scan
        needs: [write]
        path: '{}'
        since: run
"#,
        p.to_string_lossy()
    );
    let (code, report) = doctor_json(&pb, &[]);
    server.join().expect("the server thread");
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(check(&report, "write")["status"], "pass", "{report:#}");
    let c = check(&report, "logs");
    assert_eq!(c["status"], "fail", "{c:#}");
    assert!(
        c["root_cause"]
            .as_str()
            .unwrap_or_default()
            .contains("pool is exhausted")
    );
}

#[test]
fn stability_by_default_watches_the_run_itself() {
    let rt = runtime();
    let mut sb = rt
        .block_on(Sandbox::on_cluster(&bin(), cluster(), &unique("stabrun")))
        .unwrap_or_else(|e| panic!("{e}"));
    let b = rt
        .block_on(sb.start_backend(&Knobs::default()))
        .unwrap_or_else(|e| panic!("{e}"));
    let (url, port) = (b.base_url(), b.port);
    // A slow check beside it: a server that answers after 2 s.
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let slow = l.local_addr().expect("addr").port();
    let server = std::thread::spawn(move || {
        let (mut s, _) = l.accept().expect("the check's request");
        let mut buf = [0u8; 8192];
        let _ = s.read(&mut buf);
        std::thread::sleep(Duration::from_secs(2));
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    });
    let watch = format!(
        "      - id: stable
        kind: stability
        process: {{ port: {port} }}
        health: '{url}/api/v1/health'
        every: 250ms
"
    );
    let pb = format!(
        "phases:
  - name: p
    checks:
{watch}      - id: slow
        kind: http
        request: {{ url: 'http://127.0.0.1:{slow}/' }}
"
    );
    let (code, report) = doctor_json(&pb, &[]);
    server.join().expect("the server thread");
    assert_eq!(code, 0, "{report:#}");
    let c = check(&report, "stable");
    let took = c["duration_ms"].as_u64().unwrap_or(0);
    // It ends with the slow check, not after a fixed window.
    assert!((1_900..3_500).contains(&took), "{took} ms: {c:#}");
    assert!(c["captures"]["samples"].as_u64().unwrap_or(0) >= 8, "{c:#}");
    assert!(
        c["evidence"]
            .to_string()
            .contains("watched while the other checks ran"),
        "{c:#}"
    );
    let total = report["duration_ms"].as_u64().unwrap_or(u64::MAX);
    assert!(
        total < 3_500,
        "the run takes its slowest check's time: {total} ms"
    );

    // Alone, it watches its minimum of one second.
    let alone = format!("phases:\n  - name: p\n    checks:\n{watch}");
    let (code, report) = doctor_json(&alone, &[]);
    assert_eq!(code, 0, "{report:#}");
    let took = check(&report, "stable")["duration_ms"]
        .as_u64()
        .unwrap_or(0);
    assert!((1_000..2_000).contains(&took), "{took} ms: {report:#}");
    drop(sb);
}
