//! The reference backend's project directory: the working tree a NestJS +
//! Prisma backend runs from (package.json, prisma/schema.prisma matching the
//! sandbox database, the generated client with its schema copy and hashed
//! package name, src/ and its compiled dist/, prisma/migrations recorded in
//! the database's `_prisma_migrations`, a `.env`). The backend process runs
//! with it as its working directory, so chatops finds it as it would a real
//! one. [`ProjectFault`] makes one working-tree fault at a time.

use super::SandboxError;
use crate::probe::project::files::sha256_hex;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// The schema, matching `schema.sql`.
pub const SCHEMA_PRISMA: &str = include_str!("schema.prisma");
/// The migration that made the database.
pub const INIT_MIGRATION: &str = "20240101000000_init";
/// [`ProjectFault::UnappliedMigration`]'s migration.
pub const UNAPPLIED_MIGRATION: &str = "20261201000000_add_message_edited_at";
/// [`ProjectFault::FailedMigration`]'s migration.
pub const FAILED_MIGRATION: &str = "20261115000000_add_message_status_index";

/// One working-tree fault (or none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ProjectFault {
    /// A fresh, consistent project.
    #[default]
    Consistent,
    /// The schema names `Message.messageType`; the column is `type` (and
    /// the backend, generated from it, writes `messageType`).
    DriftedField,
    /// The client was generated from an older schema (with
    /// `messageType`); the backend runs it.
    OldClient,
    /// A source file is newer than its compiled file.
    OldBuild,
    /// dist/main.js was rewritten after the process started.
    ProcessOlderThanBuild,
    /// A migration folder the database has not applied (its field is in the schema).
    UnappliedMigration,
    /// A migration that started and failed (`finished_at` NULL, with logs).
    FailedMigration,
    /// `.env` gains `DISABLE_RATE_LIMIT=true` after the backend started
    /// (with the limiters on).
    EnvChangedAfterStart,
    /// The backend runs outside any project (no package.json above its
    /// working directory): the checks cannot see one.
    Unseen,
}

impl ProjectFault {
    pub const NAMES: &'static [(&'static str, ProjectFault)] = &[
        ("consistent", ProjectFault::Consistent),
        ("drifted-field", ProjectFault::DriftedField),
        ("old-client", ProjectFault::OldClient),
        ("old-build", ProjectFault::OldBuild),
        (
            "process-older-than-build",
            ProjectFault::ProcessOlderThanBuild,
        ),
        ("unapplied-migration", ProjectFault::UnappliedMigration),
        ("failed-migration", ProjectFault::FailedMigration),
        (
            "env-changed-after-start",
            ProjectFault::EnvChangedAfterStart,
        ),
        ("unseen", ProjectFault::Unseen),
    ];

    /// Whether the backend writes `messageType` (its code was generated
    /// from a schema with it).
    pub fn backend_drifts(self) -> bool {
        matches!(self, ProjectFault::DriftedField | ProjectFault::OldClient)
    }
}

impl std::str::FromStr for ProjectFault {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, f)| *f)
            .ok_or_else(|| {
                format!(
                    "unknown project fault `{s}`; one of: {}",
                    Self::NAMES
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    }
}

/// The schema with the seed's drift: `type` written as `messageType`.
fn drifted(schema: &str) -> String {
    schema.replacen(
        "  type           String        @default(\"TEXT\")",
        "  messageType    String        @default(\"TEXT\")",
        1,
    )
}

/// The schema with the unapplied migration's field.
fn with_edited_at(schema: &str) -> String {
    schema.replacen(
        "  updatedAt      DateTime      @default(now()) @updatedAt\n  conversation",
        "  updatedAt      DateTime      @default(now()) @updatedAt\n  editedAt       DateTime?\n  conversation",
        1,
    )
}

/// The init migration: the DDL of `schema.sql` (without its test rows).
pub fn init_sql() -> &'static str {
    let s = super::pg::CHAT_SCHEMA_SQL;
    s.split("-- The seed's test identities.")
        .next()
        .unwrap_or(s)
}

const UNAPPLIED_SQL: &str =
    "-- AlterTable\nALTER TABLE \"messages\" ADD COLUMN \"editedAt\" TIMESTAMP(3);\n";
const FAILED_SQL: &str = "-- CreateIndex\nCREATE INDEX \"messages_status_idx\" ON \"messages\"(\"status\");\nCREATE INDEX \"messages_status_idx\" ON \"messages\"(\"status\");\n";

