//! Working-tree faults: the backend's Prisma schema against the database,
//! a stale generated client, build or process, migrations, and `.env`
//! files the running process did not load.

use super::fault::{DriftItem, EnvFileItem};
use super::{Diagnosis, Fault};

fn item(i: &DriftItem) -> String {
    let what = match &i.field {
        Some(f) => format!("{}.{f}", i.model),
        None => i.model.clone(),
    };
    format!(
        "{what} ({}): the schema wants {}; the database has {}",
        i.at, i.expected, i.actual
    )
}

fn list(items: &[DriftItem], max: usize) -> String {
    let mut v: Vec<String> = items.iter().take(max).map(item).collect();
    if items.len() > max {
        v.push(format!("and {} more (see the evidence)", items.len() - max));
    }
    v.join("; ")
}

fn env_item(i: &EnvFileItem) -> String {
    match &i.in_process {
        None => format!(
            "{} ({}: {}) is not in the process's environment",
            i.name, i.file, i.in_file
        ),
        Some(p) => format!(
            "{} is {} in {} but {} in the process",
            i.name, i.in_file, i.file, p
        ),
    }
}

/// Root cause and fix of a fault of this family; `None` for another family's.
pub(super) fn word(f: &Fault) -> Option<Diagnosis> {
    let d = super::worded;
    match f {
        Fault::PrismaDrift { schema, database, items } => {
            let renamed = items.iter().any(|i| i.problem == "missing_column" && i.actual.contains(" has "));
            d(
                format!("The Prisma schema ({schema}) and the database ({database}) disagree, so the client's queries name what the database does not have (Prisma P2021/P2022 on the first request): {}.", list(items, 4)),
                format!("Make them agree, then regenerate and restart: either migrate the database to the schema (`npx prisma migrate dev` in development, `npx prisma migrate deploy` elsewhere){}; then `npx prisma generate`, rebuild (`rm -rf dist && npm run build`) and restart the backend.",
                    if renamed { ", or, when the column exists under another name, map the field to it in the schema (`type String @map(\"type\")`, or rename the field back)" } else { ", or change the schema to what the database has (`npx prisma db pull` shows it)" }),
            )
        }
        Fault::PrismaIndexMissing { schema, database, items } => d(
            format!("Indexes the Prisma schema ({schema}) declares are missing in the database ({database}): {}. Queries that rely on them scan their tables.", list(items, 4)),
            "Apply the migration that creates them (`npx prisma migrate deploy`), or create them by hand with the same columns (`CREATE INDEX CONCURRENTLY …`); `npx prisma migrate diff --from-url \"$DATABASE_URL\" --to-schema-datamodel prisma/schema.prisma --script` prints the SQL.".into(),
        ),
        Fault::StaleClient { client, schema, how, differences, client_time, schema_time } => {
            let why = match how.as_str() {
                "content" => format!("its copy of the schema ({client}) differs from {schema}"),
                "hash" => format!("its package name ({client}) carries the sha256 of another schema than {schema}"),
                _ => format!("it ({client}) is older than {schema}"),
            };
            let times = match (client_time, schema_time) {
                (Some(c), Some(s)) => format!(" The client was written {c}, the schema {s}."),
                _ => String::new(),
            };
            let diff = if differences.is_empty() { String::new() } else { format!(" What differs: {}.", differences.iter().take(6).cloned().collect::<Vec<_>>().join("; ")) };
            d(
                format!("The generated Prisma client is stale: {why}, so the running code queries the old fields (the seed's `messageType` against a `type` column).{diff}{times}"),
                "Regenerate the client and rebuild from clean: `npx prisma generate && rm -rf dist && npm run build`, then restart the backend (a running process keeps the client it loaded).".into(),
            )
        }
        Fault::StaleBuild { out_dir, newer, missing } => {
            let mut what = Vec::new();
            if !newer.is_empty() {
                what.push(format!("sources newer than their compiled files: {}", newer.iter().take(4).cloned().collect::<Vec<_>>().join("; ")));
            }
            if !missing.is_empty() {
                what.push(format!("sources with no compiled file: {}", missing.iter().take(4).cloned().collect::<Vec<_>>().join(", ")));
            }
            d(
                format!("The compiled output ({out_dir}) is stale: {}. `node {out_dir}/main.js` runs the old code (the seed's fifth root cause, resolved by deleting dist/ and recompiling).", what.join("; and ")),
                format!("Rebuild from clean and restart: `rm -rf {out_dir} && npm run build`, then restart the backend."),
            )
        }
        Fault::StaleProcess { pid, started, newer } => d(
            format!("The backend process (pid {pid}) started at {started}, before the files it runs were last written: {}. It still runs what was there when it started (modules are read once, at import time).", newer.iter().take(4).cloned().collect::<Vec<_>>().join("; ")),
            "Restart the backend so that it loads the current build and client.".into(),
        ),
        Fault::MigrationsPending { dir, names } => d(
            format!("{} migration(s) in {dir} are not applied to the database: {}. The schema and the client expect their changes.", names.len(), names.join(", ")),
            "Apply them: `npx prisma migrate deploy` (or `npx prisma migrate dev` in development); `npx prisma migrate status` lists them.".into(),
        ),
        Fault::MigrationFailed { name, started_at, logs } => d(
            format!("Migration {name} failed{}: its row in _prisma_migrations has no finished_at (nor rolled_back_at), and `prisma migrate deploy` stops there until it is resolved.{}",
                started_at.as_ref().map(|s| format!(" (started {s})")).unwrap_or_default(),
                if logs.trim().is_empty() { String::new() } else { format!(" Its log: {}", logs.trim()) }),
            format!("Fix what the log says (undo any part it applied), then `npx prisma migrate resolve --rolled-back {name}` and `npx prisma migrate deploy` again (or `--applied {name}` if you completed it by hand)."),
        ),
        Fault::MigrationsDiverged { dir, missing_on_disk, checksum_mismatch } => {
            let mut what = Vec::new();
            if !missing_on_disk.is_empty() {
                what.push(format!("applied to the database but not in {dir}: {} (the database was migrated from another branch or checkout)", missing_on_disk.join(", ")));
            }
            if !checksum_mismatch.is_empty() {
                what.push(format!("edited after they were applied (the sha256 of migration.sql differs from the recorded checksum): {}", checksum_mismatch.join("; ")));
            }
            d(
                format!("The migration history diverges from the database: {}.", what.join("; ")),
                "Check out the code that matches the database (or restore the migration files as applied); never edit an applied migration: add a new one. `npx prisma migrate status` shows the divergence.".into(),
            )
        }
        Fault::MigrationsTableMissing { dir, count } => d(
            format!("{dir} holds {count} migration(s), but the database has no _prisma_migrations table: it was never migrated with Prisma (or was made with `prisma db push`, which records nothing)."),
            "If the database was made with `db push`, baseline it (`npx prisma migrate resolve --applied <first migration>`); otherwise apply the migrations with `npx prisma migrate deploy`.".into(),
        ),
        Fault::EnvFileNotLoaded { pid, started, items } => {
            let after = items.iter().any(|i| i.changed_after_start);
            d(
                format!("The running backend (pid {pid}{}) does not have what its .env files say: {}. {}",
                    started.as_ref().map(|s| format!(", started {s}")).unwrap_or_default(),
                    items.iter().take(4).map(env_item).collect::<Vec<_>>().join("; "),
                    if after { "The file was changed after the process started: a process reads its environment once, at start." } else { "A variable set in the process's own environment wins over the file (dotenv never overrides), so its value is the one in effect." }),
                format!("Restart the backend so that it reads the file ({}); if the process's own environment sets {} (a shell export, a service unit, docker-compose), change it there.",
                    items.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join(", "),
                    if items.len() == 1 { "it" } else { "them" }),
            )
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::diagnose::samples::{all, words};

    fn sample(code: &str) -> crate::diagnose::Fault {
        all()
            .into_iter()
            .find(|f| f.cause_code() == code)
            .expect(code)
    }

    #[test]
    fn drift_names_model_field_expected_actual_and_both_fixes() {
        words(
            &sample("prisma_drift"),
            &[
                "Message.messageType",
                "prisma/schema.prisma:42",
                "messages has type",
                "P2022",
            ],
            &[
                "npx prisma migrate deploy",
                "@map(\"type\")",
                "npx prisma generate",
                "restart",
            ],
        );
        words(
            &sample("prisma_index_missing"),
            &["messages_conversation_created_idx"],
            &["migrate deploy"],
        );
    }

    #[test]
    fn stale_files_name_files_times_and_the_fix() {
        words(
            &sample("stale_client"),
            &[
                "node_modules/.prisma/client/schema.prisma",
                "Message.messageType",
                "2026-12-01T10:00:00Z",
            ],
            &["npx prisma generate", "rm -rf dist"],
        );
        words(
            &sample("stale_build"),
            &["src/chat/chat.service.ts", "dist/chat/chat.service.js"],
            &["rm -rf dist && npm run build"],
        );
        words(
            &sample("stale_process"),
            &["pid 4242", "dist/main.js"],
            &["Restart"],
        );
    }

    #[test]
    fn migrations_and_env_files() {
        words(
            &sample("migrations_pending"),
            &["20261201000000_add_edited_at"],
            &["migrate deploy"],
        );
        words(
            &sample("migration_failed"),
            &["20261115000000_bad", "already exists"],
            &["migrate resolve --rolled-back 20261115000000_bad"],
        );
        words(
            &sample("migrations_diverged"),
            &["20240101000000_init", "sha256"],
            &["migrate status"],
        );
        words(
            &sample("migrations_table_missing"),
            &["no _prisma_migrations", "db push"],
            &["baseline"],
        );
        words(
            &sample("env_file_not_loaded"),
            &["DISABLE_RATE_LIMIT", ".env:3", "after the process started"],
            &["Restart the backend"],
        );
    }
}
