//! Secrets never print: passwords in URLs, tokens, Authorization headers and
//! any value known to be secret are replaced by `***` in every output.

use regex::Regex;
use std::sync::OnceLock;

#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

struct Patterns {
    url_password: Regex,
    query_secret: Regex,
    bearer: Regex,
    auth_header: Regex,
    env_secret: Regex,
}

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| Patterns {
        // scheme://user:PASSWORD@host
        url_password: Regex::new(r"(?i)\b([a-z][a-z0-9+.\-]*://[^:/@\s]*:)([^@\s]+)@")
            .expect("constant regex"),
        query_secret: Regex::new(
            r"(?i)\b(password|passwd|pwd|token|access_token|secret|api[_-]?key)=([^&\s'\x22),;:]+)",
        )
        .expect("constant regex"),
        bearer: Regex::new(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]{4,}")
            .expect("constant regex"),
        auth_header: Regex::new(r"(?i)\b(authorization|cookie|x-api-key)(\s*[:=]\s*)((bearer|basic|token)\s+)?[^\s'\x22,}]+")
            .expect("constant regex"),
        env_secret: Regex::new(
            r"\b([A-Z0-9_]*(PASSWORD|PASSWD|TOKEN|SECRET|API_KEY|PRIVATE_KEY)[A-Z0-9_]*=)\S+",
        )
        .expect("constant regex"),
    })
}

impl Redactor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Remembers a secret value (and its percent-encoded and form-encoded forms).
    pub fn add(&mut self, s: &str) {
        if s.len() < 4 || self.secrets.iter().any(|x| x == s) {
            return;
        }
        self.secrets.push(s.to_string());
        // As it shows in a URL (RFC 3986) and in a form-encoded query string.
        for enc in [super::percent::encode(s), super::percent::encode_form(s)] {
            if enc != s && !self.secrets.contains(&enc) {
                self.secrets.push(enc);
            }
        }
        // Longest first, so a secret containing another is replaced whole.
        self.secrets.sort_by_key(|x| std::cmp::Reverse(x.len()));
    }

    /// Learns the secrets inside a value: URL passwords, and query tokens.
    pub fn learn(&mut self, value: &str) {
        for cap in patterns().url_password.captures_iter(value) {
            if let Some(p) = cap.get(2) {
                let raw = p.as_str();
                self.add(raw);
                // Decoded as libpq decodes it (`+` stays a plus).
                self.add(&super::percent::decode(raw));
            }
        }
        for cap in patterns().query_secret.captures_iter(value) {
            if let Some(p) = cap.get(2) {
                self.add(p.as_str());
            }
        }
    }

    /// Learns from every string in a JSON value, and whole values of
    /// secret-looking keys (`password`, `token`, `Authorization`…).
    pub fn learn_json(&mut self, v: &serde_json::Value) {
        match v {
            serde_json::Value::String(s) => self.learn(s),
            serde_json::Value::Array(a) => a.iter().for_each(|x| self.learn_json(x)),
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    if is_secret_name(k)
                        && let Some(s) = x.as_str()
                    {
                        let bare = s.split_whitespace().last().unwrap_or(s);
                        self.add(bare);
                        self.add(s);
                    }
                    self.learn_json(x);
                }
            }
            _ => {}
        }
    }

    pub fn redact(&self, s: &str) -> String {
        let mut out = s.to_string();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), "***");
            }
        }
        let p = patterns();
        let out = p.url_password.replace_all(&out, "${1}***@");
        let out = p.query_secret.replace_all(&out, "${1}=***");
        let out = p.auth_header.replace_all(&out, "${1}${2}***");
        let out = p.bearer.replace_all(&out, "${1} ***");
        let out = p.env_secret.replace_all(&out, "${1}***");
        out.into_owned()
    }
}

