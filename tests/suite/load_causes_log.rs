//! `chatops load` names a breaking point from the backend's log and its
//! error answers: a crash with its stack, PostgreSQL stopped mid-run, a
//! generic 500 whose cause (a missing column) is only in the log, and the
//! same drift named by the public code's 400 body alone. Each test runs one
//! short stage against the sandbox and asserts the cause and the evidence
//! line that proves it.

use crate::common::{
    bin, chatops_json, load_generator_slot, running, runtime, scratch_dir, unique, wait_until,
};
use chatops::sandbox::pg::PgOptions;
use chatops::sandbox::{Knobs, Sandbox};
use serde_json::Value;
use std::time::Duration;

const MIX: &str = include_str!("../fixtures/load-seed-mix-by-vu.yaml");

fn log_path(sb: &Sandbox) -> String {
    sb.backend
        .as_ref()
        .map(|b| b.log.to_string_lossy().into_owned())
        .expect("a backend")
}

/// `chatops load --format json --skip-preflight --warmup 0s` with the
/// seed mix (history requests marked `vu=N`), one stage and these extras.
fn load(url: &str, db: &str, stages: &str, extra: &[&str]) -> (i32, Value, String) {
    let plan = crate::common::write_playbook(MIX);
    let plan = plan.to_string_lossy().into_owned();
    let mut args = vec![
        "load",
        "--format",
        "json",
        "--skip-preflight",
        "--warmup",
        "0s",
        "--think-time",
        "20ms",
        "--base-url",
        url,
        "--database-url",
        db,
        "--plan",
        &plan,
        "--stages",
        stages,
    ];
    args.extend_from_slice(extra);
    chatops_json(&args)
}

