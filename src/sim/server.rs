//! The HTTP side of the simulator: the router (EWS endpoint and control API), authentication
//! (Basic and OAuth bearer, 401 otherwise), ExchangeImpersonation checks, the per-account
//! concurrency budget, injected faults, streaming bodies and the call log. Owns the wire
//! behaviour; the operations themselves live in `ops/`.

use super::calls::CallRecord;
use super::faults::FaultKind;
use super::ops::{self, Answer, Ctx, StreamPlan};
use super::respond::{self, MessageError};
use super::shared::{CONTROL_PATH, EWS_PATH, OverBudget, Shared};
use super::state::key;
use crate::ews::{RequestHeader, ResponseCode};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{any, post};
use base64::Engine as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(EWS_PATH, post(ews))
        .route("/ews/exchange.asmx", post(ews))
        .route(
            &format!("{CONTROL_PATH}/{{command}}"),
            any(super::control::http),
        )
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .with_state(shared)
}

/// The OAuth 2.0 token endpoint (client credentials) of the apps `add_oauth_client` made.
async fn token(
    State(shared): State<Arc<Shared>>,
    axum::Form(form): axum::Form<std::collections::HashMap<String, String>>,
) -> Response {
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or("");
    let mut inner = shared.lock();
    let account = inner
        .state
        .oauth_clients
        .get(field("client_id"))
        .filter(|(secret, _)| {
            field("grant_type") == "client_credentials" && secret == field("client_secret")
        })
        .map(|(_, account)| account.clone());
    let (status, body) = match account {
        Some(account) => {
            let client = field("client_id");
            // Graph permissions as set for the app; EWS app-only tokens carry full_access_as_app.
            let roles = match field("scope").starts_with("https://graph.microsoft.com/") {
                true => inner.state.app_roles.get(client).cloned(),
                false => Some(vec!["full_access_as_app".into()]),
            }
            .unwrap_or_else(|| vec!["Mail.ReadWrite".into()]);
            let token = access_token(client, field("scope"), &roles);
            inner.state.tokens.insert(token.clone(), account);
            inner.state.token_roles.insert(token.clone(), roles);
            inner
                .state
                .token_scopes
                .insert(token.clone(), field("scope").to_owned());
            let body = serde_json::json!({"token_type": "Bearer", "expires_in": 3600, "access_token": token});
            (StatusCode::OK, body)
        }
        None => (
            StatusCode::UNAUTHORIZED,
            serde_json::json!({"error": "invalid_client"}),
        ),
    };
    drop(inner);
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap_or_default()
}

/// An access token shaped as Entra ID's: a JWT whose payload names the audience, the app and
/// its application permissions (`roles`). The signature is made up: nothing checks it.
fn access_token(client_id: &str, scope: &str, roles: &[String]) -> String {
    let part = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let now = jiff::Timestamp::now().as_second();
    let audience = scope.strip_suffix("/.default").unwrap_or(scope);
    format!(
        "{}.{}.sim{:032x}",
        part(serde_json::json!({"typ": "JWT", "alg": "RS256"})),
        part(serde_json::json!({
            "aud": audience, "appid": client_id, "roles": roles,
            "iat": now, "exp": now + 3600, "uti": format!("{:016x}", fastrand::u64(..)),
        })),
        fastrand::u128(..)
    )
}

/// What goes back on the wire.
enum Reply {
    Xml {
        status: u16,
        xml: String,
    },
    Status {
        status: u16,
        retry_after: Option<u64>,
    },
    Stream(StreamPlan),
    Drop,
    Truncate(String),
}

pub(super) fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The account the Authorization header proves, if any.
fn authenticate(shared: &Shared, headers: &HeaderMap) -> Option<String> {
    let auth = header_text(headers, "authorization")?;
    let (scheme, value) = auth.split_once(' ')?;
    let inner = shared.lock();
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(value.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (user, password) = text.split_once(':')?;
        inner.state.basic(user, password)
    } else if scheme.eq_ignore_ascii_case("bearer") {
        inner.state.bearer(value.trim())
    } else {
        None
    }
}

