//! Judgements on a stage's per-second series: requests queuing for a pooled
//! connection, a cold start, the first failing second, a saturated thread.

use super::evidence::{ColdStart, PoolQueue};

/// One second of a stage: the client's counts and the database's sessions
/// (maxima of the fast samples within that second).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Second {
    /// Seconds into the stage (end of the interval).
    pub t_s: f64,
    pub requests: u64,
    pub errors: u64,
    /// Mean latency of the requests that finished in that second.
    pub mean_ms: Option<f64>,
    /// The target database's sessions, any state (the backend's pool and
    /// other applications; chatops's own excluded).
    pub sessions: Option<u32>,
    /// Most sessions active at once.
    pub active: Option<u32>,
}

/// The first second with errors, or a mean latency over the bound.
pub fn first_failure(series: &[Second], p95_limit_ms: Option<f64>) -> Option<f64> {
    series
        .iter()
        .find(|s| s.errors > 0 || matches!((s.mean_ms, p95_limit_ms), (Some(m), Some(l)) if m >= l))
        .map(|s| s.t_s)
}

fn mean(xs: impl Iterator<Item = f64>) -> Option<f64> {
    let v: Vec<f64> = xs.collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// Requests queue for a pooled connection: in a second whose latency is
/// over the bound (or at least twice the stage's first), the database's
/// sessions sit at the backend's `connection_limit` (the pool is fully
/// open and every connection is handed out) while fewer than that are
/// active in PostgreSQL (the database has spare capacity) — but at least
/// half of them are: a pool that is full but mostly idle has a connection
/// for the next request, however slow the backend is for other reasons.
/// A pool that is not full cannot queue; latency that does not climb is no
/// queue.
pub fn pool_queue(
    series: &[Second],
    connection_limit: Option<u32>,
    p95_limit_ms: Option<f64>,
) -> Option<PoolQueue> {
    let limit = connection_limit.filter(|l| *l > 0)?;
    let base = series.iter().find_map(|s| s.mean_ms)?;
    let slow = |m: f64| p95_limit_ms.is_some_and(|l| m >= l) || (m >= 2.0 * base && m >= 10.0);
    let hits: Vec<&Second> = series
        .iter()
        .filter(|s| {
            s.sessions.is_some_and(|n| n >= limit)
                && s.active.is_some_and(|a| a < limit && a * 2 >= limit)
                && s.mean_ms.is_some_and(slow)
        })
        .collect();
    let first = hits.first()?;
    Some(PoolQueue {
        connection_limit: limit,
        sessions: hits
            .iter()
            .filter_map(|s| s.sessions)
            .max()
            .unwrap_or(limit),
        max_active: hits.iter().filter_map(|s| s.active).max().unwrap_or(0),
        latency_from_ms: base,
        latency_to_ms: hits.iter().filter_map(|s| s.mean_ms).fold(0.0, f64::max),
        from_s: first.t_s,
    })
}

/// A cold start: latency high only in the stage's first seconds (the first
/// fifth, at least one second) — at least three times the rest and over the
/// bound early, under it afterwards — while the database's sessions were
/// still rising (the pool opening its connections). High latency all
/// along, or with a pool already open, is not a cold start.
pub fn cold_start(series: &[Second], p95_limit_ms: Option<f64>) -> Option<ColdStart> {
    let timed: Vec<&Second> = series.iter().filter(|s| s.mean_ms.is_some()).collect();
    if timed.len() < 3 {
        return None;
    }
    let early_n = (timed.len() / 5).max(1);
    let (early, late) = timed.split_at(early_n);
    let early_mean = mean(early.iter().filter_map(|s| s.mean_ms))?;
    let late_mean = mean(late.iter().filter_map(|s| s.mean_ms))?;
    let limit = p95_limit_ms.unwrap_or(f64::INFINITY);
    if early_mean < 3.0 * late_mean || late_mean >= limit {
        return None;
    }
    if p95_limit_ms.is_some() && early_mean < limit {
        return None;
    }
    let s_from = early.iter().find_map(|s| s.sessions)?;
    let s_to = late.iter().filter_map(|s| s.sessions).max()?;
    (s_to > s_from).then(|| ColdStart {
        early_mean_ms: early_mean,
        late_mean_ms: late_mean,
        sessions_from: s_from,
        sessions_to: s_to,
        early_s: early.last().map(|s| s.t_s).unwrap_or(1.0),
    })
}

/// Latency climbing from stage to stage: each stage's p95 at least 1.5×
/// the one before, and the last at least half its bound (or 100 ms).
pub fn climbing(p95s: &[(f64, Option<f64>)]) -> bool {
    if p95s.len() < 2 {
        return false;
    }
    let up = p95s.windows(2).all(|w| w[1].0 >= 1.5 * w[0].0.max(0.1));
    let (last, bound) = p95s[p95s.len() - 1];
    up && last >= bound.map(|b| b / 2.0).unwrap_or(100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sec(t: f64, mean: f64, sessions: u32, active: u32) -> Second {
        Second {
            t_s: t,
            requests: 100,
            errors: 0,
            mean_ms: Some(mean),
            sessions: Some(sessions),
            active: Some(active),
        }
    }

    #[test]
    fn the_pool_queues_when_full_with_few_active_and_latency_climbing() {
        let s = [
            sec(1.0, 20.0, 2, 1),
            sec(2.0, 80.0, 2, 1),
            sec(3.0, 400.0, 2, 1),
        ];
        let q = pool_queue(&s, Some(2), Some(200.0)).expect("queue");
        assert_eq!((q.connection_limit, q.sessions, q.max_active), (2, 2, 1));
        assert_eq!(q.from_s, 2.0, "80 ms is four times the first second's 20");
        assert_eq!(q.latency_to_ms, 400.0);
        // Not full: no queue, however slow.
        let open = [sec(1.0, 20.0, 1, 1), sec(2.0, 400.0, 1, 1)];
        assert_eq!(pool_queue(&open, Some(2), Some(200.0)), None);
        // Full but fast: a healthy pool.
        let fast = [sec(1.0, 5.0, 10, 1), sec(2.0, 6.0, 10, 2)];
        assert_eq!(pool_queue(&fast, Some(10), Some(200.0)), None);
        // Every connection busy in PostgreSQL: the database is the limit, not the queue.
        let busy = [sec(1.0, 20.0, 2, 2), sec(2.0, 400.0, 2, 2)];
        assert_eq!(pool_queue(&busy, Some(2), Some(200.0)), None);
        assert_eq!(pool_queue(&s, None, Some(200.0)), None);
    }

    #[test]
    fn a_full_pool_that_is_mostly_idle_is_no_queue() {
        // The healthy sandbox's last quick stage: Prisma had opened all 50
        // connections, one was active at a time, and latency doubled
        // because the machine was busy. It was named a pool queue (and a
        // pool_saturation warning) before.
        let s = [
            sec(1.0, 8.0, 50, 1),
            sec(2.0, 18.0, 50, 1),
            sec(3.0, 25.0, 50, 1),
        ];
        assert_eq!(pool_queue(&s, Some(50), Some(1000.0)), None);
        // Half of them busy in PostgreSQL and latency climbing: a queue.
        let busy = [sec(1.0, 8.0, 50, 10), sec(2.0, 300.0, 50, 25)];
        let q = pool_queue(&busy, Some(50), Some(200.0)).expect("queue");
        assert_eq!((q.from_s, q.max_active), (2.0, 25));
    }

    #[test]
    fn cold_start_is_early_latency_while_sessions_rise() {
        let mut s = vec![sec(1.0, 900.0, 1, 1)];
        for t in 2..=6 {
            s.push(sec(t as f64, 20.0, 5, 2));
        }
        let c = cold_start(&s, Some(200.0)).expect("cold start");
        assert_eq!((c.sessions_from, c.sessions_to), (1, 5));
        assert_eq!(c.early_mean_ms, 900.0);
        // Sessions already open: the backend itself was slow at first.
        let mut warm = s.clone();
        warm[0].sessions = Some(5);
        assert_eq!(cold_start(&warm, Some(200.0)), None);
        // Slow all along: not a cold start.
        let slow: Vec<Second> = (1..=6).map(|t| sec(t as f64, 500.0, t, 2)).collect();
        assert_eq!(cold_start(&slow, Some(200.0)), None);
        // Early latency under the bound explains no failure.
        let mut mild = s.clone();
        mild[0].mean_ms = Some(150.0);
        assert_eq!(cold_start(&mild, Some(200.0)), None);
        assert_eq!(cold_start(&s[..2], Some(200.0)), None, "too short to judge");
    }

    #[test]
    fn first_failure_and_climbing() {
        let mut s = vec![
            sec(1.0, 20.0, 1, 1),
            sec(2.0, 30.0, 1, 1),
            sec(3.0, 300.0, 1, 1),
        ];
        assert_eq!(first_failure(&s, Some(200.0)), Some(3.0));
        s[1].errors = 1;
        assert_eq!(first_failure(&s, Some(200.0)), Some(2.0));
        assert_eq!(first_failure(&s[..1], None), None);
        assert!(climbing(&[
            (10.0, Some(100.0)),
            (30.0, Some(120.0)),
            (80.0, Some(150.0))
        ]));
        assert!(!climbing(&[(10.0, Some(100.0)), (12.0, Some(120.0))]));
        assert!(
            !climbing(&[(10.0, Some(300.0)), (20.0, Some(300.0))]),
            "far from its bound"
        );
        assert!(!climbing(&[(10.0, None)]));
    }
}
