//! The admin API's server: the routes and their handlers over a running agent's supervisor and
//! store. With a token configured every `/v1/` route needs it — reads too, since item reasons
//! and statuses name mailboxes and sinks; `/healthz`, `/readyz` and `/metrics` stay open for
//! probes and scrapers (counts and health only). The console's pages have their own rule
//! (see `console`).

use super::{ConfigView, MailboxView, REGARDING_UNAVAILABLE, StatusView};
use crate::deliver::explain;
use crate::deliver::items::{self, ItemState};
use crate::feed::FolderFeed;
use crate::store::handover::{self, Handover, HandoverError};
use crate::store::{self, HoldRecord, MappingState, Store};
use crate::watch::MailboxConfig;
use crate::watch::capacity::Capacity;
use crate::watch::cluster::ClusterView;
use crate::watch::supervisor::{MailboxStatus, Supervisor, SyncNow};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::sync::Arc;

/// What the handlers share.
pub struct Admin<F, S> {
    pub supervisor: Arc<Supervisor<F, S>>,
    pub store: Arc<S>,
    /// Required as `Authorization: Bearer …` on every `/v1/` route when set.
    pub token: Option<SecretString>,
    /// The cadence verdict of the configuration in force (replaced on reload).
    pub capacity: std::sync::Mutex<Option<Capacity>>,
    /// What `explain` needs of the configuration in force (replaced on reload).
    pub explain: std::sync::Mutex<explain::Settings>,
    /// The configuration in force, for `/v1/config` (replaced on reload).
    pub config: std::sync::Mutex<ConfigView>,
    /// This agent's place in its group, and the owned mailboxes waiting for a handover
    /// (replaced on reload).
    pub cluster: std::sync::Mutex<(ClusterView, Vec<Arc<MailboxConfig>>)>,
}

/// The routes.
pub fn router<F: FolderFeed, S: Store>(admin: Arc<Admin<F, S>>) -> Router {
    let guarded = Router::new()
        .route("/v1/status", get(status::<F, S>))
        .route("/v1/mailboxes/{address}", get(mailbox::<F, S>))
        .route("/v1/mailboxes/{address}/sync", post(sync_now::<F, S>))
        .route("/v1/items", get(items::<F, S>))
        .route("/v1/retry", post(retry::<F, S>))
        .route("/v1/explain", get(explain::<F, S>))
        .route("/v1/config", get(config::<F, S>))
        .route("/v1/handover/{address}", get(handover_export::<F, S>))
        .route("/v1/handover", post(handover_import::<F, S>))
        .route_layer(axum::middleware::from_fn_with_state(
            admin.clone(),
            guard::<F, S>,
        ));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready::<F, S>))
        .route("/metrics", get(metrics::<F, S>))
        .merge(guarded)
        .with_state(admin)
}

/// Lets a `/v1/` request through only with the token, when one is configured.
async fn guard<F: FolderFeed, S: Store>(
    State(a): Shared<F, S>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if token_matches(&a, bearer(request.headers())) {
        next.run(request).await
    } else {
        problem(
            StatusCode::UNAUTHORIZED,
            "send the admin token as `Authorization: Bearer …`",
        )
    }
}

pub(super) type Shared<F, S> = State<Arc<Admin<F, S>>>;

pub(super) fn problem(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": message.into() }))).into_response()
}

fn store_error(e: store::Error) -> Response {
    problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

fn view<S: Store>(store: &S, status: MailboxStatus) -> Result<MailboxView, store::Error> {
    let address = status.address.clone();
    let mut mappings = store.mappings(&address)?;
    let held: Vec<HoldRecord> = store
        .holds()?
        .into_iter()
        .filter(|h| {
            h.mailbox
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(&address))
        })
        .filter(|h| {
            mappings
                .iter()
                .any(|m| m.regarding.as_ref() == Some(&h.regarding))
        })
        .collect();
    for m in &mut mappings {
        if m.state == MappingState::Active
            && held
                .iter()
                .any(|h| m.regarding.as_ref() == Some(&h.regarding))
        {
            m.state = MappingState::Paused(REGARDING_UNAVAILABLE.into());
        }
    }
    Ok(MailboxView {
        mappings,
        held,
        status,
    })
}

