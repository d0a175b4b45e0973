//! Reports: one file per output format. They only read a finished
//! [`Report`]; secrets are removed before any of them sees it.

use crate::engine::{CheckResult, Report};
use crate::redact::Redactor;

pub mod human;
pub mod json;
pub mod junit;
pub mod markdown;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Human,
    Json,
    Markdown,
    Junit,
}

pub struct Style {
    pub color: bool,
    pub verbose: bool,
    pub quiet: bool,
}

pub fn render(r: &Report, format: Format, style: &Style) -> String {
    match format {
        Format::Human => human::render(r, style),
        Format::Json => json::render(r),
        Format::Markdown => markdown::render(r),
        Format::Junit => junit::render(r),
    }
}

/// Returns a copy of the report with every string redacted.
pub fn redacted(r: &Report, red: &Redactor) -> Report {
    let mut r = r.clone();
    let f = |s: &mut String| *s = red.redact(s);
    f(&mut r.playbook);
    f(&mut r.file);
    for v in r.target.values_mut() {
        f(v);
    }
    for c in &mut r.checks {
        redact_check(c, red);
    }
    r
}

fn redact_check(c: &mut CheckResult, red: &Redactor) {
    let f = |s: &mut String| *s = red.redact(s);
    f(&mut c.title);
    f(&mut c.summary);
    c.evidence.iter_mut().for_each(f);
    for s in [&mut c.command, &mut c.root_cause, &mut c.remedy]
        .into_iter()
        .flatten()
    {
        f(s);
    }
}

/// Checks that failed on their own (not blocked), in report order.
pub fn findings(r: &Report) -> impl Iterator<Item = &CheckResult> {
    r.checks.iter().filter(|c| {
        matches!(
            c.status,
            crate::checks::Status::Fail
                | crate::checks::Status::Error
                | crate::checks::Status::Warn
        )
    })
}

/// Checks blocked by `id`.
pub fn blocked_by<'a>(r: &'a Report, id: &'a str) -> impl Iterator<Item = &'a CheckResult> + 'a {
    r.checks
        .iter()
        .filter(move |c| c.blocked_by.as_deref() == Some(id))
}

pub fn icon(s: crate::checks::Status) -> &'static str {
    use crate::checks::Status::*;
    match s {
        Pass => "✅",
        Warn => "⚠️",
        Fail => "❌",
        Blocked => "⛔",
        Error => "💥",
    }
}
