//! Downstream: sinks for tracking requests, the drain that delivers the outbox into one
//! ([`drain`]), and the write-back of the result to the mailbox ([`writeback`]).
//!
//! At-least-once inside, exactly-once in effect (R21): an outbox entry leaves only after the
//! sink confirmed it, and every sink deduplicates on the event id — the JSONL file by its tail,
//! the webhook receiver by the `Idempotency-Key` header, Dataverse by looking the email
//! activity up by its message id before creating one.

pub mod drain;
pub mod dynamics;
pub mod explain;
pub mod holds;
pub mod items;
pub mod jsonl;
pub mod policy;
pub mod webhook;
pub mod writeback;

pub use drain::{Deliverer, Drained};

use crate::tracking::TrackingRequest;
use policy::{DeliveryError, DeliveryPolicy};
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

    /// Lines for delivered requests' histories — `(request id, what)`, e.g. a column the sink
    /// had to leave out — taken by the deliverer after each delivery.
    fn take_notes(&self) -> Vec<(String, String)> {
        Vec::new()
    }
}

/// A request that never got an answer: worth another try.
fn transport_error(sink: &str, e: &reqwest::Error) -> DeliveryError {
    let what = crate::http::failure_words(e);
    let url = e
        .url()
        .map(|u| format!(" {}", crate::http::redact(u)))
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
    Dynamics(Box<dynamics::DynamicsSink>),
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
                Self::Dynamics(Box::new(dynamics::DynamicsSink::new(settings)?))
            }
        })
    }
}

impl AnySink {
    /// Lets the sink read from the mailboxes through `feed` (the Dynamics sink's attachments,
    /// when it copies them).
    pub fn with_feed<F: crate::feed::FolderFeed>(self, feed: std::sync::Arc<F>) -> Self {
        match self {
            Self::Dynamics(s) => Self::Dynamics(Box::new((*s).with_attachments(feed))),
            other => other,
        }
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

    fn take_notes(&self) -> Vec<(String, String)> {
        match self {
            Self::Dynamics(s) => s.take_notes(),
            _ => Vec::new(),
        }
    }
}

/// How deliveries are retried and what is written back.
#[derive(Clone, Debug, PartialEq)]
pub struct DeliverySettings {
    pub policy: DeliveryPolicy,
    pub writeback: Writeback,
    /// How write-backs are retried.
    pub marks: writeback::MarkPolicy,
}
