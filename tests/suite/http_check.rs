//! The `http` check against real HTTP servers on loopback with quirky answers.

use crate::common::*;
use std::io::{Read, Write};
use std::time::Duration;

/// A raw HTTP/1.1 response with a correct Content-Length.
fn resp(status: &str, headers: &str, body: &str) -> &'static str {
    Box::leak(
        format!(
            "HTTP/1.1 {status}\r\n{headers}Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_boxed_str(),
    )
}

fn health() -> &'static str {
    resp(
        "200 OK",
        "Content-Type: application/json\r\nRateLimit-Limit: 100\r\n",
        r#"{"status":"ok","database":{"overall":"mock","database":"connected"},"uptime":12.5,"items":[1,2,3]}"#,
    )
}

/// A tiny HTTP/1.1 server answering every request with `response` (raw bytes),
/// after `delay`.
fn server(response: &'static str, delay: Duration) -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                let _ = s.read(&mut buf);
                std::thread::sleep(delay);
                let _ = s.write_all(response.as_bytes());
            });
        }
    });
    port
}

fn one(check: &str) -> (i32, serde_json::Value) {
    let y = format!(
        r#"phases:
  - name: HTTP
    checks:
      - {check}
"#
    );
    let (code, r) = doctor_json(&y, &[]);
    (code, check_owned(&r, "h"))
}

fn check_owned(r: &serde_json::Value, id: &str) -> serde_json::Value {
    check(r, id).clone()
}

#[test]
fn json_assertions_and_mock_mode_diagnosis() {
    let port = server(health(), Duration::ZERO);
    let ok = format!(
        "{{id: h, kind: http, request: {{url: \"http://127.0.0.1:{port}/api/v1/health\"}}, expect: {{status: 200, json: {{status: ok, uptime: {{gt: 1}}, \"items[2]\": 3, \"nope|database.database\": connected}}, headers: {{RateLimit-Limit: {{exists: true}}}}}}}}"
    );
    let (code, c) = one(&ok);
    assert_eq!(code, 0, "{c}");
    let bad = format!(
        "{{id: h, kind: http, request: {{url: \"http://127.0.0.1:{port}/api/v1/health\"}}, expect: {{json: {{database.overall: healthy}}}}}}"
    );
    let (code, c) = one(&bad);
    assert_eq!(code, 1);
    assert!(
        c["summary"].as_str().unwrap().contains("database.overall"),
        "{c}"
    );
    assert!(
        c["root_cause"].as_str().unwrap().contains("mock mode"),
        "{c}"
    );
    assert!(c["command"].as_str().unwrap().starts_with("curl "), "{c}");
}

#[test]
fn unexpected_status_with_body_excerpt() {
    let port = server(
        resp(
            "400 Bad Request",
            "Content-Type: application/json\r\n",
            r#"{"message":"Failed to send message: The column `messageType` does not exist in the current database.","statusCode":400}"#,
        ),
        Duration::ZERO,
    );
    let (code, c) = one(&format!(
        "{{id: h, kind: http, request: {{method: POST, url: \"http://127.0.0.1:{port}/m\", json: {{content: hi}}}}, expect: {{status: 201}}}}"
    ));
    assert_eq!(code, 1);
    assert!(
        c["summary"]
            .as_str()
            .unwrap()
            .contains("answered 400, expected 201"),
        "{c}"
    );
    assert!(
        c["root_cause"].as_str().unwrap().contains("schema drift"),
        "{c}"
    );
    assert!(
        c["remedy"].as_str().unwrap().contains("prisma generate"),
        "{c}"
    );
}

