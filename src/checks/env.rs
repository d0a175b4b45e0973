//! `env`: environment variables of the running backend (read from
//! /proc/PID/environ, because `echo $VAR` in a shell proves nothing about the
//! server), or of chatops itself when no process is named. It also parses
//! DATABASE_URL with Prisma's pool parameters.
//!
//! [`read_env`] observes; [`judge`] holds the variables against the assertions.
//!
//! The environment explains behaviour; it is rarely the behaviour itself. A
//! mismatch fails only where the value is the fault (`severity: fail`, the
//! default: mock mode switched on, a DATABASE_URL naming the wrong
//! database); where it only suggests a behaviour another check observes
//! (`severity: warn`: a rate-limit switch, which the burst judges), it warns.
//! Problems in the database URL's value (invalid, wrong database or host, a
//! pool parameter outside its assertion) always fail.

use super::expect::Assertion;
use super::util::failed;
use super::{Check, Ctx, Observation};
use crate::diagnose::Fault;
use crate::pg::DbUrl;
use crate::probe::process;
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;

pub struct Env;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Whose environment: `{port: 3001}` (the process listening there), `{pid: 1234}` or `{name: "node dist/main"}`.
    /// Omitted: chatops's own environment (the shell's).
    pub process: Option<ProcessSel>,
    /// Assertions by variable name: a value (equals), or `{exists: true}`, `{matches: …}`, `{one_of: […]}`.
    #[serde(default)]
    pub vars: BTreeMap<String, Assertion>,
    /// Parse a PostgreSQL URL variable and check its parts and Prisma pool parameters.
    pub database_url: Option<DbUrlExpect>,
    /// How a variable that is missing or not as asserted counts: `fail`
    /// (default) when the value itself is the fault, `warn` when it only
    /// suggests a behaviour that another check observes.
    #[serde(default)]
    pub severity: Severity,
}

/// How an environment mismatch counts.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    #[default]
    Fail,
    Warn,
}

