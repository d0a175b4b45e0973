//! `watch-connections --listen`: the exporter's I/O. An [`Exporter`] samples
//! on each scrape (as postgres_exporter does), one scrape at a time, and an
//! HTTP/1 server answers `/metrics`, `/healthz` and `/` until the shutdown
//! token is cancelled; then it stops accepting and lets the answers in
//! flight finish (a bounded wait).

use super::exporter::{Scrape, Settings, Totals, render};
use super::{Frame, Sampler};
use crate::probe::health;
use crate::probe::process;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The content type of the text exposition format.
pub const EXPOSITION_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How long answers in flight may take to finish after a shutdown.
const GRACE: Duration = Duration::from_secs(5);

/// Samples PostgreSQL (and the backend's health URL) on demand.
pub struct Exporter {
    sampler: Sampler,
    health: Option<(reqwest::Client, String)>,
    settings: Settings,
    /// `connection_limit` of --database-url: used when neither the flag nor
    /// the backend's own DATABASE_URL gives it.
    url_limit: Option<u32>,
    timeout: Duration,
    state: tokio::sync::Mutex<State>,
}

#[derive(Default)]
struct State {
    totals: Totals,
    pg_up: Option<bool>,
    health_up: Option<bool>,
    /// The local process behind the health URL and its connection_limit.
    backend: Option<(u32, Option<u32>)>,
    /// When no such process was found last (looked for again after [`LOOK_AGAIN`]).
    not_found_at: Option<Instant>,
}

/// How long a health URL without a local process behind it is not looked up again.
const LOOK_AGAIN: Duration = Duration::from_secs(30);

/// The pid of the local process listening on the URL's port, and the
/// `connection_limit` of its own DATABASE_URL (what Prisma reads).
fn local_backend_limit(url: &str) -> Option<(u32, Option<u32>)> {
    let pid = process::local_listener(url)?;
    let limit = process::environ(pid)
        .ok()
        .and_then(|env| env.into_iter().find(|(k, _)| k == "DATABASE_URL"))
        .and_then(|(_, v)| crate::pg::DbUrl::parse(&v).ok())
        .and_then(|d| d.connection_limit());
    Some((pid, limit))
}

/// Why the exporter cannot be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTP client for --health-url: {0}")]
pub struct HealthClientError(String);

impl Exporter {
    /// `health_url`: the backend's health endpoint (None: no health
    /// families); `settings.connection_limit`: the flag's, which wins over
    /// the DATABASE_URL of the local process behind the health URL, which
    /// wins over `url_limit`; `timeout` bounds the health request as the
    /// sampler's bounds PostgreSQL.
    pub fn new(
        sampler: Sampler,
        health_url: Option<String>,
        settings: Settings,
        url_limit: Option<u32>,
        timeout: Duration,
    ) -> Result<Exporter, HealthClientError> {
        let health = match health_url {
            None => None,
            Some(url) => {
                let client = reqwest::Client::builder()
                    .user_agent(concat!("chatops/", env!("CARGO_PKG_VERSION")))
                    .no_proxy()
                    .build()
                    .map_err(|e| HealthClientError(e.to_string()))?;
                Some((client, url))
            }
        };
        let settings = Settings {
            health: health.is_some(),
            ..settings
        };
        Ok(Exporter {
            sampler,
            health,
            settings,
            url_limit,
            timeout,
            state: tokio::sync::Mutex::new(State::default()),
        })
    }

    /// One scrape (one at a time): the sources read, the exposition, and
    /// notices for the operator when a source went down or came back.
    /// `budget`: what the scraper allows (Prometheus's scrape timeout, less
    /// a margin), so that a PostgreSQL that hangs is `chatops_pg_up 0`
    /// rather than a failed scrape; never more than `--timeout`.
    pub async fn scrape(&self, budget: Option<Duration>) -> (Scrape, String, Vec<String>) {
        let mut st = self.state.lock().await;
        let started = Instant::now();
        let budget = budget.map_or(self.timeout, |b| b.min(self.timeout));
        let frame = async {
            let time = std::time::SystemTime::now();
            match tokio::time::timeout(budget, self.sampler.frame()).await {
                Ok(f) => f,
                Err(_) => Frame::Down {
                    time,
                    error: format!(
                        "no answer within {} (the scrape's timeout)",
                        crate::support::duration::fmt(budget)
                    ),
                },
            }
        };
        let health = async {
            match &self.health {
                None => None,
                Some((client, url)) => Some(health::fetch(client, url, budget).await),
            }
        };
        let (frame, health) = tokio::join!(frame, health);
        let s = Scrape {
            frame,
            health,
            took: started.elapsed(),
        };
        st.totals.add(&s);
        let settings = Settings {
            connection_limit: self
                .settings
                .connection_limit
                .or_else(|| self.backend_limit(&mut st))
                .or(self.url_limit),
            ..self.settings.clone()
        };
        let text = render(&s, &settings, &st.totals);
        let mut notices = Vec::new();
        let pg_up = match &s.frame {
            Frame::Up { .. } => true,
            Frame::Down { error, .. } => {
                if st.pg_up != Some(false) {
                    notices.push(format!("PostgreSQL cannot be sampled: {error}"));
                }
                false
            }
        };
        if pg_up && st.pg_up == Some(false) {
            notices.push("PostgreSQL can be sampled again".into());
        }
        st.pg_up = Some(pg_up);
        if let Some(h) = &s.health {
            let up = matches!(h, Ok(h) if h.ok());
            if !up && st.health_up != Some(false) {
                notices.push(match h {
                    Ok(h) => format!("the health URL answered {}", h.status),
                    Err(e) => format!("the health URL did not answer: {e}"),
                });
            } else if up && st.health_up == Some(false) {
                notices.push("the health URL answers 2xx again".into());
            }
            st.health_up = Some(up);
        }
        (s, text, notices)
    }

