//! `--format json`: stable, documented in the README (schema_version 1;
//! `cause`, `caused_by` and `summary.root_causes` were added compatibly).
//! Each check carries its `cause` from the documented vocabulary
//! (`database_down`, `schema_drift`, …; `diagnose::cause`) and `caused_by`,
//! the id of the finding that explains it (both `null` when none).
//! Each check carries, next to its worded `root_cause` and `remedy`, the
//! `fault` it observed as data (`null` when it passed or was blocked): an
//! object whose `cause` is a stable code (`pg_auth_failed`,
//! `port_not_listening`, …; see `diagnose::Fault`) beside the observed facts.

use crate::engine::Report;
use crate::engine::Status;
use serde_json::json;

pub fn render(r: &Report) -> String {
    let v = json!({
        "schema_version": 1,
        "playbook": r.playbook,
        "file": r.file,
        "status": r.status,
        "interrupted": r.interrupted,
        "started_at": r.started_at,
        "duration_ms": r.duration_ms,
        "summary": {
            "pass": r.count(Status::Pass),
            "warn": r.count(Status::Warn),
            "fail": r.count(Status::Fail),
            "blocked": r.count(Status::Blocked),
            "error": r.count(Status::Error),
            "skipped": r.count(Status::Skipped),
            "root_causes": super::root_causes(r),
        },
        "target": r.target,
        "phases": r.phases,
        "checks": r.checks,
    });
    let mut s =
        serde_json::to_string_pretty(&v).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::Fault;
    use crate::engine::CheckResult;

    fn report(status: Status, fault: Option<Fault>) -> Report {
        let c = CheckResult {
            id: "url".into(),
            phase: "Environment".into(),
            kind: "env".into(),
            title: "url".into(),
            status,
            summary: "s".into(),
            evidence: vec![],
            command: None,
            root_cause: fault
                .as_ref()
                .map(|f| crate::diagnose::diagnose(f).root_cause),
            remedy: None,
            blocked_by: None,
            cause: None,
            caused_by: None,
            fault,
            attempts: 1,
            duration_ms: 1,
            captures: serde_json::Map::new(),
        };
        Report {
            playbook: "p".into(),
            file: "f".into(),
            status,
            interrupted: false,
            started_at: String::new(),
            duration_ms: 1,
            target: Default::default(),
            phases: vec!["Environment".into()],
            checks: vec![c],
        }
    }

    fn check(r: &Report) -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_str(&render(r)).expect("valid JSON");
        v["checks"][0].clone()
    }

    #[test]
    fn a_failed_check_carries_its_fault_with_a_cause_code() {
        let r = report(
            Status::Fail,
            Some(Fault::DbUrlInvalid {
                name: "DATABASE_URL".into(),
                message: "cannot parse postgresql://app:hunter22@db/x:y".into(),
            }),
        );
        // What doctor prints: the report after redaction.
        let c = check(&crate::report::redacted(&r, &Default::default()));
        assert_eq!(c["fault"]["cause"], "db_url_invalid", "{c:#}");
        assert_eq!(c["fault"]["name"], "DATABASE_URL", "{c:#}");
        let text = c.to_string();
        assert!(!text.contains("hunter22"), "{text}");
        assert!(
            c["fault"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("app:***@db")),
            "{c:#}"
        );
        // The keys that were there before are all still there.
        for k in [
            "id",
            "phase",
            "kind",
            "title",
            "status",
            "summary",
            "evidence",
            "command",
            "root_cause",
            "remedy",
            "blocked_by",
            "attempts",
            "duration_ms",
        ] {
            assert!(c.get(k).is_some(), "{k} missing: {c:#}");
        }
    }

    #[test]
    fn a_passing_check_has_a_null_fault() {
        let c = check(&report(Status::Pass, None));
        assert!(c["fault"].is_null(), "{c:#}");
    }
}
