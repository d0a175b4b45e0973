//! The working-tree checks (`migrations`, `prisma_schema`,
//! `build_freshness`, `env_file`) against the sandbox: the backend process
//! runs from its project directory, which chatops finds through
//! /proc/PID/cwd, and each project fault gives its finding before any
//! request (the playbook here has no HTTP check at all: a TCP connect to
//! the port is the only traffic). Then the shipped playbook: a drifted
//! schema or a stale client is the root cause of the failing send.

use crate::common::*;
use chatops::sandbox::project::{FAILED_MIGRATION, UNAPPLIED_MIGRATION};
use chatops::sandbox::{Knobs, ProjectFault, Sandbox};
use serde_json::Value;

/// No request is sent: a login, a TCP connect, and the four checks.
const PLAYBOOK: &str = r#"
name: Working tree only
target:
  base_url: http://127.0.0.1:1
  database_url: postgresql://nobody@127.0.0.1:1/none
  project: ${env.CHATOPS_PROJECT:-}
phases:
  - name: Working tree
    checks:
      - include: chatops:checks/pg-ready.yaml
      - include: chatops:checks/pg-connect.yaml
      - include: chatops:checks/backend-listening.yaml
      - include: chatops:checks/migrations.yaml
      - include: chatops:checks/prisma-schema.yaml
      - include: chatops:checks/build-freshness.yaml
      - include: chatops:checks/env-file.yaml
"#;

const KINDS: [&str; 4] = ["migrations", "prisma_schema", "build_freshness", "env_file"];

fn run_tree(sb: &Sandbox, url: &str, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["--base-url", url, "--database-url", &sb.db_url];
    args.extend_from_slice(extra);
    doctor_json(PLAYBOOK, &args)
}

fn with(fault: ProjectFault) -> (Sandbox, String, i32, Value) {
    let rt = runtime();
    let (sb, url) = running(
        &rt,
        Knobs {
            project: fault,
            ..Knobs::default()
        },
    );
    let (code, report) = run_tree(&sb, &url, &[]);
    (sb, url, code, report)
}

fn st<'a>(r: &'a Value, id: &str) -> &'a str {
    check(r, id)["status"].as_str().unwrap_or("?")
}

fn text(r: &Value, id: &str) -> String {
    check(r, id).to_string()
}

#[test]
fn a_fresh_consistent_project_gives_no_finding_and_says_where_it_was_found() {
    let (sb, _url, code, r) = with(ProjectFault::Consistent);
    for id in KINDS {
        assert_eq!(st(&r, id), "pass", "{id}: {:#}", check(&r, id));
    }
    assert_eq!(code, 0, "{r:#}");
    let b = sb.backend.as_ref().expect("backend");
    let dir = std::fs::canonicalize(&b.project).expect("project");
    let line = format!(
        "project: {} (the working directory of pid {}",
        dir.display(),
        b.pid
    );
    for id in KINDS {
        let ev = text(&r, id);
        assert!(ev.contains(&line), "{id}: {ev}");
    }
    let schema = check(&r, "prisma_schema");
    assert!(
        schema["summary"]
            .as_str()
            .unwrap_or("")
            .starts_with("12 model(s) match"),
        "{schema:#}"
    );
    assert!(text(&r, "migrations").contains("1 migration(s) applied"));
}

#[test]
fn a_drifted_field_names_model_field_file_line_and_the_column_that_exists() {
    let (_sb, _url, code, r) = with(ProjectFault::DriftedField);
    assert_eq!(code, 1);
    let c = check(&r, "prisma_schema");
    assert_eq!(c["status"], "fail", "{c:#}");
    assert_eq!(c["fault"]["cause"], "prisma_drift");
    assert_eq!(c["cause"], "schema_drift");
    let item = &c["fault"]["items"][0];
    assert_eq!(item["model"], "Message", "{c:#}");
    assert_eq!(item["field"], "messageType");
    assert_eq!(
        item["expected"],
        "column messages.messageType (text NOT NULL)"
    );
    assert_eq!(item["actual"], "no such column; messages has type");
    assert!(
        item["at"]
            .as_str()
            .unwrap_or("")
            .starts_with("prisma/schema.prisma:"),
        "{item}"
    );
    assert_eq!(c["fault"]["items"].as_array().map(Vec::len), Some(1));
    let fix = c["remedy"].as_str().unwrap_or("");
    assert!(
        fix.contains("@map(") && fix.contains("npx prisma generate"),
        "{fix}"
    );
    // The client was generated from the same (drifted) schema: not stale.
    assert_eq!(
        st(&r, "build_freshness"),
        "pass",
        "{:#}",
        check(&r, "build_freshness")
    );
}

