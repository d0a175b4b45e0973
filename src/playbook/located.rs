//! One located loader: a YAML node deserialized into any `T` with serde
//! (`deny_unknown_fields` and all), whose errors come back with the key path,
//! the line and column, and the nearest valid word. Playbooks (their
//! skeleton and each check's header), check parameters and load plans all
//! go through it.

use super::error::{LoadError, nearest};
use super::yaml::{Loc, Node};
use serde::de::DeserializeOwned;

/// A node as JSON, remembering where every path of it was written.
pub struct Located {
    pub json: serde_json::Value,
    /// (path, location), in document order: a key's own location first,
    /// then its value's, then the value's children.
    locs: Vec<(String, Loc)>,
    root: Loc,
}

/// What serde said went wrong, and where (a path relative to the node).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct PathError {
    pub path: String,
    pub message: String,
    /// A misspelt key or variant, and the words it should have been.
    pub unknown: Option<Unknown>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unknown {
    pub word: String,
    pub expected: Vec<String>,
    /// A field (`deny_unknown_fields`), not an enum variant.
    pub field: bool,
}

impl PathError {
    /// The nearest of the expected words, for "did you mean".
    pub fn suggestion(&self) -> Option<String> {
        let u = self.unknown.as_ref()?;
        nearest(&u.word, u.expected.iter().map(String::as_str))
    }
}

impl Located {
    /// Converts `node`, whose own path is `base` (paths inside it extend it).
    pub fn new(node: &Node, base: &str) -> Located {
        let mut locs = Vec::new();
        let json = node.to_json(base, &mut locs);
        Located {
            json,
            locs,
            root: node.loc,
        }
    }

    /// Where `path`'s key was written (for a list item or the node itself,
    /// where its value starts), or the nearest enclosing path's.
    pub fn key_loc(&self, path: &str) -> Loc {
        self.nearest(path, |p| self.locs.iter().find(|(q, _)| q == p))
    }

    /// Where `path`'s value starts, or the nearest enclosing path's.
    pub fn value_loc(&self, path: &str) -> Loc {
        self.nearest(path, |p| self.locs.iter().rev().find(|(q, _)| q == p))
    }

    fn nearest<'a>(&'a self, path: &str, find: impl Fn(&str) -> Option<&'a (String, Loc)>) -> Loc {
        let mut p = path.to_string();
        loop {
            if let Some((_, l)) = find(&p) {
                return *l;
            }
            match p.rfind(['.', '[']) {
                Some(i) => p.truncate(i),
                None => return self.root,
            }
        }
    }

    /// Deserializes the node into `T`. Of several misspelt keys in one
    /// mapping, the first written is reported.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, PathError> {
        decode_json(&self.json).map_err(|mut e| {
            if let Some(u) = e.unknown.as_mut().filter(|u| u.field)
                && let Some(first) = self.first_unknown_key(&e.path, &u.expected)
                && first != u.word
            {
                e.message = e
                    .message
                    .replacen(&format!("`{}`", u.word), &format!("`{first}`"), 1);
                e.path = match e.path.rsplit_once('.') {
                    Some((parent, _)) => format!("{parent}.{first}"),
                    None => first.clone(),
                };
                u.word = first;
            }
            e
        })
    }

    /// The first key, in document order, of the mapping holding `path`
    /// that is not one of `expected`. (JSON objects here are sorted.)
    fn first_unknown_key(&self, path: &str, expected: &[String]) -> Option<String> {
        let parent = path.rsplit_once('.').map(|(p, _)| p).unwrap_or("");
        let prefix = if parent.is_empty() {
            String::new()
        } else {
            format!("{parent}.")
        };
        self.locs.iter().find_map(|(p, _)| {
            let key = p.strip_prefix(&prefix)?;
            let plain = !key.is_empty() && !key.contains(['.', '[']);
            (plain && !expected.iter().any(|x| x == key)).then(|| key.to_string())
        })
    }

    /// A [`LoadError`] for `e`: at the key of a misspelt field, at the value
    /// for anything else; `base` is the node's own path.
    pub fn error(&self, e: &PathError, base: &str, file: &str, text: &str) -> LoadError {
        let path = join_path(base, &e.path);
        let loc = match &e.unknown {
            Some(u) if u.field => self.key_loc(&path),
            _ => self.value_loc(&path),
        };
        LoadError::new(file, Some(loc), &path, &e.message)
            .suggest(e.suggestion())
            .with_source(text)
    }
}

