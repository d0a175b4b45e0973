//! Connection-pool arithmetic: the seed's derivation (VUs × activity ratio ×
//! query seconds, × burst, + overhead, rounded), Little's law from measured
//! throughput, headroom against max_connections, and the advice that goes
//! past the seed (cores × 2 + spindles, PgBouncer). Pure: `pool-calc` and the
//! `pool_headroom` check both render what [`plan`] returns.

pub mod bouncer;
mod plan;
pub mod render;

pub use plan::{Advice, Plan, Step, Verdict, plan};

use serde::Serialize;

/// The seed's ceiling: never use more than 70% of the usable connections.
pub const CEILING: f64 = 0.70;

/// The seed's load shape, the default of every pool computation (pool-calc,
/// and the `pool_headroom` and `pgbouncer` checks' parameters).
pub mod seed {
    /// 120 virtual users.
    pub fn vus() -> f64 {
        120.0
    }
    /// 70% of them waiting on a query at any moment.
    pub fn activity_ratio() -> f64 {
        0.70
    }
    /// 150 ms a query.
    pub fn query_ms() -> f64 {
        150.0
    }
    /// Bursts three times the mean.
    pub fn burst() -> f64 {
        3.0
    }
    /// 10 connections for health checks and background tasks.
    pub fn overhead() -> f64 {
        10.0
    }
}

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
                vus: seed::vus(),
                activity_ratio: seed::activity_ratio(),
            },
            query_s: seed::query_ms() / 1000.0,
            burst: seed::burst(),
            overhead: seed::overhead(),
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
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InputError {
    pub field: &'static str,
    pub message: String,
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

/// Numbers for humans: up to three decimals, no trailing zeros (12.6, 37.8, 50).
pub fn num(x: f64) -> String {
    let s = format!("{x:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
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
