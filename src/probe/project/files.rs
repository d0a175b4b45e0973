//! File facts for the working-tree checks: modification times, SHA-256
//! digests, and the files of a tree (sources, compiled output).

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// A file and when it was last written.
#[derive(Debug, Clone, PartialEq)]
pub struct Stamped {
    pub path: PathBuf,
    pub modified: SystemTime,
}

/// When `p` was last written, or None when it cannot be read.
pub fn modified(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).ok()?.modified().ok()
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Directories never walked: dependencies, VCS data, build caches.
const SKIP_DIRS: &[&str] = &["node_modules", ".git", ".cache", "coverage", ".turbo"];

/// Files under `root` (recursively, at most `limit`) whose name ends in
/// one of `exts`, with their times; sorted by path.
pub fn files_with(root: &Path, exts: &[&str], limit: usize) -> Vec<Stamped> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                if !SKIP_DIRS.contains(&name.as_str()) {
                    stack.push(p);
                }
            } else if exts.iter().any(|x| name.ends_with(x))
                && let Some(m) = modified(&p)
            {
                out.push(Stamped {
                    path: p,
                    modified: m,
                });
                if out.len() >= limit {
                    out.sort_by(|a, b| a.path.cmp(&b.path));
                    return out;
                }
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// The newest of `files`.
pub fn newest(files: &[Stamped]) -> Option<&Stamped> {
    files.iter().max_by_key(|f| f.modified)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_known_text() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn walks_sources_and_skips_dependencies() {
        let d = std::env::temp_dir().join(format!("chatops-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("src/chat")).expect("mkdir");
        std::fs::create_dir_all(d.join("node_modules/x")).expect("mkdir");
        std::fs::write(d.join("src/main.ts"), "x").expect("w");
        std::fs::write(d.join("src/chat/chat.service.ts"), "x").expect("w");
        std::fs::write(d.join("src/readme.md"), "x").expect("w");
        std::fs::write(d.join("node_modules/x/i.ts"), "x").expect("w");
        let f = files_with(&d, &[".ts"], 100);
        let names: Vec<String> = f
            .iter()
            .map(|s| {
                s.path
                    .strip_prefix(&d)
                    .expect("under")
                    .display()
                    .to_string()
            })
            .collect();
        assert_eq!(names, ["src/chat/chat.service.ts", "src/main.ts"]);
        assert!(newest(&f).is_some());
        assert_eq!(files_with(&d, &[".ts"], 1).len(), 1);
        let _ = std::fs::remove_dir_all(&d);
    }
}
