//! Printing a load run: the summary table (the seed's "Actual Metrics"
//! table, filled in), the JSON summary, one JSON file per stage and a
//! markdown report. Every text goes through the redactor before it leaves.

use super::result::{BreakingPoint, Generator, RunResult, StageResult, StageStatus};
use crate::support::redact::Redactor;
use owo_colors::OwoColorize;
use serde::Serialize;
use serde_json::{Value, json};
use std::fmt::Write;
use tabled::settings::Style as TStyle;
use tabled::{Table, Tabled};

pub use super::export::export;

/// Version of the JSON documents below (bumped on incompatible changes).
pub const SCHEMA_VERSION: u32 = 1;

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// One stage as JSON (the `stages` entries, and the per-stage files with
/// `samples` added).
pub fn stage_json(r: &StageResult, with_samples: bool) -> Value {
    let t = r.stats.total();
    let l = t.latency();
    let secs = r.elapsed.as_secs_f64().max(1e-3);
    let by_kind: serde_json::Map<String, Value> = r
        .kinds
        .iter()
        .zip(&r.stats.kinds)
        .map(|(name, k)| {
            (
                name.clone(),
                json!({
                    "requests": k.requests(),
                    "error_rate": round2(k.error_pct()) / 100.0,
                    "latency": k.latency(),
                    "errors": k.errors,
                }),
            )
        })
        .collect();
    let mut v = json!({
        "name": r.stage.name,
        "model": r.model,
        "vus": r.stage.vus,
        "rate": r.stage.rate,
        "duration_s": round2(r.stage.duration.as_secs_f64()),
        "elapsed_s": round2(r.elapsed.as_secs_f64()),
        "requests": t.requests(),
        "ok": t.ok,
        "error_rate": (t.error_pct() / 100.0 * 1e6).round() / 1e6,
        "error_pct": round2(t.error_pct()),
        "rps": round2(t.requests() as f64 / secs),
        "p50_ms": l.p50_ms,
        "p90_ms": l.p90_ms,
        "p95_ms": l.p95_ms,
        "p99_ms": l.p99_ms,
        "max_ms": l.max_ms,
        "mean_ms": l.mean_ms,
        "status": r.status.as_str(),
        "failures": r.failures,
        "criteria": {"p95_ms": r.stage.p95_ms, "max_error_pct": r.stage.max_error_pct},
        "errors": t.errors,
        "pool_timeouts": t.pool_timeouts,
        "planned": r.planned,
        "dropped": r.planned.map(|_| r.stats.dropped),
        "by_kind": by_kind,
        "watch": r.watch,
        "generator_cpu_pct": r.cpu_pct,
        "unreliable": r.unreliable,
        "slow_statement": r.slow,
    });
    if with_samples {
        v["samples"] = serde_json::to_value(&r.samples).unwrap_or(Value::Null);
        v["seconds"] = serde_json::to_value(&r.seconds).unwrap_or(Value::Null);
    }
    v
}

/// The overall result word.
pub fn result_word(r: &RunResult) -> &'static str {
    if r.interrupted {
        "interrupted"
    } else if r.breaking_point.is_some() {
        "breaking_point"
    } else if r.time_bound_hit {
        "time_bound"
    } else {
        "pass"
    }
}

#[derive(Serialize)]
struct Summary<'a> {
    schema_version: u32,
    plan: &'a str,
    model: super::plan::Model,
    target: String,
    result: &'static str,
    breaking_point: &'a Option<BreakingPoint>,
    warnings: &'a [crate::diagnose::load::Warning],
    warmup: Option<Value>,
    stages: Vec<Value>,
    backend: &'a super::monitor::Backend,
    generator: &'a Generator,
    elapsed_s: f64,
}

pub fn summary_json(r: &RunResult, red: &Redactor) -> String {
    let s = Summary {
        schema_version: SCHEMA_VERSION,
        plan: &r.plan,
        model: r.model,
        target: r.base_url.clone(),
        result: result_word(r),
        breaking_point: &r.breaking_point,
        warnings: &r.warnings,
        warmup: r.warmup.as_ref().map(|w| stage_json(w, false)),
        stages: r.stages.iter().map(|s| stage_json(s, false)).collect(),
        backend: &r.backend,
        generator: &r.generator,
        elapsed_s: round2(r.elapsed.as_secs_f64()),
    };
    let text =
        serde_json::to_string_pretty(&s).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    red.redact(&text)
}

