//! PgBouncer faults: the pooler between the backend and PostgreSQL. Its
//! queue (clients waiting for a server connection), its sizes against the
//! planned load and against PostgreSQL, its pool mode, and Prisma through
//! it (named prepared statements under transaction pooling, session
//! features). The variants are one enum, [`BouncerFault`], carried by
//! `Fault::PgBouncer`, so each keeps its own stable cause code
//! (`pgbouncer_…`) in the flat JSON `fault` object.

use super::cause::Cause;
use super::{Diagnosis, Fault};
use serde::{Deserialize, Serialize};

/// What the `pgbouncer` check (or a load stage) observed going wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cause", rename_all = "snake_case")]
pub enum BouncerFault {
    /// Clients wait in PgBouncer for a server connection now (`cl_waiting`).
    PgbouncerClientsWaiting {
        database: String,
        user: String,
        waiting: u32,
        maxwait_s: f64,
        servers: u32,
        pool_size: u32,
    },
    /// The pool (default_pool_size or the database's pool_size) is below
    /// what the planned load keeps busy.
    PgbouncerPoolTooSmall {
        database: String,
        pool_size: u32,
        concurrent: f64,
        recommended: u32,
        load: String,
    },
    /// Server connections are at the pool's limit (default_pool_size,
    /// pool_size or max_db_connections).
    PgbouncerServersAtLimit {
        database: String,
        servers: u32,
        limit: u32,
        setting: String,
    },
    /// The app's pools open more client connections than max_client_conn.
    PgbouncerMaxClientConn {
        max_client_conn: u32,
        demand: u32,
        connection_limit: u32,
        replicas: u32,
        other: u32,
    },
    /// PgBouncer's pools may open more server connections than PostgreSQL
    /// accepts.
    PgbouncerExceedsPostgres {
        demand: u32,
        pools: String,
        usable: u32,
        max_connections: u32,
    },
    /// A DATABASE_URL points at PgBouncer in transaction mode without
    /// Prisma's `pgbouncer=true`, and PgBouncer keeps no prepared statements.
    PgbouncerPreparedStatements {
        var: String,
        server: String,
        how: String,
        pool_mode: String,
        version: String,
        fixed_url: String,
    },
    /// Session pooling: every client holds a server connection for its
    /// whole session, more clients than the pool queue.
    PgbouncerSessionMode {
        database: String,
        clients: u32,
        pool_size: u32,
    },
    /// The backend's log shows session features that transaction pooling
    /// breaks (advisory locks, SET, LISTEN, WITH HOLD cursors).
    PgbouncerSessionFeatures {
        pool_mode: String,
        features: Vec<String>,
        lines: Vec<String>,
        log: String,
    },
}

impl BouncerFault {
    /// The stable cause code (the serialized tag).
    pub fn code(&self) -> &'static str {
        match self {
            BouncerFault::PgbouncerClientsWaiting { .. } => "pgbouncer_clients_waiting",
            BouncerFault::PgbouncerPoolTooSmall { .. } => "pgbouncer_pool_too_small",
            BouncerFault::PgbouncerServersAtLimit { .. } => "pgbouncer_servers_at_limit",
            BouncerFault::PgbouncerMaxClientConn { .. } => "pgbouncer_max_client_conn",
            BouncerFault::PgbouncerExceedsPostgres { .. } => "pgbouncer_exceeds_postgres",
            BouncerFault::PgbouncerPreparedStatements { .. } => "pgbouncer_prepared_statements",
            BouncerFault::PgbouncerSessionMode { .. } => "pgbouncer_session_mode",
            BouncerFault::PgbouncerSessionFeatures { .. } => "pgbouncer_session_features",
        }
    }

    /// Its cause in the shared vocabulary.
    pub fn cause(&self) -> Option<Cause> {
        Some(match self {
            BouncerFault::PgbouncerClientsWaiting { .. }
            | BouncerFault::PgbouncerPoolTooSmall { .. }
            | BouncerFault::PgbouncerServersAtLimit { .. }
            | BouncerFault::PgbouncerSessionMode { .. } => Cause::PgbouncerQueue,
            BouncerFault::PgbouncerMaxClientConn { .. }
            | BouncerFault::PgbouncerExceedsPostgres { .. } => Cause::DatabaseConnections,
            BouncerFault::PgbouncerPreparedStatements { .. } => Cause::PreparedStatements,
            BouncerFault::PgbouncerSessionFeatures { .. } => return None,
        })
    }
}

