//! The `sql` check against a real cluster: schema drift on the seed's
//! `messageType` column, writes refused by the READ ONLY transaction (and
//! the table unchanged), bound parameters, statement_timeout.

use crate::common::*;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

fn one(url: &str, fields: &str) -> String {
    format!(
        r#"name: sql
phases:
  - name: Database
    checks:
      - id: q
        kind: sql
        url: "{url}"
{fields}"#
    )
}

#[test]
fn healthy_chat_schema_passes_tables_and_columns() {
    let pg = cluster();
    let db = unique("schema_ok");
    let url = rt().block_on(pg.setup_chat_db(&db)).unwrap();
    let (code, r) = doctor_json(
        &one(
            &url,
            r#"        tables_exist: true
        columns_exist: [messages.type, message_reads, messages.content]
"#,
        ),
        &[],
    );
    assert_eq!(code, 0, "{r}");
    let c = check(&r, "q");
    assert_eq!(c["status"], "pass", "{c}");
    assert!(
        c["summary"]
            .as_str()
            .unwrap()
            .contains("15 schema object(s)"),
        "{c}"
    );
}

#[test]
fn drift_messagetype_instead_of_type_is_a_named_finding() {
    let pg = cluster();
    let db = unique("drift");
    let url = rt().block_on(async {
        let url = pg.setup_chat_db(&db).await.unwrap();
        let c = pg.connect(&db).await.unwrap();
        c.batch_execute(
            "ALTER TABLE messages RENAME COLUMN type TO \"messageType\";
             ALTER TABLE message_reads RENAME TO \"readReceipts\";",
        )
        .await
        .unwrap();
        url
    });
    let (code, r) = doctor_json(
        &one(
            &url,
            r#"        tables_exist: true
        columns_exist: [messages.type, messages.content]
"#,
        ),
        &[],
    );
    assert_eq!(code, 1, "{r}");
    let c = check(&r, "q");
    assert_eq!(c["status"], "fail");
    assert_eq!(
        c["summary"],
        "schema drift: missing table(s) message_reads and column(s) messages.type"
    );
    let root = c["root_cause"].as_str().unwrap();
    assert!(root.contains("Schema drift"), "{root}");
    assert!(
        root.contains("`messages` has column `messageType`, not `type`"),
        "{root}"
    );
    assert!(root.contains("P2022"), "{root}");
    let remedy = c["remedy"].as_str().unwrap();
    assert!(remedy.contains("npx prisma generate"), "{remedy}");
    assert!(remedy.contains("rm -rf dist"), "{remedy}");
    assert_eq!(c["captures"]["missing_columns"][0], "messages.type");
    assert!(!r.to_string().contains("postgrespassword"));
}

#[test]
fn writes_are_refused_and_the_table_is_unchanged() {
    let pg = cluster();
    let db = unique("ro");
    let rt = rt();
    let url = rt.block_on(pg.setup_chat_db(&db)).unwrap();
    let count = || {
        rt.block_on(async {
            let c = pg.connect(&db).await.unwrap();
            let row = c
                .query_one("SELECT count(*), max(username) FROM users", &[])
                .await
                .unwrap();
            (row.get::<_, i64>(0), row.get::<_, Option<String>>(1))
        })
    };
    let before = count();
    assert!(before.0 >= 1, "the seed user exists");
    for stmt in [
        "INSERT INTO users (id, email, username) VALUES ('x', 'x@example.com', 'intruder')",
        "UPDATE users SET username = 'renamed'",
        "DROP TABLE users CASCADE",
        "DELETE FROM users",
        "WITH gone AS (DELETE FROM users RETURNING id) SELECT count(*) FROM gone",
    ] {
        let (code, r) = doctor_json(&one(&url, &format!("        query: \"{stmt}\"\n")), &[]);
        assert_eq!(code, 1, "{stmt}: {r}");
        let c = check(&r, "q");
        assert_eq!(c["status"], "fail");
        assert!(
            c["summary"]
                .as_str()
                .unwrap()
                .starts_with("refused by the read-only transaction"),
            "{stmt}: {c}"
        );
        assert!(
            c["root_cause"].as_str().unwrap().contains("SQLSTATE 25006"),
            "{c}"
        );
        assert_eq!(count(), before, "{stmt} changed the table");
    }
    // Nor can the statement lift the read-only mode.
    let (code, r) = doctor_json(
        &one(&url, "        query: \"SET TRANSACTION READ WRITE\"\n"),
        &[],
    );
    assert_eq!(code, 1, "{r}");
    assert!(
        check(&r, "q")["summary"]
            .as_str()
            .unwrap()
            .contains("must be set before any query"),
        "{r}"
    );
}

#[test]
fn values_are_bound_not_spliced() {
    let pg = cluster();
    let db = unique("bind");
    let url = rt().block_on(pg.setup_chat_db(&db)).unwrap();
    let q = "        query: \"SELECT username, id FROM users WHERE username = $1\"\n";
    let (code, r) = doctor_json(
        &one(
            &url,
            &format!(
                r#"{q}        params: [loadtest_user]
        expect: {{rows: 1, values: {{username: loadtest_user}}}}
"#
            ),
        ),
        &[],
    );
    assert_eq!(code, 0, "{r}");
    assert_eq!(check(&r, "q")["captures"]["rows"], 1);
    // An injection attempt is just a string that matches nobody.
    let (code, r) = doctor_json(
        &one(
            &url,
            &format!(
                r#"{q}        params: ["x' OR '1'='1"]
        expect: {{empty: true}}
"#
            ),
        ),
        &[],
    );
    assert_eq!(code, 0, "{r}");
    // And an expectation that does not hold is a finding.
    let (code, r) = doctor_json(
        &one(
            &url,
            &format!(
                r#"{q}        params: [nobody]
        expect: {{empty: false}}
"#
            ),
        ),
        &[],
    );
    assert_eq!(code, 1, "{r}");
    let c = check(&r, "q");
    assert_eq!(
        c["summary"],
        "the query's row count is 0, expected at least 1"
    );
    // Interpolation inside the query text is refused when the playbook loads.
    let p = write_playbook(&one(
        &url,
        "        query: \"SELECT * FROM users WHERE id = '${vars.id}'\"\n",
    ));
    let run = chatops(&["validate", p.to_str().unwrap()], &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("not allowed in `query`"),
        "{}",
        run.stderr
    );
}

#[test]
fn statement_timeout_cancels_a_slow_query() {
    let pg = cluster();
    let url = pg.url("postgres");
    let (code, r) = doctor_json(
        &one(
            &url,
            r#"        query: "SELECT pg_sleep(5)"
        statement_timeout: 200ms
"#,
        ),
        &[],
    );
    assert_eq!(code, 1, "{r}");
    let c = check(&r, "q");
    assert_eq!(c["summary"], "cancelled after the 200 ms statement_timeout");
    assert!(c["root_cause"].as_str().unwrap().contains("57014"));
    assert!(c["duration_ms"].as_u64().unwrap() < 4000, "{c}");
}
