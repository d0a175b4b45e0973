//! `stability`: the backend stays up for a while (the seed's Phase 1: 60 s
//! or more): the same process throughout (no restarts), health answering at
//! every sample, and memory not growing beyond a bound.

use super::env::ProcessSel;
use super::{Check, Ctx, Observation};
use crate::diagnose::Fault;
use crate::probe::process;
use crate::support::duration::Dur;
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
    /// How long to watch (default 10s; the seed watched 60s). 0: one sample.
    #[serde(default = "default_duration")]
    pub duration: Dur,
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
}

#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MemorySource {
    #[default]
    Auto,
    Rss,
    Heap,
}

fn default_duration() -> Dur {
    Dur(Duration::from_secs(10))
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

/// A one-line trend: ▁▂▃▄▅▆▇█ scaled between the smallest and largest value.
pub fn sparkline(xs: &[f64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    xs.iter()
        .map(|x| {
            if (hi - lo).abs() < f64::EPSILON {
                BARS[0]
            } else {
                BARS[(((x - lo) / (hi - lo)) * 7.0).round() as usize]
            }
        })
        .collect()
}

fn mb(b: f64) -> String {
    format!("{:.1} MB", b / 1_048_576.0)
}

struct Sample {
    health: Option<Result<u16, String>>,
    memory: Option<f64>,
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

    async fn run(p: Params, ctx: Ctx) -> Observation {
        let duration = p.duration.0;
        let interval = p.every.0.max(Duration::from_millis(50));
        if duration + Duration::from_secs(2) > ctx.timeout {
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
        let selector = p
            .process
            .as_ref()
            .map(|s| match (s.pid, s.port, &s.name) {
                (Some(pid), _, _) => format!("pid {pid}"),
                (_, Some(port), _) => format!("the process on port {port}"),
                (_, _, Some(n)) => format!("process {n:?}"),
                _ => "the process".into(),
            })
            .unwrap_or_default();
        let remote = p
            .process
            .as_ref()
            .and_then(|s| s.host.as_deref())
            .is_some_and(|h| !process::is_local_host(h));
        if p.process.is_some() && pid.is_none() && !remote {
            return Observation::fail(
                format!("no process found: {selector}"),
                Fault::ProcessNotFound { selector },
            );
        }
        if let (Some(a), Some(b)) = (run_pid, pid)
            && a != b
        {
            return Observation::fail(
                format!("{selector} restarted during this run: pid {a} → {b}"),
                Fault::ProcessRestarted {
                    selector,
                    from: a,
                    to: Some(b),
                },
            );
        }
        let use_rss = match p.memory {
            MemorySource::Rss => true,
            MemorySource::Heap => false,
            MemorySource::Auto => pid.is_some(),
        };
        // Each health request may take what the check's budget leaves over
        // the watch (at most 5 s): a slow answer under load is no failure.
        let per_request = ctx
            .timeout
            .saturating_sub(duration + Duration::from_millis(500))
            .clamp(Duration::from_millis(500), Duration::from_secs(5));
        let n = (duration.as_millis() / interval.as_millis().max(1)) as usize + 1;
        let started = Instant::now();
        let mut samples: Vec<Sample> = Vec::with_capacity(n);
        for i in 0..n {
            let due = started + interval * i as u32;
            tokio::time::sleep_until(due.into()).await;
            if let Some(pid) = pid
                && !process::alive(pid)
            {
                let now = p.process.as_ref().and_then(find_pid);
                return Observation::fail(
                    match now {
                        Some(b) => format!(
                            "{selector} restarted after {}: pid {pid} → {b}",
                            crate::support::duration::fmt(started.elapsed())
                        ),
                        None => format!(
                            "{selector} (pid {pid}) exited after {}",
                            crate::support::duration::fmt(started.elapsed())
                        ),
                    },
                    Fault::ProcessRestarted {
                        selector,
                        from: pid,
                        to: now,
                    },
                );
            }
            let mut heap = None;
            let health = match &p.health {
                None => None,
                Some(url) => Some(
                    match ctx.http.get().get(url).timeout(per_request).send().await {
                        Ok(r) => {
                            let status = r.status().as_u16();
                            if !use_rss && let Ok(j) = r.json::<serde_json::Value>().await {
                                heap = crate::support::dotpath::lookup(&j, &p.heap_path)
                                    .and_then(|v| v.as_f64());
                            }
                            Ok(status)
                        }
                        Err(e) => Err(super::util::net_error(crate::probe::http::classify(&e).0)
                            .describe()
                            .to_string()),
                    },
                ),
            };
            let memory = if use_rss {
                pid.and_then(process::rss_bytes).map(|b| b as f64)
            } else {
                heap
            };
            samples.push(Sample { health, memory });
        }
        let watched = started.elapsed();
        let mut o = Observation::pass(format!(
            "stable for {}: {} sample(s)",
            crate::support::duration::fmt(watched),
            samples.len()
        ))
        .capture("samples", samples.len());
        if let Some(pid) = pid {
            o = o
                .evidence(format!("pid {pid} throughout ({selector})"))
                .capture("pid", pid)
                .command(format!(
                    "for i in $(seq {n}); do ps -o pid=,rss= -p {pid}; sleep {}; done",
                    interval.as_secs_f64()
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
        let what = if use_rss { "RSS" } else { "heapUsed" };
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
            o.status = super::Status::Fail;
            o.summary = format!(
                "health failed {} of {} time(s), first after {} ({why})",
                bad.len(),
                samples.len(),
                crate::support::duration::fmt(interval * *i as u32)
            );
            o.fault = Some(Fault::HealthFlapping {
                url: p.health.clone().unwrap_or_default(),
                failed: bad.len() as u32,
                samples: samples.len() as u32,
                first: why.clone(),
            });
            return o;
        }
        if let Some((pct, first, last)) = growth
            && pct > p.max_growth_percent
        {
            o.status = super::Status::Fail;
            o.summary = format!(
                "{what} grew {pct:.0}% in {} ({} → {}), above {}%",
                crate::support::duration::fmt(watched),
                mb(first),
                mb(last),
                p.max_growth_percent
            );
            o.fault = Some(Fault::MemoryGrowth {
                what: what.to_string(),
                from_mb: first / 1_048_576.0,
                to_mb: last / 1_048_576.0,
                percent: pct,
                bound: p.max_growth_percent,
                over: crate::support::duration::fmt(watched),
            });
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::sparkline;

    #[test]
    fn sparkline_scales() {
        assert_eq!(sparkline(&[1.0, 1.0, 1.0]), "▁▁▁");
        assert_eq!(sparkline(&[0.0, 7.0]), "▁█");
        assert_eq!(
            sparkline(&[10.0, 11.0, 12.0, 13.0, 14.0]).chars().count(),
            5
        );
        assert_eq!(sparkline(&[]), "");
    }
}
