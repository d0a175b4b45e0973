//! The engine: dependency order, blocking by root cause, retries, timeouts,
//! the run's deadline, Ctrl-C with a partial report.

use crate::common::*;
use std::io::{Read, Write};
use std::sync::mpsc;
use std::time::Duration;

/// A TCP server that accepts connections and never answers. Each accepted
/// connection is reported on the channel with the number held open at once;
/// with `release_at`, all held connections are closed as soon as that many
/// are open together.
fn silent_server(release_at: Option<usize>) -> (u16, mpsc::Receiver<usize>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming().flatten() {
            held.push(s);
            let _ = tx.send(held.len());
            if release_at == Some(held.len()) {
                held.clear();
            }
        }
    });
    (port, rx)
}

/// An HTTP server whose first `failures` requests get a 503, the rest a 200.
fn flaky_server(failures: usize) -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for (n, mut s) in l.incoming().flatten().enumerate() {
            let mut buf = [0u8; 8192];
            let _ = s.read(&mut buf);
            let status = if n < failures {
                "503 Service Unavailable"
            } else {
                "200 OK"
            };
            let _ = s.write_all(
                format!("HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
                    .as_bytes(),
            );
        }
    });
    port
}

#[test]
fn blocked_by_root_cause_transitively() {
    let free = chatops::sandbox::free_port();
    let y = format!(
        r#"phases:
  - name: A
    checks:
      - {{id: root, kind: port, port: {free}, expect: listening}}
      - {{id: mid, kind: port, port: {free}, expect: free, needs: root}}
  - name: B
    checks:
      - {{id: leaf, kind: port, port: {free}, expect: free, needs: [mid]}}
      - {{id: independent, kind: port, port: {free}, expect: free}}
"#
    );
    let (code, r) = doctor_json(&y, &[]);
    assert_eq!(code, 1);
    assert_eq!(check(&r, "root")["status"], "fail");
    assert_eq!(check(&r, "mid")["blocked_by"], "root");
    assert_eq!(check(&r, "leaf")["status"], "blocked");
    assert_eq!(
        check(&r, "leaf")["blocked_by"],
        "root",
        "blocked by the root cause, not the intermediate"
    );
    assert_eq!(check(&r, "independent")["status"], "pass");
    assert_eq!(r["summary"]["blocked"], 2);
}

