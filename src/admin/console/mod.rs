//! The web console: HTML pages for people, served beside the JSON API on the same listener
//! and rendered from the same views (`StatusView`, `MailboxView`, `ItemLine`, `ConfigView`).
//! Pages are plain server-rendered HTML; changes are HTML forms that POST here. Nothing runs
//! unless a page is requested.
//!
//! Access follows the API's rules: pages read freely from loopback; from elsewhere they need
//! the token (as `Authorization: Bearer …` or the cookie the login form sets). A form that
//! changes state needs the token typed into its field, or that cookie.

mod activity;
mod pages;

use super::server::{
    Admin, Shared, bearer, config_view, explain_query, mailbox_view, off_runtime, retry_items,
    status_view, token_matches,
};
use crate::deliver::explain;
use crate::deliver::items;
use crate::feed::FolderFeed;
use crate::store::Store;
use axum::extract::{ConnectInfo, Form, Path, Query};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Router, extract::State};
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// The cookie the login form sets: the token itself, sent back only to this console.
const COOKIE: &str = "foldertrack_token";

/// The console's routes (state: the admin API's).
pub fn routes<F: FolderFeed, S: Store>() -> Router<Arc<Admin<F, S>>> {
    Router::new()
        .route("/", get(overview::<F, S>))
        .route("/console.css", get(css))
        .route("/login", post(login::<F, S>))
        .route("/mailboxes/{address}", get(mailbox::<F, S>))
        .route("/mailboxes/{address}/track-now", post(track_now::<F, S>))
        .route("/items", get(items_page::<F, S>))
        .route("/items/retry", post(retry::<F, S>))
        .route("/items/{id}", get(item::<F, S>))
        .route("/config", get(config::<F, S>))
}

async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("console.css"),
    )
        .into_response()
}

/// The token from the console's cookie, or "".
fn cookie(headers: &HeaderMap) -> &str {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .unwrap_or("")
}

/// Whether the request holds the token (or none is configured), by header, cookie or `typed`.
fn has_token<F, S>(a: &Admin<F, S>, headers: &HeaderMap, typed: &str) -> bool {
    a.token.is_none()
        || [bearer(headers), cookie(headers), typed]
            .into_iter()
            .any(|given| token_matches(a, given))
}

/// The listener's rule for reading a page: from loopback freely; from elsewhere only when a
/// token is configured and the request holds it.
fn may_read(peer: IpAddr, token_configured: bool, holds_token: bool) -> bool {
    peer.to_canonical().is_loopback() || (token_configured && holds_token)
}

/// What a request may see, by [`may_read`]; the sign-in page when it may not.
fn unread<F, S>(a: &Admin<F, S>, peer: SocketAddr, headers: &HeaderMap) -> Option<Response> {
    if may_read(peer.ip(), a.token.is_some(), has_token(a, headers, "")) {
        None
    } else {
        Some(page(
            StatusCode::UNAUTHORIZED,
            pages::login(
                "This console is reached from another machine: sign in with the admin token.",
            ),
        ))
    }
}

fn page(status: StatusCode, markup: maud::Markup) -> Response {
    (status, Html(markup.into_string())).into_response()
}

fn failed(e: impl std::fmt::Display) -> Response {
    page(
        StatusCode::INTERNAL_SERVER_ERROR,
        pages::message("Error", &format!("The store could not be read: {e}")),
    )
}

type Peer = ConnectInfo<SocketAddr>;

async fn overview<F: FolderFeed, S: Store>(
    State(a): Shared<F, S>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
) -> Response {
    if let Some(denied) = unread(&a, peer, &headers) {
        return denied;
    }
    let read = off_runtime(&a, |a| {
        let tracked = activity::activity(&a.store.messages()?, jiff::Timestamp::now());
        Ok((status_view(a)?, tracked))
    });
    match read.await {
        Ok((status, tracked)) => page(
            StatusCode::OK,
            pages::overview(&status, &pages::Traffic::now(), &tracked),
        ),
        Err(e) => failed(e),
    }
}

