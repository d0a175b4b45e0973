//! `pg_ready`: the pg_isready equivalent.
//!
//! Like pg_isready it opens a connection and sends a protocol-3.0 startup
//! message, then reads the first answer: any authentication request, or any
//! error other than 57P03, means the server is accepting connections (a
//! wrong password still counts); 57P03 means rejecting (starting up or
//! shutting down); no answer means no response; unusable parameters mean no
//! attempt. It never logs in.

use super::{Check, Ctx, Observation, Status};
use crate::diagnose::{Fault, NetError};
use crate::pg::DbUrl;
use schemars::JsonSchema;
use serde::Deserialize;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub struct PgReady;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// PostgreSQL URL, e.g. `${target.database_url}`; host, port, user and database come from it.
    pub url: Option<String>,
    /// Host name, IP address, or a Unix socket directory (starting with `/`). Overrides the URL's.
    pub host: Option<String>,
    /// Port (default 5432). Overrides the URL's.
    pub port: Option<u16>,
    /// User name sent in the startup message (default from the URL, else `postgres`).
    pub user: Option<String>,
    /// Database name sent in the startup message.
    pub database: Option<String>,
}

/// pg_isready's four answers, with its exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ping {
    Accepting = 0,
    Rejecting = 1,
    NoResponse = 2,
    NoAttempt = 3,
}

impl Ping {
    pub fn text(self) -> &'static str {
        match self {
            Ping::Accepting => "accepting connections",
            Ping::Rejecting => "rejecting connections",
            Ping::NoResponse => "no response",
            Ping::NoAttempt => "no attempt",
        }
    }
}

/// The result of one ping, with what was seen on the wire.
#[derive(Debug, Clone)]
pub struct PingResult {
    pub ping: Ping,
    pub detail: String,
    pub net: Option<NetError>,
    pub sqlstate: Option<String>,
}

fn startup_message(user: &str, database: &str) -> Vec<u8> {
    let mut body = Vec::with_capacity(64);
    body.extend_from_slice(&196_608u32.to_be_bytes()); // protocol 3.0
    for (k, v) in [
        ("user", user),
        ("database", database),
        ("application_name", "chatops"),
    ] {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut msg = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    msg.extend_from_slice(&body);
    msg
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    user: &str,
    database: &str,
) -> PingResult {
    let no_response = |detail: String, net: NetError| PingResult {
        ping: Ping::NoResponse,
        detail,
        net: Some(net),
        sqlstate: None,
    };
    if let Err(e) = s.write_all(&startup_message(user, database)).await {
        return no_response(
            format!("sending the startup message failed: {e}"),
            NetError::from_io(&e),
        );
    }
    let mut head = [0u8; 5];
    if let Err(e) = s.read_exact(&mut head).await {
        return no_response(
            format!("the server closed the connection without answering ({e})"),
            NetError::from_io(&e),
        );
    }
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    match head[0] {
        b'R' => PingResult {
            ping: Ping::Accepting,
            detail: "server asked for authentication".into(),
            net: None,
            sqlstate: None,
        },
        b'v' => PingResult {
            ping: Ping::Accepting,
            detail: "server negotiated the protocol version".into(),
            net: None,
            sqlstate: None,
        },
        b'E' => {
            let mut body = vec![0u8; len.saturating_sub(4).min(16 * 1024)];
            let _ = s.read_exact(&mut body).await;
            let (code, msg) = parse_error(&body);
            let ping = if code.as_deref() == Some("57P03") {
                Ping::Rejecting
            } else {
                Ping::Accepting
            };
            PingResult {
                ping,
                detail: format!("server answered: {msg}"),
                net: None,
                sqlstate: code,
            }
        }
        b'N' | b'S' => PingResult {
            ping: Ping::Accepting,
            detail: "server answered".into(),
            net: None,
            sqlstate: None,
        },
        other => PingResult {
            ping: Ping::NoResponse,
            detail: format!(
                "the peer does not speak the PostgreSQL protocol (first byte 0x{other:02x})"
            ),
            net: Some(NetError::Other),
            sqlstate: None,
        },
    }
}

/// Reads the SQLSTATE and message fields of an ErrorResponse body.
pub fn parse_error(body: &[u8]) -> (Option<String>, String) {
    let mut code = None;
    let mut msg = String::new();
    for field in body.split(|b| *b == 0) {
        if let Some((&t, rest)) = field.split_first() {
            let v = String::from_utf8_lossy(rest).into_owned();
            match t {
                b'C' => code = Some(v),
                b'M' => msg = v,
                _ => {}
            }
        }
    }
    (code, msg)
}

/// Pings a server the way pg_isready does.
pub async fn ping(
    host: &str,
    port: u16,
    user: &str,
    database: &str,
    timeout: Duration,
) -> PingResult {
    let attempt = async {
        if host.starts_with('/') {
            let path = format!("{host}/.s.PGSQL.{port}");
            match tokio::net::UnixStream::connect(&path).await {
                Ok(s) => exchange(s, user, database).await,
                Err(e) => PingResult {
                    ping: Ping::NoResponse,
                    detail: format!("{path}: {e}"),
                    net: Some(NetError::from_io(&e)),
                    sqlstate: None,
                },
            }
        } else {
            let addrs = match tokio::net::lookup_host((host, port)).await {
                Ok(a) => a.collect::<Vec<_>>(),
                Err(e) => {
                    return PingResult {
                        ping: Ping::NoResponse,
                        detail: format!("could not resolve `{host}`: {e}"),
                        net: Some(NetError::Dns),
                        sqlstate: None,
                    };
                }
            };
            let mut last = None;
            for a in addrs {
                match tokio::net::TcpStream::connect(a).await {
                    Ok(s) => {
                        let _ = s.set_nodelay(true);
                        return exchange(s, user, database).await;
                    }
                    Err(e) => last = Some((a, e)),
                }
            }
            match last {
                Some((a, e)) => PingResult {
                    ping: Ping::NoResponse,
                    detail: format!("{a}: {e}"),
                    net: Some(NetError::from_io(&e)),
                    sqlstate: None,
                },
                None => PingResult {
                    ping: Ping::NoResponse,
                    detail: format!("`{host}` has no addresses"),
                    net: Some(NetError::Dns),
                    sqlstate: None,
                },
            }
        }
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(r) => r,
        Err(_) => PingResult {
            ping: Ping::NoResponse,
            detail: format!(
                "no answer within {}",
                crate::support::duration::fmt(timeout)
            ),
            net: Some(NetError::Timeout),
            sqlstate: None,
        },
    }
}

/// Where a ping goes, from the URL and the fields that override it.
#[derive(Debug, Clone)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub database: String,
}

