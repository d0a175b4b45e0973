//! `prisma_schema`: the backend's Prisma schema (found in its project)
//! against the database's catalog, before any request: tables and columns
//! the schema names that the database lacks (the seed's `messageType` vs
//! `type`), type and nullability mismatches, enum values, and the indexes
//! the schema declares (extra ones in the database are information).
//!
//! The run reads the schema and `information_schema` / `pg_indexes` /
//! `pg_enum` (read-only); [`judge`] compares them.

use super::project::{self, BackendAt};
use super::util::judged;
use super::{Check, Ctx, Observation, Status};
use crate::diagnose::{DriftItem, Fault};
use crate::probe::project::layout;
use crate::probe::project::schema::{IndexKind, Schema, pg_udt};
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

pub struct PrismaSchema;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// PostgreSQL URL to compare with, e.g. `${target.database_url}`.
    pub url: String,
    /// The project directory (`--project`, `${target.project}`); empty: the backend process's working directory.
    pub project: Option<String>,
    /// The backend: `{host, port}`; its process's working directory is the project.
    pub process: Option<BackendAt>,
    /// Database schema of models without `@@schema` (default: the URL's `schema`, else `public`).
    pub schema: Option<String>,
    /// Compare indexes too (default true): a declared index the database lacks warns.
    #[serde(default = "yes")]
    pub indexes: bool,
}

fn yes() -> bool {
    true
}

/// A column as the catalog has it.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub udt: String,
    pub nullable: bool,
}

/// An index as pg_indexes has it.
#[derive(Debug, Clone, PartialEq)]
pub struct DbIndex {
    pub name: String,
    pub unique: bool,
    pub columns: Vec<String>,
}

/// What the database holds, by `(schema, table)`.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub tables: BTreeMap<(String, String), BTreeMap<String, Column>>,
    pub indexes: BTreeMap<(String, String), Vec<DbIndex>>,
    /// Enum types by `(schema, name)`: their labels.
    pub enums: BTreeMap<(String, String), Vec<String>>,
}

