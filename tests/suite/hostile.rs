//! chatops against servers that misbehave on purpose (see `hostile_server`):
//! every `http`, `rate_limit` and `stability` check, and `chatops load`,
//! against each mode: a classified finding within the check's timeout plus
//! one second, no panic, and chatops's peak memory under 64 MB.

use crate::common::*;
use crate::hostile_server::{Mode, Server};
use chatops::probe::http::Failure;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// chatops's peak memory in any of these runs.
const MAX_RSS_KB: u64 = 64 * 1024;

/// Runs `cmd` (stdout and stderr captured) to its end, killing it after
/// `guard`: its exit code, stdout, stderr, peak RSS in KB and wall time.
/// The peak is the process's own high-water mark (`VmHWM` in
/// /proc/PID/status), read every few milliseconds until it exits: the
/// child's `ru_maxrss` would also count the test binary's memory it shared
/// between fork and exec.
pub fn run_measured(mut cmd: Command, guard: Duration) -> (i32, String, String, u64, Duration) {
    use std::io::Read;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    #[allow(clippy::zombie_processes)] // reaped by wait4 below
    let mut child = cmd.spawn().expect("spawn chatops");
    let pid = child.id() as libc::pid_t;
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let status_path = format!("/proc/{pid}/status");
    let mut peak_kb = 0u64;
    let (code, _) = loop {
        if let Some(kb) = std::fs::read_to_string(&status_path).ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        }) {
            peak_kb = peak_kb.max(kb);
        }
        let mut status: libc::c_int = 0;
        // SAFETY: a zeroed rusage is a valid value for wait4 to fill.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: wait4 on our own child, with valid pointers.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut ru) };
        if r == pid {
            let code = if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                128 + libc::WTERMSIG(status)
            };
            break (code, ru.ru_maxrss as u64);
        }
        assert!(r == 0, "wait4: {}", std::io::Error::last_os_error());
        if started.elapsed() > guard {
            let _ = child.kill();
            panic!("chatops was still running after {guard:?} (killed)");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let rss_kb = peak_kb;
    assert!(rss_kb > 0, "never read chatops's VmHWM");
    let wall = started.elapsed();
    (
        code,
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
        rss_kb,
        wall,
    )
}

fn checks_playbook(url: &str) -> String {
    format!(
        r#"settings: {{concurrency: 3, allow_remote: false}}
phases:
  - name: Hostile
    checks:
      - id: http
        kind: http
        timeout: 2s
        request: {{url: "{url}/api/v1/health"}}
        expect: {{status: 200, json: {{status: ok}}}}
      - id: rate_limit
        kind: rate_limit
        timeout: 2s
        requests: 20
        concurrency: 4
        request: {{url: "{url}/api/v1/health"}}
      - id: stability
        kind: stability
        timeout: 2s
        duration: 0s
        health: "{url}/api/v1/health"
"#
    )
}

/// What each check should report against a mode: the failure class (the
/// `error` of an `http_connect` fault, the words of a failed health
/// sample), or another outcome.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Class(Failure),
    /// The answer was judged (a body cut at its declared length): the
    /// `http` check's JSON expectation fails, the others pass.
    Judged,
}

fn expected(mode: Mode) -> Expect {
    use Failure::*;
    Expect::Class(match mode {
        Mode::SlowHeaders
        | Mode::LengthLonger
        | Mode::ContinueForever
        | Mode::TlsStall
        | Mode::NeverReads => Timeout,
        Mode::EndlessChunked | Mode::EndlessNoLength | Mode::HugeHeaderLine | Mode::ManyHeaders => {
            TooLarge
        }
        Mode::BrokenChunkSize | Mode::NotHttp | Mode::RedirectLoop => Protocol,
        Mode::CloseMidBody | Mode::ResetAfterRequest => Reset,
        Mode::TlsGarbage => Tls,
        Mode::LengthShorter | Mode::Healthy => return Expect::Judged,
    })
}

/// The checks' timeout in these playbooks.
const TIMEOUT_MS: u64 = 2000;