#[test]
fn an_old_client_is_found_by_content_with_the_field_that_differs() {
    let (_sb, _url, _code, r) = with(ProjectFault::OldClient);
    let c = check(&r, "build_freshness");
    assert_eq!(c["status"], "fail", "{c:#}");
    assert_eq!(c["fault"]["cause"], "stale_client");
    assert_eq!(c["fault"]["how"], "content");
    assert_eq!(
        c["fault"]["client"],
        "node_modules/.prisma/client/schema.prisma"
    );
    let diff = c["fault"]["differences"].to_string();
    assert!(
        diff.contains("Message.messageType: in the client"),
        "{diff}"
    );
    assert!(diff.contains("Message.type: in the schema"), "{diff}");
    assert_eq!(st(&r, "prisma_schema"), "pass");
}

#[test]
fn an_old_build_names_the_source_and_its_compiled_file_with_times() {
    let (_sb, _url, _code, r) = with(ProjectFault::OldBuild);
    let c = check(&r, "build_freshness");
    assert_eq!(c["fault"]["cause"], "stale_build", "{c:#}");
    let newer = c["fault"]["newer"][0].as_str().unwrap_or("");
    assert!(
        newer.starts_with("src/chat/chat.service.ts (")
            && newer.contains("is newer than dist/chat/chat.service.js ("),
        "{newer}"
    );
    assert!(
        c["remedy"]
            .as_str()
            .unwrap_or("")
            .contains("rm -rf dist && npm run build")
    );
}

#[test]
fn a_process_older_than_its_build_says_how_much_older() {
    let (sb, _url, _code, r) = with(ProjectFault::ProcessOlderThanBuild);
    let c = check(&r, "build_freshness");
    assert_eq!(c["fault"]["cause"], "stale_process", "{c:#}");
    let pid = sb.backend.as_ref().expect("backend").pid;
    assert_eq!(c["fault"]["pid"], pid);
    let newer = c["fault"]["newer"][0].as_str().unwrap_or("");
    assert!(
        newer.starts_with("dist/main.js written ") && newer.contains("after the process started"),
        "{newer}"
    );
}

#[test]
fn an_unapplied_migration_is_the_one_finding_and_the_schema_check_waits_for_it() {
    let (_sb, _url, _code, r) = with(ProjectFault::UnappliedMigration);
    let c = check(&r, "migrations");
    assert_eq!(c["fault"]["cause"], "migrations_pending", "{c:#}");
    assert_eq!(c["fault"]["names"][0], UNAPPLIED_MIGRATION);
    let p = check(&r, "prisma_schema");
    assert_eq!(p["status"], "blocked", "{p:#}");
    assert_eq!(p["blocked_by"], "migrations");
}

#[test]
fn a_failed_migration_carries_its_logs() {
    let (_sb, _url, _code, r) = with(ProjectFault::FailedMigration);
    let c = check(&r, "migrations");
    assert_eq!(c["fault"]["cause"], "migration_failed", "{c:#}");
    assert_eq!(c["fault"]["name"], FAILED_MIGRATION);
    assert!(
        c["fault"]["logs"]
            .as_str()
            .unwrap_or("")
            .contains("already exists")
    );
    assert!(
        c["remedy"]
            .as_str()
            .unwrap_or("")
            .contains(&format!("migrate resolve --rolled-back {FAILED_MIGRATION}"))
    );
}