/// The columns of an index from its definition: `… USING btree
/// ("conversationId", "createdAt" DESC)` → `[conversationId, createdAt]`.
pub fn index_columns(def: &str) -> Vec<String> {
    let Some(i) = def.find(" USING ") else {
        return Vec::new();
    };
    let rest = &def[i..];
    let Some(open) = rest.find('(') else {
        return Vec::new();
    };
    let mut depth = 0;
    let mut end = rest.len();
    for (j, c) in rest[open..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    end = open + j;
                    break;
                }
            }
            _ => {}
        }
    }
    let inner = &rest[open + 1..end];
    let mut cols = Vec::new();
    let mut cur = String::new();
    let mut q = false;
    let mut d = 0;
    for c in inner.chars() {
        match c {
            '"' => q = !q,
            '(' if !q => d += 1,
            ')' if !q => d -= 1,
            ',' if !q && d == 0 => {
                cols.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    cols.push(cur);
    cols.iter()
        .map(|c| {
            let c = c.trim();
            if let Some(rest) = c.strip_prefix('"') {
                rest.split('"').next().unwrap_or("").to_string()
            } else {
                c.split_whitespace().next().unwrap_or("").to_string()
            }
        })
        .collect()
}

async fn catalog(
    client: &tokio_postgres::Client,
    schemas: &[String],
) -> Result<Catalog, tokio_postgres::Error> {
    let mut c = Catalog::default();
    for r in client
        .query(
            "SELECT table_schema::text, table_name::text, column_name::text, udt_name::text, is_nullable::text
             FROM information_schema.columns WHERE table_schema = ANY($1)",
            &[&schemas],
        )
        .await?
    {
        let key = (r.get::<_, String>(0), r.get::<_, String>(1));
        c.tables.entry(key).or_default().insert(
            r.get(2),
            Column {
                udt: r.get(3),
                nullable: r.get::<_, String>(4) == "YES",
            },
        );
    }
    for r in client
        .query(
            "SELECT schemaname::text, tablename::text, indexname::text, indexdef FROM pg_indexes WHERE schemaname = ANY($1)",
            &[&schemas],
        )
        .await?
    {
        let def: String = r.get(3);
        c.indexes
            .entry((r.get(0), r.get(1)))
            .or_default()
            .push(DbIndex {
                name: r.get(2),
                unique: def.starts_with("CREATE UNIQUE INDEX"),
                columns: index_columns(&def),
            });
    }
    for r in client
        .query(
            "SELECT n.nspname::text, t.typname::text, e.enumlabel::text FROM pg_enum e
             JOIN pg_type t ON t.oid = e.enumtypid JOIN pg_namespace n ON n.oid = t.typnamespace
             WHERE n.nspname = ANY($1) ORDER BY t.typname, e.enumsortorder",
            &[&schemas],
        )
        .await?
    {
        c.enums
            .entry((r.get(0), r.get(1)))
            .or_default()
            .push(r.get(2));
    }
    Ok(c)
}

fn norm(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

/// Names among `have` that look like `want` (`messageType` for `type`).
fn look_alikes<'a>(want: &str, have: impl Iterator<Item = &'a String>) -> Vec<String> {
    let w = norm(want);
    have.filter(|h| {
        let n = norm(h);
        n == w || (n.len() >= 3 && w.len() >= 3 && (n.contains(&w) || w.contains(&n)))
    })
    .cloned()
    .collect()
}

/// The schema against the catalog: column drift (first) and missing
/// indexes (second), and information lines (extra indexes).
pub fn judge(
    s: &Schema,
    db: &Catalog,
    default_schema: &str,
) -> (Vec<DriftItem>, Vec<DriftItem>, Vec<String>) {
    let mut drift = Vec::new();
    let mut idx = Vec::new();
    let mut info = Vec::new();
    for m in s.models.iter().filter(|m| !m.ignored) {
        let sch = m
            .db_schema
            .clone()
            .unwrap_or_else(|| default_schema.to_string());
        let file = m.at.rsplit_once(':').map(|(f, _)| f).unwrap_or(&m.at);
        let at = |line: usize| format!("{file}:{line}");
        let key = (sch.clone(), m.table.clone());
        let Some(cols) = db.tables.get(&key) else {
            let names: Vec<String> = db
                .tables
                .keys()
                .filter(|(x, _)| *x == sch)
                .map(|(_, t)| t.clone())
                .collect();
            let alike = look_alikes(&m.table, names.iter());
            drift.push(DriftItem {
                model: m.name.clone(),
                field: None,
                problem: "missing_table".into(),
                expected: format!("table {sch}.{}", m.table),
                actual: if alike.is_empty() {
                    "no such table".into()
                } else {
                    format!("no such table; there is {}", alike.join(", "))
                },
                at: m.at.clone(),
            });
            continue;
        };
        let claimed: BTreeSet<&str> = m.fields.iter().map(|f| f.column.as_str()).collect();
        for f in m.fields.iter().filter(|f| !f.ignored && !s.is_model(&f.ty)) {
            let want_udt = pg_udt(s, f);
            let shown_ty = want_udt.clone().unwrap_or_else(|| f.ty.clone());
            let null = if f.optional { "NULL" } else { "NOT NULL" };
            let expected = format!("column {}.{} ({shown_ty} {null})", m.table, f.column);
            let Some(c) = cols.get(&f.column) else {
                let free: Vec<String> = cols
                    .keys()
                    .filter(|k| !claimed.contains(k.as_str()))
                    .cloned()
                    .collect();
                let alike = look_alikes(&f.column, free.iter());
                drift.push(DriftItem {
                    model: m.name.clone(),
                    field: Some(f.name.clone()),
                    problem: "missing_column".into(),
                    expected,
                    actual: if alike.is_empty() {
                        "no such column".into()
                    } else {
                        format!("no such column; {} has {}", m.table, alike.join(", "))
                    },
                    at: at(f.line),
                });
                continue;
            };
            if let Some(u) = &want_udt
                && *u != c.udt
            {
                drift.push(DriftItem {
                    model: m.name.clone(),
                    field: Some(f.name.clone()),
                    problem: "type".into(),
                    expected: expected.clone(),
                    actual: format!("{}.{} is {}", m.table, f.column, c.udt),
                    at: at(f.line),
                });
            }
            // A list column is NOT NULL in Prisma's migrations but may be
            // NULL in older databases; only scalars are compared.
            if !f.list && f.optional != c.nullable {
                drift.push(DriftItem {
                    model: m.name.clone(),
                    field: Some(f.name.clone()),
                    problem: "nullability".into(),
                    expected,
                    actual: format!(
                        "{}.{} is {}",
                        m.table,
                        f.column,
                        if c.nullable { "NULL" } else { "NOT NULL" }
                    ),
                    at: at(f.line),
                });
            }
            if let Some(e) = s.enum_named(&f.ty) {
                let ek = (sch.clone(), e.db_name.clone());
                let have = db.enums.get(&ek);
                let missing: Vec<&String> = e
                    .values
                    .iter()
                    .filter(|v| !have.is_some_and(|h| h.contains(v)))
                    .collect();
                if !missing.is_empty() && !drift.iter().any(|d| d.model == e.name) {
                    drift.push(DriftItem {
                        model: e.name.clone(),
                        field: None,
                        problem: "enum_value".into(),
                        expected: format!("enum {sch}.{} with {}", e.db_name, e.values.join(", ")),
                        actual: match have {
                            None => "no such enum type".into(),
                            Some(h) => format!(
                                "it lacks {} (has {})",
                                missing
                                    .iter()
                                    .map(|v| v.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", "),
                                h.join(", ")
                            ),
                        },
                        at: at(f.line),
                    });
                }
            }
        }
        let have_idx = db.indexes.get(&key).cloned().unwrap_or_default();
        let mut used = BTreeSet::new();
        for i in &m.indexes {
            let cols = m.columns_of(&i.fields);
            let unique = i.kind != IndexKind::Index;
            let found = have_idx
                .iter()
                .position(|h| h.columns == cols && (h.unique || !unique));
            match found {
                Some(p) => {
                    used.insert(p);
                }
                None => idx.push(DriftItem {
                    model: m.name.clone(),
                    field: None,
                    problem: "index".into(),
                    expected: format!(
                        "{} {}on {} ({})",
                        match i.kind {
                            IndexKind::Id => "primary key",
                            IndexKind::Unique => "unique index",
                            IndexKind::Index => "index",
                        },
                        i.map.as_ref().map(|n| format!("{n} ")).unwrap_or_default(),
                        m.table,
                        cols.join(", ")
                    ),
                    actual: "no index on these columns".into(),
                    at: m.at.clone(),
                }),
            }
        }
        for (p, h) in have_idx.iter().enumerate() {
            if !used.contains(&p) {
                info.push(format!(
                    "the database has {}index {} on {} ({}) that the schema does not declare",
                    if h.unique { "unique " } else { "" },
                    h.name,
                    m.table,
                    h.columns.join(", ")
                ));
            }
        }
    }
    (drift, idx, info)
}

impl Check for PrismaSchema {
    const KIND: &'static str = "prisma_schema";
    const HELP: &'static str = "the backend's Prisma schema (from its project directory) against the database: missing tables and columns, types, nullability, enum values, indexes";
    type Params = Params;

    async fn run(p: Params, ctx: Ctx) -> Observation {
        let loc = match project::locate(p.project.as_deref(), p.process.as_ref()) {
            Ok(l) => l,
            Err(o) => return *o,
        };
        let Some(src) = layout::schema_source(&loc.dir) else {
            return Observation::skipped(format!(
                "skipped: no Prisma schema in {} (package.json's prisma.schema, prisma.config.ts, prisma/schema.prisma, prisma/schema/, schema.prisma)",
                loc.dir.display()
            ))
            .evidence(project::project_line(&loc));
        };
        let read = match layout::read_schema(src, &loc.dir) {
            Ok(r) => r,
            Err(e) => {
                return Observation::error(format!("cannot read the Prisma schema: {e}"))
                    .evidence(project::project_line(&loc));
            }
        };
        if let Some(other) = read
            .schema
            .provider
            .as_deref()
            .filter(|p| !matches!(*p, "postgresql" | "postgres"))
        {
            return Observation::skipped(format!(
                "skipped: the schema's datasource is {other}, not PostgreSQL"
            ))
            .evidence(project::project_line(&loc));
        }
        let (u, client) = match project::read_only(&p.url, ctx.timeout).await {
            Ok(c) => c,
            Err(o) => return (*o).evidence(project::project_line(&loc)),
        };
        let default = project::db_schema(p.schema.as_deref(), &u);
        let mut schemas: Vec<String> = read
            .schema
            .models
            .iter()
            .filter_map(|m| m.db_schema.clone())
            .collect();
        schemas.push(default.clone());
        schemas.sort();
        schemas.dedup();
        let db = match catalog(&client, &schemas).await {
            Ok(c) => c,
            Err(e) => {
                return Observation::error(format!(
                    "cannot read the catalog: {}",
                    crate::pg::error_chain(&e)
                ));
            }
        };
        let files: Vec<String> = read
            .source
            .files
            .iter()
            .map(|f| project::rel(&loc, f))
            .collect();
        let o = Observation::pass("")
            .command(format!(
                "cd {} && npx prisma migrate diff --from-url \"$DATABASE_URL\" --to-schema-datamodel {} --script",
                loc.dir.display(),
                project::rel(&loc, &read.source.path)
            ))
            .evidence(project::project_line(&loc))
            .evidence(format!("schema: {} ({})", files.join(", "), read.source.why));
        let database = format!("schema `{default}` of {}", u.database);
        let models = read.schema.models.iter().filter(|m| !m.ignored).count();
        judged_schema(
            o,
            &read.schema,
            &db,
            &default,
            p.indexes,
            files.join(", "),
            database,
            models,
        )
    }
}

/// Turns [`judge`]'s lists into the observation.
#[allow(clippy::too_many_arguments)]
fn judged_schema(
    mut o: Observation,
    s: &Schema,
    db: &Catalog,
    default: &str,
    indexes: bool,
    schema: String,
    database: String,
    models: usize,
) -> Observation {
    let (drift, idx, info) = judge(s, db, default);
    for d in &drift {
        o = o.evidence(format!(
            "✗ {}{} ({}): {} — {}",
            d.model,
            d.field
                .as_ref()
                .map(|f| format!(".{f}"))
                .unwrap_or_default(),
            d.at,
            d.expected,
            d.actual
        ));
    }
    if indexes {
        for d in &idx {
            o = o.evidence(format!(
                "! {} ({}): {} — {}",
                d.model, d.at, d.expected, d.actual
            ));
        }
        for i in &info {
            o = o.evidence(format!("info: {i}"));
        }
    }
    if let Some(first) = drift.first() {
        let n = drift.len();
        let summary = format!(
            "{}{}: {} — {}{}",
            first.model,
            first
                .field
                .as_ref()
                .map(|f| format!(".{f}"))
                .unwrap_or_default(),
            first.expected,
            first.actual,
            if n > 1 {
                format!(" (and {} more)", n - 1)
            } else {
                String::new()
            }
        );
        return judged(
            o,
            Status::Fail,
            format!("the Prisma schema and the database disagree: {summary}"),
            Fault::PrismaDrift {
                schema,
                database,
                items: drift,
            },
        );
    }
    if indexes && !idx.is_empty() {
        let summary = format!(
            "{} index(es) the schema declares are missing: {}",
            idx.len(),
            idx[0].expected
        );
        return judged(
            o,
            Status::Warn,
            summary,
            Fault::PrismaIndexMissing {
                schema,
                database,
                items: idx,
            },
        );
    }
    o.summary = format!("{models} model(s) match the database's tables, columns and indexes");
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::project::schema::parse;

    const SCHEMA: &str = r#"
enum Role {
  ADMIN
  MEMBER
  @@map("user_role")
}
model User {
  id       String  @id
  email    String  @unique
  nickname String?
  role     Role    @default(MEMBER)
  messages Message[]
  @@map("users")
}
model Message {
  id             String   @id
  conversationId String
  messageType    String   @default("TEXT")
  senderId       String
  sender         User     @relation(fields: [senderId], references: [id])
  createdAt      DateTime @default(now())
  @@index([conversationId, createdAt(sort: Desc)], map: "messages_conversation_created_idx")
  @@map("messages")
}
"#;

    fn col(udt: &str, nullable: bool) -> Column {
        Column {
            udt: udt.into(),
            nullable,
        }
    }

    /// The sandbox's catalog: `messages.type`, not `messageType`.
    fn catalog() -> Catalog {
        let mut c = Catalog::default();
        let k = |t: &str| ("public".to_string(), t.to_string());
        c.tables.insert(
            k("users"),
            [
                ("id", col("text", false)),
                ("email", col("text", false)),
                ("nickname", col("text", true)),
                ("role", col("user_role", false)),
            ]
            .into_iter()
            .map(|(a, b)| (a.to_string(), b))
            .collect(),
        );
        c.tables.insert(
            k("messages"),
            [
                ("id", col("text", false)),
                ("conversationId", col("text", false)),
                ("type", col("text", false)),
                ("senderId", col("text", false)),
                ("createdAt", col("timestamp", false)),
            ]
            .into_iter()
            .map(|(a, b)| (a.to_string(), b))
            .collect(),
        );
        let ix = |n: &str, u: bool, cols: &[&str]| DbIndex {
            name: n.into(),
            unique: u,
            columns: cols.iter().map(|c| c.to_string()).collect(),
        };
        c.indexes.insert(
            k("users"),
            vec![
                ix("users_pkey", true, &["id"]),
                ix("users_email_key", true, &["email"]),
            ],
        );
        c.indexes.insert(
            k("messages"),
            vec![
                ix("messages_pkey", true, &["id"]),
                ix(
                    "messages_conversation_created_idx",
                    false,
                    &["conversationId", "createdAt"],
                ),
                ix("messages_sender_idx", false, &["senderId"]),
            ],
        );
        c.enums.insert(
            ("public".into(), "user_role".into()),
            vec!["ADMIN".into(), "MEMBER".into()],
        );
        c
    }

    #[test]
    fn the_seed_s_drift_names_model_field_and_what_exists_instead() {
        let s = parse(SCHEMA, "prisma/schema.prisma").expect("parses");
        let (drift, idx, info) = judge(&s, &catalog(), "public");
        assert_eq!(drift.len(), 1, "{drift:#?}");
        let d = &drift[0];
        assert_eq!(
            (d.model.as_str(), d.field.as_deref()),
            ("Message", Some("messageType"))
        );
        assert_eq!(d.problem, "missing_column");
        assert_eq!(d.expected, "column messages.messageType (text NOT NULL)");
        assert_eq!(d.actual, "no such column; messages has type");
        assert_eq!(d.at, "prisma/schema.prisma:18");
        assert!(idx.is_empty(), "{idx:#?}");
        assert_eq!(
            info,
            [
                "the database has index messages_sender_idx on messages (senderId) that the schema does not declare"
            ]
        );
        let o = judged_schema(
            Observation::pass(""),
            &s,
            &catalog(),
            "public",
            true,
            "s".into(),
            "d".into(),
            2,
        );
        assert_eq!(o.status, Status::Fail);
        assert_eq!(
            o.fault.as_ref().map(Fault::cause_code),
            Some("prisma_drift")
        );
        assert!(o.summary.contains("Message.messageType"), "{}", o.summary);
    }

    #[test]
    fn a_matching_schema_passes_and_other_mismatches_are_named() {
        let fixed = SCHEMA.replace(
            "messageType    String   @default(\"TEXT\")",
            "type           String   @default(\"TEXT\")",
        );
        let s = parse(&fixed, "s").expect("parses");
        let (drift, idx, _) = judge(&s, &catalog(), "public");
        assert!(drift.is_empty() && idx.is_empty(), "{drift:#?} {idx:#?}");
        let o = judged_schema(
            Observation::pass(""),
            &s,
            &catalog(),
            "public",
            true,
            "s".into(),
            "d".into(),
            2,
        );
        assert_eq!(o.status, Status::Pass);

        let mut db = catalog();
        let users = db
            .tables
            .get_mut(&("public".into(), "users".into()))
            .expect("users");
        users.insert("nickname".into(), col("varchar", false));
        db.indexes
            .insert(("public".into(), "messages".into()), vec![]);
        db.enums
            .insert(("public".into(), "user_role".into()), vec!["ADMIN".into()]);
        let (drift, idx, _) = judge(&s, &db, "public");
        let problems: Vec<&str> = drift.iter().map(|d| d.problem.as_str()).collect();
        assert_eq!(
            problems,
            ["type", "nullability", "enum_value"],
            "{drift:#?}"
        );
        assert_eq!(drift[0].actual, "users.nickname is varchar");
        assert_eq!(drift[2].actual, "it lacks MEMBER (has ADMIN)");
        assert_eq!(idx.len(), 2, "{idx:#?}");
        assert!(
            idx[1]
                .expected
                .contains("messages_conversation_created_idx")
        );
        let mut db = catalog();
        db.indexes
            .insert(("public".into(), "messages".into()), vec![]);
        let o = judged_schema(
            Observation::pass(""),
            &s,
            &db,
            "public",
            true,
            "s".into(),
            "d".into(),
            2,
        );
        assert_eq!(o.status, Status::Warn);
        let o = judged_schema(
            Observation::pass(""),
            &s,
            &db,
            "public",
            false,
            "s".into(),
            "d".into(),
            2,
        );
        assert_eq!(o.status, Status::Pass);

        let mut db = catalog();
        db.tables.remove(&("public".into(), "messages".into()));
        db.tables
            .insert(("public".into(), "Message".into()), Default::default());
        let (drift, _, _) = judge(&s, &db, "public");
        assert_eq!(drift[0].problem, "missing_table");
        assert_eq!(drift[0].actual, "no such table; there is Message");
    }

    #[test]
    fn index_definitions() {
        assert_eq!(
            index_columns(
                r#"CREATE INDEX messages_conversation_created_idx ON public.messages USING btree ("conversationId", "createdAt" DESC)"#
            ),
            ["conversationId", "createdAt"]
        );
        assert_eq!(
            index_columns(
                "CREATE UNIQUE INDEX users_email_key ON public.users USING btree (email) WHERE (email IS NOT NULL)"
            ),
            ["email"]
        );
        assert_eq!(
            index_columns("CREATE INDEX x ON t USING btree (lower(email))"),
            ["lower(email)"]
        );
        assert!(index_columns("nonsense").is_empty());
    }
}
