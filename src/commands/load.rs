//! `chatops load`: flags to plan, safety checks, the doctor preflight, the
//! run, and the outputs. Exit codes: 0 every stage passed, 1 a breaking
//! point was found (or the time bound stopped the run first), 2 invalid
//! plan, flags or target, or a failed preflight, 130 Ctrl-C, 143 SIGTERM.

use super::cli::{LoadArgs, LoadFormat};
use super::error::LoadPlanError;
use super::{CommandError, CommandResult, Outcome};
use crate::load::compare::render;
use crate::load::plan::{self, Model, Plan};
use crate::load::report;
use crate::report::Style;
use crate::session;
use crate::support::redact::Redactor;
use crate::support::signals;
use std::io::Write;

fn fail(red: &Redactor, msg: &str) -> CommandResult {
    Err(CommandError::Usage(red.redact(msg)))
}

/// The plan from `--plan` or the embedded one, with every override applied.
pub fn build_plan(a: &LoadArgs) -> Result<Plan, LoadPlanError> {
    let (text, name) = match &a.plan {
        Some(p) => (
            std::fs::read_to_string(p).map_err(|source| LoadPlanError::Read {
                path: p.clone(),
                source,
            })?,
            p.display().to_string(),
        ),
        None => (
            crate::playbook::embedded::get(crate::playbook::embedded::LOAD_PLAN)
                .ok_or(LoadPlanError::EmbeddedMissing)?
                .to_string(),
            crate::playbook::embedded::LOAD_PLAN.to_string(),
        ),
    };
    let mut p = plan::parse(&text, &name).map_err(|e| LoadPlanError::Invalid(e.to_string()))?;
    if let Some(s) = &a.stages {
        p.stages = plan::parse_stages(s).map_err(LoadPlanError::Stages)?;
        if a.model.is_none() && p.stages.iter().any(|s| s.rate.is_some()) {
            p.model = Model::Open;
        }
    }
    if let Some(m) = a.model {
        p.model = m;
    }
    plan::check_model(&p)?;
    // Durations were parsed (and --timeout checked > 0) by clap.
    if let Some(d) = a.think_time {
        p.think_time = d;
    }
    if let Some(d) = a.cooldown {
        p.cooldown = d;
    }
    match a.warmup {
        Some(d) => p.warmup = d,
        None if a.stages.is_some() => p.warmup = std::time::Duration::ZERO,
        None => {}
    }
    if let Some(d) = a.timeout {
        p.timeout = d;
    }
    if a.quick {
        plan::scale(&mut p, plan::QUICK_FACTOR);
    }
    Ok(p)
}

