//! The texts each cause is recognised by (see the table in the parent module).

use std::sync::LazyLock;

use regex::Regex;

use super::{Facts, Hints};
use crate::diagnose::cause::Cause;

/// A classification of one text, before evidence is attached.
pub(super) struct Match {
    /// Higher is more specific: it explains the others.
    pub rank: u8,
    pub cause: Cause,
    pub code: Option<&'static str>,
    pub summary: String,
    pub fix: String,
    pub facts: Facts,
}

fn re(p: &str) -> Option<Regex> {
    Regex::new(p).ok()
}

fn cap(r: &LazyLock<Option<Regex>>, text: &str, i: usize) -> Option<String> {
    let c = r.as_ref()?.captures(text)?;
    c.get(i).map(|m| m.as_str().to_string())
}

fn is(r: &LazyLock<Option<Regex>>, text: &str) -> bool {
    r.as_ref().is_some_and(|r| r.is_match(text))
}

static COLUMN_PRISMA: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"(?i)the column `([^`]+)` does not exist"));
static COLUMN_PG: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r#"(?i)column "?([\w.$]+)"?(?: of relation "([^"]+)")? does not exist"#));
static TABLE_PRISMA: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"(?i)the table `([^`]+)` does not exist"));
static TABLE_PG: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r#"(?i)relation "([^"]+)" does not exist"#));
static CODE: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"\b(P1000|P1001|P1002|P1003|P1017|P2021|P2022|P2024|P2034|P2037)\b"));
static OOM: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(r"(?i)javascript heap out of memory|reached heap limit|allocation failed - javascript heap")
});
static ENV_MISSING: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(
        r#"(?i)environment variable not found:\s*([A-Z][A-Z0-9_]*)|missing (?:required )?(?:environment|env) variable:?\s*"?([A-Z][A-Z0-9_]*)|\b([A-Z][A-Z0-9_]*_(?:URL|HOST|PORT|SECRET|KEY))\b"? (?:is )?(?:not set|not defined|missing|required|undefined)"#,
    )
});
static ADDR_IN_USE: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"(?i)EADDRINUSE|address already in use"));
static ADDR_IN_USE_AT: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"(?i)address already in use\s+(\S*):(\d{1,5})\b"));
static AUTH_PRISMA: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(
        r"(?i)authentication failed against database server at `([^`]*)`, the provided database credentials for `([^`]*)`",
    )
});
static AUTH_PG: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r#"(?i)password authentication failed for user "?([^"\s]+)"?"#));
static DB_MISSING: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(r#"(?i)database `([^`]+)` does not exist|database "([^"]+)" does not exist"#)
});
static TOO_MANY: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(
        r#"(?i)too many clients already|remaining connection slots are reserved|too many database connections opened|too many connections|(?:sqlstate|code)["':=\s]*53300"#,
    )
});
static PREPARED: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(
        r#"(?i)prepared statement \\?"?([\w$]+)\\?"? (already exists|does not exist)|(?:sqlstate|code)["':=\s\\]*(42P05|26000)\b"#,
    )
});
static P2024: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"(?i)timed out fetching a new connection from the connection pool"));
static POOL_NUMBERS: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"(?i)connection pool timeout:\s*(\d+),\s*connection limit:\s*(\d+)"));
static PG_POOL: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"(?i)timeout exceeded when trying to connect"));
static LOCK: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(
        r"(?i)deadlock detected|canceling statement due to lock timeout|could not obtain lock|still waiting for \w*Lock|write conflict or a deadlock",
    )
});
static LOCK_WAIT: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"(?i)still waiting for (\w*Lock on [^\n]*?) after"));
static STATEMENT_TIMEOUT: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"(?i)canceling statement due to statement timeout"));
static CANT_REACH: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"(?i)can't reach database server at `([^`]*)`"));
static REACHED_TIMED_OUT: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"(?i)database server at `([^`]*)` was reached but timed out"));
static CLOSED: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(
        r"(?i)server has closed the connection|connection terminated unexpectedly|the database system is (?:starting up|shutting down|in recovery mode)|terminating connection due to administrator command",
    )
});
static NET_ERR: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(
        r"\b(ECONNREFUSED|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND|EAI_AGAIN)\s+\[?([0-9A-Za-z_.:-]*?)\]?:(\d{1,5})\b(?:[^:]|$)",
    )
});
static DB_WORDS: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"(?i)prisma|postgres|database|\bpg\b|\bdb\b"));
static OTHER_SERVICE: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"(?i)redis|amqp|rabbit|kafka|mongo|mysql|elastic|memcache|nats"));
/// Redis, RabbitMQ, Kafka, MongoDB, MySQL, Elasticsearch, memcached.
const OTHER_PORTS: [u16; 7] = [6379, 5672, 9092, 27017, 3306, 9200, 11211];
static CONNECT_DB: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(
        r"(?i)(?:failed to|could not|couldn't|unable to|cannot|can't) connect to (?:the )?(?:database|postgres)",
    )
});

