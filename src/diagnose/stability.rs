//! Stability faults: the backend watched over time (restarts, flapping health, memory growth).

use super::{Diagnosis, Fault};

/// Root cause and fix of a fault of this family; `None` for another family's.
pub(super) fn word(f: &Fault) -> Option<Diagnosis> {
    let d = super::worded;
    match f {
        Fault::ProcessRestarted { selector, from, to } => d(
            match to {
                Some(b) => format!("The backend restarted: {selector} was pid {from}, now pid {b}. A crash under a supervisor (nodemon, pm2, systemd, `npm run start:dev` watching files) or a deploy happened during the run."),
                None => format!("The backend exited: {selector} (pid {from}) is gone. It crashed or was stopped during the run."),
            },
            "Read the end of the backend's log for the exit reason (an unhandled exception, an out-of-memory kill: `dmesg | grep -i oom`); run the backend without file watching for a load test (`npm run start:prod`).".to_string(),
        ),
        Fault::HealthFlapping { url, failed, samples, first } => d(
            format!("{url} failed {failed} of {samples} times while the backend was watched (first: {first}): it is not stable enough for a load test."),
            "Watch the backend's log and pg_stat_activity (`chatops watch-connections`) while it runs; fix the errors behind the failing health answers before sending load.".to_string(),
        ),
        Fault::MemoryGrowth { what, from_mb, to_mb, percent, bound, over } => d(
            format!("The backend's {what} grew {percent:.0}% in {over} ({from_mb:.1} MB → {to_mb:.1} MB), above the {bound}% bound: a leak, or caches without a limit."),
            "Take heap snapshots (`node --inspect`, Chrome DevTools) before and after a burst and compare them; check for listeners, timers and maps that only grow.".to_string(),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::diagnose::Fault;
    use crate::diagnose::samples::words;

    #[test]
    fn restarts_flapping_and_growth_carry_their_numbers() {
        let r = |to: Option<u32>| Fault::ProcessRestarted {
            selector: "port 3001".into(),
            from: 77,
            to,
        };
        words(
            &r(Some(91)),
            &["restarted", "pid 77, now pid 91"],
            &["dmesg | grep -i oom", "start:prod"],
        );
        words(&r(None), &["exited", "(pid 77) is gone"], &["exit reason"]);
        words(
            &Fault::HealthFlapping {
                url: "http://localhost:3001/api/v1/health".into(),
                failed: 4,
                samples: 30,
                first: "503".into(),
            },
            &["failed 4 of 30 times", "(first: 503)"],
            &["chatops watch-connections"],
        );
        words(
            &Fault::MemoryGrowth {
                what: "RSS".into(),
                from_mb: 120.0,
                to_mb: 310.5,
                percent: 158.75,
                bound: 50.0,
                over: "30s".into(),
            },
            &["RSS grew 159% in 30s", "120.0 MB → 310.5 MB", "50% bound"],
            &["heap snapshots"],
        );
    }
}
