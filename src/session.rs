//! A doctor session: a playbook loaded with the check registry, its
//! redactor, and its run under a cancellation token. `doctor`, `demo` and
//! `load`'s preflight share it.

use crate::engine::{self, Report, RunOptions};
use crate::playbook::{self, LoadError, LoadOptions, Playbook, Source};
use crate::support::redact::{self, Redactor};
use crate::support::signals::CancellationToken;
use std::path::PathBuf;

/// What to run and against which target (the command line's view).
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// A playbook file; None: the shipped pre-load-test playbook, embedded.
    pub playbook: Option<PathBuf>,
    pub base_url: Option<String>,
    pub database_url: Option<String>,
    /// The backend's project directory (`target.project`).
    pub project: Option<String>,
    pub vars: Vec<(String, String)>,
    pub allow_remote: bool,
}

impl Target {
    pub fn load_options(&self) -> LoadOptions {
        let mut target = Vec::new();
        if let Some(u) = &self.base_url {
            target.push(("base_url".to_string(), u.trim_end_matches('/').to_string()));
        }
        if let Some(u) = &self.database_url {
            target.push(("database_url".to_string(), u.clone()));
        }
        if let Some(p) = &self.project {
            target.push(("project".to_string(), p.clone()));
        }
        LoadOptions {
            vars: self.vars.clone(),
            target,
            allow_remote: self.allow_remote,
            ..Default::default()
        }
    }

    pub fn source(&self) -> Source {
        match &self.playbook {
            Some(p) => Source::File(p.clone()),
            None => Source::Embedded(playbook::embedded::DEFAULT_PLAYBOOK),
        }
    }

    /// Loads the playbook (with the check registry).
    pub fn load(&self) -> Result<Playbook, LoadError> {
        playbook::load(
            &self.source(),
            &self.load_options(),
            crate::checks::registry(),
        )
    }

    /// A redactor that knows every secret the playbook and the command line hold.
    pub fn redactor(&self, pb: Option<&Playbook>) -> Redactor {
        let mut r = Redactor::new();
        for v in [&self.base_url, &self.database_url].into_iter().flatten() {
            r.learn(v);
        }
        for (k, v) in &self.vars {
            r.learn(v);
            if redact::is_secret_name(k) {
                r.add(v);
            }
        }
        if let Ok(u) = std::env::var("DATABASE_URL") {
            r.learn(&u);
        }
        if let Some(pb) = pb {
            for v in pb.target.values() {
                r.learn(v);
            }
            for (k, v) in &pb.vars {
                r.learn(v);
                if redact::is_secret_name(k) {
                    r.add(v);
                }
            }
            for c in pb.checks() {
                r.learn_json(&c.params);
            }
        }
        r
    }
}

/// A finished session: the report (already redacted) and the redactor that
/// knows the playbook's secrets.
pub struct Session {
    pub report: Report,
    pub redactor: Redactor,
}

/// Loads and runs a playbook until it ends or `cancel` fires.
pub async fn run(t: &Target, cancel: CancellationToken) -> Result<Session, LoadError> {
    let pb = t.load()?;
    let red = t.redactor(Some(&pb));
    let report = engine::run(
        &pb,
        crate::checks::registry(),
        RunOptions {
            http: engine::http_client(),
        },
        cancel.cancelled_owned(),
    )
    .await;
    Ok(Session {
        report: crate::report::redacted(&report, &red),
        redactor: red,
    })
}