fn m(rank: u8, cause: Cause, code: Option<&'static str>, summary: String, fix: String) -> Match {
    Match {
        rank,
        cause,
        code,
        summary,
        fix,
        facts: Facts::default(),
    }
}

/// The most specific known cause a text names, if any.
pub(super) fn classify_one(text: &str, hints: &Hints) -> Option<Match> {
    let code = cap(&CODE, text, 1);
    let has_code = |c: &str| code.as_deref() == Some(c);
    drift(text, &code)
        .or_else(|| oom(text))
        .or_else(|| env_missing(text))
        .or_else(|| database_login(text, has_code("P1000"), has_code("P1003")))
        .or_else(|| connections(text, has_code("P2037")))
        .or_else(|| addr_in_use(text))
        .or_else(|| prepared(text))
        .or_else(|| pool(text, has_code("P2024")))
        .or_else(|| locks(text, has_code("P2034")))
        .or_else(|| slow(text))
        .or_else(|| unreachable(text, &code, hints))
}

fn drift(text: &str, code: &Option<String>) -> Option<Match> {
    let mut facts = Facts::default();
    let (code, what) = if let Some(c) = cap(&COLUMN_PRISMA, text, 1) {
        facts.column = Some(c.clone());
        ("P2022", format!("the column `{c}`"))
    } else if let Some(c) = cap(&COLUMN_PG, text, 1) {
        facts.table = cap(&COLUMN_PG, text, 2);
        let on = facts
            .table
            .as_ref()
            .map(|t| format!(" of `{t}`"))
            .unwrap_or_default();
        facts.column = Some(c.clone());
        ("42703", format!("the column `{c}`{on}"))
    } else if let Some(t) = cap(&TABLE_PRISMA, text, 1) {
        facts.table = Some(t.clone());
        ("P2021", format!("the table `{t}`"))
    } else if let Some(t) = cap(&TABLE_PG, text, 1) {
        facts.table = Some(t.clone());
        ("42P01", format!("the table `{t}`"))
    } else {
        match code.as_deref() {
            Some("P2022") => ("P2022", "a column".to_string()),
            Some("P2021") => ("P2021", "a table".to_string()),
            _ => return None,
        }
    };
    let mut x = m(
        100,
        Cause::SchemaDrift,
        Some(code),
        format!("The backend's query names {what}, which the database does not have (schema drift)."),
        "The generated Prisma client and the database disagree: apply the pending migration (`npx prisma migrate deploy`) if the database is behind, or regenerate the client from the current schema and rebuild cleanly (`rm -rf dist && npx prisma generate && npm run build`) if the client is stale; then restart the backend.".into(),
    );
    x.facts = facts;
    Some(x)
}

fn oom(text: &str) -> Option<Match> {
    is(&OOM, text).then(|| m(
        95,
        Cause::MemoryGrowth,
        None,
        "The backend ran out of heap memory and crashed (V8: JavaScript heap out of memory).".into(),
        "Find what grows per request (heap snapshots before and after load with `node --inspect`): caches, listeners, buffers. Raise --max-old-space-size only once memory is released again.".into(),
    ))
}

