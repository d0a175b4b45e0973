//! Port faults: nothing listens where the backend should, or the wrong program does.

use super::{Diagnosis, Fault};

/// Root cause and fix of a fault of this family; `None` for another family's.
pub(super) fn word(f: &Fault) -> Option<Diagnosis> {
    let d = super::worded;
    match f {
        Fault::PortNotListening {
            host,
            port,
            service,
            start_command,
            health_url,
        } => d(
            format!(
                "The {service} is not running: nothing listens on {host}:{port} (connections are refused at once, the ECONNREFUSED-at-0-ms failure of the seed's 56,250 requests)."
            ),
            {
                let mut r = format!("Start the {service} in the background and keep it running");
                if let Some(cmd) = start_command {
                    r.push_str(&format!(": `{cmd}`"));
                }
                r.push('.');
                if let Some(h) = health_url {
                    r.push_str(&format!(" Then wait for health before any load: `until curl -sf {h} >/dev/null; do sleep 1; done`."));
                }
                r
            },
        ),
        Fault::BackendExited {
            host,
            port,
            service,
            code,
            summary,
            fix,
            log,
            start_command,
            ..
        } => d(
            format!(
                "The {service} is not running: nothing listens on {host}:{port}. {summary}{} (its log: {log})",
                code.as_deref()
                    .map(|c| format!(" [{c}]"))
                    .unwrap_or_default(),
            ),
            match start_command {
                Some(cmd) => format!("{fix} Then start the {service} again: `{cmd}`."),
                None => format!("{fix} Then start the {service} again."),
            },
        ),
        Fault::PortTaken {
            host,
            port,
            process,
        } => d(
            match process {
                Some(p) => format!(
                    "Port {port} on {host} is already taken by {p}; the backend cannot bind it (EADDRINUSE)."
                ),
                None => format!(
                    "Port {port} on {host} is already in use; the backend cannot bind it (EADDRINUSE)."
                ),
            },
            format!(
                "Stop the process holding it (`lsof -ti:{port} | xargs kill`) or run the backend on another PORT."
            ),
        ),
        Fault::PortHeldByOther {
            port,
            pid,
            service,
            holder,
            pattern,
            start_command,
        } => d(
            format!(
                "Port {port} is held by {holder}, which is not the {service} (its command line does not match `{pattern}`). The {service} cannot bind the port (EADDRINUSE), so requests reach the wrong program: often an older instance, or another dev server."
            ),
            format!(
                "Stop it (`kill {pid}`, or `lsof -ti:{port} | xargs kill`), then start the {service}{}. If that program is the {service} (a wrapper, a container proxy), widen `expect_command`.",
                start_command
                    .as_deref()
                    .map(|c| format!(": `{c}`"))
                    .unwrap_or_default()
            ),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::diagnose::Fault;
    use crate::diagnose::samples::words;

    #[test]
    fn an_exit_the_log_explains_names_its_cause_its_log_and_the_restart() {
        let all = crate::diagnose::samples::all();
        let f = all
            .iter()
            .find(|f| f.cause_code() == "backend_exited")
            .expect("a sample");
        words(
            f,
            &[
                "not running",
                "127.0.0.1:3001",
                "exited at start-up",
                "[P1001]",
                "/tmp/backend.log",
            ],
            &["Start PostgreSQL", "npm run start:dev"],
        );
        assert_eq!(f.cause(), Some(crate::diagnose::cause::Cause::DatabaseDown));
    }

    #[test]
    fn port_faults_name_the_port_and_how_to_free_or_start_it() {
        words(
            &Fault::PortNotListening {
                host: "localhost".into(),
                port: 3001,
                service: "chat backend".into(),
                start_command: Some("npm run start:prod".into()),
                health_url: Some("http://localhost:3001/api/v1/health".into()),
            },
            &[
                "chat backend is not running",
                "localhost:3001",
                "ECONNREFUSED",
            ],
            &[
                "`npm run start:prod`",
                "until curl -sf http://localhost:3001/api/v1/health",
            ],
        );
        let d = words(
            &Fault::PortNotListening {
                host: "localhost".into(),
                port: 3001,
                service: "chat backend".into(),
                start_command: None,
                health_url: None,
            },
            &[],
            &["Start the chat backend"],
        );
        assert!(!d.remedy.contains("curl"), "{}", d.remedy);
        words(
            &Fault::PortTaken {
                host: "0.0.0.0".into(),
                port: 3001,
                process: Some("node (pid 77)".into()),
            },
            &["Port 3001", "taken by node (pid 77)", "EADDRINUSE"],
            &["lsof -ti:3001 | xargs kill", "another PORT"],
        );
        words(
            &Fault::PortTaken {
                host: "0.0.0.0".into(),
                port: 3001,
                process: None,
            },
            &["already in use"],
            &[],
        );
        words(
            &Fault::PortHeldByOther {
                port: 3001,
                pid: 77,
                service: "chat backend".into(),
                holder: "python3 (pid 77)".into(),
                pattern: "node".into(),
                start_command: Some("npm start".into()),
            },
            &["held by python3 (pid 77)", "`node`", "wrong program"],
            &[
                "kill 77",
                "then start the chat backend: `npm start`",
                "expect_command",
            ],
        );
    }
}
