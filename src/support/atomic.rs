//! Files a user names (`--output`, `--export-dir`, `--env-file`, `--emit-k6`)
//! are written whole or not at all: the bytes go to a temporary file in the
//! same directory, which is synced and then renamed over the target. A
//! reader (a textfile collector, a CI step) never sees half a report, and an
//! interrupted or failing run leaves the previous file as it was.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A write that did not happen, naming the file the user asked for.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {}: {}", path.display(), describe(source))]
pub struct WriteError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// The I/O error in words, with what usually causes it.
fn describe(e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    let why = match e.kind() {
        K::PermissionDenied => Some("no permission to write there"),
        K::IsADirectory => Some("a directory is in the way"),
        K::NotFound => Some("its directory does not exist"),
        K::StorageFull => Some("no space left on the device"),
        K::ReadOnlyFilesystem => Some("the file system is read-only"),
        _ => None,
    };
    match why {
        Some(w) => format!("{w} ({e})"),
        None => e.to_string(),
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Writes `bytes` to `path` atomically: a temporary file beside it
/// (`.NAME.PID.N.tmp`), synced, then renamed over `path`. On any error the
/// temporary file is removed and `path` is untouched.
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let fail = |source| WriteError {
        path: path.to_path_buf(),
        source,
    };
    // A directory at the target would otherwise be reported by rename as
    // a less telling "is a directory" only after the temporary file exists.
    if path.is_dir() {
        return Err(fail(std::io::Error::from(std::io::ErrorKind::IsADirectory)));
    }
    let name = path
        .file_name()
        .ok_or_else(|| fail(std::io::Error::other("the path names no file")))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = dir.join(format!(
        ".{}.{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "chatops-atomic-{}-{name}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect()
    }

    #[test]
    fn writes_and_replaces_whole_files() {
        let d = scratch("ok");
        let p = d.join("report.md");
        write(&p, b"first").unwrap();
        write(&p, b"second, longer").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"second, longer");
        assert!(leftovers(&d).is_empty());
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn a_directory_in_the_way_is_named() {
        let d = scratch("dir");
        let p = d.join("out");
        std::fs::create_dir(&p).unwrap();
        let e = write(&p, b"x").unwrap_err();
        assert_eq!(e.path, p);
        assert!(e.to_string().contains("a directory is in the way"), "{e}");
        assert!(leftovers(&d).is_empty());
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn causes_are_said_in_words() {
        use std::io::{Error, ErrorKind};
        let e = |k| describe(&Error::from(k));
        assert!(e(ErrorKind::PermissionDenied).starts_with("no permission to write there"));
        assert!(e(ErrorKind::StorageFull).starts_with("no space left on the device"));
        assert!(e(ErrorKind::ReadOnlyFilesystem).starts_with("the file system is read-only"));
    }

    #[test]
    fn a_missing_directory_is_named_and_nothing_is_left() {
        let d = scratch("missing");
        let p = d.join("nope").join("r.json");
        let e = write(&p, b"x").unwrap_err();
        assert!(
            e.to_string()
                .starts_with(&format!("cannot write {}", p.display()))
        );
        assert!(e.to_string().contains("does not exist"), "{e}");
        let _ = std::fs::remove_dir_all(d);
    }
}
