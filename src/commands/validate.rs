//! `chatops validate`: load a playbook and report its errors, run nothing.

use super::cli::ValidateArgs;
use super::{CommandError, CommandResult, Outcome};

pub fn run(args: ValidateArgs) -> CommandResult {
    let mut t = args.target.to_target();
    if args.file.is_some() {
        t.playbook = args.file;
    }
    let red = t.redactor(None);
    let pb = t
        .load()
        .map_err(|e| CommandError::InvalidPlaybook(red.redact(&e.to_string())))?;
    outln!(
        "{}: valid — {} phase(s), {} check(s)",
        red.redact(&pb.file),
        pb.phases.len(),
        pb.checks().count()
    );
    Ok(Outcome::Ok)
}
