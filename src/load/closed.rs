//! The closed model: a fixed number of virtual users, each sending its next
//! request only after the previous answer (and the think time), like k6's
//! ramping-vus. A stalling server slows the senders down, so latencies seen
//! here understate what users would see: coordinated omission.

use super::outcome::{Answer, ErrClass, Outcome};
use super::placeholder::RenderCx;
use super::shared::{Shared, Slot};
use super::template::RequestTemplate;
use super::wire::Conn;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One virtual user until `end`.
pub async fn vu(id: u32, shared: Arc<Shared>, slot: Slot, end: Instant) {
    let mut conn = Conn::new(shared.target.addr, shared.target.tls.clone());
    let mut cx = RenderCx::new(id, shared.captures);
    loop {
        let t0 = Instant::now();
        if t0 >= end {
            break;
        }
        cx.seq += 1;
        let Some((k, req)) = shared.next_request(&mut cx) else {
            // Every kind waits for a capture that has not come yet.
            tokio::time::sleep(Duration::from_millis(10).min(end - Instant::now().min(end))).await;
            continue;
        };
        let Ok(req) = req else {
            record(&slot, k, t0, t0, transport());
            continue;
        };
        let t = &shared.templates[k];
        let (o, answer) = conn
            .send(&req, t.is_head(), t0, shared.timeout, t.captures())
            .await;
        record(&slot, k, t0, conn.finished(), o);
        answered(&slot, o, answer.as_ref(), t, &mut cx);
        if !shared.think.is_zero() {
            let now = Instant::now();
            if now >= end {
                break;
            }
            tokio::time::sleep(shared.think.min(end - now)).await;
        }
    }
}

pub(super) fn transport() -> Outcome {
    Outcome::Err {
        class: ErrClass::Transport,
        status: None,
        pool_timeout: false,
    }
}

/// What an answer leaves behind: a success's captures, an error's body
/// (a few per task, for the witness).
pub(super) fn answered(
    slot: &Slot,
    o: Outcome,
    answer: Option<&Answer>,
    t: &RequestTemplate,
    cx: &mut RenderCx,
) {
    let Some(a) = answer else { return };
    match o {
        Outcome::Ok(status) => t.capture(status, a, cx),
        Outcome::Err { .. } => {
            if let Ok(mut s) = slot.lock() {
                s.keep_body(o, &a.body);
            }
        }
    }
}

/// Records one outcome measured from `from` (the send time here; the
/// scheduled time in the open model) to `to`.
pub(super) fn record(slot: &Slot, kind: usize, from: Instant, to: Instant, o: Outcome) {
    let latency = to.saturating_duration_since(from);
    if let Ok(mut s) = slot.lock() {
        s.second.record(latency, o);
        if let Some(k) = s.kinds.get_mut(kind) {
            k.record(latency, o);
        }
    }
}
