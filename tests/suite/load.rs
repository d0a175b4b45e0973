//! `chatops load` end to end: quick progressive runs against the real
//! sandbox (reference backend + throwaway PostgreSQL) healthy, with a
//! starved pool and with the rate limiter on; the open model's
//! coordinated-omission correction against a small hyper server that stalls
//! for a known time; Ctrl-C; bad input. Stages are 1–3 s; traffic goes to
//! 127.0.0.1 only.

use crate::common::{
    bin, chatops, chatops_json, interrupt_when_ready, load_generator_slot, make_certs, running,
    runtime, scratch_dir, signal, unique, wait_output, wait_until, write_playbook,
};
use chatops::sandbox::Knobs;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// `chatops load --format json` with these extra arguments.
fn load(url: &str, db: Option<&str>, extra: &[&str]) -> (i32, Value, String) {
    let mut args = vec!["load", "--format", "json", "--base-url", url];
    if let Some(d) = db {
        args.extend(["--database-url", d]);
    }
    args.extend_from_slice(extra);
    chatops_json(&args)
}

fn stage<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["stages"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no stage {name} in {v:#}"))
}

#[test]
fn healthy_backend_passes_every_stage_after_the_preflight() {
    let _cpu = load_generator_slot();
    let rt = runtime();
    let (sb, url) = running(&rt, Knobs::default());
    let (code, v, out) = load(
        &url,
        Some(&sb.db_url),
        &[
            "--stages",
            "warm:2:1s:1000:0,light:4:2s:1000:0,busy:10:2s:1000:0",
            "--think-time",
            "20ms",
            "--cooldown",
            "200ms",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(v["breaking_point"].is_null(), "{v:#}");
    assert_eq!(v["result"], "pass");
    let stages = v["stages"].as_array().expect("stages");
    assert_eq!(stages.len(), 3);
    for s in stages {
        assert_eq!(s["status"], "pass", "{s:#}");
        // How many depends on the machine's speed: that some ran, none failed.
        assert!(s["requests"].as_u64().unwrap_or(0) > 0, "{s:#}");
        assert_eq!(s["error_rate"], 0.0);
        // both request kinds of the seed mix ran
        assert!(
            s["by_kind"]["send_message"]["requests"]
                .as_u64()
                .unwrap_or(0)
                > 0
        );
        assert!(
            s["by_kind"]["fetch_history"]["requests"]
                .as_u64()
                .unwrap_or(0)
                > 0
        );
        for k in ["duration_s", "vus", "p95_ms", "p99_ms"] {
            assert!(s[k].is_number(), "{k} in {s:#}");
        }
        assert!(s["watch"]["samples"].as_u64().unwrap_or(0) >= 1, "{s:#}");
    }
    assert_eq!(v["backend"]["connection_limit"], 50);
    // every answered send reached PostgreSQL (no stage had an error)
    let answered: u64 = stages
        .iter()
        .map(|s| {
            s["by_kind"]["send_message"]["requests"]
                .as_u64()
                .unwrap_or(0)
        })
        .sum();
    let sent = rt.block_on(async {
        let url = chatops::pg::DbUrl::parse(&sb.db_url).expect("url");
        let c = chatops::pg::activity::connect(&url, "test", Duration::from_secs(5))
            .await
            .expect("connect");
        c.query_one(
            "SELECT count(*) FROM messages WHERE content LIKE 'load test message %'",
            &[],
        )
        .await
        .expect("count")
        .get::<_, i64>(0)
    });
    assert!(
        answered > 0 && u64::try_from(sent).unwrap_or(0) >= answered,
        "{sent} messages stored for {answered} answered sends"
    );
    assert!(!out.contains("postgrespassword"), "secret printed: {out}");
}

#[test]
fn starved_pool_breaks_at_a_named_stage_and_the_diagnosis_names_the_pool() {
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
    let dir = scratch_dir().join(unique("load-export"));
    let dirs = dir.to_string_lossy().into_owned();
    let (code, v, out) = load(
        &url,
        Some(&sb.db_url),
        &[
            "--skip-preflight",
            "--stages",
            "calm:1:2s:5000:0,crowd:12:3s:5000:0,never:20:2s",
            "--think-time",
            "0s",
            "--cooldown",
            "200ms",
            "--export-dir",
            &dirs,
        ],
    );
    assert_eq!(code, 1, "{out}");
    assert_eq!(stage(&v, "calm")["status"], "pass", "{v:#}");
    assert_eq!(stage(&v, "crowd")["status"], "fail", "{v:#}");
    assert_eq!(
        v["stages"].as_array().map(Vec::len),
        Some(2),
        "stopped at the breaking point"
    );
    let bp = &v["breaking_point"];
    assert_eq!(bp["stage"], "crowd", "{bp:#}");
    assert_eq!(bp["cause"], "pool_saturation", "{bp:#}");
    assert!(
        bp["root_cause"].as_str().unwrap_or("").contains("pool"),
        "{bp:#}"
    );
    assert!(
        bp["remedy"]
            .as_str()
            .unwrap_or("")
            .contains("connection_limit"),
        "{bp:#}"
    );
    let crowd = stage(&v, "crowd");
    assert!(
        crowd["pool_timeouts"].as_u64().unwrap_or(0) > 0,
        "{crowd:#}"
    );
    // pg_stat_activity saw the pool's two connections busy
    assert_eq!(crowd["watch"]["max_active"], 2, "{crowd:#}");
    assert_eq!(v["backend"]["connection_limit"], 2);
    let evidence = bp["evidence"].to_string();
    assert!(evidence.contains("pg_stat_activity"), "{evidence}");
    assert!(evidence.contains("connection_limit is 2"), "{evidence}");
    // the export: one JSON file per stage with its samples, the summary, the report
    let crowd_file: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("stage-2-crowd.json")).expect("stage file"),
    )
    .expect("JSON");
    let samples = crowd_file["samples"].as_array().expect("samples");
    assert!(samples.iter().any(|s| s["active"] == 2), "{samples:?}");
    let md = std::fs::read_to_string(dir.join("report.md")).expect("report.md");
    assert!(md.contains("| crowd | 12 |"), "{md}");
    assert!(
        md.contains("Breaking point: crowd (pool_saturation)"),
        "{md}"
    );
    assert!(dir.join("summary.json").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rate_limiter_is_named_when_429s_break_the_stage() {
    let _cpu = load_generator_slot();
    let rt = runtime();
    let (sb, url) = running(
        &rt,
        Knobs {
            rate_limit: true,
            api_limit: Some(30),
            ..Knobs::default()
        },
    );
    let (code, v, out) = load(
        &url,
        Some(&sb.db_url),
        &[
            "--skip-preflight",
            "--stages",
            "trickle:1:1s:2000:0,more:4:2s:2000:0",
            "--think-time",
            "150ms",
            "--cooldown",
            "100ms",
        ],
    );
    assert_eq!(code, 1, "{out}");
    assert_eq!(stage(&v, "trickle")["status"], "pass", "{v:#}");
    let more = stage(&v, "more");
    assert!(
        more["errors"]["rate_limited"].as_u64().unwrap_or(0) > 0,
        "{more:#}"
    );
    assert_eq!(v["breaking_point"]["stage"], "more");
    assert_eq!(v["breaking_point"]["cause"], "rate_limiting", "{v:#}");
    assert!(
        v["breaking_point"]["remedy"]
            .as_str()
            .unwrap_or("")
            .contains("DISABLE_RATE_LIMIT=true")
    );
}

/// A loopback HTTP server whose `stall_at`-th request waits `stall` before
/// answering; every other request answers at once.
fn stalling_server(stall_at: u64, stall: Duration) -> u16 {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            tx.send(l.local_addr().expect("addr").port()).expect("port");
            let n = Arc::new(AtomicU64::new(0));
            loop {
                let Ok((s, _)) = l.accept().await else {
                    continue;
                };
                let n = n.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |_req| {
                        let i = n.fetch_add(1, Ordering::SeqCst) + 1;
                        async move {
                            if i == stall_at {
                                tokio::time::sleep(stall).await;
                            }
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(
                                http_body_util::Full::new(bytes::Bytes::from_static(b"ok")),
                            ))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                        .await;
                });
            }
        });
    });
    rx.recv().expect("server port")
}

