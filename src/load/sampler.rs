//! The sampling loop behind [`super::monitor::Watcher`]: pg_stat_activity
//! five times a second (maxima kept), and once a second the wait events and
//! blocking chains, the backend process, the health endpoint's heap, and
//! the CPU of PostgreSQL, chatops and the machine. Every query runs under a
//! statement timeout on a read-only session; chatops never writes.

use super::monitor::{Backend, LockSample, Sample, Watcher};
use crate::diagnose::load::ExitEvidence;
use crate::diagnose::witness;
use crate::pg::{DbUrl, activity, waits};
use crate::probe::http::{MaxBody, read_body};
use crate::probe::{health, log, process, threads};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The fast sampler's period: five samples a second.
pub const FAST: Duration = Duration::from_millis(200);
/// chatops's own sessions, left out of the counts.
pub const APP: &str = "chatops-load";
/// CPU percentages need at least this long an interval (10 ms ticks).
const MIN_CPU_INTERVAL_MS: u64 = 500;
/// Bytes of the backend's log read when it exits.
const LOG_TAIL: u64 = 64 * 1024;

/// Opens a read-only session for sampling, every statement bounded.
pub async fn session(url: &DbUrl) -> Result<tokio_postgres::Client, String> {
    let c = activity::connect(url, APP, Duration::from_secs(5))
        .await
        .map_err(|e| e.to_string())?;
    c.batch_execute(
        "SET statement_timeout = '500ms'; SET lock_timeout = '100ms'; SET default_transaction_read_only = on",
    )
    .await
    .map_err(|e| crate::pg::error_chain(&e))?;
    Ok(c)
}

#[derive(Default)]
struct Maxima {
    n: u32,
    active: Option<u32>,
    idle: Option<u32>,
    iit: Option<u32>,
    waiting_lock: Option<u32>,
    sessions: Option<u32>,
    server: Option<u32>,
}

impl Maxima {
    fn add(&mut self, s: &activity::Snapshot) {
        let m = |a: &mut Option<u32>, v: u32| *a = Some(a.map_or(v, |x| x.max(v)));
        self.n += 1;
        m(&mut self.active, s.in_state("active"));
        m(&mut self.idle, s.in_state("idle"));
        m(
            &mut self.iit,
            s.in_state("idle in transaction") + s.in_state("idle in transaction (aborted)"),
        );
        m(&mut self.waiting_lock, s.waiting_lock);
        m(&mut self.sessions, s.total());
        m(&mut self.server, s.server_total);
    }
}

/// What the once-a-second part remembers between seconds.
struct Slow {
    t0: Instant,
    base_url: String,
    pid: Option<u32>,
    log: Option<PathBuf>,
    log_note: Option<String>,
    /// The log was given (`--backend-log`): a restarted backend keeps it.
    log_given: bool,
    hz: Option<u64>,
    prev: Option<Instant>,
    threads: Vec<threads::ThreadTicks>,
    own: Option<u64>,
    machine: Option<threads::MachineTicks>,
    pg: BTreeMap<i32, u64>,
    db_local: bool,
    health: Option<String>,
    exit: Arc<Mutex<Option<ExitEvidence>>>,
    exited: bool,
}

