//! `chatops schema`: the playbook format as JSON Schema, for editors.

use super::{CommandResult, Outcome};

pub fn run() -> CommandResult {
    let schema = crate::playbook::schema::playbook_schema(crate::checks::registry());
    outln!(
        "{}",
        serde_json::to_string_pretty(&schema).unwrap_or_default()
    );
    Ok(Outcome::Ok)
}
