//! The module graph points one way: commands → domain → infrastructure →
//! support. This test reads `src/` and fails on an import that points up or
//! sideways (which is also how a cycle would have to start), and on a command
//! that imports another command.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level modules, highest first. A module may import only modules with
/// a larger rank.
const LAYERS: &[(&str, u32)] = &[
    ("commands", 0),
    // domain
    ("load", 10),
    ("watch", 10),
    ("session", 20),
    ("report", 30),
    ("checks", 40),
    ("engine", 50),
    ("playbook", 60),
    ("diagnose", 70),
    ("poolcalc", 80),
    // infrastructure
    ("sandbox", 100),
    ("pg", 110),
    ("probe", 110),
    // support
    ("support", 200),
];

/// Files under `src/commands/` that are shared pieces, not commands.
const COMMAND_SUPPORT: &[&str] = &["mod", "cli", "error", "exit"];

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Strips `//` comments (not inside strings; good enough for `use` lines and paths).
fn code_of(src: &str) -> String {
    src.lines()
        .map(|l| {
            let t = l.trim_start();
            if t.starts_with("//") { "" } else { l }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every top-level module named after `crate::`, including `crate::{a, b::c}` groups.
fn crate_refs(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

fn top_module(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel
        .components()
        .next()?
        .as_os_str()
        .to_string_lossy()
        .to_string();
    Some(first.trim_end_matches(".rs").to_string())
}

#[test]
fn imports_point_down() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let rank: BTreeMap<&str, u32> = LAYERS.iter().copied().collect();
    let mut files = Vec::new();
    rs_files(&src, &mut files);
    assert!(files.len() > 20, "found only {} source files", files.len());
    let mut bad = Vec::new();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let Some(top) = top_module(&src, f) else {
            continue;
        };
        if top == "lib" || top == "main" {
            continue;
        }
        let Some(&from) = rank.get(top.as_str()) else {
            bad.push(format!(
                "{}: top-level module `{top}` has no layer in tests/layers.rs",
                f.display()
            ));
            continue;
        };
        let code = code_of(&std::fs::read_to_string(f).unwrap_or_default());
        for to in crate_refs(&code) {
            if to == top {
                continue;
            }
            let Some(&to_rank) = rank.get(to.as_str()) else {
                continue;
            };
            graph.entry(top.clone()).or_default().insert(to.clone());
            if to_rank <= from {
                bad.push(format!(
                    "{}: `{top}` (layer {from}) imports `{to}` (layer {to_rank}): arrows must point down",
                    f.strip_prefix(&src).unwrap_or(f).display()
                ));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "module graph violations:\n{}",
        bad.join("\n")
    );
    // With strictly increasing ranks a cycle is impossible; check anyway, so a
    // mistaken rank table cannot hide one.
    assert_eq!(find_cycle(&graph), None);
}

fn find_cycle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == n) {
            return Some(path[i..].to_vec());
        }
        if done.contains(n) {
            return None;
        }
        path.push(n.to_string());
        for m in g.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, g, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for n in g.keys() {
        if let Some(c) = visit(n, g, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    g.entry("a".into()).or_default().insert("b".into());
    g.entry("b".into()).or_default().insert("c".into());
    assert_eq!(find_cycle(&g), None);
    g.entry("c".into()).or_default().insert("a".into());
    assert_eq!(find_cycle(&g).map(|c| c.len()), Some(3));
    assert_eq!(
        crate_refs("use crate::{checks::Status, engine};\nlet x = crate::pg::DbUrl::parse(s);"),
        ["checks", "engine", "pg"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
}

#[test]
fn commands_do_not_import_commands() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/commands");
    let mut files = Vec::new();
    rs_files(&dir, &mut files);
    let commands: BTreeSet<String> = files
        .iter()
        .filter_map(|f| f.file_stem().map(|s| s.to_string_lossy().to_string()))
        .filter(|s| !COMMAND_SUPPORT.contains(&s.as_str()))
        .collect();
    assert!(commands.len() >= 10, "{commands:?}");
    let mut bad = Vec::new();
    for f in &files {
        let me = f
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        if COMMAND_SUPPORT.contains(&me.as_str()) {
            continue;
        }
        let code = code_of(&std::fs::read_to_string(f).unwrap_or_default());
        for c in &commands {
            if c == &me {
                continue;
            }
            for pat in [format!("super::{c}"), format!("commands::{c}")] {
                let hit = code.match_indices(&pat).any(|(i, _)| {
                    !code[i + pat.len()..].starts_with(|ch: char| ch.is_alphanumeric() || ch == '_')
                });
                if hit {
                    bad.push(format!("commands/{me}.rs imports the command `{c}`"));
                }
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn no_source_file_is_a_god_file() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rs_files(&src, &mut files);
    let mut big = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        // Unit tests at the bottom of a file do not count.
        let body = text.split("\n#[cfg(test)]").next().unwrap_or("");
        let n = body.lines().count();
        if n > 600 {
            big.push(format!(
                "{}: {n} lines",
                f.strip_prefix(&src).unwrap_or(&f).display()
            ));
        }
    }
    assert!(
        big.is_empty(),
        "files over 600 lines (tests excluded):\n{}",
        big.join("\n")
    );
}
