//! The admin HTTP API (axum, loopback by default): health, readiness, Prometheus metrics, the
//! status of every mailbox and mapping, problem items, track-now and retry. Anything that
//! changes state needs the bearer token when one is configured. Documented in
//! docs/admin-api.md and docs/openapi.yaml.

use crate::app;
use crate::cli::ItemState;
use crate::feed::FolderFeed;
use crate::store::{self, MappingRecord, Store};
use crate::watch::supervisor::{MailboxStatus, Supervisor, SyncNow};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What the handlers share.
pub struct Admin<F, S> {
    pub supervisor: Arc<Supervisor<F, S>>,
    pub store: Arc<S>,
    /// Required as `Authorization: Bearer …` on POSTs when set.
    pub token: Option<SecretString>,
}

/// The routes.
pub fn router<F: FolderFeed, S: Store>(admin: Arc<Admin<F, S>>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready::<F, S>))
        .route("/metrics", get(metrics::<F, S>))
        .route("/v1/status", get(status::<F, S>))
        .route("/v1/mailboxes/{address}", get(mailbox::<F, S>))
        .route("/v1/mailboxes/{address}/sync", post(sync_now::<F, S>))
        .route("/v1/items", get(items::<F, S>))
        .route("/v1/retry", post(retry::<F, S>))
        .with_state(admin)
}

type Shared<F, S> = State<Arc<Admin<F, S>>>;

/// A mailbox with its mappings as the store has them.
#[derive(Debug, Serialize, Deserialize)]
pub struct MailboxView {
    #[serde(flatten)]
    pub status: MailboxStatus,
    pub mappings: Vec<MappingRecord>,
}

/// `/v1/status`.
#[derive(Debug, Serialize, Deserialize)]
pub struct StatusView {
    pub mailboxes: Vec<MailboxView>,
    pub outbox: usize,
    pub undelivered: usize,
    pub pending_write_backs: usize,
}

fn problem(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": message.into() }))).into_response()
}

fn store_error(e: store::Error) -> Response {
    problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

fn view<S: Store>(store: &S, status: MailboxStatus) -> Result<MailboxView, store::Error> {
    Ok(MailboxView {
        mappings: store.mappings(&status.address)?,
        status,
    })
}

async fn ready<F: FolderFeed, S: Store>(State(a): Shared<F, S>) -> Response {
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

async fn status<F: FolderFeed, S: Store>(State(a): Shared<F, S>) -> Response {
    let build = || -> Result<StatusView, store::Error> {
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
        })
    };
    build().map_or_else(store_error, |v| Json(v).into_response())
}

async fn mailbox<F: FolderFeed, S: Store>(
    State(a): Shared<F, S>,
    Path(address): Path<String>,
) -> Response {
    let Some(status) = a
        .supervisor
        .status()
        .into_iter()
        .find(|s| s.address.eq_ignore_ascii_case(&address))
    else {
        return problem(
            StatusCode::NOT_FOUND,
            format!("no mailbox {address} is configured"),
        );
    };
    view(a.store.as_ref(), status).map_or_else(store_error, |v| Json(v).into_response())
}

fn authorised<F, S>(a: &Admin<F, S>, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let Some(token) = &a.token else { return Ok(()) };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let expected = token.expose_secret().as_bytes();
    // Compare every byte, so the time taken says nothing about where a guess went wrong.
    let same = given.len() == expected.len()
        && given
            .bytes()
            .zip(expected)
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0;
    if same {
        Ok(())
    } else {
        Err(Box::new(problem(
            StatusCode::UNAUTHORIZED,
            "this call changes state: send the admin token as `Authorization: Bearer …`",
        )))
    }
}

