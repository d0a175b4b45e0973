//! `watch-connections --listen` as a Prometheus exporter, for real: the
//! shipped rules through `promtool check rules` and `promtool test rules`;
//! a real Prometheus (Debian's package) scraping the exporter against a
//! sandbox (PostgreSQL and the reference backend's health), with the
//! shipped rules (their `for:` shortened to 1s, the expressions untouched)
//! firing when the test opens more active sessions than the thresholds; and
//! every metric the rules and the dashboard name is one a real scrape
//! exports, every dashboard query runs and returns data.

use crate::common::*;
use chatops::pg::DbUrl;
use chatops::pg::activity::connect;
use chatops::sandbox::pg::PgOptions;
use chatops::sandbox::{Knobs, Sandbox};
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const INSTALL: &str = "apt-get install -y prometheus (Debian's package brings promtool)";

fn contrib(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("contrib")
        .join(rel)
}

fn rules_text() -> String {
    std::fs::read_to_string(contrib("prometheus/chatops-alerts.yaml")).expect("the shipped rules")
}

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).expect("YAML")
}

/// The rules of the shipped file.
fn rules() -> Vec<Value> {
    let v = yaml(&rules_text());
    v["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().expect("rules").clone())
        .collect()
}

fn dashboard() -> Value {
    let text =
        std::fs::read_to_string(contrib("grafana/chatops-dashboard.json")).expect("dashboard");
    serde_json::from_str(&text).expect("the dashboard is JSON")
}

/// Every PromQL expression of the dashboard's panels.
fn dashboard_exprs(d: &Value) -> Vec<String> {
    d["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .map(|t| t["expr"].as_str().expect("expr").to_string())
        .collect()
}

/// `chatops_…` names in a PromQL expression.
fn chatops_names(expr: &str) -> BTreeSet<String> {
    let re = regex::Regex::new(r"\bchatops_[a-z0-9_]+").unwrap();
    re.find_iter(expr).map(|m| m.as_str().to_string()).collect()
}

fn promtool(args: &[&str], dir: &Path) -> (bool, String) {
    let mut c = Command::new("promtool");
    c.args(args).current_dir(dir);
    let out = output_within(c, Duration::from_secs(60), "promtool");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn the_shipped_rules_pass_promtool_and_their_unit_tests() {
    require_tool("promtool", &["--version"], INSTALL);
    let dir = contrib("prometheus");
    let (ok, out) = promtool(&["check", "rules", "chatops-alerts.yaml"], &dir);
    let rules = rules();
    assert!(ok, "promtool check rules: {out}");
    assert!(
        out.contains(&format!("SUCCESS: {} rules found", rules.len())),
        "{out}"
    );
    let (ok, out) = promtool(&["test", "rules", "chatops-alerts.test.yaml"], &dir);
    assert!(ok, "promtool test rules: {out}");
    assert!(out.contains("SUCCESS"), "{out}");

    // Each rule: a summary, a runbook naming a chatops command, a severity;
    // the seed's alerts are all there.
    let names: Vec<&str> = rules.iter().map(|r| r["alert"].as_str().unwrap()).collect();
    for r in &rules {
        let a = &r["annotations"];
        assert!(a["summary"].as_str().is_some_and(|s| !s.is_empty()), "{r}");
        assert!(
            a["runbook"]
                .as_str()
                .is_some_and(|s| s.starts_with("chatops ")),
            "{r}"
        );
        assert!(
            matches!(
                r["labels"]["severity"].as_str(),
                Some("warning" | "critical")
            ),
            "{r}"
        );
        assert!(r["for"].as_str().is_some(), "every rule waits a while: {r}");
    }
    for seed in [
        "ChatopsActiveSessionsWarning",
        "ChatopsActiveSessionsCritical",
        "ChatopsPoolSaturated",
        "ChatopsConnectionsNearMax",
        "ChatopsLockWaits",
        "ChatopsIdleInTransaction",
        "ChatopsPostgresDown",
        "ChatopsHeapHigh",
    ] {
        assert!(names.contains(&seed), "{seed} missing from {names:?}");
    }

    // The unit tests have a firing and a not-firing case for every rule.
    let tests = yaml(
        &std::fs::read_to_string(dir.join("chatops-alerts.test.yaml")).expect("the rule tests"),
    );
    let cases: Vec<&Value> = tests["tests"]
        .as_array()
        .expect("tests")
        .iter()
        .flat_map(|t| t["alert_rule_test"].as_array().expect("alert_rule_test"))
        .collect();
    for name in &names {
        let of = |firing: bool| {
            cases.iter().any(|c| {
                c["alertname"] == *name
                    && c["exp_alerts"]
                        .as_array()
                        .is_some_and(|a| a.is_empty() != firing)
            })
        };
        assert!(of(true), "no firing case for {name}");
        assert!(of(false), "no not-firing case for {name}");
    }
}

#[test]
fn the_dashboard_is_grafana_json_with_a_datasource_variable() {
    let d = dashboard();
    assert!(d["uid"].as_str().is_some_and(|u| !u.is_empty()));
    assert!(d["title"].as_str().is_some_and(|u| !u.is_empty()));
    assert!(d["schemaVersion"].as_u64().is_some_and(|v| v >= 30));
    let vars = d["templating"]["list"].as_array().expect("templating.list");
    let ds = vars
        .iter()
        .find(|v| v["type"] == "datasource")
        .expect("a datasource variable");
    assert_eq!(ds["query"], "prometheus");
    let ds_ref = format!("${{{}}}", ds["name"].as_str().unwrap());
    let panels = d["panels"].as_array().expect("panels");
    assert!(panels.len() >= 10, "{} panels", panels.len());
    let mut ids = BTreeSet::new();
    let mut cells = BTreeSet::new();
    for p in panels {
        assert!(
            ids.insert(p["id"].as_u64().expect("id")),
            "duplicate id: {p}"
        );
        assert!(p["title"].as_str().is_some_and(|t| !t.is_empty()));
        assert_eq!(p["datasource"]["uid"], ds_ref.as_str(), "{}", p["title"]);
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{}", p["title"]);
        for t in targets {
            assert_eq!(t["datasource"]["uid"], ds_ref.as_str());
            assert!(
                !chatops_names(t["expr"].as_str().unwrap()).is_empty(),
                "{t}"
            );
        }
        // Panels sit on Grafana's 24-column grid without overlapping.
        let g = &p["gridPos"];
        let (x, y, w, h) = (
            g["x"].as_u64().unwrap(),
            g["y"].as_u64().unwrap(),
            g["w"].as_u64().unwrap(),
            g["h"].as_u64().unwrap(),
        );
        assert!(x + w <= 24 && w > 0 && h > 0, "{}", p["title"]);
        for cx in x..x + w {
            for cy in y..y + h {
                assert!(
                    cells.insert((cx, cy)),
                    "{} overlaps another panel",
                    p["title"]
                );
            }
        }
    }
    // The rules' metrics are all on the dashboard.
    let on_dashboard: BTreeSet<String> = dashboard_exprs(&d)
        .iter()
        .flat_map(|e| chatops_names(e))
        .collect();
    for r in rules() {
        for n in chatops_names(r["expr"].as_str().unwrap()) {
            assert!(
                on_dashboard.contains(&n),
                "{n} (rule {}) is on no panel",
                r["alert"]
            );
        }
    }
}

/// A child process killed when the test ends (a panic included), with its
/// standard error collected line by line.
struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: Arc<Mutex<Vec<String>>>,
    what: String,
}

impl Proc {
    fn spawn(mut c: Command, what: &str) -> Proc {
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = c
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let err = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let keep = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                keep.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        Proc {
            child,
            lines,
            log,
            what: what.to_string(),
        }
    }

    /// The first stderr line `pick` accepts (within `guard`).
    fn wait_line<T>(&self, guard: Duration, pick: impl Fn(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + guard;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    if let Some(v) = pick(&l) {
                        return v;
                    }
                }
                Err(_) => panic!("{} did not say it listens:\n{}", self.what, self.log()),
            }
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `chatops watch-connections --listen 127.0.0.1:0 ARGS`; returns it
/// and the address it serves.
fn exporter(args: &[&str]) -> (Proc, String) {
    let mut c = Command::new(bin());
    c.args(["watch-connections", "--listen", "127.0.0.1:0"])
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("DATABASE_URL");
    let p = Proc::spawn(c, "chatops watch-connections --listen");
    let addr = p.wait_line(Duration::from_secs(30), |l| {
        l.split("serving http://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .map(str::to_string)
    });
    (p, addr)
}

fn get(rt: &tokio::runtime::Runtime, url: &str) -> (u16, String, String) {
    get_with(rt, url, &[])
}

fn get_with(
    rt: &tokio::runtime::Runtime,
    url: &str,
    headers: &[(&str, &str)],
) -> (u16, String, String) {
    rt.block_on(async {
        let mut req = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap()
            .get(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let status = r.status().as_u16();
        let ctype = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        (status, ctype, r.text().await.unwrap_or_default())
    })
}

/// The families a scrape declares (`# TYPE` lines).
fn families(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_string)
        .collect()
}

/// `promtool check metrics` on a scrape: exit 0 (valid, and no lint problem).
fn promtool_check_metrics(text: &str) {
    use std::io::Write;
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = wait_output(child, Duration::from_secs(30), "promtool check metrics");
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn refusals_and_postgres_down() {
    require_tool("promtool", &["--version"], INSTALL);
    // Not loopback without --allow-remote: refused before anything starts.
    let r = chatops(
        &[
            "watch-connections",
            "--listen",
            ":0",
            "--database-url",
            "postgresql://u:secret@127.0.0.1:1/db",
        ],
        &[],
    );
    assert_eq!(r.code, 2, "{} {}", r.stdout, r.stderr);
    assert!(r.stderr.contains("--allow-remote"), "{}", r.stderr);
    assert!(!r.stderr.contains("secret"));
    let r = chatops(
        &[
            "watch-connections",
            "--once",
            "--health-url",
            "http://127.0.0.1:1/health",
            "--database-url",
            "postgresql://u:p@127.0.0.1:1/db",
        ],
        &[],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("--health-url needs --listen"),
        "{}",
        r.stderr
    );

    // Nothing listens on port 1: PostgreSQL is down, the exporter answers.
    let rt = runtime();
    let (p, addr) = exporter(&[
        "--timeout",
        "2s",
        "--database-url",
        "postgresql://u:secret@127.0.0.1:1/shop?connection_limit=7",
    ]);
    let (status, ctype, text) = get(&rt, &format!("http://{addr}/metrics"));
    assert_eq!(status, 200);
    assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
    promtool_check_metrics(&text);
    for line in [
        "chatops_pg_up 0",
        "chatops_up 0",
        "chatops_exporter_last_scrape_error 1",
        "chatops_exporter_scrapes_total 1",
        "chatops_backend_connection_limit{database=\"shop\"} 7",
    ] {
        assert!(text.contains(&format!("{line}\n")), "no {line} in\n{text}");
    }
    let (status, _, body) = get(&rt, &format!("http://{addr}/healthz"));
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    assert_eq!(get(&rt, &format!("http://{addr}/nope")).0, 404);
    let notice = p.wait_line(Duration::from_secs(10), |l| {
        l.contains("PostgreSQL cannot be sampled")
            .then(|| l.to_string())
    });
    assert!(!notice.contains("secret"), "{notice}");
    drop(p);

    // A server that accepts and never answers (PostgreSQL hanging): the
    // scrape answers within Prometheus's scrape timeout, with pg_up 0,
    // although --timeout is longer.
    let hang = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "postgresql://u:p@127.0.0.1:{}/db",
        hang.local_addr().unwrap().port()
    );
    let (p, addr) = exporter(&["--timeout", "60s", "--database-url", &url]);
    let t = Instant::now();
    let (status, _, text) = get_with(
        &rt,
        &format!("http://{addr}/metrics"),
        &[("X-Prometheus-Scrape-Timeout-Seconds", "1.5")],
    );
    let took = t.elapsed();
    assert_eq!(status, 200);
    assert!(text.contains("chatops_pg_up 0\n"), "{text}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let notice = p.wait_line(Duration::from_secs(10), |l| {
        l.contains("PostgreSQL cannot be sampled")
            .then(|| l.to_string())
    });
    assert!(notice.contains("the scrape's timeout"), "{notice}");
    drop(hang);
}

/// The shipped rules with every `for:` set to 1s (the expressions, labels
/// and annotations untouched), so that an alert fires within seconds.
fn quick_rules() -> (String, usize) {
    let mut n = 0;
    let text: String = rules_text()
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("for: ") {
                n += 1;
                let indent = &l[..l.len() - l.trim_start().len()];
                format!("{indent}for: 1s\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    (text, n)
}

fn api(rt: &tokio::runtime::Runtime, prom: &str, path: &str) -> Value {
    let (status, _, body) = get(rt, &format!("http://{prom}{path}"));
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    assert_eq!(status, 200, "{path}: {body}");
    assert_eq!(v["status"], "success", "{path}: {body}");
    v["data"].clone()
}

fn query(rt: &tokio::runtime::Runtime, prom: &str, q: &str) -> Vec<Value> {
    let enc = percent_encoding::utf8_percent_encode(q, percent_encoding::NON_ALPHANUMERIC);
    api(rt, prom, &format!("/api/v1/query?query={enc}"))["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn alerts(rt: &tokio::runtime::Runtime, prom: &str) -> Vec<Value> {
    api(rt, prom, "/api/v1/alerts")["alerts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn prometheus_scrapes_the_exporter_and_the_shipped_alert_fires() {
    require_tool("prometheus", &["--version"], INSTALL);
    require_tool("promtool", &["--version"], INSTALL);
    let rt = runtime();
    // A cluster of its own: the shared one's other sessions (parallel load
    // tests) would move the server-wide connection alerts, and the sleepers
    // would move theirs.
    let pg = start_cluster(PgOptions::default());
    let mut sb = rt
        .block_on(Sandbox::on_cluster(&bin(), pg, "chat_backend_db"))
        .unwrap_or_else(|e| panic!("sandbox: {e}"));
    // The backend's pool: 4, in its own DATABASE_URL (read through the
    // process behind the health URL, no flag).
    let knobs = Knobs {
        connection_limit: Some(4),
        ..Knobs::default()
    };
    let base_url = start(&rt, &mut sb, knobs);
    let db = sb.db_name().to_string();

    // The exporter: thresholds 2 and 3, the backend's health.
    let health = format!("{base_url}/api/v1/health");
    let (exp, addr) = exporter(&[
        "--database-url",
        &sb.db_url,
        "--warn-active",
        "2",
        "--critical-active",
        "3",
        "--health-url",
        &health,
    ]);

    // Every metric the rules and the dashboard use is one a real scrape
    // declares, and the scrape passes promtool's own check.
    let (_, _, text) = get(&rt, &format!("http://{addr}/metrics"));
    promtool_check_metrics(&text);
    let exported = families(&text);
    let d = dashboard();
    let mut used: BTreeSet<String> = BTreeSet::new();
    for r in rules() {
        used.extend(chatops_names(r["expr"].as_str().unwrap()));
    }
    for e in dashboard_exprs(&d) {
        used.extend(chatops_names(&e));
    }
    let missing: Vec<&String> = used.difference(&exported).collect();
    assert!(missing.is_empty(), "not exported: {missing:?}\n{text}");
    assert!(used.len() >= 15, "{used:?}");
    for line in [
        "chatops_pg_up 1",
        "chatops_backend_up 1",
        "chatops_backend_database_healthy 1",
    ] {
        assert!(text.contains(&format!("{line}\n")), "{line}:\n{text}");
    }
    assert!(
        text.contains("\nchatops_backend_heap_used_bytes "),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "chatops_backend_connection_limit{{database=\"{db}\"}} 4\n"
        )),
        "{text}"
    );

    // A real Prometheus: 1 s evaluations of the shipped rules with a 1 s
    // `for:`; scrapes every 2 s (a scrape may take up to 2 s on a loaded
    // machine before it counts as failed).
    let dir = scratch_dir().join(unique("prometheus"));
    std::fs::create_dir_all(&dir).unwrap();
    let (quick, n) = quick_rules();
    assert_eq!(n, rules().len(), "every rule has a `for:`");
    std::fs::write(dir.join("rules.yaml"), quick).unwrap();
    std::fs::write(
        dir.join("prometheus.yml"),
        format!(
            "global: {{scrape_interval: 2s, scrape_timeout: 2s, evaluation_interval: 1s}}\n\
             rule_files: [rules.yaml]\n\
             scrape_configs:\n  - job_name: chatops\n    static_configs: [{{targets: ['{addr}']}}]\n"
        ),
    )
    .unwrap();
    let mut c = Command::new("prometheus");
    c.current_dir(&dir).args([
        "--config.file=prometheus.yml",
        "--storage.tsdb.path=data",
        "--web.listen-address=127.0.0.1:0",
        "--log.level=info",
    ]);
    let prometheus = Proc::spawn(c, "prometheus");
    let prom = prometheus.wait_line(Duration::from_secs(60), |l| {
        (l.contains("msg=\"Listening on\""))
            .then(|| l.split("address=").nth(1).map(|a| a.trim().to_string()))
            .flatten()
    });
    let ctx = || {
        format!(
            "prometheus:\n{}\nexporter:\n{}",
            prometheus.log(),
            exp.log()
        )
    };

    // Scraped: chatops_pg_up is 1 through the query API.
    wait_until(
        Duration::from_secs(60),
        "chatops_pg_up = 1 in Prometheus",
        || {
            let r = query(&rt, &prom, "chatops_pg_up");
            r.first()
                .filter(|s| s["value"][1] == "1" && s["metric"]["job"] == "chatops")
                .map(|_| ())
        },
    );
    // Quiet: once the rules have been evaluated on that scrape (an
    // evaluation that began after it was visible), no alert at all, pending
    // or firing.
    // time() is a scalar: `[unix seconds, "value"]`.
    let seen = api(&rt, &prom, "/api/v1/query?query=time%28%29")["result"][0]
        .as_f64()
        .expect("Prometheus's time");
    wait_until(
        Duration::from_secs(30),
        "rules evaluated on a scrape",
        || {
            let group = api(&rt, &prom, "/api/v1/rules")["groups"][0].clone();
            let rules = group["rules"].as_array().cloned().unwrap_or_default();
            let at = group["lastEvaluation"]
                .as_str()
                .and_then(|t| humantime::parse_rfc3339(t).ok())
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs_f64());
            let ok = rules.len() == n
                && rules.iter().all(|r| r["health"] == "ok")
                && at.is_some_and(|at| at > seen);
            ok.then_some(())
        },
    );
    let quiet = alerts(&rt, &prom);
    assert!(quiet.is_empty(), "alerts while idle: {quiet:?}\n{}", ctx());

    // Four sessions busy in pg_sleep: above the warning (2), the critical
    // threshold (3), and 100% of the pool of 4.
    let app = unique("sleeper");
    let u = DbUrl::parse(&sb.db_url).unwrap();
    let sleepers: Vec<_> = (0..4)
        .map(|_| {
            let c = rt
                .block_on(connect(&u, &app, Duration::from_secs(10)))
                .expect("a sleeper session");
            rt.spawn(async move {
                let _ = c.simple_query("SELECT pg_sleep(60)").await;
            })
        })
        .collect();
    let want = [
        ("ChatopsActiveSessionsWarning", "warning"),
        ("ChatopsActiveSessionsCritical", "critical"),
        ("ChatopsPoolSaturated", "critical"),
    ];
    let fired = wait_until(Duration::from_secs(45), "the alerts to fire", || {
        let a = alerts(&rt, &prom);
        let all = want.iter().all(|(name, _)| {
            a.iter()
                .any(|x| x["labels"]["alertname"] == *name && x["state"] == "firing")
        });
        all.then_some(a)
    });
    for (name, severity) in want {
        let a = fired
            .iter()
            .find(|x| x["labels"]["alertname"] == name)
            .unwrap();
        assert_eq!(a["labels"]["severity"], severity, "{a}");
        assert_eq!(a["labels"]["database"], db.as_str(), "{a}");
        assert!(
            a["annotations"]["runbook"]
                .as_str()
                .is_some_and(|r| r.starts_with("chatops ")),
            "{a}"
        );
    }
    let active = query(&rt, &prom, "chatops_pg_active_sessions");
    let v: f64 = active[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(v >= 4.0, "{active:?}");
    // Nothing else fires: the backend is healthy, PostgreSQL up.
    let others: Vec<&Value> = fired
        .iter()
        .filter(|x| {
            x["state"] == "firing" && !want.iter().any(|(n, _)| x["labels"]["alertname"] == *n)
        })
        .collect();
    assert!(others.is_empty(), "{others:?}");

    // Every dashboard query runs on the real Prometheus and has data.
    for e in dashboard_exprs(&d) {
        let q = e
            .replace("$__rate_interval", "1m")
            .replace("$instance", ".*")
            .replace("$database", ".*");
        let r = query(&rt, &prom, &q);
        assert!(
            !r.is_empty(),
            "no data for the dashboard's `{e}`\n{}",
            ctx()
        );
    }

    // The sleepers go; the exporter stops on SIGTERM, the answers finished.
    rt.block_on(async {
        let me = connect(&u, "cleanup", Duration::from_secs(10))
            .await
            .unwrap();
        me.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            &[&app],
        )
        .await
        .unwrap();
    });
    for s in sleepers {
        let _ = rt.block_on(s);
    }
    let mut exp = exp;
    signal_when_ready(exp.child.id(), libc::SIGTERM);
    let status = wait_exit(&mut exp.child, Duration::from_secs(20), "the exporter");
    assert_eq!(status.code(), Some(143), "{}", exp.log());
}
