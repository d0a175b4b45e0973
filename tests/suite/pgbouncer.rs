//! The `pgbouncer` check against a real PgBouncer (Debian's package) in
//! front of the sandbox's cluster, with the reference backend connected
//! through it: healthy, a URL without pgbouncer=true, a pool too small for
//! the load, max_client_conn below the app's pools.

use crate::common::*;
use chatops::sandbox::pgbouncer::BouncerOptions;
use chatops::sandbox::{Knobs, Sandbox};

fn bouncer(sb: &mut Sandbox, o: BouncerOptions) -> String {
    sb.start_pgbouncer(&o)
        .unwrap_or_else(|e| panic!("pgbouncer: {e}"))
        .console_url()
}

fn through(connection_limit: u32, param: bool) -> Knobs {
    Knobs {
        through_pgbouncer: true,
        pgbouncer_param: param,
        connection_limit: Some(connection_limit),
        ..Knobs::default()
    }
}

/// Runs the `pgbouncer` check alone; returns the check's JSON.
fn check_pgbouncer(sb: &Sandbox, console: &str) -> serde_json::Value {
    let port = sb.backend.as_ref().map(|b| b.port).unwrap_or(0);
    let playbook = format!(
        "name: pgbouncer\nphases:\n  - name: pooler\n    checks:\n      - id: pgbouncer\n        kind: pgbouncer\n        console: \"{console}\"\n        process: {{port: {port}}}\n        url: \"{}\"\n        log_lines: 0\n",
        sb.db_url
    );
    let (_, r) = doctor_json(&playbook, &[]);
    check(&r, "pgbouncer").clone()
}

fn cause(c: &serde_json::Value) -> &str {
    c["fault"]["cause"].as_str().unwrap_or("")
}

#[test]
fn healthy_then_no_pgbouncer_true_then_a_small_pool_then_max_client_conn() {
    let rt = runtime();
    let mut sb = sandbox(&rt);
    let healthy = BouncerOptions {
        default_pool_size: 50,
        ..BouncerOptions::default()
    };
    let console = bouncer(&mut sb, healthy.clone());
    start(&rt, &mut sb, through(20, true));
    let c = check_pgbouncer(&sb, &console);
    assert_eq!(c["status"], "pass", "{c}");
    assert_eq!(c["captures"]["pool_mode"], "transaction", "{c}");
    assert!(c["evidence"].to_string().contains("PgBouncer 1."), "{c}");

    // The same URL without pgbouncer=true: named with its fix.
    start(&rt, &mut sb, through(20, false));
    let c = check_pgbouncer(&sb, &console);
    assert_eq!(c["status"], "fail", "{c}");
    assert_eq!(cause(&c), "pgbouncer_prepared_statements", "{c}");
    assert_eq!(c["cause"], "prepared_statements", "{c}");
    let remedy = c["remedy"].as_str().unwrap_or("");
    assert!(remedy.contains("pgbouncer=true"), "{remedy}");
    assert!(remedy.contains("directUrl"), "{remedy}");
    assert!(!remedy.contains("postgrespassword"), "{remedy}");

    // A pool of 2 server connections for 120 VUs: found before any load.
    let console = bouncer(
        &mut sb,
        BouncerOptions {
            default_pool_size: 2,
            ..BouncerOptions::default()
        },
    );
    start(&rt, &mut sb, through(20, true));
    let c = check_pgbouncer(&sb, &console);
    assert_eq!(c["status"], "fail", "{c}");
    assert_eq!(cause(&c), "pgbouncer_pool_too_small", "{c}");
    assert_eq!(c["cause"], "pgbouncer_queue", "{c}");

    // max_client_conn 30 below the app's connection_limit 50.
    let console = bouncer(
        &mut sb,
        BouncerOptions {
            max_client_conn: 30,
            ..healthy
        },
    );
    start(&rt, &mut sb, through(50, true));
    let c = check_pgbouncer(&sb, &console);
    assert_eq!(c["status"], "fail", "{c}");
    assert_eq!(cause(&c), "pgbouncer_max_client_conn", "{c}");
    assert!(
        c["summary"]
            .as_str()
            .unwrap_or("")
            .contains("open 50 client connection(s), PgBouncer accepts 30"),
        "{c}"
    );
}

