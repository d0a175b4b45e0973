//! Runs a playbook: checks in dependency order, concurrently up to a bound,
//! each with a timeout and retries, the whole run under a deadline. A check
//! whose need did not pass is `blocked` by the root cause, not run.

mod kind;
mod link;
mod result;
mod witness;

pub use crate::playbook::{FieldDoc, KindSchema};
pub use kind::{BoxFuture, Check, Ctx, Erased, HttpClient, Kind, Registry};
pub use link::link_causes;
pub use result::{CheckResult, Observation, Report, Status};
pub use witness::Witness;

use crate::diagnose;
use crate::playbook::interp::{self, Scope};
use crate::playbook::{CheckSpec, Playbook};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
// The runtime's clock: the same as std's in a real run, and the paused,
// instantly advancing clock of the engine's tests.
use tokio::time::Instant;

/// Why the run stopped early, if it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Deadline,
    Interrupted,
}

pub struct RunOptions {
    pub http: HttpClient,
}

/// The HTTP client checks share (built lazily, on the first HTTP check).
pub fn http_client() -> HttpClient {
    HttpClient::default()
}

/// Runs every check with the kinds of `registry`. `cancel` resolves when the
/// user interrupts.
pub async fn run(
    pb: &Playbook,
    registry: &Registry,
    opts: RunOptions,
    cancel: impl Future<Output = ()>,
) -> Report {
    let started = Instant::now();
    let started_at = now_rfc3339();
    let specs: Vec<&CheckSpec> = pb.checks().collect();
    let index: HashMap<&str, usize> = specs
        .iter()
        .enumerate()
        .map(|(i, c)| (c.id.as_str(), i))
        .collect();
    let mut results: Vec<Option<CheckResult>> = vec![None; specs.len()];
    let mut started_set = vec![false; specs.len()];
    let mut captures: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    let mut tasks: JoinSet<(usize, Observation, u32, Duration)> = JoinSet::new();
    let deadline = tokio::time::sleep(pb.settings.deadline);
    tokio::pin!(deadline);
    tokio::pin!(cancel);
    let mut stop = None;
    // State some kinds record before anything runs (a log file's length).
    // The backend's log, which checks read when they see the backend fail.
    let witness = Arc::new(witness::resolve(&pb.vars, &pb.target));
    let at_start: Vec<Option<serde_json::Value>> = specs
        .iter()
        .map(|c| registry.find(&c.kind).and_then(|k| k.at_start(&c.params)))
        .collect();
    // Checks that run beside the others (a stability watch) are told when
    // the others are done: no other check running, none left to start.
    let beside: Vec<bool> = specs
        .iter()
        .map(|c| registry.find(&c.kind).is_some_and(|k| k.beside()))
        .collect();
    let others_done = tokio_util::sync::CancellationToken::new();
    let mut running_others = 0usize;

    loop {
        // Mark blocked checks and start ready ones.
        let mut progressed = true;
        while progressed {
            progressed = false;
            for i in 0..specs.len() {
                if started_set[i] {
                    continue;
                }
                let c = specs[i];
                let deps: Vec<usize> = c
                    .needs
                    .iter()
                    .filter_map(|n| index.get(n.as_str()).copied())
                    .collect();
                if deps.iter().any(|d| results[*d].is_none()) {
                    continue;
                }
                if let Some(bad) = deps.iter().find(|d| {
                    results[**d]
                        .as_ref()
                        .is_some_and(|r| !r.status.satisfies_needs())
                }) {
                    let dep = results[*bad]
                        .as_ref()
                        .map(|r| (r.id.clone(), r.blocked_by.clone()));
                    let (dep_id, dep_root) = dep.unwrap_or_default();
                    let root = dep_root.unwrap_or(dep_id.clone());
                    started_set[i] = true;
                    results[i] = Some(blocked(c, pb, &root, &dep_id));
                    progressed = true;
                    continue;
                }
                if tasks.len() >= pb.settings.concurrency {
                    continue;
                }
                started_set[i] = true;
                progressed = true;
                let spec = c.clone();
                let vars = pb.vars.clone();
                let target = pb.target.clone();
                let caps = captures.clone();
                let kind = registry.find(&spec.kind).cloned();
                let ctx = Ctx {
                    timeout: spec.timeout,
                    http: opts.http.clone(),
                    allow_remote: pb.settings.allow_remote,
                    start: at_start[i].clone(),
                    witness: Some(witness.clone()),
                    others_done: others_done.clone(),
                };
                if !beside[i] {
                    running_others += 1;
                }
                tasks.spawn(async move {
                    let t = Instant::now();
                    // An inner task, so that a panicking check becomes this check's error.
                    let inner = tokio::spawn(async move {
                        run_with_retries(kind, &spec, ctx, &vars, &target, &caps).await
                    });
                    let (obs, attempts) = match inner.await {
                        Ok(r) => r,
                        Err(e) => (Observation::error(format!("the check crashed: {e}")), 1),
                    };
                    (i, obs, attempts, t.elapsed())
                });
            }
        }
        if tasks.is_empty() {
            break;
        }
        // Whatever has not started now waits on a check beside the others.
        if running_others == 0 {
            others_done.cancel();
        }
        tokio::select! {
            joined = tasks.join_next() => {
                let Some(joined) = joined else { break };
                if let Ok((i, obs, attempts, took)) = joined {
                    if !beside[i] {
                        running_others = running_others.saturating_sub(1);
                    }
                    if obs.status.satisfies_needs() {
                        captures.insert(specs[i].id.clone(), serde_json::Value::Object(obs.captures.clone()));
                    }
                    results[i] = Some(finish(specs[i], pb, obs, attempts, took));
                }
            }
            _ = &mut deadline => { stop = Some(Stop::Deadline); break; }
            _ = &mut cancel => { stop = Some(Stop::Interrupted); break; }
        }
    }
    tasks.abort_all();
    let why = match stop {
        Some(Stop::Deadline) => format!(
            "not finished: the run's deadline of {} passed",
            crate::support::duration::fmt(pb.settings.deadline)
        ),
        Some(Stop::Interrupted) => "not finished: interrupted".to_string(),
        None => "not run".to_string(),
    };
    let mut checks: Vec<CheckResult> = results
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            r.unwrap_or_else(|| {
                finish(
                    specs[i],
                    pb,
                    Observation::error(why.clone()),
                    0,
                    Duration::ZERO,
                )
            })
        })
        .collect();
    link_causes(&mut checks);
    let status = if checks
        .iter()
        .any(|c| matches!(c.status, Status::Fail | Status::Error | Status::Blocked))
    {
        Status::Fail
    } else if checks.iter().any(|c| c.status == Status::Warn) {
        Status::Warn
    } else {
        Status::Pass
    };
    Report {
        playbook: pb.name.clone(),
        file: pb.file.clone(),
        status,
        interrupted: stop == Some(Stop::Interrupted),
        started_at,
        duration_ms: started.elapsed().as_millis() as u64,
        target: pb.target.clone(),
        phases: pb.phases.iter().map(|p| p.name.clone()).collect(),
        checks,
    }
}

