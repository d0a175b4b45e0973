//! A small parser for the part of Prisma's schema language that column
//! drift needs: models (fields, types, optionality, lists, `@map`,
//! `@@map`, `@id`, `@@id`, `@unique`, `@@unique`, `@@index`, `@relation`,
//! `@db.*`, `@ignore`/`@@ignore`), enums (`@map`/`@@map` of values and
//! names), generators (provider and output) and the datasource's
//! `schemas`. Prisma's own parser is not published as a crate (see the
//! reference facts), so this reads the subset, line by line, as Prisma's
//! grammar lays it out: one field or attribute per line.

use super::lex::{attributes, field_list, first_string, logical_lines, named_arg, split_top};
use std::collections::BTreeMap;

/// A parsed schema (one file, or the files of a schema folder merged).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Schema {
    pub models: Vec<Model>,
    pub enums: Vec<Enum>,
    pub generators: Vec<Generator>,
    /// The datasource's provider (`postgresql`), when given.
    pub provider: Option<String>,
    /// The datasource's `schemas = [...]` (multi-schema), when given.
    pub schemas: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub name: String,
    /// The table: `@@map("…")`, else the model's name.
    pub table: String,
    /// `@@schema("…")`, when the datasource has several.
    pub db_schema: Option<String>,
    pub fields: Vec<Field>,
    /// `@@index`, `@@unique`, `@@id`, and the `@id`/`@unique` of fields.
    pub indexes: Vec<Index>,
    pub ignored: bool,
    /// Where the model starts: `file:line`.
    pub at: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    /// `@map("…")`, else the field's name.
    pub column: String,
    /// The type as written, without `?` or `[]` (`String`, `Role`, `User`).
    pub ty: String,
    pub optional: bool,
    pub list: bool,
    /// `@db.VarChar` → `VarChar` (arguments dropped).
    pub native: Option<String>,
    pub id: bool,
    pub unique: bool,
    /// `@relation(…)` was given.
    pub relation: bool,
    pub ignored: bool,
    /// `Unsupported("…")`.
    pub unsupported: bool,
    pub line: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKind {
    Id,
    Unique,
    Index,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Index {
    pub kind: IndexKind,
    /// Field names, in order (sort and length arguments dropped).
    pub fields: Vec<String>,
    /// `map: "…"`, the index's name in the database, when given.
    pub map: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Enum {
    pub name: String,
    /// The type's name in the database: `@@map("…")`, else the name.
    pub db_name: String,
    /// Values as the database stores them (`@map` applied).
    pub values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Generator {
    pub name: String,
    pub provider: String,
    pub output: Option<String>,
}

/// A line the parser could not read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct ParseError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl Schema {
    pub fn model(&self, name: &str) -> Option<&Model> {
        self.models.iter().find(|m| m.name == name)
    }
    pub fn enum_named(&self, name: &str) -> Option<&Enum> {
        self.enums.iter().find(|e| e.name == name)
    }
    /// Whether `ty` names a model (a relation field: no column).
    pub fn is_model(&self, ty: &str) -> bool {
        self.models.iter().any(|m| m.name == ty)
    }
    /// Merges another file's blocks (a schema folder).
    pub fn merge(&mut self, other: Schema) {
        self.models.extend(other.models);
        self.enums.extend(other.enums);
        self.generators.extend(other.generators);
        if self.provider.is_none() {
            self.provider = other.provider;
        }
        if self.schemas.is_empty() {
            self.schemas = other.schemas;
        }
    }
    /// Each model's columns as `table.column (Type?)`, for comparing two
    /// schemas (the one on disk and the generated client's copy).
    pub fn shape(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for m in self.models.iter().filter(|m| !m.ignored) {
            out.insert(format!("model {}", m.name), format!("table {}", m.table));
            for f in m
                .fields
                .iter()
                .filter(|f| !f.ignored && !self.is_model(&f.ty))
            {
                out.insert(
                    format!("{}.{}", m.name, f.name),
                    format!(
                        "column {} {}{}{}",
                        f.column,
                        f.ty,
                        if f.list { "[]" } else { "" },
                        if f.optional { "?" } else { "" }
                    ),
                );
            }
        }
        for e in &self.enums {
            out.insert(format!("enum {}", e.name), e.values.join(", "));
        }
        out
    }
}

/// A block index from `@@index(…)`, `@@unique(…)` or `@@id(…)`.
fn block_index(kind: IndexKind, args: &str) -> Index {
    let parts = split_top(args);
    let fields = parts
        .iter()
        .find(|p| p.starts_with('[') || p.trim_start().starts_with("fields:"))
        .map(|p| field_list(p.trim().trim_start_matches("fields:")))
        .unwrap_or_default();
    let map = named_arg(&parts, "map").and_then(first_string);
    Index { kind, fields, map }
}

/// Parses one schema file's text; `file` names it in errors and `at`.
pub fn parse(text: &str, file: &str) -> Result<Schema, ParseError> {
    let mut s = Schema::default();
    let lines = logical_lines(text);
    let mut i = 0;
    let err = |line: usize, message: String| ParseError {
        file: file.to_string(),
        line,
        message,
    };
    while i < lines.len() {
        let (n, l) = &lines[i];
        let words: Vec<&str> = l.split_whitespace().collect();
        let (kind, name) = match words.as_slice() {
            [k, name, "{"] | [k, name, "{", ..] => (*k, name.to_string()),
            [k, name_brace] if name_brace.ends_with('{') => {
                (*k, name_brace.trim_end_matches('{').to_string())
            }
            _ => {
                return Err(err(
                    *n,
                    format!("expected a block (`model Name {{`), found `{l}`"),
                ));
            }
        };
        let mut body = Vec::new();
        i += 1;
        let mut closed = false;
        while i < lines.len() {
            if lines[i].1 == "}" {
                closed = true;
                i += 1;
                break;
            }
            body.push(lines[i].clone());
            i += 1;
        }
        if !closed {
            return Err(err(*n, format!("`{kind} {name}` is not closed with `}}`")));
        }
        match kind {
            "model" | "view" => s
                .models
                .push(model(&name, &body, file, *n, kind == "view")?),
            "enum" => s.enums.push(enum_block(&name, &body)),
            "generator" => {
                let kv = key_values(&body);
                s.generators.push(Generator {
                    name,
                    provider: kv
                        .get("provider")
                        .and_then(|v| first_string(v))
                        .unwrap_or_default(),
                    output: kv.get("output").and_then(|v| first_string(v)),
                });
            }
            "datasource" => {
                let kv = key_values(&body);
                s.provider = kv.get("provider").and_then(|v| first_string(v));
                if let Some(v) = kv.get("schemas") {
                    s.schemas = split_top(v.trim().trim_start_matches('[').trim_end_matches(']'))
                        .iter()
                        .filter_map(|x| first_string(x))
                        .collect();
                }
            }
            // Composite types (MongoDB) and unknown blocks hold no tables.
            _ => {}
        }
    }
    Ok(s)
}

fn key_values(body: &[(usize, String)]) -> BTreeMap<String, String> {
    body.iter()
        .filter_map(|(_, l)| {
            let (k, v) = l.split_once('=')?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

fn enum_block(name: &str, body: &[(usize, String)]) -> Enum {
    let mut e = Enum {
        name: name.to_string(),
        db_name: name.to_string(),
        values: Vec::new(),
    };
    for (_, l) in body {
        let attrs = attributes(l);
        if l.starts_with("@@") {
            if let Some((_, a)) = attrs.iter().find(|(n, _)| n == "map") {
                e.db_name = first_string(a).unwrap_or(e.db_name.clone());
            }
            continue;
        }
        let Some(v) = l.split_whitespace().next() else {
            continue;
        };
        let stored = attrs
            .iter()
            .find(|(n, _)| n == "map")
            .and_then(|(_, a)| first_string(a))
            .unwrap_or_else(|| v.to_string());
        e.values.push(stored);
    }
    e
}

fn model(
    name: &str,
    body: &[(usize, String)],
    file: &str,
    line: usize,
    view: bool,
) -> Result<Model, ParseError> {
    let mut m = Model {
        name: name.to_string(),
        table: name.to_string(),
        db_schema: None,
        fields: Vec::new(),
        indexes: Vec::new(),
        ignored: view,
        at: format!("{file}:{line}"),
    };
    for (n, l) in body {
        if l.starts_with("@@") {
            for (a, args) in attributes(l) {
                match a.as_str() {
                    "map" => m.table = first_string(&args).unwrap_or(m.table.clone()),
                    "schema" => m.db_schema = first_string(&args),
                    "ignore" => m.ignored = true,
                    "index" => m.indexes.push(block_index(IndexKind::Index, &args)),
                    "unique" => m.indexes.push(block_index(IndexKind::Unique, &args)),
                    "id" => m.indexes.push(block_index(IndexKind::Id, &args)),
                    _ => {}
                }
            }
            continue;
        }
        let mut parts = l.splitn(2, char::is_whitespace);
        let fname = parts.next().unwrap_or("").to_string();
        let rest = parts.next().unwrap_or("").trim_start();
        if fname.is_empty() || rest.is_empty() {
            return Err(ParseError {
                file: file.to_string(),
                line: *n,
                message: format!("expected `name Type` in model {name}, found `{l}`"),
            });
        }
        // The type runs to the first space or attribute (Unsupported("…")
        // keeps its parentheses).
        let ty_end = if rest.starts_with("Unsupported(") {
            rest.find("\")").map(|i| {
                let mut e = i + 2;
                let b = rest.as_bytes();
                while e < b.len() && matches!(b[e], b'?' | b'[' | b']') {
                    e += 1;
                }
                e
            })
        } else {
            rest.find(|c: char| c.is_whitespace() || c == '@')
        }
        .unwrap_or(rest.len());
        let raw_ty = &rest[..ty_end];
        let attrs = attributes(&rest[ty_end..]);
        let list = raw_ty.ends_with("[]");
        let optional = raw_ty.ends_with('?');
        let ty = raw_ty
            .trim_end_matches('?')
            .trim_end_matches("[]")
            .to_string();
        let mut f = Field {
            column: fname.clone(),
            name: fname,
            unsupported: ty.starts_with("Unsupported("),
            ty,
            optional,
            list,
            native: None,
            id: false,
            unique: false,
            relation: false,
            ignored: false,
            line: *n,
        };
        for (a, args) in attrs {
            match a.as_str() {
                "map" => f.column = first_string(&args).unwrap_or(f.column.clone()),
                "id" => f.id = true,
                "unique" => f.unique = true,
                "relation" => f.relation = true,
                "ignore" => f.ignored = true,
                other => {
                    if let Some(t) = other.strip_prefix("db.") {
                        f.native = Some(t.to_string());
                    }
                }
            }
        }
        if f.id {
            m.indexes.push(Index {
                kind: IndexKind::Id,
                fields: vec![f.name.clone()],
                map: None,
            });
        }
        if f.unique {
            m.indexes.push(Index {
                kind: IndexKind::Unique,
                fields: vec![f.name.clone()],
                map: None,
            });
        }
        m.fields.push(f);
    }
    Ok(m)
}

impl Model {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
    /// The columns of an index's fields (`@map` applied).
    pub fn columns_of(&self, fields: &[String]) -> Vec<String> {
        fields
            .iter()
            .map(|f| {
                self.field(f)
                    .map(|x| x.column.clone())
                    .unwrap_or_else(|| f.clone())
            })
            .collect()
    }
}

/// The PostgreSQL type (`udt_name` in information_schema) Prisma gives a
/// scalar field, or None when it cannot say (a native type it does not
/// know, `Unsupported`). Enums map to their database name.
pub fn pg_udt(schema: &Schema, f: &Field) -> Option<String> {
    if f.unsupported {
        return None;
    }
    let base = if let Some(native) = &f.native {
        match native.as_str() {
            "Text" => "text",
            "VarChar" => "varchar",
            "Char" => "bpchar",
            "Uuid" => "uuid",
            "SmallInt" => "int2",
            "Integer" => "int4",
            "BigInt" => "int8",
            "Real" => "float4",
            "DoublePrecision" => "float8",
            "Decimal" => "numeric",
            "Money" => "money",
            "Timestamp" => "timestamp",
            "Timestamptz" => "timestamptz",
            "Date" => "date",
            "Time" => "time",
            "Timetz" => "timetz",
            "Boolean" => "bool",
            "Json" => "json",
            "JsonB" => "jsonb",
            "ByteA" => "bytea",
            "Xml" => "xml",
            "Inet" => "inet",
            "Citext" => "citext",
            "Bit" => "bit",
            "VarBit" => "varbit",
            "Oid" => "oid",
            _ => return None,
        }
        .to_string()
    } else {
        match f.ty.as_str() {
            "String" => "text".into(),
            "Int" => "int4".into(),
            "BigInt" => "int8".into(),
            "Float" => "float8".into(),
            "Decimal" => "numeric".into(),
            "Boolean" => "bool".into(),
            "DateTime" => "timestamp".into(),
            "Json" => "jsonb".into(),
            "Bytes" => "bytea".into(),
            other => schema.enum_named(other)?.db_name.clone(),
        }
    };
    Some(if f.list { format!("_{base}") } else { base })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A schema as real projects write them: the seed's chat models with
    /// Prisma's conventions (snake_case tables through @@map, camelCase
    /// columns), enums with mapped values, relations both ways, composite
    /// ids and uniques, native types, comments everywhere, a multi-line
    /// attribute, an ignored field and an Unsupported type.
    const REAL: &str = r#"
// This is your Prisma schema file,
// learn more about it in the docs: https://pris.ly/d/prisma-schema

generator client {
  provider        = "prisma-client-js"
  previewFeatures = ["fullTextSearch"]
}

generator typed {
  provider = "prisma-client"
  output   = "../src/generated/prisma" // the new generator needs an output
}

datasource db {
  provider = "postgresql"
  url      = env("DATABASE_URL")
  schemas  = ["public", "audit"]
}

/// A chat user.
model User {
  id        String   @id @default(uuid())
  email     String   @unique @db.VarChar(255)
  username  String   @unique
  firstName String?
  role      Role     @default(MEMBER)
  tags      String[]
  createdAt DateTime @default(now()) @db.Timestamptz(6)
  updatedAt DateTime @updatedAt
  legacy    Int?     @ignore
  location  Unsupported("geography(Point, 4326)")?

  messages      Message[]
  conversations ConversationUser[] @relation("member")

  @@map("users")
  @@schema("public")
}

model Message {
  id             String   @id @default(cuid())
  conversationId String
  senderId       String   @map("sender_id")
  content        String   @db.Text // "quoted // not a comment"
  type           MessageType @default(TEXT)
  createdAt      DateTime @default(now())
  sender         User     @relation(fields: [senderId], references: [id], onDelete: Cascade)
  conversation   Conversation @relation(
    fields: [conversationId],
    references: [id]
  )

  @@index([conversationId, createdAt(sort: Desc)], map: "messages_conversation_created_idx")
  @@index(fields: [senderId])
  @@map("messages")
  @@schema("public")
}

model Conversation {
  id       String             @id
  messages Message[]
  members  ConversationUser[]

  @@map("conversations")
  @@schema("public")
}

model ConversationUser {
  conversationId String
  userId         String
  conversation   Conversation @relation(fields: [conversationId], references: [id])
  user           User         @relation("member", fields: [userId], references: [id])

  @@id([conversationId, userId])
  @@unique([userId, conversationId], map: "member_once")
  @@map("conversation_users")
  @@schema("public")
}

enum Role {
  ADMIN  @map("admin")
  MEMBER @map("member")

  @@map("user_role")
  @@schema("public")
}

enum MessageType {
  TEXT
  IMAGE
  @@schema("public")
}
"#;

    #[test]
    fn reads_a_real_schema() {
        let s = parse(REAL, "schema.prisma").expect("parses");
        assert_eq!(s.provider.as_deref(), Some("postgresql"));
        assert_eq!(s.schemas, ["public", "audit"]);
        assert_eq!(s.generators.len(), 2);
        assert_eq!(s.generators[0].provider, "prisma-client-js");
        assert_eq!(s.generators[0].output, None);
        assert_eq!(
            s.generators[1].output.as_deref(),
            Some("../src/generated/prisma")
        );
        let names: Vec<&str> = s.models.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            ["User", "Message", "Conversation", "ConversationUser"]
        );

        let u = s.model("User").expect("User");
        assert_eq!(u.table, "users");
        assert_eq!(u.db_schema.as_deref(), Some("public"));
        assert_eq!(u.at, "schema.prisma:22");
        let email = u.field("email").expect("email");
        assert!(email.unique && !email.optional);
        assert_eq!(email.native.as_deref(), Some("VarChar"));
        assert_eq!(pg_udt(&s, email).as_deref(), Some("varchar"));
        let first = u.field("firstName").expect("firstName");
        assert!(first.optional);
        assert_eq!(pg_udt(&s, first).as_deref(), Some("text"));
        assert_eq!(
            pg_udt(&s, u.field("tags").expect("tags")).as_deref(),
            Some("_text")
        );
        assert_eq!(
            pg_udt(&s, u.field("role").expect("role")).as_deref(),
            Some("user_role")
        );
        assert_eq!(
            pg_udt(&s, u.field("createdAt").expect("c")).as_deref(),
            Some("timestamptz")
        );
        assert!(u.field("legacy").expect("legacy").ignored);
        let loc = u.field("location").expect("location");
        assert!(loc.unsupported && loc.optional);
        assert_eq!(pg_udt(&s, loc), None);
        assert!(s.is_model(&u.field("messages").expect("m").ty));
        assert!(u.field("conversations").expect("c").list);

        let m = s.model("Message").expect("Message");
        assert_eq!(m.table, "messages");
        let sender = m.field("senderId").expect("senderId");
        assert_eq!(sender.column, "sender_id");
        let content = m.field("content").expect("content");
        assert_eq!(content.native.as_deref(), Some("Text"));
        assert!(m.field("conversation").expect("conv").relation);
        assert_eq!(m.field("conversation").expect("conv").line, 49);
        assert!(m.field("sender").expect("sender").relation);
        assert_eq!(m.fields.len(), 8);
        let idx: Vec<(IndexKind, Vec<String>, Option<String>)> = m
            .indexes
            .iter()
            .map(|i| (i.kind, m.columns_of(&i.fields), i.map.clone()))
            .collect();
        assert_eq!(
            idx,
            vec![
                (IndexKind::Id, vec!["id".to_string()], None),
                (
                    IndexKind::Index,
                    vec!["conversationId".to_string(), "createdAt".to_string()],
                    Some("messages_conversation_created_idx".to_string())
                ),
                (IndexKind::Index, vec!["sender_id".to_string()], None),
            ]
        );

        let cu = s.model("ConversationUser").expect("cu");
        assert_eq!(cu.indexes[0].kind, IndexKind::Id);
        assert_eq!(cu.indexes[0].fields, ["conversationId", "userId"]);
        assert_eq!(cu.indexes[1].kind, IndexKind::Unique);
        assert_eq!(cu.indexes[1].map.as_deref(), Some("member_once"));

        let role = s.enum_named("Role").expect("Role");
        assert_eq!(role.db_name, "user_role");
        assert_eq!(role.values, ["admin", "member"]);
        assert_eq!(
            s.enum_named("MessageType").expect("mt").values,
            ["TEXT", "IMAGE"]
        );
    }

    #[test]
    fn shape_tells_a_renamed_field_from_a_comment() {
        let a = parse(REAL, "a").expect("a");
        let commented = REAL.replace("/// A chat user.", "// users, renamed");
        assert_eq!(a.shape(), parse(&commented, "b").expect("b").shape());
        let drifted = REAL.replace(
            "type           MessageType @default(TEXT)",
            "messageType    MessageType @default(TEXT)",
        );
        let b = parse(&drifted, "b").expect("b").shape();
        assert_ne!(a.shape(), b);
        assert!(b.contains_key("Message.messageType"));
        assert!(!b.contains_key("Message.type"));
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("model User {\n  id String @id\n", "s.prisma").expect_err("open");
        assert_eq!(e.line, 1);
        assert!(e.message.contains("not closed"), "{e}");
        let e = parse("model User {\n  id\n}\n", "s.prisma").expect_err("no type");
        assert_eq!((e.file.as_str(), e.line), ("s.prisma", 2));
        let e = parse("hello\n", "s.prisma").expect_err("junk");
        assert!(e.to_string().starts_with("s.prisma:1:"), "{e}");
    }

    #[test]
    fn folders_merge() {
        let mut a = parse("datasource db {\n provider = \"postgresql\"\n}\n", "a").expect("a");
        a.merge(parse("model A {\n id Int @id\n}\n", "b").expect("b"));
        assert_eq!(a.models.len(), 1);
        assert_eq!(a.provider.as_deref(), Some("postgresql"));
        assert_eq!(pg_udt(&a, &a.models[0].fields[0]).as_deref(), Some("int4"));
    }
}
