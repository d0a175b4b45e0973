//! `playbooks/database.yaml` (schema drift, pool headroom, activity) against
//! the real sandbox: the reference backend as a process with its own
//! DATABASE_URL, on a throwaway cluster.

use crate::common::*;
use chatops::sandbox::{Knobs, Sandbox};

fn doctor(sb: &Sandbox) -> (i32, serde_json::Value) {
    let playbook = concat!(env!("CARGO_MANIFEST_DIR"), "/playbooks/database.yaml");
    let base = sb.base_url().expect("backend running");
    let r = chatops(
        &[
            "doctor",
            "--format",
            "json",
            "--playbook",
            playbook,
            "--base-url",
            &base,
            "--database-url",
            &sb.db_url,
        ],
        &[],
    );
    (r.code, r.json())
}

#[test]
fn healthy_sandbox_passes_and_a_pool_of_two_is_found() {
    let rt = runtime();
    let (sb, _) = running(&rt, Knobs::default());
    let (code, r) = doctor(&sb);
    assert_eq!(code, 0, "{r}");
    for id in ["schema", "pool_headroom", "pg_activity"] {
        assert_eq!(check(&r, id)["status"], "pass", "{id}: {}", check(&r, id));
    }
    let h = check(&r, "pool_headroom");
    assert_eq!(h["captures"]["pool"], 50, "{h}");
    drop(sb);

    // The backend's DATABASE_URL says connection_limit=2.
    let (sb, _) = running(
        &rt,
        Knobs {
            connection_limit: Some(2),
            ..Knobs::default()
        },
    );
    let (code, r) = doctor(&sb);
    assert_eq!(code, 1, "{r}");
    let h = check(&r, "pool_headroom");
    assert_eq!(h["status"], "fail", "{h}");
    assert!(
        h["summary"]
            .as_str()
            .unwrap()
            .starts_with("pool of 2 is below the 12.6 connections"),
        "{h}"
    );
    assert!(
        h["remedy"]
            .as_str()
            .unwrap()
            .contains("connection_limit=50")
    );
    assert_eq!(check(&r, "schema")["status"], "pass");
    drop(sb);

    // No connection_limit: the backend appends DATABASE_POOL_SIZE (here 5).
    let (sb, _) = running(
        &rt,
        Knobs {
            connection_limit: None,
            extra_env: vec![("DATABASE_POOL_SIZE".into(), "5".into())],
            ..Knobs::default()
        },
    );
    let (_, r) = doctor(&sb);
    let h = check(&r, "pool_headroom");
    assert_eq!(h["captures"]["pool"], 5, "{h}");
    assert!(
        h["evidence"].to_string().contains("DATABASE_POOL_SIZE=5"),
        "{h}"
    );
}
