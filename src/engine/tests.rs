//! The engine with fake kinds: no sockets, no processes, and time paused
//! (tokio's clock only moves when every task waits), so scheduling, retries,
//! timeouts and deadlines are exact and instant.

use super::*;
use crate::playbook::{LoadOptions, ParamError, Source};
use serde::Deserialize;
use std::sync::Mutex;
use tokio::time::Instant as VInstant;

/// One fake kind, `fake`, configured by its fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FakeParams {
    /// Name in the event log.
    name: String,
    /// The status it reports (pass, warn, fail, error).
    #[serde(default)]
    status: Option<String>,
    /// How long one attempt takes.
    #[serde(default)]
    sleep_ms: u64,
    /// Fails until this attempt, then reports `status`.
    #[serde(default)]
    pass_on: u32,
    /// Values it captures.
    #[serde(default)]
    capture: serde_json::Map<String, serde_json::Value>,
    /// Any value; the summary shows what arrived.
    #[serde(default)]
    got: Option<serde_json::Value>,
    /// Panics instead of observing.
    #[serde(default)]
    panic: bool,
}

const FIELDS: &[&str] = &[
    "name", "status", "sleep_ms", "pass_on", "capture", "got", "panic",
];

#[derive(Debug, Clone, PartialEq)]
enum Event {
    Start(String, Duration),
    End(String, Duration),
}

#[derive(Default)]
struct Fake {
    t0: Mutex<Option<VInstant>>,
    log: Mutex<Vec<Event>>,
    attempts: Mutex<HashMap<String, u32>>,
}

impl Fake {
    fn now(&self) -> Duration {
        let mut t0 = self.t0.lock().unwrap_or_else(|e| e.into_inner());
        t0.get_or_insert_with(VInstant::now).elapsed()
    }
    fn events(&self) -> Vec<Event> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
    fn start_of(&self, name: &str) -> Vec<Duration> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Start(n, t) if n == name => Some(t),
                _ => None,
            })
            .collect()
    }
    fn end_of(&self, name: &str) -> Option<Duration> {
        self.events().into_iter().find_map(|e| match e {
            Event::End(n, t) if n == name => Some(t),
            _ => None,
        })
    }
}

/// A kind sharing its event log with the test.
struct FakeKind(Arc<Fake>);

impl KindSchema for FakeKind {
    fn name(&self) -> &'static str {
        "fake"
    }
    fn help(&self) -> &'static str {
        "a test double"
    }
    fn schema(&self) -> serde_json::Value {
        serde_json::json!({"type": "object"})
    }
    fn fields(&self) -> Vec<FieldDoc> {
        FIELDS
            .iter()
            .map(|f| FieldDoc {
                name: f.to_string(),
                ty: "any".into(),
                required: *f == "name",
                help: String::new(),
            })
            .collect()
    }
    fn validate(&self, params: &serde_json::Value) -> Result<(), ParamError> {
        serde_json::from_value::<FakeParams>(params.clone())
            .map(|_| ())
            .map_err(|e| ParamError {
                path: String::new(),
                message: e.to_string(),
            })
    }
}

impl Kind for FakeKind {
    fn run(&self, params: serde_json::Value, _ctx: Ctx) -> BoxFuture {
        let fake = self.0.clone();
        Box::pin(async move {
            let p: FakeParams = match serde_json::from_value(params) {
                Ok(p) => p,
                Err(e) => return Observation::error(e.to_string()),
            };
            let attempt = {
                let mut a = fake.attempts.lock().unwrap_or_else(|e| e.into_inner());
                let n = a.entry(p.name.clone()).or_default();
                *n += 1;
                *n
            };
            let start = fake.now();
            fake.log
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(Event::Start(p.name.clone(), start));
            tokio::time::sleep(Duration::from_millis(p.sleep_ms)).await;
            if p.panic {
                panic!("fake kind told to panic");
            }
            let end = fake.now();
            fake.log
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(Event::End(p.name.clone(), end));
            let status = match (attempt < p.pass_on, p.status.as_deref()) {
                (true, _) => Status::Fail,
                (_, Some("warn")) => Status::Warn,
                (_, Some("fail")) => Status::Fail,
                (_, Some("error")) => Status::Error,
                _ => Status::Pass,
            };
            let summary = match &p.got {
                Some(v) => format!("got {v}"),
                None => format!("attempt {attempt}"),
            };
            let mut o = Observation::new(status, summary);
            o.captures = p.capture;
            o
        })
    }
    fn at_start(&self, _params: &serde_json::Value) -> Option<serde_json::Value> {
        None
    }
}

