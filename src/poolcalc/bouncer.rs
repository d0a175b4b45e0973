//! Pool math with PgBouncer in front (`pool-calc --pgbouncer`), both sides:
//! the app's pools against PgBouncer's `max_client_conn` (client
//! connections, cheap), and PgBouncer's server pools
//! (`default_pool_size` × database/user pairs) against PostgreSQL's usable
//! connections. Transaction pooling shares the server pool among every
//! replica, so its size follows the load, not the replica count.

use super::{CEILING, Plan, Step, Verdict, num};
use serde::Serialize;
use std::fmt::Write;

/// What the PgBouncer side needs beyond the plan.
#[derive(Debug, Clone)]
pub struct BouncerInputs {
    /// Database/user pairs PgBouncer pools separately (default 1).
    pub pairs: u32,
    /// Client connections to PgBouncer besides the app's pools.
    pub other_clients: u32,
}

/// The sizes to configure, with their arithmetic.
#[derive(Debug, Clone, Serialize)]
pub struct BouncerPlan {
    pub steps: Vec<Step>,
    /// The app's connection_limit per replica (to PgBouncer).
    pub connection_limit: u32,
    /// Client connections the app's pools open.
    pub clients: u32,
    pub max_client_conn: u32,
    pub default_pool_size: u32,
    /// Server connections PgBouncer may open (pool × pairs + other).
    pub server_demand: u32,
    pub usable: Option<u32>,
    /// max_db_connections to set (70% of usable less other connections), when known.
    pub max_db_connections: Option<u32>,
    pub verdict: Verdict,
    /// The pgbouncer.ini lines.
    pub settings: Vec<(String, String)>,
}

fn step(label: &str, formula: String, value: f64) -> Step {
    Step {
        label: label.into(),
        formula,
        value,
    }
}

/// Sizes both sides from `p` (the pool math for the load and the server).
pub fn plan(p: &Plan, b: &BouncerInputs) -> BouncerPlan {
    let i = &p.inputs;
    let pairs = b.pairs.max(1);
    let mut steps = Vec::new();
    // Client side: each replica's pool is a set of client connections.
    let connection_limit = p.pool;
    let clients = connection_limit
        .saturating_mul(i.replicas)
        .saturating_add(b.other_clients);
    steps.push(step(
        "App client connections",
        format!(
            "{connection_limit} connection_limit × {} replica(s) + {} other client(s)",
            i.replicas, b.other_clients
        ),
        clients as f64,
    ));
    // Room for a rolling deploy (old and new replicas connected at once).
    let with_room = (clients as f64 * 1.25).ceil();
    let max_client_conn = ((with_room / 10.0).ceil() * 10.0).max(100.0) as u32;
    steps.push(step(
        "max_client_conn",
        format!(
            "{clients} × 1.25 (rolling deploys) = {} rounded up to a multiple of 10, at least 100",
            num(with_room)
        ),
        max_client_conn as f64,
    ));
    // Server side: transactions busy at once, shared by every replica.
    let mut default_pool_size = p.recommended_pool;
    steps.push(step(
        "default_pool_size",
        format!(
            "pool math: {} busy × {} burst + {} overhead, rounded (shared by all {} replica(s))",
            num(p.concurrent),
            num(i.burst),
            num(i.overhead),
            i.replicas
        ),
        default_pool_size as f64,
    ));
    let usable = p.usable;
    let mut max_db_connections = None;
    if let Some(u) = usable {
        let ceiling = ((u as f64 * CEILING).floor() as u32).saturating_sub(i.other_connections);
        let per_pair = ceiling / pairs;
        if default_pool_size * pairs > ceiling && per_pair >= 1 {
            steps.push(step(
                "default_pool_size capped",
                format!(
                    "(70% of {u} usable − {} other) / {pairs} pair(s)",
                    i.other_connections
                ),
                per_pair as f64,
            ));
            default_pool_size = per_pair;
        }
        max_db_connections = Some(ceiling.max(1));
    }
    let server_demand = default_pool_size
        .saturating_mul(pairs)
        .saturating_add(i.other_connections);
    steps.push(step(
        "PostgreSQL connections",
        format!(
            "{default_pool_size} × {pairs} database/user pair(s) + {} other",
            i.other_connections
        ),
        server_demand as f64,
    ));
    let verdict = match usable {
        None => Verdict::Unknown,
        Some(u) if server_demand > u => Verdict::DoesNotFit,
        Some(u) if server_demand as f64 > u as f64 * CEILING => Verdict::AboveCeiling,
        Some(_) => Verdict::Fits,
    };
    if let Some(u) = usable {
        steps.push(step(
            "Share of usable connections",
            format!("{server_demand} / {u}"),
            server_demand as f64 / u.max(1) as f64 * 100.0,
        ));
    }
    let mut settings = vec![
        ("pool_mode".to_string(), "transaction".to_string()),
        ("default_pool_size".into(), default_pool_size.to_string()),
        ("max_client_conn".into(), max_client_conn.to_string()),
    ];
    if let Some(m) = max_db_connections {
        settings.push(("max_db_connections".into(), m.to_string()));
    }
    BouncerPlan {
        steps,
        connection_limit,
        clients,
        max_client_conn,
        default_pool_size,
        server_demand,
        usable,
        max_db_connections,
        verdict,
        settings,
    }
}

