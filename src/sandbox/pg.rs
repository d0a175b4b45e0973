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

use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, mpsc};
use std::time::{Duration, Instant};

use crate::support::percent;
use tokio_postgres::NoTls;

/// The chat backend's schema (12 tables plus the seed's test identities).
pub const CHAT_SCHEMA_SQL: &str = include_str!("schema.sql");

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
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            password: "postgrespassword".to_string(),
            max_connections: 100,
            extra_settings: Vec::new(),
        }
    }
}

impl fmt::Debug for PgOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgOptions")
            .field("password", &"<redacted>")
            .field("max_connections", &self.max_connections)
            .field("extra_settings", &self.extra_settings)
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

/// How to get the server binaries on this platform.
fn install_hint() -> String {
    let install = if cfg!(target_os = "macos") {
        "install them with `brew install postgresql@16`"
    } else {
        "install them with `apt-get install -y postgresql` (Debian/Ubuntu; on macOS: `brew install postgresql@16`)"
    };
    format!("{install}, or set {BINDIR_ENV} to the directory holding initdb, pg_ctl and postgres")
}

// ---------------------------------------------------------------------------
// The process-wide registry of live clusters
// ---------------------------------------------------------------------------

/// The parts of a cluster that teardown needs; shared with the registry.
struct Inner {
    id: u64,
    root: PathBuf,
    data: PathBuf,
    bindir: PathBuf,
    /// uid and gid to run the binaries as (Some when this process is root).
    owner: Option<(u32, u32)>,
    port: AtomicU16,
    torn_down: AtomicBool,
}

static REGISTRY: Mutex<Vec<Arc<Inner>>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

fn registry() -> MutexGuard<'static, Vec<Arc<Inner>>> {
    REGISTRY.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Stops and removes every cluster still alive in this process. Meant for a
/// Ctrl-C handler; safe to call more than once, and the [`PgCluster`] values
/// themselves stay valid (their `Drop` then does nothing; other methods fail).
pub fn cleanup_all() {
    let all: Vec<Arc<Inner>> = std::mem::take(&mut *registry());
    for inner in all {
        inner.teardown();
    }
}

impl Inner {
    fn pidfile(&self) -> PathBuf {
        self.data.join("postmaster.pid")
    }

    fn log_path(&self) -> PathBuf {
        self.root.join(LOG_FILE)
    }

    fn pg_ctl_std(&self, args: &[&str]) -> StdCommand {
        let mut cmd = StdCommand::new(self.bindir.join("pg_ctl"));
        cmd.arg("-D").arg(&self.data).args(args);
        cmd.current_dir(&self.root);
        if let Some((uid, gid)) = self.owner {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    /// Stops the server immediately (if running) and removes the directory.
    /// Idempotent, synchronous, never panics.
    fn teardown(&self) {
        if self.torn_down.swap(true, Ordering::SeqCst) {
            return;
        }
        registry().retain(|other| other.id != self.id);

        if self.pidfile().exists() {
            let wait = DROP_STOP_WAIT_SECS.to_string();
            let cmd = self.pg_ctl_std(&["-m", "immediate", "-w", "-t", &wait, "-s", "stop"]);
            let _ = run_sync(cmd, DROP_STOP_TIMEOUT, false);
            if let Some(pid) = read_postmaster_pid(&self.pidfile()) {
                // pg_ctl failed or timed out: kill the postmaster outright.
                let mut kill = StdCommand::new("kill");
                kill.arg("-KILL").arg(pid.to_string());
                let _ = run_sync(kill, HELPER_TIMEOUT, false);
                std::thread::sleep(Duration::from_millis(200));
            }
        }

        for attempt in 0..5 {
            match fs::remove_dir_all(&self.root) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(_) => std::thread::sleep(Duration::from_millis(100 * (attempt + 1))),
            }
        }
    }
}

fn read_postmaster_pid(pidfile: &Path) -> Option<u32> {
    let text = fs::read_to_string(pidfile).ok()?;
    let pid: u32 = text.lines().next()?.trim().parse().ok()?;
    (pid > 1).then_some(pid)
}

// ---------------------------------------------------------------------------
// The cluster
// ---------------------------------------------------------------------------

/// A running (or stopped) throwaway PostgreSQL cluster owned by this process.
pub struct PgCluster {
    inner: Arc<Inner>,
    password: String,
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
        if let Some(dir) = std::env::var_os(BINDIR_ENV).filter(|v| !v.is_empty()) {
            let dir = PathBuf::from(dir);
            return if is_server_bindir(&dir) {
                Ok(dir)
            } else {
                Err(PgError::with_hint(
                    format!(
                        "{BINDIR_ENV}={} does not contain the PostgreSQL server binaries (initdb, pg_ctl, postgres)",
                        dir.display()
                    ),
                    install_hint(),
                ))
            };
        }
        if let Some(dir) = bindir_from_path() {
            return Ok(dir);
        }
        if let Some(dir) = bindir_from_pg_config() {
            return Ok(dir);
        }
        if let Some(dir) = highest_versioned_bindir(Path::new("/usr/lib/postgresql"), parse_version)
        {
            return Ok(dir);
        }
        let local = PathBuf::from("/usr/local/pgsql/bin");
        if is_server_bindir(&local) {
            return Ok(local);
        }
        for brew in ["/opt/homebrew/opt", "/usr/local/opt"] {
            if let Some(dir) = highest_versioned_bindir(Path::new(brew), |name| {
                let rest = name.strip_prefix("postgresql")?;
                match rest.strip_prefix('@') {
                    Some(version) => parse_version(version),
                    // Plain `postgresql` (a link to some version): lowest priority.
                    None if rest.is_empty() => Some((0, 0)),
                    None => None,
                }
            }) {
                return Ok(dir);
            }
        }
        Err(PgError::with_hint(
            "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: looked at \
             $CHATOPS_PG_BINDIR, pg_ctl on PATH, pg_config --bindir, /usr/lib/postgresql/*/bin, \
             /usr/local/pgsql/bin and /opt/homebrew/opt/postgresql*/bin",
            install_hint(),
        ))
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

