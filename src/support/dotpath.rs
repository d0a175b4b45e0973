//! Dotted paths into JSON values: `database.overall`, `data.messages[0].id`
//! (or `data.messages.0.id`). A key that itself contains dots can be quoted
//! with brackets: `headers["x.y"]`.

use serde_json::Value;

/// Splits a path into segments.
pub fn segments(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '.' => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            '[' => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                let quoted = matches!(chars.peek(), Some('"') | Some('\''));
                if quoted {
                    chars.next();
                }
                for d in chars.by_ref() {
                    if d == ']' {
                        break;
                    }
                    cur.push(d);
                }
                if quoted {
                    cur.pop();
                }
                out.push(std::mem::take(&mut cur));
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Looks a path up; `None` when any step is missing.
pub fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    for seg in segments(path) {
        cur = match cur {
            Value::Object(m) => m.get(&seg)?,
            Value::Array(a) => {
                let i: i64 = seg.parse().ok()?;
                let idx = if i < 0 {
                    a.len().checked_sub(i.unsigned_abs() as usize)?
                } else {
                    i as usize
                };
                a.get(idx)?
            }
            _ => return None,
        };
    }
    Some(cur)
}

/// A value as plain text: strings without quotes, others as JSON.
pub fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths() {
        let v = json!({"data": {"messages": [{"id": "a"}, {"id": "b"}]}, "x.y": 1});
        assert_eq!(lookup(&v, "data.messages[0].id"), Some(&json!("a")));
        assert_eq!(lookup(&v, "data.messages.1.id"), Some(&json!("b")));
        assert_eq!(lookup(&v, "data.messages[-1].id"), Some(&json!("b")));
        assert_eq!(lookup(&v, "[\"x.y\"]"), Some(&json!(1)));
        assert_eq!(lookup(&v, "data.nope"), None);
        assert_eq!(lookup(&v, ""), Some(&v));
    }
}
