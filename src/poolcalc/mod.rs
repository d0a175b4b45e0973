//! Connection-pool arithmetic: the seed's derivation (VUs × activity ratio ×
//! query seconds, × burst, + overhead, rounded), Little's law from measured
//! throughput, headroom against max_connections, and the advice that goes
//! past the seed (cores × 2 + spindles, PgBouncer). Pure: `pool-calc` and the
//! `pool_headroom` check both render what [`plan`] returns.

use serde::Serialize;

/// The seed's ceiling: never use more than 70% of the usable connections.
pub const CEILING: f64 = 0.70;

/// How the pool size is rounded from the computed demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Rounding {
    /// Up to the next multiple of 10 (the seed: 47.8 → 50).
    #[default]
    Tens,
    /// Up to the next multiple of 5.
    Fives,
    /// Up to the next whole connection.
    Ceil,
}

impl Rounding {
    pub fn apply(self, x: f64) -> u32 {
        let step = match self {
            Rounding::Tens => 10.0,
            Rounding::Fives => 5.0,
            Rounding::Ceil => 1.0,
        };
        // A hair of tolerance so 50.000000001 from float noise stays 50.
        let n = ((x - 1e-9) / step).ceil().max(0.0) * step;
        n.max(1.0) as u32
    }
    pub fn describe(self) -> &'static str {
        match self {
            Rounding::Tens => "rounded up to a multiple of 10",
            Rounding::Fives => "rounded up to a multiple of 5",
            Rounding::Ceil => "rounded up",
        }
    }
}

/// Where the concurrent-connection estimate comes from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Load {
    /// The seed's formula: VUs × activity ratio × query seconds.
    Vus { vus: f64, activity_ratio: f64 },
    /// Little's law: requests per second × query seconds.
    Throughput { rps: f64 },
}

/// Everything the arithmetic needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Inputs {
    pub load: Load,
    /// Average query (or transaction) time, seconds.
    pub query_s: f64,
    /// Burst multiplier (the seed: 3).
    pub burst: f64,
    /// Connections added for health checks and background tasks (the seed: 10).
    pub overhead: f64,
    pub rounding: Rounding,
    /// Processes that each open their own pool (replicas, autoscaled pods).
    pub replicas: u32,
    /// Connections other clients hold: admin, monitoring, other apps.
    pub other_connections: u32,
    /// The server's limit, when known.
    pub max_connections: Option<u32>,
    /// superuser_reserved_connections + reserved_connections.
    pub reserved: u32,
    /// CPU cores of the database server, when known.
    pub cores: Option<u32>,
    /// Effective spindle count (1 for an SSD or a cached data set).
    pub spindles: u32,
    /// Use this pool size instead of the computed one (to judge a configured pool).
    pub pool: Option<u32>,
}

impl Default for Inputs {
    fn default() -> Self {
        Inputs {
            load: Load::Vus {
                vus: 120.0,
                activity_ratio: 0.70,
            },
            query_s: 0.150,
            burst: 3.0,
            overhead: 10.0,
            rounding: Rounding::Tens,
            replicas: 1,
            other_connections: 0,
            max_connections: None,
            reserved: 3,
            cores: None,
            spindles: 1,
            pool: None,
        }
    }
}