    /// Creates `name` with the chat schema; returns its URL.
    pub async fn setup_chat_db(&self, name: &str) -> Result<String, PgError> {
        self.create_database(name).await?;
        self.load_chat_schema(name).await?;
        Ok(self.url(name))
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

    // -- internals ----------------------------------------------------------

    fn ensure_alive(&self) -> Result<(), PgError> {
        if self.inner.torn_down.load(Ordering::SeqCst) {
            Err(PgError::new(format!(
                "the cluster in {} was already cleaned up",
                self.inner.root.display()
            )))
        } else {
            Ok(())
        }
    }

    async fn initdb(&self) -> Result<(), PgError> {
        let pwfile = self.inner.root.join(PWFILE);
        let written =
            write_private_file(&pwfile, &format!("{}\n", self.password), self.inner.owner);
        written.map_err(|e| PgError::new(format!("writing {}: {e}", pwfile.display())))?;
        let mut pwarg = OsString::from("--pwfile=");
        pwarg.push(&pwfile);
        let result = self
            .run_tool(
                "initdb",
                &["-D".into(), self.inner.data.clone().into(), pwarg],
                &[
                    "-U",
                    SUPERUSER,
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--no-locale",
                    "--no-sync",
                ],
                INITDB_TIMEOUT,
            )
            .await;
        let _ = fs::remove_file(&pwfile);
        result.map(|_| ())
    }

    async fn first_start(&self, opts: &PgOptions) -> Result<(), PgError> {
        let conf_path = self.inner.data.join("postgresql.conf");
        let base = fs::read_to_string(&conf_path)
            .map_err(|e| PgError::new(format!("reading {}: {e}", conf_path.display())))?;
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            let port = self.reserve_port()?;
            let conf = format!("{base}\n{}", self.settings_block(port, opts));
            fs::write(&conf_path, conf)
                .map_err(|e| PgError::new(format!("writing {}: {e}", conf_path.display())))?;
            let offset = file_len(&self.inner.log_path());
            match self.pg_ctl_start().await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    let e = self.with_log_tail(e, offset);
                    if !self.log_says_port_taken(offset) || self.inner.pidfile().exists() {
                        return Err(e);
                    }
                    last_error = Some(e);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| PgError::new("PostgreSQL did not start")))
    }

    async fn pg_ctl_start(&self) -> Result<(), PgError> {
        let wait = PG_CTL_WAIT_SECS.to_string();
        self.run_tool(
            "pg_ctl",
            &[
                "-D".into(),
                self.inner.data.clone().into(),
                "-l".into(),
                self.inner.log_path().into(),
            ],
            &["-w", "-t", &wait, "-s", "start"],
            PG_CTL_TIMEOUT,
        )
        .await
        .map(|_| ())
        .map_err(|mut e| {
            e.message = format!(
                "PostgreSQL failed to start on {HOST}:{}: {}",
                self.port(),
                e.message
            );
            e
        })
    }