const GET_PLAN: &str = r#"name: stall
mix:
  - name: get
    request: {url: "${base_url}/x"}
stages: [{name: s, vus: 1, duration: 1s}]
"#;

#[test]
fn open_model_corrects_for_coordinated_omission() {
    let _cpu = load_generator_slot();
    let plan = write_playbook(GET_PLAN);
    let plan = plan.to_string_lossy().into_owned();
    let stall = Duration::from_millis(1000);
    // Closed model, one user: the stall delays a single measured request.
    let url = format!("http://127.0.0.1:{}", stalling_server(50, stall));
    let (code, v, out) = load(
        &url,
        None,
        &[
            "--skip-preflight",
            "--plan",
            &plan,
            "--model",
            "closed",
            "--stages",
            "c:1:3s",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let c = stage(&v, "c");
    assert!(
        c["max_ms"].as_f64().unwrap_or(0.0) >= 900.0,
        "the stall was measured once: {c:#}"
    );
    assert!(
        c["p99_ms"].as_f64().unwrap_or(1e9) < 300.0,
        "closed p99 hides the stall: {c:#}"
    );
    // Open model, 100 sends a second on one connection: every send scheduled
    // during the stall waits for it, measured from its scheduled time.
    let url = format!("http://127.0.0.1:{}", stalling_server(50, stall));
    let (code, v, out) = load(
        &url,
        None,
        &[
            "--skip-preflight",
            "--plan",
            &plan,
            "--stages",
            "o:100/s*1:3s",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let o = stage(&v, "o");
    assert_eq!(o["model"], "open");
    assert!(
        o["p99_ms"].as_f64().unwrap_or(0.0) >= 700.0,
        "open p99 shows the stall: {o:#}"
    );
    assert!(o["p90_ms"].as_f64().unwrap_or(0.0) >= 100.0, "{o:#}");
    let planned = o["planned"].as_u64().unwrap_or(0);
    assert_eq!(planned, 300, "{o:#}");
    assert_eq!(
        o["requests"].as_u64().unwrap_or(0) + o["dropped"].as_u64().unwrap_or(0),
        300,
        "{o:#}"
    );
}

/// A loopback HTTP server answering `ok` at once, reporting each request's
/// path on the channel.
fn recording_server() -> (u16, std::sync::mpsc::Receiver<String>) {
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    let (path_tx, path_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            port_tx
                .send(l.local_addr().expect("addr").port())
                .expect("port");
            loop {
                let Ok((s, _)) = l.accept().await else {
                    continue;
                };
                let path_tx = path_tx.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: hyper::Request<_>| {
                        let _ = path_tx.send(req.uri().path().to_string());
                        async {
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(
                                http_body_util::Full::new(bytes::Bytes::from_static(b"ok")),
                            ))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                        .await;
                });
            }
        });
    });
    (port_rx.recv().expect("server port"), path_rx)
}

