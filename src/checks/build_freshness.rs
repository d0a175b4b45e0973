//! `build_freshness`: whether the running backend runs what its project
//! holds, before any request. Three questions, each naming files and times:
//!
//! - the generated Prisma client was generated from the current schema:
//!   its copy of the schema compared by content (models, fields, maps),
//!   else the sha256 in its package name, else the times;
//! - the compiled output (`dist/`, or tsconfig's `outDir`) is not older
//!   than any source, and lacks none;
//! - the process started after the build and the client were last written.
//!
//! The run reads files and /proc; [`judge`] decides.

use super::project::{self, BackendAt, at, later};
use super::util::worst_finding;
use super::{Check, Ctx, Observation, Status};
use crate::diagnose::Fault;
use crate::probe::project::{files, layout, schema};
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

pub struct BuildFreshness;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The project directory (`--project`, `${target.project}`); empty: the backend process's working directory.
    pub project: Option<String>,
    /// The backend: `{host, port}`; its process's working directory is the project, its start time is compared with the files.
    pub process: Option<BackendAt>,
    /// Compare the generated Prisma client with the schema (default true).
    #[serde(default = "yes")]
    pub client: bool,
    /// Compare the compiled output with the sources (default true).
    #[serde(default = "yes")]
    pub build: bool,
}

fn yes() -> bool {
    true
}

/// File times closer than this count as equal (file systems with coarse
/// timestamps, a build that wrote during the same second).
const SLACK: Duration = Duration::from_secs(1);

fn newer(a: SystemTime, b: SystemTime) -> bool {
    a > b + SLACK
}

/// The schema as read.
#[derive(Debug, Clone)]
pub struct SchemaFacts {
    pub path: String,
    pub text: String,
    pub shape: BTreeMap<String, String>,
    pub modified: Option<SystemTime>,
}

/// A generated client as found.
#[derive(Debug, Clone)]
pub struct ClientFacts {
    pub generator: String,
    pub dir: String,
    pub exists: bool,
    /// The copy of the schema it was generated from, and its path.
    pub copy: Option<(String, String)>,
    pub package_name: Option<String>,
    /// Its newest file among the copy, index.js and package.json.
    pub modified: Option<(String, SystemTime)>,
}

/// A source and its compiled file.
#[derive(Debug, Clone)]
pub struct Pair {
    pub source: String,
    pub source_time: SystemTime,
    pub compiled: String,
    pub compiled_time: Option<SystemTime>,
}

#[derive(Debug, Clone)]
pub struct BuildFacts {
    pub out: String,
    pub why: String,
    pub out_exists: bool,
    pub pairs: Vec<Pair>,
    /// The newest file of the compiled output.
    pub newest: Option<(String, SystemTime)>,
}

/// Everything [`judge`] needs.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub schema: Option<SchemaFacts>,
    pub clients: Vec<ClientFacts>,
    pub build: Option<BuildFacts>,
    /// The backend process: pid and start time.
    pub process: Option<(u32, SystemTime)>,
}

/// What differs between two schema shapes.
fn differences(
    client: &BTreeMap<String, String>,
    schema: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in client {
        match schema.get(k) {
            None => out.push(format!("{k}: in the client ({v}), not in the schema")),
            Some(s) if s != v => out.push(format!("{k}: the client has {v}, the schema {s}")),
            _ => {}
        }
    }
    for (k, v) in schema {
        if !client.contains_key(k) {
            out.push(format!("{k}: in the schema ({v}), not in the client"));
        }
    }
    out
}

fn stale_client(s: &SchemaFacts, c: &ClientFacts) -> Option<(Status, String, Fault)> {
    let times = (c.modified.as_ref().map(|m| at(m.1)), s.modified.map(at));
    let fault = |how: &str, client: String, diff: Vec<String>| Fault::StaleClient {
        client,
        schema: s.path.clone(),
        how: how.into(),
        differences: diff,
        client_time: times.0.clone(),
        schema_time: times.1.clone(),
    };
    if let Some((path, text)) = &c.copy {
        let shape = schema::parse(text, path).ok()?.shape();
        let diff = differences(&shape, &s.shape);
        if diff.is_empty() {
            return None;
        }
        return Some((
            Status::Fail,
            format!(
                "stale Prisma client: {path} was generated from another schema than {} ({})",
                s.path, diff[0]
            ),
            fault("content", path.clone(), diff),
        ));
    }
    if let Some(hash) = c
        .package_name
        .as_deref()
        .and_then(|n| n.strip_prefix("prisma-client-"))
    {
        let mine = files::sha256_hex(s.text.as_bytes());
        if hash != mine {
            // Without the copy the hash's input is not certain: a warning.
            return Some((
                Status::Warn,
                format!(
                    "Prisma client in {} names schema sha256 {}…, {} is {}…",
                    c.dir,
                    &hash[..hash.len().min(12)],
                    s.path,
                    &mine[..12]
                ),
                fault("hash", format!("{}/package.json", c.dir), vec![]),
            ));
        }
        return None;
    }
    match (&c.modified, s.modified) {
        (Some((f, ct)), Some(st)) if newer(st, *ct) => Some((
            Status::Warn,
            format!(
                "Prisma client {f} ({}) is older than {} ({})",
                at(*ct),
                s.path,
                at(st)
            ),
            fault("time", f.clone(), vec![]),
        )),
        _ => None,
    }
}

