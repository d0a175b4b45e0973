//! Shared test support: one throwaway PostgreSQL cluster per test binary
//! (each test gets its own database), and helpers to run the chatops binary.
#![allow(dead_code)]

use chatops::sandbox::pg::{PgCluster, PgOptions};
use chatops::sandbox::{Knobs, Sandbox};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_chatops"))
}

/// Starts a cluster on a runtime of its own (a cluster is processes, not
/// tasks, so it outlives the runtime that started it).
pub fn start_cluster(opts: PgOptions) -> Arc<PgCluster> {
    let handle = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(PgCluster::start(opts))
    });
    let pg = match handle.join().expect("cluster thread") {
        Ok(pg) => Arc::new(pg),
        Err(e) => panic!(
            "cannot start PostgreSQL for the tests: {} {:?}",
            e.message, e.hint
        ),
    };
    // Stopped and removed when the test binary exits, even though statics
    // never drop (and even when it is killed).
    chatops::sandbox::watchdog(&pg, scratch_dir());
    pg
}

/// This test process's scratch directory (`$TMPDIR/chatops-test-PID`), for
/// playbooks, logs, certificates and exports. Removed when the process exits
/// (an `atexit` handler; a cluster's watchdog removes it after a kill).
pub fn scratch_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    extern "C" fn remove_scratch_dir() {
        if let Some(dir) = DIR.get() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("chatops-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        // SAFETY: registers a plain function without arguments; it runs at
        // exit, after the tests, and only removes files.
        unsafe { libc::atexit(remove_scratch_dir) };
        dir
    })
}

/// The test binary's shared cluster.
pub fn cluster() -> Arc<PgCluster> {
    static PG: OnceLock<Arc<PgCluster>> = OnceLock::new();
    PG.get_or_init(|| start_cluster(PgOptions::default()))
        .clone()
}

/// Set in a child test process by [`in_own_process`]: the test it names.
const OWN_PROCESS_ENV: &str = "CHATOPS_TEST_OWN_PROCESS";

/// For a test that must not share the suite's process (it stops every
/// cluster of the process, say). In the suite, runs `test` (its full path,
/// `module::name`) alone in a child process of this test binary, fails if it
/// fails or did not run, and returns false; in that child, returns true: run
/// the body.
pub fn in_own_process(test: &str) -> bool {
    if std::env::var_os(OWN_PROCESS_ENV).is_some_and(|v| v == test) {
        return true;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = Command::new(exe)
        .args([test, "--exact", "--test-threads", "1", "--nocapture"])
        .env(OWN_PROCESS_ENV, test)
        .output()
        .expect("run the test binary again");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{test}, in a process of its own, failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("test result: ok. 1 passed"),
        "{test} did not run in its own process (no test has that name?):\n{stdout}"
    );
    false
}

/// Held by the tests that generate load and judge its throughput or
/// latency: at most two of them run at once (as when they had a binary of
/// their own), so they do not starve each other of the CPU while the rest of
/// the suite runs beside them.
pub fn load_generator_slot() -> LoadSlot {
    const SLOTS: usize = 2;
    let mut busy = LOAD_SLOTS.0.lock().unwrap_or_else(PoisonError::into_inner);
    while *busy >= SLOTS {
        busy = LOAD_SLOTS
            .1
            .wait(busy)
            .unwrap_or_else(PoisonError::into_inner);
    }
    *busy += 1;
    LoadSlot
}

static LOAD_SLOTS: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());

/// A taken [`load_generator_slot`]; given back on drop (a panic too).
pub struct LoadSlot;

impl Drop for LoadSlot {
    fn drop(&mut self) {
        let mut busy = LOAD_SLOTS.0.lock().unwrap_or_else(PoisonError::into_inner);
        *busy = busy.saturating_sub(1);
        LOAD_SLOTS.1.notify_one();
    }
}

/// A database name unique within this test binary.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}_{}", N.fetch_add(1, Ordering::Relaxed))
}

pub fn write_playbook(text: &str) -> PathBuf {
    let p = scratch_dir().join(format!("{}.yaml", unique("playbook")));
    std::fs::write(&p, text).expect("write playbook");
    p
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.stdout, self.stderr))
    }
}

/// How long one chatops run may take before the test fails: a guard against
/// a hang, never the thing a test asserts.
pub const RUN_GUARD: Duration = Duration::from_secs(180);

pub fn chatops(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut c = Command::new(bin());
    c.args(args)
        .env("NO_COLOR", "1")
        .env_remove("DATABASE_URL")
        .env_remove("CHATOPS_BASE_URL");
    for (k, v) in env {
        c.env(k, v);
    }
    let what = format!("chatops {}", args.join(" "));
    let out = output_within(c, RUN_GUARD, &what);
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Starts chatops in the background as [`chatops`] runs it (no colour, no
/// target from the test's environment), its output piped: for tests that
/// signal it or stop what it talks to while it runs.
pub fn spawn_chatops<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> std::process::Child {
    Command::new(bin())
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("DATABASE_URL")
        .env_remove("CHATOPS_BASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn chatops")
}

/// Runs `cmd` to completion with its output captured; kills it and fails the
/// test if it is still running after `guard`.
pub fn output_within(mut cmd: Command, guard: Duration, what: &str) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    wait_output(child, guard, what)
}

/// Waits for `child` (stdout and stderr piped) and collects its output;
/// kills it and fails the test if it has not exited within `guard`.
pub fn wait_output(mut child: Child, guard: Duration, what: &str) -> Output {
    fn drain(r: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    }
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let status = wait_exit(&mut child, guard, what);
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// Waits until `child` exits; kills it and fails the test after `guard`.
pub fn wait_exit(child: &mut Child, guard: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + guard;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(POLL),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{what} was still running after {guard:?} (killed)");
            }
            Err(e) => panic!("waiting for {what}: {e}"),
        }
    }
}

