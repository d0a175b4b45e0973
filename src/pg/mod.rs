//! PostgreSQL connection URLs (with Prisma's pool parameters) and sessions.

pub mod activity;
mod error;
pub mod pgbouncer;
pub mod statements;
pub mod waits;
pub use error::{UrlError, error_chain};
pub mod tls;

use crate::support::percent;
use std::collections::BTreeMap;

/// A parsed `postgresql://` URL.
#[derive(Debug, Clone)]
pub struct DbUrl {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<String>,
    pub database: String,
    /// Every query parameter, in order of appearance.
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

impl DbUrl {
    pub fn parse(s: &str) -> Result<DbUrl, UrlError> {
        let u = url::Url::parse(s.trim()).map_err(UrlError::NotAUrl)?;
        if !matches!(u.scheme(), "postgres" | "postgresql") {
            return Err(UrlError::Scheme(u.scheme().to_string()));
        }
        // libpq percent-decodes every part and never reads `+` as a space.
        let decode = percent::decode;
        let params = percent::query_pairs(u.query().unwrap_or_default());
        let param = |k: &str| {
            params
                .iter()
                .find(|(pk, _)| pk == k)
                .map(|(_, v)| v.clone())
        };
        let host = match u.host_str() {
            Some(h) if !h.is_empty() => decode(h.trim_matches(['[', ']'])),
            _ => param("host").unwrap_or_else(|| "localhost".into()),
        };
        let port = match param("port") {
            Some(p) => p.parse().map_err(|_| UrlError::Port(p.clone()))?,
            None => u.port().unwrap_or(5432),
        };
        let user = if u.username().is_empty() {
            param("user").unwrap_or_else(|| "postgres".into())
        } else {
            decode(u.username())
        };
        let password = u.password().map(decode).or_else(|| param("password"));
        let database = u.path().trim_start_matches('/');
        let database = if database.is_empty() {
            param("dbname").unwrap_or_else(|| user.clone())
        } else {
            decode(database)
        };
        if let Some(m) = param("sslmode") {
            const MODES: [&str; 6] = [
                "disable",
                "allow",
                "prefer",
                "require",
                "verify-ca",
                "verify-full",
            ];
            if !MODES.contains(&m.as_str()) {
                return Err(UrlError::SslMode {
                    hint: crate::support::suggest::nearest(&m, MODES),
                    given: m,
                    modes: MODES.join(", "),
                });
            }
        }
        Ok(DbUrl {
            host,
            port,
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
        c.host(&self.host)
            .port(self.port)
            .user(&self.user)
            .dbname(&self.database);
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
    let mut u = url::Url::parse(url).map_err(UrlError::NotAUrl)?;
    let mut pairs: Vec<(String, String)> = u
        .query()
        .unwrap_or_default()
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
    u.set_query(Some(&query.join("&")));
    Ok(u.to_string())
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
}
