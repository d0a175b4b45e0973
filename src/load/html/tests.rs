//! The page for a synthetic run as long as the seed's plan (seven stages,
//! 20.5 minutes of load, six 30 s cooldowns and a warm-up: about 24
//! minutes) with every series present: it must stay under 1 MB.

use super::super::bouncer::BouncerSample;
use super::super::evidence::Details;
use super::super::monitor::{Backend, LockSample, Sample, summarize};
use super::super::persecond::PerSecond;
use super::super::plan::{Model, SEED_STAGES, Stage};
use super::super::result::{BreakingPoint, Generator, RunResult, StageResult, StageStatus};
use super::super::stats::{ErrorCounts, TaskStats};
use super::*;
use crate::diagnose::cause::Cause;
use crate::diagnose::load::{Candidate, Warning};
use std::time::Duration;

fn stage(
    name: &str,
    vus: u32,
    secs: u64,
    p95: f64,
    offset: f64,
    status: StageStatus,
) -> StageResult {
    let mut seconds = Vec::new();
    let mut samples = Vec::new();
    for i in 1..=secs {
        let f = i as f64;
        let e = |k: u64| (i % (7 + k) == 0) as u64 * (k + 1);
        seconds.push(PerSecond {
            t_s: f,
            requests: 40 * u64::from(vus) + i % 13,
            ok: 40 * u64::from(vus),
            errors: ErrorCounts {
                refused: e(0),
                timeout: e(1),
                rate_limited: e(2),
                client_4xx: e(3),
                server_5xx: e(4),
                transport: e(5),
            },
            p50_ms: Some(3.0 + (f * 0.37).sin().abs() * 2.0),
            p95_ms: Some(12.0 + f * 0.7 % 40.0),
            p99_ms: Some(30.0 + f * 1.3 % 300.0),
            max_ms: Some(812.4),
            mean_ms: Some(5.6),
        });
        samples.push(Sample {
            t_s: offset + f,
            db_samples: 5,
            db_up: Some(true),
            pgbouncer: Some(BouncerSample {
                cl_active: 40 + (i % 7) as u32,
                cl_waiting: (i % 11 == 0) as u32 * 3,
                sv_active: 12 + (i % 5) as u32,
                servers: 20,
                maxwait_s: 0.0,
                clients: 43 + (i % 7) as u32,
            }),
            active: Some((vus / 3).min(50) + (i % 4) as u32),
            idle: Some(10 + (i % 3) as u32),
            idle_in_transaction: Some((i % 5 == 0) as u32),
            waiting_lock: Some((i % 9 == 0) as u32 * 2),
            sessions: Some(50),
            server_sessions: Some(53),
            rss_bytes: Some(180_000_000 + i * 91_234),
            heap_used_bytes: Some(90_000_000 + i * 51_234),
            heap_total_bytes: Some(140_000_000 + i * 31_234),
            backend_alive: Some(true),
            backend_pid: Some(4242),
            backend_cpu_pct: Some(40.0 + (f * 0.11).sin() * 30.0),
            hottest_thread: Some("node".into()),
            hottest_thread_pct: Some(35.0 + (f * 0.07).cos() * 20.0),
            threads: Some(11),
            open_files: Some(40),
            wait_events: Some([("Lock".to_string(), 1u32)].into_iter().collect()),
            lock: Some(LockSample {
                waiting: 1,
                relation: Some("conversations".into()),
                wait_ms: 120.0,
                blocker_pid: Some(99),
                blocker_state: Some("idle in transaction".into()),
                blocker_query: Some("UPDATE conversations SET …".into()),
                blocker_xact_ms: Some(800.0),
            }),
            db_cpu_pct: Some(22.5 + (i % 10) as f64),
            generator_cpu_pct: Some(18.0 + (i % 6) as f64),
            machine_cpu_pct: Some(55.0),
        });
    }
    StageResult {
        stage: Stage {
            name: name.into(),
            vus,
            rate: None,
            duration: Duration::from_secs(secs),
            p95_ms: Some(p95),
            max_error_pct: Some(1.0),
        },
        model: Model::Closed,
        elapsed: Duration::from_secs(secs),
        kinds: vec!["send_message".into(), "fetch_history".into()],
        stats: TaskStats::new(2),
        planned: None,
        watch: summarize(&samples),
        samples,
        status,
        failures: Vec::new(),
        cpu_pct: 20.0,
        progress: Vec::new(),
        seconds,
        offset_s: offset,
        slow: None,
        unreliable: None,
    }
}

