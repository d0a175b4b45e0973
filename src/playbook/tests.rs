//! The loader with fake kinds: what a playbook becomes, and every kind of
//! mistake reported with its place, path and suggestion.

use super::*;
use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::DeserializeOwned;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ProbeParams {
    port: u16,
    #[serde(default)]
    expect: Option<Expect>,
    #[serde(default)]
    request: Option<Request>,
    #[serde(default)]
    got: Option<serde_json::Value>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum Expect {
    Listening,
    Free,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Request {
    url: String,
    #[serde(default)]
    method: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct QueryParams {
    query: String,
    #[serde(default)]
    params: Vec<serde_json::Value>,
}

struct Fake<P> {
    name: &'static str,
    fields: &'static [&'static str],
    literal: &'static [&'static str],
    params: std::marker::PhantomData<fn() -> P>,
}

impl<P: DeserializeOwned> KindSchema for Fake<P> {
    fn name(&self) -> &'static str {
        self.name
    }
    fn help(&self) -> &'static str {
        "a test double"
    }
    fn schema(&self) -> serde_json::Value {
        serde_json::json!({"type": "object"})
    }
    fn fields(&self) -> Vec<FieldDoc> {
        self.fields
            .iter()
            .map(|f| FieldDoc {
                name: f.to_string(),
                ty: "any".into(),
                required: false,
                help: String::new(),
            })
            .collect()
    }
    fn validate(&self, params: &serde_json::Value) -> Result<(), ParamError> {
        located::decode_json::<P>(params)
            .map(|_| ())
            .map_err(|e| ParamError {
                path: e.path,
                message: e.message,
            })
    }
    fn literal_fields(&self) -> &'static [&'static str] {
        self.literal
    }
}

struct Kinds(Vec<Box<dyn KindSchema>>);

impl KindSet for Kinds {
    fn find_kind(&self, name: &str) -> Option<&dyn KindSchema> {
        self.0.iter().find(|k| k.name() == name).map(|k| k.as_ref())
    }
    fn kind_schemas(&self) -> Vec<&dyn KindSchema> {
        self.0.iter().map(|k| k.as_ref()).collect()
    }
}

fn kinds() -> Kinds {
    Kinds(vec![
        Box::new(Fake::<ProbeParams> {
            name: "probe",
            fields: &["port", "expect", "request", "got"],
            literal: &[],
            params: std::marker::PhantomData,
        }),
        Box::new(Fake::<QueryParams> {
            name: "query",
            fields: &["query", "params"],
            literal: &["query"],
            params: std::marker::PhantomData,
        }),
    ])
}

fn load_with(text: &str, opts: LoadOptions) -> Result<Playbook, LoadError> {
    let src = Source::Text {
        name: "dir/test.yaml".into(),
        text: text.into(),
    };
    load(&src, &opts, &kinds())
}

fn options() -> LoadOptions {
    LoadOptions {
        env: Box::new(|n| (n == "HOME_URL").then(|| "http://10.0.0.1:3001".to_string())),
        ..Default::default()
    }
}

fn ok(text: &str) -> Playbook {
    match load_with(text, options()) {
        Ok(pb) => pb,
        Err(e) => panic!("should load: {e}"),
    }
}

/// The error's first line: `file:line:col: path: message (did you mean …?)`.
fn err(text: &str) -> String {
    match load_with(text, options()) {
        Ok(_) => panic!("should not load:\n{text}"),
        Err(e) => e.to_string().lines().next().unwrap_or_default().to_string(),
    }
}

const H: &str = "phases:\n  - name: one\n    checks:\n";