pub async fn run(a: LoadArgs, style: &Style) -> CommandResult {
    let mut target = a.target.to_target();
    if target.base_url.is_none() {
        target.base_url = Some(
            std::env::var("CHATOPS_BASE_URL")
                .ok()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "http://127.0.0.1:3001".into()),
        );
    }
    if target.database_url.is_none() {
        target.database_url = std::env::var("DATABASE_URL").ok().filter(|v| !v.is_empty());
    }
    let red = target.redactor(None);
    let base_url = target.base_url.clone().unwrap_or_default();
    let base_url = base_url.trim_end_matches('/').to_string();
    let plan = build_plan(&a)?;
    let max_total = a.max_duration;
    if let Some(path) = &a.emit_k6 {
        let js = red.redact(&crate::load::k6::script(&plan, &base_url));
        return match crate::support::atomic::write(path, js.as_bytes()) {
            Ok(()) => {
                if !style.quiet {
                    eprintln!(
                        "k6 script written to {} ({} stages); run it with `k6 run --no-usage-report {}`",
                        path.display(),
                        plan.stages.len(),
                        path.display()
                    );
                }
                Ok(Outcome::Ok)
            }
            Err(e) => Err(e.into()),
        };
    }
    // A baseline that cannot be read is a usage error before any load.
    let baseline = match &a.baseline {
        Some(p) => {
            Some(crate::load::compare::load(p).map_err(|e| CommandError::Usage(e.to_string()))?)
        }
        None => None,
    };
    let cancel = signals::shutdown_token();
    if let Err(e) =
        crate::support::safety::ensure_loopback(&base_url, target.allow_remote, "load").await
    {
        return fail(&red, &e.to_string());
    }
    if !a.skip_preflight {
        if !style.quiet {
            eprintln!("preflight: running the doctor playbook first (--skip-preflight to skip)…");
        }
        let pre = session::run(&target, cancel.clone()).await.map_err(|e| {
            CommandError::InvalidPlaybook(target.redactor(None).redact(&e.to_string()))
        })?;
        {
            let (rep, pre_red) = (pre.report, pre.redactor);
            {
                if rep.interrupted {
                    return Ok(Outcome::Interrupted);
                }
                if rep.status == crate::checks::Status::Fail {
                    let st = Style {
                        color: false,
                        verbose: false,
                        quiet: true,
                    };
                    let text = pre_red.redact(&crate::report::render(
                        &rep,
                        crate::report::Format::Human,
                        &st,
                    ));
                    eprintln!("{text}");
                    return Err(CommandError::Usage(
                        "preflight failed: the backend is not ready for load (the seed sent 56,250 requests to a backend that was not running). \
                         Fix the findings above, or pass --skip-preflight."
                            .into(),
                    ));
                }
            }
        }
    }
    let (tx, rx) = tokio::sync::watch::channel(false);
    let signal = tokio::spawn({
        let cancel = cancel.clone();
        async move {
            cancel.cancelled().await;
            let _ = tx.send(true);
        }
    });
    let opts = crate::load::Options {
        base_url: base_url.clone(),
        database_url: target.database_url.clone(),
        backend_pid: a.pid,
        max_total,
        progress: !style.quiet
            && a.format == LoadFormat::Human
            && std::io::IsTerminal::is_terminal(&std::io::stderr()),
        insecure: a.insecure,
        backend_log: a.backend_log.clone(),
        pgbouncer: a.pgbouncer.clone(),
    };
    if !style.quiet && a.format == LoadFormat::Human {
        let total = plan::planned(&plan);
        eprintln!(
            "load: {} stage(s), {:?} model, up to {} against {}",
            plan.stages.len(),
            plan.model,
            crate::support::duration::fmt(total.min(max_total)),
            red.redact(&base_url)
        );
    }
    let result = crate::load::run(&plan, &opts, rx).await;
    signal.abort();
    if opts.progress {
        eprintln!(); // end the last live line before the summary
    }
    let r = match result {
        Ok(r) => r,
        Err(e) => return fail(&red, &e.to_string()),
    };
    let comparison = baseline.as_ref().and_then(|b| {
        let cur = crate::load::compare::parse(
            &report::summary_json(&r, &red),
            std::path::Path::new("this run"),
        )
        .ok()?;
        let label = a
            .baseline
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        Some(crate::load::compare::compare(
            b,
            &cur,
            a.max_regression,
            (&label, "this run"),
        ))
    });
    let text = match a.format {
        LoadFormat::Json => {
            let text = report::summary_json(&r, &red);
            match &comparison {
                Some(c) => with_comparison(&text, c),
                None => text,
            }
        }
        LoadFormat::Human => {
            let mut t = report::human(&r, style.color, &red);
            if let Some(c) = &comparison {
                t.push('\n');
                t.push_str(&red.redact(&render::human(c, style.color)));
            }
            t
        }
    };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    if a.format == LoadFormat::Json {
        let _ = out.write_all(b"\n");
    }
    let _ = out.flush();
    if let Some(dir) = &a.export_dir {
        match report::export(dir, &r, &red, comparison.as_ref()) {
            Ok(files) => {
                if !style.quiet {
                    eprintln!("exported {} file(s) to {}", files.len(), dir.display());
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(path) = &a.html {
        let section = comparison.as_ref().map(render::html_section);
        let page = crate::load::html::page(&r, section.as_deref(), &red);
        crate::support::atomic::write(path, page.as_bytes())?;
        if !style.quiet {
            eprintln!("HTML report written to {}", path.display());
        }
    }
    let regressed = comparison.as_ref().is_some_and(|c| c.regressed);
    Ok(if r.interrupted {
        Outcome::Interrupted
    } else if r.breaking_point.is_some() || r.time_bound_hit || regressed {
        Outcome::Failed
    } else {
        Outcome::Ok
    })
}

/// The JSON summary with the comparison added as `comparison`.
fn with_comparison(summary: &str, c: &crate::load::compare::Comparison) -> String {
    match serde_json::from_str::<serde_json::Value>(summary) {
        Ok(mut v) => {
            v["comparison"] = serde_json::to_value(c).unwrap_or_default();
            serde_json::to_string_pretty(&v).unwrap_or_else(|_| summary.to_string())
        }
        Err(_) => summary.to_string(),
    }
}