/// The seed's plan, run to its last stage, which breaks.
pub(crate) fn seed_run() -> RunResult {
    let mut offset = 3.0;
    let mut stages = Vec::new();
    for (i, (name, vus, secs, p95, _)) in SEED_STAGES.iter().enumerate() {
        let last = i + 1 == SEED_STAGES.len();
        let st = if last {
            StageStatus::Fail
        } else {
            StageStatus::Pass
        };
        stages.push(stage(name, *vus, *secs, *p95, offset, st));
        offset += *secs as f64 + 30.0;
    }
    let warmup = stage("warm-up", 5, 3, 100.0, 0.0, StageStatus::Pass);
    RunResult {
        plan: "progressive-load".into(),
        model: Model::Closed,
        base_url: "http://127.0.0.1:3001".into(),
        elapsed: Duration::from_secs_f64(offset - 30.0),
        stages,
        breaking_point: Some(BreakingPoint {
            stage: "ultimate".into(),
            cause: Cause::PoolSaturation,
            root_cause: "Requests queue for one of the backend's 50 pooled connections.".into(),
            remedy: "Raise connection_limit to 60 & <check> max_connections".into(),
            evidence: vec!["active 50 50 50 (max 50)".into()],
            contributing: vec![Candidate {
                cause: Cause::LockContention,
                root_cause: "sessions wait on conversations".into(),
                fix: "shorten the transaction".into(),
                evidence: vec!["2 waiting".into()],
                at_s: None,
            }],
            ruled_out: vec!["crash: the backend stayed up".into()],
            details: Details::default(),
            first_failure_s: Some(212.0),
        }),
        warnings: vec![Warning {
            cause: Cause::MemoryGrowth,
            stage: "ultimate".into(),
            message: "heapUsed at 83% of heapTotal".into(),
            fix: "find the leak".into(),
        }],
        warmup: Some(warmup),
        interrupted: false,
        time_bound_hit: false,
        backend: Backend {
            pid: Some(4242),
            connection_limit: Some(50),
            pgbouncer_pool_size: Some(20),
            usable_connections: Some(97),
            ..Backend::default()
        },
        generator: Generator {
            cpu_pct: 21.0,
            peak_rss_bytes: Some(18_000_000),
        },
    }
}

#[test]
fn a_seed_length_run_with_every_series_stays_under_a_megabyte() {
    let r = seed_run();
    let html = page(&r, None, &Redactor::new());
    eprintln!(
        "report.html for a {:.0}-minute run: {} bytes",
        r.elapsed.as_secs_f64() / 60.0,
        html.len()
    );
    assert!(r.elapsed.as_secs() >= 23 * 60, "{:?}", r.elapsed);
    assert!(html.len() < 1_000_000, "{} bytes", html.len());
    // every chart drew every series it has
    for def in series::CHARTS {
        assert!(
            html.contains(&format!("id=\"chart-{}\"", def.id)),
            "{}",
            def.id
        );
        for s in def.series {
            assert!(
                html.contains(&format!("</i>{} ", esc(s.name))),
                "{}",
                s.name
            );
        }
    }
    assert_eq!(html.matches("<path class=\"line").count(), 26);
    assert!(html.contains("connection_limit 50"));
    assert!(html.contains("default_pool_size 20"));
    assert!(html.contains("stage p95 bound"));
    for (name, ..) in SEED_STAGES {
        assert!(html.contains(&format!("<title>{name}</title>")), "{name}");
    }
    assert!(html.contains("⚡ breaking point: pool saturation"));
    assert!(html.contains("Broke at stage <b>ultimate</b> (212 s into it)"));
    // escaped, self-contained
    assert!(html.contains("Raise connection_limit to 60 &amp; &lt;check&gt;"));
    assert!(!html.contains("<check>"));
    for external in ["src=\"http", "href=\"http", "<link", "@import", "url("] {
        assert!(!html.contains(external), "{external}");
    }
}

#[test]
fn series_without_data_are_left_out_and_empty_charts_say_why() {
    let mut r = seed_run();
    for s in r.stages.iter_mut().chain(r.warmup.iter_mut()) {
        for x in &mut s.samples {
            *x = Sample {
                t_s: x.t_s,
                ..Sample::default()
            };
        }
        for p in &mut s.seconds {
            p.errors = ErrorCounts::default();
        }
    }
    let html = page(&r, Some("<section id=\"cmp\"></section>"), &Redactor::new());
    assert!(
        !html.contains("</i>refused "),
        "a class that never happened"
    );
    assert!(html.contains("no database samples"));
    assert!(html.contains("<section id=\"cmp\">"));
    assert_eq!(html.matches("<path class=\"line").count(), 4);
    assert!(html.contains("none: no request failed"));
    // a component the run did not have is left out, not drawn empty, and
    // the hover data stays aligned with the charts shown
    assert!(!html.contains("chart-pgbouncer"));
    assert!(!html.contains("PgBouncer was not sampled"));
    let shown = series::CHARTS.len() - 1;
    for i in 0..shown {
        assert!(html.contains(&format!("data-chart=\"{i}\"")), "{i}");
    }
    assert!(!html.contains(&format!("data-chart=\"{shown}\"")));
}
