//! Finding the PostgreSQL server binaries (`initdb`, `pg_ctl`, `postgres`).

use super::util::run_sync;
use super::{BINDIR_ENV, HELPER_TIMEOUT, PgError};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

/// Finds the directory with the server binaries (see [`super::PgCluster::find_bindir`]).
pub(super) fn find() -> Result<PathBuf, PgError> {
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
    if let Some(dir) = highest_versioned_bindir(Path::new("/usr/lib/postgresql"), parse_version) {
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

/// How to get the server binaries on this platform.
pub(super) fn install_hint() -> String {
    let install = if cfg!(target_os = "macos") {
        "install them with `brew install postgresql@16`"
    } else {
        "install them with `apt-get install -y postgresql` (Debian/Ubuntu; on macOS: `brew install postgresql@16`)"
    };
    format!("{install}, or set {BINDIR_ENV} to the directory holding initdb, pg_ctl and postgres")
}

pub(super) fn is_server_bindir(dir: &Path) -> bool {
    ["initdb", "pg_ctl", "postgres"]
        .iter()
        .all(|tool| dir.join(tool).is_file())
}

/// True when `path` is not a script (Debian's /usr/bin wrappers are Perl).
pub(super) fn is_real_binary(path: &Path) -> bool {
    let mut head = [0u8; 2];
    match fs::File::open(path).and_then(|mut f| f.read_exact(&mut head)) {
        Ok(()) => &head != b"#!",
        Err(_) => false,
    }
}

pub(super) fn bindir_from_path() -> Option<PathBuf> {
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

pub(super) fn bindir_from_pg_config() -> Option<PathBuf> {
    let mut cmd = StdCommand::new("pg_config");
    cmd.arg("--bindir");
    let (ok, out) = run_sync(cmd, HELPER_TIMEOUT, true)?;
    if !ok {
        return None;
    }
    let dir = PathBuf::from(out.trim());
    (dir.join("initdb").is_file() && is_server_bindir(&dir)).then_some(dir)
}

pub(super) fn parse_version(text: &str) -> Option<(u32, u32)> {
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
pub(super) fn highest_versioned_bindir(
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
