//! `pg_connect`: logs in for real and runs one query, telling apart the
//! failures pg_isready cannot see: wrong password, missing database, no free
//! connection slot, TLS required, no pg_hba.conf entry.

use super::{Check, Ctx, Observation};
use crate::diagnose::{Fault, NetError};
use schemars::JsonSchema;
use serde::Deserialize;

pub struct PgConnect;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// PostgreSQL URL to log in with, e.g. `${target.database_url}`. Prisma's pool parameters are ignored.
    pub url: String,
}

use crate::diagnose::pg::classify;
use crate::pg::error_chain;

impl Check for PgConnect {
    const KIND: &'static str = "pg_connect";
    const HELP: &'static str = "logs in to PostgreSQL for real: wrong password, missing database, too many clients, TLS required";
    type Params = Params;

    async fn run(p: Params, ctx: Ctx) -> Observation {
        let u = match super::db_url(&p.url) {
            Ok(u) => u,
            Err(o) => return *o,
        };
        // The TLS parameters change what psql would do, so they are kept.
        let tls_q: Vec<String> = ["sslmode", "sslrootcert"]
            .iter()
            .filter_map(|k| u.param(k).map(|v| format!("{k}={v}")))
            .collect();
        let cmd = format!(
            "psql \"postgresql://{}@{}:{}/{}{}\" -c 'SELECT version()'",
            u.user,
            u.host,
            u.port,
            u.database,
            if tls_q.is_empty() {
                String::new()
            } else {
                format!("?{}", tls_q.join("&"))
            }
        );
        let mut cfg = u.config("chatops");
        cfg.connect_timeout(ctx.timeout);
        let (tls, policy) =
            match crate::pg::tls::Policy::of(&u).and_then(|p| p.connector().map(|c| (c, p))) {
                Ok(x) => x,
                Err(message) => {
                    return Observation::fail(
                        "cannot set up TLS as the URL asks",
                        crate::diagnose::pg::tls_failed(&u, message),
                    )
                    .command(cmd);
                }
            };
        let attempt = async {
            let (client, conn) = cfg.connect(tls).await?;
            let handle = tokio::spawn(conn);
            let row = client
                .query_one(
                    "SELECT current_setting('server_version'), current_database()::text, current_user::text, current_setting('max_connections')::int, (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int, (SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid() AND ssl)",
                    &[],
                )
                .await;
            drop(client);
            handle.abort();
            row
        };
        let row = match tokio::time::timeout(ctx.timeout, attempt).await {
            Err(_) => {
                return Observation::fail(
                    format!(
                        "no login within {}",
                        crate::support::duration::fmt(ctx.timeout)
                    ),
                    Fault::PgNoResponse {
                        host: u.host.clone(),
                        port: u.port,
                        error: NetError::Timeout,
                    },
                )
                .command(cmd);
            }
            Ok(Err(e)) => {
                let fault = classify(&e, &u);
                let summary = match &fault {
                    Fault::PgAuthFailed { user, .. } => {
                        format!("password authentication failed for user `{user}`")
                    }
                    Fault::PgDatabaseMissing { database } => {
                        format!("database `{database}` does not exist")
                    }
                    Fault::PgTooManyClients { .. } => {
                        "too many clients already (no free connection slot)".to_string()
                    }
                    Fault::PgTlsRequired { .. } => "the server requires TLS".to_string(),
                    Fault::PgTlsFailed { message, .. } => format!("TLS failed: {message}"),
                    Fault::PgNoResponse { error, .. } => {
                        format!("{}:{} - no response ({})", u.host, u.port, error.describe())
                    }
                    _ => format!("login failed: {e}"),
                };
                return Observation::fail(summary, fault)
                    .evidence(format!("server said: {}", error_chain(&e)))
                    .command(cmd);
            }
            Ok(Ok(r)) => r,
        };
        let version: String = row.get(0);
        let db: String = row.get(1);
        let user: String = row.get(2);
        let max: i32 = row.get(3);
        let clients: i32 = row.get(4);
        let tls: Option<String> = row.try_get(5).ok().flatten();
        let channel = match &tls {
            Some(v) => format!(
                "encrypted ({v}; certificate {})",
                match policy.verify {
                    crate::pg::tls::Verify::None => "not verified".to_string(),
                    crate::pg::tls::Verify::Ca =>
                        format!("chain verified against {}", policy.roots_source()),
                    crate::pg::tls::Verify::Full =>
                        format!("and host name verified against {}", policy.roots_source()),
                }
            ),
            None => "not encrypted".to_string(),
        };
        Observation::pass(format!(
            "logged in to `{db}` as `{user}` (PostgreSQL {version})"
        ))
        .evidence(format!(
            "server_version {version}, max_connections {max}, client sessions now {clients}"
        ))
        .evidence(format!("connection {channel}"))
        .command(cmd)
        .capture("server_version", version)
        .capture("database", db)
        .capture("max_connections", max)
        .capture("client_sessions", clients)
        .capture("tls", tls.unwrap_or_else(|| "none".into()))
    }
}
