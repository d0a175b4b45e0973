//! What the report draws: each chart is a list of series (a name, a
//! colour and how to read its value from a second of the run) and
//! reference lines (a stage's p95 bound, the pool's connection_limit).
//! A new series is one more line in [`CHARTS`]; a new chart one more entry.

use super::super::bouncer::BouncerSample;
use super::super::monitor::Backend;
use super::chart::Scale;
use super::timeline::{Row, Timeline};

pub struct SeriesDef {
    pub name: &'static str,
    pub color: &'static str,
    pub dash: bool,
    /// Drawn even when it is zero throughout (true for most: no active
    /// session is news; false for error classes, shown only when they
    /// happened).
    pub always: bool,
    pub value: fn(&Row) -> Option<f64>,
}

/// A horizontal reference over some span of the run.
pub struct RefLine {
    pub name: String,
    pub color: &'static str,
    /// (from s, to s, value)
    pub spans: Vec<(f64, f64, f64)>,
    /// Always inside the y range (else only when near the data).
    pub key: bool,
}

pub struct ChartDef {
    pub id: &'static str,
    pub title: &'static str,
    pub unit: &'static str,
    pub scale: Scale,
    pub series: &'static [SeriesDef],
    pub refs: fn(&Timeline, &Backend) -> Vec<RefLine>,
    /// What an empty chart means.
    pub empty: &'static str,
    /// Left out of the report when it has nothing to draw (a component the
    /// run did not have, as PgBouncer), instead of saying why it is empty.
    pub optional: bool,
}

const MB: f64 = 1_048_576.0;

const fn s(name: &'static str, color: &'static str, value: fn(&Row) -> Option<f64>) -> SeriesDef {
    SeriesDef {
        name,
        color,
        dash: false,
        always: true,
        value,
    }
}

/// A series shown only when it is not zero throughout.
const fn rare(
    name: &'static str,
    color: &'static str,
    value: fn(&Row) -> Option<f64>,
) -> SeriesDef {
    SeriesDef {
        always: false,
        ..s(name, color, value)
    }
}

fn err(r: &Row, f: fn(&super::super::stats::ErrorCounts) -> u64) -> Option<f64> {
    r.sec.map(|p| f(&p.errors) as f64)
}

fn bouncer(r: &Row, f: fn(&BouncerSample) -> f64) -> Option<f64> {
    r.sample.and_then(|x| x.pgbouncer.as_ref()).map(f)
}

fn bouncer_limits(t: &Timeline, b: &Backend) -> Vec<RefLine> {
    let end = t.rows.len().saturating_sub(1) as f64;
    b.pgbouncer_pool_size
        .map(|n| RefLine {
            name: format!("default_pool_size {n}"),
            color: "#343a40",
            spans: vec![(0.0, end, f64::from(n))],
            key: true,
        })
        .into_iter()
        .collect()
}

fn no_refs(_: &Timeline, _: &Backend) -> Vec<RefLine> {
    Vec::new()
}

fn p95_bounds(t: &Timeline, _: &Backend) -> Vec<RefLine> {
    let spans: Vec<(f64, f64, f64)> = t
        .bands
        .iter()
        .filter_map(|b| b.p95_ms.map(|v| (b.start, b.end, v)))
        .collect();
    if spans.is_empty() {
        return Vec::new();
    }
    vec![RefLine {
        name: "stage p95 bound".into(),
        color: "#343a40",
        spans,
        key: true,
    }]
}

fn pool_limits(t: &Timeline, b: &Backend) -> Vec<RefLine> {
    let end = t.rows.len().saturating_sub(1) as f64;
    let mut out = Vec::new();
    if let Some(l) = b.connection_limit {
        out.push(RefLine {
            name: format!("connection_limit {l}"),
            color: "#7048e8",
            spans: vec![(0.0, end, f64::from(l))],
            key: true,
        });
    }
    if let Some(u) = b.usable_connections {
        out.push(RefLine {
            name: format!("usable max_connections {u}"),
            color: "#343a40",
            spans: vec![(0.0, end, f64::from(u))],
            key: false,
        });
    }
    out
}

