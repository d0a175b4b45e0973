//! `--format markdown`: reads like the seed's remediation report: results at
//! a glance, then per phase the findings with evidence, root cause and
//! remediation, validation criteria as checkboxes, and an environment reference.

use super::{blocked_by, caused_by, caused_by_words, icon};
use crate::engine::Report;
use crate::engine::Status;
use std::fmt::Write;

fn phase_status(r: &Report, phase: &str) -> Status {
    let rank = |s: Status| match s {
        Status::Pass | Status::Skipped => 0,
        Status::Warn => 1,
        Status::Blocked => 2,
        Status::Fail => 3,
        Status::Error => 4,
    };
    r.checks
        .iter()
        .filter(|c| c.phase == phase)
        .map(|c| c.status)
        .max_by_key(|s| rank(*s))
        .unwrap_or(Status::Pass)
}

pub fn render(r: &Report) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# Remediation report: {}\n", r.playbook);
    let _ = writeln!(o, "**Date**: {}  ", r.started_at);
    if let Some(u) = r.target.get("base_url") {
        let _ = writeln!(o, "**Target**: {u}  ");
    }
    let _ = writeln!(
        o,
        "**Result**: {} {}{} ({} ms)\n",
        icon(r.status),
        r.status.as_str().to_uppercase(),
        if r.interrupted { " (interrupted)" } else { "" },
        r.duration_ms
    );

    let _ = writeln!(
        o,
        "## Results at a glance\n\n| Phase | Status | Key finding |\n|-------|--------|-------------|"
    );
    for (i, p) in r.phases.iter().enumerate() {
        let s = phase_status(r, p);
        let key = r
            .checks
            .iter()
            .filter(|c| &c.phase == p)
            // A root cause before a finding another one explains.
            .filter(|c| matches!(c.status, Status::Fail | Status::Error | Status::Warn))
            .min_by_key(|c| c.caused_by.is_some())
            .map(|c| c.summary.clone())
            .or_else(|| {
                r.checks
                    .iter()
                    .filter(|c| &c.phase == p)
                    .find(|c| c.status == Status::Blocked)
                    .map(|c| c.summary.clone())
            })
            .unwrap_or_else(|| {
                format!(
                    "{} check(s) passed",
                    r.checks.iter().filter(|c| &c.phase == p).count()
                )
            });
        let _ = writeln!(
            o,
            "| Phase {}: {} | {} **{}** | {} |",
            i + 1,
            p,
            icon(s),
            s.as_str().to_uppercase(),
            key.replace('|', "\\|")
        );
    }

    for (i, p) in r.phases.iter().enumerate() {
        let _ = writeln!(o, "\n---\n\n## Phase {}: {p}\n", i + 1);
        let cs: Vec<_> = r.checks.iter().filter(|c| &c.phase == p).collect();
        for c in cs
            .iter()
            .filter(|c| matches!(c.status, Status::Fail | Status::Error | Status::Warn))
        {
            let _ = writeln!(o, "### {} {}\n\n{}\n", icon(c.status), c.title, c.summary);
            if !c.evidence.is_empty() || c.command.is_some() {
                o.push_str("**Evidence**\n```text\n");
                if let Some(cmd) = &c.command {
                    let _ = writeln!(o, "$ {cmd}");
                }
                for e in &c.evidence {
                    let _ = writeln!(o, "{e}");
                }
                o.push_str("```\n\n");
            }
            if let Some(by) = caused_by_words(r, c) {
                let _ = writeln!(o, "**Caused by**: {by}, not a root cause of its own\n");
            }
            if let Some(rc) = &c.root_cause {
                match (c.cause, c.caused_by.is_some()) {
                    (_, true) => {
                        let _ = writeln!(o, "**Why**: {rc}\n");
                    }
                    (Some(cause), false) => {
                        let _ = writeln!(o, "**Root cause** (`{cause}`): {rc}\n");
                    }
                    (None, false) => {
                        let _ = writeln!(o, "**Root cause**: {rc}\n");
                    }
                }
            }
            if let Some(rm) = &c.remedy {
                let _ = writeln!(o, "**Remediation**: {rm}\n");
            }
            let explains: Vec<String> =
                caused_by(r, &c.id).map(|b| format!("`{}`", b.id)).collect();
            if !explains.is_empty() {
                let _ = writeln!(o, "**Also explains**: {}\n", explains.join(", "));
            }
            let blocked: Vec<String> = blocked_by(r, &c.id)
                .map(|b| format!("`{}`", b.id))
                .collect();
            if !blocked.is_empty() {
                let _ = writeln!(o, "**Blocked by this**: {}\n", blocked.join(", "));
            }
        }
        o.push_str("### Validation criteria\n\n");
        for c in &cs {
            let mark = if matches!(c.status, Status::Pass | Status::Warn) {
                "x"
            } else {
                " "
            };
            let note = match c.status {
                Status::Blocked => {
                    format!(" (blocked by `{}`)", c.blocked_by.as_deref().unwrap_or("?"))
                }
                Status::Warn => format!(" (warning: {})", c.summary),
                Status::Fail | Status::Error => match &c.caused_by {
                    Some(by) => format!(" — {} (caused by `{by}`)", c.summary),
                    None => format!(" — {}", c.summary),
                },
                Status::Skipped => format!(" ({})", c.summary),
                Status::Pass => String::new(),
            };
            let _ = writeln!(o, "- [{mark}] {}{note}", c.title);
        }
    }

    o.push_str("\n---\n\n## Environment reference\n\n```bash\n");
    for (k, v) in &r.target {
        let _ = writeln!(o, "# target.{k} = {v}");
    }
    o.push_str("```\n");
    o
}
