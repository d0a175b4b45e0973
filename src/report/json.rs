//! `--format json`: stable, documented in the README (schema_version 1).

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
