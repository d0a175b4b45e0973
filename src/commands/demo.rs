//! `chatops demo`: the seed's cascade on the local sandbox, one fault after
//! another, each diagnosed by the shipped playbook, then all green.

use super::{CommandError, CommandResult, Outcome};
use crate::checks::Status;
use crate::report::{self, Format, Style};
use crate::sandbox::{self, Knobs, Sandbox, pg::PgCluster, pg::PgOptions};
use crate::session::{self, Target};
use crate::support::signals;
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
            story: "The backend's prisma/schema.prisma names `Message.messageType`; the table's column is `type`: every send fails. chatops reads the schema from the backend's own project (its working directory) and finds the drift before any request; the failing send is reported as its consequence.",
            knobs: Some(Knobs {
                project: sandbox::ProjectFault::DriftedField,
                ..Knobs::default()
            }),
            fix: "map the field to its column (`type String @map(\"type\")`) or migrate the database, then `npx prisma generate && rm -rf dist && npm run build` and restart the backend",
        },
        Step {
            title: "All remedies applied",
            story: "The backend runs against PostgreSQL with a 50-connection pool, the limiters skipped, a fresh client.",
            knobs: Some(Knobs::default()),
            fix: "",
        },
    ]
}

pub async fn run(
    format: Format,
    project: Option<&std::path::Path>,
    style: &Style,
) -> CommandResult {
    let c = style.color;
    let head = |s: &str| {
        if c {
            s.bold().cyan().to_string()
        } else {
            s.to_string()
        }
    };
    if let Err(e) = PgCluster::find_bindir() {
        let hint = e.hint.map(|h| format!("\n  {h}")).unwrap_or_default();
        return Err(CommandError::Prerequisite(format!(
            "chatops demo needs the PostgreSQL server binaries (initdb, pg_ctl, postgres): {}{hint}",
            e.message
        )));
    }
    let bin = std::env::current_exe()
        .map_err(|e| CommandError::Prerequisite(format!("cannot find my own executable: {e}")))?;
    let cancel = signals::shutdown_token();
    // A second signal exits at once: kill what the sandbox started first.
    signals::on_forced_exit(sandbox::cleanup_all);
    let work = async {
        eprintln!(
            "{}",
            head("Starting the sandbox: a throwaway PostgreSQL cluster with chat_backend_db…")
        );
        let mut sb = Sandbox::start(&bin, PgOptions::default())
            .await
            .map_err(|e| CommandError::Prerequisite(format!("cannot start the sandbox: {e}")))?;
        eprintln!(
            "  PostgreSQL on 127.0.0.1:{} (data in {})",
            sb.pg.port(),
            sb.pg.dir().display()
        );
        let port = sandbox::free_port();
        let steps = steps();
        let total = steps.len();
        let mut last = Status::Fail;
        for (i, step) in steps.into_iter().enumerate() {
            outln!(
                "\n{}",
                head(&format!("━━ Step {}/{total}: {} ━━", i + 1, step.title))
            );
            outln!("{}\n", step.story);
            match &step.knobs {
                None => sb.stop_backend(),
                Some(k) => {
                    let k = Knobs {
                        port: Some(port),
                        ..k.clone()
                    };
                    let b = sb.start_backend(&k).await.map_err(|e| {
                        CommandError::Prerequisite(format!(
                            "the reference backend did not start: {e}"
                        ))
                    })?;
                    eprintln!("  reference backend pid {} on {}", b.pid, b.base_url());
                }
            }
            let mut vars: Vec<(String, String)> = Vec::new();
            if let Some(b) = &sb.backend {
                vars.push(("backend_log".into(), b.log.to_string_lossy().into_owned()));
            }
            let t = Target {
                base_url: Some(format!("http://127.0.0.1:{port}")),
                database_url: Some(sb.db_url.clone()),
                project: project.map(|p| p.to_string_lossy().into_owned()),
                vars,
                ..Target::default()
            };
            let run = session::run(&t, cancel.clone()).await.map_err(|e| {
                CommandError::InvalidPlaybook(t.redactor(None).redact(&e.to_string()))
            })?;
            out!(
                "{}",
                run.redactor
                    .redact(&report::render(&run.report, format, style))
            );
            if run.report.interrupted {
                return Ok(Outcome::Interrupted);
            }
            last = run.report.status;
            if !step.fix.is_empty() {
                outln!(
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
        outln!(
            "\n{}",
            head(if last != Status::Fail {
                "The sandbox passes the whole checklist. Point `chatops doctor --base-url … --database-url …` at a real backend next."
            } else {
                "The last step did not pass: see the report above."
            })
        );
        drop(sb);
        Ok(if last == Status::Fail {
            Outcome::Failed
        } else {
            Outcome::Ok
        })
    };
    // Interrupted between steps or inside one (the step's report is printed,
    // partial): either way what the demo started is removed.
    let r = tokio::select! {
        r = work => r,
        _ = cancel.cancelled() => Ok(Outcome::Interrupted),
    };
    if matches!(r, Ok(Outcome::Interrupted)) {
        sandbox::cleanup_all();
        eprintln!("\ninterrupted: the sandbox was removed");
    }
    r
}
