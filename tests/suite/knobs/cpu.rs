//! The CPU knob: each chat request burns N ms of CPU on one "event loop",
//! measured at the source, the backend's CPU time in /proc/PID/stat.

use super::*;
use chatops::probe::process::cpu_seconds;

const REQUESTS: usize = 10;
const CPU_MS: u64 = 100;

/// CPU seconds of each thread of `pid`, by thread id (/proc/PID/task).
fn threads_cpu(pid: u32) -> std::collections::HashMap<String, f64> {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let mut out = std::collections::HashMap::new();
    let dir = std::fs::read_dir(format!("/proc/{pid}/task")).expect("task dir");
    for e in dir.flatten() {
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        // Fields after the `(comm)`: state is field 3, utime 14, stime 15.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        out.insert(
            e.file_name().to_string_lossy().into_owned(),
            (num(11) + num(12)) / ticks,
        );
    }
    out
}

/// CPU seconds the backend used for `n` sequential sends.
async fn cpu_for_sends(http: &reqwest::Client, base: &str, pid: u32, n: usize) -> f64 {
    let before = cpu_seconds(pid).expect("cpu time of the backend");
    for i in 0..n {
        let (status, body) = send(http, base, &format!("cpu {i}")).await;
        assert_eq!(status, 201, "{body}");
    }
    cpu_seconds(pid).expect("cpu time of the backend") - before
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_knob_burns_cpu_per_request_on_one_core() {
    let mut sb = sandbox(PgOptions::default()).await;
    let http = reqwest::Client::new();

    // Control: the healthy backend's own cost of the same sends.
    let (base, pid, _) = start(&mut sb, Knobs::default()).await;
    send(&http, &base, "warm-up").await;
    let healthy = cpu_for_sends(&http, &base, pid, REQUESTS).await;

    let (base, pid, _) = start(
        &mut sb,
        Knobs {
            cpu_ms: Some(CPU_MS),
            ..Knobs::default()
        },
    )
    .await;
    send(&http, &base, "warm-up").await;
    let threads_before = threads_cpu(pid);
    let burnt = cpu_for_sends(&http, &base, pid, REQUESTS).await;
    let busiest = threads_cpu(pid)
        .iter()
        .map(|(tid, t)| t - threads_before.get(tid).copied().unwrap_or(0.0))
        .fold(0.0, f64::max);
    let expected = REQUESTS as f64 * CPU_MS as f64 / 1000.0;
    // /proc counts in clock ticks (10 ms): allow a tick per request.
    assert!(
        burnt >= expected * 0.9,
        "{REQUESTS} sends with {CPU_MS} ms of CPU each used only {burnt:.3} s of CPU (healthy: {healthy:.3} s)"
    );
    assert!(
        burnt - healthy >= expected * 0.8,
        "the knob added {:.3} s of CPU, expected about {expected:.3} s",
        burnt - healthy
    );
    assert!(
        busiest >= expected * 0.9,
        "the work runs on one thread, as on Node's event loop: the busiest thread used {busiest:.3} s of {burnt:.3} s"
    );
    assert!(
        burnt <= expected * 1.5 + healthy + 0.5,
        "about {CPU_MS} ms per request, not {burnt:.3} s for {REQUESTS}"
    );

    // Concurrent requests: the CPU work is serialized as on Node's single
    // event loop, so the process never uses much more than one core even
    // when two (or more) are free.
    let before = cpu_seconds(pid).expect("cpu time");
    let t = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (http, base) = (http.clone(), base.clone());
        tasks.push(tokio::spawn(async move {
            send(&http, &base, &format!("concurrent {i}")).await
        }));
    }
    for task in tasks {
        let (status, body) = task.await.expect("send task");
        assert_eq!(status, 201, "{body}");
    }
    let wall = t.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid).expect("cpu time") - before;
    assert!(cpu >= 8.0 * CPU_MS as f64 / 1000.0 * 0.9, "cpu {cpu:.3} s");
    assert!(
        cpu / wall <= 1.25,
        "8 concurrent requests used {cpu:.3} s of CPU in {wall:.3} s: more than one core"
    );
}
