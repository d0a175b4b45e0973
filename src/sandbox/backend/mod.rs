//! The reference chat backend: a small HTTP server that speaks the seed
//! backend's API (NestJS 11 / Express 5 / Prisma 5 on PostgreSQL, see
//! `shared/reference/target-api.md`) and reproduces its faults on demand, so
//! that chatops can be demoed and tested against a real server and a real
//! database.
//!
//! Configured from the environment like the real backend (`PORT`,
//! `DATABASE_URL`, `PRISMA_CLIENT_MODE`, `DISABLE_RATE_LIMIT`, …) plus the
//! sandbox's fault knobs (`CHATOPS_SANDBOX_*`). [`serve`] runs until SIGTERM
//! or SIGINT.

mod db;
mod faults;
mod handlers;
pub(crate) mod logs;
mod ratelimit;
mod responses;
mod tx;

use responses::*;

use super::knobs;
use db::Db;
use faults::Faults;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use logs::{Level, Logger};
use ratelimit::RateLimiter;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Request bodies above this answer 413.
const BODY_LIMIT: usize = 1024 * 1024;
/// The Node version the health endpoint reports.
const NODE_VERSION: &str = "v20.11.0";
const MESSAGE_TYPES: &[&str] = &["TEXT", "IMAGE", "FILE", "AUDIO", "VIDEO", "SYSTEM"];

/// Which Prisma client the backend uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientMode {
    /// `PRISMA_CLIENT_MODE=database`, or unset with a `DATABASE_URL`.
    Database,
    /// `PRISMA_CLIENT_MODE=mock`.
    Mock,
    /// Unset mode and no `DATABASE_URL`: mock, silently.
    ImplicitMock,
}

/// The backend's configuration, read from the environment once at start-up.
#[derive(Debug, Clone)]
pub struct BackendConfig {
    /// `PORT` (default 3001).
    pub port: u16,
    /// `HOST` (default 127.0.0.1).
    pub host: String,
    pub mode: ClientMode,
    /// The effective Prisma URL: `DATABASE_URL`, with
    /// `connection_limit`/`pool_timeout`/`connect_timeout` appended when it
    /// has no `connection_limit` (as the seed's `src/config/database.ts`).
    pub database_url: Option<String>,
    /// `DISABLE_RATE_LIMIT` is exactly `true`.
    pub disable_rate_limit: bool,
    /// `CHATOPS_SANDBOX_LIMITERS=all`: mount the five limiters, not only
    /// apiLimiter.
    pub all_limiters: bool,
    /// apiLimiter's max (`CHATOPS_SANDBOX_API_LIMIT`, default 100).
    pub api_limit: u64,
    /// `CHATOPS_SANDBOX_DRIFT=1`: the send path writes column `messageType`.
    pub drift: bool,
    /// `CHATOPS_SANDBOX_QUERY_MS`: extra `pg_sleep` per database operation.
    pub query_ms: u64,
    /// `CHATOPS_SANDBOX_CPU_MS`: CPU burnt per chat request, one at a time.
    pub cpu_ms: u64,
    /// `CHATOPS_SANDBOX_LOCK_MS`: how long the send holds its row lock.
    pub lock_ms: u64,
    /// `CHATOPS_SANDBOX_RETAIN_KB`: memory kept per chat request.
    pub retain_kb: u64,
    /// `CHATOPS_SANDBOX_CRASH_AFTER`: die after this many chat requests.
    pub crash_after: u64,
    /// `CHATOPS_SANDBOX_GENERIC_500=1`: database errors answer Nest's 500.
    pub generic_500: bool,
    /// ANSI colours in Nest lines (unless `NO_COLOR` is set and non-empty).
    pub color: bool,
    /// `NODE_ENV` (default development).
    pub environment: String,
}

fn enhance_url(url: &str, get: &dyn Fn(&str) -> Option<String>) -> String {
    if url.contains("connection_limit") {
        return url.to_string();
    }
    let num = |k: &str, d: u64| {
        get(k)
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(d)
    };
    let sep = if url.contains('?') { '&' } else { '?' };
    format!(
        "{url}{sep}connection_limit={}&pool_timeout={}&connect_timeout={}",
        num("DATABASE_POOL_SIZE", 50),
        num("DATABASE_POOL_TIMEOUT", 30),
        num("DATABASE_CONNECTION_TIMEOUT", 10)
    )
}

impl BackendConfig {
    /// Read the process environment, as the real backend does at start-up.
    pub fn from_env() -> BackendConfig {
        BackendConfig::from_lookup(&|k| std::env::var(k).ok())
    }

