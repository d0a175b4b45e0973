//! Issue 11 §5: `chatops load` raises its own open-file limit (soft up to
//! hard) and refuses, with the numbers and `ulimit -n`, when even the hard
//! limit cannot hold one connection per virtual user. (The memory and
//! throughput figures at 10,000 VUs are bench/scale.sh's, never a timed test.)

use crate::common::*;

fn plan() -> std::path::PathBuf {
    write_playbook(
        "name: t\nmix:\n  - name: get\n    request: {url: \"${base_url}/\"}\nstages: [{name: s, vus: 5, duration: 1s}]\n",
    )
}

/// `chatops load` under a shell's `ulimit` line.
fn load_under(ulimit: &str, vus: u32) -> std::process::Output {
    let port = chatops::sandbox::free_port();
    let mut cmd = std::process::Command::new("bash");
    cmd.arg("-c")
        .arg(format!(
            "{ulimit} && exec \"$0\" load --skip-preflight --base-url http://127.0.0.1:{port} --plan \"$1\" --stages s:{vus}:1s --format json"
        ))
        .arg(bin())
        .arg(plan());
    output_within(cmd, std::time::Duration::from_secs(60), "chatops load")
}

#[test]
fn too_few_open_files_is_a_clear_error_with_the_fix() {
    let out = load_under("ulimit -n 128", 500);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for words in [
        "500 virtual users",
        "564 open files",
        "at most 128",
        "ulimit -n 564",
    ] {
        assert!(err.contains(words), "missing `{words}`: {err}");
    }
}

#[test]
fn a_low_soft_limit_is_raised_to_the_hard_one() {
    // Soft 64, hard as it is (well above 300): 200 VUs run.
    let out = load_under("ulimit -Sn 64", 200);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("open files"), "{err}");
    let r: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {err}"));
    assert_eq!(r["stages"][0]["vus"], 200, "{r}");
    assert!(
        r["stages"][0]["errors"]["refused"].as_u64().unwrap_or(0) > 0,
        "{r}"
    );
}
