//! Issue 11 §2, property tests over public entry points (cases:
//! PROPTEST_CASES, 32 here by default; README "Property tests" has the long
//! run): the playbook and plan loaders given arbitrary bytes and
//! well-formed YAML of any shape give a playbook or a located error, never a
//! panic, within a time bound; a secret placed in a playbook's URL, header,
//! variable, capture or an error answer appears in no report format.

use chatops::support::signals::CancellationToken;
use proptest::prelude::*;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

fn config(default: u32) -> ProptestConfig {
    let mut c = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = default;
    }
    c.failure_persistence = None;
    c
}

/// Far above what a loader takes (milliseconds), far below a hang.
const BOUND: Duration = Duration::from_secs(5);

/// Words the loaders know, so random shapes reach deep into them.
const WORDS: &[&str] = &[
    "name",
    "phases",
    "checks",
    "id",
    "kind",
    "http",
    "port",
    "sql",
    "url",
    "request",
    "expect",
    "status",
    "needs",
    "include",
    "vars",
    "target",
    "settings",
    "timeout",
    "mix",
    "stages",
    "vus",
    "rate",
    "duration",
    "model",
    "open",
    "closed",
    "weight",
    "think_time",
    "capture",
    "${vars.x}",
    "${checks.a.b}",
    "$${",
    "10s",
    "-1",
    "1e99",
    "",
];

fn yaml_value() -> impl Strategy<Value = serde_json::Value> {
    let word = prop::sample::select(WORDS).prop_map(serde_json::Value::from);
    let leaf = prop_oneof![
        word.clone(),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        any::<bool>().prop_map(serde_json::Value::from),
        Just(serde_json::Value::Null),
        "\\PC{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            prop::collection::btree_map(prop::sample::select(WORDS), inner, 0..6).prop_map(|m| {
                serde_json::Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

/// Loads `text` both ways; checks the located error or the result.
fn load_both(text: &str) -> Result<(), TestCaseError> {
    let t = Instant::now();
    let src = chatops::playbook::Source::Text {
        name: "prop.yaml".into(),
        text: text.to_string(),
    };
    let opts = chatops::playbook::LoadOptions {
        env: Box::new(|_| None),
        ..Default::default()
    };
    if let Err(e) = chatops::playbook::load(&src, &opts, chatops::checks::registry()) {
        prop_assert_eq!(&e.file, "prop.yaml");
        prop_assert!(!e.message.is_empty());
        if let Some(l) = e.loc {
            prop_assert!(
                l.line >= 1 && l.line as usize <= text.lines().count() + 1,
                "{e}"
            );
        }
    }
    if let Err(e) = chatops::load::plan::parse(text, "plan.yaml") {
        prop_assert_eq!(&e.file, "plan.yaml");
        prop_assert!(!e.message.is_empty());
    }
    prop_assert!(t.elapsed() < BOUND, "took {:?}", t.elapsed());
    Ok(())
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn loaders_take_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        load_both(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn loaders_take_yaml_of_any_shape(v in yaml_value(), wrap in 0..3u8) {
        // JSON is YAML; wrapped as a playbook's phases or a plan's mix so
        // that the shape errors are deep ones too.
        let v = match wrap {
            0 => v,
            1 => serde_json::json!({"name": "p", "phases": [{"name": "a", "checks": [v]}]}),
            _ => serde_json::json!({"name": "p", "mix": [v], "stages": [{"name": "s", "vus": 1, "duration": "1s"}]}),
        };
        load_both(&serde_json::to_string_pretty(&v).map_err(|e| TestCaseError::fail(e.to_string()))?)?;
    }
}

/// A loopback server that echoes every request back: `/ok` as 200 JSON
/// (`{"echo": "<request>"}`, captured by the playbook), anything else as a
/// 500 whose body is the request (an error answer the report explains).
fn echo_server() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let mut req = Vec::new();
                let mut b = [0u8; 4096];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut b) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&b[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&req).into_owned();
                let (status, body) = if text.starts_with("GET /ok") {
                    ("200 OK", serde_json::json!({ "echo": text }).to_string())
                } else {
                    ("500 Internal Server Error", text)
                };
                let _ = write!(
                    s,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    port
}

fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).expect("string")
}

proptest! {
    #![proptest_config(config(12))]

    #[test]
    fn a_secret_anywhere_appears_in_no_report_format(
        secret in "[A-Za-z0-9]{8}[A-Za-z0-9+&%@:/?= ~_.!*'-]{4,16}",
    ) {
        let port = echo_server();
        let closed = chatops::sandbox::free_port();
        let enc = chatops::support::percent::encode(&secret);
        let y = format!(
            "name: secrets
target:
  base_url: http://127.0.0.1:{port}
  database_url: {db}
vars:
  api_token: {tok}
phases:
  - name: All
    checks:
      - {{id: login, kind: pg_connect, url: \"${{target.database_url}}\", timeout: 2s}}
      - id: ok
        kind: http
        request:
          url: \"${{target.base_url}}/ok\"
          headers: {{Authorization: {bearer}, X-Api-Key: \"${{vars.api_token}}\"}}
        capture: {{echo: json.echo}}
      - id: fails
        kind: http
        request:
          url: \"${{target.base_url}}/fail?key=${{vars.api_token}}\"
          headers: {{Authorization: {bearer}}}
      - id: uses_capture
        kind: http
        request: {{url: \"${{target.base_url}}/again\", headers: {{X-Echo: \"${{checks.ok.echo}}\"}}}}
",
            db = yaml_str(&format!("postgresql://chat:{enc}@127.0.0.1:{closed}/chat_db")),
            tok = yaml_str(&secret),
            bearer = yaml_str(&format!("Bearer {secret}")),
        );
        let dir = tempdir();
        let path = dir.join("secrets.yaml");
        std::fs::write(&path, &y).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let target = chatops::session::Target {
            playbook: Some(path),
            ..Default::default()
        };
        let rt = crate::common::runtime();
        let s = rt
            .block_on(chatops::session::run(&target, CancellationToken::new()))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        // The secret did reach the server and come back: a pass with a
        // capture, and a 500 whose body (the request) the report explains.
        let status = |id: &str| {
            s.report.checks.iter().find(|c| c.id == id).map(|c| c.status.as_str())
        };
        prop_assert_eq!(status("ok"), Some("pass"));
        prop_assert_eq!(status("fails"), Some("fail"));
        prop_assert_eq!(status("login"), Some("fail"));
        prop_assert_eq!(status("uses_capture"), Some("fail"));
        let style = chatops::report::Style { color: false, verbose: true, quiet: false };
        use chatops::report::Format;
        for f in [Format::Human, Format::Json, Format::Markdown, Format::Junit] {
            let out = chatops::report::render(&s.report, f, &style);
            prop_assert!(out.contains("***"), "{f:?}: no redaction marks:\n{out}");
            for form in [secret.as_str(), enc.as_str()] {
                prop_assert!(!out.contains(form), "{f:?} shows `{form}`:\n{out}");
            }
        }
    }
}

fn tempdir() -> std::path::PathBuf {
    let d = crate::common::scratch_dir().join(crate::common::unique("props"));
    std::fs::create_dir_all(&d).expect("scratch dir");
    d
}