/// One doctor run against one mode: what each check found, in a line each
/// (for the table), after asserting it.
fn checks_against(mode: Mode) -> Vec<String> {
    let server = Server::start(mode);
    let p = write_playbook(&checks_playbook(&server.url()));
    let mut c = Command::new(bin());
    c.args(["doctor", "--format", "json", "--playbook"])
        .arg(&p)
        .env("NO_COLOR", "1");
    let (code, out, err, rss_kb, wall) = run_measured(c, Duration::from_secs(60));
    assert!(!err.contains("panicked"), "{mode:?}: a panic: {err}");
    assert_eq!(code, 1, "{mode:?}: {err}\n{out}");
    assert!(
        rss_kb < MAX_RSS_KB,
        "{mode:?}: chatops peaked at {rss_kb} KB (bound {MAX_RSS_KB} KB)"
    );
    let v: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{mode:?}: not JSON ({e}): {out}"));
    let mut rows = Vec::new();
    for id in ["http", "rate_limit", "stability"] {
        let r = check(&v, id);
        let ms = r["duration_ms"].as_u64().unwrap_or(u64::MAX);
        assert!(
            ms <= TIMEOUT_MS + 1000,
            "{mode:?} {id}: {ms} ms, over its timeout + 1 s: {r}"
        );
        let fault = &r["fault"];
        match expected(mode) {
            // On a starved machine the engine's backstop (the timeout plus a
            // little grace) may end a check whose own timer is late: that
            // is a timeout too, said as such (it only happens at the
            // timeout: a check that took less is held to its class).
            Expect::Class(_)
                if r["status"] == "error"
                    && r["summary"]
                        .as_str()
                        .is_some_and(|s| s.starts_with("timed out after")) => {}
            Expect::Class(f) => {
                assert_eq!(r["status"], "fail", "{mode:?} {id}: {r}");
                // Likewise a hostile server too slow (on a starved machine)
                // to misbehave within the check's whole timeout: a timeout.
                let f = if f != Failure::Timeout
                    && ms + 200 >= TIMEOUT_MS
                    && (fault["error"] == "timeout"
                        || fault["first"] == Failure::Timeout.describe())
                {
                    Failure::Timeout
                } else {
                    f
                };
                let class = serde_json::to_value(f).expect("class");
                if id == "stability" {
                    assert_eq!(fault["cause"], "health_flapping", "{mode:?} {id}: {r}");
                    assert_eq!(fault["first"], f.describe(), "{mode:?} {id}: {r}");
                } else {
                    assert_eq!(fault["cause"], "http_connect", "{mode:?} {id}: {r}");
                    assert_eq!(fault["error"], class, "{mode:?} {id}: {r}");
                }
            }
            Expect::Judged if id == "http" => {
                assert_eq!(r["status"], "fail", "{mode:?} {id}: {r}");
                assert_eq!(fault["cause"], "http_body", "{mode:?} {id}: {r}");
            }
            Expect::Judged => assert_eq!(r["status"], "pass", "{mode:?} {id}: {r}"),
        }
        rows.push(format!(
            "{mode:?} {id}: {} in {ms} ms ({})",
            r["status"], r["summary"]
        ));
    }
    rows.push(format!(
        "{mode:?}: peak RSS {} KB, doctor {} ms",
        rss_kb,
        wall.as_millis()
    ));
    rows
}

/// Runs `f` on every hostile mode, `parallel` at a time, and prints the
/// rows they return (the figures of the table) in the modes' order.
fn for_each_mode(parallel: usize, f: fn(Mode) -> Vec<String>) {
    let modes: Vec<Mode> = Mode::HOSTILE.to_vec();
    let mut rows = Vec::new();
    for batch in modes.chunks(parallel) {
        let handles: Vec<_> = batch
            .iter()
            .map(|&m| (m, std::thread::spawn(move || f(m))))
            .collect();
        for (m, h) in handles {
            match h.join() {
                Ok(r) => rows.extend(r),
                Err(e) => std::panic::resume_unwind(e),
            }
            let _ = m;
        }
    }
    for r in rows {
        eprintln!("{r}");
    }
}

#[test]
fn every_check_classifies_every_hostile_server_in_time_and_memory() {
    for_each_mode(3, checks_against);
}

#[test]
fn max_body_bounds_what_the_http_check_reads_and_says_it_was_cut() {
    let server = Server::start(Mode::EndlessChunked);
    let y = format!(
        r#"phases:
  - name: A
    checks:
      - {{id: big, kind: http, timeout: 2s, max_body: 64KB, request: {{url: "{}/"}}}}
"#,
        server.url()
    );
    let (code, v) = doctor_json(&y, &[]);
    assert_eq!(code, 1);
    let r = check(&v, "big");
    assert_eq!(r["fault"]["error"], "too_large", "{r}");
    assert!(
        r["summary"]
            .as_str()
            .unwrap_or("")
            .contains("max_body (64 KB)"),
        "{r}"
    );
    let ev = r["evidence"].to_string();
    assert!(ev.contains("cut: only the first 64 KB were read"), "{ev}");
    // A bad size is a located playbook error.
    let y = y.replace("64KB", "lots");
    let (code, _, out) = chatops_json(&["validate", write_playbook(&y).to_str().expect("path")]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("max_body") && out.contains("64KB or 1MB"),
        "{out}"
    );
}

/// The load stage's length and the per-request timeout in these runs.
const STAGE_S: f64 = 2.0;
const REQUEST_TIMEOUT_S: f64 = 1.0;

