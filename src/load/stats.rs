//! Measurements: an HDR histogram per request kind (per task while running,
//! merged per stage), outcomes by class, and the summaries the reports print.

use super::outcome::{ErrClass, Outcome};
use crate::diagnose::load::ErrorBody;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::time::Duration;

/// Latencies are recorded in microseconds, 1 µs to 10 minutes, with two
/// significant digits (under 1% error; about 23 KB per histogram, so 120
/// virtual users with two request kinds stay a few megabytes).
pub use crate::support::stats::latency_histogram as new_histogram;

#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct ErrorCounts {
    pub refused: u64,
    pub timeout: u64,
    pub rate_limited: u64,
    pub client_4xx: u64,
    pub server_5xx: u64,
    pub transport: u64,
}

impl ErrorCounts {
    pub fn total(&self) -> u64 {
        self.refused
            + self.timeout
            + self.rate_limited
            + self.client_4xx
            + self.server_5xx
            + self.transport
    }
    pub(super) fn bump(&mut self, c: ErrClass) {
        *self.slot(c) += 1;
    }
    fn slot(&mut self, c: ErrClass) -> &mut u64 {
        match c {
            ErrClass::Refused => &mut self.refused,
            ErrClass::Timeout => &mut self.timeout,
            ErrClass::RateLimited => &mut self.rate_limited,
            ErrClass::Client4xx => &mut self.client_4xx,
            ErrClass::Server5xx => &mut self.server_5xx,
            ErrClass::Transport => &mut self.transport,
        }
    }
    pub(super) fn add(&mut self, o: &ErrorCounts) {
        for c in ErrClass::ALL {
            let v = o.get(c);
            *self.slot(c) += v;
        }
    }
    pub fn get(&self, c: ErrClass) -> u64 {
        match c {
            ErrClass::Refused => self.refused,
            ErrClass::Timeout => self.timeout,
            ErrClass::RateLimited => self.rate_limited,
            ErrClass::Client4xx => self.client_4xx,
            ErrClass::Server5xx => self.server_5xx,
            ErrClass::Transport => self.transport,
        }
    }
}

/// Everything measured for one request kind.
#[derive(Debug, Clone)]
pub struct KindStats {
    pub hist: Histogram<u64>,
    pub ok: u64,
    pub errors: ErrorCounts,
    /// Error answers whose body carries Prisma's P2024 (pool timeout).
    pub pool_timeouts: u64,
}

impl Default for KindStats {
    fn default() -> Self {
        KindStats {
            hist: new_histogram(),
            ok: 0,
            errors: ErrorCounts::default(),
            pool_timeouts: 0,
        }
    }
}

impl KindStats {
    pub fn record(&mut self, latency: Duration, o: Outcome) {
        if o.has_latency() {
            let us = (latency.as_micros() as u64).max(1);
            self.hist.saturating_record(us);
        }
        match o {
            Outcome::Ok(_) => self.ok += 1,
            Outcome::Err {
                class,
                pool_timeout,
                ..
            } => {
                self.errors.bump(class);
                if pool_timeout {
                    self.pool_timeouts += 1;
                }
            }
        }
    }

    pub fn requests(&self) -> u64 {
        self.ok + self.errors.total()
    }

    pub fn merge(&mut self, o: &KindStats) {
        let _ = self.hist.add(&o.hist);
        self.ok += o.ok;
        self.errors.add(&o.errors);
        self.pool_timeouts += o.pool_timeouts;
    }

    pub fn latency(&self) -> Latency {
        Latency::of(&self.hist)
    }

    /// Errors as a percentage of requests (0 when nothing was sent).
    pub fn error_pct(&self) -> f64 {
        let n = self.requests();
        if n == 0 {
            0.0
        } else {
            self.errors.total() as f64 * 100.0 / n as f64
        }
    }
}

/// Percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Latency {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Latency {
    pub fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        let ms = |us: u64| (us as f64 / 1000.0 * 100.0).round() / 100.0;
        Latency {
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p95_ms: ms(h.value_at_quantile(0.95)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
            mean_ms: (h.mean() / 1000.0 * 100.0).round() / 100.0,
        }
    }
}

/// One task's measurements, one entry per request kind of the mix.
#[derive(Debug, Clone)]
pub struct TaskStats {
    pub kinds: Vec<KindStats>,
    /// Open model: scheduled sends that never went out.
    pub dropped: u64,
    /// A few distinct bodies of 4xx/5xx answers (the first ones and the
    /// latest), for the witness: at most [`BODIES_PER_TASK`] per task and
    /// [`BODIES_PER_STAGE`] once merged.
    pub bodies: Vec<ErrorBody>,
    /// What finished since the runner's last per-second sweep.
    pub second: KindStats,
}

/// Error bodies kept per task, and per stage once merged.
pub const BODIES_PER_TASK: usize = 3;
pub const BODIES_PER_STAGE: usize = 8;
/// Bytes kept of one error body.
pub const BODY_BYTES: usize = 2048;

