//! `env_file`: the project's `.env` files against the running backend's
//! environment (/proc/PID/environ), in dotenv's precedence: the process's
//! own environment wins over the files, and the first file that sets a key
//! wins (`.env.<NODE_ENV>.local`, `.env.local`, `.env.<NODE_ENV>`, `.env`).
//!
//! - A file written after the process started, with a value the process
//!   does not have: the process predates the change (the seed's
//!   `DISABLE_RATE_LIMIT=true` in `.env` while the limiters answer 429).
//! - A variable the process has with another value: its own environment
//!   overrides the file.
//! - A variable the process lacks, from a file older than the process: not
//!   a finding. dotenv and Nest's ConfigModule load files into
//!   `process.env` at run time, which /proc/PID/environ (the environment
//!   at exec) does not show; the evidence says so.
//!
//! Values are redacted by the usual policy. The run reads files and /proc;
//! [`judge`] compares.

use super::project::{self, BackendAt, at};
use super::util::judged;
use super::{Check, Ctx, Observation, Status};
use crate::diagnose::{EnvFileItem, Fault};
use crate::probe::process;
use crate::probe::project::dotenv::{self, FileVar};
use crate::support::redact::{Redactor, is_secret_name};
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

pub struct EnvFile;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The project directory (`--project`, `${target.project}`); empty: the backend process's working directory.
    pub project: Option<String>,
    /// The backend: `{host, port}`; its process's environment is compared, its working directory is the project.
    pub process: Option<BackendAt>,
    /// Env files, most important first, relative to the project (default: `.env.<NODE_ENV>.local`, `.env.local`, `.env.<NODE_ENV>`, `.env`).
    #[serde(default)]
    pub files: Vec<String>,
    /// Compare only these variables (default: every variable the files set).
    #[serde(default)]
    pub vars: Vec<String>,
    /// Variables not to compare (set per machine on purpose).
    #[serde(default)]
    pub ignore: Vec<String>,
}

/// A value as evidence may show it: secrets (by name, or passwords inside
/// URLs) redacted, long values cut.
pub fn shown(name: &str, value: &str) -> String {
    if is_secret_name(name) {
        return "***".into();
    }
    let mut r = Redactor::new();
    r.learn(value);
    let v = r.redact(value);
    let v = if v.chars().count() > 80 {
        format!("{}…", v.chars().take(79).collect::<String>())
    } else {
        v
    };
    format!("{v:?}")
}

/// The files' variables against the process's environment.
pub fn judge(
    o: Observation,
    pid: u32,
    started: Option<SystemTime>,
    vars: &BTreeMap<String, (String, FileVar)>,
    env: &BTreeMap<String, String>,
) -> Observation {
    let mut o = o;
    let mut items = Vec::new();
    let mut ok = 0;
    for (name, (file, v)) in vars {
        let after =
            matches!((v.modified, started), (Some(m), Some(s)) if m > s + Duration::from_secs(1));
        let item = |in_process: Option<String>| EnvFileItem {
            name: name.clone(),
            file: format!("{file}:{}", v.line),
            in_file: shown(name, &v.value),
            in_process,
            changed_after_start: after,
        };
        match env.get(name) {
            Some(p) if *p == v.value => ok += 1,
            Some(p) => {
                let i = item(Some(shown(name, p)));
                o = o.evidence(format!(
                    "✗ {name}: {} in {} but {} in the process{}",
                    i.in_file,
                    i.file,
                    i.in_process.clone().unwrap_or_default(),
                    if after {
                        " (the file changed after the process started)"
                    } else {
                        " (its own environment overrides the file)"
                    }
                ));
                items.push(i);
            }
            None if after => {
                let i = item(None);
                o = o.evidence(format!(
                    "✗ {name}: {} in {}, written after the process started, is not in its environment",
                    i.in_file, i.file
                ));
                items.push(i);
            }
            None => {
                o = o.evidence(format!(
                    "{name} ({file}:{}) is not in the process's initial environment: loaded at run time (dotenv, ConfigModule: /proc/PID/environ does not show that) or not at all",
                    v.line
                ));
            }
        }
    }
    o = o.evidence(format!("{ok} variable(s) of the files match the process"));
    if items.is_empty() {
        o.summary = format!(
            "the process has what its env files set ({} variable(s) compared)",
            vars.len()
        );
        return o;
    }
    let status = if items.iter().any(|i| i.changed_after_start) {
        Status::Fail
    } else {
        Status::Warn
    };
    let first = &items[0];
    let summary = format!(
        "{} {} {}: restart the backend{}",
        first.name,
        match &first.in_process {
            None => "is not in the environment of process".to_string(),
            Some(_) => "differs from the file in process".to_string(),
        },
        pid,
        if items.len() > 1 {
            format!(" (and {} more)", items.len() - 1)
        } else {
            String::new()
        }
    );
    let summary = if first.changed_after_start {
        format!(
            "{} changed after the backend started: {summary}",
            first.file
        )
    } else {
        summary
    };
    judged(
        o,
        status,
        summary,
        Fault::EnvFileNotLoaded {
            pid,
            started: started.map(at),
            items,
        },
    )
}

