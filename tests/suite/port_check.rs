//! `port`: listening or free, naming the process that holds the port.

use crate::common::*;

fn port_playbook(port: u16, expect: &str) -> String {
    format!(
        r#"phases:
  - name: Ports
    checks:
      - id: p
        kind: port
        port: {port}
        expect: {expect}
        service: chat backend
        start_command: "PORT={port} npm run start:dev"
        health_url: "http://127.0.0.1:{port}/api/v1/health"
      - {{id: after, kind: port, port: {port}, expect: {expect}, needs: [p]}}
"#
    )
}

#[test]
fn taken_port_names_the_process() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (code, r) = doctor_json(&port_playbook(port, "free"), &[]);
    assert_eq!(code, 1);
    let p = check(&r, "p");
    assert_eq!(p["status"], "fail");
    let me = format!("pid {}", std::process::id());
    assert!(p["summary"].as_str().unwrap().contains(&me), "{p}");
    assert!(
        p["root_cause"].as_str().unwrap().contains("EADDRINUSE"),
        "{p}"
    );
    assert_eq!(check(&r, "after")["status"], "blocked");

    let (code, r) = doctor_json(&port_playbook(port, "listening"), &[]);
    assert_eq!(code, 0, "{r}");
    assert!(check(&r, "p")["summary"].as_str().unwrap().contains(&me));
    drop(l);
}

#[test]
fn free_port_means_backend_not_running() {
    let port = chatops::sandbox::free_port();
    let (code, r) = doctor_json(&port_playbook(port, "free"), &[]);
    assert_eq!(code, 0, "{r}");
    let (code, r) = doctor_json(&port_playbook(port, "listening"), &[]);
    assert_eq!(code, 1);
    let p = check(&r, "p");
    let root = p["root_cause"].as_str().unwrap();
    assert!(
        root.contains("chat backend is not running") && root.contains(&port.to_string()),
        "{root}"
    );
    let remedy = p["remedy"].as_str().unwrap();
    assert!(
        remedy.contains(&format!("PORT={port} npm run start:dev"))
            && remedy.contains("until curl -sf"),
        "{remedy}"
    );
    assert_eq!(check(&r, "after")["blocked_by"], "p");
}

#[test]
fn unresolvable_host_is_classified() {
    let y = r#"phases:
  - name: x
    checks:
      - {id: p, kind: port, host: no-such-host.invalid, port: 80, expect: listening, timeout: 3s}
"#;
    let (code, r) = doctor_json(y, &[]);
    assert_eq!(code, 1);
    let p = check(&r, "p");
    assert_eq!(p["status"], "fail");
    assert!(
        p["summary"].as_str().unwrap().contains("did not resolve"),
        "{p}"
    );
}
