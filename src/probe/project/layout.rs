//! Where a Node + Prisma project keeps things: the schema (package.json's
//! `prisma.schema`, `prisma.config.ts`, `prisma/schema.prisma`, a schema
//! folder, `schema.prisma`), the generated client and its copy of the
//! schema, the TypeScript sources and their compiled output (tsconfig's
//! `rootDir`/`outDir`, default `src` → `dist`).

use super::schema::{self, Schema};
use std::path::{Path, PathBuf};

/// The schema: its path (a file or a folder), its files and why there.
#[derive(Debug, Clone)]
pub struct SchemaSource {
    pub path: PathBuf,
    pub files: Vec<PathBuf>,
    pub why: String,
}

/// The schema read: parsed, and its text (the files concatenated).
#[derive(Debug, Clone)]
pub struct SchemaRead {
    pub source: SchemaSource,
    pub schema: Schema,
    pub text: String,
}

fn package_json(dir: &Path) -> Option<serde_json::Value> {
    serde_json::from_str(&std::fs::read_to_string(dir.join("package.json")).ok()?).ok()
}

/// `schema: "…"` in `prisma.config.ts`.
fn config_ts_schema(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("prisma.config.ts")).ok()?;
    let re = regex::Regex::new(r#"(?m)^\s*schema\s*:\s*['"`]([^'"`]+)['"`]"#).ok()?;
    Some(re.captures(&text)?.get(1)?.as_str().to_string())
}

/// The `.prisma` files of a path: the file, or a folder's files (recursively).
fn prisma_files(p: &Path) -> Vec<PathBuf> {
    if p.is_file() {
        return vec![p.to_path_buf()];
    }
    super::files::files_with(p, &[".prisma"], 500)
        .into_iter()
        .map(|s| s.path)
        .collect()
}

/// Finds the schema as Prisma's CLI does (without `--schema`).
pub fn schema_source(dir: &Path) -> Option<SchemaSource> {
    let mut tried: Vec<(PathBuf, String)> = Vec::new();
    if let Some(s) = package_json(dir)
        .as_ref()
        .and_then(|p| p.pointer("/prisma/schema"))
        .and_then(|v| v.as_str())
    {
        tried.push((dir.join(s), "package.json's prisma.schema".to_string()));
    }
    if let Some(s) = config_ts_schema(dir) {
        tried.push((dir.join(&s), "prisma.config.ts's schema".to_string()));
    }
    tried.push((
        dir.join("prisma/schema.prisma"),
        "the default prisma/schema.prisma".into(),
    ));
    tried.push((
        dir.join("prisma/schema"),
        "the schema folder prisma/schema".into(),
    ));
    tried.push((
        dir.join("schema.prisma"),
        "schema.prisma at the project's root".into(),
    ));
    tried.into_iter().find_map(|(p, why)| {
        let files = prisma_files(&p);
        (!files.is_empty()).then_some(SchemaSource {
            path: p,
            files,
            why,
        })
    })
}

/// Reads and parses a schema source; files are named relative to `root`
/// (the project) in errors and in each model's `at`.
pub fn read_schema(src: SchemaSource, root: &Path) -> Result<SchemaRead, String> {
    let mut all = Schema::default();
    let mut text = String::new();
    for f in &src.files {
        let t =
            std::fs::read_to_string(f).map_err(|e| format!("cannot read {}: {e}", f.display()))?;
        let name = f.strip_prefix(root).unwrap_or(f).display().to_string();
        let s = schema::parse(&t, &name).map_err(|e| e.to_string())?;
        all.merge(s);
        text.push_str(&t);
    }
    Ok(SchemaRead {
        source: src,
        schema: all,
        text,
    })
}

/// The folder the schema's relative paths start from (`output`, migrations).
pub fn schema_dir(src: &SchemaSource) -> PathBuf {
    if src.path.is_dir() {
        src.path.clone()
    } else {
        src.path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."))
    }
}

/// `prisma/migrations` beside the schema (for a folder, in it or beside it).
pub fn migrations_dir(src: &SchemaSource) -> PathBuf {
    let d = schema_dir(src);
    if d.join("migrations").is_dir() || !src.path.is_dir() {
        return d.join("migrations");
    }
    d.parent().map(|p| p.join("migrations")).unwrap_or(d)
}

