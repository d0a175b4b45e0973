//! `sql`: runs one statement inside a READ ONLY transaction with a
//! statement_timeout, values bound as `$1, $2, …` (never spliced into the
//! text), and asserts the rows. Shortcuts check the schema the backend needs:
//! `tables_exist` (the seed's 12 tables) and `columns_exist` (`messages.type`,
//! `message_reads`), so Prisma field drift is a named finding.
//!
//! The run reads the catalog and the rows; [`judge_schema`] and
//! [`judge_rows`] hold them against what the check wants.

use super::expect::Assertion;
use super::util::failed;
use super::{Check, Ctx, Observation, Status};
use crate::diagnose::Fault;
use crate::pg::activity;
use crate::pg::error_chain;
use crate::support::duration::Dur;
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use tokio_postgres::types::{ToSql, Type};

pub struct Sql;

/// Fields whose text must stay literal: `${…}` there is a load error, since
/// an interpolated value would be spliced into SQL. Values go in `params`.
pub const LITERAL_FIELDS: &[&str] = &["query"];

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// PostgreSQL URL, e.g. `${target.database_url}`.
    pub url: String,
    /// One SQL statement, run in a READ ONLY transaction; refer to values as $1, $2, … (no `${…}` here).
    pub query: Option<String>,
    /// Values bound to $1, $2, … in order (interpolation goes here, never into `query`).
    #[serde(default)]
    pub params: Vec<serde_json::Value>,
    /// What the rows must be: `{rows: 1}`, `{empty: true}`, `{values: {count: {gte: 1}}}` (first row).
    pub expect: Option<Expect>,
    /// `true`: the chat backend's 12 tables exist; or a list of table names.
    pub tables_exist: Option<Tables>,
    /// `table.column` entries (or a bare `table`) that must exist, e.g. `[messages.type, message_reads]`.
    #[serde(default)]
    pub columns_exist: Vec<String>,
    /// Schema to look in (default: the URL's `schema` parameter, else `public`).
    pub schema: Option<String>,
    /// Cancel the statement after this long (default: the check's timeout).
    pub statement_timeout: Option<Dur>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Tables {
    All(bool),
    List(Vec<String>),
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Exactly this many rows.
    pub rows: Option<u64>,
    /// `true`: no rows; `false`: at least one.
    pub empty: Option<bool>,
    /// Assertions on the first row's columns, by name.
    #[serde(default)]
    pub values: BTreeMap<String, Assertion>,
}

/// A JSON value as the statement's parameter type.
fn bind(
    i: usize,
    v: &serde_json::Value,
    ty: &Type,
) -> Result<Box<dyn ToSql + Sync + Send>, String> {
    use serde_json::Value as J;
    let n = i + 1;
    let text = match v {
        J::String(s) => s.clone(),
        J::Null => String::new(),
        other => other.to_string(),
    };
    if v.is_null() {
        return Ok(match *ty {
            Type::BOOL => Box::new(Option::<bool>::None),
            Type::INT2 => Box::new(Option::<i16>::None),
            Type::INT4 => Box::new(Option::<i32>::None),
            Type::INT8 => Box::new(Option::<i64>::None),
            Type::FLOAT4 => Box::new(Option::<f32>::None),
            Type::FLOAT8 => Box::new(Option::<f64>::None),
            _ => Box::new(Option::<String>::None),
        });
    }
    let bad = |what: &str| format!("params[{i}] ({text}) is not {what} for ${n} ({ty})");
    Ok(match *ty {
        Type::BOOL => Box::new(match v {
            J::Bool(b) => *b,
            _ => text.parse::<bool>().map_err(|_| bad("a boolean"))?,
        }),
        Type::INT2 => Box::new(text.parse::<i16>().map_err(|_| bad("an integer"))?),
        Type::INT4 => Box::new(text.parse::<i32>().map_err(|_| bad("an integer"))?),
        Type::INT8 => Box::new(text.parse::<i64>().map_err(|_| bad("an integer"))?),
        Type::FLOAT4 => Box::new(text.parse::<f32>().map_err(|_| bad("a number"))?),
        Type::FLOAT8 => Box::new(text.parse::<f64>().map_err(|_| bad("a number"))?),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => Box::new(text),
        _ => {
            return Err(format!(
                "${n} has type {ty}, which params cannot bind directly: write ${n}::text::{ty} in the query"
            ));
        }
    })
}

