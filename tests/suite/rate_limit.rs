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
fn limiters_on_names_the_limiter_and_the_process_environment() {
    let rt = runtime();
    let (_sb, url) = running(
        &rt,
        Knobs {
            rate_limit: true,
            ..Knobs::default()
        },
    );
    // The sandbox's apiLimiter allows 100; the health probe while starting
    // used one. 60 requests pass, so send 120.
    let pb = playbook(&url, "").replace("requests: 60", "requests: 120");
    let (code, report) = run(&pb, &[]);
    assert_eq!(code, 1, "{report:#}");
    let c = check(&report, "rate_limit_burst");
    assert_eq!(c["status"], "fail");
    let limited = c["captures"]["rate_limited"].as_u64().unwrap_or(0);
    assert!((19..=21).contains(&limited), "about 20 limited: {c:#}");
    // About the 100th request; with 10 in flight the server may see a
    // later-numbered request first, so the first 429 can carry a number up
    // to 9 below.
    let first = c["captures"]["first_429"].as_u64().unwrap_or(0);
    assert!((90..=101).contains(&first), "{c:#}");
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
    assert!(evidence.contains("rate limit exceeded"), "{evidence}");
    let remedy = c["remedy"].as_str().unwrap_or_default();
    assert!(remedy.contains("DISABLE_RATE_LIMIT=true"), "{remedy}");
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
    let pb = playbook(&url, "        probe: true\n");
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
