//! A comparison as a terminal table, markdown, JSON, an HTML section (for
//! report.html) or a page of its own.

use super::super::html::{esc, head};
use super::{Comparison, Figures, StageDiff};
use owo_colors::OwoColorize;
use std::fmt::Write;

/// Which way is worse for a column.
#[derive(Clone, Copy, PartialEq)]
enum Worse {
    Lower,
    Higher,
    Neither,
}

struct Col {
    title: &'static str,
    get: fn(&Figures) -> Option<f64>,
    change: fn(&StageDiff) -> Option<f64>,
    fmt: fn(f64) -> String,
    worse: Worse,
}

const COLS: &[Col] = &[
    Col {
        title: "Req/s",
        get: |f| Some(f.rps),
        change: |d| d.change_pct.rps,
        fmt: |v| format!("{v:.1}"),
        worse: Worse::Lower,
    },
    Col {
        title: "P95",
        get: |f| Some(f.p95_ms),
        change: |d| d.change_pct.p95_ms,
        fmt: |v| format!("{v:.1} ms"),
        worse: Worse::Higher,
    },
    Col {
        title: "P99",
        get: |f| Some(f.p99_ms),
        change: |d| d.change_pct.p99_ms,
        fmt: |v| format!("{v:.1} ms"),
        worse: Worse::Higher,
    },
    Col {
        title: "Error rate",
        get: |f| Some(f.error_rate * 100.0),
        change: |d| d.change_pct.error_rate,
        fmt: |v| format!("{v:.2}%"),
        worse: Worse::Higher,
    },
    Col {
        title: "Max active",
        get: |f| f.max_active.map(f64::from),
        change: |d| d.change_pct.max_active,
        fmt: |v| format!("{v:.0}"),
        worse: Worse::Neither,
    },
];

fn pct(c: Option<f64>) -> String {
    match c {
        Some(v) => format!("{v:+.1}%"),
        None => "new".into(),
    }
}

/// "412.0 → 380.5 (−7.6%)", or one side alone.
fn cell(d: &StageDiff, c: &Col) -> String {
    let a = d.baseline.as_ref().and_then(c.get);
    let b = d.current.as_ref().and_then(c.get);
    match (a, b) {
        (Some(a), Some(b)) => format!("{} → {} ({})", (c.fmt)(a), (c.fmt)(b), pct((c.change)(d))),
        (Some(a), None) => format!("{} → –", (c.fmt)(a)),
        (None, Some(b)) => format!("– → {}", (c.fmt)(b)),
        (None, None) => "–".into(),
    }
}

/// Whether a cell got worse beyond the threshold (for colour only).
fn worse(d: &StageDiff, c: &Col, max: f64) -> Option<bool> {
    let ch = (c.change)(d)?;
    match c.worse {
        Worse::Lower if ch < -max => Some(true),
        Worse::Higher if ch > max => Some(true),
        Worse::Lower if ch > max => Some(false),
        Worse::Higher if ch < -max => Some(false),
        _ => None,
    }
}

fn status(d: &StageDiff) -> String {
    let s = |f: &Option<Figures>| {
        f.as_ref()
            .map(|f| f.status.to_uppercase())
            .unwrap_or_else(|| "not run".into())
    };
    format!("{} → {}", s(&d.baseline), s(&d.current))
}

fn verdict(c: &Comparison) -> String {
    if c.regressed {
        format!(
            "{} regression(s) beyond {}% or new error classes",
            c.regressions.len(),
            c.max_regression_pct
        )
    } else {
        format!(
            "no regression beyond {}% and no new error class",
            c.max_regression_pct
        )
    }
}

pub fn human(c: &Comparison, color: bool) -> String {
    let mut b = tabled::builder::Builder::default();
    let mut head = vec!["Stage".to_string()];
    head.extend(COLS.iter().map(|c| c.title.to_string()));
    head.push("Status".into());
    b.push_record(head);
    for d in &c.stages {
        let mut row = vec![d.name.clone()];
        row.extend(COLS.iter().map(|col| cell(d, col)));
        row.push(status(d));
        b.push_record(row);
    }
    let mut t = b.build();
    t.with(tabled::settings::Style::rounded());
    let mut o = format!(
        "Compared with {} (baseline) → {}\n{t}\n",
        c.baseline, c.current
    );
    for r in &c.regressions {
        let line = format!("  regression in `{}`: {}", r.stage, r.message);
        let _ = writeln!(o, "{}", if color { line.red().to_string() } else { line });
    }
    let v = verdict(c);
    let _ = writeln!(
        o,
        "Result: {}",
        match (color, c.regressed) {
            (true, true) => v.red().bold().to_string(),
            (true, false) => v.green().to_string(),
            _ => v,
        }
    );
    o
}

