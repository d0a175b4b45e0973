//! `--export-dir`: every file of a run, each written atomically.

use super::report::{SCHEMA_VERSION, markdown, stage_json, summary_json};
use super::result::RunResult;
use crate::support::atomic::WriteError;
use crate::support::redact::Redactor;
use serde_json::json;
use std::path::Path;

/// Writes `summary.json`, `stage-N-NAME.json` (with the samples and the
/// per-second series), `report.md` and `report.html` (with the comparison
/// section and markdown, when there is a baseline). Each file is written
/// atomically (a reader never sees half of one).
pub fn export(
    dir: &Path,
    r: &RunResult,
    red: &Redactor,
    comparison: Option<&super::compare::Comparison>,
) -> Result<Vec<String>, WriteError> {
    std::fs::create_dir_all(dir).map_err(|source| WriteError {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut written = Vec::new();
    let mut put = |name: String, text: String| -> Result<(), WriteError> {
        let p = dir.join(&name);
        crate::support::atomic::write(&p, text.as_bytes())?;
        written.push(p.display().to_string());
        Ok(())
    };
    for (i, s) in r.stages.iter().enumerate() {
        let safe: String = s
            .stage
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let mut v = stage_json(s, true);
        v["schema_version"] = json!(SCHEMA_VERSION);
        let text = serde_json::to_string_pretty(&v).unwrap_or_default();
        put(format!("stage-{}-{safe}.json", i + 1), red.redact(&text))?;
    }
    put("summary.json".into(), summary_json(r, red))?;
    let mut md = markdown(r, red);
    if let Some(c) = comparison {
        md.push('\n');
        md.push_str(&red.redact(&super::compare::render::markdown(c)));
    }
    put("report.md".into(), md)?;
    let section = comparison.map(super::compare::render::html_section);
    put(
        "report.html".into(),
        super::html::page(r, section.as_deref(), red),
    )?;
    Ok(written)
}
