//! A distinctive password and token appear in no output of any format, nor in
//! error messages.

use crate::common::*;

const PW: &str = "Zq9distinctivePW77";
const TOKEN: &str = "tok-distinctive-5f1e9a";

#[test]
fn secrets_never_print_in_any_format() {
    let pg = cluster();
    // A wrong (distinctive) password: the login fails and its error is reported.
    let url = format!(
        "postgresql://postgres:{PW}@127.0.0.1:{}/postgres?connection_limit=5",
        pg.port()
    );
    let closed = chatops::sandbox::free_port();
    let y = format!(
        r#"name: secrets
target:
  database_url: "{url}"
vars:
  api_token: "{TOKEN}"
phases:
  - name: All
    checks:
      - {{id: ready, kind: pg_ready, url: "${{target.database_url}}"}}
      - {{id: login, kind: pg_connect, url: "${{target.database_url}}"}}
      - id: api
        kind: http
        request:
          url: "http://127.0.0.1:{closed}/x?token=${{vars.api_token}}"
          headers: {{ Authorization: "Bearer ${{vars.api_token}}" }}
      - id: own_env
        kind: env
        vars:
          CHATOPS_TEST_DB_PASSWORD: {{ equals: "something-else" }}
          DATABASE_URL: {{ exists: false }}
"#
    );
    let p = write_playbook(&y);
    let ps = p.to_string_lossy().into_owned();
    for format in ["human", "json", "markdown", "junit"] {
        for verbosity in ["-v", "-q"] {
            let r = chatops(
                &["doctor", verbosity, "--format", format, "--playbook", &ps],
                &[("CHATOPS_TEST_DB_PASSWORD", PW), ("DATABASE_URL", &url)],
            );
            assert_eq!(r.code, 1, "{format}: {}{}", r.stdout, r.stderr);
            let all = format!("{}{}", r.stdout, r.stderr);
            assert!(!all.contains(PW), "{format}: password printed:\n{all}");
            assert!(!all.contains(TOKEN), "{format}: token printed:\n{all}");
            assert!(
                all.contains("***"),
                "{format}: expected redaction marks:\n{all}"
            );
        }
    }
    // --output files too.
    let out = p.with_extension("md");
    let r = chatops(
        &[
            "doctor",
            "--format",
            "markdown",
            "--output",
            &out.to_string_lossy(),
            "--playbook",
            &ps,
        ],
        &[],
    );
    assert_eq!(r.code, 1);
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("Remediation report") && !text.contains(PW) && !text.contains(TOKEN));
}

#[test]
fn secrets_never_print_in_errors() {
    // A load error that quotes the URL, and one on the command line.
    let y = format!(
        r#"target:
  database_url: "postgresql://postgres:{PW}@127.0.0.1:1/x"
phases:
  - name: x
    checks:
      - {{id: a, kind: pg_ready, url: "${{target.database_url}}", extra: 1}}
"#
    );
    let p = write_playbook(&y);
    let r = chatops(&["validate", "--playbook", &p.to_string_lossy()], &[]);
    assert_eq!(r.code, 2);
    assert!(!r.stderr.contains(PW), "{}", r.stderr);
    let y = format!(
        r#"phases:
  - name: x
    checks:
      - {{id: a, kind: http, request: {{url: "http://u:{PW}@127.0.0.1:1/${{vars.missing}}"}}}}
"#
    );
    let p = write_playbook(&y);
    let r = chatops(&["validate", "--playbook", &p.to_string_lossy()], &[]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("vars.missing"), "{}", r.stderr);
    assert!(!r.stderr.contains(PW), "{}", r.stderr);
}
