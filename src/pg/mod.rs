//! PostgreSQL connection URLs (with Prisma's pool parameters) and sessions.

pub mod activity;
pub mod conninfo;
mod error;
pub mod pgbouncer;
pub mod statements;
pub mod waits;
pub use error::{UrlError, error_chain};
pub mod tls;

use crate::support::percent;
use std::collections::BTreeMap;

/// A parsed database URL: a `postgresql://` URI or a libpq `key=value`
/// string, read as libpq reads it ([`conninfo`]), with libpq's defaults.
#[derive(Debug, Clone)]
pub struct DbUrl {
    /// The first host (a name, an address, or a socket directory).
    pub host: String,
    /// The first host's port.
    pub port: u16,
    /// Every host with its port, in order (`host=a,b port=1,2`; libpq tries
    /// them in turn).
    pub hosts: Vec<(String, u16)>,
    pub user: String,
    pub password: Option<String>,
    pub database: String,
    /// Every query parameter (URI) or every keyword besides the host, port,
    /// user, password and dbname (`key=value`), in order of appearance.
    pub params: Vec<(String, String)>,
}

/// Query parameters tokio-postgres understands; Prisma's own
/// (`connection_limit`, `pool_timeout`, `schema`, …) are dropped before connecting.
const LIBPQ_PARAMS: &[&str] = &[
    "application_name",
    "sslmode",
    "connect_timeout",
    "options",
    "target_session_attrs",
    "channel_binding",
    "keepalives",
    "keepalives_idle",
    "tcp_user_timeout",
    "load_balance_hosts",
];

/// libpq's default socket directory as Debian builds it, else upstream's.
fn default_socket_dir() -> String {
    if std::path::Path::new("/var/run/postgresql").is_dir() {
        "/var/run/postgresql".into()
    } else {
        "/tmp".into()
    }
}

/// libpq's default user: the operating system's user name.
fn default_user() -> String {
    // SAFETY: geteuid cannot fail; getpwuid returns a pointer into static
    // storage (or null), read at once, on this thread.
    let name = unsafe {
        let pw = libc::getpwuid(libc::geteuid());
        if pw.is_null() || (*pw).pw_name.is_null() {
            None
        } else {
            Some(
                std::ffi::CStr::from_ptr((*pw).pw_name)
                    .to_string_lossy()
                    .into_owned(),
            )
        }
    };
    name.or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "postgres".into())
}