/// Bad input: the flag (or field) and why.
#[derive(Debug, Clone, PartialEq)]
pub struct InputError {
    pub field: &'static str,
    pub message: String,
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

fn bad(field: &'static str, message: impl Into<String>) -> InputError {
    InputError {
        field,
        message: message.into(),
    }
}

impl Inputs {
    pub fn validate(&self) -> Result<(), InputError> {
        let finite_nonneg = |field, v: f64| {
            if !v.is_finite() || v < 0.0 {
                Err(bad(field, format!("must be a number ≥ 0, got {v}")))
            } else {
                Ok(())
            }
        };
        match self.load {
            Load::Vus {
                vus,
                activity_ratio,
            } => {
                finite_nonneg("--vus", vus)?;
                finite_nonneg("--activity-ratio", activity_ratio)?;
                if activity_ratio > 1.0 {
                    return Err(bad(
                        "--activity-ratio",
                        format!("is a share of the VUs between 0 and 1, got {activity_ratio}"),
                    ));
                }
            }
            Load::Throughput { rps } => finite_nonneg("--rps", rps)?,
        }
        finite_nonneg("--query-ms", self.query_s)?;
        finite_nonneg("--burst", self.burst)?;
        if self.burst < 1.0 {
            return Err(bad(
                "--burst",
                format!("is a multiplier ≥ 1, got {}", self.burst),
            ));
        }
        finite_nonneg("--overhead", self.overhead)?;
        if self.replicas == 0 {
            return Err(bad("--replicas", "must be at least 1"));
        }
        if let Some(m) = self.max_connections {
            if m == 0 {
                return Err(bad("--max-connections", "must be at least 1"));
            }
            if self.reserved >= m {
                return Err(bad(
                    "--reserved",
                    format!(
                        "{} reserved connection(s) leave none of max_connections {m} usable",
                        self.reserved
                    ),
                ));
            }
        }
        if self.cores == Some(0) {
            return Err(bad("--cores", "must be at least 1"));
        }
        if self.pool == Some(0) {
            return Err(bad("--pool", "must be at least 1"));
        }
        Ok(())
    }
}

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

/// Numbers for humans: up to three decimals, no trailing zeros (12.6, 37.8, 50).
pub fn num(x: f64) -> String {
    let s = format!("{x:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
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
    fn rounding_rules() {
        assert_eq!(Rounding::Tens.apply(47.8), 50);
        assert_eq!(Rounding::Tens.apply(50.0), 50);
        assert_eq!(Rounding::Tens.apply(50.01), 60);
        assert_eq!(Rounding::Fives.apply(47.8), 50);
        assert_eq!(Rounding::Fives.apply(45.2), 50);
        assert_eq!(Rounding::Ceil.apply(47.8), 48);
        assert_eq!(Rounding::Ceil.apply(0.0), 1, "never a pool of 0");
        // Float noise: 0.1 × 3 × … must not push an exact multiple up.
        assert_eq!(Rounding::Tens.apply(40.000000000001), 40);
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

    #[test]
    fn rejects_bad_input_naming_the_flag() {
        let cases: Vec<(Inputs, &str)> = vec![
            (
                Inputs {
                    load: Load::Vus {
                        vus: -1.0,
                        activity_ratio: 0.7,
                    },
                    ..seed()
                },
                "--vus",
            ),
            (
                Inputs {
                    load: Load::Vus {
                        vus: 10.0,
                        activity_ratio: 1.5,
                    },
                    ..seed()
                },
                "--activity-ratio",
            ),
            (
                Inputs {
                    max_connections: Some(0),
                    ..seed()
                },
                "--max-connections",
            ),
            (
                Inputs {
                    reserved: 100,
                    ..seed()
                },
                "--reserved",
            ),
            (
                Inputs {
                    query_s: f64::NAN,
                    ..seed()
                },
                "--query-ms",
            ),
            (
                Inputs {
                    burst: 0.5,
                    ..seed()
                },
                "--burst",
            ),
            (
                Inputs {
                    replicas: 0,
                    ..seed()
                },
                "--replicas",
            ),
            (
                Inputs {
                    load: Load::Throughput { rps: -3.0 },
                    ..seed()
                },
                "--rps",
            ),
        ];
        for (i, flag) in cases {
            assert_eq!(i.validate().unwrap_err().field, flag);
        }
        assert!(seed().validate().is_ok());
    }

    #[test]
    fn formats_numbers() {
        assert_eq!(num(12.6), "12.6");
        assert_eq!(num(37.800000000000004), "37.8");
        assert_eq!(num(50.0), "50");
        assert_eq!(num(51.5464), "51.546");
    }
}
