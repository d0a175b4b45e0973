//! Issue 9 §5: a `+` in a database URL is a plus, as libpq reads it, in the
//! password, the user name, the database name and the query parameters.
//! A real cluster proves that pg_connect logs in with such a password.

use crate::common::*;

/// A role and a database whose names and password hold `+` (and a space,
/// which a URL must spell `%20`).
fn plus_role_and_database(pg: &chatops::sandbox::pg::PgCluster) {
    let rt = runtime();
    rt.block_on(async {
        let c = pg.connect("postgres").await.expect("superuser session");
        for s in [
            "CREATE ROLE \"plus+user\" LOGIN PASSWORD 'pa+ss word'",
            "CREATE DATABASE \"plus+db\" OWNER \"plus+user\"",
        ] {
            c.batch_execute(s).await.expect(s);
        }
    });
}

fn login_playbook(url: &str) -> String {
    format!(
        "name: plus\nphases:\n  - name: Database\n    checks:\n      - {{id: login, kind: pg_connect, url: \"{url}\"}}\n"
    )
}

#[test]
fn a_password_with_a_plus_logs_in() {
    let pg = cluster();
    plus_role_and_database(&pg);
    let port = pg.port();
    for url in [
        format!("postgresql://plus+user:pa+ss%20word@127.0.0.1:{port}/plus+db"),
        format!("postgresql://plus%2Buser:pa%2Bss%20word@127.0.0.1:{port}/plus%2Bdb"),
        format!(
            "postgresql://127.0.0.1:{port}/?user=plus+user&password=pa+ss%20word&dbname=plus+db"
        ),
    ] {
        // The library: the parsed URL connects.
        let u = chatops::pg::DbUrl::parse(&url).expect("url");
        assert_eq!(u.password.as_deref(), Some("pa+ss word"), "{url}");
        let rt = runtime();
        let who: String = rt.block_on(async {
            let (client, conn) = u
                .config("bugs_pg_url")
                .connect(tokio_postgres::NoTls)
                .await
                .unwrap_or_else(|e| panic!("{url}: {e}"));
            tokio::spawn(conn);
            client
                .query_one("SELECT current_user || '@' || current_database()", &[])
                .await
                .expect("query")
                .get(0)
        });
        assert_eq!(who, "plus+user@plus+db", "{url}");

        // The command: pg_connect passes, and the password is not printed.
        let (code, r) = doctor_json(&login_playbook(&url), &[]);
        let login = check(&r, "login");
        assert_eq!(login["status"], "pass", "{url}: {login:#}");
        assert_eq!(code, 0, "{r}");
        assert!(!r.to_string().contains("pa+ss"), "password leaked: {r}");
    }
}