#[test]
fn a_playbook_with_its_defaults() {
    let pb = ok(
        "vars:\n  b: x\n  a: \"${vars.b}y\"\n  num: 5\ntarget:\n  base_url: ${env.HOME_URL}\nsettings: {concurrency: 2, deadline: 1m}\nphases:\n  - checks:\n      - {id: src, kind: probe, port: 1, title: 5, retries: 3, interval: 2, timeout: 1.5, needs: base}\n      - {id: base, kind: probe, port: 2}\n      - {id: other, kind: probe, port: \"${vars.num}\", got: \"${checks.src.x}\"}\n  - name: Two\n",
    );
    assert_eq!(pb.name, "test", "named after the file");
    assert_eq!(pb.vars["a"], "xy", "a var may use the ones above it");
    assert_eq!(pb.vars["num"], "5");
    assert!(pb.vars["run_id"].starts_with("chatops-"));
    assert_eq!(pb.target["base_host"], "10.0.0.1");
    assert_eq!(pb.target["base_port"], "3001");
    assert_eq!(pb.settings.concurrency, 2);
    assert_eq!(pb.settings.deadline, Duration::from_secs(60));
    assert_eq!(pb.settings.timeout, Duration::from_secs(5));
    assert_eq!(pb.phases[0].name, "Phase 1");
    assert_eq!(pb.phases[1].name, "Two");
    let src = &pb.phases[0].checks[0];
    assert_eq!(src.title.as_deref(), Some("5"));
    assert_eq!(src.retries, 3);
    assert_eq!(src.interval, Duration::from_secs(2));
    assert_eq!(src.timeout, Duration::from_millis(1500));
    assert_eq!(src.needs, vec!["base".to_string()]);
    assert_eq!((src.loc.line, src.loc.column), (10, 9));
    let other = &pb.phases[0].checks[2];
    assert_eq!(other.params["port"], 5, "a whole reference keeps its type");
    assert_eq!(other.needs, vec!["src".to_string()], "a capture is a need");
    assert_eq!(other.timeout, Duration::from_secs(5));
}

#[test]
fn the_command_line_wins() {
    let opts = LoadOptions {
        vars: vec![("a".into(), "cli".into())],
        target: vec![("base_url".into(), "http://localhost:1".into())],
        allow_remote: true,
        ..options()
    };
    let pb = load_with(
        "vars: {a: file}\ntarget:\n  base_url: [not, a, string]\nphases:\n  - name: one\n",
        opts,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pb.vars["a"], "cli");
    assert_eq!(pb.target["base_url"], "http://localhost:1");
    assert!(pb.settings.allow_remote);
}

