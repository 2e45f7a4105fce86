//! Delivery and write-back of a running agent, as two tasks that never wait for each other
//! (R33): the drain delivers what is due whenever a sync put something into the outbox (and
//! every second for retries that came due); the write-back writes the categories of every
//! mailbox with pending marks, each mailbox in a task of its own, so one slow or throttled
//! mailbox holds up neither delivery nor the other mailboxes' marks.

use crate::deliver::writeback::{self, MarkPolicy, Marked, Writeback};
use crate::deliver::{Deliverer, Drained, Sink};
use crate::feed::FolderFeed;
use crate::store::{self, Store};
use jiff::Timestamp;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::task::{Id, JoinSet};
use tokio_util::sync::CancellationToken;

/// Mailboxes whose marks are written at once; each still takes one call at a time, and the
/// client's gate keeps every call within the configured limits.
const MAILBOXES_AT_ONCE: usize = 4;

/// Delivers what is due in the outbox, then writes the results back to the mailboxes (one
/// round of each, for `once`).
pub async fn deliver<F: FolderFeed, S: Store, K: Sink>(
    deliverer: &Deliverer<K>,
    feed: &F,
    store: &S,
) -> Result<Drained, store::Error> {
    let drained = deliverer.drain(store).await?;
    if deliverer.writeback.enabled {
        writeback::write_back(feed, store, &deliverer.writeback, &deliverer.marks).await?;
    }
    Ok(drained)
}

/// How the delivery tasks hear of work and tell of progress.
#[derive(Clone)]
pub struct Signals {
    /// Notified when something was put into the outbox (a sync, a retry).
    pub outbox: Arc<Notify>,
    /// Counts the drains that changed the outbox; track-now waits on it.
    pub delivered: Arc<watch::Sender<u64>>,
}

/// Runs delivery and write-back side by side until `shutdown`.
pub async fn run<F: FolderFeed, S: Store, K: Sink>(
    deliverer: Deliverer<K>,
    feed: Arc<F>,
    store: Arc<S>,
    signals: Signals,
    shutdown: CancellationToken,
) {
    let marks = Arc::new(Notify::new());
    let writing = WriteBack {
        feed,
        store: store.clone(),
        names: deliverer.writeback.clone(),
        policy: deliverer.marks,
        due: marks.clone(),
    };
    let write = async {
        if writing.names.enabled {
            writing.run(shutdown.clone()).await;
        }
    };
    tokio::join!(
        drain(&deliverer, store.as_ref(), &signals, &marks, &shutdown),
        write
    );
}

/// Drains the outbox until `shutdown`, woken by `signals.outbox` or each second.
async fn drain<S: Store, K: Sink>(
    deliverer: &Deliverer<K>,
    store: &S,
    signals: &Signals,
    marks: &Notify,
    shutdown: &CancellationToken,
) {
    loop {
        match deliverer.drain(store).await {
            Ok(drained) if drained != Drained::default() => {
                signals.delivered.send_modify(|n| *n += 1);
                marks.notify_one();
            }
            Ok(_) => {}
            Err(e) => tracing::error!(event = "delivery_stopped", error = %e),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = signals.outbox.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// The write-back task: every mailbox with due marks gets a task of its own, at most
/// [`MAILBOXES_AT_ONCE`] at a time, and never two for one mailbox.
struct WriteBack<F, S> {
    feed: Arc<F>,
    store: Arc<S>,
    names: Writeback,
    policy: MarkPolicy,
    /// Notified when delivery queued marks.
    due: Arc<Notify>,
}

impl<F: FolderFeed, S: Store> WriteBack<F, S> {
    async fn run(&self, shutdown: CancellationToken) {
        let mut running: JoinSet<Result<Marked, store::Error>> = JoinSet::new();
        let mut busy: HashMap<Id, String> = HashMap::new();
        loop {
            if let Err(e) = self.start_due(&mut running, &mut busy) {
                tracing::error!(event = "writeback_stopped", error = %e);
            }
            tokio::select! {
                _ = shutdown.cancelled() => {
                    running.shutdown().await;
                    return;
                }
                _ = self.due.notified() => {}
                Some(done) = running.join_next_with_id(), if !running.is_empty() => {
                    let (id, result) = match done {
                        Ok((id, result)) => (id, result.map(drop).map_err(|e| e.to_string())),
                        Err(e) => (e.id(), Err(e.to_string())),
                    };
                    let mailbox = busy.remove(&id).unwrap_or_default();
                    if let Err(e) = result {
                        tracing::error!(event = "writeback_stopped", mailbox = %mailbox, error = %e);
                    }
                }
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// Starts a task for each mailbox with due marks that has none running.
    fn start_due(
        &self,
        running: &mut JoinSet<Result<Marked, store::Error>>,
        busy: &mut HashMap<Id, String>,
    ) -> Result<(), store::Error> {
        if busy.len() >= MAILBOXES_AT_ONCE {
            return Ok(());
        }
        for (mailbox, marks) in writeback::due_by_mailbox(self.store.as_ref(), Timestamp::now())? {
            if busy.len() >= MAILBOXES_AT_ONCE {
                break;
            }
            if busy.values().any(|m| *m == mailbox) {
                continue;
            }
            let (feed, store) = (self.feed.clone(), self.store.clone());
            let (names, policy, address) = (self.names.clone(), self.policy, mailbox.clone());
            let task = running.spawn(async move {
                writeback::write_mailbox(
                    feed.as_ref(),
                    store.as_ref(),
                    &names,
                    &policy,
                    &address,
                    &marks,
                )
                .await
            });
            busy.insert(task.id(), mailbox);
        }
        Ok(())
    }
}
