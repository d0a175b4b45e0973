//! Pool faults: the backend's connection pool against the planned load and max_connections.

use super::{Diagnosis, Fault};

/// Root cause and fix of a fault of this family; `None` for another family's.
pub(super) fn word(f: &Fault) -> Option<Diagnosis> {
    let d = super::worded;
    match f {
        Fault::PoolTooSmall {
            pool,
            source,
            concurrent,
            recommended,
            load,
        } => d(
            if (*pool as f64) < *concurrent {
                format!(
                    "The pool is too small for the planned load: {source} is {pool}, but {load} keeps about {concurrent:.1} connections busy on average. Requests will queue for a connection and fail with Prisma P2024 after pool_timeout, before PostgreSQL is anywhere near its limit."
                )
            } else {
                format!(
                    "The pool has no room for bursts: {source} is {pool}; pool math for {load} gives {recommended} (× burst, + overhead)."
                )
            },
            format!(
                "Set connection_limit={recommended} in the backend's DATABASE_URL (`chatops pool-calc` shows the arithmetic and prints the URL) and restart the backend."
            ),
        ),
        Fault::PoolExceedsHeadroom {
            pool,
            replicas,
            other,
            demand,
            usable,
            max_connections,
            fits,
        } => d(
            if *fits {
                format!(
                    "The pools take {demand} of {usable} usable connections (max_connections {max_connections} minus reserved): above the 70% ceiling that leaves room for admin sessions, migrations and monitoring ({pool} × {replicas} replica(s) + {other} other)."
                )
            } else {
                format!(
                    "The pools cannot fit: {pool} × {replicas} replica(s) + {other} other = {demand} connections, but PostgreSQL accepts only {usable} (max_connections {max_connections} minus reserved). Under load, new sessions fail with \"too many clients already\" (53300)."
                )
            },
            {
                let per = ((*usable as f64 * crate::poolcalc::CEILING).floor() as u32)
                    .saturating_sub(*other)
                    / (*replicas).max(1);
                format!(
                    "Lower connection_limit to {per} per replica, or put PgBouncer in transaction pooling mode in front of PostgreSQL (every replica then shares one small server pool), or raise max_connections (needs a restart and memory). Remember that every replica or autoscaled pod opens its own pool."
                )
            },
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::diagnose::Fault;
    use crate::diagnose::samples::words;

    #[test]
    fn a_small_pool_gets_the_size_pool_math_gives() {
        let small = |pool: u32| Fault::PoolTooSmall {
            pool,
            source: "connection_limit".into(),
            concurrent: 12.5,
            recommended: 23,
            load: "120 VUs × 0.7 × 150 ms".into(),
        };
        words(
            &small(5),
            &[
                "too small",
                "connection_limit is 5",
                "about 12.5 connections busy",
                "P2024",
            ],
            &["connection_limit=23", "chatops pool-calc"],
        );
        words(
            &small(15),
            &["no room for bursts", "gives 23"],
            &["connection_limit=23"],
        );
    }

    #[test]
    fn pools_over_the_ceiling_get_a_per_replica_limit() {
        let over = |fits: bool| Fault::PoolExceedsHeadroom {
            pool: 50,
            replicas: 2,
            other: 7,
            demand: 107,
            usable: 97,
            max_connections: 100,
            fits,
        };
        // floor(97 × 0.7) = 67, minus 7 other = 60, over 2 replicas = 30.
        words(
            &over(false),
            &[
                "cannot fit",
                "50 × 2 replica(s) + 7 other = 107",
                "only 97",
                "53300",
            ],
            &["connection_limit to 30 per replica", "PgBouncer"],
        );
        words(
            &over(true),
            &["107 of 97 usable", "70% ceiling"],
            &["30 per replica"],
        );
    }
}