impl Check for EnvFile {
    const KIND: &'static str = "env_file";
    const HELP: &'static str = "the project's .env files (dotenv's precedence) against the running backend's environment: a variable changed after it started, or overridden by its own environment (values redacted)";
    type Params = Params;

    async fn run(p: Params, _ctx: Ctx) -> Observation {
        let loc = match project::locate(p.project.as_deref(), p.process.as_ref()) {
            Ok(l) => l,
            Err(o) => return *o,
        };
        let Some(proc_) = &loc.process else {
            return Observation::skipped(
                "skipped: no backend process on this machine to compare the .env files with",
            )
            .evidence(project::project_line(&loc));
        };
        let env: BTreeMap<String, String> = match process::environ(proc_.pid) {
            Ok(v) => v.into_iter().collect(),
            Err(e) => {
                return Observation::skipped(format!(
                    "skipped: cannot read /proc/{}/environ: {e} (run chatops as the backend's user or root)",
                    proc_.pid
                ))
                .evidence(project::project_line(&loc));
            }
        };
        let files = if p.files.is_empty() {
            dotenv::candidates(&loc.dir, env.get("NODE_ENV").map(String::as_str))
        } else {
            p.files.iter().map(|f| loc.dir.join(f)).collect()
        };
        let (found, vars) = dotenv::read(&files);
        if found.is_empty() {
            return Observation::skipped(format!(
                "skipped: no env file in {} ({})",
                loc.dir.display(),
                files
                    .iter()
                    .map(|f| project::rel(&loc, f))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .evidence(project::project_line(&loc));
        }
        let vars: BTreeMap<String, (String, FileVar)> = vars
            .into_iter()
            .filter(|(k, _)| p.vars.is_empty() || p.vars.contains(k))
            .filter(|(k, _)| !p.ignore.contains(k))
            .map(|(k, v)| (k, (project::rel(&loc, &v.file), v)))
            .collect();
        let mut o = Observation::pass("")
            .command(format!("tr '\\0' '\\n' < /proc/{}/environ", proc_.pid))
            .evidence(project::project_line(&loc))
            .evidence(format!(
                "process {} ({}) started {}",
                proc_.pid,
                proc_.cmdline,
                proc_.started.map(at).unwrap_or_else(|| "?".into())
            ));
        for f in &found {
            o = o.evidence(format!(
                "env file: {}{}",
                project::rel(&loc, f),
                crate::probe::project::files::modified(f)
                    .map(|t| format!(" written {}", at(t)))
                    .unwrap_or_default()
            ));
        }
        judge(o, proc_.pid, proc_.started, &vars, &env)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::time::UNIX_EPOCH;

    fn t(s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_790_000_000 + s)
    }

    fn var(v: &str, line: usize, written: u64) -> (String, FileVar) {
        (
            ".env".into(),
            FileVar {
                value: v.into(),
                file: PathBuf::from("/app/.env"),
                line,
                modified: Some(t(written)),
            },
        )
    }

    fn env(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_file_changed_after_start_fails_and_names_the_variable() {
        let vars: BTreeMap<_, _> = [
            ("DISABLE_RATE_LIMIT".to_string(), var("true", 3, 500)),
            ("NODE_ENV".to_string(), var("development", 1, 500)),
        ]
        .into_iter()
        .collect();
        let o = judge(
            Observation::pass(""),
            42,
            Some(t(100)),
            &vars,
            &env(&[("NODE_ENV", "development")]),
        );
        assert_eq!(o.status, Status::Fail, "{o:#?}");
        assert!(
            o.summary
                .starts_with(".env:3 changed after the backend started: DISABLE_RATE_LIMIT"),
            "{}",
            o.summary
        );
        let Some(Fault::EnvFileNotLoaded { items, .. }) = &o.fault else {
            panic!()
        };
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].in_file, "\"true\"");
        assert!(items[0].changed_after_start);
    }

    #[test]
    fn older_files_the_process_lacks_are_information_and_overrides_warn() {
        let vars: BTreeMap<_, _> = [
            ("LOG_LEVEL".to_string(), var("debug", 2, 50)),
            (
                "DATABASE_URL".to_string(),
                var("postgresql://app:s3cret@localhost/dev", 1, 50),
            ),
        ]
        .into_iter()
        .collect();
        let o = judge(Observation::pass(""), 42, Some(t(100)), &vars, &env(&[]));
        assert_eq!(o.status, Status::Pass, "{o:#?}");
        assert!(o.evidence.iter().any(|e| e.contains("loaded at run time")));
        let p = env(&[("DATABASE_URL", "postgresql://app:0ther@db/prod")]);
        let o = judge(Observation::pass(""), 42, Some(t(100)), &vars, &p);
        assert_eq!(o.status, Status::Warn);
        let text = format!("{o:?}");
        assert!(
            !text.contains("s3cret") && !text.contains("0ther"),
            "{text}"
        );
        assert!(text.contains("overrides the file"), "{text}");
    }

    #[test]
    fn secret_names_are_hidden_whole() {
        assert_eq!(shown("JWT_SECRET", "abc"), "***");
        assert_eq!(shown("PORT", "3001"), "\"3001\"");
        assert!(!shown("DATABASE_URL", "postgresql://u:pw1234@h/db").contains("pw1234"));
    }
}
