//! sled never gives back the space of removed and overwritten entries by itself (delivered
//! outbox entries, rewritten records): every few minutes the agent asks the store whether a
//! reclaim is worth its pause, and the store rewrites itself while the agent runs.

use crate::store::{ReclaimPolicy, Store};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// At most one reclaim per check, so commits pause at most this often.
const EVERY: Duration = Duration::from_secs(300);

pub async fn reclaim<S: Store>(store: Arc<S>, shutdown: CancellationToken) {
    let policy = ReclaimPolicy::default();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
        // On a blocking thread: the agent's other loops share this task's worker.
        let checked = store.clone();
        let done = tokio::task::spawn_blocking(move || checked.reclaim_space(&policy)).await;
        match done {
            Ok(Ok(Some(r))) => {
                tracing::info!(
                    event = "store_reclaimed",
                    before = r.before,
                    after = r.after,
                    paused_ms = r.paused.as_millis() as u64
                );
                let metrics = crate::telemetry::metrics();
                metrics.count("foldertrack_store_reclaims_total", &[], 1);
                let freed = r.before.saturating_sub(r.after);
                metrics.count("foldertrack_store_reclaimed_bytes_total", &[], freed);
                let paused = r.paused.as_secs_f64();
                metrics.observe("foldertrack_store_reclaim_pause_seconds", &[], paused);
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => tracing::warn!(event = "store_reclaim_failed", error = %e),
            Err(e) => tracing::warn!(event = "store_reclaim_failed", error = %e),
        }
    }
}