fn registry() -> (Registry, Arc<Fake>) {
    let fake = Arc::new(Fake::default());
    let r = Registry::new(vec![Arc::new(FakeKind(fake.clone()))]);
    (r, fake)
}

fn playbook(yaml: &str, r: &Registry) -> Playbook {
    let src = Source::Text {
        name: "test.yaml".into(),
        text: yaml.into(),
    };
    match crate::playbook::load(&src, &LoadOptions::default(), r) {
        Ok(pb) => pb,
        Err(e) => panic!("test playbook does not load: {e}"),
    }
}

/// Runs `yaml` with the fake kind, never cancelled.
async fn run_yaml(yaml: &str) -> (Report, Arc<Fake>) {
    run_cancelled(yaml, |_| std::future::pending()).await
}

/// Runs `yaml` with the fake kind; `cancel` builds the future that
/// interrupts the run.
async fn run_cancelled<F: Future<Output = ()>>(
    yaml: &str,
    cancel: impl FnOnce(Arc<Fake>) -> F,
) -> (Report, Arc<Fake>) {
    let (r, fake) = registry();
    let pb = playbook(yaml, &r);
    fake.now();
    let report = run(
        &pb,
        &r,
        RunOptions {
            http: http_client(),
        },
        cancel(fake.clone()),
    )
    .await;
    (report, fake)
}

fn get<'a>(r: &'a Report, id: &str) -> &'a CheckResult {
    match r.checks.iter().find(|c| c.id == id) {
        Some(c) => c,
        None => panic!("no check `{id}` in {r:?}"),
    }
}

const S: Duration = Duration::from_secs(1);

#[tokio::test(start_paused = true)]
async fn needs_order_the_run_and_independent_checks_overlap() {
    let y = "phases:\n  - name: A\n    checks:\n      - {id: a, kind: fake, name: a, sleep_ms: 1000}\n      - {id: b, kind: fake, name: b, sleep_ms: 1000, needs: a}\n      - {id: c, kind: fake, name: c, sleep_ms: 1500}\n  - name: B\n    checks:\n      - {id: d, kind: fake, name: d, needs: [b, c]}\n";
    let (r, fake) = run_yaml(y).await;
    assert_eq!(r.status, Status::Pass, "{r:?}");
    assert_eq!(fake.start_of("a"), vec![Duration::ZERO]);
    assert_eq!(fake.start_of("c"), vec![Duration::ZERO], "independent of a");
    assert_eq!(fake.start_of("b"), vec![S], "b starts when a ends");
    assert_eq!(fake.end_of("b"), Some(2 * S));
    assert_eq!(
        fake.start_of("d"),
        vec![2 * S],
        "d waits for the later of b and c"
    );
    assert_eq!(r.phases, vec!["A".to_string(), "B".to_string()]);
    assert_eq!(get(&r, "d").phase, "B");
}

#[tokio::test(start_paused = true)]
async fn concurrency_bounds_checks_in_flight() {
    let mut y = String::from("settings: {concurrency: 2}\nphases:\n  - name: A\n    checks:\n");
    for i in 0..4 {
        y.push_str(&format!(
            "      - {{id: c{i}, kind: fake, name: c{i}, sleep_ms: 1000}}\n"
        ));
    }
    let (r, fake) = run_yaml(&y).await;
    assert_eq!(r.count(Status::Pass), 4);
    let mut starts: Vec<Duration> = (0..4)
        .flat_map(|i| fake.start_of(&format!("c{i}")))
        .collect();
    starts.sort();
    assert_eq!(starts, vec![Duration::ZERO, Duration::ZERO, S, S]);
}

#[tokio::test(start_paused = true)]
async fn a_failed_need_blocks_by_its_root_cause() {
    let y = "phases:\n  - name: A\n    checks:\n      - {id: root, kind: fake, name: root, status: fail}\n      - {id: mid, kind: fake, name: mid, needs: root}\n      - {id: leaf, kind: fake, name: leaf, needs: mid}\n      - {id: warned, kind: fake, name: warned, status: warn}\n      - {id: after_warn, kind: fake, name: after_warn, needs: warned}\n";
    let (r, fake) = run_yaml(y).await;
    assert_eq!(r.status, Status::Fail);
    let mid = get(&r, "mid");
    assert_eq!(mid.status, Status::Blocked);
    assert_eq!(mid.blocked_by.as_deref(), Some("root"));
    assert_eq!(mid.summary, "blocked: `root` did not pass");
    let leaf = get(&r, "leaf");
    assert_eq!(
        leaf.blocked_by.as_deref(),
        Some("root"),
        "the root, not `mid`"
    );
    assert_eq!(
        leaf.summary,
        "blocked: `mid` did not run because `root` did not pass"
    );
    assert_eq!(leaf.attempts, 0);
    assert!(fake.start_of("mid").is_empty() && fake.start_of("leaf").is_empty());
    assert_eq!(
        get(&r, "after_warn").status,
        Status::Pass,
        "a warning satisfies needs"
    );
    assert_eq!(r.count(Status::Blocked), 2);
}

