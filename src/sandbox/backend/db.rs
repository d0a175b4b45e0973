//! The database side: Prisma's pool settings from `DATABASE_URL`, a
//! deadpool-postgres pool sized like Prisma's, the chat queries, and errors
//! worded like Prisma's (P1001, P2024, P2022, …).

use super::logs::Logger;
use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime,
};
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio_postgres::NoTls;
use tokio_postgres::config::Host;
use tokio_postgres::types::Type;

/// Query parameters that Prisma reads and tokio-postgres would reject (or
/// that mean something else to it): they are removed before parsing.
const KEEP_PARAMS: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "user",
    "password",
    "dbname",
    "application_name",
    "options",
];

/// `DATABASE_URL` split into what tokio-postgres needs and Prisma's pool
/// settings.
#[derive(Debug, Clone)]
pub(crate) struct DbUrl {
    pub pg: tokio_postgres::Config,
    pub connection_limit: usize,
    /// Seconds to wait for a free connection (0: forever, as in Prisma).
    pub pool_timeout: u64,
    /// Seconds to open a connection (0: no limit).
    pub connect_timeout: u64,
    /// `host:port` as Prisma prints it in P1001.
    pub server: String,
    pub host: String,
    pub user: String,
    pub dbname: String,
    /// Prisma's `pgbouncer=true`: no named prepared statements (each query
    /// is an unnamed Parse/Bind/Execute in one round trip), so transaction
    /// pooling can hand every query another server connection.
    pub pgbouncer: bool,
}

fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// Parse a Prisma `DATABASE_URL`. Errors are worded like Prisma's P1013.
pub(crate) fn parse_url(url: &str) -> Result<DbUrl, String> {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, q),
        None => (url, ""),
    };
    let num = |k: &str| query_param(query, k).and_then(|v| v.trim().parse::<u64>().ok());
    let default_limit = std::thread::available_parallelism()
        .map(|n| n.get() * 2 + 1)
        .unwrap_or(5);
    let connection_limit = num("connection_limit")
        .map(|n| n as usize)
        .filter(|n| *n > 0)
        .unwrap_or(default_limit);
    let pool_timeout = num("pool_timeout").unwrap_or(10);
    let connect_timeout = num("connect_timeout").unwrap_or(5);
    let pgbouncer = query_param(query, "pgbouncer").is_some_and(|v| v == "true");
    let kept: Vec<&str> = query
        .split('&')
        .filter(|kv| {
            let k = kv.split('=').next().unwrap_or("");
            KEEP_PARAMS.contains(&k)
        })
        .collect();
    let pg_url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    let mut pg = tokio_postgres::Config::from_str(&pg_url)
        .map_err(|e| format!("The provided database string is invalid. {e}"))?;
    if connect_timeout > 0 {
        pg.connect_timeout(Duration::from_secs(connect_timeout));
    }
    let host = match pg.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_string(),
    };
    let port = pg.get_ports().first().copied().unwrap_or(5432);
    let user = pg.get_user().unwrap_or("postgres").to_string();
    let dbname = pg.get_dbname().unwrap_or(&user).to_string();
    Ok(DbUrl {
        server: format!("{host}:{port}"),
        host,
        user,
        dbname,
        pg,
        connection_limit,
        pool_timeout,
        connect_timeout,
        pgbouncer,
    })
}

/// A query parameter with its type (the unnamed path needs the types).
pub(super) type Param<'a> = (&'a (dyn tokio_postgres::types::ToSql + Sync), Type);

/// Runs `sql` on `c` as Prisma would: a named prepared statement cached on
/// the connection (`s0`, `s1`, …), or, with `pgbouncer=true`, an unnamed
/// statement that lives only within its own round trip.
pub(super) async fn rows(
    c: &Object,
    pgbouncer: bool,
    sql: &str,
    params: &[Param<'_>],
) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
    if pgbouncer {
        return c.query_typed(sql, params).await;
    }
    let st = c.prepare_cached(sql).await?;
    let values: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
        params.iter().map(|(v, _)| *v).collect();
    c.query(&st, &values).await
}

