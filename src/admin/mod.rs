//! The admin HTTP API (axum, loopback by default): health, readiness, Prometheus metrics, the
//! status of every mailbox and mapping, problem items, track-now and retry. [`server`] serves
//! it from a running agent; [`client`] is the CLI's side of it. Documented in docs/admin-api.md
//! and docs/openapi.yaml.

pub mod client;
pub mod server;

use crate::store::{HoldRecord, MappingRecord, SinkOutage};
use crate::watch::capacity::Capacity;
use crate::watch::supervisor::MailboxStatus;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// Where the API listens and the token that guards changes.
#[derive(Debug)]
pub struct AdminSettings {
    /// `host:port`; port 0 picks a free one.
    pub listen: String,
    /// Required as `Authorization: Bearer …` on POSTs when set.
    pub token: Option<SecretString>,
}

/// A mailbox with its mappings as the store has them; a mapping whose regarding delivery
/// holds (R25) shows as `paused: regarding_unavailable`, the hold with its reason and fix in
/// `held`.
#[derive(Debug, Serialize, Deserialize)]
pub struct MailboxView {
    #[serde(flatten)]
    pub status: MailboxStatus,
    pub mappings: Vec<MappingRecord>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<HoldRecord>,
}

/// The reason a mapping shows while its regarding is held.
pub const REGARDING_UNAVAILABLE: &str = "regarding_unavailable";

/// `/v1/status`.
#[derive(Debug, Serialize, Deserialize)]
pub struct StatusView {
    pub mailboxes: Vec<MailboxView>,
    pub outbox: usize,
    pub undelivered: usize,
    pub pending_write_backs: usize,
    /// Set while the sink does not answer: one state for the whole sink; the requests wait in
    /// the outbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sink_unavailable: Option<SinkOutage>,
    /// Items Exchange could not read yet (`items --state unreadable`).
    #[serde(default)]
    pub unreadable: usize,
    /// Whether the limits can keep the cadence over every configured mailbox.
    #[serde(default)]
    pub capacity: Option<Capacity>,
}