async fn ews(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let started = Instant::now();
    let mut record = CallRecord {
        at: jiff::Timestamp::now().to_string(),
        operation: "-".into(),
        account: None,
        impersonated: None,
        anchor_mailbox: header_text(&headers, "x-anchormailbox"),
        result: String::new(),
        http_status: 200,
        bytes_in: body.len() as u64,
        bytes_out: 0,
        duration_ms: 0,
    };
    let reply = serve(&shared, &headers, &body, &mut record).await;
    let pinned = affinity(&headers).preferred;
    let mut response = match reply {
        Reply::Xml { status, xml } => {
            record.http_status = status;
            record.bytes_out = xml.len() as u64;
            xml_response(status, Body::from(xml), None)
        }
        Reply::Status {
            status,
            retry_after,
        } => {
            record.http_status = status;
            record.result = format!("HTTP {status}");
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            if let Some(secs) = retry_after {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            if status == 401 {
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"simulator\", Bearer"),
                );
            }
            r
        }
        Reply::Stream(plan) => {
            record.result = "NoError".into();
            xml_response(200, stream_body(shared.clone(), plan), None)
        }
        Reply::Drop => {
            record.result = "dropped".into();
            let failing = futures_util::stream::once(async {
                Err::<Bytes, std::io::Error>(std::io::Error::other("connection dropped"))
            });
            xml_response(200, Body::from_stream(failing), None)
        }
        Reply::Truncate(xml) => {
            record.result = format!("{} (truncated)", record.result);
            let full = xml.len();
            let mut cut = full / 2;
            while !xml.is_char_boundary(cut) {
                cut -= 1;
            }
            record.bytes_out = cut as u64;
            let half = Bytes::from(xml.into_bytes()).slice(..cut);
            let parts = futures_util::stream::iter([
                Ok(half),
                Err(std::io::Error::other("body truncated")),
            ]);
            xml_response(200, Body::from_stream(parts), Some(full))
        }
    };
    if let Some(backend) = pinned
        && let Ok(v) = HeaderValue::from_str(&format!("{AFFINITY_COOKIE}={backend}; path=/"))
    {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    record.duration_ms = started.elapsed().as_millis() as u64;
    shared.lock().calls.record(record);
    response
}

fn xml_response(status: u16, body: Body, content_length: Option<usize>) -> Response {
    let mut r = Response::new(body);
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml; charset=utf-8"),
    );
    if let Some(len) = content_length {
        r.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    r
}

/// Leaves the concurrency counters when the call ends, however it ends.
pub(super) struct InFlight {
    shared: Arc<Shared>,
    account: String,
    mailbox: Option<String>,
}

impl InFlight {
    /// Counts a call against its account and mailbox; returns the guard, the account's calls
    /// in flight (this one included) and its budget.
    pub(super) fn enter(shared: &Arc<Shared>, account: &str, mailbox: &str) -> (Self, u32, u32) {
        let (guard, in_flight, _, limit) = Self::enter_both(shared, account, mailbox);
        (guard, in_flight, limit)
    }

    /// [`Self::enter`], also returning the mailbox's calls in flight (this one included).
    pub(super) fn enter_both(
        shared: &Arc<Shared>,
        account: &str,
        mailbox: &str,
    ) -> (Self, u32, u32, u32) {
        let mut inner = shared.lock();
        let in_flight = inner.calls.enter_account(account);
        let in_mailbox = inner.calls.enter_mailbox(mailbox);
        let limit = inner.concurrency_limit;
        drop(inner);
        let guard = Self {
            shared: shared.clone(),
            account: account.to_owned(),
            mailbox: Some(mailbox.to_owned()),
        };
        (guard, in_flight, in_mailbox, limit)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut inner = self.shared.lock();
        inner.calls.leave_account(&self.account);
        if let Some(m) = &self.mailbox {
            inner.calls.leave_mailbox(m);
        }
    }
}