    /// Same as [`from_env`](Self::from_env) with another source of variables.
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> BackendConfig {
        let port = get("PORT")
            .and_then(|p| p.trim().parse::<u16>().ok())
            .unwrap_or(3001);
        let host = get("HOST")
            .filter(|h| !h.trim().is_empty())
            .unwrap_or_else(|| "127.0.0.1".to_string());
        let raw_url = get("DATABASE_URL").filter(|u| !u.trim().is_empty());
        let mode = match get("PRISMA_CLIENT_MODE").as_deref().map(str::trim) {
            Some("mock") => ClientMode::Mock,
            Some("database") => ClientMode::Database,
            _ if raw_url.is_some() => ClientMode::Database,
            _ => ClientMode::ImplicitMock,
        };
        let database_url = raw_url.map(|u| enhance_url(u.trim(), get));
        let flag = |k: &str| {
            get(k)
                .map(|v| matches!(v.trim(), "1" | "true" | "yes" | "on"))
                .unwrap_or(false)
        };
        let number = |k: &str| -> u64 { get(k).and_then(|v| v.trim().parse().ok()).unwrap_or(0) };
        BackendConfig {
            port,
            host,
            mode,
            database_url,
            disable_rate_limit: get("DISABLE_RATE_LIMIT").as_deref() == Some("true"),
            all_limiters: get(knobs::ENV_LIMITERS)
                .map(|v| v.trim().eq_ignore_ascii_case("all"))
                .unwrap_or(false),
            api_limit: get(knobs::ENV_API_LIMIT)
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(100),
            drift: flag(knobs::ENV_DRIFT),
            query_ms: number(knobs::ENV_QUERY_MS),
            cpu_ms: number(knobs::ENV_CPU_MS),
            lock_ms: number(knobs::ENV_LOCK_MS),
            retain_kb: number(knobs::ENV_RETAIN_KB),
            crash_after: number(knobs::ENV_CRASH_AFTER),
            generic_500: flag(knobs::ENV_GENERIC_500),
            color: get("NO_COLOR").is_none_or(|v| v.is_empty()),
            environment: get("NODE_ENV")
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "development".to_string()),
        }
    }
}

struct App {
    log: Arc<Logger>,
    faults: Faults,
    db: Option<Db>,
    limiter: Option<RateLimiter>,
    environment: String,
    started: Instant,
}

/// Connect like PrismaService.onModuleInit: one `SELECT 1`, or fail start-up.
async fn connect(cfg: &BackendConfig, log: &Arc<Logger>) -> Option<Db> {
    let fail = |cause: &str| {
        log.nest(
            Level::Error,
            "PrismaService",
            "Failed to connect to database",
            false,
        );
        log.prisma_error(cause);
    };
    let Some(url) = cfg.database_url.as_deref() else {
        fail("error: Environment variable not found: DATABASE_URL.");
        return None;
    };
    let parsed = match db::parse_url(url) {
        Ok(p) => p,
        Err(e) => {
            fail(&e);
            return None;
        }
    };
    let db = match Db::new(parsed, cfg.drift, cfg.query_ms, log.clone()) {
        Ok(d) => d,
        Err(e) => {
            fail(&e);
            return None;
        }
    };
    let limit = Duration::from_secs(db.url().connect_timeout.max(1) + 5);
    if let Err(e) = db.ping(limit).await {
        fail(&e.message);
        return None;
    }
    log.console("✅ Database connected successfully");
    log.console("✅ Database connection test passed");
    log.nest(
        Level::Log,
        "PrismaService",
        "Successfully connected to PostgreSQL database via singleton",
        false,
    );
    Some(db)
}

/// Node's uncaught `listen` error, as printed when the port is taken.
fn listen_error(log: &Logger, e: &std::io::Error, port: u16) {
    use std::io::ErrorKind;
    let (code, errno, text) = match e.kind() {
        ErrorKind::AddrInUse => ("EADDRINUSE", -98, "address already in use"),
        ErrorKind::PermissionDenied => ("EACCES", -13, "permission denied"),
        ErrorKind::AddrNotAvailable => ("EADDRNOTAVAIL", -99, "address not available"),
        _ => ("EINVAL", -22, "invalid argument"),
    };
    // Errors Node would word differently: keep the OS's words too.
    let extra = if code == "EINVAL" {
        format!("\n(cause: {e})")
    } else {
        String::new()
    };
    log.console_error(&format!(
        "node:net:1904\n    const ex = new UVExceptionWithHostPort(err, 'listen', address, port);\n                ^\n\n\
Error: listen {code}: {text} :::{port}\n    at Server.setupListenHandle [as _listen2] (node:net:1904:16)\n    at listenInCluster (node:net:1961:12)\n    at Server.listen (node:net:2063:7)\n    at ExpressAdapter.listen (/app/node_modules/@nestjs/platform-express/adapters/express-adapter.js:95:32)\n    at NestApplication.listen (/app/node_modules/@nestjs/core/nest-application.js:180:30) {{\n  code: '{code}',\n  errno: {errno},\n  syscall: 'listen',\n  address: '::',\n  port: {port}\n}}\n\nNode.js {NODE_VERSION}{extra}"
    ));
}