/// Whether an unset variable satisfies `a`: only an assertion that
/// excludes values and nothing else (`not_equals: mock`).
fn absent_ok(a: &Assertion) -> bool {
    a.not_equals.is_some()
        && a.exists.is_none()
        && a.equals.is_none()
        && a.matches.is_none()
        && a.contains.is_none()
        && a.one_of.is_none()
        && a.lt.is_none()
        && a.lte.is_none()
        && a.gt.is_none()
        && a.gte.is_none()
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProcessSel {
    /// Host the process runs on (default local). Another host's processes
    /// cannot be read: the check then warns instead of failing.
    pub host: Option<String>,
    pub pid: Option<u32>,
    pub port: Option<u16>,
    pub name: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DbUrlExpect {
    /// Variable holding the URL (default DATABASE_URL).
    #[serde(default = "default_var")]
    pub var: String,
    /// Expected database name.
    pub database: Option<String>,
    /// Expected host.
    pub host: Option<String>,
    /// Prisma `connection_limit` assertion, e.g. `{gte: 50}`.
    pub connection_limit: Option<Assertion>,
    /// Prisma `pool_timeout` (seconds) assertion.
    pub pool_timeout: Option<Assertion>,
    /// `connect_timeout` (seconds) assertion.
    pub connect_timeout: Option<Assertion>,
}

fn default_var() -> String {
    "DATABASE_URL".into()
}

/// The environment of a process (or of chatops), with how it was found.
pub struct ProcEnv {
    /// "process 1234 (node dist/main)" or "chatops's own environment".
    pub source: String,
    pub env: BTreeMap<String, String>,
    /// The command a human reruns to see it.
    pub command: String,
    pub pid: Option<u32>,
}

/// Reads the environment `sel` names (None: chatops's own). A process on
/// another host gives a warning; a missing or unreadable one a failure.
pub fn read_env(sel: Option<&ProcessSel>) -> Result<ProcEnv, Box<Observation>> {
    let Some(sel) = sel else {
        return Ok(ProcEnv {
            source: "chatops's own environment (the shell)".into(),
            env: std::env::vars().collect(),
            command: "env".into(),
            pid: None,
        });
    };
    if let Some(host) = sel.host.as_deref().filter(|h| !process::is_local_host(h)) {
        return Err(Box::new(
            Observation::new(
                super::Status::Warn,
                format!(
                    "cannot read the environment of a process on {host}: run chatops on that host to check it"
                ),
            )
            .evidence(format!("the backend runs on {host}, not on this machine")),
        ));
    }
    let (procs, selector) = if let Some(pid) = sel.pid {
        let exists = std::path::Path::new(&format!("/proc/{pid}")).exists();
        let procs = if exists {
            vec![process::Proc {
                pid,
                cmdline: process::cmdline(pid),
            }]
        } else {
            vec![]
        };
        (procs, format!("pid {pid}"))
    } else if let Some(port) = sel.port {
        (
            process::listeners(port),
            format!("the process listening on port {port}"),
        )
    } else if let Some(name) = &sel.name {
        (
            process::find_by_name(name),
            format!("a process named {name:?}"),
        )
    } else {
        return Err(Box::new(Observation::error(
            "`process` needs one of pid, port or name",
        )));
    };
    let Some(proc_) = procs.into_iter().next() else {
        return Err(Box::new(Observation::fail(
            format!("no process found: {selector}"),
            Fault::ProcessNotFound { selector },
        )));
    };
    match process::environ(proc_.pid) {
        Ok(vars) => Ok(ProcEnv {
            source: format!("process {} ({})", proc_.pid, proc_.cmdline),
            env: vars.into_iter().collect(),
            command: format!("tr '\\0' '\\n' < /proc/{}/environ", proc_.pid),
            pid: Some(proc_.pid),
        }),
        Err(e) => Err(Box::new(Observation::fail(
            format!("cannot read the environment of pid {}: {e}", proc_.pid),
            Fault::EnvUnreadable {
                pid: proc_.pid,
                message: e.to_string(),
            },
        ))),
    }
}

impl Check for Env {
    const KIND: &'static str = "env";
    const HELP: &'static str = "environment of the running backend process (/proc/PID/environ) or of chatops; DATABASE_URL and Prisma pool parameters";
    type Params = Params;

    async fn run(p: Params, _ctx: Ctx) -> Observation {
        match read_env(p.process.as_ref()) {
            Ok(pe) => judge(&p, pe),
            Err(o) => *o,
        }
    }
}

/// Judges an environment: every variable assertion (the first failure is
/// the root cause), then the database URL and its pool parameters.
pub fn judge(p: &Params, pe: ProcEnv) -> Observation {
    let ProcEnv {
        source,
        env,
        command,
        pid,
    } = pe;
    let mut o = Observation::pass(format!(
        "{} variable(s) as expected in {source}",
        p.vars.len() + usize::from(p.database_url.is_some())
    ))
    .command(command)
    .evidence(format!("source: {source}"));
    let mut wrong = 0usize;
    for (name, a) in &p.vars {
        let value = env.get(name).map(|s| serde_json::Value::String(s.clone()));
        let verdict = match &value {
            None if absent_ok(a) => Ok(()),
            v => a.check(v.as_ref()),
        };
        let Err(expected) = verdict else {
            o.evidence.push(format!(
                "✓ {name}={}",
                env.get(name).map(String::as_str).unwrap_or("(unset)")
            ));
            continue;
        };
        o.evidence.push(format!("✗ {name}: expected {expected}"));
        wrong += 1;
        // Every variable is reported; the first one is the finding's root cause.
        if o.fault.is_none() {
            let (summary, fault) = match env.get(name) {
                None => (
                    format!("{name} is not set in {source}"),
                    Fault::EnvMissing {
                        name: name.clone(),
                        source: source.clone(),
                    },
                ),
                Some(actual) => (
                    format!("{name}={actual:?}, expected {expected}"),
                    Fault::EnvMismatch {
                        name: name.clone(),
                        source: source.clone(),
                        expected,
                        actual: actual.clone(),
                    },
                ),
            };
            o = failed(o, summary, fault);
            o = soften(o, p.severity);
        }
    }
    if wrong > 0 {
        if wrong > 1 {
            o.summary = format!("{} (and {} more variable(s) wrong)", o.summary, wrong - 1);
        }
        return o;
    }
    let captured: serde_json::Map<String, serde_json::Value> = env
        .iter()
        .filter(|(k, _)| p.vars.contains_key(*k))
        .map(|(k, v)| (k.clone(), v.clone().into()))
        .collect();
    o = o.capture("vars", serde_json::Value::Object(captured));
    if let Some(d) = &p.database_url {
        let u = match parse_database_url(d, env.get(&d.var), &source) {
            Ok(u) => u,
            Err(problem) => {
                let (summary, fault) = *problem;
                let missing = matches!(fault, Fault::EnvMissing { .. });
                let o = failed(o, summary, fault);
                // A missing variable explains or warns; an invalid one is the fault.
                return if missing { soften(o, p.severity) } else { o };
            }
        };
        o = show_database_url(o, d, &u);
        if let Some((summary, fault)) = url_problem(d, &u) {
            o = failed(o, summary, fault);
        }
    }
    if let Some(pid) = pid {
        o = o.capture("pid", pid);
    }
    o
}

/// A failed observation as a warning, when the check says mismatches only warn.
fn soften(mut o: Observation, severity: Severity) -> Observation {
    if severity == Severity::Warn && o.status == super::Status::Fail {
        o.status = super::Status::Warn;
    }
    o
}

/// The database URL variable, parsed.
fn parse_database_url(
    d: &DbUrlExpect,
    raw: Option<&String>,
    source: &str,
) -> Result<DbUrl, Box<(String, Fault)>> {
    let Some(raw) = raw else {
        return Err(Box::new((
            format!("{} is not set in {source}", d.var),
            Fault::EnvMissing {
                name: d.var.clone(),
                source: source.to_string(),
            },
        )));
    };
    DbUrl::parse(raw).map_err(|e| {
        Box::new((
            format!("{} is not a valid PostgreSQL URL: {e}", d.var),
            Fault::DbUrlInvalid {
                name: d.var.clone(),
                message: e.to_string(),
            },
        ))
    })
}

/// The URL's parts and Prisma pool parameters, as evidence and captures.
fn show_database_url(o: Observation, d: &DbUrlExpect, u: &DbUrl) -> Observation {
    let prisma = u.prisma();
    let o = o
        .evidence(format!(
            "{} → host {}:{}, database {}, user {}",
            d.var, u.host, u.port, u.database, u.user
        ))
        .evidence(format!(
            "Prisma pool: connection_limit={} pool_timeout={} connect_timeout={}",
            prisma["connection_limit"].as_deref().unwrap_or("(default)"),
            prisma["pool_timeout"].as_deref().unwrap_or("(default 10)"),
            prisma["connect_timeout"]
                .as_deref()
                .unwrap_or("(default 5)")
        ));
    let mut url_caps = serde_json::Map::new();
    url_caps.insert("host".into(), u.host.clone().into());
    url_caps.insert("port".into(), u.port.into());
    url_caps.insert("database".into(), u.database.clone().into());
    url_caps.insert("user".into(), u.user.clone().into());
    for (k, v) in &prisma {
        if let Some(v) = v {
            let v = v
                .parse::<i64>()
                .map(serde_json::Value::from)
                .unwrap_or_else(|_| v.clone().into());
            url_caps.insert(k.to_string(), v);
        }
    }
    o.capture("database_url", serde_json::Value::Object(url_caps))
}

/// The first part of the URL that is not as expected.
fn url_problem(d: &DbUrlExpect, u: &DbUrl) -> Option<(String, Fault)> {
    let param = |param: &str, expected: String, actual: Option<String>| Fault::DbUrlParam {
        name: d.var.clone(),
        param: param.into(),
        expected,
        actual,
    };
    if let Some(db) = &d.database
        && &u.database != db
    {
        return Some((
            format!("{} names database `{}`, expected `{db}`", d.var, u.database),
            param("database", db.clone(), Some(u.database.clone())),
        ));
    }
    if let Some(h) = &d.host
        && &u.host != h
    {
        return Some((
            format!("{} points at host `{}`, expected `{h}`", d.var, u.host),
            param("host", h.clone(), Some(u.host.clone())),
        ));
    }
    for (name, a) in [
        ("connection_limit", &d.connection_limit),
        ("pool_timeout", &d.pool_timeout),
        ("connect_timeout", &d.connect_timeout),
    ] {
        let Some(a) = a else { continue };
        let actual = u.param(name);
        if let Err(expected) = a.check(
            actual
                .map(|s| serde_json::Value::String(s.to_string()))
                .as_ref(),
        ) {
            return Some((
                match actual {
                    Some(v) => format!("{} has {name}={v}, expected {expected}", d.var),
                    None => format!("{} has no {name} (expected {expected})", d.var),
                },
                param(name, expected, actual.map(str::to_string)),
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Status;

    fn params(v: serde_json::Value) -> Params {
        serde_json::from_value(v).unwrap()
    }

    fn env(vars: &[(&str, &str)]) -> ProcEnv {
        ProcEnv {
            source: "process 42 (node dist/main)".into(),
            env: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            command: "tr '\\0' '\\n' < /proc/42/environ".into(),
            pid: Some(42),
        }
    }

    const URL: &str = "postgresql://chat:pw@127.0.0.1:5432/chat_db?connection_limit=10";

    #[test]
    fn matching_variables_pass_with_captures() {
        let p = params(serde_json::json!({
            "vars": {"DISABLE_RATE_LIMIT": "true"},
            "database_url": {"database": "chat_db", "connection_limit": {"gte": 5}},
        }));
        let o = judge(
            &p,
            env(&[("DISABLE_RATE_LIMIT", "true"), ("DATABASE_URL", URL)]),
        );
        assert_eq!(o.status, Status::Pass, "{o:?}");
        assert_eq!(
            o.summary,
            "2 variable(s) as expected in process 42 (node dist/main)"
        );
        assert_eq!(
            o.evidence,
            [
                "source: process 42 (node dist/main)",
                "✓ DISABLE_RATE_LIMIT=true",
                "DATABASE_URL → host 127.0.0.1:5432, database chat_db, user chat",
                "Prisma pool: connection_limit=10 pool_timeout=(default 10) connect_timeout=(default 5)",
            ]
        );
        assert_eq!(
            o.captures["database_url"]["connection_limit"],
            serde_json::json!(10)
        );
        assert_eq!(o.captures["pid"], serde_json::json!(42));
    }

    #[test]
    fn every_wrong_variable_is_listed_the_first_is_the_cause() {
        let p = params(serde_json::json!({
            "vars": {"A": "1", "B": {"exists": true}, "C": "3"},
        }));
        let o = judge(&p, env(&[("A", "2"), ("C", "3")]));
        assert_eq!(o.status, Status::Fail);
        assert_eq!(
            o.summary,
            "A=\"2\", expected equal to \"1\" (and 1 more variable(s) wrong)"
        );
        assert!(o.evidence.contains(&"✗ B: expected to exist".to_string()));
        assert!(o.evidence.contains(&"✓ C=3".to_string()));
        assert!(matches!(&o.fault, Some(Fault::EnvMismatch { name, .. }) if name == "A"));
        assert!(o.captures.get("pid").is_none());
        let p = params(serde_json::json!({"vars": {"B": {"exists": true}}}));
        let o = judge(&p, env(&[]));
        assert_eq!(o.summary, "B is not set in process 42 (node dist/main)");
        assert!(matches!(o.fault, Some(Fault::EnvMissing { .. })));
    }

    #[test]
    fn a_warning_severity_warns_but_the_urls_value_still_fails() {
        let p = params(serde_json::json!({
            "vars": {"DISABLE_RATE_LIMIT": "true"},
            "severity": "warn",
        }));
        let o = judge(&p, env(&[("DISABLE_RATE_LIMIT", "1")]));
        assert_eq!(o.status, Status::Warn, "{o:?}");
        assert_eq!(
            o.summary,
            "DISABLE_RATE_LIMIT=\"1\", expected equal to \"true\""
        );
        assert!(matches!(o.fault, Some(Fault::EnvMismatch { .. })));
        let p = params(serde_json::json!({
            "database_url": {"database": "chat"},
            "severity": "warn",
        }));
        assert_eq!(judge(&p, env(&[])).status, Status::Warn);
        let o = judge(&p, env(&[("DATABASE_URL", URL)]));
        assert_eq!(o.status, Status::Fail, "the wrong database is the fault");
    }

    #[test]
    fn an_unset_variable_satisfies_not_equals() {
        // The seed's backend runs against the database when
        // PRISMA_CLIENT_MODE is unset and DATABASE_URL is there.
        let p = params(serde_json::json!({
            "vars": {"PRISMA_CLIENT_MODE": {"not_equals": "mock"}},
        }));
        assert_eq!(judge(&p, env(&[])).status, Status::Pass);
        let o = judge(&p, env(&[("PRISMA_CLIENT_MODE", "mock")]));
        assert_eq!(o.status, Status::Fail);
        let p = params(serde_json::json!({"vars": {"A": {"equals": "1"}}}));
        assert_eq!(judge(&p, env(&[])).status, Status::Fail);
    }

    #[test]
    fn database_url_problems() {
        let p = params(serde_json::json!({"database_url": {}}));
        let o = judge(&p, env(&[]));
        assert_eq!(
            o.summary,
            "DATABASE_URL is not set in process 42 (node dist/main)"
        );
        let o = judge(&p, env(&[("DATABASE_URL", "mysql://x")]));
        assert!(
            o.summary
                .starts_with("DATABASE_URL is not a valid PostgreSQL URL: "),
            "{}",
            o.summary
        );
        assert!(matches!(o.fault, Some(Fault::DbUrlInvalid { .. })));
        let p = params(serde_json::json!({"database_url": {"database": "chat"}}));
        let o = judge(&p, env(&[("DATABASE_URL", URL)]));
        assert_eq!(
            o.summary,
            "DATABASE_URL names database `chat_db`, expected `chat`"
        );
        assert_eq!(o.captures["pid"], serde_json::json!(42));
        let p = params(serde_json::json!({"database_url": {"pool_timeout": {"gte": 20}}}));
        let o = judge(&p, env(&[("DATABASE_URL", URL)]));
        assert_eq!(
            o.summary,
            "DATABASE_URL has no pool_timeout (expected >= 20)"
        );
        let p = params(serde_json::json!({"database_url": {"connection_limit": {"gte": 50}}}));
        let o = judge(&p, env(&[("DATABASE_URL", URL)]));
        assert_eq!(
            o.summary,
            "DATABASE_URL has connection_limit=10, expected >= 50"
        );
        assert!(
            matches!(&o.fault, Some(Fault::DbUrlParam { param, .. }) if param == "connection_limit")
        );
    }
}
