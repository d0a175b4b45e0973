//! Reports: one file per output format. They only read a finished
//! [`Report`]; secrets are removed before any of them sees it.

use crate::engine::{CheckResult, Report};
use crate::support::redact::{Redactor, is_secret_name};

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
    // A captured token or session is a secret wherever it shows up later
    // (a curl line, an evidence line): learn them first.
    let mut red = red.clone();
    for c in &r.checks {
        for (k, v) in &c.captures {
            learn_secrets(&mut red, k, v, false);
        }
    }
    let red = &red;
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
    c.fault = c
        .fault
        .take()
        .and_then(|x| x.map_strings(|s| red.redact(s)));
    for (k, v) in c.captures.iter_mut() {
        redact_value(red, k, v, false);
    }
}

fn learn_secrets(red: &mut Redactor, name: &str, v: &serde_json::Value, secret: bool) {
    let secret = secret || is_secret_name(name);
    match v {
        serde_json::Value::String(s) if secret => red.add(s),
        serde_json::Value::String(s) => red.learn(s),
        serde_json::Value::Array(a) => a.iter().for_each(|x| learn_secrets(red, name, x, secret)),
        serde_json::Value::Object(m) => {
            m.iter().for_each(|(k, x)| learn_secrets(red, k, x, secret))
        }
        _ => {}
    }
}

fn redact_value(red: &Redactor, name: &str, v: &mut serde_json::Value, secret: bool) {
    let secret = secret || is_secret_name(name);
    match v {
        serde_json::Value::String(s) if secret => *s = "***".to_string(),
        serde_json::Value::String(s) => *s = red.redact(s),
        serde_json::Value::Number(_) if secret => *v = serde_json::Value::from("***"),
        serde_json::Value::Array(a) => a
            .iter_mut()
            .for_each(|x| redact_value(red, name, x, secret)),
        serde_json::Value::Object(m) => m
            .iter_mut()
            .for_each(|(k, x)| redact_value(red, k, x, secret)),
        _ => {}
    }
}

/// Checks that failed on their own (not blocked), in report order.
pub fn findings(r: &Report) -> impl Iterator<Item = &CheckResult> {
    r.checks.iter().filter(|c| {
        matches!(
            c.status,
            crate::engine::Status::Fail
                | crate::engine::Status::Error
                | crate::engine::Status::Warn
        )
    })
}

/// Findings that `id` explains (their `caused_by`).
pub fn caused_by<'a>(r: &'a Report, id: &'a str) -> impl Iterator<Item = &'a CheckResult> + 'a {
    r.checks
        .iter()
        .filter(move |c| c.caused_by.as_deref() == Some(id))
}

/// Findings that are root causes: failed or errored, and not explained by
/// another finding.
pub fn root_causes(r: &Report) -> usize {
    r.checks
        .iter()
        .filter(|c| {
            matches!(
                c.status,
                crate::engine::Status::Fail | crate::engine::Status::Error
            ) && c.caused_by.is_none()
        })
        .count()
}

/// "`postgres_ready` (PostgreSQL accepts connections)": the finding that
/// explains `c`, in words, when one does.
pub fn caused_by_words(r: &Report, c: &CheckResult) -> Option<String> {
    let id = c.caused_by.as_deref()?;
    Some(match r.checks.iter().find(|x| x.id == id) {
        Some(x) if x.title != x.id => format!("`{id}` ({})", x.title),
        _ => format!("`{id}`"),
    })
}

/// Checks blocked by `id`.
pub fn blocked_by<'a>(r: &'a Report, id: &'a str) -> impl Iterator<Item = &'a CheckResult> + 'a {
    r.checks
        .iter()
        .filter(move |c| c.blocked_by.as_deref() == Some(id))
}

pub fn icon(s: crate::engine::Status) -> &'static str {
    use crate::engine::Status::*;
    match s {
        Pass => "✅",
        Warn => "⚠️",
        Fail => "❌",
        Blocked => "⛔",
        Skipped => "⏭️",
        Error => "💥",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn report_with(captures: serde_json::Value, command: &str) -> Report {
        let c = CheckResult {
            id: "login".into(),
            phase: "p".into(),
            kind: "http".into(),
            title: "login".into(),
            status: crate::engine::Status::Pass,
            summary: "ok".into(),
            evidence: vec![],
            command: Some(command.into()),
            root_cause: None,
            remedy: None,
            blocked_by: None,
            cause: None,
            caused_by: None,
            fault: None,
            attempts: 1,
            duration_ms: 1,
            captures: captures.as_object().cloned().unwrap_or_default(),
        };
        Report {
            playbook: "p".into(),
            file: "f".into(),
            status: crate::engine::Status::Pass,
            interrupted: false,
            started_at: String::new(),
            duration_ms: 1,
            target: Default::default(),
            phases: vec![],
            checks: vec![c],
        }
    }

    #[test]
    fn secret_captures_are_redacted_everywhere() {
        let r = report_with(
            json!({
                "access_token": "eyJhbGciOi.secretpart",
                "body": {"user": {"id": 7, "session": {"id": "s3ss10n-value"}}, "pin": 1234},
                "message_id": "abc-123",
                "PGPASSWORD": "pg-pass-value",
                "headers": {"X-Session-Id": "hdr-session-value"},
                "db": "postgresql://u:hunter22@h/db"
            }),
            "curl -H 'X-Trace: eyJhbGciOi.secretpart' http://h/?sid=s3ss10n-value",
        );
        let out = redacted(&r, &Redactor::new());
        let text = serde_json::to_string(&out).unwrap_or_default();
        for secret in [
            "eyJhbGciOi.secretpart",
            "s3ss10n-value",
            "hunter22",
            "pg-pass-value",
            "hdr-session-value",
        ] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        let caps = &out.checks[0].captures;
        assert_eq!(caps["message_id"], "abc-123");
        assert_eq!(caps["body"]["user"]["id"], 7);
        assert_eq!(caps["access_token"], "***");
    }

    /// A skipped check is shown as such in every format, counted apart,
    /// and is neither a finding nor a failure.
    #[test]
    fn a_skipped_check_in_every_format() {
        let mut r = report_with(json!({}), "ls");
        r.phases = vec!["p".into()];
        r.checks[0].status = crate::engine::Status::Skipped;
        r.checks[0].summary = "skipped: the backend runs on db.example.com".into();
        assert_eq!(findings(&r).count(), 0);
        let style = Style {
            color: false,
            verbose: false,
            quiet: false,
        };
        let human = render(&r, Format::Human, &style);
        assert!(
            human.contains("SKIPPED") && human.contains("1 skipped"),
            "{human}"
        );
        let json = render(&r, Format::Json, &style);
        assert!(
            json.contains("\"skipped\": 1") && json.contains("\"status\": \"skipped\""),
            "{json}"
        );
        let junit = render(&r, Format::Junit, &style);
        assert!(
            junit.contains("skipped=\"1\"")
                && junit.contains("<skipped message=\"skipped: the backend"),
            "{junit}"
        );
        let md = render(&r, Format::Markdown, &style);
        assert!(
            md.contains("- [ ] login (skipped: the backend runs on db.example.com)"),
            "{md}"
        );
    }
}
