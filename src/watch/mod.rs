//! The seed's `watch -n 2 "psql … pg_stat_activity …"` as a domain: a
//! [`Sampler`] over one pooled connection labelled `chatops` (which
//! reconnects after a server restart) produces [`Frame`]s, judged against
//! [`Thresholds`]; [`json`], [`prometheus`] and [`human`] render them. The
//! command (`commands/watch_connections.rs`) owns the loop, the terminal and
//! the signals.

pub mod bouncer;
pub mod exporter;
pub mod human;
pub mod json;
pub mod prometheus;
pub mod serve;

use crate::pg::DbUrl;
use crate::pg::activity::{self, Snapshot};
use crate::support::chat_backend::{APP_NAME, CRITICAL_ACTIVE, WARN_ACTIVE};
use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime};

/// Samples kept for the trend line.
pub const TREND_LEN: usize = 30;

/// Thresholds on active sessions (the seed: warn above 40, critical above 48).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    pub warn_active: u32,
    pub critical_active: u32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            warn_active: WARN_ACTIVE,
            critical_active: CRITICAL_ACTIVE,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Ok,
    Warn,
    Critical,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warn => "warn",
            Level::Critical => "critical",
        }
    }
}

/// The level of a snapshot: active sessions against the thresholds, and
/// every usable connection taken is critical.
pub fn level(s: &Snapshot, t: Thresholds) -> Level {
    let active = s.in_state("active");
    if active > t.critical_active || (s.usable() > 0 && s.server_total >= s.usable()) {
        Level::Critical
    } else if active > t.warn_active {
        Level::Warn
    } else {
        Level::Ok
    }
}

/// One sample, or why there is none.
pub enum Frame {
    Up {
        time: SystemTime,
        snap: Snapshot,
        took: Duration,
        /// PgBouncer's pools, when its console is watched (`--pgbouncer`).
        pgbouncer: Option<Box<bouncer::BouncerView>>,
    },
    Down {
        time: SystemTime,
        error: String,
    },
}

impl Frame {
    /// The level of the frame: a frame without a sample is critical.
    pub fn level(&self, t: Thresholds) -> Level {
        match self {
            Frame::Down { .. } => Level::Critical,
            Frame::Up { snap, .. } => level(snap, t),
        }
    }
}

/// Active sessions of the last [`TREND_LEN`] samples, oldest first.
#[derive(Debug, Clone, Default)]
pub struct Trend(VecDeque<u32>);

impl Trend {
    pub fn new() -> Trend {
        Trend(VecDeque::with_capacity(TREND_LEN))
    }

    /// Adds the active sessions of a frame with a sample.
    pub fn push(&mut self, f: &Frame) {
        if let Frame::Up { snap, .. } = f {
            if self.0.len() == TREND_LEN {
                self.0.pop_front();
            }
            self.0.push_back(snap.in_state("active"));
        }
    }

    pub fn values(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().copied()
    }
}

impl FromIterator<u32> for Trend {
    fn from_iter<I: IntoIterator<Item = u32>>(it: I) -> Trend {
        let mut t = Trend::new();
        for v in it {
            if t.0.len() == TREND_LEN {
                t.0.pop_front();
            }
            t.0.push_back(v);
        }
        t
    }
}

/// `2026-11-28T12:00:00.000Z`.
pub fn iso(t: SystemTime) -> String {
    crate::support::time::rfc3339_millis(t)
}

/// Why a sampler could not be built (before any connection attempt).
#[derive(Debug, thiserror::Error)]
pub enum SamplerError {
    #[error(transparent)]
    Tls(crate::pg::tls::TlsSetupError),
    #[error(transparent)]
    Pool(#[from] deadpool_postgres::BuildError),
}

/// Samples pg_stat_activity over one pooled connection, labelled
/// [`APP_NAME`] so that its own session is left out of the counts.
pub struct Sampler {
    pool: deadpool_postgres::Pool,
    database: Option<String>,
    timeout: Duration,
    bouncer: Option<bouncer::BouncerSampler>,
}

impl Sampler {
    /// `database`: whose sessions are counted (None: every database).
    /// `timeout` bounds a connection and a sample.
    pub fn new(
        u: &DbUrl,
        database: Option<String>,
        timeout: Duration,
    ) -> Result<Sampler, SamplerError> {
        let mut cfg = u.config(APP_NAME);
        // The URL's own application_name must not hide us.
        cfg.application_name(APP_NAME);
        cfg.connect_timeout(timeout);
        let tls = crate::pg::tls::connector(u).map_err(SamplerError::Tls)?;
        let mgr = deadpool_postgres::Manager::from_config(
            cfg,
            tls,
            deadpool_postgres::ManagerConfig {
                recycling_method: deadpool_postgres::RecyclingMethod::Fast,
            },
        );
        let pool = deadpool_postgres::Pool::builder(mgr).max_size(1).build()?;
        Ok(Sampler {
            pool,
            database,
            timeout,
            bouncer: None,
        })
    }