/// Without pgbouncer=true the reference backend fails as Prisma does
/// through transaction pooling, with PostgreSQL's own errors; with it, not.
#[test]
fn named_prepared_statements_break_under_transaction_pooling() {
    let rt = runtime();
    let mut sb = sandbox(&rt);
    bouncer(&mut sb, BouncerOptions::default());
    let send = |base: &str| {
        let client = reqwest::Client::new();
        let url = format!(
            "{base}/api/v1/chat/conversations/8822dd87-d0c2-42be-93d2-1c0cb492e351/messages"
        );
        rt.block_on(async {
            let mut codes = Vec::new();
            for _ in 0..3 {
                let tasks: Vec<_> = (0..12)
                    .map(|i| {
                        let body = serde_json::json!({"userId": "00000000-0000-0000-0000-000000000000", "content": format!("m{i}")});
                        tokio::spawn(client.post(&url).json(&body).send())
                    })
                    .collect();
                for t in tasks {
                    let code = match t.await {
                        Ok(Ok(r)) => r.status().as_u16(),
                        _ => 0,
                    };
                    codes.push(code);
                }
            }
            codes
        })
    };
    let base = start(&rt, &mut sb, through(12, false));
    let codes = send(&base);
    let log =
        std::fs::read_to_string(&sb.backend.as_ref().expect("backend").log).unwrap_or_default();
    assert!(codes.iter().any(|c| *c >= 400), "{codes:?}");
    assert!(
        log.contains("26000") || log.contains("42P05"),
        "no prepared-statement error in the log:\n{log}"
    );
    let base = start(&rt, &mut sb, through(12, true));
    let codes = send(&base);
    assert!(codes.iter().all(|c| *c == 201), "{codes:?}");
}

