//! Throwaway PostgreSQL clusters for the demo and the integration tests.
//!
//! [`PgCluster::start`] runs `initdb` into a fresh directory under the system
//! temp dir, writes the settings to `postgresql.conf` and starts the server
//! with `pg_ctl`, listening on `127.0.0.1` only, on a free port in
//! `20000..32000` (below the kernel's ephemeral range, so the port cannot be
//! taken by an outgoing connection between the check and the bind; a start
//! that still loses the race is retried on another port).
//!
//! PostgreSQL refuses to run as root: when this process is root, the
//! directory is handed to the `postgres` user and `initdb`/`pg_ctl` run with
//! that user's uid and gid (set on the child process, like `runuser` does).
//!
//! Dropping a [`PgCluster`] stops the server immediately and removes its
//! directory; [`cleanup_all`] does the same for every cluster still alive in
//! this process (for a Ctrl-C handler).

mod bindir;
mod cleanup;
mod server;
mod setup;
pub mod tls;
mod util;

pub use cleanup::cleanup_all;

use crate::support::percent;
use cleanup::{Inner, NEXT_ID, registry};
use setup::{prepare, validate_options};
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::time::Duration;
use tokio_postgres::NoTls;
use util::{file_len, pg_error, quote_ident, tail_of_file, validate_identifier};

/// The chat backend's schema (12 tables plus the seed's test identities).
pub const CHAT_SCHEMA_SQL: &str = include_str!("../schema.sql");

/// The tables [`CHAT_SCHEMA_SQL`] creates.
pub use crate::support::chat_backend::TABLES as CHAT_TABLES;

/// Environment variable that names the server binaries' directory explicitly.
pub const BINDIR_ENV: &str = "CHATOPS_PG_BINDIR";

const HOST: &str = "127.0.0.1";
const SUPERUSER: &str = "postgres";
const PORT_MIN: u16 = 20000;
const PORT_MAX: u16 = 32000; // exclusive
const PORT_CANDIDATES: u32 = 500;
const START_ATTEMPTS: u32 = 6;
const INITDB_TIMEOUT: Duration = Duration::from_secs(120);
/// `pg_ctl -t`: how long pg_ctl itself waits for start/stop.
const PG_CTL_WAIT_SECS: u64 = 30;
/// Our bound on a whole pg_ctl run (a little more than its own -t).
const PG_CTL_TIMEOUT: Duration = Duration::from_secs(PG_CTL_WAIT_SECS + 10);
const DROP_STOP_WAIT_SECS: u64 = 10;
const DROP_STOP_TIMEOUT: Duration = Duration::from_secs(DROP_STOP_WAIT_SECS + 5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const QUERY_TIMEOUT: Duration = Duration::from_secs(60);
const HELPER_TIMEOUT: Duration = Duration::from_secs(10);
const LOG_TAIL_LINES: usize = 30;
const LOG_FILE: &str = "postgres.log";
const DATA_DIR: &str = "data";
const PWFILE: &str = "pwfile";

// ---------------------------------------------------------------------------
// Options and errors
// ---------------------------------------------------------------------------

/// Settings for a new cluster.
#[derive(Clone)]
pub struct PgOptions {
    /// Password of the `postgres` superuser (host connections use
    /// scram-sha-256).
    pub password: String,
    /// `max_connections`; PostgreSQL needs more than
    /// `superuser_reserved_connections` (3 by default).
    pub max_connections: u32,
    /// Extra `postgresql.conf` settings, `(name, value)`. Values are written
    /// single-quoted (quotes inside are doubled), which PostgreSQL accepts
    /// for every type: `("shared_buffers", "16MB")`, `("log_statement", "all")`.
    pub extra_settings: Vec<(String, String)>,
    /// Load `pg_stat_statements` (`shared_preload_libraries`) and create the
    /// extension in every chat database [`PgCluster::setup_chat_db`] makes.
    /// Off by default: it costs shared memory and a restart to change.
    pub stat_statements: bool,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            password: "postgrespassword".to_string(),
            max_connections: 100,
            extra_settings: Vec::new(),
            stat_statements: false,
        }
    }
}

impl fmt::Debug for PgOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgOptions")
            .field("password", &"<redacted>")
            .field("max_connections", &self.max_connections)
            .field("extra_settings", &self.extra_settings)
            .field("stat_statements", &self.stat_statements)
            .finish()
    }
}

/// Why a cluster could not be found, started, used or stopped.
#[derive(Debug)]
pub struct PgError {
    pub message: String,
    /// What to do about it, e.g. how to install the server binaries.
    pub hint: Option<String>,
}

