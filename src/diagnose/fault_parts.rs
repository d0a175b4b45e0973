//! The data a [`Fault`](super::Fault) carries besides its own fields,
//! and the [`Family`] that words it: kept apart from `fault.rs` so that
//! file stays the one list of variants and their codes.

use super::Fault;
use serde::{Deserialize, Serialize};

/// One disagreement between the Prisma schema and the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftItem {
    pub model: String,
    /// The field (None for a table, an index or an enum).
    pub field: Option<String>,
    /// `missing_table`, `missing_column`, `type`, `nullability`, `enum_value`, `index`.
    pub problem: String,
    /// What the schema wants (`messages.messageType text NOT NULL`).
    pub expected: String,
    /// What the database has (`no such column; messages has type`).
    pub actual: String,
    /// Where the schema says it: `prisma/schema.prisma:42`.
    pub at: String,
}

/// A `.env` variable and the process's value (both redacted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvFileItem {
    pub name: String,
    /// `.env:3`.
    pub file: String,
    pub in_file: String,
    /// None: not in the process's environment.
    pub in_process: Option<String>,
    /// The file was written after the process started.
    pub changed_after_start: bool,
}

/// The limiter that answered a 429, and how it was recognised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimiterMatch {
    pub name: String,
    pub max: u32,
    pub window_s: Option<u64>,
    pub how: String,
}

/// Whether the limiters' off switch is set in the backend process, and in
/// chatops's own shell. Serialized with a `state` tag (`unknown`, `process`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum EnvState {
    /// The process could not be read (or was not named).
    Unknown { in_shell: Option<String> },
    Process {
        source: String,
        value: Option<String>,
        in_shell: Option<String>,
        /// Variables of the process with a name like the switch's
        /// (`DISABLE_RATELIMIT=true`): a misspelt switch, as `NAME=VALUE`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        similar: Vec<String>,
    },
}

/// A fault's family: which file under `src/diagnose/` words it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    Pg,
    Port,
    Http,
    Env,
    RateLimit,
    Log,
    Stability,
    Pool,
    Sql,
    Activity,
    Load,
    Project,
    PgBouncer,
}

impl Family {
    pub const ALL: [Family; 13] = [
        Family::Pg,
        Family::Port,
        Family::Http,
        Family::Env,
        Family::RateLimit,
        Family::Log,
        Family::Stability,
        Family::Pool,
        Family::Sql,
        Family::Activity,
        Family::Load,
        Family::Project,
        Family::PgBouncer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Family::Pg => "pg",
            Family::Port => "port",
            Family::Http => "http",
            Family::Env => "env",
            Family::RateLimit => "rate_limit",
            Family::Log => "log",
            Family::Stability => "stability",
            Family::Pool => "pool",
            Family::Sql => "sql",
            Family::Activity => "activity",
            Family::Load => "load",
            Family::Project => "project",
            Family::PgBouncer => "pgbouncer",
        }
    }
}

impl Fault {
    /// This fault with `f` applied to every text field (numbers, flags and
    /// the cause code are left alone): how a report redacts it. Goes
    /// through the serialized form, so no field can be forgotten; `None`
    /// only if the result no longer reads as a fault, which `f` returning
    /// text cannot cause.
    pub fn map_strings(&self, f: impl Fn(&str) -> String) -> Option<Fault> {
        fn walk(v: &mut serde_json::Value, f: &dyn Fn(&str) -> String) {
            match v {
                serde_json::Value::String(s) => *s = f(s),
                serde_json::Value::Array(a) => a.iter_mut().for_each(|x| walk(x, f)),
                serde_json::Value::Object(m) => m.values_mut().for_each(|x| walk(x, f)),
                _ => {}
            }
        }
        let mut v = serde_json::to_value(self).ok()?;
        if let serde_json::Value::Object(m) = &mut v {
            for (k, x) in m.iter_mut() {
                if k != "cause" {
                    walk(x, &f);
                }
            }
        }
        serde_json::from_value(v).ok()
    }
}