fn env_missing(text: &str) -> Option<Match> {
    let c = ENV_MISSING.as_ref()?.captures(text)?;
    let name = (1..=3).find_map(|i| c.get(i))?.as_str().to_string();
    let prisma = c.get(1).is_some();
    let mut x = m(
        90,
        Cause::Crash,
        prisma.then_some("P1012"),
        format!("The backend stopped: the environment variable {name} is not set."),
        format!(
            "Set {name} in the backend's environment (or the .env file it reads from its working directory) and restart it."
        ),
    );
    x.facts.env_var = Some(name);
    Some(x)
}

fn database_login(text: &str, p1000: bool, p1003: bool) -> Option<Match> {
    let auth_prisma = AUTH_PRISMA.as_ref().and_then(|r| r.captures(text));
    let auth_pg = cap(&AUTH_PG, text, 1);
    if auth_prisma.is_some() || auth_pg.is_some() || p1000 {
        let user = auth_pg.or_else(|| auth_prisma.as_ref()?.get(2).map(|u| u.as_str().into()));
        let who = user
            .as_ref()
            .map(|u| format!(" for `{u}`"))
            .unwrap_or_default();
        let mut x = m(
            90,
            Cause::DatabaseDown,
            Some(if p1000 || auth_prisma.is_some() { "P1000" } else { "28P01" }),
            format!("PostgreSQL rejected the backend's login{who}: the password in its DATABASE_URL is wrong."),
            "Put the right password in the backend's DATABASE_URL (percent-encode special characters) or reset the role's password (`ALTER ROLE … PASSWORD '…'`), then restart the backend.".into(),
        );
        x.facts.user = user;
        return Some(x);
    }
    let db = DB_MISSING.as_ref().and_then(|r| r.captures(text));
    if db.is_none() && !p1003 {
        return None;
    }
    let name = db.and_then(|c| c.get(1).or(c.get(2)).map(|d| d.as_str().to_string()));
    let what = name.as_ref().map(|d| format!("`{d}` ")).unwrap_or_default();
    let mut x = m(
        90,
        Cause::DatabaseDown,
        Some(if text.contains('`') || p1003 { "P1003" } else { "3D000" }),
        format!("The database {what}named in the backend's DATABASE_URL does not exist."),
        "Create it and apply the schema (`createdb NAME` then `npx prisma migrate deploy`), or fix the database name in DATABASE_URL; then restart the backend.".into(),
    );
    x.facts.database = name;
    Some(x)
}

fn connections(text: &str, p2037: bool) -> Option<Match> {
    (is(&TOO_MANY, text) || p2037).then(|| {
        m(
            88,
            Cause::DatabaseConnections,
            Some(
                if p2037
                    || text
                        .to_ascii_lowercase()
                        .contains("database connections opened")
                {
                    "P2037"
                } else {
                    "53300"
                },
            ),
            "PostgreSQL refused new connections: max_connections is exhausted (too many clients)."
                .into(),
            Cause::DatabaseConnections.fix().into(),
        )
    })
}

fn addr_in_use(text: &str) -> Option<Match> {
    if !is(&ADDR_IN_USE, text) {
        return None;
    }
    let port = cap(&ADDR_IN_USE_AT, text, 2).and_then(|p| p.parse::<u16>().ok());
    let on = port.map(|p| format!(" {p}")).unwrap_or_default();
    let mut x = m(
        86,
        Cause::Crash,
        Some("EADDRINUSE"),
        format!(
            "The backend could not listen on its port{on}: another process holds it (EADDRINUSE), so it exited at start-up."
        ),
        format!(
            "Stop the process holding the port (`ss -ltnp 'sport = :{}'` names it; often an older instance of the backend) or give the backend another PORT, then start it again.",
            port.map_or("PORT".to_string(), |p| p.to_string())
        ),
    );
    x.facts.port = port;
    x.facts.address =
        cap(&ADDR_IN_USE_AT, text, 0).and_then(|s| s.rsplit(' ').next().map(str::to_string));
    Some(x)
}