#[derive(Tabled)]
pub(super) struct Row {
    #[tabled(rename = "Phase")]
    pub(super) phase: String,
    #[tabled(rename = "VUs")]
    pub(super) vus: String,
    #[tabled(rename = "Requests")]
    pub(super) requests: String,
    #[tabled(rename = "Req/s")]
    pub(super) rps: String,
    #[tabled(rename = "Success rate")]
    pub(super) success: String,
    #[tabled(rename = "P95")]
    pub(super) p95: String,
    #[tabled(rename = "P99")]
    pub(super) p99: String,
    #[tabled(rename = "Active DB (max)")]
    pub(super) db: String,
    #[tabled(rename = "Status")]
    pub(super) status: String,
}

pub(super) fn label(s: StageStatus) -> &'static str {
    match s {
        StageStatus::Pass => "PASS",
        StageStatus::Fail => "FAIL",
        StageStatus::Interrupted => "CUT",
    }
}

pub(super) fn rows(r: &RunResult) -> Vec<Row> {
    r.stages
        .iter()
        .map(|s| {
            let t = s.stats.total();
            let l = t.latency();
            Row {
                phase: s.stage.name.clone(),
                vus: match s.stage.rate {
                    Some(rate) => format!("{rate}/s ({} conns)", s.stage.vus),
                    None => s.stage.vus.to_string(),
                },
                requests: t.requests().to_string(),
                rps: format!(
                    "{:.0}",
                    t.requests() as f64 / s.elapsed.as_secs_f64().max(1e-3)
                ),
                success: format!("{:.2}%", 100.0 - t.error_pct()),
                p95: format!("{:.1} ms", l.p95_ms),
                p99: format!("{:.1} ms", l.p99_ms),
                db: match (s.watch.max_active, r.backend.connection_limit) {
                    (Some(a), Some(lim)) => format!("{a} / {lim}"),
                    (Some(a), None) => a.to_string(),
                    _ => "-".into(),
                },
                status: label(s.status).to_string(),
            }
        })
        .collect()
}

#[derive(Tabled)]
pub(super) struct KindRow {
    #[tabled(rename = "Phase")]
    pub(super) phase: String,
    #[tabled(rename = "Kind")]
    pub(super) kind: String,
    #[tabled(rename = "Requests")]
    pub(super) requests: u64,
    #[tabled(rename = "Errors")]
    pub(super) errors: String,
    #[tabled(rename = "p50")]
    pub(super) p50: String,
    #[tabled(rename = "p90")]
    pub(super) p90: String,
    #[tabled(rename = "p95")]
    pub(super) p95: String,
    #[tabled(rename = "p99")]
    pub(super) p99: String,
    #[tabled(rename = "max")]
    pub(super) max: String,
}

/// Per request kind, when the mix has more than one (the seed's send and
/// history requests behave differently under load).
pub(super) fn kind_rows(r: &RunResult) -> Vec<KindRow> {
    let mut out = Vec::new();
    for s in &r.stages {
        if s.kinds.len() < 2 {
            continue;
        }
        for (name, k) in s.kinds.iter().zip(&s.stats.kinds) {
            let l = k.latency();
            out.push(KindRow {
                phase: s.stage.name.clone(),
                kind: name.clone(),
                requests: k.requests(),
                errors: format!("{} ({:.2}%)", k.errors.total(), k.error_pct()),
                p50: format!("{:.1}", l.p50_ms),
                p90: format!("{:.1}", l.p90_ms),
                p95: format!("{:.1}", l.p95_ms),
                p99: format!("{:.1}", l.p99_ms),
                max: format!("{:.1}", l.max_ms),
            });
        }
    }
    out
}

/// PgBouncer's pools beside PostgreSQL's sessions, per stage, when its
/// console was sampled.
fn pgbouncer_lines(o: &mut String, r: &RunResult) {
    let Some(note) = &r.backend.pgbouncer else {
        if let Some(n) = &r.backend.pgbouncer_note {
            let _ = writeln!(o, "\nPgBouncer: {n}");
        }
        return;
    };
    let pool = r
        .backend
        .pgbouncer_pool_size
        .map_or("?".to_string(), |p| p.to_string());
    let mode = r.backend.pgbouncer_pool_mode.as_deref().unwrap_or("?");
    let _ = writeln!(
        o,
        "\nPgBouncer {note}, {mode} pooling, pool size {pool}: SHOW POOLS beside pg_stat_activity"
    );
    for s in r.warmup.iter().chain(&r.stages) {
        let pg = format!(
            "PostgreSQL sessions max {} (active max {})",
            s.watch.max_sessions.map_or("?".into(), |n| n.to_string()),
            s.watch.max_active.map_or("?".into(), |n| n.to_string())
        );
        match &s.watch.pgbouncer {
            Some(b) => {
                let _ = writeln!(
                    o,
                    "  {}: PgBouncer clients max {} (waiting max {}, maxwait {:.1} s), server connections max {} of {pool} (active max {}); {pg}",
                    s.stage.name,
                    b.max_clients,
                    b.max_waiting,
                    b.max_maxwait_s,
                    b.max_servers,
                    b.max_sv_active
                );
            }
            None => {
                let _ = writeln!(o, "  {}: no PgBouncer sample; {pg}", s.stage.name);
            }
        }
    }
}

