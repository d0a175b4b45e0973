//! `stability`: the backend stays up for a while (the seed's Phase 1: 60 s
//! or more): the same process throughout (no restarts), health answering at
//! every sample, and memory not growing beyond a bound.
//!
//! It runs beside the other checks: by default its window is the run itself
//! (it samples until the engine says the other checks are done, at least a
//! second), so a healthy run takes as long as its slowest real check; a
//! fixed `duration` (the seed's 60s) watches that long instead.
//!
//! `observe` samples the process and the health URL; [`judge`] decides.

use super::env::ProcessSel;
use super::util::failed;
use super::{Check, Ctx, Observation};
use crate::diagnose::{Fault, NetError};
use crate::probe::http::MaxBody;
use crate::probe::process;
use crate::support::duration::Dur;
use crate::support::style::sparkline;
use schemars::JsonSchema;
use serde::Deserialize;
use std::time::{Duration, Instant};

pub struct Stability;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The backend process (`{port: 3001}`, `{pid: …}` or `{name: …}`) on
    /// this machine: its pid must not change, its RSS is sampled.
    pub process: Option<ProcessSel>,
    /// Health URL that must answer 2xx at every sample.
    pub health: Option<String>,
    /// How long to watch: `run` (default: while the other checks run, at
    /// least 1s) or a duration (the seed watched 60s; 0: one sample).
    #[serde(default)]
    pub duration: Window,
    /// Time between samples (default 1s). (`interval` is the retry
    /// interval every check has.)
    #[serde(default = "default_every")]
    pub every: Dur,
    /// Memory may grow at most this many percent from the first sample
    /// (default 50).
    #[serde(default = "default_growth")]
    pub max_growth_percent: f64,
    /// Memory source: `auto` (process RSS when the process is local, else
    /// the health body's `memory.heapUsed`), `rss` or `heap`.
    #[serde(default)]
    pub memory: MemorySource,
    /// JSON path of heap bytes in the health body (default memory.heapUsed).
    #[serde(default = "default_heap_path")]
    pub heap_path: String,
    /// How much of each health answer is read (default 1MB): a longer one
    /// is a failed sample (too large).
    #[serde(default)]
    pub max_body: MaxBody,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MemorySource {
    #[default]
    Auto,
    Rss,
    Heap,
}

/// The watch's window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub enum Window {
    /// While the other checks run, at least [`MIN_RUN_WINDOW`].
    #[default]
    Run,
    Fixed(Duration),
}

/// The shortest watch of a `run` window.
pub const MIN_RUN_WINDOW: Duration = Duration::from_secs(1);

impl<'de> Deserialize<'de> for Window {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Window, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        if v.as_str().is_some_and(|s| s.trim() == "run") {
            return Ok(Window::Run);
        }
        crate::support::duration::from_json(&v)
            .map(Window::Fixed)
            .map_err(|e| {
                serde::de::Error::custom(format!("{e} (or `run`: while the other checks run)"))
            })
    }
}

impl JsonSchema for Window {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "StabilityWindow".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "`run` (while the other checks run, at least 1s) or a duration: 500ms, 5s, 2m, 1h, or a number of seconds",
            "type": ["string", "number"],
            "pattern": "^(run|[0-9.]+(ms|s|m|h)?)$"
        })
    }
}
fn default_every() -> Dur {
    Dur(Duration::from_secs(1))
}
fn default_growth() -> f64 {
    50.0
}
fn default_heap_path() -> String {
    "memory.heapUsed".into()
}

/// The pid `sel` names right now.
fn find_pid(sel: &ProcessSel) -> Option<u32> {
    if sel
        .host
        .as_deref()
        .is_some_and(|h| !process::is_local_host(h))
    {
        return None;
    }
    if let Some(pid) = sel.pid {
        return process::alive(pid).then_some(pid);
    }
    if let Some(port) = sel.port {
        return process::listeners(port).first().map(|p| p.pid);
    }
    sel.name
        .as_deref()
        .and_then(|n| process::find_by_name(n).first().map(|p| p.pid))
}

fn mb(b: f64) -> String {
    format!("{:.1} MB", b / 1_048_576.0)
}