#[test]
fn ctrl_c_stops_at_once_and_still_reports_the_stages_so_far() {
    let _cpu = load_generator_slot();
    let plan = write_playbook(include_str!("../fixtures/load-get-by-vu.yaml"));
    let (port, paths) = recording_server();
    let url = format!("http://127.0.0.1:{port}");
    let child = std::process::Command::new(bin())
        .args([
            "load",
            "--format",
            "json",
            "--skip-preflight",
            "--base-url",
            &url,
            "--think-time",
            "10ms",
        ])
        .arg("--plan")
        .arg(&plan)
        .args(["--stages", "first:2:1s,second:3:60s"])
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    // Users 0 and 1 run in both stages, user 2 only in `second`. Its second
    // request means `first` is over and `second` has a measured request.
    let mut seen = 0;
    while seen < 2 {
        let path = paths
            .recv_timeout(Duration::from_secs(60))
            .expect("the second stage never started");
        if path == "/vu/2" {
            seen += 1;
        }
    }
    interrupt_when_ready(child.id());
    // Far less than the 60 s stage: a load that ignores SIGINT fails here.
    let out = wait_output(child, Duration::from_secs(20), "chatops load after SIGINT");
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("partial summary");
    assert_eq!(v["result"], "interrupted");
    assert_eq!(stage(&v, "first")["status"], "pass");
    assert_eq!(stage(&v, "second")["status"], "interrupted");
    assert!(stage(&v, "second")["requests"].as_u64().unwrap_or(0) > 0);
}

