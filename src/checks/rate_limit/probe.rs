//! The probe: request #1, sent alone before the burst. Its rate-limit
//! headers say whether the burst fits the limiter's budget, before the
//! burst is sent.

use super::budget::{self, Budget};
use super::limiter::match_limiter;
use super::{Burst, Outcome, Params, burst_command, ms};
use crate::checks::Observation;
use crate::checks::util::failed;
use crate::diagnose::{EnvState, Fault, NetError, excerpt};
use crate::probe::http::Prepared;

/// What the probe said, for the burst's judgement: evidence lines and the
/// budget that runs out first (when the answer announced one).
#[derive(Debug, Default)]
pub(super) struct Lead {
    pub(super) lines: Vec<String>,
    pub(super) budget: Option<Budget>,
}

/// Judges the probe (request #1, sent alone): a transport failure or a 429
/// ends the check, and so does a budget the headers announce that cannot
/// admit the rest of the burst (the limiter is named, no burst is sent).
/// Otherwise it says what it saw and whether the burst fits, before sending.
pub(super) fn judge_probe(
    p: &Params,
    prep: &Prepared,
    b: &Burst,
    env: &EnvState,
    now: u64,
) -> Result<Lead, Box<Observation>> {
    let Some(s) = b.samples.first() else {
        return Err(Box::new(Observation::fail(
            "the probe request did not complete in time",
            Fault::HttpConnect {
                url: prep.shown_url.clone(),
                error: NetError::Timeout,
                detail: "no answer within the check's timeout".into(),
            },
        )));
    };
    let status = match s.outcome {
        Outcome::Failed(e) => {
            return Err(Box::new(Observation::fail(
                format!("the probe request failed: {}", e.describe()),
                Fault::HttpConnect {
                    url: prep.shown_url.clone(),
                    error: e,
                    detail: e.describe().to_string(),
                },
            )));
        }
        Outcome::Status(c) => c,
    };
    let a = b.first.clone().unwrap_or_default();
    let n_total = p.requests.max(1);
    let mut lines = vec![format!(
        "probe (request #1, alone) {} {} → {status} in {}",
        prep.method,
        prep.shown_url,
        ms(s.micros)
    )];
    for (k, v) in &a.headers {
        lines.push(format!("probe header {k}: {v}"));
    }
    let all = budget::budgets(&a.headers, now);
    let binding = budget::binding(&all).cloned();
    for b in &all {
        lines.push(format!("rate-limit budget: {}", b.describe()));
    }
    // How many of the burst's requests the budget admits after the probe.
    let admits = binding
        .as_ref()
        .and_then(|b| b.remaining.or(b.limit.map(|l| l.saturating_sub(1))));
    let rest = n_total.saturating_sub(1);
    let fail = |summary: String, limited: u32, first: u32, lines: &[String]| {
        let mut o = Observation::pass(String::new()).command(burst_command(prep, n_total));
        for l in lines {
            o = o.evidence(l.clone());
        }
        if status == 429 {
            o = o.evidence(format!("probe body: {}", excerpt(&a.body, 200)));
        }
        let limiter = match_limiter(
            &p.limiters,
            prep.method.as_str(),
            prep.url.path(),
            &a.headers,
            0,
        );
        Box::new(failed(
            o,
            summary,
            Fault::RateLimited {
                url: prep.shown_url.clone(),
                requests: 1,
                limited,
                first,
                limiter,
                env: env.clone(),
                var: p.disable_var.clone(),
                value: p.disable_value.clone(),
            },
        ))
    };
    if status == 429 {
        return Err(fail(
            "the probe request already answered 429 Too Many Requests: the limiter's budget is spent".into(),
            1,
            1,
            &lines,
        ));
    }
    match (&binding, admits) {
        (Some(b), Some(left)) if left < rest => {
            lines.push(format!(
                "the budget admits {left} more request(s), the burst needs {rest}: it would meet 429s from about request #{}; not sent",
                left + 2
            ));
            Err(fail(
                format!(
                    "rate-limit headers show limiting is active ({}): a burst of {n_total} would meet 429s from about request #{}, so it was not sent",
                    b.describe(),
                    left + 2
                ),
                0,
                0,
                &lines,
            ))
        }
        (Some(_), Some(left)) => {
            lines.push(format!(
                "the budget admits {left} more request(s), the burst needs {rest}: sending it to prove it"
            ));
            Ok(Lead {
                lines,
                budget: binding,
            })
        }
        _ => {
            lines.push(format!(
                "no rate-limit budget announced: sending the burst of {n_total} to find out"
            ));
            Ok(Lead {
                lines,
                budget: binding,
            })
        }
    }
}

/// Probe mode: the probe alone decides (no burst is sent).
pub(super) fn probe_only(p: &Params, prep: &Prepared, lead: Lead) -> Observation {
    let mut o = Observation::pass(
        "one probe request, no rate-limit headers: no limiter announces itself on this path",
    )
    .command(burst_command(prep, 1));
    for l in lead.lines {
        o = o.evidence(l);
    }
    if let Some(b) = lead.budget {
        o.status = crate::checks::Status::Warn;
        o.summary = format!(
            "rate-limit headers show limiting is active ({}); a burst of {} fits its budget",
            b.describe(),
            p.requests
        );
    }
    o
}