    /// Also samples PgBouncer's pools on its admin console at `console`.
    pub fn with_pgbouncer(mut self, console: DbUrl) -> Sampler {
        self.bouncer = Some(bouncer::BouncerSampler::new(console));
        self
    }

    /// The database whose sessions are counted (None: every database).
    pub fn database(&self) -> Option<&str> {
        self.database.as_deref()
    }

    /// One frame: a snapshot, or why there is none (the next call retries).
    pub async fn frame(&self) -> Frame {
        let started = Instant::now();
        let time = SystemTime::now();
        match self.take().await {
            Ok(snap) => {
                let took = started.elapsed();
                let pgbouncer = match &self.bouncer {
                    Some(b) => Some(Box::new(b.view(self.timeout).await)),
                    None => None,
                };
                Frame::Up {
                    time,
                    snap,
                    took,
                    pgbouncer,
                }
            }
            Err(error) => Frame::Down { time, error },
        }
    }

    async fn take(&self) -> Result<Snapshot, String> {
        let work = async {
            let client = self.pool.get().await.map_err(|e| match e {
                deadpool_postgres::PoolError::Backend(e) => crate::pg::error_chain(&e),
                other => other.to_string(),
            })?;
            let stmt = client
                .prepare_cached(activity::QUERY)
                .await
                .map_err(|e| crate::pg::error_chain(&e))?;
            // Other chatops sessions (a second watch, parallel checks) are not the backend's.
            activity::sample_prepared(&client, &stmt, self.database.as_deref())
                .await
                .map(|s| s.without_app(APP_NAME))
                .map_err(|e| e.to_string())
        };
        match tokio::time::timeout(self.timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(format!(
                "no answer within {}",
                crate::support::duration::fmt(self.timeout)
            )),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::pg::activity::{Group, Longest};

    pub(crate) fn snap() -> Snapshot {
        Snapshot {
            max_connections: 100,
            superuser_reserved: 3,
            reserved: 0,
            server_total: 45,
            database: Some("chat_backend_db".into()),
            groups: vec![
                Group {
                    application_name: "prisma".into(),
                    state: "active".into(),
                    count: 41,
                },
                Group {
                    application_name: "we\"ird\\app".into(),
                    state: "idle".into(),
                    count: 4,
                },
            ],
            waiting_lock: 2,
            longest: Some(Longest {
                pid: 7,
                application_name: "prisma".into(),
                state: "active".into(),
                ms: 1500.0,
                query: "UPDATE users SET password = 'hunter2' WHERE id = 1".into(),
            }),
            oldest_idle_in_transaction_ms: None,
        }
    }

    pub(crate) fn up() -> Frame {
        Frame::Up {
            time: SystemTime::UNIX_EPOCH,
            snap: snap(),
            took: Duration::from_millis(2),
            pgbouncer: None,
        }
    }

    pub(crate) const T: Thresholds = Thresholds {
        warn_active: 40,
        critical_active: 48,
    };

    #[test]
    fn the_seed_thresholds_are_the_default() {
        assert_eq!(Thresholds::default(), T);
    }

    #[test]
    fn levels_follow_the_seed_thresholds() {
        let mut s = snap();
        assert_eq!(level(&s, T), Level::Warn, "41 active > 40");
        s.groups[0].count = 40;
        assert_eq!(level(&s, T), Level::Ok);
        s.groups[0].count = 49;
        assert_eq!(level(&s, T), Level::Critical);
        s.groups[0].count = 1;
        s.server_total = 97;
        assert_eq!(level(&s, T), Level::Critical, "every usable slot taken");
        let down = Frame::Down {
            time: SystemTime::UNIX_EPOCH,
            error: "x".into(),
        };
        assert_eq!(down.level(T), Level::Critical);
        assert_eq!(up().level(T), Level::Warn);
    }

    #[test]
    fn trend_keeps_the_last_samples_of_frames_with_a_sample() {
        let mut t = Trend::new();
        for _ in 0..TREND_LEN + 5 {
            t.push(&up());
        }
        t.push(&Frame::Down {
            time: SystemTime::UNIX_EPOCH,
            error: "x".into(),
        });
        assert_eq!(t.values().count(), TREND_LEN);
        assert!(t.values().all(|v| v == 41));
        let t: Trend = (0..100).collect();
        assert_eq!(t.values().next(), Some(100 - TREND_LEN as u32));
    }
}