#[test]
fn bad_input_and_remote_targets_are_refused_with_exit_2() {
    for (args, needle) in [
        (vec!["--stages", "a:0:1s"], "virtual users"),
        (vec!["--stages", "a:5:soon"], "duration"),
        (vec!["--max-duration", "0s"], "--max-duration"),
        (vec!["--model", "open"], "rate"),
        (vec!["--base-url", "http://10.1.2.3:3001"], "--allow-remote"),
        (vec!["--plan", "/nonexistent/plan.yaml"], "cannot read plan"),
    ] {
        let mut a = vec!["load", "--skip-preflight"];
        a.extend(args.iter().copied());
        let r = chatops(&a, &[]);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(needle), "{args:?}: {}", r.stderr);
    }
    let bad = write_playbook(
        r#"stages:
  - name: a
    vus: 3
    duration: 1s
    p95: 100
"#,
    );
    let r = chatops(&["load", "--plan", &bad.to_string_lossy()], &[]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains(":5:"), "located: {}", r.stderr);
    assert!(r.stderr.contains("p95_ms"), "suggestion: {}", r.stderr);
}

#[test]
fn preflight_refuses_a_backend_that_is_not_running() {
    let port = chatops::sandbox::free_port();
    let url = format!("http://127.0.0.1:{port}");
    let r = chatops(&["load", "--base-url", &url, "--stages", "a:1:1s"], &[]);
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("preflight failed"), "{}", r.stderr);
    assert!(r.stdout.is_empty(), "no load ran: {}", r.stdout);
}

#[test]
fn emit_k6_writes_the_equivalent_script_without_sending() {
    let out = scratch_dir().join(format!("{}.js", unique("k6")));
    let r = chatops(
        &[
            "load",
            "--emit-k6",
            &out.to_string_lossy(),
            "--base-url",
            "http://127.0.0.1:9",
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let js = std::fs::read_to_string(&out).expect("script");
    assert!(
        js.contains("\"ultimate\": { executor: 'constant-vus', vus: 120, duration: '300s'"),
        "{js}"
    );
    assert!(
        js.contains("'http_req_duration{stage:baseline}': [{ threshold: 'p(95)<100'"),
        "{js}"
    );
    assert!(js.contains("weight: 30, method: \"GET\""), "{js}");
    let _ = std::fs::remove_file(out);
}

#[test]
fn captured_values_feed_later_requests_of_the_same_user() {
    let _cpu = load_generator_slot();
    let rt = runtime();
    let (sb, url) = running(&rt, Knobs::default());
    let plan = write_playbook(
        r#"name: replies
vars:
  users: ["00000000-0000-0000-0000-000000000000"]
  conversations: ["8822dd87-d0c2-42be-93d2-1c0cb492e351"]
mix:
  - name: send
    weight: 1
    request:
      method: POST
      url: "${base_url}/api/v1/chat/conversations/${pick.conversations}/messages"
      json: {userId: "${pick.users}", content: "first ${random}"}
    capture: {mid: json.message.id}
  - name: reply
    weight: 1
    request:
      method: POST
      url: "${base_url}/api/v1/chat/conversations/${pick.conversations}/messages"
      json: {userId: "${pick.users}", content: "reply to ${capture.mid}"}
stages: [{name: s, vus: 2, duration: 2s, max_error_pct: 0}]
"#,
    );
    let (code, v, out) = load(
        &url,
        Some(&sb.db_url),
        &["--skip-preflight", "--plan", &plan.to_string_lossy()],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        stage(&v, "s")["by_kind"]["reply"]["requests"]
            .as_u64()
            .unwrap_or(0)
            > 0,
        "{v:#}"
    );
    // every reply names a message that exists: the id came from a real answer
    let (replies, dangling) = rt.block_on(async {
        let url = chatops::pg::DbUrl::parse(&sb.db_url).expect("url");
        let c = chatops::pg::activity::connect(&url, "test", Duration::from_secs(5))
            .await
            .expect("connect");
        let row = c
            .query_one(
                "SELECT count(*), count(*) FILTER (WHERE NOT EXISTS (
                   SELECT 1 FROM messages o WHERE o.id = substr(r.content, 10)))
                 FROM messages r WHERE r.content LIKE 'reply to %'",
                &[],
            )
            .await
            .expect("query");
        (row.get::<_, i64>(0), row.get::<_, i64>(1))
    });
    assert!(replies > 0, "no reply was stored");
    assert_eq!(
        dangling, 0,
        "{dangling} of {replies} replies name no real message"
    );
}

