//! `chatops demo`: the seed's cascade on the local sandbox, one fault after
//! another, each diagnosed by the shipped playbook, then all green.

use crate::app;
use crate::cli::TargetArgs;
use crate::exit;
use crate::report::{self, Format, Style};
use crate::sandbox::{self, pg::PgCluster, pg::PgOptions, Knobs, Sandbox};
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
            fix: "start the backend (in mock mode by mistake, with its rate limiters on, as it was)",
        },
        Step {
            title: "The backend runs, but in mock mode and with rate limiting on",
            story: "Health answers 200 \"ok\", yet nothing reaches PostgreSQL, and apiLimiter would answer 429 after 100 requests.",
            knobs: Some(Knobs { mock: true, rate_limit: true, ..Knobs::default() }),
            fix: "restart the backend with PRISMA_CLIENT_MODE=database and DISABLE_RATE_LIMIT=true",
        },
        Step {
            title: "All remedies applied",
            story: "The backend runs against PostgreSQL with a 50-connection pool and the limiters skipped.",
            knobs: Some(Knobs::default()),
            fix: "",
        },
    ]
}

pub async fn run(format: Format, style: &Style) -> i32 {
    let c = style.color;
    let head = |s: &str| if c { s.bold().cyan().to_string() } else { s.to_string() };
    if let Err(e) = PgCluster::find_bindir() {
        eprintln!("chatops demo needs the PostgreSQL server binaries (initdb, pg_ctl, postgres): {}", e.message);
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
        eprintln!("{}", head("Starting the sandbox: a throwaway PostgreSQL cluster with chat_backend_db…"));
        let mut sb = match Sandbox::start(&bin, PgOptions::default()).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("chatops: cannot start the sandbox: {e}");
                return exit::INVALID;
            }
        };
        eprintln!("  PostgreSQL on 127.0.0.1:{} (data in {})", sb.pg.port(), sb.pg.dir().display());
        let port = sandbox::free_port();
        let steps = steps();
        let total = steps.len();
        let mut last = exit::FAILED;
        for (i, step) in steps.into_iter().enumerate() {
            println!("\n{}", head(&format!("━━ Step {}/{total}: {} ━━", i + 1, step.title)));
            println!("{}\n", step.story);
            match &step.knobs {
                None => sb.stop_backend(),
                Some(k) => {
                    let k = Knobs { port: Some(port), ..k.clone() };
                    match sb.start_backend(&k).await {
                        Ok(b) => eprintln!("  reference backend pid {} on {}", b.pid, b.base_url()),
                        Err(e) => {
                            eprintln!("chatops: the reference backend did not start: {e}");
                            return exit::INVALID;
                        }
                    }
                }
            }
            let t = TargetArgs { base_url: Some(format!("http://127.0.0.1:{port}")), database_url: Some(sb.db_url.clone()), ..TargetArgs::default() };
            let (rep, red) = match app::run_playbook(&t, false).await {
                Ok(r) => r,
                Err(code) => return code,
            };
            print!("{}", red.redact(&report::render(&rep, format, style)));
            last = app::exit_code(&rep, false);
            if !step.fix.is_empty() {
                println!("\n{} {}", if c { "→ Remedy:".green().bold().to_string() } else { "→ Remedy:".to_string() }, step.fix);
            }
        }
        println!(
            "\n{}",
            head(if last == exit::OK { "The sandbox passes the whole checklist. Point `chatops doctor --base-url … --database-url …` at a real backend next." } else { "The last step did not pass: see the report above." })
        );
        drop(sb);
        last
    };
    tokio::select! {
        code = work => code,
        _ = tokio::signal::ctrl_c() => {
            sandbox::cleanup_all();
            eprintln!("\ninterrupted: the sandbox was removed");
            exit::INTERRUPTED
        }
    }
}
