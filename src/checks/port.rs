//! `port`: a TCP port is `listening` (the backend is up) or `free` (nothing
//! holds the port the backend needs). On this machine it names the process.

use super::{Check, Ctx, Observation};
use crate::diagnose::{Fault, NetError};
use crate::probe::process;
use schemars::JsonSchema;
use serde::Deserialize;

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

impl Check for Port {
    const KIND: &'static str = "port";
    const HELP: &'static str = "a TCP port is listening or free, naming the process that holds it";
    type Params = Params;

    async fn run(p: Params, ctx: Ctx) -> Observation {
        let local = process::is_local_host(&p.host);
        let addr = format!("{}:{}", p.host, p.port);
        let started = std::time::Instant::now();
        let conn = tokio::time::timeout(
            ctx.timeout,
            tokio::net::TcpStream::connect((p.host.as_str(), p.port)),
        )
        .await;
        let took = started.elapsed();
        let (open, net) = match conn {
            Ok(Ok(_)) => (true, None),
            Ok(Err(e)) => (false, Some(NetError::from_io(&e))),
            Err(_) => (false, Some(NetError::Timeout)),
        };
        // A local listener bound to another address still takes the port.
        let listening_anywhere = local && process::is_listening_locally(p.port).unwrap_or(false);
        let holders = if local && (open || listening_anywhere) {
            process::listeners(p.port)
        } else {
            Vec::new()
        };
        let holder = holders.first().map(|h| h.to_string());
        let cmd = if local {
            format!("lsof -nP -iTCP:{} -sTCP:LISTEN", p.port)
        } else {
            format!("nc -vz {} {}", p.host, p.port)
        };
        let mut o = match (p.expect, open || listening_anywhere) {
            (Expect::Listening, true) => Observation::pass(match &holder {
                Some(h) => format!("{addr} is listening: {h}"),
                None => format!("{addr} is listening"),
            }),
            (Expect::Listening, false)
                if matches!(
                    net,
                    Some(NetError::Dns | NetError::Timeout | NetError::Unreachable)
                ) =>
            {
                let n = net.unwrap_or(NetError::Other);
                Observation::fail(
                    format!(
                        "cannot reach {addr}: {} after {}",
                        n.describe(),
                        crate::support::duration::fmt(took)
                    ),
                    Fault::HttpConnect {
                        url: format!("tcp://{addr}"),
                        error: n,
                        detail: format!("TCP connect to {addr}"),
                    },
                )
            }
            (Expect::Listening, false) => {
                let why = net.map(|n| n.describe()).unwrap_or("closed");
                Observation::fail(
                    format!(
                        "nothing listens on {addr} ({why} after {})",
                        crate::support::duration::fmt(took)
                    ),
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
            && o.status == super::Status::Pass
            && let (Some(pattern), Some(h)) = (&p.expect_command, holders.first())
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
                o.status = super::Status::Fail;
                o.summary = format!("{addr} is held by {h}, not the {}", p.service);
                o.fault = Some(Fault::PortHeldByOther {
                    port: p.port,
                    pid: h.pid,
                    service: p.service.clone(),
                    holder: h.to_string(),
                    pattern: pattern.clone(),
                    start_command: p.start_command.clone(),
                });
            }
        }
        o = o.evidence(format!(
            "TCP connect to {addr}: {} in {}",
            if open {
                "accepted".to_string()
            } else {
                net.map(|n| n.describe().to_string()).unwrap_or_default()
            },
            crate::support::duration::fmt(took)
        ));
        for h in &holders {
            o = o.evidence(format!("listener: {h}"));
        }
        if let Some(h) = holders.first() {
            o = o
                .capture("pid", h.pid)
                .capture("cmdline", h.cmdline.clone());
        }
        o.capture("open", open || listening_anywhere).command(cmd)
    }
}
