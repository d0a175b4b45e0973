//! Check kinds: one file per kind, each implementing [`Check`], and one
//! registry ([`KINDS`]). Adding a kind means writing its file and adding one
//! line to the registry.

use crate::diagnose::Fault;
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub mod env;
pub mod expect;
pub mod http;
pub mod log_scan;
pub mod pg_activity;
pub mod pg_connect;
pub mod pg_ready;
pub mod pool_headroom;
pub mod port;
pub mod rate_limit;
pub mod sql;
pub mod stability;
pub mod util;

/// Outcome status of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
    Blocked,
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Blocked => "blocked",
            Status::Error => "error",
        }
    }
    /// Whether checks that need this one may run.
    pub fn satisfies_needs(self) -> bool {
        matches!(self, Status::Pass | Status::Warn)
    }
}

/// What one run of a check observed, before diagnosis.
#[derive(Debug, Clone)]
pub struct Observation {
    pub status: Status,
    pub summary: String,
    /// Observed facts, one per line.
    pub evidence: Vec<String>,
    /// The shell command a human could run to see the same thing.
    pub command: Option<String>,
    /// What went wrong, in a form the diagnose module understands.
    pub fault: Option<Fault>,
    /// Values later checks can use as `${checks.ID.NAME}`.
    pub captures: serde_json::Map<String, serde_json::Value>,
}

impl Observation {
    pub fn new(status: Status, summary: impl Into<String>) -> Self {
        Observation {
            status,
            summary: summary.into(),
            evidence: Vec::new(),
            command: None,
            fault: None,
            captures: serde_json::Map::new(),
        }
    }
    pub fn pass(summary: impl Into<String>) -> Self {
        Self::new(Status::Pass, summary)
    }
    pub fn fail(summary: impl Into<String>, fault: Fault) -> Self {
        let mut o = Self::new(Status::Fail, summary);
        o.fault = Some(fault);
        o
    }
    pub fn error(summary: impl Into<String>) -> Self {
        Self::new(Status::Error, summary)
    }
    pub fn evidence(mut self, line: impl Into<String>) -> Self {
        self.evidence.push(line.into());
        self
    }
    pub fn command(mut self, cmd: impl Into<String>) -> Self {
        self.command = Some(cmd.into());
        self
    }
    pub fn capture(mut self, name: &str, v: impl Into<serde_json::Value>) -> Self {
        self.captures.insert(name.to_string(), v.into());
        self
    }
}

/// The shared HTTP client, built on first use (building it loads the
/// system's CA certificates, which a run without HTTP checks should not pay).
#[derive(Clone, Default)]
pub struct HttpClient(std::sync::Arc<std::sync::OnceLock<reqwest::Client>>);

impl HttpClient {
    pub fn get(&self) -> &reqwest::Client {
        self.0.get_or_init(|| {
            reqwest::Client::builder()
                .user_agent(concat!("chatops/", env!("CARGO_PKG_VERSION")))
                .redirect(reqwest::redirect::Policy::limited(5))
                .pool_idle_timeout(std::time::Duration::from_secs(10))
                .build()
                .unwrap_or_else(|_| reqwest::Client::new())
        })
    }
}

/// Parses a check's PostgreSQL URL; a bad one is pg_isready's "no attempt".
pub(crate) fn db_url(raw: &str) -> Result<crate::pg::DbUrl, Box<Observation>> {
    crate::pg::DbUrl::parse(raw).map_err(|e| {
        Box::new(Observation::fail(
            format!("invalid database URL: {e}"),
            crate::diagnose::Fault::PgNoAttempt { reason: e },
        ))
    })
}

/// What a check may use while it runs.
#[derive(Clone)]
pub struct Ctx {
    /// Time budget of this attempt; the engine enforces it too, but checks
    /// use it to bound their own waits and report a classified timeout.
    pub timeout: Duration,
    pub http: HttpClient,
    pub allow_remote: bool,
    /// What this check's [`Check::at_start`] recorded when the run began.
    pub start: Option<serde_json::Value>,
}

/// A check kind. `Params` are the kind's own YAML fields; doc comments on
/// them become the help of `chatops checks` and the JSON Schema.
pub trait Check: Send + Sync + 'static {
    const KIND: &'static str;
    const HELP: &'static str;
    type Params: DeserializeOwned + JsonSchema + Send + 'static;
    fn run(params: Self::Params, ctx: Ctx) -> impl Future<Output = Observation> + Send;
    /// Called once when the run begins, before any check runs: state to
    /// compare against later (a log file's length, a process's pid). It is
    /// handed back in `Ctx::start`.
    fn at_start(_params: &Self::Params) -> Option<serde_json::Value> {
        None
    }
}

/// A check field, for help and suggestions.
#[derive(Debug, Clone, Serialize)]
pub struct FieldDoc {
    pub name: String,
    pub ty: String,
    pub required: bool,
    pub help: String,
}

pub type BoxFuture = Pin<Box<dyn Future<Output = Observation> + Send>>;

/// Object-safe view of a [`Check`], used by the loader and the engine.
pub trait Kind: Send + Sync {
    fn name(&self) -> &'static str;
    fn help(&self) -> &'static str;
    fn schema(&self) -> serde_json::Value;
    fn fields(&self) -> Vec<FieldDoc>;
    /// Type-checks the fields; on error gives the path inside the check and a message.
    fn validate(&self, params: &serde_json::Value) -> Result<(), (String, String)>;
    fn run(&self, params: serde_json::Value, ctx: Ctx) -> BoxFuture;
    fn at_start(&self, params: &serde_json::Value) -> Option<serde_json::Value>;
}

