//! `chatops watch-connections`: live pg_stat_activity against thresholds.
//! Glue: the flags to a [`Sampler`], the sampling loop, the alternate
//! screen of the live view, and Ctrl-C / SIGTERM through the shutdown token.
//! Exit status with --once: 0 below the thresholds, 1 above the critical
//! threshold (or the warning one with --strict) or when PostgreSQL cannot be
//! reached; 2 on bad input; 130 on Ctrl-C, 143 on SIGTERM.

use super::cli::{WatchArgs, WatchFormat};
use super::error::WatchError;
use super::{CommandResult, Outcome};
use crate::pg::DbUrl;
use crate::support::redact::Redactor;
use crate::support::signals;
use crate::watch::exporter::Settings;
use crate::watch::serve::{self, Exporter};
use crate::watch::{self, Frame, Level, Sampler, Thresholds, Trend, human};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

/// Restores the terminal when the view ends, however it ends.
struct Screen {
    active: bool,
}

impl Screen {
    fn enter(on: bool) -> Screen {
        if on {
            let mut out = std::io::stdout();
            let _ = out.write_all(b"\x1b[?1049h\x1b[?25l");
            let _ = out.flush();
        }
        Screen { active: on }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        if self.active {
            let mut out = std::io::stdout();
            let _ = out.write_all(b"\x1b[?25h\x1b[?1049l");
            let _ = out.flush();
        }
    }
}

/// Where each sample goes.
enum Sink<'a> {
    Stdout,
    /// Rewritten whole each sample (a textfile collector reads it).
    File(&'a std::path::Path),
}

impl Sink<'_> {
    /// Ok(false): the reader went away (a closed pipe).
    fn write(&self, text: &str) -> Result<bool, WatchError> {
        match self {
            Sink::File(path) => {
                crate::support::atomic::write(path, text.as_bytes())?;
                Ok(true)
            }
            Sink::Stdout => {
                let mut out = std::io::stdout().lock();
                Ok(out
                    .write_all(text.as_bytes())
                    .and_then(|_| out.flush())
                    .is_ok())
            }
        }
    }
}

