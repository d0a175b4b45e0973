//! What the loader needs to know about a check kind: its name, help, fields
//! and schema, how to type-check its fields, and which fields are literal
//! text. The engine's `Kind` extends this with running; the registry of
//! kinds is handed to the loader, which never names a kind itself.

use serde::Serialize;

/// A check field, for help and suggestions.
#[derive(Debug, Clone, Serialize)]
pub struct FieldDoc {
    pub name: String,
    pub ty: String,
    pub required: bool,
    pub help: String,
}

/// A field of a check that failed to type-check: where inside the check
/// (a dotted path, empty for the check itself) and serde's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ParamError {
    pub path: String,
    pub message: String,
}

/// The loader's view of a check kind.
pub trait KindSchema: Send + Sync {
    fn name(&self) -> &'static str;
    fn help(&self) -> &'static str;
    /// The JSON Schema of the kind's own fields.
    fn schema(&self) -> serde_json::Value;
    fn fields(&self) -> Vec<FieldDoc>;
    /// Type-checks the fields.
    fn validate(&self, params: &serde_json::Value) -> Result<(), ParamError>;
    /// Fields whose text is used as is (SQL): `${…}` is refused there, since
    /// an interpolated value would be spliced in, not bound.
    fn literal_fields(&self) -> &'static [&'static str] {
        &[]
    }
}

/// A set of kinds the loader can look names up in.
pub trait KindSet: Sync {
    fn find_kind(&self, name: &str) -> Option<&dyn KindSchema>;
    /// Every kind, in the order `chatops checks` lists them.
    fn kind_schemas(&self) -> Vec<&dyn KindSchema>;
    fn kind_names(&self) -> Vec<&'static str> {
        self.kind_schemas().iter().map(|k| k.name()).collect()
    }
}
