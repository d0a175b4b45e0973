//! The terminal report: results at a glance (a table), then each finding
//! with its evidence, root cause and remedy.

use super::{Style, blocked_by, caused_by, caused_by_words, findings};
use crate::engine::Report;
use crate::engine::Status;
use crate::support::style::{Tone, paint};
use owo_colors::OwoColorize;
use std::fmt::Write;
use tabled::settings::{Modify, Style as TStyle, Width, object::Columns};
use tabled::{Table, Tabled};

#[derive(Tabled)]
struct Row {
    #[tabled(rename = "Phase")]
    phase: String,
    #[tabled(rename = "Check")]
    check: String,
    #[tabled(rename = "Status")]
    status: String,
    #[tabled(rename = "Summary")]
    summary: String,
    #[tabled(rename = "Time")]
    time: String,
}

fn tone(status: Status) -> Tone {
    match status {
        Status::Pass => Tone::Good,
        Status::Warn => Tone::Warn,
        Status::Fail | Status::Error => Tone::Bad,
        Status::Blocked | Status::Skipped => Tone::Muted,
    }
}

fn label(s: Status) -> &'static str {
    match s {
        Status::Pass => "PASS",
        Status::Warn => "WARN",
        Status::Fail => "FAIL",
        Status::Blocked => "BLOCKED",
        Status::Skipped => "SKIPPED",
        Status::Error => "ERROR",
    }
}

fn one_line(s: &str, n: usize) -> String {
    let s = s.replace('\n', " ");
    if s.chars().count() > n {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    } else {
        s
    }
}