/// How many of a mailbox's latest tracking requests its page lists.
const RECENT: usize = 10;

/// The mailbox page, with `notice` (the answer to a form) on top.
async fn mailbox_page<F: FolderFeed, S: Store>(
    a: &Arc<Admin<F, S>>,
    address: &str,
    notice: Option<pages::Notice>,
) -> Response {
    let asked = address.to_owned();
    let read = off_runtime(a, move |a| {
        let Some(view) = mailbox_view(a, &asked).transpose()? else {
            return Ok(None);
        };
        let problems: Vec<_> = items::problem_items(a.store.as_ref(), None)?
            .into_iter()
            .filter(|i| i.mailbox.eq_ignore_ascii_case(&asked))
            .collect();
        let recent = activity::recent(a.store.messages()?, &asked, RECENT);
        Ok(Some((view, problems, recent)))
    });
    match read.await {
        Ok(None) => page(
            StatusCode::NOT_FOUND,
            pages::message(
                "No such mailbox",
                &format!(
                    "No mailbox {address} is configured: check the address, or add it to the config."
                ),
            ),
        ),
        Err(e) => failed(e),
        Ok(Some((view, problems, recent))) => {
            let status = notice.as_ref().map_or(StatusCode::OK, |n| n.status);
            let asks = a.token.is_some();
            page(
                status,
                pages::mailbox(&view, &problems, &recent, notice.as_ref(), asks),
            )
        }
    }
}

async fn mailbox<F: FolderFeed, S: Store>(
    State(a): Shared<F, S>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path(address): Path<String>,
) -> Response {
    if let Some(denied) = unread(&a, peer, &headers) {
        return denied;
    }
    mailbox_page(&a, &address, None).await
}

/// A form that changes state: the token typed into it, when it has one.
#[derive(Deserialize)]
struct ChangeForm {
    #[serde(default)]
    token: String,
    /// Retry only: say which items without re-queueing them.
    #[serde(default)]
    dry_run: Option<String>,
    /// Retry only: the items page's search, kept on the answer.
    #[serde(default)]
    q: String,
}

fn refused() -> pages::Notice {
    pages::Notice::refused(
        "Refused: this changes state and needs the admin token. Type it into the token field (or sign in) and press the button again.",
    )
}

async fn track_now<F: FolderFeed, S: Store>(
    State(a): Shared<F, S>,
    headers: HeaderMap,
    Path(address): Path<String>,
    Form(form): Form<ChangeForm>,
) -> Response {
    if !has_token(&a, &headers, &form.token) {
        return mailbox_page(&a, &address, Some(refused())).await;
    }
    let answer = a.supervisor.sync_now(&address).await;
    mailbox_page(&a, &address, Some(pages::Notice::sync_now(&answer))).await
}

#[derive(Deserialize)]
struct Search {
    #[serde(default)]
    q: String,
}

/// The items page for `q`, with `notice` and the items a retry chose.
fn items_answer<F: FolderFeed, S: Store>(
    a: &Admin<F, S>,
    q: &str,
    notice: Option<(pages::Notice, Vec<items::ItemLine>)>,
) -> Response {
    match items::problem_items(a.store.as_ref(), None) {
        Ok(all) => {
            let found: Vec<_> = all.into_iter().filter(|i| i.matches(q)).collect();
            let status = notice.as_ref().map_or(StatusCode::OK, |(n, _)| n.status);
            page(
                status,
                pages::items(q, &found, notice.as_ref(), a.token.is_some()),
            )
        }
        Err(e) => failed(e),
    }
}

async fn items_page<F: FolderFeed, S: Store>(
    State(a): Shared<F, S>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Query(search): Query<Search>,
) -> Response {
    if let Some(denied) = unread(&a, peer, &headers) {
        return denied;
    }
    items_answer(&a, &search.q, None)
}

