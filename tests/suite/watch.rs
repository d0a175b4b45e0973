//! pg_activity and watch-connections against real clusters: known sessions
//! (idle, active with pg_sleep, idle in transaction, another
//! application_name) counted exactly; thresholds; Prometheus output; and
//! watch surviving a PostgreSQL restart.

use crate::common::*;
use chatops::pg::DbUrl;
use chatops::pg::activity::{connect, sample};
use chatops::sandbox::pg::PgOptions;
use std::io::{BufRead, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

async fn run(args: Vec<String>) -> Run {
    tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        chatops(&a, &[])
    })
    .await
    .unwrap()
}

/// A session for sampling, in the `postgres` database: never counted among
/// a test database's sessions.
async fn probe(pg: &chatops::sandbox::pg::PgCluster) -> tokio_postgres::Client {
    let u = DbUrl::parse(&pg.url("postgres")).expect("url");
    connect(&u, "probe", Duration::from_secs(10))
        .await
        .expect("probe session")
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_sessions_are_counted_exactly() {
    let pg = cluster();
    let db = unique("watch");
    pg.create_database(&db).await.unwrap();
    let url = pg.url(&db);
    let u = DbUrl::parse(&url).unwrap();
    let t = Duration::from_secs(10);
    let idle = connect(&u, "app_idle", t).await.unwrap();
    idle.simple_query("SELECT 1").await.unwrap();
    let idle2 = connect(&u, "app_idle", t).await.unwrap();
    idle2.simple_query("SELECT 1").await.unwrap();
    let other = connect(&u, "other_app", t).await.unwrap();
    other.simple_query("SELECT 1").await.unwrap();
    let in_tx = connect(&u, "app_tx", t).await.unwrap();
    in_tx.simple_query("BEGIN; SELECT 1").await.unwrap();
    let active = connect(&u, "app_sleep", t).await.unwrap();
    let sleeper = tokio::spawn(async move {
        let _ = active.simple_query("SELECT pg_sleep(20)").await;
    });
    // The probe sits in another database, so it is never among the sessions
    // counted in `db` (no waiting for it to go away).
    let me = probe(&pg).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let snap = sample(&me, Some(&db)).await.unwrap();
        if snap.in_state("active") == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "pg_sleep never showed: {snap:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(me);

    // watch-connections --once --format json
    let r = run(s(&[
        "watch-connections",
        "--once",
        "--format",
        "json",
        "--database-url",
        &url,
    ]))
    .await;
    assert_eq!(r.code, 0, "{} {}", r.stdout, r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{}", r.stdout);
    let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(v["connected"], true);
    assert_eq!(v["max_connections"], 100);
    assert_eq!(v["total"], 5, "{v}");
    assert_eq!(v["active"], 1);
    assert_eq!(v["idle"], 3);
    assert_eq!(v["idle_in_transaction"], 1);
    assert!(v["time"].as_str().unwrap().ends_with('Z'));
    let mut groups: Vec<(String, String, u64)> = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["application_name"].as_str().unwrap().to_string(),
                g["state"].as_str().unwrap().to_string(),
                g["count"].as_u64().unwrap(),
            )
        })
        .collect();
    groups.sort();
    assert_eq!(
        groups,
        vec![
            ("app_idle".into(), "idle".into(), 2),
            ("app_sleep".into(), "active".into(), 1),
            ("app_tx".into(), "idle in transaction".into(), 1),
            ("other_app".into(), "idle".into(), 1),
        ],
        "watch's own `chatops` session is not counted"
    );
    assert!(
        v["longest"]["query"]
            .as_str()
            .unwrap()
            .contains("pg_sleep(20)")
    );
    assert!(!r.stdout.contains("postgrespassword"));

    // --once gates a script: above the critical threshold it exits 1.
    let r = run(s(&[
        "watch-connections",
        "--once",
        "--format",
        "json",
        "--warn-active",
        "0",
        "--critical-active",
        "0",
        "--database-url",
        &url,
    ]))
    .await;
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stdout.contains("\"level\":\"critical\""));
    let r = run(s(&[
        "watch-connections",
        "--once",
        "--warn-active",
        "0",
        "--database-url",
        &url,
    ]))
    .await;
    assert_eq!(r.code, 0, "a warning alone passes: {}", r.stdout);
    assert!(
        r.stdout
            .contains("active: 1 (warn > 0, critical > 48)  [warn]"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("other_app"), "{}", r.stdout);

    // Prometheus exposition.
    let r = run(s(&[
        "watch-connections",
        "--once",
        "--format",
        "prometheus",
        "--database-url",
        &url,
    ]))
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains(&format!(
            "chatops_pg_sessions{{database=\"{db}\",application_name=\"app_idle\",state=\"idle\"}} 2\n"
        )),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains(&format!("chatops_pg_connections{{database=\"{db}\"}} 5\n"))
    );
    assert!(r.stdout.contains("chatops_pg_up 1\n"));

    // The pg_activity check sees the same sessions.
    let pb = format!(
        r#"name: act
phases:
  - name: Database
    checks:
      - {{id: quiet, kind: pg_activity, url: "{url}", max_idle_in_transaction: 1}}
      - {{id: stuck, kind: pg_activity, url: "{url}"}}
      - {{id: busy, kind: pg_activity, url: "{url}", warn_active: 0, critical_active: 5, max_idle_in_transaction: 1}}
      - {{id: critical, kind: pg_activity, url: "{url}", warn_active: 0, critical_active: 0, exclude_apps: [other_app]}}
"#
    );
    let (code, r) = tokio::task::spawn_blocking(move || doctor_json(&pb, &[]))
        .await
        .unwrap();
    assert_eq!(code, 1, "{r}");
    let quiet = check(&r, "quiet");
    assert_eq!(quiet["status"], "pass", "{quiet}");
    assert_eq!(quiet["captures"]["total"], 5);
    assert_eq!(quiet["captures"]["active"], 1);
    assert_eq!(quiet["captures"]["idle"], 3);
    assert_eq!(quiet["captures"]["idle_in_transaction"], 1);
    assert!(
        quiet["evidence"].as_array().unwrap().iter().any(|e| e
            .as_str()
            .unwrap()
            .starts_with("longest active statement:")
            && e.as_str().unwrap().contains("pg_sleep(20)")),
        "{quiet}"
    );
    let stuck = check(&r, "stuck");
    assert_eq!(stuck["status"], "warn", "{stuck}");
    assert!(
        stuck["root_cause"]
            .as_str()
            .unwrap()
            .contains("1 idle in a transaction"),
        "{stuck}"
    );
    let busy = check(&r, "busy");
    assert_eq!(busy["status"], "warn");
    assert!(
        busy["root_cause"]
            .as_str()
            .unwrap()
            .contains("warning threshold of 0")
    );
    let critical = check(&r, "critical");
    assert_eq!(critical["status"], "fail");
    assert_eq!(critical["captures"]["total"], 4, "other_app excluded");

    drop((idle, idle2, other, in_tx));
    sleeper.abort();
}