/// A generated client: where, and what it was generated from.
#[derive(Debug, Clone, PartialEq)]
pub struct Client {
    pub generator: String,
    pub dir: PathBuf,
    /// The schema copy (`schema.prisma` beside the client), or the
    /// `prisma-client` generator's `internal/class.ts`.
    pub copy: PathBuf,
    /// Whether `copy` is a `class.ts` holding an `inlineSchema` string.
    pub inline: bool,
}

/// The clients a schema's generators write.
pub fn clients(project: &Path, read: &SchemaRead) -> Vec<Client> {
    let base = schema_dir(&read.source);
    let mut out = Vec::new();
    for g in &read.schema.generators {
        match g.provider.as_str() {
            "prisma-client-js" => {
                let dir = match &g.output {
                    Some(o) => base.join(o),
                    None => project.join("node_modules/.prisma/client"),
                };
                out.push(Client {
                    generator: g.name.clone(),
                    copy: dir.join("schema.prisma"),
                    dir,
                    inline: false,
                });
            }
            "prisma-client" => {
                if let Some(o) = &g.output {
                    let dir = base.join(o);
                    out.push(Client {
                        generator: g.name.clone(),
                        copy: dir.join("internal/class.ts"),
                        dir,
                        inline: true,
                    });
                }
            }
            _ => {}
        }
    }
    out
}

/// The schema text a client was generated from: the copy, or the
/// `inlineSchema` string of the newer generator's `class.ts`.
pub fn client_schema_text(c: &Client) -> Option<String> {
    let text = std::fs::read_to_string(&c.copy).ok()?;
    if !c.inline {
        return Some(text);
    }
    let at = text.find("inlineSchema")?;
    let rest = &text[at + "inlineSchema".len()..];
    let rest = &rest[rest.find(':')? + 1..];
    let q = rest.find(['"', '\''])?;
    if rest.as_bytes()[q] == b'\'' {
        return None;
    }
    serde_json::Deserializer::from_str(&rest[q..])
        .into_iter::<String>()
        .next()?
        .ok()
}

/// The name of the client's `package.json` (`prisma-client-<sha256>`).
pub fn client_package_name(c: &Client) -> Option<String> {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(c.dir.join("package.json")).ok()?).ok()?;
    v.get("name")?.as_str().map(str::to_string)
}

/// JSON with comments and trailing commas (tsconfig) as plain JSON.
pub fn jsonc(text: &str) -> Option<serde_json::Value> {
    let mut out = String::with_capacity(text.len());
    let b: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut in_str = false;
    while i < b.len() {
        let c = b[i];
        if in_str {
            out.push(c);
            if c == '\\' && i + 1 < b.len() {
                out.push(b[i + 1]);
                i += 2;
                continue;
            }
            if c == '"' {
                in_str = false;
            }
            i += 1;
            continue;
        }
        match (c, b.get(i + 1)) {
            ('"', _) => {
                in_str = true;
                out.push(c);
            }
            ('/', Some('/')) => {
                while i < b.len() && b[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            ('/', Some('*')) => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == '*' && b[i + 1] == '/') {
                    i += 1;
                }
                i += 2;
                continue;
            }
            _ => out.push(c),
        }
        i += 1;
    }
    let re = regex::Regex::new(r",(\s*[}\]])").ok()?;
    serde_json::from_str(&re.replace_all(&out, "$1")).ok()
}

/// TypeScript's source root and output folder, and where they came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Build {
    pub src: PathBuf,
    pub out: PathBuf,
    pub why: String,
}

/// Reads `tsconfig.build.json` (Nest's) or `tsconfig.json`: `outDir`
/// (default `dist`) and `rootDir` (default `src`).
pub fn build(project: &Path) -> Build {
    for name in ["tsconfig.build.json", "tsconfig.json"] {
        let Some(v) = std::fs::read_to_string(project.join(name))
            .ok()
            .and_then(|t| jsonc(&t))
        else {
            continue;
        };
        let opt = |k: &str| {
            v.pointer(&format!("/compilerOptions/{k}"))
                .and_then(|x| x.as_str())
                .map(|s| s.trim_start_matches("./").to_string())
        };
        if let Some(out) = opt("outDir") {
            let root = opt("rootDir").unwrap_or_else(|| "src".into());
            return Build {
                src: project.join(&root),
                out: project.join(&out),
                why: format!("{name}: outDir {out}, sources in {root}"),
            };
        }
    }
    Build {
        src: project.join("src"),
        out: project.join("dist"),
        why: "no outDir in tsconfig: the default src → dist".into(),
    }
}

