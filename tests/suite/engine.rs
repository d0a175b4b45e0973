//! The engine: dependency order, blocking by root cause, retries, timeouts,
//! the run's deadline, Ctrl-C with a partial report.

use crate::common::*;
use std::io::Read;
use std::time::{Duration, Instant};

/// A TCP server that accepts connections and never answers.
fn silent_server() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming().flatten() {
            held.push(s);
        }
    });
    port
}

#[test]
fn blocked_by_root_cause_transitively() {
    let free = chatops::sandbox::free_port();
    let y = format!(
        "phases:\n  - name: A\n    checks:\n      - {{id: root, kind: port, port: {free}, expect: listening}}\n      - {{id: mid, kind: port, port: {free}, expect: free, needs: root}}\n  - name: B\n    checks:\n      - {{id: leaf, kind: port, port: {free}, expect: free, needs: [mid]}}\n      - {{id: independent, kind: port, port: {free}, expect: free}}\n"
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
    let port = chatops::sandbox::free_port();
    let y = format!(
        "phases:\n  - name: A\n    checks:\n      - {{id: up, kind: port, port: {port}, expect: listening, retries: 20, interval: 100ms}}\n"
    );
    let opener = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        let l = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        std::thread::sleep(Duration::from_secs(3));
        drop(l);
    });
    let (code, r) = doctor_json(&y, &[]);
    assert_eq!(code, 0, "{r}");
    let attempts = check(&r, "up")["attempts"].as_u64().unwrap();
    assert!(attempts > 1, "{attempts}");
    opener.join().unwrap();
}

#[test]
fn timeouts_are_classified_and_bounded() {
    let port = silent_server();
    let y = format!(
        "phases:\n  - name: A\n    checks:\n      - {{id: slow, kind: http, timeout: 500ms, request: {{url: \"http://127.0.0.1:{port}/\"}}}}\n      - {{id: pg, kind: pg_ready, port: {port}, host: 127.0.0.1, timeout: 500ms}}\n"
    );
    let t = Instant::now();
    let (code, r) = doctor_json(&y, &[]);
    assert_eq!(code, 1);
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    let slow = check(&r, "slow");
    assert!(
        slow["summary"].as_str().unwrap().contains("timed out"),
        "{slow}"
    );
    assert!(
        check(&r, "pg")["summary"]
            .as_str()
            .unwrap()
            .ends_with("no response")
    );
}

#[test]
fn deadline_stops_the_run() {
    let port = silent_server();
    let y = format!(
        "settings: {{deadline: 700ms}}\nphases:\n  - name: A\n    checks:\n      - {{id: slow, kind: http, timeout: 30s, request: {{url: \"http://127.0.0.1:{port}/\"}}}}\n      - {{id: after, kind: port, port: {port}, expect: listening, needs: [slow]}}\n"
    );
    let t = Instant::now();
    let (code, r) = doctor_json(&y, &[]);
    assert!(t.elapsed() < Duration::from_secs(5));
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
    let port = silent_server();
    let free = chatops::sandbox::free_port();
    let y = format!(
        "phases:\n  - name: A\n    checks:\n      - {{id: quick, kind: port, port: {free}, expect: free}}\n      - {{id: slow, kind: http, timeout: 30s, request: {{url: \"http://127.0.0.1:{port}/\"}}}}\n"
    );
    let p = write_playbook(&y);
    let mut child = std::process::Command::new(bin())
        .args(["doctor", "--format", "json", "--playbook"])
        .arg(&p)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let t = Instant::now();
    let status = child.wait().unwrap();
    assert!(t.elapsed() < Duration::from_secs(3));
    assert_eq!(status.code(), Some(130));
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
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
    // Eight checks each waiting 400 ms for a silent server: run together they take ~0.4 s, not 3.2 s.
    let port = silent_server();
    let mut y = String::from("settings: {concurrency: 8}\nphases:\n  - name: A\n    checks:\n");
    for i in 0..8 {
        y.push_str(&format!("      - {{id: c{i}, kind: http, timeout: 400ms, request: {{url: \"http://127.0.0.1:{port}/\"}}}}\n"));
    }
    let t = Instant::now();
    let (_, r) = doctor_json(&y, &[]);
    assert!(
        t.elapsed() < Duration::from_millis(2500),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(r["summary"]["fail"], 8);
}

#[test]
fn captures_flow_to_later_checks() {
    // The env check captures from chatops's own environment; a later check uses it.
    let port = chatops::sandbox::free_port();
    let y = "phases:\n  - name: A\n    checks:\n      - {id: e, kind: env, vars: {CHATOPS_TEST_PORT: {exists: true}}}\n      - {id: p, kind: port, port: \"${checks.e.vars.CHATOPS_TEST_PORT}\", expect: free}\n";
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