/// Deserializes JSON into `T`, with the path of the first error.
pub fn decode_json<T: DeserializeOwned>(v: &serde_json::Value) -> Result<T, PathError> {
    serde_path_to_error::deserialize::<_, T>(v).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        let message = e.into_inner().to_string();
        PathError {
            unknown: unknown_of(&message),
            path,
            message,
        }
    })
}

/// Reads serde's "unknown field `x`, expected one of `a`, `b`" and
/// "unknown variant `x`, expected `a` or `b`".
pub fn unknown_of(m: &str) -> Option<Unknown> {
    let field = m.starts_with("unknown field `");
    if !field && !m.starts_with("unknown variant `") {
        return None;
    }
    let word = m.split('`').nth(1)?.to_string();
    let expected = m
        .split_once("expected")
        .map(|(_, rest)| {
            rest.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    Some(Unknown {
        word,
        expected,
        field,
    })
}

/// serde's "invalid type: integer `5`, expected a string" as people say it:
/// "expected a string, found a number". Other messages are kept.
pub fn plain_message(m: &str) -> String {
    let Some(rest) = m.strip_prefix("invalid type: ") else {
        return m.to_string();
    };
    let Some((found, expected)) = rest.split_once(", expected ") else {
        return m.to_string();
    };
    let found = match found.split([' ', '`']).next().unwrap_or("") {
        "string" | "char" => "a string",
        "integer" | "floating" => "a number",
        "boolean" => "a boolean",
        "sequence" => "a list",
        "map" => "a mapping",
        "null" | "unit" => "null",
        _ => return m.to_string(),
    };
    format!("expected {expected}, found {found}")
}

/// `base.path`, `base[0]`, or either alone.
pub fn join_path(base: &str, path: &str) -> String {
    if base.is_empty() {
        path.to_string()
    } else if path.is_empty() {
        base.to_string()
    } else if path.starts_with('[') {
        format!("{base}{path}")
    } else {
        format!("{base}.{path}")
    }
}

/// What a JSON value is, in the words of error messages.
pub fn kind_name(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct T {
        name: String,
        #[serde(default)]
        inner: Vec<Inner>,
    }
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        port: u16,
    }

    fn located(text: &str) -> Located {
        match super::super::yaml::parse(text) {
            Ok(n) => Located::new(&n, "top"),
            Err(e) => panic!("{}", e.message),
        }
    }

    #[test]
    fn errors_carry_path_place_and_suggestion() {
        let text = "name: x\ninner:\n  - port: 1\n  - prot: 2\n";
        let l = located(text);
        let e = l.decode::<T>().expect_err("misspelt");
        assert_eq!(e.path, "inner[1].prot");
        assert_eq!(e.suggestion().as_deref(), Some("port"));
        let le = l.error(&e, "top", "f.yaml", text);
        assert_eq!(le.path, "top.inner[1].prot");
        assert_eq!(le.loc.map(|l| (l.line, l.column)), Some((4, 5)));
        assert_eq!(le.snippet.as_deref(), Some("  - prot: 2"));

        let text = "name: x\ninner:\n  - port: many\n";
        let l = located(text);
        let e = l.decode::<T>().expect_err("type");
        let le = l.error(&e, "top", "f.yaml", text);
        assert_eq!(le.path, "top.inner[0].port");
        assert_eq!(
            le.loc.map(|l| (l.line, l.column)),
            Some((3, 11)),
            "at the value"
        );
        assert_eq!(e.suggestion(), None);
    }

    #[test]
    fn serde_words_become_plain_ones() {
        assert_eq!(
            plain_message("invalid type: integer `5`, expected a string"),
            "expected a string, found a number"
        );
        assert_eq!(
            plain_message("invalid type: sequence, expected a list of phases"),
            "expected a list of phases, found a list"
        );
        assert_eq!(plain_message("missing field `x`"), "missing field `x`");
    }

    #[test]
    fn paths_join() {
        assert_eq!(join_path("", "a"), "a");
        assert_eq!(join_path("a", ""), "a");
        assert_eq!(join_path("a", "[0].b"), "a[0].b");
        assert_eq!(join_path("a", "b"), "a.b");
    }
}