/// Ready once every mailbox it owns is watched and had its first sync: a member still waiting
/// for a mailbox's handover is not serving it, and says so (a rollout then waits for it).
async fn ready<F: FolderFeed, S: Store>(State(a): Shared<F, S>) -> Response {
    let awaiting: Vec<String> = (a.cluster.lock())
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .1
        .iter()
        .map(|m| m.address.clone())
        .collect();
    if !awaiting.is_empty() {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "awaiting a handover for {} (foldertrack handover import)",
                awaiting.join(", ")
            ),
        );
    }
    let waiting: Vec<String> = a
        .supervisor
        .status()
        .into_iter()
        .filter(|s| s.syncs == 0)
        .map(|s| s.address)
        .collect();
    if waiting.is_empty() {
        "ready\n".into_response()
    } else {
        problem(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("first sync pending for {}", waiting.join(", ")),
        )
    }
}

/// Runs `read` (store reads may wait on the disk) on a blocking thread, so a slow or failing
/// disk never holds an async worker that `/healthz` and shutdown need.
pub(super) async fn off_runtime<F: FolderFeed, S: Store, T: Send + 'static>(
    a: &Arc<Admin<F, S>>,
    read: impl FnOnce(&Admin<F, S>) -> Result<T, store::Error> + Send + 'static,
) -> Result<T, store::Error> {
    let a = a.clone();
    tokio::task::spawn_blocking(move || read(&a))
        .await
        .unwrap_or_else(|e| Err(store::Error::Storage(format!("reading the store: {e}"))))
}

/// The status every page and `/v1/status` show.
pub(super) fn status_view<F: FolderFeed, S: Store>(
    a: &Admin<F, S>,
) -> Result<StatusView, store::Error> {
    let stats = a.store.stats()?;
    Ok(StatusView {
        mailboxes: a
            .supervisor
            .status()
            .into_iter()
            .map(|s| view(a.store.as_ref(), s))
            .collect::<Result<_, _>>()?,
        outbox: stats.outbox,
        undelivered: stats.dead,
        pending_write_backs: stats.marks,
        sink_unavailable: a.store.sink_outage()?,
        unreadable: stats.pending,
        capacity: a
            .capacity
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone(),
        cluster: Some(
            a.cluster
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0
                .clone(),
        ),
    })
}

async fn status<F: FolderFeed, S: Store>(State(a): Shared<F, S>) -> Response {
    off_runtime(&a, |a| status_view(a))
        .await
        .map_or_else(store_error, |v| Json(v).into_response())
}

/// One mailbox's view; `None` when no such mailbox is configured.
pub(super) fn mailbox_view<F: FolderFeed, S: Store>(
    a: &Admin<F, S>,
    address: &str,
) -> Option<Result<MailboxView, store::Error>> {
    let status = a
        .supervisor
        .status()
        .into_iter()
        .find(|s| s.address.eq_ignore_ascii_case(address))?;
    Some(view(a.store.as_ref(), status))
}

async fn mailbox<F: FolderFeed, S: Store>(
    State(a): Shared<F, S>,
    Path(address): Path<String>,
) -> Response {
    let asked = address.clone();
    match off_runtime(&a, move |a| mailbox_view(a, &asked).transpose()).await {
        Ok(None) => problem(
            StatusCode::NOT_FOUND,
            format!("no mailbox {address} is configured"),
        ),
        Ok(Some(v)) => Json(v).into_response(),
        Err(e) => store_error(e),
    }
}

