//! Command-line surface: schema, checks, completions, formats, colours,
//! includes with overrides, --output, --var.

use crate::common::*;

#[test]
fn schema_is_json_schema_with_every_kind() {
    let r = chatops(&["schema"], &[]);
    assert_eq!(r.code, 0);
    let s = r.json();
    assert_eq!(s["$schema"], "https://json-schema.org/draft/2020-12/schema");
    let kinds = s["properties"]["phases"]["items"]["properties"]["checks"]["items"]["anyOf"][1]["properties"]["kind"]["enum"].as_array().unwrap().clone();
    for k in ["pg_ready", "pg_connect", "port", "http", "env"] {
        assert!(kinds.contains(&serde_json::json!(k)), "{k} missing");
    }
}

#[test]
fn checks_lists_fields_and_suggests() {
    let r = chatops(&["checks"], &[]);
    assert_eq!(r.code, 0);
    assert!(
        r.stdout.contains("pg_ready")
            && r.stdout.contains("start_command")
            && r.stdout.contains("(required)")
    );
    let r = chatops(&["checks", "htp"], &[]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("did you mean `http`"), "{}", r.stderr);
}

#[test]
fn completions_for_shells() {
    for sh in ["bash", "zsh", "fish"] {
        let r = chatops(&["completions", sh], &[]);
        assert_eq!(r.code, 0);
        assert!(r.stdout.contains("doctor"), "{sh}");
    }
}

fn failing_playbook() -> std::path::PathBuf {
    let free = chatops::sandbox::free_port();
    write_playbook(&format!(
        r#"name: Formats & <escapes>
phases:
  - name: Startup
    checks:
      - {{id: up, title: "Backend <listens>", kind: port, port: {free}, expect: listening}}
      - {{id: after, kind: port, port: {free}, expect: free, needs: [up]}}
  - name: Other
    checks:
      - {{id: ok, kind: port, port: {free}, expect: free}}
"#
    ))
}

#[test]
fn markdown_reads_like_the_seed_report() {
    let p = failing_playbook();
    let r = chatops(
        &[
            "doctor",
            "--format",
            "markdown",
            "--playbook",
            &p.to_string_lossy(),
        ],
        &[],
    );
    assert_eq!(r.code, 1);
    let md = r.stdout;
    for needle in [
        "# Remediation report: Formats & <escapes>",
        "## Results at a glance",
        "| Phase 1: Startup | ❌ **FAIL**",
        "## Phase 1: Startup",
        "**Root cause**:",
        "**Remediation**:",
        "**Evidence**",
        "### Validation criteria",
        "- [ ] Backend <listens>",
        "- [ ] after (blocked by `up`)",
        "- [x] ok",
        "## Environment reference",
    ] {
        assert!(md.contains(needle), "missing {needle:?} in:\n{md}");
    }
}

#[test]
fn junit_is_well_formed_and_counts() {
    let p = failing_playbook();
    let r = chatops(
        &[
            "doctor",
            "--format",
            "junit",
            "--playbook",
            &p.to_string_lossy(),
        ],
        &[],
    );
    assert_eq!(r.code, 1);
    let x = r.stdout;
    assert!(x.starts_with("<?xml"));
    assert!(x.contains("<testsuites name=\"Formats &amp; &lt;escapes&gt;\" tests=\"3\" failures=\"1\" errors=\"0\" skipped=\"1\""), "{x}");
    assert!(
        x.contains("<failure message=")
            && x.contains("<skipped message=")
            && x.contains("Backend &lt;listens&gt;")
    );
    assert_eq!(x.matches("<testsuite ").count(), 2);
    assert_eq!(x.matches("</testsuite>").count(), 2);
    assert_eq!(
        x.matches("<testcase ").count(),
        x.matches("</testcase>").count()
    );
}

#[test]
fn human_has_no_escape_codes_when_piped_and_colours_when_asked() {
    let p = failing_playbook();
    let ps = p.to_string_lossy().into_owned();
    let r = chatops(&["doctor", "--playbook", &ps], &[]);
    assert!(!r.stdout.contains('\u{1b}'), "escape codes in piped output");
    assert!(
        r.stdout.contains("Root cause:")
            && r.stdout.contains("Fix:")
            && r.stdout.contains("Blocked by this: after")
    );
    let mut c = std::process::Command::new(bin());
    c.args(["--color", "always", "doctor", "--playbook", &ps])
        .env_remove("NO_COLOR");
    let out = c.output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains('\u{1b}'));
    let q = chatops(&["-q", "doctor", "--playbook", &ps], &[]);
    assert!(!q.stdout.contains("╭") && q.stdout.contains("Result: FAIL"));
}

