//! Connection strings read the way libpq reads them (`PQconninfoParse`):
//! `postgresql://` / `postgres://` URIs and `key=value` strings. The result
//! is the list of keywords the string sets, decoded, in order, and nothing
//! defaulted: the same answers libpq's own URI regression list expects
//! (src/interfaces/libpq/test in PostgreSQL; the table is in this module's
//! tests). Defaults (port 5432, the user, the socket directory) are
//! [`super::DbUrl`]'s business.
//!
//! Where chatops differs on purpose: a URI query parameter libpq does not
//! know (Prisma's `connection_limit`, `schema`, …) is kept rather than
//! ignored with a warning, since Prisma reads them from the same URL.

use super::UrlError;

/// Keywords libpq accepts (PostgreSQL 17's `PQconninfoOptions`).
pub const KEYWORDS: &[&str] = &[
    "service",
    "user",
    "password",
    "passfile",
    "channel_binding",
    "connect_timeout",
    "dbname",
    "host",
    "hostaddr",
    "port",
    "client_encoding",
    "options",
    "application_name",
    "fallback_application_name",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "sslmode",
    "sslnegotiation",
    "sslcompression",
    "sslcert",
    "sslkey",
    "sslcertmode",
    "sslpassword",
    "sslrootcert",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "requirepeer",
    "require_auth",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "gssencmode",
    "krbsrvname",
    "gsslib",
    "gssdelegation",
    "replication",
    "target_session_attrs",
    "load_balance_hosts",
];

/// What a connection string sets, in the order it says it (a keyword set
/// twice keeps its place and takes the later value, as libpq's last one wins).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnInfo {
    pub pairs: Vec<(String, String)>,
    /// Where the query of a URI begins (the byte after `?`): for rewriting it.
    pub query_at: Option<usize>,
    /// Whether it was a URI (else `key=value`).
    pub uri: bool,
}

impl ConnInfo {
    pub fn get(&self, k: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(pk, _)| pk == k)
            .map(|(_, v)| v.as_str())
    }

    fn set(&mut self, k: &str, v: String) {
        match self.pairs.iter_mut().find(|(pk, _)| pk == k) {
            Some(p) => p.1 = v,
            None => self.pairs.push((k.to_string(), v)),
        }
    }

    /// Parses a URI or a `key=value` string, as libpq does.
    pub fn parse(s: &str) -> Result<ConnInfo, UrlError> {
        let s = s.trim();
        for prefix in ["postgresql://", "postgres://"] {
            if let Some(rest) = s.strip_prefix(prefix) {
                return parse_uri(s, prefix.len(), rest);
            }
        }
        parse_keywords(s)
    }
}

fn syntax(msg: String) -> UrlError {
    UrlError::Syntax(msg)
}