fn fault_reply(shared: &Shared, e: &MessageError, record: &mut CallRecord) -> Reply {
    let style = shared.lock().style;
    let doc = respond::fault_document(style, e);
    record.result = doc.result;
    Reply::Xml {
        status: 500,
        xml: doc.xml,
    }
}

/// One EWS call: authenticate, read the request, pick the mailbox, apply the budget and any
/// injected fault, then answer.
async fn serve(
    shared: &Arc<Shared>,
    headers: &HeaderMap,
    body: &Bytes,
    record: &mut CallRecord,
) -> Reply {
    let Some(account) = authenticate(shared, headers) else {
        return status_reply(401, None);
    };
    record.account = Some(account.clone());
    let (header, request) = match read_request(body) {
        Ok(parsed) => parsed,
        Err(e) => return fault_reply(shared, &e, record),
    };
    record.operation = request.name().to_owned();
    let impersonated = header.impersonation.as_ref().map(|s| s.value().to_owned());
    record.impersonated = impersonated.clone();
    let (mailbox, address) = match target(shared, &account, impersonated.as_deref()) {
        Ok(t) => t,
        Err(e) => return fault_reply(shared, &e, record),
    };
    let (_guard, in_flight, limit) = InFlight::enter(shared, &account, &key(&address));
    if in_flight > limit {
        return over_budget(shared, limit, request.name(), record);
    }
    let after = match injected(shared, &address, request.name(), record).await {
        Ok(after) => after,
        Err(reply) => return reply,
    };
    let answer = {
        let mut inner = shared.lock();
        let ctx = Ctx {
            account: &account,
            mailbox,
            now: jiff::Timestamp::now().as_second(),
            minute: shared.options.minute,
            affinity: affinity(headers),
        };
        let answer = ops::handle(&mut inner, &ctx, request);
        if inner.dirty {
            shared.persist_wake.notify_one();
        }
        answer
    };
    match answer {
        Answer::Doc { status, doc } => {
            record.result = doc.result;
            if after == Some(FaultKind::TruncateBody) {
                Reply::Truncate(doc.xml)
            } else {
                Reply::Xml {
                    status,
                    xml: doc.xml,
                }
            }
        }
        Answer::Stream(plan) => Reply::Stream(plan),
    }
}

/// The affinity a request asked for and the back end its cookie routes it to.
fn affinity(headers: &HeaderMap) -> ops::Affinity {
    let prefers = header_text(headers, "x-preferserveraffinity")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let anchor = header_text(headers, "x-anchormailbox");
    let routed_to = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| name.trim() == AFFINITY_COOKIE)
        .map(|(_, value)| value.trim().to_owned());
    ops::Affinity {
        preferred: anchor.filter(|_| prefers).map(|a| ops::backend_of(&a)),
        routed_to,
    }
}

/// The cookie that pins a group of subscriptions to its mailbox server.
const AFFINITY_COOKIE: &str = "X-BackEndOverrideCookie";

fn status_reply(status: u16, retry_after: Option<u64>) -> Reply {
    Reply::Status {
        status,
        retry_after,
    }
}

/// Reads the envelope and the operation; what cannot be read becomes ErrorSchemaValidation
/// naming the line, column and what was wrong.
fn read_request(body: &Bytes) -> Result<(RequestHeader, ops::Request), MessageError> {
    let xml = std::str::from_utf8(body).map_err(|e| {
        ops::fault(
            ResponseCode::ErrorSchemaValidation,
            format!("The request is not UTF-8: {e}."),
        )
    })?;
    crate::ews::envelope::read_request(xml, ops::read_operation).map_err(|e| {
        let (line, column, message) = match &e {
            crate::ews::Error::Malformed {
                line,
                column,
                message,
            } => (*line, *column, message.clone()),
            other => (0, 0, other.to_string()),
        };
        ops::fault(
            ResponseCode::ErrorSchemaValidation,
            format!("The request failed schema validation: {message}"),
        )
        .with("LineNumber", line.to_string())
        .with("LinePosition", column.to_string())
        .with("Violation", message)
    })
}

