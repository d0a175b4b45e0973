//! Every malformed playbook gets a located error and exit 2, never a panic.

use crate::common::{output_within, scratch_dir};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

fn tmp(name: &str, content: &[u8]) -> PathBuf {
    let dir = scratch_dir().join("errors");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

/// Runs `chatops validate -p FILE`, returns (exit code, stderr). A file
/// that makes the loader hang (an alias bomb, say) fails the test after a
/// minute instead of hanging the suite.
fn validate(p: &PathBuf) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_chatops"));
    cmd.args(["validate", "-p"]).arg(p);
    let what = format!("chatops validate -p {}", p.display());
    let out = output_within(cmd, Duration::from_secs(60), &what);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains("panicked"), "panic on {}: {err}", p.display());
    (out.status.code().unwrap_or(-1), err)
}

fn expect_error(name: &str, content: &[u8], needles: &[&str]) -> String {
    let p = tmp(name, content);
    let (code, err) = validate(&p);
    assert_eq!(code, 2, "{name}: {err}");
    assert!(
        err.contains(name),
        "{name}: error must name the file: {err}"
    );
    for n in needles {
        assert!(err.contains(n), "{name}: expected {n:?} in: {err}");
    }
    err
}

#[test]
fn empty_file() {
    expect_error("empty.yaml", b"", &["empty.yaml:1:1", "empty"]);
}

#[test]
fn list_at_root() {
    expect_error("list.yaml", b"- a\n- b\n", &[":1:1", "found a list"]);
}

#[test]
fn tabs() {
    expect_error(
        "tabs.yaml",
        b"name: x\nphases:\n\t- name: a\n",
        &["tabs.yaml:3:", "tab"],
    );
}

#[test]
fn unclosed_quote() {
    expect_error(
        "quote.yaml",
        br#"name: "x
phases: []
"#,
        &["quote.yaml:1:7", "unclosed quote"],
    );
}

#[test]
fn duplicate_keys() {
    expect_error(
        "dup.yaml",
        br#"name: x
name: y
phases: []
"#,
        &["dup.yaml:2:1", "duplicate key `name`"],
    );
}

#[test]
fn binary_garbage() {
    let mut g = vec![0x89, b'P', b'N', b'G', 0, 0xff, 0xfe];
    g.extend((0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    expect_error("garbage.yaml", &g, &["garbage.yaml:1:", "binary"]);
}

#[test]
fn alias_bomb() {
    let mut s = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for i in 1..10u8 {
        let (n, p) = ((b'a' + i) as char, (b'a' + i - 1) as char);
        s.push_str(&format!(
            "{n}: &{n} [{}]\n",
            vec![format!("*{p}"); 9].join(",")
        ));
    }
    let p = tmp("bomb.yaml", s.as_bytes());
    let (code, err) = validate(&p);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("bomb.yaml:") && err.contains("alias bomb"),
        "{err}"
    );
}

#[test]
fn deep_nesting() {
    let s = format!("{}{}\n", "[".repeat(20_000), "]".repeat(20_000));
    let p = tmp("deep.yaml", s.as_bytes());
    let (code, err) = validate(&p);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("deep.yaml:1:") && err.contains("nesting deeper"),
        "{err}"
    );
}

#[test]
fn deep_block_nesting() {
    // Block-style nesting, 200 levels (deeper files grow quadratically).
    let s: String = (0..200)
        .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
        .collect();
    expect_error(
        "deepblock.yaml",
        s.as_bytes(),
        &["deepblock.yaml:", "nesting deeper"],
    );
}

#[test]
fn forty_megabytes() {
    let line = format!("  v: \"{}\"\n", "x".repeat(78));
    let mut s = String::from(
        r#"name: big
vars:
"#,
    );
    while s.len() < 40 * 1024 * 1024 {
        s.push_str(&line);
    }
    let (code, err) = {
        let p = tmp("big.yaml", s.as_bytes());
        let r = validate(&p);
        let _ = std::fs::remove_file(&p);
        r
    };
    assert_eq!(code, 2);
    assert!(err.contains("big.yaml") && err.contains("MB"), "{err}");
}

