//! The backend's log and its error answers as a load stage's witness: the
//! lines written while the stage ran and a few bodies of its 4xx/5xx
//! answers, classified with [`crate::diagnose::witness`] into one
//! [`WitnessEvidence`] (schema drift, the database down, too many clients,
//! a pool timeout with its limit, a crash with its stack …), and how the
//! ranking takes it in.

use super::evidence::{StageEvidence, WitnessEvidence};
use super::rank::Candidate;
use crate::diagnose::cause::Cause;
use crate::diagnose::witness::{self, Finding, Hints};
use crate::probe::log::LogLine;
use serde::Serialize;

/// Evidence lines a witness keeps (log lines, then bodies).
pub const MAX_LINES: usize = 6;

/// An error answer kept from a stage: its status and (the start of) its body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorBody {
    pub status: u16,
    pub body: String,
}

/// What was read of the backend's log during a stage.
#[derive(Debug, Clone, Default)]
pub struct StageLog {
    /// Which log and why (`PATH (why)`), and how much of it was read.
    pub describe: String,
    pub lines: Vec<LogLine>,
}

/// The stage's witness: the cause the log names (its most specific text
/// first), else the one the answers' bodies name; an uncaught exception
/// (`crash`) only when neither names anything better. The evidence is the
/// log's lines and the bodies' of that cause. None when nothing names one
/// (429s are counted as rate limiting elsewhere).
pub fn witness_evidence(
    log: Option<&StageLog>,
    bodies: &[ErrorBody],
    hints: &Hints,
) -> Option<WitnessEvidence> {
    let from_log: Vec<Finding> = log
        .map(|l| witness::classify_lines_with(&l.lines, hints))
        .unwrap_or_default();
    let from_bodies: Vec<Finding> = bodies
        .iter()
        .filter_map(|b| witness::classify_body_with(b.status, &b.body, hints))
        .filter(|f| f.cause != Cause::RateLimiting)
        .collect();
    let specific = |fs: &[Finding]| fs.iter().find(|f| f.cause != Cause::Crash).cloned();
    let chosen = specific(&from_log)
        .or_else(|| specific(&from_bodies))
        .or_else(|| from_log.first().cloned())
        .or_else(|| from_bodies.first().cloned())?;
    let cause = chosen.cause;
    let mut lines: Vec<String> = Vec::new();
    let mut push = |l: &String| {
        if lines.len() < MAX_LINES && !lines.contains(l) {
            lines.push(l.clone());
        }
    };
    let log_f = from_log.iter().find(|f| f.cause == cause);
    let body_fs: Vec<&Finding> = from_bodies.iter().filter(|f| f.cause == cause).collect();
    // The log's lines first, but room for one body when both name it.
    if let Some(f) = log_f {
        let room = if body_fs.is_empty() {
            MAX_LINES
        } else {
            MAX_LINES - 1
        };
        f.evidence.iter().take(room).for_each(&mut push);
    }
    body_fs
        .iter()
        .flat_map(|f| f.evidence.iter())
        .for_each(&mut push);
    let mut facts = chosen.facts.clone();
    for f in log_f.into_iter().chain(body_fs.iter().copied()) {
        facts.connection_limit = facts.connection_limit.or(f.facts.connection_limit);
        facts.pool_timeout_s = facts.pool_timeout_s.or(f.facts.pool_timeout_s);
        facts.address = facts.address.take().or_else(|| f.facts.address.clone());
        facts.column = facts.column.take().or_else(|| f.facts.column.clone());
        facts.table = facts.table.take().or_else(|| f.facts.table.clone());
    }
    let named_by = match (log_f.is_some(), body_fs.len()) {
        (true, 0) => "the backend's log".to_string(),
        (true, n) => format!("the backend's log and {n} of its error answers"),
        (false, n) => format!("{n} of the backend's error answers"),
    };
    let mut summary = chosen.summary.clone();
    if let Some(a) = &facts.address
        && !summary.contains(a.as_str())
        && matches!(cause, Cause::DatabaseDown | Cause::DatabaseConnections)
    {
        summary.push_str(&format!(" The database server: {a}."));
    }
    let mut also: Vec<Cause> = Vec::new();
    for f in from_log.iter().chain(&from_bodies) {
        if f.cause != cause && !also.contains(&f.cause) {
            also.push(f.cause);
        }
    }
    Some(WitnessEvidence {
        cause,
        code: chosen.code.clone(),
        summary: format!("{summary} Named by {named_by}."),
        fix: chosen.fix.clone(),
        lines,
        log: log.map(|l| l.describe.clone()),
        facts,
        also,
    })
}