#[test]
fn watch_survives_a_postgres_restart() {
    let pg = start_cluster(PgOptions::default());
    let url = pg.url("postgres");
    let mut child = Command::new(bin())
        .args([
            "watch-connections",
            "--format",
            "json",
            "--interval",
            "200ms",
            "--timeout",
            "2s",
            "--database-url",
            &url,
        ])
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<serde_json::Value>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let v: serde_json::Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
            if tx.send(v).is_err() {
                break;
            }
        }
    });
    let wait_for = |connected: bool, what: &str| {
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {what} sample within 40 s"));
            if v["connected"] == connected {
                return v;
            }
        }
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let first = wait_for(true, "first");
    assert_eq!(first["max_connections"], 100);
    rt.block_on(pg.stop()).unwrap();
    let down = wait_for(false, "disconnected");
    assert!(
        down["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{down}"
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "watch exited on a restart"
    );
    rt.block_on(pg.start_again()).unwrap();
    let back = wait_for(true, "reconnected");
    assert_eq!(back["max_connections"], 100);
    assert!(child.try_wait().unwrap().is_none());
    // Ctrl-C ends it with 130.
    interrupt_when_ready(child.id());
    let status = wait_exit(&mut child, Duration::from_secs(20), "watch after SIGINT");
    assert_eq!(status.code(), Some(130));
}

#[test]
fn bad_input_exits_2() {
    for (args, needle) in [
        (vec!["watch-connections", "--once"], "--database-url"),
        (
            vec![
                "watch-connections",
                "--database-url",
                "mysql://x@y/z",
                "--once",
            ],
            "--database-url",
        ),
        (
            vec![
                "watch-connections",
                "--database-url",
                "postgresql://u:sekrit-pw@127.0.0.1:1/d",
                "--interval",
                "fast",
            ],
            "--interval",
        ),
    ] {
        let r = chatops(&args, &[]);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(needle), "{}", r.stderr);
        assert!(!r.stderr.contains("sekrit-pw"));
    }
    // Unreachable server with --once: exit 1, the password never printed.
    let r = chatops(
        &[
            "watch-connections",
            "--once",
            "--format",
            "json",
            "--timeout",
            "2s",
            "--database-url",
            "postgresql://u:sekrit-pw@127.0.0.1:1/d",
        ],
        &[],
    );
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stdout.contains("\"connected\":false"));
    assert!(!r.stdout.contains("sekrit-pw"));
}

