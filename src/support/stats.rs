//! Latency percentiles, defined once: an HDR histogram in microseconds,
//! 1 µs to 10 minutes, two significant digits (under 1% error, about 23 KB).
//! `load` keeps one per request kind; the `rate_limit` check one per burst.

use hdrhistogram::Histogram;
use std::time::Duration;

/// An empty latency histogram (values in microseconds).
pub fn latency_histogram() -> Histogram<u64> {
    // Constant, valid bounds: this cannot fail.
    Histogram::new_with_bounds(1, 600_000_000, 2).expect("valid histogram bounds")
}

/// Latencies of a series of requests.
#[derive(Debug, Clone)]
pub struct Latencies(Histogram<u64>);

impl Default for Latencies {
    fn default() -> Self {
        Latencies(latency_histogram())
    }
}

impl Latencies {
    /// Records one latency (clamped into the histogram's range).
    pub fn record(&mut self, d: Duration) {
        self.record_micros(d.as_micros().min(u128::from(u64::MAX)) as u64);
    }
    pub fn record_micros(&mut self, us: u64) {
        self.0.saturating_record(us.max(1));
    }
    pub fn len(&self) -> u64 {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// The latency at quantile `q` (0.95 for p95); zero when nothing was recorded.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        Duration::from_micros(self.0.value_at_quantile(q))
    }
    /// The largest latency recorded (to the histogram's precision); zero when empty.
    pub fn max(&self) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        Duration::from_micros(self.0.max())
    }
}

impl FromIterator<Duration> for Latencies {
    fn from_iter<I: IntoIterator<Item = Duration>>(iter: I) -> Self {
        let mut l = Latencies::default();
        for d in iter {
            l.record(d);
        }
        l
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_within_the_histogram_precision() {
        let l: Latencies = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(l.len(), 100);
        let near = |d: Duration, ms: f64| (d.as_secs_f64() * 1000.0 - ms).abs() <= ms * 0.01;
        assert!(near(l.quantile(0.50), 50.0), "{:?}", l.quantile(0.50));
        assert!(near(l.quantile(0.95), 95.0), "{:?}", l.quantile(0.95));
        assert!(near(l.quantile(0.99), 99.0), "{:?}", l.quantile(0.99));
        assert!(near(l.max(), 100.0), "{:?}", l.max());
        let empty = Latencies::default();
        assert!(empty.is_empty());
        assert_eq!(empty.quantile(0.5), Duration::ZERO);
        assert_eq!(empty.max(), Duration::ZERO);
    }

    #[test]
    fn out_of_range_values_are_clamped_not_lost() {
        let mut l = Latencies::default();
        l.record(Duration::ZERO);
        l.record(Duration::from_secs(3600));
        assert_eq!(l.len(), 2);
        assert!(l.max() >= Duration::from_secs(599));
    }
}
