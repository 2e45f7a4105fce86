//! Downstream: sinks for tracking requests, the delivery loop that drains the outbox into one,
//! and the write-back of the result to the mailbox.
//!
//! At-least-once inside, exactly-once in effect (R21): an outbox entry leaves only after the
//! sink confirmed it, and every sink deduplicates on the event id — the JSONL file by its tail,
//! the webhook receiver by the `Idempotency-Key` header, Dataverse by looking the email
//! activity up by its message id before creating one.

pub mod dynamics;
pub mod items;
pub mod jsonl;
pub mod policy;
pub mod webhook;
pub mod writeback;

use crate::store::{self, DeadEntry, Failed, OutboxEntry, Store};
use crate::tracking::TrackingRequest;
use jiff::Timestamp;
use policy::{DeliveryError, DeliveryPolicy, Next};
use secrecy::SecretString;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;
use url::Url;
use writeback::Writeback;

/// Why a sink could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Jsonl(#[from] jsonl::JsonlError),
    #[error("sink: {0}")]
    Http(#[from] crate::http::Error),
}

/// Where tracking requests go. One required method, like a mail transport.
pub trait Sink: Send + Sync + 'static {
    /// Delivers one request. The event id is its idempotency key.
    fn deliver(
        &self,
        request: &TrackingRequest,
    ) -> impl Future<Output = Result<(), DeliveryError>> + Send;

    /// Delivers several; sinks that can batch (one fsync for many lines) override it.
    fn deliver_all(
        &self,
        requests: &[&TrackingRequest],
    ) -> impl Future<Output = Vec<Result<(), DeliveryError>>> + Send {
        async move {
            let mut out = Vec::with_capacity(requests.len());
            for r in requests {
                out.push(self.deliver(r).await);
            }
            out
        }
    }
}

/// A request that never got an answer: worth another try.
fn transport_error(sink: &str, e: &reqwest::Error) -> DeliveryError {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "the connection failed"
    };
    let url = e
        .url()
        .map(|u| format!(" {}", u.as_str()))
        .unwrap_or_default();
    DeliveryError::Transient {
        reason: format!("{sink}{url}: {what}"),
        retry_after: None,
    }
}

/// The sink to open, secrets resolved.
#[derive(Debug)]
pub enum SinkSettings {
    Jsonl {
        path: PathBuf,
        rotate_bytes: Option<u64>,
    },
    Webhook {
        url: Url,
        secret: SecretString,
        timeout: Duration,
    },
    Dynamics(dynamics::DynamicsSettings),
}

/// The configured sink.
pub enum AnySink {
    Jsonl(jsonl::JsonlSink),
    Webhook(webhook::WebhookSink),
    Dynamics(dynamics::DynamicsSink),
}

impl AnySink {
    pub fn open(settings: SinkSettings) -> Result<Self, Error> {
        Ok(match settings {
            SinkSettings::Jsonl { path, rotate_bytes } => {
                Self::Jsonl(jsonl::JsonlSink::open(&path, rotate_bytes)?)
            }
            SinkSettings::Webhook {
                url,
                secret,
                timeout,
            } => Self::Webhook(webhook::WebhookSink::new(url, secret, timeout)?),
            SinkSettings::Dynamics(settings) => {
                Self::Dynamics(dynamics::DynamicsSink::new(settings)?)
            }
        })
    }
}

impl Sink for AnySink {
    async fn deliver(&self, request: &TrackingRequest) -> Result<(), DeliveryError> {
        match self {
            Self::Jsonl(s) => s.deliver(request).await,
            Self::Webhook(s) => s.deliver(request).await,
            Self::Dynamics(s) => s.deliver(request).await,
        }
    }

    async fn deliver_all(&self, requests: &[&TrackingRequest]) -> Vec<Result<(), DeliveryError>> {
        match self {
            Self::Jsonl(s) => s.deliver_all(requests).await,
            Self::Webhook(s) => s.deliver_all(requests).await,
            Self::Dynamics(s) => s.deliver_all(requests).await,
        }
    }
}

/// What one drain did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drained {
    pub delivered: usize,
    pub retrying: usize,
    pub undeliverable: usize,
    pub rejected: usize,
}