/// A loopback HTTP server that closes every connection after one answer.
fn closing_server() -> u16 {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            tx.send(l.local_addr().expect("addr").port()).expect("port");
            loop {
                let Ok((s, _)) = l.accept().await else {
                    continue;
                };
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(|_req| async {
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(
                            http_body_util::Full::new(bytes::Bytes::from_static(b"bye")),
                        ))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(false)
                        .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                        .await;
                });
            }
        });
    });
    rx.recv().expect("server port")
}

#[test]
fn connections_closed_by_the_server_are_reopened_without_errors() {
    let _cpu = load_generator_slot();
    let plan = write_playbook(GET_PLAN);
    let url = format!("http://127.0.0.1:{}", closing_server());
    let (code, v, out) = load(
        &url,
        None,
        &[
            "--skip-preflight",
            "--plan",
            &plan.to_string_lossy(),
            "--stages",
            "c:2:1s:1000:0",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let s = stage(&v, "c");
    // More requests than users: every user went on after its connection
    // was closed.
    assert!(s["requests"].as_u64().unwrap_or(0) > 2, "{s:#}");
    assert_eq!(s["errors"]["transport"], 0, "{s:#}");
}

#[test]
fn a_backend_that_dies_mid_stage_is_diagnosed_as_a_crash() {
    let _cpu = load_generator_slot();
    let rt = runtime();
    let (sb, url) = running(&rt, Knobs::default());
    let backend = sb.backend.as_ref().expect("backend");
    let (pid, log) = (backend.pid, backend.log.clone());
    let plan = write_playbook(include_str!("../fixtures/load-seed-mix-by-vu.yaml"));
    // `doomed` has a third user (vu=2) that `baseline` lacks: the backend is
    // killed as soon as its request log shows that user.
    let killer = std::thread::spawn(move || {
        wait_until(
            Duration::from_secs(60),
            "the doomed stage's first request in the backend's log",
            || {
                std::fs::read_to_string(&log)
                    .ok()
                    .filter(|l| l.contains("vu=2"))
            },
        );
        signal(pid, libc::SIGKILL);
    });
    let (code, v, out) = load(
        &url,
        Some(&sb.db_url),
        &[
            "--skip-preflight",
            "--plan",
            &plan.to_string_lossy(),
            "--stages",
            "baseline:2:1s:1000:0,doomed:3:3s:1000:1",
            "--think-time",
            "20ms",
            "--cooldown",
            "200ms",
        ],
    );
    killer.join().expect("the killer thread");
    assert_eq!(code, 1, "{out}");
    assert_eq!(stage(&v, "baseline")["status"], "pass", "{v:#}");
    let doomed = stage(&v, "doomed");
    assert!(
        doomed["errors"]["refused"].as_u64().unwrap_or(0) > 0,
        "{doomed:#}"
    );
    assert_eq!(doomed["watch"]["backend_alive_at_end"], false, "{doomed:#}");
    assert_eq!(v["breaking_point"]["stage"], "doomed");
    assert_eq!(v["breaking_point"]["cause"], "crash", "{v:#}");
    assert!(
        v["breaking_point"]["root_cause"]
            .as_str()
            .unwrap_or("")
            .contains("process is gone"),
        "{v:#}"
    );
}

#[test]
fn human_report_breaks_latency_down_by_request_kind() {
    let _cpu = load_generator_slot();
    let rt = runtime();
    let (_sb, url) = running(&rt, Knobs::default());
    let r = chatops(
        &[
            "load",
            "--skip-preflight",
            "--color",
            "never",
            "--base-url",
            &url,
            "--stages",
            "only:4:1s",
            "--think-time",
            "20ms",
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("By request kind"), "{}", r.stdout);
    for kind in ["send_message", "fetch_history"] {
        let line = r
            .stdout
            .lines()
            .find(|l| l.contains(kind))
            .unwrap_or_else(|| panic!("no {kind} row in\n{}", r.stdout));
        // Phase, kind, a request count above zero, no errors.
        let cells: Vec<&str> = line.split('│').map(str::trim).collect();
        assert_eq!(cells[1], "only", "{line}");
        assert!(cells[3].parse::<u64>().unwrap_or(0) > 0, "{line}");
        assert!(cells[4].starts_with("0 "), "{line}");
    }
}

/// A trivial HTTPS/1.1 server on 127.0.0.1 with the certificate for
/// `localhost` from `make_certs`: every request head gets `200 ok`.
fn https_server(rt: &tokio::runtime::Runtime, certs: &std::path::Path) -> u16 {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(certs.join("server.crt"))
            .expect("server.crt")
            .collect::<Result<_, _>>()
            .expect("certificates");
    let key = PrivateKeyDer::from_pem_file(certs.join("server.key")).expect("server.key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocols")
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    rt.spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut s) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    while let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..i + 4);
                        let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                        if s.write_all(answer).await.is_err() || s.flush().await.is_err() {
                            return;
                        }
                    }
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    port
}

