//! The outbox drain (R21, R30, R32, R33): what is due goes to the sink in batches, and each
//! request's fate is recorded in the store. A sink that does not answer at all is one outage
//! ("sink unavailable since …"), not a failure per request: while it lasts, one request at a
//! time probes it on a back-off of up to an hour, nothing else is tried, nothing is given up
//! and no mail is marked as failed; the first answer ends it and the outbox drains at once.

use super::Sink;
use super::policy::{DeliveryError, DeliveryPolicy, Failures, Next};
use super::writeback::{MarkPolicy, Writeback};
use crate::store::{self, DeadEntry, Failed, HoldRecord, OutboxEntry, SinkOutage, Store};
use crate::tracking::TrackingRequest;
use jiff::Timestamp;

/// What one drain did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drained {
    pub delivered: usize,
    pub retrying: usize,
    pub undeliverable: usize,
    pub rejected: usize,
    /// Attempts that found the sink unavailable (the requests wait, unharmed).
    pub held: usize,
    /// Requests the sink asked to wait (service protection; no attempt counted).
    pub throttled: usize,
    /// Requests waiting for an unavailable regarding record (R25; no attempt counted).
    pub regarding_held: usize,
}

impl std::ops::AddAssign for Drained {
    fn add_assign(&mut self, o: Self) {
        self.delivered += o.delivered;
        self.retrying += o.retrying;
        self.undeliverable += o.undeliverable;
        self.rejected += o.rejected;
        self.held += o.held;
        self.throttled += o.throttled;
        self.regarding_held += o.regarding_held;
    }
}

/// Due entries a probe chooses from: the one tried least often goes, so a request the sink
/// cannot take does not pass for an outage of the whole sink.
const PROBE_CHOICE: usize = 64;

/// Drains the outbox into a sink, recording each item's fate in the store (R30, R32).
pub struct Deliverer<K> {
    pub sink: K,
    pub policy: DeliveryPolicy,
    /// The `Tracked` / `Tracking failed` category write-back (R26, R27).
    pub writeback: Writeback,
    /// How write-backs are batched and retried (R28).
    pub marks: MarkPolicy,
    /// Entries handed to the sink at once.
    pub batch: usize,
}

impl<K: Sink> Deliverer<K> {
    pub fn new(sink: K, settings: &super::DeliverySettings) -> Self {
        Self {
            sink,
            policy: settings.policy,
            writeback: settings.writeback.clone(),
            marks: settings.marks,
            batch: 256,
        }
    }

    /// Delivers every entry that is due now (or, while the sink is down, sends the probe when
    /// it is due); returns what happened.
    pub async fn drain<S: Store>(&self, store: &S) -> Result<Drained, store::Error> {
        let mut drained = super::holds::probe(self, store).await?;
        // Due as of the start: an entry failed in this drain is retried by a later one, so
        // each entry is handed over at most once and the drain ends however slow the sink.
        let start = Timestamp::now();
        // Every entry handed over leaves the due set: delivered, dead, retried after `start`,
        // or held by an outage that ends the drain.
        loop {
            let now = Timestamp::now();
            let outage = store.sink_outage()?;
            if outage.as_ref().is_some_and(|o| o.next_probe > now) {
                return Ok(drained);
            }
            let due = match outage {
                Some(_) => probe(store.due(start, PROBE_CHOICE)?),
                None => store.due(start, self.batch)?,
            };
            if due.is_empty() {
                return Ok(drained);
            }
            let requests: Vec<&TrackingRequest> = due.iter().map(|(_, e)| &e.request).collect();
            let results = self.sink.deliver_all(&requests).await;
            // Failures of requests that failed before while the sink took others are theirs;
            // the sink is down when it fails a fresh one too, or a probe.
            let fresh = outage.is_some() || due.iter().any(|(_, e)| e.attempts == 0);
            if let Some(error) = unavailable(&results).filter(|_| fresh) {
                drained.held += due.len();
                self.sink_down(store, outage, due, error).await?;
                return Ok(drained);
            }
            if let Some(o) = outage {
                let down = now.duration_since(o.since).as_secs_f64().max(0.0) as u64;
                tracing::info!(
                    event = "sink_available",
                    down_secs = down,
                    probes = o.probes
                );
                store.set_sink_outage(None).await?;
            }
            drained += self.settle(store, due, results).await?;
        }
    }