async fn run_with_retries(
    kind: Option<Arc<dyn Kind>>,
    spec: &CheckSpec,
    ctx: Ctx,
    vars: &BTreeMap<String, String>,
    target: &BTreeMap<String, String>,
    caps: &BTreeMap<String, serde_json::Value>,
) -> (Observation, u32) {
    let Some(kind) = kind else {
        return (
            Observation::error(format!("unknown kind `{}`", spec.kind)),
            0,
        );
    };
    let mut params = spec.params.clone();
    let env = |n: &str| std::env::var(n).ok();
    let scope = Scope {
        env: &env,
        vars,
        target,
        captures: Some(caps),
    };
    if let Err(e) = interp::expand_json(&mut params, &scope, "") {
        return (Observation::error(e.to_string()), 0);
    }
    let budget = spec.timeout
        + spec.interval.max(Duration::from_millis(1)) * spec.retries
        + spec.timeout * spec.retries;
    let t0 = Instant::now();
    let mut attempt = 0;
    loop {
        attempt += 1;
        // Checks bound their own waits by `ctx.timeout` and classify them; the
        // engine's limit is a backstop with a little grace (on a busy machine
        // the check's own timer may be polled late; still under a second).
        let backstop = spec.timeout
            + Duration::from_millis(500)
                .max(spec.timeout / 10)
                .min(Duration::from_millis(900));
        let obs = match tokio::time::timeout(backstop, kind.run(params.clone(), ctx.clone())).await
        {
            Ok(o) => o,
            Err(_) => Observation::error(format!(
                "timed out after {}",
                crate::support::duration::fmt(spec.timeout)
            )),
        };
        if obs.status.satisfies_needs()
            || attempt > spec.retries
            || t0.elapsed() + spec.interval >= budget
        {
            return (obs, attempt);
        }
        tokio::time::sleep(spec.interval).await;
    }
}

fn title(c: &CheckSpec) -> String {
    c.title.clone().unwrap_or_else(|| c.id.clone())
}

fn blocked(c: &CheckSpec, pb: &Playbook, root: &str, via: &str) -> CheckResult {
    let summary = if root == via {
        format!("blocked: `{root}` did not pass")
    } else {
        format!("blocked: `{via}` did not run because `{root}` did not pass")
    };
    CheckResult {
        id: c.id.clone(),
        phase: pb
            .phases
            .get(c.phase)
            .map(|p| p.name.clone())
            .unwrap_or_default(),
        kind: c.kind.clone(),
        title: title(c),
        status: Status::Blocked,
        summary,
        evidence: Vec::new(),
        command: None,
        root_cause: None,
        remedy: None,
        blocked_by: Some(root.to_string()),
        cause: None,
        caused_by: None,
        fault: None,
        attempts: 0,
        duration_ms: 0,
        captures: serde_json::Map::new(),
    }
}

fn finish(
    c: &CheckSpec,
    pb: &Playbook,
    o: Observation,
    attempts: u32,
    took: Duration,
) -> CheckResult {
    let failed = matches!(o.status, Status::Fail | Status::Error | Status::Warn);
    let d = o.fault.as_ref().map(diagnose::diagnose);
    let (root_cause, remedy, fault) = if failed {
        (
            c.root_cause
                .clone()
                .or(d.as_ref().map(|d| d.root_cause.clone()))
                .or_else(|| {
                    (o.status == Status::Error)
                        .then(|| format!("The check could not complete: {}", o.summary))
                }),
            c.remedy.clone().or(d.map(|d| d.remedy)),
            o.fault,
        )
    } else {
        (None, None, None)
    };
    let mut evidence = o.evidence;
    if attempts > 1 {
        evidence.push(format!("{attempts} attempts"));
    }
    CheckResult {
        id: c.id.clone(),
        phase: pb
            .phases
            .get(c.phase)
            .map(|p| p.name.clone())
            .unwrap_or_default(),
        kind: c.kind.clone(),
        title: title(c),
        status: o.status,
        summary: o.summary,
        evidence,
        command: o.command,
        root_cause,
        remedy,
        blocked_by: None,
        cause: fault.as_ref().and_then(diagnose::Fault::cause),
        caused_by: None,
        fault,
        attempts,
        duration_ms: took.as_millis() as u64,
        captures: o.captures,
    }
}

pub use crate::support::time::now_rfc3339;

#[cfg(test)]
mod tests;
