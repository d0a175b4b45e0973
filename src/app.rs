//! Command implementations behind the thin `main`.

use crate::cli::{Cli, ColorChoice, Command, DoctorArgs, TargetArgs};
use crate::engine::{self, Report, RunOptions};
use crate::playbook::{self, LoadError, LoadOptions, Playbook, Source};
use crate::redact::Redactor;
use crate::report::{self, Format, Style};
use crate::{embedded, exit};
use clap::{CommandFactory, Parser};
use std::io::{IsTerminal, Write};

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
    rt.block_on(dispatch(cli))
}

async fn dispatch(cli: Cli) -> i32 {
    let color = use_color(cli.color);
    let style = Style {
        color,
        verbose: cli.verbose,
        quiet: cli.quiet,
    };
    match cli.command {
        Command::Doctor(args) => doctor(&args, &style).await,
        Command::Load(args) => crate::load::app::run(args, &style).await,
        Command::Validate(args) => {
            let mut target = args.target;
            if args.file.is_some() {
                target.playbook = args.file;
            }
            validate(&target)
        }
        Command::Checks { kind } => list_checks(kind.as_deref()),
        Command::Schema => {
            println!(
                "{}",
                serde_json::to_string_pretty(&playbook::schema::playbook_schema())
                    .unwrap_or_default()
            );
            exit::OK
        }
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "chatops", &mut std::io::stdout());
            exit::OK
        }
        Command::Demo(args) => crate::demo::run(args.format, &style).await,
        Command::Sandbox(args) => crate::demo::sandbox(&args).await,
        Command::PoolCalc(args) => crate::poolcalc_cmd::run(&args, color).await,
        Command::WatchConnections(args) => crate::watch::run(&args, color).await,
        Command::SandboxBackend => {
            crate::sandbox::backend::serve(crate::sandbox::backend::BackendConfig::from_env()).await
        }
    }
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

pub fn load_options(t: &TargetArgs) -> LoadOptions {
    let mut target = Vec::new();
    if let Some(u) = &t.base_url {
        target.push(("base_url".to_string(), u.trim_end_matches('/').to_string()));
    }
    if let Some(u) = &t.database_url {
        target.push(("database_url".to_string(), u.clone()));
    }
    LoadOptions {
        vars: t.vars.clone(),
        target,
        allow_remote: t.allow_remote,
        ..Default::default()
    }
}

pub fn source(t: &TargetArgs) -> Source {
    match &t.playbook {
        Some(p) => Source::File(p.clone()),
        None => Source::Embedded(embedded::DEFAULT_PLAYBOOK),
    }
}

/// A redactor that knows every secret the playbook and the command line hold.
pub fn redactor_for(pb: Option<&Playbook>, t: &TargetArgs) -> Redactor {
    let mut r = Redactor::new();
    for v in [&t.base_url, &t.database_url].into_iter().flatten() {
        r.learn(v);
    }
    for (k, v) in &t.vars {
        r.learn(v);
        if crate::redact::is_secret_name(k) {
            r.add(v);
        }
    }
    if let Ok(u) = std::env::var("DATABASE_URL") {
        r.learn(&u);
    }
    if let Some(pb) = pb {
        for v in pb.target.values() {
            r.learn(v);
        }
        for (k, v) in &pb.vars {
            r.learn(v);
            if crate::redact::is_secret_name(k) {
                r.add(v);
            }
        }
        for c in pb.checks() {
            r.learn_json(&c.params);
        }
    }
    r
}

fn print_load_error(e: &LoadError, red: &Redactor) {
    eprintln!("chatops: invalid playbook: {}", red.redact(&e.to_string()));
}

fn validate(t: &TargetArgs) -> i32 {
    let red = redactor_for(None, t);
    match playbook::load(&source(t), &load_options(t)) {
        Ok(pb) => {
            let n = pb.checks().count();
            println!(
                "{}: valid — {} phase(s), {n} check(s)",
                red.redact(&pb.file),
                pb.phases.len()
            );
            exit::OK
        }
        Err(e) => {
            print_load_error(&e, &red);
            exit::INVALID
        }
    }
}

fn list_checks(only: Option<&str>) -> i32 {
    let kinds: Vec<_> = crate::checks::KINDS
        .iter()
        .filter(|k| only.is_none_or(|o| o == k.name()))
        .collect();
    if kinds.is_empty() {
        let o = only.unwrap_or_default();
        let hint = playbook::error::nearest(o, crate::checks::names())
            .map(|h| format!(" (did you mean `{h}`?)"))
            .unwrap_or_default();
        eprintln!("chatops: unknown check kind `{o}`{hint}");
        return exit::INVALID;
    }
    let mut out = String::new();
    for k in kinds {
        out.push_str(&format!("{:<12} {}\n", k.name(), k.help()));
        for f in k.fields() {
            let req = if f.required { " (required)" } else { "" };
            out.push_str(&format!(
                "    {:<16} {:<22} {}{req}\n",
                f.name, f.ty, f.help
            ));
        }
        out.push('\n');
    }
    out.push_str("Every check also takes: id, kind, title, description, needs, timeout, retries, interval, root_cause, remedy; or `include: FILE` with overrides.\n");
    print!("{out}");
    exit::OK
}

/// Loads and runs a playbook; returns the report (already redacted) or the exit code of a load failure.
pub async fn run_playbook(t: &TargetArgs, quiet_errors: bool) -> Result<(Report, Redactor), i32> {
    let pb = match playbook::load(&source(t), &load_options(t)) {
        Ok(pb) => pb,
        Err(e) => {
            if !quiet_errors {
                print_load_error(&e, &redactor_for(None, t));
            }
            return Err(exit::INVALID);
        }
    };
    let red = redactor_for(Some(&pb), t);
    let cancel = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let report = engine::run(
        &pb,
        RunOptions {
            http: engine::http_client(),
        },
        cancel,
    )
    .await;
    Ok((report::redacted(&report, &red), red))
}

pub fn exit_code(r: &Report, strict: bool) -> i32 {
    use crate::checks::Status;
    if r.interrupted {
        exit::INTERRUPTED
    } else if r.status == Status::Fail || (strict && r.status == Status::Warn) {
        exit::FAILED
    } else {
        exit::OK
    }
}

async fn doctor(args: &DoctorArgs, style: &Style) -> i32 {
    let (report, red) = match run_playbook(&args.target, false).await {
        Ok(r) => r,
        Err(code) => return code,
    };
    let to_file = args.output.is_some();
    let st = Style {
        color: style.color && !to_file && args.format == Format::Human,
        verbose: style.verbose,
        quiet: style.quiet,
    };
    let text = red.redact(&report::render(&report, args.format, &st));
    match &args.output {
        Some(path) => {
            if let Err(e) = std::fs::write(path, text.as_bytes()) {
                eprintln!("chatops: cannot write {}: {e}", path.display());
                return exit::INVALID;
            }
            if !style.quiet {
                eprintln!(
                    "report written to {} ({})",
                    path.display(),
                    report.status.as_str()
                );
            }
        }
        None => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        }
    }
    exit_code(&report, args.strict)
}