    /// Records what the sink said about each entry of a round it answered.
    pub(super) async fn settle<S: Store>(
        &self,
        store: &S,
        due: Vec<(u64, OutboxEntry)>,
        results: Vec<Result<(), DeliveryError>>,
    ) -> Result<Drained, store::Error> {
        let mut drained = Drained::default();
        let notes = self.sink.take_notes();
        if !notes.is_empty() {
            store.note_history(&notes).await?;
        }
        let mut ok = Vec::new();
        let mut retries = Vec::new();
        let mut waits = Vec::new();
        let now = Timestamp::now();
        let metrics = crate::telemetry::metrics();
        for ((seq, entry), result) in due.into_iter().zip(results) {
            match result {
                Ok(()) => {
                    let waited = now.duration_since(entry.request.detected_at).as_secs_f64();
                    metrics.observe(
                        "foldertrack_detected_to_delivered_seconds",
                        &[],
                        waited.max(0.0),
                    );
                    ok.push(seq);
                }
                Err(error) => match self.failed(entry, &error, now) {
                    Fate::Later(later) => retries.push((seq, later)),
                    Fate::Wait(later) => {
                        drained.throttled += 1;
                        waits.push((seq, later));
                    }
                    Fate::Hold(entry, hold) => {
                        drained.regarding_held += 1;
                        store.hold(seq, entry, hold).await?
                    }
                    Fate::Dead(dead) => {
                        match dead.state {
                            Failed::Undeliverable => drained.undeliverable += 1,
                            Failed::Rejected => drained.rejected += 1,
                        }
                        store.dead_letter(seq, dead, self.writeback.enabled).await?
                    }
                },
            }
        }
        drained.delivered = ok.len();
        drained.retrying = retries.len();
        store.delivered(&ok, self.writeback.enabled).await?;
        store.retry_later(&retries).await?;
        store.retry_later(&waits).await?;
        for (outcome, n) in [
            ("delivered", drained.delivered),
            ("retried", drained.retrying),
            ("undeliverable", drained.undeliverable),
            ("rejected", drained.rejected),
        ] {
            if n > 0 {
                metrics.count(
                    "foldertrack_tracking_requests_total",
                    &[("outcome", outcome)],
                    n as u64,
                );
            }
        }
        Ok(drained)
    }

    /// One entry failed while the sink took others: the entry to keep for a later try, or
    /// the dead letter it becomes.
    fn failed(&self, mut entry: OutboxEntry, error: &DeliveryError, now: Timestamp) -> Fate {
        if error.is_attempt() {
            entry.attempts += 1;
        }
        match error {
            DeliveryError::Refused { .. } => entry.refused += 1,
            DeliveryError::Transient { .. } => {
                entry.failing_since.get_or_insert(now);
            }
            DeliveryError::Rejected { .. }
            | DeliveryError::Throttled { .. }
            | DeliveryError::RegardingUnavailable { .. } => {}
        }
        let failing_for = entry
            .failing_since
            .map(|t| now.duration_since(t).unsigned_abs())
            .unwrap_or_default();
        let failures = Failures {
            attempts: entry.attempts,
            refused: entry.refused,
            failing_for,
        };
        let request = &entry.request;
        let state = match self.policy.next(error, failures, fastrand::f64()) {
            Next::RetryIn(delay) => {
                tracing::info!(event = "delivery_retry", id = %request.id, attempt = entry.attempts, retry_in_secs = delay.as_secs(), reason = %error);
                entry.next_try = now.checked_add(delay).ok();
                entry.last_error = Some(error.to_string());
                return Fate::Later(entry);
            }
            Next::Wait(delay) => {
                tracing::info!(event = "delivery_waiting", id = %request.id, wait_secs = delay.as_secs(), reason = %error);
                entry.next_try = now.checked_add(delay).ok();
                entry.last_error = Some(error.to_string());
                return Fate::Wait(entry);
            }
            Next::Hold => match super::holds::record(error, now, self.policy.probe) {
                Some(hold) => {
                    entry.last_error = Some(error.to_string());
                    return Fate::Hold(entry, hold);
                }
                None => Failed::Rejected,
            },
            Next::Undeliverable => Failed::Undeliverable,
            Next::Rejected => Failed::Rejected,
        };
        tracing::warn!(event = "delivery_failed_for_good", id = %request.id, mailbox = %request.mailbox, state = ?state, attempts = entry.attempts, reason = %error);
        Fate::Dead(DeadEntry {
            request: entry.request,
            state,
            reason: error.to_string(),
            attempts: entry.attempts,
            at: now,
        })
    }

