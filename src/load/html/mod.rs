//! `report.html`: one self-contained page (inline SVG, styles and a small
//! script of its own; nothing fetched, so it works offline and from
//! file://) with the run's per-second charts, stage boundaries and the
//! breaking point marked, then the tables and the diagnosis the other
//! formats print. [`chart`] holds the chart definitions (a list of series)
//! and draws them; [`timeline`] puts the stages and their seconds on one
//! time axis.

pub mod chart;
pub mod series;
pub mod timeline;

use super::report::{kind_rows, result_word, rows};
use super::result::RunResult;
use crate::support::redact::Redactor;
use serde_json::json;
use std::fmt::Write;

/// The page's styles (screen and print).
pub const CSS: &str = include_str!("report.css");
/// Hover: the values of every series at the second under the pointer.
const JS: &str = include_str!("report.js");

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// The head of a page (title, styles) up to the opening of `<main>`.
pub fn head(title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{CSS}</style></head><body><main>",
        esc(title)
    )
}

/// The whole report. `comparison`: the comparison with a baseline run,
/// already rendered as a section.
pub fn page(r: &RunResult, comparison: Option<&str>, red: &Redactor) -> String {
    let t = timeline::Timeline::of(r);
    let mut o = head(&format!("chatops load · {}", r.plan));
    let word = result_word(r);
    let _ = write!(
        o,
        "<header><h1>chatops load · {}</h1><p class=\"meta\">{:?} model · {} · {:.0} s · <span class=\"badge {word}\">{}</span></p>",
        esc(&r.plan),
        r.model,
        esc(&r.base_url),
        r.elapsed.as_secs_f64(),
        word.replace('_', " ")
    );
    match &r.breaking_point {
        Some(bp) => {
            let _ = write!(
                o,
                "<p class=\"verdict fail\">Broke at stage <b>{}</b>{}: <b>{}</b>. {}</p>",
                esc(&bp.stage),
                bp.first_failure_s
                    .map(|s| format!(" ({s:.0} s into it)"))
                    .unwrap_or_default(),
                esc(&bp.cause.as_str().replace('_', " ")),
                esc(&bp.root_cause)
            );
        }
        None if word == "pass" => {
            o.push_str(
                "<p class=\"verdict pass\">No breaking point: every stage passed its criteria.</p>",
            );
        }
        None => {
            let _ = write!(
                o,
                "<p class=\"verdict cut\">{}</p>",
                if r.interrupted {
                    "Interrupted: the stages shown ran before Ctrl-C."
                } else {
                    "Stopped at the total time bound (--max-duration) before every stage ran."
                }
            );
        }
    }
    o.push_str("</header><section id=\"charts\"><h2>Per second</h2>");
    let mut data = Vec::new();
    for def in series::CHARTS {
        let (svg, d) = chart::render(def, &t, &r.backend, data.len());
        if def.optional && d.is_null() {
            continue;
        }
        o.push_str(&svg);
        data.push(d);
    }
    o.push_str("<div class=\"tip\" hidden></div></section>");
    tables(&mut o, r);
    diagnosis(&mut o, r);
    if let Some(c) = comparison {
        o.push_str(c);
    }
    notes(&mut o, r);
    let stages: Vec<_> = t
        .bands
        .iter()
        .map(|b| json!([b.name, b.start.round(), b.end.round()]))
        .collect();
    let payload = json!({"n": t.rows.len(), "stages": stages, "charts": data});
    let payload = payload.to_string().replace("</", "<\\/");
    let _ = writeln!(
        o,
        "</main><script type=\"application/json\" id=\"chatops-data\">{payload}</script><script>{JS}</script></body></html>"
    );
    red.redact(&o)
}

