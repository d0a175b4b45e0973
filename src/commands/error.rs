//! What a command can fail with before it has a result to show. `main`
//! prints it once, redacted, and maps it to its exit code.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// A playbook or load plan that does not load (located: file, line, column, key).
    #[error("invalid playbook: {0}")]
    InvalidPlaybook(String),
    /// A command-line value that makes no sense (the message names the flag).
    #[error("{0}")]
    Usage(String),
    /// Something the command needs is missing (PostgreSQL binaries, its own executable).
    #[error("{0}")]
    Prerequisite(String),
    /// The target could not be read (a server the command needs to start from).
    #[error("{0}")]
    Unreachable(String),
    /// Already printed by a command that still prints its own errors.
    #[error("exit {0}")]
    Reported(i32),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl CommandError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CommandError::Unreachable(_) => super::exit::FAILED,
            CommandError::Reported(code) => *code,
            _ => super::exit::INVALID,
        }
    }
}

pub type CommandResult = Result<super::exit::Outcome, CommandError>;