#[test]
fn unknown_kind_suggests() {
    let y = br#"name: t
phases:
  - name: one
    checks:
      - id: a
        kind: pg_ready
      - id: b
        kind: htp
"#;
    expect_error(
        "kind.yaml",
        y,
        &[
            "kind.yaml:8:15",
            "phases[0].checks[1].kind",
            "did you mean `http`",
        ],
    );
}

#[test]
fn unknown_field_suggests() {
    let y = br#"phases:
  - name: one
    checks:
      - id: a
        kind: port
        port: 3001
        expcet: listening
"#;
    expect_error(
        "field.yaml",
        y,
        &[
            "field.yaml:7:9",
            "phases[0].checks[0].expcet",
            "did you mean `expect`",
        ],
    );
}

#[test]
fn unknown_top_level_field() {
    expect_error(
        "top.yaml",
        br#"name: x
phase: []
"#,
        &["top.yaml:2:1", "did you mean `phases`"],
    );
}

#[test]
fn wrong_type_is_located() {
    let y = br#"phases:
  - name: one
    checks:
      - id: a
        kind: port
        port: "not a number"
        expect: listening
"#;
    expect_error(
        "type.yaml",
        y,
        &["type.yaml:6:9", "phases[0].checks[0].port", "whole number"],
    );
}

#[test]
fn bad_enum_value_suggests() {
    let y = br#"phases:
  - name: one
    checks:
      - id: a
        kind: port
        port: 1
        expect: listenin
"#;
    expect_error(
        "enum.yaml",
        y,
        &[
            "enum.yaml:7:",
            "phases[0].checks[0].expect",
            "did you mean `listening`",
        ],
    );
}

#[test]
fn undefined_variable_named_with_place() {
    let y = br#"phases:
  - name: one
    checks:
      - id: a
        kind: http
        request:
          url: "http://x/${vars.nope}"
"#;
    expect_error(
        "var.yaml",
        y,
        &[
            "var.yaml:7:",
            "phases[0].checks[0].request.url",
            "vars.nope",
        ],
    );
}

#[test]
fn undefined_env_without_default() {
    let y = br#"target:
  base_url: ${env.CHATOPS_SURELY_UNSET_VAR}
phases:
  - name: one
"#;
    expect_error(
        "env.yaml",
        y,
        &["env.yaml:2:", "target.base_url", "CHATOPS_SURELY_UNSET_VAR"],
    );
}

#[test]
fn unknown_need_and_cycle() {
    let y = br#"phases:
  - name: one
    checks:
      - {id: a, kind: port, port: 1, expect: free, needs: [bb]}
      - {id: b, kind: port, port: 1, expect: free}
"#;
    expect_error("needs.yaml", y, &["needs.yaml:4:", "did you mean `b`"]);
    let y = br#"phases:
  - name: one
    checks:
      - {id: a, kind: port, port: 1, expect: free, needs: [b]}
      - {id: b, kind: port, port: 1, expect: free, needs: [a]}
"#;
    expect_error("cycle.yaml", y, &["cycle.yaml:", "cycle"]);
}

#[test]
fn duplicate_ids() {
    let y = br#"phases:
  - name: one
    checks:
      - {id: a, kind: port, port: 1, expect: free}
      - {id: a, kind: port, port: 2, expect: free}
"#;
    expect_error("ids.yaml", y, &["ids.yaml:5:", "duplicate check id `a`"]);
}

#[test]
fn missing_file_and_bad_include() {
    let p = std::env::temp_dir().join("chatops-definitely-missing.yaml");
    let (code, err) = validate(&p);
    assert_eq!(code, 2);
    assert!(err.contains("no such file"), "{err}");
    let y = br#"phases:
  - name: one
    checks:
      - include: nowhere.yaml
"#;
    expect_error(
        "inc.yaml",
        y,
        &["inc.yaml:4:", "cannot include `nowhere.yaml`"],
    );
}

#[test]
fn shipped_playbook_is_valid() {
    let out = Command::new(env!("CARGO_BIN_EXE_chatops"))
        .args(["validate"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/playbooks/pre-load-test.yaml");
    let out = Command::new(env!("CARGO_BIN_EXE_chatops"))
        .args(["validate", "-p", file])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bad_command_line_exits_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_chatops"))
        .args(["doctor", "--format", "yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(env!("CARGO_BIN_EXE_chatops"))
        .args(["doctor", "--var", "novalue"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
