//! `chatops completions SHELL`: shell completions from the clap definition.

use super::cli::Cli;
use super::{CommandResult, Outcome};
use clap::CommandFactory;

pub fn run(shell: clap_complete::Shell) -> CommandResult {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "chatops", &mut std::io::stdout());
    Ok(Outcome::Ok)
}
