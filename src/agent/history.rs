//! R41: item history is kept for `store.history_days`; older lines are pruned at start and
//! then hourly, a chunk of records at a time so syncs and delivery go on meanwhile.

use crate::store::Store;
use jiff::{SignedDuration, Timestamp};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const EVERY: Duration = Duration::from_secs(3600);
const CHUNK: usize = 500;

pub async fn prune<S: Store>(store: Arc<S>, days: u32, shutdown: CancellationToken) {
    loop {
        let kept = SignedDuration::from_hours(24 * i64::from(days));
        let cutoff = Timestamp::now().checked_sub(kept).unwrap_or(Timestamp::MIN);
        match prune_all(store.as_ref(), cutoff, &shutdown).await {
            Ok(0) => {}
            Ok(lines) => tracing::info!(event = "history_pruned", lines, days),
            Err(e) => tracing::warn!(event = "history_prune_failed", error = %e),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
    }
}

async fn prune_all<S: Store>(
    store: &S,
    cutoff: Timestamp,
    shutdown: &CancellationToken,
) -> Result<usize, crate::store::Error> {
    let (mut lines, mut start) = (0, Vec::new());
    while !shutdown.is_cancelled() {
        let (n, next) = store.prune_history(cutoff, &start, CHUNK).await?;
        lines += n;
        match next {
            Some(key) => start = key,
            None => break,
        }
        tokio::task::yield_now().await;
    }
    Ok(lines)
}