/// Starts sampling. `database_url` is chatops's own URL to the target
/// database; `pid` the backend process (its CPU, memory, files and log,
/// and its DATABASE_URL's pool settings); `given_log` the backend's log and
/// why that file (`--backend-log`; None: the file its output goes to).
pub async fn start(
    base_url: &str,
    database_url: Option<&str>,
    pid: Option<u32>,
    given_log: Option<(PathBuf, String)>,
    t0: Instant,
    pgbouncer: Option<&str>,
) -> Watcher {
    let mut backend = Backend {
        pid,
        ..Default::default()
    };
    let mut backend_url = None;
    if let Some(pid) = pid
        && let Ok(env) = process::environ(pid)
        && let Some((_, u)) = env.iter().find(|(k, _)| k == "DATABASE_URL")
        && let Ok(db) = DbUrl::parse(u)
    {
        backend.connection_limit = db.connection_limit();
        backend.pool_timeout_s = db.param("pool_timeout").and_then(|v| v.parse().ok());
        backend_url = Some(db);
    }
    let (bouncer, note) = super::bouncer::open(pgbouncer, backend_url.as_ref()).await;
    backend.pgbouncer_note = note;
    if let Some(b) = &bouncer {
        backend.pgbouncer = Some(b.note.clone());
        backend.pgbouncer_pool_size = b.pool_size;
        backend.pgbouncer_pool_mode = b.pool_mode.clone();
        backend.pgbouncer_database = b.database.clone();
    }
    let log_given = given_log.is_some();
    let found = given_log.or_else(|| pid.and_then(log::find_log).map(|(p, r)| (p, r.describe())));
    backend.log = found
        .as_ref()
        .map(|(p, why)| format!("{} ({why})", p.display()));
    let mut client: Option<SamplingClient> = None;
    let mut dbname = None;
    let mut db_url: Option<DbUrl> = None;
    let mut stage_db = None;
    let mut db_local = false;
    match database_url.map(DbUrl::parse) {
        None => {
            backend.database_note = Some("no --database-url: pg_stat_activity not sampled".into())
        }
        Some(Err(e)) => backend.database_note = Some(format!("--database-url is invalid: {e}")),
        Some(Ok(url)) => match session(&url).await {
            Ok(c) => {
                // Every step bounded: a server that stops answering right
                // after the login must not hold the run before it starts.
                let bound = Duration::from_secs(2);
                if let Ok(Ok(s)) =
                    tokio::time::timeout(bound, activity::sample(&c, Some(&url.database))).await
                {
                    backend.usable_connections = Some(s.usable());
                }
                let fast = tokio::time::timeout(bound, c.prepare(activity::QUERY))
                    .await
                    .ok()
                    .and_then(Result::ok);
                let slow = tokio::time::timeout(bound, c.prepare(waits::QUERY))
                    .await
                    .ok()
                    .and_then(Result::ok);
                dbname = Some(url.database.clone());
                db_url = Some(url.clone());
                db_local = url.host.starts_with('/') || process::is_local_host(&url.host);
                client = Some((c, fast, slow));
                let (db, note) = tokio::time::timeout(
                    super::monitor::STAGE_DB_BOUND,
                    super::stage_db::StageDb::open(&url),
                )
                .await
                .unwrap_or_else(|_| {
                    (
                        None,
                        Some("no statement evidence: the database did not answer in time".into()),
                    )
                });
                backend.statements_note = note;
                stage_db = db;
            }
            Err(e) => {
                backend.database_note =
                    Some(format!("cannot connect to sample pg_stat_activity: {e}"))
            }
        },
    }
    let samples = Arc::new(Mutex::new(Vec::new()));
    let exit = Arc::new(Mutex::new(None));
    let mut slow = Slow {
        t0,
        base_url: base_url.to_string(),
        pid,
        log: found.map(|(p, _)| p),
        log_note: backend.log.clone(),
        log_given,
        hz: threads::ticks_per_second(),
        prev: None,
        threads: Vec::new(),
        own: None,
        machine: None,
        pg: BTreeMap::new(),
        db_local,
        health: Some(format!("{}/api/v1/health", base_url.trim_end_matches('/'))),
        exit: exit.clone(),
        exited: false,
    };
    let out = samples.clone();
    let (flush, mut flushes) = tokio::sync::mpsc::channel::<tokio::sync::oneshot::Sender<()>>(4);
    let task = tokio::spawn(async move {
        let http = reqwest::Client::new();
        let mut tick = tokio::time::interval(FAST);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut max = Maxima::default();
        let mut pools: Option<super::bouncer::BouncerSample> = None;
        let mut last = Instant::now();
        let mut last_reconnect = Instant::now();
        slow.read(&[]); // baselines for the first second's deltas
        loop {
            let mut ack = None;
            tokio::select! {
                _ = tick.tick() => {}
                Some(a) = flushes.recv() => ack = Some(a),
            }
            if let Some((c, Some(fast), _)) = &client
                && let Ok(Ok(snap)) = tokio::time::timeout(
                    Duration::from_millis(190),
                    activity::sample_prepared(c, fast, dbname.as_deref()),
                )
                .await
            {
                max.add(&snap.without_app(APP));
            }
            // PostgreSQL restarted (or the session broke): a new session, at
            // most once a second, each attempt bounded, so sampling goes on.
            if let Some(url) = &db_url
                && client.as_ref().is_none_or(|(c, _, _)| c.is_closed())
                && last_reconnect.elapsed() >= Duration::from_secs(1)
            {
                last_reconnect = Instant::now();
                client = reconnect(url).await;
            }
            if let Some(b) = &bouncer
                && let Some(p) = b.sample(Duration::from_millis(150)).await
            {
                pools.get_or_insert_with(Default::default).max(&p);
            }
            if ack.is_none() && last.elapsed() < Duration::from_millis(950) {
                continue;
            }
            last = Instant::now();
            let m = std::mem::take(&mut max);
            let mut pids = Vec::new();
            let mut s = Sample {
                db_up: db_url.as_ref().map(|_| m.n > 0),
                db_samples: m.n,
                active: m.active,
                idle: m.idle,
                idle_in_transaction: m.iit,
                waiting_lock: m.waiting_lock,
                sessions: m.sessions,
                server_sessions: m.server,
                pgbouncer: pools.take(),
                ..Default::default()
            };
            if let (Some((c, _, Some(w))), Some(db)) = (&client, &dbname)
                && let Ok(Ok(r)) =
                    tokio::time::timeout(Duration::from_millis(500), waits::sample(c, w, db)).await
            {
                s.lock = lock_sample(&r);
                s.wait_events = Some(r.by_type);
                pids = r.pids;
            }
            slow.fill(&mut s, &pids, &http).await;
            if let Ok(mut v) = out.lock() {
                v.push(s);
            }
            if let Some(a) = ack {
                let _ = a.send(());
            }
        }
    });
    Watcher {
        samples,
        task: Some(task),
        backend,
        db: stage_db,
        exit,
        flush,
    }
}

