//! Environment faults: the backend process's variables and its DATABASE_URL.

use super::{Diagnosis, Fault};

/// Root cause and fix of a fault of this family; `None` for another family's.
pub(super) fn word(f: &Fault) -> Option<Diagnosis> {
    let d = super::worded;
    match f {
        Fault::ProcessNotFound { selector } => d(
            format!("No running process matches {selector}, so its environment cannot be read."),
            "Start the backend first (see the port check), or point the check at the right pid, name or port.".into(),
        ),
        Fault::EnvUnreadable { pid, message } => d(
            format!("The environment of process {pid} cannot be read ({message})."),
            "Run chatops as the same user as the backend (or root) so /proc/PID/environ is readable.".into(),
        ),
        Fault::EnvMissing { name, source } => d(env_root(name, source, None), env_fix(name, None, source)),
        Fault::EnvMismatch { name, source, expected, actual } => d(env_root(name, source, Some((expected, actual))), env_fix(name, Some(expected), source)),
        Fault::DbUrlInvalid { name, message } => d(format!("{name} is not a valid PostgreSQL URL: {message}."), "Use postgresql://USER:PASSWORD@HOST:PORT/DATABASE?connection_limit=50&pool_timeout=30&connect_timeout=10.".into()),
        Fault::DbUrlParam { name, param, expected, actual } => d(
            match actual {
                Some(a) => format!("{name} sets {param}={a}, expected {expected}."),
                None => format!("{name} does not set {param} (expected {expected}); Prisma then uses its default."),
            },
            format!("Set {param} in {name}'s query string (for example `?connection_limit=50&pool_timeout=30&connect_timeout=10`) and restart the backend."),
        ),
        _ => None,
    }
}

fn env_root(name: &str, source: &str, mismatch: Option<(&String, &String)>) -> String {
    let what = match (name, mismatch) {
        ("PRISMA_CLIENT_MODE", Some((_, a))) if a.contains("mock") => " The backend runs in mock mode: nothing reaches PostgreSQL.".to_string(),
        ("DATABASE_URL", None) => " Without DATABASE_URL the backend silently switches to mock mode.".to_string(),
        ("DISABLE_RATE_LIMIT", _) => " Its rate limiters are active, and answer 429 long before a load test ends (apiLimiter allows 100 requests per 15 minutes).".to_string(),
        _ => String::new(),
    };
    match mismatch {
        Some((e, a)) => format!("{name} is {a:?} in {source}, expected {e}.{what}"),
        None => format!("{name} is not set in {source}.{what}"),
    }
}

fn env_fix(name: &str, expected: Option<&String>, source: &str) -> String {
    if expected.is_some_and(|e| e.starts_with("to be absent")) {
        return if source.starts_with("process") {
            format!("Remove {name} from the backend's environment and restart it.")
        } else {
            format!("Unset it: `unset {name}`.")
        };
    }
    let value = match (name, expected) {
        ("DISABLE_RATE_LIMIT", _) => "true".to_string(),
        ("PRISMA_CLIENT_MODE", _) => "database".to_string(),
        (_, Some(e)) if e.starts_with("equal to ") => e
            .trim_start_matches("equal to ")
            .trim_matches('"')
            .to_string(),
        _ => "…".to_string(),
    };
    if source.starts_with("process") {
        format!(
            "Restart the backend with {name}={value} in its environment (`export` in the shell that starts it; the variable is read once at start-up, so a running server does not see a later change)."
        )
    } else {
        format!("Set {name}={value} (`export {name}={value}`).")
    }
}

#[cfg(test)]
mod tests {
    use crate::diagnose::Fault;
    use crate::diagnose::samples::words;

    const PROC: &str = "process 77 (node)";

    #[test]
    fn missing_and_wrong_variables_say_where_and_how_to_set_them() {
        words(
            &Fault::EnvMissing {
                name: "DATABASE_URL".into(),
                source: PROC.into(),
            },
            &["DATABASE_URL is not set in process 77", "mock mode"],
            &[
                "Restart the backend with DATABASE_URL=…",
                "read once at start-up",
            ],
        );
        words(
            &Fault::EnvMismatch {
                name: "PRISMA_CLIENT_MODE".into(),
                source: PROC.into(),
                expected: "equal to \"database\"".into(),
                actual: "mock".into(),
            },
            &["PRISMA_CLIENT_MODE is \"mock\"", "mock mode"],
            &["PRISMA_CLIENT_MODE=database"],
        );
        words(
            &Fault::EnvMismatch {
                name: "LOG_LEVEL".into(),
                source: "chatops's shell".into(),
                expected: "equal to \"info\"".into(),
                actual: "debug".into(),
            },
            &["LOG_LEVEL is \"debug\" in chatops's shell, expected equal to \"info\""],
            &["`export LOG_LEVEL=info`"],
        );
        words(
            &Fault::EnvMismatch {
                name: "NODE_OPTIONS".into(),
                source: PROC.into(),
                expected: "to be absent".into(),
                actual: "--inspect".into(),
            },
            &[],
            &["Remove NODE_OPTIONS from the backend's environment"],
        );
        words(
            &Fault::EnvMissing {
                name: "DISABLE_RATE_LIMIT".into(),
                source: PROC.into(),
            },
            &["rate limiters are active"],
            &["DISABLE_RATE_LIMIT=true"],
        );
    }

    #[test]
    fn process_and_url_faults_name_what_to_fix() {
        words(
            &Fault::ProcessNotFound {
                selector: "port 3001".into(),
            },
            &["No running process matches port 3001"],
            &["Start the backend first"],
        );
        words(
            &Fault::EnvUnreadable {
                pid: 77,
                message: "permission denied".into(),
            },
            &["process 77", "permission denied"],
            &["/proc/PID/environ"],
        );
        words(
            &Fault::DbUrlInvalid {
                name: "DATABASE_URL".into(),
                message: "no host".into(),
            },
            &["DATABASE_URL is not a valid PostgreSQL URL: no host"],
            &["postgresql://USER:PASSWORD@HOST:PORT/DATABASE"],
        );
        let p = |actual: Option<&str>| Fault::DbUrlParam {
            name: "DATABASE_URL".into(),
            param: "connection_limit".into(),
            expected: "at least 20".into(),
            actual: actual.map(String::from),
        };
        words(
            &p(Some("5")),
            &["sets connection_limit=5, expected at least 20"],
            &["restart the backend"],
        );
        words(
            &p(None),
            &[
                "does not set connection_limit",
                "Prisma then uses its default",
            ],
            &["query string"],
        );
    }
}
