//! What a load run produced: each stage's measurements, samples, status
//! and missed criteria, the breaking point's diagnosis, and the generator's
//! own CPU and memory. Read by the reports; made by the runner.

use super::monitor;
use super::plan::{Model, Stage};
use super::stats::TaskStats;
use crate::diagnose::cause::Cause;
use crate::diagnose::load::{Candidate, SlowEvidence, Warning};
use serde::Serialize;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StageStatus {
    Pass,
    Fail,
    /// Stopped by Ctrl-C or the time bound before its end.
    Interrupted,
}

impl StageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StageStatus::Pass => "pass",
            StageStatus::Fail => "fail",
            StageStatus::Interrupted => "interrupted",
        }
    }
}

pub struct StageResult {
    pub stage: Stage,
    pub model: Model,
    pub elapsed: Duration,
    pub kinds: Vec<String>,
    pub stats: TaskStats,
    /// Open model: sends planned for the stage.
    pub planned: Option<u64>,
    pub samples: Vec<monitor::Sample>,
    pub watch: monitor::Summary,
    pub status: StageStatus,
    /// Why the stage failed (criteria missed).
    pub failures: Vec<String>,
    /// The generator's own CPU use during the stage (% of one core).
    pub cpu_pct: f64,
    /// Once a second: requests, errors and latency finished so far.
    pub progress: Vec<Progress>,
    /// Once a second: what finished in that second (errors by class,
    /// latency percentiles).
    pub seconds: Vec<super::persecond::PerSecond>,
    /// Seconds from the run's start to the stage's (to place the samples).
    pub offset_s: f64,
    /// The stage's worst statement (pg_stat_statements deltas) and its scan.
    pub slow: Option<SlowEvidence>,
    /// Its latencies are unreliable, and why (the generator or the machine
    /// was saturated).
    pub unreliable: Option<String>,
}

/// Cumulative counts at a second of a stage.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Progress {
    pub t_s: f64,
    pub requests: u64,
    pub errors: u64,
    /// Sum of the latencies recorded, in milliseconds.
    pub latency_ms: f64,
}

impl StageResult {
    pub fn requests(&self) -> u64 {
        self.stats.total().requests()
    }
}

/// Why the first failing stage failed: one cause from the vocabulary
/// (serialized as its stable name), the others that also held, and what
/// was ruled out.
#[derive(Debug, Clone, Serialize)]
pub struct BreakingPoint {
    pub stage: String,
    pub cause: Cause,
    pub root_cause: String,
    pub remedy: String,
    /// The stage's figures the diagnosis rests on.
    pub evidence: Vec<String>,
    /// Other causes that held, with their evidence and fix.
    pub contributing: Vec<Candidate>,
    /// Causes checked and not holding, with their numbers.
    pub ruled_out: Vec<String>,
    /// The structured evidence (lock relation and blocker, slow statement,
    /// backend CPU, pool queue, cold start, generator, exit).
    pub details: super::evidence::Details,
    /// Seconds into the stage of its first failing second (errors, or a
    /// mean latency over the bound); None when no second stood out.
    pub first_failure_s: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Generator {
    /// chatops's CPU time over the run's wall time (100 = one core busy).
    pub cpu_pct: f64,
    pub peak_rss_bytes: Option<u64>,
}

pub struct RunResult {
    pub plan: String,
    pub model: Model,
    pub base_url: String,
    pub stages: Vec<StageResult>,
    pub breaking_point: Option<BreakingPoint>,
    /// What would break next (every run; most useful when all stages pass).
    pub warnings: Vec<Warning>,
    /// The warm-up before the first stage (not counted).
    pub warmup: Option<StageResult>,
    pub interrupted: bool,
    pub time_bound_hit: bool,
    pub backend: monitor::Backend,
    pub generator: Generator,
    pub elapsed: Duration,
}
