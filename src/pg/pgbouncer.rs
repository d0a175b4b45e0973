//! PgBouncer's admin console, read only: `SHOW VERSION`, `POOLS`, `STATS`,
//! `CONFIG`, `DATABASES`, `CLIENTS` over the simple query protocol (the
//! console speaks nothing else), parsed by column name so that the columns
//! versions add or drop do not matter. Also: does a URL lead to PgBouncer?

use super::DbUrl;
use super::activity::{ConnectError, connect};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio_postgres::{Client, SimpleQueryMessage};

/// PgBouncer's default port.
pub const DEFAULT_PORT: u16 = 6432;
/// The console's pseudo-database.
pub const CONSOLE_DB: &str = "pgbouncer";

/// One row of a SHOW, by column name.
pub type Row = BTreeMap<String, String>;

/// One pool (database, user): `SHOW POOLS`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Pool {
    pub database: String,
    pub user: String,
    /// Clients linked to a server connection or idle.
    pub cl_active: u32,
    /// Clients waiting for a server connection.
    pub cl_waiting: u32,
    pub sv_active: u32,
    pub sv_idle: u32,
    pub sv_used: u32,
    pub sv_tested: u32,
    pub sv_login: u32,
    /// How long the oldest waiting client has waited, in seconds.
    pub maxwait_s: f64,
    pub pool_mode: String,
}

impl Pool {
    /// Server connections open (active, idle, used, tested, logging in).
    pub fn servers(&self) -> u32 {
        self.sv_active + self.sv_idle + self.sv_used + self.sv_tested + self.sv_login
    }
}

/// One configured database: `SHOW DATABASES`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Database {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub database: String,
    /// 0 when unset (then default_pool_size applies).
    pub pool_size: u32,
    pub reserve_pool: u32,
    /// Empty when the global pool_mode applies.
    pub pool_mode: String,
    /// max_db_connections for this database (0: no limit).
    pub max_connections: u32,
    pub current_connections: u32,
}

/// What the console showed at one moment.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Snapshot {
    /// `PgBouncer 1.18.0`.
    pub version: String,
    pub pools: Vec<Pool>,
    pub databases: Vec<Database>,
    /// `SHOW CONFIG`: key → value.
    pub config: BTreeMap<String, String>,
    /// Client connections by (database, state), the console's own left out.
    pub clients: BTreeMap<(String, String), u32>,
    /// `SHOW STATS` rows, the console's left out.
    pub stats: Vec<Row>,
}

impl Snapshot {
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.config.get(key).map(String::as_str)
    }

    pub fn setting_u32(&self, key: &str) -> Option<u32> {
        self.setting(key).and_then(|v| v.trim().parse().ok())
    }

    /// The global pool_mode.
    pub fn pool_mode(&self) -> &str {
        self.setting("pool_mode").unwrap_or("session")
    }

    /// The pool mode a database runs in (its own, else the global one).
    pub fn mode_of(&self, database: &str) -> &str {
        self.databases
            .iter()
            .find(|d| d.name == database && !d.pool_mode.is_empty())
            .map(|d| d.pool_mode.as_str())
            .unwrap_or_else(|| self.pool_mode())
    }

    /// The server connections a database/user pool may open.
    pub fn pool_size_of(&self, database: &str) -> u32 {
        self.databases
            .iter()
            .find(|d| d.name == database && d.pool_size > 0)
            .map(|d| d.pool_size)
            .or_else(|| self.setting_u32("default_pool_size"))
            .unwrap_or(20)
    }

    /// `max_prepared_statements` (PgBouncer ≥ 1.21; absent before: 0).
    pub fn max_prepared_statements(&self) -> u32 {
        self.setting_u32("max_prepared_statements").unwrap_or(0)
    }

    /// Clients waiting over all pools, and the longest wait.
    pub fn waiting(&self) -> (u32, f64) {
        let n = self.pools.iter().map(|p| p.cl_waiting).sum();
        let w = self.pools.iter().map(|p| p.maxwait_s).fold(0.0, f64::max);
        (n, w)
    }

    /// Server connections open over all pools.
    pub fn servers(&self) -> u32 {
        self.pools.iter().map(Pool::servers).sum()
    }

    /// Client connections over all pools (active + waiting).
    pub fn clients_total(&self) -> u32 {
        self.pools.iter().map(|p| p.cl_active + p.cl_waiting).sum()
    }
}

