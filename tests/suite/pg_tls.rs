//! TLS to PostgreSQL with libpq's sslmode meanings, against a real cluster
//! whose certificates the test makes (rcgen, in-process): first with
//! TLS off, then turned on by a reload.

use crate::common::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

fn login(url: &str) -> (i32, serde_json::Value) {
    let (code, r) = doctor_json(
        &format!(
            r#"name: tls
phases:
  - name: Database
    checks:
      - {{id: login, kind: pg_connect, url: "{url}"}}
      - {{id: q, kind: sql, url: "{url}", query: "SELECT 1 AS one", expect: {{rows: 1}}}}
"#
        ),
        &[],
    );
    (code, check(&r, "login").clone())
}

/// Whether pg_connect reports a TLS session (`tls` capture: TLSv1.x).
fn encrypted(c: &serde_json::Value) -> bool {
    c["captures"]["tls"]
        .as_str()
        .unwrap_or_default()
        .starts_with("TLSv1")
}

#[test]
fn sslmodes_against_a_server_without_and_with_tls() {
    // A cluster of its own: turning TLS on would change every other test's
    // connections on the shared one.
    let pg = start_cluster(Default::default());
    let base = pg.url("postgres");
    let with = |q: &str| format!("{base}?{q}");

    // TLS off: prefer falls back to plain, require fails with the reason.
    let (code, c) = login(&with("sslmode=prefer"));
    assert_eq!(code, 0, "{c:#}");
    assert_eq!(c["captures"]["tls"], "none", "{c:#}");
    let (code, c) = login(&with("sslmode=require"));
    assert_eq!(code, 1);
    let cause = c["root_cause"].as_str().unwrap_or_default();
    assert!(cause.contains("does not support TLS"), "{c:#}");
    assert!(
        c["remedy"]
            .as_str()
            .unwrap_or_default()
            .contains("ssl = on"),
        "{c:#}"
    );

    // Turn TLS on: certificates in the data directory, owned like it.
    let certs = make_certs();
    let data = pg.data_dir();
    let owner = std::fs::metadata(data).expect("data dir");
    for f in ["server.crt", "server.key"] {
        let to = data.join(f);
        std::fs::copy(certs.join(f), &to).expect("copy cert");
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        std::os::unix::fs::chown(&to, Some(owner.uid()), Some(owner.gid())).expect("chown");
    }
    let rt = runtime();
    rt.block_on(async {
        let c = pg.connect("postgres").await.expect("superuser session");
        for s in [
            "ALTER SYSTEM SET ssl_cert_file = 'server.crt'",
            "ALTER SYSTEM SET ssl_key_file = 'server.key'",
            "ALTER SYSTEM SET ssl = on",
            "SELECT pg_reload_conf()",
        ] {
            c.batch_execute(s).await.expect(s);
        }
        // The reload is a signal: wait until the server says ssl is on.
        for _ in 0..100 {
            let on: String = c.query_one("SHOW ssl", &[]).await.expect("SHOW ssl").get(0);
            if on == "on" {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("ssl did not turn on: {}", pg.log_tail(20));
    });

    // require: encrypted, certificate not checked; the sql check (another
    // connection path) works too.
    let (code, c) = login(&with("sslmode=require"));
    assert_eq!(code, 0, "{c:#}");
    assert!(encrypted(&c), "{c:#}");
    assert!(c["evidence"].to_string().contains("not verified"), "{c:#}");
    // Default (prefer) now encrypts as well.
    let (_, c) = login(&base);
    assert!(encrypted(&c), "{c:#}");

    let ca = certs.join("ca.crt").to_string_lossy().into_owned();
    let by_name = base.replace("@127.0.0.1:", "@localhost:");
    // verify-full by the certificate's name, with its CA: passes.
    let (code, c) = login(&format!("{by_name}?sslmode=verify-full&sslrootcert={ca}"));
    assert_eq!(code, 0, "{c:#}");
    assert!(
        c["evidence"].to_string().contains("host name verified"),
        "{c:#}"
    );
    // verify-full by IP: the certificate does not name it.
    let (code, c) = login(&with(&format!("sslmode=verify-full&sslrootcert={ca}")));
    assert_eq!(code, 1, "{c:#}");
    assert!(
        c["remedy"]
            .as_str()
            .unwrap_or_default()
            .contains("verify-ca"),
        "{c:#}"
    );
    // verify-ca does not care about the name.
    let (code, c) = login(&with(&format!("sslmode=verify-ca&sslrootcert={ca}")));
    assert_eq!(code, 0, "{c:#}");
    // verify-full against the system's roots: our test CA is unknown there.
    let (code, c) = login(&format!("{by_name}?sslmode=verify-full&sslrootcert=system"));
    assert_eq!(code, 1, "{c:#}");
    assert!(
        c["remedy"]
            .as_str()
            .unwrap_or_default()
            .contains("sslrootcert"),
        "{c:#}"
    );
    // libpq's refusals: the public roots vouch for anyone unless the host
    // name is checked too.
    for q in [
        "sslmode=require&sslrootcert=system",
        "sslmode=verify-ca&sslrootcert=system",
    ] {
        let (code, c) = login(&with(q));
        assert_eq!(code, 1, "{q}");
        assert!(
            c["root_cause"].to_string().contains("any site"),
            "{q}: {c:#}"
        );
    }
    // An unreadable CA file is named.
    let (code, c) = login(&with("sslmode=verify-full&sslrootcert=/nonexistent/ca.pem"));
    assert_eq!(code, 1);
    assert!(
        c["root_cause"].to_string().contains("/nonexistent/ca.pem"),
        "{c:#}"
    );

    // watch-connections over verified TLS.
    let run = chatops(
        &[
            "watch-connections",
            "--once",
            "--format",
            "json",
            "--database-url",
            &format!("{by_name}?sslmode=verify-full&sslrootcert={ca}"),
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("\"max_connections\""), "{}", run.stdout);
    // A misspelt sslmode is bad input, with a suggestion.
    let (code, c) = login(&with("sslmode=requre"));
    assert_eq!(code, 1, "{c:#}");
    assert!(c.to_string().contains("did you mean `require`"), "{c:#}");
    let _ = std::fs::remove_dir_all(&certs);
}
