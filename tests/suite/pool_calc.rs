//! `chatops pool-calc` (offline and live) and the `pool_headroom` check,
//! against a cluster of our own with max_connections set low.

use crate::common::*;
use chatops::sandbox::pg::{PgCluster, PgOptions};
use std::sync::{Arc, OnceLock};

/// A cluster with max_connections 20 (17 usable).
fn small() -> Arc<PgCluster> {
    static PG: OnceLock<Arc<PgCluster>> = OnceLock::new();
    PG.get_or_init(|| {
        start_cluster(PgOptions {
            max_connections: 20,
            ..PgOptions::default()
        })
    })
    .clone()
}

fn values(v: &serde_json::Value) -> Vec<f64> {
    v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["value"].as_f64().unwrap())
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn reproduces_the_seed_in_every_format() {
    let r = chatops(
        &["pool-calc", "--max-connections", "100", "--format", "json"],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    let s = values(&v);
    assert!(
        close(s[0], 12.6) && close(s[1], 37.8) && close(s[2], 47.8) && close(s[3], 50.0),
        "{s:?}"
    );
    assert!(close(v["pct_of_max"].as_f64().unwrap(), 50.0));
    assert_eq!(v["recommended_pool"], 50);
    assert_eq!(v["verdict"], "fits");
    assert_eq!(v["server"]["source"], "flags");
    assert!(
        v["database_url"]
            .as_str()
            .unwrap()
            .ends_with("?connection_limit=50&pool_timeout=30&connect_timeout=10")
    );

    let r = chatops(&["pool-calc", "--max-connections", "100"], &[]);
    assert_eq!(r.code, 0);
    for needle in [
        "120 VUs × 0.7 activity ratio × 0.15 s per query │ 12.6",
        "12.6 × 3 ",
        "37.8 + 10 ",
        "47.8 rounded up to a multiple of 10",
        "50 / 100 ",
        "50.0%",
        "Verdict: fits",
    ] {
        assert!(
            r.stdout.contains(needle),
            "missing {needle:?} in\n{}",
            r.stdout
        );
    }

    let r = chatops(
        &["pool-calc", "--max-connections", "100", "-f", "markdown"],
        &[],
    );
    assert!(
        r.stdout
            .contains("| Pool per process | 47.8 rounded up to a multiple of 10 | 50 |"),
        "{}",
        r.stdout
    );
    // Another rounding rule, and Little's law.
    let v = chatops(&["pool-calc", "--round", "ceil", "-f", "json"], &[]).json();
    assert_eq!(v["recommended_pool"], 48);
    let v = chatops(
        &[
            "pool-calc",
            "--rps",
            "400",
            "--query-ms",
            "25",
            "-f",
            "json",
        ],
        &[],
    )
    .json();
    assert!(close(v["concurrent"].as_f64().unwrap(), 10.0));
    assert_eq!(v["inputs"]["load"]["mode"], "throughput");
}

#[test]
fn bad_input_is_named_and_exits_2() {
    for (args, flag) in [
        (vec!["--vus", "-1"], "--vus"),
        (vec!["--activity-ratio", "1.2"], "--activity-ratio"),
        (vec!["--max-connections", "0"], "--max-connections"),
        (vec!["--max-connections", "-5"], "--max-connections"),
        (vec!["--replicas", "-2"], "--replicas"),
        (vec!["--query-ms", "-5"], "--query-ms"),
        (vec!["--burst", "0.5"], "--burst"),
        (
            vec!["--max-connections", "10", "--reserved", "10"],
            "--reserved",
        ),
        (vec!["--vus", "many"], "--vus"),
        (vec!["--pool-timeout", "-1"], "--pool-timeout"),
        (vec!["--pool", "0"], "--pool"),
        (vec!["--cores", "0"], "--cores"),
    ] {
        let mut a = vec!["pool-calc"];
        a.extend(args.iter().copied());
        let r = chatops(&a, &[]);
        assert_eq!(r.code, 2, "{a:?}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains(flag), "{a:?}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "{a:?}");
    }
}

#[test]
fn url_keeps_other_params_and_hides_the_password() {
    let url = "postgresql://app:s3cret-pw@db.internal:5432/chat?schema=public&connection_limit=5&sslmode=disable";
    let r = chatops(&["pool-calc", "--url", url, "--pool-timeout", "20"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("DATABASE_URL=postgresql://app:***@db.internal:5432/chat?schema=public&connection_limit=50&sslmode=disable&pool_timeout=20&connect_timeout=10"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("s3cret-pw"));
    let r = chatops(
        &["pool-calc", "--url", url, "--show-secrets", "-f", "json"],
        &[],
    );
    assert!(
        r.json()["database_url"]
            .as_str()
            .unwrap()
            .contains("app:s3cret-pw@")
    );
}

#[test]
fn live_limits_from_a_real_server() {
    let pg = small();
    let url = pg.url("postgres");
    let r = chatops(&["pool-calc", "--database-url", &url, "-f", "json"], &[]);
    assert_eq!(r.code, 1, "50 does not fit in 17: {}{}", r.stdout, r.stderr);
    let v = r.json();
    assert_eq!(v["server"]["source"], "server");
    assert_eq!(v["max_connections"], 20);
    assert_eq!(v["inputs"]["reserved"], 3);
    assert_eq!(v["usable"], 17);
    assert_eq!(v["verdict"], "does_not_fit");
    let cores = std::thread::available_parallelism().unwrap().get() as u64;
    assert_eq!(
        v["useful_active"],
        cores * 2 + 1,
        "local server: cores known"
    );
    let advice = v["advice"].to_string();
    assert!(advice.contains("PgBouncer"), "{advice}");
    assert!(!r.stdout.contains(pg.password()));
    // A pool that fits.
    let r = chatops(
        &[
            "pool-calc",
            "--database-url",
            &url,
            "--pool",
            "10",
            "-f",
            "json",
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json()["verdict"], "fits");
    // Unreachable: exit 1, no password.
    let r = chatops(
        &[
            "pool-calc",
            "--database-url",
            "postgresql://u:sekrit-pw@127.0.0.1:1/d",
            "--timeout",
            "2",
        ],
        &[],
    );
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("cannot read the server's limits"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("sekrit-pw"));
}

fn headroom(url: &str, fields: &str) -> serde_json::Value {
    let pb = format!(
        r#"name: h
phases:
  - name: Pool
    checks:
      - {{id: h, kind: pool_headroom, url: "{url}", {fields}}}
"#
    );
    let (_, r) = doctor_json(&pb, &[]);
    check(&r, "h").clone()
}

#[test]
fn headroom_on_a_server_with_few_connections() {
    let pg = small();
    let url = pg.url("postgres");
    // 10 of 17 usable, enough for a light load.
    let c = headroom(
        &url,
        "pool: 10, vus: 10, activity_ratio: 0.5, query_ms: 100, overhead: 0",
    );
    assert_eq!(c["status"], "pass", "{c}");
    assert_eq!(c["captures"]["usable"], 17);
    assert!(
        c["evidence"]
            .to_string()
            .contains("demand: 10 × 1 replica(s) + 0 other = 10 = 58.8% of usable"),
        "{c}"
    );
    // 15 of 17: above the 70% ceiling.
    let c = headroom(
        &url,
        "pool: 15, vus: 10, activity_ratio: 0.5, query_ms: 100, overhead: 0",
    );
    assert_eq!(c["status"], "warn", "{c}");
    assert!(
        c["root_cause"]
            .as_str()
            .unwrap()
            .contains("above the 70% ceiling"),
        "{c}"
    );
    // Two replicas of 10: cannot fit.
    let c = headroom(
        &url,
        "pool: 10, replicas: 2, vus: 10, activity_ratio: 0.5, query_ms: 100, overhead: 0",
    );
    assert_eq!(c["status"], "fail", "{c}");
    assert!(
        c["root_cause"].as_str().unwrap().contains("cannot fit"),
        "{c}"
    );
    assert!(c["remedy"].as_str().unwrap().contains("PgBouncer"), "{c}");
    // A pool of 2 for the seed's 120 VUs: too small before any load is sent.
    let c = headroom(&url, "pool: 2");
    assert_eq!(c["status"], "fail", "{c}");
    assert!(
        c["summary"]
            .as_str()
            .unwrap()
            .contains("below the 12.6 connections"),
        "{c}"
    );
    assert!(
        c["remedy"]
            .as_str()
            .unwrap()
            .contains("connection_limit=50"),
        "{c}"
    );
}

#[test]
fn headroom_reads_the_pool_from_the_backend_process() {
    let pg = small();
    let url = pg.url("postgres");
    let mut fake_backend = std::process::Command::new("sleep")
        .arg("60")
        .env(
            "DATABASE_URL",
            format!("{url}?connection_limit=2&pool_timeout=30"),
        )
        .spawn()
        .unwrap();
    let c = headroom(&url, &format!("process: {{pid: {}}}", fake_backend.id()));
    let _ = fake_backend.kill();
    let _ = fake_backend.wait();
    assert_eq!(c["status"], "fail", "{c}");
    assert!(
        c["evidence"]
            .to_string()
            .contains("pool: 2 from connection_limit in the backend's DATABASE_URL"),
        "{c}"
    );
    assert!(
        c["root_cause"].as_str().unwrap().contains("too small"),
        "{c}"
    );
    assert!(!c.to_string().contains(pg.password()));
    // No such process: a named finding.
    let c = headroom(&url, "process: {pid: 999999}");
    assert_eq!(c["status"], "fail");
    assert!(c["summary"].as_str().unwrap().contains("no process found"));
}
