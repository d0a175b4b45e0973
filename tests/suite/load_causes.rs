//! `chatops load` names the cause the sandbox was made to have, once, with
//! its evidence: a CPU-bound event loop, a row lock held in the send, the
//! history query without its index, memory retained per request; and
//! nothing at all for the healthy sandbox. Each test runs the sandbox with
//! one knob and reads `breaking_point` (or `warnings`) from the JSON.

use crate::common::{
    bin, chatops_json, load_generator_slot, running, runtime, start, write_playbook,
};
use crate::knobs::{CONVERSATION, USER};
use chatops::sandbox::pg::PgOptions;
use chatops::sandbox::{Knobs, SLOW_HISTORY_ROWS, Sandbox};
use serde_json::Value;

/// A sandbox on the shared cluster (or on its own, for pg_stat_statements)
/// whose backend runs with `knobs`: (sandbox, base URL).
fn sandbox(
    rt: &tokio::runtime::Runtime,
    knobs: Knobs,
    own: Option<PgOptions>,
) -> (Sandbox, String) {
    let Some(opts) = own else {
        return running(rt, knobs);
    };
    let mut sb = rt
        .block_on(Sandbox::start(&bin(), opts))
        .unwrap_or_else(|e| panic!("sandbox: {e}"));
    let url = start(rt, &mut sb, knobs);
    (sb, url)
}

/// `chatops load --format json` against the sandbox (its database given).
fn load(url: &str, db: &str, extra: &[&str]) -> (i32, Value, String) {
    let mut args = vec![
        "load",
        "--format",
        "json",
        "--base-url",
        url,
        "--database-url",
        db,
    ];
    args.extend_from_slice(extra);
    chatops_json(&args)
}