/// Run the backend until SIGTERM or SIGINT (returns 0) or a start-up failure
/// (returns 1: database unreachable in database mode, port not bindable).
pub async fn serve(cfg: BackendConfig) -> i32 {
    let started = Instant::now();
    let log = Arc::new(Logger::new(cfg.color));
    log.nest(
        Level::Log,
        "NestFactory",
        "Starting Nest application...",
        true,
    );
    for m in [
        "AppModule",
        "PrismaModule",
        "ConfigModule",
        "HealthModule",
        "ChatModule",
    ] {
        log.nest(
            Level::Log,
            "InstanceLoader",
            &format!("{m} dependencies initialized"),
            true,
        );
    }
    // The real main.ts prints its banner before `app.listen()`, which is
    // where the modules (and Prisma) initialise and the port is bound.
    log.console(&format!(
        "Application is running on http://localhost:{}",
        cfg.port
    ));
    log.console(&format!(
        "Health check available at http://localhost:{}/health",
        cfg.port
    ));
    let db = match cfg.mode {
        ClientMode::Database => match connect(&cfg, &log).await {
            Some(db) => Some(db),
            None => return 1,
        },
        ClientMode::Mock => {
            log.nest(
                Level::Warn,
                "PrismaService",
                "Using mock Prisma client (PRISMA_CLIENT_MODE=mock)",
                false,
            );
            None
        }
        ClientMode::ImplicitMock => None,
    };
    for (ctx, msg) in [
        ("RoutesResolver", "AppController {/api/v1}:"),
        ("RouterExplorer", "Mapped {/api/v1/health, GET} route"),
        ("RoutesResolver", "ChatController {/api/v1/chat}:"),
        (
            "RouterExplorer",
            "Mapped {/api/v1/chat/conversations/:conversationId/messages, POST} route",
        ),
        (
            "RouterExplorer",
            "Mapped {/api/v1/chat/conversations/:conversationId/messages, GET} route",
        ),
    ] {
        log.nest(Level::Log, ctx, msg, true);
    }
    let listener = match tokio::net::TcpListener::bind((cfg.host.as_str(), cfg.port)).await {
        Ok(l) => l,
        Err(e) => {
            listen_error(&log, &e, cfg.port);
            return 1;
        }
    };
    use tokio::signal::unix::{SignalKind, signal};
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(t), Ok(i)) => (t, i),
        (Err(e), _) | (_, Err(e)) => {
            log.nest(
                Level::Error,
                "NestApplication",
                &format!("cannot install signal handlers: {e}"),
                false,
            );
            return 1;
        }
    };
    log.nest(
        Level::Log,
        "NestApplication",
        "Nest application successfully started",
        true,
    );
    let app = Arc::new(App {
        limiter: (!cfg.disable_rate_limit)
            .then(|| RateLimiter::new(cfg.all_limiters, cfg.api_limit)),
        log,
        faults: Faults::new(&cfg),
        db,
        environment: cfg.environment.clone(),
        started,
    });
    loop {
        tokio::select! {
            _ = term.recv() => return 0,
            _ = int.recv() => return 0,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(_) => {
                        // EMFILE and the like: back off instead of spinning.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let app = app.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let app = app.clone();
                        async move { Ok::<_, Infallible>(app.handle(req, peer).await) }
                    });
                    let _ = http1::Builder::new()
                        .keep_alive(true)
                        .timer(TokioTimer::new())
                        .header_read_timeout(Duration::from_secs(65))
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(vars: &[(&str, &str)]) -> BackendConfig {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        BackendConfig::from_lookup(&move |k| m.get(k).cloned())
    }

    #[test]
    fn config_from_env() {
        let c = cfg(&[]);
        assert_eq!(c.port, 3001);
        assert_eq!(c.mode, ClientMode::ImplicitMock);
        assert!(c.color && !c.disable_rate_limit && !c.all_limiters);
        let c = cfg(&[
            ("DATABASE_URL", "postgresql://u:p@h:5/db"),
            ("DISABLE_RATE_LIMIT", "TRUE"),
            ("NO_COLOR", "1"),
        ]);
        assert_eq!(c.mode, ClientMode::Database);
        assert_eq!(
            c.database_url.as_deref(),
            Some("postgresql://u:p@h:5/db?connection_limit=50&pool_timeout=30&connect_timeout=10")
        );
        assert!(!c.disable_rate_limit && !c.color);
        let c = cfg(&[
            ("DATABASE_URL", "postgresql://u:p@h:5/db?connection_limit=3"),
            ("PRISMA_CLIENT_MODE", "mock"),
        ]);
        assert_eq!(c.mode, ClientMode::Mock);
        assert_eq!(
            c.database_url.as_deref(),
            Some("postgresql://u:p@h:5/db?connection_limit=3")
        );
    }
}