/// `pool-calc --pgbouncer`: both sides, the settings and the URLs.
#[test]
fn pool_calc_sizes_both_sides_of_pgbouncer() {
    let (code, j, out) = chatops_json(&[
        "pool-calc",
        "--max-connections",
        "100",
        "--replicas",
        "3",
        "--pgbouncer",
        "--url",
        "postgresql://app:secret@db.internal:5432/chat",
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{out}");
    let b = &j["pgbouncer"];
    assert_eq!(b["default_pool_size"], 50, "{b}");
    assert_eq!(b["max_client_conn"], 190, "{b}");
    assert_eq!(b["server_demand"], 50, "{b}");
    assert_eq!(
        b["database_url"],
        "postgresql://app:***@db.internal:6432/chat?pgbouncer=true&connection_limit=50&pool_timeout=30&connect_timeout=10"
    );
    assert_eq!(
        b["direct_url"],
        "postgresql://app:***@db.internal:5432/chat"
    );
    assert!(!out.contains("secret"), "{out}");
    // Too many database/user pairs for one per pair: does not fit, exit 1.
    let (code, j, out) = chatops_json(&[
        "pool-calc",
        "--max-connections",
        "10",
        "--pgbouncer",
        "--pgbouncer-pairs",
        "20",
        "--format",
        "json",
    ]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(j["pgbouncer"]["verdict"], "does_not_fit", "{out}");
}

/// Under load, a PgBouncer pool of 2 is named as clients waiting in
/// PgBouncer, and the report shows its pools beside PostgreSQL's sessions.
#[test]
fn under_load_a_small_pgbouncer_pool_is_clients_waiting_in_pgbouncer() {
    let _cpu = load_generator_slot();
    let rt = runtime();
    let mut sb = sandbox(&rt);
    let console = bouncer(
        &mut sb,
        BouncerOptions {
            default_pool_size: 2,
            ..BouncerOptions::default()
        },
    );
    // Each database operation holds its server connection 50 ms: two
    // connections serve about 40 operations a second, 20 users queue.
    let url = start(
        &rt,
        &mut sb,
        Knobs {
            query_ms: Some(50),
            ..through(20, true)
        },
    );
    let (code, v, out) = chatops_json(&[
        "load",
        "--format",
        "json",
        "--base-url",
        &url,
        "--database-url",
        &sb.db_url,
        "--pgbouncer",
        &console,
        "--skip-preflight",
        "--stages",
        "busy:20:3s:200:0",
        "--think-time",
        "0s",
        "--cooldown",
        "200ms",
    ]);
    assert_eq!(code, 1, "{out}");
    let bp = &v["breaking_point"];
    assert_eq!(bp["cause"], "pgbouncer_queue", "{bp:#}\n{out}");
    let q = &bp["details"]["pgbouncer"];
    assert!(q["max_waiting"].as_u64().unwrap_or(0) > 0, "{q}");
    assert_eq!(q["pool_size"], 2, "{q}");
    let w = &v["stages"][0]["watch"];
    assert!(
        w["pgbouncer"]["max_clients"].as_u64().unwrap_or(0) >= 2,
        "{w}"
    );
    assert!(w["max_sessions"].as_u64().is_some(), "{w}");
    assert!(
        v["backend"]["pgbouncer"]
            .as_str()
            .unwrap_or("")
            .contains("PgBouncer 1."),
        "{}",
        v["backend"]
    );
}

/// watch-connections with `--pgbouncer`: the pools beside the sessions, and
/// PgBouncer's gauges in the Prometheus exposition (checked by promtool).
#[test]
fn watch_connections_shows_pgbouncers_pools_and_exports_them() {
    require_tool(
        "promtool",
        &["--version"],
        "install Prometheus's promtool (apt-get install -y prometheus)",
    );
    let rt = runtime();
    let mut sb = sandbox(&rt);
    let console = bouncer(&mut sb, BouncerOptions::default());
    start(&rt, &mut sb, through(5, true));
    let (code, j, out) = chatops_json(&[
        "watch-connections",
        "--once",
        "--format",
        "json",
        "--database-url",
        &sb.db_url,
        "--pgbouncer",
        &console,
    ]);
    assert_eq!(code, 0, "{out}");
    let b = &j["pgbouncer"];
    assert!(b["error"].is_null(), "{b}");
    assert_eq!(b["default_pool_size"], 20, "{b}");
    let db = sb.db_name();
    assert!(
        b["pools"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["database"] == db)),
        "{b}"
    );
    assert!(!out.contains("statspassword"), "{out}");
    let r = chatops(
        &[
            "watch-connections",
            "--once",
            "--format",
            "prometheus",
            "--database-url",
            &sb.db_url,
            "--pgbouncer",
            &console,
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    for g in [
        "chatops_pgbouncer_up 1",
        &format!(
            "chatops_pgbouncer_clients{{database=\"{db}\",user=\"postgres\",state=\"waiting\"}} 0"
        ),
        &format!("chatops_pgbouncer_maxwait_seconds{{database=\"{db}\",user=\"postgres\"}} 0"),
    ] {
        assert!(r.stdout.contains(g), "{g} not in:\n{}", r.stdout);
    }
    let mut check = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool");
    use std::io::Write;
    check
        .stdin
        .take()
        .expect("stdin")
        .write_all(r.stdout.as_bytes())
        .expect("write");
    let o = wait_output(check, std::time::Duration::from_secs(20), "promtool");
    assert!(
        o.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Telling PostgreSQL from PgBouncer at a URL whose port says nothing: the
/// plain PostgreSQL URL is told apart by a normal login (its own address and
/// port), so its log gets no failed login to database `pgbouncer`; the same
/// login through PgBouncer on a free port finds PostgreSQL's port differs,
/// and the console then says PgBouncer.
#[test]
fn identify_leaves_no_failed_login_in_postgresqls_log_and_finds_pgbouncer_on_any_port() {
    use chatops::pg::DbUrl;
    use chatops::pg::pgbouncer::{Server, identify};
    let rt = runtime();
    let mut sb = sandbox(&rt);
    bouncer(&mut sb, BouncerOptions::default());
    let t = std::time::Duration::from_secs(5);
    let log = sb.pg.log_path();
    let before = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);

    let direct = DbUrl::parse(&sb.db_url).expect("the sandbox's URL");
    assert_eq!(rt.block_on(identify(&direct, t)), Server::PostgreSql);

    let b = sb.pgbouncer.as_ref().expect("pgbouncer");
    assert_ne!(b.port, 6432, "a free port, so the port says nothing");
    let through = DbUrl::parse(&b.url(
        chatops::sandbox::pgbouncer::STATS_USER,
        chatops::sandbox::pgbouncer::STATS_PASSWORD,
        "chat_backend_db",
    ))
    .expect("url");
    let through_admin =
        DbUrl::parse(&b.url("postgres", sb.pg.password(), "chat_backend_db")).expect("url");
    let found = [through, through_admin]
        .iter()
        .map(|u| rt.block_on(identify(u, t)))
        .collect::<Vec<_>>();
    assert!(
        found.iter().all(|s| matches!(s, Server::PgBouncer { .. })),
        "{found:?}"
    );

    let written = std::fs::read(&log).unwrap_or_default();
    let since = String::from_utf8_lossy(&written[(before as usize).min(written.len())..]);
    assert!(
        !since.contains("database \"pgbouncer\" does not exist"),
        "PostgreSQL's log:\n{since}"
    );
}