/// One sample: the health answer (a status, or how the request failed)
/// and the memory in bytes.
#[derive(Debug, Clone)]
pub struct Sample {
    pub health: Option<Result<u16, String>>,
    pub memory: Option<f64>,
}

/// What a watch saw.
#[derive(Debug)]
pub enum Watched {
    /// The process went away during the watch (`now`: who holds its place).
    Exited {
        pid: u32,
        now: Option<u32>,
        after: Duration,
    },
    Done(Watch),
}

/// A completed watch.
#[derive(Debug)]
pub struct Watch {
    pub pid: Option<u32>,
    /// Memory is the process's RSS (else the health body's heap).
    pub use_rss: bool,
    pub samples: Vec<Sample>,
    pub interval: Duration,
    pub watched: Duration,
}

/// Names the process as messages say it.
fn selector_of(sel: Option<&ProcessSel>) -> String {
    sel.map(|s| match (s.pid, s.port, &s.name) {
        (Some(pid), _, _) => format!("pid {pid}"),
        (_, Some(port), _) => format!("the process on port {port}"),
        (_, _, Some(n)) => format!("process {n:?}"),
        _ => "the process".into(),
    })
    .unwrap_or_default()
}

/// Before watching: the process must exist (when it is local) and be the
/// one the run began with.
fn judge_start(
    selector: &str,
    wanted: bool,
    remote: bool,
    run_pid: Option<u32>,
    pid: Option<u32>,
) -> Option<Observation> {
    if wanted && pid.is_none() && !remote {
        return Some(Observation::fail(
            format!("no process found: {selector}"),
            Fault::ProcessNotFound {
                selector: selector.to_string(),
            },
        ));
    }
    match (run_pid, pid) {
        (Some(a), Some(b)) if a != b => Some(Observation::fail(
            format!("{selector} restarted during this run: pid {a} → {b}"),
            Fault::ProcessRestarted {
                selector: selector.to_string(),
                from: a,
                to: Some(b),
            },
        )),
        _ => None,
    }
}

/// How long a restarted process's successor is looked for at least (within
/// the watch's window): a supervisor restarts a crashed backend within a
/// second or two, and it then needs a moment to listen.
const RESTART_GRACE: Duration = Duration::from_secs(3);