fn num<T: std::str::FromStr + Default>(r: &Row, k: &str) -> T {
    r.get(k)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_default()
}

fn text(r: &Row, k: &str) -> String {
    r.get(k).cloned().unwrap_or_default()
}

/// `SHOW POOLS` rows, the console's own pool left out.
pub fn parse_pools(rows: &[Row]) -> Vec<Pool> {
    rows.iter()
        .filter(|r| text(r, "database") != CONSOLE_DB)
        .map(|r| Pool {
            database: text(r, "database"),
            user: text(r, "user"),
            cl_active: num(r, "cl_active"),
            cl_waiting: num(r, "cl_waiting"),
            sv_active: num(r, "sv_active"),
            sv_idle: num(r, "sv_idle"),
            sv_used: num(r, "sv_used"),
            sv_tested: num(r, "sv_tested"),
            sv_login: num(r, "sv_login"),
            maxwait_s: num::<f64>(r, "maxwait") + num::<f64>(r, "maxwait_us") / 1e6,
            pool_mode: text(r, "pool_mode"),
        })
        .collect()
}

/// `SHOW DATABASES` rows, the console left out.
pub fn parse_databases(rows: &[Row]) -> Vec<Database> {
    rows.iter()
        .filter(|r| text(r, "name") != CONSOLE_DB)
        .map(|r| Database {
            name: text(r, "name"),
            host: text(r, "host"),
            port: num(r, "port"),
            database: text(r, "database"),
            pool_size: num(r, "pool_size"),
            reserve_pool: num(r, "reserve_pool"),
            pool_mode: text(r, "pool_mode"),
            max_connections: num(r, "max_connections"),
            current_connections: num(r, "current_connections"),
        })
        .collect()
}

/// `SHOW CONFIG` rows as key → value.
pub fn parse_config(rows: &[Row]) -> BTreeMap<String, String> {
    rows.iter()
        .map(|r| (text(r, "key"), text(r, "value")))
        .collect()
}

/// `SHOW CLIENTS` counted by (database, state), the console's left out.
pub fn count_clients(rows: &[Row]) -> BTreeMap<(String, String), u32> {
    let mut m = BTreeMap::new();
    for r in rows.iter().filter(|r| text(r, "database") != CONSOLE_DB) {
        *m.entry((text(r, "database"), text(r, "state")))
            .or_insert(0) += 1;
    }
    m
}

/// Why the console could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("cannot connect to PgBouncer's console: {0}")]
    Connect(ConnectError),
    #[error("`{command}` on PgBouncer's console failed: {message}")]
    Query { command: String, message: String },
    #[error("PgBouncer's console did not answer within {0:?}")]
    TimedOut(Duration),
}

/// The console URL for a URL through PgBouncer: the same server and login,
/// database `pgbouncer`.
pub fn console_of(u: &DbUrl) -> DbUrl {
    let mut c = u.clone();
    c.database = CONSOLE_DB.to_string();
    c.params
        .retain(|(k, _)| k == "sslmode" || k == "connect_timeout");
    c
}

/// Connects to the console `url` names (its database is replaced by
/// `pgbouncer`).
pub async fn connect_console(url: &DbUrl, timeout: Duration) -> Result<Client, ConsoleError> {
    connect(&console_of(url), "chatops", timeout)
        .await
        .map_err(ConsoleError::Connect)
}

/// One `SHOW …` as rows by column name.
pub async fn show(client: &Client, what: &str) -> Result<Vec<Row>, ConsoleError> {
    let command = format!("SHOW {what}");
    let msgs = client
        .simple_query(&command)
        .await
        .map_err(|e| ConsoleError::Query {
            command: command.clone(),
            message: super::error_chain(&e),
        })?;
    let mut rows = Vec::new();
    for m in msgs {
        if let SimpleQueryMessage::Row(r) = m {
            let mut row = Row::new();
            for (i, col) in r.columns().iter().enumerate() {
                row.insert(col.name().to_string(), r.get(i).unwrap_or("").to_string());
            }
            rows.push(row);
        }
    }
    Ok(rows)
}

