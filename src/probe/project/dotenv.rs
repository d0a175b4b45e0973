//! `.env` files as dotenv reads them, and which file a Node backend would
//! take each variable from.
//!
//! Precedence (see the reference facts): the real process environment wins
//! over every file (dotenv never overrides a variable already set); among
//! the files, the first that sets a key wins. The usual order is
//! `.env.<NODE_ENV>.local`, `.env.local`, `.env.<NODE_ENV>`, `.env`
//! (Nest's `envFilePath` list, dotenv-flow, Next.js); a plain
//! `ConfigModule.forRoot()` reads only `<cwd>/.env`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// One variable of a file, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct FileVar {
    pub value: String,
    pub file: PathBuf,
    pub line: usize,
    /// When the file was last written.
    pub modified: Option<SystemTime>,
}

/// Parses dotenv text: `KEY=value`, `export KEY=value`, single, double
/// (with `\n` escapes) and back-quoted values, multi-line double-quoted
/// values, `#` comments (after whitespace when unquoted).
pub fn parse(text: &str) -> Vec<(String, String, usize)> {
    let mut out = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let n = i + 1;
        let raw = lines[i].trim_start();
        i += 1;
        if raw.is_empty() || raw.starts_with('#') {
            continue;
        }
        let raw = raw.strip_prefix("export ").unwrap_or(raw);
        let Some((k, v)) = raw.split_once('=') else {
            continue;
        };
        let key = k.trim();
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
        {
            continue;
        }
        let v = v.trim_start();
        let value = match v.chars().next() {
            Some(q @ ('"' | '\'' | '`')) => {
                let mut body = v[1..].to_string();
                // A value may run over several lines until its closing quote.
                while !body.contains(q) && i < lines.len() {
                    body.push('\n');
                    body.push_str(lines[i]);
                    i += 1;
                }
                let inner = body.split(q).next().unwrap_or("").to_string();
                if q == '"' {
                    inner.replace("\\n", "\n").replace("\\r", "\r")
                } else {
                    inner
                }
            }
            _ => {
                let cut = v.find(" #").or_else(|| v.find("\t#")).unwrap_or(v.len());
                v[..cut].trim().to_string()
            }
        };
        out.push((key.to_string(), value, n));
    }
    out
}

/// The env files of `dir` that a backend would read, most important
/// first, for this NODE_ENV (None: no `.env.<env>` files).
pub fn candidates(dir: &Path, node_env: Option<&str>) -> Vec<PathBuf> {
    let mut names = Vec::new();
    if let Some(e) = node_env.filter(|e| !e.is_empty()) {
        names.push(format!(".env.{e}.local"));
    }
    names.push(".env.local".into());
    if let Some(e) = node_env.filter(|e| !e.is_empty()) {
        names.push(format!(".env.{e}"));
    }
    names.push(".env".into());
    names.into_iter().map(|n| dir.join(n)).collect()
}

/// The variables the files set, each from the first file (in `files`'
/// order) that sets it; files that do not exist are left out.
pub fn read(files: &[PathBuf]) -> (Vec<PathBuf>, BTreeMap<String, FileVar>) {
    let mut found = Vec::new();
    let mut vars: BTreeMap<String, FileVar> = BTreeMap::new();
    for f in files {
        let Ok(text) = std::fs::read_to_string(f) else {
            continue;
        };
        found.push(f.clone());
        let modified = super::files::modified(f);
        for (k, v, line) in parse(&text) {
            vars.entry(k).or_insert(FileVar {
                value: v,
                file: f.clone(),
                line,
                modified,
            });
        }
    }
    (found, vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_syntax() {
        let text = "# comment\nDATABASE_URL=\"postgresql://u:p@h/db?schema=public\"\nexport DISABLE_RATE_LIMIT=true # off for load tests\nEMPTY=\nSINGLE='a # b'\nMULTI=\"line1\nline2\"\nESC=\"a\\nb\"\nnot a line\n  SPACED = value \n";
        let v = parse(text);
        let get = |k: &str| {
            v.iter()
                .find(|(x, _, _)| x == k)
                .map(|(_, v, l)| (v.as_str(), *l))
        };
        assert_eq!(
            get("DATABASE_URL"),
            Some(("postgresql://u:p@h/db?schema=public", 2))
        );
        assert_eq!(get("DISABLE_RATE_LIMIT"), Some(("true", 3)));
        assert_eq!(get("EMPTY"), Some(("", 4)));
        assert_eq!(get("SINGLE"), Some(("a # b", 5)));
        assert_eq!(get("MULTI"), Some(("line1\nline2", 6)));
        assert_eq!(get("ESC"), Some(("a\nb", 8)));
        assert_eq!(get("SPACED"), Some(("value", 10)));
        assert_eq!(v.len(), 7);
    }

    #[test]
    fn the_first_file_that_sets_a_key_wins() {
        let d = std::env::temp_dir().join(format!("chatops-dotenv-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("mkdir");
        std::fs::write(d.join(".env"), "A=from-env\nB=from-env\n").expect("w");
        std::fs::write(d.join(".env.local"), "A=from-local\n").expect("w");
        let files = candidates(&d, Some("production"));
        let names: Vec<String> = files
            .iter()
            .map(|f| f.file_name().expect("name").to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                ".env.production.local",
                ".env.local",
                ".env.production",
                ".env"
            ]
        );
        let (found, vars) = read(&files);
        assert_eq!(found.len(), 2);
        assert_eq!(vars["A"].value, "from-local");
        assert_eq!(vars["B"].value, "from-env");
        assert_eq!(vars["B"].line, 2);
        let _ = std::fs::remove_dir_all(&d);
    }
}