/// Root cause and fix of a fault of this family; `None` for another family's.
pub(super) fn word(f: &Fault) -> Option<Diagnosis> {
    let Fault::PgBouncer(b) = f else {
        return None;
    };
    let d = super::worded;
    match b {
        BouncerFault::PgbouncerClientsWaiting { database, user, waiting, maxwait_s, servers, pool_size } => d(
            format!(
                "{waiting} client(s) wait in PgBouncer for a server connection to {database} as {user} (the oldest for {maxwait_s:.1} s): its {servers} server connection(s) are all busy and the pool allows {pool_size}. The backend's queries queue in PgBouncer, not in the backend's own pool and not in PostgreSQL."
            ),
            format!(
                "Raise default_pool_size (or `pool_size` in the [databases] entry for {database}) above {pool_size}, within PostgreSQL's usable connections (`chatops pool-calc --pgbouncer` shows the arithmetic), then `RELOAD;` on PgBouncer's console; also look for long transactions holding server connections (SHOW SERVERS)."
            ),
        ),
        BouncerFault::PgbouncerPoolTooSmall { database, pool_size, concurrent, recommended, load } => d(
            format!(
                "PgBouncer's pool for {database} is too small for the planned load: {pool_size} server connection(s), but {load} keeps about {concurrent:.1} busy on average. Clients will wait in PgBouncer (cl_waiting, maxwait) and the backend's requests time out."
            ),
            format!(
                "Set default_pool_size = {recommended} (or pool_size={recommended} in the [databases] entry for {database}) in pgbouncer.ini and `RELOAD;`, keeping the total under PostgreSQL's usable connections (`chatops pool-calc --pgbouncer`)."
            ),
        ),
        BouncerFault::PgbouncerServersAtLimit { database, servers, limit, setting } => d(
            format!(
                "PgBouncer holds {servers} server connection(s) to {database}, at its limit of {limit} ({setting}): the next busy client waits."
            ),
            format!(
                "Raise {setting} above {limit} if PostgreSQL has usable connections to spare (`chatops pool-calc --pgbouncer`), and `RELOAD;` PgBouncer."
            ),
        ),
        BouncerFault::PgbouncerMaxClientConn { max_client_conn, demand, connection_limit, replicas, other } => d(
            format!(
                "PgBouncer accepts {max_client_conn} client connection(s) (max_client_conn), but the app's pools open {demand}: connection_limit {connection_limit} × {replicas} replica(s) + {other} other. Connections beyond it are refused with \"no more connections allowed (max_client_conn)\", which the backend reports as a database error."
            ),
            format!(
                "Set max_client_conn to at least {} in pgbouncer.ini (client connections are cheap for PgBouncer; mind the file descriptor limit, ulimit -n) and restart PgBouncer, or lower connection_limit per replica.",
                demand + demand / 5 + 10
            ),
        ),
        BouncerFault::PgbouncerExceedsPostgres { demand, pools, usable, max_connections } => d(
            format!(
                "PgBouncer's pools may open {demand} server connections ({pools}), but PostgreSQL accepts {usable} (max_connections {max_connections} minus reserved): at full load PgBouncer's logins fail with \"too many clients already\" (53300)."
            ),
            format!(
                "Lower default_pool_size (or per-database pool_size), or cap the total with max_db_connections, so that PgBouncer's server connections plus other clients stay under {usable}; `chatops pool-calc --pgbouncer` computes both sides."
            ),
        ),
        BouncerFault::PgbouncerPreparedStatements { var, server, how, pool_mode, version, fixed_url } => d(
            format!(
                "{var} points at PgBouncer ({server}, {how}; {version}) in {pool_mode} pooling mode without `pgbouncer=true`: Prisma prepares named statements (s0, s1, …) on whichever server connection its transaction got, and the next one finds them missing (26000 `prepared statement \"s0\" does not exist`) or already there (42P05 `prepared statement \"s0\" already exists`). PgBouncer keeps prepared statements across server connections only from 1.21 with max_prepared_statements set."
            ),
            format!(
                "Add pgbouncer=true to {var}: {fixed_url} and restart the backend. Give Prisma Migrate a direct connection to PostgreSQL: `directUrl = env(\"DIRECT_URL\")` in the datasource block of schema.prisma, with DIRECT_URL set to PostgreSQL's own host and port (migrations use session features that transaction pooling breaks). Alternatively run PgBouncer ≥ 1.21 with max_prepared_statements = 100."
            ),
        ),
        BouncerFault::PgbouncerSessionMode { database, clients, pool_size } => d(
            format!(
                "PgBouncer runs {database} in session pooling mode: each of the app's {clients} client connection(s) keeps a server connection for as long as it is open, and the pool has {pool_size}; the rest wait, and PgBouncer saves no PostgreSQL connections."
            ),
            "Set pool_mode = transaction (with pgbouncer=true in the backend's DATABASE_URL and a directUrl for migrations), or size default_pool_size to the app's connection_limit × replicas.".into(),
        ),
        BouncerFault::PgbouncerSessionFeatures { pool_mode, features, lines, log } => d(
            format!(
                "The backend's log ({log}) shows session features that {pool_mode} pooling breaks: {}. Under transaction pooling a session setting, an advisory lock or a LISTEN stays on a server connection the next transaction may not get (e.g. `{}`).",
                features.join(", "),
                lines.first().map(String::as_str).unwrap_or("")
            ),
            "Use transaction-scoped forms (SET LOCAL, pg_advisory_xact_lock) inside one transaction, run LISTEN and session-level work over a direct connection to PostgreSQL (a second URL), or give that database pool_mode=session in PgBouncer's [databases] entry.".into(),
        ),
    }
}