fn value(s: &Step) -> String {
    if s.label.starts_with("Share") {
        format!("{:.1}%", s.value)
    } else {
        num(s.value)
    }
}

/// The verdict in words.
pub fn verdict_text(b: &BouncerPlan) -> String {
    let u = b.usable.unwrap_or(0);
    match b.verdict {
        Verdict::Fits => format!(
            "fits: PgBouncer opens at most {} of {u} usable PostgreSQL connections",
            b.server_demand
        ),
        Verdict::AboveCeiling => format!(
            "above the 70% ceiling: {} of {u} usable, but it fits",
            b.server_demand
        ),
        Verdict::DoesNotFit => format!(
            "does not fit: {} server connection(s) > {u} usable, even one per pair",
            b.server_demand
        ),
        Verdict::Unknown => {
            "max_connections unknown: give --max-connections or --database-url".into()
        }
    }
}

/// The PgBouncer part of the human output: the steps, the verdict, the
/// settings and the URLs.
pub fn human(b: &BouncerPlan, database_url: &str, direct_url: &str) -> String {
    let mut t = tabled::builder::Builder::default();
    t.push_record(["Step", "Arithmetic", "Result"]);
    for s in &b.steps {
        t.push_record([s.label.clone(), s.formula.clone(), value(s)]);
    }
    let mut t = t.build();
    t.with(tabled::settings::Style::rounded());
    let mut out = format!("With PgBouncer (transaction pooling)\n{t}\n");
    let _ = writeln!(out, "Verdict: {}", verdict_text(b));
    let _ = writeln!(out, "pgbouncer.ini [pgbouncer]:");
    for (k, v) in &b.settings {
        let _ = writeln!(out, "  {k} = {v}");
    }
    let _ = writeln!(out, "DATABASE_URL={database_url}");
    let _ = writeln!(
        out,
        "DIRECT_URL={direct_url}   # PostgreSQL itself, for migrations: directUrl = env(\"DIRECT_URL\") in schema.prisma"
    );
    out
}

/// The same as Markdown.
pub fn markdown(b: &BouncerPlan, database_url: &str, direct_url: &str) -> String {
    let mut out = String::from(
        "\n## With PgBouncer (transaction pooling)\n\n| Step | Arithmetic | Result |\n|---|---|---|\n",
    );
    for s in &b.steps {
        let _ = writeln!(out, "| {} | {} | {} |", s.label, s.formula, value(s));
    }
    let _ = writeln!(
        out,
        "\n**Verdict:** {}\n\n```ini\n[pgbouncer]",
        verdict_text(b)
    );
    for (k, v) in &b.settings {
        let _ = writeln!(out, "{k} = {v}");
    }
    let _ = writeln!(
        out,
        "```\n\n```\nDATABASE_URL={database_url}\nDIRECT_URL={direct_url}\n```"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::poolcalc::Inputs;

    #[test]
    fn the_seeds_load_through_pgbouncer_with_three_replicas() {
        let i = Inputs {
            replicas: 3,
            max_connections: Some(100),
            ..Inputs::default()
        };
        let p = crate::poolcalc::plan(&i);
        let b = plan(
            &p,
            &BouncerInputs {
                pairs: 1,
                other_clients: 0,
            },
        );
        assert_eq!(b.connection_limit, 50);
        assert_eq!(b.clients, 150);
        assert_eq!(b.max_client_conn, 190);
        // Shared: 50 server connections for all three replicas, 51.5% of 97.
        assert_eq!(b.default_pool_size, 50);
        assert_eq!(b.server_demand, 50);
        assert_eq!(b.verdict, Verdict::Fits);
        assert_eq!(b.max_db_connections, Some(67));
        // Four pairs cannot all have 50: capped to 67 / 4.
        let b = plan(
            &p,
            &BouncerInputs {
                pairs: 4,
                other_clients: 0,
            },
        );
        assert_eq!(b.default_pool_size, 16);
        assert_eq!(b.server_demand, 64);
        assert!(human(&b, "u", "d").contains("default_pool_size = 16"));
    }
}