    fn settings_block(&self, port: u16, opts: &PgOptions) -> String {
        let mut block = String::from("\n# ---- chatops sandbox settings ----\n");
        let mut set = |name: &str, value: String| {
            block.push_str(&format!("{name} = {value}\n"));
        };
        set("listen_addresses", quote_literal(HOST));
        set("port", port.to_string());
        set(
            "unix_socket_directories",
            quote_literal(&self.inner.root.to_string_lossy()),
        );
        set("max_connections", opts.max_connections.to_string());
        set("fsync", "off".to_string());
        for (name, value) in &opts.extra_settings {
            set(name, quote_literal(value));
        }
        block
    }

    /// Picks a free port in 20000..32000 that no other cluster of this
    /// process uses, and records it as this cluster's port.
    fn reserve_port(&self) -> Result<u16, PgError> {
        let reg = registry();
        let taken: Vec<u16> = reg
            .iter()
            .filter(|other| other.id != self.inner.id)
            .map(|other| other.port.load(Ordering::SeqCst))
            .collect();
        let previous = self.port();
        for i in 0..PORT_CANDIDATES {
            let port = random_port(u64::from(i));
            if port == previous || taken.contains(&port) {
                continue;
            }
            if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
                self.inner.port.store(port, Ordering::SeqCst);
                return Ok(port);
            }
        }
        Err(PgError::new(format!(
            "no free TCP port found on {HOST} in {PORT_MIN}..{PORT_MAX}"
        )))
    }

    fn log_says_port_taken(&self, offset: u64) -> bool {
        let log = read_from(&self.inner.log_path(), offset);
        log.contains("Address already in use")
            || log.contains("could not create any TCP/IP sockets")
    }

    fn with_log_tail(&self, mut e: PgError, offset: u64) -> PgError {
        let path = self.inner.log_path();
        let tail = tail_of_file(&path, offset, LOG_TAIL_LINES);
        if !tail.trim().is_empty() {
            e.message = format!(
                "{}\n--- last lines of the server log ({}) ---\n{}",
                e.message,
                path.display(),
                tail.trim_end()
            );
        }
        e
    }

    /// Runs one of the server binaries (as the postgres user when we are
    /// root), bounded by `timeout`; returns its output, or an error with it.
    async fn run_tool(
        &self,
        tool: &str,
        os_args: &[OsString],
        args: &[&str],
        timeout: Duration,
    ) -> Result<String, PgError> {
        let program = self.inner.bindir.join(tool);
        let mut cmd = tokio::process::Command::new(&program);
        cmd.args(os_args)
            .args(args)
            .current_dir(&self.inner.root)
            .env_remove("PGDATA")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some((uid, gid)) = self.inner.owner {
            cmd.uid(uid).gid(gid);
        }
        let output = match tokio::time::timeout(timeout, cmd.output()).await {
            Err(_) => {
                return Err(PgError::new(format!(
                    "{tool} did not finish within {}s",
                    timeout.as_secs()
                )));
            }
            Ok(Err(e)) => {
                return Err(PgError::new(format!(
                    "could not run {}: {e}",
                    program.display()
                )));
            }
            Ok(Ok(output)) => output,
        };
        let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&output.stderr));
        if output.status.success() {
            Ok(text)
        } else {
            let detail = text.trim();
            let detail = if detail.is_empty() {
                String::new()
            } else {
                format!(": {detail}")
            };
            Err(PgError::new(format!(
                "{tool} failed ({}){detail}",
                output.status
            )))
        }
    }
}

// ---------------------------------------------------------------------------
// Preparation (blocking): binaries, user, directory
// ---------------------------------------------------------------------------

/// Server binaries' directory, the uid/gid to run them as, the new temp dir.
type Prepared = (PathBuf, Option<(u32, u32)>, PathBuf);

fn prepare() -> Result<Prepared, PgError> {
    let bindir = PgCluster::find_bindir()?;
    let owner = if is_root() {
        Some(postgres_ids()?)
    } else {
        None
    };
    let root = make_root_dir(owner)?;
    Ok((bindir, owner, root))
}

fn validate_options(opts: &PgOptions) -> Result<(), PgError> {
    if opts.password.is_empty() || opts.password.contains(['\n', '\r', '\0']) {
        return Err(PgError::new(
            "the password must be non-empty and must not contain line breaks or NUL",
        ));
    }
    if opts.max_connections < 4 {
        return Err(PgError::new(format!(
            "max_connections = {} is too small: PostgreSQL reserves 3 connections for superusers, use at least 4",
            opts.max_connections
        )));
    }
    for (name, value) in &opts.extra_settings {
        let mut chars = name.chars();
        let valid = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        if !valid {
            return Err(PgError::new(format!("invalid setting name {name:?}")));
        }
        if value.contains(['\n', '\r', '\0']) {
            return Err(PgError::new(format!(
                "the value of setting {name} must not contain line breaks or NUL"
            )));
        }
    }
    Ok(())
}

