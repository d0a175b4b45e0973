//! `--format junit`: JUnit XML, one testsuite per phase, one testcase per check.
//! Blocked checks are `skipped` with the root cause, failures carry the
//! evidence, root cause and remedy.

use crate::engine::Report;
use crate::engine::Status;
use std::fmt::Write;

pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => {}
            c => o.push(c),
        }
    }
    o
}

pub fn render(r: &Report) -> String {
    let mut o = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let fails = r.count(Status::Fail);
    let errors = r.count(Status::Error);
    let _ = writeln!(
        o,
        "<testsuites name=\"{}\" tests=\"{}\" failures=\"{fails}\" errors=\"{errors}\" skipped=\"{}\" time=\"{:.3}\">",
        esc(&r.playbook),
        r.checks.len(),
        r.count(Status::Blocked) + r.count(Status::Skipped),
        r.duration_ms as f64 / 1000.0
    );
    for phase in &r.phases {
        let cs: Vec<_> = r.checks.iter().filter(|c| &c.phase == phase).collect();
        let t: u64 = cs.iter().map(|c| c.duration_ms).sum();
        let _ = writeln!(
            o,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3}\" timestamp=\"{}\">",
            esc(phase),
            cs.len(),
            cs.iter().filter(|c| c.status == Status::Fail).count(),
            cs.iter().filter(|c| c.status == Status::Error).count(),
            cs.iter()
                .filter(|c| matches!(c.status, Status::Blocked | Status::Skipped))
                .count(),
            t as f64 / 1000.0,
            esc(&r.started_at)
        );
        for c in cs {
            let _ = write!(
                o,
                "    <testcase classname=\"chatops.{}\" name=\"{}\" time=\"{:.3}\"",
                esc(&c.kind),
                esc(&format!("{}: {}", c.id, c.title)),
                c.duration_ms as f64 / 1000.0
            );
            let mut detail = String::new();
            for e in &c.evidence {
                let _ = writeln!(detail, "evidence: {e}");
            }
            if let Some(cmd) = &c.command {
                let _ = writeln!(detail, "rerun: {cmd}");
            }
            if let Some(cause) = c.cause {
                let _ = writeln!(detail, "cause: {cause} ({})", cause.describe());
            }
            if let Some(by) = super::caused_by_words(r, c) {
                let _ = writeln!(detail, "caused by: {by}, not a root cause of its own");
            }
            if let Some(rc) = &c.root_cause {
                let _ = writeln!(detail, "root cause: {rc}");
            }
            if let Some(rm) = &c.remedy {
                let _ = writeln!(detail, "remedy: {rm}");
            }
            match c.status {
                Status::Pass => {
                    let _ = writeln!(
                        o,
                        ">\n      <system-out>{}</system-out>\n    </testcase>",
                        esc(&format!("{}\n{detail}", c.summary))
                    );
                }
                Status::Warn => {
                    let _ = writeln!(
                        o,
                        ">\n      <system-out>{}</system-out>\n    </testcase>",
                        esc(&format!("WARNING: {}\n{detail}", c.summary))
                    );
                }
                Status::Fail => {
                    let _ = writeln!(
                        o,
                        ">\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>",
                        esc(&c.summary),
                        esc(&c.kind),
                        esc(&detail)
                    );
                }
                Status::Error => {
                    let _ = writeln!(
                        o,
                        ">\n      <error message=\"{}\" type=\"{}\">{}</error>\n    </testcase>",
                        esc(&c.summary),
                        esc(&c.kind),
                        esc(&detail)
                    );
                }
                Status::Blocked | Status::Skipped => {
                    let _ = writeln!(
                        o,
                        ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                        esc(&c.summary)
                    );
                }
            }
        }
        o.push_str("  </testsuite>\n");
    }
    o.push_str("</testsuites>\n");
    o
}