/// A statement's text for display: string literals masked (`'…'`, they may
/// hold passwords or personal data), whitespace collapsed, at most `max`
/// characters, then the usual redaction.
pub fn sql_text(red: &Redactor, q: &str, max: usize) -> String {
    let mut out = String::with_capacity(q.len().min(max + 8));
    let mut in_lit = false;
    let mut chars = q.chars().peekable();
    while let Some(c) = chars.next() {
        if in_lit {
            if c == '\'' {
                if chars.peek() == Some(&'\'') {
                    chars.next();
                } else {
                    in_lit = false;
                    out.push_str("…'");
                }
            }
            continue;
        }
        if c == '\'' {
            in_lit = true;
            out.push('\'');
        } else if c.is_whitespace() {
            if !out.ends_with(' ') {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
    }
    if in_lit {
        out.push_str("…'");
    }
    let out = out.trim();
    let out = if out.chars().count() > max {
        format!("{}…", out.chars().take(max).collect::<String>())
    } else {
        out.to_string()
    };
    red.redact(&out)
}

/// The one secret-name policy, for every output: report captures and keys,
/// HTTP headers shown in curl lines, playbook and command-line variables,
/// JSON keys of check parameters.
///
/// A name is split into words at `_`, `-`, `.`, spaces and camelCase
/// (`sessionId` → session, id; `X-API-KEY` → x, api, key). It is a secret
/// when one word is a credential word (password, passwd, pwd, passphrase,
/// token, secret, apikey, authorization, auth, bearer, cookie, session,
/// sessionid, sid, jwt, otp, credential(s), signature), when two words
/// make one (api key, private key, access key, secret key, session id), or
/// when a word ends in a strong one (`PGPASSWORD`, `accesstoken`,
/// `setcookie`). Plurals that count things are not secrets: `tokens_used`,
/// `max_tokens`, `client_sessions`.
pub fn is_secret_name(name: &str) -> bool {
    const WORDS: &[&str] = &[
        "password",
        "passwd",
        "pwd",
        "passphrase",
        "token",
        "secret",
        "apikey",
        "authorization",
        "auth",
        "bearer",
        "cookie",
        "session",
        "sessionid",
        "sid",
        "jwt",
        "otp",
        "credential",
        "credentials",
        "signature",
    ];
    const PAIRS: &[(&str, &str)] = &[
        ("api", "key"),
        ("private", "key"),
        ("access", "key"),
        ("secret", "key"),
        ("session", "id"),
    ];
    const SUFFIXES: &[&str] = &["password", "passwd", "token", "secret", "apikey", "cookie"];
    let words = name_words(name);
    words
        .iter()
        .any(|w| WORDS.contains(&w.as_str()) || SUFFIXES.iter().any(|s| w.ends_with(s)))
        || words
            .windows(2)
            .any(|p| PAIRS.contains(&(p[0].as_str(), p[1].as_str())))
}

/// A name's words, lowercase: split at every non-alphanumeric character
/// and where a lowercase letter or digit is followed by an uppercase one.
fn name_words(name: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if !c.is_ascii_alphanumeric() {
            if !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower {
            words.push(std::mem::take(&mut cur));
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        cur.push(c.to_ascii_lowercase());
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_urls_tokens_and_known_secrets() {
        let mut r = Redactor::new();
        r.learn("postgresql://postgres:S3cr%40t-pw@db:5432/x");
        let s = r.redact(
            "connect postgresql://postgres:S3cr%40t-pw@db:5432/x failed; password S3cr@t-pw",
        );
        assert!(!s.contains("S3cr"), "{s}");
        assert!(s.contains("postgresql://postgres:***@db:5432/x"), "{s}");
        assert_eq!(
            r.redact("Authorization: Bearer abc.def.ghi"),
            "Authorization: ***"
        );
        assert_eq!(
            r.redact("curl -H 'X-Token: 1' ?token=abcdef"),
            "curl -H 'X-Token: 1' ?token=***"
        );
        assert_eq!(
            r.redact("DB_PASSWORD=hunter22 OTHER=1"),
            "DB_PASSWORD=*** OTHER=1"
        );
        assert_eq!(r.redact("no secrets here"), "no secrets here");
    }

    /// A secret shows up percent-encoded (RFC 3986: a space is `%20`) in a
    /// URL path or a libpq URL, and form-encoded (a space is `+`) in a query
    /// string built by a form encoder: both are redacted.
    #[test]
    fn a_known_secret_is_redacted_in_both_url_encodings() {
        let mut r = Redactor::new();
        r.add("se cret/value");
        for shown in [
            "GET /s/se%20cret%2Fvalue",
            "GET /s?x=se+cret%2Fvalue",
            "GET se cret/value",
        ] {
            let out = r.redact(shown);
            assert!(!out.contains("cret"), "{shown} -> {out}");
        }
        // A URL password is decoded as libpq decodes it: `+` stays a plus.
        let mut r = Redactor::new();
        r.learn("postgresql://u:p%2Fss+word@h/db");
        assert_eq!(r.redact("password p/ss+word"), "password ***");
    }

    /// The one secret-name policy, for every place a name meets a value:
    /// captures and report keys, HTTP headers, playbook and CLI variables,
    /// JSON keys of check parameters, environment variables.
    #[test]
    fn one_secret_name_policy_for_every_output() {
        #[rustfmt::skip]
        let table: &[(&str, bool, &str)] = &[
            // captures and report keys
            ("access_token", true, "capture"),
            ("accessToken", true, "capture"),
            ("token", true, "capture"),
            ("refresh_token", true, "capture"),
            ("sessionId", true, "capture"),
            ("session_id", true, "capture"),
            ("session", true, "capture"),
            ("sid", true, "capture"),
            ("jwt", true, "capture"),
            ("client_secret", true, "capture"),
            ("privateKey", true, "capture"),
            ("private_key", true, "capture"),
            ("aws_access_key_id", true, "capture"),
            ("credentials", true, "capture"),
            ("credential", true, "capture"),
            ("signature", true, "capture"),
            ("otp", true, "capture"),
            ("client_sessions", false, "capture: a count"),
            ("tokens_used", false, "capture: a count"),
            ("max_tokens", false, "capture: a count"),
            ("message_id", false, "capture"),
            ("max_connections", false, "capture"),
            ("keyboard", false, "capture"),
            ("pid", false, "capture"),
            ("status", false, "capture"),
            ("author", false, "capture"),
            ("passenger", false, "capture"),
            ("database_url", false, "capture: its password is redacted in the value"),
            // headers
            ("Authorization", true, "header"),
            ("Proxy-Authorization", true, "header"),
            ("Cookie", true, "header"),
            ("Set-Cookie", true, "header"),
            ("X-Api-Key", true, "header"),
            ("X-API-KEY", true, "header"),
            ("X-Auth-Token", true, "header"),
            ("X-CSRF-Token", true, "header"),
            ("X-Session-Id", true, "header"),
            ("Content-Type", false, "header"),
            ("X-Request-Id", false, "header"),
            ("Accept", false, "header"),
            // variables (playbook vars, --var, environment)
            ("password", true, "variable"),
            ("DB_PASSWORD", true, "variable"),
            ("PGPASSWORD", true, "variable: one word ending in password"),
            ("passwd", true, "variable"),
            ("admin_pwd", true, "variable"),
            ("JWT_SECRET", true, "variable"),
            ("api_key", true, "variable"),
            ("apiKey", true, "variable"),
            ("apikey", true, "variable"),
            ("GITHUB_TOKEN", true, "variable"),
            ("accesstoken", true, "variable: one word ending in token"),
            ("base_url", false, "variable"),
            ("user", false, "variable"),
            ("port", false, "variable"),
        ];
        let wrong: Vec<String> = table
            .iter()
            .filter(|(name, secret, _)| is_secret_name(name) != *secret)
            .map(|(name, secret, why)| format!("{name}: expected secret={secret} ({why})"))
            .collect();
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn sql_text_masks_literals_and_truncates() {
        let r = Redactor::new();
        assert_eq!(
            sql_text(&r, "ALTER ROLE app\n   PASSWORD 'it''s secret'", 80),
            "ALTER ROLE app PASSWORD '…'"
        );
        assert_eq!(sql_text(&r, "SELECT pg_sleep(3)", 10), "SELECT pg_…");
        assert_eq!(sql_text(&r, "SELECT 'unterminated", 80), "SELECT '…'");
    }
}