#[test]
fn https_targets_are_verified_or_explicitly_insecure() {
    let _cpu = load_generator_slot();
    let rt = runtime();
    let certs = make_certs();
    let port = https_server(&rt, &certs);
    let plan = write_playbook(
        r#"name: tls
mix:
  - name: get
    request: {url: "${base_url}/"}
stages: [{name: only, vus: 3, duration: 1s}]
"#,
    );
    let url = format!("https://localhost:{port}");
    let args = |extra: &[&'static str]| {
        let mut a = vec![
            "load".to_string(),
            "--skip-preflight".into(),
            "--format".into(),
            "json".into(),
            "--base-url".into(),
            url.clone(),
            "--plan".into(),
            plan.to_string_lossy().into_owned(),
            "--think-time".into(),
            "10ms".into(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let run = |extra: &[&'static str], env: &[(&str, &str)]| {
        let a = args(extra);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let r = chatops(&a, env);
        let v: Value = serde_json::from_str(&r.stdout).unwrap_or(Value::Null);
        (r.code, v, format!("{}\n{}", r.stdout, r.stderr))
    };
    let ca = certs.join("ca.crt").to_string_lossy().into_owned();
    // Verified against the test CA.
    let (code, v, out) = run(&[], &[("SSL_CERT_FILE", &ca)]);
    assert_eq!(code, 0, "{out}");
    let s = stage(&v, "only");
    assert!(s["requests"].as_u64().unwrap_or(0) > 0, "{s:#}");
    assert_eq!(s["error_rate"], 0.0, "{s:#}");
    // An unknown CA: every request fails at the handshake (transport).
    let empty = certs.join("none.pem");
    std::fs::write(&empty, "").expect("empty bundle");
    let (code, v, out) = run(&[], &[("SSL_CERT_FILE", &empty.to_string_lossy())]);
    assert_eq!(code, 1, "{out}");
    let s = stage(&v, "only");
    assert_eq!(s["ok"], 0, "{s:#}");
    assert!(s["errors"]["transport"].as_u64().unwrap_or(0) > 0, "{s:#}");
    let bp = &v["breaking_point"];
    assert_eq!(bp["cause"], "transport", "{bp:#}");
    assert!(
        bp["root_cause"].to_string().contains("TLS handshake"),
        "{bp:#}"
    );
    assert!(bp["remedy"].to_string().contains("SSL_CERT_FILE"), "{bp:#}");
    // --insecure accepts it.
    let (code, v, out) = run(
        &["--insecure"],
        &[("SSL_CERT_FILE", &empty.to_string_lossy())],
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(stage(&v, "only")["error_rate"], 0.0);
    let _ = std::fs::remove_dir_all(&certs);
}
