//! A real PgBouncer (the system's `pgbouncer` binary, Debian's package) in
//! front of the sandbox's cluster: on a free loopback port, transaction
//! pooling by default, its admin console open to a stats user. Like the
//! cluster it runs as the `postgres` user when this process is root
//! (PgBouncer refuses to run as root). Its files live in a directory inside
//! the cluster's, so they go when the cluster goes; the process is stopped
//! when the [`PgBouncer`] is dropped.

use super::pg::PgCluster;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The stats user the sandbox's console admits (SHOW only).
pub const STATS_USER: &str = "stats";
/// Its password.
pub const STATS_PASSWORD: &str = "statspassword";
/// Environment variable naming the binary explicitly.
pub const BIN_ENV: &str = "CHATOPS_PGBOUNCER_BIN";

/// How the sandbox's PgBouncer is configured.
#[derive(Debug, Clone)]
pub struct BouncerOptions {
    /// `pool_mode`: `transaction` (default) or `session`.
    pub pool_mode: String,
    /// `default_pool_size`: server connections per database/user pair.
    pub default_pool_size: u32,
    /// `max_client_conn`: client connections PgBouncer accepts.
    pub max_client_conn: u32,
    /// `max_db_connections` (0: no limit).
    pub max_db_connections: u32,
    /// Port (default: a free one).
    pub port: Option<u16>,
}

impl Default for BouncerOptions {
    fn default() -> Self {
        // PgBouncer's own defaults for the sizes.
        BouncerOptions {
            pool_mode: "transaction".into(),
            default_pool_size: 20,
            max_client_conn: 100,
            max_db_connections: 0,
            port: None,
        }
    }
}

/// Why PgBouncer could not be started.
#[derive(Debug, thiserror::Error)]
pub enum BouncerError {
    #[error(
        "pgbouncer not found (looked at ${BIN_ENV}, PATH, /usr/sbin/pgbouncer); install it: apt-get install -y pgbouncer"
    )]
    NotFound,
    #[error("invalid PgBouncer option: {0}")]
    Invalid(String),
    #[error("cannot set up PgBouncer's files in {path}: {source}")]
    Files {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start pgbouncer: {0}")]
    Spawn(std::io::Error),
    #[error("pgbouncer did not start listening on 127.0.0.1:{port}; its log:\n{tail}")]
    NotListening { port: u16, tail: String },
}

/// A running PgBouncer.
pub struct PgBouncer {
    child: Option<std::process::Child>,
    pub pid: u32,
    pub port: u16,
    pub options: BouncerOptions,
    dir: PathBuf,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The pgbouncer binary: `$CHATOPS_PGBOUNCER_BIN`, else on PATH, else Debian's.
pub fn find_binary() -> Result<PathBuf, BouncerError> {
    if let Ok(p) = std::env::var(BIN_ENV)
        && !p.is_empty()
    {
        return Ok(PathBuf::from(p));
    }
    let path = std::env::var("PATH").unwrap_or_default();
    let candidates = path
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join("pgbouncer"))
        .chain([PathBuf::from("/usr/sbin/pgbouncer")]);
    for c in candidates {
        if c.is_file() {
            return Ok(c);
        }
    }
    Err(BouncerError::NotFound)
}

fn quote_value(v: &str) -> Result<&str, BouncerError> {
    if v.is_empty() || v.chars().any(|c| c.is_whitespace() || "'\"=#;".contains(c)) {
        return Err(BouncerError::Invalid(format!(
            "{v:?} cannot go into pgbouncer.ini"
        )));
    }
    Ok(v)
}

/// The `pgbouncer.ini` for a cluster on `pg_port` serving `databases`.
pub fn config_text(
    o: &BouncerOptions,
    port: u16,
    pg_port: u16,
    databases: &[&str],
    dir: &Path,
) -> Result<String, BouncerError> {
    if !matches!(
        o.pool_mode.as_str(),
        "transaction" | "session" | "statement"
    ) {
        return Err(BouncerError::Invalid(format!(
            "pool_mode {:?}: use transaction, session or statement",
            o.pool_mode
        )));
    }
    if o.default_pool_size == 0 || o.max_client_conn == 0 {
        return Err(BouncerError::Invalid(
            "default_pool_size and max_client_conn must be at least 1".into(),
        ));
    }
    let mut s = String::from("[databases]\n");
    for db in databases {
        let db = quote_value(db)?;
        s += &format!("{db} = host=127.0.0.1 port={pg_port} dbname={db}\n");
    }
    s += &format!("* = host=127.0.0.1 port={pg_port}\n");
    let d = dir.display();
    s += &format!(
        "\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
         auth_type = scram-sha-256\nauth_file = {d}/userlist.txt\n\
         stats_users = {STATS_USER}, postgres\n\
         pool_mode = {}\ndefault_pool_size = {}\nmax_client_conn = {}\nmax_db_connections = {}\n\
         logfile = {d}/pgbouncer.log\npidfile = {d}/pgbouncer.pid\n\
         ignore_startup_parameters = extra_float_digits\n",
        o.pool_mode, o.default_pool_size, o.max_client_conn, o.max_db_connections
    );
    Ok(s)
}