impl Target {
    /// The target; an invalid URL is the reason there is no attempt.
    pub fn of(p: Params) -> Result<Target, String> {
        let base = match p.url.as_deref().map(DbUrl::parse) {
            Some(Ok(u)) => Some(u),
            Some(Err(e)) => return Err(format!("the URL is invalid: {e}")),
            None => None,
        };
        let user = p
            .user
            .or(base.as_ref().map(|u| u.user.clone()))
            .unwrap_or_else(|| "postgres".into());
        Ok(Target {
            host: p
                .host
                .or(base.as_ref().map(|u| u.host.clone()))
                .unwrap_or_else(|| "localhost".into()),
            port: p.port.or(base.as_ref().map(|u| u.port)).unwrap_or(5432),
            database: p
                .database
                .or(base.as_ref().map(|u| u.database.clone()))
                .unwrap_or_else(|| user.clone()),
            user,
        })
    }
}

/// pg_isready's "no attempt": the parameters are unusable.
fn no_attempt(reason: String) -> Observation {
    Observation::fail(
        format!("{}: {reason}", Ping::NoAttempt.text()),
        Fault::PgNoAttempt { reason },
    )
    .capture("state", Ping::NoAttempt.text())
    .capture("code", Ping::NoAttempt as i32)
}

/// Judges one ping as pg_isready would, with the wire detail as evidence.
pub fn judge(t: &Target, timeout: Duration, r: &PingResult) -> Observation {
    let Target {
        host,
        port,
        user,
        database,
    } = t;
    let port = *port;
    let line = format!("{host}:{port} - {}", r.ping.text());
    let mut o = match r.ping {
        Ping::Accepting => Observation::pass(line.clone()),
        Ping::Rejecting => Observation::fail(
            line.clone(),
            Fault::PgRejecting {
                host: host.clone(),
                port,
                message: r.detail.clone(),
            },
        ),
        Ping::NoResponse => Observation::fail(
            line.clone(),
            Fault::PgNoResponse {
                host: host.clone(),
                port,
                error: r.net.unwrap_or(NetError::Other),
            },
        ),
        Ping::NoAttempt => Observation::fail(
            line.clone(),
            Fault::PgNoAttempt {
                reason: r.detail.clone(),
            },
        ),
    };
    o = o
        .evidence(format!("{line} ({})", r.detail))
        .evidence(format!(
            "pg_isready exit code equivalent: {}",
            r.ping as i32
        ))
        .command(format!(
            "pg_isready -h {host} -p {port} -U {user} -d {database} -t {}",
            timeout.as_secs().max(1)
        ))
        .capture("state", r.ping.text())
        .capture("code", r.ping as i32);
    if let Some(code) = &r.sqlstate {
        o = o.evidence(format!(
            "SQLSTATE {code} (any code but 57P03 means the server is accepting connections)"
        ));
    }
    debug_assert!(o.status != Status::Blocked);
    o
}

