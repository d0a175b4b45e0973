//! Preparing a cluster (blocking): the binaries, the user to run them as
//! (`postgres` when this process is root) and a fresh private directory.

use super::util::run_sync;
use super::{DATA_DIR, HELPER_TIMEOUT, PgCluster, PgError, PgOptions, SUPERUSER};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Server binaries' directory, the uid/gid to run them as, the new temp dir.
pub(super) type Prepared = (PathBuf, Option<(u32, u32)>, PathBuf);

pub(super) fn prepare() -> Result<Prepared, PgError> {
    let bindir = PgCluster::find_bindir()?;
    let owner = if is_root() {
        Some(postgres_ids()?)
    } else {
        None
    };
    let root = make_root_dir(owner)?;
    Ok((bindir, owner, root))
}

pub(super) fn validate_options(opts: &PgOptions) -> Result<(), PgError> {
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

pub(super) fn is_root() -> bool {
    static UID: OnceLock<Option<u32>> = OnceLock::new();
    *UID.get_or_init(effective_uid) == Some(0)
}

pub(super) fn effective_uid() -> Option<u32> {
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

pub(super) fn postgres_ids() -> Result<(u32, u32), PgError> {
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
pub(super) fn make_root_dir(owner: Option<(u32, u32)>) -> Result<PathBuf, PgError> {
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

pub(super) fn world_traversable(dir: &Path) -> bool {
    dir.ancestors()
        .all(|a| fs::metadata(a).is_ok_and(|m| m.mode() & 0o001 != 0))
}

pub(super) fn write_private_file(
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
