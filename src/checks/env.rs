//! `env`: environment variables of the running backend (read from
//! /proc/PID/environ, because `echo $VAR` in a shell proves nothing about the
//! server), or of chatops itself when no process is named. It also parses
//! DATABASE_URL with Prisma's pool parameters.

use super::expect::Assertion;
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
        let ProcEnv {
            source,
            env,
            command: cmd,
            pid,
        } = match read_env(p.process.as_ref()) {
            Ok(e) => e,
            Err(o) => return *o,
        };
        let mut o = Observation::pass(format!(
            "{} variable(s) as expected in {source}",
            p.vars.len() + usize::from(p.database_url.is_some())
        ))
        .command(cmd)
        .evidence(format!("source: {source}"));
        let mut failed = 0usize;
        for (name, a) in &p.vars {
            let v = env.get(name).map(|s| serde_json::Value::String(s.clone()));
            match a.check(v.as_ref()) {
                Ok(()) => {
                    o = o.evidence(format!(
                        "✓ {name}={}",
                        env.get(name).map(String::as_str).unwrap_or("(unset)")
                    ))
                }
                Err(expected) => {
                    let fault = match env.get(name) {
                        None => Fault::EnvMissing {
                            name: name.clone(),
                            source: source.clone(),
                        },
                        Some(actual) => Fault::EnvMismatch {
                            name: name.clone(),
                            source: source.clone(),
                            expected: expected.clone(),
                            actual: actual.clone(),
                        },
                    };
                    let summary = match env.get(name) {
                        None => format!("{name} is not set in {source}"),
                        Some(actual) => format!("{name}={actual:?}, expected {expected}"),
                    };
                    o.evidence.push(format!("✗ {name}: expected {expected}"));
                    failed += 1;
                    // Every variable is reported; the first one is the
                    // finding's root cause.
                    if o.fault.is_none() {
                        o.status = super::Status::Fail;
                        o.summary = summary;
                        o.fault = Some(fault);
                    }
                }
            }
        }
        if failed > 0 {
            if failed > 1 {
                o.summary = format!("{} (and {} more variable(s) wrong)", o.summary, failed - 1);
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
            let Some(raw) = env.get(&d.var) else {
                o.status = super::Status::Fail;
                o.summary = format!("{} is not set in {source}", d.var);
                o.fault = Some(Fault::EnvMissing {
                    name: d.var.clone(),
                    source,
                });
                return o;
            };
            let u = match DbUrl::parse(raw) {
                Ok(u) => u,
                Err(e) => {
                    o.status = super::Status::Fail;
                    o.summary = format!("{} is not a valid PostgreSQL URL: {e}", d.var);
                    o.fault = Some(Fault::DbUrlInvalid {
                        name: d.var.clone(),
                        message: e,
                    });
                    return o;
                }
            };
            o = o.evidence(format!(
                "{} → host {}:{}, database {}, user {}",
                d.var, u.host, u.port, u.database, u.user
            ));
            let prisma = u.prisma();
            o = o.evidence(format!(
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
            o = o.capture("database_url", serde_json::Value::Object(url_caps));
            let mut problem: Option<(String, Fault)> = None;
            if let Some(db) = &d.database
                && &u.database != db
            {
                problem = Some((
                    format!("{} names database `{}`, expected `{db}`", d.var, u.database),
                    Fault::DbUrlParam {
                        name: d.var.clone(),
                        param: "database".into(),
                        expected: db.clone(),
                        actual: Some(u.database.clone()),
                    },
                ));
            }
            if let Some(h) = &d.host
                && problem.is_none()
                && &u.host != h
            {
                problem = Some((
                    format!("{} points at host `{}`, expected `{h}`", d.var, u.host),
                    Fault::DbUrlParam {
                        name: d.var.clone(),
                        param: "host".into(),
                        expected: h.clone(),
                        actual: Some(u.host.clone()),
                    },
                ));
            }
            for (param, a) in [
                ("connection_limit", &d.connection_limit),
                ("pool_timeout", &d.pool_timeout),
                ("connect_timeout", &d.connect_timeout),
            ] {
                let (Some(a), None) = (a, &problem) else {
                    continue;
                };
                let actual = u
                    .param(param)
                    .map(|s| serde_json::Value::String(s.to_string()));
                if let Err(expected) = a.check(actual.as_ref()) {
                    problem = Some((
                        match u.param(param) {
                            Some(v) => format!("{} has {param}={v}, expected {expected}", d.var),
                            None => format!("{} has no {param} (expected {expected})", d.var),
                        },
                        Fault::DbUrlParam {
                            name: d.var.clone(),
                            param: param.into(),
                            expected,
                            actual: u.param(param).map(str::to_string),
                        },
                    ));
                }
            }
            if let Some((summary, fault)) = problem {
                o.status = super::Status::Fail;
                o.summary = summary;
                o.fault = Some(fault);
            }
        }
        if let Some(pid) = pid {
            o = o.capture("pid", pid);
        }
        o
    }
}
