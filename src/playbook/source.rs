//! Where playbook text comes from: files (bounded in size, UTF-8, no NUL),
//! files shipped in the binary, or text given directly.

use super::error::LoadError;
use super::yaml::Loc;
use std::path::{Path, PathBuf};

/// Largest playbook or check file accepted.
pub const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;

/// Where a playbook comes from.
#[derive(Debug, Clone)]
pub enum Source {
    File(PathBuf),
    /// A file shipped inside the binary, by its repository path
    /// (`playbooks/pre-load-test.yaml`); its includes resolve inside the binary too.
    Embedded(&'static str),
    /// Text given directly (tests, stdin).
    Text {
        name: String,
        text: String,
    },
}

/// How `${env.NAME}` is looked up (the process environment, or a map in tests).
pub type EnvLookup = dyn Fn(&str) -> Option<String> + Send + Sync;

pub struct LoadOptions {
    /// `--var KEY=VALUE`, taking precedence over the playbook's `vars`.
    pub vars: Vec<(String, String)>,
    /// `--base-url`, `--database-url`…, taking precedence over `target`.
    pub target: Vec<(String, String)>,
    pub allow_remote: bool,
    pub env: Box<EnvLookup>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            vars: Vec::new(),
            target: Vec::new(),
            allow_remote: false,
            env: Box::new(|n| std::env::var(n).ok()),
        }
    }
}

pub(super) struct SourceFile {
    pub name: String,
    pub text: String,
    /// Directory includes resolve against.
    pub dir: Place,
}

#[derive(Clone)]
pub(super) enum Place {
    Disk(PathBuf),
    Embedded(String),
}

pub(super) fn read_file(p: &Path) -> Result<String, LoadError> {
    let name = p.display().to_string();
    let meta = std::fs::metadata(p).map_err(|e| LoadError::new(&name, None, "", io_msg(&e)))?;
    if meta.is_dir() {
        return Err(LoadError::new(
            &name,
            None,
            "",
            "is a directory, not a playbook file",
        ));
    }
    if meta.len() as usize > MAX_FILE_BYTES {
        return Err(too_big(&name, meta.len() as usize));
    }
    let bytes = std::fs::read(p).map_err(|e| LoadError::new(&name, None, "", io_msg(&e)))?;
    match String::from_utf8(bytes) {
        Ok(s) => Ok(s),
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let before = &e.as_bytes()[..valid];
            let line = before.iter().filter(|b| **b == b'\n').count() as u64 + 1;
            let col = before.iter().rev().take_while(|b| **b != b'\n').count() as u64 + 1;
            Err(LoadError::new(
                &name,
                Some(Loc {
                    line,
                    column: col,
                    file: 0,
                }),
                "",
                "not UTF-8 text: a playbook is a YAML text file (is this a binary file?)",
            ))
        }
    }
}

fn io_msg(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

fn too_big(name: &str, len: usize) -> LoadError {
    LoadError::new(
        name,
        None,
        "",
        format!(
            "file is {:.1} MB; a playbook may be at most {} MB",
            len as f64 / 1_048_576.0,
            MAX_FILE_BYTES / 1_048_576
        ),
    )
}

pub(super) fn check_text(name: &str, text: &str) -> Result<(), LoadError> {
    if text.len() > MAX_FILE_BYTES {
        return Err(too_big(name, text.len()));
    }
    if let Some(pos) = text.find('\0') {
        let before = &text[..pos];
        let line = before.matches('\n').count() as u64 + 1;
        let column = before
            .rsplit('\n')
            .next()
            .map(|l| l.chars().count())
            .unwrap_or(0) as u64
            + 1;
        return Err(LoadError::new(
            name,
            Some(Loc {
                line,
                column,
                file: 0,
            }),
            "",
            "contains a NUL byte: a playbook is a YAML text file (is this a binary file?)",
        ));
    }
    Ok(())
}

/// A file shipped in the binary: its display name, text and directory.
pub(super) fn embedded_source(path: &str) -> Option<(String, String, Place)> {
    let text = crate::playbook::embedded::get(path)?;
    let dir = path
        .rsplit_once('/')
        .map(|(d, _)| d.to_string())
        .unwrap_or_default();
    Some((
        format!("embedded:{path}"),
        text.to_string(),
        Place::Embedded(dir),
    ))
}

/// Resolves `.` and `..` in an embedded path.
pub(super) fn normalize(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    out.join("/")
}
