//! One check entry (after includes are resolved): its kind, its id, the
//! fields every check has (a derived [`CheckHeader`]), and the kind's own
//! fields, interpolated and type-checked by the kind.

use super::error::{LoadError, nearest};
use super::file::{COMMON_KEYS, CheckHeader};
use super::interp::{self, Scope};
use super::load::{Loader, join};
use super::located::{Located, decode_json, join_path, plain_message, unknown_of};
use super::yaml::{Loc, Node, Value};
use super::{CheckSpec, FieldDoc, KindSchema, ParamError, Settings};
use std::collections::BTreeMap;

impl Loader<'_> {
    pub(super) fn check(
        &self,
        node: &Node,
        path: &str,
        phase: usize,
        vars: &BTreeMap<String, String>,
        target: &BTreeMap<String, String>,
        settings: &Settings,
    ) -> Result<CheckSpec, LoadError> {
        let Some(entries) = node.as_map() else {
            return Err(self.err(
                Some(node.loc),
                path,
                format!(
                    "expected a check: a mapping with `id` and `kind`, found {}",
                    node.kind_name()
                ),
            ));
        };
        let (kind_name, kind) = self.kind_of(node, path)?;
        let id = self.id_of(node, path)?;

        // The kind decides which fields exist besides the common ones.
        let fields = kind.fields();
        for (k, _) in entries {
            let key = k.key_text();
            if COMMON_KEYS.contains(&key.as_str()) || fields.iter().any(|f| f.name == key) {
                continue;
            }
            let allowed = COMMON_KEYS
                .iter()
                .copied()
                .chain(fields.iter().map(|f| f.name.as_str()));
            return Err(self
                .err(
                    Some(k.loc),
                    &join(path, &key),
                    format!(
                        "unknown field `{key}` for a `{kind_name}` check; its fields: {}",
                        fields
                            .iter()
                            .map(|f| f.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
                .suggest(nearest(&key, allowed)));
        }

        let located = Located::new(node, path);
        let mut header = serde_json::Map::new();
        let mut params = serde_json::Map::new();
        if let serde_json::Value::Object(all) = &located.json {
            for (k, v) in all {
                match k.as_str() {
                    "id" | "kind" => {}
                    k if COMMON_KEYS.contains(&k) => {
                        header.insert(k.to_string(), v.clone());
                    }
                    _ => {
                        params.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        // A check's own fields point at their key; anything deeper at its value.
        let locate = |p: &str| -> Loc {
            match p.strip_prefix(path).and_then(|r| r.strip_prefix('.')) {
                Some(r) if !r.contains(['.', '[']) => located.key_loc(p),
                _ => located.value_loc(p),
            }
        };
        let h: CheckHeader = decode_json(&serde_json::Value::Object(header)).map_err(|e| {
            let p = join_path(path, &e.path);
            self.err(Some(located.value_loc(&p)), &p, plain_message(&e.message))
                .suggest(e.suggestion())
        })?;

        let mut params = serde_json::Value::Object(params);
        // Values interpolated into literal fields (SQL text) would be spliced, not bound.
        for f in kind.literal_fields() {
            if let Some(q) = params.get(*f).and_then(|v| v.as_str())
                && q.contains("${")
            {
                let full = format!("{path}.{f}");
                return Err(self
                    .err(Some(locate(&full)), &full, format!("`${{…}}` is not allowed in `{f}`: an interpolated value would be spliced into the SQL"))
                    .suggest(Some("write $1, $2, … in the query and put the values in `params: [\"${vars.x}\"]`; they are bound, never spliced".to_string())));
            }
        }
        let scope = Scope {
            env: self.opts.env.as_ref(),
            vars,
            target,
            captures: None,
        };
        interp::expand_json(&mut params, &scope, path)
            .map_err(|e| self.err(Some(locate(&e.path)), &e.path, e.message))?;
        // `${checks.X.…}` makes X a dependency.
        let mut needs = h.needs.map(|n| n.0).unwrap_or_default();
        let mut refs = Vec::new();
        collect_check_refs(&params, &mut refs);
        for r in refs {
            if !needs.contains(&r) {
                needs.push(r);
            }
        }
        // Type-check now; values that wait for captures are checked again at run time.
        if let Err(ParamError { path: p, message }) = kind.validate(&params)
            && !waits_for_capture(&params, &p)
        {
            let full = join_path(path, &p);
            let (msg, hint) = explain_serde(&message, &fields);
            return Err(self.err(Some(locate(&full)), &full, msg).suggest(hint));
        }
        Ok(CheckSpec {
            id,
            kind: kind_name,
            title: h.title,
            description: h.description,
            phase,
            needs,
            timeout: h.timeout.unwrap_or(settings.timeout),
            retries: h.retries.unwrap_or(0),
            interval: h.interval.unwrap_or(std::time::Duration::from_secs(1)),
            params,
            root_cause: h.root_cause,
            remedy: h.remedy,
            file: self.files[node.loc.file as usize].name.clone(),
            loc: node.loc,
        })
    }

    /// The check's `kind`, looked up in the registry the loader was given.
    fn kind_of(&self, node: &Node, path: &str) -> Result<(String, &dyn KindSchema), LoadError> {
        let kpath = join(path, "kind");
        let names = || self.kinds.kind_names();
        let Some(kind_node) = node.get("kind") else {
            return Err(self.err(
                Some(node.loc),
                &kpath,
                format!("missing `kind`; one of: {}", names().join(", ")),
            ));
        };
        let Value::Str(kind_name) = &kind_node.value else {
            return Err(self.err(
                Some(kind_node.loc),
                &kpath,
                format!("expected a string, found {}", kind_node.kind_name()),
            ));
        };
        match self.kinds.find_kind(kind_name) {
            Some(k) => Ok((kind_name.clone(), k)),
            None => Err(self
                .err(
                    Some(kind_node.loc),
                    &kpath,
                    format!(
                        "unknown check kind `{kind_name}`; known kinds: {}",
                        names().join(", ")
                    ),
                )
                .suggest(nearest(kind_name, names()))),
        }
    }

    /// The check's `id`: letters, digits, `_` and `-`.
    fn id_of(&self, node: &Node, path: &str) -> Result<String, LoadError> {
        let ipath = join(path, "id");
        let Some(id_node) = node.get("id") else {
            return Err(self.err(
                Some(node.loc),
                &ipath,
                "missing `id`: every check needs a unique id",
            ));
        };
        let id = self.scalar(id_node, &ipath)?;
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(self.err(
                Some(id_node.loc),
                &ipath,
                format!("`{id}` is not a valid id: use letters, digits, `_` and `-`"),
            ));
        }
        Ok(id)
    }
}

fn collect_check_refs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => out.extend(interp::check_refs(s)),
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_check_refs(x, out)),
        serde_json::Value::Object(m) => m.values().for_each(|x| collect_check_refs(x, out)),
        _ => {}
    }
}

/// Rewrites serde's messages for people and finds a suggestion in them.
fn explain_serde(m: &str, fields: &[FieldDoc]) -> (String, Option<String>) {
    // A misspelt field or variant: the nearest expected word (or field).
    let hint = unknown_of(m).and_then(|u| {
        if u.expected.is_empty() {
            nearest(&u.word, fields.iter().map(|f| f.name.as_str()))
        } else {
            nearest(&u.word, u.expected.iter().map(String::as_str))
        }
    });
    let msg = m
        .replace("expected u16", "expected a whole number from 0 to 65535")
        .replace("expected u32", "expected a whole number")
        .replace("expected u64", "expected a whole number")
        .replace("expected i64", "expected a whole number")
        .replace("expected f64", "expected a number");
    (msg, hint)
}

/// Whether the value at `path` (inside a check) still holds a `${checks.…}`
/// reference: its type can only be checked once the capture exists.
fn waits_for_capture(params: &serde_json::Value, path: &str) -> bool {
    crate::support::dotpath::lookup(params, path)
        .and_then(|v| v.as_str())
        .is_some_and(|s| !interp::check_refs(s).is_empty())
}
