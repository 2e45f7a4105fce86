//! R25: while a regarding record is unavailable, no attempt is burnt. A held regarding keeps
//! every entry regarding it in the outbox untried — its mappings show
//! `paused: regarding_unavailable` — and one held entry is probed every
//! [`DeliveryPolicy::probe`](super::policy::DeliveryPolicy::probe); the hold ends when a probe
//! gets through, or when no mapping points at the record any more (a reload re-pointed it):
//! then each held entry follows its message to the record it is linked to now, and one whose
//! message still points at the unavailable record is rejected with the reason.

use super::policy::DeliveryError;
use super::{Deliverer, Drained, Sink};
use crate::store::{self, DeadEntry, Failed, HoldRecord, OutboxEntry, Store};
use jiff::Timestamp;
use std::time::Duration;

/// The hold an unavailable regarding starts, probed first after `probe`; `None` for any other
/// error.
pub fn record(error: &DeliveryError, now: Timestamp, probe: Duration) -> Option<HoldRecord> {
    let DeliveryError::RegardingUnavailable {
        regarding,
        mailbox,
        reason,
    } = error
    else {
        return None;
    };
    tracing::warn!(event = "regarding_held", regarding = %regarding, mailbox = mailbox.as_deref().unwrap_or("*"), reason = %reason);
    Some(HoldRecord {
        regarding: regarding.clone(),
        mailbox: mailbox.clone(),
        reason: reason.clone(),
        since: now,
        next_probe: now.checked_add(probe).unwrap_or(now),
    })
}

/// Ends holds whose record no mapping points at any more, and probes those that are due.
/// Returns what the probes delivered.
pub async fn probe<S: Store, K: Sink>(
    deliverer: &Deliverer<K>,
    store: &S,
) -> Result<Drained, store::Error> {
    let mut drained = Drained::default();
    let now = Timestamp::now();
    for hold in store.holds()? {
        if !still_mapped(store, &hold)? {
            release_repointed(deliverer, store, &hold).await?;
            continue;
        }
        if hold.next_probe > now {
            continue;
        }
        follow_messages(store, &hold).await?;
        let Some((seq, entry)) = store.held(&hold, 1)?.pop() else {
            tracing::info!(event = "regarding_released", regarding = %hold.regarding, why = "nothing waits for it");
            store.update_hold(&hold, false).await?;
            continue;
        };
        let result = deliverer.sink.deliver(&entry.request).await;
        match &result {
            Ok(()) => {
                tracing::info!(event = "regarding_released", regarding = %hold.regarding, why = "a probe got through");
                store.update_hold(&hold, false).await?;
            }
            Err(_) => {
                let next = HoldRecord {
                    next_probe: now.checked_add(deliverer.policy.probe).unwrap_or(now),
                    ..hold
                };
                store.update_hold(&next, true).await?;
            }
        }
        // Still unavailable: the entry stays as it is; anything else is recorded as usual.
        if !matches!(result, Err(DeliveryError::RegardingUnavailable { .. })) {
            drained += deliverer
                .settle(store, vec![(seq, entry)], vec![result])
                .await?;
        }
    }
    Ok(drained)
}

/// Whether a mapping in the hold's scope still points at the held record.
fn still_mapped<S: Store>(store: &S, hold: &HoldRecord) -> Result<bool, store::Error> {
    let mappings = store.all_mappings()?;
    Ok(mappings.iter().any(|m| {
        hold.mailbox
            .as_deref()
            .is_none_or(|mb| mb.eq_ignore_ascii_case(&m.mailbox))
            && m.regarding.as_ref().is_some_and(|r| {
                r.entity == hold.regarding.entity && r.id.eq_ignore_ascii_case(&hold.regarding.id)
            })
    }))
}

/// The record a held entry's message is linked to now, when that is not the held one (the
/// message moved to another mapped folder, or its mapping was re-pointed).
fn relinked_since<S: Store>(
    store: &S,
    hold: &HoldRecord,
    entry: &OutboxEntry,
) -> Result<Option<crate::tracking::Regarding>, store::Error> {
    Ok(store
        .message(&entry.request.id)?
        .and_then(|m| m.regarding)
        .filter(|r| {
            !(r.entity == hold.regarding.entity && r.id.eq_ignore_ascii_case(&hold.regarding.id))
        }))
}

/// Held entries whose message is linked elsewhere now stop waiting and go to that record.
async fn follow_messages<S: Store>(store: &S, hold: &HoldRecord) -> Result<(), store::Error> {
    for (seq, mut entry) in store.held(hold, usize::MAX)? {
        if let Some(regarding) = relinked_since(store, hold, &entry)? {
            entry.request.regarding = Some(regarding);
            entry.next_try = None;
            store.retry_later(&[(seq, entry)]).await?;
        }
    }
    Ok(())
}

/// No mapping points at the held record any more: each held entry follows its message to the
/// record it is linked to now; one still linked to the held record is rejected.
async fn release_repointed<S: Store, K: Sink>(
    deliverer: &Deliverer<K>,
    store: &S,
    hold: &HoldRecord,
) -> Result<(), store::Error> {
    tracing::info!(event = "regarding_released", regarding = %hold.regarding, why = "no mapping points at it any more");
    follow_messages(store, hold).await?;
    store.update_hold(hold, false).await?;
    // What is still held now is linked to the unavailable record and nothing else.
    for (seq, entry) in store.held(hold, usize::MAX)? {
        let dead = DeadEntry {
            reason: format!(
                "{}; no mapping points at it any more — restore it, then `foldertrack retry`",
                hold.reason
            ),
            request: entry.request,
            state: Failed::Rejected,
            attempts: entry.attempts,
            at: Timestamp::now(),
        };
        store
            .dead_letter(seq, dead, deliverer.writeback.enabled)
            .await?;
    }
    Ok(())
}
