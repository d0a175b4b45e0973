//! What `pool-calc` prints: the derivation as a terminal table, Markdown
//! or JSON, with where max_connections came from and the DATABASE_URL to use.

use super::{Plan, Step, Verdict, num};
use crate::support::redact::Redactor;
use crate::support::style::{Tone, paint};
use serde::Serialize;
use std::fmt::Write;

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

impl Default for Server {
    fn default() -> Self {
        Server {
            source: "unknown",
            server_version: None,
            sessions_now: None,
            superuser_reserved: None,
            reserved_connections: None,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Output {
    #[serde(flatten)]
    pub plan: Plan,
    pub server: Server,
    /// DATABASE_URL with the pool parameters set (password redacted unless --show-secrets).
    pub database_url: String,
    /// `--pgbouncer`: PgBouncer's sizes, with the URL through it and the direct one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pgbouncer: Option<BouncerOutput>,
}

/// `--pgbouncer`'s part of the output.
#[derive(Debug, Serialize)]
pub struct BouncerOutput {
    #[serde(flatten)]
    pub plan: super::bouncer::BouncerPlan,
    /// The app's URL through PgBouncer, with pgbouncer=true.
    pub database_url: String,
    /// PostgreSQL itself, for migrations (Prisma's directUrl).
    pub direct_url: String,
}

/// The URL with its password replaced by `***` (exact: the URL is parsed).
pub fn hide_password(u: &str) -> String {
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

fn verdict_tone(v: Verdict) -> Tone {
    match v {
        Verdict::Fits => Tone::Good,
        Verdict::AboveCeiling | Verdict::Unknown => Tone::Warn,
        Verdict::DoesNotFit => Tone::Bad,
    }
}

fn step_value(s: &Step) -> String {
    if s.label.starts_with("Share") {
        format!("{:.1}%", s.value)
    } else {
        num(s.value)
    }
}

/// The terminal table.
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
    let v = paint(&verdict_text(p), verdict_tone(p.verdict), color);
    let _ = writeln!(out, "Verdict: {v}");
    for a in &p.advice {
        let _ = writeln!(out, "  • {}", a.text);
    }
    match &o.pgbouncer {
        Some(b) => {
            out.push('\n');
            out.push_str(&super::bouncer::human(
                &b.plan,
                &b.database_url,
                &b.direct_url,
            ));
        }
        None => {
            let _ = writeln!(out, "DATABASE_URL={}", o.database_url);
        }
    }
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
    match &o.pgbouncer {
        Some(b) => out.push_str(&super::bouncer::markdown(
            &b.plan,
            &b.database_url,
            &b.direct_url,
        )),
        None => {
            let _ = writeln!(out, "\n```\nDATABASE_URL={}\n```", o.database_url);
        }
    }
    out
}

/// Pretty JSON, one trailing newline.
pub fn json(o: &Output) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(o).map(|s| s + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::poolcalc::{Inputs, plan};

    fn seed() -> Output {
        Output {
            plan: plan(&Inputs {
                max_connections: Some(100),
                ..Inputs::default()
            }),
            server: Server {
                source: "flags",
                ..Server::default()
            },
            pgbouncer: None,
            database_url: "postgresql://postgres:***@localhost:5432/chat_backend_db".into(),
        }
    }

    #[test]
    fn human_and_markdown_show_the_seed_derivation() {
        let o = seed();
        let h = human(&o, false);
        assert!(h.contains("47.8 rounded up to a multiple of 10"), "{h}");
        assert!(h.contains("Verdict: fits: 50 connection(s) ≤ 70% of 97 usable (67)"));
        assert!(h.contains("Server: max_connections 100 (flags), 3 reserved, 97 usable"));
        let m = markdown(&o);
        assert!(m.contains("| Pool per process | 47.8 rounded up to a multiple of 10 | 50 |"));
        assert!(
            m.contains("| Share of max_connections | 50 / 100 | 50.0% |"),
            "{m}"
        );
        let j: serde_json::Value = serde_json::from_str(&json(&o).unwrap()).unwrap();
        assert_eq!(j["recommended_pool"], 50);
        assert_eq!(j["server"]["source"], "flags");
    }

    #[test]
    fn the_password_is_hidden_exactly() {
        assert_eq!(
            hide_password("postgresql://app:s3cret@db:5432/chat?x=1"),
            "postgresql://app:***@db:5432/chat?x=1"
        );
        assert_eq!(
            hide_password("postgresql://db/chat"),
            "postgresql://db/chat"
        );
    }
}
