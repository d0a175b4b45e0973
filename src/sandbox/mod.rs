//! The sandbox: a local target for the demo and the integration tests. A
//! throwaway PostgreSQL cluster ([`pg`]) with the chat schema, and the
//! reference chat backend ([`backend`]) run as a child process of chatops
//! itself, with a knob ([`Knobs`]) for each fault of the seed and each
//! load-time cause a backend can have (CPU on its event loop, a row lock in
//! the send transaction, a history query without its index, memory kept per
//! request, a crash after N requests, a generic 500), plus PostgreSQL
//! stopped and started on demand ([`Sandbox::stop_database`]).

pub mod backend;
mod history;
pub mod knobs;
pub mod pg;
pub mod pgbouncer;
pub mod project;

pub use history::{ARCHIVE_CONVERSATION, HISTORY_INDEX};
pub use knobs::{Knobs, SLOW_HISTORY_ROWS};
pub use project::ProjectFault;

use pg::{PgCluster, PgError, PgOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

pub use crate::support::chat_backend::DB_NAME;

/// Why the sandbox could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The cluster, a file or the backend's process could not be set up.
    #[error("{message}{}", hint.as_ref().map(|h| format!("\n  hint: {h}")).unwrap_or_default())]
    Setup {
        message: String,
        hint: Option<String>,
    },
    /// The backend exited before it answered health (a start-up fault: the
    /// database unreachable, the port taken, …); the cause is in its log.
    #[error("the reference backend exited at start-up ({status}); the end of its log ({}):\n{tail}", log.display())]
    BackendExited {
        /// How it ended (`exit status: 1`).
        status: String,
        /// Its exit code, when it exited rather than being killed.
        code: Option<i32>,
        /// Its log file (stdout and stderr).
        log: PathBuf,
        /// The last lines of the log.
        tail: String,
    },
    /// The backend neither answered health nor exited in time.
    #[error("the reference backend did not become healthy in {secs} s; its log ({}):\n{tail}", log.display())]
    BackendNotHealthy {
        secs: u64,
        log: PathBuf,
        tail: String,
    },
}

impl SandboxError {
    fn setup(message: impl Into<String>) -> Self {
        SandboxError::Setup {
            message: message.into(),
            hint: None,
        }
    }
}

impl From<PgError> for SandboxError {
    fn from(e: PgError) -> Self {
        SandboxError::Setup {
            message: e.message,
            hint: e.hint,
        }
    }
}

/// A running reference backend.
pub struct Backend {
    child: Option<std::process::Child>,
    pub pid: u32,
    pub port: u16,
    pub log: PathBuf,
    /// Its project directory (its working directory, unless the knob hides it).
    pub project: PathBuf,
    /// How it ended, once it has (kept after reaping).
    exit: Option<std::process::ExitStatus>,
}

