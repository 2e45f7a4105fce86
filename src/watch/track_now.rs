//! The answer to track-now (R38), said so that a helpdesk can act on it: `done` only once every
//! request the mailbox has in the outbox — the ones this sync found and any found before — is
//! in the sink. After the sync the caller waits for delivery a few seconds at most; whatever
//! is still not in the sink then is listed with why (queued, retried after an error, the sink
//! unavailable since …, or given up) instead of a `done` that is not true yet.

use crate::store::{self, DeadEntry, Failed, OutboxEntry, SinkOutage, Store, Whereabouts};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio::sync::watch;

/// The longest track-now waits for delivery after its sync.
pub const DELIVERY_WAIT: Duration = Duration::from_secs(5);

/// The answer to a track-now request (R38).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum SyncNow {
    /// The sync ran; it found `tracked` new requests, and every request of this mailbox is in
    /// the sink.
    Done { tracked: usize },
    /// The sync ran, but some requests of this mailbox are not in the sink yet.
    Waiting {
        tracked: usize,
        /// Requests of this mailbox that reached the sink while the caller waited.
        delivered: usize,
        waiting: Vec<Pending>,
        /// Set while the sink does not answer at all.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sink_unavailable: Option<SinkOutage>,
        /// All of the above in a sentence.
        message: String,
    },
    /// The sync could not run or failed; the next regular sync picks the item up.
    Fallback {
        reason: String,
        next_sync: Option<Timestamp>,
    },
    /// No such mailbox is configured.
    UnknownMailbox,
}

/// A request that is not in the sink yet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub id: String,
    pub event_id: String,
    pub folder: String,
    pub state: PendingState,
    /// The last error, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When it is tried again, when that is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_try: Option<Timestamp>,
}

/// Why a request is not in the sink yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PendingState {
    /// In line for the sink, not failed yet.
    Queued,
    /// Failed, tried again at `next_try`.
    Retrying,
    /// The sink does not answer; delivered when it does.
    SinkUnavailable,
    /// Given up after its attempts (`foldertrack retry` re-queues it).
    Undeliverable,
    /// Refused for good by the sink.
    Rejected,
}

/// Waits up to [`DELIVERY_WAIT`] for the mailbox's requests in the outbox to reach the sink;
/// `delivered` ticks whenever a drain changed the outbox.
pub async fn settle<S: Store>(
    store: &S,
    delivered: &watch::Sender<u64>,
    mailbox: &str,
    tracked: usize,
) -> Result<SyncNow, store::Error> {
    let seqs: Vec<u64> = store.outbox_of(mailbox)?.iter().map(|(s, _)| *s).collect();
    let mut ticks = delivered.subscribe();
    let deadline = tokio::time::Instant::now() + DELIVERY_WAIT;
    loop {
        let mut waiting = Vec::new();
        for seq in &seqs {
            match store.whereabouts(*seq)? {
                Whereabouts::Delivered => {}
                Whereabouts::Outbox(e) => waiting.push(queued(e)),
                Whereabouts::Dead(d) => waiting.push(dead(d)),
            }
        }
        if waiting.is_empty() {
            return Ok(SyncNow::Done { tracked });
        }
        let outage = store.sink_outage()?;
        let soon = |p: &Pending| match p.state {
            PendingState::Queued => true,
            PendingState::Retrying => p
                .next_try
                .is_none_or(|t| t <= Timestamp::now().checked_add(DELIVERY_WAIT).unwrap_or(t)),
            _ => false,
        };
        let now = tokio::time::Instant::now();
        if now >= deadline || outage.is_some() || !waiting.iter().any(soon) {
            return Ok(answer(tracked, seqs.len(), waiting, outage));
        }
        // A drain that changed the outbox wakes the caller; the poll covers the rest.
        let poll = (deadline - now).min(Duration::from_millis(250));
        let _ = tokio::time::timeout(poll, ticks.changed()).await;
    }
}

fn queued(e: OutboxEntry) -> Pending {
    let state = match e.attempts {
        0 => PendingState::Queued,
        _ => PendingState::Retrying,
    };
    Pending {
        id: e.request.id,
        event_id: e.request.event_id,
        folder: e.request.folder.path,
        state,
        reason: e.last_error,
        next_try: e.next_try,
    }
}

fn dead(d: DeadEntry) -> Pending {
    Pending {
        id: d.request.id,
        event_id: d.request.event_id,
        folder: d.request.folder.path,
        state: match d.state {
            Failed::Undeliverable => PendingState::Undeliverable,
            Failed::Rejected => PendingState::Rejected,
        },
        reason: Some(d.reason),
        next_try: None,
    }
}

/// The `Waiting` answer, with its sentence.
fn answer(
    tracked: usize,
    asked: usize,
    mut waiting: Vec<Pending>,
    outage: Option<SinkOutage>,
) -> SyncNow {
    if outage.is_some() {
        for p in &mut waiting {
            if matches!(p.state, PendingState::Queued | PendingState::Retrying) {
                p.state = PendingState::SinkUnavailable;
            }
        }
    }
    let count = |state| waiting.iter().filter(|p| p.state == state).count();
    let mut parts = Vec::new();
    if let Some(o) = &outage {
        parts.push(format!(
            "{} wait because the sink is unavailable since {} ({}); they are delivered when it answers again (next try {})",
            count(PendingState::SinkUnavailable),
            o.since.round(jiff::Unit::Second).unwrap_or(o.since),
            o.reason,
            o.next_probe.round(jiff::Unit::Second).unwrap_or(o.next_probe),
        ));
    }
    let retrying: Vec<&Pending> = waiting
        .iter()
        .filter(|p| p.state == PendingState::Retrying)
        .collect();
    if let Some(first) = retrying.first() {
        parts.push(format!(
            "{} failed and will be retried (last error: {})",
            retrying.len(),
            first.reason.as_deref().unwrap_or("unknown"),
        ));
    }
    let queued = count(PendingState::Queued);
    if queued > 0 {
        parts.push(format!(
            "{queued} are still in line for the sink and go out shortly"
        ));
    }
    let failed = count(PendingState::Undeliverable) + count(PendingState::Rejected);
    if failed > 0 {
        parts.push(format!(
            "{failed} could not be delivered (see `foldertrack items`; `foldertrack retry` sends them again)"
        ));
    }
    let message = format!(
        "synced; {} of {} tracking request(s) of this mailbox are not in the sink yet: {}",
        waiting.len(),
        asked,
        parts.join("; ")
    );
    SyncNow::Waiting {
        tracked,
        delivered: asked - waiting.len(),
        waiting,
        sink_unavailable: outage,
        message,
    }
}
