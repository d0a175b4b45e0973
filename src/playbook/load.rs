//! Loading: text → located YAML tree → the derived file type (its shape,
//! `deny_unknown_fields`) → vars and target, interpolated in order →
//! checks, includes resolved ([`super::includes`]) and parsed
//! ([`super::check`]) → the dependency graph ([`super::graph`]).

use super::error::LoadError;
use super::file::{Mapping, Phases, PlaybookFile};
use super::interp::{self, Scope};
use super::located::{Located, PathError, plain_message};
use super::source::{Place, SourceFile, check_text, embedded_source, read_file};
use super::yaml::{self, Loc, Node, Value};
use super::{KindSet, Phase, Playbook, Settings};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

pub use super::source::{LoadOptions, Source};

pub(super) struct Loader<'a> {
    pub(super) files: Vec<SourceFile>,
    pub(super) opts: &'a LoadOptions,
    pub(super) kinds: &'a dyn KindSet,
}

/// Loads a playbook whose checks may use the kinds of `kinds`.
pub fn load(src: &Source, opts: &LoadOptions, kinds: &dyn KindSet) -> Result<Playbook, LoadError> {
    let mut l = Loader {
        files: Vec::new(),
        opts,
        kinds,
    };
    let (name, text, dir) = match src {
        Source::File(p) => {
            let text = read_file(p)?;
            let dir = p.parent().map(Path::to_path_buf).unwrap_or_default();
            (p.display().to_string(), text, Place::Disk(dir))
        }
        Source::Embedded(path) => embedded_source(path)
            .ok_or_else(|| LoadError::new(path, None, "", "no such embedded playbook"))?,
        Source::Text { name, text } => {
            (name.clone(), text.clone(), Place::Disk(PathBuf::from(".")))
        }
    };
    check_text(&name, &text)?;
    l.files.push(SourceFile { name, text, dir });
    let root = l.parse_file(0)?;
    l.playbook(&root)
}

/// What a misspelt key was found in, by the path of its mapping.
fn noun(parent: &str) -> Option<&'static str> {
    match parent {
        "" => Some("a playbook"),
        "settings" => Some("settings"),
        p if p.starts_with("phases[") && !p.contains('.') => Some("a phase"),
        _ => None,
    }
}

