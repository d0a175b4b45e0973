//! Comparing two load runs (`chatops compare A B`, `chatops load
//! --baseline`): their `summary.json` side by side per stage, matched by
//! name: requests per second, p95, p99, error rate and the most active
//! database sessions, with the change in percent. A regression is
//! throughput down or p95/p99 up by more than the threshold, an error
//! class the baseline did not have, or a stage that passed and now fails.
//! The judgement is pure ([`compare`]); [`render`] prints it.

pub mod render;

use super::outcome::ErrClass;
use super::stats::ErrorCounts;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Latency changes smaller than this are measurement noise, whatever
/// their percentage (0.4 ms → 0.5 ms is +25%).
pub const NOISE_MS: f64 = 1.0;
/// The default threshold, in percent.
pub const DEFAULT_MAX_REGRESSION: f64 = 10.0;

/// What a comparison reads of a run's `summary.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct RunSummary {
    pub schema_version: u32,
    #[serde(default)]
    pub plan: String,
    #[serde(default)]
    pub result: String,
    #[serde(default)]
    pub stages: Vec<StageSummary>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StageSummary {
    pub name: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub requests: u64,
    #[serde(default)]
    pub rps: f64,
    #[serde(default)]
    pub p95_ms: f64,
    #[serde(default)]
    pub p99_ms: f64,
    /// A fraction, 0–1.
    #[serde(default)]
    pub error_rate: f64,
    #[serde(default)]
    pub errors: ErrorCounts,
    #[serde(default)]
    pub watch: WatchSummary,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct WatchSummary {
    #[serde(default)]
    pub max_active: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} is not a chatops load summary (summary.json of `chatops load --export-dir` or `--format json`): {source}"
    )]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "{path} has schema_version {found}; this chatops reads {}",
        super::report::SCHEMA_VERSION
    )]
    Version { path: PathBuf, found: u32 },
}

/// Reads a `summary.json`, or the one in an export directory.
pub fn load(path: &Path) -> Result<RunSummary, CompareError> {
    let file = if path.is_dir() {
        path.join("summary.json")
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&file).map_err(|source| CompareError::Read {
        path: file.clone(),
        source,
    })?;
    parse(&text, &file)
}

pub fn parse(text: &str, path: &Path) -> Result<RunSummary, CompareError> {
    let s: RunSummary = serde_json::from_str(text).map_err(|source| CompareError::Parse {
        path: path.to_path_buf(),
        source,
    })?;
    if s.schema_version != super::report::SCHEMA_VERSION {
        return Err(CompareError::Version {
            path: path.to_path_buf(),
            found: s.schema_version,
        });
    }
    Ok(s)
}

/// One stage's figures in one run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Figures {
    pub status: String,
    pub requests: u64,
    pub rps: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub error_rate: f64,
    pub max_active: Option<u32>,
    /// Error classes with at least one error.
    pub error_classes: Vec<&'static str>,
}

impl Figures {
    fn of(s: &StageSummary) -> Figures {
        Figures {
            status: s.status.clone(),
            requests: s.requests,
            rps: s.rps,
            p95_ms: s.p95_ms,
            p99_ms: s.p99_ms,
            error_rate: s.error_rate,
            max_active: s.watch.max_active,
            error_classes: ErrClass::ALL
                .iter()
                .filter(|c| s.errors.get(**c) > 0)
                .map(|c| c.name())
                .collect(),
        }
    }
}