/// On a terminal (a pty from util-linux `script`), the live view uses the
/// alternate screen and Ctrl-C restores it and the cursor.
#[test]
fn ctrl_c_restores_the_terminal() {
    require_tool(
        "script",
        &["--version"],
        "install util-linux's `script` (apt-get install -y bsdutils)",
    );
    let pg = cluster();
    let db = unique("tty");
    runtime()
        .block_on(pg.create_database(&db))
        .unwrap_or_else(|e| panic!("{e}"));
    let inner = format!(
        "exec '{}' watch-connections --interval 300ms --database-url '{}'",
        bin().display(),
        pg.url(&db)
    );
    let mut script = Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run script");
    let screen = Arc::new(Mutex::new(Vec::new()));
    let reader = std::thread::spawn({
        let screen = screen.clone();
        let mut out = script.stdout.take().expect("stdout");
        move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = out.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                screen
                    .lock()
                    .expect("screen")
                    .extend_from_slice(&chunk[..n]);
            }
        }
    });
    let text = |screen: &Mutex<Vec<u8>>| {
        String::from_utf8_lossy(&screen.lock().expect("screen")).into_owned()
    };
    wait_until(
        Duration::from_secs(60),
        "the live view's first frame",
        || {
            text(&screen)
                .contains("active: 0 (warn > 40, critical > 48)")
                .then_some(())
        },
    );
    let watch = wait_until(
        Duration::from_secs(10),
        "watch-connections under script",
        || {
            descendants(script.id()).into_iter().find(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains("watch-connections"))
            })
        },
    );
    interrupt_when_ready(watch);
    let status = wait_exit(&mut script, Duration::from_secs(20), "script after SIGINT");
    reader.join().expect("reader");
    let text = text(&screen);
    assert_eq!(
        status.code(),
        Some(130),
        "script -e passes on watch's exit code: {text:?}"
    );
    assert!(text.starts_with("\x1b[?1049h\x1b[?25l"), "{text:?}");
    assert!(
        text.trim_end().ends_with("\x1b[?25h\x1b[?1049l"),
        "terminal not restored: {text:?}"
    );
    assert!(!text.contains(pg.password()));
}

/// Every process below `pid`, from /proc/PID/task/*/children.
fn descendants(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for c in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                found.push(c);
                todo.push(c);
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_waits_are_found() {
    let pg = cluster();
    let db = unique("locks");
    pg.create_database(&db).await.unwrap();
    let url = pg.url(&db);
    let u = DbUrl::parse(&url).unwrap();
    let t = Duration::from_secs(10);
    let holder = connect(&u, "holder", t).await.unwrap();
    holder
        .batch_execute("CREATE TABLE t (id int)")
        .await
        .unwrap();
    holder
        .batch_execute("BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let waiter = connect(&u, "waiter", t).await.unwrap();
    let blocked = tokio::spawn(async move {
        let _ = waiter.simple_query("SELECT * FROM t").await;
    });
    let me = probe(&pg).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while sample(&me, Some(&db)).await.unwrap().waiting_lock != 1 {
        assert!(Instant::now() < deadline, "the waiter never showed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(me);
    let r = run(s(&[
        "watch-connections",
        "--once",
        "--format",
        "json",
        "--database-url",
        &url,
    ]))
    .await;
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["waiting_lock"], 1, "{v}");
    assert_eq!(v["idle_in_transaction"], 1, "{v}");
    let pb = format!(
        r#"name: locks
phases:
  - name: Database
    checks:
      - {{id: a, kind: pg_activity, url: "{url}", max_idle_in_transaction: 5}}
"#
    );
    let (code, r) = tokio::task::spawn_blocking(move || doctor_json(&pb, &[]))
        .await
        .unwrap();
    assert_eq!(code, 0, "a warning: {r}");
    let a = check(&r, "a");
    assert_eq!(a["status"], "warn", "{a}");
    assert_eq!(a["captures"]["waiting_lock"], 1);
    assert!(
        a["root_cause"]
            .as_str()
            .unwrap()
            .contains("1 waiting for a lock"),
        "{a}"
    );
    assert!(a["remedy"].as_str().unwrap().contains("pg_blocking_pids"));
    drop(holder);
    let _ = blocked.await;
}
