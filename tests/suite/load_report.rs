//! The load report in a real browser, and comparing runs, end to end
//! against the sandbox: a starved pool breaks a quick run whose
//! report.html headless Chromium renders with no console error or failed
//! load, charts drawn, stage labels and the breaking point marked, hover
//! working and print styles applied (a screenshot is saved in
//! target/chatops-report.png); a slowed backend is flagged as a regression
//! against the first run (exit 1) while the same run compared with itself
//! is not (exit 0).

use crate::browser::Browser;
use crate::common::{
    chatops, chatops_json, load_generator_slot, running, runtime, scratch_dir, start, unique,
};
use chatops::sandbox::Knobs;
use serde_json::{Value, json};

fn read_json(p: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{p:?}: {e}")))
        .unwrap_or_else(|e| panic!("{p:?}: {e}"))
}

#[test]
fn report_html_renders_in_chromium_with_the_breaking_point_marked() {
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
    let dir = scratch_dir().join(unique("load-html"));
    let dirs = dir.to_string_lossy().into_owned();
    let (code, v, out) = chatops_json(&[
        "load",
        "--format",
        "json",
        "--base-url",
        &url,
        "--database-url",
        &sb.db_url,
        "--skip-preflight",
        "--stages",
        "calm:1:2s:5000:0,crowd:12:3s:5000:0",
        "--think-time",
        "0s",
        "--cooldown",
        "200ms",
        "--export-dir",
        &dirs,
    ]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(v["breaking_point"]["cause"], "pool_saturation", "{v:#}");
    // the per-second series add up to the stage's counts
    let crowd = read_json(&dir.join("stage-2-crowd.json"));
    let secs = crowd["seconds"].as_array().expect("seconds[]");
    assert!(secs.len() >= 3, "{secs:?}");
    let sum = |f: &dyn Fn(&Value) -> u64| secs.iter().map(f).sum::<u64>();
    assert_eq!(
        sum(&|s| s["requests"].as_u64().unwrap_or(0)),
        crowd["requests"].as_u64().unwrap_or(u64::MAX)
    );
    assert_eq!(
        sum(&|s| s["errors"]["client_4xx"].as_u64().unwrap_or(0)),
        crowd["errors"]["client_4xx"].as_u64().unwrap_or(u64::MAX)
    );
    assert!(
        secs.iter().any(|s| s["p95_ms"].as_f64().is_some()),
        "{secs:?}"
    );
    let html_path = dir.join("report.html");
    let size = std::fs::metadata(&html_path).expect("report.html").len();
    assert!(size < 1_000_000, "{size} bytes");
    assert!(
        !std::fs::read_to_string(&html_path)
            .unwrap_or_default()
            .contains("postgrespassword")
    );

    let mut b = Browser::start(1366, 900, &dir.join("chromium-profile"));
    b.open(&format!("file://{}", html_path.display()));
    let drawn = b.eval(
        "({ready: document.documentElement.dataset.chartsReady,
           figures: document.querySelectorAll('figure.chart').length,
           paths: [...document.querySelectorAll('path.line')].map(p => (p.getAttribute('d') || '').length),
           widths: [...document.querySelectorAll('path.line')].map(p => p.getBoundingClientRect().width),
           stages: [...document.querySelectorAll('text.stage')].map(t => t.textContent),
           breaking: [...document.querySelectorAll('text.bpl')].map(t => t.textContent)})",
    );
    // the script ran to its end over every chart
    assert_eq!(
        drawn["ready"].as_str(),
        Some(drawn["figures"].to_string().as_str()),
        "{drawn:#}"
    );
    assert!(drawn["figures"].as_u64().unwrap_or(0) >= 6, "{drawn:#}");
    let paths = drawn["paths"].as_array().expect("paths");
    assert!(paths.len() >= 5, "{drawn:#}");
    assert!(
        paths.iter().all(|d| d.as_u64().unwrap_or(0) > 4),
        "{drawn:#}"
    );
    assert!(
        drawn["widths"]
            .as_array()
            .is_some_and(|w| w.iter().any(|x| x.as_f64().unwrap_or(0.0) > 100.0)),
        "{drawn:#}"
    );
    let stages = drawn["stages"].to_string();
    assert!(
        stages.contains("\"calm\"") && stages.contains("\"crowd\""),
        "{stages}"
    );
    assert!(
        drawn["breaking"].to_string().contains("pool saturation"),
        "{drawn:#}"
    );
    // hovering the latency chart shows that second's values
    let at = b.eval(
        "(() => { document.querySelector('#chart-latency').scrollIntoView({block: 'center'});
                  const r = document.querySelector('#chart-latency rect.band.fail').getBoundingClientRect();
                  return [r.left + r.width / 2, r.top + r.height / 2]; })()",
    );
    b.call(
        "Input.dispatchMouseEvent",
        json!({"type": "mouseMoved", "x": at[0], "y": at[1]}),
    );
    let tip = b.eval(
        "(() => { const t = document.querySelector('.tip'); return {hidden: t.hidden, text: t.textContent}; })()",
    );
    assert_eq!(tip["hidden"], false, "{tip:#}");
    let text = tip["text"].as_str().unwrap_or("");
    assert!(text.contains("crowd") && text.contains("p95:"), "{tip:#}");
    let png = b.screenshot(1366);
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
    let shot = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/chatops-report.png");
    std::fs::write(&shot, &png).unwrap_or_else(|e| panic!("{shot:?}: {e}"));
    // printable: print styles hide the hover parts, and it prints
    b.call("Emulation.setEmulatedMedia", json!({"media": "print"}));
    let hidden = b.eval("getComputedStyle(document.querySelector('.tip')).display");
    assert_eq!(hidden, "none");
    let pdf = b.call("Page.printToPDF", json!({"landscape": true}));
    assert!(pdf["data"].as_str().is_some_and(|d| d.len() > 1000));
    assert!(b.problems.is_empty(), "{:#?}", b.problems);
    drop(b);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_slower_backend_is_a_regression_and_the_same_run_is_not() {
    let _cpu = load_generator_slot();
    let rt = runtime();
    let (mut sb, url) = running(&rt, Knobs::default());
    let root = scratch_dir().join(unique("load-compare"));
    let (a, b) = (root.join("a"), root.join("b"));
    let (a_s, b_s) = (
        a.to_string_lossy().into_owned(),
        b.to_string_lossy().into_owned(),
    );
    let run = |url: &str, extra: &[&str]| {
        let mut args = vec![
            "load",
            "--format",
            "json",
            "--base-url",
            url,
            "--skip-preflight",
            "--stages",
            "steady:4:2s",
            "--think-time",
            "0s",
        ];
        args.extend_from_slice(extra);
        chatops_json(&args)
    };
    let (code, _, out) = run(&url, &["--export-dir", &a_s]);
    assert_eq!(code, 0, "{out}");
    // the same backend, every query held 150 ms
    let slow = start(
        &rt,
        &mut sb,
        Knobs {
            query_ms: Some(150),
            ..Knobs::default()
        },
    );
    let base = a.join("summary.json");
    let (code, v, out) = run(
        &slow,
        &["--baseline", &base.to_string_lossy(), "--export-dir", &b_s],
    );
    assert_eq!(code, 1, "a regression fails the run: {out}");
    assert_eq!(v["result"], "pass", "the stage itself had no criteria");
    let c = &v["comparison"];
    assert_eq!(c["regressed"], true, "{c:#}");
    assert!(
        c["regressions"].as_array().is_some_and(|r| r
            .iter()
            .any(|r| r["metric"] == "p95_ms" && r["stage"] == "steady")),
        "{c:#}"
    );
    let html = std::fs::read_to_string(b.join("report.html")).expect("report.html");
    assert!(
        html.contains("Compared with the baseline"),
        "comparison section"
    );
    let md = std::fs::read_to_string(b.join("report.md")).expect("report.md");
    assert!(md.contains("**Regression** in `steady`"), "{md}");

    // chatops compare: the same run is no regression; the slower one is
    let same = chatops(&["compare", &a_s, &base.to_string_lossy()], &[]);
    assert_eq!(same.code, 0, "{}{}", same.stdout, same.stderr);
    assert!(
        same.stdout.contains("no regression beyond 10%"),
        "{}",
        same.stdout
    );
    let (code, v, out) = chatops_json(&["compare", &a_s, &b_s, "--format", "json"]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(v["stages"][0]["name"], "steady");
    assert!(
        v["stages"][0]["change_pct"]["p95_ms"]
            .as_f64()
            .unwrap_or(0.0)
            > 10.0,
        "{v:#}"
    );
    let loose = chatops(
        &["compare", &a_s, &b_s, "--max-regression", "1000000%"],
        &[],
    );
    assert_eq!(loose.code, 0, "{}", loose.stdout);
    let md = chatops(&["compare", &a_s, &b_s, "--format", "markdown"], &[]);
    assert!(md.stdout.contains("| steady |"), "{}", md.stdout);
    let page = chatops(&["compare", &a_s, &b_s, "--format", "html"], &[]);
    assert!(
        page.stdout.starts_with("<!DOCTYPE html>"),
        "{}",
        page.stdout
    );
    // not a summary: a usage error
    let bad = chatops(
        &["compare", &a_s, &root.join("nothing").to_string_lossy()],
        &[],
    );
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    let bad = chatops(
        &[
            "load",
            "--base-url",
            &url,
            "--baseline",
            "/nonexistent/summary.json",
        ],
        &[],
    );
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    let _ = std::fs::remove_dir_all(&root);
}
