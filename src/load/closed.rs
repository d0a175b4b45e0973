//! The closed model: a fixed number of virtual users, each sending its next
//! request only after the previous answer (and the think time), like k6's
//! ramping-vus. A stalling server slows the senders down, so latencies seen
//! here understate what users would see: coordinated omission.

use super::client::{Conn, ErrClass, Outcome, RenderCx, Rng};
use super::{Shared, Slot};
use std::sync::Arc;
use std::time::Instant;

/// One virtual user until `end`.
pub async fn vu(id: u32, shared: Arc<Shared>, slot: Slot, end: Instant) {
    let mut conn = Conn::new(shared.target.addr);
    let mut cx = RenderCx {
        rng: Rng::new(u64::from(id) + 1),
        vu: id,
        seq: 0,
    };
    loop {
        if Instant::now() >= end {
            break;
        }
        let k = shared.pick(&mut cx.rng);
        cx.seq += 1;
        let Some(req) = shared.templates[k].render(&shared.target.host, &mut cx) else {
            record(&slot, k, Instant::now(), transport());
            continue;
        };
        let t0 = Instant::now();
        let o = conn.send(req, shared.timeout).await;
        record(&slot, k, t0, o);
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

/// Records one outcome measured from `from` (the send time here; the
/// scheduled time in the open model).
pub(super) fn record(slot: &Slot, kind: usize, from: Instant, o: Outcome) {
    let latency = from.elapsed();
    if let Ok(mut s) = slot.lock()
        && let Some(k) = s.kinds.get_mut(kind)
    {
        k.record(latency, o);
    }
}