#[test]
fn a_dotenv_change_after_start_names_the_variable() {
    let (_sb, _url, _code, r) = with(ProjectFault::EnvChangedAfterStart);
    let c = check(&r, "env_file");
    assert_eq!(c["status"], "fail", "{c:#}");
    assert_eq!(c["fault"]["cause"], "env_file_not_loaded");
    let item = &c["fault"]["items"][0];
    assert_eq!(item["name"], "DISABLE_RATE_LIMIT", "{c:#}");
    assert_eq!(item["changed_after_start"], true);
    assert!(
        item["file"].as_str().unwrap_or("").starts_with(".env:"),
        "{item}"
    );
    assert!(item["in_process"].is_null());
    // The URL's password never prints, though DATABASE_URL was compared.
    let all = c.to_string();
    assert!(!all.contains("postgres:postgres@"), "{all}");
}

#[test]
fn a_project_chatops_cannot_see_is_skipped_with_the_reason_and_found_when_given() {
    let (sb, url, code, r) = with(ProjectFault::Unseen);
    for id in KINDS {
        let c = check(&r, id);
        assert_eq!(c["status"], "skipped", "{id}: {c:#}");
        let why = c["summary"].as_str().unwrap_or("");
        assert!(
            why.contains("has no package.json in it or above"),
            "{id}: {why}"
        );
    }
    assert_eq!(code, 0, "a skip is no failure: {r:#}");
    assert_eq!(r["summary"]["skipped"], 4);
    // The same project, given: found, and said so.
    let dir = sb.backend.as_ref().expect("backend").project.clone();
    let d = dir.to_string_lossy().into_owned();
    let (code, r) = run_tree(&sb, &url, &["--project", &d]);
    assert_eq!(code, 0, "{r:#}");
    for id in KINDS {
        assert_eq!(st(&r, id), "pass", "{id}: {:#}", check(&r, id));
        assert!(text(&r, id).contains("was given (--project or target.project)"));
    }
}

/// The shipped playbook: the working-tree finding is the one root cause,
/// found before any traffic; what the backend then does wrong (the failing
/// send, the limiters' 429s) is its consequence (`caused_by`).
fn shipped_playbook_links(fault: ProjectFault, root: &str, witness: &str, cause: &str) {
    let rt = runtime();
    let (sb, url) = running(
        &rt,
        Knobs {
            project: fault,
            ..Knobs::default()
        },
    );
    let r = chatops(
        &[
            "doctor",
            "--format",
            "json",
            "--base-url",
            &url,
            "--database-url",
            &sb.db_url,
            "--var",
            "stability_duration=0s",
        ],
        &[],
    );
    let report = r.json();
    assert_eq!(r.code, 1);
    assert_eq!(
        check(&report, root)["status"],
        "fail",
        "{fault:?}: {report:#}"
    );
    let w = check(&report, witness);
    assert_eq!(w["status"], "fail", "{fault:?}: {w:#}");
    assert_eq!(w["cause"], cause);
    assert_eq!(w["caused_by"], root, "{fault:?}: {w:#}");
    assert_eq!(report["summary"]["root_causes"], 1, "{fault:?}: {report:#}");
}

#[test]
fn in_the_shipped_playbook_a_drifted_schema_explains_the_failing_send() {
    shipped_playbook_links(
        ProjectFault::DriftedField,
        "prisma_schema",
        "send_message",
        "schema_drift",
    );
}

#[test]
fn in_the_shipped_playbook_a_stale_client_explains_the_failing_send() {
    shipped_playbook_links(
        ProjectFault::OldClient,
        "build_freshness",
        "send_message",
        "schema_drift",
    );
}

/// DISABLE_RATE_LIMIT=true written to .env after the start: the limiters'
/// 429s are explained by the process predating the file.
#[test]
fn in_the_shipped_playbook_a_dotenv_changed_after_start_explains_the_429s() {
    shipped_playbook_links(
        ProjectFault::EnvChangedAfterStart,
        "env_file",
        "rate_limit_burst",
        "rate_limiting",
    );
}