#[tokio::test(start_paused = true)]
async fn retries_wait_the_interval_and_stop_at_the_first_pass() {
    let y = "phases:\n  - name: A\n    checks:\n      - {id: flaky, kind: fake, name: flaky, sleep_ms: 100, pass_on: 3, retries: 5, interval: 2s}\n      - {id: hopeless, kind: fake, name: hopeless, status: fail, retries: 2, interval: 500ms}\n";
    let (r, fake) = run_yaml(y).await;
    let flaky = get(&r, "flaky");
    assert_eq!(flaky.status, Status::Pass);
    assert_eq!(flaky.attempts, 3);
    assert!(
        flaky.evidence.contains(&"3 attempts".to_string()),
        "{flaky:?}"
    );
    let ms = Duration::from_millis;
    assert_eq!(
        fake.start_of("flaky"),
        vec![ms(0), ms(2100), ms(4200)],
        "each retry starts an interval after the last attempt ended"
    );
    let hopeless = get(&r, "hopeless");
    assert_eq!(hopeless.status, Status::Fail);
    assert_eq!(hopeless.attempts, 3, "one attempt and two retries");
    assert_eq!(fake.start_of("hopeless"), vec![ms(0), ms(500), ms(1000)]);
}

#[tokio::test(start_paused = true)]
async fn captures_reach_later_checks_typed() {
    let y = "phases:\n  - name: A\n    checks:\n      - {id: src, kind: fake, name: src, capture: {port: 8080, user: alice}}\n      - {id: use, kind: fake, name: use, got: \"${checks.src.port}\"}\n      - {id: text, kind: fake, name: text, got: \"u=${checks.src.user}\"}\n";
    let (r, fake) = run_yaml(y).await;
    assert_eq!(
        get(&r, "use").summary,
        "got 8080",
        "a whole reference keeps its type"
    );
    assert_eq!(get(&r, "text").summary, "got \"u=alice\"");
    assert_eq!(get(&r, "src").captures["user"], "alice");
    assert!(
        fake.start_of("use")[0] >= fake.end_of("src").unwrap_or(Duration::MAX),
        "a capture makes its source a need"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_capture_source_blocks_its_user() {
    let y = "phases:\n  - name: A\n    checks:\n      - {id: src, kind: fake, name: src, status: fail, capture: {port: 1}}\n      - {id: use, kind: fake, name: use, got: \"${checks.src.port}\"}\n";
    let (r, _) = run_yaml(y).await;
    assert_eq!(get(&r, "use").status, Status::Blocked);
    assert_eq!(get(&r, "use").blocked_by.as_deref(), Some("src"));
}

#[tokio::test(start_paused = true)]
async fn a_check_over_its_timeout_is_an_error() {
    let y = "phases:\n  - name: A\n    checks:\n      - {id: slow, kind: fake, name: slow, sleep_ms: 60000, timeout: 2s}\n      - {id: after, kind: fake, name: after, needs: slow}\n";
    let (r, fake) = run_yaml(y).await;
    let slow = get(&r, "slow");
    assert_eq!(slow.status, Status::Error);
    assert_eq!(slow.summary, "timed out after 2.00s");
    assert!(fake.end_of("slow").is_none(), "the attempt was cut off");
    assert_eq!(
        slow.root_cause.as_deref(),
        Some("The check could not complete: timed out after 2.00s")
    );
    assert_eq!(get(&r, "after").status, Status::Blocked);
    // The backstop: the timeout plus a grace of max(500ms, timeout/10), at most 900ms.
    assert_eq!(slow.duration_ms, 2500);
}

#[tokio::test(start_paused = true)]
async fn the_deadline_ends_the_run_with_a_partial_report() {
    let y = "settings: {deadline: 5s}\nphases:\n  - name: A\n    checks:\n      - {id: quick, kind: fake, name: quick, sleep_ms: 1000}\n      - {id: slow, kind: fake, name: slow, sleep_ms: 60000, timeout: 120s}\n      - {id: later, kind: fake, name: later, needs: slow}\n";
    let (r, fake) = run_yaml(y).await;
    assert!(!r.interrupted);
    assert_eq!(get(&r, "quick").status, Status::Pass);
    let slow = get(&r, "slow");
    assert_eq!(slow.status, Status::Error);
    assert_eq!(
        slow.summary,
        "not finished: the run's deadline of 5.00s passed"
    );
    assert_eq!(get(&r, "later").summary, slow.summary, "never started");
    assert_eq!(get(&r, "later").attempts, 0);
    assert!(fake.end_of("slow").is_none());
    assert_eq!(r.status, Status::Fail);
}

#[tokio::test(start_paused = true)]
async fn cancelling_stops_the_run_and_marks_it_interrupted() {
    let y = "phases:\n  - name: A\n    checks:\n      - {id: quick, kind: fake, name: quick, sleep_ms: 1000}\n      - {id: slow, kind: fake, name: slow, sleep_ms: 60000, timeout: 120s}\n";
    // Interrupted at 5s on the paused clock: `quick` ended at 1s, `slow` would end at 60s.
    let (r, fake) = run_cancelled(y, |_| tokio::time::sleep(5 * S)).await;
    assert!(r.interrupted);
    assert_eq!(get(&r, "quick").status, Status::Pass);
    assert_eq!(get(&r, "slow").status, Status::Error);
    assert_eq!(get(&r, "slow").summary, "not finished: interrupted");
    assert_eq!(fake.end_of("quick"), Some(S));
    assert!(fake.end_of("slow").is_none());
}

#[tokio::test(start_paused = true)]
async fn a_panicking_check_is_that_checks_error() {
    let y = "phases:\n  - name: A\n    checks:\n      - {id: boom, kind: fake, name: boom, panic: true}\n      - {id: fine, kind: fake, name: fine}\n";
    let (r, _) = run_yaml(y).await;
    assert_eq!(get(&r, "boom").status, Status::Error);
    assert!(get(&r, "boom").summary.starts_with("the check crashed"));
    assert_eq!(get(&r, "fine").status, Status::Pass);
}

/// A kind that runs beside the others: it ends when the engine says the
/// others are done.
struct WatchKind(Arc<Fake>);

impl KindSchema for WatchKind {
    fn name(&self) -> &'static str {
        "watch"
    }
    fn help(&self) -> &'static str {
        "a test double that runs beside the others"
    }
    fn schema(&self) -> serde_json::Value {
        serde_json::json!({"type": "object"})
    }
    fn fields(&self) -> Vec<FieldDoc> {
        vec![FieldDoc {
            name: "name".into(),
            ty: "any".into(),
            required: true,
            help: String::new(),
        }]
    }
    fn validate(&self, _params: &serde_json::Value) -> Result<(), ParamError> {
        Ok(())
    }
}

