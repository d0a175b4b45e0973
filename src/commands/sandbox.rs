//! `chatops sandbox`: the throwaway PostgreSQL and reference backend, up
//! until Ctrl-C or SIGTERM.

use super::cli::SandboxArgs;
use super::exit;
use crate::sandbox::{self, Knobs, Sandbox, pg::PgOptions};

/// `chatops sandbox`: the sandbox, up until Ctrl-C, for exploring and benchmarks.
pub async fn run_legacy(a: &SandboxArgs) -> i32 {
    let bin = match std::env::current_exe() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("chatops: cannot find my own executable: {e}");
            return exit::INVALID;
        }
    };
    let work = async {
        let mut sb = match Sandbox::start(
            &bin,
            PgOptions {
                max_connections: a.max_connections,
                ..PgOptions::default()
            },
        )
        .await
        {
            Ok(s) => s,
            Err(e) => {
                eprintln!("chatops: cannot start the sandbox: {e}");
                return exit::INVALID;
            }
        };
        let port = a.port.unwrap_or_else(sandbox::free_port);
        let knobs = Knobs {
            port: Some(port),
            mock: a.mock,
            rate_limit: a.rate_limit,
            drift: a.drift,
            connection_limit: Some(a.connection_limit),
            pool_timeout: Some(a.pool_timeout),
            ..Knobs::default()
        };
        let mut lines = vec![
            format!("export CHATOPS_BASE_URL=http://127.0.0.1:{port}"),
            format!("export DATABASE_URL='{}'", sb.db_url),
            format!("export CHATOPS_PG_PORT={}", sb.pg.port()),
            format!("export CHATOPS_PG_BINDIR='{}'", sb.pg.bindir().display()),
        ];
        if !a.no_backend {
            match sb.start_backend(&knobs).await {
                Ok(b) => {
                    lines.push(format!("export CHATOPS_BACKEND_PID={}", b.pid));
                    lines.push(format!("export CHATOPS_BACKEND_LOG='{}'", b.log.display()));
                }
                Err(e) => {
                    eprintln!("chatops: the reference backend did not start: {e}");
                    return exit::INVALID;
                }
            }
        }
        let text = lines.join("\n") + "\n";
        println!("{text}");
        eprintln!("sandbox up; Ctrl-C to stop and remove it");
        if let Some(f) = &a.env_file
            && let Err(e) = std::fs::write(f, &text)
        {
            eprintln!("chatops: cannot write {}: {e}", f.display());
            return exit::INVALID;
        }
        std::future::pending::<i32>().await
    };
    tokio::select! {
        code = work => code,
        _ = crate::support::signals::shutdown_token().cancelled_owned() => {
            sandbox::cleanup_all();
            exit::OK
        }
    }
}

pub async fn run(a: &SandboxArgs) -> super::CommandResult {
    super::legacy(run_legacy(a).await)
}