/// Takes the witness into the candidates: its lines join the candidate of
/// the same cause when one holds already (an exit's crash, P2024 counts,
/// a full server); otherwise it is a candidate of its own, from the first
/// failures on.
pub(super) fn take_in(e: &StageEvidence, out: &mut Vec<Candidate>) {
    let Some(w) = &e.witness else { return };
    let mut ev = Vec::new();
    if let Some(l) = &w.log {
        ev.push(format!("log read: {l}"));
    }
    ev.extend(w.lines.iter().cloned());
    match out.iter_mut().find(|c| c.cause == w.cause) {
        // Its lines are there already (an exit's log): nothing to add.
        Some(c) if w.lines.iter().all(|l| c.evidence.contains(l)) => {}
        Some(c) => {
            for l in ev {
                if !c.evidence.contains(&l) {
                    c.evidence.push(l);
                }
            }
        }
        None => out.push(Candidate {
            cause: w.cause,
            root_cause: format!("`{}` failed: {}", e.stage, w.summary),
            fix: if w.fix.is_empty() {
                w.cause.fix().into()
            } else {
                w.fix.clone()
            },
            evidence: ev,
            at_s: e.first_failure_s,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::evidence::ExitEvidence;
    use super::super::rank::rank;
    use super::*;
    use crate::probe::log::parse_line;

    fn log(text: &str) -> StageLog {
        StageLog {
            describe:
                "/tmp/b.log (the stdout and stderr (fd 1 and 2) of process 7 go to this file)"
                    .into(),
            lines: text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(parse_line)
                .collect(),
        }
    }

    fn body(status: u16, body: &str) -> ErrorBody {
        ErrorBody {
            status,
            body: body.into(),
        }
    }

    const DRIFT_LOG: &str = r#"{"level":"info","msg":"POST /api/v1/chat/conversations/x/messages"}
[Nest] 7  - 12/02/2026, 7:00:01 AM   ERROR [ExceptionsHandler] The column `messages.messageType` does not exist in the current database.
    at Mn.handleRequestError (/app/node_modules/@prisma/client/runtime/library.js:121:7315)
prisma:error The column `messages.messageType` does not exist in the current database.
"#;

    #[test]
    fn a_generic_500_is_named_by_the_log_s_lines() {
        let w = witness_evidence(
            Some(&log(DRIFT_LOG)),
            &[body(
                500,
                r#"{"statusCode":500,"message":"Internal server error"}"#,
            )],
            &Hints::default(),
        )
        .expect("a witness");
        assert_eq!(w.cause, Cause::SchemaDrift);
        assert_eq!(w.code.as_deref(), Some("P2022"));
        assert!(
            w.lines.iter().any(|l| l.contains("messageType")),
            "{:?}",
            w.lines
        );
        assert!(
            w.summary.ends_with("Named by the backend's log."),
            "{}",
            w.summary
        );
        assert!(w.log.as_deref().is_some_and(|l| l.contains("/tmp/b.log")));
        // The exception the handler logged is not the cause: the column is.
        assert_eq!(w.also, vec![Cause::Crash]);
    }

    #[test]
    fn a_body_alone_names_the_cause_with_its_facts() {
        let p2024 = r#"{"message":"Failed to send message: Timed out fetching a new connection from the connection pool. More info: http://pris.ly/d/connection-pool (Current connection pool timeout: 1, connection limit: 2)"}"#;
        let w = witness_evidence(None, &[body(400, p2024)], &Hints::default()).expect("a witness");
        assert_eq!(w.cause, Cause::PoolSaturation);
        assert_eq!(w.facts.connection_limit, Some(2));
        assert_eq!(w.log, None);
        assert!(w.lines[0].starts_with("HTTP 400: "), "{:?}", w.lines);
        assert!(
            w.summary
                .ends_with("Named by 1 of the backend's error answers.")
        );
        // 429s and bodies that name nothing are no witness.
        assert_eq!(
            witness_evidence(
                Some(&log("all quiet\n")),
                &[body(429, "Too many requests"), body(500, "oops")],
                &Hints::default()
            ),
            None
        );
    }

    #[test]
    fn the_database_down_from_log_and_body_keeps_both_and_the_address() {
        let text = "prisma:error \nInvalid `prisma.message.create()` invocation:\n\nCan't reach database server at `127.0.0.1:55432`\n\nPlease make sure your database server is running at `127.0.0.1:55432`.\n";
        let b = body(
            400,
            r#"{"message":"Failed to send message: Can't reach database server at `127.0.0.1:55432`"}"#,
        );
        let w = witness_evidence(Some(&log(text)), &[b], &Hints::default()).expect("a witness");
        assert_eq!(w.cause, Cause::DatabaseDown);
        assert_eq!(w.facts.address.as_deref(), Some("127.0.0.1:55432"));
        assert!(w.summary.contains("127.0.0.1:55432"), "{}", w.summary);
        assert!(
            w.lines.iter().any(|l| l.starts_with("HTTP 400")),
            "{:?}",
            w.lines
        );
        assert!(
            w.lines
                .iter()
                .any(|l| !l.starts_with("HTTP") && l.contains("Can't reach database server")),
            "{:?}",
            w.lines
        );
    }

    #[test]
    fn a_crash_s_stack_and_too_many_clients() {
        let text = "Error: sandbox crash after 3 chat requests\n    at crash (/app/dist/faults.js:10:5)\n    at next (/app/dist/chat.js:20:7)\n\nNode.js v20.11.0\n";
        let w = witness_evidence(Some(&log(text)), &[], &Hints::default()).expect("a witness");
        assert_eq!(w.cause, Cause::Crash);
        assert!(
            w.lines[0].starts_with("Error: sandbox crash"),
            "{:?}",
            w.lines
        );
        assert!(w.lines[1].starts_with("at crash"), "{:?}", w.lines);
        let w = witness_evidence(
            Some(&log(
                "prisma:error Error querying the database: FATAL: sorry, too many clients already\n",
            )),
            &[],
            &Hints::default(),
        )
        .expect("a witness");
        assert_eq!(w.cause, Cause::DatabaseConnections);
    }

    fn failed() -> StageEvidence {
        StageEvidence {
            stage: "crowd".into(),
            requests: 400,
            p95_ms: 50.0,
            p95_limit_ms: Some(1000.0),
            error_pct: 50.0,
            error_limit_pct: Some(1.0),
            server_5xx: 200,
            first_failure_s: Some(0.0),
            ..Default::default()
        }
    }

    #[test]
    fn ranking_names_the_witness_s_cause_with_its_lines() {
        let w = witness_evidence(Some(&log(DRIFT_LOG)), &[], &Hints::default());
        let r = rank(&StageEvidence {
            witness: w.clone(),
            ..failed()
        });
        assert_eq!(r.primary.cause, Cause::SchemaDrift);
        assert!(r.primary.root_cause.starts_with("`crowd` failed: "));
        assert!(
            r.primary.evidence[0].starts_with("log read: /tmp/b.log (the stdout"),
            "{:?}",
            r.primary.evidence
        );
        assert!(
            r.primary
                .evidence
                .iter()
                .any(|l| l.starts_with("prisma:error") && l.contains("messageType")),
            "{:?}",
            r.primary.evidence
        );
        assert!(r.primary.fix.contains("prisma"), "{}", r.primary.fix);
        // Without the witness, nothing explains the 500s.
        assert_eq!(rank(&failed()).primary.cause, Cause::OverBudget);
    }

    fn w_crash() -> WitnessEvidence {
        WitnessEvidence {
            cause: Cause::Crash,
            code: None,
            summary: "The backend threw an exception.".into(),
            fix: String::new(),
            lines: Vec::new(),
            log: None,
            facts: Default::default(),
            also: Vec::new(),
        }
    }

    #[test]
    fn a_witness_joins_the_candidate_of_its_cause() {
        let crash = witness_evidence(
            Some(&log("Error: boom\n    at send (/app/dist/chat.js:10:5)\n")),
            &[],
            &Hints::default(),
        );
        let exit = ExitEvidence {
            pid: 7,
            new_pid: None,
            at_s: 1.0,
            cause: Cause::Crash,
            summary: "The backend stopped after serving requests.".into(),
            lines: vec!["Error: boom".into()],
            log: None,
        };
        let r = rank(&StageEvidence {
            witness: crash,
            exit: Some(exit.clone()),
            refused: 300,
            ..failed()
        });
        assert_eq!(r.primary.cause, Cause::Crash);
        assert!(r.contributing.iter().all(|c| c.cause != Cause::Crash));
        let ev = &r.primary.evidence;
        assert_eq!(
            ev.iter().filter(|l| *l == "Error: boom").count(),
            1,
            "{ev:?}"
        );
        assert!(ev.iter().any(|l| l.starts_with("at send")), "{ev:?}");
        // When the exit's lines already say it all, no second log line.
        let lines = vec!["Error: boom".to_string()];
        let r = rank(&StageEvidence {
            witness: Some(WitnessEvidence {
                lines: lines.clone(),
                log: Some("/tmp/b.log".into()),
                ..w_crash()
            }),
            exit: Some(ExitEvidence {
                lines,
                ..exit.clone()
            }),
            refused: 300,
            ..failed()
        });
        assert!(
            !r.primary
                .evidence
                .iter()
                .any(|l| l.starts_with("log read: /tmp/b.log")),
            "{:?}",
            r.primary.evidence
        );
        // P2024 in the bodies and in the counts: one pool candidate.
        let p2024 = r#"{"message":"Failed to send message: Timed out fetching a new connection from the connection pool. (Current connection pool timeout: 1, connection limit: 2)"}"#;
        let r = rank(&StageEvidence {
            witness: witness_evidence(None, &[body(400, p2024)], &Hints::default()),
            pool_timeouts: 120,
            connection_limit: Some(2),
            max_active: Some(2),
            ..failed()
        });
        assert_eq!(r.primary.cause, Cause::PoolSaturation);
        assert!(r.contributing.is_empty(), "{:?}", r.contributing);
        assert!(
            r.primary
                .evidence
                .iter()
                .any(|l| l.contains("connection limit: 2")),
            "{:?}",
            r.primary.evidence
        );
    }
}