/// A column of a row as JSON.
fn cell(row: &tokio_postgres::Row, i: usize) -> serde_json::Value {
    use serde_json::Value as J;
    let ty = row.columns()[i].type_().clone();
    let j = match ty {
        Type::BOOL => row.try_get::<_, Option<bool>>(i).map(|v| v.map(J::from)),
        Type::INT2 => row.try_get::<_, Option<i16>>(i).map(|v| v.map(J::from)),
        Type::INT4 => row.try_get::<_, Option<i32>>(i).map(|v| v.map(J::from)),
        Type::INT8 => row.try_get::<_, Option<i64>>(i).map(|v| v.map(J::from)),
        Type::OID => row.try_get::<_, Option<u32>>(i).map(|v| v.map(J::from)),
        Type::FLOAT4 => row.try_get::<_, Option<f32>>(i).map(|v| v.map(J::from)),
        Type::FLOAT8 => row.try_get::<_, Option<f64>>(i).map(|v| v.map(J::from)),
        _ => row.try_get::<_, Option<String>>(i).map(|v| v.map(J::from)),
    };
    match j {
        Ok(Some(v)) => v,
        Ok(None) => J::Null,
        Err(_) => J::String(format!("<{ty}: cast to text to read it>")),
    }
}

fn norm(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

/// What exists in place of a missing name: the same name in another
/// spelling (`messageReads` for `message_reads`) or one containing it
/// (`messageType` for `type`).
fn look_alikes<'a>(missing: &str, existing: impl Iterator<Item = &'a String>) -> Vec<String> {
    let m = norm(missing);
    existing
        .filter(|e| {
            let n = norm(e);
            n == m || (m.len() >= 3 && (n.contains(&m) || m.contains(&n)) && n.len() >= 3)
        })
        .cloned()
        .collect()
}

/// Classifies a statement error.
fn sql_fault(e: &tokio_postgres::Error, limit_ms: u64) -> (String, Fault) {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code().to_string();
        let message = db.message().to_string();
        return match code.as_str() {
            "25006" => (
                format!("refused by the read-only transaction: {message}"),
                Fault::ReadOnlyViolation { message },
            ),
            "57014" => (
                format!("cancelled after the {limit_ms} ms statement_timeout"),
                Fault::SqlTimeout { limit_ms },
            ),
            _ => (
                format!("the statement failed: {message} ({code})"),
                Fault::SqlError { code, message },
            ),
        };
    }
    let m = error_chain(e);
    (
        format!("the statement failed: {m}"),
        Fault::SqlError {
            code: "-".into(),
            message: m,
        },
    )
}

/// What the catalog holds: each table (or view) and its columns.
pub type Catalog = BTreeMap<String, BTreeSet<String>>;

/// The tables and `table.column`s the schema shortcuts ask for.
#[derive(Debug, Default)]
pub struct Wanted {
    pub tables: Vec<String>,
    pub columns: Vec<(String, String)>,
}

impl Wanted {
    fn of(p: &Params) -> Wanted {
        let mut w = Wanted {
            tables: match &p.tables_exist {
                Some(Tables::All(true)) => crate::support::chat_backend::TABLES
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                Some(Tables::List(l)) => l.clone(),
                _ => Vec::new(),
            },
            columns: Vec::new(),
        };
        for entry in &p.columns_exist {
            match entry.split_once('.') {
                Some((t, c)) if !t.is_empty() && !c.is_empty() => {
                    w.columns.push((t.to_string(), c.to_string()))
                }
                _ => w.tables.push(entry.trim_matches('.').to_string()),
            }
        }
        w
    }
    fn is_empty(&self) -> bool {
        self.tables.is_empty() && self.columns.is_empty()
    }
}