/// Change from the baseline in percent (None: the baseline is zero and
/// the current is not).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Changes {
    pub rps: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub error_rate: Option<f64>,
    pub max_active: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StageDiff {
    pub name: String,
    /// None: the stage ran only in the other run.
    pub baseline: Option<Figures>,
    pub current: Option<Figures>,
    pub change_pct: Changes,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Regression {
    pub stage: String,
    /// `rps`, `p95_ms`, `p99_ms`, `error_class` or `status`.
    pub metric: &'static str,
    pub change_pct: Option<f64>,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Comparison {
    pub schema_version: u32,
    pub baseline: String,
    pub current: String,
    pub max_regression_pct: f64,
    pub stages: Vec<StageDiff>,
    pub regressions: Vec<Regression>,
    pub regressed: bool,
}

/// `(b − a) / a` in percent, rounded to 0.1; 0 when both are 0.
pub fn change(a: f64, b: f64) -> Option<f64> {
    if a == 0.0 {
        return (b == 0.0).then_some(0.0);
    }
    Some(((b - a) / a * 1000.0).round() / 10.0)
}

/// Compares `current` with `baseline`; a change beyond `max_pct` percent
/// (throughput down, p95 or p99 up by at least [`NOISE_MS`] too) is a
/// regression, and so is a new error class or a stage that passed and
/// now fails.
pub fn compare(
    baseline: &RunSummary,
    current: &RunSummary,
    max_pct: f64,
    labels: (&str, &str),
) -> Comparison {
    let mut names: Vec<&str> = baseline.stages.iter().map(|s| s.name.as_str()).collect();
    for s in &current.stages {
        if !names.contains(&s.name.as_str()) {
            names.push(&s.name);
        }
    }
    let find = |r: &RunSummary, n: &str| r.stages.iter().find(|s| s.name == n).map(Figures::of);
    let mut stages = Vec::new();
    let mut regressions = Vec::new();
    for name in names {
        let (a, b) = (find(baseline, name), find(current, name));
        let mut ch = Changes::default();
        if let (Some(a), Some(b)) = (&a, &b) {
            ch = Changes {
                rps: change(a.rps, b.rps),
                p95_ms: change(a.p95_ms, b.p95_ms),
                p99_ms: change(a.p99_ms, b.p99_ms),
                error_rate: change(a.error_rate, b.error_rate),
                max_active: match (a.max_active, b.max_active) {
                    (Some(x), Some(y)) => change(f64::from(x), f64::from(y)),
                    _ => None,
                },
            };
            let mut flag = |metric, change_pct, message: String| {
                regressions.push(Regression {
                    stage: name.to_string(),
                    metric,
                    change_pct,
                    message,
                })
            };
            if let Some(c) = ch.rps.filter(|c| a.rps > 0.0 && *c < -max_pct) {
                flag(
                    "rps",
                    Some(c),
                    format!(
                        "throughput fell {:.1}%: {:.1} → {:.1} requests/s",
                        -c, a.rps, b.rps
                    ),
                );
            }
            for (metric, x, y, c) in [
                ("p95_ms", a.p95_ms, b.p95_ms, ch.p95_ms),
                ("p99_ms", a.p99_ms, b.p99_ms, ch.p99_ms),
            ] {
                if let Some(c) = c.filter(|c| x > 0.0 && *c > max_pct && y - x >= NOISE_MS) {
                    flag(
                        metric,
                        Some(c),
                        format!("{} rose {c:.1}%: {x:.1} → {y:.1} ms", &metric[..3]),
                    );
                }
            }
            for class in &b.error_classes {
                if !a.error_classes.contains(class) {
                    flag(
                        "error_class",
                        None,
                        format!("new error class `{class}` (the baseline had none)"),
                    );
                }
            }
            if a.status == "pass" && b.status == "fail" {
                flag(
                    "status",
                    None,
                    "the stage passed its criteria in the baseline and fails now".into(),
                );
            }
        }
        stages.push(StageDiff {
            name: name.to_string(),
            baseline: a,
            current: b,
            change_pct: ch,
        });
    }
    let regressed = !regressions.is_empty();
    Comparison {
        schema_version: super::report::SCHEMA_VERSION,
        baseline: labels.0.to_string(),
        current: labels.1.to_string(),
        max_regression_pct: max_pct,
        stages,
        regressions,
        regressed,
    }
}

/// Parses `10%`, `10` or `2.5%` (percent, not negative).
pub fn parse_percent(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let n = t.strip_suffix('%').unwrap_or(t).trim();
    match n.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("`{s}` is not a percentage (like 10% or 2.5)")),
    }
}

#[cfg(test)]
mod tests;
