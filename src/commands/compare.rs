//! `chatops compare A B`: two load runs side by side per stage. Exit codes:
//! 0 no regression, 1 a regression beyond `--max-regression` (or a new
//! error class, or a stage that passed and now fails), 2 a file that is not
//! a readable chatops load summary.

use super::cli::{CompareArgs, CompareFormat};
use super::{CommandError, CommandResult, Outcome};
use crate::load::compare::{self, render};
use std::io::Write;

pub fn run(a: &CompareArgs, color: bool) -> CommandResult {
    let read =
        |p: &std::path::Path| compare::load(p).map_err(|e| CommandError::Usage(e.to_string()));
    let (base, cur) = (read(&a.baseline)?, read(&a.current)?);
    let c = compare::compare(
        &base,
        &cur,
        a.max_regression,
        (
            &a.baseline.display().to_string(),
            &a.current.display().to_string(),
        ),
    );
    let text = match a.format {
        CompareFormat::Human => render::human(&c, color),
        CompareFormat::Markdown => render::markdown(&c),
        CompareFormat::Json => render::json(&c) + "\n",
        CompareFormat::Html => render::html_page(&c),
    };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    Ok(if c.regressed {
        Outcome::Failed
    } else {
        Outcome::Ok
    })
}
