//! `chatops checks [KIND]`: the check kinds and their YAML fields.

use super::{CommandError, CommandResult, Outcome};
use crate::support::suggest::nearest;

pub fn run(only: Option<&str>) -> CommandResult {
    let registry = crate::checks::registry();
    let kinds: Vec<_> = registry
        .iter()
        .filter(|k| only.is_none_or(|o| o == k.name()))
        .collect();
    if kinds.is_empty() {
        let o = only.unwrap_or_default();
        let hint = nearest(o, registry.names())
            .map(|h| format!(" (did you mean `{h}`?)"))
            .unwrap_or_default();
        return Err(CommandError::Usage(format!(
            "unknown check kind `{o}`{hint}"
        )));
    }
    let mut out = String::new();
    for k in kinds {
        out.push_str(&format!("{:<12} {}\n", k.name(), k.help()));
        for f in k.fields() {
            let req = if f.required { " (required)" } else { "" };
            out.push_str(&format!(
                "    {:<16} {:<22} {}{req}\n",
                f.name, f.ty, f.help
            ));
        }
        out.push('\n');
    }
    out.push_str("Every check also takes: id, kind, title, description, needs, timeout, retries, interval, root_cause, remedy; or `include: FILE` with overrides.\n");
    out!("{out}");
    Ok(Outcome::Ok)
}