pub fn render(r: &Report, st: &Style) -> String {
    let mut o = String::new();
    let c = st.color;
    let bold = |s: &str| {
        if c {
            s.bold().to_string()
        } else {
            s.to_string()
        }
    };
    let target = r
        .target
        .get("base_url")
        .map(|u| format!(" · {u}"))
        .unwrap_or_default();
    if !st.quiet {
        let _ = writeln!(
            o,
            "{}{target}\n",
            bold(&format!("chatops doctor · {}", r.playbook))
        );
        let mut last_phase = String::new();
        let rows: Vec<Row> = r
            .checks
            .iter()
            .map(|ch| {
                let phase = if ch.phase != last_phase {
                    ch.phase.clone()
                } else {
                    String::new()
                };
                last_phase = ch.phase.clone();
                Row {
                    phase: one_line(&phase, 22),
                    check: one_line(&ch.title, 34),
                    // Colours are added after layout: tabled measures plain text.
                    status: label(ch.status).to_string(),
                    summary: one_line(&ch.summary, 64),
                    time: if ch.status == Status::Blocked {
                        "-".into()
                    } else {
                        millis(ch.duration_ms)
                    },
                }
            })
            .collect();
        let mut t = Table::new(rows);
        t.with(TStyle::rounded())
            .with(Modify::new(Columns::new(3..4)).with(Width::wrap(64)));
        let mut table = t.to_string();
        if c {
            for s in [
                Status::Pass,
                Status::Warn,
                Status::Fail,
                Status::Blocked,
                Status::Skipped,
                Status::Error,
            ] {
                let l = format!(" {} ", label(s));
                table = table.replace(&l, &format!(" {} ", paint(label(s), tone(s), true)));
            }
        }
        o.push_str(&table);
        o.push('\n');
    }

    let found: Vec<_> = findings(r).collect();
    if !found.is_empty() {
        let _ = writeln!(o, "\n{}", bold("Findings"));
    }
    for f in found {
        let mark = match f.status {
            Status::Warn => "!",
            _ => "✗",
        };
        let _ = writeln!(
            o,
            "\n{} {} {}",
            paint(mark, tone(f.status), c),
            bold(&f.title),
            paint(
                &format!("({}, {})", f.id, label(f.status).to_lowercase()),
                Tone::Muted,
                c
            )
        );
        let _ = writeln!(o, "  {}", f.summary);
        if let Some(by) = caused_by_words(r, f) {
            // One fault, one finding: this one is its consequence.
            let _ = writeln!(
                o,
                "  {} {by}, not a root cause of its own",
                bold("Caused by:")
            );
        }
        if let Some(rc) = &f.root_cause {
            let label = match f.cause {
                Some(cause) => format!("Root cause ({cause}):"),
                None => "Root cause:".to_string(),
            };
            let label = if f.caused_by.is_some() {
                "Why:".to_string()
            } else {
                label
            };
            let _ = writeln!(o, "  {} {rc}", bold(&label));
        }
        if !f.evidence.is_empty() && (st.verbose || !st.quiet) {
            let _ = writeln!(o, "  {}", bold("Evidence:"));
            let n = if st.verbose { usize::MAX } else { 6 };
            for e in f.evidence.iter().take(n) {
                let _ = writeln!(o, "    {e}");
            }
        }
        if let Some(cmd) = &f.command {
            let _ = writeln!(o, "  {} {cmd}", bold("Rerun:"));
        }
        if let Some(rm) = &f.remedy {
            let _ = writeln!(o, "  {} {rm}", paint("Fix:", Tone::Good, c));
        }
        let explains: Vec<String> = caused_by(r, &f.id).map(|b| b.id.clone()).collect();
        if !explains.is_empty() {
            let _ = writeln!(o, "  {} {}", bold("Also explains:"), explains.join(", "));
        }
        let blocked: Vec<String> = blocked_by(r, &f.id).map(|b| b.id.clone()).collect();
        if !blocked.is_empty() {
            let _ = writeln!(o, "  {} {}", bold("Blocked by this:"), blocked.join(", "));
        }
    }
    if st.verbose {
        let passed: Vec<_> = r
            .checks
            .iter()
            .filter(|ch| ch.status == Status::Pass)
            .collect();
        if !passed.is_empty() {
            let _ = writeln!(o, "\n{}", bold("Passed"));
            for p in passed {
                let _ = writeln!(o, "  ✓ {}: {}", p.title, p.summary);
                for e in &p.evidence {
                    let _ = writeln!(o, "      {e}");
                }
                for (k, v) in &p.captures {
                    let mut shown = match v {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    if shown.chars().count() > 120 {
                        shown = shown.chars().take(119).collect::<String>() + "…";
                    }
                    let _ = writeln!(o, "      captured {}.{k} = {shown}", p.id);
                }
            }
        }
    }
    let counts = [
        (Status::Pass, "passed"),
        (Status::Warn, "warned"),
        (Status::Fail, "failed"),
        (Status::Error, "errored"),
        (Status::Blocked, "blocked"),
        (Status::Skipped, "skipped"),
    ]
    .iter()
    .filter_map(|(s, w)| {
        let n = r.count(*s);
        // Findings another one explains are not root causes of their own.
        let explained = r
            .checks
            .iter()
            .filter(|c| c.status == *s && c.caused_by.is_some())
            .count();
        (n > 0).then(|| match explained {
            0 => format!("{n} {w}"),
            e => format!("{n} {w} ({e} caused by another finding)"),
        })
    })
    .collect::<Vec<_>>()
    .join(", ");
    let verdict = if r.interrupted {
        "INTERRUPTED".to_string()
    } else {
        label(r.status).to_string()
    };
    let _ = writeln!(
        o,
        "\n{} {counts} in {}",
        paint(&format!("Result: {verdict} —"), tone(r.status), c),
        millis(r.duration_ms)
    );
    o
}

/// `845 ms`, `10.0 s`, `2 min 05 s`.
fn millis(ms: u64) -> String {
    match ms {
        0..=9_999 => format!("{ms} ms"),
        10_000..=119_999 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => format!("{} min {:02} s", ms / 60_000, (ms % 60_000) / 1000),
    }
}