#[test]
fn status_classes_and_text_bodies() {
    let port = server(
        "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
        Duration::ZERO,
    );
    let (code, c) = one(&format!(
        "{{id: h, kind: http, request: {{url: \"http://127.0.0.1:{port}/healthz\"}}, expect: {{status: [\"2xx\", 304]}}}}"
    ));
    assert_eq!(code, 0, "{c}");
    let port = server(
        resp("200 OK", "Content-Type: text/plain\r\n", "HEALTHY"),
        Duration::ZERO,
    );
    let (code, _) = one(&format!(
        "{{id: h, kind: http, request: {{url: \"http://127.0.0.1:{port}/\"}}, expect: {{body_contains: HEALTHY}}}}"
    ));
    assert_eq!(code, 0);
    let (code, c) = one(&format!(
        "{{id: h, kind: http, request: {{url: \"http://127.0.0.1:{port}/\"}}, expect: {{json: {{status: ok}}}}}}"
    ));
    assert_eq!(code, 1);
    assert!(
        c["summary"]
            .as_str()
            .unwrap()
            .contains("did not answer JSON"),
        "{c}"
    );
}

#[test]
fn latency_bound() {
    let port = server(health(), Duration::from_millis(300));
    let (code, c) = one(&format!(
        "{{id: h, kind: http, request: {{url: \"http://127.0.0.1:{port}/\"}}, expect: {{max_latency: 100ms}}}}"
    ));
    assert_eq!(code, 1);
    assert!(
        c["summary"].as_str().unwrap().contains("limit 100 ms"),
        "{c}"
    );
}

#[test]
fn refused_timeout_dns_tls_are_classified() {
    let free = chatops::sandbox::free_port();
    let (_, c) = one(&format!(
        "{{id: h, kind: http, request: {{url: \"http://127.0.0.1:{free}/\"}}}}"
    ));
    assert!(
        c["summary"]
            .as_str()
            .unwrap()
            .contains("connection refused"),
        "{c}"
    );
    let slow = server(health(), Duration::from_secs(5));
    let (_, c) = one(&format!(
        "{{id: h, kind: http, timeout: 300ms, request: {{url: \"http://127.0.0.1:{slow}/\"}}}}"
    ));
    assert!(c["summary"].as_str().unwrap().contains("timed out"), "{c}");
    let (_, c) =
        one("{id: h, kind: http, timeout: 3s, request: {url: \"http://no-such-host.invalid/\"}}");
    assert!(
        c["summary"].as_str().unwrap().contains("did not resolve"),
        "{c}"
    );
    // https:// against a plain-HTTP server: the TLS handshake fails.
    let plain = server(health(), Duration::ZERO);
    let (_, c) = one(&format!(
        "{{id: h, kind: http, request: {{url: \"https://127.0.0.1:{plain}/\"}}}}"
    ));
    assert!(c["summary"].as_str().unwrap().contains("TLS"), "{c}");
}

#[test]
fn captures_and_a_blocked_consumer() {
    let port = server(
        resp(
            "201 Created",
            "Content-Type: application/json\r\n",
            r#"{"success":true,"message":{"id":"c123"}}"#,
        ),
        Duration::ZERO,
    );
    let y = format!(
        r#"phases:
  - name: HTTP
    checks:
      - {{id: send, kind: http, request: {{method: POST, url: "http://127.0.0.1:{port}/"}}, expect: {{status: 201}}, capture: {{message_id: json.message.id}}}}
      - {{id: use, kind: http, request: {{url: "http://127.0.0.1:{port}/${{checks.send.message_id}}"}}, expect: {{status: 201, json: {{message.id: "${{checks.send.message_id}}"}}}}}}
      - {{id: missing, kind: http, request: {{url: "http://127.0.0.1:{port}/"}}, expect: {{status: 201}}, capture: {{x: json.nope}}}}
      - {{id: blocked, kind: http, request: {{url: "http://127.0.0.1:{port}/${{checks.missing.x}}"}}}}
"#
    );
    let (code, r) = doctor_json(&y, &[]);
    assert_eq!(code, 1);
    assert_eq!(check(&r, "send")["status"], "pass");
    let used = check(&r, "use");
    assert_eq!(used["status"], "pass", "{used}");
    assert!(
        used["command"].as_str().unwrap().contains("/c123"),
        "{used}"
    );
    assert_eq!(check(&r, "missing")["status"], "fail");
    assert_eq!(check(&r, "blocked")["status"], "blocked");
    assert_eq!(check(&r, "blocked")["blocked_by"], "missing");
}