struct Erased<C>(std::marker::PhantomData<C>);

impl<C: Check> Kind for Erased<C> {
    fn name(&self) -> &'static str {
        C::KIND
    }
    fn help(&self) -> &'static str {
        C::HELP
    }
    fn schema(&self) -> serde_json::Value {
        schemars::schema_for!(C::Params).to_value()
    }
    fn fields(&self) -> Vec<FieldDoc> {
        // Schema generation costs about a millisecond; the loader asks per check.
        static CACHE: std::sync::Mutex<Vec<(&'static str, Vec<FieldDoc>)>> =
            std::sync::Mutex::new(Vec::new());
        if let Ok(c) = CACHE.lock()
            && let Some((_, f)) = c.iter().find(|(k, _)| *k == C::KIND)
        {
            return f.clone();
        }
        let f = fields_of(&self.schema());
        if let Ok(mut c) = CACHE.lock() {
            c.push((C::KIND, f.clone()));
        }
        f
    }
    fn validate(&self, params: &serde_json::Value) -> Result<(), (String, String)> {
        decode::<C::Params>(params).map(|_| ())
    }
    fn at_start(&self, params: &serde_json::Value) -> Option<serde_json::Value> {
        decode::<C::Params>(params)
            .ok()
            .and_then(|p| C::at_start(&p))
    }
    fn run(&self, params: serde_json::Value, ctx: Ctx) -> BoxFuture {
        Box::pin(async move {
            match decode::<C::Params>(&params) {
                Ok(p) => C::run(p, ctx).await,
                Err((path, msg)) => Observation::error(format!("invalid field `{path}`: {msg}")),
            }
        })
    }
}

fn decode<T: DeserializeOwned>(v: &serde_json::Value) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize::<_, T>(v).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        (path, e.into_inner().to_string())
    })
}

/// Reads the top-level properties of a schema as field docs.
fn fields_of(schema: &serde_json::Value) -> Vec<FieldDoc> {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(|r| r.as_array())
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    let Some(props) = schema.get("properties").and_then(|p| p.as_object()) else {
        return Vec::new();
    };
    props
        .iter()
        .map(|(name, p)| FieldDoc {
            name: name.clone(),
            ty: type_name(p, schema),
            required: required.contains(&name.as_str()),
            help: p
                .get("description")
                .and_then(|d| d.as_str())
                .unwrap_or("")
                .split("\n\n")
                .next()
                .unwrap_or("")
                .replace('\n', " "),
        })
        .collect()
}

fn type_name(p: &serde_json::Value, root: &serde_json::Value) -> String {
    if let Some(r) = p.get("$ref").and_then(|r| r.as_str()) {
        let name = r.rsplit('/').next().unwrap_or(r);
        if let Some(def) = root.get("$defs").and_then(|d| d.get(name)) {
            if let Some(e) = def.get("enum").and_then(|e| e.as_array()) {
                return e
                    .iter()
                    .filter_map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join("|");
            }
            if let Some(one) = def.get("oneOf").and_then(|e| e.as_array()) {
                let names: Vec<String> = one
                    .iter()
                    .filter_map(|v| v.get("const").and_then(|c| c.as_str()).map(str::to_string))
                    .collect();
                if !names.is_empty() && names.len() == one.len() {
                    return names.join("|");
                }
            }
            if name == "Duration" {
                return "duration".to_string();
            }
            // A named type: what it is made of (a mapping, a list, a string
            // or number…); a reference is not followed twice.
            if def.get("$ref").is_none() {
                return type_name(def, root);
            }
        }
        return "mapping".to_string();
    }
    if let Some(any) = p.get("anyOf").and_then(|a| a.as_array()) {
        let non_null: Vec<String> = any
            .iter()
            .filter(|s| s.get("type").and_then(|t| t.as_str()) != Some("null"))
            .map(|s| type_name(s, root))
            .collect();
        return non_null.join(" or ");
    }
    match p.get("type") {
        Some(serde_json::Value::String(t)) => match t.as_str() {
            "array" => "list".into(),
            "object" => "mapping".into(),
            "integer" => "integer".into(),
            other => other.into(),
        },
        Some(serde_json::Value::Array(ts)) => ts
            .iter()
            .filter_map(|t| t.as_str())
            .filter(|t| *t != "null")
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "any".into(),
    }
}

/// The registry: every check kind, in the order `chatops checks` lists them.
pub static KINDS: &[&dyn Kind] = &[
    &Erased::<pg_ready::PgReady>(std::marker::PhantomData),
    &Erased::<pg_connect::PgConnect>(std::marker::PhantomData),
    &Erased::<port::Port>(std::marker::PhantomData),
    &Erased::<http::Http>(std::marker::PhantomData),
    &Erased::<env::Env>(std::marker::PhantomData),
    &Erased::<rate_limit::RateLimit>(std::marker::PhantomData),
    &Erased::<log_scan::LogScan>(std::marker::PhantomData),
    &Erased::<stability::Stability>(std::marker::PhantomData),
    &Erased::<sql::Sql>(std::marker::PhantomData),
    &Erased::<pg_activity::PgActivity>(std::marker::PhantomData),
    &Erased::<pool_headroom::PoolHeadroom>(std::marker::PhantomData),
];

pub fn find(kind: &str) -> Option<&'static dyn Kind> {
    KINDS.iter().copied().find(|k| k.name() == kind)
}

pub fn names() -> impl Iterator<Item = &'static str> {
    KINDS.iter().map(|k| k.name())
}