/// How deliveries are retried and what is written back.
#[derive(Clone, Debug, PartialEq)]
pub struct DeliverySettings {
    pub policy: DeliveryPolicy,
    pub writeback: Writeback,
}

/// Drains the outbox into a sink, recording each item's fate in the store (R30, R32).
pub struct Deliverer<K> {
    pub sink: K,
    pub policy: DeliveryPolicy,
    /// The `Tracked` / `Tracking failed` category write-back (R26, R27).
    pub writeback: Writeback,
    /// Entries handed to the sink at once.
    pub batch: usize,
}

impl<K: Sink> Deliverer<K> {
    pub fn new(sink: K, settings: &DeliverySettings) -> Self {
        Self {
            sink,
            policy: settings.policy,
            writeback: settings.writeback.clone(),
            batch: 256,
        }
    }

    /// Delivers every entry that is due now; returns what happened.
    pub async fn drain<S: Store>(&self, store: &S) -> Result<Drained, store::Error> {
        let mut drained = Drained::default();
        // Every entry handed over leaves the due set: delivered, dead, or retried later.
        loop {
            let due = store.due(Timestamp::now(), self.batch)?;
            if due.is_empty() {
                return Ok(drained);
            }
            let requests: Vec<&TrackingRequest> = due.iter().map(|(_, e)| &e.request).collect();
            let results = self.sink.deliver_all(&requests).await;
            let mut ok = Vec::new();
            for ((seq, entry), result) in due.iter().zip(results) {
                match result {
                    Ok(()) => ok.push(*seq),
                    Err(error) => {
                        self.failed(store, *seq, entry.clone(), error, &mut drained)
                            .await?
                    }
                }
            }
            drained.delivered += ok.len();
            store.delivered(&ok, self.writeback.enabled).await?;
            let metrics = crate::telemetry::metrics();
            metrics.count(
                "foldertrack_tracking_requests_total",
                &[("outcome", "delivered")],
                ok.len() as u64,
            );
            let now = Timestamp::now();
            for (seq, entry) in &due {
                if ok.contains(seq) {
                    let waited = now
                        .duration_since(entry.request.detected_at)
                        .as_secs_f64()
                        .max(0.0);
                    metrics.observe("foldertrack_detected_to_delivered_seconds", &[], waited);
                }
            }
        }
    }

    async fn failed<S: Store>(
        &self,
        store: &S,
        seq: u64,
        mut entry: OutboxEntry,
        error: DeliveryError,
        drained: &mut Drained,
    ) -> Result<(), store::Error> {
        entry.attempts += 1;
        let request = &entry.request;
        let metrics = crate::telemetry::metrics();
        let dead = |state, drained: &mut Drained| {
            let outcome = match state {
                Failed::Undeliverable => {
                    drained.undeliverable += 1;
                    "undeliverable"
                }
                Failed::Rejected => {
                    drained.rejected += 1;
                    "rejected"
                }
            };
            metrics.count(
                "foldertrack_tracking_requests_total",
                &[("outcome", outcome)],
                1,
            );
            tracing::warn!(event = "delivery_failed_for_good", id = %request.id, mailbox = %request.mailbox, state = ?state, attempts = entry.attempts, reason = %error);
            DeadEntry {
                request: request.clone(),
                state,
                reason: error.to_string(),
                attempts: entry.attempts,
                at: Timestamp::now(),
            }
        };
        match self.policy.next(&error, entry.attempts) {
            Next::RetryIn(delay) => {
                drained.retrying += 1;
                metrics.count(
                    "foldertrack_tracking_requests_total",
                    &[("outcome", "retried")],
                    1,
                );
                tracing::info!(event = "delivery_retry", id = %request.id, attempt = entry.attempts, retry_in_secs = delay.as_secs(), reason = %error);
                entry.next_try = Timestamp::now().checked_add(delay).ok();
                entry.last_error = Some(error.to_string());
                store.retry_later(seq, entry).await
            }
            Next::Undeliverable => {
                store
                    .dead_letter(
                        seq,
                        dead(Failed::Undeliverable, drained),
                        self.writeback.enabled,
                    )
                    .await
            }
            Next::Rejected => {
                store
                    .dead_letter(seq, dead(Failed::Rejected, drained), self.writeback.enabled)
                    .await
            }
        }
    }
}