/// How often [`wait_until`] and friends look again.
const POLL: Duration = Duration::from_millis(20);

/// Polls `cond` until it returns `Some`; fails the test, naming `what`, if
/// that takes longer than `guard`.
pub fn wait_until<T>(guard: Duration, what: &str, mut cond: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + guard;
    loop {
        if let Some(v) = cond() {
            return v;
        }
        assert!(Instant::now() < deadline, "waited {guard:?} for {what}");
        std::thread::sleep(POLL);
    }
}

/// Whether process `pid` has a handler installed for `signal` (its
/// `SigCgt` mask in /proc/PID/status).
pub fn catches_signal(pid: u32, signal: i32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
        .is_some_and(|mask| mask & (1u64 << (signal - 1)) != 0)
}

/// Sends SIGINT to `pid` once it has installed its SIGINT handler (so the
/// signal cannot arrive before the program is ready for it).
pub fn interrupt_when_ready(pid: u32) {
    signal_when_ready(pid, libc::SIGINT);
}

/// Sends `sig` to `pid` once it has installed a handler for it; a program
/// that never handles `sig` fails here (instead of being killed by it).
pub fn signal_when_ready(pid: u32, sig: i32) {
    wait_until(
        Duration::from_secs(30),
        &format!("process {pid} to install a handler for signal {sig}"),
        || catches_signal(pid, sig).then_some(()),
    );
    signal(pid, sig);
}

/// Sends `sig` to `pid`.
pub fn signal(pid: u32, sig: i32) {
    let pid = libc::pid_t::try_from(pid).expect("pid fits pid_t");
    // SAFETY: kill(2) has no memory-safety preconditions.
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(
        rc,
        0,
        "kill({pid}, {sig}): {}",
        std::io::Error::last_os_error()
    );
}

/// Fails the test, saying what to install, unless `tool` runs (`tool
/// --version` or the given probe arguments).
pub fn require_tool(tool: &str, probe: &[&str], install: &str) {
    let ok = Command::new(tool)
        .args(probe)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "this test needs `{tool}`, which is not installed or does not run: {install}"
    );
}

/// The check with this id in a JSON report.
pub fn check<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["checks"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["id"] == id))
        .unwrap_or_else(|| panic!("no check {id} in {report}"))
}

/// Runs a playbook and returns the JSON report.
pub fn doctor_json(playbook: &str, extra: &[&str]) -> (i32, serde_json::Value) {
    let p = write_playbook(playbook);
    let mut args = vec!["doctor", "--format", "json", "--playbook"];
    let ps = p.to_string_lossy().into_owned();
    args.push(&ps);
    args.extend_from_slice(extra);
    let r = chatops(&args, &[]);
    (r.code, r.json())
}

/// The real pg_isready next to the server binaries, and its exit code.
pub fn pg_isready(pg: &PgCluster, host: &str, port: u16, user: &str, db: &str) -> Option<i32> {
    let b = pg.bindir().join("pg_isready");
    assert!(
        b.exists(),
        "this test needs pg_isready next to the server binaries in {}: install the \
         PostgreSQL client tools (apt-get install -y postgresql-client)",
        pg.bindir().display()
    );
    Command::new(b)
        .args([
            "-h",
            host,
            "-p",
            &port.to_string(),
            "-U",
            user,
            "-d",
            db,
            "-t",
            "3",
        ])
        .output()
        .ok()
        .and_then(|o| o.status.code())
}

/// A runtime for tests that drive the sandbox from synchronous code.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// `chatops ARGS` whose standard output is JSON: (exit code, the JSON or
/// null, stdout and stderr for failure messages).
pub fn chatops_json(args: &[&str]) -> (i32, serde_json::Value, String) {
    let r = chatops(args, &[]);
    let json = serde_json::from_str(&r.stdout).unwrap_or(serde_json::Value::Null);
    (r.code, json, format!("{}\n{}", r.stdout, r.stderr))
}

/// A sandbox with a database of its own on the shared cluster.
pub fn sandbox(rt: &tokio::runtime::Runtime) -> Sandbox {
    rt.block_on(Sandbox::on_cluster(&bin(), cluster(), &unique("chat")))
        .unwrap_or_else(|e| panic!("sandbox: {e}"))
}

/// Starts (or restarts) the sandbox's backend; returns its base URL.
pub fn start(rt: &tokio::runtime::Runtime, sb: &mut Sandbox, knobs: Knobs) -> String {
    rt.block_on(sb.start_backend(&knobs))
        .unwrap_or_else(|e| panic!("backend: {e}"))
        .base_url()
}

/// A sandbox whose backend runs with these knobs, and its base URL.
pub fn running(rt: &tokio::runtime::Runtime, knobs: Knobs) -> (Sandbox, String) {
    let mut sb = sandbox(rt);
    let url = start(rt, &mut sb, knobs);
    (sb, url)
}

/// A CA (`ca.crt`) and a server certificate for `localhost`
/// (`server.crt`, `server.key`), signed by it (made in-process with rcgen).
pub fn make_certs() -> PathBuf {
    let dir = scratch_dir().join(unique("certs"));
    std::fs::create_dir_all(&dir).expect("cert dir");
    chatops::sandbox::pg::tls::write_test_certs(&dir)
        .unwrap_or_else(|e| panic!("test certificates: {e}"));
    dir
}