/// `SHOW POOLS` only (the load monitor's fast sample).
pub async fn pools(client: &Client) -> Result<Vec<Pool>, ConsoleError> {
    Ok(parse_pools(&show(client, "POOLS").await?))
}

/// Everything the checks judge, within `timeout`.
pub async fn snapshot(client: &Client, timeout: Duration) -> Result<Snapshot, ConsoleError> {
    let work = async {
        let version = show(client, "VERSION")
            .await?
            .first()
            .and_then(|r| r.values().next().cloned())
            .unwrap_or_default();
        let stats = show(client, "STATS").await?;
        Ok(Snapshot {
            version,
            pools: parse_pools(&show(client, "POOLS").await?),
            databases: parse_databases(&show(client, "DATABASES").await?),
            config: parse_config(&show(client, "CONFIG").await?),
            clients: count_clients(&show(client, "CLIENTS").await?),
            stats: stats
                .into_iter()
                .filter(|r| text(r, "database") != CONSOLE_DB)
                .collect(),
        })
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| ConsoleError::TimedOut(timeout))?
}

/// What answers at a URL's host and port.
#[derive(Debug, Clone, PartialEq)]
pub enum Server {
    /// PgBouncer's console answered `SHOW VERSION` (or refused this login to
    /// it in PgBouncer's words).
    PgBouncer { version: Option<String> },
    /// PostgreSQL itself: it has no database `pgbouncer`.
    PostgreSql,
    /// Could not tell (unreachable, or an unexpected answer).
    Unknown { reason: String },
}

/// Asks the server behind `url`: a login to database `pgbouncer` that
/// answers `SHOW VERSION` is PgBouncer's console; PgBouncer also refuses a
/// user that is not an admin or stats user with "not allowed", where
/// PostgreSQL says the database does not exist (3D000).
///
/// First, without that login: a plain login to the URL's own database that
/// finds PostgreSQL's own address and port (`inet_server_addr()`,
/// `inet_server_port()`) at the URL's host and port is PostgreSQL itself,
/// and is told so without the failed login to `pgbouncer` that a plain
/// PostgreSQL would write to its log. Through a pooler (or a port mapping)
/// they differ, and the console is asked.
pub async fn identify(url: &DbUrl, timeout: Duration) -> Server {
    if answers_as_itself(url, timeout).await {
        return Server::PostgreSql;
    }
    match connect_console(url, timeout).await {
        Ok(c) => match tokio::time::timeout(timeout, show(&c, "VERSION")).await {
            Ok(Ok(rows)) => Server::PgBouncer {
                version: rows.first().and_then(|r| r.values().next().cloned()),
            },
            Ok(Err(e)) => Server::Unknown {
                reason: e.to_string(),
            },
            Err(_) => Server::Unknown {
                reason: "SHOW VERSION timed out".into(),
            },
        },
        Err(ConsoleError::Connect(ConnectError::Pg(e))) => {
            let text = super::error_chain(&e);
            match e.as_db_error().map(|d| d.code().code()) {
                Some("3D000") => Server::PostgreSql,
                _ if text.contains("not allowed") || text.contains("no such database") => {
                    Server::PgBouncer { version: None }
                }
                _ => Server::Unknown { reason: text },
            }
        }
        Err(e) => Server::Unknown {
            reason: e.to_string(),
        },
    }
}

