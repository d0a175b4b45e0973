//! The derivation itself: from [`Inputs`] to a [`Plan`] with every step,
//! the verdict against max_connections and the advice.

use super::{CEILING, Inputs, Load, num};
use serde::Serialize;

/// One line of the derivation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub label: String,
    pub formula: String,
    pub value: f64,
}

/// Where the total demand stands against the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// At or below 70% of the usable connections.
    Fits,
    /// Above 70% of usable, but it fits.
    AboveCeiling,
    /// More than the server accepts.
    DoesNotFit,
    /// max_connections unknown.
    Unknown,
}

/// Advice beyond the arithmetic.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Advice {
    pub kind: &'static str,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub inputs: Inputs,
    pub steps: Vec<Step>,
    /// Connections busy on average (before burst).
    pub concurrent: f64,
    /// The computed pool before rounding.
    pub raw_pool: f64,
    /// The recommended pool per process (rounded).
    pub recommended_pool: u32,
    /// The pool judged: `inputs.pool` when given, else the recommendation.
    pub pool: u32,
    /// pool × replicas + other connections.
    pub demand: u32,
    pub max_connections: Option<u32>,
    pub usable: Option<u32>,
    /// demand / max_connections, percent (the seed's measure).
    pub pct_of_max: Option<f64>,
    /// demand / usable, percent (what the ceiling applies to).
    pub pct_of_usable: Option<f64>,
    /// 70% of usable, in connections.
    pub ceiling_connections: Option<u32>,
    pub verdict: Verdict,
    /// cores × 2 + spindles, when cores are known.
    pub useful_active: Option<u32>,
    pub advice: Vec<Advice>,
}

