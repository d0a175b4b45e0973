use super::*;
use serde_json::json;

fn run(stages: serde_json::Value) -> RunSummary {
    parse(
        &json!({"schema_version": 1, "plan": "p", "result": "pass", "stages": stages}).to_string(),
        Path::new("x.json"),
    )
    .expect("summary")
}

fn stage(name: &str, rps: f64, p95: f64, p99: f64, errors: serde_json::Value) -> serde_json::Value {
    json!({"name": name, "status": "pass", "requests": 1000, "rps": rps, "p95_ms": p95,
           "p99_ms": p99, "error_rate": 0.0, "errors": errors, "watch": {"max_active": 8}})
}

fn base() -> RunSummary {
    run(json!([
        stage("light", 100.0, 20.0, 40.0, json!({})),
        stage("busy", 400.0, 50.0, 90.0, json!({"timeout": 2})),
    ]))
}

#[test]
fn an_identical_run_is_not_a_regression() {
    let c = compare(&base(), &base(), 10.0, ("a", "b"));
    assert!(!c.regressed, "{c:#?}");
    assert_eq!(c.stages.len(), 2);
    assert_eq!(c.stages[1].change_pct.p95_ms, Some(0.0));
    assert_eq!(c.stages[1].change_pct.max_active, Some(0.0));
}

#[test]
fn changes_within_the_threshold_or_the_noise_are_not_regressions() {
    let cur = run(json!([
        stage("light", 92.0, 21.9, 43.9, json!({})),
        stage("busy", 380.0, 54.0, 98.0, json!({"timeout": 9})),
    ]));
    let c = compare(&base(), &cur, 10.0, ("a", "b"));
    assert!(!c.regressed, "{:#?}", c.regressions);
    // a tiny latency that doubles is noise
    let tiny = run(json!([stage("light", 100.0, 0.4, 0.6, json!({}))]));
    let tiny2 = run(json!([stage("light", 100.0, 0.9, 1.2, json!({}))]));
    assert!(!compare(&tiny, &tiny2, 10.0, ("a", "b")).regressed);
}

#[test]
fn slower_fewer_and_new_errors_are_regressions() {
    let cur = run(json!([
        stage("light", 85.0, 20.0, 40.0, json!({"server_5xx": 1})),
        stage("busy", 400.0, 70.0, 91.0, json!({"timeout": 2})),
        stage("extra", 1.0, 1.0, 1.0, json!({})),
    ]));
    let c = compare(&base(), &cur, 10.0, ("a", "b"));
    assert!(c.regressed);
    let got: Vec<(&str, &str)> = c
        .regressions
        .iter()
        .map(|r| (r.stage.as_str(), r.metric))
        .collect();
    assert_eq!(
        got,
        [
            ("light", "rps"),
            ("light", "error_class"),
            ("busy", "p95_ms")
        ]
    );
    assert_eq!(c.regressions[0].change_pct, Some(-15.0));
    assert!(
        c.regressions[1].message.contains("server_5xx"),
        "{:?}",
        c.regressions[1]
    );
    assert_eq!(c.regressions[2].change_pct, Some(40.0));
    // a stage only in one run is listed, not judged
    assert!(c.stages[2].baseline.is_none() && c.stages[2].current.is_some());
    // a looser threshold lets the slowdown through, never the new class
    let loose = compare(&base(), &cur, 50.0, ("a", "b"));
    assert_eq!(loose.regressions.len(), 1);
    assert_eq!(loose.regressions[0].metric, "error_class");
}

#[test]
fn a_stage_that_now_fails_is_a_regression() {
    let mut cur = base();
    cur.stages[0].status = "fail".into();
    let c = compare(&base(), &cur, 10.0, ("a", "b"));
    assert_eq!(c.regressions.len(), 1);
    assert_eq!(c.regressions[0].metric, "status");
}

#[test]
fn summaries_are_checked_and_percentages_parsed() {
    assert!(matches!(
        parse("{\"stages\": []}", Path::new("s.json")),
        Err(CompareError::Parse { .. })
    ));
    assert!(matches!(
        parse("{\"schema_version\": 9}", Path::new("s.json")),
        Err(CompareError::Version { found: 9, .. })
    ));
    assert!(matches!(
        load(Path::new("/nonexistent/chatops")),
        Err(CompareError::Read { .. })
    ));
    assert_eq!(parse_percent("10%"), Ok(10.0));
    assert_eq!(parse_percent(" 2.5 "), Ok(2.5));
    assert!(parse_percent("-3%").is_err());
    assert!(parse_percent("ten").is_err());
    assert_eq!(change(0.0, 0.0), Some(0.0));
    assert_eq!(change(0.0, 1.0), None);
    assert_eq!(change(200.0, 150.0), Some(-25.0));
}