/// PostgreSQL's 42P05 `prepared statement "s0" already exists` and 26000
/// `prepared statement "s0" does not exist`: a client's named prepared
/// statements landed on another server connection (PgBouncer's transaction
/// pooling without Prisma's `pgbouncer=true`).
fn prepared(text: &str) -> Option<Match> {
    let c = PREPARED.as_ref()?.captures(text)?;
    let exists = c
        .get(2)
        .map(|m| m.as_str().eq_ignore_ascii_case("already exists"));
    let code = match (exists, c.get(3).map(|m| m.as_str())) {
        (Some(true), _) | (None, Some("42P05")) => "42P05",
        _ => "26000",
    };
    let name = c
        .get(1)
        .map(|n| format!(" \"{}\"", n.as_str()))
        .unwrap_or_default();
    let what = if code == "42P05" {
        "already exists on the server connection it got"
    } else {
        "does not exist on the server connection it got"
    };
    Some(m(
        84,
        Cause::PreparedStatements,
        Some(code),
        format!(
            "A query's prepared statement{name} {what} ({code}): the backend's named prepared statements go through a pooler in transaction mode (PgBouncer), which hands each transaction another server connection."
        ),
        Cause::PreparedStatements.fix().into(),
    ))
}

fn pool(text: &str, p2024: bool) -> Option<Match> {
    if is(&P2024, text) || p2024 {
        let timeout = cap(&POOL_NUMBERS, text, 1).and_then(|t| t.parse().ok());
        let limit = cap(&POOL_NUMBERS, text, 2).and_then(|l| l.parse().ok());
        let numbers = match (limit, timeout) {
            (Some(l), Some(t)) => format!(" (connection_limit {l}, pool_timeout {t} s)"),
            _ => String::new(),
        };
        let now = limit.map(|l| format!(" (now {l})")).unwrap_or_default();
        let mut x = m(
            80,
            Cause::PoolSaturation,
            Some("P2024"),
            format!(
                "Requests timed out waiting for one of the backend's pooled database connections{numbers}: the pool is saturated."
            ),
            format!(
                "Raise connection_limit{now} in the backend's DATABASE_URL to what `chatops pool-calc` gives for the load, within max_connections headroom, and make slow statements faster; a longer pool_timeout only hides the queue."
            ),
        );
        x.facts.connection_limit = limit;
        x.facts.pool_timeout_s = timeout;
        return Some(x);
    }
    is(&PG_POOL, text).then(|| m(
        80,
        Cause::PoolSaturation,
        None,
        "Requests timed out waiting for a connection from the backend's node-postgres pool (connectionTimeoutMillis): the pool is saturated.".into(),
        "Raise the pool's `max` to what `chatops pool-calc` gives for the load, within max_connections headroom, and make slow statements faster; release clients (`client.release()`) on every path.".into(),
    ))
}

fn locks(text: &str, p2034: bool) -> Option<Match> {
    if !is(&LOCK, text) && !p2034 {
        return None;
    }
    let lower = text.to_ascii_lowercase();
    let (code, what) = if lower.contains("deadlock detected") {
        ("40P01", "Transactions deadlocked (deadlock detected)")
    } else if lower.contains("lock timeout") || lower.contains("could not obtain lock") {
        (
            "55P03",
            "A statement gave up waiting for a lock (lock timeout)",
        )
    } else if p2034 || lower.contains("write conflict") {
        (
            "P2034",
            "A transaction failed on a write conflict or deadlock",
        )
    } else {
        ("", "Statements wait for locks held by other transactions")
    };
    let lock = cap(&LOCK_WAIT, text, 1);
    let on = lock.as_ref().map(|l| format!(" ({l})")).unwrap_or_default();
    let mut x = m(
        78,
        Cause::LockContention,
        (!code.is_empty()).then_some(code),
        format!("{what}{on}: lock contention in the database."),
        Cause::LockContention.fix().into(),
    );
    x.facts.lock = lock;
    Some(x)
}