/// Whose mailbox the call acts on: the impersonated one (if allowed), else the account's own
/// (none for an account without a mailbox: then only folders named by address or id work),
/// and the address the budget and fault rules count it under.
fn target(
    shared: &Shared,
    account: &str,
    impersonated: Option<&str>,
) -> Result<(Option<u32>, String), MessageError> {
    let inner = shared.lock();
    let acc = inner.state.accounts.get(account);
    match impersonated {
        Some(addr) => {
            let may = acc.is_some_and(|a| a.impersonate_all || a.impersonate.contains(&key(addr)));
            match inner.state.mailbox_number(addr) {
                Err(_) => Err(ops::fault(
                    ResponseCode::ErrorNonExistentMailbox,
                    "The SMTP address has no mailbox associated with it.",
                )
                .with("SmtpAddress", addr)),
                Ok(_) if !may => Err(ops::fault(
                    ResponseCode::ErrorImpersonateUserDenied,
                    "The account does not have permission to impersonate the requested user.",
                )),
                Ok(n) => Ok((Some(n), addr.to_owned())),
            }
        }
        None => {
            let own = acc.and_then(|a| a.mailbox);
            let address = own
                .and_then(|n| inner.state.mailboxes.get(&n))
                .map_or_else(|| account.to_owned(), |m| m.address.clone());
            Ok((own, address))
        }
    }
}

/// The answer to a call beyond the account's concurrency budget.
fn over_budget(shared: &Shared, limit: u32, op: &str, record: &mut CallRecord) -> Reply {
    let text = format!(
        "The server cannot service this request right now. Try again later. Policy: MaxConcurrency {limit}."
    );
    match shared.options.over_budget {
        OverBudget::ServerBusy => {
            let back_off = shared.options.over_budget_back_off.as_millis().to_string();
            let e = ops::fault(ResponseCode::ErrorServerBusy, text)
                .with("BackOffMilliseconds", back_off);
            fault_reply(shared, &e, record)
        }
        OverBudget::TooManyObjectsOpened => {
            let e = ops::fault(ResponseCode::ErrorTooManyObjectsOpened, text);
            message_reply(shared, op, &e, record)
        }
    }
}

/// An error in a response message (HTTP 200), with the empty SyncState syncs add.
fn message_reply(shared: &Shared, op: &str, e: &MessageError, record: &mut CallRecord) -> Reply {
    let style = shared.lock().style;
    let doc = if op.starts_with("Sync") {
        respond::sync_error_document(style, op, e)
    } else {
        respond::error_document(style, op, e)
    };
    record.result = doc.result;
    Reply::Xml {
        status: 200,
        xml: doc.xml,
    }
}