impl Check for PgReady {
    const KIND: &'static str = "pg_ready";
    const HELP: &'static str =
        "PostgreSQL accepts connections, exactly as pg_isready judges it (no login)";
    type Params = Params;

    async fn run(p: Params, ctx: Ctx) -> Observation {
        let t = match Target::of(p) {
            Ok(t) => t,
            Err(reason) => return no_attempt(reason),
        };
        let r = ping(&t.host, t.port, &t.user, &t.database, ctx.timeout).await;
        judge(&t, ctx.timeout, &r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target::of(Params {
            url: Some("postgresql://chat:pw@db.local:5433/chat_db".into()),
            host: None,
            port: None,
            user: None,
            database: None,
        })
        .unwrap()
    }

    fn result(ping: Ping, detail: &str, sqlstate: Option<&str>) -> PingResult {
        PingResult {
            ping,
            detail: detail.into(),
            net: (ping == Ping::NoResponse).then_some(NetError::Refused),
            sqlstate: sqlstate.map(str::to_string),
        }
    }

    #[test]
    fn judged_as_pg_isready() {
        let t = target();
        let o = judge(
            &t,
            Duration::from_secs(3),
            &result(
                Ping::Accepting,
                "server answered: password authentication failed",
                Some("28P01"),
            ),
        );
        assert_eq!(o.status, Status::Pass);
        assert_eq!(o.summary, "db.local:5433 - accepting connections");
        assert_eq!(
            o.evidence,
            [
                "db.local:5433 - accepting connections (server answered: password authentication failed)",
                "pg_isready exit code equivalent: 0",
                "SQLSTATE 28P01 (any code but 57P03 means the server is accepting connections)",
            ]
        );
        assert_eq!(
            o.command.as_deref(),
            Some("pg_isready -h db.local -p 5433 -U chat -d chat_db -t 3")
        );
        let o = judge(
            &t,
            Duration::from_secs(3),
            &result(Ping::Rejecting, "starting up", Some("57P03")),
        );
        assert_eq!(o.status, Status::Fail);
        assert!(matches!(
            o.fault,
            Some(Fault::PgRejecting { port: 5433, .. })
        ));
        let o = judge(
            &t,
            Duration::from_secs(3),
            &result(Ping::NoResponse, "refused", None),
        );
        assert_eq!(o.summary, "db.local:5433 - no response");
        assert_eq!(o.captures["code"], serde_json::json!(2));
        assert!(matches!(
            o.fault,
            Some(Fault::PgNoResponse {
                error: NetError::Refused,
                ..
            })
        ));
    }

    #[test]
    fn an_invalid_url_is_no_attempt() {
        let e = Target::of(Params {
            url: Some("mysql://x".into()),
            host: None,
            port: None,
            user: None,
            database: None,
        })
        .err()
        .unwrap();
        let o = no_attempt(e);
        assert_eq!(o.status, Status::Fail);
        assert!(
            o.summary.starts_with("no attempt: the URL is invalid: "),
            "{}",
            o.summary
        );
        assert_eq!(o.captures["code"], serde_json::json!(3));
    }

    #[test]
    fn startup_message_layout() {
        let m = startup_message("u", "d");
        let len = u32::from_be_bytes([m[0], m[1], m[2], m[3]]) as usize;
        assert_eq!(len, m.len());
        assert_eq!(&m[4..8], &196_608u32.to_be_bytes());
        assert_eq!(*m.last().unwrap_or(&1), 0);
    }

    #[test]
    fn error_fields() {
        let body = b"SFATAL\0C57P03\0Mthe database system is starting up\0\0";
        let (c, m) = parse_error(body);
        assert_eq!(c.as_deref(), Some("57P03"));
        assert_eq!(m, "the database system is starting up");
    }

    #[tokio::test]
    async fn refused_port_is_no_response() {
        // Bind then drop to get a port nothing listens on.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let r = ping("127.0.0.1", port, "u", "d", Duration::from_secs(2)).await;
        assert_eq!(r.ping, Ping::NoResponse);
        assert_eq!(r.net, Some(NetError::Refused));
    }

    #[tokio::test]
    async fn silent_server_times_out_as_no_response() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let _keep = tokio::spawn(async move {
            let (_s, _) = l.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        let t = std::time::Instant::now();
        let r = ping("127.0.0.1", port, "u", "d", Duration::from_millis(300)).await;
        assert_eq!(r.ping, Ping::NoResponse);
        assert_eq!(r.net, Some(NetError::Timeout));
        assert!(t.elapsed() < Duration::from_secs(2));
    }
}
