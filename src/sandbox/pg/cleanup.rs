//! The process-wide registry of live clusters, and their teardown (also
//! from a Ctrl-C handler through [`cleanup_all`]).

use super::util::run_sync;
use super::{DROP_STOP_TIMEOUT, DROP_STOP_WAIT_SECS, HELPER_TIMEOUT, LOG_FILE};
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// The parts of a cluster that teardown needs; shared with the registry.
pub(super) struct Inner {
    pub(super) id: u64,
    pub(super) root: PathBuf,
    pub(super) data: PathBuf,
    pub(super) bindir: PathBuf,
    /// uid and gid to run the binaries as (Some when this process is root).
    pub(super) owner: Option<(u32, u32)>,
    pub(super) port: AtomicU16,
    pub(super) torn_down: AtomicBool,
}

pub(super) static REGISTRY: Mutex<Vec<Arc<Inner>>> = Mutex::new(Vec::new());
pub(super) static NEXT_ID: AtomicU64 = AtomicU64::new(0);

pub(super) fn registry() -> MutexGuard<'static, Vec<Arc<Inner>>> {
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
    pub(super) fn pidfile(&self) -> PathBuf {
        self.data.join("postmaster.pid")
    }

    pub(super) fn log_path(&self) -> PathBuf {
        self.root.join(LOG_FILE)
    }

    pub(super) fn pg_ctl_std(&self, args: &[&str]) -> StdCommand {
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
    pub(super) fn teardown(&self) {
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

pub(super) fn read_postmaster_pid(pidfile: &Path) -> Option<u32> {
    let text = fs::read_to_string(pidfile).ok()?;
    let pid: u32 = text.lines().next()?.trim().parse().ok()?;
    (pid > 1).then_some(pid)
}