/// Reads the tables and columns of `schema`.
async fn catalog(
    tx: &tokio_postgres::Transaction<'_>,
    schema: &str,
) -> Result<Catalog, tokio_postgres::Error> {
    let rows = tx
        .query(
            "SELECT c.relname::text, a.attname::text
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')",
            &[&schema],
        )
        .await?;
    let mut have = Catalog::new();
    for r in &rows {
        let t: String = r.get(0);
        let c: Option<String> = r.get(1);
        let e = have.entry(t).or_default();
        if let Some(c) = c {
            e.insert(c);
        }
    }
    Ok(have)
}

/// Holds the catalog against what is wanted: missing tables and columns
/// are schema drift, with the look-alikes that exist instead.
pub fn judge_schema(
    o: Observation,
    w: &Wanted,
    have: &Catalog,
    schema: &str,
    summary: &mut Vec<String>,
) -> Observation {
    let mut missing_tables = Vec::new();
    let mut missing_columns = Vec::new();
    let mut hints = Vec::new();
    for t in &w.tables {
        if !have.contains_key(t) && !missing_tables.contains(t) {
            missing_tables.push(t.clone());
            for alike in look_alikes(t, have.keys()) {
                hints.push(format!("table `{alike}` instead of `{t}`"));
            }
        }
    }
    for (t, c) in &w.columns {
        match have.get(t) {
            None if !missing_tables.contains(t) => missing_tables.push(t.clone()),
            None => {}
            Some(cols) if !cols.contains(c) => {
                missing_columns.push(format!("{t}.{c}"));
                for alike in look_alikes(c, cols.iter()) {
                    hints.push(format!("`{t}` has column `{alike}`, not `{c}`"));
                }
            }
            _ => {}
        }
    }
    if missing_tables.is_empty() && missing_columns.is_empty() {
        summary.push(format!(
            "{} schema object(s) present",
            w.tables.len() + w.columns.len()
        ));
        return o.evidence(format!(
            "✓ {} table(s) and {} column(s) exist",
            w.tables.len(),
            w.columns.len()
        ));
    }
    let mut o = o;
    for t in &missing_tables {
        o = o.evidence(format!("✗ table {t} is missing"));
    }
    for c in &missing_columns {
        o = o.evidence(format!("✗ column {c} is missing"));
    }
    for h in &hints {
        o = o.evidence(format!("found: {h}"));
    }
    let mut parts = Vec::new();
    if !missing_tables.is_empty() {
        parts.push(format!("table(s) {}", missing_tables.join(", ")));
    }
    if !missing_columns.is_empty() {
        parts.push(format!("column(s) {}", missing_columns.join(", ")));
    }
    let o = o
        .capture("missing_tables", missing_tables.clone())
        .capture("missing_columns", missing_columns.clone());
    failed(
        o,
        format!("schema drift: missing {}", parts.join(" and ")),
        Fault::SchemaDrift {
            schema: schema.to_string(),
            missing_tables,
            missing_columns,
            hints,
        },
    )
}

/// A row as JSON, by column name.
pub type Row = serde_json::Map<String, serde_json::Value>;

