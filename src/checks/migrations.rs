//! `migrations`: the project's `prisma/migrations/*` against the
//! database's `_prisma_migrations` table (read-only), as `prisma migrate
//! status` would see them: not applied, failed (with its logs), applied
//! but missing on disk, edited after being applied (the sha256 of
//! `migration.sql` differs from the recorded checksum), or no table at all.
//!
//! The run lists the folders and reads the table; [`judge`] compares.

use super::project::{self, BackendAt};
use super::util::worst_finding;
use super::{Check, Ctx, Observation, Status};
use crate::diagnose::Fault;
use crate::probe::project::{layout, migrations::OnDisk};
use schemars::JsonSchema;
use serde::Deserialize;

pub struct Migrations;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// PostgreSQL URL whose `_prisma_migrations` is read, e.g. `${target.database_url}`.
    pub url: String,
    /// The project directory (`--project`, `${target.project}`); empty: the backend process's working directory.
    pub project: Option<String>,
    /// The backend: `{host, port}`; its process's working directory is the project.
    pub process: Option<BackendAt>,
    /// Database schema holding `_prisma_migrations` (default: the URL's `schema`, else `public`).
    pub schema: Option<String>,
}

/// A row of `_prisma_migrations`.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub name: String,
    pub checksum: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub rolled_back_at: Option<String>,
    pub logs: Option<String>,
}

/// The folders against the table (None: there is no table).
pub fn judge(o: Observation, dir: &str, disk: &[OnDisk], table: Option<&[Applied]>) -> Observation {
    let mut o = o.evidence(format!("{} migration folder(s) in {dir}", disk.len()));
    let Some(rows) = table else {
        return worst_finding(
            o.evidence("✗ the database has no _prisma_migrations table"),
            vec![(
                Status::Warn,
                format!(
                    "the database has no _prisma_migrations table while {dir} holds {} migration(s): never migrated, or made with `prisma db push`",
                    disk.len()
                ),
                Fault::MigrationsTableMissing {
                    dir: dir.to_string(),
                    count: disk.len() as u32,
                },
            )],
            |_| String::new(),
        );
    };
    o = o.evidence(format!("{} row(s) in _prisma_migrations", rows.len()));
    let mut findings = Vec::new();
    // Failed: started, neither finished nor rolled back.
    for r in rows
        .iter()
        .filter(|r| r.finished_at.is_none() && r.rolled_back_at.is_none())
    {
        o = o.evidence(format!(
            "✗ {} failed (started {}, not finished){}",
            r.name,
            r.started_at.as_deref().unwrap_or("?"),
            r.logs
                .as_deref()
                .filter(|l| !l.trim().is_empty())
                .map(|l| format!(": {}", l.trim()))
                .unwrap_or_default()
        ));
        findings.push((
            Status::Fail,
            format!(
                "migration {} failed and blocks `prisma migrate deploy`",
                r.name
            ),
            Fault::MigrationFailed {
                name: r.name.clone(),
                started_at: r.started_at.clone(),
                logs: r.logs.clone().unwrap_or_default(),
            },
        ));
    }
    let applied = |name: &str| {
        rows.iter()
            .find(|r| r.name == name && r.finished_at.is_some() && r.rolled_back_at.is_none())
    };
    let attempted = |name: &str| {
        rows.iter()
            .any(|r| r.name == name && r.rolled_back_at.is_none())
    };
    let pending: Vec<String> = disk
        .iter()
        .filter(|d| applied(&d.name).is_none() && !attempted(&d.name))
        .map(|d| d.name.clone())
        .collect();
    for p in &pending {
        o = o.evidence(format!("✗ {p} is not applied"));
    }
    if !pending.is_empty() {
        findings.push((
            Status::Fail,
            format!(
                "{} migration(s) not applied: {}",
                pending.len(),
                pending.join(", ")
            ),
            Fault::MigrationsPending {
                dir: dir.to_string(),
                names: pending,
            },
        ));
    }
    let mut missing = Vec::new();
    for r in rows
        .iter()
        .filter(|r| r.finished_at.is_some() && r.rolled_back_at.is_none())
    {
        if !disk.iter().any(|d| d.name == r.name) && !missing.contains(&r.name) {
            missing.push(r.name.clone());
        }
    }
    let mut edited = Vec::new();
    for d in disk {
        if let (Some(r), Some(sum)) = (applied(&d.name), &d.checksum)
            && r.checksum != *sum
        {
            edited.push(format!(
                "{} (database sha256 {}…, file sha256 {}…)",
                d.name,
                &r.checksum[..r.checksum.len().min(12)],
                &sum[..12]
            ));
        }
    }
    for m in &missing {
        o = o.evidence(format!("! {m} is applied but not in {dir}"));
    }
    for e in &edited {
        o = o.evidence(format!("! {e}: migration.sql changed after it was applied"));
    }
    if !missing.is_empty() || !edited.is_empty() {
        let first = missing
            .first()
            .map(|m| format!("{m} is applied but not in {dir}"))
            .or_else(|| {
                edited
                    .first()
                    .map(|e| format!("{e} was edited after it was applied"))
            })
            .unwrap_or_default();
        findings.push((
            Status::Warn,
            format!("the migration history diverges: {first}"),
            Fault::MigrationsDiverged {
                dir: dir.to_string(),
                missing_on_disk: missing,
                checksum_mismatch: edited,
            },
        ));
    }
    if findings.is_empty() {
        o.summary = format!(
            "{} migration(s) applied, none pending, failed or edited",
            disk.len()
        );
        return o;
    }
    worst_finding(o, findings, |n| format!("(and {n} more)"))
}

