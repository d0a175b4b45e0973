//! PostgreSQL faults: connection errors classified (refused, timeout, auth,
//! missing database, too many clients, TLS).

use super::{Fault, NetError};
use crate::pg::activity::ConnectError;
use crate::pg::{DbUrl, error_chain};

/// Classifies a tokio-postgres connection error.
pub fn classify(e: &tokio_postgres::Error, u: &DbUrl) -> Fault {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code().to_string();
        let message = db.message().to_string();
        return match code.as_str() {
            "28P01" => Fault::PgAuthFailed {
                user: u.user.clone(),
                host: format!("{}:{}", u.host, u.port),
            },
            "3D000" => Fault::PgDatabaseMissing {
                database: u.database.clone(),
            },
            "53300" => Fault::PgTooManyClients { message },
            "57P03" => Fault::PgRejecting {
                host: u.host.clone(),
                port: u.port,
                message,
            },
            "28000" if message.contains("no encryption") || message.contains("SSL off") => {
                Fault::PgTlsRequired { message }
            }
            "28000" if message.contains("pg_hba.conf") => Fault::PgNoHbaEntry { message },
            "28000" => Fault::PgAuthFailed {
                user: u.user.clone(),
                host: format!("{}:{}", u.host, u.port),
            },
            _ => Fault::PgServerError { code, message },
        };
    }
    let text = e.to_string();
    // tokio-postgres says "error performing TLS handshake" (its source is
    // rustls's error, or "server does not support TLS").
    if text.contains("TLS handshake") {
        return tls_failed(
            u,
            error_chain(e)
                .trim_start_matches("error performing TLS handshake: ")
                .to_string(),
        );
    }
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return Fault::PgNoResponse {
                host: u.host.clone(),
                port: u.port,
                error: NetError::from_io(io),
            };
        }
        src = s.source();
    }
    let lower = text.to_ascii_lowercase();
    if lower.contains("timeout") || lower.contains("timed out") {
        Fault::PgNoResponse {
            host: u.host.clone(),
            port: u.port,
            error: NetError::Timeout,
        }
    } else if lower.contains("tls") || lower.contains("ssl") {
        Fault::PgTlsRequired { message: text }
    } else if lower.contains("password missing") {
        Fault::PgAuthFailed {
            user: u.user.clone(),
            host: format!("{}:{}", u.host, u.port),
        }
    } else {
        Fault::PgServerError {
            code: "-".into(),
            message: text,
        }
    }
}

/// The classified fault of a failed login (refused, auth, missing database, …).
pub fn connect_fault(e: &ConnectError, url: &DbUrl) -> Fault {
    match e {
        ConnectError::Timeout => Fault::PgNoResponse {
            host: url.host.clone(),
            port: url.port,
            error: NetError::Timeout,
        },
        ConnectError::Pg(e) => classify(e, url),
        ConnectError::Tls(message) => tls_failed(url, message.clone()),
    }
}

/// The fault for a TLS setup or handshake that failed on this URL.
pub fn tls_failed(u: &DbUrl, message: String) -> Fault {
    Fault::PgTlsFailed {
        host: u.host.clone(),
        port: u.port,
        sslmode: u.param("sslmode").unwrap_or("prefer").to_string(),
        message,
    }
}