impl DbUrl {
    pub fn parse(s: &str) -> Result<DbUrl, UrlError> {
        let t = s.trim();
        if let Some((scheme, _)) = t.split_once("://")
            && !scheme.contains(['=', ' '])
            && !matches!(scheme, "postgres" | "postgresql")
        {
            return Err(UrlError::Scheme(scheme.to_string()));
        }
        let ci = conninfo::ConnInfo::parse(t)?;
        let get = |k: &str| ci.get(k).filter(|v| !v.is_empty());
        // host=a,b and port=1,2: a single port applies to every host; an
        // empty entry is the default (libpq's rules).
        let hostaddr = get("hostaddr");
        let hosts: Vec<&str> = get("host").or(hostaddr).unwrap_or("").split(',').collect();
        let ports: Vec<&str> = get("port").unwrap_or("").split(',').collect();
        if ports.len() > 1 && ports.len() != hosts.len() {
            return Err(UrlError::Ports {
                hosts: hosts.len(),
                ports: ports.len(),
            });
        }
        let mut list = Vec::with_capacity(hosts.len());
        for (i, h) in hosts.iter().enumerate() {
            let p = ports.get(i).or(ports.first()).copied().unwrap_or("").trim();
            let port = if p.is_empty() {
                5432
            } else {
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| UrlError::Port(p.to_string()))?
            };
            let host = if h.is_empty() {
                default_socket_dir()
            } else {
                h.to_string()
            };
            list.push((host, port));
        }
        let (host, port) = list
            .first()
            .cloned()
            .unwrap_or((default_socket_dir(), 5432));
        let user = get("user").map_or_else(default_user, str::to_string);
        let password = ci.get("password").map(str::to_string);
        let database = get("dbname").map_or_else(|| user.clone(), str::to_string);
        let params: Vec<(String, String)> = if ci.uri {
            match ci.query_at {
                Some(q) => conninfo::query_params(&t[q..])?,
                None => Vec::new(),
            }
        } else {
            ci.pairs
                .iter()
                .filter(|(k, _)| {
                    !["host", "port", "user", "password", "dbname"].contains(&k.as_str())
                })
                .cloned()
                .collect()
        };
        if let Some(m) = get("sslmode") {
            const MODES: [&str; 6] = [
                "disable",
                "allow",
                "prefer",
                "require",
                "verify-ca",
                "verify-full",
            ];
            if !MODES.contains(&m) {
                return Err(UrlError::SslMode {
                    hint: crate::support::suggest::nearest(m, MODES),
                    given: m.to_string(),
                    modes: MODES.join(", "),
                });
            }
        }
        Ok(DbUrl {
            host,
            port,
            hosts: list,
            user,
            password,
            database,
            params,
        })
    }

    pub fn param(&self, k: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(pk, _)| pk == k)
            .map(|(_, v)| v.as_str())
    }

    /// Prisma's pool size, when the URL sets a usable one (a whole number
    /// above 0).
    pub fn connection_limit(&self) -> Option<u32> {
        self.param("connection_limit")?
            .trim()
            .parse()
            .ok()
            .filter(|l: &u32| *l > 0)
    }

    /// Prisma's pool settings, as written (not defaulted).
    pub fn prisma(&self) -> BTreeMap<&'static str, Option<String>> {
        ["connection_limit", "pool_timeout", "connect_timeout"]
            .into_iter()
            .map(|k| (k, self.param(k).map(str::to_string)))
            .collect()
    }

    /// A tokio-postgres configuration for this URL.
    pub fn config(&self, application_name: &str) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        for (h, p) in &self.hosts {
            c.host(h).port(*p);
        }
        if let Some(a) = self.param("hostaddr").and_then(|a| a.parse().ok())
            && self.hosts.len() == 1
        {
            c.hostaddr(a);
        }
        c.user(&self.user).dbname(&self.database);
        if let Some(p) = &self.password {
            c.password(p);
        }
        c.application_name(application_name);
        for (k, v) in &self.params {
            if !LIBPQ_PARAMS.contains(&k.as_str()) {
                continue;
            }
            match k.as_str() {
                "connect_timeout" => {
                    if let Ok(s) = v.parse::<u64>()
                        && s > 0
                    {
                        c.connect_timeout(std::time::Duration::from_secs(s));
                    }
                }
                "options" => {
                    c.options(v);
                }
                "application_name" => {
                    c.application_name(v);
                }
                "sslmode" => {
                    let m = match v.as_str() {
                        "disable" => tokio_postgres::config::SslMode::Disable,
                        "require" | "verify-ca" | "verify-full" => {
                            tokio_postgres::config::SslMode::Require
                        }
                        _ => tokio_postgres::config::SslMode::Prefer,
                    };
                    c.ssl_mode(m);
                }
                _ => {}
            }
        }
        // libpq never asks for TLS over a unix-domain socket, whatever the
        // sslmode (and a socket path is no name to verify a certificate for).
        if self.hosts.iter().all(|(h, _)| h.starts_with('/')) {
            c.ssl_mode(tokio_postgres::config::SslMode::Disable);
        }
        c
    }

    /// `pg_isready`-style host arguments for an equivalent command line.
    pub fn cli_args(&self) -> String {
        format!(
            "-h {} -p {} -U {} -d {}",
            self.host, self.port, self.user, self.database
        )
    }
}