fn tables(o: &mut String, r: &RunResult) {
    o.push_str(
        "<section><h2>Actual Metrics</h2><table><thead><tr><th>Phase</th><th>VUs</th><th>Requests</th>\
         <th>Req/s</th><th>Success rate</th><th>P95</th><th>P99</th><th>Active DB (max)</th><th>Status</th></tr></thead><tbody>",
    );
    for row in rows(r) {
        let _ = write!(
            o,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"st {}\">{}</td></tr>",
            esc(&row.phase),
            esc(&row.vus),
            row.requests,
            row.rps,
            row.success,
            row.p95,
            row.p99,
            esc(&row.db),
            row.status.to_lowercase(),
            row.status
        );
    }
    o.push_str("</tbody></table>");
    if let Some(w) = &r.warmup {
        let tot = w.stats.total();
        let _ = write!(
            o,
            "<p class=\"small\">warm-up (not counted): {} requests in {:.1} s, p95 {:.1} ms, {} errors</p>",
            tot.requests(),
            w.elapsed.as_secs_f64(),
            tot.latency().p95_ms,
            tot.errors.total()
        );
    }
    let kinds = kind_rows(r);
    if !kinds.is_empty() {
        o.push_str(
            "<h3>By request kind (latency in ms)</h3><table><thead><tr><th>Phase</th><th>Kind</th><th>Requests</th>\
             <th>Errors</th><th>p50</th><th>p90</th><th>p95</th><th>p99</th><th>max</th></tr></thead><tbody>",
        );
        for k in kinds {
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
                 <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                esc(&k.phase),
                esc(&k.kind),
                k.requests,
                k.errors,
                k.p50,
                k.p90,
                k.p95,
                k.p99,
                k.max
            );
        }
        o.push_str("</tbody></table>");
    }
    o.push_str("</section>");
}

fn list(o: &mut String, items: &[String]) {
    o.push_str("<ul>");
    for i in items {
        let _ = write!(o, "<li>{}</li>", esc(i));
    }
    o.push_str("</ul>");
}

fn diagnosis(o: &mut String, r: &RunResult) {
    if let Some(bp) = &r.breaking_point {
        let _ = write!(
            o,
            "<section class=\"bp\"><h2>Breaking point: {} ({})</h2><p><b>Root cause.</b> {}</p><p><b>Fix.</b> {}</p><h3>Evidence</h3>",
            esc(&bp.stage),
            esc(bp.cause.as_str()),
            esc(&bp.root_cause),
            esc(&bp.remedy)
        );
        list(o, &bp.evidence);
        for c in &bp.contributing {
            let _ = write!(
                o,
                "<h3>Contributing: {}</h3><p>{} <b>Fix.</b> {}</p>",
                esc(c.cause.as_str()),
                esc(&c.root_cause),
                esc(&c.fix)
            );
            list(o, &c.evidence);
        }
        if !bp.ruled_out.is_empty() {
            o.push_str("<h3>Ruled out</h3>");
            list(o, &bp.ruled_out);
        }
        o.push_str("</section>");
    }
    if !r.warnings.is_empty() {
        o.push_str("<section><h2>What would break next</h2><ul>");
        for w in &r.warnings {
            let _ = write!(
                o,
                "<li><b>{}</b> in <code>{}</code>: {} <i>Fix:</i> {}</li>",
                esc(w.cause.as_str()),
                esc(&w.stage),
                esc(&w.message),
                esc(&w.fix)
            );
        }
        o.push_str("</ul></section>");
    }
}

fn notes(o: &mut String, r: &RunResult) {
    let mut n: Vec<String> = r
        .stages
        .iter()
        .filter_map(|s| {
            s.unreliable
                .as_ref()
                .map(|u| format!("{}: {u}", s.stage.name))
        })
        .collect();
    for s in &r.stages {
        if let (Some(down), Some(from)) = (s.watch.db_down_s, s.watch.db_down_from_s)
            && down > 0
        {
            n.push(format!(
                "{}: PostgreSQL did not answer the sampler for {down} s (from {from:.0} s into the run); the gap in the session chart is that time",
                s.stage.name
            ));
        }
    }
    n.extend(r.backend.database_note.iter().cloned());
    n.extend(r.backend.statements_note.iter().cloned());
    n.extend(
        r.backend
            .pgbouncer
            .iter()
            .map(|p| format!("PgBouncer: {p}")),
    );
    n.extend(r.backend.pgbouncer_note.iter().cloned());
    n.push(format!(
        "generator: {:.0}% CPU (of one core) over {:.1} s, peak RSS {} MB",
        r.generator.cpu_pct,
        r.elapsed.as_secs_f64(),
        r.generator
            .peak_rss_bytes
            .map(|b| b / 1_048_576)
            .unwrap_or(0)
    ));
    o.push_str("<section class=\"notes\"><h2>Notes</h2>");
    list(o, &n);
    o.push_str("</section>");
}

#[cfg(test)]
mod tests;
