//! Log faults: the backend's log file, unreadable or with problem lines.

use super::{Diagnosis, Fault, excerpt, known_error};

/// Root cause and fix of a fault of this family; `None` for another family's.
pub(super) fn word(f: &Fault) -> Option<Diagnosis> {
    let d = super::worded;
    match f {
        Fault::LogUnreadable {
            path,
            error,
            missing,
        } => d(
            if *missing {
                format!(
                    "The log file {path} does not exist: the backend writes its log elsewhere, or was not started with its output redirected there."
                )
            } else {
                format!("The log file {path} cannot be read ({error}).")
            },
            format!(
                "Start the backend with its output in that file (`… > {path} 2>&1 &`, as the seed does), or point the check at the real log (`--var backend_log=PATH` or CHATOPS_BACKEND_LOG for the shipped playbook)."
            ),
        ),
        Fault::LogMatches { path, count, first } => match known_error(first) {
            Some((root, remedy)) => d(
                format!("{root} ({count} problem line(s) in {path}.)"),
                remedy,
            ),
            None => d(
                format!(
                    "The backend logged {count} problem line(s) in {path}, the first telling one: {}",
                    excerpt(first, 200)
                ),
                format!(
                    "Read them in context (`grep -n -iE 'error|warn|exception' {path} | tail`) and fix the cause; add an `ignore:` pattern to the check only for lines known to be harmless."
                ),
            ),
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::diagnose::Fault;
    use crate::diagnose::samples::words;

    const LOG: &str = "/var/log/chat/backend.log";

    #[test]
    fn a_missing_or_unreadable_log_says_which_and_where_to_write_it() {
        let u = |missing: bool| Fault::LogUnreadable {
            path: LOG.into(),
            error: "Permission denied".into(),
            missing,
        };
        let fix = [format!("> {LOG} 2>&1 &"), "CHATOPS_BACKEND_LOG".to_string()];
        let fix: Vec<&str> = fix.iter().map(String::as_str).collect();
        words(&u(true), &["does not exist", LOG], &fix);
        words(&u(false), &["cannot be read (Permission denied)"], &fix);
    }

    #[test]
    fn known_lines_get_their_cause_and_others_are_quoted() {
        let m = |first: &str| Fault::LogMatches {
            path: LOG.into(),
            count: 3,
            first: first.into(),
        };
        words(
            &m(
                "prisma:error Invalid `prisma.message.findMany()`: P2022 column messages.messageType does not exist in the current database",
            ),
            &[
                "schema drift",
                "P2021/P2022",
                "(3 problem line(s) in /var/log/chat/backend.log.)",
            ],
            &["npx prisma generate"],
        );
        words(
            &m("ERROR [ExceptionsHandler]   Cannot read   properties"),
            &[
                "3 problem line(s)",
                "ERROR [ExceptionsHandler] Cannot read properties",
            ],
            &[
                &format!("grep -n -iE 'error|warn|exception' {LOG}"),
                "ignore:",
            ],
        );
    }
}