pub fn markdown(c: &Comparison) -> String {
    let mut o = format!(
        "## Compared with the baseline\n\n`{}` (baseline) → `{}`, threshold {}%.\n\n| Stage |",
        c.baseline, c.current, c.max_regression_pct
    );
    for col in COLS {
        let _ = write!(o, " {} |", col.title);
    }
    o.push_str(" Status |\n|---|");
    for _ in COLS {
        o.push_str("---|");
    }
    o.push_str("---|\n");
    for d in &c.stages {
        let _ = write!(o, "| {} |", d.name);
        for col in COLS {
            let _ = write!(o, " {} |", cell(d, col));
        }
        let _ = writeln!(o, " {} |", status(d));
    }
    o.push('\n');
    for r in &c.regressions {
        let _ = writeln!(o, "- **Regression** in `{}`: {}", r.stage, r.message);
    }
    let _ = writeln!(o, "\n**Result:** {}.", verdict(c));
    o
}

pub fn json(c: &Comparison) -> String {
    serde_json::to_string_pretty(c).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// The comparison as a section of report.html.
pub fn html_section(c: &Comparison) -> String {
    let mut o = format!(
        "<section id=\"comparison\"><h2>Compared with the baseline</h2><p class=\"small\"><code>{}</code> (baseline) → <code>{}</code>; threshold {}%.</p><table><thead><tr><th>Stage</th>",
        esc(&c.baseline),
        esc(&c.current),
        c.max_regression_pct
    );
    for col in COLS {
        let _ = write!(o, "<th>{}</th>", col.title);
    }
    o.push_str("<th>Status</th></tr></thead><tbody>");
    for d in &c.stages {
        let _ = write!(o, "<tr><td>{}</td>", esc(&d.name));
        for col in COLS {
            let class = match worse(d, col, c.max_regression_pct) {
                Some(true) => "n worse",
                Some(false) => "n better",
                None => "n",
            };
            let _ = write!(o, "<td class=\"{class}\">{}</td>", esc(&cell(d, col)));
        }
        let _ = write!(o, "<td>{}</td></tr>", esc(&status(d)));
    }
    o.push_str("</tbody></table>");
    if !c.regressions.is_empty() {
        o.push_str("<ul>");
        for r in &c.regressions {
            let _ = write!(
                o,
                "<li class=\"worse\"><b>Regression</b> in <code>{}</code>: {}</li>",
                esc(&r.stage),
                esc(&r.message)
            );
        }
        o.push_str("</ul>");
    }
    let _ = write!(
        o,
        "<p class=\"verdict {}\">{}</p></section>",
        if c.regressed { "fail" } else { "pass" },
        esc(&verdict(c))
    );
    o
}

/// `chatops compare --format html`: the section as a page of its own.
pub fn html_page(c: &Comparison) -> String {
    format!(
        "{}<h1>chatops compare</h1>{}</main></body></html>\n",
        head("chatops compare"),
        html_section(c)
    )
}

#[cfg(test)]
mod tests {
    use super::super::{RunSummary, StageSummary, WatchSummary, compare};
    use super::*;

    fn run(p95: f64) -> RunSummary {
        RunSummary {
            schema_version: 1,
            plan: "p".into(),
            result: "pass".into(),
            stages: vec![StageSummary {
                name: "busy <1>".into(),
                status: "pass".into(),
                requests: 10,
                rps: 100.0,
                p95_ms: p95,
                p99_ms: 90.0,
                error_rate: 0.0,
                errors: Default::default(),
                watch: WatchSummary {
                    max_active: Some(4),
                },
            }],
        }
    }

    #[test]
    fn every_format_shows_the_change_and_the_verdict() {
        let c = compare(&run(50.0), &run(80.0), 10.0, ("a/summary.json", "this run"));
        let h = human(&c, false);
        assert!(h.contains("50.0 ms → 80.0 ms (+60.0%)"), "{h}");
        assert!(
            h.contains("regression in `busy <1>`: p95 rose 60.0%"),
            "{h}"
        );
        assert!(h.contains("PASS → PASS"), "{h}");
        let m = markdown(&c);
        assert!(m.contains("| busy <1> | 100.0 → 100.0 (+0.0%) |"), "{m}");
        assert!(m.contains("**Result:** 1 regression(s)"), "{m}");
        let j: serde_json::Value = serde_json::from_str(&json(&c)).expect("json");
        assert_eq!(j["regressed"], true);
        assert_eq!(j["stages"][0]["change_pct"]["p95_ms"], 60.0);
        assert_eq!(j["regressions"][0]["metric"], "p95_ms");
        let s = html_section(&c);
        assert!(s.contains("<td>busy &lt;1&gt;</td>"), "{s}");
        assert!(s.contains("class=\"n worse\">50.0 ms → 80.0 ms"), "{s}");
        assert!(html_page(&c).starts_with("<!DOCTYPE html>"));
        let same = compare(&run(50.0), &run(50.0), 10.0, ("a", "b"));
        assert!(human(&same, false).contains("Result: no regression beyond 10%"));
    }
}
