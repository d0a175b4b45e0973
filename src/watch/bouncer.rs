//! PgBouncer's pools in watch-connections: `SHOW POOLS` on its admin
//! console (`--pgbouncer`), beside pg_stat_activity, in every renderer.

use crate::pg::DbUrl;
use crate::pg::pgbouncer::{self as pgb, Pool};
use std::time::Duration;
use tokio::sync::Mutex;

/// PgBouncer's pools at one sample, or why there are none.
#[derive(Debug, Clone, PartialEq)]
pub struct BouncerView {
    /// Where the console is (`host:port`).
    pub at: String,
    pub pools: Vec<Pool>,
    /// default_pool_size, read once.
    pub pool_size: Option<u32>,
    /// Why this sample has no pools (the console unreachable).
    pub error: Option<String>,
}

/// One console connection, reopened after a failure.
pub struct BouncerSampler {
    url: DbUrl,
    client: Mutex<Option<tokio_postgres::Client>>,
    pool_size: Mutex<Option<u32>>,
}

impl BouncerSampler {
    pub fn new(url: DbUrl) -> BouncerSampler {
        BouncerSampler {
            url,
            client: Mutex::new(None),
            pool_size: Mutex::new(None),
        }
    }

    /// The pools now, within `timeout`.
    pub async fn view(&self, timeout: Duration) -> BouncerView {
        let at = format!("{}:{}", self.url.host, self.url.port);
        let mut guard = self.client.lock().await;
        if guard.is_none() {
            match pgb::connect_console(&self.url, timeout).await {
                Ok(c) => *guard = Some(c),
                Err(e) => {
                    return BouncerView {
                        at,
                        pools: Vec::new(),
                        pool_size: None,
                        error: Some(e.to_string()),
                    };
                }
            }
        }
        let Some(c) = guard.as_ref() else {
            return BouncerView {
                at,
                pools: Vec::new(),
                pool_size: None,
                error: Some("no console connection".into()),
            };
        };
        let mut size = self.pool_size.lock().await;
        if size.is_none()
            && let Ok(Ok(rows)) = tokio::time::timeout(timeout, pgb::show(c, "CONFIG")).await
        {
            *size = pgb::parse_config(&rows)
                .get("default_pool_size")
                .and_then(|v| v.parse().ok());
        }
        match tokio::time::timeout(timeout, pgb::pools(c)).await {
            Ok(Ok(pools)) => BouncerView {
                at,
                pools,
                pool_size: *size,
                error: None,
            },
            other => {
                *guard = None;
                BouncerView {
                    at,
                    pools: Vec::new(),
                    pool_size: *size,
                    error: Some(match other {
                        Ok(Err(e)) => e.to_string(),
                        _ => "SHOW POOLS timed out".into(),
                    }),
                }
            }
        }
    }
}
