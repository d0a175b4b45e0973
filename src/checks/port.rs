//! `port`: a TCP port is `listening` (the backend is up) or `free` (nothing
//! holds the port the backend needs). On this machine it names the process.
//! [`observe`] connects and reads the listeners; [`judge`] decides.

use super::util::failed;
use super::{Check, Ctx, Observation, Status};
use crate::diagnose::{Fault, NetError};
use crate::probe::process;
use schemars::JsonSchema;
use serde::Deserialize;
use std::time::{Duration, Instant};

pub struct Port;

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    Listening,
    Free,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Host to probe (default 127.0.0.1).
    #[serde(default = "default_host")]
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// `listening` or `free`.
    pub expect: Expect,
    /// What should listen there, for messages (default `backend`).
    #[serde(default = "default_service")]
    pub service: String,
    /// How to start the service, quoted in the remedy.
    pub start_command: Option<String>,
    /// Health URL to wait for after starting, quoted in the remedy.
    pub health_url: Option<String>,
    /// With `listening`: a regular expression the listener's command line
    /// must match (`node|nest|docker-proxy`), so another program squatting
    /// on the port is found. Skipped when the listener cannot be read.
    pub expect_command: Option<String>,
}

fn default_host() -> String {
    "127.0.0.1".into()
}
fn default_service() -> String {
    "backend".into()
}

/// What a probe of the port saw.
#[derive(Debug, Clone)]
pub struct Facts {
    /// Whether this machine is the host (listeners can be named).
    pub local: bool,
    /// Whether the TCP connect was accepted, else how it failed.
    pub open: bool,
    pub net: Option<NetError>,
    pub took: Duration,
    /// A local listener bound to another address still takes the port.
    pub listening_anywhere: bool,
    /// The processes listening on the port (local only).
    pub holders: Vec<process::Proc>,
}

/// Connects to the port and, on this machine, finds who listens on it.
pub async fn observe(host: &str, port: u16, timeout: Duration) -> Facts {
    let local = process::is_local_host(host);
    let started = Instant::now();
    let conn = tokio::time::timeout(timeout, tokio::net::TcpStream::connect((host, port))).await;
    let took = started.elapsed();
    let (open, net) = match conn {
        Ok(Ok(_)) => (true, None),
        Ok(Err(e)) => (false, Some(NetError::from_io(&e))),
        Err(_) => (false, Some(NetError::Timeout)),
    };
    let listening_anywhere = local && process::is_listening_locally(port).unwrap_or(false);
    let holders = if local && (open || listening_anywhere) {
        process::listeners(port)
    } else {
        Vec::new()
    };
    Facts {
        local,
        open,
        net,
        took,
        listening_anywhere,
        holders,
    }
}

/// Judges the port against `expect` (and the listener against `expect_command`).
pub fn judge(p: &Params, f: &Facts) -> Observation {
    let addr = format!("{}:{}", p.host, p.port);
    let taken = f.open || f.listening_anywhere;
    let holder = f.holders.first().map(|h| h.to_string());
    let took = crate::support::duration::fmt(f.took);
    let mut o = match (p.expect, taken) {
        (Expect::Listening, true) => Observation::pass(match &holder {
            Some(h) => format!("{addr} is listening: {h}"),
            None => format!("{addr} is listening"),
        }),
        (Expect::Listening, false)
            if matches!(
                f.net,
                Some(NetError::Dns | NetError::Timeout | NetError::Unreachable)
            ) =>
        {
            let n = f.net.unwrap_or(NetError::Other);
            Observation::fail(
                format!("cannot reach {addr}: {} after {took}", n.describe()),
                Fault::HttpConnect {
                    url: format!("tcp://{addr}"),
                    error: n,
                    detail: format!("TCP connect to {addr}"),
                },
            )
        }
        (Expect::Listening, false) => {
            let why = f.net.map(|n| n.describe()).unwrap_or("closed");
            Observation::fail(
                format!("nothing listens on {addr} ({why} after {took})"),
                Fault::PortNotListening {
                    host: p.host.clone(),
                    port: p.port,
                    service: p.service.clone(),
                    start_command: p.start_command.clone(),
                    health_url: p.health_url.clone(),
                },
            )
        }
        (Expect::Free, false) => Observation::pass(format!("{addr} is free")),
        (Expect::Free, true) => Observation::fail(
            match &holder {
                Some(h) => format!("{addr} is taken by {h}"),
                None => format!("{addr} is taken"),
            },
            Fault::PortTaken {
                host: p.host.clone(),
                port: p.port,
                process: holder.clone(),
            },
        ),
    };
    if p.expect == Expect::Listening
        && o.status == Status::Pass
        && let (Some(pattern), Some(h)) = (&p.expect_command, f.holders.first())
    {
        let re = match regex::RegexBuilder::new(pattern)
            .case_insensitive(true)
            .size_limit(1 << 20)
            .build()
        {
            Ok(r) => r,
            Err(e) => {
                return Observation::error(format!(
                    "invalid expect_command regular expression {pattern:?}: {e}"
                ));
            }
        };
        if !re.is_match(&h.cmdline) {
            o = failed(
                o,
                format!("{addr} is held by {h}, not the {}", p.service),
                Fault::PortHeldByOther {
                    port: p.port,
                    pid: h.pid,
                    service: p.service.clone(),
                    holder: h.to_string(),
                    pattern: pattern.clone(),
                    start_command: p.start_command.clone(),
                },
            );
        }
    }
    o = o.evidence(format!(
        "TCP connect to {addr}: {} in {took}",
        if f.open {
            "accepted".to_string()
        } else {
            f.net.map(|n| n.describe().to_string()).unwrap_or_default()
        }
    ));
    for h in &f.holders {
        o = o.evidence(format!("listener: {h}"));
    }
    if let Some(h) = f.holders.first() {
        o = o
            .capture("pid", h.pid)
            .capture("cmdline", h.cmdline.clone());
    }
    let cmd = if f.local {
        format!("lsof -nP -iTCP:{} -sTCP:LISTEN", p.port)
    } else {
        format!("nc -vz {} {}", p.host, p.port)
    };
    o.capture("open", taken).command(cmd)
}