const SOURCES: &[(&str, &str)] = &[
    (
        "main.ts",
        "import { NestFactory } from '@nestjs/core';\nimport { AppModule } from './app.module';\n\nasync function bootstrap() {\n  const app = await NestFactory.create(AppModule);\n  app.setGlobalPrefix('api/v1');\n  await app.listen(process.env.PORT ?? 3001);\n}\nbootstrap();\n",
    ),
    (
        "app.module.ts",
        "import { Module } from '@nestjs/common';\nimport { ConfigModule } from '@nestjs/config';\nimport { ChatModule } from './chat/chat.module';\n\n@Module({ imports: [ConfigModule.forRoot({ isGlobal: true }), ChatModule] })\nexport class AppModule {}\n",
    ),
    (
        "chat/chat.module.ts",
        "import { Module } from '@nestjs/common';\nimport { ChatService } from './chat.service';\n\n@Module({ providers: [ChatService] })\nexport class ChatModule {}\n",
    ),
    (
        "chat/chat.service.ts",
        "import { Injectable } from '@nestjs/common';\nimport { PrismaClient } from '@prisma/client';\n\n@Injectable()\nexport class ChatService {\n  constructor(private prisma: PrismaClient) {}\n  send(conversationId: string, senderId: string, content: string) {\n    return this.prisma.message.create({ data: { conversationId, senderId, content, type: 'TEXT' } });\n  }\n}\n",
    ),
];

fn write(path: &Path, text: &str) -> Result<(), SandboxError> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| SandboxError::Setup {
            message: format!("cannot create {}: {e}", d.display()),
            hint: None,
        })?;
    }
    std::fs::write(path, text).map_err(|e| SandboxError::Setup {
        message: format!("cannot write {}: {e}", path.display()),
        hint: None,
    })
}

/// Sets a file's modification time.
pub fn set_time(path: &Path, t: SystemTime) -> Result<(), SandboxError> {
    std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(t))
        .map_err(|e| SandboxError::Setup {
            message: format!("cannot set the time of {}: {e}", path.display()),
            hint: None,
        })
}

/// Writes the project into `dir` (which must not exist yet) for `fault`;
/// `env` is what its `.env` says (the backend's own settings).
pub fn write_project(
    dir: &Path,
    fault: ProjectFault,
    env: &[(String, String)],
) -> Result<(), SandboxError> {
    let now = SystemTime::now();
    let written = now - Duration::from_secs(2 * 3600);
    let built = now - Duration::from_secs(3600);
    let schema = match fault {
        ProjectFault::DriftedField => drifted(SCHEMA_PRISMA),
        ProjectFault::UnappliedMigration => with_edited_at(SCHEMA_PRISMA),
        _ => SCHEMA_PRISMA.to_string(),
    };
    let client_schema = match fault {
        ProjectFault::OldClient => drifted(SCHEMA_PRISMA),
        _ => schema.clone(),
    };
    let mut sources: Vec<(String, String)> = vec![
        (
            "package.json".into(),
            "{\n  \"name\": \"chat-backend\",\n  \"version\": \"1.0.0\",\n  \"private\": true,\n  \"scripts\": {\n    \"build\": \"nest build\",\n    \"start:prod\": \"node dist/main\",\n    \"start:dev\": \"nest start --watch\"\n  },\n  \"prisma\": { \"schema\": \"prisma/schema.prisma\" },\n  \"dependencies\": {\n    \"@nestjs/common\": \"^10.0.0\",\n    \"@nestjs/config\": \"^3.0.0\",\n    \"@nestjs/core\": \"^10.0.0\",\n    \"@prisma/client\": \"^6.6.0\"\n  },\n  \"devDependencies\": { \"prisma\": \"^6.6.0\", \"typescript\": \"^5.4.0\" }\n}\n".into(),
        ),
        (
            "tsconfig.json".into(),
            "{\n  \"compilerOptions\": {\n    \"module\": \"commonjs\",\n    \"target\": \"ES2021\",\n    \"experimentalDecorators\": true,\n    \"emitDecoratorMetadata\": true,\n    \"outDir\": \"./dist\",\n    \"baseUrl\": \"./\",\n  },\n}\n".into(),
        ),
        ("prisma/schema.prisma".into(), schema.clone()),
        (
            "prisma/migrations/migration_lock.toml".into(),
            "# Please do not edit this file manually\nprovider = \"postgresql\"\n".into(),
        ),
        (
            format!("prisma/migrations/{INIT_MIGRATION}/migration.sql"),
            init_sql().to_string(),
        ),
    ];
    if fault == ProjectFault::UnappliedMigration {
        sources.push((
            format!("prisma/migrations/{UNAPPLIED_MIGRATION}/migration.sql"),
            UNAPPLIED_SQL.into(),
        ));
    }
    if fault == ProjectFault::FailedMigration {
        sources.push((
            format!("prisma/migrations/{FAILED_MIGRATION}/migration.sql"),
            FAILED_SQL.into(),
        ));
    }
    for (name, text) in SOURCES {
        sources.push((format!("src/{name}"), text.to_string()));
    }
    let env_text: String = env.iter().map(|(k, v)| format!("{k}=\"{v}\"\n")).collect();
    sources.push((".env".into(), env_text));
    for (p, t) in &sources {
        write(&dir.join(p), t)?;
        set_time(&dir.join(p), written)?;
    }
    let mut outputs: Vec<(String, String)> = vec![
        (
            "node_modules/.prisma/client/schema.prisma".into(),
            client_schema.clone(),
        ),
        (
            "node_modules/.prisma/client/package.json".into(),
            format!(
                "{{\n  \"name\": \"prisma-client-{}\",\n  \"main\": \"index.js\",\n  \"types\": \"index.d.ts\"\n}}\n",
                sha256_hex(client_schema.as_bytes())
            ),
        ),
        (
            "node_modules/.prisma/client/index.js".into(),
            "// generated by the sandbox in place of `prisma generate`\nmodule.exports = {};\n"
                .into(),
        ),
    ];
    for (name, text) in SOURCES {
        outputs.push((
            format!("dist/{}", name.replace(".ts", ".js")),
            format!(
                "\"use strict\";\n// compiled from src/{name}\n{}",
                text.lines().count()
            ),
        ));
    }
    for (p, t) in &outputs {
        write(&dir.join(p), t)?;
        set_time(&dir.join(p), built)?;
    }
    if fault == ProjectFault::OldBuild {
        set_time(
            &dir.join("src/chat/chat.service.ts"),
            now - Duration::from_secs(1800),
        )?;
    }
    Ok(())
}

