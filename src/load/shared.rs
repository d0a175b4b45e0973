//! What every generator task of a stage shares: the compiled mix (picked by
//! weight, rendered per virtual user), the target, the think time and the
//! request timeout; and the slot each task counts into.

use super::placeholder::{RenderCx, Rng};
use super::stats::TaskStats;
use super::target::Target;
use super::template::{HttpRequest, RenderError, RequestTemplate};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What every task of a stage shares.
pub struct Shared {
    pub templates: Vec<RequestTemplate>,
    /// How many capture names the mix has.
    pub captures: usize,
    /// Cumulative weights.
    cumulative: Vec<u64>,
    pub target: Target,
    pub think: Duration,
    pub timeout: Duration,
}

impl Shared {
    /// `weights`: the mix's, in the templates' order.
    pub fn new(
        templates: Vec<RequestTemplate>,
        captures: usize,
        weights: &[u32],
        target: Target,
        think: Duration,
        timeout: Duration,
    ) -> Shared {
        let mut acc = 0u64;
        let cumulative = weights
            .iter()
            .map(|w| {
                acc += u64::from(*w);
                acc
            })
            .collect();
        Shared {
            templates,
            captures,
            cumulative,
            target,
            think,
            timeout,
        }
    }

    /// Picks a kind by weight and renders it; kinds waiting for a captured
    /// value are passed over (a few tries, then None: nothing to send yet).
    pub fn next_request(
        &self,
        cx: &mut RenderCx,
    ) -> Option<(usize, Result<HttpRequest, RenderError>)> {
        for _ in 0..16 {
            let k = self.pick(&mut cx.rng);
            match self.templates[k].render(&self.target.host, cx) {
                Err(RenderError::NotCaptured) => continue,
                r => return Some((k, r)),
            }
        }
        None
    }

    /// A request kind by weight.
    pub fn pick(&self, rng: &mut Rng) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(0);
        if self.cumulative.len() < 2 || total == 0 {
            return 0;
        }
        let r = rng.next_u64() % total;
        self.cumulative.iter().position(|c| r < *c).unwrap_or(0)
    }
}

/// A task's measurements, read by the progress line while it runs.
pub type Slot = Arc<Mutex<TaskStats>>;
