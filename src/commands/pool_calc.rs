//! `chatops pool-calc`: reads the flags (and, with `--database-url`, the
//! server's limits), runs [`crate::poolcalc::plan`] and renders it as a
//! table, JSON or Markdown, with the DATABASE_URL to use.

use crate::commands::cli::{PoolCalcArgs, PoolCalcFormat};
use crate::commands::exit;
use crate::pg::{DbUrl, activity};
use crate::poolcalc::{self, Inputs, Load, Plan, Verdict, num};
use crate::support::redact::Redactor;
use owo_colors::OwoColorize;
use serde::Serialize;
use std::fmt::Write;
use std::time::Duration;

/// Where max_connections came from.
#[derive(Debug, Clone, Serialize)]
pub struct Server {
    pub source: &'static str,
    pub server_version: Option<String>,
    /// Client sessions on the server when it was read.
    pub sessions_now: Option<u32>,
    pub superuser_reserved: Option<u32>,
    pub reserved_connections: Option<u32>,
}

#[derive(Debug, Serialize)]
pub struct Output {
    #[serde(flatten)]
    pub plan: Plan,
    pub server: Server,
    /// DATABASE_URL with the pool parameters set (password redacted unless --show-secrets).
    pub database_url: String,
}

fn err(flag: &str, msg: impl std::fmt::Display) -> i32 {
    eprintln!("chatops pool-calc: {flag}: {msg}");
    exit::INVALID
}

pub async fn run(a: &PoolCalcArgs, color: bool) -> super::CommandResult {
    super::legacy(run_legacy(a, color).await)
}

async fn run_legacy(a: &PoolCalcArgs, color: bool) -> i32 {
    let query_s = match (a.query_ms, a.query_s) {
        (Some(ms), None) => ms / 1000.0,
        (None, Some(s)) => s,
        (None, None) => 0.150,
        (Some(_), Some(_)) => return err("--query-ms", "give --query-ms or --query-s, not both"),
    };
    let load = match a.rps {
        Some(rps) => Load::Throughput { rps },
        None => Load::Vus {
            vus: a.vus,
            activity_ratio: a.activity_ratio,
        },
    };
    for (flag, v) in [
        ("--pool-timeout", a.pool_timeout),
        ("--connect-timeout", a.connect_timeout),
        ("--timeout", a.timeout),
    ] {
        if !v.is_finite() || v < 0.0 || (flag == "--timeout" && v == 0.0) {
            return err(flag, format!("must be a number of seconds ≥ 0, got {v}"));
        }
    }
    for (flag, v) in [
        ("--replicas", a.replicas),
        ("--other-connections", a.other_connections),
        ("--spindles", a.spindles),
    ] {
        if v < 0 {
            return err(flag, format!("must be a number ≥ 0, got {v}"));
        }
    }
    // Built only on error paths: compiling its patterns costs milliseconds.
    let red = || {
        let mut r = Redactor::new();
        for u in [&a.database_url, &a.url].into_iter().flatten() {
            r.learn(u);
        }
        r
    };
    let mut inputs = Inputs {
        load,
        query_s,
        burst: a.burst,
        overhead: a.overhead,
        rounding: a.round,
        replicas: a.replicas as u32,
        other_connections: a.other_connections as u32,
        max_connections: None,
        reserved: 3,
        cores: None,
        spindles: a.spindles as u32,
        pool: None,
    };
    if let Some(p) = a.pool {
        if p < 0 {
            return err("--pool", format!("must be at least 1, got {p}"));
        }
        inputs.pool = Some(p as u32);
    }
    if let Some(c) = a.cores {
        if c < 0 {
            return err("--cores", format!("must be at least 1, got {c}"));
        }
        inputs.cores = Some(c as u32);
    }
    let mut server = Server {
        source: "unknown",
        server_version: None,
        sessions_now: None,
        superuser_reserved: None,
        reserved_connections: None,
    };
    if let Some(m) = a.max_connections {
        if m < 0 {
            return err("--max-connections", format!("must be at least 1, got {m}"));
        }
        inputs.max_connections = Some(m as u32);
        server.source = "flags";
    }
    if let Some(r) = a.reserved {
        if r < 0 {
            return err("--reserved", format!("must be a number ≥ 0, got {r}"));
        }
        inputs.reserved = r as u32;
    }
    // Check the flags before any connection attempt.
    if let Err(e) = inputs.validate() {
        return err(e.field, e.message);
    }
    if let Some(raw) = &a.database_url {
        let u = match DbUrl::parse(raw) {
            Ok(u) => u,
            Err(e) => return err("--database-url", e),
        };
        let t = Duration::from_secs_f64(a.timeout.max(0.1));
        let client = match activity::connect(&u, "chatops", t).await {
            Ok(c) => c,
            Err(e) => {
                eprintln!(
                    "chatops pool-calc: cannot read the server's limits from --database-url ({}:{}): {}",
                    u.host,
                    u.port,
                    red().redact(&e.to_string())
                );
                return exit::FAILED;
            }
        };
        let snap = match tokio::time::timeout(t, activity::sample(&client, Some(&u.database))).await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                eprintln!(
                    "chatops pool-calc: reading pg_settings failed: {}",
                    red().redact(&e)
                );
                return exit::FAILED;
            }
            Err(_) => {
                eprintln!("chatops pool-calc: reading pg_settings timed out");
                return exit::FAILED;
            }
        };
        if a.max_connections.is_none() {
            inputs.max_connections = Some(snap.max_connections);
            server.source = "server";
        }
        if a.reserved.is_none() {
            inputs.reserved = snap.superuser_reserved + snap.reserved;
        }
        server.superuser_reserved = Some(snap.superuser_reserved);
        server.reserved_connections = Some(snap.reserved);
        server.sessions_now = Some(snap.server_total);
        if let Ok(row) = client.query_one("SHOW server_version", &[]).await {
            server.server_version = row.try_get::<_, String>(0).ok();
        }
        if inputs.cores.is_none() && crate::probe::process::is_local_host(&u.host) {
            inputs.cores = std::thread::available_parallelism()
                .ok()
                .map(|n| n.get() as u32);
        }
        if let Err(e) = inputs.validate() {
            return err(e.field, e.message);
        }
    }
    let plan = poolcalc::plan(&inputs);
    let base = a
        .url
        .clone()
        .or_else(|| a.database_url.clone())
        .unwrap_or_else(|| {
            "postgresql://postgres:PASSWORD@localhost:5432/chat_backend_db".to_string()
        });
    let url = match crate::pg::with_params(
        &base,
        &[
            ("connection_limit", plan.pool.to_string()),
            ("pool_timeout", num(a.pool_timeout)),
            ("connect_timeout", num(a.connect_timeout)),
        ],
    ) {
        Ok(u) => u,
        Err(e) => return err("--url", red().redact(&e)),
    };
    let url = if a.show_secrets {
        url
    } else {
        hide_password(&url)
    };
    let out = Output {
        plan,
        server,
        database_url: url,
    };
    let text = match a.format {
        PoolCalcFormat::Human => human(&out, color),
        PoolCalcFormat::Json => serde_json::to_string_pretty(&out).unwrap_or_default() + "\n",
        PoolCalcFormat::Markdown => markdown(&out),
    };
    print!("{text}");
    match out.plan.verdict {
        Verdict::DoesNotFit => exit::FAILED,
        _ => exit::OK,
    }
}

