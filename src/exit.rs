//! Exit codes: stable and documented in the README.

/// Every check passed (warnings allowed unless `--strict`).
pub const OK: i32 = 0;
/// At least one check failed, errored or was blocked (or warned, with `--strict`).
pub const FAILED: i32 = 1;
/// The playbook or the command line is invalid, or a prerequisite is missing.
pub const INVALID: i32 = 2;
/// Interrupted (Ctrl-C); the partial report was still printed.
pub const INTERRUPTED: i32 = 130;