/// Judges the facts: findings in the order client, build, process.
pub fn judge(o: Observation, f: &Facts) -> Observation {
    let mut o = o;
    let mut findings = Vec::new();
    if let Some(s) = &f.schema {
        o = o.evidence(format!(
            "schema: {}{}",
            s.path,
            s.modified
                .map(|t| format!(" written {}", at(t)))
                .unwrap_or_default()
        ));
        for c in &f.clients {
            if !c.exists {
                o = o.evidence(format!(
                    "client ({}): none generated at {} (not installed here?)",
                    c.generator, c.dir
                ));
                continue;
            }
            o = o.evidence(format!(
                "client ({}): {}{}",
                c.generator,
                c.dir,
                c.modified
                    .as_ref()
                    .map(|(p, t)| format!(", {p} written {}", at(*t)))
                    .unwrap_or_default()
            ));
            if let Some(x) = stale_client(s, c) {
                o = o.evidence(format!("✗ {}", x.1));
                findings.push(x);
            } else {
                o = o.evidence(format!("✓ the client was generated from {}", s.path));
            }
        }
    }
    if let Some(b) = &f.build {
        o = o.evidence(format!("build: {} ({})", b.out, b.why));
        if !b.out_exists {
            o = o.evidence(format!(
                "no compiled output at {} (the backend may run its sources directly)",
                b.out
            ));
        } else {
            let mut stale = Vec::new();
            let mut missing = Vec::new();
            for p in &b.pairs {
                match p.compiled_time {
                    None => missing.push(p.source.clone()),
                    Some(ct) if newer(p.source_time, ct) => stale.push(format!(
                        "{} ({}) is newer than {} ({})",
                        p.source,
                        at(p.source_time),
                        p.compiled,
                        at(ct)
                    )),
                    _ => {}
                }
            }
            for s in &stale {
                o = o.evidence(format!("✗ {s}"));
            }
            for m in &missing {
                o = o.evidence(format!("✗ {m} has no compiled file in {}", b.out));
            }
            if stale.is_empty() && missing.is_empty() {
                o = o.evidence(format!(
                    "✓ {} source(s), none newer than its compiled file",
                    b.pairs.len()
                ));
            } else {
                let first = stale
                    .first()
                    .cloned()
                    .unwrap_or_else(|| format!("{} has no compiled file", missing[0]));
                findings.push((
                    Status::Fail,
                    format!("stale build in {}: {first}", b.out),
                    Fault::StaleBuild {
                        out_dir: b.out.clone(),
                        newer: stale,
                        missing,
                    },
                ));
            }
        }
    }
    if let Some((pid, started)) = f.process {
        o = o.evidence(format!("process {pid} started {}", at(started)));
        let mut loaded: Vec<(String, SystemTime)> = Vec::new();
        if let Some(b) = f.build.as_ref().filter(|b| b.out_exists) {
            loaded.extend(b.newest.clone());
        }
        for c in f.clients.iter().filter(|c| c.exists) {
            loaded.extend(c.modified.clone());
        }
        let after: Vec<String> = loaded
            .iter()
            .filter(|(_, t)| newer(*t, started))
            .map(|(p, t)| {
                format!(
                    "{p} written {} ({} after the process started)",
                    at(*t),
                    later(started, *t)
                )
            })
            .collect();
        for a in &after {
            o = o.evidence(format!("✗ {a}"));
        }
        if let Some(first) = after.first() {
            findings.push((
                Status::Fail,
                format!("the backend (pid {pid}) runs old code: {first}"),
                Fault::StaleProcess {
                    pid,
                    started: at(started),
                    newer: after,
                },
            ));
        } else if !loaded.is_empty() {
            o = o.evidence("✓ the process started after its build and client were written");
        }
    }
    if findings.is_empty() {
        o.summary = "the client, the build and the process are up to date with the project".into();
        return o;
    }
    worst_finding(o, findings, |n| format!("(and {n} more)"))
}