/// Sets (adds or replaces) query parameters of a URL, keeping the others
/// as written; the new values are percent-encoded (a space is `%20`, which
/// libpq reads back as a space, where a form encoder's `+` would stay a plus).
pub fn with_params(url: &str, set: &[(&str, String)]) -> Result<String, UrlError> {
    let url = url.trim();
    let ci = conninfo::ConnInfo::parse(url)?;
    if !ci.uri {
        // key=value: the keyword replaced or added, quoted as libpq reads it.
        let mut pairs = ci.pairs;
        for (k, v) in set {
            match pairs.iter_mut().find(|(pk, _)| pk == k) {
                Some(p) => p.1 = v.clone(),
                None => pairs.push((k.to_string(), v.clone())),
            }
        }
        let quote = |v: &str| format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"));
        let out: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", quote(v)))
            .collect();
        return Ok(out.join(" "));
    }
    let (head, query) = match ci.query_at {
        Some(q) => (&url[..q - 1], &url[q..]),
        None => (url, ""),
    };
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k.to_string(), v.to_string())
        })
        .collect();
    for (k, v) in set {
        let v = percent::encode(v);
        match pairs.iter_mut().find(|(pk, _)| percent::decode(pk) == *k) {
            Some(p) => p.1 = v,
            None => pairs.push((percent::encode(k), v)),
        }
    }
    let query: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    Ok(format!("{head}?{}", query.join("&")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_sslmode_is_refused_with_a_suggestion() {
        let e = DbUrl::parse("postgresql://u@h/db?sslmode=requre").expect_err("refused");
        assert!(e.to_string().contains("did you mean `require`"), "{e}");
        assert!(DbUrl::parse("postgresql://u@h/db?sslmode=verify-full").is_ok());
    }

    #[test]
    fn parses_prisma_url() {
        let u = DbUrl::parse("postgresql://postgres:p%40ss@localhost:5432/chat_backend_db?connection_limit=50&pool_timeout=30&connect_timeout=10").unwrap();
        assert_eq!(u.host, "localhost");
        assert_eq!(u.port, 5432);
        assert_eq!(u.user, "postgres");
        assert_eq!(u.password.as_deref(), Some("p@ss"));
        assert_eq!(u.database, "chat_backend_db");
        assert_eq!(u.param("connection_limit"), Some("50"));
        assert_eq!(u.prisma()["pool_timeout"].as_deref(), Some("30"));
    }

    #[test]
    fn defaults_and_errors() {
        let u = DbUrl::parse("postgres://bob@db.internal/").unwrap();
        assert_eq!(
            (u.port, u.database.as_str(), u.password.is_none()),
            (5432, "bob", true)
        );
        assert!(DbUrl::parse("mysql://x@y/z").is_err());
        assert!(DbUrl::parse("not a url").is_err());
    }

    /// libpq percent-decodes every part of the URI and never reads `+` as a
    /// space: `a+b` is the password `a+b` (not `a b`), in the userinfo, the
    /// database name and the query parameters alike.
    #[test]
    fn a_plus_is_a_plus_in_every_part_as_libpq_reads_it() {
        let u = DbUrl::parse("postgresql://us+er:a+b%2Bc%20d@h/my+db%2F1").expect("url");
        assert_eq!(u.user, "us+er");
        assert_eq!(u.password.as_deref(), Some("a+b+c d"));
        assert_eq!(u.database, "my+db/1");
        let u = DbUrl::parse(
            "postgresql://h/?user=u+1&password=p+w&dbname=d+b&options=-c%20geqo%3Doff+x",
        )
        .expect("url");
        assert_eq!(u.user, "u+1");
        assert_eq!(u.password.as_deref(), Some("p+w"));
        assert_eq!(u.database, "d+b");
        assert_eq!(u.param("options"), Some("-c geqo=off+x"));
    }

    #[test]
    fn setting_params_keeps_a_plus_and_encodes_a_space_as_libpq_reads_it() {
        let s = with_params(
            "postgresql://u:a+b@h/d?password=p+w&connection_limit=5",
            &[
                ("connection_limit", "50".into()),
                ("options", "-c geqo=off".into()),
            ],
        )
        .expect("url");
        assert_eq!(
            s,
            "postgresql://u:a+b@h/d?password=p+w&connection_limit=50&options=-c%20geqo%3Doff"
        );
        let u = DbUrl::parse(&s).expect("url");
        assert_eq!(u.param("password"), Some("p+w"));
        assert_eq!(u.param("options"), Some("-c geqo=off"));
    }

    #[test]
    fn sets_params_keeping_others() {
        let s = with_params(
            "postgresql://u:p@h:1/d?schema=public&connection_limit=5",
            &[
                ("connection_limit", "50".into()),
                ("pool_timeout", "30".into()),
            ],
        )
        .unwrap();
        assert_eq!(
            s,
            "postgresql://u:p@h:1/d?schema=public&connection_limit=50&pool_timeout=30"
        );
    }

    /// Passwords with every character that means something in a URL, as
    /// they must be written (percent-encoded) and as a key=value string
    /// (quoted), give the same password; hosts as IPv6, sockets, lists.
    #[test]
    fn passwords_hosts_and_sockets_as_libpq_reads_them() {
        let pw = "p+w&d% @:/?#x y'\\";
        let enc = percent::encode(pw);
        let u = DbUrl::parse(&format!("postgresql://chat:{enc}@[::1]:6543/chat_db")).expect("url");
        assert_eq!(u.password.as_deref(), Some(pw));
        assert_eq!((u.host.as_str(), u.port), ("::1", 6543));
        let kv = with_params(
            "host=::1 port=6543 user=chat dbname=chat_db",
            &[("password", pw.into())],
        )
        .expect("kv");
        let k = DbUrl::parse(&kv).expect("kv parses");
        assert_eq!(
            (
                k.password.as_deref(),
                k.host.as_str(),
                k.port,
                k.user.as_str(),
                k.database.as_str()
            ),
            (Some(pw), "::1", 6543, "chat", "chat_db")
        );
        // A raw `+` and `@` as libpq reads them: the first `@` ends the password.
        let u = DbUrl::parse("postgresql://u:a+b@h/d").expect("url");
        assert_eq!(u.password.as_deref(), Some("a+b"));
        // Unix sockets: %2F-encoded in the host, or host= in the query.
        let u = DbUrl::parse("postgresql://u@%2Fvar%2Frun%2Fpostgresql:5433/d").expect("url");
        assert_eq!((u.host.as_str(), u.port), ("/var/run/postgresql", 5433));
        let u = DbUrl::parse("postgresql:///d?host=/tmp&port=5434").expect("url");
        assert_eq!(
            (u.host.as_str(), u.port, u.database.as_str()),
            ("/tmp", 5434, "d")
        );
        let u = DbUrl::parse("host=/var/run/postgresql dbname=d user=u").expect("kv");
        assert_eq!((u.host.as_str(), u.port), ("/var/run/postgresql", 5432));
        // Several hosts: each with its port, or one port for all.
        let u = DbUrl::parse("postgresql://u@a:1,b:2,[::1]/d").expect("url");
        assert_eq!(
            u.hosts,
            vec![("a".into(), 1), ("b".into(), 2), ("::1".into(), 5432)]
        );
        let u = DbUrl::parse("host=a,b port=7 user=u").expect("kv");
        assert_eq!(u.hosts, vec![("a".into(), 7), ("b".into(), 7)]);
        assert!(matches!(
            DbUrl::parse("host=a,b,c port=1,2"),
            Err(UrlError::Ports { hosts: 3, ports: 2 })
        ));
        // No host at all: libpq's socket directory; the user defaults to the OS user.
        let u = DbUrl::parse("postgresql:///d").expect("url");
        assert!(u.host.starts_with('/'), "{}", u.host);
        assert!(!u.user.is_empty());
        // Parameters as libpq reads them: the last wins, Prisma's kept.
        let u = DbUrl::parse(
            "postgresql://u@h/d?connection_limit=5&sslmode=disable&connection_limit=9",
        )
        .expect("url");
        assert_eq!(u.param("connection_limit"), Some("9"));
        assert_eq!(u.param("sslmode"), Some("disable"));
        for bad in [
            "postgresql://u@h:99999/d",
            "postgresql://u@h:x/d",
            "postgresql://h?zzz",
        ] {
            assert!(DbUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
