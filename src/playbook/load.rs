//! Loading: text → located YAML tree → includes → interpolation → typed,
//! validated [`Playbook`].

use super::error::{LoadError, nearest};
use super::interp::{self, Scope};
use super::yaml::{self, Loc, Node, Value};
use super::{CheckSpec, FieldDoc, KindSet, Phase, Playbook, Settings};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

/// Largest playbook or check file accepted.
pub const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;
const MAX_INCLUDE_DEPTH: usize = 8;

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

const TOP_KEYS: &[&str] = &[
    "name",
    "description",
    "target",
    "vars",
    "settings",
    "phases",
];
const PHASE_KEYS: &[&str] = &["name", "description", "checks"];
const SETTINGS_KEYS: &[&str] = &["concurrency", "deadline", "timeout", "allow_remote"];
/// Fields every check has, whatever its kind.
pub const COMMON_KEYS: &[&str] = &[
    "id",
    "kind",
    "title",
    "description",
    "needs",
    "timeout",
    "retries",
    "interval",
    "root_cause",
    "remedy",
];

struct SourceFile {
    name: String,
    text: String,
    /// Directory includes resolve against.
    dir: Place,
}

#[derive(Clone)]
enum Place {
    Disk(PathBuf),
    Embedded(String),
}

struct Loader<'a> {
    files: Vec<SourceFile>,
    opts: &'a LoadOptions,
    kinds: &'a dyn KindSet,
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