pub fn human(r: &RunResult, color: bool, red: &Redactor) -> String {
    let mut o = String::new();
    let bold = |s: &str| {
        if color {
            s.bold().to_string()
        } else {
            s.to_string()
        }
    };
    let _ = writeln!(
        o,
        "{}\n",
        bold(&format!(
            "chatops load · {} · {:?} model · {}",
            r.plan, r.model, r.base_url
        ))
    );
    if let Some(w) = &r.warmup {
        let t = w.stats.total();
        let _ = writeln!(
            o,
            "warm-up (not counted): {} requests in {:.1} s, p95 {:.1} ms, {} errors\n",
            t.requests(),
            w.elapsed.as_secs_f64(),
            t.latency().p95_ms,
            t.errors.total()
        );
    }
    let mut table = Table::new(rows(r));
    table.with(TStyle::rounded());
    let mut text = table.to_string();
    if color {
        text = text
            .replace(" PASS ", &format!(" {} ", "PASS".green()))
            .replace(" FAIL ", &format!(" {} ", "FAIL".red().bold()))
            .replace(" CUT ", &format!(" {} ", "CUT".yellow()));
    }
    o.push_str(&text);
    o.push('\n');
    pgbouncer_lines(&mut o, r);
    let kinds = kind_rows(r);
    if !kinds.is_empty() {
        let mut t = Table::new(kinds);
        t.with(TStyle::rounded());
        let _ = writeln!(o, "\nBy request kind (latency in ms)\n{t}");
    }
    for s in &r.stages {
        let t = s.stats.total();
        let e = &t.errors;
        if e.total() > 0 || s.planned.is_some() {
            let _ = write!(
                o,
                "  {}: errors {} (refused {}, timeout {}, 429 {}, other 4xx {}, 5xx {}, transport {}; P2024 {})",
                s.stage.name,
                e.total(),
                e.refused,
                e.timeout,
                e.rate_limited,
                e.client_4xx,
                e.server_5xx,
                e.transport,
                t.pool_timeouts
            );
            if let Some(p) = s.planned {
                let _ = write!(o, "; {} of {p} scheduled sends dropped", s.stats.dropped);
            }
            o.push('\n');
        }
    }
    match &r.breaking_point {
        Some(bp) => {
            let head = format!(
                "Breaking point: {} ({})",
                bp.stage,
                bp.cause.as_str().replace('_', " ")
            );
            let _ = writeln!(
                o,
                "\n{}",
                if color {
                    head.red().bold().to_string()
                } else {
                    head
                }
            );
            let _ = writeln!(o, "  Root cause: {}", bp.root_cause);
            let _ = writeln!(o, "  Remedy:     {}", bp.remedy);
            let _ = writeln!(o, "  Evidence:");
            for e in &bp.evidence {
                let _ = writeln!(o, "    - {e}");
            }
            for c in &bp.contributing {
                let _ = writeln!(o, "  Contributing ({}): {}", c.cause, c.root_cause);
                for e in &c.evidence {
                    let _ = writeln!(o, "    - {e}");
                }
            }
            if !bp.ruled_out.is_empty() {
                let _ = writeln!(o, "  Ruled out: {}", bp.ruled_out.join("; "));
            }
        }
        None if r.interrupted => {
            let _ = writeln!(o, "\nInterrupted: the stages above ran before Ctrl-C.");
        }
        None if r.time_bound_hit => {
            let _ = writeln!(
                o,
                "\nStopped at the total time bound (--max-duration) before every stage ran."
            );
        }
        None => {
            let head = "No breaking point: every stage passed its criteria.";
            let _ = writeln!(
                o,
                "\n{}",
                if color {
                    head.green().to_string()
                } else {
                    head.to_string()
                }
            );
        }
    }
    if !r.warnings.is_empty() {
        let _ = writeln!(o, "\nWhat would break next:");
        for w in &r.warnings {
            let _ = writeln!(
                o,
                "  - {} ({}, in `{}`): {}",
                w.cause.as_str().replace('_', " "),
                w.cause,
                w.stage,
                w.message
            );
        }
    }
    let unreliable: Vec<&StageResult> =
        r.stages.iter().filter(|s| s.unreliable.is_some()).collect();
    if let Some(first) = unreliable.first() {
        let names: Vec<String> = unreliable
            .iter()
            .map(|s| format!("`{}`", s.stage.name))
            .collect();
        let _ = writeln!(
            o,
            "\nIn {}: {}",
            names.join(", "),
            first.unreliable.as_deref().unwrap_or_default()
        );
    }
    let _ = write!(o, "{}", db_down_lines(r));
    if let Some(n) = &r.backend.database_note {
        let _ = writeln!(o, "\nnote: {n}");
    }
    if let Some(n) = &r.backend.statements_note {
        let _ = writeln!(o, "note: {n}");
    }
    let _ = writeln!(
        o,
        "\ngenerator: {:.0}% CPU (of one core) over {:.1} s, peak RSS {} MB; a generator above ~80% of the machine inflates latencies",
        r.generator.cpu_pct,
        r.elapsed.as_secs_f64(),
        r.generator
            .peak_rss_bytes
            .map(|b| b / 1_048_576)
            .unwrap_or(0)
    );
    red.redact(&o)
}