#[test]
fn retries_until_it_passes() {
    // The server fails the first two requests and passes the third.
    let port = flaky_server(2);
    let y = format!(
        r#"phases:
  - name: A
    checks:
      - id: up
        kind: http
        request: {{url: "http://127.0.0.1:{port}/"}}
        expect: {{status: 200}}
        retries: 20
        interval: 100ms
"#
    );
    let (code, r) = doctor_json(&y, &[]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(check(&r, "up")["attempts"], 3, "{r}");
}

#[test]
fn timeouts_are_classified() {
    let (port, _) = silent_server(None);
    let y = format!(
        r#"phases:
  - name: A
    checks:
      - {{id: slow, kind: http, timeout: 500ms, request: {{url: "http://127.0.0.1:{port}/"}}}}
      - {{id: pg, kind: pg_ready, port: {port}, host: 127.0.0.1, timeout: 500ms}}
"#
    );
    let (code, r) = doctor_json(&y, &[]);
    assert_eq!(code, 1);
    let slow = check(&r, "slow");
    assert!(
        slow["summary"].as_str().unwrap().contains("timed out"),
        "{slow}"
    );
    // The check waited out its own timeout (a lower bound: never flaky).
    assert!(slow["duration_ms"].as_u64().unwrap() >= 500, "{slow}");
    assert!(
        check(&r, "pg")["summary"]
            .as_str()
            .unwrap()
            .ends_with("no response")
    );
}

#[test]
fn deadline_stops_the_run() {
    // The check's own timeout is 30 s; the run's deadline of 700 ms ends it,
    // and the summary says so (a timeout would say "timed out").
    let (port, _) = silent_server(None);
    let y = format!(
        r#"settings: {{deadline: 700ms}}
phases:
  - name: A
    checks:
      - {{id: slow, kind: http, timeout: 30s, request: {{url: "http://127.0.0.1:{port}/"}}}}
      - {{id: after, kind: port, port: {port}, expect: listening, needs: [slow]}}
"#
    );
    let (code, r) = doctor_json(&y, &[]);
    assert_eq!(code, 1);
    assert!(
        check(&r, "slow")["summary"]
            .as_str()
            .unwrap()
            .contains("deadline"),
        "{r}"
    );
}

#[test]
fn ctrl_c_prints_the_partial_report_and_exits_130() {
    signal_prints_the_partial_report(libc::SIGINT);
}

/// systemd and Kubernetes stop a process with SIGTERM: doctor used to die
/// without a report (it only handled Ctrl-C).
#[test]
fn sigterm_prints_the_partial_report_and_exits_143() {
    signal_prints_the_partial_report(libc::SIGTERM);
}

fn signal_prints_the_partial_report(sig: i32) {
    let (port, accepted) = silent_server(None);
    let free = chatops::sandbox::free_port();
    // `slow` needs `quick`: once the silent server has its connection,
    // `quick` has passed and `slow` is in flight.
    let y = format!(
        r#"phases:
  - name: A
    checks:
      - {{id: quick, kind: port, port: {free}, expect: free}}
      - {{id: slow, kind: http, timeout: 30s, needs: [quick], request: {{url: "http://127.0.0.1:{port}/"}}}}
"#
    );
    let p = write_playbook(&y);
    let child = std::process::Command::new(bin())
        .args(["doctor", "--format", "json", "--playbook"])
        .arg(&p)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn chatops");
    accepted
        .recv_timeout(Duration::from_secs(60))
        .expect("the slow check never connected");
    signal_when_ready(child.id(), sig);
    // Well within the check's 30 s timeout: an ignored signal fails here.
    let out = wait_output(
        child,
        Duration::from_secs(20),
        "chatops doctor after the signal",
    );
    // The shell's convention: 128 + the signal's number (130 SIGINT, 143 SIGTERM).
    assert_eq!(
        out.status.code(),
        Some(128 + sig),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    assert_eq!(r["interrupted"], true);
    assert_eq!(check(&r, "quick")["status"], "pass");
    assert!(
        check(&r, "slow")["summary"]
            .as_str()
            .unwrap()
            .contains("interrupted")
    );
}

#[test]
fn concurrency_runs_independent_checks_together() {
    // Eight checks against a server that answers nobody but lets everyone go
    // once eight connections are open together: with a concurrency of 8 they
    // are; one at a time, the server would see one connection at a time.
    let (port, accepted) = silent_server(Some(8));
    let mut y = String::from(
        r#"settings: {concurrency: 8}
phases:
  - name: A
    checks:
"#,
    );
    for i in 0..8 {
        y.push_str(&format!(
            "      - {{id: c{i}, kind: http, timeout: 10s, request: {{url: \"http://127.0.0.1:{port}/\"}}}}\n"
        ));
    }
    let (_, r) = doctor_json(&y, &[]);
    assert_eq!(r["summary"]["fail"], 8);
    let most = accepted.try_iter().max().unwrap_or(0);
    assert_eq!(most, 8, "connections open at once");
}

#[test]
fn captures_flow_to_later_checks() {
    // The env check captures from chatops's own environment; a later check uses it.
    let port = chatops::sandbox::free_port();
    let y = r#"phases:
  - name: A
    checks:
      - {id: e, kind: env, vars: {CHATOPS_TEST_PORT: {exists: true}}}
      - {id: p, kind: port, port: "${checks.e.vars.CHATOPS_TEST_PORT}", expect: free}
"#;
    let pb = write_playbook(y);
    let r = chatops(
        &[
            "doctor",
            "--format",
            "json",
            "--playbook",
            &pb.to_string_lossy(),
        ],
        &[("CHATOPS_TEST_PORT", &port.to_string())],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    // Without the variable, the capture's source fails and its user is blocked.
    let r = chatops(
        &[
            "doctor",
            "--format",
            "json",
            "--playbook",
            &pb.to_string_lossy(),
        ],
        &[],
    );
    let j = r.json();
    assert_eq!(check(&j, "p")["status"], "blocked");
    assert_eq!(check(&j, "p")["blocked_by"], "e");
}
