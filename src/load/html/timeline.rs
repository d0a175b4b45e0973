//! The whole run on one time axis: one row per second since the run
//! started (the client's per-second counts and the monitor's sample of that
//! second, when there are any), and the stages as bands on that axis.

use super::super::monitor::Sample;
use super::super::persecond::PerSecond;
use super::super::result::{RunResult, StageResult, StageStatus};

/// One second of the run (index = seconds since the run started, at the
/// end of the second).
#[derive(Default, Clone, Copy)]
pub struct Row<'a> {
    pub sec: Option<&'a PerSecond>,
    pub sample: Option<&'a Sample>,
    /// The band (stage) the values came from; lines break between bands.
    pub band: Option<usize>,
}

/// A stage on the time axis.
pub struct Band {
    pub name: String,
    pub start: f64,
    pub end: f64,
    /// None: the warm-up (not counted).
    pub status: Option<StageStatus>,
    pub p95_ms: Option<f64>,
}

pub struct Timeline<'a> {
    pub rows: Vec<Row<'a>>,
    pub bands: Vec<Band>,
    /// Run time of the breaking point (its stage's first failing second,
    /// else the stage's start), and its cause.
    pub breaking: Option<(f64, String)>,
}

fn slot(t: f64) -> usize {
    t.max(0.0).round() as usize
}

impl<'a> Timeline<'a> {
    pub fn of(r: &'a RunResult) -> Timeline<'a> {
        let stages: Vec<(&StageResult, bool)> = r
            .warmup
            .iter()
            .map(|w| (w, true))
            .chain(r.stages.iter().map(|s| (s, false)))
            .collect();
        let end = stages
            .iter()
            .map(|(s, _)| {
                s.offset_s
                    + s.elapsed
                        .as_secs_f64()
                        .max(s.seconds.last().map_or(0.0, |p| p.t_s))
            })
            .chain(
                stages
                    .iter()
                    .flat_map(|(s, _)| s.samples.iter().map(|x| x.t_s)),
            )
            .fold(0.0f64, f64::max);
        let mut rows = vec![Row::default(); slot(end) + 2];
        let mut bands = Vec::new();
        for (k, (s, warm)) in stages.iter().enumerate() {
            for p in &s.seconds {
                if let Some(row) = rows.get_mut(slot(s.offset_s + p.t_s)) {
                    row.sec = Some(p);
                    row.band = Some(k);
                }
            }
            for x in &s.samples {
                if let Some(row) = rows.get_mut(slot(x.t_s)) {
                    row.sample = Some(x);
                    row.band = Some(k);
                }
            }
            // Answers still in flight at the stage's end finish after it.
            let tail = s.seconds.last().map_or(0.0, |p| p.t_s);
            bands.push(Band {
                name: s.stage.name.clone(),
                start: s.offset_s,
                end: s.offset_s + s.elapsed.as_secs_f64().max(tail),
                status: (!warm).then_some(s.status),
                p95_ms: s.stage.p95_ms,
            });
        }
        let breaking = r.breaking_point.as_ref().and_then(|bp| {
            let b = bands
                .iter()
                .find(|b| b.status.is_some() && b.name == bp.stage)?;
            let at = b.start + bp.first_failure_s.unwrap_or(0.0);
            Some((at.min(b.end), bp.cause.as_str().replace('_', " ")))
        });
        Timeline {
            rows,
            bands,
            breaking,
        }
    }

    /// The band a second belongs to.
    pub fn band_at(&self, t: f64) -> Option<&Band> {
        self.bands
            .iter()
            .find(|b| t >= b.start - 0.5 && t <= b.end + 0.5)
    }
}