impl Kind for WatchKind {
    fn run(&self, params: serde_json::Value, ctx: Ctx) -> BoxFuture {
        let fake = self.0.clone();
        Box::pin(async move {
            let name = params["name"].as_str().unwrap_or("watch").to_string();
            let start = fake.now();
            fake.log
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(Event::Start(name.clone(), start));
            ctx.others_done.cancelled().await;
            let end = fake.now();
            fake.log
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(Event::End(name, end));
            Observation::new(Status::Pass, "watched")
        })
    }
    fn at_start(&self, _params: &serde_json::Value) -> Option<serde_json::Value> {
        None
    }
    fn beside(&self) -> bool {
        true
    }
}

#[tokio::test(start_paused = true)]
async fn a_check_beside_the_others_starts_with_the_run_and_ends_with_them() {
    let fake = Arc::new(Fake::default());
    let r = Registry::new(vec![
        Arc::new(FakeKind(fake.clone())),
        Arc::new(WatchKind(fake.clone())),
    ]);
    // `after` needs the watch: it starts once the others (a, b) are done.
    let y = "phases:\n  - name: A\n    checks:\n      - {id: w, kind: watch, name: w, timeout: 1m}\n      - {id: a, kind: fake, name: a, sleep_ms: 1000}\n      - {id: b, kind: fake, name: b, sleep_ms: 2500, needs: a}\n      - {id: after, kind: fake, name: after, sleep_ms: 500, needs: w}\n";
    let pb = playbook(y, &r);
    fake.now();
    let report = run(
        &pb,
        &r,
        RunOptions {
            http: http_client(),
        },
        std::future::pending(),
    )
    .await;
    assert_eq!(report.status, Status::Pass, "{report:?}");
    assert_eq!(fake.start_of("w"), [Duration::ZERO]);
    assert_eq!(fake.end_of("b"), Some(Duration::from_millis(3500)));
    assert_eq!(fake.end_of("w"), Some(Duration::from_millis(3500)));
    assert_eq!(fake.end_of("after"), Some(Duration::from_millis(4000)));
}
