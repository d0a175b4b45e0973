//! PostgreSQL faults: connection errors classified (refused, timeout, auth,
//! missing database, too many clients, TLS), and their wording.

use super::{Diagnosis, Fault, NetError, TlsProblem};
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
    // A failed handshake carries rustls's error (inside an io::Error).
    if let Some(problem) = TlsProblem::from_chain(e) {
        return tls_failed_as(u, handshake_message(e), problem);
    }
    let text = e.to_string();
    // tokio-postgres's error kinds are private: its TLS failures are known
    // by their text, "error performing TLS handshake" (with a bare string
    // source, "server does not support TLS", when the server declines).
    if text.contains("TLS handshake") {
        return tls_failed(u, handshake_message(e));
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
    // What remains has no type to go by (tokio-postgres's kinds are
    // private): its text.
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
        ConnectError::Tls(e) => tls_setup_failed(url, e),
    }
}

/// The error's text without tokio-postgres's prefix.
fn handshake_message(e: &tokio_postgres::Error) -> String {
    error_chain(e)
        .trim_start_matches("error performing TLS handshake: ")
        .to_string()
}

/// The fault for a TLS setup or handshake that failed on this URL, known
/// only by its message (chatops's TLS set-up reports its errors as text).
pub fn tls_failed(u: &DbUrl, message: String) -> Fault {
    let problem = TlsProblem::from_message(&message);
    tls_failed_as(u, message, problem)
}