async fn read_table(
    client: &tokio_postgres::Client,
    schema: &str,
) -> Result<Option<Vec<Applied>>, tokio_postgres::Error> {
    let exists: Option<String> = client
        .query_one(
            "SELECT to_regclass(quote_ident($1) || '._prisma_migrations')::text",
            &[&schema],
        )
        .await?
        .get(0);
    let Some(table) = exists else {
        return Ok(None);
    };
    // `table` is the catalog's own quoted name for a relation that exists.
    let rows = client
        .query(
            &format!(
                "SELECT migration_name, checksum, started_at::text, finished_at::text, rolled_back_at::text, logs
                 FROM {table} ORDER BY started_at, migration_name"
            ),
            &[],
        )
        .await?;
    Ok(Some(
        rows.iter()
            .map(|r| Applied {
                name: r.get(0),
                checksum: r.get(1),
                started_at: r.get(2),
                finished_at: r.get(3),
                rolled_back_at: r.get(4),
                logs: r.get(5),
            })
            .collect(),
    ))
}

impl Check for Migrations {
    const KIND: &'static str = "migrations";
    const HELP: &'static str = "prisma/migrations against the database's _prisma_migrations: not applied, failed (with logs), missing on disk, edited (sha256 of migration.sql), no table";
    type Params = Params;