/// A new sampling session with its prepared statements, within a second;
/// None while PostgreSQL is still down (the next second tries again).
async fn reconnect(url: &DbUrl) -> Option<SamplingClient> {
    let c = tokio::time::timeout(Duration::from_secs(1), session(url))
        .await
        .ok()?
        .ok()?;
    let fast = c.prepare(activity::QUERY).await.ok();
    let slow = c.prepare(waits::QUERY).await.ok();
    Some((c, fast, slow))
}

/// The sampling session and its prepared fast and slow statements.
type SamplingClient = (
    tokio_postgres::Client,
    Option<tokio_postgres::Statement>,
    Option<tokio_postgres::Statement>,
);

/// The longest chain's head, when sessions wait on locks.
pub fn lock_sample(w: &waits::Waits) -> Option<LockSample> {
    let first = w.blocked.first()?;
    let head = w.heads().into_iter().next();
    let mut rels: BTreeMap<&str, u32> = BTreeMap::new();
    for b in &w.blocked {
        if let Some(r) = &b.relation {
            *rels.entry(r).or_default() += 1;
        }
    }
    let relation = rels
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(r, _)| r.to_string())
        .or_else(|| first.relation.clone());
    Some(LockSample {
        waiting: w.blocked.len() as u32,
        relation,
        wait_ms: w.blocked.iter().map(|b| b.ms).fold(0.0, f64::max),
        blocker_pid: head.map(|h| h.pid),
        blocker_state: head.map(|h| h.state.clone()),
        blocker_query: head.map(|h| witness::evidence_line(&h.query)),
        blocker_xact_ms: head.and_then(|h| h.xact_ms),
    })
}

impl Slow {
    /// Reads the counters; returns the seconds since the last reading.
    fn read(&mut self, pg_pids: &[i32]) -> f64 {
        let now = Instant::now();
        let secs = self
            .prev
            .map(|p| now.duration_since(p).as_secs_f64())
            .unwrap_or(0.0);
        self.prev = Some(now);
        if let Some(pid) = self.pid {
            self.threads = threads::thread_ticks(pid).unwrap_or_default();
        }
        self.own = threads::process_ticks(std::process::id());
        self.machine = threads::machine_ticks();
        if self.db_local {
            self.pg = pg_pids
                .iter()
                .filter_map(|p| Some((*p, threads::process_ticks(u32::try_from(*p).ok()?)?)))
                .collect();
        }
        secs
    }

