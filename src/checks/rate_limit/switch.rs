//! The limiters' off switch in the backend's environment: evidence that
//! explains what the burst saw, never the judgement itself (a backend whose
//! switch has another name, or that has no limiter at all, is judged by
//! what it does).

use crate::checks::env::{ProcessSel, read_env};
use crate::diagnose::EnvState;
use std::collections::BTreeMap;

/// Whether the backend process's environment disables the limiters (and
/// variables named like the switch), and whether chatops's own shell does.
pub fn env_state(var: &str, sel: Option<&ProcessSel>) -> EnvState {
    let in_shell = std::env::var(var).ok();
    let Some(sel) = sel else {
        return EnvState::Unknown { in_shell };
    };
    match read_env(Some(sel)) {
        Ok(e) => EnvState::Process {
            source: e.source,
            value: e.env.get(var).cloned(),
            in_shell,
            similar: similar(&e.env, var),
        },
        Err(_) => EnvState::Unknown { in_shell },
    }
}

/// Variables named like `var` (`DISABLE_RATELIMIT`, `RATE_LIMIT_DISABLED`,
/// `THROTTLE_DISABLED`…), as `NAME=VALUE`: a misspelt or other switch.
pub fn similar(env: &BTreeMap<String, String>, var: &str) -> Vec<String> {
    let norm = |s: &str| s.to_ascii_uppercase().replace(['_', '-'], "");
    let want = norm(var);
    env.iter()
        .filter(|(k, _)| k.as_str() != var)
        .filter(|(k, _)| {
            let n = norm(k);
            n == want
                || strsim::levenshtein(&n, &want) <= 2
                || n.contains("RATELIMIT")
                || n.contains("THROTTL")
        })
        .take(5)
        .map(|(k, v)| format!("{k}={v}"))
        .collect()
}

/// The evidence line when the burst met no limiting: what the environment
/// says, and that the behaviour decided.
pub fn explain_unlimited(env: &EnvState, var: &str, value: &str) -> String {
    match env {
        EnvState::Process {
            source,
            value: Some(v),
            ..
        } if v == value => format!("environment: {var}={v} in {source}, as the burst confirms"),
        EnvState::Process {
            source,
            value,
            similar,
            ..
        } => {
            let state = match value {
                Some(v) => format!("{var}={v:?} in {source}"),
                None => format!("{var} is not set in {source}"),
            };
            let other = if similar.is_empty() {
                String::new()
            } else {
                format!(" ({} is)", similar.join(", "))
            };
            format!(
                "environment: {state}{other}, yet nothing was limited: this backend has no limiter on this path, or its switch has another name; what it did decides"
            )
        }
        EnvState::Unknown { .. } => {
            "environment: the backend process's was not read; judged from its answers alone"
                .to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn misspelt_and_other_switches_are_found() {
        let e = env(&[
            ("DISABLE_RATELIMIT", "true"),
            ("RATE_LIMIT_DISABLED", "1"),
            ("PATH", "/usr/bin"),
            ("DISABLE_RATE_LIMIT", "true"),
        ]);
        assert_eq!(
            similar(&e, "DISABLE_RATE_LIMIT"),
            ["DISABLE_RATELIMIT=true", "RATE_LIMIT_DISABLED=1"]
        );
        assert!(similar(&env(&[("PATH", "/bin")]), "DISABLE_RATE_LIMIT").is_empty());
    }

    #[test]
    fn unlimited_bursts_are_explained_not_judged() {
        let p = |value: Option<&str>, similar: Vec<String>| EnvState::Process {
            source: "process 7 (node)".into(),
            value: value.map(str::to_string),
            in_shell: None,
            similar,
        };
        let t = |e: &EnvState| explain_unlimited(e, "DISABLE_RATE_LIMIT", "true");
        assert_eq!(
            t(&p(Some("true"), vec![])),
            "environment: DISABLE_RATE_LIMIT=true in process 7 (node), as the burst confirms"
        );
        let s = t(&p(None, vec![]));
        assert!(
            s.starts_with("environment: DISABLE_RATE_LIMIT is not set in process 7 (node), yet nothing was limited"),
            "{s}"
        );
        let s = t(&p(None, vec!["RATE_LIMIT_OFF=1".into()]));
        assert!(s.contains("(RATE_LIMIT_OFF=1 is)"), "{s}");
        assert!(t(&EnvState::Unknown { in_shell: None }).contains("answers alone"));
    }
}
