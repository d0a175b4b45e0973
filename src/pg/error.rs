//! PostgreSQL client errors: a database URL that does not parse, and any
//! client error as one line of text.

/// Why a database URL was refused (the words name what to change).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UrlError {
    #[error("not a URL ({0})")]
    NotAUrl(url::ParseError),
    #[error("scheme `{0}` is not postgresql://")]
    Scheme(String),
    #[error("port `{0}` is not a number from 1 to 65535")]
    Port(String),
    /// libpq's own words for a connection string it cannot read.
    #[error("{0}")]
    Syntax(String),
    #[error("invalid connection option `{given}`{}", hint.as_ref().map(|h| format!(" (did you mean `{h}`?)")).unwrap_or_default())]
    Keyword { given: String, hint: Option<String> },
    #[error("{hosts} host(s) but {ports} port(s): give one port for all, or one per host")]
    Ports { hosts: usize, ports: usize },
    #[error("sslmode `{given}` is not one of {modes}{}", hint.as_ref().map(|h| format!(" (did you mean `{h}`?)")).unwrap_or_default())]
    SslMode {
        given: String,
        modes: String,
        hint: Option<String>,
    },
}

/// An error with its sources, on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        let t = x.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = x.source();
    }
    s
}