/// The process that took over from `gone` (a restart), looked for until
/// `until`; None when nothing has (it exited).
async fn successor(p: &Params, gone: u32, until: Instant) -> Option<u32> {
    let sel = p.process.as_ref()?;
    // A process named by pid has no successor to find.
    if sel.pid.is_some() {
        return None;
    }
    loop {
        if let Some(now) = find_pid(sel).filter(|n| *n != gone) {
            return Some(now);
        }
        if Instant::now() >= until {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Samples every `interval` for `duration`: the process is alive, the
/// health URL answers, memory.
async fn observe(p: &Params, ctx: &Ctx, pid: Option<u32>, interval: Duration) -> Watched {
    // A `run` window ends when the others are done, or just before this
    // check's own timeout.
    let duration = match p.duration {
        Window::Fixed(d) => d,
        Window::Run => ctx.timeout.saturating_sub(Duration::from_secs(2)),
    };
    let use_rss = match p.memory {
        MemorySource::Rss => true,
        MemorySource::Heap => false,
        MemorySource::Auto => pid.is_some(),
    };
    // Each health request may take what the check's budget leaves over
    // the watch (at most 5 s): a slow answer under load is no failure.
    let per_request = match p.duration {
        Window::Fixed(_) => ctx
            .timeout
            .saturating_sub(duration + Duration::from_millis(500))
            .clamp(Duration::from_millis(500), Duration::from_secs(5)),
        Window::Run => Duration::from_secs(2),
    };
    let n = (duration.as_millis() / interval.as_millis().max(1)) as usize + 1;
    let started = Instant::now();
    let mut samples: Vec<Sample> = Vec::with_capacity(n.min(64));
    let mut last = false;
    for i in 0..n {
        let due = started + interval * i as u32;
        if i == 0 {
            // The first sample at once.
        } else if p.duration == Window::Run {
            let min_end = started + MIN_RUN_WINDOW;
            // The others are done: one last sample (after the minimum window).
            tokio::select! {
                _ = tokio::time::sleep_until(due.into()) => {}
                _ = ctx.others_done.cancelled() => {
                    tokio::time::sleep_until(min_end.max(Instant::now()).into()).await;
                    last = true;
                }
            }
        } else {
            tokio::time::sleep_until(due.into()).await;
        }
        if let Some(pid) = pid
            && !process::alive(pid)
        {
            let after = started.elapsed();
            return Watched::Exited {
                pid,
                now: successor(
                    p,
                    pid,
                    started
                        + duration
                            .max(RESTART_GRACE)
                            .min(ctx.timeout.saturating_sub(Duration::from_millis(500))),
                )
                .await,
                after,
            };
        }
        let mut heap = None;
        let health = match &p.health {
            None => None,
            Some(url) => Some(
                match health_sample(ctx.http.get(), url, per_request, p.max_body).await {
                    Ok((status, body)) => {
                        if !use_rss
                            && let Ok(j) = serde_json::from_slice::<serde_json::Value>(&body)
                        {
                            heap = crate::support::dotpath::lookup(&j, &p.heap_path)
                                .and_then(|v| v.as_f64());
                        }
                        Ok(status)
                    }
                    Err(e) => Err(e.describe().to_string()),
                },
            ),
        };
        let memory = if use_rss {
            pid.and_then(process::rss_bytes).map(|b| b as f64)
        } else {
            heap
        };
        samples.push(Sample { health, memory });
        if last {
            break;
        }
    }
    Watched::Done(Watch {
        pid,
        use_rss,
        samples,
        interval,
        watched: started.elapsed(),
    })
}

/// One health request: its status and body (up to `max_body`), all within
/// `timeout`; a body that fails, never ends or is over the bound is a
/// failed sample, classified.
async fn health_sample(
    client: &reqwest::Client,
    url: &str,
    timeout: Duration,
    max_body: MaxBody,
) -> Result<(u16, Vec<u8>), NetError> {
    use crate::probe::http::{classify, read_body};
    let exchange = async {
        let mut r = client
            .get(url)
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| classify(&e).0)?;
        let status = r.status().as_u16();
        let body = read_body(&mut r, max_body)
            .await
            .map_err(|e| classify(&e).0)?;
        if body.cut {
            return Err(NetError::TooLarge);
        }
        Ok((status, body.bytes))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .unwrap_or(Err(NetError::Timeout))
}

/// Judges a watch: the process stayed, health answered 2xx every time, and
/// memory grew at most `max_growth_percent`.
pub fn judge(p: &Params, selector: &str, w: Watched) -> Observation {
    let fmt = crate::support::duration::fmt;
    let w = match w {
        Watched::Exited { pid, now, after } => {
            return Observation::fail(
                match now {
                    Some(b) => {
                        format!("{selector} restarted after {}: pid {pid} → {b}", fmt(after))
                    }
                    None => format!("{selector} (pid {pid}) exited after {}", fmt(after)),
                },
                Fault::ProcessRestarted {
                    selector: selector.to_string(),
                    from: pid,
                    to: now,
                },
            );
        }
        Watched::Done(w) => w,
    };
    let samples = &w.samples;
    let mut o = Observation::pass(format!(
        "stable for {}: {} sample(s)",
        fmt(w.watched),
        samples.len()
    ))
    .capture("samples", samples.len());
    if p.duration == Window::Run {
        o = o.evidence(format!(
            "watched while the other checks ran (window `run`, at least {}; `duration: 60s` for the seed's minute)",
            fmt(MIN_RUN_WINDOW)
        ));
    }
    if let Some(pid) = w.pid {
        o = o
            .evidence(format!("pid {pid} throughout ({selector})"))
            .capture("pid", pid)
            .command(format!(
                "for i in $(seq {}); do ps -o pid=,rss= -p {pid}; sleep {}; done",
                samples.len(),
                w.interval.as_secs_f64()
            ));
    }
    // Health.
    let bad: Vec<(usize, String)> = samples
        .iter()
        .enumerate()
        .filter_map(|(i, s)| match &s.health {
            Some(Ok(c)) if (200..300).contains(c) => None,
            Some(Ok(c)) => Some((i, format!("status {c}"))),
            Some(Err(e)) => Some((i, e.clone())),
            None => None,
        })
        .collect();
    if let Some(url) = &p.health {
        o = o.evidence(format!(
            "health {url}: {} of {} answered 2xx",
            samples.len() - bad.len(),
            samples.len()
        ));
    }
    // Memory.
    let mem: Vec<f64> = samples.iter().filter_map(|s| s.memory).collect();
    let what = if w.use_rss { "RSS" } else { "heapUsed" };
    let mut growth = None;
    if let (Some(first), Some(last)) = (mem.first(), mem.last()) {
        let peak = mem.iter().copied().fold(0.0, f64::max);
        let pct = if *first > 0.0 {
            (last - first) / first * 100.0
        } else {
            0.0
        };
        o = o
            .evidence(format!(
                "{what}: {} → {} ({pct:+.1}%), peak {} {}",
                mb(*first),
                mb(*last),
                mb(peak),
                sparkline(&mem)
            ))
            .capture("memory_first_bytes", *first)
            .capture("memory_last_bytes", *last);
        growth = Some((pct, *first, *last));
    } else {
        o = o.evidence(format!("{what}: no samples"));
    }
    if let Some((i, why)) = bad.first() {
        return failed(
            o,
            format!(
                "health failed {} of {} time(s), first after {} ({why})",
                bad.len(),
                samples.len(),
                fmt(w.interval * *i as u32)
            ),
            Fault::HealthFlapping {
                url: p.health.clone().unwrap_or_default(),
                failed: bad.len() as u32,
                samples: samples.len() as u32,
                first: why.clone(),
            },
        );
    }
    match growth {
        Some((pct, first, last)) if pct > p.max_growth_percent => failed(
            o,
            format!(
                "{what} grew {pct:.0}% in {} ({} → {}), above {}%",
                fmt(w.watched),
                mb(first),
                mb(last),
                p.max_growth_percent
            ),
            Fault::MemoryGrowth {
                what: what.to_string(),
                from_mb: first / 1_048_576.0,
                to_mb: last / 1_048_576.0,
                percent: pct,
                bound: p.max_growth_percent,
                over: fmt(w.watched),
            },
        ),
        _ => o,
    }
}

impl Check for Stability {
    const KIND: &'static str = "stability";
    const HELP: &'static str =
        "the backend stays up for a duration: same pid, health answering, memory within a bound";
    type Params = Params;

    fn at_start(p: &Params) -> Option<serde_json::Value> {
        let pid = p.process.as_ref().and_then(find_pid)?;
        Some(serde_json::json!({ "pid": pid }))
    }

    const BESIDE: bool = true;

    async fn run(p: Params, ctx: Ctx) -> Observation {
        let interval = p.every.0.max(Duration::from_millis(50));
        if let Window::Fixed(duration) = p.duration
            && duration + Duration::from_secs(2) > ctx.timeout
        {
            return Observation::error(format!(
                "duration {} does not fit the check's timeout {}: set `timeout:` to at least {}",
                crate::support::duration::fmt(duration),
                crate::support::duration::fmt(ctx.timeout),
                crate::support::duration::fmt(duration + Duration::from_secs(2))
            ));
        }
        if p.process.is_none() && p.health.is_none() {
            return Observation::error("`stability` needs `process`, `health` or both");
        }
        let run_pid = ctx
            .start
            .as_ref()
            .and_then(|s| s["pid"].as_u64())
            .map(|x| x as u32);
        let pid = p.process.as_ref().and_then(find_pid);
        let selector = selector_of(p.process.as_ref());
        let remote = p
            .process
            .as_ref()
            .and_then(|s| s.host.as_deref())
            .is_some_and(|h| !process::is_local_host(h));
        if let Some(o) = judge_start(&selector, p.process.is_some(), remote, run_pid, pid) {
            return o;
        }
        let watched = observe(&p, &ctx, pid, interval).await;
        judge(&p, &selector, watched)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Status;

    fn params(v: serde_json::Value) -> Params {
        serde_json::from_value(v).unwrap()
    }

    fn watch(health: &[Option<Result<u16, &str>>], memory: &[f64]) -> Watched {
        Watched::Done(Watch {
            pid: Some(42),
            use_rss: true,
            samples: health
                .iter()
                .zip(memory)
                .map(|(h, m)| Sample {
                    health: h.map(|r| r.map_err(str::to_string)),
                    memory: Some(*m),
                })
                .collect(),
            interval: Duration::from_secs(1),
            watched: Duration::from_secs(2),
        })
    }

    const MB: f64 = 1_048_576.0;

    #[test]
    fn a_steady_process_passes() {
        let p = params(
            serde_json::json!({"process": {"port": 3001}, "health": "http://127.0.0.1:3001/h", "duration": "2s"}),
        );
        let o = judge(
            &p,
            "the process on port 3001",
            watch(
                &[Some(Ok(200)), Some(Ok(200)), Some(Ok(204))],
                &[100.0 * MB, 101.0 * MB, 110.0 * MB],
            ),
        );
        assert_eq!(o.status, Status::Pass, "{o:?}");
        assert_eq!(o.summary, "stable for 2.00s: 3 sample(s)");
        assert_eq!(
            o.evidence,
            [
                "pid 42 throughout (the process on port 3001)",
                "health http://127.0.0.1:3001/h: 3 of 3 answered 2xx",
                "RSS: 100.0 MB → 110.0 MB (+10.0%), peak 110.0 MB ▁▂█",
            ]
        );
        assert_eq!(
            o.command.as_deref(),
            Some("for i in $(seq 3); do ps -o pid=,rss= -p 42; sleep 1; done")
        );
    }

    #[test]
    fn flapping_health_growth_and_restarts_fail() {
        let p = params(serde_json::json!({"health": "http://h/", "max_growth_percent": 20}));
        let o = judge(
            &p,
            "",
            watch(
                &[
                    Some(Ok(200)),
                    Some(Err("connection refused")),
                    Some(Ok(503)),
                ],
                &[MB, MB, MB],
            ),
        );
        assert_eq!(o.status, Status::Fail);
        assert_eq!(
            o.summary,
            "health failed 2 of 3 time(s), first after 1.00s (connection refused)"
        );
        assert!(matches!(
            o.fault,
            Some(Fault::HealthFlapping {
                failed: 2,
                samples: 3,
                ..
            })
        ));
        let o = judge(
            &p,
            "",
            watch(&[Some(Ok(200)), Some(Ok(200))], &[100.0 * MB, 150.0 * MB]),
        );
        assert_eq!(
            o.summary,
            "RSS grew 50% in 2.00s (100.0 MB → 150.0 MB), above 20%"
        );
        assert!(matches!(o.fault, Some(Fault::MemoryGrowth { .. })));
        let o = judge(
            &p,
            "pid 42",
            Watched::Exited {
                pid: 42,
                now: Some(43),
                after: Duration::from_secs(3),
            },
        );
        assert_eq!(o.summary, "pid 42 restarted after 3.00s: pid 42 → 43");
        let o = judge_start("pid 42", true, false, Some(41), Some(42)).unwrap();
        assert_eq!(o.summary, "pid 42 restarted during this run: pid 41 → 42");
        let o = judge_start("the process on port 1", true, false, None, None).unwrap();
        assert_eq!(o.summary, "no process found: the process on port 1");
        assert!(judge_start("x", true, true, None, None).is_none());
    }

    #[test]
    fn the_window_is_the_run_unless_a_duration_is_given() {
        assert_eq!(params(serde_json::json!({})).duration, Window::Run);
        assert_eq!(
            params(serde_json::json!({"duration": "run"})).duration,
            Window::Run
        );
        assert_eq!(
            params(serde_json::json!({"duration": "60s"})).duration,
            Window::Fixed(Duration::from_secs(60))
        );
        assert_eq!(
            params(serde_json::json!({"duration": 0})).duration,
            Window::Fixed(Duration::ZERO)
        );
        let e = serde_json::from_value::<Params>(serde_json::json!({"duration": "soon"}))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("or `run`"), "{e}");
        let o = judge(
            &params(serde_json::json!({"process": {"port": 3001}})),
            "the process on port 3001",
            watch(&[None, None], &[MB, MB]),
        );
        assert_eq!(o.status, Status::Pass);
        assert!(
            o.evidence[0].starts_with("watched while the other checks ran"),
            "{:?}",
            o.evidence
        );
    }
}
