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

/// Issue 11 §2: a password with every character that means something in a
/// URL or a key=value string logs in, written as a percent-encoded URI (TCP,
/// IPv4 and the unix socket, %2F-encoded and as `host=`), and as a quoted
/// key=value string; what the library and pg_connect read is what libpq reads.
#[test]
fn a_password_with_url_characters_logs_in_by_every_spelling() {
    let pg = cluster();
    let pw = "p+w&d%25 @:/?#x y'q\\z";
    let rt = runtime();
    rt.block_on(async {
        let c = pg.connect("postgres").await.expect("superuser session");
        c.batch_execute(&format!(
            "CREATE ROLE url_chars LOGIN PASSWORD '{}'",
            pw.replace('\'', "''")
        ))
        .await
        .expect("role");
    });
    let port = pg.port();
    let enc = chatops::support::percent::encode(pw);
    let sock = pg.socket_dir().display().to_string();
    let sock_enc = chatops::support::percent::encode(&sock);
    let kv = chatops::pg::with_params(
        &format!("host=127.0.0.1 port={port} user=url_chars dbname=postgres"),
        &[("password", pw.to_string())],
    )
    .expect("key=value");
    for url in [
        format!("postgresql://url_chars:{enc}@127.0.0.1:{port}/postgres"),
        format!("postgresql://url_chars:{enc}@127.0.0.1:1,127.0.0.1:{port}/postgres"),
        format!("postgresql://url_chars:{enc}@{sock_enc}:{port}/postgres"),
        format!("postgresql:///postgres?host={sock_enc}&port={port}&user=url_chars&password={enc}"),
        kv,
    ] {
        let u = chatops::pg::DbUrl::parse(&url).unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(u.password.as_deref(), Some(pw), "{url}");
        let who: String = rt.block_on(async {
            let (client, conn) = u
                .config("pg_url_chars")
                .connect(tokio_postgres::NoTls)
                .await
                .unwrap_or_else(|e| panic!("{url}: {e}"));
            tokio::spawn(conn);
            client
                .query_one("SELECT current_user", &[])
                .await
                .expect("query")
                .get(0)
        });
        assert_eq!(who, "url_chars", "{url}");
        let (code, r) = doctor_json(
            &login_playbook(&url.replace('\\', "\\\\").replace('"', "\\\"")),
            &[],
        );
        assert_eq!(check(&r, "login")["status"], "pass", "{url}: {r:#}");
        assert_eq!(code, 0, "{r}");
        let text = r.to_string();
        for piece in [pw, enc.as_str(), "p+w&d"] {
            assert!(!text.contains(piece), "password leaked ({piece}): {text}");
        }
    }
}
