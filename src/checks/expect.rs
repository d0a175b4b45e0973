//! The assertion language of playbooks: a value (equals) or one or more
//! operators (`exists`, `matches`, `contains`, `one_of`, `lt`…), used on JSON
//! paths and headers (`http`), variables (`env`) and rows (`sql`).

use crate::support::dotpath;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};

/// One assertion on a value.
#[derive(Debug, Clone, Default, JsonSchema)]
pub struct Assertion {
    pub equals: Option<serde_json::Value>,
    pub not_equals: Option<serde_json::Value>,
    pub exists: Option<bool>,
    pub matches: Option<String>,
    pub contains: Option<String>,
    pub one_of: Option<Vec<serde_json::Value>>,
    pub lt: Option<f64>,
    pub lte: Option<f64>,
    pub gt: Option<f64>,
    pub gte: Option<f64>,
}

const OPERATORS: &[&str] = &[
    "equals",
    "not_equals",
    "exists",
    "matches",
    "contains",
    "one_of",
    "lt",
    "lte",
    "gt",
    "gte",
];

impl<'de> Deserialize<'de> for Assertion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Assertion, D::Error> {
        use serde::de::Error;
        let v = serde_json::Value::deserialize(d)?;
        let serde_json::Value::Object(m) = v else {
            return Ok(Assertion {
                equals: Some(v),
                ..Default::default()
            });
        };
        let mut a = Assertion::default();
        let num = |k: &str, v: &serde_json::Value| {
            v.as_f64()
                .ok_or_else(|| D::Error::custom(format!("`{k}` expects a number")))
        };
        for (k, v) in m {
            match k.as_str() {
                "equals" => a.equals = Some(v),
                "not_equals" => a.not_equals = Some(v),
                "exists" => {
                    a.exists = Some(
                        v.as_bool()
                            .ok_or_else(|| D::Error::custom("`exists` expects true or false"))?,
                    )
                }
                "matches" => {
                    let s = v.as_str().ok_or_else(|| {
                        D::Error::custom("`matches` expects a regular expression")
                    })?;
                    regex::Regex::new(s).map_err(|e| {
                        D::Error::custom(format!("`matches`: invalid regular expression: {e}"))
                    })?;
                    a.matches = Some(s.to_string())
                }
                "contains" => {
                    a.contains = Some(
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string()),
                    )
                }
                "one_of" => {
                    a.one_of = Some(
                        v.as_array()
                            .cloned()
                            .ok_or_else(|| D::Error::custom("`one_of` expects a list"))?,
                    )
                }
                "lt" => a.lt = Some(num(&k, &v)?),
                "lte" => a.lte = Some(num(&k, &v)?),
                "gt" => a.gt = Some(num(&k, &v)?),
                "gte" => a.gte = Some(num(&k, &v)?),
                other => {
                    return Err(D::Error::custom(format!(
                        "unknown operator `{other}`, expected one of {}",
                        OPERATORS
                            .iter()
                            .map(|o| format!("`{o}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
            }
        }
        Ok(a)
    }
}

fn loose_eq(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value as J;
    match (a, b) {
        (J::Number(x), J::Number(y)) => x.as_f64() == y.as_f64(),
        (J::String(s), other) | (other, J::String(s)) if !matches!(other, J::String(_)) => {
            *s == dotpath::scalar_text(other)
        }
        _ => a == b,
    }
}

impl Assertion {
    /// Checks a value (None: absent). Returns what was expected when it fails.
    pub fn check(&self, v: Option<&serde_json::Value>) -> Result<(), String> {
        if let Some(want) = self.exists
            && want != v.is_some()
        {
            return Err(if want {
                "to exist".into()
            } else {
                "to be absent".into()
            });
        }
        let needs_value = self.equals.is_some()
            || self.not_equals.is_some()
            || self.matches.is_some()
            || self.contains.is_some()
            || self.one_of.is_some()
            || self.lt.is_some()
            || self.lte.is_some()
            || self.gt.is_some()
            || self.gte.is_some();
        let Some(v) = v else {
            return if needs_value {
                Err(self.describe())
            } else {
                Ok(())
            };
        };
        let text = dotpath::scalar_text(v);
        if let Some(e) = &self.equals
            && !loose_eq(v, e)
        {
            return Err(format!("equal to {e}"));
        }
        if let Some(e) = &self.not_equals
            && loose_eq(v, e)
        {
            return Err(format!("not equal to {e}"));
        }
        if let Some(re) = &self.matches
            && !regex::Regex::new(re).is_ok_and(|r| r.is_match(&text))
        {
            return Err(format!("matching /{re}/"));
        }
        if let Some(c) = &self.contains {
            let ok = match v {
                serde_json::Value::Array(items) => {
                    items.iter().any(|i| dotpath::scalar_text(i) == *c)
                }
                _ => text.contains(c.as_str()),
            };
            if !ok {
                return Err(format!("containing {c:?}"));
            }
        }
        if let Some(list) = &self.one_of
            && !list.iter().any(|x| loose_eq(v, x))
        {
            return Err(format!("one of {}", serde_json::Value::Array(list.clone())));
        }
        let n = v.as_f64().or_else(|| text.parse::<f64>().ok());
        for (bound, op, ok) in [
            (self.lt, "<", n.zip(self.lt).map(|(n, b)| n < b)),
            (self.lte, "<=", n.zip(self.lte).map(|(n, b)| n <= b)),
            (self.gt, ">", n.zip(self.gt).map(|(n, b)| n > b)),
            (self.gte, ">=", n.zip(self.gte).map(|(n, b)| n >= b)),
        ] {
            if let Some(b) = bound
                && ok != Some(true)
            {
                return Err(format!("{op} {b}"));
            }
        }
        Ok(())
    }

    fn describe(&self) -> String {
        self.check(Some(&serde_json::Value::Null))
            .err()
            .unwrap_or_else(|| "a value".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn a(v: serde_json::Value) -> Assertion {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn assertions() {
        assert!(a(json!("ok")).check(Some(&json!("ok"))).is_ok());
        assert!(a(json!("ok")).check(Some(&json!("mock"))).is_err());
        assert!(a(json!(200)).check(Some(&json!("200"))).is_ok());
        assert!(a(json!({"exists": true})).check(None).is_err());
        assert!(a(json!({"exists": false})).check(None).is_ok());
        assert!(
            a(json!({"matches": "^c[a-z0-9]+$"}))
                .check(Some(&json!("cmh0jvvdo")))
                .is_ok()
        );
        assert!(a(json!({"lt": 5})).check(Some(&json!(4.5))).is_ok());
        assert!(a(json!({"gte": 5})).check(Some(&json!(4))).is_err());
        assert!(
            a(json!({"one_of": ["healthy", "ok"]}))
                .check(Some(&json!("ok")))
                .is_ok()
        );
        assert!(
            a(json!({"contains": "x"}))
                .check(Some(&json!(["x", "y"])))
                .is_ok()
        );
        let e = serde_json::from_value::<Assertion>(json!({"equal": 1}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown operator `equal`"), "{e}");
    }

    #[test]
    fn what_was_expected() {
        assert_eq!(
            a(json!("ok")).check(Some(&json!("x"))),
            Err("equal to \"ok\"".into())
        );
        assert_eq!(
            a(json!({"exists": true})).check(None),
            Err("to exist".into())
        );
        assert_eq!(a(json!({"gte": 50})).check(None), Err(">= 50".into()));
        assert_eq!(
            a(json!({"gte": 50})).check(Some(&json!("10"))),
            Err(">= 50".into())
        );
        assert_eq!(
            a(json!({"matches": "^a"})).check(Some(&json!("b"))),
            Err("matching /^a/".into())
        );
    }
}
