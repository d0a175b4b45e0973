//! `pg_connect`: logs in for real and runs one query, telling apart the
//! failures pg_isready cannot see: wrong password, missing database, no free
//! connection slot, TLS required, no pg_hba.conf entry.
//!
//! [`observe`] logs in and reads the session; [`judge`] words the outcome.

use super::{Check, Ctx, Observation};
use crate::diagnose::pg::classify;
use crate::diagnose::{Fault, NetError};
use crate::pg::tls::{Policy, Verify};
use crate::pg::{DbUrl, error_chain};
use schemars::JsonSchema;
use serde::Deserialize;
use std::time::Duration;

pub struct PgConnect;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// PostgreSQL URL to log in with, e.g. `${target.database_url}`. Prisma's pool parameters are ignored.
    pub url: String,
}

/// How the login went.
#[derive(Debug)]
pub enum Login {
    /// No login within the check's time.
    TimedOut,
    /// The server (or the network) refused: the classified fault, the
    /// error's own text and its whole chain.
    Failed {
        fault: Fault,
        message: String,
        chain: String,
    },
    LoggedIn(Session),
}

/// What the logged-in session reported.
#[derive(Debug, Clone)]
pub struct Session {
    pub version: String,
    pub database: String,
    pub user: String,
    pub max_connections: i32,
    pub client_sessions: i32,
    /// The TLS version when the connection is encrypted.
    pub tls: Option<String>,
}

/// Logs in with `u` over `tls` and reads the session's facts.
pub async fn observe(u: &DbUrl, tls: crate::pg::tls::Connector, timeout: Duration) -> Login {
    let mut cfg = u.config("chatops");
    cfg.connect_timeout(timeout);
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
    match tokio::time::timeout(timeout, attempt).await {
        Err(_) => Login::TimedOut,
        Ok(Err(e)) => Login::Failed {
            fault: classify(&e, u),
            message: e.to_string(),
            chain: error_chain(&e),
        },
        Ok(Ok(row)) => Login::LoggedIn(Session {
            version: row.get(0),
            database: row.get(1),
            user: row.get(2),
            max_connections: row.get(3),
            client_sessions: row.get(4),
            tls: row.try_get(5).ok().flatten(),
        }),
    }
}

/// How the server's certificate was checked, for the evidence.
fn certificate_check(policy: &Policy) -> String {
    match policy.verify {
        Verify::None => "not verified".to_string(),
        Verify::Ca => format!("chain verified against {}", policy.roots_source()),
        Verify::Full => format!("and host name verified against {}", policy.roots_source()),
    }
}

/// Words the login's outcome. `certificate` says how the certificate was
/// checked (see `certificate_check`); `cmd` is the psql line to rerun.
pub fn judge(
    u: &DbUrl,
    timeout: Duration,
    certificate: &str,
    cmd: String,
    login: Login,
) -> Observation {
    let s = match login {
        Login::TimedOut => {
            return Observation::fail(
                format!("no login within {}", crate::support::duration::fmt(timeout)),
                Fault::PgNoResponse {
                    host: u.host.clone(),
                    port: u.port,
                    error: NetError::Timeout,
                },
            )
            .command(cmd);
        }
        Login::Failed {
            fault,
            message,
            chain,
        } => {
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
                _ => format!("login failed: {message}"),
            };
            return Observation::fail(summary, fault)
                .evidence(format!("server said: {chain}"))
                .command(cmd);
        }
        Login::LoggedIn(s) => s,
    };
    let channel = match &s.tls {
        Some(v) => format!("encrypted ({v}; certificate {certificate})"),
        None => "not encrypted".to_string(),
    };
    Observation::pass(format!(
        "logged in to `{}` as `{}` (PostgreSQL {})",
        s.database, s.user, s.version
    ))
    .evidence(format!(
        "server_version {}, max_connections {}, client sessions now {}",
        s.version, s.max_connections, s.client_sessions
    ))
    .evidence(format!("connection {channel}"))
    .command(cmd)
    .capture("server_version", s.version)
    .capture("database", s.database)
    .capture("max_connections", s.max_connections)
    .capture("client_sessions", s.client_sessions)
    .capture("tls", s.tls.unwrap_or_else(|| "none".into()))
}

