//! `${…}` interpolation.
//!
//! Namespaces: `env.NAME` (with `:-default`), `vars.NAME`, `target.NAME`, and
//! `checks.ID.PATH` for values captured by earlier checks. `$${` writes a
//! literal `${`. The first three are resolved when the playbook loads; check
//! captures are resolved just before the check that uses them runs.

use super::kind::ParamError;
use std::collections::BTreeMap;

/// What a `${…}` reference names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ref {
    Env {
        name: String,
        default: Option<String>,
    },
    Var {
        name: String,
        default: Option<String>,
    },
    Target(String),
    Check {
        id: String,
        path: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Lit(String),
    Ref(Ref, String),
}

/// Splits a string into literal text and references. Errors describe bad syntax.
pub fn parse(s: &str) -> Result<Vec<Piece>, String> {
    let mut out = Vec::new();
    let mut lit = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        lit.push_str(&rest[..i]);
        let after = &rest[i..];
        if let Some(r) = after.strip_prefix("$${") {
            lit.push_str("${");
            rest = r;
        } else if let Some(body_start) = after.strip_prefix("${") {
            let Some(end) = closing_brace(body_start) else {
                return Err(format!("unclosed `${{` in {s:?}"));
            };
            let body = &body_start[..end];
            if !lit.is_empty() {
                out.push(Piece::Lit(std::mem::take(&mut lit)));
            }
            out.push(Piece::Ref(parse_ref(body)?, body.to_string()));
            rest = &body_start[end + 1..];
        } else {
            lit.push('$');
            rest = &after[1..];
        }
    }
    lit.push_str(rest);
    if !lit.is_empty() {
        out.push(Piece::Lit(lit));
    }
    Ok(out)
}

/// Index of the `}` closing a reference, allowing `${…}` nested in a default.
fn closing_brace(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 2;
                continue;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

fn parse_ref(body: &str) -> Result<Ref, String> {
    let body = body.trim();
    let (ns, name) = body.split_once('.').ok_or_else(|| {
        format!(
            "`${{{body}}}` needs a namespace: env.NAME, vars.NAME, target.NAME or checks.ID.FIELD"
        )
    })?;
    let valid_name = |n: &str| {
        !n.is_empty()
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    match ns {
        "env" => {
            let (name, default) = match name.split_once(":-") {
                Some((n, d)) => (n, Some(d.to_string())),
                None => (name, None),
            };
            if !valid_name(name) {
                return Err(format!(
                    "`${{{body}}}`: `{name}` is not a valid environment variable name"
                ));
            }
            Ok(Ref::Env {
                name: name.to_string(),
                default,
            })
        }
        "vars" | "var" => {
            let (name, default) = match name.split_once(":-") {
                Some((n, d)) => (n, Some(d.to_string())),
                None => (name, None),
            };
            if !valid_name(name) {
                return Err(format!(
                    "`${{{body}}}`: `{name}` is not a valid variable name"
                ));
            }
            Ok(Ref::Var {
                name: name.to_string(),
                default,
            })
        }
        "target" => {
            if !valid_name(name) {
                return Err(format!(
                    "`${{{body}}}`: `{name}` is not a valid target field"
                ));
            }
            Ok(Ref::Target(name.to_string()))
        }
        "checks" | "check" => {
            let (id, path) = name
                .split_once('.')
                .ok_or_else(|| format!("`${{{body}}}` needs a field: checks.ID.FIELD"))?;
            Ok(Ref::Check {
                id: id.to_string(),
                path: path.to_string(),
            })
        }
        other => {
            let hint = super::error::nearest(other, ["env", "vars", "target", "checks"]);
            Err(match hint {
                Some(h) => {
                    format!("unknown namespace `{other}` in `${{{body}}}` (did you mean `{h}`?)")
                }
                None => format!(
                    "unknown namespace `{other}` in `${{{body}}}`: use env, vars, target or checks"
                ),
            })
        }
    }
}

/// Values visible to interpolation at load time.
pub struct Scope<'a> {
    pub env: &'a (dyn Fn(&str) -> Option<String> + Sync),
    pub vars: &'a BTreeMap<String, String>,
    pub target: &'a BTreeMap<String, String>,
    /// Whether `${checks.…}` may be left in place (true when loading) or must
    /// be resolved (at run time, via `captures`).
    pub captures: Option<&'a BTreeMap<String, serde_json::Value>>,
}

/// Result of expanding a string: either fully resolved, or (at load time)
/// left as is because it waits for captured values.
pub fn expand(s: &str, scope: &Scope) -> Result<String, String> {
    let pieces = parse(s)?;
    let mut out = String::new();
    for p in pieces {
        match p {
            Piece::Lit(l) => out.push_str(&l),
            Piece::Ref(r, raw) => match r {
                Ref::Env { name, default } => match (scope.env)(&name) {
                    Some(v) if !(v.is_empty() && default.is_some()) => out.push_str(&v),
                    _ => match default {
                        Some(d) => out.push_str(&expand(&d, scope)?),
                        None => {
                            return Err(format!(
                                "environment variable `{name}` is not set (used as `${{{raw}}}`; give a default with `${{env.{name}:-value}}`)"
                            ));
                        }
                    },
                },
                Ref::Var { name, default } => match (scope.vars.get(&name), default) {
                    (Some(v), _) => out.push_str(v),
                    (None, Some(d)) => out.push_str(&expand(&d, scope)?),
                    (None, None) => {
                        let hint =
                            super::error::nearest(&name, scope.vars.keys().map(String::as_str));
                        return Err(match hint {
                            Some(h) => format!(
                                "undefined variable `vars.{name}` (did you mean `vars.{h}`?)"
                            ),
                            None => format!(
                                "undefined variable `vars.{name}`: define it under `vars:` or pass --var {name}=VALUE"
                            ),
                        });
                    }
                },
                Ref::Target(name) => match scope.target.get(&name) {
                    Some(v) => out.push_str(v),
                    None => {
                        let hint =
                            super::error::nearest(&name, scope.target.keys().map(String::as_str));
                        return Err(match hint {
                            Some(h) => format!(
                                "undefined target field `target.{name}` (did you mean `target.{h}`?)"
                            ),
                            None => format!(
                                "undefined target field `target.{name}`: set it under `target:`"
                            ),
                        });
                    }
                },
                Ref::Check { id, path } => match scope.captures {
                    None => {
                        out.push_str("${");
                        out.push_str(&raw);
                        out.push('}');
                    }
                    Some(caps) => {
                        let v = caps
                            .get(&id)
                            .and_then(|c| crate::support::dotpath::lookup(c, &path))
                            .ok_or_else(|| {
                                format!("`${{{raw}}}`: check `{id}` captured no value `{path}`")
                            })?;
                        out.push_str(&crate::support::dotpath::scalar_text(v));
                    }
                },
            },
        }
    }
    Ok(out)
}

/// Every `${checks.ID…}` a string refers to.
pub fn check_refs(s: &str) -> Vec<String> {
    parse(s)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| match p {
            Piece::Ref(Ref::Check { id, .. }, _) => Some(id),
            _ => None,
        })
        .collect()
}