/// The fault for a TLS error with a type: classified from the rustls error
/// in its chain, else from its text.
pub fn tls_failed_from(u: &DbUrl, e: &(dyn std::error::Error + 'static)) -> Fault {
    let message = error_chain(e);
    match TlsProblem::from_chain(e) {
        Some(problem) => tls_failed_as(u, message, problem),
        None => tls_failed(u, message),
    }
}

/// The fault for TLS settings that could not be built: the roots are named
/// from the error's type, not its words.
pub fn tls_setup_failed(u: &DbUrl, e: &crate::pg::tls::TlsSetupError) -> Fault {
    let problem = if e.is_roots() {
        TlsProblem::Roots
    } else {
        TlsProblem::Other
    };
    tls_failed_as(u, e.to_string(), problem)
}

fn tls_failed_as(u: &DbUrl, message: String, problem: TlsProblem) -> Fault {
    Fault::PgTlsFailed {
        host: u.host.clone(),
        port: u.port,
        sslmode: u.param("sslmode").unwrap_or("prefer").to_string(),
        message,
        problem,
    }
}

/// Root cause and fix of a fault of this family; `None` for another family's.
pub(super) fn word(f: &Fault) -> Option<Diagnosis> {
    let d = super::worded;
    match f {
        Fault::PgNoResponse { host, port, error } => d(
            format!("PostgreSQL is not running or not reachable at {host}:{port} ({}).", error.describe()),
            match error {
                NetError::Dns => format!("Fix the host name `{host}` in DATABASE_URL, or use the server's IP address."),
                NetError::Timeout => format!("Check that {host}:{port} is reachable (firewall, security group, listen_addresses) and that the server is not overloaded."),
                _ => format!(
                    "Start PostgreSQL (`sudo systemctl start postgresql`, `brew services start postgresql`, or `pg_ctl -D DATADIR start`) and confirm with `pg_isready -h {host} -p {port}`. If it runs, check `listen_addresses` and `port` in postgresql.conf."
                ),
            },
        ),
        Fault::PgRejecting { host, port, message } => d(
            format!("PostgreSQL at {host}:{port} is up but rejecting connections: it is starting up, shutting down or in recovery ({message})."),
            "Wait for start-up or recovery to finish (watch the server log), then retry; if it stays, check the server log for a crash loop.".into(),
        ),
        Fault::PgNoAttempt { reason } => d(
            format!("The connection parameters are unusable: {reason}."),
            "Fix DATABASE_URL: postgresql://USER:PASSWORD@HOST:PORT/DATABASE.".into(),
        ),
        Fault::PgAuthFailed { user, host } => d(
            format!("PostgreSQL rejected the password for user `{user}` at {host} (SQLSTATE 28P01; Prisma P1000)."),
            format!("Put the right password for `{user}` in DATABASE_URL (percent-encode special characters), or reset it: `ALTER ROLE \"{user}\" PASSWORD '…'`."),
        ),
        Fault::PgDatabaseMissing { database } => d(
            format!("The database `{database}` does not exist (SQLSTATE 3D000; Prisma P1003)."),
            format!("Create it and apply the schema: `createdb {database}` then `npx prisma migrate deploy` (or `npx prisma db push`)."),
        ),
        Fault::PgTooManyClients { message } => d(
            format!("PostgreSQL has no connection slots left: max_connections is exhausted (SQLSTATE 53300: {message})."),
            "Lower the pools (connection_limit × replicas + other clients must stay under max_connections − reserved), find idle sessions in pg_stat_activity, or put PgBouncer in transaction mode in front.".into(),
        ),
        Fault::PgTlsRequired { message } => d(
            format!("The server requires an encrypted connection ({message})."),
            "Add `sslmode=require` to DATABASE_URL (Prisma: `?sslmode=require`), or allow non-TLS connections for this host in pg_hba.conf.".into(),
        ),
        Fault::PgTlsFailed {
            host,
            port,
            sslmode,
            message,
            problem,
        } => {
            let remedy = match problem {
                TlsProblem::ServerWithoutTls => format!("The server at {host}:{port} has TLS off. Turn it on (`ssl = on` with `ssl_cert_file` and `ssl_key_file` in postgresql.conf, then `SELECT pg_reload_conf()`), or connect with `sslmode=prefer` where encryption is optional."),
                TlsProblem::NameMismatch => format!("The certificate does not name `{host}`: connect by a name the certificate holds, or use `sslmode=verify-ca` (chain only). A certificate that names its host only in CN (the PostgreSQL docs' `openssl req -subj /CN=…` recipe) needs `subjectAltName=DNS:{host}` to be verified here."),
                TlsProblem::CaAsServerCert => "The server presents a CA certificate (CA:TRUE, often a self-signed one that is also its own sslrootcert) as its own: libpq lets this pass, chatops does not. Issue a server certificate signed by that CA, or use `sslmode=require` to encrypt without verifying.".to_string(),
                TlsProblem::UnknownIssuer => "The certificate is not signed by a CA chatops trusts: give the CA with `sslrootcert=/path/ca.pem` in the URL (Amazon RDS: the region's bundle; Prisma: `sslcert` with `sslaccept=strict`), or use `sslmode=require` to encrypt without verifying.".to_string(),
                TlsProblem::Validity => "The server's certificate is outside its validity period: renew it (or check this machine's clock).".to_string(),
                TlsProblem::Roots => "Point `sslrootcert` at a readable PEM file holding the server's CA (or `sslrootcert=system` for the system's store).".to_string(),
                TlsProblem::Other => format!("Check the server's TLS settings (ssl, ssl_min_protocol_version) against sslmode={sslmode}."),
            };
            d(
                format!("TLS with PostgreSQL at {host}:{port} failed (sslmode={sslmode}): {message}."),
                remedy,
            )
        }
        Fault::PgNoHbaEntry { message } => d(
            format!("pg_hba.conf has no rule admitting this client ({message})."),
            "Add a `host` line for this client address, user and database to pg_hba.conf and reload (`SELECT pg_reload_conf()`).".into(),
        ),
        Fault::PgServerError { code, message } => d(
            format!("PostgreSQL refused the session: {message} (SQLSTATE {code})."),
            "Read the server log around this time for the full error.".into(),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{tls_failed, tls_failed_from};
    use crate::diagnose::samples::words;
    use crate::diagnose::{Fault, NetError, TlsProblem, diagnose};
    use crate::pg::DbUrl;

    fn url(q: &str) -> DbUrl {
        DbUrl::parse(&format!(
            "postgresql://chat_app@db.internal:5433/chat_backend_db{q}"
        ))
        .expect("url")
    }

    #[test]
    fn no_response_is_worded_by_how_the_connection_failed() {
        let r = |error| Fault::PgNoResponse {
            host: "db.internal".into(),
            port: 5433,
            error,
        };
        words(
            &r(NetError::Refused),
            &["not running or not reachable at db.internal:5433 (connection refused)"],
            &["pg_isready -h db.internal -p 5433", "listen_addresses"],
        );
        words(
            &r(NetError::Dns),
            &["host name did not resolve"],
            &["`db.internal`"],
        );
        words(&r(NetError::Timeout), &["timed out"], &["firewall"]);
    }

    #[test]
    fn login_refusals_name_the_user_database_and_sqlstate() {
        words(
            &Fault::PgAuthFailed {
                user: "chat_app".into(),
                host: "db.internal:5433".into(),
            },
            &["`chat_app`", "28P01", "P1000"],
            &["ALTER ROLE \"chat_app\"", "percent-encode"],
        );
        words(
            &Fault::PgDatabaseMissing {
                database: "chat_backend_db".into(),
            },
            &["`chat_backend_db`", "3D000", "P1003"],
            &["createdb chat_backend_db", "prisma migrate deploy"],
        );
        words(
            &Fault::PgTooManyClients {
                message: "sorry, too many clients already".into(),
            },
            &["53300", "sorry, too many clients already"],
            &["PgBouncer", "max_connections"],
        );
        words(
            &Fault::PgRejecting {
                host: "db.internal".into(),
                port: 5433,
                message: "the database system is starting up".into(),
            },
            &["db.internal:5433", "starting up"],
            &["recovery"],
        );
        words(
            &Fault::PgNoAttempt {
                reason: "no host".into(),
            },
            &["unusable: no host"],
            &["DATABASE_URL"],
        );
        words(
            &Fault::PgTlsRequired {
                message: "no encryption".into(),
            },
            &["(no encryption)"],
            &["sslmode=require"],
        );
        words(
            &Fault::PgNoHbaEntry {
                message: "no entry".into(),
            },
            &["pg_hba.conf", "no entry"],
            &["pg_reload_conf()"],
        );
        words(
            &Fault::PgServerError {
                code: "XX000".into(),
                message: "boom".into(),
            },
            &["boom (SQLSTATE XX000)"],
            &["server log"],
        );
    }

    #[test]
    fn tls_fixes_follow_the_problem() {
        let cases = [
            (TlsProblem::ServerWithoutTls, "`ssl = on`"),
            (TlsProblem::NameMismatch, "`sslmode=verify-ca`"),
            (TlsProblem::CaAsServerCert, "CA:TRUE"),
            (TlsProblem::UnknownIssuer, "sslrootcert=/path/ca.pem"),
            (TlsProblem::Validity, "renew it"),
            (TlsProblem::Roots, "readable PEM file"),
            (TlsProblem::Other, "against sslmode=verify-full"),
        ];
        let mut fixes = std::collections::BTreeSet::new();
        for (problem, fix) in cases {
            let f = Fault::PgTlsFailed {
                host: "db.internal".into(),
                port: 5433,
                sslmode: "verify-full".into(),
                message: "the message".into(),
                problem,
            };
            let d = words(
                &f,
                &["db.internal:5433", "(sslmode=verify-full): the message."],
                &[fix],
            );
            fixes.insert(d.remedy);
        }
        assert_eq!(fixes.len(), cases.len());
        // The name the certificate must hold is the host's.
        let f = tls_failed(&url("?sslmode=verify-full"), "x".into());
        assert!(matches!(&f, Fault::PgTlsFailed { sslmode, .. } if sslmode == "verify-full"));
        let f = tls_failed(&url(""), "server does not support TLS".into());
        assert!(matches!(
            &f,
            Fault::PgTlsFailed { sslmode, problem: TlsProblem::ServerWithoutTls, .. } if sslmode == "prefer"
        ));
        assert!(
            diagnose(&f)
                .remedy
                .contains("The server at db.internal:5433 has TLS off")
        );
    }

    #[test]
    fn tls_errors_with_a_type_are_classified_by_it() {
        let io = |c: rustls::CertificateError| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                rustls::Error::InvalidCertificate(c),
            )
        };
        let f = tls_failed_from(
            &url("?sslmode=verify-full"),
            &io(rustls::CertificateError::UnknownIssuer),
        );
        assert!(
            matches!(
                f,
                Fault::PgTlsFailed {
                    problem: TlsProblem::UnknownIssuer,
                    ..
                }
            ),
            "{f:?}"
        );
        // Its text ("certificate not valid yet") names no Debug variant: the type decides.
        let f = tls_failed_from(&url(""), &io(rustls::CertificateError::NotValidYet));
        assert!(
            matches!(
                f,
                Fault::PgTlsFailed {
                    problem: TlsProblem::Validity,
                    ..
                }
            ),
            "{f:?}"
        );
        // Without a rustls error, the text decides.
        let e = std::io::Error::other("cannot read the root certificate file /x.pem");
        let f = tls_failed_from(&url(""), &e);
        assert!(
            matches!(
                f,
                Fault::PgTlsFailed {
                    problem: TlsProblem::Roots,
                    ..
                }
            ),
            "{f:?}"
        );
    }
}