/// `/items/{id}`: the story `explain` tells of the mail with request id `id`.
async fn item<F: FolderFeed, S: Store>(
    State(a): Shared<F, S>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(denied) = unread(&a, peer, &headers) {
        return denied;
    }
    let asked = id.clone();
    match off_runtime(&a, move |a| stories(a, &asked)).await {
        Ok(Some(found)) => page(
            StatusCode::OK,
            pages::explain(&id, &found, a.token.is_some()),
        ),
        Ok(None) => page(
            StatusCode::NOT_FOUND,
            pages::message(
                "No such item",
                &format!("No tracked mail has the id {id}: search for it on the Items page."),
            ),
        ),
        Err(e) => failed(e),
    }
}

/// The stories of the mail with request id `id`; `None` when the store has no such mail.
fn stories<F, S: Store>(
    a: &Admin<F, S>,
    id: &str,
) -> Result<Option<Vec<explain::Story>>, crate::store::Error> {
    let Some(record) = a.store.message(id)? else {
        return Ok(None);
    };
    let query = match (record.message_id, record.subject) {
        (Some(m), _) => explain::Query::MessageId(m),
        (None, Some(s)) => explain::Query::Subject(s),
        (None, None) => return Ok(Some(Vec::new())),
    };
    let told = explain_query(a, &query)?;
    Ok(Some(
        told.stories
            .into_iter()
            .filter(|s| s.id.as_deref().is_none_or(|s| s == id))
            .collect(),
    ))
}

/// Retries the undeliverable and rejected items the search finds (all when it is empty).
async fn retry<F: FolderFeed, S: Store>(
    State(a): Shared<F, S>,
    headers: HeaderMap,
    Form(form): Form<ChangeForm>,
) -> Response {
    if !has_token(&a, &headers, &form.token) {
        return items_answer(&a, &form.q, Some((refused(), Vec::new())));
    }
    let dry_run = form.dry_run.is_some();
    match retry_items(&a, &|i| i.matches(&form.q), dry_run).await {
        Ok(chosen) => {
            let notice = pages::Notice::retried(chosen.len(), dry_run);
            items_answer(&a, &form.q, Some((notice, chosen)))
        }
        Err(e) => failed(e),
    }
}

async fn config<F: FolderFeed, S: Store>(
    State(a): Shared<F, S>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
) -> Response {
    if let Some(denied) = unread(&a, peer, &headers) {
        return denied;
    }
    page(StatusCode::OK, pages::config(&config_view(&a)))
}

#[derive(Deserialize)]
struct Login {
    token: String,
}

/// Checks the token and keeps it in a cookie for this console only.
async fn login<F: FolderFeed, S: Store>(
    State(a): Shared<F, S>,
    Form(form): Form<Login>,
) -> Response {
    if a.token.is_none() || !token_matches(&a, &form.token) {
        return page(
            StatusCode::UNAUTHORIZED,
            pages::login(
                "That is not the admin token: type the token from the agent's [admin] settings.",
            ),
        );
    }
    let cookie = format!("{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict", form.token);
    (
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, cookie),
            (header::LOCATION, "/".to_owned()),
        ],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::may_read;
    use std::net::IpAddr;

    #[test]
    fn pages_read_freely_on_loopback_and_only_with_the_token_elsewhere() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        for near in ["127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1"] {
            assert!(may_read(ip(near), true, false), "{near}");
            assert!(may_read(ip(near), false, false), "{near}");
        }
        for far in [
            "10.0.0.5",
            "192.168.1.20",
            "0.0.0.0",
            "fe80::1",
            "::ffff:10.0.0.5",
        ] {
            assert!(!may_read(ip(far), true, false), "{far} without the token");
            assert!(may_read(ip(far), true, true), "{far} with the token");
            assert!(
                !may_read(ip(far), false, true),
                "{far}: no token configured, so nothing proves who asks"
            );
        }
    }
}