/// Every chart of the report, top to bottom.
pub const CHARTS: &[ChartDef] = &[
    ChartDef {
        id: "requests",
        title: "Requests per second",
        unit: "/s",
        scale: Scale::Linear,
        series: &[
            s("ok", "#2b8a3e", |r| r.sec.map(|p| p.ok as f64)),
            rare("errors", "#c92a2a", |r| {
                r.sec.map(|p| p.errors.total() as f64)
            }),
        ],
        refs: no_refs,
        empty: "no request finished",
        optional: false,
    },
    ChartDef {
        id: "errors",
        title: "Errors per second by class",
        unit: "/s",
        scale: Scale::Linear,
        series: &[
            rare("refused", "#c92a2a", |r| err(r, |e| e.refused)),
            rare("timeout", "#e8590c", |r| err(r, |e| e.timeout)),
            rare("429 rate limited", "#f59f00", |r| {
                err(r, |e| e.rate_limited)
            }),
            rare("other 4xx", "#9c36b5", |r| err(r, |e| e.client_4xx)),
            rare("5xx", "#d6336c", |r| err(r, |e| e.server_5xx)),
            rare("transport", "#495057", |r| err(r, |e| e.transport)),
        ],
        refs: no_refs,
        empty: "none: no request failed",
        optional: false,
    },
    ChartDef {
        id: "latency",
        title: "Latency per second (HDR histogram of each second)",
        unit: "ms",
        scale: Scale::Log,
        series: &[
            s("p50", "#1c7ed6", |r| r.sec.and_then(|p| p.p50_ms)),
            s("p95", "#f08c00", |r| r.sec.and_then(|p| p.p95_ms)),
            s("p99", "#c92a2a", |r| r.sec.and_then(|p| p.p99_ms)),
        ],
        refs: p95_bounds,
        empty: "no request finished with a latency",
        optional: false,
    },
    ChartDef {
        id: "sessions",
        title: "PostgreSQL sessions of the target database (max per second)",
        unit: "",
        scale: Scale::Linear,
        series: &[
            s("active", "#1c7ed6", |r| {
                r.sample.and_then(|x| x.active).map(f64::from)
            }),
            s("idle", "#adb5bd", |r| {
                r.sample.and_then(|x| x.idle).map(f64::from)
            }),
            s("idle in transaction", "#f08c00", |r| {
                r.sample.and_then(|x| x.idle_in_transaction).map(f64::from)
            }),
            s("waiting on locks", "#c92a2a", |r| {
                r.sample.and_then(|x| x.waiting_lock).map(f64::from)
            }),
        ],
        refs: pool_limits,
        empty: "no database samples (give --database-url)",
        optional: false,
    },
    ChartDef {
        id: "pgbouncer",
        title: "PgBouncer pools of the target database (max per second)",
        unit: "",
        scale: Scale::Linear,
        series: &[
            s("clients", "#1c7ed6", |r| {
                bouncer(r, |b| f64::from(b.clients))
            }),
            s("clients waiting", "#c92a2a", |r| {
                bouncer(r, |b| f64::from(b.cl_waiting))
            }),
            s("server connections", "#2b8a3e", |r| {
                bouncer(r, |b| f64::from(b.servers))
            }),
            s("servers active", "#f08c00", |r| {
                bouncer(r, |b| f64::from(b.sv_active))
            }),
        ],
        refs: bouncer_limits,
        empty: "PgBouncer was not sampled",
        optional: true,
    },
    ChartDef {
        id: "memory",
        title: "Backend memory",
        unit: "MB",
        scale: Scale::Linear,
        series: &[
            s("RSS", "#1c7ed6", |r| {
                r.sample.and_then(|x| x.rss_bytes).map(|b| b as f64 / MB)
            }),
            s("heapUsed", "#2b8a3e", |r| {
                r.sample
                    .and_then(|x| x.heap_used_bytes)
                    .map(|b| b as f64 / MB)
            }),
            SeriesDef {
                dash: true,
                ..s("heapTotal", "#82c91e", |r| {
                    r.sample
                        .and_then(|x| x.heap_total_bytes)
                        .map(|b| b as f64 / MB)
                })
            },
        ],
        refs: no_refs,
        empty: "no memory figures (the backend is not local and its health endpoint reports no memory)",
        optional: false,
    },
    ChartDef {
        id: "cpu",
        title: "CPU, % of one core",
        unit: "%",
        scale: Scale::Linear,
        series: &[
            s("backend", "#1c7ed6", |r| {
                r.sample.and_then(|x| x.backend_cpu_pct)
            }),
            s("hottest thread", "#c92a2a", |r| {
                r.sample.and_then(|x| x.hottest_thread_pct)
            }),
            s("PostgreSQL", "#2b8a3e", |r| {
                r.sample.and_then(|x| x.db_cpu_pct)
            }),
            s("generator (chatops)", "#868e96", |r| {
                r.sample.and_then(|x| x.generator_cpu_pct)
            }),
        ],
        refs: no_refs,
        empty: "no CPU figures (the backend is not on this machine)",
        optional: false,
    },
];
