//! `include: FILE` in a phase's checks: the included check (from disk, or
//! shipped in the binary as `chatops:checks/…`), with the entry's other keys
//! laid over it.

use super::error::LoadError;
use super::load::{Loader, join};
use super::source::{Place, SourceFile, check_text, embedded_source, normalize, read_file};
use super::yaml::{Node, Value};
use std::path::Path;

const MAX_INCLUDE_DEPTH: usize = 8;

impl Loader<'_> {
    /// Replaces `include: FILE` by the included check, with the entry's
    /// other keys laid over it.
    pub(super) fn resolve_include(
        &mut self,
        item: &Node,
        path: &str,
        depth: usize,
    ) -> Result<Node, LoadError> {
        let Some(inc) = item.get("include") else {
            return Ok(item.clone());
        };
        let ipath = join(path, "include");
        if depth >= MAX_INCLUDE_DEPTH {
            return Err(self.err(
                Some(inc.loc),
                &ipath,
                "includes nest too deeply (is there a cycle?)",
            ));
        }
        let rel = match inc.as_str() {
            Some(s) => s.to_string(),
            None => {
                return Err(self.err(
                    Some(inc.loc),
                    &ipath,
                    format!("expected a string, found {}", inc.kind_name()),
                ));
            }
        };
        let from = &self.files[inc.loc.file as usize];
        // `chatops:checks/x.yaml` names a check shipped inside the binary,
        // wherever the including playbook lives.
        let (place, rel) = match rel.strip_prefix("chatops:") {
            Some(r) => (
                Place::Embedded(String::new()),
                r.trim_start_matches('/').to_string(),
            ),
            None => (from.dir.clone(), rel),
        };
        let (name, text, dir) = match &place {
            Place::Disk(d) => {
                let p = d.join(&rel);
                let text = read_file(&p).map_err(|e| {
                    self.err(
                        Some(inc.loc),
                        &ipath,
                        format!("cannot include `{rel}`: {}", e.message),
                    )
                })?;
                let dir = p.parent().map(Path::to_path_buf).unwrap_or_default();
                (p.display().to_string(), text, Place::Disk(dir))
            }
            Place::Embedded(d) => {
                let p = normalize(&format!("{d}/{rel}"));
                embedded_source(&p).ok_or_else(|| {
                    self.err(
                        Some(inc.loc),
                        &ipath,
                        format!("cannot include `{rel}`: no such embedded file `{p}`"),
                    )
                })?
            }
        };
        check_text(&name, &text)?;
        if self.files.len() >= u16::MAX as usize {
            return Err(self.err(Some(inc.loc), &ipath, "too many included files"));
        }
        self.files.push(SourceFile { name, text, dir });
        let idx = self.files.len() - 1;
        let base = self.parse_file(idx)?;
        if base.as_map().is_none() {
            return Err(self.err(
                Some(base.loc),
                "",
                format!(
                    "an included check must be a mapping, found {}",
                    base.kind_name()
                ),
            ));
        }
        let base = self.resolve_include(&base, "", depth + 1)?;
        let mut merged = base;
        let overrides: Vec<(Node, Node)> = item
            .as_map()
            .unwrap_or(&[])
            .iter()
            .filter(|(k, _)| k.as_str() != Some("include"))
            .cloned()
            .collect();
        merge(&mut merged, overrides);
        Ok(merged)
    }
}

/// Lays `overrides` over `base`: mappings merge key by key, anything else is replaced.
fn merge(base: &mut Node, overrides: Vec<(Node, Node)>) {
    let Value::Map(entries) = &mut base.value else {
        return;
    };
    for (k, v) in overrides {
        match entries
            .iter_mut()
            .find(|(bk, _)| bk.key_text() == k.key_text())
        {
            Some((_, bv)) => {
                if let (Value::Map(_), Value::Map(ov)) = (&bv.value, &v.value) {
                    merge(bv, ov.clone());
                } else {
                    *bv = v;
                }
            }
            None => entries.push((k, v)),
        }
    }
}
