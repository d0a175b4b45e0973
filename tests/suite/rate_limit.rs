//! The `rate_limit` check against the real sandbox backend, with its
//! express-rate-limit style limiters on and off.

use crate::common::*;
use chatops::sandbox::{Knobs, Sandbox};
use serde_json::Value;

fn playbook(url: &str, extra: &str) -> String {
    let port = url.rsplit(':').next().unwrap_or_default();
    format!(
        "target: {{ base_url: '{url}' }}
vars: {{ user_id: 00000000-0000-0000-0000-000000000000, conversation_id: 8822dd87-d0c2-42be-93d2-1c0cb492e351 }}
phases:
  - name: burst
    checks:
      - include: chatops:checks/rate-limit-burst.yaml
        needs: []
        requests: 60
        process: {{ port: {port} }}
{extra}"
    )
}

fn run(pb: &str, env: &[(&str, &str)]) -> (i32, Value) {
    let p = write_playbook(pb);
    let r = chatops(
        &[
            "doctor",
            "--format",
            "json",
            "--playbook",
            &p.to_string_lossy(),
        ],
        env,
    );
    (r.code, r.json())
}

fn messages_labelled(sb: &Sandbox, rt: &tokio::runtime::Runtime, label: &str) -> i64 {
    rt.block_on(async {
        let (c, conn) = tokio_postgres::connect(&sb.db_url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(conn);
        c.query_one(
            "SELECT count(*) FROM messages WHERE content LIKE '%' || $1 || '%'",
            &[&label],
        )
        .await
        .expect("count")
        .get(0)
    })
}

#[test]
fn limiters_off_gives_zero_429s_and_labelled_writes() {
    let rt = runtime();
    let (sb, url) = running(&rt, Knobs::default());
    let (code, report) = run(&playbook(&url, ""), &[]);
    assert_eq!(code, 0, "{report:#}");
    let c = check(&report, "rate_limit_burst");
    assert_eq!(c["captures"]["requests"], 60, "{c:#}");
    assert_eq!(c["captures"]["ok"], 60, "{c:#}");
    assert_eq!(c["captures"]["rate_limited"], 0, "{c:#}");
    // Every request wrote a message carrying the run's label and its number.
    assert_eq!(
        messages_labelled(&sb, &rt, "chatops rate-limit burst chatops-"),
        60
    );
    assert_eq!(messages_labelled(&sb, &rt, "#60"), 1);
}

#[test]
fn limiters_on_names_the_limiter_from_the_probe_without_the_burst() {
    let rt = runtime();
    let (sb, url) = running(
        &rt,
        Knobs {
            rate_limit: true,
            ..Knobs::default()
        },
    );
    // The sandbox's apiLimiter allows 100 per 15 minutes (draft-6 headers);
    // 120 requests cannot fit, and the probe's headers say so.
    let pb = playbook(&url, "").replace("requests: 60", "requests: 120");
    let (code, report) = run(&pb, &[]);
    assert_eq!(code, 1, "{report:#}");
    let c = check(&report, "rate_limit_burst");
    assert_eq!(c["status"], "fail");
    let summary = c["summary"].as_str().unwrap_or_default();
    assert!(
        summary.contains("a burst of 120 would meet 429s"),
        "{summary}"
    );
    assert!(
        summary.contains("100 left") || summary.contains("of 100 left"),
        "{summary}"
    );
    let cause = c["root_cause"].as_str().unwrap_or_default();
    assert!(cause.contains("apiLimiter"), "{cause}");
    assert!(
        cause.contains("DISABLE_RATE_LIMIT is not set in process"),
        "{cause}"
    );
    let evidence = c["evidence"].to_string().to_ascii_lowercase();
    assert!(
        evidence.contains("ratelimit-policy: 100;w=900"),
        "{evidence}"
    );
    assert!(evidence.contains("not sent"), "{evidence}");
    let remedy = c["remedy"].as_str().unwrap_or_default();
    assert!(remedy.contains("DISABLE_RATE_LIMIT=true"), "{remedy}");
    // Only the probe went out: one message written, not 120.
    assert_eq!(messages_labelled(&sb, &rt, "chatops rate-limit burst"), 1);
}

#[test]
fn a_budget_that_admits_the_burst_lets_the_burst_prove_it() {
    let rt = runtime();
    let (sb, url) = running(
        &rt,
        Knobs {
            rate_limit: true,
            api_limit: Some(1000),
            ..Knobs::default()
        },
    );
    let (code, report) = run(&playbook(&url, ""), &[]);
    // A limiter is on but the burst fit its budget: a warning, not a failure.
    assert_eq!(code, 0, "{report:#}");
    let c = check(&report, "rate_limit_burst");
    assert_eq!(c["status"], "warn", "{c:#}");
    assert_eq!(c["captures"]["ok"], 60, "{c:#}");
    assert_eq!(c["captures"]["rate_limited"], 0, "{c:#}");
    let evidence = c["evidence"].to_string();
    assert!(
        evidence.contains("the burst needs 59: sending it to prove it"),
        "{evidence}"
    );
    assert!(
        c["summary"]
            .as_str()
            .unwrap_or_default()
            .contains("of 1000 left"),
        "{c:#}"
    );
    assert_eq!(
        messages_labelled(&sb, &rt, "chatops rate-limit burst chatops-"),
        60
    );
}

#[test]
fn set_in_the_shell_but_not_in_the_server_is_said() {
    let rt = runtime();
    let (_sb, url) = running(
        &rt,
        Knobs {
            rate_limit: true,
            ..Knobs::default()
        },
    );
    let pb = playbook(&url, "").replace("requests: 60", "requests: 110");
    let (code, report) = run(&pb, &[("DISABLE_RATE_LIMIT", "true")]);
    assert_eq!(code, 1, "{report:#}");
    let cause = check(&report, "rate_limit_burst")["root_cause"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(cause.contains("set in your shell"), "{cause}");
    assert!(cause.contains("not in the server"), "{cause}");
}

#[test]
fn probe_predicts_the_failure_from_one_request() {
    let rt = runtime();
    let (sb, url) = running(
        &rt,
        Knobs {
            rate_limit: true,
            ..Knobs::default()
        },
    );
    let pb = playbook(&url, "        probe: true\n").replace("requests: 60", "requests: 250");
    let (code, report) = run(&pb, &[]);
    assert_eq!(code, 1, "{report:#}");
    let c = check(&report, "rate_limit_burst");
    assert_eq!(c["captures"]["requests"], Value::Null, "no burst was sent");
    let summary = c["summary"].as_str().unwrap_or_default();
    assert!(summary.contains("limiting is active"), "{summary}");
    assert!(
        c["root_cause"]
            .as_str()
            .unwrap_or_default()
            .contains("apiLimiter")
    );
    // One request, one message.
    assert_eq!(messages_labelled(&sb, &rt, "chatops rate-limit burst"), 1);

    // With the limiters off, the probe sees no headers and passes.
    let (_sb2, url2) = running(&rt, Knobs::default());
    let (code, report) = run(&playbook(&url2, "        probe: true\n"), &[]);
    assert_eq!(code, 0, "{report:#}");
}

#[test]
fn remote_targets_are_refused_without_sending() {
    let pb = "phases:
  - name: burst
    checks:
      - id: burst
        kind: rate_limit
        request: { url: 'http://10.255.255.1:3001/api/v1/health' }
        requests: 5
";
    let (code, report) = run(pb, &[]);
    assert_eq!(code, 1, "{report:#}");
    let c = check(&report, "burst");
    assert_eq!(c["status"], "error");
    let s = c["summary"].as_str().unwrap_or_default();
    assert!(s.contains("not a loopback address"), "{s}");
    assert!(s.contains("--allow-remote"), "{s}");
    assert!(
        c["duration_ms"].as_u64().unwrap_or(99_999) < 1_000,
        "no traffic, no wait"
    );
}

/// A backend with no limiter and no switch at all: a minimal HTTP server in
/// this test process (whose environment has no DISABLE_RATE_LIMIT) that
/// answers every request 201 without rate-limit headers.
fn unlimited_backend() -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = stream.read(&mut chunk) else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    let Some(end) = text.find("\r\n\r\n") else {
                        continue;
                    };
                    let length = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .and_then(|v| v.trim().parse::<usize>().ok())
                        })
                        .unwrap_or(0);
                    if buf.len() < end + 4 + length {
                        continue;
                    }
                    buf.drain(..end + 4 + length);
                    let body = r#"{"success":true,"message":{"id":"m1","type":"TEXT"}}"#;
                    let answer = format!(
                        "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if stream.write_all(answer.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

#[test]
fn no_switch_and_no_limiter_passes_from_behaviour() {
    if std::env::var_os("DISABLE_RATE_LIMIT").is_some() {
        panic!("this test needs DISABLE_RATE_LIMIT unset in the test's environment");
    }
    let port = unlimited_backend();
    let url = format!("http://127.0.0.1:{port}");
    // The old proxy (the env check) next to the burst: the switch is absent,
    // which used to fail the run without a single request.
    let pb = playbook(&url, "")
        + "      - include: chatops:checks/rate-limit-env.yaml\n        needs: []\n";
    let (code, report) = run(&pb, &[]);
    assert_eq!(code, 0, "{report:#}");
    let c = check(&report, "rate_limit_burst");
    assert_eq!(c["status"], "pass", "{c:#}");
    assert_eq!(c["captures"]["ok"], 60, "{c:#}");
    let evidence = c["evidence"].to_string();
    assert!(
        evidence.contains("DISABLE_RATE_LIMIT is not set in process"),
        "{evidence}"
    );
    assert!(evidence.contains("no limiter on this path"), "{evidence}");
    // The proxy alone now only warns.
    let env = check(&report, "rate_limit_disabled");
    assert_eq!(env["status"], "warn", "{env:#}");
}
