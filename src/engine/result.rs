//! What a run produces: each check's [`Observation`], diagnosed into a
//! [`CheckResult`], and the run's [`Report`].

use crate::diagnose::Fault;
use serde::Serialize;
use std::collections::BTreeMap;

/// Outcome status of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    /// Could not be judged here, for a reason that is not a fault (the
    /// backend's working tree is on another machine): neither a pass nor
    /// a finding.
    Skipped,
    Warn,
    Fail,
    Blocked,
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Skipped => "skipped",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Blocked => "blocked",
            Status::Error => "error",
        }
    }
    /// Whether checks that need this one may run (a skipped check found
    /// nothing to hold them back: nothing to migrate, say).
    pub fn satisfies_needs(self) -> bool {
        matches!(self, Status::Pass | Status::Warn | Status::Skipped)
    }
}

/// What one run of a check observed, before diagnosis.
#[derive(Debug, Clone)]
pub struct Observation {
    pub status: Status,
    pub summary: String,
    /// Observed facts, one per line.
    pub evidence: Vec<String>,
    /// The shell command a human could run to see the same thing.
    pub command: Option<String>,
    /// What went wrong, in a form the diagnose module understands.
    pub fault: Option<Fault>,
    /// Values later checks can use as `${checks.ID.NAME}`.
    pub captures: serde_json::Map<String, serde_json::Value>,
}

impl Observation {
    pub fn new(status: Status, summary: impl Into<String>) -> Self {
        Observation {
            status,
            summary: summary.into(),
            evidence: Vec::new(),
            command: None,
            fault: None,
            captures: serde_json::Map::new(),
        }
    }
    pub fn pass(summary: impl Into<String>) -> Self {
        Self::new(Status::Pass, summary)
    }
    pub fn fail(summary: impl Into<String>, fault: Fault) -> Self {
        let mut o = Self::new(Status::Fail, summary);
        o.fault = Some(fault);
        o
    }
    pub fn error(summary: impl Into<String>) -> Self {
        Self::new(Status::Error, summary)
    }
    /// Not judged, for `reason` (which says why, and what would let it run).
    pub fn skipped(reason: impl Into<String>) -> Self {
        Self::new(Status::Skipped, reason)
    }
    pub fn evidence(mut self, line: impl Into<String>) -> Self {
        self.evidence.push(line.into());
        self
    }
    pub fn command(mut self, cmd: impl Into<String>) -> Self {
        self.command = Some(cmd.into());
        self
    }
    pub fn capture(mut self, name: &str, v: impl Into<serde_json::Value>) -> Self {
        self.captures.insert(name.to_string(), v.into());
        self
    }
}

/// One check's outcome, diagnosed.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub id: String,
    pub phase: String,
    pub kind: String,
    pub title: String,
    pub status: Status,
    pub summary: String,
    pub evidence: Vec<String>,
    pub command: Option<String>,
    pub root_cause: Option<String>,
    pub remedy: Option<String>,
    pub blocked_by: Option<String>,
    /// The root cause in the documented vocabulary (`database_down`,
    /// `schema_drift`, …; see `diagnose::cause`), when the finding's fault
    /// names one; `None` when the check passed or was blocked.
    pub cause: Option<crate::diagnose::cause::Cause>,
    /// The id of another finding that explains this one (the backend
    /// exited because PostgreSQL is down: `postgres_ready`); set by
    /// [`super::link_causes`] after the run.
    pub caused_by: Option<String>,
    /// What the check observed going wrong, as data (its `cause` code and
    /// the facts); kept, like root_cause and remedy, when it did not pass.
    pub fault: Option<crate::diagnose::Fault>,
    pub attempts: u32,
    pub duration_ms: u64,
    /// Values captured for later checks (`${checks.<id>.<name>}`); secret
    /// ones are redacted in reports.
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub captures: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub playbook: String,
    pub file: String,
    pub status: Status,
    pub interrupted: bool,
    pub started_at: String,
    pub duration_ms: u64,
    pub target: BTreeMap<String, String>,
    pub phases: Vec<String>,
    pub checks: Vec<CheckResult>,
}

impl Report {
    pub fn count(&self, s: Status) -> usize {
        self.checks.iter().filter(|c| c.status == s).count()
    }
}