impl PgBouncer {
    /// Starts PgBouncer in front of `pg` for `databases` (logins: the
    /// cluster's superuser with its password, and [`STATS_USER`] on the
    /// console). Waits until it listens.
    pub fn start(
        pg: &PgCluster,
        databases: &[&str],
        o: &BouncerOptions,
    ) -> Result<PgBouncer, BouncerError> {
        let bin = find_binary()?;
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = pg.dir().join(format!("pgbouncer-{n}"));
        let files = |path: &Path| {
            let path = path.to_path_buf();
            move |source| BouncerError::Files { path, source }
        };
        std::fs::create_dir_all(&dir).map_err(files(&dir))?;
        let port = o.port.unwrap_or_else(super::free_port);
        let ini = dir.join("pgbouncer.ini");
        std::fs::write(&ini, config_text(o, port, pg.port(), databases, &dir)?)
            .map_err(files(&ini))?;
        let users = dir.join("userlist.txt");
        let pw = pg.password().replace('"', "\"\"");
        std::fs::write(
            &users,
            format!(
                "\"{}\" \"{pw}\"\n\"{STATS_USER}\" \"{STATS_PASSWORD}\"\n",
                pg.user()
            ),
        )
        .map_err(files(&users))?;
        if let Some((uid, gid)) = pg.owner() {
            for p in [&dir, &ini, &users] {
                std::os::unix::fs::chown(p, Some(uid), Some(gid)).map_err(files(p))?;
            }
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&users, std::fs::Permissions::from_mode(0o600))
            .map_err(files(&users))?;
        let mut cmd = std::process::Command::new(bin);
        cmd.arg(&ini)
            .current_dir(&dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        if let Some((uid, gid)) = pg.owner() {
            cmd.uid(uid).gid(gid);
        }
        let child = cmd.spawn().map_err(BouncerError::Spawn)?;
        let pid = child.id();
        super::remember_pid(pid);
        let mut b = PgBouncer {
            child: Some(child),
            pid,
            port,
            options: o.clone(),
            dir,
        };
        let t = Instant::now();
        loop {
            let exited = b
                .child
                .as_mut()
                .is_none_or(|c| matches!(c.try_wait(), Ok(Some(_))));
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() && !exited {
                return Ok(b);
            }
            if exited || t.elapsed() > Duration::from_secs(10) {
                return Err(BouncerError::NotListening {
                    port,
                    tail: b.log_tail(20),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Its log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("pgbouncer.log")
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        super::log_tail(&self.log_path(), lines)
    }

    /// A URL through PgBouncer to `database` as `user`/`password`.
    pub fn url(&self, user: &str, password: &str, database: &str) -> String {
        use crate::support::percent::encode;
        format!(
            "postgresql://{}:{}@127.0.0.1:{}/{}",
            encode(user),
            encode(password),
            self.port,
            encode(database)
        )
    }

    /// The admin console as the stats user (database `pgbouncer`).
    pub fn console_url(&self) -> String {
        self.url(STATS_USER, STATS_PASSWORD, "pgbouncer")
    }

    /// Stops it (SIGINT: PgBouncer's safe shutdown, then SIGKILL).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if matches!(child.try_wait(), Ok(None)) {
                // SAFETY: plain libc call on our own child's pid.
                unsafe {
                    libc::kill(self.pid as i32, libc::SIGTERM);
                }
                let t = Instant::now();
                while t.elapsed() < Duration::from_secs(3) {
                    if let Ok(Some(_)) = child.try_wait() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                let _ = child.kill();
            }
            let _ = child.wait();
            super::forget_pid(self.pid);
        }
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_names_the_pool_and_refuses_bad_values() {
        let o = BouncerOptions::default();
        let t = config_text(&o, 6432, 25432, &["chat_backend_db"], Path::new("/tmp/x"));
        let t = t.map_err(|e| e.to_string());
        let Ok(t) = t else { panic!("{t:?}") };
        assert!(t.contains("chat_backend_db = host=127.0.0.1 port=25432 dbname=chat_backend_db"));
        assert!(
            t.contains("pool_mode = transaction\ndefault_pool_size = 20\nmax_client_conn = 100")
        );
        assert!(t.contains("stats_users = stats, postgres"));
        let bad = BouncerOptions {
            pool_mode: "sessions".into(),
            ..BouncerOptions::default()
        };
        assert!(config_text(&bad, 1, 2, &[], Path::new("/x")).is_err());
        assert!(config_text(&o, 1, 2, &["a b"], Path::new("/x")).is_err());
    }
}
