//! Small pieces every judgement uses.

use super::{Observation, Status};
use crate::diagnose::Fault;
use crate::pg::DbUrl;
use crate::pg::activity::{self, Snapshot};
use std::time::Duration;

/// Marks an observation as judged `status` (fail or warn), with the
/// summary and the fault that explain it; its evidence, command and
/// captures stay.
pub fn judged(mut o: Observation, status: Status, summary: String, fault: Fault) -> Observation {
    o.status = status;
    o.summary = summary;
    o.fault = Some(fault);
    o
}

/// [`judged`] as a failure.
pub fn failed(o: Observation, summary: String, fault: Fault) -> Observation {
    judged(o, Status::Fail, summary, fault)
}

/// Of several findings (status, summary, fault), the worst is the root
/// cause and the observation's summary says how many more there are.
pub fn worst_finding(
    o: Observation,
    mut findings: Vec<(Status, String, Fault)>,
    more: impl Fn(usize) -> String,
) -> Observation {
    findings.sort_by_key(|f| std::cmp::Reverse(f.0));
    let n = findings.len();
    match findings.into_iter().next() {
        Some((status, summary, fault)) => {
            let summary = if n > 1 {
                format!("{summary} {}", more(n - 1))
            } else {
                summary
            };
            judged(o, status, summary, fault)
        }
        None => o,
    }
}

/// Why a pg_stat_activity snapshot could not be taken.
#[derive(Debug)]
pub enum SnapshotError {
    /// The login failed: the error's text and its classified fault.
    Login {
        message: String,
        fault: Box<Fault>,
    },
    /// The sampling query failed.
    Failed(String),
    TimedOut,
}

/// Logs in as `chatops` and takes one pg_stat_activity snapshot of
/// `database` (None: the whole server), each step within `timeout`.
pub async fn pg_snapshot(
    u: &DbUrl,
    database: Option<&str>,
    timeout: Duration,
) -> Result<Snapshot, SnapshotError> {
    let client = activity::connect(u, "chatops", timeout)
        .await
        .map_err(|e| SnapshotError::Login {
            message: e.to_string(),
            fault: Box::new(crate::diagnose::pg::connect_fault(&e, u)),
        })?;
    match tokio::time::timeout(timeout, activity::sample(&client, database)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(SnapshotError::Failed(e.to_string())),
        Err(_) => Err(SnapshotError::TimedOut),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(n: u32) -> Fault {
        Fault::ProcessNotFound {
            selector: format!("pid {n}"),
        }
    }

    #[test]
    fn judged_keeps_evidence() {
        let o = Observation::pass("fine").evidence("seen");
        let o = failed(o, "broken".into(), fault(1));
        assert_eq!(o.status, Status::Fail);
        assert_eq!(o.summary, "broken");
        assert_eq!(o.evidence, ["seen"]);
        assert!(o.fault.is_some());
    }

    #[test]
    fn the_worst_finding_wins() {
        let o = worst_finding(
            Observation::pass("fine"),
            vec![
                (Status::Warn, "a".into(), fault(1)),
                (Status::Fail, "b".into(), fault(2)),
            ],
            |n| format!("(and {n} more)"),
        );
        assert_eq!(o.status, Status::Fail);
        assert_eq!(o.summary, "b (and 1 more)");
        let o = worst_finding(Observation::pass("fine"), vec![], |_| String::new());
        assert_eq!(o.status, Status::Pass);
        assert_eq!(o.summary, "fine");
    }
}
