//! Exit codes: stable and documented in the README. Only `commands::main`
//! turns an outcome or an error into one.

/// Every check passed (warnings allowed unless `--strict`).
pub const OK: i32 = 0;
/// At least one check failed, errored or was blocked (or warned, with `--strict`).
pub const FAILED: i32 = 1;
/// The playbook or the command line is invalid, or a prerequisite is missing.
pub const INVALID: i32 = 2;
/// Interrupted by Ctrl-C (SIGINT); the partial report was still printed.
pub const INTERRUPTED: i32 = 130;
/// Terminated by SIGTERM (systemd, Kubernetes, `kill`); handled as Ctrl-C is.
pub const TERMINATED: i32 = 143;
/// The report (or another file a command writes) could not be written.
pub const WRITE_FAILED: i32 = 74;

/// How a command that ran ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything passed.
    Ok,
    /// The command ran and found a failure (a check, a threshold, a breaking point).
    Failed,
    /// Ctrl-C or SIGTERM; partial results were printed.
    Interrupted,
}

impl Outcome {
    pub fn code(self) -> i32 {
        match self {
            Outcome::Ok => OK,
            Outcome::Failed => FAILED,
            Outcome::Interrupted => match crate::support::signals::received() {
                Some(crate::support::signals::Signal::Terminate) => TERMINATED,
                _ => INTERRUPTED,
            },
        }
    }
}