fn is_root() -> bool {
    static UID: OnceLock<Option<u32>> = OnceLock::new();
    *UID.get_or_init(effective_uid) == Some(0)
}

fn effective_uid() -> Option<u32> {
    // Linux: "Uid:\treal\teffective\tsaved\tfs".
    if let Ok(status) = fs::read_to_string("/proc/self/status") {
        let euid = status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            .and_then(|id| id.parse().ok());
        if euid.is_some() {
            return euid;
        }
    }
    let mut cmd = StdCommand::new("id");
    cmd.arg("-u");
    let (ok, out) = run_sync(cmd, HELPER_TIMEOUT, true)?;
    if ok { out.trim().parse().ok() } else { None }
}

fn postgres_ids() -> Result<(u32, u32), PgError> {
    let id_of = |flag: &str| -> Option<u32> {
        let mut cmd = StdCommand::new("id");
        cmd.arg(flag).arg(SUPERUSER);
        let (ok, out) = run_sync(cmd, HELPER_TIMEOUT, true)?;
        if ok { out.trim().parse().ok() } else { None }
    };
    match (id_of("-u"), id_of("-g")) {
        (Some(uid), Some(gid)) if uid != 0 => Ok((uid, gid)),
        _ => Err(PgError::with_hint(
            "running as root, but there is no non-root `postgres` user to run the server as \
             (PostgreSQL refuses to run as root)",
            "create it with `useradd --system --user-group postgres` (the Debian/Ubuntu `postgresql` package creates it), or run as a non-root user",
        )),
    }
}

/// Creates `<tmp>/chatops-pg-<pid>-<n>` (mode 0700, owned by `owner`) and its
/// `data` subdirectory.
fn make_root_dir(owner: Option<(u32, u32)>) -> Result<PathBuf, PgError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut base = std::env::temp_dir();
    if let Ok(canonical) = fs::canonicalize(&base) {
        base = canonical;
    }
    // The postgres user must be able to reach the directory.
    if owner.is_some() && !world_traversable(&base) {
        base = PathBuf::from("/tmp");
    }
    let pid = std::process::id();
    let mut last_error = None;
    for _ in 0..100 {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let root = base.join(format!("chatops-pg-{pid}-{n}"));
        match fs::create_dir(&root) {
            Ok(()) => {
                let data = root.join(DATA_DIR);
                let set_up = fs::set_permissions(&root, fs::Permissions::from_mode(0o700))
                    .and_then(|()| fs::create_dir(&data))
                    .and_then(|()| fs::set_permissions(&data, fs::Permissions::from_mode(0o700)))
                    .and_then(|()| match owner {
                        Some((uid, gid)) => std::os::unix::fs::chown(&root, Some(uid), Some(gid))
                            .and_then(|()| std::os::unix::fs::chown(&data, Some(uid), Some(gid))),
                        None => Ok(()),
                    });
                return match set_up {
                    Ok(()) => Ok(root),
                    Err(e) => {
                        let _ = fs::remove_dir_all(&root);
                        Err(PgError::new(format!("preparing {}: {e}", root.display())))
                    }
                };
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last_error = Some(e),
            Err(e) => {
                return Err(PgError::new(format!(
                    "creating a directory under {}: {e}",
                    base.display()
                )));
            }
        }
    }
    Err(PgError::new(format!(
        "could not create a fresh directory under {}: {}",
        base.display(),
        last_error.map(|e| e.to_string()).unwrap_or_default()
    )))
}

fn world_traversable(dir: &Path) -> bool {
    dir.ancestors()
        .all(|a| fs::metadata(a).is_ok_and(|m| m.mode() & 0o001 != 0))
}

