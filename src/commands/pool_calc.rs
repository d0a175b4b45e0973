//! `chatops pool-calc`: reads the flags (and, with `--database-url`, the
//! server's limits), runs [`crate::poolcalc::plan`] and prints it through
//! [`crate::poolcalc::render`] as a table, JSON or Markdown, with the
//! DATABASE_URL to use. Exit status: 0 when the pool fits (or max_connections
//! is unknown), 1 when it does not fit or the server cannot be read, 2 on bad
//! input.

use super::cli::{PoolCalcArgs, PoolCalcFormat};
use super::error::PoolCalcError;
use super::{CommandResult, Outcome};
use crate::pg::{DbUrl, activity};
use crate::poolcalc::bouncer;
use crate::poolcalc::render::{self, BouncerOutput, Output, Server};
use crate::poolcalc::{self, Inputs, Load, Verdict, num};
use crate::support::chat_backend::APP_NAME;
use crate::support::redact::Redactor;
use std::time::Duration;

fn flag(flag: &'static str, message: impl Into<String>) -> PoolCalcError {
    PoolCalcError::Flag {
        flag,
        message: message.into(),
    }
}

/// The arithmetic's inputs from the flags alone (the server is read later).
fn inputs(a: &PoolCalcArgs) -> Inputs {
    Inputs {
        load: match a.rps {
            Some(rps) => Load::Throughput { rps },
            None => Load::Vus {
                vus: a.vus,
                activity_ratio: a.activity_ratio,
            },
        },
        // clap refuses --query-ms with --query-s.
        query_s: a
            .query_s
            .or(a.query_ms.map(|ms| ms / 1000.0))
            .unwrap_or(0.150),
        burst: a.burst,
        overhead: a.overhead,
        rounding: a.round,
        replicas: a.replicas,
        other_connections: a.other_connections,
        max_connections: a.max_connections,
        reserved: a.reserved.unwrap_or(3),
        cores: a.cores,
        spindles: a.spindles,
        pool: a.pool,
    }
}

/// Reads max_connections, the reserved slots, the sessions now and the
/// version from the server; fills what the flags left open.
async fn read_server(
    a: &PoolCalcArgs,
    raw: &str,
    inputs: &mut Inputs,
    server: &mut Server,
) -> Result<(), PoolCalcError> {
    let u = DbUrl::parse(raw).map_err(|e| flag("--database-url", e.to_string()))?;
    let t = a.timeout.max(Duration::from_millis(100));
    let client = activity::connect(&u, APP_NAME, t)
        .await
        .map_err(|e| PoolCalcError::Connect {
            host: u.host.clone(),
            port: u.port,
            reason: e.to_string(),
        })?;
    let snap = tokio::time::timeout(t, activity::sample(&client, Some(&u.database)))
        .await
        .map_err(|_| PoolCalcError::SettingsTimeout)?
        .map_err(|e| PoolCalcError::Settings(e.to_string()))?;
    if a.max_connections.is_none() {
        inputs.max_connections = Some(snap.max_connections);
        server.source = "server";
    }
    if a.reserved.is_none() {
        inputs.reserved = snap.superuser_reserved + snap.reserved;
    }
    server.superuser_reserved = Some(snap.superuser_reserved);
    server.reserved_connections = Some(snap.reserved);
    server.sessions_now = Some(snap.server_total);
    if let Ok(row) = client.query_one("SHOW server_version", &[]).await {
        server.server_version = row.try_get::<_, String>(0).ok();
    }
    if inputs.cores.is_none() && crate::probe::process::is_local_host(&u.host) {
        inputs.cores = std::thread::available_parallelism()
            .ok()
            .map(|n| n.get() as u32);
    }
    Ok(())
}

/// `url` with its port replaced (PgBouncer's address on the same host).
fn on_port(url: &str, port: u16) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => match u.set_port(Some(port)) {
            Ok(()) => u.to_string(),
            Err(()) => url.to_string(),
        },
        Err(_) => url.to_string(),
    }
}

pub async fn run(a: &PoolCalcArgs, color: bool) -> CommandResult {
    let mut inputs = inputs(a);
    let mut server = Server::default();
    if a.max_connections.is_some() {
        server.source = "flags";
    }
    // Check the flags before any connection attempt.
    inputs.validate().map_err(PoolCalcError::from)?;
    if let Some(raw) = &a.database_url {
        read_server(a, raw, &mut inputs, &mut server).await?;
        inputs.validate().map_err(PoolCalcError::from)?;
    }
    let plan = poolcalc::plan(&inputs);
    let base = a
        .url
        .clone()
        .or_else(|| a.database_url.clone())
        .unwrap_or_else(|| {
            "postgresql://postgres:PASSWORD@localhost:5432/chat_backend_db".to_string()
        });
    let url = crate::pg::with_params(
        &base,
        &[
            ("connection_limit", plan.pool.to_string()),
            ("pool_timeout", num(a.pool_timeout.as_secs_f64())),
            ("connect_timeout", num(a.connect_timeout.as_secs_f64())),
        ],
    )
    .map_err(|e| {
        let mut red = Redactor::new();
        red.learn(&base);
        flag("--url", red.redact(&e.to_string()))
    })?;
    let hide = |u: String| {
        if a.show_secrets {
            u
        } else {
            render::hide_password(&u)
        }
    };
    let pgbouncer = if a.bouncer.pgbouncer {
        let b = bouncer::plan(
            &plan,
            &bouncer::BouncerInputs {
                pairs: a.bouncer.pgbouncer_pairs,
                other_clients: a.bouncer.other_clients,
            },
        );
        let through = match &a.bouncer.pgbouncer_url {
            Some(u) => u.clone(),
            None => on_port(&base, crate::pg::pgbouncer::DEFAULT_PORT),
        };
        let via = crate::pg::with_params(
            &through,
            &[
                ("pgbouncer", "true".to_string()),
                ("connection_limit", b.connection_limit.to_string()),
                ("pool_timeout", num(a.pool_timeout.as_secs_f64())),
                ("connect_timeout", num(a.connect_timeout.as_secs_f64())),
            ],
        )
        .map_err(|e| {
            let mut red = Redactor::new();
            red.learn(&through);
            flag("--pgbouncer-url", red.redact(&e.to_string()))
        })?;
        Some(BouncerOutput {
            plan: b,
            database_url: hide(via),
            direct_url: hide(base.clone()),
        })
    } else {
        None
    };
    let out = Output {
        plan,
        server,
        database_url: hide(url),
        pgbouncer,
    };
    let text = match a.format {
        PoolCalcFormat::Human => render::human(&out, color),
        PoolCalcFormat::Json => render::json(&out).unwrap_or_default(),
        PoolCalcFormat::Markdown => render::markdown(&out),
    };
    out!("{text}");
    let verdict = match &out.pgbouncer {
        Some(b) => b.plan.verdict,
        None => out.plan.verdict,
    };
    Ok(match verdict {
        Verdict::DoesNotFit => Outcome::Failed,
        _ => Outcome::Ok,
    })
}
