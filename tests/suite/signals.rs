//! SIGTERM is handled as Ctrl-C is by every long-running command (partial
//! report, cleanup of what chatops started, exit 143; 130 stays for SIGINT;
//! a second signal exits at once), and the files chatops writes are written
//! whole or not at all (a write error exits 74, the report still on stdout).
//! Doctor's SIGTERM test is in `engine.rs`.

use crate::common::*;
use crate::hostile_server::{Mode, Server};
use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::mpsc;
use std::time::Duration;

/// Sends each line of `child`'s stdout on a channel; the stdout text is
/// also gathered for the end.
fn lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().expect("piped stdout");
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines() {
            let Ok(l) = l else { return };
            if tx.send(l).is_err() {
                return;
            }
        }
    });
    rx
}

fn stderr_of(child: &mut Child) -> std::thread::JoinHandle<String> {
    let mut err = child.stderr.take().expect("piped stderr");
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    })
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
fn listening(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(300),
    )
    .is_ok()
}

#[test]
fn sigterm_stops_load_with_the_partial_summary_and_exits_143() {
    let server = Server::start(Mode::Healthy);
    let url = server.url();
    let child = spawn_chatops(&[
        "load",
        "--format",
        "json",
        "--skip-preflight",
        "--base-url",
        &url,
        "--stages",
        "long:2:60s",
        "--warmup",
        "0s",
        "--think-time",
        "10ms",
    ]);
    wait_until(Duration::from_secs(30), "the load to send requests", || {
        (server.requests() >= 5).then_some(())
    });
    signal_when_ready(child.id(), libc::SIGTERM);
    // Far less than the 60 s stage: a load that ignores SIGTERM fails here.
    let out = wait_output(child, Duration::from_secs(20), "load after SIGTERM");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("partial summary");
    assert_eq!(v["result"], "interrupted", "{v}");
    assert_eq!(v["stages"][0]["status"], "interrupted", "{v}");
    assert!(v["stages"][0]["requests"].as_u64().unwrap_or(0) > 0, "{v}");
}

#[test]
fn sigterm_stops_watch_connections_with_143() {
    let db_url = cluster().url("postgres");
    let mut child = spawn_chatops(&[
        "watch-connections",
        "--database-url",
        &db_url,
        "--format",
        "json",
        "--interval",
        "200ms",
    ]);
    let rx = lines(&mut child);
    let first = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("a first sample");
    assert!(first.contains("\"connected\":true"), "{first}");
    signal_when_ready(child.id(), libc::SIGTERM);
    let status = wait_exit(&mut child, Duration::from_secs(20), "watch after SIGTERM");
    assert_eq!(status.code(), Some(143));
}

/// `chatops sandbox` until SIGTERM: it removes its cluster and exits 143;
/// its `--env-file` names the cluster's port.
fn sandbox_up() -> (Child, u16, std::thread::JoinHandle<String>) {
    let env = scratch_dir().join(format!("{}.env", unique("sandbox")));
    let env_s = env.to_string_lossy().into_owned();
    let mut child = spawn_chatops(&["sandbox", "--no-backend", "--env-file", &env_s]);
    let _stdout = lines(&mut child);
    let err = stderr_of(&mut child);
    let text = wait_until(Duration::from_secs(90), "the sandbox's env file", || {
        std::fs::read_to_string(&env).ok()
    });
    let port: u16 = text
        .lines()
        .find_map(|l| l.strip_prefix("export CHATOPS_PG_PORT="))
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no CHATOPS_PG_PORT in {text}"));
    assert!(listening(port), "the sandbox's PostgreSQL is not up");
    (child, port, err)
}

#[test]
fn sigterm_removes_the_sandbox_and_exits_143() {
    let (mut child, port, err) = sandbox_up();
    signal_when_ready(child.id(), libc::SIGTERM);
    let status = wait_exit(&mut child, Duration::from_secs(30), "sandbox after SIGTERM");
    let err = err.join().unwrap_or_default();
    assert_eq!(status.code(), Some(143), "{err}");
    assert!(err.contains("sandbox stopped and removed"), "{err}");
    assert!(!listening(port), "PostgreSQL still listens on {port}");
}

#[test]
fn a_second_signal_exits_at_once() {
    // The first signal starts the sandbox's cleanup (stopping PostgreSQL
    // takes a while); the second, right behind it, ends the process there.
    let (mut child, port, err) = sandbox_up();
    signal_when_ready(child.id(), libc::SIGTERM);
    signal(child.id(), libc::SIGINT);
    let status = wait_exit(
        &mut child,
        Duration::from_secs(30),
        "sandbox after two signals",
    );
    let err = err.join().unwrap_or_default();
    assert!(
        err.contains("second signal, exiting now"),
        "the second signal was not what ended it: {err}"
    );
    // The second signal's code: 130 (SIGINT) when it came second.
    assert!(
        matches!(status.code(), Some(130 | 143)),
        "{status:?}: {err}"
    );
    // The stop the first signal began (or the forced exit's hook) still
    // takes PostgreSQL down.
    wait_until(Duration::from_secs(20), "PostgreSQL to stop", || {
        (!listening(port)).then_some(())
    });
}

