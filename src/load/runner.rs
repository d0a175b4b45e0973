//! Running a plan: the generator threads, one stage after another (a
//! cooldown between them) with the monitor sampling alongside, the live
//! progress line, and the stop at the first failing stage, Ctrl-C or the
//! time bound.

use super::breaking::{criteria_failures, diagnose_stage};
use super::evidence::stage_evidence;
use super::plan::{Model, Plan, Stage};
use super::result::{Generator, Progress, RunResult, StageResult, StageStatus};
use super::shared::{Shared, Slot};
use super::stats::{self, TaskStats};
use super::target::{Target, TargetError};
use super::template::{self, RequestTemplate, TemplateError};
use super::{closed, monitor, open};
use crate::probe::process;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where and how to run a plan (the command's flags, parsed).
pub struct Options {
    pub base_url: String,
    pub database_url: Option<String>,
    /// The backend process (None: found by the base URL's port when local).
    pub backend_pid: Option<u32>,
    /// Bound on the whole run.
    pub max_total: Duration,
    /// Draw live progress lines on standard error.
    pub progress: bool,
    /// https://: accept any certificate.
    pub insecure: bool,
    /// The backend's log (None: the file its process's output goes to).
    pub backend_log: Option<std::path::PathBuf>,
    /// PgBouncer's admin console (None: the backend's DATABASE_URL's, when it leads through PgBouncer).
    pub pgbouncer: Option<String>,
}

/// CPU seconds this process has used (user + system).
fn cpu_seconds() -> Option<f64> {
    process::cpu_seconds(std::process::id())
}

fn cpu_pct(cpu0: Option<f64>, t0: Instant) -> f64 {
    match (cpu0, cpu_seconds()) {
        (Some(a), Some(b)) => {
            let wall = t0.elapsed().as_secs_f64().max(1e-3);
            ((b - a) / wall * 1000.0).round() / 10.0
        }
        _ => 0.0,
    }
}

/// Why a run could not start (once started, a run always has a result).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("mix {kind}: {error}")]
    Mix {
        kind: String,
        #[source]
        error: TemplateError,
    },
    #[error(transparent)]
    Files(#[from] crate::support::limits::NofileError),
    #[error("cannot start a generator thread: {0}")]
    Thread(#[source] std::io::Error),
    #[error("generator thread: {0}")]
    ThreadGone(#[source] std::sync::mpsc::RecvError),
    #[error("cannot start a generator runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// The generator's threads: one single-threaded runtime per core, like wrk's
/// thread-per-core design (no work stealing, no cross-thread wake-ups on the
/// hot path). Virtual users are dealt round-robin; the threads end on drop.
struct Generators {
    handles: Vec<tokio::runtime::Handle>,
    _stop: Vec<tokio::sync::oneshot::Sender<()>>,
}

impl Generators {
    fn start() -> Result<Generators, RunError> {
        let n = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .clamp(1, 8);
        let mut handles = Vec::new();
        let mut stop = Vec::new();
        for i in 0..n {
            let (htx, hrx) = std::sync::mpsc::channel();
            let (stx, srx) = tokio::sync::oneshot::channel::<()>();
            std::thread::Builder::new()
                .name(format!("chatops-load-{i}"))
                .spawn(move || {
                    match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(rt) => {
                            let _ = htx.send(Ok(rt.handle().clone()));
                            rt.block_on(async {
                                let _ = srx.await;
                            });
                        }
                        Err(e) => {
                            let _ = htx.send(Err(e));
                        }
                    }
                })
                .map_err(RunError::Thread)?;
            let h = hrx
                .recv()
                .map_err(RunError::ThreadGone)?
                .map_err(RunError::Runtime)?;
            handles.push(h);
            stop.push(stx);
        }
        Ok(Generators {
            handles,
            _stop: stop,
        })
    }

    fn handle(&self, i: usize) -> &tokio::runtime::Handle {
        &self.handles[i % self.handles.len()]
    }
}

/// Resolves when `cancel` turns true.
async fn cancelled(cancel: &mut tokio::sync::watch::Receiver<bool>) {
    if cancel.wait_for(|c| *c).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Runs the plan against `opts.base_url`; stops at the first failing stage
/// (unless the plan says otherwise), at Ctrl-C (`cancel`) or at the time
/// bound, and always returns the stages run so far.
pub async fn run(
    plan: &Plan,
    opts: &Options,
    mut cancel: tokio::sync::watch::Receiver<bool>,
) -> Result<RunResult, RunError> {
    let target = Target::resolve(&opts.base_url, opts.insecure).await?;
    let https = target.tls.is_some();
    let names = template::names(&plan.vars, &plan.mix);
    let mut templates = Vec::new();
    for m in &plan.mix {
        templates.push(
            RequestTemplate::compile(m, &names).map_err(|error| RunError::Mix {
                kind: m.name.clone(),
                error,
            })?,
        );
    }
    let kinds: Vec<String> = plan.mix.iter().map(|m| m.name.clone()).collect();
    let weights: Vec<u32> = plan.mix.iter().map(|m| m.weight).collect();
    let shared = Arc::new(Shared::new(
        templates,
        names.captures.len(),
        &weights,
        target,
        plan.think_time,
        plan.timeout,
    ));
    // One socket per virtual user, plus the sampler's, the log's and the
    // runtime's own descriptors.
    let most = plan.stages.iter().map(|s| s.vus).max().unwrap_or(0);
    crate::support::limits::raise_nofile(
        u64::from(most) + 64,
        &format!("{most} virtual users (one connection each)"),
    )?;
    let generators = Generators::start()?;
    let t0 = Instant::now();
    let cpu0 = cpu_seconds();
    let deadline = t0 + opts.max_total;
    let pid = opts
        .backend_pid
        .or_else(|| crate::probe::process::local_listener(&opts.base_url));
    let witness = super::witness::Witness::resolve(
        opts.backend_log.as_deref(),
        pid,
        &opts.base_url,
        opts.database_url.as_deref(),
    );
    let given = opts
        .backend_log
        .as_ref()
        .map(|p| (p.clone(), "--backend-log".to_string()));
    let mut watcher = monitor::start(
        &opts.base_url,
        opts.database_url.as_deref(),
        pid,
        given,
        t0,
        opts.pgbouncer.as_deref(),
    )
    .await;
    let multi = indicatif::MultiProgress::with_draw_target(if opts.progress {
        indicatif::ProgressDrawTarget::stderr()
    } else {
        indicatif::ProgressDrawTarget::hidden()
    });
    let mut out = RunResult {
        plan: plan.name.clone(),
        model: plan.model,
        base_url: opts.base_url.clone(),
        stages: Vec::new(),
        breaking_point: None,
        warnings: Vec::new(),
        warmup: None,
        interrupted: false,
        time_bound_hit: false,
        backend: watcher.backend.clone(),
        generator: Generator {
            cpu_pct: 0.0,
            peak_rss_bytes: None,
        },
        elapsed: Duration::ZERO,
    };
    let threads = generators.handles.len() as u32;
    let mut evs = Vec::new();
    if let Some(first) = plan.stages.first()
        && !plan.warmup.is_zero()
    {
        // Opens the pool's connections and warms the JIT; not counted.
        let warm = super::plan::Stage {
            name: "warm-up".into(),
            duration: plan.warmup,
            p95_ms: None,
            max_error_pct: None,
            ..first.clone()
        };
        let _ = watcher.take();
        let r = run_stage(
            &warm,
            plan.model,
            &generators,
            &shared,
            &kinds,
            deadline,
            &mut watcher,
            &multi,
            &mut cancel,
            t0,
        )
        .await;
        if r.status == StageStatus::Interrupted && *cancel.borrow() {
            out.interrupted = true;
        }
        out.warmup = Some(r);
    }
    for (i, stage) in plan.stages.iter().enumerate() {
        if out.interrupted {
            break;
        }
        if i > 0 && !plan.cooldown.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline.min(Instant::now() + plan.cooldown).into()) => {}
                _ = cancelled(&mut cancel) => { out.interrupted = true; break; }
            }
        }
        if Instant::now() >= deadline {
            out.time_bound_hit = true;
            break;
        }
        let _ = watcher.take(); // cooldown samples belong to no stage
        let mark = witness.mark();
        let mut r = run_stage(
            stage,
            plan.model,
            &generators,
            &shared,
            &kinds,
            deadline,
            &mut watcher,
            &multi,
            &mut cancel,
            t0,
        )
        .await;
        let mut ev = stage_evidence(
            &r,
            &watcher.backend,
            https,
            watcher.exit().as_ref(),
            threads,
        );
        ev.witness = witness.stage(&mark, &r.stats.bodies);
        r.unreliable = ev.generator.as_ref().and_then(|g| g.why());
        let failed = r.status == StageStatus::Fail;
        if r.status == StageStatus::Interrupted {
            if *cancel.borrow() {
                out.interrupted = true;
            } else {
                out.time_bound_hit = true;
            }
        }
        if failed && out.breaking_point.is_none() {
            out.breaking_point = Some(diagnose_stage(&r, &ev, &watcher.backend));
        }
        if r.status != StageStatus::Interrupted {
            evs.push(ev);
        }
        out.stages.push(r);
        if out.interrupted || out.time_bound_hit || (failed && plan.stop_on_failure) {
            break;
        }
    }
    out.warnings = crate::diagnose::load::warnings(&evs);
    watcher.stop();
    out.elapsed = t0.elapsed();
    out.generator = Generator {
        cpu_pct: cpu_pct(cpu0, t0),
        peak_rss_bytes: process::peak_rss_bytes(std::process::id()),
    };
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
async fn run_stage(
    stage: &Stage,
    model: Model,
    generators: &Generators,
    shared: &Arc<Shared>,
    kinds: &[String],
    deadline: Instant,
    watcher: &mut monitor::Watcher,
    multi: &indicatif::MultiProgress,
    cancel: &mut tokio::sync::watch::Receiver<bool>,
    t0: Instant,
) -> StageResult {
    watcher.stage_begin().await;
    let start = Instant::now();
    let cpu0 = cpu_seconds();
    let end = (start + stage.duration).min(deadline);
    let cut = end < start + stage.duration;
    // One slot per generator thread, shared by that thread's virtual users
    // (never contended: a thread runs one task at a time; only the progress
    // line reads it besides). A slot per virtual user held an HDR histogram
    // each (about 23 KB per request kind): half of a virtual user's memory,
    // and the progress line merged 10,000 of them four times a second.
    let slots: Vec<Slot> = (0..generators.handles.len().min(stage.vus.max(1) as usize))
        .map(|_| Arc::new(Mutex::new(TaskStats::new(kinds.len()))))
        .collect();
    let mut set = tokio::task::JoinSet::new();
    let mut schedule = None;
    match (model, stage.rate) {
        (Model::Open, Some(rate)) => {
            let s = Arc::new(open::Schedule::new(start, end - start, rate));
            for i in 0..stage.vus as usize {
                set.spawn_on(
                    open::worker(
                        i as u32,
                        shared.clone(),
                        slots[i % slots.len()].clone(),
                        s.clone(),
                    ),
                    generators.handle(i),
                );
            }
            schedule = Some(s);
        }
        _ => {
            for i in 0..stage.vus as usize {
                set.spawn_on(
                    closed::vu(
                        i as u32,
                        shared.clone(),
                        slots[i % slots.len()].clone(),
                        end,
                    ),
                    generators.handle(i),
                );
            }
        }
    }
    let bar = multi.add(indicatif::ProgressBar::new_spinner());
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {prefix:<10} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar.set_prefix(stage.name.clone());
    // Requests in flight at the end get the request timeout to finish, at most.
    let grace = end + shared.timeout.min(Duration::from_secs(5));
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut second = tokio::time::interval_at(
        (start + Duration::from_secs(1)).into(),
        Duration::from_secs(1),
    );
    let mut progress = Vec::new();
    let mut collector = super::persecond::Collector::default();
    let mut seconds = Vec::new();
    let mut interrupted = false;
    loop {
        tokio::select! {
            joined = set.join_next() => if joined.is_none() { break },
            _ = second.tick() => {
                let p = progress_now(&slots, start);
                seconds.push(collector.sweep(&slots, p.t_s));
                progress.push(p);
            }
            _ = tick.tick() => if !bar.is_hidden() {
                bar.set_message(live_line(stage, &slots, start));
                bar.tick();
            },
            _ = tokio::time::sleep_until(grace.into()) => { set.abort_all(); break; }
            _ = cancelled(cancel) => { set.abort_all(); interrupted = true; break; }
        }
    }
    let last = progress_now(&slots, start);
    collector.finish(&slots, last.t_s, &mut seconds);
    progress.push(last);
    watcher.flush().await;
    let slow = watcher.stage_end().await;
    let mut stats = TaskStats::new(kinds.len());
    for s in &slots {
        if let Ok(t) = s.lock() {
            stats.merge(&t);
        }
    }
    let planned = schedule.as_ref().map(|s| s.planned());
    if let Some(p) = planned {
        stats.dropped = p.saturating_sub(stats.total().requests());
    }
    let mut samples = watcher.take();
    samples.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
    let summary = monitor::summarize(&samples);
    let mut r = StageResult {
        stage: stage.clone(),
        model,
        elapsed: Instant::now().min(end).saturating_duration_since(start),
        kinds: kinds.to_vec(),
        stats,
        planned,
        samples,
        watch: summary,
        status: StageStatus::Pass,
        failures: Vec::new(),
        cpu_pct: cpu_pct(cpu0, start),
        progress,
        seconds,
        offset_s: start.saturating_duration_since(t0).as_secs_f64(),
        slow,
        unreliable: None,
    };
    r.failures = criteria_failures(&r);
    r.status = if interrupted || cut {
        StageStatus::Interrupted
    } else if r.failures.is_empty() {
        StageStatus::Pass
    } else {
        StageStatus::Fail
    };
    if !bar.is_hidden() {
        bar.finish_with_message(format!(
            "{} — {}",
            live_line(stage, &slots, start),
            r.status.as_str()
        ));
    }
    r
}

/// Cumulative counts of the stage so far (once a second).
fn progress_now(slots: &[Slot], start: Instant) -> Progress {
    let mut p = Progress {
        t_s: (start.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        ..Default::default()
    };
    for s in slots {
        if let Ok(g) = s.lock() {
            for k in &g.kinds {
                p.requests += k.requests();
                p.errors += k.errors.total();
                p.latency_ms += k.hist.mean() * k.hist.len() as f64 / 1000.0;
            }
        }
    }
    p
}

fn live_line(stage: &Stage, slots: &[Slot], start: Instant) -> String {
    let mut total = stats::KindStats::default();
    for s in slots {
        if let Ok(g) = s.lock() {
            for k in &g.kinds {
                total.merge(k);
            }
        }
    }
    let el = start.elapsed().as_secs_f64();
    let n = total.requests();
    format!(
        "{:>3} {} {:>5.1}/{:.0}s {:>9.0} req/s  p95 {:>8.1} ms  errors {}",
        stage.vus,
        if stage.rate.is_some() { "conns" } else { "VUs" },
        el.min(stage.duration.as_secs_f64()),
        stage.duration.as_secs_f64(),
        n as f64 / el.max(1e-3),
        total.latency().p95_ms,
        total.errors.total()
    )
}