/// The URL with its password replaced by `***` (exact: the URL is parsed).
fn hide_password(u: &str) -> String {
    match url::Url::parse(u) {
        Ok(mut parsed) => {
            if parsed.password().is_some() && parsed.set_password(Some("***")).is_ok() {
                parsed.to_string()
            } else {
                u.to_string()
            }
        }
        Err(_) => Redactor::new().redact(u),
    }
}

fn verdict_text(p: &Plan) -> String {
    match p.verdict {
        Verdict::Fits => format!(
            "fits: {} connection(s) ≤ 70% of {} usable ({})",
            p.demand,
            p.usable.unwrap_or(0),
            p.ceiling_connections.unwrap_or(0)
        ),
        Verdict::AboveCeiling => format!(
            "above the 70% ceiling: {} connection(s) > {} (70% of {} usable), but it fits",
            p.demand,
            p.ceiling_connections.unwrap_or(0),
            p.usable.unwrap_or(0)
        ),
        Verdict::DoesNotFit => format!(
            "does not fit: {} connection(s) > {} usable",
            p.demand,
            p.usable.unwrap_or(0)
        ),
        Verdict::Unknown => {
            "max_connections unknown: give --max-connections or --database-url".to_string()
        }
    }
}

fn step_value(s: &poolcalc::Step) -> String {
    if s.label.starts_with("Share") {
        format!("{:.1}%", s.value)
    } else {
        num(s.value)
    }
}

pub fn human(o: &Output, color: bool) -> String {
    let p = &o.plan;
    let mut b = tabled::builder::Builder::default();
    b.push_record(["Step", "Arithmetic", "Result"]);
    for s in &p.steps {
        b.push_record([s.label.clone(), s.formula.clone(), step_value(s)]);
    }
    let mut t = b.build();
    t.with(tabled::settings::Style::rounded());
    let mut out = String::new();
    let _ = writeln!(out, "Connection pool for the planned load\n{t}");
    if let Some(m) = p.max_connections {
        let _ = writeln!(
            out,
            "Server: max_connections {m} ({}), {} reserved, {} usable{}",
            o.server.source,
            p.inputs.reserved,
            p.usable.unwrap_or(0),
            o.server
                .sessions_now
                .map(|n| format!(", {n} client session(s) now"))
                .unwrap_or_default()
        );
    }
    let v = verdict_text(p);
    let v = if !color {
        v
    } else {
        match p.verdict {
            Verdict::Fits => v.green().to_string(),
            Verdict::AboveCeiling | Verdict::Unknown => v.yellow().to_string(),
            Verdict::DoesNotFit => v.red().bold().to_string(),
        }
    };
    let _ = writeln!(out, "Verdict: {v}");
    for a in &p.advice {
        let _ = writeln!(out, "  • {}", a.text);
    }
    let _ = writeln!(out, "DATABASE_URL={}", o.database_url);
    out
}

pub fn markdown(o: &Output) -> String {
    let p = &o.plan;
    let mut out =
        String::from("## Connection pool\n\n| Step | Arithmetic | Result |\n|---|---|---|\n");
    for s in &p.steps {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            s.label,
            s.formula.replace('|', "\\|"),
            step_value(s)
        );
    }
    let _ = writeln!(out, "\n**Verdict:** {}\n", verdict_text(p));
    for a in &p.advice {
        let _ = writeln!(out, "- {}", a.text);
    }
    let _ = writeln!(out, "\n```\nDATABASE_URL={}\n```", o.database_url);
    out
}