    async fn run(p: Params, ctx: Ctx) -> Observation {
        let loc = match project::locate(p.project.as_deref(), p.process.as_ref()) {
            Ok(l) => l,
            Err(o) => return *o,
        };
        let dir = layout::schema_source(&loc.dir)
            .map(|s| layout::migrations_dir(&s))
            .unwrap_or_else(|| loc.dir.join("prisma/migrations"));
        let disk = crate::probe::project::migrations::on_disk(&dir);
        let shown = project::rel(&loc, &dir);
        if disk.is_empty() {
            return Observation::skipped(format!(
                "skipped: no migrations in {} (the project does not use `prisma migrate`)",
                dir.display()
            ))
            .evidence(project::project_line(&loc));
        }
        let (u, client) = match project::read_only(&p.url, ctx.timeout).await {
            Ok(c) => c,
            Err(o) => return (*o).evidence(project::project_line(&loc)),
        };
        let schema = project::db_schema(p.schema.as_deref(), &u);
        let table = match read_table(&client, &schema).await {
            Ok(t) => t,
            Err(e) => {
                return Observation::error(format!(
                    "cannot read _prisma_migrations: {}",
                    crate::pg::error_chain(&e)
                ));
            }
        };
        let o = Observation::pass("")
            .command(format!(
                "cd {} && npx prisma migrate status",
                loc.dir.display()
            ))
            .evidence(project::project_line(&loc));
        judge(o, &shown, &disk, table.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn disk(names: &[&str]) -> Vec<OnDisk> {
        names
            .iter()
            .map(|n| OnDisk {
                name: n.to_string(),
                sql: PathBuf::from(format!("prisma/migrations/{n}/migration.sql")),
                checksum: Some(format!("{:0>64}", n.len())),
            })
            .collect()
    }

    fn row(n: &str, finished: bool) -> Applied {
        Applied {
            name: n.into(),
            checksum: format!("{:0>64}", n.len()),
            started_at: Some("2026-12-01 10:00:00+00".into()),
            finished_at: finished.then(|| "2026-12-01 10:00:01+00".into()),
            rolled_back_at: None,
            logs: None,
        }
    }

    fn code(o: &Observation) -> Option<&'static str> {
        o.fault.as_ref().map(Fault::cause_code)
    }

    #[test]
    fn all_applied_passes() {
        let d = disk(&["20240101000000_init", "20240201000000_reads"]);
        let t = vec![
            row("20240101000000_init", true),
            row("20240201000000_reads", true),
        ];
        let o = judge(Observation::pass(""), "prisma/migrations", &d, Some(&t));
        assert_eq!(o.status, Status::Pass, "{o:#?}");
    }

    #[test]
    fn pending_failed_diverged_and_no_table() {
        let d = disk(&["20240101000000_init", "20261201000000_add_edited_at"]);
        let t = vec![row("20240101000000_init", true)];
        let o = judge(Observation::pass(""), "prisma/migrations", &d, Some(&t));
        assert_eq!(
            (o.status, code(&o)),
            (Status::Fail, Some("migrations_pending"))
        );
        assert!(
            o.summary.contains("20261201000000_add_edited_at"),
            "{}",
            o.summary
        );

        let mut bad = row("20261201000000_add_edited_at", false);
        bad.logs = Some("ERROR: column \"editedAt\" already exists".into());
        let t = vec![row("20240101000000_init", true), bad.clone()];
        let o = judge(Observation::pass(""), "prisma/migrations", &d, Some(&t));
        assert_eq!(
            (o.status, code(&o)),
            (Status::Fail, Some("migration_failed"))
        );
        assert!(
            o.evidence.iter().any(|e| e.contains("already exists")),
            "{o:#?}"
        );
        // Rolled back and not retried: pending again.
        bad.rolled_back_at = Some("2026-12-01 10:05:00+00".into());
        let t = vec![row("20240101000000_init", true), bad];
        let o = judge(Observation::pass(""), "prisma/migrations", &d, Some(&t));
        assert_eq!(code(&o), Some("migrations_pending"));

        let mut edited = row("20240101000000_init", true);
        edited.checksum = "f".repeat(64);
        let t = vec![
            edited,
            row("20261201000000_add_edited_at", true),
            row("20250101000000_elsewhere", true),
        ];
        let o = judge(Observation::pass(""), "prisma/migrations", &d, Some(&t));
        assert_eq!(
            (o.status, code(&o)),
            (Status::Warn, Some("migrations_diverged"))
        );
        let Some(Fault::MigrationsDiverged {
            missing_on_disk,
            checksum_mismatch,
            ..
        }) = &o.fault
        else {
            panic!()
        };
        assert_eq!(missing_on_disk, &["20250101000000_elsewhere"]);
        assert!(
            checksum_mismatch[0].starts_with("20240101000000_init (database sha256 ffffffffffff…")
        );

        let o = judge(Observation::pass(""), "prisma/migrations", &d, None);
        assert_eq!(
            (o.status, code(&o)),
            (Status::Warn, Some("migrations_table_missing"))
        );
    }
}