#[test]
fn sigterm_interrupts_the_demo_removes_its_sandbox_and_exits_143() {
    let mut child = spawn_chatops(&["demo"]);
    let rx = lines(&mut child);
    let err = stderr_of(&mut child);
    wait_until(Duration::from_secs(120), "the demo's first step", || {
        rx.try_recv()
            .ok()
            .filter(|l| l.contains("Step 1/"))
            .map(|_| ())
    });
    signal_when_ready(child.id(), libc::SIGTERM);
    let status = wait_exit(&mut child, Duration::from_secs(30), "demo after SIGTERM");
    let err = err.join().unwrap_or_default();
    assert_eq!(status.code(), Some(143), "{err}");
    assert!(
        err.contains("interrupted: the sandbox was removed"),
        "{err}"
    );
    let port = err
        .lines()
        .find_map(|l| l.trim().strip_prefix("PostgreSQL on 127.0.0.1:"))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("no PostgreSQL port in {err}"));
    assert!(!listening(port), "the demo's PostgreSQL still listens");
}

/// The `.tmp` files left in `dir` (none, when every write was atomic).
fn leftovers(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".tmp"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn doctor_output_is_written_whole_and_a_failed_write_is_exit_74_with_the_report_on_stdout() {
    let free = chatops::sandbox::free_port();
    let pb = write_playbook(&format!(
        "phases:\n  - name: A\n    checks:\n      - {{id: free, kind: port, port: {free}, expect: free}}\n"
    ));
    let pb = pb.to_string_lossy().into_owned();
    let dir = scratch_dir().join(unique("out"));
    std::fs::create_dir_all(&dir).expect("dir");
    // An older, longer report is replaced whole.
    let out = dir.join("report.json");
    std::fs::write(&out, "x".repeat(100_000)).expect("old report");
    let out_s = out.to_string_lossy().into_owned();
    let r = chatops(
        &[
            "doctor",
            "--format",
            "json",
            "--playbook",
            &pb,
            "--output",
            &out_s,
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("report")).expect("whole JSON");
    assert_eq!(written["status"], "pass");
    assert!(leftovers(&dir).is_empty(), "{:?}", leftovers(&dir));
    // A directory in the way, and a directory that does not exist.
    let in_the_way = dir.join("a-dir");
    std::fs::create_dir(&in_the_way).expect("dir in the way");
    let missing = dir.join("missing").join("r.json");
    for (target, why) in [
        (&in_the_way, "a directory is in the way"),
        (&missing, "its directory does not exist"),
    ] {
        let t = target.to_string_lossy().into_owned();
        let r = chatops(
            &[
                "doctor",
                "--format",
                "json",
                "--playbook",
                &pb,
                "--output",
                &t,
            ],
            &[],
        );
        assert_eq!(r.code, 74, "{t}: {}", r.stderr);
        assert!(
            r.stderr.contains(&format!("cannot write {t}: {why}")),
            "{}",
            r.stderr
        );
        assert_eq!(
            r.json()["status"],
            "pass",
            "the report goes to stdout instead"
        );
    }
    assert!(leftovers(&dir).is_empty(), "{:?}", leftovers(&dir));
}

#[test]
fn load_export_and_k6_write_errors_are_exit_74() {
    let dir = scratch_dir().join(unique("loadout"));
    std::fs::create_dir_all(&dir).expect("dir");
    let d = dir.to_string_lossy().into_owned();
    let r = chatops(
        &[
            "load",
            "--emit-k6",
            &d,
            "--base-url",
            "http://127.0.0.1:3001",
        ],
        &[],
    );
    assert_eq!(r.code, 74, "{}", r.stderr);
    assert!(
        r.stderr
            .contains(&format!("cannot write {d}: a directory is in the way")),
        "{}",
        r.stderr
    );
    // --export-dir naming a file: the summary is still printed.
    let server = Server::start(Mode::Healthy);
    let file = dir.join("not-a-dir");
    std::fs::write(&file, "x").expect("file");
    let f = file.to_string_lossy().into_owned();
    let url = server.url();
    let r = chatops(
        &[
            "load",
            "--format",
            "json",
            "--skip-preflight",
            "--base-url",
            &url,
            "--stages",
            "a:1:1s",
            "--warmup",
            "0s",
            "--export-dir",
            &f,
        ],
        &[],
    );
    assert_eq!(r.code, 74, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("cannot write {f}")),
        "{}",
        r.stderr
    );
    assert_eq!(r.json()["result"], "pass", "{}", r.stdout);
    // And into a real directory: whole files, nothing temporary left.
    let ok = dir.join("export");
    let o = ok.to_string_lossy().into_owned();
    let r = chatops(
        &[
            "load",
            "--format",
            "json",
            "--skip-preflight",
            "--base-url",
            &url,
            "--stages",
            "a:1:1s",
            "--warmup",
            "0s",
            "--export-dir",
            &o,
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    for name in ["summary.json", "stage-1-a.json"] {
        let text = std::fs::read_to_string(ok.join(name)).expect(name);
        serde_json::from_str::<serde_json::Value>(&text).expect("whole JSON");
    }
    assert!(leftovers(&ok).is_empty(), "{:?}", leftovers(&ok));
}
