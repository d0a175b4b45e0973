//! pg_ready and pg_connect against real PostgreSQL clusters, compared with the
//! real pg_isready.

use crate::common::*;

fn ready_and_login(url: &str) -> String {
    format!(
        r#"name: pg
phases:
  - name: Database
    checks:
      - {{id: ready, kind: pg_ready, url: "{url}"}}
      - {{id: login, kind: pg_connect, url: "{url}", needs: [ready]}}
"#
    )
}

#[test]
fn accepting_and_logged_in() {
    let pg = cluster();
    let db = unique("ok");
    let url = {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(pg.setup_chat_db(&db)).unwrap()
    };
    let (code, r) = doctor_json(&ready_and_login(&url), &[]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(check(&r, "ready")["status"], "pass");
    assert!(
        check(&r, "ready")["summary"]
            .as_str()
            .unwrap()
            .ends_with("- accepting connections")
    );
    assert_eq!(check(&r, "login")["status"], "pass");
    assert_eq!(
        pg_isready(&pg, "127.0.0.1", pg.port(), "postgres", &db),
        Some(0)
    );
}

#[test]
fn wrong_password_is_still_accepting_but_login_fails() {
    let pg = cluster();
    let url = format!(
        "postgresql://postgres:wrong-password@127.0.0.1:{}/postgres",
        pg.port()
    );
    let (code, r) = doctor_json(&ready_and_login(&url), &[]);
    assert_eq!(code, 1);
    assert_eq!(
        check(&r, "ready")["status"],
        "pass",
        "pg_isready semantics: auth failure is accepting"
    );
    let login = check(&r, "login");
    assert_eq!(login["status"], "fail");
    assert!(
        login["root_cause"].as_str().unwrap().contains("28P01"),
        "{login}"
    );
    assert!(
        !r.to_string().contains("wrong-password"),
        "password leaked: {r}"
    );
    assert_eq!(
        pg_isready(&pg, "127.0.0.1", pg.port(), "postgres", "postgres"),
        Some(0)
    );
}

#[test]
fn missing_database_named() {
    let pg = cluster();
    let url = pg.url("chat_backend_db_missing");
    let (code, r) = doctor_json(&ready_and_login(&url), &[]);
    assert_eq!(code, 1);
    assert_eq!(check(&r, "ready")["status"], "pass");
    let login = check(&r, "login");
    assert!(
        login["summary"]
            .as_str()
            .unwrap()
            .contains("`chat_backend_db_missing` does not exist"),
        "{login}"
    );
    assert!(
        login["remedy"]
            .as_str()
            .unwrap()
            .contains("createdb chat_backend_db_missing"),
        "{login}"
    );
}

#[test]
fn too_many_clients_is_found_by_login_not_by_ping() {
    let pg = start_cluster(chatops::sandbox::pg::PgOptions {
        max_connections: 4,
        ..Default::default()
    });
    let url = pg.url("postgres");
    let rt = tokio::runtime::Runtime::new().unwrap();
    // Fill every slot (superusers may use the reserved ones too).
    let mut held = Vec::new();
    rt.block_on(async {
        for _ in 0..10 {
            match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
                Ok((c, conn)) => {
                    tokio::spawn(conn);
                    held.push(c);
                }
                Err(_) => break,
            }
        }
    });
    assert!(!held.is_empty());
    let (code, r) = doctor_json(&ready_and_login(&url), &[]);
    assert_eq!(code, 1);
    assert_eq!(check(&r, "ready")["status"], "pass");
    let login = check(&r, "login");
    assert!(
        login["summary"]
            .as_str()
            .unwrap()
            .contains("too many clients"),
        "{login}"
    );
    assert!(
        login["root_cause"].as_str().unwrap().contains("53300"),
        "{login}"
    );
    assert_eq!(
        pg_isready(&pg, "127.0.0.1", pg.port(), "postgres", "postgres"),
        Some(0)
    );
    drop(held);
}

#[test]
fn stopped_server_is_no_response_and_dependents_blocked() {
    let pg = start_cluster(Default::default());
    let url = pg.url("postgres");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(pg.stop()).unwrap();
    let (code, r) = doctor_json(&ready_and_login(&url), &[]);
    assert_eq!(code, 1);
    let ready = check(&r, "ready");
    assert_eq!(ready["status"], "fail");
    assert!(
        ready["summary"]
            .as_str()
            .unwrap()
            .ends_with("- no response"),
        "{ready}"
    );
    assert!(
        ready["root_cause"]
            .as_str()
            .unwrap()
            .contains("not running"),
        "{ready}"
    );
    let login = check(&r, "login");
    assert_eq!(login["status"], "blocked");
    assert_eq!(login["blocked_by"], "ready");
    assert_eq!(
        pg_isready(&pg, "127.0.0.1", pg.port(), "postgres", "postgres"),
        Some(2)
    );
    rt.block_on(pg.start_again()).unwrap();
    let (code, r) = doctor_json(&ready_and_login(&url), &[]);
    assert_eq!(code, 0, "{r}");
}

#[test]
fn unusable_url_is_no_attempt() {
    let y = r#"phases:
  - name: x
    checks:
      - {id: ready, kind: pg_ready, url: "postgresql://u@h:notaport/d"}
"#;
    let (code, r) = doctor_json(y, &[]);
    assert_eq!(code, 1);
    assert!(
        check(&r, "ready")["summary"]
            .as_str()
            .unwrap()
            .contains("no attempt"),
        "{r}"
    );
}
