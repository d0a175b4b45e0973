//! `chatops demo`: the seed's cascade on the local sandbox, one fault after
//! another, each diagnosed by the shipped playbook, then all green.

use crate::app;
use crate::cli::TargetArgs;
use crate::exit;
use crate::report::{self, Format, Style};
use crate::sandbox::{self, Knobs, Sandbox, pg::PgCluster, pg::PgOptions};
use owo_colors::OwoColorize;

struct Step {
    title: &'static str,
    story: &'static str,
    /// None: the backend is not started.
    knobs: Option<Knobs>,
    fix: &'static str,
}

fn steps() -> Vec<Step> {
    vec![
        Step {
            title: "The load test hits a backend that is not running",
            story: "56,250 of 56,250 requests failed with ECONNREFUSED at 0 ms: nobody had started the backend.",
            knobs: None,
            fix: "start the backend; each fix then uncovers the next fault, as in the seed",
        },
        Step {
            title: "The backend runs, with a pool of 2 connections for 120 virtual users",
            story: "DATABASE_URL carries connection_limit=2: under load, requests wait for a connection and time out (Prisma P2024).",
            knobs: Some(Knobs {
                connection_limit: Some(2),
                pool_timeout: Some(2),
                ..Knobs::default()
            }),
            fix: "restart with connection_limit=50&pool_timeout=30 (what `chatops pool-calc` gives for 120 VUs)",
        },
        Step {
            title: "Five express-rate-limit limiters answer 429",
            story: "apiLimiter allows 100 requests per 15 minutes: a load test meets 429s within seconds.",
            knobs: Some(Knobs {
                rate_limit: true,
                ..Knobs::default()
            }),
            fix: "restart with DISABLE_RATE_LIMIT=true in the backend's own environment",
        },
        Step {
            title: "Mock mode hides the database",
            story: "Health answers 200 \"ok\", yet nothing reaches PostgreSQL: PRISMA_CLIENT_MODE=mock.",
            knobs: Some(Knobs {
                mock: true,
                ..Knobs::default()
            }),
            fix: "restart with PRISMA_CLIENT_MODE=database",
        },
        Step {
            title: "Prisma field names drifted from the schema",
            story: "The generated client writes `messageType`; the table's column is `type`: every send fails.",
            knobs: Some(Knobs {
                drift: true,
                ..Knobs::default()
            }),
            fix: "regenerate the Prisma client and rebuild cleanly (`rm -rf dist && npx prisma generate && npm run build`)",
        },
        Step {
            title: "All remedies applied",
            story: "The backend runs against PostgreSQL with a 50-connection pool, the limiters skipped, a fresh client.",
            knobs: Some(Knobs::default()),
            fix: "",
        },
    ]
}

pub async fn run(format: Format, style: &Style) -> i32 {
    let c = style.color;
    let head = |s: &str| {
        if c {
            s.bold().cyan().to_string()
        } else {
            s.to_string()
        }
    };
    if let Err(e) = PgCluster::find_bindir() {
        eprintln!(
            "chatops demo needs the PostgreSQL server binaries (initdb, pg_ctl, postgres): {}",
            e.message
        );
        if let Some(h) = e.hint {
            eprintln!("  {h}");
        }
        return exit::INVALID;
    }
    let bin = match std::env::current_exe() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("chatops: cannot find my own executable: {e}");
            return exit::INVALID;
        }
    };
    let work = async {
        eprintln!(
            "{}",
            head("Starting the sandbox: a throwaway PostgreSQL cluster with chat_backend_db…")
        );
        let mut sb = match Sandbox::start(&bin, PgOptions::default()).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("chatops: cannot start the sandbox: {e}");
                return exit::INVALID;
            }
        };
        eprintln!(
            "  PostgreSQL on 127.0.0.1:{} (data in {})",
            sb.pg.port(),
            sb.pg.dir().display()
        );
        let port = sandbox::free_port();
        let steps = steps();
        let total = steps.len();
        let mut last = exit::FAILED;
        for (i, step) in steps.into_iter().enumerate() {
            println!(
                "\n{}",
                head(&format!("━━ Step {}/{total}: {} ━━", i + 1, step.title))
            );
            println!("{}\n", step.story);
            match &step.knobs {
                None => sb.stop_backend(),
                Some(k) => {
                    let k = Knobs {
                        port: Some(port),
                        ..k.clone()
                    };
                    match sb.start_backend(&k).await {
                        Ok(b) => eprintln!("  reference backend pid {} on {}", b.pid, b.base_url()),
                        Err(e) => {
                            eprintln!("chatops: the reference backend did not start: {e}");
                            return exit::INVALID;
                        }
                    }
                }
            }
            let mut vars = vec![("stability_duration".to_string(), "1s".to_string())];
            if let Some(b) = &sb.backend {
                vars.push(("backend_log".into(), b.log.to_string_lossy().into_owned()));
            }
            let t = TargetArgs {
                base_url: Some(format!("http://127.0.0.1:{port}")),
                database_url: Some(sb.db_url.clone()),
                vars,
                ..TargetArgs::default()
            };
            let (rep, red) = match app::run_playbook(&t, false).await {
                Ok(r) => r,
                Err(code) => return code,
            };
            print!("{}", red.redact(&report::render(&rep, format, style)));
            last = app::exit_code(&rep, false);
            if !step.fix.is_empty() {
                println!(
                    "\n{} {}",
                    if c {
                        "→ Remedy:".green().bold().to_string()
                    } else {
                        "→ Remedy:".to_string()
                    },
                    step.fix
                );
            }
        }
        println!(
            "\n{}",
            head(if last == exit::OK {
                "The sandbox passes the whole checklist. Point `chatops doctor --base-url … --database-url …` at a real backend next."
            } else {
                "The last step did not pass: see the report above."
            })
        );
        drop(sb);
        last
    };
    tokio::select! {
        code = work => code,
        _ = shutdown_signal() => {
            sandbox::cleanup_all();
            eprintln!("\ninterrupted: the sandbox was removed");
            exit::INTERRUPTED
        }
    }
}

/// `chatops sandbox`: the sandbox, up until Ctrl-C, for exploring and benchmarks.
pub async fn sandbox(a: &crate::cli::SandboxArgs) -> i32 {
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
        _ = shutdown_signal() => {
            sandbox::cleanup_all();
            exit::OK
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
