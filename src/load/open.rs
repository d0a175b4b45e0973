//! The open model: requests go out on a fixed schedule (the target arrival
//! rate) whatever the server does, and each latency is measured from the
//! send's scheduled time, not from when a connection was free to send it.
//! A server stall therefore shows in the percentiles (wrk2, oha's latency
//! correction, k6's arrival-rate executors). Scheduled sends that never got
//! out by the end of the stage are counted as dropped.

use super::closed::{answered, record, transport};
use super::placeholder::RenderCx;
use super::shared::{Shared, Slot};
use super::wire::Conn;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The schedule shared by a stage's connections: send number `n` is due at
/// `start + n / rate`.
pub struct Schedule {
    pub start: Instant,
    pub end: Instant,
    pub rate: f64,
    next: AtomicU64,
}

impl Schedule {
    pub fn new(start: Instant, duration: Duration, rate: f64) -> Schedule {
        Schedule {
            start,
            end: start + duration,
            rate,
            next: AtomicU64::new(0),
        }
    }

    /// Sends planned for the whole stage.
    pub fn planned(&self) -> u64 {
        ((self.end - self.start).as_secs_f64() * self.rate).floor() as u64
    }

    /// Claims the next send: its due time, or None when the stage is over.
    fn claim(&self) -> Option<Instant> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let due = self.start + Duration::from_secs_f64(n as f64 / self.rate);
        (due < self.end).then_some(due)
    }
}

/// One connection taking sends off the schedule until the stage ends.
pub async fn worker(id: u32, shared: Arc<Shared>, slot: Slot, schedule: Arc<Schedule>) {
    let mut conn = Conn::new(shared.target.addr, shared.target.tls.clone());
    let mut cx = RenderCx::new(id, shared.captures);
    while let Some(due) = schedule.claim() {
        let now = Instant::now();
        if now >= schedule.end {
            break; // late sends past the end are dropped, not sent
        }
        // Measured from the scheduled time when the connection was late
        // because it was busy (the server held it: coordinated omission);
        // from the actual send when it was free and only waited for the due
        // time, so the timer's millisecond granularity is not billed to the
        // server.
        let (from, start) = if due > now {
            tokio::time::sleep_until(due.into()).await;
            let t = Instant::now();
            (t, t)
        } else {
            (due, now)
        };
        cx.seq += 1;
        // Nothing to send yet (every kind waits for a capture): the send is dropped.
        let Some((k, req)) = shared.next_request(&mut cx) else {
            continue;
        };
        let Ok(req) = req else {
            record(&slot, k, from, start, transport());
            continue;
        };
        let t = &shared.templates[k];
        let (o, answer) = conn
            .send(&req, t.is_head(), start, shared.timeout, t.captures())
            .await;
        record(&slot, k, from, conn.finished(), o);
        answered(&slot, o, answer.as_ref(), t, &mut cx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_spaces_sends_and_ends() {
        let t = Instant::now();
        let s = Schedule::new(t, Duration::from_secs(1), 4.0);
        assert_eq!(s.planned(), 4);
        let due: Vec<_> = std::iter::from_fn(|| s.claim()).collect();
        assert_eq!(due.len(), 4);
        assert_eq!(due[1] - due[0], Duration::from_millis(250));
        assert_eq!(due[3] - t, Duration::from_millis(750));
    }
}