fn slow(text: &str) -> Option<Match> {
    is(&STATEMENT_TIMEOUT, text).then(|| {
        m(
            76,
            Cause::SlowQueries,
            Some("57014"),
            "A statement ran longer than statement_timeout and was cancelled: slow queries.".into(),
            Cause::SlowQueries.fix().into(),
        )
    })
}

fn unreachable(text: &str, code: &Option<String>, hints: &Hints) -> Option<Match> {
    let down = |code, what: String, addr: Option<String>| {
        let at = addr
            .as_ref()
            .map(|a| format!(" at {a}"))
            .unwrap_or_default();
        let mut x = m(
            60,
            Cause::DatabaseDown,
            code,
            format!("The backend {what}{at}."),
            "Start PostgreSQL or fix the host and port in the backend's DATABASE_URL (confirm with `pg_isready -h HOST -p PORT`), then restart the backend.".into(),
        );
        x.facts.port = addr
            .as_deref()
            .and_then(|a| a.rsplit(':').next()?.parse().ok());
        x.facts.address = addr;
        Some(x)
    };
    if let Some(a) = cap(&CANT_REACH, text, 1) {
        return down(Some("P1001"), "cannot reach PostgreSQL".into(), Some(a));
    }
    if let Some(a) = cap(&REACHED_TIMED_OUT, text, 1) {
        return down(
            Some("P1002"),
            "reached PostgreSQL, but it did not answer in time".into(),
            Some(a),
        );
    }
    if let Some(c) = NET_ERR.as_ref().and_then(|r| r.captures(text)) {
        let errno = c.get(1).map_or("", |x| x.as_str());
        let host = c.get(2).map_or("", |x| x.as_str());
        let port = c.get(3).and_then(|p| p.as_str().parse::<u16>().ok());
        let db_port = port.is_some_and(|p| hints.db_ports.contains(&p));
        let own = port.is_some() && port == hints.backend_port;
        // Another service's port or name (Redis, a broker, another database).
        let other = port.is_some_and(|p| OTHER_PORTS.contains(&p)) || is(&OTHER_SERVICE, text);
        if !own && (db_port || (!other && is(&DB_WORDS, text))) {
            let addr = match port {
                Some(p) => format!("{host}:{p}"),
                None => host.to_string(),
            };
            let (errno, what) = match errno {
                "ECONNREFUSED" => (
                    "ECONNREFUSED",
                    "cannot reach PostgreSQL: the connection was refused",
                ),
                "ENOTFOUND" => (
                    "ENOTFOUND",
                    "cannot reach PostgreSQL: the host name does not resolve",
                ),
                "EAI_AGAIN" => (
                    "EAI_AGAIN",
                    "cannot reach PostgreSQL: the host name does not resolve",
                ),
                "EHOSTUNREACH" => (
                    "EHOSTUNREACH",
                    "cannot reach PostgreSQL: the host is unreachable",
                ),
                _ => (
                    "ETIMEDOUT",
                    "cannot reach PostgreSQL: the connection timed out",
                ),
            };
            return down(Some(errno), what.into(), Some(addr));
        }
    }
    if is(&CLOSED, text) || code.as_deref() == Some("P1017") {
        let lower = text.to_ascii_lowercase();
        let code = if code.as_deref() == Some("P1017") || lower.contains("server has closed") {
            Some("P1017")
        } else if lower.contains("the database system is") {
            Some("57P03")
        } else if lower.contains("administrator command") {
            Some("57P01")
        } else {
            None
        };
        return down(
            code,
            "lost its connection to PostgreSQL (the server closed it or is not accepting connections)".into(),
            None,
        );
    }
    if code.as_deref() == Some("P1001") || is(&CONNECT_DB, text) {
        let code = (code.as_deref() == Some("P1001")).then_some("P1001");
        return down(code, "cannot connect to PostgreSQL".into(), None);
    }
    None
}
