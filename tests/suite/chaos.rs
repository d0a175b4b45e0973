//! Chaos during long runs, each bounded: PostgreSQL restarted under
//! `chatops load`; the backend killed and restarted under the doctor's
//! stability check and a load stage (a restart, with the new pid); a
//! network that stops forwarding mid-run (a loopback TCP proxy in the test
//! between chatops and PostgreSQL, and between chatops and the backend):
//! timeouts classified within their bounds, nothing waits forever.
//! (watch-connections through a PostgreSQL restart is in `watch.rs`.)

use crate::common::*;
use chatops::sandbox::pg::PgOptions;
use chatops::sandbox::{Knobs, Sandbox};
use std::io::{BufRead, BufReader};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A loopback TCP proxy to `127.0.0.1:upstream` that can stop forwarding
/// (holding the bytes, keeping every connection open) at any moment.
struct Proxy {
    port: u16,
    stalled: Arc<AtomicBool>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Proxy {
    fn start(upstream: u16) -> Proxy {
        let stalled = Arc::new(AtomicBool::new(false));
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let st = stalled.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("proxy runtime");
            rt.block_on(async move {
                let l = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                let _ = port_tx.send(l.local_addr().expect("addr").port());
                let accept = async {
                    loop {
                        let Ok((down, _)) = l.accept().await else {
                            continue;
                        };
                        let st = st.clone();
                        tokio::spawn(async move {
                            let Ok(up) =
                                tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                            else {
                                return;
                            };
                            let (dr, dw) = down.into_split();
                            let (ur, uw) = up.into_split();
                            tokio::spawn(pipe(dr, uw, st.clone()));
                            pipe(ur, dw, st).await;
                        });
                    }
                };
                tokio::select! {
                    _ = accept => {}
                    _ = stop_rx => {}
                }
            });
        });
        let port = port_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("proxy port");
        Proxy {
            port,
            stalled,
            stop: Some(stop_tx),
        }
    }

    /// From now on, nothing goes through (connections stay open).
    fn stall(&self) {
        self.stalled.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Copies `r` to `w`, holding what it read while the proxy is stalled.
async fn pipe(
    mut r: tokio::net::tcp::OwnedReadHalf,
    mut w: tokio::net::tcp::OwnedWriteHalf,
    stalled: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while stalled.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if w.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// `chatops load` arguments for one stage against `base` (and `db`).
fn load_args(base: &str, db: &str, stage: &str, export: Option<&str>) -> Vec<String> {
    let mut a = strings(&[
        "load",
        "--format",
        "json",
        "--skip-preflight",
        "--base-url",
        base,
        "--database-url",
        db,
        "--stages",
        stage,
        "--warmup",
        "0s",
        "--timeout",
        "1s",
        "--think-time",
        "100ms",
    ]);
    if let Some(e) = export {
        a.extend(strings(&["--export-dir", e]));
    }
    a
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .unwrap_or_else(|| panic!("no port in {url}"))
}

/// Waits until `pid` is running its command (its signal handlers are in
/// place: the run has begun), then `extra` longer.
fn until_running(pid: u32, extra: Duration) {
    wait_until(Duration::from_secs(60), "chatops to start its run", || {
        catches_signal(pid, libc::SIGTERM).then_some(())
    });
    std::thread::sleep(extra);
}

/// Whether an established TCP connection to 127.0.0.1:`port` exists (from
/// /proc/net/tcp): the check has begun talking to the backend.
fn connected_to(port: u16) -> bool {
    let hex = format!(":{port:04X}");
    std::fs::read_to_string("/proc/net/tcp")
        .map(|t| {
            t.lines().skip(1).any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() > 3 && f[2].ends_with(&hex) && f[3] == "01"
            })
        })
        .unwrap_or(false)
}