/// libpq's `conninfo_uri_decode`: `%XX` with two hex digits, never `%00`;
/// `+` stays a plus. Bytes that are not UTF-8 become U+FFFD.
pub fn uri_decode(s: &str) -> Result<String, UrlError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'%' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let hex = |c: Option<&u8>| c.and_then(|c| (*c as char).to_digit(16));
        let (Some(hi), Some(lo)) = (hex(b.get(i + 1)), hex(b.get(i + 2))) else {
            return Err(syntax(format!("invalid percent-encoded token: \"{s}\"")));
        };
        let c = (hi * 16 + lo) as u8;
        if c == 0 {
            return Err(syntax(format!(
                "forbidden value %00 in percent-encoded value: \"{s}\""
            )));
        }
        out.push(c);
        i += 3;
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// `conninfo_uri_parse_options`: `rest` is what follows the prefix, which
/// ends at `base` bytes into `uri`.
fn parse_uri(uri: &str, base: usize, rest: &str) -> Result<ConnInfo, UrlError> {
    let mut ci = ConnInfo {
        uri: true,
        ..ConnInfo::default()
    };
    let b = rest.as_bytes();
    let mut p = 0;
    // user[:password]@ when an `@` comes before any `/`.
    let at = b.iter().position(|c| *c == b'@' || *c == b'/');
    if let Some(a) = at.filter(|a| b[*a] == b'@') {
        let cred = &rest[..a];
        let (user, password) = match cred.split_once(':') {
            Some((u, pw)) => (u, Some(pw)),
            None => (cred, None),
        };
        if !user.is_empty() {
            ci.set("user", uri_decode(user)?);
        }
        if let Some(pw) = password.filter(|pw| !pw.is_empty()) {
            ci.set("password", uri_decode(pw)?);
        }
        p = a + 1;
    }
    // host[:port] pairs separated by commas; IPv6 hosts in brackets.
    let (mut hosts, mut ports) = (String::new(), String::new());
    let mut term;
    loop {
        let host;
        if b.get(p) == Some(&b'[') {
            let start = p + 1;
            let Some(close) = b[start..].iter().position(|c| *c == b']') else {
                return Err(syntax(format!(
                    "end of string reached when looking for matching \"]\" in IPv6 host address in URI: \"{uri}\""
                )));
            };
            if close == 0 {
                return Err(syntax(format!(
                    "IPv6 host address may not be empty in URI: \"{uri}\""
                )));
            }
            host = &rest[start..start + close];
            p = start + close + 1;
            if let Some(c) = b.get(p)
                && !matches!(c, b':' | b'/' | b'?' | b',')
            {
                return Err(syntax(format!(
                    "unexpected character \"{}\" at position {} in URI (expected \":\" or \"/\"): \"{uri}\"",
                    rest[p..].chars().next().unwrap_or('?'),
                    base + p + 1
                )));
            }
        } else {
            let start = p;
            while p < b.len() && !matches!(b[p], b':' | b'/' | b'?' | b',') {
                p += 1;
            }
            host = &rest[start..p];
        }
        hosts.push_str(host);
        term = b.get(p).copied();
        if term == Some(b':') {
            p += 1;
            let start = p;
            while p < b.len() && !matches!(b[p], b'/' | b'?' | b',') {
                p += 1;
            }
            ports.push_str(&rest[start..p]);
            term = b.get(p).copied();
        }
        if term != Some(b',') {
            break;
        }
        p += 1;
        hosts.push(',');
        ports.push(',');
    }
    if !hosts.is_empty() {
        ci.set("host", uri_decode(&hosts)?);
    }
    if !ports.is_empty() {
        ci.set("port", uri_decode(&ports)?);
    }
    if term.is_some() && term != Some(b'?') {
        // `/dbname`
        p += 1;
        let start = p;
        while p < b.len() && b[p] != b'?' {
            p += 1;
        }
        let db = &rest[start..p];
        if !db.is_empty() {
            ci.set("dbname", uri_decode(db)?);
        }
        term = b.get(p).copied();
    }
    if term.is_some() {
        p += 1;
        ci.query_at = Some(base + p);
        parse_params(&rest[p..], &mut ci)?;
    }
    Ok(ci)
}

/// A URI's query parameters, decoded, as libpq reads them (a key given
/// twice: the last value, in the first place).
pub fn query_params(q: &str) -> Result<Vec<(String, String)>, UrlError> {
    let mut ci = ConnInfo::default();
    parse_params(q, &mut ci)?;
    Ok(ci.pairs)
}

/// `conninfo_uri_parse_params`: `k=v&k=v`, every pair with exactly one `=`.
fn parse_params(q: &str, ci: &mut ConnInfo) -> Result<(), UrlError> {
    if q.is_empty() {
        return Ok(());
    }
    for pair in q.split('&') {
        let mut parts = pair.splitn(3, '=');
        let k = parts.next().unwrap_or_default();
        let (Some(v), None) = (parts.next(), parts.next()) else {
            let what = if pair.contains('=') {
                "extra key/value separator \"=\""
            } else {
                "missing key/value separator \"=\""
            };
            return Err(syntax(format!("{what} in URI query parameter: \"{k}\"")));
        };
        let (k, v) = (uri_decode(k)?, uri_decode(v)?);
        // JDBC's `ssl=true`, as libpq reads it.
        if k == "ssl" && v == "true" {
            ci.set("sslmode", "require".into());
        } else {
            ci.set(&k, v);
        }
    }
    Ok(())
}