impl PgError {
    fn new(message: impl Into<String>) -> Self {
        PgError {
            message: message.into(),
            hint: None,
        }
    }

    fn with_hint(message: impl Into<String>, hint: impl Into<String>) -> Self {
        PgError {
            message: message.into(),
            hint: Some(hint.into()),
        }
    }
}

impl fmt::Display for PgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\nhint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PgError {}

// ---------------------------------------------------------------------------
// The cluster
// ---------------------------------------------------------------------------

/// A running (or stopped) throwaway PostgreSQL cluster owned by this process.
pub struct PgCluster {
    inner: Arc<Inner>,
    password: String,
    stat_statements: bool,
}

impl fmt::Debug for PgCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgCluster")
            .field("port", &self.port())
            .field("dir", &self.inner.root)
            .field("bindir", &self.inner.bindir)
            .field("as_postgres_user", &self.inner.owner.is_some())
            .finish()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.inner.teardown();
    }
}

impl PgCluster {
    /// Finds the directory with the server binaries (`initdb`, `pg_ctl`,
    /// `postgres`). Order: `$CHATOPS_PG_BINDIR`; a real (non-script)
    /// `pg_ctl` on `PATH`, symlinks resolved; `pg_config --bindir`; the
    /// highest version under `/usr/lib/postgresql/*/bin`;
    /// `/usr/local/pgsql/bin`; Homebrew's `opt/postgresql*/bin`.
    pub fn find_bindir() -> Result<PathBuf, PgError> {
        bindir::find()
    }

    /// Creates and starts a new cluster. Takes 1-2 s.
    pub async fn start(opts: PgOptions) -> Result<PgCluster, PgError> {
        validate_options(&opts)?;

        let prepared = tokio::task::spawn_blocking(prepare)
            .await
            .map_err(|e| PgError::new(format!("preparing the cluster directory failed: {e}")))??;
        let (bindir, owner, root) = prepared;
        let inner = Arc::new(Inner {
            id: NEXT_ID.fetch_add(1, Ordering::SeqCst),
            data: root.join(DATA_DIR),
            root,
            bindir,
            owner,
            port: AtomicU16::new(0),
            torn_down: AtomicBool::new(false),
        });
        registry().push(Arc::clone(&inner));
        // From here on, returning early (or being cancelled) drops `cluster`,
        // which stops whatever was started and removes the directory.
        let cluster = PgCluster {
            inner,
            password: opts.password.clone(),
            stat_statements: opts.stat_statements,
        };
        cluster.initdb().await?;
        cluster.first_start(&opts).await?;
        Ok(cluster)
    }

    pub fn port(&self) -> u16 {
        self.inner.port.load(Ordering::SeqCst)
    }

    pub fn host(&self) -> &str {
        HOST
    }

    /// The superuser's name (`postgres`).
    pub fn user(&self) -> &str {
        SUPERUSER
    }

    pub fn password(&self) -> &str {
        &self.password
    }

    /// Whether `pg_stat_statements` is loaded (see [`PgOptions::stat_statements`]).
    pub fn has_stat_statements(&self) -> bool {
        self.stat_statements
    }

