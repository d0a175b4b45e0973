//! Per-second series of a stage: requests, successes, errors by class and
//! latency percentiles of the requests that finished in each second, from
//! a per-second HDR histogram. Each task counts into its own `second` ([`KindStats`])
//! (one more histogram record per request, under the lock it already
//! takes); once a second the runner swaps every task's interval for an
//! empty one and merges them ([`Collector::sweep`]), so the hot path never
//! waits for the merge and nothing is allocated while the load runs.

use super::shared::Slot;
use super::stats::{ErrorCounts, KindStats};
use serde::{Deserialize, Serialize};

/// What a task measured since the last sweep is a [`KindStats`] (its
/// `second`), emptied at each sweep.
impl KindStats {
    /// Empties it, keeping the histogram's allocation.
    fn reset(&mut self) {
        self.hist.reset();
        self.ok = 0;
        self.errors = ErrorCounts::default();
        self.pool_timeouts = 0;
    }

    /// The second ending `t_s` seconds into the stage.
    pub fn point(&self, t_s: f64) -> PerSecond {
        let ms = |us: u64| (us as f64 / 10.0).round() / 100.0;
        let h = &self.hist;
        let lat = |q: f64| (!h.is_empty()).then(|| ms(h.value_at_quantile(q)));
        PerSecond {
            t_s,
            requests: self.requests(),
            ok: self.ok,
            errors: self.errors.clone(),
            p50_ms: lat(0.50),
            p95_ms: lat(0.95),
            p99_ms: lat(0.99),
            max_ms: (!h.is_empty()).then(|| ms(h.max())),
            mean_ms: (!h.is_empty()).then(|| (h.mean() / 10.0).round() / 100.0),
        }
    }
}

/// One second of a stage as the client saw it (`seconds[]` in the export).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PerSecond {
    /// Seconds into the stage at the end of this second.
    pub t_s: f64,
    /// Requests that finished in this second, successes among them.
    pub requests: u64,
    pub ok: u64,
    pub errors: ErrorCounts,
    /// Latency of the requests that finished in this second (None: no
    /// request with a latency finished; refused and transport errors have none).
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub mean_ms: Option<f64>,
}

/// Merges the tasks' intervals once a second.
#[derive(Default)]
pub struct Collector {
    spare: KindStats,
    acc: KindStats,
    /// The last second taken, kept until the next sweep so that a short
    /// tail at the stage's end can join it.
    last: KindStats,
}

impl Collector {
    fn gather(&mut self, slots: &[Slot]) {
        self.acc.reset();
        for s in slots {
            if let Ok(mut g) = s.lock() {
                std::mem::swap(&mut g.second, &mut self.spare);
            }
            self.acc.merge(&self.spare);
            self.spare.reset();
        }
    }

    /// Takes what every task measured since the last sweep: the second
    /// ending `t_s` seconds into the stage. The task's lock is held only
    /// for a swap.
    pub fn sweep(&mut self, slots: &[Slot], t_s: f64) -> PerSecond {
        self.gather(slots);
        std::mem::swap(&mut self.acc, &mut self.last);
        self.last.point(t_s)
    }

    /// The stage's end: what finished since the last sweep becomes a
    /// second of its own, or joins the last one when it is less than half
    /// a second later (so no two points share a second).
    pub fn finish(&mut self, slots: &[Slot], t_s: f64, seconds: &mut Vec<PerSecond>) {
        self.gather(slots);
        if self.acc.requests() == 0 {
            return;
        }
        match seconds.last_mut() {
            Some(prev) if t_s - prev.t_s < 0.5 => {
                self.last.merge(&self.acc);
                *prev = self.last.point(prev.t_s);
            }
            _ => seconds.push(self.acc.point(t_s)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::outcome::{ErrClass, Outcome};
    use super::super::stats::TaskStats;
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    #[test]
    fn sweeps_take_each_second_once_with_classes_and_percentiles() {
        let slots: Vec<Slot> = (0..3)
            .map(|_| Arc::new(Mutex::new(TaskStats::new(1))))
            .collect();
        let mut c = Collector::default();
        for (i, s) in slots.iter().enumerate() {
            let mut g = s.lock().expect("lock");
            for ms in 1..=100u64 {
                g.second
                    .record(Duration::from_millis(ms + i as u64), Outcome::Ok(200));
            }
            g.second.record(
                Duration::ZERO,
                Outcome::Err {
                    class: ErrClass::Refused,
                    status: None,
                    pool_timeout: false,
                },
            );
        }
        slots[0].lock().expect("lock").second.record(
            Duration::from_millis(5),
            Outcome::Err {
                class: ErrClass::RateLimited,
                status: Some(429),
                pool_timeout: false,
            },
        );
        let p = c.sweep(&slots, 1.0);
        assert_eq!(p.t_s, 1.0);
        assert_eq!(p.requests, 304);
        assert_eq!(p.ok, 300);
        assert_eq!(p.errors.refused, 3);
        assert_eq!(p.errors.rate_limited, 1);
        let p50 = p.p50_ms.expect("p50");
        let p99 = p.p99_ms.expect("p99");
        assert!((p50 - 51.0).abs() <= 1.5, "{p:?}");
        assert!((p99 - 100.0).abs() <= 2.0, "{p:?}");
        assert!(p.max_ms.expect("max") >= p99);
        // the next second starts empty: nothing is counted twice
        let q = c.sweep(&slots, 2.0);
        assert_eq!(q.requests, 0);
        assert_eq!(q.p95_ms, None);
        assert_eq!(q.mean_ms, None);
        let mut secs = vec![p, q];
        // a tail 0.2 s after the last second joins it; a later one is its own
        let rec = |ms| {
            slots[1]
                .lock()
                .expect("lock")
                .second
                .record(Duration::from_millis(ms), Outcome::Ok(200))
        };
        c.sweep(&slots, 3.0);
        rec(7);
        let r = c.sweep(&slots, 4.0);
        secs.push(r);
        rec(9);
        c.finish(&slots, 4.2, &mut secs);
        assert_eq!(secs.len(), 3);
        assert_eq!(secs[2].t_s, 4.0);
        assert_eq!(secs[2].requests, 2);
        assert!((secs[2].max_ms.expect("max") - 9.0).abs() < 0.1);
        rec(11);
        c.finish(&slots, 5.0, &mut secs);
        assert_eq!(secs.len(), 4);
        assert_eq!(secs[3].requests, 1);
        c.finish(&slots, 5.5, &mut secs);
        assert_eq!(secs.len(), 4, "nothing more finished");
    }
}