fn read_file(p: &Path) -> Result<String, LoadError> {
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

fn check_text(name: &str, text: &str) -> Result<(), LoadError> {
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

impl Loader<'_> {
    fn err(&self, loc: Option<Loc>, path: &str, msg: impl Into<String>) -> LoadError {
        let file = loc.map(|l| l.file as usize).unwrap_or(0);
        let f = &self.files[file.min(self.files.len() - 1)];
        LoadError::new(&f.name, loc, path, msg).with_source(&f.text)
    }

    fn parse_file(&self, idx: usize) -> Result<Node, LoadError> {
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

    fn map<'n>(
        &self,
        n: &'n Node,
        path: &str,
        what: &str,
    ) -> Result<&'n [(Node, Node)], LoadError> {
        n.as_map().ok_or_else(|| {
            self.err(
                Some(n.loc),
                path,
                format!("expected {what}, found {}", n.kind_name()),
            )
        })
    }

    fn check_keys(
        &self,
        entries: &[(Node, Node)],
        allowed: &[&str],
        path: &str,
        what: &str,
    ) -> Result<(), LoadError> {
        for (k, _) in entries {
            let key = k.key_text();
            if !allowed.contains(&key.as_str()) {
                let p = join(path, &key);
                return Err(self
                    .err(
                        Some(k.loc),
                        &p,
                        format!(
                            "unknown field `{key}` in {what}; expected one of: {}",
                            allowed.join(", ")
                        ),
                    )
                    .suggest(nearest(&key, allowed.iter().copied())));
            }
        }
        Ok(())
    }

    fn scalar(&self, n: &Node, path: &str) -> Result<String, LoadError> {
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

    fn string(&self, n: &Node, path: &str) -> Result<String, LoadError> {
        match &n.value {
            Value::Str(s) => Ok(s.clone()),
            _ => Err(self.err(
                Some(n.loc),
                path,
                format!("expected a string, found {}", n.kind_name()),
            )),
        }
    }

    fn playbook(&mut self, root: &Node) -> Result<Playbook, LoadError> {
        let entries = match &root.value {
            Value::Map(m) => m,
            Value::Null => {
                return Err(self.err(
                    Some(root.loc),
                    "",
                    "the playbook is empty; expected a mapping with `name`, `target`, `vars` and `phases`",
                ))
            }
            _ => {
                return Err(self.err(
                    Some(root.loc),
                    "",
                    format!(
                        "expected a mapping with `name`, `target`, `vars` and `phases` at the top, found {}",
                        root.kind_name()
                    ),
                ))
            }
        };
        self.check_keys(entries, TOP_KEYS, "", "a playbook")?;
        let env = &self.opts.env;

        // vars: each may use env and the vars above it. `run_id` is built in
        // (a label for what this run writes), unless the playbook sets it.
        let mut vars = BTreeMap::new();
        vars.insert("run_id".to_string(), run_id());
        if let Some(v) = root.get("vars") {
            let no_target = BTreeMap::new();
            for (k, val) in self.map(v, "vars", "a mapping of names to values")? {
                let key = k.key_text();
                let path = join("vars", &key);
                let raw = self.scalar(val, &path)?;
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
        }
        for (k, v) in &self.opts.vars {
            vars.insert(k.clone(), v.clone());
        }

        // target: may use env and vars; the command line wins.
        let mut target = BTreeMap::new();
        let overridden: HashSet<&str> = self.opts.target.iter().map(|(k, _)| k.as_str()).collect();
        if let Some(t) = root.get("target") {
            let empty = BTreeMap::new();
            for (k, val) in self.map(
                t,
                "target",
                "a mapping such as `base_url: http://localhost:3001`",
            )? {
                let key = k.key_text();
                if overridden.contains(key.as_str()) {
                    continue;
                }
                let path = join("target", &key);
                let raw = self.scalar(val, &path)?;
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
        }
        for (k, v) in &self.opts.target {
            target.insert(k.clone(), v.clone());
        }
        derive_target_fields(&mut target);

        let mut settings = Settings::default();
        if let Some(s) = root.get("settings") {
            let entries = self.map(s, "settings", "a mapping")?;
            self.check_keys(entries, SETTINGS_KEYS, "settings", "settings")?;
            for (k, v) in entries {
                let key = k.key_text();
                let path = join("settings", &key);
                match key.as_str() {
                    "concurrency" => {
                        settings.concurrency = match &v.value {
                            Value::Number(n) => n
                                .as_u64()
                                .filter(|n| (1..=256).contains(n))
                                .map(|n| n as usize),
                            _ => None,
                        }
                        .ok_or_else(|| {
                            self.err(Some(v.loc), &path, "expected a whole number from 1 to 256")
                        })?
                    }
                    "deadline" => settings.deadline = self.duration(v, &path)?,
                    "timeout" => settings.timeout = self.duration(v, &path)?,
                    "allow_remote" => {
                        settings.allow_remote = match v.value {
                            Value::Bool(b) => b,
                            _ => {
                                return Err(self.err(
                                    Some(v.loc),
                                    &path,
                                    format!("expected true or false, found {}", v.kind_name()),
                                ));
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        settings.allow_remote |= self.opts.allow_remote;

        let name = match root.get("name") {
            Some(n) => self.string(n, "name")?,
            None => self.files[0]
                .name
                .rsplit('/')
                .next()
                .unwrap_or("playbook")
                .trim_end_matches(".yaml")
                .trim_end_matches(".yml")
                .to_string(),
        };
        let description = root
            .get("description")
            .map(|d| self.string(d, "description"))
            .transpose()?;

        let phases_node = root.get("phases").ok_or_else(|| {
            self.err(
                Some(root.loc),
                "phases",
                "missing `phases`: a playbook needs at least one phase with checks",
            )
        })?;
        let Value::Seq(phase_nodes) = &phases_node.value else {
            return Err(self.err(
                Some(phases_node.loc),
                "phases",
                format!(
                    "expected a list of phases, found {}",
                    phases_node.kind_name()
                ),
            ));
        };
        if phase_nodes.is_empty() {
            return Err(self.err(
                Some(phases_node.loc),
                "phases",
                "the list of phases is empty",
            ));
        }

        let mut phases = Vec::new();
        let mut seen: HashMap<String, Loc> = HashMap::new();
        for (pi, pn) in phase_nodes.iter().enumerate() {
            let ppath = format!("phases[{pi}]");
            let entries = self.map(pn, &ppath, "a phase: a mapping with `name` and `checks`")?;
            self.check_keys(entries, PHASE_KEYS, &ppath, "a phase")?;
            let pname = match pn.get("name") {
                Some(n) => self.scalar(n, &join(&ppath, "name"))?,
                None => format!("Phase {}", pi + 1),
            };
            let pdesc = pn
                .get("description")
                .map(|d| self.scalar(d, &join(&ppath, "description")))
                .transpose()?;
            let mut checks = Vec::new();
            if let Some(cn) = pn.get("checks") {
                let cpath = join(&ppath, "checks");
                let Value::Seq(items) = &cn.value else {
                    return Err(self.err(
                        Some(cn.loc),
                        &cpath,
                        format!("expected a list of checks, found {}", cn.kind_name()),
                    ));
                };
                for (ci, item) in items.iter().enumerate() {
                    let path = format!("{cpath}[{ci}]");
                    let merged = self.resolve_include(item, &path, 0)?;
                    let spec = self.check(&merged, &path, pi, &vars, &target, &settings)?;
                    if let Some(first) = seen.get(&spec.id) {
                        let at = format!("{}:{}", self.files[first.file as usize].name, first.line);
                        return Err(self.err(
                            merged.get("id").map(|n| n.loc).or(Some(merged.loc)),
                            &join(&path, "id"),
                            format!("duplicate check id `{}` (first defined at {at})", spec.id),
                        ));
                    }
                    seen.insert(
                        spec.id.clone(),
                        merged.get("id").map(|n| n.loc).unwrap_or(merged.loc),
                    );
                    checks.push(spec);
                }
            }
            phases.push(Phase {
                name: pname,
                description: pdesc,
                checks,
            });
        }

        let pb = Playbook {
            name,
            description,
            file: self.files[0].name.clone(),
            target,
            vars,
            settings,
            phases,
        };
        self.check_graph(&pb)?;
        Ok(pb)
    }

    fn duration(&self, v: &Node, path: &str) -> Result<std::time::Duration, LoadError> {
        let text = match &v.value {
            Value::Str(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => {
                return Err(self.err(
                    Some(v.loc),
                    path,
                    format!(
                        "expected a duration such as 5s or 500ms, found {}",
                        v.kind_name()
                    ),
                ));
            }
        };
        crate::support::duration::parse(&text).map_err(|m| self.err(Some(v.loc), path, m))
    }

    /// Replaces `include: FILE` by the included check, with the entry's
    /// other keys laid over it.
    fn resolve_include(
        &mut self,
        item: &Node,
        path: &str,
        depth: usize,
    ) -> Result<Node, LoadError> {
        let Some(inc) = item.get("include") else {
            return Ok(item.clone());
        };
        let ipath = join(path, "include");
        if depth >= MAX_INCLUDE_DEPTH {
            return Err(self.err(
                Some(inc.loc),
                &ipath,
                "includes nest too deeply (is there a cycle?)",
            ));
        }
        let rel = self.string(inc, &ipath)?;
        let from = &self.files[inc.loc.file as usize];
        // `chatops:checks/x.yaml` names a check shipped inside the binary,
        // wherever the including playbook lives.
        let (place, rel) = match rel.strip_prefix("chatops:") {
            Some(r) => (
                Place::Embedded(String::new()),
                r.trim_start_matches('/').to_string(),
            ),
            None => (from.dir.clone(), rel),
        };
        let (name, text, dir) = match &place {
            Place::Disk(d) => {
                let p = d.join(&rel);
                let text = read_file(&p).map_err(|e| {
                    self.err(
                        Some(inc.loc),
                        &ipath,
                        format!("cannot include `{rel}`: {}", e.message),
                    )
                })?;
                let dir = p.parent().map(Path::to_path_buf).unwrap_or_default();
                (p.display().to_string(), text, Place::Disk(dir))
            }
            Place::Embedded(d) => {
                let p = normalize(&format!("{d}/{rel}"));
                embedded_source(&p).ok_or_else(|| {
                    self.err(
                        Some(inc.loc),
                        &ipath,
                        format!("cannot include `{rel}`: no such embedded file `{p}`"),
                    )
                })?
            }
        };
        check_text(&name, &text)?;
        if self.files.len() >= u16::MAX as usize {
            return Err(self.err(Some(inc.loc), &ipath, "too many included files"));
        }
        self.files.push(SourceFile { name, text, dir });
        let idx = self.files.len() - 1;
        let base = self.parse_file(idx)?;
        if base.as_map().is_none() {
            return Err(self.err(
                Some(base.loc),
                "",
                format!(
                    "an included check must be a mapping, found {}",
                    base.kind_name()
                ),
            ));
        }
        let base = self.resolve_include(&base, "", depth + 1)?;
        let mut merged = base;
        let overrides: Vec<(Node, Node)> = item
            .as_map()
            .unwrap_or(&[])
            .iter()
            .filter(|(k, _)| k.as_str() != Some("include"))
            .cloned()
            .collect();
        merge(&mut merged, overrides);
        Ok(merged)
    }

    fn check(
        &self,
        node: &Node,
        path: &str,
        phase: usize,
        vars: &BTreeMap<String, String>,
        target: &BTreeMap<String, String>,
        settings: &Settings,
    ) -> Result<CheckSpec, LoadError> {
        let entries = self.map(node, path, "a check: a mapping with `id` and `kind`")?;
        let kind_node = node.get("kind").ok_or_else(|| {
            self.err(
                Some(node.loc),
                &join(path, "kind"),
                format!(
                    "missing `kind`; one of: {}",
                    self.kinds.kind_names().join(", ")
                ),
            )
        })?;
        let kind_name = self.string(kind_node, &join(path, "kind"))?;
        let kind = self.kinds.find_kind(&kind_name).ok_or_else(|| {
            self.err(
                Some(kind_node.loc),
                &join(path, "kind"),
                format!(
                    "unknown check kind `{kind_name}`; known kinds: {}",
                    self.kinds.kind_names().join(", ")
                ),
            )
            .suggest(nearest(&kind_name, self.kinds.kind_names()))
        })?;
        let id_node = node.get("id").ok_or_else(|| {
            self.err(
                Some(node.loc),
                &join(path, "id"),
                "missing `id`: every check needs a unique id",
            )
        })?;
        let id = self.scalar(id_node, &join(path, "id"))?;
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(self.err(
                Some(id_node.loc),
                &join(path, "id"),
                format!("`{id}` is not a valid id: use letters, digits, `_` and `-`"),
            ));
        }

        let fields = kind.fields();
        let mut allowed: Vec<&str> = COMMON_KEYS.to_vec();
        allowed.extend(fields.iter().map(|f| f.name.as_str()));
        let mut params = serde_json::Map::new();
        let mut locs = Vec::new();
        let mut spec = CheckSpec {
            id: id.clone(),
            kind: kind_name.clone(),
            title: None,
            description: None,
            phase,
            needs: Vec::new(),
            timeout: settings.timeout,
            retries: 0,
            interval: std::time::Duration::from_secs(1),
            params: serde_json::Value::Null,
            root_cause: None,
            remedy: None,
            file: self.files[node.loc.file as usize].name.clone(),
            loc: node.loc,
        };
        for (k, v) in entries {
            let key = k.key_text();
            let kp = join(path, &key);
            match key.as_str() {
                "id" | "kind" => {}
                "title" => spec.title = Some(self.scalar(v, &kp)?),
                "description" => spec.description = Some(self.scalar(v, &kp)?),
                "root_cause" => spec.root_cause = Some(self.scalar(v, &kp)?),
                "remedy" => spec.remedy = Some(self.scalar(v, &kp)?),
                "timeout" => spec.timeout = self.duration(v, &kp)?,
                "interval" => spec.interval = self.duration(v, &kp)?,
                "retries" => {
                    spec.retries = match &v.value {
                        Value::Number(n) => n.as_u64().filter(|n| *n <= 1000).map(|n| n as u32),
                        _ => None,
                    }
                    .ok_or_else(|| {
                        self.err(Some(v.loc), &kp, "expected a whole number from 0 to 1000")
                    })?
                }
                "needs" => {
                    spec.needs = match &v.value {
                        Value::Str(s) => vec![s.clone()],
                        Value::Seq(items) => items
                            .iter()
                            .enumerate()
                            .map(|(i, n)| self.string(n, &format!("{kp}[{i}]")))
                            .collect::<Result<_, _>>()?,
                        _ => {
                            return Err(self.err(
                                Some(v.loc),
                                &kp,
                                format!(
                                    "expected a check id or a list of ids, found {}",
                                    v.kind_name()
                                ),
                            ));
                        }
                    }
                }
                other if fields.iter().any(|f| f.name == other) => {
                    let j = v.to_json(&kp, &mut locs);
                    locs.push((kp.clone(), k.loc));
                    params.insert(key.clone(), j);
                }
                other => {
                    return Err(self
                        .err(
                            Some(k.loc),
                            &kp,
                            format!(
                                "unknown field `{other}` for a `{kind_name}` check; its fields: {}",
                                fields
                                    .iter()
                                    .map(|f| f.name.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        )
                        .suggest(nearest(other, allowed.iter().copied())));
                }
            }
        }
        let mut params = serde_json::Value::Object(params);
        let locate = |p: &str| -> Option<Loc> {
            let mut p = p.to_string();
            loop {
                if let Some((_, l)) = locs.iter().rev().find(|(lp, _)| *lp == p) {
                    return Some(*l);
                }
                match p.rfind(['.', '[']) {
                    Some(i) if i > path.len() => p.truncate(i),
                    _ => return Some(node.loc),
                }
            }
        };
        // Values interpolated into SQL text would be spliced, not bound.
        {
            for f in kind.literal_fields() {
                if let Some(q) = params.get(*f).and_then(|v| v.as_str())
                    && q.contains("${")
                {
                    let full = format!("{path}.{f}");
                    return Err(self
                        .err(locate(&full), &full, format!("`${{…}}` is not allowed in `{f}`: an interpolated value would be spliced into the SQL"))
                        .suggest(Some("write $1, $2, … in the query and put the values in `params: [\"${vars.x}\"]`; they are bound, never spliced".to_string())));
                }
            }
        }
        let scope = Scope {
            env: self.opts.env.as_ref(),
            vars,
            target,
            captures: None,
        };
        interp::expand_json(&mut params, &scope, path)
            .map_err(|(p, m)| self.err(locate(&p), &p, m))?;
        // `${checks.X.…}` makes X a dependency.
        let mut refs = Vec::new();
        collect_check_refs(&params, &mut refs);
        for r in refs {
            if !spec.needs.contains(&r) {
                spec.needs.push(r);
            }
        }
        // Type-check now; values that wait for captures are checked again at run time.
        if let Err(super::ParamError {
            path: p,
            message: m,
        }) = kind.validate(&params)
            && !waits_for_capture(&params, &p)
        {
            let full = if p.is_empty() {
                path.to_string()
            } else {
                format!("{path}.{p}")
            };
            let (msg, hint) = explain_serde(&m, &fields);
            return Err(self.err(locate(&full), &full, msg).suggest(hint));
        }
        spec.params = params;
        Ok(spec)
    }

    fn check_graph(&self, pb: &Playbook) -> Result<(), LoadError> {
        let ids: Vec<&str> = pb.checks().map(|c| c.id.as_str()).collect();
        for c in pb.checks() {
            for n in &c.needs {
                if !ids.contains(&n.as_str()) {
                    return Err(LoadError::new(
                        &c.file,
                        Some(c.loc),
                        &format!("{}.needs", c.id),
                        format!("check `{}` needs `{n}`, which no check has as its id", c.id),
                    )
                    .suggest(nearest(n, ids.iter().copied())));
                }
                if *n == c.id {
                    return Err(LoadError::new(
                        &c.file,
                        Some(c.loc),
                        &format!("{}.needs", c.id),
                        format!("check `{}` needs itself", c.id),
                    ));
                }
            }
        }
        // Cycle detection by depth-first search.
        let by_id: HashMap<&str, &CheckSpec> = pb.checks().map(|c| (c.id.as_str(), c)).collect();
        let mut state: HashMap<&str, u8> = HashMap::new();
        fn visit<'a>(
            id: &'a str,
            by_id: &HashMap<&'a str, &'a CheckSpec>,
            state: &mut HashMap<&'a str, u8>,
            stack: &mut Vec<&'a str>,
        ) -> Option<Vec<String>> {
            match state.get(id) {
                Some(2) => return None,
                Some(1) => {
                    let start = stack.iter().position(|s| *s == id).unwrap_or(0);
                    let mut cyc: Vec<String> =
                        stack[start..].iter().map(|s| s.to_string()).collect();
                    cyc.push(id.to_string());
                    return Some(cyc);
                }
                _ => {}
            }
            state.insert(id, 1);
            stack.push(id);
            if let Some(c) = by_id.get(id) {
                for n in &c.needs {
                    if let Some(cyc) = visit(n.as_str(), by_id, state, stack) {
                        return Some(cyc);
                    }
                }
            }
            stack.pop();
            state.insert(id, 2);
            None
        }
        for c in pb.checks() {
            let mut stack = Vec::new();
            if let Some(cyc) = visit(c.id.as_str(), &by_id, &mut state, &mut stack) {
                return Err(LoadError::new(
                    &c.file,
                    Some(c.loc),
                    &format!("{}.needs", c.id),
                    format!("dependency cycle: {}", cyc.join(" → ")),
                ));
            }
        }
        Ok(())
    }
}

fn collect_check_refs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => out.extend(interp::check_refs(s)),
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_check_refs(x, out)),
        serde_json::Value::Object(m) => m.values().for_each(|x| collect_check_refs(x, out)),
        _ => {}
    }
}

/// Rewrites serde's messages for people and finds a suggestion in them.
fn explain_serde(m: &str, fields: &[FieldDoc]) -> (String, Option<String>) {
    // "unknown field `x`, expected one of `a`, `b`" / "unknown variant `x`, expected `a` or `b`"
    let word = m.split('`').nth(1).map(str::to_string);
    let expected: Vec<String> = m
        .split_once("expected")
        .map(|(_, rest)| {
            rest.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let hint = match (&word, m.starts_with("unknown")) {
        (Some(w), true) => {
            let cands: Vec<&str> = if expected.is_empty() {
                fields.iter().map(|f| f.name.as_str()).collect()
            } else {
                expected.iter().map(String::as_str).collect()
            };
            nearest(w, cands)
        }
        _ => None,
    };
    let msg = m
        .replace("expected u16", "expected a whole number from 0 to 65535")
        .replace("expected u32", "expected a whole number")
        .replace("expected u64", "expected a whole number")
        .replace("expected i64", "expected a whole number")
        .replace("expected f64", "expected a number");
    (msg, hint)
}

/// Lays `overrides` over `base`: mappings merge key by key, anything else is replaced.
fn merge(base: &mut Node, overrides: Vec<(Node, Node)>) {
    let Value::Map(entries) = &mut base.value else {
        return;
    };
    for (k, v) in overrides {
        match entries
            .iter_mut()
            .find(|(bk, _)| bk.key_text() == k.key_text())
        {
            Some((_, bv)) => {
                if let (Value::Map(_), Value::Map(ov)) = (&bv.value, &v.value) {
                    merge(bv, ov.clone());
                } else {
                    *bv = v;
                }
            }
            None => entries.push((k, v)),
        }
    }
}

fn join(path: &str, key: &str) -> String {
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

/// A file shipped in the binary: its display name, text and directory.
fn embedded_source(path: &str) -> Option<(String, String, Place)> {
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
fn normalize(p: &str) -> String {
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

/// Whether the value at `path` (inside a check) still holds a `${checks.…}`
/// reference: its type can only be checked once the capture exists.
fn waits_for_capture(params: &serde_json::Value, path: &str) -> bool {
    crate::support::dotpath::lookup(params, path)
        .and_then(|v| v.as_str())
        .is_some_and(|s| !interp::check_refs(s).is_empty())
}