/// SQL for the database's `_prisma_migrations`, as `prisma migrate` would
/// have left it for `fault`: made fresh (the rows of an earlier start removed).
pub fn migrations_table_sql(fault: ProjectFault) -> String {
    let row = |id: &str, name: &str, sum: &str, finished: bool, logs: Option<&str>| {
        format!(
            "INSERT INTO \"_prisma_migrations\" (id, checksum, finished_at, migration_name, logs, started_at, applied_steps_count) VALUES ('{id}', '{sum}', {}, '{name}', {}, now() - interval '1 day', {});\n",
            if finished {
                "now() - interval '1 day'"
            } else {
                "NULL"
            },
            logs.map(|l| format!("'{}'", l.replace('\'', "''")))
                .unwrap_or_else(|| "NULL".into()),
            u8::from(finished)
        )
    };
    let mut sql = String::from(
        "DROP TABLE IF EXISTS \"_prisma_migrations\";\nCREATE TABLE \"_prisma_migrations\" (\n    \"id\" VARCHAR(36) PRIMARY KEY NOT NULL,\n    \"checksum\" VARCHAR(64) NOT NULL,\n    \"finished_at\" TIMESTAMPTZ,\n    \"migration_name\" VARCHAR(255) NOT NULL,\n    \"logs\" TEXT,\n    \"rolled_back_at\" TIMESTAMPTZ,\n    \"started_at\" TIMESTAMPTZ NOT NULL DEFAULT now(),\n    \"applied_steps_count\" INTEGER NOT NULL DEFAULT 0\n);\n",
    );
    sql.push_str(&row(
        "5a1d6c3e-0000-4000-8000-000000000001",
        INIT_MIGRATION,
        &sha256_hex(init_sql().as_bytes()),
        true,
        None,
    ));
    if fault == ProjectFault::FailedMigration {
        sql.push_str(&row(
            "5a1d6c3e-0000-4000-8000-000000000002",
            FAILED_MIGRATION,
            &sha256_hex(FAILED_SQL.as_bytes()),
            false,
            Some("Database error code: 42P07\n\nDatabase error:\nERROR: relation \"messages_status_idx\" already exists"),
        ));
    }
    sql
}

/// What the fault changes once the backend runs (started at `started`):
/// a rebuild of dist/main.js, or a `.env` edit.
pub fn after_start(
    dir: &Path,
    fault: ProjectFault,
    started: SystemTime,
) -> Result<(), SandboxError> {
    // At least two seconds after the start, whatever the clock's grain.
    let later = SystemTime::now().max(started + Duration::from_secs(2));
    match fault {
        ProjectFault::ProcessOlderThanBuild => {
            let p = dir.join("dist/main.js");
            write(
                &p,
                "\"use strict\";\n// rebuilt after the process started\n",
            )?;
            set_time(&p, later)
        }
        ProjectFault::EnvChangedAfterStart => {
            let p = dir.join(".env");
            let mut text = std::fs::read_to_string(&p).unwrap_or_default();
            text.push_str("# load tests: limiters off\nDISABLE_RATE_LIMIT=true\n");
            write(&p, &text)?;
            set_time(&p, later)
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::project::schema::parse;

    #[test]
    fn the_sandbox_schema_parses_and_each_variant_changes_one_thing() {
        let s = parse(SCHEMA_PRISMA, "schema.prisma").expect("parses");
        assert_eq!(s.models.len(), 12);
        let m = s.model("Message").expect("Message");
        assert!(m.field("type").is_some());
        let d = parse(&drifted(SCHEMA_PRISMA), "d").expect("drifted");
        assert!(
            d.model("Message")
                .and_then(|m| m.field("messageType"))
                .is_some()
        );
        let e = parse(&with_edited_at(SCHEMA_PRISMA), "e").expect("edited");
        assert!(
            e.model("Message")
                .and_then(|m| m.field("editedAt"))
                .is_some()
        );
        assert!(init_sql().contains("CREATE TABLE messages") && !init_sql().contains("INSERT"));
        assert_eq!(
            "old-client".parse::<ProjectFault>(),
            Ok(ProjectFault::OldClient)
        );
        assert!("nope".parse::<ProjectFault>().is_err());
    }
}
