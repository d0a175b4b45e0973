//! `chatops completions SHELL`: shell completions from the clap definition.

use super::cli::Cli;
use super::{CommandResult, Outcome};
use clap::CommandFactory;

pub fn run(shell: clap_complete::Shell) -> CommandResult {
    let mut cmd = Cli::command();
    // Into a buffer first: clap_complete panics when its writer fails (a
    // closed pipe).
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "chatops", &mut buf);
    out!("{}", String::from_utf8_lossy(&buf));
    Ok(Outcome::Ok)
}
