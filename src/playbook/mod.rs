//! The playbook model and its loader.
//!
//! A playbook is YAML: a name, a `target`, `vars`, `settings` and `phases`,
//! each phase a list of checks. Loading resolves `include:`, interpolates
//! `${env.…}`, `${vars.…}` and `${target.…}`, type-checks every check's
//! fields and the dependency graph, and reports any problem with its file,
//! line, column and key path.

mod check;
pub mod embedded;
pub mod error;
mod file;
mod graph;
mod includes;
pub mod interp;
mod kind;
mod load;
pub mod located;
pub mod schema;
mod source;
pub mod yaml;

pub use error::LoadError;
pub use kind::{FieldDoc, KindSchema, KindSet, ParamError};
pub use load::{LoadOptions, Source, load};

use std::collections::BTreeMap;
use std::time::Duration;
use yaml::Loc;

#[derive(Debug, Clone)]
pub struct Playbook {
    pub name: String,
    pub description: Option<String>,
    /// Where it came from (a path, or `embedded:…`).
    pub file: String,
    pub target: BTreeMap<String, String>,
    pub vars: BTreeMap<String, String>,
    pub settings: Settings,
    pub phases: Vec<Phase>,
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// Checks run at once, at most.
    pub concurrency: usize,
    /// The whole run's time limit.
    pub deadline: Duration,
    /// Default per-check timeout.
    pub timeout: Duration,
    /// Allow burst and load traffic to non-loopback targets.
    pub allow_remote: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            concurrency: 8,
            deadline: Duration::from_secs(120),
            timeout: Duration::from_secs(5),
            allow_remote: false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Phase {
    pub name: String,
    pub description: Option<String>,
    pub checks: Vec<CheckSpec>,
}

#[derive(Debug, Clone)]
pub struct CheckSpec {
    pub id: String,
    pub kind: String,
    pub title: Option<String>,
    pub description: Option<String>,
    /// Index of its phase.
    pub phase: usize,
    /// Checks that must pass first: the explicit `needs` plus every check
    /// whose captured values it uses.
    pub needs: Vec<String>,
    pub timeout: Duration,
    pub retries: u32,
    pub interval: Duration,
    /// The kind's own fields, interpolated except for `${checks.…}`.
    pub params: serde_json::Value,
    /// Playbook-given root cause and remedy, which take precedence over the
    /// generic diagnosis.
    pub root_cause: Option<String>,
    pub remedy: Option<String>,
    pub file: String,
    pub loc: Loc,
}

impl Playbook {
    pub fn checks(&self) -> impl Iterator<Item = &CheckSpec> {
        self.phases.iter().flat_map(|p| p.checks.iter())
    }
}

#[cfg(test)]
mod tests;
