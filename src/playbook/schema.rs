//! `chatops schema`: a JSON Schema of the playbook format, built from the
//! check registry so it never drifts from what the loader accepts.

use super::KindSet;
use serde_json::{Value, json};

/// The schema of a playbook whose checks may use the kinds of `kinds`.
pub fn playbook_schema(kinds: &dyn KindSet) -> Value {
    let mut defs = serde_json::Map::new();
    let mut variants = Vec::new();
    for k in kinds.kind_schemas() {
        let mut s = k.schema();
        if let Some(d) = s
            .as_object_mut()
            .and_then(|o| o.remove("$defs"))
            .and_then(|d| d.as_object().cloned())
        {
            for (name, def) in d {
                defs.insert(name, def);
            }
        }
        let obj = s.as_object_mut();
        let mut props = obj
            .as_ref()
            .and_then(|o| o.get("properties"))
            .cloned()
            .unwrap_or(json!({}));
        let required = obj
            .as_ref()
            .and_then(|o| o.get("required"))
            .cloned()
            .unwrap_or(json!([]));
        if let Some(p) = props.as_object_mut() {
            for (name, common) in common_props() {
                p.insert(name, common);
            }
            p.insert(
                "kind".into(),
                json!({"const": k.name(), "description": k.help()}),
            );
        }
        let mut req: Vec<Value> = required.as_array().cloned().unwrap_or_default();
        req.push(json!("id"));
        req.push(json!("kind"));
        variants.push(json!({
            "title": k.name(),
            "description": k.help(),
            "type": "object",
            "properties": props,
            "required": req,
            "additionalProperties": false,
            "if": {"properties": {"kind": {"const": k.name()}}, "required": ["kind"]},
        }));
    }
    let include = json!({
        "title": "include",
        "description": "A reusable check from a file (checks/*.yaml), with any field overridden here",
        "type": "object",
        "properties": {"include": {"type": "string"}},
        "required": ["include"],
    });
    let check_rules: Vec<Value> = variants
        .iter()
        .map(|v| {
            let mut then = v.clone();
            if let Some(o) = then.as_object_mut() {
                o.remove("if");
            }
            json!({"if": v["if"], "then": then})
        })
        .collect();
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://chatops.dev/schema/playbook.json",
        "title": "chatops playbook",
        "type": "object",
        "additionalProperties": false,
        "required": ["phases"],
        "properties": {
            "name": {"type": "string"},
            "description": {"type": "string"},
            "target": {"type": "object", "description": "base_url, database_url and any other fields, used as ${target.NAME}", "additionalProperties": {"type": ["string", "number", "boolean"]}},
            "vars": {"type": "object", "description": "values used as ${vars.NAME}; --var NAME=VALUE overrides", "additionalProperties": {"type": ["string", "number", "boolean"]}},
            "settings": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "concurrency": {"type": "integer", "minimum": 1, "maximum": 256},
                    "deadline": {"$ref": "#/$defs/Duration"},
                    "timeout": {"$ref": "#/$defs/Duration"},
                    "allow_remote": {"type": "boolean"}
                }
            },
            "phases": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string"},
                        "description": {"type": "string"},
                        "checks": {"type": "array", "items": {"anyOf": [include, {"type": "object", "required": ["id", "kind"], "properties": {"kind": {"enum": kinds.kind_names()}}, "allOf": check_rules}]}}
                    }
                }
            }
        },
        "$defs": Value::Object({
            let mut d = defs;
            d.insert("Duration".into(), json!({"description": "500ms, 5s, 2m, 1h, or a number of seconds", "type": ["string", "number"]}));
            d
        })
    })
}

fn common_props() -> Vec<(String, Value)> {
    vec![
        (
            "id".into(),
            json!({"type": "string", "pattern": "^[A-Za-z0-9_-]+$", "description": "Unique id; other checks use it in `needs` and `${checks.ID.…}`"}),
        ),
        ("title".into(), json!({"type": "string"})),
        ("description".into(), json!({"type": "string"})),
        (
            "needs".into(),
            json!({"description": "Checks that must pass first", "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}),
        ),
        ("timeout".into(), json!({"$ref": "#/$defs/Duration"})),
        (
            "retries".into(),
            json!({"type": "integer", "minimum": 0, "maximum": 1000}),
        ),
        ("interval".into(), json!({"$ref": "#/$defs/Duration"})),
        (
            "root_cause".into(),
            json!({"type": "string", "description": "Overrides the diagnosed root cause when this check fails"}),
        ),
        (
            "remedy".into(),
            json!({"type": "string", "description": "Overrides the diagnosed remedy when this check fails"}),
        ),
        ("include".into(), json!({"type": "string"})),
    ]
}
