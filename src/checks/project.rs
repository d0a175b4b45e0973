//! What the working-tree kinds (`prisma_schema`, `build_freshness`,
//! `migrations`, `env_file`) share: finding the backend's project (or
//! skipping, with the reason, when it cannot be seen), a read-only
//! database session, and time formatting for evidence.

use super::{Observation, Status};
use crate::pg::DbUrl;
use crate::pg::activity;
use crate::probe::project::{self, Located, Lookup, NotFound};
use schemars::JsonSchema;
use serde::Deserialize;
use std::time::{Duration, SystemTime};

/// The backend whose working directory is the project.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackendAt {
    /// Host the backend runs on: another host's working tree cannot be read (the check is skipped).
    pub host: Option<String>,
    /// Port it listens on: its process's /proc/PID/cwd, walked up to package.json, is the project.
    pub port: Option<u16>,
}

/// Finds the project, or the observation to return instead: skipped when
/// it is out of reach, an error when the directory given does not exist.
pub fn locate(dir: Option<&str>, at: Option<&BackendAt>) -> Result<Located, Box<Observation>> {
    let l = Lookup {
        dir,
        host: at.and_then(|a| a.host.as_deref()),
        port: at.and_then(|a| a.port),
    };
    project::locate(&l).map_err(|e| {
        Box::new(match e {
            NotFound::Unseen(why) => Observation::skipped(format!("skipped: {why}")),
            NotFound::Invalid(why) => Observation::error(why),
        })
    })
}

/// The evidence line that says which project and why.
pub fn project_line(l: &Located) -> String {
    format!("project: {} ({})", l.dir.display(), l.why)
}

/// `path` relative to the project, for evidence.
pub fn rel(l: &Located, p: &std::path::Path) -> String {
    p.strip_prefix(&l.dir)
        .map(|r| r.display().to_string())
        .unwrap_or_else(|_| p.display().to_string())
}

/// A time as `2026-12-01T10:00:00Z`.
pub fn at(t: SystemTime) -> String {
    crate::support::time::rfc3339_secs(t)
}

/// How much later `b` is than `a`, in words (`12 s`, `3 min`, `2 h`).
pub fn later(a: SystemTime, b: SystemTime) -> String {
    let d = b.duration_since(a).unwrap_or(Duration::ZERO).as_secs();
    match d {
        0..=119 => format!("{d} s"),
        120..=7199 => format!("{} min", d / 60),
        _ => format!("{} h", d / 3600),
    }
}

/// A read-only session with a statement timeout, or the failed observation.
pub async fn read_only(
    raw_url: &str,
    timeout: Duration,
) -> Result<(DbUrl, tokio_postgres::Client), Box<Observation>> {
    let u = super::db_url(raw_url)?;
    let client = activity::connect(&u, "chatops", timeout)
        .await
        .map_err(|e| {
            Box::new(Observation::fail(
                format!("cannot log in to compare with the database: {e}"),
                crate::diagnose::pg::connect_fault(&e, &u),
            ))
        })?;
    let ms = timeout.as_millis().max(1);
    // An integer, formatted: nothing from the playbook reaches this text.
    client
        .batch_execute(&format!(
            "SET default_transaction_read_only = on; SET statement_timeout = {ms}"
        ))
        .await
        .map_err(|e| {
            Box::new(Observation::error(format!(
                "cannot set up a read-only session: {e}"
            )))
        })?;
    Ok((u, client))
}

/// The database schema to read: the check's, the URL's `schema`, else `public`.
pub fn db_schema(given: Option<&str>, u: &DbUrl) -> String {
    given
        .map(str::to_string)
        .or_else(|| u.param("schema").map(str::to_string))
        .unwrap_or_else(|| "public".into())
}

/// Whether an observation is a skip (for the tests).
pub fn is_skip(o: &Observation) -> bool {
    o.status == Status::Skipped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remote_backend_is_skipped_with_the_reason_and_a_missing_dir_is_an_error() {
        let o = locate(
            None,
            Some(&BackendAt {
                host: Some("db.example.com".into()),
                port: Some(3001),
            }),
        )
        .expect_err("remote");
        assert!(is_skip(&o), "{o:?}");
        assert!(o.summary.contains("db.example.com"), "{}", o.summary);
        let o = locate(Some("/no/such/project"), None).expect_err("missing");
        assert_eq!(o.status, Status::Error);
    }

    #[test]
    fn durations_in_words() {
        let t = SystemTime::UNIX_EPOCH;
        assert_eq!(later(t, t + Duration::from_secs(12)), "12 s");
        assert_eq!(later(t, t + Duration::from_secs(600)), "10 min");
        assert_eq!(later(t, t + Duration::from_secs(7200)), "2 h");
        assert_eq!(later(t + Duration::from_secs(5), t), "0 s");
    }
}
