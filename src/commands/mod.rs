//! One file per subcommand: glue between the command line and the domain.
//! A command never imports another command; what two commands share lives
//! below them in the domain (or, for command-line pieces, in `cli.rs`).
//! Commands return a [`CommandResult`]; only [`main`] prints an error (once,
//! redacted) and picks the exit code.

/// `print!` and `println!` for what a command writes on standard output,
/// without their panic when the reader has gone (`chatops schema | head`):
/// a closed pipe ends nothing but the output.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout().lock(), $($arg)*);
    }};
}
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

pub mod checks;
pub mod cli;
pub mod compare;
pub mod completions;
pub mod demo;
pub mod doctor;
pub mod error;
pub mod exit;
pub mod load;
pub mod pool_calc;
pub mod sandbox;
pub mod schema;
pub mod validate;
pub mod watch_connections;

pub use error::{CommandError, CommandResult};
pub use exit::Outcome;

use crate::report::Style;
use crate::support::redact::Redactor;
use clap::Parser;
use cli::{Cli, ColorChoice, Command};
use std::io::IsTerminal;

/// The whole program: parse the command line, run the command, return the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                exit::INVALID
            } else {
                exit::OK
            };
        }
    };
    // pool-calc and watch-connections use at most one connection: a
    // single-threaded runtime starts faster and stays smaller.
    let single = matches!(
        cli.command,
        Command::PoolCalc(_) | Command::WatchConnections(_)
    );
    let built = if single {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
    };
    let rt = match built {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("chatops: cannot start the async runtime: {e}");
            return exit::INVALID;
        }
    };
    match rt.block_on(dispatch(cli)) {
        Ok(outcome) => outcome.code(),
        Err(e) => {
            let who = e.command().map(|c| format!(" {c}")).unwrap_or_default();
            eprintln!("chatops{who}: {}", argv_redactor().redact(&e.to_string()));
            e.exit_code()
        }
    }
}

/// Knows every URL and secret-looking value on the command line and in
/// DATABASE_URL, so that an error never prints them.
fn argv_redactor() -> Redactor {
    let mut r = Redactor::new();
    for a in std::env::args().skip(1) {
        // `--flag=VALUE` and a separate VALUE (which may hold `=` itself,
        // like a URL with a query string) are both learnt.
        r.learn(&a);
        if let Some((_, v)) = a.split_once('=') {
            r.learn(v);
        }
    }
    if let Ok(u) = std::env::var("DATABASE_URL") {
        r.learn(&u);
    }
    r
}

async fn dispatch(cli: Cli) -> CommandResult {
    let color = use_color(cli.color);
    let style = Style {
        color,
        verbose: cli.verbose,
        quiet: cli.quiet,
    };
    match cli.command {
        Command::Doctor(args) => doctor::run(&args, &style).await,
        Command::Load(args) => load::run(args, &style).await,
        Command::Validate(args) => validate::run(args),
        Command::Checks { kind } => checks::run(kind.as_deref()),
        Command::Schema => schema::run(),
        Command::Completions { shell } => completions::run(shell),
        Command::Demo(args) => demo::run(args.format, args.project.as_deref(), &style).await,
        Command::Sandbox(args) => sandbox::run(&args).await,
        Command::PoolCalc(args) => pool_calc::run(&args, color).await,
        Command::WatchConnections(args) => watch_connections::run(&args, color).await,
        Command::Compare(args) => compare::run(&args, color),
        Command::SandboxBackend => sandbox_backend().await,
    }
}

/// The hidden `sandbox-backend`: the reference backend logs its own errors
/// (as NestJS would) and says only whether it ended cleanly (0) or not.
async fn sandbox_backend() -> CommandResult {
    use crate::sandbox::backend::{BackendConfig, serve};
    Ok(match serve(BackendConfig::from_env()).await {
        exit::OK => Outcome::Ok,
        _ => Outcome::Failed,
    })
}

/// Colours only on a terminal, and never when NO_COLOR is set (no-color.org).
pub fn use_color(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::env::var("TERM").map(|t| t != "dumb").unwrap_or(true)
        }
    }
}