pub async fn run(a: &WatchArgs, color: bool) -> CommandResult {
    let raw = a
        .database_url
        .as_deref()
        .ok_or(WatchError::MissingDatabaseUrl)?;
    let mut red = Redactor::new();
    red.learn(raw);
    if let Some(h) = &a.health_url {
        red.learn(h);
    }
    let u = DbUrl::parse(raw).map_err(|e| WatchError::DatabaseUrl(red.redact(&e.to_string())))?;
    if a.warn_active > a.critical_active {
        return Err(WatchError::Thresholds {
            warn: a.warn_active,
            critical: a.critical_active,
        }
        .into());
    }
    let t = Thresholds {
        warn_active: a.warn_active,
        critical_active: a.critical_active,
    };
    let db = if a.all_databases {
        None
    } else {
        Some(a.database.clone().unwrap_or_else(|| u.database.clone()))
    };
    let target = format!(
        "{}:{} {}",
        u.host,
        u.port,
        db.as_deref().unwrap_or("(all databases)")
    );
    if u.database == crate::pg::pgbouncer::CONSOLE_DB {
        return Err(WatchError::DatabaseUrl(
            "this is PgBouncer's admin console: pass it as --pgbouncer, and PostgreSQL's own URL as --database-url".into(),
        )
        .into());
    }
    let mut sampler = Sampler::new(&u, db.clone(), a.timeout).map_err(WatchError::from)?;
    if let Some(raw) = &a.pgbouncer {
        red.learn(raw);
        let c = DbUrl::parse(raw)
            .map_err(|e| WatchError::DatabaseUrl(red.redact(&format!("--pgbouncer: {e}"))))?;
        sampler = sampler.with_pgbouncer(crate::pg::pgbouncer::console_of(&c));
    }
    let settings = Settings {
        thresholds: t,
        database: db,
        connection_limit: a.connection_limit,
        health: false,
    };
    // The backend's DATABASE_URL, when it is the one given, says it too.
    let url_limit = u.connection_limit();
    let exporter = |sampler| {
        Exporter::new(
            sampler,
            a.health_url.clone(),
            settings,
            url_limit,
            a.timeout,
        )
        .map_err(WatchError::from)
    };
    if let Some(addr) = a.listen {
        return listen(addr, a.allow_remote, exporter(sampler)?, red, &target).await;
    }
    let source = if a.format == WatchFormat::Prometheus {
        Source::Exporter(exporter(sampler)?)
    } else if a.health_url.is_some() {
        return Err(WatchError::HealthUrlFormat.into());
    } else {
        Source::Sampler(sampler)
    };
    let sink = match &a.output {
        Some(p) => Sink::File(p),
        None => Sink::Stdout,
    };
    let cancel = signals::shutdown_token();
    let live_view = a.format == WatchFormat::Human
        && !a.once
        && std::io::IsTerminal::is_terminal(&std::io::stdout());
    // Dropped on every return below, the interrupted one included.
    let _screen = Screen::enter(live_view);
    let view = human::View {
        target: &target,
        thresholds: t,
        color,
        redactor: &red,
    };
    let mut trend = Trend::new();
    let mut samples: u64 = 0;
    let mut ticker = tokio::time::interval(a.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return Ok(Outcome::Interrupted),
            _ = ticker.tick() => {}
        }
        let (frame, exposition) = tokio::select! {
            _ = cancel.cancelled() => return Ok(Outcome::Interrupted),
            f = source.next(&red) => f,
        };
        samples += 1;
        trend.push(&frame);
        let text = match (a.format, exposition) {
            (WatchFormat::Prometheus, Some(text)) => text,
            (WatchFormat::Prometheus, None) => watch::prometheus::exposition(&frame, t),
            (WatchFormat::Json, _) => watch::json::line(&frame, t, &red) + "\n",
            (WatchFormat::Human, _) => {
                let body = human::render(&frame, &trend, &view);
                if live_view {
                    format!("\x1b[H\x1b[2J{body}")
                } else {
                    body + "\n"
                }
            }
        };
        if !sink.write(&text)? {
            // The reader went away (a closed pipe): stop quietly.
            return Ok(Outcome::Ok);
        }
        if a.once {
            return Ok(once_outcome(&frame, t, a.strict));
        }
        if a.count.is_some_and(|n| samples >= n) {
            return Ok(Outcome::Ok);
        }
    }
}

/// Where frames come from: the sampler alone, or the exporter (which adds
/// the health figures and its own metrics to the exposition).
enum Source {
    Sampler(Sampler),
    Exporter(Exporter),
}

impl Source {
    async fn next(&self, red: &Redactor) -> (Frame, Option<String>) {
        match self {
            Source::Sampler(s) => (s.frame().await, None),
            Source::Exporter(e) => {
                let (scrape, text, notices) = e.scrape(None).await;
                for n in notices {
                    eprintln!("chatops watch-connections: {}", red.redact(&n));
                }
                (scrape.frame, Some(text))
            }
        }
    }
}

/// --listen: serve /metrics until Ctrl-C or SIGTERM (exit 130 or 143, as the
/// other modes), loopback only unless --allow-remote.
async fn listen(
    addr: SocketAddr,
    allow_remote: bool,
    exporter: Exporter,
    red: Redactor,
    target: &str,
) -> CommandResult {
    if !addr.ip().is_loopback() && !allow_remote {
        return Err(WatchError::RemoteListen(addr).into());
    }
    // Before binding: a signal from then on is never lost.
    let cancel = signals::shutdown_token();
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| WatchError::Listen { addr, source })?;
    let bound = listener.local_addr().unwrap_or(addr);
    eprintln!("chatops watch-connections: serving http://{bound}/metrics for {target}");
    let notify: Arc<serve::Notify> = Arc::new(move |n: String| {
        eprintln!("chatops watch-connections: {}", red.redact(&n));
    });
    serve::serve(listener, Arc::new(exporter), cancel, notify).await;
    Ok(Outcome::Interrupted)
}

/// --once: a frame without a sample, or above the critical threshold (the
/// warning one with --strict), fails.
fn once_outcome(f: &Frame, t: Thresholds, strict: bool) -> Outcome {
    match f.level(t) {
        Level::Critical => Outcome::Failed,
        Level::Warn if strict => Outcome::Failed,
        _ => Outcome::Ok,
    }
}
