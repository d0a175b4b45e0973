//! The sandbox: a local target for the demo and the integration tests. A
//! throwaway PostgreSQL cluster ([`pg`]) with the chat schema, and the
//! reference chat backend ([`backend`]) run as a child process of chatops
//! itself, with a knob for each fault of the seed.

pub mod backend;
pub mod pg;

use pg::{PgCluster, PgError, PgOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use crate::support::chat_backend::DB_NAME;

/// How the reference backend is configured: healthy by default, each field a
/// fault of the seed.
#[derive(Debug, Clone)]
pub struct Knobs {
    /// Port to listen on (default: a free one).
    pub port: Option<u16>,
    /// Prisma's `connection_limit` in DATABASE_URL (None: leave it out, so the
    /// backend appends its own 50).
    pub connection_limit: Option<u32>,
    pub pool_timeout: Option<u32>,
    /// Leave the rate limiters on (DISABLE_RATE_LIMIT unset).
    pub rate_limit: bool,
    /// Mount all five limiters instead of only apiLimiter.
    pub all_limiters: bool,
    /// Override apiLimiter's max (tests).
    pub api_limit: Option<u32>,
    /// PRISMA_CLIENT_MODE=mock.
    pub mock: bool,
    /// Start without DATABASE_URL (silently mock mode).
    pub no_database_url: bool,
    /// Write a column that does not exist (`messageType`).
    pub drift: bool,
    /// Hold each database connection this long per operation.
    pub query_ms: Option<u64>,
    /// Extra environment variables.
    pub extra_env: Vec<(String, String)>,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            port: None,
            connection_limit: Some(50),
            pool_timeout: Some(30),
            rate_limit: false,
            all_limiters: false,
            api_limit: None,
            mock: false,
            no_database_url: false,
            drift: false,
            query_ms: None,
            extra_env: Vec::new(),
        }
    }
}

#[derive(Debug)]
pub struct SandboxError(pub String, pub Option<String>);

impl std::fmt::Display for SandboxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        if let Some(h) = &self.1 {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

impl From<PgError> for SandboxError {
    fn from(e: PgError) -> Self {
        SandboxError(e.message, e.hint)
    }
}

/// A running reference backend.
pub struct Backend {
    child: Option<std::process::Child>,
    pub pid: u32,
    pub port: u16,
    pub log: PathBuf,
}

impl Backend {
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops the backend (SIGTERM, then SIGKILL after a grace period).
    pub fn stop(&mut self) {
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
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop();
    }
}

static PIDS: Mutex<Vec<u32>> = Mutex::new(Vec::new());
static COUNTER: AtomicU32 = AtomicU32::new(0);

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
    bin: PathBuf,
    dir: PathBuf,
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
            .map_err(|e| SandboxError(format!("cannot create {}: {e}", dir.display()), None))?;
        watchdog(&pg, &dir);
        Ok(Sandbox {
            pg,
            db_url,
            backend: None,
            bin: bin.to_path_buf(),
            dir,
        })
    }

    fn record_pids(&self) {
        let pids: Vec<String> = PIDS
            .lock()
            .map(|p| p.iter().map(u32::to_string).collect())
            .unwrap_or_default();
        let _ = std::fs::write(self.dir.join("pids"), pids.join(" "));
    }

    /// The DATABASE_URL the backend gets for these knobs.
    pub fn backend_database_url(&self, k: &Knobs) -> String {
        let mut set = Vec::new();
        if let Some(n) = k.connection_limit {
            set.push(("connection_limit", n.to_string()));
        }
        if let Some(t) = k.pool_timeout {
            set.push(("pool_timeout", t.to_string()));
        }
        if k.connection_limit.is_some() || k.pool_timeout.is_some() {
            set.push(("connect_timeout", "10".to_string()));
        }
        crate::pg::with_params(&self.db_url, &set).unwrap_or_else(|_| self.db_url.clone())
    }

    /// Starts the reference backend and waits until it answers health (or
    /// exits, which start-up faults make it do). Any previous one is stopped.
    pub async fn start_backend(&mut self, k: &Knobs) -> Result<&Backend, SandboxError> {
        if let Some(mut b) = self.backend.take() {
            b.stop();
        }
        let port = k.port.unwrap_or_else(free_port);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let log = self.dir.join(format!("backend-{n}.log"));
        let out = std::fs::File::create(&log)
            .map_err(|e| SandboxError(format!("cannot create {}: {e}", log.display()), None))?;
        let err = out
            .try_clone()
            .map_err(|e| SandboxError(format!("cannot open {}: {e}", log.display()), None))?;
        let mut cmd = std::process::Command::new(&self.bin);
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
        if !k.rate_limit {
            cmd.env("DISABLE_RATE_LIMIT", "true");
        }
        if k.all_limiters {
            cmd.env("CHATOPS_SANDBOX_LIMITERS", "all");
        }
        if let Some(l) = k.api_limit {
            cmd.env("CHATOPS_SANDBOX_API_LIMIT", l.to_string());
        }
        if k.drift {
            cmd.env("CHATOPS_SANDBOX_DRIFT", "1");
        }
        if let Some(ms) = k.query_ms {
            cmd.env("CHATOPS_SANDBOX_QUERY_MS", ms.to_string());
        }
        for (key, v) in &k.extra_env {
            cmd.env(key, v);
        }
        let child = cmd.spawn().map_err(|e| {
            SandboxError(
                format!(
                    "cannot start the reference backend ({}): {e}",
                    self.bin.display()
                ),
                None,
            )
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
        };
        let url = format!("{}/api/v1/health", b.base_url());
        let client = reqwest::Client::new();
        let t = Instant::now();
        loop {
            if !b.is_running() {
                break; // a start-up fault: the caller inspects the log
            }
            if let Ok(Ok(r)) =
                tokio::time::timeout(Duration::from_millis(500), client.get(&url).send()).await
                && r.status().is_success()
            {
                break;
            }
            if t.elapsed() > Duration::from_secs(20) {
                let tail = std::fs::read_to_string(&b.log).unwrap_or_default();
                return Err(SandboxError(
                    format!(
                        "the reference backend did not become healthy in 20 s; its log:\n{tail}"
                    ),
                    None,
                ));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        self.backend = Some(b);
        self.backend
            .as_ref()
            .ok_or_else(|| SandboxError("backend vanished".into(), None))
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