#[test]
fn output_file_and_strict_warnings() {
    let p = failing_playbook();
    let out = p.with_extension("json");
    let r = chatops(
        &[
            "doctor",
            "--format",
            "json",
            "--output",
            &out.to_string_lossy(),
            "--playbook",
            &p.to_string_lossy(),
        ],
        &[],
    );
    assert_eq!(r.code, 1);
    assert!(r.stdout.is_empty());
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(j["schema_version"], 1);
    for key in ["playbook", "status", "duration_ms", "checks"] {
        assert!(j.get(key).is_some(), "{key}");
    }
    for key in [
        "id",
        "phase",
        "kind",
        "status",
        "summary",
        "evidence",
        "command",
        "root_cause",
        "remedy",
        "blocked_by",
        "duration_ms",
    ] {
        assert!(j["checks"][0].get(key).is_some(), "{key}");
    }
}

#[test]
fn include_with_overrides_and_vars() {
    let dir = scratch_dir().join(unique("inc"));
    std::fs::create_dir_all(dir.join("checks")).unwrap();
    std::fs::create_dir_all(dir.join("playbooks")).unwrap();
    std::fs::write(
        dir.join("checks/port.yaml"),
        r#"id: base
kind: port
port: 1
expect: listening
service: api
"#,
    )
    .unwrap();
    let free = chatops::sandbox::free_port();
    std::fs::write(
        dir.join("playbooks/p.yaml"),
        r#"vars:
  port: 1
phases:
  - name: x
    checks:
      - include: ../checks/port.yaml
        id: overridden
        port: ${vars.port}
        expect: free
"#,
    )
    .unwrap();
    let p = dir.join("playbooks/p.yaml");
    let fp = free.to_string();
    let var = format!("port={fp}");
    let r = chatops(
        &[
            "doctor",
            "--format",
            "json",
            "--playbook",
            &p.to_string_lossy(),
            "--var",
            &var,
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let j = r.json();
    let c = check(&j, "overridden");
    assert!(c["summary"].as_str().unwrap().contains(&fp), "{c}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn shipped_checks_are_includable_from_any_directory() {
    let p = write_playbook(
        r#"target: { base_url: 'http://127.0.0.1:1' }
phases:
  - name: x
    checks:
      - include: chatops:checks/backend-listening.yaml
        title: mine
"#,
    );
    let r = chatops(&["validate", &p.to_string_lossy()], &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let bad = write_playbook(
        r#"phases:
  - name: x
    checks:
      - include: chatops:checks/nope.yaml
"#,
    );
    let r = chatops(&["validate", &bad.to_string_lossy()], &[]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("checks/nope.yaml"), "{}", r.stderr);
    assert!(
        r.stderr.contains(":4:"),
        "line of the include: {}",
        r.stderr
    );
}

#[test]
fn demo_without_postgres_binaries_says_how_to_install_them() {
    let r = chatops(&["demo"], &[("CHATOPS_PG_BINDIR", "/nonexistent")]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("apt-get install"), "{}", r.stderr);
    assert!(r.stderr.contains("CHATOPS_PG_BINDIR"), "{}", r.stderr);
}

/// A reader that goes away (`chatops schema | head -1`) ends the output, not
/// the process with a panic. The read end is closed before chatops writes a
/// byte, so every write meets a closed pipe.
#[test]
fn a_closed_stdout_is_not_a_panic() {
    use std::process::{Command, Stdio};
    for args in [
        &["schema"][..],
        &["checks"],
        &["validate", "playbooks/pre-load-test.yaml"],
        &["pool-calc", "--vus", "120"],
        &["completions", "bash"],
    ] {
        let mut child = Command::new(bin())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chatops starts");
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("chatops ends");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_ne!(out.status.code(), Some(101), "{args:?}: {err}");
    }
}