/// The breaking point's cause, and its root cause and evidence as one text.
fn breaking(v: &Value, out: &str) -> (String, String) {
    let bp = &v["breaking_point"];
    assert!(bp.is_object(), "no breaking point:\n{out}");
    let cause = bp["cause"].as_str().unwrap_or("").to_string();
    let evidence: Vec<&str> = bp["evidence"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let root = bp["root_cause"].as_str().unwrap_or("");
    (cause, format!("{root}\n{}", evidence.join("\n")))
}

#[test]
fn a_cpu_bound_event_loop_is_backend_cpu_with_its_hot_thread() {
    let _cpu = load_generator_slot();
    let rt = runtime();
    let (sb, url) = sandbox(
        &rt,
        Knobs {
            cpu_ms: Some(40),
            ..Knobs::default()
        },
        None,
    );
    // 40 ms per request on one thread: at most 25 requests a second, so 8
    // users without think time keep that thread busy, and queue behind it.
    let (code, v, out) = load(
        &url,
        &sb.db_url,
        &[
            "--skip-preflight",
            "--stages",
            "hot:8:3s:150:0",
            "--think-time",
            "0s",
            "--cooldown",
            "200ms",
        ],
    );
    assert_eq!(code, 1, "{out}");
    let (cause, text) = breaking(&v, &out);
    assert_eq!(cause, "backend_cpu", "{text}\n{out}");
    let bp = &v["breaking_point"];
    let b = &bp["details"]["backend"];
    let thread = b["hottest_thread"].as_str().unwrap_or("");
    assert!(
        !thread.is_empty() && text.contains(&format!("thread `{thread}`")),
        "names the hot thread: {text}"
    );
    // A whole core, or all a machine with no core to spare gave it.
    let hot = b["hottest_pct"].as_f64().unwrap_or(0.0);
    let machine = bp["details"]["generator"]["machine_pct"]
        .as_f64()
        .unwrap_or(0.0);
    assert!(
        hot >= 80.0 || (machine >= 90.0 && hot >= 50.0),
        "the hot thread at {hot}% of a core, the machine {machine}%: {text}"
    );
    // PostgreSQL idle meanwhile.
    assert!(b["db_active_then"].as_u64().unwrap_or(99) <= 1, "{bp:#}");
    let db_cpu = v["stages"][0]["watch"]["max_db_cpu_pct"]
        .as_f64()
        .unwrap_or(100.0);
    assert!(db_cpu < 30.0, "PostgreSQL used {db_cpu}% CPU: {out}");
    assert!(
        bp["evidence"].to_string().contains("backend CPU max"),
        "{bp:#}"
    );
}

#[test]
fn a_row_lock_held_in_the_send_is_lock_contention_on_conversations() {
    let _cpu = load_generator_slot();
    let rt = runtime();
    let (sb, url) = sandbox(
        &rt,
        Knobs {
            lock_ms: Some(300),
            ..Knobs::default()
        },
        None,
    );
    let (code, v, out) = load(
        &url,
        &sb.db_url,
        &[
            "--skip-preflight",
            "--stages",
            "locked:6:3s:500:0",
            "--think-time",
            "0s",
            "--cooldown",
            "200ms",
        ],
    );
    assert_eq!(code, 1, "{out}");
    let (cause, text) = breaking(&v, &out);
    assert_eq!(cause, "lock_contention", "{text}\n{out}");
    assert!(text.contains("`conversations`"), "the relation: {text}");
    assert!(text.contains("behind pid"), "the blocker: {text}");
    // The blocker's statement, as pg_stat_activity had it (the send
    // transaction's row lock or the insert after it), in the root cause.
    let blocker = v["breaking_point"]["details"]["lock"]["blocker_query"]
        .as_str()
        .unwrap_or("");
    assert!(
        blocker.contains("FROM conversations") || blocker.contains("INSERT INTO messages"),
        "{blocker}\n{out}"
    );
    assert!(text.contains(&format!("running `{blocker}`")), "{text}");
}

/// Mostly the history GET: the statement without its index dominates.
fn history_plan() -> String {
    r#"name: history
vars:
  conversations: ["CONV"]
  users: ["USER"]
mix:
  - name: fetch_history
    weight: 9
    request:
      url: "${base_url}/api/v1/chat/conversations/${pick.conversations}/messages"
      query: { userId: "${pick.users}", limit: "20" }
  - name: send_message
    weight: 1
    request:
      method: POST
      url: "${base_url}/api/v1/chat/conversations/${pick.conversations}/messages"
      json: { userId: "${pick.users}", content: "load test message ${random}", messageType: TEXT }
stages: [{name: s, vus: 1, duration: 1s}]
"#
    .replace("CONV", CONVERSATION)
    .replace("USER", USER)
}

#[test]
fn history_without_its_index_is_slow_queries_with_the_seq_scan() {
    let _cpu = load_generator_slot();
    let rt = runtime();
    let (sb, url) = sandbox(
        &rt,
        Knobs {
            slow_history_rows: Some(SLOW_HISTORY_ROWS),
            ..Knobs::default()
        },
        Some(PgOptions {
            stat_statements: true,
            ..PgOptions::default()
        }),
    );
    let plan = write_playbook(&history_plan());
    let plan = plan.to_string_lossy().into_owned();
    let (code, v, out) = load(
        &url,
        &sb.db_url,
        &[
            "--skip-preflight",
            "--plan",
            &plan,
            "--stages",
            "history:4:3s:20:0",
            "--think-time",
            "0s",
            "--cooldown",
            "200ms",
        ],
    );
    assert_eq!(code, 1, "{out}");
    let (cause, text) = breaking(&v, &out);
    assert_eq!(cause, "slow_queries", "{text}\n{out}");
    // The history statement (pg_stat_statements), its plan and the column
    // the dropped index covered.
    let slow = &v["breaking_point"]["details"]["slow"];
    let query = slow["query"].as_str().unwrap_or("");
    // The backend's history query (src/sandbox/backend/db.rs), as shown.
    assert!(
        query.starts_with("SELECT m.id, m.content, m.type, to_char(m.\"createdAt\""),
        "the statement: {slow:#}"
    );
    assert!(text.contains(query), "the statement named: {text}");
    assert_eq!(slow["relation"], "messages", "{slow:#}");
    assert_eq!(slow["column"], "conversationId", "{slow:#}");
    assert!(
        text.contains("sequential scan on `messages` filtered on `conversationId`"),
        "the scan: {text}"
    );
    assert!(
        text.contains("Seq Scan on messages"),
        "the EXPLAIN line: {text}"
    );
    let remedy = v["breaking_point"]["remedy"].as_str().unwrap_or("");
    assert!(remedy.contains("CREATE INDEX"), "{remedy}");
}

#[test]
fn memory_retained_per_request_warns_memory_growth_on_a_passing_run() {
    let _cpu = load_generator_slot();
    let rt = runtime();
    let (sb, url) = sandbox(
        &rt,
        Knobs {
            retain_kb: Some(64),
            ..Knobs::default()
        },
        None,
    );
    let (code, v, out) = load(
        &url,
        &sb.db_url,
        &[
            "--skip-preflight",
            "--stages",
            "leak:4:3s",
            "--think-time",
            "0s",
            "--cooldown",
            "200ms",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(v["breaking_point"].is_null(), "{out}");
    let warnings = v["warnings"].as_array().cloned().unwrap_or_default();
    let w = warnings
        .iter()
        .find(|w| w["cause"] == "memory_growth")
        .unwrap_or_else(|| panic!("no memory_growth warning:\n{out}"));
    let msg = w["message"].as_str().unwrap_or("");
    assert!(
        msg.contains("per request") || msg.contains("of heapTotal"),
        "{msg}"
    );
}

#[test]
fn the_healthy_sandbox_passes_a_quick_load_with_warm_up_and_no_cause() {
    let _cpu = load_generator_slot();
    let rt = runtime();
    let (sb, url) = sandbox(&rt, Knobs::default(), None);
    let (code, v, out) = load(&url, &sb.db_url, &["--quick"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(v["result"], "pass", "{out}");
    assert!(v["breaking_point"].is_null(), "{out}");
    for w in v["warnings"].as_array().cloned().unwrap_or_default() {
        // A busy 2-core machine may saturate; said as a warning, never a cause.
        assert_eq!(w["cause"], "generator_saturated", "invented: {w:#}\n{out}");
    }
}