async fn sync_now<F: FolderFeed, S: Store>(
    State(a): Shared<F, S>,
    Path(address): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(denied) = authorised(&a, &headers) {
        return *denied;
    }
    match a.supervisor.sync_now(&address).await {
        SyncNow::UnknownMailbox => problem(
            StatusCode::NOT_FOUND,
            format!("no mailbox {address} is configured"),
        ),
        answer @ SyncNow::Done { .. } => Json(answer).into_response(),
        answer @ SyncNow::Fallback { .. } => (StatusCode::ACCEPTED, Json(answer)).into_response(),
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
    app::problem_items(a.store.as_ref(), q.state)
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
    headers: HeaderMap,
) -> Response {
    if let Err(denied) = authorised(&a, &headers) {
        return *denied;
    }
    let result = app::retry(a.store.as_ref(), q.mailbox.as_deref(), q.since, q.dry_run).await;
    if !q.dry_run {
        a.supervisor.outbox.notify_one();
    }
    result.map_or_else(store_error, |v| Json(v).into_response())
}

/// The `# HELP` line of each metric.
fn help(name: &str) -> &'static str {
    match name {
        "foldertrack_ews_calls_total" => "EWS calls by operation and outcome.",
        "foldertrack_gate_wait_seconds" => {
            "Time calls waited at the gate (server back-off, rate limits, concurrency cap)."
        }
        "foldertrack_sync_seconds" => "Duration of mailbox sync passes.",
        "foldertrack_tracking_requests_total" => {
            "Tracking requests by outcome: emitted, delivered, retried, undeliverable, rejected."
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
    out +=
        "# HELP foldertrack_mailboxes Mailboxes by health.\n# TYPE foldertrack_mailboxes gauge\n";
    for health in ["healthy", "retrying", "parked", "disabled"] {
        let n = statuses
            .iter()
            .filter(|s| s.health.label() == health)
            .count();
        out += &format!("foldertrack_mailboxes{{health=\"{health}\"}} {n}\n");
    }
    match a.store.stats() {
        Ok(stats) => {
            for (name, help, value) in [
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
            ] {
                out += &format!("# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n");
            }
        }
        Err(e) => return store_error(e),
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

/// Serves the admin API on `listen` until `shutdown`; returns the bound address at once.
pub async fn serve<F: FolderFeed, S: Store>(
    listen: &str,
    admin: Arc<Admin<F, S>>,
    shutdown: tokio_util::sync::CancellationToken,
) -> std::io::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let served = axum::serve(listener, router(admin))
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(event = "admin_api_stopped", error = %e);
        }
    });
    Ok(addr)
}

/// A failed admin API call, said for the person at the terminal.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ClientError(String);

/// The CLI's side of the admin API: status, track-now, items and retry of a running agent.
pub struct AdminClient {
    http: reqwest::Client,
    base: String,
    token: Option<SecretString>,
}

impl AdminClient {
    /// `addr` is the agent's bound address (host:port).
    pub fn new(addr: &str, token: Option<SecretString>) -> Result<Self, String> {
        let http = crate::client::http_client(&crate::client::Timeouts {
            connect: std::time::Duration::from_secs(3),
            request: std::time::Duration::from_secs(60),
        })
        .map_err(|e| e.to_string())?;
        Ok(Self {
            http,
            base: format!("http://{addr}"),
            token,
        })
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        self.call_inner(request).await.map_err(ClientError)
    }

    async fn call_inner<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, String> {
        let request = match &self.token {
            Some(t) => request.bearer_auth(t.expose_secret()),
            None => request,
        };
        let answer = request.send().await.map_err(|e| {
            format!(
                "no running agent answers at {} ({}); start one with `foldertrack run`",
                self.base,
                if e.is_connect() {
                    "connection refused"
                } else {
                    "no answer"
                }
            )
        })?;
        let status = answer.status();
        let text = answer.text().await.map_err(|e| e.to_string())?;
        if status.is_success() {
            serde_json::from_str(&text)
                .map_err(|e| format!("the agent's answer is unreadable: {e}"))
        } else {
            let message = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned))
                .unwrap_or(text);
            Err(format!(
                "the agent answered HTTP {}: {message}",
                status.as_u16()
            ))
        }
    }

    pub async fn status(&self) -> Result<StatusView, ClientError> {
        self.call(self.http.get(format!("{}/v1/status", self.base)))
            .await
    }

    pub async fn sync_now(&self, address: &str) -> Result<SyncNow, ClientError> {
        let url = format!("{}/v1/mailboxes/{}/sync", self.base, address);
        self.call(self.http.post(url)).await
    }

    pub async fn items(&self, state: Option<ItemState>) -> Result<Vec<app::ItemLine>, ClientError> {
        let mut request = self.http.get(format!("{}/v1/items", self.base));
        if let Some(s) = state {
            request = request.query(&[("state", s)]);
        }
        self.call(request).await
    }

    pub async fn retry(
        &self,
        mailbox: Option<&str>,
        since: Option<jiff::Timestamp>,
        dry_run: bool,
    ) -> Result<Vec<app::ItemLine>, ClientError> {
        let mut query: Vec<(&str, String)> = vec![("dry_run", dry_run.to_string())];
        if let Some(m) = mailbox {
            query.push(("mailbox", m.to_owned()));
        }
        if let Some(t) = since {
            query.push(("since", t.to_string()));
        }
        self.call(
            self.http
                .post(format!("{}/v1/retry", self.base))
                .query(&query),
        )
        .await
    }
}