/// How `chatops load` should count a mode's answers: the error class every
/// request falls in, or None when they succeed (a 302 is a success, as the
/// generator does not follow redirects; a body cut at its declared length
/// is the answer, and the connection is not reused after it).
fn load_class(mode: Mode) -> Option<&'static str> {
    match mode {
        Mode::SlowHeaders
        | Mode::LengthLonger
        | Mode::ContinueForever
        | Mode::TlsStall
        | Mode::NeverReads => Some("timeout"),
        Mode::RedirectLoop | Mode::LengthShorter | Mode::Healthy => None,
        _ => Some("transport"),
    }
}

fn load_args(url: &str, stage: &str) -> Vec<String> {
    [
        "load",
        "--format",
        "json",
        "--skip-preflight",
        "--base-url",
        url,
        "--stages",
        stage,
        "--warmup",
        "0s",
        "--timeout",
        "1s",
        "--think-time",
        "50ms",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn load_against(mode: Mode) -> Vec<String> {
    let server = Server::start(mode);
    let mut c = Command::new(bin());
    c.args(load_args(&server.url(), "h:4:2s"))
        .env("NO_COLOR", "1");
    let (code, out, err, rss_kb, wall) = run_measured(c, Duration::from_secs(60));
    assert!(!err.contains("panicked"), "{mode:?}: a panic: {err}");
    assert!(
        rss_kb < MAX_RSS_KB,
        "{mode:?}: chatops load peaked at {rss_kb} KB (bound {MAX_RSS_KB} KB)"
    );
    let v: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{mode:?}: not JSON ({e}): {err}"));
    let s = &v["stages"][0];
    let elapsed = s["elapsed_s"].as_f64().unwrap_or(f64::MAX);
    // On time: the stage, plus the last requests' timeout, plus a little.
    assert!(
        elapsed <= STAGE_S + REQUEST_TIMEOUT_S + 0.5,
        "{mode:?}: the stage took {elapsed} s: {s}"
    );
    let requests = s["requests"].as_u64().unwrap_or(0);
    assert!(requests > 0, "{mode:?}: no request was counted: {s}");
    let errors = &s["errors"];
    match load_class(mode) {
        Some(class) => {
            assert_eq!(code, 1, "{mode:?}: {err}");
            assert_eq!(v["result"], "breaking_point", "{mode:?}: {v}");
            // Every request is an error of its class; on a starved machine
            // the hostile server itself may be too slow to misbehave within
            // the request timeout, which is a timeout, said as such.
            let of_class = errors[class].as_u64().unwrap_or(0);
            let timeouts = errors["timeout"].as_u64().unwrap_or(0);
            assert!(
                of_class > 0 && (of_class == requests || of_class + timeouts == requests),
                "{mode:?}: every request should count as {class} (or a timeout): {s}"
            );
            // A server that never answers is not the generator's fault.
            assert_ne!(
                v["breaking_point"]["cause"], "generator_saturated",
                "{mode:?}: {v}"
            );
        }
        None => {
            assert_eq!(code, 0, "{mode:?}: {err}\n{s}");
            assert_eq!(s["error_rate"].as_f64(), Some(0.0), "{mode:?}: {s}");
        }
    }
    vec![format!(
        "{mode:?} load: {} in {elapsed:.2} s stage ({} ms run), {requests} request(s), errors {errors}, cause {}, peak RSS {rss_kb} KB",
        v["result"],
        wall.as_millis(),
        v["breaking_point"]["cause"]
    )]
}

#[test]
fn load_counts_every_hostile_server_as_classified_errors_on_time_and_in_bounded_memory() {
    let _cpu = load_generator_slot();
    for_each_mode(4, load_against);
}

#[test]
fn ctrl_c_stops_a_load_against_servers_that_hang_or_flood() {
    let _cpu = load_generator_slot();
    let modes = [
        Mode::NeverReads,
        Mode::SlowHeaders,
        Mode::EndlessChunked,
        Mode::TlsStall,
        Mode::ResetAfterRequest,
    ];
    let runs: Vec<_> = modes
        .iter()
        .map(|&m| {
            let server = Server::start(m);
            let child = Command::new(bin())
                .args(load_args(&server.url(), "long:4:60s"))
                .env("NO_COLOR", "1")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn chatops load");
            (m, server, child)
        })
        .collect();
    for (m, _server, child) in runs {
        interrupt_when_ready(child.id());
        let t = Instant::now();
        // Far less than the 60 s stage.
        let out = wait_output(child, Duration::from_secs(15), "load after SIGINT");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(130), "{m:?}: {err}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{m:?}: no partial summary ({e}): {err}"));
        assert_eq!(v["result"], "interrupted", "{m:?}: {v}");
        eprintln!("{m:?}: SIGINT → exit 130 in {} ms", t.elapsed().as_millis());
    }
}