#[test]
fn load_survives_a_postgresql_restart_and_reports_the_gap() {
    let _cpu = load_generator_slot();
    // A cluster of its own: stopping the shared one would break other tests.
    let pg = start_cluster(PgOptions::default());
    let rt = runtime();
    let mut sb = rt
        .block_on(Sandbox::on_cluster(&bin(), pg, "chat_chaos"))
        .unwrap_or_else(|e| panic!("sandbox: {e}"));
    let url = start(&rt, &mut sb, Knobs::default());
    let export = scratch_dir().join(unique("chaos-pg"));
    let e = export.to_string_lossy().into_owned();
    let child = spawn_chatops(&load_args(&url, &sb.db_url, "s:2:9s", Some(&e)));
    until_running(child.id(), Duration::from_millis(1500));
    let t = Instant::now();
    rt.block_on(sb.stop_database()).expect("stop PostgreSQL");
    std::thread::sleep(Duration::from_secs(2));
    rt.block_on(sb.start_database())
        .expect("start PostgreSQL again");
    let down_for = t.elapsed();
    let out = wait_output(child, Duration::from_secs(60), "load through a restart");
    let err = String::from_utf8_lossy(&out.stderr);
    // It ends as a run does: passed, or a breaking point (requests failed
    // while the database was down), never interrupted or refused.
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{:?}: {err}",
        out.status
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("summary");
    let w = &v["stages"][0]["watch"];
    let down = w["db_down_s"].as_u64().unwrap_or(0);
    assert!(
        down >= 1 && down as f64 <= down_for.as_secs_f64() + 2.0,
        "the gap ({down_for:?}) should be reported as PostgreSQL down for those seconds: {w}"
    );
    assert!(w["db_down_from_s"].as_f64().is_some(), "{w}");
    // The sampler reconnected: the last seconds have database samples again.
    let stage: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(export.join("stage-1-s.json")).expect("exported stage"),
    )
    .expect("stage JSON");
    let samples = stage["samples"].as_array().expect("samples");
    let last = samples.last().expect("a sample");
    assert_eq!(last["db_up"], true, "not reconnected: {last}");
    assert!(last["db_samples"].as_u64().unwrap_or(0) > 0, "{last}");
    let md = std::fs::read_to_string(export.join("report.md")).expect("report.md");
    assert!(
        md.contains(&format!("PostgreSQL was down for {down} s in `s`")),
        "{md}"
    );
    eprintln!(
        "PostgreSQL down {down_for:?} during load: reported {down} s down from {} s, result {}",
        w["db_down_from_s"], v["result"]
    );
}

#[test]
fn stability_reports_a_backend_restart_with_its_new_pid() {
    let rt = runtime();
    let (mut sb, url) = running(&rt, Knobs::default());
    let port = port_of(&url);
    let old = sb.backend.as_ref().map(|b| b.pid).expect("backend pid");
    let pb = write_playbook(&format!(
        r#"phases:
  - name: A
    checks:
      - id: stable
        kind: stability
        timeout: 10s
        duration: 4s
        every: 250ms
        process: {{port: {port}}}
        health: "{url}/api/v1/health"
"#
    ));
    let args = strings(&["doctor", "--format", "json", "--playbook"]);
    let mut args = args;
    args.push(pb.to_string_lossy().into_owned());
    let child = spawn_chatops(&args);
    // The check is watching once its health requests reach the backend.
    wait_until(
        Duration::from_secs(60),
        "the stability check's first sample",
        || connected_to(port).then_some(()),
    );
    let t = Instant::now();
    let new = rt
        .block_on(sb.start_backend(&Knobs {
            port: Some(port),
            ..Knobs::default()
        }))
        .unwrap_or_else(|e| panic!("restart: {e}"))
        .pid;
    let restarted_in = t.elapsed();
    assert_ne!(old, new);
    let out = wait_output(child, Duration::from_secs(60), "doctor through a restart");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("report");
    let c = check(&v, "stable");
    assert_eq!(c["status"], "fail", "{c}");
    assert_eq!(c["fault"]["cause"], "process_restarted", "{c}");
    assert_eq!(c["fault"]["from"], old, "{c}");
    assert_eq!(c["fault"]["to"], new, "the new pid: {c}");
    assert!(
        c["duration_ms"].as_u64().unwrap_or(u64::MAX) <= 10_000,
        "{c}"
    );
    eprintln!(
        "backend restarted in {restarted_in:?} under stability: {} in {} ms",
        c["summary"], c["duration_ms"]
    );
}

#[test]
fn load_reports_a_backend_restart_with_its_new_pid() {
    let _cpu = load_generator_slot();
    let rt = runtime();
    let (mut sb, url) = running(&rt, Knobs::default());
    let port = port_of(&url);
    let old = sb.backend.as_ref().map(|b| b.pid).expect("backend pid");
    let db = sb.db_url.clone();
    let child = spawn_chatops(&load_args(&url, &db, "s:2:6s", None));
    until_running(child.id(), Duration::from_millis(1500));
    let new = rt
        .block_on(sb.start_backend(&Knobs {
            port: Some(port),
            ..Knobs::default()
        }))
        .unwrap_or_else(|e| panic!("restart: {e}"))
        .pid;
    let out = wait_output(child, Duration::from_secs(60), "load through a restart");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{:?}: {err}",
        out.status
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("summary");
    let s = &v["stages"][0];
    let pids: Vec<u64> = s["watch"]["backend_pids"]
        .as_array()
        .map(|a| a.iter().filter_map(|p| p.as_u64()).collect())
        .unwrap_or_default();
    assert_eq!(
        pids,
        vec![u64::from(old), u64::from(new)],
        "a restart, old pid then new: {s}"
    );
    assert!(
        s["elapsed_s"].as_f64().unwrap_or(f64::MAX) <= 6.0 + 1.0 + 0.5,
        "{s}"
    );
    eprintln!(
        "backend restarted under load: pids {pids:?}, result {}, cause {}",
        v["result"], v["breaking_point"]["cause"]
    );
}