    async fn fill(&mut self, s: &mut Sample, pg_pids: &[i32], http: &reqwest::Client) {
        s.t_s = (self.t0.elapsed().as_secs_f64() * 10.0).round() / 10.0;
        // CPU is counted in ticks of 10 ms: over a short interval (a flush
        // at a stage's end) a few ticks would read as a busy core. Such a
        // sample leaves the CPU out and keeps the counters for the next.
        let short = self
            .prev
            .is_some_and(|p| p.elapsed() < Duration::from_millis(MIN_CPU_INTERVAL_MS));
        if short {
            if let Some(pid) = self.pid {
                s.backend_pid = Some(pid);
                let alive = process::alive(pid);
                s.backend_alive = Some(alive);
                if alive {
                    s.rss_bytes = process::rss_bytes(pid);
                    s.open_files = threads::open_files(pid);
                } else if !self.exited {
                    self.on_exit(pid, s.t_s);
                }
            }
            self.health(s, http).await;
            return;
        }
        let (old_threads, old_own, old_machine) =
            (std::mem::take(&mut self.threads), self.own, self.machine);
        let old_pg = std::mem::take(&mut self.pg);
        let before = self.pid;
        if let Some(pid) = self.pid
            && !process::alive(pid)
            && !self.exited
        {
            self.on_exit(pid, s.t_s);
        }
        // A restarted backend's threads start counting from its own start.
        let old_threads = if self.pid == before {
            old_threads
        } else {
            Vec::new()
        };
        let secs = self.read(pg_pids);
        let pct = |d: u64, hz: u64| d as f64 / hz as f64 / secs.max(1e-3) * 100.0;
        if let (Some(pid), Some(hz)) = (self.pid, self.hz) {
            s.backend_pid = Some(pid);
            let alive = process::alive(pid);
            s.backend_alive = Some(alive);
            if alive {
                let cpu = threads::thread_cpu(&old_threads, &self.threads, secs, hz);
                if !old_threads.is_empty() {
                    s.backend_cpu_pct = Some(round1(cpu.iter().map(|t| t.pct).sum()));
                    s.hottest_thread = cpu.first().map(|t| t.name.clone());
                    s.hottest_thread_pct = cpu.first().map(|t| round1(t.pct));
                }
                s.threads = Some(self.threads.len() as u32);
                s.rss_bytes = process::rss_bytes(pid);
                s.open_files = threads::open_files(pid);
            }
        }
        if let (Some(a), Some(b), Some(hz)) = (old_own, self.own, self.hz) {
            s.generator_cpu_pct = Some(round1(pct(b.saturating_sub(a), hz)));
        }
        if let (Some(a), Some(b)) = (old_machine, self.machine) {
            s.machine_cpu_pct = threads::machine_busy_pct(a, b).map(round1);
        }
        if let Some(hz) = self.hz
            && self.db_local
            && !old_pg.is_empty()
        {
            let d: u64 = self
                .pg
                .iter()
                .filter_map(|(p, t)| Some(t.saturating_sub(*old_pg.get(p)?)))
                .sum();
            s.db_cpu_pct = Some(round1(pct(d, hz)));
        }
        self.health(s, http).await;
    }

    /// heapUsed and heapTotal from the health endpoint, when it has them.
    async fn health(&mut self, s: &mut Sample, http: &reqwest::Client) {
        if let Some(h) = &self.health {
            // The whole exchange within 500 ms and its body within 64 KB: a
            // health endpoint that floods or never ends costs nothing. Its
            // figures are read as the exporter reads them (memory.heapUsed,
            // "45.2 MB" strings, heapUsedMB keys…).
            let exchange = async {
                let mut r = http.get(h).send().await.ok()?;
                let status = r.status().as_u16();
                let body = read_body(&mut r, MaxBody(health::MAX_HEALTH_BODY))
                    .await
                    .ok()?;
                let v = health::body_json(&body);
                (!v.is_null()).then(|| health::parse(status, &v))
            };
            let figures = tokio::time::timeout(Duration::from_millis(500), exchange)
                .await
                .ok()
                .flatten();
            match figures.as_ref().and_then(|f| f.heap_used_bytes) {
                Some(u) => {
                    s.heap_used_bytes = Some(u as u64);
                    s.heap_total_bytes = figures.and_then(|f| f.heap_total_bytes).map(|t| t as u64);
                }
                // A health endpoint without memory figures: stop asking.
                None if figures.is_some() => self.health = None,
                None => {}
            }
        }
    }

    /// The backend is gone: its log's last words, and who listens now.
    fn on_exit(&mut self, pid: u32, t_s: f64) {
        self.exited = true;
        let new_pid = process::local_listener(&self.base_url).filter(|p| *p != pid);
        let lines = self
            .log
            .as_deref()
            .and_then(|p| log::tail(p, LOG_TAIL).ok())
            .map(|t| t.lines())
            .unwrap_or_default();
        let e = witness::exit_reason(&lines);
        let ev = ExitEvidence {
            pid,
            new_pid,
            at_s: t_s,
            cause: e
                .as_ref()
                .map(|e| e.finding.cause)
                .unwrap_or(crate::diagnose::cause::Cause::Crash),
            summary: e
                .as_ref()
                .map(|e| e.finding.summary.clone())
                .unwrap_or_else(|| match &self.log {
                    Some(_) => "its log names no cause (read `dmesg` for the OOM killer)".into(),
                    None => "no log was found for it (its stdout and stderr are not files)".into(),
                }),
            lines: e.map(|e| e.finding.evidence).unwrap_or_default(),
            log: self.log_note.clone(),
        };
        if let Ok(mut x) = self.exit.lock() {
            *x = Some(ev);
        }
        if let Some(n) = new_pid {
            // A restart: watch the new process from now on.
            self.pid = Some(n);
            self.exited = false;
            if !self.log_given {
                self.log = log::find_log(n).map(|(p, _)| p);
            }
        }
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}