/// The whole derivation. Call [`Inputs::validate`] first.
pub fn plan(i: &Inputs) -> Plan {
    let mut steps = Vec::new();
    let concurrent = match i.load {
        Load::Vus {
            vus,
            activity_ratio,
        } => {
            let c = vus * activity_ratio * i.query_s;
            steps.push(Step {
                label: "Peak concurrent queries".into(),
                formula: format!(
                    "{} VUs × {} activity ratio × {} s per query",
                    num(vus),
                    num(activity_ratio),
                    num(i.query_s)
                ),
                value: c,
            });
            c
        }
        Load::Throughput { rps } => {
            let c = rps * i.query_s;
            steps.push(Step {
                label: "Busy connections (Little's law)".into(),
                formula: format!("{} requests/s × {} s per query", num(rps), num(i.query_s)),
                value: c,
            });
            c
        }
    };
    let burst = concurrent * i.burst;
    steps.push(Step {
        label: "With burst buffer".into(),
        formula: format!("{} × {}", num(concurrent), num(i.burst)),
        value: burst,
    });
    let raw_pool = burst + i.overhead;
    steps.push(Step {
        label: "With overhead".into(),
        formula: format!("{} + {}", num(burst), num(i.overhead)),
        value: raw_pool,
    });
    let recommended_pool = i.rounding.apply(raw_pool);
    steps.push(Step {
        label: "Pool per process".into(),
        formula: format!("{} {}", num(raw_pool), i.rounding.describe()),
        value: recommended_pool as f64,
    });
    let pool = i.pool.unwrap_or(recommended_pool);
    if let Some(p) = i.pool {
        steps.push(Step {
            label: "Pool judged (given)".into(),
            formula: format!("connection_limit {p}"),
            value: p as f64,
        });
    }
    let demand = pool
        .saturating_mul(i.replicas)
        .saturating_add(i.other_connections);
    if i.replicas != 1 || i.other_connections != 0 {
        steps.push(Step {
            label: "Connections demanded".into(),
            formula: format!(
                "{pool} × {} replica(s) + {} other",
                i.replicas, i.other_connections
            ),
            value: demand as f64,
        });
    }
    let usable = i.max_connections.map(|m| m.saturating_sub(i.reserved));
    let mut pct_of_max = None;
    let mut pct_of_usable = None;
    let mut ceiling_connections = None;
    let mut verdict = Verdict::Unknown;
    if let (Some(m), Some(u)) = (i.max_connections, usable) {
        let pm = demand as f64 / m as f64 * 100.0;
        steps.push(Step {
            label: "Share of max_connections".into(),
            formula: format!("{demand} / {m}"),
            value: pm,
        });
        pct_of_max = Some(pm);
        if u > 0 {
            let pu = demand as f64 / u as f64 * 100.0;
            steps.push(Step {
                label: "Share of usable connections".into(),
                formula: format!("{demand} / {u} ({m} − {} reserved)", i.reserved),
                value: pu,
            });
            pct_of_usable = Some(pu);
        }
        let ceil = (u as f64 * CEILING).floor() as u32;
        ceiling_connections = Some(ceil);
        verdict = if demand > u {
            Verdict::DoesNotFit
        } else if demand as f64 > u as f64 * CEILING + 1e-9 {
            Verdict::AboveCeiling
        } else {
            Verdict::Fits
        };
    }
    let useful_active = i
        .cores
        .map(|c| c.saturating_mul(2).saturating_add(i.spindles));
    let mut advice = Vec::new();
    if let Some(useful) = useful_active {
        let active_total = pool.saturating_mul(i.replicas);
        if active_total > useful {
            advice.push(Advice {
                kind: "server_cores",
                text: format!(
                    "{active_total} pooled connection(s) in all is more than the server can run at once: about {} cores × 2 + {} spindle(s) = {useful} (PostgreSQL wiki / HikariCP). The extra ones queue inside PostgreSQL; a smaller pool with a pool_timeout queues them in the app instead, or put PgBouncer (transaction pooling) in front.",
                    i.cores.unwrap_or(0),
                    i.spindles
                ),
            });
        }
    }
    if concurrent > 0.0 && (pool as f64) < concurrent {
        advice.push(Advice {
            kind: "pool_too_small",
            text: format!(
                "A pool of {pool} is below the {} connections busy on average: requests will wait for a connection (Prisma P2024 after pool_timeout) under this load.",
                num(concurrent)
            ),
        });
    }
    match verdict {
        Verdict::DoesNotFit | Verdict::AboveCeiling => {
            let u = usable.unwrap_or(0);
            let per = ((u as f64 * CEILING).floor() as u32).saturating_sub(i.other_connections)
                / i.replicas.max(1);
            advice.push(Advice {
                kind: "pgbouncer",
                text: format!(
                    "{demand} connection(s) ({pool} × {} + {}) {} {u} usable. Put PgBouncer in transaction pooling mode in front (each replica's pool then talks to PgBouncer, which holds a small server pool), or lower connection_limit to {per} per replica, or raise max_connections (a restart, and memory per connection).",
                    i.replicas,
                    i.other_connections,
                    if verdict == Verdict::DoesNotFit {
                        "do not fit in the"
                    } else {
                        "are above 70% of the"
                    }
                ),
            });
        }
        _ => {}
    }
    if matches!(i.load, Load::Vus { .. }) {
        advice.push(Advice {
            kind: "formula",
            text: "VUs × activity ratio × query time assumes each virtual user sends about one query per second; with a measured request rate, --rps gives Little's law directly.".into(),
        });
    }
    Plan {
        inputs: i.clone(),
        steps,
        concurrent,
        raw_pool,
        recommended_pool,
        pool,
        demand,
        max_connections: i.max_connections,
        usable,
        pct_of_max,
        pct_of_usable,
        ceiling_connections,
        verdict,
        useful_active,
        advice,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed() -> Inputs {
        Inputs {
            max_connections: Some(100),
            ..Inputs::default()
        }
    }

    #[test]
    fn reproduces_the_seed() {
        let p = plan(&seed());
        let v: Vec<String> = p.steps.iter().map(|s| num(s.value)).collect();
        assert_eq!(&v[..4], ["12.6", "37.8", "47.8", "50"]);
        assert!((p.concurrent - 12.6).abs() < 1e-9);
        assert!((p.raw_pool - 47.8).abs() < 1e-9);
        assert_eq!(p.recommended_pool, 50);
        assert_eq!(p.pct_of_max.map(num).as_deref(), Some("50"));
        assert_eq!(p.usable, Some(97));
        assert_eq!(p.verdict, Verdict::Fits);
        assert_eq!(
            p.steps[0].formula,
            "120 VUs × 0.7 activity ratio × 0.15 s per query"
        );
        assert_eq!(p.steps[3].formula, "47.8 rounded up to a multiple of 10");
    }

    #[test]
    fn littles_law() {
        let p = plan(&Inputs {
            load: Load::Throughput { rps: 400.0 },
            query_s: 0.025,
            ..seed()
        });
        assert!((p.concurrent - 10.0).abs() < 1e-9);
        assert_eq!(p.steps[0].formula, "400 requests/s × 0.025 s per query");
        assert_eq!(p.recommended_pool, 40);
        assert!(!p.advice.iter().any(|a| a.kind == "formula"));
    }

    #[test]
    fn replicas_do_not_fit_and_pgbouncer_is_advised() {
        let p = plan(&Inputs {
            replicas: 3,
            other_connections: 5,
            ..seed()
        });
        assert_eq!(p.demand, 155);
        assert_eq!(p.verdict, Verdict::DoesNotFit);
        let a = p.advice.iter().find(|a| a.kind == "pgbouncer").unwrap();
        // 70% of 97 = 67, minus 5 others, over 3 replicas = 20.
        assert!(
            a.text.contains("lower connection_limit to 20"),
            "{}",
            a.text
        );
    }

    #[test]
    fn above_ceiling_but_fits() {
        let p = plan(&Inputs {
            pool: Some(70),
            ..seed()
        });
        assert_eq!(p.verdict, Verdict::AboveCeiling, "70 of 97 usable is 72%");
        let p = plan(&Inputs {
            pool: Some(67),
            ..seed()
        });
        assert_eq!(p.verdict, Verdict::Fits, "67 of 97 is 69%");
        assert_eq!(p.ceiling_connections, Some(67));
    }

    #[test]
    fn cores_rule_of_thumb() {
        let p = plan(&Inputs {
            cores: Some(4),
            spindles: 1,
            ..seed()
        });
        assert_eq!(p.useful_active, Some(9));
        assert!(p.advice.iter().any(|a| a.kind == "server_cores"));
        let p = plan(&Inputs {
            cores: Some(32),
            ..seed()
        });
        assert!(!p.advice.iter().any(|a| a.kind == "server_cores"));
    }

    #[test]
    fn a_pool_of_two_for_120_vus_is_too_small() {
        let p = plan(&Inputs {
            pool: Some(2),
            ..seed()
        });
        assert!(p.advice.iter().any(|a| a.kind == "pool_too_small"));
        assert_eq!(p.verdict, Verdict::Fits);
    }

    #[test]
    fn unknown_server_and_zero_load() {
        let p = plan(&Inputs {
            load: Load::Vus {
                vus: 0.0,
                activity_ratio: 0.5,
            },
            ..Inputs::default()
        });
        assert_eq!(p.verdict, Verdict::Unknown);
        assert_eq!(p.recommended_pool, 10, "0 + 10 overhead");
        assert_eq!(p.pct_of_max, None);
    }
}