    /// The connection_limit of the backend behind the health URL, looked up
    /// again when its process is gone.
    fn backend_limit(&self, st: &mut State) -> Option<u32> {
        let (_, url) = self.health.as_ref()?;
        if let Some((pid, limit)) = st.backend
            && process::alive(pid)
        {
            return limit;
        }
        if st.not_found_at.is_some_and(|t| t.elapsed() < LOOK_AGAIN) {
            return None;
        }
        st.backend = local_backend_limit(url);
        st.not_found_at = st.backend.is_none().then(Instant::now);
        st.backend.and_then(|(_, l)| l)
    }

    async fn answer(&self, req: &Request<Incoming>, notify: &Notify) -> Response<Full<Bytes>> {
        let head = req.method() == Method::HEAD;
        if req.method() != Method::GET && !head {
            let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
            r.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            return r;
        }
        let mut r = match req.uri().path() {
            "/metrics" if head => text(StatusCode::OK, ""),
            "/metrics" => {
                let budget = scrape_budget(
                    req.headers()
                        .get(SCRAPE_TIMEOUT_HEADER)
                        .and_then(|v| v.to_str().ok()),
                );
                let (_, body, notices) = self.scrape(budget).await;
                for n in notices {
                    notify(n);
                }
                text(StatusCode::OK, body)
            }
            // The exporter itself answers: PostgreSQL's state is in /metrics.
            "/healthz" => text(StatusCode::OK, "ok\n"),
            "/" => {
                let mut r = text(StatusCode::OK, INDEX);
                r.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                );
                return if head { empty(r) } else { r };
            }
            _ => text(StatusCode::NOT_FOUND, "not found: try /metrics\n"),
        };
        if req.uri().path() == "/metrics" {
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(EXPOSITION_TYPE));
        }
        if head { empty(r) } else { r }
    }
}

/// The scrape timeout Prometheus sends with each scrape.
const SCRAPE_TIMEOUT_HEADER: &str = "x-prometheus-scrape-timeout-seconds";

/// The time a scrape may take from Prometheus's scrape timeout: 90% of it
/// less 100 ms, at least 100 ms, so the answer is in before Prometheus
/// gives up.
fn scrape_budget(header: Option<&str>) -> Option<Duration> {
    let s: f64 = header?.trim().parse().ok()?;
    (s.is_finite() && s > 0.0).then(|| Duration::from_secs_f64((s * 0.9 - 0.1).max(0.1)))
}

const INDEX: &str = "<!doctype html><html><head><title>chatops exporter</title></head>\
<body><h1>chatops watch-connections</h1><p><a href=\"/metrics\">/metrics</a> \
&middot; <a href=\"/healthz\">/healthz</a></p></body></html>\n";

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn empty(r: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
    let (parts, _) = r.into_parts();
    Response::from_parts(parts, Full::new(Bytes::new()))
}

/// Where notices go (the command prints them, redacted).
pub type Notify = dyn Fn(String) + Send + Sync;

/// Serves until `cancel` is cancelled, then lets the answers in flight
/// finish (at most [`GRACE`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    exporter: Arc<Exporter>,
    cancel: CancellationToken,
    notify: Arc<Notify>,
) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let stream = tokio::select! {
            _ = cancel.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((s, _)) => s,
                Err(_) => {
                    // EMFILE and the like: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let (exp, stop, notify) = (exporter.clone(), cancel.clone(), notify.clone());
        conns.spawn(async move {
            let svc = service_fn(move |req| {
                let (exp, notify) = (exp.clone(), notify.clone());
                async move { Ok::<_, Infallible>(exp.answer(&req, &*notify).await) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(GRACE, conn).await;
                }
            }
        });
        while conns.try_join_next().is_some() {}
    }
    drop(listener);
    let _ = tokio::time::timeout(GRACE, async { while conns.join_next().await.is_some() {} }).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scrape_budget_leaves_prometheus_a_margin() {
        assert_eq!(scrape_budget(Some("10")), Some(Duration::from_millis(8900)));
        assert_eq!(
            scrape_budget(Some(" 1.5 ")),
            Some(Duration::from_millis(1250))
        );
        assert_eq!(scrape_budget(Some("0.1")), Some(Duration::from_millis(100)));
        assert_eq!(scrape_budget(Some("0")), None);
        assert_eq!(scrape_budget(Some("-3")), None);
        assert_eq!(scrape_budget(Some("NaN")), None);
        assert_eq!(scrape_budget(Some("soon")), None);
        assert_eq!(scrape_budget(None), None);
    }

    #[test]
    fn a_health_url_elsewhere_has_no_local_backend() {
        assert_eq!(
            local_backend_limit("http://192.0.2.1:3001/api/v1/health"),
            None
        );
        assert_eq!(local_backend_limit("not a url"), None);
    }
}
