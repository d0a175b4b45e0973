//! Integration tests of the throwaway PostgreSQL cluster (src/sandbox/pg.rs).
//! They need the PostgreSQL server binaries (see `PgCluster::find_bindir`).

use std::time::Duration;

use chatops::sandbox::pg::{CHAT_TABLES, PgCluster, PgOptions, cleanup_all};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};

async fn connect(url: &str) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = tokio::time::timeout(
        Duration::from_secs(15),
        tokio_postgres::connect(&format!("{url}?connect_timeout=10"), NoTls),
    )
    .await
    .expect("connect timed out")?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

async fn start(opts: PgOptions) -> PgCluster {
    match PgCluster::start(opts).await {
        Ok(cluster) => cluster,
        Err(e) => panic!("starting the cluster failed: {e}"),
    }
}

async fn show(client: &Client, setting: &str) -> String {
    let row = client
        .query_one(&format!("SHOW {setting}"), &[])
        .await
        .expect("SHOW");
    row.get(0)
}

#[tokio::test]
async fn starts_and_loads_chat_schema() {
    let pg = start(PgOptions::default()).await;
    assert_eq!(pg.host(), "127.0.0.1");
    assert!((20000..32000).contains(&pg.port()), "port {}", pg.port());
    assert!(pg.bindir().join("initdb").is_file());
    assert!(pg.log_path().is_file());
    assert!(pg.is_running());
    assert_eq!(
        pg.url("postgres"),
        format!(
            "postgresql://postgres:postgrespassword@127.0.0.1:{}/postgres",
            pg.port()
        )
    );

    let client = connect(&pg.url("postgres"))
        .await
        .expect("connect with the password");
    let one: i32 = client
        .query_one("SELECT 1", &[])
        .await
        .expect("SELECT 1")
        .get(0);
    assert_eq!(one, 1);

    let url = pg
        .setup_chat_db("chat_backend_db")
        .await
        .expect("setup_chat_db");
    assert_eq!(url, pg.url("chat_backend_db"));
    let chat = connect(&url).await.expect("connect to chat_backend_db");
    let rows = chat
        .query(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1",
            &[],
        )
        .await
        .expect("list tables");
    let tables: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    let mut expected: Vec<String> = CHAT_TABLES.iter().map(|t| t.to_string()).collect();
    expected.sort();
    assert_eq!(tables.len(), 12);
    assert_eq!(tables, expected);
    let users: i64 = chat
        .query_one(
            "SELECT count(*) FROM users WHERE username = 'loadtest_user'",
            &[],
        )
        .await
        .expect("seed user")
        .get(0);
    assert_eq!(users, 1);

    // Creating it twice is an error that says why.
    let again = pg
        .create_database("chat_backend_db")
        .await
        .expect_err("duplicate database");
    assert!(again.message.contains("42P04"), "{again}");
}

#[tokio::test]
async fn wrong_password_is_rejected_with_28p01() {
    let pg = crate::common::cluster();
    let url = format!(
        "postgresql://postgres:not-the-password@127.0.0.1:{}/postgres",
        pg.port()
    );
    let err = connect(&url).await.expect_err("wrong password must fail");
    assert_eq!(err.code(), Some(&SqlState::INVALID_PASSWORD), "{err:?}");
}

#[tokio::test]
async fn stop_then_start_again_on_the_same_port() {
    let pg = start(PgOptions::default()).await;
    let port = pg.port();
    pg.create_database("kept").await.expect("create_database");

    pg.stop().await.expect("stop");
    assert!(!pg.is_running());
    assert!(pg.dir().is_dir(), "stop keeps the files");
    let err = connect(&pg.url("postgres"))
        .await
        .expect_err("stopped server must refuse");
    assert!(
        err.code().is_none(),
        "expected a connection error, got {err:?}"
    );
    pg.stop().await.expect("stopping a stopped cluster is fine");

    pg.start_again().await.expect("start_again");
    assert_eq!(pg.port(), port);
    assert!(pg.is_running());
    let client = connect(&pg.url("kept"))
        .await
        .expect("connect after start_again");
    let one: i32 = client
        .query_one("SELECT 1", &[])
        .await
        .expect("SELECT 1")
        .get(0);
    assert_eq!(one, 1);
}