/// The compiled file a TypeScript source should have: `src/a/b.ts` →
/// `dist/a/b.js` (or `dist/src/a/b.js` when tsc put the tree under it).
pub fn compiled_of(b: &Build, source: &Path) -> Option<PathBuf> {
    let rel = source.strip_prefix(&b.src).ok()?;
    let js = rel.with_extension("js");
    let nested = b
        .src
        .file_name()
        .map(|n| b.out.join(n))
        .filter(|p| p.is_dir() && !b.out.join(&js).exists());
    Some(match nested {
        Some(n) => n.join(js),
        None => b.out.join(js),
    })
}

/// Whether a `.ts` file is compiled to output (not a declaration or test).
pub fn is_compiled_source(p: &Path) -> bool {
    let n = p
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    n.ends_with(".ts")
        && !n.ends_with(".d.ts")
        && !n.ends_with(".spec.ts")
        && !n.ends_with(".test.ts")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("chatops-layout-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("mkdir");
        d
    }

    #[test]
    fn schema_path_precedence() {
        let d = tmp("schema");
        std::fs::create_dir_all(d.join("prisma")).expect("mkdir");
        std::fs::write(
            d.join("prisma/schema.prisma"),
            "model A {\n id Int @id\n}\n",
        )
        .expect("w");
        let s = schema_source(&d).expect("default");
        assert!(s.why.contains("default"), "{}", s.why);
        std::fs::create_dir_all(d.join("db/schema")).expect("mkdir");
        std::fs::write(d.join("db/schema/a.prisma"), "model A {\n id Int @id\n}\n").expect("w");
        std::fs::write(d.join("db/schema/b.prisma"), "model B {\n id Int @id\n}\n").expect("w");
        std::fs::write(
            d.join("package.json"),
            r#"{"prisma": {"schema": "db/schema"}}"#,
        )
        .expect("w");
        let s = schema_source(&d).expect("package.json");
        assert!(s.why.contains("package.json"), "{}", s.why);
        assert_eq!(s.files.len(), 2);
        let r = read_schema(s, &d).expect("reads");
        assert_eq!(r.schema.models.len(), 2);
        assert_eq!(migrations_dir(&r.source), d.join("db/migrations"));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn tsconfig_with_comments_and_the_compiled_path() {
        let d = tmp("ts");
        std::fs::write(
            d.join("tsconfig.json"),
            "{\n  // Nest's defaults\n  \"compilerOptions\": {\n    \"outDir\": \"./build\", /* here */\n    \"baseUrl\": \"./\",\n  },\n}\n",
        )
        .expect("w");
        let b = build(&d);
        assert_eq!(b.out, d.join("build"));
        assert_eq!(b.src, d.join("src"));
        assert_eq!(
            compiled_of(&b, &d.join("src/chat/chat.service.ts")),
            Some(d.join("build/chat/chat.service.js"))
        );
        std::fs::create_dir_all(d.join("build/src")).expect("mkdir");
        assert_eq!(
            compiled_of(&b, &d.join("src/main.ts")),
            Some(d.join("build/src/main.js"))
        );
        assert!(is_compiled_source(Path::new("a/b.ts")));
        assert!(!is_compiled_source(Path::new("a/b.spec.ts")));
        assert!(!is_compiled_source(Path::new("a/b.d.ts")));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn the_new_generator_s_inline_schema() {
        let d = tmp("inline");
        std::fs::create_dir_all(d.join("gen/internal")).expect("mkdir");
        std::fs::write(
            d.join("gen/internal/class.ts"),
            "const config = {\n  \"inlineSchema\": \"model A {\\n  id Int @id\\n}\\n\",\n}\n",
        )
        .expect("w");
        let c = Client {
            generator: "client".into(),
            dir: d.join("gen"),
            copy: d.join("gen/internal/class.ts"),
            inline: true,
        };
        assert_eq!(
            client_schema_text(&c).as_deref(),
            Some("model A {\n  id Int @id\n}\n")
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}