pub fn markdown(r: &RunResult, red: &Redactor) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# Load test: {}\n", r.plan);
    let _ = writeln!(
        o,
        "Target `{}`, {:?} model, result **{}**, {:.1} s.\n",
        r.base_url,
        r.model,
        result_word(r),
        r.elapsed.as_secs_f64()
    );
    let _ = writeln!(
        o,
        "| Phase | VUs | Requests | Success Rate | P95 Latency | P99 Latency | Status |"
    );
    let _ = writeln!(
        o,
        "|-------|-----|----------|--------------|-------------|-------------|--------|"
    );
    for s in &r.stages {
        let t = s.stats.total();
        let l = t.latency();
        let _ = writeln!(
            o,
            "| {} | {} | {} | {:.2}% | {:.1} ms | {:.1} ms | {} |",
            s.stage.name,
            s.stage.vus,
            t.requests(),
            100.0 - t.error_pct(),
            l.p95_ms,
            l.p99_ms,
            label(s.status)
        );
    }
    match &r.breaking_point {
        Some(bp) => {
            let _ = writeln!(o, "\n## Breaking point: {} ({})\n", bp.stage, bp.cause);
            let _ = writeln!(
                o,
                "**Root cause.** {}\n\n**Remedy.** {}\n",
                bp.root_cause, bp.remedy
            );
            for e in &bp.evidence {
                let _ = writeln!(o, "- {e}");
            }
            for c in &bp.contributing {
                let _ = writeln!(
                    o,
                    "\n**Contributing: {}.** {} {}",
                    c.cause, c.root_cause, c.fix
                );
            }
            if !bp.ruled_out.is_empty() {
                let _ = writeln!(o, "\nRuled out: {}.", bp.ruled_out.join("; "));
            }
        }
        None => {
            let _ = writeln!(o, "\nNo breaking point.");
        }
    }
    if !r.warnings.is_empty() {
        let _ = writeln!(o, "\n## What would break next\n");
        for w in &r.warnings {
            let _ = writeln!(o, "- `{}` in {}: {}", w.cause, w.stage, w.message);
        }
    }
    let _ = write!(o, "{}", db_down_lines(r));
    // PgBouncer's pools per stage, as a list.
    let mut pb = String::new();
    pgbouncer_lines(&mut pb, r);
    for line in pb.lines() {
        let _ = match line.strip_prefix("  ") {
            Some(stage) => writeln!(o, "- {stage}"),
            None => writeln!(o, "{line}"),
        };
    }
    let _ = writeln!(
        o,
        "\nGenerator CPU {:.0}% of one core, peak RSS {} MB.",
        r.generator.cpu_pct,
        r.generator
            .peak_rss_bytes
            .map(|b| b / 1_048_576)
            .unwrap_or(0)
    );
    red.redact(&o)
}

/// A line per stage in which PostgreSQL did not answer the sampler.
fn db_down_lines(r: &RunResult) -> String {
    let mut o = String::new();
    for s in &r.stages {
        if let (Some(n), Some(from)) = (s.watch.db_down_s, s.watch.db_down_from_s)
            && n > 0
        {
            let _ = writeln!(
                o,
                "\nPostgreSQL was down for {n} s in `{}` (from {from:.0} s into the run): it did not answer the sampler, which reconnected when it came back.",
                s.stage.name
            );
        }
    }
    o
}