/// The psql line that logs in the same way (the TLS parameters change what
/// psql would do, so they are kept).
fn psql_command(u: &DbUrl) -> String {
    let tls_q: Vec<String> = ["sslmode", "sslrootcert"]
        .iter()
        .filter_map(|k| u.param(k).map(|v| format!("{k}={v}")))
        .collect();
    format!(
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
    )
}

impl Check for PgConnect {
    const KIND: &'static str = "pg_connect";
    const HELP: &'static str = "logs in to PostgreSQL for real: wrong password, missing database, too many clients, TLS required";
    type Params = Params;

    async fn run(p: Params, ctx: Ctx) -> Observation {
        let u = match super::db_url(&p.url) {
            Ok(u) => u,
            Err(o) => return *o,
        };
        let cmd = psql_command(&u);
        let (tls, policy) = match Policy::of(&u).and_then(|p| p.connector().map(|c| (c, p))) {
            Ok(x) => x,
            Err(e) => {
                return Observation::fail(
                    "cannot set up TLS as the URL asks",
                    crate::diagnose::pg::tls_setup_failed(&u, &e),
                )
                .command(cmd);
            }
        };
        let login = observe(&u, tls, ctx.timeout).await;
        judge(&u, ctx.timeout, &certificate_check(&policy), cmd, login)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Status;

    fn url() -> DbUrl {
        DbUrl::parse("postgresql://chat:pw@127.0.0.1:5432/chat_db?sslmode=require").unwrap()
    }

    #[test]
    fn a_login_passes_with_the_session() {
        let u = url();
        let cmd = psql_command(&u);
        assert_eq!(
            cmd,
            "psql \"postgresql://chat@127.0.0.1:5432/chat_db?sslmode=require\" -c 'SELECT version()'"
        );
        let o = judge(
            &u,
            Duration::from_secs(5),
            "not verified",
            cmd,
            Login::LoggedIn(Session {
                version: "15.8".into(),
                database: "chat_db".into(),
                user: "chat".into(),
                max_connections: 100,
                client_sessions: 3,
                tls: Some("TLSv1.3".into()),
            }),
        );
        assert_eq!(o.status, Status::Pass);
        assert_eq!(
            o.summary,
            "logged in to `chat_db` as `chat` (PostgreSQL 15.8)"
        );
        assert_eq!(
            o.evidence,
            [
                "server_version 15.8, max_connections 100, client sessions now 3",
                "connection encrypted (TLSv1.3; certificate not verified)"
            ]
        );
        assert_eq!(o.captures["tls"], serde_json::json!("TLSv1.3"));
    }

    #[test]
    fn failures_are_worded_by_their_fault() {
        let u = url();
        let o = judge(
            &u,
            Duration::from_secs(5),
            "",
            String::new(),
            Login::TimedOut,
        );
        assert_eq!(o.status, Status::Fail);
        assert_eq!(o.summary, "no login within 5.00s");
        let failed = |fault| Login::Failed {
            fault,
            message: "db error".into(),
            chain: "db error: FATAL: database \"x\" does not exist".into(),
        };
        let o = judge(
            &u,
            Duration::from_secs(5),
            "",
            String::new(),
            failed(Fault::PgDatabaseMissing {
                database: "x".into(),
            }),
        );
        assert_eq!(o.summary, "database `x` does not exist");
        assert_eq!(
            o.evidence,
            ["server said: db error: FATAL: database \"x\" does not exist"]
        );
        let o = judge(
            &u,
            Duration::from_secs(5),
            "",
            String::new(),
            failed(Fault::PgNoResponse {
                host: "127.0.0.1".into(),
                port: 5432,
                error: NetError::Refused,
            }),
        );
        assert_eq!(
            o.summary,
            "127.0.0.1:5432 - no response (connection refused)"
        );
        let o = judge(
            &u,
            Duration::from_secs(5),
            "",
            String::new(),
            failed(Fault::ProcessNotFound {
                selector: "x".into(),
            }),
        );
        assert_eq!(o.summary, "login failed: db error");
    }
}