fn observe(loc: &crate::probe::project::Located, p: &Params) -> Facts {
    let rel = |x: &std::path::Path| project::rel(loc, x);
    let mut f = Facts {
        process: loc.process.as_ref().and_then(|r| Some((r.pid, r.started?))),
        ..Facts::default()
    };
    if p.client
        && let Some(src) = layout::schema_source(&loc.dir)
        && let Ok(read) = layout::read_schema(src.clone(), &loc.dir)
    {
        f.schema = Some(SchemaFacts {
            path: rel(&src.path),
            text: read.text.clone(),
            shape: read.schema.shape(),
            modified: src.files.iter().filter_map(|x| files::modified(x)).max(),
        });
        for c in layout::clients(&loc.dir, &read) {
            let stamps: Vec<(String, SystemTime)> = [
                c.copy.clone(),
                c.dir.join("index.js"),
                c.dir.join("package.json"),
            ]
            .iter()
            .filter_map(|x| Some((rel(x), files::modified(x)?)))
            .collect();
            f.clients.push(ClientFacts {
                generator: c.generator.clone(),
                dir: rel(&c.dir),
                exists: c.dir.is_dir(),
                copy: layout::client_schema_text(&c).map(|t| (rel(&c.copy), t)),
                package_name: layout::client_package_name(&c),
                modified: stamps.into_iter().max_by_key(|s| s.1),
            });
        }
    }
    if p.build {
        let b = layout::build(&loc.dir);
        let sources: Vec<files::Stamped> = files::files_with(&b.src, &[".ts"], 5000)
            .into_iter()
            .filter(|s| layout::is_compiled_source(&s.path))
            .collect();
        let pairs = sources
            .iter()
            .filter_map(|s| {
                let c = layout::compiled_of(&b, &s.path)?;
                Some(Pair {
                    source: rel(&s.path),
                    source_time: s.modified,
                    compiled_time: files::modified(&c),
                    compiled: rel(&c),
                })
            })
            .collect();
        let out = files::files_with(&b.out, &[".js", ".mjs", ".cjs"], 20_000);
        f.build = Some(BuildFacts {
            out: rel(&b.out),
            why: b.why.clone(),
            out_exists: b.out.is_dir(),
            pairs,
            newest: files::newest(&out).map(|s| (rel(&s.path), s.modified)),
        });
    }
    f
}

impl Check for BuildFreshness {
    const KIND: &'static str = "build_freshness";
    const HELP: &'static str = "the running backend runs what its project holds: the Prisma client generated from the current schema (content, hash, time), dist/ not older than src/, the process started after both";
    type Params = Params;

    async fn run(p: Params, _ctx: Ctx) -> Observation {
        let loc = match project::locate(p.project.as_deref(), p.process.as_ref()) {
            Ok(l) => l,
            Err(o) => return *o,
        };
        let facts = observe(&loc, &p);
        let pid = loc
            .process
            .as_ref()
            .map(|r| r.pid.to_string())
            .unwrap_or_else(|| "PID".into());
        let o = Observation::pass("")
            .command(format!(
                "cd {} && ls -lt --time-style=full-iso prisma node_modules/.prisma/client dist | head -20; ps -o lstart= -p {pid}",
                loc.dir.display()
            ))
            .evidence(project::project_line(&loc));
        judge(o, &facts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    const SCHEMA: &str =
        "model Message {\n  id String @id\n  type String\n  @@map(\"messages\")\n}\n";
    const OLD: &str =
        "model Message {\n  id String @id\n  messageType String\n  @@map(\"messages\")\n}\n";

    fn t(s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_790_000_000 + s)
    }

    fn fresh() -> Facts {
        Facts {
            schema: Some(SchemaFacts {
                path: "prisma/schema.prisma".into(),
                text: SCHEMA.into(),
                shape: schema::parse(SCHEMA, "s").expect("s").shape(),
                modified: Some(t(0)),
            }),
            clients: vec![ClientFacts {
                generator: "client".into(),
                dir: "node_modules/.prisma/client".into(),
                exists: true,
                copy: Some((
                    "node_modules/.prisma/client/schema.prisma".into(),
                    SCHEMA.into(),
                )),
                package_name: Some(format!(
                    "prisma-client-{}",
                    files::sha256_hex(SCHEMA.as_bytes())
                )),
                modified: Some(("node_modules/.prisma/client/schema.prisma".into(), t(100))),
            }],
            build: Some(BuildFacts {
                out: "dist".into(),
                why: "default".into(),
                out_exists: true,
                pairs: vec![Pair {
                    source: "src/chat/chat.service.ts".into(),
                    source_time: t(50),
                    compiled: "dist/chat/chat.service.js".into(),
                    compiled_time: Some(t(200)),
                }],
                newest: Some(("dist/main.js".into(), t(200))),
            }),
            process: Some((4242, t(300))),
        }
    }

    fn code(o: &Observation) -> Option<&'static str> {
        o.fault.as_ref().map(Fault::cause_code)
    }

