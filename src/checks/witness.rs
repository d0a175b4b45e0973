//! The backend's log as a witness for the checks that see the backend fail:
//! an HTTP answer of 4xx/5xx (the lines written while the request ran, and
//! the body), and a backend port where nothing listens (the end of the log:
//! did it exit at start-up or later, and why). Reading is [`mark`],
//! [`Mark::read`] and [`read_end`]; the judgements, [`explain_answer`] and
//! [`explain_exit`], are pure.

use super::Observation;
use crate::diagnose::Fault;
use crate::diagnose::witness::{self, Finding, Hints};
use crate::engine::Witness;
use crate::probe::log::{self, LogLine, Tail};
use std::time::{Duration, SystemTime};

/// At most this much is read of what a request made the backend write.
const AFTER_BYTES: u64 = 1 << 20;
/// At most this much of the end of a stopped backend's log.
const END_BYTES: u64 = 256 << 10;

/// What was read of the log, and which log.
#[derive(Debug, Clone)]
pub struct Seen {
    /// `PATH (why this file)`.
    pub log: String,
    pub read: Read,
}

#[derive(Debug, Clone)]
pub enum Read {
    Lines {
        lines: Vec<LogLine>,
        /// The budget cut the read.
        cut: bool,
        /// When the file was last written.
        modified: Option<SystemTime>,
    },
    Failed(String),
}

/// Where the log ended before a request.
pub struct Mark<'a> {
    witness: &'a Witness,
    at: Result<Tail, String>,
}

/// Marks where the witness log ends now.
pub fn mark(w: &Witness) -> Mark<'_> {
    Mark {
        witness: w,
        at: log::mark(&w.path).map_err(|e| e.to_string()),
    }
}

impl Mark<'_> {
    /// What was written since the mark (the file read from its start when it
    /// did not exist at the mark: the backend created it meanwhile).
    pub fn read(&self) -> Seen {
        let read = match &self.at {
            Ok(t) => log::read_after(t, AFTER_BYTES),
            Err(_) => log::read_from(&self.witness.path, 0, AFTER_BYTES),
        };
        seen(self.witness, read)
    }
}

/// The end of the witness log.
pub fn read_end(w: &Witness) -> Seen {
    seen(w, log::tail(&w.path, END_BYTES))
}

fn seen(w: &Witness, r: Result<Tail, log::LogError>) -> Seen {
    let read = match r {
        Ok(t) => Read::Lines {
            lines: t.lines(),
            cut: t.cut,
            modified: std::fs::metadata(&t.path).and_then(|m| m.modified()).ok(),
        },
        Err(e) => Read::Failed(e.to_string()),
    };
    Seen {
        log: w.describe(),
        read,
    }
}

fn merge(primary: &mut Finding, other: &[Finding]) {
    for f in other.iter().filter(|f| f.cause == primary.cause) {
        for e in &f.evidence {
            if primary.evidence.len() < witness::MAX_EVIDENCE && !primary.evidence.contains(e) {
                primary.evidence.push(e.clone());
            }
        }
        if primary.code.is_none() {
            primary.code = f.code.clone();
        }
    }
}

/// A 4xx/5xx answer explained by its body and the log lines written while
/// it ran (only the request's own lines when `request_id` finds any): the
/// fault becomes [`Fault::BackendError`] naming the cause, with the lines
/// as evidence. A 429 stays rate limiting's; an answer nothing explains
/// keeps its fault, and the evidence says which log was read.
pub fn explain_answer(
    mut o: Observation,
    seen: Option<&Seen>,
    request_id: Option<&str>,
    hints: &Hints,
) -> Observation {
    let Some(Fault::HttpStatus {
        url, status, body, ..
    }) = o.fault.clone()
    else {
        return o;
    };
    if status < 400 || status == 429 {
        return o;
    }
    let lines: Vec<LogLine> = match seen.map(|s| &s.read) {
        Some(Read::Lines { lines, .. }) => match request_id {
            Some(id) if !log::for_request(lines, id).is_empty() => log::for_request(lines, id),
            _ => lines.clone(),
        },
        _ => Vec::new(),
    };
    let from_log = witness::classify_lines_with(&lines, hints);
    let from_body = witness::classify_body_with(status, &body, hints);
    if let Some(s) = seen {
        o.evidence.push(match &s.read {
            Read::Lines { cut, .. } => format!(
                "log: {}: {} line(s) written while the request ran{}",
                s.log,
                lines.len(),
                if *cut { " (cut at 1 MB)" } else { "" }
            ),
            Read::Failed(e) => format!("log: {}: {e}", s.log),
        });
    }
    let (mut f, logged) = match (from_body, from_log.first()) {
        (Some(b), _) => {
            let logged = from_log.iter().any(|l| l.cause == b.cause);
            (b, logged)
        }
        (None, Some(l)) => (l.clone(), true),
        (None, None) => return o,
    };
    merge(&mut f, &from_log);
    for e in f.evidence.iter().filter(|e| !e.starts_with("HTTP ")) {
        o.evidence.push(format!("log: {e}"));
    }
    o.summary = format!("{}: {}", o.summary, f.cause.describe());
    o.fault = Some(Fault::BackendError {
        url,
        status,
        why: f.cause,
        code: f.code,
        summary: f.summary,
        fix: f.fix,
        evidence: f.evidence,
        log: if logged {
            seen.map(|s| s.log.clone())
        } else {
            None
        },
    });
    o
}

