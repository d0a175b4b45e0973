//! `chatops doctor`: run a playbook and print the remediation report.

use super::cli::DoctorArgs;
use super::{CommandError, CommandResult, Outcome};
use crate::checks::Status;
use crate::engine::Report;
use crate::report::{self, Format, Style};
use crate::session;
use crate::support::signals;
use std::io::Write;

pub async fn run(args: &DoctorArgs, style: &Style) -> CommandResult {
    let mut target = args.target.to_target();
    if let Some(d) = &args.stability {
        target
            .vars
            .push(("stability_duration".to_string(), d.clone()));
    }
    let s = session::run(&target, signals::shutdown_token())
        .await
        .map_err(|e| CommandError::InvalidPlaybook(target.redactor(None).redact(&e.to_string())))?;
    let st = Style {
        color: style.color && args.output.is_none() && args.format == Format::Human,
        verbose: style.verbose,
        quiet: style.quiet,
    };
    let text = s
        .redactor
        .redact(&report::render(&s.report, args.format, &st));
    match &args.output {
        Some(path) => {
            if let Err(e) = crate::support::atomic::write(path, text.as_bytes()) {
                // The report is not lost: it goes to standard output instead.
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(text.as_bytes());
                let _ = out.flush();
                return Err(e.into());
            }
            if !style.quiet {
                eprintln!(
                    "report written to {} ({})",
                    path.display(),
                    s.report.status.as_str()
                );
            }
        }
        None => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        }
    }
    Ok(outcome(&s.report, args.strict))
}

/// Interrupted, failed (warnings too with `strict`), or passed.
pub fn outcome(r: &Report, strict: bool) -> Outcome {
    if r.interrupted {
        Outcome::Interrupted
    } else if r.status == Status::Fail || (strict && r.status == Status::Warn) {
        Outcome::Failed
    } else {
        Outcome::Ok
    }
}