impl Loader<'_> {
    pub(super) fn err(&self, loc: Option<Loc>, path: &str, msg: impl Into<String>) -> LoadError {
        let file = loc.map(|l| l.file as usize).unwrap_or(0);
        let f = &self.files[file.min(self.files.len() - 1)];
        LoadError::new(&f.name, loc, path, msg).with_source(&f.text)
    }

    pub(super) fn parse_file(&self, idx: usize) -> Result<Node, LoadError> {
        let f = &self.files[idx];
        let mut node = yaml::parse(&f.text).map_err(|e| {
            let loc = e.loc.map(|l| Loc {
                file: idx as u16,
                ..l
            });
            self.err(loc, "", e.message)
        })?;
        node.set_file(idx as u16);
        Ok(node)
    }

    /// A string, a number or a boolean, as text.
    pub(super) fn scalar(&self, n: &Node, path: &str) -> Result<String, LoadError> {
        match &n.value {
            Value::Str(s) => Ok(s.clone()),
            Value::Number(x) => Ok(x.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            _ => Err(self.err(
                Some(n.loc),
                path,
                format!("expected a string, found {}", n.kind_name()),
            )),
        }
    }

    /// An error from decoding the file type, in the loader's words.
    fn file_error(&self, located: &Located, e: &PathError) -> LoadError {
        match &e.unknown {
            Some(u) if u.field => {
                let parent = e.path.rsplit_once('.').map(|(p, _)| p).unwrap_or("");
                let what = noun(parent).unwrap_or("this mapping");
                self.err(
                    Some(located.key_loc(&e.path)),
                    &e.path,
                    format!(
                        "unknown field `{}` in {what}; expected one of: {}",
                        u.word,
                        u.expected.join(", ")
                    ),
                )
                .suggest(e.suggestion())
            }
            _ => self
                .err(
                    Some(located.value_loc(&e.path)),
                    &e.path,
                    plain_message(&e.message),
                )
                .suggest(e.suggestion()),
        }
    }

    fn playbook(&mut self, root: &Node) -> Result<Playbook, LoadError> {
        if let Value::Null = root.value {
            return Err(self.err(
                Some(root.loc),
                "",
                "the playbook is empty; expected a mapping with `name`, `target`, `vars` and `phases`",
            ));
        }
        let located = Located::new(root, "");
        let Mapping(file): Mapping<PlaybookFile> = located
            .decode()
            .map_err(|e| self.file_error(&located, &e))?;
        let env = &self.opts.env;

        // vars: each may use env and the vars above it. `run_id` is built in
        // (a label for what this run writes), unless the playbook sets it.
        let mut vars = BTreeMap::new();
        vars.insert("run_id".to_string(), run_id());
        for (k, val) in root.get("vars").and_then(Node::as_map).unwrap_or(&[]) {
            let key = k.key_text();
            let path = join("vars", &key);
            let raw = self.scalar(val, &path)?;
            let no_target = BTreeMap::new();
            let scope = Scope {
                env: env.as_ref(),
                vars: &vars,
                target: &no_target,
                captures: None,
            };
            let value =
                interp::expand(&raw, &scope).map_err(|m| self.err(Some(val.loc), &path, m))?;
            vars.insert(key, value);
        }
        for (k, v) in &self.opts.vars {
            vars.insert(k.clone(), v.clone());
        }

        // target: may use env and vars; the command line wins.
        let mut target = BTreeMap::new();
        let overridden: HashSet<&str> = self.opts.target.iter().map(|(k, _)| k.as_str()).collect();
        for (k, val) in root.get("target").and_then(Node::as_map).unwrap_or(&[]) {
            let key = k.key_text();
            if overridden.contains(key.as_str()) {
                continue;
            }
            let path = join("target", &key);
            let raw = self.scalar(val, &path)?;
            let empty = BTreeMap::new();
            let scope = Scope {
                env: env.as_ref(),
                vars: &vars,
                target: &empty,
                captures: None,
            };
            let value =
                interp::expand(&raw, &scope).map_err(|m| self.err(Some(val.loc), &path, m))?;
            target.insert(key, value);
        }
        for (k, v) in &self.opts.target {
            target.insert(k.clone(), v.clone());
        }
        derive_target_fields(&mut target);

        let mut settings = Settings::default();
        if let Some(Mapping(s)) = file.settings {
            settings.concurrency = s.concurrency.unwrap_or(settings.concurrency);
            settings.deadline = s.deadline.unwrap_or(settings.deadline);
            settings.timeout = s.timeout.unwrap_or(settings.timeout);
            settings.allow_remote = s.allow_remote.unwrap_or(settings.allow_remote);
        }
        settings.allow_remote |= self.opts.allow_remote;

        let name = file.name.unwrap_or_else(|| {
            self.files[0]
                .name
                .rsplit('/')
                .next()
                .unwrap_or("playbook")
                .trim_end_matches(".yaml")
                .trim_end_matches(".yml")
                .to_string()
        });

        let Some(Phases(phase_files)) = file.phases else {
            return Err(self.err(
                Some(root.loc),
                "phases",
                "missing `phases`: a playbook needs at least one phase with checks",
            ));
        };
        let phase_nodes = match root.get("phases").map(|p| (p, &p.value)) {
            Some((_, Value::Seq(items))) if !items.is_empty() => items,
            Some((p, _)) => {
                return Err(self.err(Some(p.loc), "phases", "the list of phases is empty"));
            }
            None => &Vec::new(),
        };

        let mut phases = Vec::new();
        let mut seen: HashMap<String, Loc> = HashMap::new();
        for (pi, (pf, pn)) in phase_files.into_iter().zip(phase_nodes).enumerate() {
            let ppath = format!("phases[{pi}]");
            let cpath = join(&ppath, "checks");
            let items = match pn.get("checks").map(|c| &c.value) {
                Some(Value::Seq(items)) => items.as_slice(),
                _ => &[],
            };
            let mut checks = Vec::new();
            for (ci, item) in items.iter().enumerate() {
                let path = format!("{cpath}[{ci}]");
                let merged = self.resolve_include(item, &path, 0)?;
                let spec = self.check(&merged, &path, pi, &vars, &target, &settings)?;
                let id_loc = merged.get("id").map(|n| n.loc).unwrap_or(merged.loc);
                if let Some(first) = seen.get(&spec.id) {
                    let at = format!("{}:{}", self.files[first.file as usize].name, first.line);
                    return Err(self.err(
                        Some(id_loc),
                        &join(&path, "id"),
                        format!("duplicate check id `{}` (first defined at {at})", spec.id),
                    ));
                }
                seen.insert(spec.id.clone(), id_loc);
                checks.push(spec);
            }
            phases.push(Phase {
                name: pf.name.unwrap_or_else(|| format!("Phase {}", pi + 1)),
                description: pf.description,
                checks,
            });
        }

        let pb = Playbook {
            name,
            description: file.description,
            file: self.files[0].name.clone(),
            target,
            vars,
            settings,
            phases,
        };
        super::graph::check_graph(&pb)?;
        Ok(pb)
    }
}

/// Adds `base_host`/`base_port` from `base_url` and `db_host`/`db_port`/
/// `db_name` from `database_url`, unless the playbook sets them.
fn derive_target_fields(t: &mut BTreeMap<String, String>) {
    let mut add = Vec::new();
    if let Some(u) = t.get("base_url").and_then(|u| url::Url::parse(u).ok()) {
        if let Some(h) = u.host_str() {
            add.push(("base_host", h.trim_matches(['[', ']']).to_string()));
        }
        if let Some(p) = u.port_or_known_default() {
            add.push(("base_port", p.to_string()));
        }
    }
    if let Some(u) = t
        .get("database_url")
        .and_then(|u| crate::pg::DbUrl::parse(u).ok())
    {
        add.push(("db_host", u.host));
        add.push(("db_port", u.port.to_string()));
        add.push(("db_name", u.database));
    }
    for (k, v) in add {
        t.entry(k.to_string()).or_insert(v);
    }
}

pub(super) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// A label unique to this run: `chatops-<unix seconds>-<pid>`.
fn run_id() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("chatops-{secs}-{}", std::process::id())
}