/// `conninfo_parse`: `key = value` pairs separated by blanks; a value may be
/// single-quoted; a backslash escapes the next character in either form.
fn parse_keywords(s: &str) -> Result<ConnInfo, UrlError> {
    let mut ci = ConnInfo::default();
    let mut it = s.chars().peekable();
    loop {
        while it.next_if(|c| c.is_ascii_whitespace()).is_some() {}
        if it.peek().is_none() {
            break;
        }
        let mut name = String::new();
        while let Some(c) = it.next_if(|c| *c != '=' && !c.is_ascii_whitespace()) {
            name.push(c);
        }
        while it.next_if(|c| c.is_ascii_whitespace()).is_some() {}
        if it.next() != Some('=') {
            return Err(syntax(format!(
                "missing \"=\" after \"{name}\" in connection info string"
            )));
        }
        while it.next_if(|c| c.is_ascii_whitespace()).is_some() {}
        let mut value = String::new();
        if it.next_if_eq(&'\'').is_some() {
            loop {
                match it.next() {
                    None => {
                        return Err(syntax(
                            "unterminated quoted string in connection info string".into(),
                        ));
                    }
                    Some('\\') => {
                        if let Some(c) = it.next() {
                            value.push(c);
                        }
                    }
                    Some('\'') => break,
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(c) = it.next() {
                match c {
                    c if c.is_ascii_whitespace() => break,
                    '\\' => {
                        if let Some(c) = it.next() {
                            value.push(c);
                        }
                    }
                    c => value.push(c),
                }
            }
        }
        if !KEYWORDS.contains(&name.as_str()) {
            return Err(UrlError::Keyword {
                hint: crate::support::suggest::nearest(&name, KEYWORDS.iter().copied()),
                given: name,
            });
        }
        ci.set(&name, value);
    }
    Ok(ci)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PostgreSQL's libpq URI regression list (src/interfaces/libpq/test:
    /// regress.in and expected.out), every entry: the keywords libpq reports,
    /// or the words of its error. Unknown query parameters (`uzer`) are
    /// ignored by libpq with a warning; here they are kept as parameters, so
    /// the comparison is over libpq's own keywords.
    const LIBPQ_VECTORS: &[(&str, Result<&str, &str>)] = &[
        (
            "postgresql://uri-user:secret@host:12345/db",
            Ok("user='uri-user' password='secret' dbname='db' host='host' port='12345'"),
        ),
        (
            "postgresql://uri-user@host:12345/db",
            Ok("user='uri-user' dbname='db' host='host' port='12345'"),
        ),
        (
            "postgresql://uri-user@host/db",
            Ok("user='uri-user' dbname='db' host='host'"),
        ),
        (
            "postgresql://host:12345/db",
            Ok("dbname='db' host='host' port='12345'"),
        ),
        ("postgresql://host/db", Ok("dbname='db' host='host'")),
        (
            "postgresql://uri-user@host:12345/",
            Ok("user='uri-user' host='host' port='12345'"),
        ),
        (
            "postgresql://uri-user@host/",
            Ok("user='uri-user' host='host'"),
        ),
        ("postgresql://uri-user@", Ok("user='uri-user'")),
        ("postgresql://host:12345/", Ok("host='host' port='12345'")),
        ("postgresql://host:12345", Ok("host='host' port='12345'")),
        ("postgresql://host/db", Ok("dbname='db' host='host'")),
        ("postgresql://host/", Ok("host='host'")),
        ("postgresql://host", Ok("host='host'")),
        ("postgresql://", Ok("")),
        (
            "postgresql://?hostaddr=127.0.0.1",
            Ok("hostaddr='127.0.0.1'"),
        ),
        (
            "postgresql://example.com?hostaddr=63.1.2.4",
            Ok("host='example.com' hostaddr='63.1.2.4'"),
        ),
        ("postgresql://%68ost/", Ok("host='host'")),
        (
            "postgresql://host/db?user=uri-user",
            Ok("user='uri-user' dbname='db' host='host'"),
        ),
        (
            "postgresql://host/db?user=uri-user&port=12345",
            Ok("user='uri-user' dbname='db' host='host' port='12345'"),
        ),
        (
            "postgresql://host/db?u%73er=someotheruser&port=12345",
            Ok("user='someotheruser' dbname='db' host='host' port='12345'"),
        ),
        (
            "postgresql://host/db?u%7aer=someotheruser&port=12345",
            Ok("dbname='db' host='host' port='12345'"),
        ),
        (
            "postgresql://host:12345?user=uri-user",
            Ok("user='uri-user' host='host' port='12345'"),
        ),
        (
            "postgresql://host?user=uri-user",
            Ok("user='uri-user' host='host'"),
        ),
        ("postgresql://host?", Ok("host='host'")),
        (
            "postgresql://[::1]:12345/db",
            Ok("dbname='db' host='::1' port='12345'"),
        ),
        ("postgresql://[::1]/db", Ok("dbname='db' host='::1'")),
        (
            "postgresql://[2001:db8::1234]/",
            Ok("host='2001:db8::1234'"),
        ),
        (
            "postgresql://[200z:db8::1234]/",
            Ok("host='200z:db8::1234'"),
        ),
        ("postgresql://[::1]", Ok("host='::1'")),
        ("postgres://", Ok("")),
        ("postgres:///", Ok("")),
        ("postgres:///db", Ok("dbname='db'")),
        ("postgres://uri-user@/db", Ok("user='uri-user' dbname='db'")),
        (
            "postgres://?host=/path/to/socket/dir",
            Ok("host='/path/to/socket/dir'"),
        ),
        ("postgresql://host?uzer=", Ok("host='host'")),
        (
            "postgre://",
            Err("missing \"=\" after \"postgre://\" in connection info string"),
        ),
        (
            "postgres://[::1",
            Err(
                "end of string reached when looking for matching \"]\" in IPv6 host address in URI",
            ),
        ),
        (
            "postgres://[]",
            Err("IPv6 host address may not be empty in URI"),
        ),
        (
            "postgres://[::1]z",
            Err("unexpected character \"z\" at position 17 in URI"),
        ),
        (
            "postgresql://host?zzz",
            Err("missing key/value separator \"=\" in URI query parameter: \"zzz\""),
        ),
        (
            "postgresql://host?value1&value2",
            Err("missing key/value separator \"=\" in URI query parameter: \"value1\""),
        ),
        (
            "postgresql://host?key=key=value",
            Err("extra key/value separator \"=\" in URI query parameter: \"key\""),
        ),
        (
            "postgres://host?dbname=%XXfoo",
            Err("invalid percent-encoded token: \"%XXfoo\""),
        ),
        (
            "postgresql://a%00b",
            Err("forbidden value %00 in percent-encoded value: \"a%00b\""),
        ),
        (
            "postgresql://%zz",
            Err("invalid percent-encoded token: \"%zz\""),
        ),
        (
            "postgresql://%1",
            Err("invalid percent-encoded token: \"%1\""),
        ),
        (
            "postgresql://%",
            Err("invalid percent-encoded token: \"%\""),
        ),
        ("postgres://@host", Ok("host='host'")),
        ("postgres://host:/", Ok("host='host'")),
        ("postgres://:12345/", Ok("port='12345'")),
        (
            "postgres://otheruser@?host=/no/such/directory",
            Ok("user='otheruser' host='/no/such/directory'"),
        ),
        (
            "postgres://otheruser@/?host=/no/such/directory",
            Ok("user='otheruser' host='/no/such/directory'"),
        ),
        (
            "postgres://otheruser@:12345?host=/no/such/socket/path",
            Ok("user='otheruser' host='/no/such/socket/path' port='12345'"),
        ),
        (
            "postgres://otheruser@:12345/db?host=/path/to/socket",
            Ok("user='otheruser' dbname='db' host='/path/to/socket' port='12345'"),
        ),
        (
            "postgres://:12345/db?host=/path/to/socket",
            Ok("dbname='db' host='/path/to/socket' port='12345'"),
        ),
        (
            "postgres://:12345?host=/path/to/socket",
            Ok("host='/path/to/socket' port='12345'"),
        ),
        (
            "postgres://%2Fvar%2Flib%2Fpostgresql/dbname",
            Ok("dbname='dbname' host='/var/lib/postgresql'"),
        ),
    ];

    /// `k='v' k2='v2'` as expected.out prints it, sorted.
    fn expected(s: &str) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = s
            .split("' ")
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once("='").expect("k='v'");
                (k.to_string(), v.trim_end_matches('\'').to_string())
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn libpq_uri_regression_vectors_all_match() {
        let mut matched = 0;
        for (uri, want) in LIBPQ_VECTORS {
            match (ConnInfo::parse(uri), want) {
                (Ok(ci), Ok(w)) => {
                    let mut got: Vec<(String, String)> = ci
                        .pairs
                        .into_iter()
                        .filter(|(k, _)| KEYWORDS.contains(&k.as_str()))
                        .collect();
                    got.sort();
                    assert_eq!(got, expected(w), "{uri}");
                }
                (Err(e), Err(w)) => assert!(e.to_string().contains(w), "{uri}: {e} vs {w}"),
                (got, want) => panic!("{uri}: got {got:?}, libpq says {want:?}"),
            }
            matched += 1;
        }
        assert_eq!(matched, 57, "every vector of libpq's list");
    }

    #[test]
    fn key_value_strings_as_libpq_reads_them() {
        let ci = ConnInfo::parse(
            "host=/var/run/postgresql port = 5433 dbname='my db' password='it\\'s a \\\\ p@ss' user=a\\ b",
        )
        .expect("parses");
        assert_eq!(ci.get("host"), Some("/var/run/postgresql"));
        assert_eq!(ci.get("port"), Some("5433"));
        assert_eq!(ci.get("dbname"), Some("my db"));
        assert_eq!(ci.get("password"), Some("it's a \\ p@ss"));
        assert_eq!(ci.get("user"), Some("a b"));
        assert!(!ci.uri);
        for (bad, words) in [
            ("host=x dbname='open", "unterminated quoted string"),
            ("host", "missing \"=\" after \"host\""),
            (
                "hots=x",
                "invalid connection option `hots` (did you mean `host`?)",
            ),
        ] {
            let e = ConnInfo::parse(bad).expect_err(bad);
            assert!(e.to_string().contains(words), "{bad}: {e}");
        }
        assert_eq!(ConnInfo::parse("  ").expect("empty").pairs, vec![]);
    }

    #[test]
    fn several_hosts_ports_and_jdbc_ssl() {
        let ci = ConnInfo::parse(
            "postgresql://u@h1:1,[::1]:2,h3/db?ssl=true&target_session_attrs=read-write",
        )
        .expect("parses");
        assert_eq!(ci.get("host"), Some("h1,::1,h3"));
        assert_eq!(ci.get("port"), Some("1,2,"));
        assert_eq!(ci.get("sslmode"), Some("require"));
        assert_eq!(ci.get("target_session_attrs"), Some("read-write"));
        // The last value of a keyword wins, the query over the netloc.
        let ci = ConnInfo::parse("postgresql://u@h/db1?dbname=db2&dbname=db3").expect("parses");
        assert_eq!(ci.get("dbname"), Some("db3"));
    }
}

#[cfg(test)]
mod props {
    use super::super::{DbUrl, with_params};
    use crate::support::percent;
    use proptest::prelude::*;

    fn config() -> ProptestConfig {
        let mut c = ProptestConfig::default();
        if std::env::var_os("PROPTEST_CASES").is_none() {
            c.cases = 256;
        }
        c.failure_persistence = None;
        c
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn any_string_parses_or_is_refused_without_a_panic(s in "\\PC{0,80}", pre in prop::sample::select(&["", "postgresql://", "postgres://", "host="][..])) {
            let _ = DbUrl::parse(&format!("{pre}{s}"));
        }

        /// Any user, password and database, percent-encoded into a URI or
        /// quoted into a key=value string, read back as written.
        #[test]
        fn encoded_parts_read_back_as_written(
            user in "[^\\x00]{1,16}",
            password in "[^\\x00]{0,24}",
            db in "[^\\x00]{1,16}",
            host in prop_oneof![Just("db.internal".to_string()), Just("::1".to_string()), Just("/var/run/postgresql".to_string()), "[a-z]{1,8}"],
            port in 1u16..,
        ) {
            let h = if host.contains(':') { format!("[{host}]") } else { percent::encode(&host) };
            let uri = format!(
                "postgresql://{}:{}@{h}:{port}/{}",
                percent::encode(&user), percent::encode(&password), percent::encode(&db)
            );
            let kv = with_params(&format!("port={port}"), &[
                ("host", host.clone()), ("user", user.clone()), ("password", password.clone()), ("dbname", db.clone()),
            ]).map_err(|e| TestCaseError::fail(e.to_string()))?;
            for s in [uri, kv] {
                let u = DbUrl::parse(&s).map_err(|e| TestCaseError::fail(format!("{s}: {e}")))?;
                prop_assert_eq!(&u.user, &user, "{}", s);
                // An empty password in a URI is no password, as in libpq.
                prop_assert_eq!(u.password.as_deref().unwrap_or(""), password.as_str(), "{}", s);
                prop_assert_eq!(&u.database, &db, "{}", s);
                prop_assert_eq!((u.host.as_str(), u.port), (host.as_str(), port), "{}", s);
            }
        }
    }
}
