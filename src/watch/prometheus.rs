//! The Prometheus text exposition of a frame (for node_exporter's textfile
//! collector or a scrape).

use super::{Frame, Thresholds, level};
use std::fmt::Write as _;

/// A Prometheus label value: backslash, double quote and newline escaped.
pub fn label_value(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub(super) fn gauge(o: &mut String, name: &str, help: &str, samples: &[(String, f64)]) {
    let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} gauge");
    for (labels, v) in samples {
        let _ = writeln!(o, "{name}{labels} {v}");
    }
}

const UP_HELP: &str = "1 when the last sample of pg_stat_activity succeeded.";

/// Every gauge of a frame, with HELP and TYPE lines.
pub fn exposition(f: &Frame, t: Thresholds) -> String {
    let mut o = String::new();
    let snap = match f {
        Frame::Down { .. } => {
            gauge(&mut o, "chatops_pg_up", UP_HELP, &[(String::new(), 0.0)]);
            return o;
        }
        Frame::Up { snap, .. } => snap,
    };
    let pgbouncer = match f {
        Frame::Up { pgbouncer, .. } => pgbouncer.as_ref(),
        Frame::Down { .. } => None,
    };
    let db = label_value(snap.database.as_deref().unwrap_or(""));
    let dbl = format!("{{database=\"{db}\"}}");
    gauge(&mut o, "chatops_pg_up", UP_HELP, &[(String::new(), 1.0)]);
    gauge(
        &mut o,
        "chatops_pg_max_connections",
        "The server's max_connections.",
        &[(String::new(), snap.max_connections as f64)],
    );
    gauge(
        &mut o,
        "chatops_pg_usable_connections",
        "max_connections minus superuser_reserved_connections and reserved_connections.",
        &[(String::new(), snap.usable() as f64)],
    );
    gauge(
        &mut o,
        "chatops_pg_server_connections",
        "Client sessions on the whole server, chatops's own excluded.",
        &[(String::new(), snap.server_total as f64)],
    );
    gauge(
        &mut o,
        "chatops_pg_connections",
        "Client sessions of the database.",
        &[(dbl.clone(), snap.total() as f64)],
    );
    let groups: Vec<(String, f64)> = snap
        .groups
        .iter()
        .map(|g| {
            (
                format!(
                    "{{database=\"{db}\",application_name=\"{}\",state=\"{}\"}}",
                    label_value(&g.application_name),
                    label_value(&g.state)
                ),
                g.count as f64,
            )
        })
        .collect();
    gauge(
        &mut o,
        "chatops_pg_sessions",
        "Sessions of the database by application_name and state.",
        &groups,
    );
    gauge(
        &mut o,
        "chatops_pg_waiting_lock",
        "Sessions of the database waiting for a lock.",
        &[(dbl.clone(), snap.waiting_lock as f64)],
    );
    gauge(
        &mut o,
        "chatops_pg_longest_query_seconds",
        "Run time of the longest active statement (0 when none).",
        &[(
            dbl.clone(),
            snap.longest.as_ref().map(|l| l.ms / 1000.0).unwrap_or(0.0),
        )],
    );
    gauge(
        &mut o,
        "chatops_pg_oldest_idle_in_transaction_seconds",
        "Age of the oldest transaction left idle (0 when none).",
        &[(
            dbl.clone(),
            snap.oldest_idle_in_transaction_ms.unwrap_or(0.0) / 1000.0,
        )],
    );
    gauge(
        &mut o,
        "chatops_pg_level",
        "0 ok, 1 warn, 2 critical (active sessions against the thresholds).",
        &[(dbl, level(snap, t) as u8 as f64)],
    );
    if let Some(b) = pgbouncer {
        bouncer_gauges(&mut o, b);
    }
    o
}

/// PgBouncer's pools: clients and servers by state, the longest wait.
fn bouncer_gauges(o: &mut String, b: &super::bouncer::BouncerView) {
    let up = if b.error.is_none() { 1.0 } else { 0.0 };
    gauge(
        o,
        "chatops_pgbouncer_up",
        "1 when the last SHOW POOLS on PgBouncer's console succeeded.",
        &[(String::new(), up)],
    );
    if b.error.is_some() {
        return;
    }
    let lbl = |p: &crate::pg::pgbouncer::Pool, state: &str| {
        format!(
            "{{database=\"{}\",user=\"{}\",state=\"{state}\"}}",
            label_value(&p.database),
            label_value(&p.user)
        )
    };
    let mut clients = Vec::new();
    let mut servers = Vec::new();
    let mut wait = Vec::new();
    for p in &b.pools {
        clients.push((lbl(p, "active"), p.cl_active as f64));
        clients.push((lbl(p, "waiting"), p.cl_waiting as f64));
        for (s, n) in [
            ("active", p.sv_active),
            ("idle", p.sv_idle),
            ("used", p.sv_used),
            ("tested", p.sv_tested),
            ("login", p.sv_login),
        ] {
            servers.push((lbl(p, s), n as f64));
        }
        wait.push((
            format!(
                "{{database=\"{}\",user=\"{}\"}}",
                label_value(&p.database),
                label_value(&p.user)
            ),
            p.maxwait_s,
        ));
    }
    gauge(
        o,
        "chatops_pgbouncer_clients",
        "PgBouncer's client connections by pool and state (active, waiting for a server).",
        &clients,
    );
    gauge(
        o,
        "chatops_pgbouncer_servers",
        "PgBouncer's server connections to PostgreSQL by pool and state.",
        &servers,
    );
    gauge(
        o,
        "chatops_pgbouncer_maxwait_seconds",
        "How long the oldest client waiting in the pool has waited.",
        &wait,
    );
    if let Some(n) = b.pool_size {
        gauge(
            o,
            "chatops_pgbouncer_default_pool_size",
            "PgBouncer's default_pool_size.",
            &[(String::new(), n as f64)],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{T, up};
    use super::*;
    use std::time::SystemTime;

    #[test]
    fn prometheus_exposition() {
        let p = exposition(&up(), T);
        assert!(p.contains("# TYPE chatops_pg_sessions gauge\n"));
        assert!(p.contains(
            "chatops_pg_sessions{database=\"chat_backend_db\",application_name=\"prisma\",state=\"active\"} 41\n"
        ));
        assert!(p.contains("application_name=\"we\\\"ird\\\\app\""), "{p}");
        assert!(p.contains("chatops_pg_max_connections 100\n"));
        assert!(p.contains("chatops_pg_longest_query_seconds{database=\"chat_backend_db\"} 1.5\n"));
        assert!(p.contains("chatops_pg_level{database=\"chat_backend_db\"} 1\n"));
        // Every sample line is NAME{labels} VALUE, every family has HELP and TYPE.
        for line in p.lines().filter(|l| !l.starts_with('#')) {
            let (_, v) = line.rsplit_once(' ').unwrap();
            v.parse::<f64>().unwrap();
        }
        let helps = p.lines().filter(|l| l.starts_with("# HELP")).count();
        let types = p.lines().filter(|l| l.starts_with("# TYPE")).count();
        assert_eq!(helps, types);
        let down = exposition(
            &Frame::Down {
                time: SystemTime::UNIX_EPOCH,
                error: "x".into(),
            },
            T,
        );
        assert_eq!(
            down,
            format!(
                "# HELP chatops_pg_up {UP_HELP}\n# TYPE chatops_pg_up gauge\nchatops_pg_up 0\n"
            )
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
