//! One fault, one finding: after a run, a finding that only *witnesses* a
//! cause (the backend's exit, an error answer, log lines) is linked to the
//! finding that observed the same cause directly (PostgreSQL not
//! answering, the schema missing a column, a pool too small). The linked
//! finding keeps its evidence and says `caused_by`; reports show it as a
//! consequence, not as a second root cause. One more link is by name: a
//! rate limiter whose off switch is in the project's `.env` but not in the
//! running process is explained by the `env_file` finding naming it.

use super::result::{CheckResult, Status};
use crate::diagnose::Fault;

/// Whether `f` sees a cause only through the backend (its log, its
/// answers, its absence) rather than observing it at the source.
fn is_witness(f: &Fault) -> bool {
    matches!(
        f,
        Fault::BackendExited { .. }
            | Fault::BackendError { .. }
            | Fault::HttpStatus { .. }
            | Fault::HttpConnect { .. }
            | Fault::LogMatches { .. }
            | Fault::BurstErrors { .. }
            | Fault::HealthFlapping { .. }
    )
}

fn is_finding(c: &CheckResult) -> bool {
    matches!(c.status, Status::Fail | Status::Error | Status::Warn)
}

/// Sets `caused_by` on every finding whose cause another finding observed
/// directly: the first such finding in report order (a failure before a
/// warning). A pure pass over the results; blocked checks keep their
/// `blocked_by` and get no `caused_by`.
pub fn link_causes(checks: &mut [CheckResult]) {
    let roots: Vec<(usize, crate::diagnose::cause::Cause, Status)> = checks
        .iter()
        .enumerate()
        .filter(|(_, c)| is_finding(c))
        .filter_map(|(i, c)| {
            let f = c.fault.as_ref()?;
            (!is_witness(f)).then_some((i, c.cause?, c.status))
        })
        .collect();
    let links: Vec<(usize, String)> = checks
        .iter()
        .enumerate()
        .filter(|(_, c)| is_finding(c) && c.blocked_by.is_none())
        .filter_map(|(i, c)| {
            let cause = c.cause?;
            if !c.fault.as_ref().is_some_and(is_witness) {
                return None;
            }
            let root = roots
                .iter()
                .filter(|(j, rc, _)| *j != i && *rc == cause)
                .min_by_key(|(j, _, s)| (std::cmp::Reverse(*s == Status::Fail), *j))?;
            Some((i, checks[root.0].id.clone()))
        })
        .collect();
    for (i, root) in links {
        checks[i].caused_by = Some(root);
    }
    link_switches(checks);
}