/// True when the whole string is one reference (its value may then keep a
/// number's or boolean's type).
pub fn is_single_ref(s: &str) -> bool {
    matches!(parse(s).as_deref(), Ok([Piece::Ref(..)]))
}

/// Expands every string inside a JSON value. A string that was a single
/// reference and now reads as a number or boolean becomes one, so
/// `port: ${vars.port}` stays a number.
pub fn expand_json(v: &mut serde_json::Value, scope: &Scope, path: &str) -> Result<(), ParamError> {
    use serde_json::Value as J;
    match v {
        J::String(s) => {
            if !s.contains('$') {
                return Ok(());
            }
            let single = is_single_ref(s);
            let e = expand(s, scope).map_err(|message| ParamError {
                path: path.to_string(),
                message,
            })?;
            *v = if single && !e.contains("${") {
                retype(e)
            } else {
                J::String(e)
            };
            Ok(())
        }
        J::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                expand_json(item, scope, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        J::Object(m) => {
            for (k, item) in m.iter_mut() {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                expand_json(item, scope, &p)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn retype(s: String) -> serde_json::Value {
    if let Ok(i) = s.parse::<i64>() {
        return i.into();
    }
    if s.contains('.')
        && let Ok(f) = s.parse::<f64>()
        && let Some(n) = serde_json::Number::from_f64(f)
    {
        return serde_json::Value::Number(n);
    }
    match s.as_str() {
        "true" => true.into(),
        "false" => false.into(),
        _ => serde_json::Value::String(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope<'a>(
        env: &'a (dyn Fn(&str) -> Option<String> + Sync),
        vars: &'a BTreeMap<String, String>,
        target: &'a BTreeMap<String, String>,
    ) -> Scope<'a> {
        Scope {
            env,
            vars,
            target,
            captures: None,
        }
    }

    #[test]
    fn expands_all_namespaces() {
        let env = |n: &str| (n == "HOME_X").then(|| "/h".to_string());
        let vars = BTreeMap::from([("port".to_string(), "3001".to_string())]);
        let target = BTreeMap::from([("base_url".to_string(), "http://x".to_string())]);
        let s = scope(&env, &vars, &target);
        assert_eq!(expand("${env.HOME_X}/a", &s).unwrap(), "/h/a");
        assert_eq!(expand("${env.NOPE:-d}", &s).unwrap(), "d");
        assert_eq!(expand("${env.NOPE:-${vars.port}}", &s).unwrap(), "3001");
        assert_eq!(expand("${vars.port:-9}", &s).unwrap(), "3001");
        assert_eq!(expand("${vars.nope:-a|b c}", &s).unwrap(), "a|b c");
        assert_eq!(
            expand("${target.base_url}:${vars.port}", &s).unwrap(),
            "http://x:3001"
        );
        assert_eq!(
            expand("cost $5 $${literal}", &s).unwrap(),
            "cost $5 ${literal}"
        );
        assert_eq!(
            expand("${checks.send.message_id}", &s).unwrap(),
            "${checks.send.message_id}"
        );
    }

    #[test]
    fn undefined_names_are_errors_with_hints() {
        let env = |_: &str| None;
        let vars = BTreeMap::from([("port".to_string(), "1".to_string())]);
        let target = BTreeMap::new();
        let s = scope(&env, &vars, &target);
        let e = expand("${vars.prot}", &s).unwrap_err();
        assert!(e.contains("vars.prot") && e.contains("vars.port"), "{e}");
        let e = expand("${env.MISSING_ONE}", &s).unwrap_err();
        assert!(e.contains("MISSING_ONE"), "{e}");
        assert!(
            expand("${varz.x}", &s)
                .unwrap_err()
                .contains("did you mean `vars`")
        );
        assert!(expand("${vars.x", &s).unwrap_err().contains("unclosed"));
    }

    #[test]
    fn single_reference_keeps_number_type() {
        let env = |_: &str| None;
        let vars = BTreeMap::from([("port".to_string(), "3001".to_string())]);
        let target = BTreeMap::new();
        let s = scope(&env, &vars, &target);
        let mut v = serde_json::json!({"port": "${vars.port}", "url": "h:${vars.port}"});
        expand_json(&mut v, &s, "").unwrap();
        assert_eq!(v, serde_json::json!({"port": 3001, "url": "h:3001"}));
    }
}