/// Applies the fault rules that match this call: waits out delays, and returns the reply of a
/// fault that replaces the answer (`Err`) or the one that alters it afterwards (`Ok`).
async fn injected(
    shared: &Shared,
    address: &str,
    op: &str,
    record: &mut CallRecord,
) -> Result<Option<FaultKind>, Reply> {
    let rules = shared.lock().faults.take(Some(address), op);
    let mut after: Option<FaultKind> = None;
    for f in rules {
        match f {
            FaultKind::Delay { ms } => tokio::time::sleep(Duration::from_millis(ms)).await,
            other => after = Some(other),
        }
    }
    let busy = "The server cannot service this request right now. Try again later.";
    let message = |code, text: &str| ops::fault(code, text.to_owned());
    Err(match after {
        Some(FaultKind::Unauthorized) => status_reply(401, None),
        Some(FaultKind::Http503 { retry_after_secs }) => status_reply(503, Some(retry_after_secs)),
        Some(FaultKind::Http429 { retry_after_secs }) => status_reply(429, Some(retry_after_secs)),
        Some(FaultKind::ServerBusyFault { back_off_ms }) => {
            let e = message(ResponseCode::ErrorServerBusy, busy)
                .with("BackOffMilliseconds", back_off_ms.to_string());
            fault_reply(shared, &e, record)
        }
        Some(FaultKind::ServerBusyMessage { back_off_ms }) => {
            let e = message(ResponseCode::ErrorServerBusy, busy)
                .with("BackOffMilliseconds", back_off_ms.to_string());
            message_reply(shared, op, &e, record)
        }
        Some(FaultKind::InvalidSyncState) => {
            let e = message(
                ResponseCode::ErrorInvalidSyncStateData,
                "Synchronization state data is corrupt or otherwise invalid.",
            );
            message_reply(shared, op, &e, record)
        }
        Some(FaultKind::MailboxMoveInProgress) => {
            let e = message(
                ResponseCode::ErrorMailboxMoveInProgress,
                "The mailbox is being moved to another database; try again later.",
            );
            message_reply(shared, op, &e, record)
        }
        Some(FaultKind::DropConnection) => Reply::Drop,
        Some(FaultKind::Refuse { code }) => {
            let e = message(
                ResponseCode::parse(&code),
                "The request was refused (injected fault).",
            );
            message_reply(shared, op, &e, record)
        }
        other => return Ok(other),
    })
}

/// The streaming body: an envelope at once, then one per batch of events, a keep-alive at each
/// interval, and `Closed` at the connection timeout.
fn stream_body(shared: Arc<Shared>, plan: StreamPlan) -> Body {
    struct Conn {
        shared: Arc<Shared>,
        plan: StreamPlan,
        epoch: u64,
        deadline: tokio::time::Instant,
        next_keep_alive: tokio::time::Instant,
        started: bool,
        done: bool,
    }
    // However the connection ends (timeout, drop, the client going away), it is no longer
    // charged to its budget.
    impl Drop for Conn {
        fn drop(&mut self) {
            let mut inner = self.shared.lock();
            if let Some(open) = inner.streams_open.get_mut(&self.plan.charged_to) {
                *open = open.saturating_sub(1);
            }
        }
    }
    let now = tokio::time::Instant::now();
    let keep_alive = shared.options.keep_alive;
    let epoch = shared.lock().subs.streams_epoch;
    let conn = Conn {
        epoch,
        deadline: now + plan.timeout,
        next_keep_alive: now + keep_alive,
        shared,
        plan,
        started: false,
        done: false,
    };
    let stream = futures_util::stream::unfold(conn, move |mut c| async move {
        if c.done {
            return None;
        }
        loop {
            let now = tokio::time::Instant::now();
            let status = if !c.started {
                c.started = true;
                Some("OK")
            } else if now >= c.deadline {
                c.done = true;
                Some("Closed")
            } else if now >= c.next_keep_alive {
                c.next_keep_alive = now + keep_alive;
                Some("OK")
            } else {
                None
            };
            if c.shared.lock().subs.streams_epoch != c.epoch {
                c.done = true;
                let broken = std::io::Error::other("streaming connection dropped");
                return Some((Err(broken), c));
            }
            let doc = {
                let mut inner = c.shared.lock();
                let doc = ops::stream_envelope(&mut inner, &mut c.plan, status);
                if c.done {
                    for (n, _) in &c.plan.subscriptions {
                        if let Some(s) = inner.subs.subs.get_mut(n) {
                            s.streaming = false;
                        }
                    }
                }
                doc
            };
            if let Some(doc) = doc {
                return Some((Ok::<Bytes, std::io::Error>(Bytes::from(doc.xml)), c));
            }
            let wake_at = c.deadline.min(c.next_keep_alive);
            let wakes: Vec<_> = c
                .plan
                .wakes
                .iter()
                .map(|w| Box::pin(w.notified()))
                .collect();
            tokio::select! {
                _ = futures_util::future::select_all(wakes) => {}
                _ = tokio::time::sleep_until(wake_at) => {}
            }
        }
    });
    Body::from_stream(stream)
}