#[tokio::test]
async fn options_take_effect() {
    let pg = start(PgOptions {
        password: "p@ss word/with:odd'chars".to_string(),
        max_connections: 42,
        extra_settings: vec![
            ("work_mem".to_string(), "8MB".to_string()),
            ("cluster_name".to_string(), r"it's a \ test".to_string()),
        ],
        ..PgOptions::default()
    })
    .await;
    let client = connect(&pg.url("postgres"))
        .await
        .expect("connect with an odd password");
    assert_eq!(show(&client, "max_connections").await, "42");
    assert_eq!(show(&client, "work_mem").await, "8MB");
    assert_eq!(show(&client, "cluster_name").await, r"it's a \ test");
    assert_eq!(show(&client, "listen_addresses").await, "127.0.0.1");
    assert_eq!(show(&client, "fsync").await, "off");
}

#[tokio::test]
async fn drop_removes_the_directory() {
    let pg = start(PgOptions::default()).await;
    let dir = pg.dir().to_path_buf();
    let url = pg.url("postgres");
    assert!(dir.is_dir());
    drop(pg);
    assert!(!dir.exists(), "{} still exists", dir.display());
    assert!(
        connect(&url).await.is_err(),
        "server still answers after drop"
    );
}

#[tokio::test]
async fn two_clusters_start_concurrently() {
    let (a, b) = tokio::join!(
        PgCluster::start(PgOptions::default()),
        PgCluster::start(PgOptions::default())
    );
    let (a, b) = (a.expect("first cluster"), b.expect("second cluster"));
    assert_ne!(a.port(), b.port());
    assert_ne!(a.dir(), b.dir());
    for pg in [&a, &b] {
        let client = connect(&pg.url("postgres")).await.expect("connect");
        let port: String = show(&client, "port").await;
        assert_eq!(port, pg.port().to_string());
    }
}

#[tokio::test]
async fn bad_settings_fail_with_the_log_tail() {
    let err = PgCluster::start(PgOptions {
        extra_settings: vec![("shared_buffers".to_string(), "lots".to_string())],
        ..PgOptions::default()
    })
    .await
    .expect_err("invalid shared_buffers must fail");
    assert!(err.message.contains("shared_buffers"), "{err}");

    let err = PgCluster::start(PgOptions {
        max_connections: 2,
        ..PgOptions::default()
    })
    .await
    .expect_err("max_connections 2 must be refused");
    assert!(err.message.contains("max_connections"), "{err}");

    let err = PgCluster::start(PgOptions {
        extra_settings: vec![("bad name".to_string(), "x".to_string())],
        ..PgOptions::default()
    })
    .await
    .expect_err("bad setting name must be refused");
    assert!(err.message.contains("bad name"), "{err}");
}

#[test]
fn find_bindir_finds_server_binaries() {
    let dir = PgCluster::find_bindir().expect("find_bindir");
    for tool in ["initdb", "pg_ctl", "postgres"] {
        assert!(dir.join(tool).is_file(), "{} lacks {tool}", dir.display());
    }
}

/// `cleanup_all` stops every cluster of the process, the suite's shared one
/// too: the test runs in a process of its own.
#[test]
fn cleanup_all_stops_every_cluster() {
    if !crate::common::in_own_process("sandbox_pg::cleanup_all_stops_every_cluster") {
        return;
    }
    crate::common::runtime().block_on(cleanup_all_in_this_process());
}

async fn cleanup_all_in_this_process() {
    let a = start(PgOptions::default()).await;
    let b = start(PgOptions::default()).await;
    let dirs = [a.dir().to_path_buf(), b.dir().to_path_buf()];
    cleanup_all();
    cleanup_all();
    for (pg, dir) in [(&a, &dirs[0]), (&b, &dirs[1])] {
        assert!(!pg.is_running());
        assert!(!dir.exists(), "{} still exists", dir.display());
        assert!(
            pg.stop().await.is_err(),
            "a cleaned-up cluster cannot be used"
        );
    }
    drop(a);
    drop(b);
}