/// Prepares the statement, binds `params` by their types and runs it.
async fn query(
    tx: &tokio_postgres::Transaction<'_>,
    q: &str,
    params: &[serde_json::Value],
    limit_ms: u64,
) -> Result<Vec<Row>, Box<Observation>> {
    let fail = |e: &tokio_postgres::Error| {
        let (s, f) = sql_fault(e, limit_ms);
        Box::new(Observation::fail(s, f).evidence(format!("query: {q}")))
    };
    let stmt = tx.prepare(q).await.map_err(|e| fail(&e))?;
    if stmt.params().len() != params.len() {
        return Err(Box::new(Observation::error(format!(
            "the query has {} parameter(s) ($1…) but `params` gives {}",
            stmt.params().len(),
            params.len()
        ))));
    }
    let mut bound: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    for (i, (v, ty)) in params.iter().zip(stmt.params()).enumerate() {
        bound.push(
            bind(i, v, ty).map_err(|m| {
                Box::new(Observation::error(format!("invalid field `params`: {m}")))
            })?,
        );
    }
    let refs: Vec<&(dyn ToSql + Sync)> = bound
        .iter()
        .map(|b| b.as_ref() as &(dyn ToSql + Sync))
        .collect();
    let rows = tx.query(&stmt, &refs).await.map_err(|e| fail(&e))?;
    Ok(rows
        .iter()
        .map(|r| {
            r.columns()
                .iter()
                .enumerate()
                .map(|(i, c)| (c.name().to_string(), cell(r, i)))
                .collect()
        })
        .collect())
}

/// Shows the rows and holds them against `expect`: the row count, empty or
/// not, the first row's values.
pub fn judge_rows(
    o: Observation,
    q: &str,
    expect: Option<&Expect>,
    rows: &[Row],
    summary: &mut Vec<String>,
) -> Observation {
    let mut o = o
        .evidence(format!("query: {q}"))
        .evidence(format!("{} row(s)", rows.len()));
    for r in rows.iter().take(3) {
        o = o.evidence(serde_json::Value::Object(r.clone()).to_string());
    }
    o = o.capture("rows", rows.len() as u64);
    if let Some(first) = rows.first() {
        o = o.capture("first", serde_json::Value::Object(first.clone()));
    }
    if let Some((what, expected, actual)) = expect.and_then(|e| row_problem(e, rows)) {
        return failed(
            o,
            format!("the query's {what} is {actual}, expected {expected}"),
            Fault::SqlAssertion {
                what,
                expected,
                actual,
            },
        );
    }
    summary.push(format!("query returned {} row(s) as expected", rows.len()));
    o
}

/// The first expectation the rows miss: what, expected, actual.
fn row_problem(e: &Expect, rows: &[Row]) -> Option<(String, String, String)> {
    if let Some(n) = e.rows
        && rows.len() as u64 != n
    {
        return Some(("row count".into(), n.to_string(), rows.len().to_string()));
    }
    if let Some(empty) = e.empty
        && empty != rows.is_empty()
    {
        return Some((
            "row count".into(),
            if empty { "0" } else { "at least 1" }.into(),
            rows.len().to_string(),
        ));
    }
    e.values.iter().find_map(|(col, a)| {
        let v = rows.first().and_then(|r| r.get(col));
        a.check(v).err().map(|expected| {
            (
                format!("`{col}` in the first row"),
                expected,
                v.map(|v| v.to_string()).unwrap_or_else(|| "absent".into()),
            )
        })
    })
}

