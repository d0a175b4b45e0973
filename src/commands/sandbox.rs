//! `chatops sandbox`: the throwaway PostgreSQL and reference backend, up
//! until Ctrl-C or SIGTERM (then removed; exit 130 or 143, as every
//! long-running command), for exploring and benchmarks.

use super::cli::SandboxArgs;
use super::{CommandError, CommandResult, Outcome};
use crate::sandbox::pgbouncer::BouncerOptions;
use crate::sandbox::{self, Knobs, Sandbox, pg::PgOptions};
use crate::support::signals;

pub async fn run(a: &SandboxArgs) -> CommandResult {
    let bin = std::env::current_exe()
        .map_err(|e| CommandError::Prerequisite(format!("cannot find my own executable: {e}")))?;
    let cancel = signals::shutdown_token();
    // A second signal exits at once: kill what the sandbox started first.
    signals::on_forced_exit(sandbox::cleanup_all);
    let work = async {
        let mut sb = Sandbox::start(
            &bin,
            PgOptions {
                max_connections: a.max_connections,
                stat_statements: a.pg_stat_statements || a.slow_history.is_some(),
                ..PgOptions::default()
            },
        )
        .await
        .map_err(|e| CommandError::Prerequisite(format!("cannot start the sandbox: {e}")))?;
        let port = a.port.unwrap_or_else(sandbox::free_port);
        let knobs = Knobs {
            port: Some(port),
            mock: a.mock,
            rate_limit: a.rate_limit,
            drift: a.drift,
            connection_limit: Some(a.connection_limit),
            pool_timeout: Some(a.pool_timeout),
            cpu_ms: a.cpu_ms,
            lock_ms: a.lock_ms,
            slow_history_rows: a.slow_history,
            retain_kb: a.retain_kb,
            crash_after: a.crash_after,
            generic_500: a.generic_500,
            project: a.project_fault,
            through_pgbouncer: a.bouncer.pgbouncer,
            pgbouncer_param: !a.bouncer.no_pgbouncer_param,
            ..Knobs::default()
        };
        let mut lines = vec![
            format!("export CHATOPS_BASE_URL=http://127.0.0.1:{port}"),
            format!("export DATABASE_URL='{}'", sb.db_url),
            format!("export CHATOPS_PG_PORT={}", sb.pg.port()),
            format!("export CHATOPS_PG_BINDIR='{}'", sb.pg.bindir().display()),
        ];
        if a.bouncer.pgbouncer {
            let o = BouncerOptions {
                pool_mode: a.bouncer.pgbouncer_mode.clone(),
                default_pool_size: a.bouncer.pgbouncer_pool_size,
                max_client_conn: a.bouncer.pgbouncer_max_client_conn,
                port: a.bouncer.pgbouncer_port,
                ..BouncerOptions::default()
            };
            let b = sb
                .start_pgbouncer(&o)
                .map_err(|e| CommandError::Prerequisite(format!("PgBouncer did not start: {e}")))?;
            lines.push(format!(
                "export CHATOPS_PGBOUNCER_URL='{}'",
                b.console_url()
            ));
            lines.push(format!("export CHATOPS_PGBOUNCER_PORT={}", b.port));
            lines.push(format!(
                "export CHATOPS_PGBOUNCER_LOG='{}'",
                b.log_path().display()
            ));
        }
        if !a.no_backend {
            let b = sb.start_backend(&knobs).await.map_err(|e| {
                CommandError::Prerequisite(format!("the reference backend did not start: {e}"))
            })?;
            lines.push(format!("export CHATOPS_BACKEND_PID={}", b.pid));
            lines.push(format!("export CHATOPS_BACKEND_LOG='{}'", b.log.display()));
        }
        let text = lines.join("\n") + "\n";
        outln!("{text}");
        eprintln!("sandbox up; Ctrl-C to stop and remove it");
        if let Some(f) = &a.env_file {
            crate::support::atomic::write(f, text.as_bytes())?;
        }
        // Up until a signal; `sb` is dropped (and removed) with this future.
        std::future::pending::<CommandResult>().await
    };
    tokio::select! {
        r = work => r,
        _ = cancel.cancelled() => {
            sandbox::cleanup_all();
            eprintln!("sandbox stopped and removed");
            Ok(Outcome::Interrupted)
        }
    }
}
