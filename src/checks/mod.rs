//! Check kinds: one file per kind, each implementing [`Check`], and one
//! registry ([`registry`]). Adding a kind means writing its file and adding one
//! line to the registry.

pub mod build_freshness;
pub mod env;
pub mod env_file;
pub mod expect;
pub mod http;
pub mod log_scan;
pub mod migrations;
pub mod pg_activity;
pub mod pg_connect;
pub mod pg_ready;
pub mod pgbouncer;
pub mod pool_headroom;
pub mod port;
pub mod prisma_schema;
pub mod project;
pub mod rate_limit;
pub mod sql;
pub mod stability;
pub mod util;
pub mod witness;

use std::sync::Arc;

pub use crate::engine::{
    BoxFuture, Check, Ctx, Erased, FieldDoc, HttpClient, Kind, Observation, Registry, Status,
};

/// Parses a check's PostgreSQL URL; a bad one is pg_isready's "no attempt".
pub(crate) fn db_url(raw: &str) -> Result<crate::pg::DbUrl, Box<Observation>> {
    crate::pg::DbUrl::parse(raw).map_err(|e| {
        Box::new(Observation::fail(
            format!("invalid database URL: {e}"),
            crate::diagnose::Fault::PgNoAttempt {
                reason: e.to_string(),
            },
        ))
    })
}

/// The registry: every check kind, in the order `chatops checks` lists them.
pub fn registry() -> &'static Registry {
    static REGISTRY: std::sync::LazyLock<Registry> = std::sync::LazyLock::new(|| {
        Registry::new(vec![
            Arc::new(Erased::<pg_ready::PgReady>::new()),
            Arc::new(Erased::<pg_connect::PgConnect>::new()),
            Arc::new(Erased::<port::Port>::new()),
            Arc::new(Erased::<http::Http>::new()),
            Arc::new(Erased::<env::Env>::new()),
            Arc::new(Erased::<rate_limit::RateLimit>::new()),
            Arc::new(Erased::<log_scan::LogScan>::new()),
            Arc::new(Erased::<stability::Stability>::new()),
            Arc::new(Erased::<sql::Sql>::new()),
            Arc::new(Erased::<pg_activity::PgActivity>::new()),
            Arc::new(Erased::<pool_headroom::PoolHeadroom>::new()),
            Arc::new(Erased::<prisma_schema::PrismaSchema>::new()),
            Arc::new(Erased::<build_freshness::BuildFreshness>::new()),
            Arc::new(Erased::<migrations::Migrations>::new()),
            Arc::new(Erased::<env_file::EnvFile>::new()),
            Arc::new(Erased::<pgbouncer::PgBouncerCheck>::new()),
        ])
    });
    &REGISTRY
}

pub fn find(kind: &str) -> Option<&'static dyn Kind> {
    registry().find(kind).map(|k| k.as_ref())
}

pub fn names() -> impl Iterator<Item = &'static str> {
    registry().names()
}
