//! Check kinds as the engine sees them: the typed [`Check`] a kind's file
//! implements, the object-safe [`Kind`] the engine runs, and the
//! [`Registry`] of kinds the engine and the loader are given.

use super::result::Observation;
use crate::playbook::located::decode_json;
use crate::playbook::{FieldDoc, KindSchema, KindSet, ParamError};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

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
    /// The backend's log, found when the run began (see `engine::witness`).
    pub witness: Option<Arc<super::witness::Witness>>,
    /// Cancelled once no other check is running or can start: the rest of
    /// the run is done (a check that runs beside the others, such as a
    /// stability watch, samples until then).
    pub others_done: tokio_util::sync::CancellationToken,
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
    /// Fields taken literally (see [`KindSchema::literal_fields`]).
    const LITERAL_FIELDS: &'static [&'static str] = &[];
    /// Runs beside the other checks for as long as they run: not counted
    /// when the engine decides that the others are done.
    const BESIDE: bool = false;
}

pub type BoxFuture = Pin<Box<dyn Future<Output = Observation> + Send>>;

/// Object-safe view of a [`Check`], used by the engine (and, through
/// [`KindSchema`], by the loader).
pub trait Kind: KindSchema {
    fn run(&self, params: serde_json::Value, ctx: Ctx) -> BoxFuture;
    fn at_start(&self, params: &serde_json::Value) -> Option<serde_json::Value>;
    fn beside(&self) -> bool {
        false
    }
}

/// Turns a [`Check`] into a [`Kind`].
pub struct Erased<C>(std::marker::PhantomData<C>);

impl<C> Erased<C> {
    pub const fn new() -> Self {
        Erased(std::marker::PhantomData)
    }
}

impl<C: Check> Default for Erased<C> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: Check> KindSchema for Erased<C> {
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
    fn validate(&self, params: &serde_json::Value) -> Result<(), ParamError> {
        decode::<C::Params>(params).map(|_| ())
    }
    fn literal_fields(&self) -> &'static [&'static str] {
        C::LITERAL_FIELDS
    }
}

impl<C: Check> Kind for Erased<C> {
    fn beside(&self) -> bool {
        C::BESIDE
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
                Err(e) => Observation::error(format!("invalid field `{}`: {}", e.path, e.message)),
            }
        })
    }
}

/// Decodes a check's fields with the playbook's located loader (the loader
/// turns the path into a line and column).
fn decode<T: DeserializeOwned>(v: &serde_json::Value) -> Result<T, ParamError> {
    decode_json(v).map_err(|e| ParamError {
        path: e.path,
        message: e.message,
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

/// The check kinds a run may use, in the order `chatops checks` lists them.
#[derive(Clone, Default)]
pub struct Registry {
    kinds: Vec<Arc<dyn Kind>>,
}

impl Registry {
    pub fn new(kinds: Vec<Arc<dyn Kind>>) -> Self {
        Registry { kinds }
    }
    pub fn iter(&self) -> impl Iterator<Item = &dyn Kind> {
        self.kinds.iter().map(|k| k.as_ref())
    }
    pub fn find(&self, name: &str) -> Option<&Arc<dyn Kind>> {
        self.kinds.iter().find(|k| k.name() == name)
    }
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.kinds.iter().map(|k| k.name())
    }
}

impl KindSet for Registry {
    fn find_kind(&self, name: &str) -> Option<&dyn KindSchema> {
        self.find(name).map(|k| k.as_ref() as &dyn KindSchema)
    }
    fn kind_schemas(&self) -> Vec<&dyn KindSchema> {
        self.iter().map(|k| k as &dyn KindSchema).collect()
    }
}