impl Backend {
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops the backend (SIGTERM, then SIGKILL after a grace period).
    pub fn stop(&mut self) {
        if self.exit_status().is_some() {
            // Already ended and reaped: its pid may belong to someone else now.
            self.child = None;
            return;
        }
        if let Some(mut child) = self.child.take() {
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(self.pid.to_string())
                .status();
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(3) {
                if let Ok(Some(_)) = child.try_wait() {
                    forget_pid(self.pid);
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
            forget_pid(self.pid);
        }
    }

    /// Whether the process is still alive.
    pub fn is_running(&mut self) -> bool {
        self.child.is_some() && self.exit_status().is_none()
    }

    /// How the process ended, or None while it runs (or after [`stop`](Self::stop)).
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        if self.exit.is_none()
            && let Some(c) = self.child.as_mut()
            && let Ok(Some(st)) = c.try_wait()
        {
            self.exit = Some(st);
            forget_pid(self.pid);
        }
        self.exit
    }

    /// Waits (polling, without blocking the runtime) until the process ends
    /// or `limit` passes; returns how it ended.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let t = Instant::now();
        loop {
            if let Some(st) = self.exit_status() {
                return Some(st);
            }
            if t.elapsed() > limit || self.child.is_none() {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log, lines)
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How long [`Sandbox::start_backend`] waits for health.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Log lines carried by a start-up error.
const START_LOG_TAIL: usize = 40;

/// The last `lines` lines of a file (lossy UTF-8), or "" when unreadable.
fn log_tail(path: &Path, lines: usize) -> String {
    let bytes = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

static PIDS: Mutex<Vec<u32>> = Mutex::new(Vec::new());
static COUNTER: AtomicU32 = AtomicU32::new(0);

fn remember_pid(pid: u32) {
    if let Ok(mut p) = PIDS.lock() {
        p.push(pid);
    }
}

fn forget_pid(pid: u32) {
    if let Ok(mut p) = PIDS.lock() {
        p.retain(|x| *x != pid);
    }
}

/// Stops every sandbox process of this process (for a Ctrl-C handler).
pub fn cleanup_all() {
    let pids: Vec<u32> = PIDS
        .lock()
        .map(|mut p| std::mem::take(&mut *p))
        .unwrap_or_default();
    for pid in pids {
        let _ = std::process::Command::new("kill")
            .arg("-KILL")
            .arg(pid.to_string())
            .status();
    }
    pg::cleanup_all();
}

/// A free TCP port on 127.0.0.1, below the kernel's ephemeral range.
pub fn free_port() -> u16 {
    let seed = std::process::id() as u64 * 7919
        + COUNTER.fetch_add(1, Ordering::Relaxed) as u64 * 104_729
        + std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() as u64)
            .unwrap_or(0);
    for i in 0..500u64 {
        let port = 20_000 + ((seed + i * 7_877) % 12_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(29_999)
}

/// A throwaway PostgreSQL cluster with the chat database, and (when started)
/// the reference backend.
pub struct Sandbox {
    pub pg: Arc<PgCluster>,
    /// chatops's own URL to the chat database.
    pub db_url: String,
    pub backend: Option<Backend>,
    /// PgBouncer in front of the cluster, once [`start_pgbouncer`](Self::start_pgbouncer) ran.
    pub pgbouncer: Option<pgbouncer::PgBouncer>,
    bin: PathBuf,
    dir: PathBuf,
    /// The chat database's name.
    db: String,
    /// Whether the slow-history fill has been done in this database.
    history_filled: bool,
}

impl Sandbox {
    /// Starts PostgreSQL and loads the seed's schema and test data. `bin` is
    /// the chatops executable (it runs the backend as `chatops sandbox-backend`).
    pub async fn start(bin: &Path, opts: PgOptions) -> Result<Sandbox, SandboxError> {
        let pg = Arc::new(PgCluster::start(opts).await?);
        Self::on_cluster(bin, pg, DB_NAME).await
    }

    /// A sandbox on an existing cluster, with its own database `db` (tests
    /// share one cluster per test binary and give each test a database).
    pub async fn on_cluster(
        bin: &Path,
        pg: Arc<PgCluster>,
        db: &str,
    ) -> Result<Sandbox, SandboxError> {
        let db_url = pg.setup_chat_db(db).await?;
        let dir = std::env::temp_dir().join(format!(
            "chatops-sandbox-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)
            .map_err(|e| SandboxError::setup(format!("cannot create {}: {e}", dir.display())))?;
        watchdog(&pg, &dir);
        Ok(Sandbox {
            pg,
            db_url,
            backend: None,
            pgbouncer: None,
            bin: bin.to_path_buf(),
            dir,
            db: db.to_string(),
            history_filled: false,
        })
    }

    fn record_pids(&self) {
        let pids: Vec<String> = PIDS
            .lock()
            .map(|p| p.iter().map(u32::to_string).collect())
            .unwrap_or_default();
        let _ = std::fs::write(self.dir.join("pids"), pids.join(" "));
    }

    /// Starts PgBouncer in front of the cluster for this sandbox's database
    /// (any previous one is stopped); backends started with
    /// [`Knobs::through_pgbouncer`] then connect through it.
    pub fn start_pgbouncer(
        &mut self,
        o: &pgbouncer::BouncerOptions,
    ) -> Result<&pgbouncer::PgBouncer, SandboxError> {
        self.pgbouncer = None;
        let b = pgbouncer::PgBouncer::start(&self.pg, &[&self.db], o).map_err(|e| {
            SandboxError::Setup {
                message: e.to_string(),
                hint: None,
            }
        })?;
        self.record_pids();
        Ok(self.pgbouncer.insert(b))
    }

    /// The DATABASE_URL the backend gets for these knobs.
    pub fn backend_database_url(&self, k: &Knobs) -> String {
        let base = match (&self.pgbouncer, k.through_pgbouncer) {
            (Some(b), true) => b.url(self.pg.user(), self.pg.password(), &self.db),
            _ => self.db_url.clone(),
        };
        let mut set = Vec::new();
        if k.through_pgbouncer && k.pgbouncer_param {
            set.push(("pgbouncer", "true".to_string()));
        }
        if let Some(n) = k.connection_limit {
            set.push(("connection_limit", n.to_string()));
        }
        if let Some(t) = k.pool_timeout {
            set.push(("pool_timeout", t.to_string()));
        }
        if k.connection_limit.is_some() || k.pool_timeout.is_some() {
            set.push(("connect_timeout", "10".to_string()));
        }
        crate::pg::with_params(&base, &set).unwrap_or(base)
    }

    /// Starts the reference backend and waits until it answers health (or
    /// exits, which start-up faults make it do). Any previous one is stopped.
    pub async fn start_backend(&mut self, k: &Knobs) -> Result<&Backend, SandboxError> {
        if let Some(mut b) = self.backend.take() {
            b.stop();
        }
        if let Some(rows) = k.slow_history_rows.filter(|r| *r > 0)
            && !self.history_filled
        {
            history::without_index(&self.pg, &self.db, rows).await?;
            self.history_filled = true;
        }
        let port = k.port.unwrap_or_else(free_port);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let log = self.dir.join(format!("backend-{n}.log"));
        let out = std::fs::File::create(&log)
            .map_err(|e| SandboxError::setup(format!("cannot create {}: {e}", log.display())))?;
        let err = out
            .try_clone()
            .map_err(|e| SandboxError::setup(format!("cannot open {}: {e}", log.display())))?;
        let project = self.dir.join(format!("project-{n}"));
        let limiters_on = k.rate_limit || k.project == ProjectFault::EnvChangedAfterStart;
        let mut dotenv = vec![("NODE_ENV".to_string(), "development".to_string())];
        if !k.no_database_url {
            dotenv.push(("DATABASE_URL".into(), self.backend_database_url(k)));
        }
        if !limiters_on {
            dotenv.push(("DISABLE_RATE_LIMIT".into(), "true".into()));
        }
        project::write_project(&project, k.project, &dotenv)?;
        // With PostgreSQL stopped (a start-up fault), the table stays as it was.
        if self.pg.is_running() {
            self.pg
                .execute(&self.db, &project::migrations_table_sql(k.project))
                .await
                .map_err(|e| SandboxError::Setup {
                    message: format!("writing _prisma_migrations: {}", e.message),
                    hint: e.hint,
                })?;
        }
        let mut cmd = std::process::Command::new(&self.bin);
        cmd.current_dir(if k.project == ProjectFault::Unseen {
            &self.dir
        } else {
            &project
        });
        cmd.arg("sandbox-backend")
            .env_clear()
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(err);
        for keep in ["PATH", "HOME", "LANG", "TZ"] {
            if let Ok(v) = std::env::var(keep) {
                cmd.env(keep, v);
            }
        }
        cmd.env("PORT", port.to_string())
            .env("HOST", "127.0.0.1")
            .env("NODE_ENV", "development");
        if !k.no_database_url {
            cmd.env("DATABASE_URL", self.backend_database_url(k));
        }
        if k.mock {
            cmd.env("PRISMA_CLIENT_MODE", "mock");
        } else if !k.no_database_url {
            cmd.env("PRISMA_CLIENT_MODE", "database");
        }
        if !limiters_on {
            cmd.env("DISABLE_RATE_LIMIT", "true");
        }
        for (key, v) in k.sandbox_env() {
            cmd.env(key, v);
        }
        for (key, v) in &k.extra_env {
            cmd.env(key, v);
        }
        let child = cmd.spawn().map_err(|e| {
            SandboxError::setup(format!(
                "cannot start the reference backend ({}): {e}",
                self.bin.display()
            ))
        })?;
        let pid = child.id();
        if let Ok(mut p) = PIDS.lock() {
            p.push(pid);
        }
        self.record_pids();
        let mut b = Backend {
            child: Some(child),
            pid,
            port,
            log,
            project,
            exit: None,
        };
        let url = format!("{}/api/v1/health", b.base_url());
        let client = reqwest::Client::new();
        let t = Instant::now();
        loop {
            if let Some(status) = b.exit_status() {
                return Err(SandboxError::BackendExited {
                    status: status.to_string(),
                    code: status.code(),
                    tail: log_tail(&b.log, START_LOG_TAIL),
                    log: b.log.clone(),
                });
            }
            if let Ok(Ok(r)) =
                tokio::time::timeout(Duration::from_millis(500), client.get(&url).send()).await
                && r.status().is_success()
            {
                break;
            }
            if t.elapsed() > START_TIMEOUT {
                return Err(SandboxError::BackendNotHealthy {
                    secs: START_TIMEOUT.as_secs(),
                    tail: log_tail(&b.log, START_LOG_TAIL),
                    log: b.log.clone(),
                });
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let started = crate::probe::process::start_time(b.pid).unwrap_or_else(SystemTime::now);
        project::after_start(&b.project, k.project, started)?;
        self.backend = Some(b);
        self.backend
            .as_ref()
            .ok_or_else(|| SandboxError::setup("backend vanished"))
    }

    /// Stops the throwaway cluster (`pg_ctl stop -m fast`) under a running
    /// backend: PostgreSQL stopped mid-run. [`start_database`](Self::start_database)
    /// brings it back on the same port.
    pub async fn stop_database(&self) -> Result<(), SandboxError> {
        Ok(self.pg.stop().await?)
    }

    /// Starts the cluster again after [`stop_database`](Self::stop_database).
    pub async fn start_database(&self) -> Result<(), SandboxError> {
        Ok(self.pg.start_again().await?)
    }

    /// The sandbox's database name.
    pub fn db_name(&self) -> &str {
        &self.db
    }

    pub fn stop_backend(&mut self) {
        if let Some(mut b) = self.backend.take() {
            b.stop();
        }
    }

    /// Base URL of the backend, or where it would listen.
    pub fn base_url(&self) -> Option<String> {
        self.backend.as_ref().map(Backend::base_url)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.stop_backend();
        self.pgbouncer = None;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts a small shell process that removes the cluster, the backends and
/// `dir` if this process dies without cleaning up (SIGKILL, or a test
/// harness that never drops its statics).
pub fn watchdog(pg: &PgCluster, dir: &Path) {
    use std::os::unix::fs::MetadataExt;
    let root = std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false);
    let pg_ctl = pg.bindir().join("pg_ctl");
    let as_pg = if root { "runuser -u postgres -- " } else { "" };
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; \
         [ -f '{dir}/pids' ] && kill -KILL $(cat '{dir}/pids') 2>/dev/null; \
         [ -f '{data}/postmaster.pid' ] && {as_pg}'{pg_ctl}' -D '{data}' stop -m immediate >/dev/null 2>&1; \
         rm -rf '{dir}' '{pgdir}'",
        pid = std::process::id(),
        dir = dir.display(),
        data = pg.data_dir().display(),
        pgdir = pg.dir().display(),
        pg_ctl = pg_ctl.display(),
    );
    let _ = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}
