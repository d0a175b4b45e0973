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
    /// A file the user named could not be written (written atomically, so
    /// nothing half-written is left).
    #[error(transparent)]
    Write(#[from] crate::support::atomic::WriteError),
    #[error(transparent)]
    Watch(#[from] WatchError),
    #[error(transparent)]
    PoolCalc(#[from] PoolCalcError),
    #[error(transparent)]
    LoadPlan(#[from] LoadPlanError),
}

/// `chatops load`: the plan, with the flags applied, does not make a run.
#[derive(Debug, thiserror::Error)]
pub enum LoadPlanError {
    #[error("cannot read plan {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the embedded plan is missing")]
    EmbeddedMissing,
    /// Located: file, line, column, key, suggestion.
    #[error("invalid plan: {0}")]
    Invalid(String),
    #[error("--stages: {0}")]
    Stages(String),
    #[error(transparent)]
    Model(#[from] crate::load::plan::ModelError),
}

/// `chatops watch-connections` refused to start, or could not write a sample.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("--database-url (or DATABASE_URL) is required")]
    MissingDatabaseUrl,
    #[error("--database-url: {0}")]
    DatabaseUrl(String),
    #[error("--warn-active ({warn}) is above --critical-active ({critical})")]
    Thresholds { warn: u32, critical: u32 },
    #[error("cannot build the connection pool: {0}")]
    Sampler(#[from] crate::watch::SamplerError),
    #[error(transparent)]
    Write(#[from] crate::support::atomic::WriteError),
    #[error(
        "--listen {0} is not a loopback address: other machines could read the metrics; add --allow-remote to mean it"
    )]
    RemoteListen(std::net::SocketAddr),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("--health-url needs --listen or --format prometheus (the figures are metrics)")]
    HealthUrlFormat,
    #[error(transparent)]
    HealthClient(#[from] crate::watch::serve::HealthClientError),
}

/// `chatops pool-calc` was given bad input, or could not read the server.
#[derive(Debug, thiserror::Error)]
pub enum PoolCalcError {
    /// A flag's value, named by the flag.
    #[error("{flag}: {message}")]
    Flag { flag: &'static str, message: String },
    /// The flags together make no sense (the pool arithmetic's own checks).
    #[error(transparent)]
    Input(#[from] crate::poolcalc::InputError),
    #[error("cannot read the server's limits from --database-url ({host}:{port}): {reason}")]
    Connect {
        host: String,
        port: u16,
        reason: String,
    },
    #[error("reading pg_settings failed: {0}")]
    Settings(String),
    #[error("reading pg_settings timed out")]
    SettingsTimeout,
}

impl CommandError {
    pub fn exit_code(&self) -> i32 {
        use super::exit::{FAILED, INVALID, WRITE_FAILED};
        match self {
            CommandError::Write(_) | CommandError::Watch(WatchError::Write(_)) => WRITE_FAILED,
            CommandError::Unreachable(_) => FAILED,
            CommandError::PoolCalc(
                PoolCalcError::Connect { .. }
                | PoolCalcError::Settings(_)
                | PoolCalcError::SettingsTimeout,
            ) => FAILED,
            _ => INVALID,
        }
    }

    /// The command whose name prefixes the message (`chatops pool-calc: …`),
    /// for the commands that have always said who is speaking.
    pub fn command(&self) -> Option<&'static str> {
        match self {
            CommandError::Watch(_) => Some("watch-connections"),
            CommandError::PoolCalc(_) => Some("pool-calc"),
            _ => None,
        }
    }
}

pub type CommandResult = Result<super::exit::Outcome, CommandError>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::exit;

    #[test]
    fn exit_codes_and_prefixes() {
        let flag = CommandError::from(PoolCalcError::Flag {
            flag: "--replicas",
            message: "must be a number ≥ 0, got -2".into(),
        });
        assert_eq!(flag.exit_code(), exit::INVALID);
        assert_eq!(flag.command(), Some("pool-calc"));
        assert_eq!(flag.to_string(), "--replicas: must be a number ≥ 0, got -2");
        let down = CommandError::from(PoolCalcError::Connect {
            host: "h".into(),
            port: 1,
            reason: "refused".into(),
        });
        assert_eq!(down.exit_code(), exit::FAILED);
        let w = CommandError::from(WatchError::Thresholds {
            warn: 50,
            critical: 48,
        });
        assert_eq!(w.exit_code(), exit::INVALID);
        assert_eq!(w.command(), Some("watch-connections"));
        assert_eq!(
            w.to_string(),
            "--warn-active (50) is above --critical-active (48)"
        );
        assert_eq!(CommandError::Usage("x".into()).command(), None);
    }
}