#[test]
fn a_network_that_stops_forwarding_is_classified_in_time() {
    let _cpu = load_generator_slot();
    let rt = runtime();
    let (sb, url) = running(&rt, Knobs::default());
    let pg = cluster();
    let http_proxy = Proxy::start(port_of(&url));
    let pg_proxy = Proxy::start(pg.port());
    let proxied_url = format!("http://127.0.0.1:{}", http_proxy.port);
    let proxied_db = sb
        .db_url
        .replace(&format!(":{}/", pg.port()), &format!(":{}/", pg_proxy.port));
    assert_ne!(proxied_db, sb.db_url);

    // chatops load through both: forwarding stops mid-stage (which allows
    // no errors, so the timeouts make it its breaking point).
    let child = spawn_chatops(&load_args(&proxied_url, &proxied_db, "s:2:5s:1000:0", None));
    until_running(child.id(), Duration::from_millis(1500));
    http_proxy.stall();
    pg_proxy.stall();
    let t = Instant::now();
    let out = wait_output(
        child,
        Duration::from_secs(30),
        "load through a stalled network",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("summary");
    let s = &v["stages"][0];
    assert!(s["errors"]["timeout"].as_u64().unwrap_or(0) > 0, "{s}");
    assert!(
        s["elapsed_s"].as_f64().unwrap_or(f64::MAX) <= 5.0 + 1.0 + 0.5,
        "{s}"
    );
    assert!(
        s["watch"]["db_down_s"].as_u64().unwrap_or(0) >= 1,
        "the stalled database is reported as not answering: {s}"
    );
    eprintln!(
        "load: stalled {} ms before its end; {} timeouts, database silent {} s, cause {}",
        t.elapsed().as_millis(),
        s["errors"]["timeout"],
        s["watch"]["db_down_s"],
        v["breaking_point"]["cause"]
    );

    // doctor through the stalled proxies: the http check and the login time
    // out within their timeout plus a second, classified as timeouts.
    let (code, v) = doctor_json(
        &format!(
            r#"phases:
  - name: A
    checks:
      - {{id: health, kind: http, timeout: 2s, request: {{url: "{proxied_url}/api/v1/health"}}}}
      - {{id: login, kind: pg_connect, timeout: 2s, url: "{proxied_db}"}}
"#
        ),
        &[],
    );
    assert_eq!(code, 1, "{v}");
    for id in ["health", "login"] {
        let c = check(&v, id);
        assert_eq!(c["status"], "fail", "{c}");
        assert_eq!(c["fault"]["error"], "timeout", "{c}");
        assert!(c["duration_ms"].as_u64().unwrap_or(u64::MAX) <= 3000, "{c}");
        eprintln!("doctor {id}: {} in {} ms", c["summary"], c["duration_ms"]);
    }

    // watch-connections through a proxy that stalls after the first sample.
    let wproxy = Proxy::start(pg.port());
    let wdb = sb
        .db_url
        .replace(&format!(":{}/", pg.port()), &format!(":{}/", wproxy.port));
    let mut child = spawn_chatops(&strings(&[
        "watch-connections",
        "--database-url",
        &wdb,
        "--format",
        "json",
        "--interval",
        "300ms",
        "--timeout",
        "1s",
    ]));
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                return;
            }
        }
    });
    let first = rx.recv_timeout(Duration::from_secs(30)).expect("a sample");
    assert!(first.contains("\"connected\":true"), "{first}");
    wproxy.stall();
    let t = Instant::now();
    let down = loop {
        let l = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("watch went silent: a sample should say the server does not answer");
        if l.contains("\"connected\":false") {
            break l;
        }
    };
    let took = t.elapsed();
    assert!(took <= Duration::from_secs(3), "{took:?}: {down}");
    assert!(
        down.contains("no answer within 1.00s"),
        "a timeout, said as such: {down}"
    );
    interrupt_when_ready(child.id());
    let status = wait_exit(&mut child, Duration::from_secs(10), "watch after SIGINT");
    assert_eq!(status.code(), Some(130));
    eprintln!("watch-connections: stalled → disconnected sample in {took:?}");
}