/// A database failure in Prisma's words.
#[derive(Debug, Clone)]
pub(crate) struct PrismaError {
    /// Prisma's error code (P1001, P2024, …): Prisma does not print it in
    /// its log lines, so neither do we; kept for tests and debugging.
    #[allow(dead_code)]
    pub code: &'static str,
    pub message: String,
}

/// Sender of a created message.
pub(crate) struct Sender {
    pub id: String,
    pub username: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

pub(crate) struct Created {
    pub id: String,
    pub content: String,
    pub kind: String,
    pub status: String,
    pub sender: Sender,
}

pub(crate) struct Listed {
    pub id: String,
    pub content: String,
    pub kind: String,
    pub created_at: String,
    pub sender_id: String,
    pub sender_username: String,
    /// JSON array text built by PostgreSQL.
    pub reads_json: String,
}

pub(crate) struct Db {
    pool: Pool,
    url: DbUrl,
    drift: bool,
    sleep_sql: Option<String>,
    op_timeout: Duration,
    log: Arc<Logger>,
    total: AtomicU64,
    errors: AtomicU64,
}

const ISO_FMT: &str = r#"'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'"#;

impl Db {
    pub(crate) fn new(
        url: DbUrl,
        drift: bool,
        query_ms: u64,
        log: Arc<Logger>,
    ) -> Result<Db, String> {
        let mgr = Manager::from_config(
            url.pg.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let secs = |s: u64| (s > 0).then(|| Duration::from_secs(s));
        let pool = Pool::builder(mgr)
            .max_size(url.connection_limit)
            .runtime(Runtime::Tokio1)
            .wait_timeout(secs(url.pool_timeout))
            .create_timeout(secs(url.connect_timeout))
            .recycle_timeout(Some(Duration::from_secs(5)))
            .build()
            .map_err(|e| format!("could not build the connection pool: {e}"))?;
        // Bound every operation: waiting + connecting + the injected delay +
        // a margin for the query itself.
        let wait = if url.pool_timeout > 0 {
            url.pool_timeout
        } else {
            600
        };
        let op_timeout =
            Duration::from_secs(wait + url.connect_timeout + 30) + Duration::from_millis(query_ms);
        let sleep_sql =
            (query_ms > 0).then(|| format!("SELECT pg_sleep({})", query_ms as f64 / 1000.0));
        Ok(Db {
            pool,
            url,
            drift,
            sleep_sql,
            op_timeout,
            log,
            total: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        })
    }

    pub(crate) fn url(&self) -> &DbUrl {
        &self.url
    }

    pub(crate) fn total_operations(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    pub(crate) fn error_count(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    fn p2024(&self) -> PrismaError {
        PrismaError {
            code: "P2024",
            message: format!(
                "Timed out fetching a new connection from the connection pool. More info: http://pris.ly/d/connection-pool (Current connection pool timeout: {}, connection limit: {})",
                self.url.pool_timeout, self.url.connection_limit
            ),
        }
    }

    fn p1001(&self) -> PrismaError {
        PrismaError {
            code: "P1001",
            message: format!("Can't reach database server at `{}`", self.url.server),
        }
    }

    fn closed() -> PrismaError {
        PrismaError {
            code: "P1017",
            message: "Server has closed the connection.".to_string(),
        }
    }

    /// An elapsed overall bound: a full pool reads as P2024, anything else as
    /// Prisma's P1008.
    fn elapsed(&self, limit: Duration) -> PrismaError {
        let st = self.pool.status();
        if st.size >= st.max_size && st.available == 0 {
            self.p2024()
        } else {
            PrismaError {
                code: "P1008",
                message: format!("Operations timed out after `{}s`", limit.as_secs()),
            }
        }
    }

    fn pool_error(&self, e: &PoolError) -> PrismaError {
        match e {
            PoolError::Timeout(deadpool_postgres::TimeoutType::Wait) => self.p2024(),
            PoolError::Timeout(_) => self.p1001(),
            PoolError::Backend(e) => self.pg_error(e),
            PoolError::Closed => Self::closed(),
            other => PrismaError {
                code: "P1001",
                message: format!("{} ({other})", self.p1001().message),
            },
        }
    }

    pub(crate) fn pg_error(&self, e: &tokio_postgres::Error) -> PrismaError {
        if let Some(db) = e.as_db_error() {
            let msg = db.message();
            let quoted = |prefix: &str| -> Option<String> {
                let start = msg.find(prefix)? + prefix.len();
                let rest = &msg[start..];
                let end = rest.find('"')?;
                Some(rest[..end].to_string())
            };
            let (code, message) = match db.code().code() {
                "42703" => (
                    "P2022",
                    format!(
                        "The column `{}` does not exist in the current database.",
                        missing_column(msg)
                    ),
                ),
                "42P01" => (
                    "P2021",
                    format!(
                        "The table `public.{}` does not exist in the current database.",
                        quoted("relation \"").unwrap_or_else(|| "(not available)".into())
                    ),
                ),
                "28P01" | "28000" => (
                    "P1000",
                    format!(
                        "Authentication failed against database server at `{}`, the provided database credentials for `{}` are not valid.",
                        self.url.host, self.url.user
                    ),
                ),
                "3D000" => (
                    "P1003",
                    format!(
                        "Database `{}` does not exist on the database server at `{}`.",
                        self.url.dbname, self.url.server
                    ),
                ),
                "53300" => (
                    "P2037",
                    format!(
                        "Too many database connections opened: {}: {}",
                        db.severity(),
                        msg
                    ),
                ),
                "57P01" | "57P02" | "57P03" => return Self::closed(),
                "23503" => (
                    "P2003",
                    format!(
                        "Foreign key constraint failed on the field: `{}`",
                        db.constraint().unwrap_or("(not available)")
                    ),
                ),
                "23505" => (
                    "P2002",
                    format!(
                        "Unique constraint failed on the constraint: `{}`",
                        db.constraint().unwrap_or("(not available)")
                    ),
                ),
                other => (
                    "P2010",
                    format!(
                        "Error occurred during query execution: ConnectorError(QueryError(PostgresError {{ code: \"{other}\", message: \"{msg}\", severity: \"{}\" }}))",
                        db.severity()
                    ),
                ),
            };
            return PrismaError { code, message };
        }
        if e.is_closed() {
            return Self::closed();
        }
        let text = e.to_string();
        if text.contains("password missing") {
            return PrismaError {
                code: "P1000",
                message: format!(
                    "Authentication failed against database server at `{}`, the provided database credentials for `{}` are not valid.",
                    self.url.host, self.url.user
                ),
            };
        }
        let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
        while let Some(s) = src {
            if let Some(io) = s.downcast_ref::<std::io::Error>() {
                use std::io::ErrorKind::*;
                return match io.kind() {
                    ConnectionReset | BrokenPipe | UnexpectedEof | ConnectionAborted => {
                        Self::closed()
                    }
                    _ => self.p1001(),
                };
            }
            src = s.source();
        }
        // Connection-time failures without an io source (timeouts, …).
        if text.contains("timeout") || text.contains("connecting") {
            return self.p1001();
        }
        PrismaError {
            code: "P1017",
            message: format!("Error in PostgreSQL connection: {text}"),
        }
    }

    /// Run one operation on a pooled connection, as one Prisma query: count
    /// it, bound it, hold the connection `CHATOPS_SANDBOX_QUERY_MS` longer,
    /// and log a `prisma:error` line when it fails.
    pub(super) async fn run<T, F, Fut>(&self, op: &str, f: F) -> Result<T, PrismaError>
    where
        F: FnOnce(Object) -> Fut,
        Fut: Future<Output = Result<T, tokio_postgres::Error>>,
    {
        self.total.fetch_add(1, Ordering::Relaxed);
        let work = async {
            let client = self.pool.get().await.map_err(|e| self.pool_error(&e))?;
            if let Some(sql) = &self.sleep_sql {
                client
                    .batch_execute(sql)
                    .await
                    .map_err(|e| self.pg_error(&e))?;
            }
            f(client).await.map_err(|e| self.pg_error(&e))
        };
        let res = match tokio::time::timeout(self.op_timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(self.elapsed(self.op_timeout)),
        };
        if let Err(e) = &res {
            self.errors.fetch_add(1, Ordering::Relaxed);
            self.log
                .prisma_error(&format!("Invalid `{op}` invocation: {}", e.message));
        }
        res
    }

    /// `SELECT 1` within `limit` (health probe and start-up check). Counted,
    /// not logged: callers word the failure.
    pub(crate) async fn ping(&self, limit: Duration) -> Result<(), PrismaError> {
        self.total.fetch_add(1, Ordering::Relaxed);
        let work = async {
            let client = self.pool.get().await.map_err(|e| self.pool_error(&e))?;
            client
                .simple_query("SELECT 1")
                .await
                .map_err(|e| self.pg_error(&e))?;
            Ok(())
        };
        let res = match tokio::time::timeout(limit, work).await {
            Ok(r) => r,
            Err(_) => Err(self.elapsed(limit)),
        };
        if res.is_err() {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        res
    }

    pub(crate) async fn is_participant(&self, cid: &str, uid: &str) -> Result<bool, PrismaError> {
        let b = self.url.pgbouncer;
        self.run("prisma.conversationUser.findFirst()", |c| async move {
            let sql = r#"SELECT 1 FROM conversation_users WHERE "conversationId" = $1 AND "userId" = $2 LIMIT 1"#;
            let found = rows(&c, b, sql, &[(&cid, Type::TEXT), (&uid, Type::TEXT)]).await?;
            Ok(!found.is_empty())
        })
        .await
    }

    /// The insert of a message with its sender (with the drift knob, into a
    /// column that does not exist): `$1`..`$6` are id, conversation, sender,
    /// content, type and the ISO creation time.
    pub(super) fn insert_sql(&self) -> String {
        let col = if self.drift {
            "\"messageType\""
        } else {
            "type"
        };
        format!(
            r#"WITH m AS (
  INSERT INTO messages (id, "conversationId", "senderId", content, {col}, status, "createdAt", "updatedAt")
  VALUES ($1, $2, $3, $4, $5, 'SENT', CAST($6::text AS timestamp(3)), CAST($6::text AS timestamp(3)))
  RETURNING id, content, {col} AS type, status, "senderId")
SELECT m.id, m.content, m.type::text, m.status, u.id, u.username, u."firstName", u."lastName"
FROM m JOIN users u ON u.id = m."senderId""#
        )
    }

    /// A row of [`insert_sql`](Self::insert_sql).
    pub(super) fn created(r: &tokio_postgres::Row) -> Result<Created, tokio_postgres::Error> {
        Ok(Created {
            id: r.try_get(0)?,
            content: r.try_get(1)?,
            kind: r.try_get(2)?,
            status: r.try_get(3)?,
            sender: Sender {
                id: r.try_get(4)?,
                username: r.try_get(5)?,
                first_name: r.try_get(6)?,
                last_name: r.try_get(7)?,
            },
        })
    }

    /// Insert a message and return it with its sender. `created_at` is the
    /// ISO time.
    pub(crate) async fn create_message(
        &self,
        id: &str,
        cid: &str,
        uid: &str,
        content: &str,
        kind: &str,
        created_at: &str,
    ) -> Result<Option<Created>, PrismaError> {
        let sql = self.insert_sql();
        let b = self.url.pgbouncer;
        self.run("prisma.message.create()", |c| async move {
            let t = Type::TEXT;
            let params: [Param; 6] = [
                (&id, t.clone()),
                (&cid, t.clone()),
                (&uid, t.clone()),
                (&content, t.clone()),
                (&kind, t.clone()),
                (&created_at, t),
            ];
            let found = rows(&c, b, &sql, &params).await?;
            found.first().map(Self::created).transpose()
        })
        .await
    }

    /// Newest first, with the requesting user's reads of each message.
    pub(crate) async fn list_messages(
        &self,
        cid: &str,
        uid: &str,
        limit: i64,
    ) -> Result<Vec<Listed>, PrismaError> {
        let sql = format!(
            r#"SELECT m.id, m.content, m.type, to_char(m."createdAt", {ISO_FMT}), u.id, u.username,
  COALESCE((SELECT json_agg(json_build_object('id', r.id, 'messageId', r."messageId", 'userId', r."userId",
      'readAt', to_char(r."readAt", {ISO_FMT})) ORDER BY r."readAt")
    FROM message_reads r WHERE r."messageId" = m.id AND r."userId" = $2), '[]'::json)::text
FROM messages m JOIN users u ON u.id = m."senderId"
WHERE m."conversationId" = $1
ORDER BY m."createdAt" DESC, m.id DESC
LIMIT $3"#
        );
        let b = self.url.pgbouncer;
        self.run("prisma.message.findMany()", |c| async move {
            let params: [Param; 3] = [(&cid, Type::TEXT), (&uid, Type::TEXT), (&limit, Type::INT8)];
            let found = rows(&c, b, &sql, &params).await?;
            let mut out = Vec::with_capacity(found.len());
            for r in found {
                out.push(Listed {
                    id: r.try_get(0)?,
                    content: r.try_get(1)?,
                    kind: r.try_get(2)?,
                    created_at: r.try_get(3)?,
                    sender_id: r.try_get(4)?,
                    sender_username: r.try_get(5)?,
                    reads_json: r.try_get(6)?,
                });
            }
            Ok(out)
        })
        .await
    }
}

/// The column PostgreSQL says is missing, qualified by its table when the
/// message names it, as Prisma prints it in P2022 (`messages.messageType`):
/// `column "x" of relation "t" does not exist`, `column t.x does not exist`,
/// `column "x" does not exist`.
fn missing_column(msg: &str) -> String {
    let rest = msg.strip_prefix("column ").unwrap_or(msg);
    let rest = rest.strip_suffix(" does not exist").unwrap_or(rest);
    let unquote = |s: &str| s.trim().trim_matches('"').to_string();
    match rest.split_once(" of relation ") {
        Some((col, table)) => format!("{}.{}", unquote(table), unquote(col)),
        None if !rest.is_empty() => rest.split('.').map(unquote).collect::<Vec<_>>().join("."),
        None => "(not available)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_prisma_params() {
        let u = parse_url(
            "postgresql://postgres:pw@127.0.0.1:25432/chat_backend_db?connection_limit=2&pool_timeout=1&connect_timeout=3&schema=public",
        )
        .map_err(|e| e.to_string());
        let u = match u {
            Ok(u) => u,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(u.connection_limit, 2);
        assert_eq!(u.pool_timeout, 1);
        assert_eq!(u.connect_timeout, 3);
        assert_eq!(u.server, "127.0.0.1:25432");
        assert_eq!(u.dbname, "chat_backend_db");
        assert!(parse_url("not a url").is_err());
    }

    #[test]
    fn names_the_missing_column_like_prisma() {
        assert_eq!(
            missing_column(r#"column "messageType" of relation "messages" does not exist"#),
            "messages.messageType"
        );
        assert_eq!(
            missing_column(r#"column m.messageType does not exist"#),
            "m.messageType"
        );
        assert_eq!(missing_column(r#"column "x" does not exist"#), "x");
    }
}
