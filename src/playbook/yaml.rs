//! A YAML document as a tree of nodes that remember where they came from.
//!
//! serde-saphyr parses (syntax errors, duplicate keys, budgets against alias
//! bombs and deep nesting all come back located); every node keeps its line and
//! column so later validation can point at the exact key.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// A 1-based line and column in a source file (0 when unknown).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Loc {
    pub line: u64,
    pub column: u64,
    /// Index of the source file in the loader's file table (0: the playbook).
    pub file: u16,
}

#[derive(Debug, Clone)]
pub struct Node {
    pub loc: Loc,
    pub value: Value,
}

#[derive(Debug, Clone)]
pub enum Value {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    pub fn new(value: Value, loc: Loc) -> Node {
        Node { loc, value }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The key as a string, whatever scalar it was written as.
    pub fn key_text(&self) -> String {
        match &self.value {
            Value::Str(s) => s.clone(),
            Value::Null => "~".into(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            Value::Seq(_) | Value::Map(_) => "<collection>".into(),
        }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// Marks every node of this tree as coming from file `file`.
    pub fn set_file(&mut self, file: u16) {
        self.loc.file = file;
        match &mut self.value {
            Value::Seq(items) => items.iter_mut().for_each(|n| n.set_file(file)),
            Value::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
                k.set_file(file);
                v.set_file(file);
            }),
            _ => {}
        }
    }

    pub fn kind_name(&self) -> &'static str {
        match &self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// Converts to JSON, recording the location of every path on the way so
    /// that a later typed error (which knows only the path) can be located.
    pub fn to_json(&self, path: &str, locs: &mut Vec<(String, Loc)>) -> serde_json::Value {
        use serde_json::Value as J;
        locs.push((path.to_string(), self.loc));
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Number(n) => J::Number(n.clone()),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, n)| n.to_json(&format!("{path}[{i}]"), locs))
                    .collect(),
            ),
            Value::Map(entries) => {
                let mut m = serde_json::Map::new();
                for (k, v) in entries {
                    let key = k.key_text();
                    let p = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    // The key's own position is the most useful place to point at.
                    locs.push((p.clone(), k.loc));
                    let j = v.to_json(&p, locs);
                    m.insert(key, j);
                }
                J::Object(m)
            }
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        let s = serde_saphyr::Spanned::<Value>::deserialize(d)?;
        let loc = Loc {
            line: s.referenced.line(),
            column: s.referenced.column(),
            file: 0,
        };
        Ok(Node {
            loc,
            value: s.value,
        })
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v)
            .map(Value::Number)
            .unwrap_or_else(|| Value::Str(v.to_string())))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(n) = seq.next_element::<Node>()? {
            out.push(n);
        }
        Ok(Value::Seq(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(k) = map.next_key::<Node>()? {
            let v = map.next_value::<Node>()?;
            out.push((k, v));
        }
        Ok(Value::Map(out))
    }
}

/// Parse failure from the YAML layer, already located.
#[derive(Debug)]
pub struct ParseError {
    pub loc: Option<Loc>,
    pub message: String,
}

/// Maximum nesting a playbook may use; real playbooks need about eight.
pub const MAX_DEPTH: usize = 48;

/// Parses YAML text into a located tree, with budgets that stop alias bombs
/// and pathological nesting quickly.
pub fn parse(text: &str) -> Result<Node, ParseError> {
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: MAX_DEPTH,
            max_aliases: 1_000,
            max_anchors: 1_000,
            max_nodes: 200_000,
        },
        with_snippet: false,
    };
    match serde_saphyr::from_str_with_options::<Option<Node>>(text, options) {
        Ok(Some(n)) => Ok(n),
        Ok(None) => Ok(Node::new(
            Value::Null,
            Loc {
                line: 1,
                column: 1,
                file: 0,
            },
        )),
        Err(e) => {
            let loc = e.location().map(|l| Loc {
                line: l.line(),
                column: l.column(),
                file: 0,
            });
            let message = e.without_snippet().to_string();
            Err(ParseError {
                loc: loc.filter(|l| l.line > 0),
                message: clean_message(&message),
            })
        }
    }
}

/// serde-saphyr's messages sometimes carry their own "at line X column Y"
/// suffix; we print locations ourselves.
fn clean_message(m: &str) -> String {
    let first = m.lines().next().unwrap_or(m).trim();
    let first = match first.find(" at line ") {
        Some(i) => &first[..i],
        None => first,
    };
    let first = first.trim_end_matches(", set DuplicateKeyPolicy in Options if acceptable");
    if first.contains("budget breached") {
        if first.contains("Nodes")
            || first.contains("Alias")
            || first.contains("Anchor")
            || first.contains("Events")
        {
            return "the document expands to too many nodes (a YAML alias bomb?); a playbook may hold at most 200,000".into();
        }
        if first.contains("Depth") {
            return format!("nesting deeper than {MAX_DEPTH} levels");
        }
        return format!("the document is too large for a playbook ({first})");
    }
    if first.contains("recursion limit exceeded") {
        return format!("nesting deeper than {MAX_DEPTH} levels");
    }
    if let Some(k) = first.strip_prefix("duplicate mapping key: ") {
        return format!("duplicate key `{k}`");
    }
    first.to_string()
}
