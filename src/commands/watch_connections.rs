//! `chatops watch-connections`: live pg_stat_activity against thresholds.

use super::CommandResult;
use super::cli::WatchArgs;

pub async fn run(a: &WatchArgs, color: bool) -> CommandResult {
    super::legacy(crate::watch::run(a, color).await)
}