fn write_private_file(
    path: &Path,
    content: &str,
    owner: Option<(u32, u32)>,
) -> std::io::Result<()> {
    fs::write(path, content)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Finding the binaries
// ---------------------------------------------------------------------------

fn is_server_bindir(dir: &Path) -> bool {
    ["initdb", "pg_ctl", "postgres"]
        .iter()
        .all(|tool| dir.join(tool).is_file())
}

/// True when `path` is not a script (Debian's /usr/bin wrappers are Perl).
fn is_real_binary(path: &Path) -> bool {
    let mut head = [0u8; 2];
    match fs::File::open(path).and_then(|mut f| f.read_exact(&mut head)) {
        Ok(()) => &head != b"#!",
        Err(_) => false,
    }
}

fn bindir_from_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).find_map(|dir| {
        let candidate = dir.join("pg_ctl");
        if !candidate.is_file() {
            return None;
        }
        let resolved = fs::canonicalize(&candidate).ok()?;
        if !is_real_binary(&resolved) {
            return None;
        }
        let bindir = resolved.parent()?.to_path_buf();
        is_server_bindir(&bindir).then_some(bindir)
    })
}

fn bindir_from_pg_config() -> Option<PathBuf> {
    let mut cmd = StdCommand::new("pg_config");
    cmd.arg("--bindir");
    let (ok, out) = run_sync(cmd, HELPER_TIMEOUT, true)?;
    if !ok {
        return None;
    }
    let dir = PathBuf::from(out.trim());
    (dir.join("initdb").is_file() && is_server_bindir(&dir)).then_some(dir)
}

fn parse_version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.splitn(2, '.');
    let major = parts.next()?.parse().ok()?;
    let minor = match parts.next() {
        Some(minor) => minor.parse().ok()?,
        None => 0,
    };
    Some((major, minor))
}

/// `<parent>/<entry>/bin` for the entry with the highest version that holds
/// the server binaries.
fn highest_versioned_bindir(
    parent: &Path,
    version_of: impl Fn(&str) -> Option<(u32, u32)>,
) -> Option<PathBuf> {
    fs::read_dir(parent)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name();
            let version = version_of(name.to_str()?)?;
            let bindir = entry.path().join("bin");
            is_server_bindir(&bindir).then_some((version, bindir))
        })
        .max_by_key(|(version, _)| *version)
        .map(|(_, dir)| dir)
}

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

/// Runs a command synchronously, killing it after `timeout`. Returns whether
/// it succeeded and (when `capture`) its stdout; None if it could not run or
/// timed out.
fn run_sync(mut cmd: StdCommand, timeout: Duration, capture: bool) -> Option<(bool, String)> {
    cmd.stdin(Stdio::null()).stderr(Stdio::null());
    cmd.stdout(if capture {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd.spawn().ok()?;
    let receiver = child.stdout.take().map(|mut stdout| {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = stdout.read_to_end(&mut buf);
            let _ = tx.send(buf);
        });
        rx
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    };
    let out = match receiver {
        Some(rx) => {
            let remaining = deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(100));
            rx.recv_timeout(remaining).ok()?
        }
        None => Vec::new(),
    };
    Some((status.success(), String::from_utf8_lossy(&out).into_owned()))
}

fn random_port(salt: u64) -> u16 {
    let mut hasher = std::hash::RandomState::new().build_hasher();
    hasher.write_u64(salt);
    hasher.write_u32(std::process::id());
    if let Ok(now) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        hasher.write_u128(now.as_nanos());
    }
    let span = u64::from(PORT_MAX - PORT_MIN);
    // `hash % span` is below PORT_MAX - PORT_MIN, so it fits in u16.
    PORT_MIN + u16::try_from(hasher.finish() % span).unwrap_or(0)
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// The file's content from byte `offset` on (lossy UTF-8; empty if unreadable).
fn read_from(path: &Path, offset: u64) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let start = usize::try_from(offset)
                .unwrap_or(usize::MAX)
                .min(bytes.len());
            String::from_utf8_lossy(&bytes[start..]).into_owned()
        }
        Err(_) => String::new(),
    }
}

fn tail_of_file(path: &Path, offset: u64, lines: usize) -> String {
    let text = read_from(path, offset);
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    all[start..].join("\n")
}

fn pg_error(context: &str, e: &tokio_postgres::Error) -> PgError {
    let detail = match e.as_db_error() {
        Some(db) => format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        ),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(inner) = source {
                text.push_str(": ");
                text.push_str(&inner.to_string());
                source = inner.source();
            }
            text
        }
    };
    PgError::new(format!("{context}: {detail}"))
}

fn validate_identifier(name: &str, what: &str) -> Result<(), PgError> {
    if name.is_empty() || name.len() > 63 || name.contains('\0') {
        Err(PgError::new(format!(
            "invalid {what} {name:?}: must be 1 to 63 bytes without NUL"
        )))
    } else {
        Ok(())
    }
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A single-quoted literal for SQL and for postgresql.conf (which also
/// treats backslashes as escapes, so they are doubled too).
fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
}