#[test]
fn mistakes_in_the_skeleton_are_located() {
    let cases: &[(&str, &str)] = &[
        (
            "",
            "dir/test.yaml:1:1: the playbook is empty; expected a mapping with `name`, `target`, `vars` and `phases`",
        ),
        (
            "- a\n",
            "dir/test.yaml:1:1: expected a mapping with `name`, `target`, `vars` and `phases` at the top, found a list",
        ),
        (
            "name: x\nphase: []\n",
            "dir/test.yaml:2:1: phase: unknown field `phase` in a playbook; expected one of: name, description, target, vars, settings, phases (did you mean `phases`?)",
        ),
        (
            "zeta: 1\nalpha: 2\nphases: [{name: a}]\n",
            "dir/test.yaml:1:1: zeta: unknown field `zeta` in a playbook; expected one of: name, description, target, vars, settings, phases",
        ),
        (
            "name: 5\nphases: [{name: a}]\n",
            "dir/test.yaml:1:7: name: expected a string, found a number",
        ),
        (
            "vars: [1]\nphases: [{name: a}]\n",
            "dir/test.yaml:1:7: vars: expected a mapping of names to values, found a list",
        ),
        (
            "vars:\nphases: [{name: a}]\n",
            "dir/test.yaml:1:5: vars: expected a mapping of names to values, found null",
        ),
        (
            "vars:\n  a: [1]\nphases: [{name: a}]\n",
            "dir/test.yaml:2:6: vars.a: expected a string, found a list",
        ),
        (
            "vars:\n  a: \"${vars.b}\"\n  b: x\nphases: [{name: a}]\n",
            "dir/test.yaml:2:6: vars.a: undefined variable `vars.b`: define it under `vars:` or pass --var b=VALUE",
        ),
        (
            "target: [1]\nphases: [{name: a}]\n",
            "dir/test.yaml:1:9: target: expected a mapping such as `base_url: http://localhost:3001`, found a list",
        ),
        (
            "settings: [1]\nphases: [{name: a}]\n",
            "dir/test.yaml:1:11: settings: expected a mapping, found a list",
        ),
        (
            "settings:\n  concurency: 3\nphases: [{name: a}]\n",
            "dir/test.yaml:2:3: settings.concurency: unknown field `concurency` in settings; expected one of: concurrency, deadline, timeout, allow_remote (did you mean `concurrency`?)",
        ),
        (
            "settings: {concurrency: 0}\nphases: [{name: a}]\n",
            "dir/test.yaml:1:25: settings.concurrency: expected a whole number from 1 to 256",
        ),
        (
            "settings: {deadline: [1]}\nphases: [{name: a}]\n",
            "dir/test.yaml:1:22: settings.deadline: expected a duration such as 5s or 500ms, found a list",
        ),
        (
            "settings: {timeout: 5y}\nphases: [{name: a}]\n",
            "dir/test.yaml:1:21: settings.timeout: unknown duration unit `y` in `5y`: use ms, s, m or h",
        ),
        (
            "settings: {allow_remote: \"yes\"}\nphases: [{name: a}]\n",
            "dir/test.yaml:1:26: settings.allow_remote: expected true or false, found a string",
        ),
        (
            "name: x\n",
            "dir/test.yaml:1:1: phases: missing `phases`: a playbook needs at least one phase with checks",
        ),
        (
            "phases: {a: 1}\n",
            "dir/test.yaml:1:9: phases: expected a list of phases, found a mapping",
        ),
        (
            "phases: []\n",
            "dir/test.yaml:1:9: phases: the list of phases is empty",
        ),
        (
            "phases: [x]\n",
            "dir/test.yaml:1:10: phases[0]: expected a phase: a mapping with `name` and `checks`, found a string",
        ),
        (
            "phases:\n  - name: a\n    chekcs: []\n",
            "dir/test.yaml:3:5: phases[0].chekcs: unknown field `chekcs` in a phase; expected one of: name, description, checks (did you mean `checks`?)",
        ),
        (
            "phases:\n  - name: [a]\n",
            "dir/test.yaml:2:11: phases[0].name: expected a string, found a list",
        ),
        (
            "phases:\n  - name: a\n    checks: {a: 1}\n",
            "dir/test.yaml:3:13: phases[0].checks: expected a list of checks, found a mapping",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(&err(text), want, "for:\n{text}");
    }
}

#[test]
fn mistakes_in_checks_are_located() {
    let cases: &[(&str, &str)] = &[
        (
            "      - x\n",
            "dir/test.yaml:4:9: phases[0].checks[0]: expected a check: a mapping with `id` and `kind`, found a string",
        ),
        (
            "      - id: a\n",
            "dir/test.yaml:4:9: phases[0].checks[0].kind: missing `kind`; one of: probe, query",
        ),
        (
            "      - id: a\n        kind: [a]\n",
            "dir/test.yaml:5:15: phases[0].checks[0].kind: expected a string, found a list",
        ),
        (
            "      - id: a\n        kind: prob\n",
            "dir/test.yaml:5:15: phases[0].checks[0].kind: unknown check kind `prob`; known kinds: probe, query (did you mean `probe`?)",
        ),
        (
            "      - kind: probe\n",
            "dir/test.yaml:4:9: phases[0].checks[0].id: missing `id`: every check needs a unique id",
        ),
        (
            "      - id: a b\n        kind: probe\n",
            "dir/test.yaml:4:13: phases[0].checks[0].id: `a b` is not a valid id: use letters, digits, `_` and `-`",
        ),
        (
            "      - id: a\n        kind: probe\n        port: 1\n        title: [x]\n",
            "dir/test.yaml:7:16: phases[0].checks[0].title: expected a string, found a list",
        ),
        (
            "      - id: a\n        kind: probe\n        port: 1\n        timeout: soon\n",
            "dir/test.yaml:7:18: phases[0].checks[0].timeout: `soon` is not a duration: write 500ms, 5s, 2m or 1h",
        ),
        (
            "      - id: a\n        kind: probe\n        port: 1\n        retries: 2000\n",
            "dir/test.yaml:7:18: phases[0].checks[0].retries: expected a whole number from 0 to 1000",
        ),
        (
            "      - id: a\n        kind: probe\n        port: 1\n        needs: {a: 1}\n",
            "dir/test.yaml:7:16: phases[0].checks[0].needs: expected a check id or a list of ids, found a mapping",
        ),
        (
            "      - id: a\n        kind: probe\n        port: 1\n        needs: [1]\n",
            "dir/test.yaml:7:17: phases[0].checks[0].needs[0]: expected a string, found a number",
        ),
        (
            "      - id: a\n        kind: probe\n        port: 1\n        expcet: listening\n",
            "dir/test.yaml:7:9: phases[0].checks[0].expcet: unknown field `expcet` for a `probe` check; its fields: port, expect, request, got (did you mean `expect`?)",
        ),
        (
            "      - id: a\n        kind: probe\n        port: 1\n        retires: 2\n",
            "dir/test.yaml:7:9: phases[0].checks[0].retires: unknown field `retires` for a `probe` check; its fields: port, expect, request, got (did you mean `retries`?)",
        ),
        (
            "      - id: a\n        kind: probe\n        port: \"x\"\n",
            "dir/test.yaml:6:9: phases[0].checks[0].port: invalid type: string \"x\", expected a whole number from 0 to 65535",
        ),
        (
            "      - id: a\n        kind: probe\n        port: 1\n        expect: listenin\n",
            "dir/test.yaml:7:9: phases[0].checks[0].expect: unknown variant `listenin`, expected `listening` or `free` (did you mean `listening`?)",
        ),
        (
            "      - id: a\n        kind: probe\n        expect: free\n",
            "dir/test.yaml:4:9: phases[0].checks[0]: missing field `port`",
        ),
        (
            "      - id: a\n        kind: probe\n        port: 1\n        request:\n          urll: http://x/\n",
            "dir/test.yaml:8:17: phases[0].checks[0].request.urll: unknown field `urll`, expected `url` or `method` (did you mean `url`?)",
        ),
        (
            "      - id: a\n        kind: probe\n        port: 1\n        request:\n          url: \"http://x/${vars.nope}\"\n",
            "dir/test.yaml:8:16: phases[0].checks[0].request.url: undefined variable `vars.nope`: define it under `vars:` or pass --var nope=VALUE",
        ),
        (
            "      - id: a\n        kind: query\n        query: \"select ${vars.run_id}\"\n",
            "dir/test.yaml:6:9: phases[0].checks[0].query: `${…}` is not allowed in `query`: an interpolated value would be spliced into the SQL (did you mean `write $1, $2, … in the query and put the values in `params: [\"${vars.x}\"]`; they are bound, never spliced`?)",
        ),
        (
            "      - {id: a, kind: probe, port: 1, needs: [bb]}\n      - {id: b, kind: probe, port: 1}\n",
            "dir/test.yaml:4:9: a.needs: check `a` needs `bb`, which no check has as its id (did you mean `b`?)",
        ),
        (
            "      - {id: a, kind: probe, port: 1, needs: a}\n",
            "dir/test.yaml:4:9: a.needs: check `a` needs itself",
        ),
        (
            "      - {id: a, kind: probe, port: 1, needs: [b]}\n      - {id: b, kind: probe, port: 1, needs: [c]}\n      - {id: c, kind: probe, port: 1, needs: [a]}\n",
            "dir/test.yaml:4:9: a.needs: dependency cycle: a → b → c → a",
        ),
        (
            "      - {id: a, kind: probe, port: 1}\n      - {id: a, kind: probe, port: 2}\n",
            "dir/test.yaml:5:14: phases[0].checks[1].id: duplicate check id `a` (first defined at dir/test.yaml:4)",
        ),
        (
            "      - include: [a]\n",
            "dir/test.yaml:4:18: phases[0].checks[0].include: expected a string, found a list",
        ),
        (
            "      - include: chatops:checks/nope.yaml\n",
            "dir/test.yaml:4:18: phases[0].checks[0].include: cannot include `checks/nope.yaml`: no such embedded file `checks/nope.yaml`",
        ),
    ];
    for (checks, want) in cases {
        let text = format!("{H}{checks}");
        assert_eq!(&err(&text), want, "for:\n{text}");
    }
}

#[test]
fn a_capture_waits_for_its_type_check() {
    // `port` is a number once the capture arrives; at load time it is text.
    let pb = ok(&format!(
        "{H}      - {{id: s, kind: probe, port: 1}}\n      - {{id: u, kind: probe, port: \"${{checks.s.port}}\"}}\n"
    ));
    assert_eq!(pb.phases[0].checks[1].needs, vec!["s".to_string()]);
}

#[test]
fn the_snippet_points_at_the_place() {
    let e = load_with("name: x\nphase: []\n", options()).expect_err("typo");
    let s = e.to_string();
    assert!(s.contains("\n     2 | phase: []\n       | ^"), "{s}");
}