fn evidence(bp: &Value) -> Vec<String> {
    bp["evidence"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_crash_is_named_with_the_stack_from_the_log() {
    let _cpu = load_generator_slot();
    let rt = runtime();
    let (sb, url) = running(
        &rt,
        Knobs {
            crash_after: Some(20),
            ..Knobs::default()
        },
    );
    let log = log_path(&sb);
    let (code, v, out) = load(&url, &sb.db_url, "doomed:3:3s:1000:1", &[]);
    assert_eq!(code, 1, "{out}");
    let bp = &v["breaking_point"];
    assert_eq!(bp["stage"], "doomed", "{bp:#}");
    assert_eq!(bp["cause"], "crash", "{bp:#}");
    let ev = evidence(bp);
    assert!(
        ev.iter()
            .any(|l| l.starts_with("Error: Message fan-out failed")),
        "{ev:#?}"
    );
    assert!(
        ev.iter()
            .any(|l| l.starts_with("at Timeout._onTimeout (/app/dist/chat/chat.service.js")),
        "{ev:#?}"
    );
    // Which log was read, and why that file.
    assert!(
        ev.iter()
            .any(|l| l.starts_with(&format!("log read: {log}")) && l.contains("fd 1")),
        "{ev:#?}"
    );
}

#[test]
fn postgres_stopped_mid_stage_is_database_down_with_its_address() {
    let _cpu = load_generator_slot();
    let rt = runtime();
    // A cluster of its own: this test stops it.
    let mut sb = rt
        .block_on(Sandbox::start(&bin(), PgOptions::default()))
        .unwrap_or_else(|e| panic!("sandbox: {e}"));
    let url = rt
        .block_on(sb.start_backend(&Knobs::default()))
        .unwrap_or_else(|e| panic!("backend: {e}"))
        .base_url();
    let log = log_path(&sb);
    let address = format!("127.0.0.1:{}", sb.pg.port());
    let (code, v, out) = std::thread::scope(|s| {
        let (sb, rt, log) = (&sb, &rt, &log);
        // Stop PostgreSQL once the stage's requests reach the backend (its
        // request log shows the first history request of user 0).
        let stopper = s.spawn(move || {
            wait_until(
                Duration::from_secs(60),
                "the stage's first request in the backend's log",
                || {
                    std::fs::read_to_string(log)
                        .ok()
                        .filter(|l| l.contains("vu=0"))
                },
            );
            rt.block_on(sb.stop_database())
                .unwrap_or_else(|e| panic!("stop PostgreSQL: {e}"));
        });
        let r = load(&url, &sb.db_url, "stopped:3:4s:1000:1", &[]);
        stopper.join().expect("the stopper thread");
        r
    });
    assert_eq!(code, 1, "{out}");
    let bp = &v["breaking_point"];
    assert_eq!(bp["stage"], "stopped", "{bp:#}");
    assert_eq!(bp["cause"], "database_down", "{bp:#}");
    let ev = evidence(bp);
    assert!(
        ev.iter()
            .any(|l| l.contains(&format!("Can't reach database server at `{address}`"))),
        "{address} in {ev:#?}"
    );
    assert_eq!(
        bp["details"]["witness"]["facts"]["address"], address,
        "{bp:#}"
    );
    assert!(
        bp["root_cause"].as_str().unwrap_or("").contains(&address),
        "{bp:#}"
    );
}

#[test]
fn a_generic_500_is_schema_drift_from_the_log_s_p2022_line() {
    let _cpu = load_generator_slot();
    let rt = runtime();
    let (sb, url) = running(
        &rt,
        Knobs {
            drift: true,
            generic_500: true,
            ..Knobs::default()
        },
    );
    let log = log_path(&sb);
    let (code, v, out) = load(&url, &sb.db_url, "drift:2:2s:1000:1", &[]);
    assert_eq!(code, 1, "{out}");
    let bp = &v["breaking_point"];
    assert_eq!(bp["cause"], "schema_drift", "{bp:#}");
    assert_eq!(bp["details"]["witness"]["code"], "P2022", "{bp:#}");
    let ev = evidence(bp);
    // The log's line names the column; the 500 body does not.
    assert!(
        ev.iter()
            .any(|l| !l.starts_with("HTTP") && l.contains("`messages.messageType` does not exist")),
        "{ev:#?}"
    );
    assert!(
        ev.iter()
            .any(|l| l.starts_with(&format!("log read: {log}"))),
        "{ev:#?}"
    );
    assert!(
        bp["remedy"].as_str().unwrap_or("").contains("prisma"),
        "{bp:#}"
    );
}

#[test]
fn drift_is_named_by_the_400_body_when_the_log_says_nothing() {
    let _cpu = load_generator_slot();
    let rt = runtime();
    let (sb, url) = running(
        &rt,
        Knobs {
            drift: true,
            ..Knobs::default()
        },
    );
    // A log that stays empty: the body alone names the cause.
    let quiet = scratch_dir().join(unique("quiet.log"));
    std::fs::write(&quiet, "").expect("an empty log");
    let quiet = quiet.to_string_lossy().into_owned();
    let (code, v, out) = load(
        &url,
        &sb.db_url,
        "drift:2:2s:1000:1",
        &["--backend-log", &quiet],
    );
    assert_eq!(code, 1, "{out}");
    let bp = &v["breaking_point"];
    assert_eq!(bp["cause"], "schema_drift", "{bp:#}");
    let ev = evidence(bp);
    assert!(
        ev.iter().any(|l| l.starts_with("HTTP 400: ")
            && l.contains(
                "Failed to send message: The column `messages.messageType` does not exist"
            )),
        "{ev:#?}"
    );
    assert!(
        ev.iter().any(|l| l
            == &format!("log read: {quiet} (--backend-log): the 0 bytes written during the stage")),
        "{ev:#?}"
    );
}

#[test]
fn p2024_bodies_give_the_pool_s_connection_limit() {
    let _cpu = load_generator_slot();
    let rt = runtime();
    let (sb, url) = running(
        &rt,
        Knobs {
            connection_limit: Some(2),
            pool_timeout: Some(1),
            query_ms: Some(300),
            ..Knobs::default()
        },
    );
    let (code, v, out) = load(&url, &sb.db_url, "crowd:12:3s:5000:0", &[]);
    assert_eq!(code, 1, "{out}");
    let bp = &v["breaking_point"];
    assert_eq!(bp["cause"], "pool_saturation", "{bp:#}");
    assert_eq!(bp["details"]["witness"]["code"], "P2024", "{bp:#}");
    assert_eq!(
        bp["details"]["witness"]["facts"]["connection_limit"], 2,
        "{bp:#}"
    );
    let ev = evidence(bp);
    assert!(
        ev.iter().any(|l| l
            .contains("Timed out fetching a new connection from the connection pool")
            && l.contains("connection limit: 2")),
        "{ev:#?}"
    );
}
