//! Exit codes: stable and documented in the README. Only `commands::main`
//! turns an outcome or an error into one.

/// Every check passed (warnings allowed unless `--strict`).
pub const OK: i32 = 0;
/// At least one check failed, errored or was blocked (or warned, with `--strict`).
pub const FAILED: i32 = 1;
/// The playbook or the command line is invalid, or a prerequisite is missing.
pub const INVALID: i32 = 2;
/// Interrupted (Ctrl-C or SIGTERM); the partial report was still printed.
pub const INTERRUPTED: i32 = 130;

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
            Outcome::Interrupted => INTERRUPTED,
        }
    }
}