/// A rate limiter that answers because its off switch (`DISABLE_RATE_LIMIT`)
/// is in the project's `.env` but not in the running process: the
/// `env_file` finding that names the variable explains the limiter's.
fn link_switches(checks: &mut [CheckResult]) {
    let env_roots: Vec<(usize, Vec<String>)> = checks
        .iter()
        .enumerate()
        .filter(|(_, c)| is_finding(c))
        .filter_map(|(i, c)| match &c.fault {
            Some(Fault::EnvFileNotLoaded { items, .. }) => {
                Some((i, items.iter().map(|x| x.name.clone()).collect()))
            }
            _ => None,
        })
        .collect();
    for i in 0..checks.len() {
        if checks[i].caused_by.is_some() || !is_finding(&checks[i]) {
            continue;
        }
        let Some(Fault::RateLimited { var, .. }) = &checks[i].fault else {
            continue;
        };
        if let Some((j, _)) = env_roots.iter().find(|(_, names)| names.contains(var)) {
            checks[i].caused_by = Some(checks[*j].id.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::NetError;
    use crate::diagnose::cause::Cause;

    fn result(id: &str, status: Status, fault: Option<Fault>) -> CheckResult {
        CheckResult {
            id: id.into(),
            phase: "p".into(),
            kind: "k".into(),
            title: id.into(),
            status,
            summary: String::new(),
            evidence: vec![],
            command: None,
            root_cause: None,
            remedy: None,
            blocked_by: None,
            cause: fault.as_ref().and_then(Fault::cause),
            caused_by: None,
            fault,
            attempts: 1,
            duration_ms: 0,
            captures: Default::default(),
        }
    }

    fn pg_down() -> Fault {
        Fault::PgNoResponse {
            host: "127.0.0.1".into(),
            port: 5432,
            error: NetError::Refused,
        }
    }

    fn exited(why: Cause) -> Fault {
        Fault::BackendExited {
            host: "127.0.0.1".into(),
            port: 3001,
            service: "chat backend".into(),
            at_start_up: true,
            why,
            code: Some("P1001".into()),
            summary: "s".into(),
            fix: "f".into(),
            evidence: vec!["prisma:error Can't reach database server".into()],
            log: "/tmp/backend.log".into(),
            start_command: None,
        }
    }

    fn by<'a>(cs: &'a [CheckResult], id: &str) -> &'a CheckResult {
        cs.iter().find(|c| c.id == id).expect(id)
    }

    #[test]
    fn a_backend_that_exited_for_want_of_postgres_is_caused_by_pg_ready() {
        let mut cs = vec![
            result("postgres_ready", Status::Fail, Some(pg_down())),
            result(
                "backend_listening",
                Status::Fail,
                Some(exited(Cause::DatabaseDown)),
            ),
            {
                let mut b = result("health", Status::Blocked, None);
                b.blocked_by = Some("backend_listening".into());
                b
            },
        ];
        link_causes(&mut cs);
        let b = by(&cs, "backend_listening");
        assert_eq!(b.cause, Some(Cause::DatabaseDown));
        assert_eq!(b.caused_by.as_deref(), Some("postgres_ready"));
        // The root explains itself; blocked checks keep blocked_by only.
        assert_eq!(by(&cs, "postgres_ready").caused_by, None);
        assert_eq!(by(&cs, "postgres_ready").cause, Some(Cause::DatabaseDown));
        assert_eq!(by(&cs, "health").caused_by, None);
        assert_eq!(by(&cs, "health").cause, None);
    }

    #[test]
    fn no_link_without_a_direct_finding_of_the_same_cause() {
        // PostgreSQL answers (it is another cause): the exit stands alone.
        let mut cs = vec![
            result("postgres_ready", Status::Pass, None),
            result(
                "backend_listening",
                Status::Fail,
                Some(exited(Cause::Crash)),
            ),
        ];
        link_causes(&mut cs);
        assert_eq!(by(&cs, "backend_listening").caused_by, None);
        // The same cause, but the other finding is a witness too: no root.
        let mut cs = vec![
            result("a", Status::Fail, Some(exited(Cause::DatabaseDown))),
            result("b", Status::Fail, Some(exited(Cause::DatabaseDown))),
        ];
        link_causes(&mut cs);
        assert!(cs.iter().all(|c| c.caused_by.is_none()));
        // A different cause does not link.
        let mut cs = vec![
            result("postgres_ready", Status::Fail, Some(pg_down())),
            result(
                "backend_listening",
                Status::Fail,
                Some(exited(Cause::SchemaDrift)),
            ),
        ];
        link_causes(&mut cs);
        assert_eq!(by(&cs, "backend_listening").caused_by, None);
    }

    #[test]
    fn limiters_answering_because_the_env_file_changed_after_start() {
        let limited = Fault::RateLimited {
            url: "u".into(),
            requests: 250,
            limited: 150,
            first: 101,
            limiter: None,
            env: crate::diagnose::EnvState::Unknown { in_shell: None },
            var: "DISABLE_RATE_LIMIT".into(),
            value: "true".into(),
        };
        let env = |name: &str| Fault::EnvFileNotLoaded {
            pid: 1,
            started: None,
            items: vec![crate::diagnose::EnvFileItem {
                name: name.into(),
                file: ".env:3".into(),
                in_file: "\"true\"".into(),
                in_process: None,
                changed_after_start: true,
            }],
        };
        let mut cs = vec![
            result("env_file", Status::Fail, Some(env("DISABLE_RATE_LIMIT"))),
            result("rate_limit_burst", Status::Fail, Some(limited.clone())),
        ];
        link_causes(&mut cs);
        assert_eq!(
            by(&cs, "rate_limit_burst").caused_by.as_deref(),
            Some("env_file")
        );
        assert_eq!(by(&cs, "env_file").caused_by, None);
        // Another variable explains nothing about the limiter.
        let mut cs = vec![
            result("env_file", Status::Fail, Some(env("LOG_LEVEL"))),
            result("rate_limit_burst", Status::Fail, Some(limited)),
        ];
        link_causes(&mut cs);
        assert_eq!(by(&cs, "rate_limit_burst").caused_by, None);
    }

    #[test]
    fn a_failure_is_preferred_as_the_root_over_an_earlier_warning() {
        let pool = |fits| Fault::PoolExceedsHeadroom {
            pool: 50,
            replicas: 3,
            other: 0,
            demand: 150,
            usable: 97,
            max_connections: 100,
            fits,
        };
        let too_many = Fault::HttpStatus {
            url: "u".into(),
            expected: "201".into(),
            status: 500,
            body: "sorry, too many clients already".into(),
        };
        let mut cs = vec![
            result("headroom", Status::Warn, Some(pool(true))),
            result(
                "login",
                Status::Fail,
                Some(Fault::PgTooManyClients {
                    message: "sorry, too many clients already".into(),
                }),
            ),
            result("send", Status::Fail, Some(too_many)),
        ];
        link_causes(&mut cs);
        assert_eq!(by(&cs, "send").cause, Some(Cause::DatabaseConnections));
        assert_eq!(by(&cs, "send").caused_by.as_deref(), Some("login"));
        assert_eq!(by(&cs, "login").caused_by, None);
        assert_eq!(by(&cs, "headroom").caused_by, None);
    }
}