    /// No answer from the sink: the outage begins or goes on. The entries tried keep their
    /// place and stay due for the moment it answers again; only the next probe is scheduled.
    async fn sink_down<S: Store>(
        &self,
        store: &S,
        outage: Option<SinkOutage>,
        tried: Vec<(u64, OutboxEntry)>,
        error: &DeliveryError,
    ) -> Result<(), store::Error> {
        let now = Timestamp::now();
        let reason = error.to_string();
        let probes = outage.as_ref().map_or(0, |o| o.probes + 1);
        let hint = match error {
            DeliveryError::Transient { retry_after, .. } => *retry_after,
            _ => None,
        };
        let wait = self
            .policy
            .backoff(probes + 1, fastrand::f64())
            .max(hint.unwrap_or_default().min(self.policy.cap));
        if outage.is_none() {
            tracing::warn!(event = "sink_unavailable", reason = %reason, next_probe_in_secs = wait.as_secs(), "requests wait in the outbox and are delivered when the sink answers again");
        } else {
            tracing::info!(event = "sink_probe_failed", probes, reason = %reason, next_probe_in_secs = wait.as_secs());
        }
        let next = SinkOutage {
            since: outage.map_or(now, |o| o.since),
            reason: reason.clone(),
            probes,
            next_probe: now.checked_add(wait).unwrap_or(now),
        };
        let tried: Vec<(u64, OutboxEntry)> = tried
            .into_iter()
            .map(|(seq, mut e)| {
                e.attempts += 1;
                e.last_error = Some(reason.clone());
                (seq, e)
            })
            .collect();
        store.retry_later(&tried).await?;
        store.set_sink_outage(Some(next)).await
    }
}

/// What becomes of an entry that failed.
enum Fate {
    Later(OutboxEntry),
    /// Later, with no attempt counted (the sink asked to wait).
    Wait(OutboxEntry),
    /// Held with its regarding (R25).
    Hold(OutboxEntry, HoldRecord),
    Dead(DeadEntry),
}

/// The entry to probe with: the one tried least often, the oldest among equals.
fn probe(mut due: Vec<(u64, OutboxEntry)>) -> Vec<(u64, OutboxEntry)> {
    let pick = due
        .iter()
        .enumerate()
        .min_by_key(|(i, (_, e))| (e.attempts, *i))
        .map(|(i, _)| i);
    match pick {
        Some(i) => vec![due.swap_remove(i)],
        None => Vec::new(),
    }
}

/// The error that shows the sink as a whole is unavailable: nothing went through and every
/// attempt failed transiently.
fn unavailable(results: &[Result<(), DeliveryError>]) -> Option<&DeliveryError> {
    let mut first = None;
    for r in results {
        match r {
            Err(e) if e.is_transient() => {
                first.get_or_insert(e);
            }
            _ => return None,
        }
    }
    first
}