    #[test]
    fn a_fresh_project_passes() {
        let o = judge(Observation::pass(""), &fresh());
        assert_eq!(o.status, Status::Pass, "{o:#?}");
        assert!(
            o.evidence
                .iter()
                .any(|e| e.contains("✓ the client was generated"))
        );
    }

    #[test]
    fn a_client_generated_from_another_schema_names_the_field() {
        let mut f = fresh();
        f.clients[0].copy = Some((
            "node_modules/.prisma/client/schema.prisma".into(),
            OLD.into(),
        ));
        let o = judge(Observation::pass(""), &f);
        assert_eq!((o.status, code(&o)), (Status::Fail, Some("stale_client")));
        let Some(Fault::StaleClient {
            how, differences, ..
        }) = &o.fault
        else {
            panic!("{o:?}")
        };
        assert_eq!(how, "content");
        assert!(
            differences
                .iter()
                .any(|d| d.starts_with("Message.messageType: in the client")),
            "{differences:?}"
        );
        // A comment or formatting change is not staleness.
        f.clients[0].copy = Some(("c".into(), format!("// generated\n{SCHEMA}")));
        assert_eq!(judge(Observation::pass(""), &f).status, Status::Pass);
        // Without a copy: the package name's hash, then the times.
        f.clients[0].copy = None;
        f.clients[0].package_name = Some("prisma-client-0123456789abcdef".into());
        let o = judge(Observation::pass(""), &f);
        assert_eq!((o.status, code(&o)), (Status::Warn, Some("stale_client")));
        f.clients[0].package_name = None;
        f.schema.as_mut().expect("s").modified = Some(t(150));
        let o = judge(Observation::pass(""), &f);
        assert!(
            o.summary.contains("older than prisma/schema.prisma"),
            "{}",
            o.summary
        );
    }

    #[test]
    fn sources_newer_than_dist_or_without_a_compiled_file() {
        let mut f = fresh();
        let b = f.build.as_mut().expect("b");
        b.pairs[0].source_time = t(250);
        b.pairs.push(Pair {
            source: "src/chat/reactions.ts".into(),
            source_time: t(10),
            compiled: "dist/chat/reactions.js".into(),
            compiled_time: None,
        });
        let o = judge(Observation::pass(""), &f);
        assert_eq!((o.status, code(&o)), (Status::Fail, Some("stale_build")));
        assert!(
            o.summary.contains("src/chat/chat.service.ts"),
            "{}",
            o.summary
        );
        let Some(Fault::StaleBuild { missing, .. }) = &o.fault else {
            panic!()
        };
        assert_eq!(missing, &["src/chat/reactions.ts"]);
        // No dist at all: nothing to judge.
        let mut f = fresh();
        f.build.as_mut().expect("b").out_exists = false;
        f.process = None;
        assert_eq!(judge(Observation::pass(""), &f).status, Status::Pass);
    }

    #[test]
    fn a_process_older_than_its_build() {
        let mut f = fresh();
        f.process = Some((4242, t(150)));
        let o = judge(Observation::pass(""), &f);
        assert_eq!((o.status, code(&o)), (Status::Fail, Some("stale_process")));
        assert!(o.summary.contains("dist/main.js written"), "{}", o.summary);
        assert!(o.summary.contains("50 s after"), "{}", o.summary);
        // The client first: it is what explains a failing request.
        f.clients[0].copy = Some(("c".into(), OLD.into()));
        let o = judge(Observation::pass(""), &f);
        assert_eq!(code(&o), Some("stale_client"));
        assert!(o.summary.ends_with("(and 1 more)"), "{}", o.summary);
        // Within a second is the same time.
        let mut f = fresh();
        f.process = Some((1, t(200)));
        assert_eq!(judge(Observation::pass(""), &f).status, Status::Pass);
    }
}