impl TaskStats {
    pub fn new(kinds: usize) -> TaskStats {
        TaskStats {
            kinds: (0..kinds).map(|_| KindStats::default()).collect(),
            dropped: 0,
            bodies: Vec::new(),
            second: Default::default(),
        }
    }

    pub fn merge(&mut self, o: &TaskStats) {
        for (a, b) in self.kinds.iter_mut().zip(&o.kinds) {
            a.merge(b);
        }
        self.dropped += o.dropped;
        for b in &o.bodies {
            if self.bodies.len() < BODIES_PER_STAGE && !self.bodies.contains(b) {
                self.bodies.push(b.clone());
            }
        }
    }

    /// Keeps the body of an error answer when it differs from those kept:
    /// the first ones, then the latest in the last place (a cause that
    /// appears mid-stage is seen too). Costs a comparison per error answer.
    pub fn keep_body(&mut self, o: Outcome, body: &[u8]) {
        let Outcome::Err {
            status: Some(status),
            ..
        } = o
        else {
            return;
        };
        if body.is_empty() {
            return;
        }
        let cut = &body[..body.len().min(BODY_BYTES)];
        if self
            .bodies
            .iter()
            .any(|b| b.status == status && b.body.as_bytes() == cut)
        {
            return;
        }
        let b = ErrorBody {
            status,
            body: String::from_utf8_lossy(cut).into_owned(),
        };
        if self.bodies.len() < BODIES_PER_TASK {
            self.bodies.push(b);
        } else if let Some(last) = self.bodies.last_mut() {
            *last = b;
        }
    }

    /// All kinds together.
    pub fn total(&self) -> KindStats {
        let mut t = KindStats::default();
        for k in &self.kinds {
            t.merge(k);
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_classes() {
        let mut k = KindStats::default();
        for i in 1..=100u64 {
            k.record(Duration::from_millis(i), Outcome::Ok(200));
        }
        let l = k.latency();
        assert!((l.p50_ms - 50.0).abs() <= 0.5, "{l:?}");
        assert!((l.p95_ms - 95.0).abs() <= 1.0, "{l:?}");
        assert!((l.p99_ms - 99.0).abs() <= 1.0, "{l:?}");
        assert!((l.max_ms - 100.0).abs() <= 1.0, "{l:?}");
        let err = |class, pool_timeout| Outcome::Err {
            class,
            status: None,
            pool_timeout,
        };
        k.record(Duration::ZERO, err(ErrClass::Refused, false));
        k.record(Duration::from_secs(30), err(ErrClass::Timeout, false));
        k.record(Duration::from_millis(3), err(ErrClass::RateLimited, false));
        k.record(Duration::from_millis(3), err(ErrClass::Client4xx, true));
        assert_eq!(k.requests(), 104);
        assert_eq!(k.errors.total(), 4);
        assert_eq!(k.errors.refused, 1);
        assert_eq!(k.pool_timeouts, 1);
        // refused requests carry no latency; the timeout does
        assert_eq!(k.hist.len(), 103);
        assert!((k.latency().max_ms - 30_000.0).abs() < 300.0);
        assert!((k.error_pct() - 4.0 / 104.0 * 100.0).abs() < 1e-9);
    }

    #[test]
    fn error_bodies_are_kept_distinct_first_and_latest() {
        let err = |status| Outcome::Err {
            class: ErrClass::Client4xx,
            status: Some(status),
            pool_timeout: false,
        };
        let mut t = TaskStats::new(1);
        t.keep_body(Outcome::Ok(200), b"fine");
        t.keep_body(err(400), b"");
        assert!(t.bodies.is_empty(), "only error answers with a body");
        for b in ["a", "a", "b", "c", "d", "e"] {
            t.keep_body(err(400), b.as_bytes());
        }
        let kept: Vec<&str> = t.bodies.iter().map(|b| b.body.as_str()).collect();
        assert_eq!(kept, ["a", "b", "e"]);
        t.keep_body(err(500), &vec![b'x'; BODY_BYTES * 2]);
        assert_eq!(t.bodies[2].body.len(), BODY_BYTES);
        let mut all = TaskStats::new(1);
        for _ in 0..4 {
            all.merge(&t);
        }
        assert_eq!(all.bodies.len(), 3, "merged without repeats");
    }

    #[test]
    fn merging_tasks_adds_up() {
        let mut a = TaskStats::new(2);
        let mut b = TaskStats::new(2);
        a.kinds[0].record(Duration::from_millis(1), Outcome::Ok(200));
        b.kinds[1].record(Duration::from_millis(9), Outcome::Ok(201));
        b.dropped = 3;
        a.merge(&b);
        let t = a.total();
        assert_eq!(t.requests(), 2);
        assert_eq!(a.dropped, 3);
        assert!((t.latency().max_ms - 9.0).abs() < 0.1);
        assert_eq!(KindStats::default().error_pct(), 0.0);
        assert_eq!(KindStats::default().latency(), Latency::default());
    }
}