/// Whether `given` is the configured token (true when none is configured).
pub(super) fn token_matches<F, S>(a: &Admin<F, S>, given: &str) -> bool {
    token_ok(a.token.as_ref(), given)
}

/// True when no token is configured, or `given` is it, compared in constant time.
fn token_ok(token: Option<&SecretString>, given: &str) -> bool {
    let Some(token) = token else { return true };
    let expected = token.expose_secret().as_bytes();
    // Compare every byte, so the time taken says nothing about where a guess went wrong.
    !expected.is_empty()
        && given.len() == expected.len()
        && given
            .bytes()
            .zip(expected)
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The bearer token of a request (the scheme in any case), or "".
pub(super) fn bearer(headers: &HeaderMap) -> &str {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map_or("", |(_, t)| t.trim())
}

async fn sync_now<F: FolderFeed, S: Store>(
    State(a): Shared<F, S>,
    Path(address): Path<String>,
) -> Response {
    match a.supervisor.sync_now(&address).await {
        SyncNow::UnknownMailbox => problem(
            StatusCode::NOT_FOUND,
            format!("no mailbox {address} is configured"),
        ),
        answer @ SyncNow::Done { .. } => Json(answer).into_response(),
        answer @ (SyncNow::Waiting { .. } | SyncNow::Fallback { .. }) => {
            (StatusCode::ACCEPTED, Json(answer)).into_response()
        }
    }
}

#[derive(Deserialize)]
struct ItemsQuery {
    state: Option<ItemState>,
}

async fn items<F: FolderFeed, S: Store>(
    State(a): Shared<F, S>,
    Query(q): Query<ItemsQuery>,
) -> Response {
    off_runtime(&a, move |a| items::problem_items(a.store.as_ref(), q.state))
        .await
        .map_or_else(store_error, |v| Json(v).into_response())
}

#[derive(Deserialize)]
struct RetryQuery {
    #[serde(default)]
    dry_run: bool,
    mailbox: Option<String>,
    since: Option<jiff::Timestamp>,
}

async fn retry<F: FolderFeed, S: Store>(
    State(a): Shared<F, S>,
    Query(q): Query<RetryQuery>,
) -> Response {
    retry_items(&a, &items::of(q.mailbox.as_deref(), q.since), q.dry_run)
        .await
        .map_or_else(store_error, |v| Json(v).into_response())
}

/// The configuration in force.
pub(super) fn config_view<F, S>(a: &Admin<F, S>) -> ConfigView {
    a.config
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

async fn config<F: FolderFeed, S: Store>(State(a): Shared<F, S>) -> Response {
    Json(config_view(&a)).into_response()
}

/// Re-queues undeliverable items (or, with `dry_run`, only says which) and wakes delivery.
pub(super) async fn retry_items<F: FolderFeed, S: Store>(
    a: &Admin<F, S>,
    chosen: &(dyn Fn(&items::ItemLine) -> bool + Sync),
    dry_run: bool,
) -> Result<Vec<items::ItemLine>, store::Error> {
    let result = items::retry_chosen(a.store.as_ref(), chosen, dry_run).await;
    if !dry_run {
        a.supervisor.outbox.notify_one();
    }
    result
}

#[derive(Deserialize)]
struct ExplainQuery {
    message_id: Option<String>,
    subject: Option<String>,
    mailbox: Option<String>,
    folder: Option<String>,
}

async fn explain<F: FolderFeed, S: Store>(
    State(a): Shared<F, S>,
    Query(q): Query<ExplainQuery>,
) -> Response {
    let query = match explain::Query::from_parts(q.message_id, q.subject, q.mailbox, q.folder) {
        Ok(query) => query,
        Err(e) => return problem(StatusCode::BAD_REQUEST, e),
    };
    explain_query(&a, &query).map_or_else(store_error, |v| Json(v).into_response())
}

/// What `explain` tells about `query` with the configuration in force.
pub(super) fn explain_query<F, S: Store>(
    a: &Admin<F, S>,
    query: &explain::Query,
) -> Result<explain::Explanation, store::Error> {
    let settings = a
        .explain
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    Ok(explain::tell(
        &explain::gather(a.store.as_ref(), query)?,
        &settings,
    ))
}

/// The `# HELP` line of each metric.
fn help(name: &str) -> &'static str {
    match name {
        "foldertrack_ews_calls_total" => "EWS calls by operation and outcome.",
        "foldertrack_gate_wait_seconds" => {
            "Time calls waited at the gate (server back-off, rate limits, concurrency cap)."
        }
        "foldertrack_sync_seconds" => "Duration of mailbox sync passes.",
        "foldertrack_server_throttled_total" => {
            "Throttling episodes: the server asked for a pause, by scope (mailbox or account)."
        }
        "foldertrack_graph_requests_total" => "Graph requests by operation and outcome.",
        "foldertrack_graph_notifications_total" => {
            "Graph change notifications received, by outcome (change, lifecycle event, client_state_mismatch, ...)."
        }
        "foldertrack_tracking_requests_total" => {
            "Tracking requests by outcome: emitted, delivered, retried, undeliverable, rejected."
        }
        "foldertrack_store_reclaims_total" => {
            "Times the running agent rewrote its store to give back the space of removed entries."
        }
        "foldertrack_store_reclaimed_bytes_total" => "Bytes on disk those rewrites gave back.",
        "foldertrack_store_reclaim_pause_seconds" => {
            "How long commits waited for each rewrite of the store."
        }
        "foldertrack_detected_to_delivered_seconds" => {
            "From detecting a mail in a mapped folder to its delivery to the sink."
        }
        _ => "",
    }
}

async fn metrics<F: FolderFeed, S: Store>(State(a): Shared<F, S>) -> Response {
    let mut out = crate::telemetry::metrics().render(&help);
    let statuses = a.supervisor.status();
    // The mailboxes counted by one label's values, as one gauge.
    let mut by = |name: &str,
                  help: &str,
                  label: &str,
                  values: &[&str],
                  of: &dyn Fn(&MailboxStatus) -> &'static str| {
        out += &format!("# HELP {name} {help}\n# TYPE {name} gauge\n");
        for value in values {
            let n = statuses.iter().filter(|s| of(s) == *value).count();
            out += &format!("{name}{{{label}=\"{value}\"}} {n}\n");
        }
    };
    by(
        "foldertrack_mailboxes",
        "Mailboxes by health.",
        "health",
        &["healthy", "retrying", "parked", "disabled"],
        &|s| s.health.label(),
    );
    by(
        "foldertrack_mailboxes_woken",
        "Mailboxes by what wakes their sync (status says why one is polled).",
        "by",
        &["notified", "pulled", "polled", "pending"],
        &|s| s.notifications.label(),
    );
    let outage = match a.store.sink_outage() {
        Ok(outage) => outage,
        Err(e) => return store_error(e),
    };
    let awaiting = a
        .cluster
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .1
        .len();
    match a.store.stats() {
        Ok(stats) => {
            for (name, help, value) in [
                (
                    "foldertrack_sink_available",
                    "1 while the sink answers, 0 while it is unavailable (one state, not a failure per request).",
                    u64::from(outage.is_none()),
                ),
                (
                    "foldertrack_sink_unavailable_since_seconds",
                    "Since when the sink is unavailable (Unix time); 0 while it answers.",
                    outage.map_or(0, |o| o.since.as_second().max(0) as u64),
                ),
                (
                    "foldertrack_outbox",
                    "Tracking requests waiting for delivery.",
                    stats.outbox as u64,
                ),
                (
                    "foldertrack_undelivered",
                    "Requests undeliverable or rejected.",
                    stats.dead as u64,
                ),
                (
                    "foldertrack_pending_write_backs",
                    "Categories waiting to be written to mails.",
                    stats.marks as u64,
                ),
                (
                    "foldertrack_store_bytes",
                    "The store's size on disk.",
                    stats.bytes_on_disk,
                ),
                (
                    "foldertrack_awaiting_handover",
                    "Owned mailboxes waiting for their state from the member that owned them before.",
                    awaiting as u64,
                ),
            ] {
                out += &format!("# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n");
            }
        }
        Err(e) => return store_error(e),
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

// `handover export` on the old owner and `import` on the new one; both run on live agents,
// since a running agent holds its store's lock.

fn handover_refused(e: HandoverError) -> Response {
    let status = match e {
        HandoverError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        HandoverError::Unfinished { .. } => StatusCode::CONFLICT,
        HandoverError::NoState(_) => StatusCode::NOT_FOUND,
        HandoverError::Format(_) | HandoverError::Damaged(_) => StatusCode::BAD_REQUEST,
    };
    problem(status, e.to_string())
}

async fn handover_export<F: FolderFeed, S: Store>(
    State(a): Shared<F, S>,
    Path(address): Path<String>,
) -> Response {
    if !a.supervisor.stopped(&address) {
        return problem(
            StatusCode::CONFLICT,
            format!(
                "{address} is still watched by this agent (or finishing its last pass): change cluster.members (and reload) so that another member owns it, then export"
            ),
        );
    }
    let store = a.store.clone();
    let mailbox = address.clone();
    let read = tokio::task::spawn_blocking(move || handover::export(store.as_ref(), &mailbox));
    let state = match read.await {
        Ok(Ok(state)) => state,
        Ok(Err(e)) => return handover_refused(e),
        Err(e) => return problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    match handover::handed_away(a.store.as_ref(), &address).await {
        Ok(()) => Json(state).into_response(),
        Err(e) => store_error(e),
    }
}

async fn handover_import<F: FolderFeed, S: Store>(
    State(a): Shared<F, S>,
    Json(state): Json<Handover>,
) -> Response {
    let waiting = {
        let cluster = a
            .cluster
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cluster
            .1
            .iter()
            .find(|m| m.address.eq_ignore_ascii_case(&state.mailbox))
            .cloned()
    };
    let Some(mailbox) = waiting else {
        return problem(
            StatusCode::CONFLICT,
            format!(
                "{} is not waiting for a handover here: this member does not own it, or watches it already (`foldertrack status` lists those that wait)",
                state.mailbox
            ),
        );
    };
    match handover::import(a.store.as_ref(), &state).await {
        Ok(entries) => {
            let mut cluster = a
                .cluster
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            cluster.1.retain(|m| m.address != mailbox.address);
            cluster
                .0
                .awaiting_handover
                .retain(|m| *m != mailbox.address);
            a.supervisor.watch(&mailbox);
            tracing::info!(event = "handover_imported", mailbox = %mailbox.address, entries);
            Json(serde_json::json!({ "mailbox": mailbox.address, "entries": entries }))
                .into_response()
        }
        Err(e) => handover_refused(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(authorization: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, authorization.parse().unwrap());
        h
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_the_token_exact() {
        let token = SecretString::from("0123456789abcdef0123");
        let ok = |h: &HeaderMap| token_ok(Some(&token), bearer(h));
        assert!(ok(&with("Bearer 0123456789abcdef0123")));
        assert!(ok(&with("bearer 0123456789abcdef0123")));
        assert!(ok(&with("BEARER  0123456789abcdef0123")));
        assert!(!ok(&with("Basic 0123456789abcdef0123")));
        assert!(!ok(&with("Bearer 0123456789abcdef012")));
        assert!(!ok(&with("Bearer")));
        assert!(!ok(&HeaderMap::new()));
        assert!(token_ok(None, bearer(&HeaderMap::new())));
        // An empty token never matches an empty header.
        assert!(!token_ok(
            Some(&SecretString::from("")),
            bearer(&with("Bearer "))
        ));
    }
}