/// `42 s`, `7 min`, `3 h`, `2 days`: how old a log is, roughly.
fn ago(d: Duration) -> String {
    match d.as_secs() {
        s @ 0..120 => format!("{s} s"),
        s @ 120..7_200 => format!("{} min", s / 60),
        s @ 7_200..172_800 => format!("{} h", s / 3_600),
        s => format!("{} days", s / 86_400),
    }
}

/// Nothing listens on the backend's port: the end of its log says whether
/// it exited at start-up or later, and why. The fault becomes
/// [`Fault::BackendExited`]; the evidence names the log, how long ago it
/// was written, and its telling lines. `now` is the time to age it by.
pub fn explain_exit(
    mut o: Observation,
    seen: &Seen,
    hints: &Hints,
    now: SystemTime,
) -> Observation {
    let Some(Fault::PortNotListening {
        host,
        port,
        service,
        start_command,
        ..
    }) = o.fault.clone()
    else {
        return o;
    };
    let (lines, modified) = match &seen.read {
        Read::Lines {
            lines, modified, ..
        } => (lines, *modified),
        Read::Failed(e) => {
            o.evidence.push(format!("log: {}: {e}", seen.log));
            return o;
        }
    };
    let age = modified
        .and_then(|m| now.duration_since(m).ok())
        .map(|d| format!(", last written {} ago", ago(d)))
        .unwrap_or_default();
    o.evidence.push(format!(
        "log: {}: {} line(s) at its end{age}",
        seen.log,
        lines.len()
    ));
    let Some(exit) = witness::exit_reason_with(lines, hints) else {
        return o;
    };
    let at_start_up = exit.phase == witness::Phase::StartUp;
    let f = exit.finding;
    for e in &f.evidence {
        o.evidence.push(format!("log: {e}"));
    }
    o.summary = format!(
        "{}; its log: it {} ({})",
        o.summary,
        if at_start_up {
            "exited at start-up"
        } else {
            "stopped after serving requests"
        },
        f.cause
    );
    o.fault = Some(Fault::BackendExited {
        host,
        port,
        service,
        at_start_up,
        why: f.cause,
        code: f.code,
        summary: f.summary,
        fix: f.fix,
        evidence: f.evidence,
        log: seen.log.clone(),
        start_command,
    });
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::cause::Cause;
    use crate::probe::log::parse_line;

    fn lines(text: &str) -> Vec<LogLine> {
        text.lines().map(parse_line).collect()
    }

    fn seen(text: &str) -> Seen {
        Seen {
            log: "/tmp/backend.log (the playbook's backend_log)".into(),
            read: Read::Lines {
                lines: lines(text),
                cut: false,
                modified: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1000)),
            },
        }
    }

    fn failed_answer(status: u16, body: &str) -> Observation {
        Observation::fail(
            format!("POST /messages answered {status}, expected 201"),
            Fault::HttpStatus {
                url: "http://127.0.0.1:3001/messages".into(),
                expected: "201".into(),
                status,
                body: body.into(),
            },
        )
    }

    fn why(o: &Observation) -> Option<Cause> {
        match &o.fault {
            Some(Fault::BackendError { why, .. }) => Some(*why),
            _ => None,
        }
    }

    #[test]
    fn a_generic_500_is_named_by_the_log_lines() {
        let log = "{\"level\":\"info\",\"msg\":\"request\",\"method\":\"POST\"}\n\
prisma:error \n\
Invalid `prisma.message.create()` invocation:\n\
The column `messageType` does not exist in the current database.\n\
[Nest] 42  - 12/02/2026, 6:00:00 AM   ERROR [ExceptionsHandler] Internal server error";
        let o = explain_answer(
            failed_answer(
                500,
                r#"{"statusCode":500,"message":"Internal server error"}"#,
            ),
            Some(&seen(log)),
            None,
            &Hints::default(),
        );
        assert_eq!(why(&o), Some(Cause::SchemaDrift), "{o:?}");
        let text = o.evidence.join("\n");
        assert!(text.contains("messageType"), "{text}");
        assert!(text.contains("/tmp/backend.log"), "{text}");
        assert!(o.summary.contains("tables or columns"), "{}", o.summary);
        let Some(Fault::BackendError { log, code, .. }) = &o.fault else {
            panic!("{o:?}");
        };
        assert!(log.is_some());
        assert_eq!(code.as_deref(), Some("P2022"));
    }

    #[test]
    fn a_400_names_its_cause_in_the_body_and_the_log_confirms_it() {
        let body = r#"{"message":"Failed to send message: connect ECONNREFUSED 127.0.0.1:5432","error":"Bad Request","statusCode":400}"#;
        let o = explain_answer(failed_answer(400, body), None, None, &Hints::default());
        assert_eq!(why(&o), Some(Cause::DatabaseDown), "{o:?}");
        // Without a log, the body alone names it.
        assert!(matches!(
            &o.fault,
            Some(Fault::BackendError { log: None, .. })
        ));
        let o = explain_answer(
            failed_answer(400, body),
            Some(&seen("prisma:error connect ECONNREFUSED 127.0.0.1:5432")),
            None,
            &Hints::default(),
        );
        assert!(matches!(
            &o.fault,
            Some(Fault::BackendError { log: Some(_), .. })
        ));
        assert!(
            o.evidence
                .iter()
                .any(|e| e.starts_with("log: prisma:error"))
        );
    }

    #[test]
    fn the_request_s_own_lines_when_its_id_is_logged() {
        let log = "{\"level\":50,\"reqId\":\"req-aaaaaaaa\",\"msg\":\"sorry, too many clients already\"}\n\
{\"level\":50,\"reqId\":\"req-bbbbbbbb\",\"msg\":\"Timed out fetching a new connection from the connection pool\"}";
        let o = explain_answer(
            failed_answer(500, "Internal server error"),
            Some(&seen(log)),
            Some("req-bbbbbbbb"),
            &Hints::default(),
        );
        assert_eq!(why(&o), Some(Cause::PoolSaturation), "{o:?}");
    }

    #[test]
    fn nothing_is_invented() {
        // A 500 with a silent log keeps its fault; the evidence names the log.
        let o = explain_answer(
            failed_answer(500, "Internal server error"),
            Some(&seen("{\"level\":\"info\",\"msg\":\"ok\"}")),
            None,
            &Hints::default(),
        );
        assert!(matches!(o.fault, Some(Fault::HttpStatus { .. })), "{o:?}");
        assert!(o.evidence.iter().any(|e| e.contains("1 line(s)")));
        // 429 stays rate limiting's; a passing check is left alone.
        let o = explain_answer(failed_answer(429, ""), None, None, &Hints::default());
        assert!(matches!(
            o.fault,
            Some(Fault::HttpStatus { status: 429, .. })
        ));
        let o = explain_answer(Observation::pass("fine"), None, None, &Hints::default());
        assert!(o.fault.is_none() && o.evidence.is_empty());
    }

    fn not_listening() -> Observation {
        Observation::fail(
            "nothing listens on 127.0.0.1:3001 (connection refused after 1ms)",
            Fault::PortNotListening {
                host: "127.0.0.1".into(),
                port: 3001,
                service: "chat backend".into(),
                start_command: Some("npm run start:dev".into()),
                health_url: None,
            },
        )
    }

    #[test]
    fn a_backend_that_exited_at_start_up_for_want_of_postgres() {
        let log = "[Nest] 42  - 12/02/2026, 6:00:00 AM     LOG [NestFactory] Starting Nest application...\n\
Application is running on http://localhost:3001\n\
[Nest] 42  - 12/02/2026, 6:00:01 AM   ERROR [PrismaService] Failed to connect to database\n\
prisma:error Can't reach database server at `127.0.0.1:5432`";
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1090);
        let o = explain_exit(not_listening(), &seen(log), &Hints::default(), now);
        let Some(Fault::BackendExited {
            at_start_up,
            why,
            evidence,
            log,
            ..
        }) = &o.fault
        else {
            panic!("{o:?}");
        };
        assert!(*at_start_up);
        assert_eq!(*why, Cause::DatabaseDown);
        assert!(
            evidence
                .iter()
                .any(|e| e.contains("Can't reach database server"))
        );
        assert!(log.contains("backend_log"));
        assert!(o.summary.contains("exited at start-up"), "{}", o.summary);
        assert!(
            o.evidence
                .iter()
                .any(|e| e.contains("last written 90 s ago")),
            "{:?}",
            o.evidence
        );
    }

    #[test]
    fn ages() {
        assert_eq!(ago(Duration::from_secs(5)), "5 s");
        assert_eq!(ago(Duration::from_secs(600)), "10 min");
        assert_eq!(ago(Duration::from_secs(10_800)), "3 h");
        assert_eq!(ago(Duration::from_secs(259_200)), "3 days");
    }

    #[test]
    fn an_unreadable_or_silent_log_leaves_the_port_finding() {
        let s = Seen {
            log: "/tmp/backend.log (the default)".into(),
            read: Read::Failed("cannot open /tmp/backend.log: not found".into()),
        };
        let o = explain_exit(not_listening(), &s, &Hints::default(), SystemTime::now());
        assert!(matches!(o.fault, Some(Fault::PortNotListening { .. })));
        assert!(o.evidence[0].contains("not found"), "{:?}", o.evidence);
        let o = explain_exit(
            not_listening(),
            &seen(
                "[Nest] 42  - 12/02/2026, 6:00:00 AM     LOG [NestFactory] Starting Nest application...",
            ),
            &Hints::default(),
            SystemTime::now(),
        );
        assert!(
            matches!(o.fault, Some(Fault::PortNotListening { .. })),
            "{o:?}"
        );
    }
}