impl Check for Port {
    const KIND: &'static str = "port";
    const HELP: &'static str = "a TCP port is listening or free, naming the process that holds it";
    type Params = Params;

    async fn run(p: Params, ctx: Ctx) -> Observation {
        let facts = observe(&p.host, p.port, ctx.timeout).await;
        let o = judge(&p, &facts);
        // Nothing listens on the backend's port: its log says why.
        match ctx.witness.as_deref() {
            Some(w)
                if w.hints.backend_port == Some(p.port)
                    && matches!(o.fault, Some(Fault::PortNotListening { .. })) =>
            {
                let seen = super::witness::read_end(w);
                super::witness::explain_exit(o, &seen, &w.hints, std::time::SystemTime::now())
            }
            _ => o,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(expect: &str, extra: serde_json::Value) -> Params {
        let mut v = serde_json::json!({"port": 3001, "expect": expect});
        if let (Some(m), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            m.extend(e.clone());
        }
        serde_json::from_value(v).unwrap()
    }

    fn facts(open: bool, net: Option<NetError>, holders: &[(u32, &str)]) -> Facts {
        Facts {
            local: true,
            open,
            net,
            took: Duration::from_millis(2),
            listening_anywhere: false,
            holders: holders
                .iter()
                .map(|(pid, c)| process::Proc {
                    pid: *pid,
                    cmdline: c.to_string(),
                })
                .collect(),
        }
    }

    #[test]
    fn listening_passes_and_names_the_holder() {
        let o = judge(
            &params("listening", serde_json::json!({})),
            &facts(true, None, &[(42, "node dist/main")]),
        );
        assert_eq!(o.status, Status::Pass);
        assert_eq!(
            o.summary,
            "127.0.0.1:3001 is listening: pid 42 (node dist/main)"
        );
        assert_eq!(
            o.evidence,
            [
                "TCP connect to 127.0.0.1:3001: accepted in 2ms",
                "listener: pid 42 (node dist/main)"
            ]
        );
        assert_eq!(o.captures["pid"], serde_json::json!(42));
        assert_eq!(o.captures["open"], serde_json::json!(true));
        assert_eq!(
            o.command.as_deref(),
            Some("lsof -nP -iTCP:3001 -sTCP:LISTEN")
        );
    }

    #[test]
    fn refused_unreachable_taken_and_squatted() {
        let o = judge(
            &params("listening", serde_json::json!({})),
            &facts(false, Some(NetError::Refused), &[]),
        );
        assert_eq!(o.status, Status::Fail);
        assert_eq!(
            o.summary,
            "nothing listens on 127.0.0.1:3001 (connection refused after 2ms)"
        );
        assert!(matches!(
            o.fault,
            Some(Fault::PortNotListening { port: 3001, .. })
        ));
        let o = judge(
            &params("listening", serde_json::json!({})),
            &facts(false, Some(NetError::Timeout), &[]),
        );
        assert_eq!(
            o.summary,
            "cannot reach 127.0.0.1:3001: timed out after 2ms"
        );
        assert!(matches!(o.fault, Some(Fault::HttpConnect { .. })));
        let o = judge(
            &params("free", serde_json::json!({})),
            &facts(true, None, &[(7, "python3 -m http.server")]),
        );
        assert_eq!(
            o.summary,
            "127.0.0.1:3001 is taken by pid 7 (python3 -m http.server)"
        );
        let o = judge(
            &params("free", serde_json::json!({})),
            &facts(false, Some(NetError::Refused), &[]),
        );
        assert_eq!(o.status, Status::Pass);
        assert_eq!(o.summary, "127.0.0.1:3001 is free");
        let squat = params(
            "listening",
            serde_json::json!({"expect_command": "node|nest"}),
        );
        let o = judge(&squat, &facts(true, None, &[(7, "python3 -m http.server")]));
        assert_eq!(o.status, Status::Fail);
        assert_eq!(
            o.summary,
            "127.0.0.1:3001 is held by pid 7 (python3 -m http.server), not the backend"
        );
        assert!(matches!(
            o.fault,
            Some(Fault::PortHeldByOther { pid: 7, .. })
        ));
        let bad = params("listening", serde_json::json!({"expect_command": "("}));
        let o = judge(&bad, &facts(true, None, &[(7, "x")]));
        assert_eq!(o.status, Status::Error);
    }
}