/// Whether the server at `url` is PostgreSQL at exactly that address and
/// port (so nothing sits in between). False when it cannot tell.
async fn answers_as_itself(url: &DbUrl, timeout: Duration) -> bool {
    if url.host.starts_with('/') {
        return false; // a socket: PostgreSQL reports no address for it
    }
    let work = async {
        let c = connect(url, "chatops", timeout).await.ok()?;
        let msgs = c
            .simple_query("SELECT host(inet_server_addr()), inet_server_port()")
            .await
            .ok()?;
        let row = msgs.into_iter().find_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r),
            _ => None,
        })?;
        let addr: std::net::IpAddr = row.get(0)?.parse().ok()?;
        let port: u16 = row.get(1)?.parse().ok()?;
        if port != url.port {
            return Some(false);
        }
        let host = url.host.trim_start_matches('[').trim_end_matches(']');
        let ours: Vec<std::net::IpAddr> = match host.parse::<std::net::IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => tokio::net::lookup_host((host, url.port))
                .await
                .ok()?
                .map(|a| a.ip())
                .collect(),
        };
        Some(same_endpoint(addr, &ours))
    };
    matches!(tokio::time::timeout(timeout, work).await, Ok(Some(true)))
}

/// PostgreSQL's own address among the URL host's addresses (`localhost`
/// resolves to ::1 and 127.0.0.1; the server reports the one connected to).
/// Exactly: a PgBouncer on 127.0.0.2:5432 in front of PostgreSQL on
/// 127.0.0.1:5432 is another endpoint.
fn same_endpoint(server: std::net::IpAddr, url_addrs: &[std::net::IpAddr]) -> bool {
    url_addrs.contains(&server)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kv: &[(&str, &str)]) -> Row {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn pools_parse_by_name_and_leave_the_console_out() {
        let rows = vec![
            row(&[
                ("database", "pgbouncer"),
                ("user", "pgbouncer"),
                ("cl_active", "1"),
            ]),
            row(&[
                ("database", "chat"),
                ("user", "app"),
                ("cl_active", "20"),
                ("cl_waiting", "7"),
                ("sv_active", "5"),
                ("sv_idle", "1"),
                ("maxwait", "2"),
                ("maxwait_us", "500000"),
                ("pool_mode", "transaction"),
                ("cl_cancel_req", "0"),
            ]),
        ];
        let p = parse_pools(&rows);
        assert_eq!(p.len(), 1);
        assert_eq!((p[0].cl_waiting, p[0].servers()), (7, 6));
        assert!((p[0].maxwait_s - 2.5).abs() < 1e-9);
        let s = Snapshot {
            pools: p,
            config: parse_config(&[
                row(&[("key", "pool_mode"), ("value", "transaction")]),
                row(&[("key", "default_pool_size"), ("value", "20")]),
            ]),
            databases: parse_databases(&[row(&[("name", "chat"), ("pool_size", "5")])]),
            ..Snapshot::default()
        };
        assert_eq!(s.pool_size_of("chat"), 5);
        assert_eq!(s.pool_size_of("other"), 20);
        assert_eq!(s.mode_of("chat"), "transaction");
        assert_eq!(s.waiting().0, 7);
        assert_eq!(s.max_prepared_statements(), 0);
    }

    #[test]
    fn clients_are_counted_by_database_and_state() {
        let rows = vec![
            row(&[("database", "chat"), ("state", "active")]),
            row(&[("database", "chat"), ("state", "waiting")]),
            row(&[("database", "chat"), ("state", "active")]),
            row(&[("database", "pgbouncer"), ("state", "active")]),
        ];
        let c = count_clients(&rows);
        assert_eq!(c.get(&("chat".into(), "active".into())), Some(&2));
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn the_same_endpoint_is_one_of_the_hosts_addresses() {
        let ip = |t: &str| {
            t.parse::<std::net::IpAddr>()
                .unwrap_or_else(|_| panic!("{t}"))
        };
        assert!(same_endpoint(
            ip("127.0.0.1"),
            &[ip("::1"), ip("127.0.0.1")]
        ));
        assert!(!same_endpoint(ip("127.0.0.1"), &[ip("127.0.0.2")]));
        assert!(same_endpoint(ip("10.0.0.5"), &[ip("10.0.0.5")]));
        // a port mapping or a pooler on another host: ask the console
        assert!(!same_endpoint(ip("172.17.0.2"), &[ip("10.0.0.5")]));
        assert!(!same_endpoint(ip("10.0.0.6"), &[ip("127.0.0.1")]));
    }
}