/// A session feature a statement in a log line uses, if any.
pub fn session_feature(line: &str) -> Option<&'static str> {
    let l = line.to_ascii_lowercase();
    let has = |w: &str| l.contains(w);
    if has("pg_advisory_lock") || has("pg_try_advisory_lock") {
        Some("advisory locks (pg_advisory_lock)")
    } else if has("listen ") && !has("listening") && !has("listen on") {
        Some("LISTEN/NOTIFY")
    } else if has("with hold") {
        Some("WITH HOLD cursors")
    } else if (has("set ") || has("set\t"))
        && !has("set local")
        && (has("set search_path")
            || has("set statement_timeout")
            || has("set session")
            || has("set time zone")
            || has("set timezone")
            || has("set role")
            || has("set lock_timeout")
            || has("set application_name"))
    {
        Some("session SET")
    } else {
        None
    }
}

/// The distinct session features in `lines` and up to five lines showing them.
pub fn session_features(lines: &[String]) -> (Vec<String>, Vec<String>) {
    let mut features: Vec<String> = Vec::new();
    let mut shown = Vec::new();
    for l in lines {
        if let Some(f) = session_feature(l) {
            if !features.iter().any(|x| x == f) {
                features.push(f.to_string());
            }
            if shown.len() < 5 {
                shown.push(l.trim().chars().take(200).collect());
            }
        }
    }
    (features, shown)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::samples::words;

    #[test]
    fn prepared_statements_name_the_url_fix_and_direct_url() {
        let f = Fault::PgBouncer(BouncerFault::PgbouncerPreparedStatements {
            var: "DATABASE_URL".into(),
            server: "127.0.0.1:6432".into(),
            how: "port 6432".into(),
            pool_mode: "transaction".into(),
            version: "PgBouncer 1.18.0".into(),
            fixed_url: "postgresql://app:***@127.0.0.1:6432/chat?pgbouncer=true".into(),
        });
        words(
            &f,
            &["without `pgbouncer=true`", "42P05", "26000", "1.21"],
            &["?pgbouncer=true", "directUrl", "DIRECT_URL"],
        );
        assert_eq!(f.cause_code(), "pgbouncer_prepared_statements");
        assert_eq!(f.cause(), Some(Cause::PreparedStatements));
        let v = serde_json::to_value(&f).unwrap_or_default();
        assert_eq!(v["cause"], "pgbouncer_prepared_statements");
        assert_eq!(v["var"], "DATABASE_URL");
    }

    #[test]
    fn session_features_are_found_in_log_lines() {
        let lines: Vec<String> = [
            "prisma:query SELECT pg_advisory_lock(72707369)",
            "prisma:query SET search_path TO app",
            "Nest application listening on 3001",
            "prisma:query SET LOCAL statement_timeout = 100",
            "prisma:query LISTEN new_message",
            "prisma:query SELECT 1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let (f, shown) = session_features(&lines);
        assert_eq!(
            f,
            vec![
                "advisory locks (pg_advisory_lock)",
                "session SET",
                "LISTEN/NOTIFY"
            ]
        );
        assert_eq!(shown.len(), 3);
    }
}