impl Check for Sql {
    const KIND: &'static str = "sql";
    const HELP: &'static str = "runs a query in a READ ONLY transaction with a statement timeout and bound $1 parameters, asserts rows; tables_exist / columns_exist find schema drift";
    type Params = Params;
    const LITERAL_FIELDS: &'static [&'static str] = LITERAL_FIELDS;

    async fn run(p: Params, ctx: Ctx) -> Observation {
        let u = match super::db_url(&p.url) {
            Ok(u) => u,
            Err(o) => return *o,
        };
        if p.query.is_none() && p.tables_exist.is_none() && p.columns_exist.is_empty() {
            return Observation::error("give `query`, `tables_exist` or `columns_exist`");
        }
        if p.query.is_none() && (p.expect.is_some() || !p.params.is_empty()) {
            return Observation::error("`expect` and `params` need a `query`");
        }
        let limit = p.statement_timeout.map(|d| d.0).unwrap_or(ctx.timeout);
        let limit_ms = (limit.as_millis() as u64).max(1);
        let schema = p
            .schema
            .clone()
            .or_else(|| u.param("schema").map(str::to_string))
            .unwrap_or_else(|| "public".into());
        let cmd = format!(
            "psql \"postgresql://{}@{}:{}/{}\" -c 'BEGIN READ ONLY; …'",
            u.user, u.host, u.port, u.database
        );
        let mut client = match activity::connect(&u, "chatops", ctx.timeout).await {
            Ok(c) => c,
            Err(e) => {
                return Observation::fail(
                    format!("cannot log in: {e}"),
                    crate::diagnose::pg::connect_fault(&e, &u),
                )
                .command(cmd);
            }
        };
        let tx = match client.build_transaction().read_only(true).start().await {
            Ok(t) => t,
            Err(e) => {
                let (s, f) = sql_fault(&e, limit_ms);
                return Observation::fail(s, f).command(cmd);
            }
        };
        // An integer, formatted: nothing from the playbook reaches this text.
        // The SELECT takes the transaction's snapshot, so a later
        // `SET TRANSACTION READ WRITE` cannot lift the read-only mode.
        if let Err(e) = tx
            .batch_execute(&format!(
                "SET LOCAL statement_timeout = {limit_ms}; SELECT 1"
            ))
            .await
        {
            let (s, f) = sql_fault(&e, limit_ms);
            return Observation::fail(s, f).command(cmd);
        }
        let mut o = Observation::pass("").command(cmd).evidence(format!(
            "READ ONLY transaction, statement_timeout {limit_ms} ms, schema `{schema}`"
        ));
        let mut summary = Vec::new();

        // Schema shortcuts.
        let wanted = Wanted::of(&p);
        if !wanted.is_empty() {
            let have = match catalog(&tx, &schema).await {
                Ok(c) => c,
                Err(e) => {
                    let (s, f) = sql_fault(&e, limit_ms);
                    return Observation::fail(s, f);
                }
            };
            o = judge_schema(o, &wanted, &have, &schema, &mut summary);
            if o.status == Status::Fail {
                let _ = tx.rollback().await;
                return o;
            }
        }

        // The statement.
        if let Some(q) = &p.query {
            let rows = match query(&tx, q, &p.params, limit_ms).await {
                Ok(r) => r,
                Err(o) => {
                    let _ = tx.rollback().await;
                    return *o;
                }
            };
            o = judge_rows(o, q, p.expect.as_ref(), &rows, &mut summary);
            if o.status == Status::Fail {
                let _ = tx.rollback().await;
                return o;
            }
        }
        let _ = tx.rollback().await;
        o.summary = summary.join("; ");
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog_of(tables: &[(&str, &[&str])]) -> Catalog {
        tables
            .iter()
            .map(|(t, cols)| (t.to_string(), cols.iter().map(|c| c.to_string()).collect()))
            .collect()
    }

    fn wanted(p: serde_json::Value) -> Wanted {
        let mut v = p;
        v["url"] = "postgresql://u@h/db".into();
        Wanted::of(&serde_json::from_value(v).unwrap())
    }

    #[test]
    fn schema_present_and_drifted() {
        let have = catalog_of(&[
            ("messages", &["id", "messageType", "content"]),
            ("messageReads", &["id"]),
            ("users", &["id"]),
        ]);
        let mut summary = Vec::new();
        let w = wanted(
            serde_json::json!({"tables_exist": ["users"], "columns_exist": ["messages.content"]}),
        );
        let o = judge_schema(Observation::pass(""), &w, &have, "public", &mut summary);
        assert_eq!(o.status, Status::Pass);
        assert_eq!(o.evidence, ["✓ 1 table(s) and 1 column(s) exist"]);
        assert_eq!(summary, ["2 schema object(s) present"]);
        let w = wanted(
            serde_json::json!({"columns_exist": ["messages.type", "message_reads", "attachments.id"]}),
        );
        let o = judge_schema(Observation::pass(""), &w, &have, "public", &mut summary);
        assert_eq!(o.status, Status::Fail);
        assert_eq!(
            o.summary,
            "schema drift: missing table(s) message_reads, attachments and column(s) messages.type"
        );
        assert_eq!(
            o.evidence,
            [
                "✗ table message_reads is missing",
                "✗ table attachments is missing",
                "✗ column messages.type is missing",
                "found: table `messageReads` instead of `message_reads`",
                "found: `messages` has column `messageType`, not `type`",
            ]
        );
        assert_eq!(
            o.captures["missing_columns"],
            serde_json::json!(["messages.type"])
        );
        assert!(matches!(o.fault, Some(Fault::SchemaDrift { .. })));
        let all = wanted(serde_json::json!({"tables_exist": true}));
        assert_eq!(all.tables.len(), crate::support::chat_backend::TABLES.len());
    }

    #[test]
    fn rows_against_expectations() {
        let rows: Vec<Row> = vec![
            serde_json::from_value(serde_json::json!({"count": 3, "name": "general"})).unwrap(),
        ];
        let expect = |v: serde_json::Value| -> Expect { serde_json::from_value(v).unwrap() };
        let mut summary = Vec::new();
        let e = expect(serde_json::json!({"rows": 1, "values": {"count": {"gte": 1}}}));
        let o = judge_rows(
            Observation::pass(""),
            "SELECT 1",
            Some(&e),
            &rows,
            &mut summary,
        );
        assert_eq!(o.status, Status::Pass);
        assert_eq!(
            o.evidence,
            [
                "query: SELECT 1",
                "1 row(s)",
                "{\"count\":3,\"name\":\"general\"}"
            ]
        );
        assert_eq!(summary, ["query returned 1 row(s) as expected"]);
        assert_eq!(o.captures["first"]["name"], serde_json::json!("general"));
        let e = expect(serde_json::json!({"empty": true}));
        let o = judge_rows(Observation::pass(""), "q", Some(&e), &rows, &mut summary);
        assert_eq!(o.summary, "the query's row count is 1, expected 0");
        let e = expect(serde_json::json!({"values": {"count": {"gte": 5}}}));
        let o = judge_rows(Observation::pass(""), "q", Some(&e), &rows, &mut summary);
        assert_eq!(
            o.summary,
            "the query's `count` in the first row is 3, expected >= 5"
        );
        assert!(matches!(o.fault, Some(Fault::SqlAssertion { .. })));
        let e = expect(serde_json::json!({"values": {"missing": {"exists": true}}}));
        let o = judge_rows(Observation::pass(""), "q", Some(&e), &[], &mut summary);
        assert_eq!(
            o.summary,
            "the query's `missing` in the first row is absent, expected to exist"
        );
    }

    #[test]
    fn look_alikes_find_the_seeds_drift() {
        let cols: Vec<String> = vec!["id".into(), "messageType".into(), "content".into()];
        assert_eq!(look_alikes("type", cols.iter()), ["messageType"]);
        let tables: Vec<String> = vec!["messageReads".into(), "users".into()];
        assert_eq!(
            look_alikes("message_reads", tables.iter()),
            ["messageReads"]
        );
        assert!(look_alikes("attachments", tables.iter()).is_empty());
    }

    #[test]
    fn binds_by_the_parameter_type() {
        assert!(bind(0, &serde_json::json!(5), &Type::INT4).is_ok());
        assert!(bind(0, &serde_json::json!("5"), &Type::INT8).is_ok());
        assert!(bind(0, &serde_json::json!("x"), &Type::INT4).is_err());
        assert!(bind(0, &serde_json::json!("a'b"), &Type::TEXT).is_ok());
        let e = bind(1, &serde_json::json!("x"), &Type::UUID).err().unwrap();
        assert!(e.contains("$2::text::uuid"), "{e}");
    }
}