    /// `postgresql://postgres:PASSWORD@127.0.0.1:PORT/DATABASE` (percent-encoded).
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgresql://{}:{}@{}:{}/{}",
            SUPERUSER,
            percent::encode(&self.password),
            HOST,
            self.port(),
            percent::encode(database)
        )
    }

    pub fn bindir(&self) -> &Path {
        &self.inner.bindir
    }

    /// The uid and gid the server runs as when this process is root (the
    /// `postgres` user), for other daemons that must not run as root either.
    pub fn owner(&self) -> Option<(u32, u32)> {
        self.inner.owner
    }

    /// The cluster's temp directory (data dir, log, unix socket).
    pub fn dir(&self) -> &Path {
        &self.inner.root
    }

    pub fn data_dir(&self) -> &Path {
        &self.inner.data
    }

    /// Directory of the unix socket (`psql -h <this> -p <port> -U postgres`
    /// works without a password, but only for root and the server's user).
    pub fn socket_dir(&self) -> &Path {
        &self.inner.root
    }

    pub fn log_path(&self) -> PathBuf {
        self.inner.log_path()
    }

    /// The last `lines` lines of the server log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail_of_file(&self.inner.log_path(), 0, lines)
    }

    /// Connects as the superuser over TCP with the password; the connection
    /// task is spawned on the current tokio runtime.
    pub async fn connect(&self, database: &str) -> Result<tokio_postgres::Client, PgError> {
        self.ensure_alive()?;
        let mut config = tokio_postgres::Config::new();
        config
            .host(HOST)
            .port(self.port())
            .user(SUPERUSER)
            .password(self.password.as_bytes())
            .dbname(database)
            .application_name("chatops-sandbox")
            .connect_timeout(CONNECT_TIMEOUT);
        let what = format!("connecting to {HOST}:{} database {database:?}", self.port());
        let (client, connection) = match tokio::time::timeout(
            CONNECT_TIMEOUT + Duration::from_secs(2),
            config.connect(NoTls),
        )
        .await
        {
            Err(_) => return Err(PgError::new(format!("{what}: timed out"))),
            Ok(Err(e)) => return Err(pg_error(&what, &e)),
            Ok(Ok(pair)) => pair,
        };
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }

    /// `CREATE DATABASE name` (fails if it exists).
    pub async fn create_database(&self, name: &str) -> Result<(), PgError> {
        validate_identifier(name, "database name")?;
        let client = self.connect("postgres").await?;
        let sql = format!("CREATE DATABASE {}", quote_ident(name));
        let what = format!("creating database {name:?}");
        match tokio::time::timeout(QUERY_TIMEOUT, client.batch_execute(&sql)).await {
            Err(_) => Err(PgError::new(format!("{what}: timed out"))),
            Ok(Err(e)) => Err(pg_error(&what, &e)),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Runs the chat backend's schema ([`CHAT_SCHEMA_SQL`]) in `database`.
    pub async fn load_chat_schema(&self, database: &str) -> Result<(), PgError> {
        let client = self.connect(database).await?;
        let what = format!("loading the chat schema into {database:?}");
        match tokio::time::timeout(QUERY_TIMEOUT, client.batch_execute(CHAT_SCHEMA_SQL)).await {
            Err(_) => Err(PgError::new(format!("{what}: timed out"))),
            Ok(Err(e)) => Err(pg_error(&what, &e)),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Creates `name` with the chat schema (and `pg_stat_statements` when
    /// the cluster loads it); returns its URL.
    pub async fn setup_chat_db(&self, name: &str) -> Result<String, PgError> {
        self.create_database(name).await?;
        self.load_chat_schema(name).await?;
        if self.stat_statements {
            self.execute(name, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
                .await?;
        }
        Ok(self.url(name))
    }

    /// Runs `sql` (one or more statements, no parameters) in `database` as
    /// the superuser.
    pub async fn execute(&self, database: &str, sql: &str) -> Result<(), PgError> {
        let client = self.connect(database).await?;
        let what = format!("running SQL in {database:?}");
        match tokio::time::timeout(QUERY_TIMEOUT, client.batch_execute(sql)).await {
            Err(_) => Err(PgError::new(format!("{what}: timed out"))),
            Ok(Err(e)) => Err(pg_error(&what, &e)),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Stops the server (`pg_ctl stop -m fast`); the files stay, so
    /// [`start_again`](Self::start_again) works. Stopping a stopped cluster
    /// is fine.
    pub async fn stop(&self) -> Result<(), PgError> {
        self.ensure_alive()?;
        if !self.inner.pidfile().exists() {
            return Ok(());
        }
        let wait = PG_CTL_WAIT_SECS.to_string();
        self.run_tool(
            "pg_ctl",
            &["-D".into(), self.inner.data.clone().into()],
            &["-m", "fast", "-w", "-t", &wait, "-s", "stop"],
            PG_CTL_TIMEOUT,
        )
        .await
        .map(|_| ())
        .map_err(|e| self.with_log_tail(e, 0))
    }

    /// Starts a stopped cluster again, on the same port.
    pub async fn start_again(&self) -> Result<(), PgError> {
        self.ensure_alive()?;
        if self.is_running() {
            return Ok(());
        }
        let offset = file_len(&self.inner.log_path());
        match self.pg_ctl_start().await {
            Ok(()) => Ok(()),
            Err(e) => {
                let mut e = self.with_log_tail(e, offset);
                if self.log_says_port_taken(offset) {
                    e.hint = Some(format!(
                        "port {} was taken by another process while the cluster was stopped",
                        self.port()
                    ));
                }
                Err(e)
            }
        }
    }

    /// Whether the server is up: its pid file exists and its port accepts
    /// TCP connections.
    pub fn is_running(&self) -> bool {
        if self.inner.torn_down.load(Ordering::SeqCst) || !self.inner.pidfile().exists() {
            return false;
        }
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port()));
        TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
    }
}
