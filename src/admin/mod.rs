//! The admin HTTP API (axum, loopback by default): health, readiness, Prometheus metrics, the
//! status of every mailbox and mapping, problem items, track-now and retry. [`server`] serves
//! it from a running agent; [`client`] is the CLI's side of it. Documented in docs/admin-api.md
//! and docs/openapi.yaml.

pub mod client;
pub mod console;
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
    /// Required as `Authorization: Bearer …` on every `/v1/` route when set.
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
    /// This agent's member number, and how many mailboxes it owns and leaves to others.
    #[serde(default)]
    pub cluster: Option<crate::watch::cluster::ClusterView>,
}

/// `/v1/config` and the console's Config page: the settings in force (secrets are only ever
/// referenced by variable or file name, and those names are all it shows) and the results of
/// the checks `check-config --offline` runs, taken when the config was loaded.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ConfigView {
    /// `section.key = value` lines.
    pub settings: Vec<String>,
    pub checks: Vec<CheckLine>,
}

/// One check's outcome: `ok`, `warn` or `fail`, and what it says.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckLine {
    pub level: String,
    pub text: String,
}

/// Serves the admin API and its console on `listen` until `shutdown`; returns the bound
/// address at once.
pub async fn serve<F: crate::feed::FolderFeed, S: crate::store::Store>(
    listen: &str,
    admin: std::sync::Arc<server::Admin<F, S>>,
    shutdown: tokio_util::sync::CancellationToken,
) -> std::io::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        // The peer's address decides whether the console's pages need the token.
        let app = server::router(admin.clone())
            .merge(console::routes().with_state(admin))
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(event = "admin_api_stopped", error = %e);
        }
    });
    Ok(addr)
}
