//! The outbox drain of a running agent: deliver what is due, then write the results back to
//! the mailboxes; again whenever a sync put something into the outbox, and every second for
//! retries that came due.

use crate::deliver::writeback::{self, write_back};
use crate::deliver::{Deliverer, Drained, Sink};
use crate::feed::FolderFeed;
use crate::store::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Delivers what is due in the outbox, then writes the results back to the mailboxes.
pub async fn deliver<F: FolderFeed, S: Store, K: Sink>(
    deliverer: &Deliverer<K>,
    feed: &F,
    store: &S,
) -> Result<Drained, writeback::Error> {
    let drained = deliverer.drain(store).await?;
    if deliverer.writeback.enabled {
        write_back(feed, store, &deliverer.writeback).await?;
    }
    Ok(drained)
}

/// Drains the outbox until `shutdown`, woken by `outbox` or each second.
pub async fn run<F: FolderFeed, S: Store, K: Sink>(
    deliverer: Deliverer<K>,
    feed: Arc<F>,
    store: Arc<S>,
    outbox: Arc<Notify>,
    shutdown: CancellationToken,
) {
    loop {
        if let Err(e) = deliver(&deliverer, feed.as_ref(), store.as_ref()).await {
            tracing::error!(event = "delivery_stopped", error = %e);
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = outbox.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}
