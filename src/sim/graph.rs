//! Microsoft Graph (v1.0) over the same mailboxes as the EWS endpoint, so one scenario runs over
//! both: `/v1.0/users/{id}/mailFolders/…` (get, `childFolders`, `delta`),
//! `mailFolders/{id}/messages/delta`, `messages/{id}` (GET, PATCH) and `$batch`, with bearer
//! tokens from the token endpoint (issued for the Graph scope, shaped as Entra ID's JWTs whose
//! `roles` claim carries the app's permissions: `Mail.ReadWrite` unless `set_app_roles` says
//! otherwise; reading needs `Mail.Read` or `Mail.ReadWrite`, a PATCH `Mail.ReadWrite`, else
//! 403 `ErrorAccessDenied`), the app's mailbox scope (the
//! account's impersonation grants stand for RBAC for Applications), Graph's per-mailbox limit
//! of 4 requests in flight, the fault rules and the call log of the EWS side.
//!
//! As strict as Graph's documentation where foldertrack touches it: an unknown `$select`
//! property, query option or path is 400; more than 20 requests in a `$batch`, duplicate ids,
//! or a body without `Content-Type` are 400; delta links carry their `$select`; an expired
//! delta token is 410 `SyncStateNotFound`; ids are immutable only when the request carries
//! `Prefer: IdType="ImmutableId"` (else a moved message gets a new id, as in EWS); batch
//! answers come back in any order. Change notification subscriptions (`/subscriptions`) are
//! answered here and kept and delivered by `graph_notify.rs`. Not modelled:
//! `$filter`/`$orderby`, `$expand` other than the one single-value extended property,
//! attachments, the per-app 10,000-requests-per-10-minutes window (injected 429s stand for it).

use super::calls::CallRecord;
use super::faults::FaultKind;
use super::ids::{self, DeltaToken, ItemKey};
use super::mailbox::{Folder, FolderChange, ItemChange, Mailbox};
use super::message::{self, Message};
use super::server::{InFlight, header_text};
use super::shared::{Inner, Shared};
use super::state::key;
use crate::ews::DistinguishedFolder;
use crate::graph as protocol;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::any;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where the Graph root is served.
pub const GRAPH_PATH: &str = "/v1.0";
/// Graph's limit of requests in flight per app and mailbox.
pub const MAILBOX_CONCURRENCY: u32 = protocol::MAILBOX_CONCURRENCY as u32;
/// Items per delta or `childFolders` page when the request names no size (Graph's default).
const DEFAULT_PAGE: usize = protocol::DEFAULT_PAGE as usize;

/// The message properties the simulator knows (a subset of Graph's `message`); the bit of a
/// property in a `$select` mask is its index.
const MESSAGE_PROPS: [&str; 23] = [
    "id",
    "changeKey",
    "parentFolderId",
    "internetMessageId",
    "subject",
    "from",
    "sender",
    "toRecipients",
    "ccRecipients",
    "bccRecipients",
    "replyTo",
    "sentDateTime",
    "receivedDateTime",
    "createdDateTime",
    "lastModifiedDateTime",
    "hasAttachments",
    "conversationId",
    "categories",
    "isRead",
    "isDraft",
    "importance",
    "body",
    "bodyPreview",
];
const FOLDER_PROPS: [&str; 7] = [
    "id",
    "displayName",
    "parentFolderId",
    "childFolderCount",
    "unreadItemCount",
    "totalItemCount",
    "isHidden",
];

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(&format!("{GRAPH_PATH}/{{*rest}}"), any(http))
        .with_state(shared)
}

/// An answer: status, JSON body, `Retry-After`, and how the connection ends.
struct Out {
    status: u16,
    body: Option<Value>,
    retry_after: Option<u64>,
    cut: Option<FaultKind>,
    /// The call log's result when it is not the status's (a `$batch` lists its items').
    log: Option<String>,
}

impl Out {
    fn ok(body: Value) -> Self {
        Self {
            status: 200,
            body: Some(body),
            retry_after: None,
            cut: None,
            log: None,
        }
    }

    fn error(status: u16, code: &str, message: &str) -> Self {
        Self {
            status,
            body: Some(protocol::error::body(code, message)),
            retry_after: None,
            cut: None,
            log: None,
        }
    }

    fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    fn bad(message: &str) -> Self {
        Self::error(400, "BadRequest", message)
    }

    fn not_found() -> Self {
        Self::error(
            404,
            "ErrorItemNotFound",
            "The specified object was not found in the store.",
        )
    }

    /// The call log's result: `ok` or the error code.
    fn result(&self) -> String {
        match self.body.as_ref().and_then(|b| b.pointer("/error/code")) {
            Some(Value::String(code)) => code.clone(),
            _ if self.status < 300 => "ok".into(),
            _ => format!("HTTP {}", self.status),
        }
    }
}

/// The `Prefer` header's preferences the simulator honours.
#[derive(Clone, Copy, Default)]
struct Prefer {
    immutable: bool,
    page: Option<usize>,
    text_body: bool,
}

impl Prefer {
    fn read(text: Option<&str>) -> Self {
        let mut p = Self::default();
        for part in text.unwrap_or("").split(',').map(str::trim) {
            let compact: String = part.chars().filter(|c| !c.is_whitespace()).collect();
            if compact.eq_ignore_ascii_case(protocol::IMMUTABLE_ID) {
                p.immutable = true;
            } else if compact.eq_ignore_ascii_case(protocol::TEXT_BODY) {
                p.text_body = true;
            } else if let Some(n) = compact.strip_prefix("odata.maxpagesize=") {
                p.page = n.parse().ok().filter(|n| *n > 0);
            }
        }
        p
    }
}

/// One request, from the wire or from a `$batch`.
struct Req<'a> {
    method: Method,
    /// The path below the Graph root, still percent-encoded: `/users/…`.
    path: &'a str,
    query: Vec<(String, String)>,
    prefer: Prefer,
    body: Option<&'a Value>,
}

impl Req<'_> {
    fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// 400 for a query option this path does not take.
    fn only(&self, allowed: &[&str]) -> Result<(), Out> {
        match self
            .query
            .iter()
            .find(|(k, _)| !allowed.iter().any(|a| a.eq_ignore_ascii_case(k)))
        {
            Some((k, _)) => Err(Out::bad(&format!(
                "Query option '{k}' is not allowed. Make sure that it is supported on this request."
            ))),
            None => Ok(()),
        }
    }
}

/// What a path names.
enum Route {
    Folder(String),
    ChildFolders(String),
    FoldersDelta,
    MessagesDelta(String),
    Message(String),
}

impl Route {
    fn operation(&self, method: &Method) -> &'static str {
        match self {
            Route::Folder(_) => "mailFolders.get",
            Route::ChildFolders(_) => "mailFolders.childFolders",
            Route::FoldersDelta => "mailFolders.delta",
            Route::MessagesDelta(_) => "messages.delta",
            Route::Message(_) if method == Method::PATCH => "messages.update",
            Route::Message(_) => "messages.get",
        }
    }
}

fn decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The user and what the path names; 400 for a path Graph would not resolve.
fn route(method: &Method, path: &str) -> Result<(String, Route), Out> {
    let parts: Vec<String> = path
        .split('/')
        .filter(|p| !p.is_empty())
        .map(decode)
        .collect();
    let p: Vec<&str> = parts.iter().map(String::as_str).collect();
    let (user, route) = match p.as_slice() {
        ["users", u, "mailFolders", "delta"] => (u, Route::FoldersDelta),
        ["users", u, "mailFolders", f] => (u, Route::Folder((*f).to_owned())),
        ["users", u, "mailFolders", f, "childFolders"] => (u, Route::ChildFolders((*f).to_owned())),
        ["users", u, "mailFolders", f, "messages", "delta"] => {
            (u, Route::MessagesDelta((*f).to_owned()))
        }
        ["users", u, "messages", id] => (u, Route::Message((*id).to_owned())),
        _ => {
            let last = p.last().copied().unwrap_or("");
            return Err(Out::bad(&format!(
                "Resource not found for the segment '{last}'."
            )));
        }
    };
    let allowed = match route {
        Route::Message(_) => method == Method::GET || method == Method::PATCH,
        _ => method == Method::GET,
    };
    if !allowed {
        return Err(Out::error(
            405,
            "Request_BadRequest",
            &format!("The HTTP method '{method}' is not allowed on this resource."),
        ));
    }
    Ok(((*user).to_owned(), route))
}

/// A `$select` as a mask over `props`; every property when absent; 400 for an unknown one.
fn select(props: &[&str], text: Option<&str>, type_name: &str) -> Result<u64, Out> {
    let Some(text) = text else {
        return Ok(u64::MAX);
    };
    let mut mask = 1; // the id always comes back
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match props.iter().position(|p| p.eq_ignore_ascii_case(name)) {
            Some(bit) => mask |= 1 << bit,
            None => {
                return Err(Out::bad(&format!(
                    "Could not find a property named '{name}' on type 'microsoft.graph.{type_name}'."
                )));
            }
        }
    }
    Ok(mask)
}

fn selected(props: &[&str], mask: u64, name: &str) -> bool {
    props
        .iter()
        .position(|p| *p == name)
        .is_some_and(|bit| mask & (1 << bit) != 0)
}

fn well_known(name: &str) -> Option<DistinguishedFolder> {
    Some(match name.to_ascii_lowercase().as_str() {
        "msgfolderroot" => DistinguishedFolder::MsgFolderRoot,
        "inbox" => DistinguishedFolder::Inbox,
        "sentitems" => DistinguishedFolder::SentItems,
        "deleteditems" => DistinguishedFolder::DeletedItems,
        "drafts" => DistinguishedFolder::Drafts,
        "junkemail" => DistinguishedFolder::JunkEmail,
        "outbox" => DistinguishedFolder::Outbox,
        _ => return None,
    })
}

/// A folder by id or well-known name.
fn folder(mb: &Mailbox, name: &str) -> Result<u32, Out> {
    well_known(name)
        .and_then(|d| mb.distinguished(d))
        .or_else(|| mb.folder_by_id(name))
        .ok_or_else(Out::not_found)
}

fn folder_json(mb: &Mailbox, f: &Folder, mask: u64) -> Value {
    let mut o = Map::new();
    o.insert("id".into(), json!(mb.folder_id(f.number)));
    let mut put = |name: &str, value: Value| {
        if selected(&FOLDER_PROPS, mask, name) {
            o.insert(name.into(), value);
        }
    };
    put("displayName", json!(f.name));
    if let Some(parent) = f.parent {
        put("parentFolderId", json!(mb.folder_id(parent)));
    }
    put("childFolderCount", json!(mb.children(f.number).count()));
    put(
        "unreadItemCount",
        json!(f.items.values().filter(|m| !m.is_read).count()),
    );
    put("totalItemCount", json!(f.items.len()));
    put("isHidden", json!(false));
    Value::Object(o)
}

fn recipient(a: (Option<&str>, &str)) -> Value {
    json!({"emailAddress": {"name": a.0.unwrap_or(a.1), "address": a.1}})
}

fn message_json(mb: &Mailbox, key: ItemKey, m: &Message, mask: u64, prefer: Prefer) -> Value {
    let e = m.envelope.read();
    let mut o = Map::new();
    let change_key = mb.item_change_key(key, m);
    o.insert("@odata.etag".into(), json!(format!("W/\"{change_key}\"")));
    o.insert(
        "id".into(),
        json!(mb.graph_id(key, m.origin, prefer.immutable)),
    );
    let mut put = |name: &str, value: Value| {
        if selected(&MESSAGE_PROPS, mask, name) {
            o.insert(name.into(), value);
        }
    };
    let time = |secs: i64| json!(message::format_time(secs));
    put("changeKey", json!(change_key));
    put("parentFolderId", json!(mb.folder_id(key.folder)));
    put("internetMessageId", json!(e.internet_message_id));
    put("subject", json!(e.subject));
    put("from", recipient(e.from));
    put("sender", recipient(e.from));
    put(
        "toRecipients",
        json!(e.to.iter().map(|a| recipient(*a)).collect::<Vec<_>>()),
    );
    put(
        "ccRecipients",
        json!(e.cc.iter().map(|a| recipient(*a)).collect::<Vec<_>>()),
    );
    put("bccRecipients", json!([]));
    put("replyTo", json!([]));
    put("sentDateTime", time(e.sent));
    put("receivedDateTime", time(e.received));
    put("createdDateTime", time(e.received));
    put("lastModifiedDateTime", time(e.received));
    put("hasAttachments", json!(e.has_attachments));
    put("conversationId", json!(message::conversation_id(&e)));
    put("categories", json!(m.categories()));
    put("isRead", json!(m.is_read));
    put("isDraft", json!(false));
    put("importance", json!("normal"));
    let text = m.body.as_ref().map_or("", |b| b.text.as_str());
    let html = m
        .body
        .as_ref()
        .is_some_and(|b| b.body_type.eq_ignore_ascii_case("html"));
    let content_type = if html && !prefer.text_body {
        "html"
    } else {
        "text"
    };
    put(
        "body",
        json!({"contentType": content_type, "content": text}),
    );
    put(
        "bodyPreview",
        json!(text.chars().take(255).collect::<String>()),
    );
    Value::Object(o)
}

/// `$expand=singleValueExtendedProperties($filter=id eq '…')`, the one expansion modelled.
fn expansion(m: &Message, e: &message::Envelope<'_>, expand: &str) -> Result<Value, Out> {
    let wanted = expand
        .strip_prefix("singleValueExtendedProperties($filter=id eq '")
        .and_then(|r| r.strip_suffix("')"))
        .ok_or_else(|| {
            Out::bad(&format!(
                "Parsing OData Select and Expand failed: '{expand}' is not supported here."
            ))
        })?;
    let value = if wanted.eq_ignore_ascii_case(protocol::message::SEARCH_KEY) {
        Some(message::search_key(e.internet_message_id))
    } else {
        m.extended()
            .iter()
            .find(|p| {
                p.field
                    .property_name
                    .as_deref()
                    .is_some_and(|n| wanted.ends_with(&format!("Name {n}")))
            })
            .and_then(|p| p.value.clone())
    };
    Ok(json!(
        value
            .map(|v| vec![json!({"id": wanted, "value": v})])
            .unwrap_or_default()
    ))
}

/// Where delta and paging links point.
struct Links<'a> {
    base: &'a str,
    user: &'a str,
}

impl Links<'_> {
    fn to(&self, path: &str, query: &str) -> String {
        format!("{}{}{path}?{query}", self.base, protocol::user(self.user))
    }

    /// A delta page: its entries and the link to go on with (`nextLink` while the round has
    /// more, else the `deltaLink`).
    fn page(
        &self,
        type_name: &str,
        value: Vec<Value>,
        path: &str,
        t: DeltaToken,
        last: bool,
    ) -> Out {
        let (name, param) = if last {
            ("@odata.deltaLink", "$deltatoken")
        } else {
            ("@odata.nextLink", "$skiptoken")
        };
        let link = self.to(path, &format!("{param}={}", ids::delta_token(t)));
        let mut body = json!({
            "@odata.context": format!("{}/$metadata#Collection({type_name})", self.base),
            "value": value,
        });
        body[name] = json!(link);
        Out::ok(body)
    }
}

/// The token of a followed link, or a fresh round; 410 when it expired.
fn delta_start(
    req: &Req<'_>,
    mb: &Mailbox,
    folder: u32,
    props: &[&str],
    type_name: &str,
) -> Result<DeltaToken, Out> {
    let link = req.param("$deltatoken").or_else(|| req.param("$skiptoken"));
    let Some(text) = link else {
        req.only(&["$select"])?;
        return Ok(DeltaToken {
            mailbox: mb.number,
            folder,
            seq: 0,
            select: select(props, req.param("$select"), type_name)?,
            epoch: mb.delta_epoch,
        });
    };
    req.only(&["$deltatoken", "$skiptoken"])?;
    match ids::parse_delta_token(text) {
        Some(t) if t.mailbox == mb.number && t.folder == folder && t.epoch == mb.delta_epoch => {
            Ok(t)
        }
        Some(t) if t.mailbox == mb.number && t.folder == folder => Err(Out::error(
            410,
            "SyncStateNotFound",
            "The sync state is not found. It may have expired; start a new delta round.",
        )),
        _ => Err(Out::bad("The delta token is not valid for this request.")),
    }
}

fn messages_delta(
    mb: &Mailbox,
    req: &Req<'_>,
    folder_name: &str,
    links: &Links<'_>,
) -> Result<Out, Out> {
    let f = folder(mb, folder_name)?;
    let t = delta_start(req, mb, f, &MESSAGE_PROPS, "message")?;
    let max = req.prefer.page.unwrap_or(DEFAULT_PAGE);
    let page = mb.item_changes(f, t.seq, max).ok_or_else(Out::not_found)?;
    let folder = mb.folders.get(&f).ok_or_else(Out::not_found)?;
    let mut value = Vec::with_capacity(page.changes.len());
    for change in page.changes {
        let entry = match change {
            ItemChange::Create(n) | ItemChange::Update(n) | ItemChange::ReadFlag(n) => {
                let Some(m) = folder.items.get(&n) else {
                    continue;
                };
                let key = mb.item_key(f, n);
                if matches!(change, ItemChange::ReadFlag(_)) {
                    json!({
                        "@odata.etag": format!("W/\"{}\"", mb.item_change_key(key, m)),
                        "id": mb.graph_id(key, m.origin, req.prefer.immutable),
                        "isRead": m.is_read,
                    })
                } else {
                    message_json(mb, key, m, t.select, req.prefer)
                }
            }
            ItemChange::Delete(n) => {
                let origin = folder
                    .tombstones
                    .iter()
                    .rev()
                    .find(|x| x.item == n)
                    .map_or(0, |x| x.origin);
                json!({
                    "@odata.type": "#microsoft.graph.message",
                    "id": mb.graph_id(mb.item_key(f, n), origin, req.prefer.immutable),
                    "@removed": {"reason": "deleted"},
                })
            }
        };
        value.push(entry);
    }
    let path = format!(
        "/mailFolders/{}/messages/delta",
        protocol::segment(folder_name)
    );
    let next = DeltaToken { seq: page.seq, ..t };
    Ok(links.page("message", value, &path, next, page.last))
}

fn folders_delta(mb: &Mailbox, req: &Req<'_>, links: &Links<'_>) -> Result<Out, Out> {
    let root = folder(mb, "msgfolderroot")?;
    let t = delta_start(req, mb, 0, &FOLDER_PROPS, "mailFolder")?;
    let max = req.prefer.page.unwrap_or(DEFAULT_PAGE);
    let page = mb.folder_changes(root, t.seq, max);
    let value: Vec<Value> = page
        .changes
        .into_iter()
        .map(|c| match c {
            FolderChange::Create(n) | FolderChange::Update(n) => mb
                .folders
                .get(&n)
                .map(|f| folder_json(mb, f, t.select))
                .unwrap_or(Value::Null),
            FolderChange::Delete(n) => json!({
                "@odata.type": "#microsoft.graph.mailFolder",
                "id": mb.folder_id(n),
                "@removed": {"reason": "deleted"},
            }),
        })
        .filter(|v| !v.is_null())
        .collect();
    let next = DeltaToken { seq: page.seq, ..t };
    Ok(links.page("mailFolder", value, "/mailFolders/delta", next, page.last))
}

fn child_folders(mb: &Mailbox, req: &Req<'_>, name: &str, links: &Links<'_>) -> Result<Out, Out> {
    req.only(&["$select", "$top", "$skip", "includeHiddenFolders"])?;
    let f = folder(mb, name)?;
    let mask = select(&FOLDER_PROPS, req.param("$select"), "mailFolder")?;
    let number = |p: &str| -> Result<Option<usize>, Out> {
        req.param(p)
            .map(|v| {
                v.parse()
                    .map_err(|_| Out::bad(&format!("Invalid {p} value '{v}'.")))
            })
            .transpose()
    };
    let top = number("$top")?.unwrap_or(DEFAULT_PAGE).max(1);
    let skip = number("$skip")?.unwrap_or(0);
    let all: Vec<&Folder> = mb.children(f).collect();
    let value: Vec<Value> = all
        .iter()
        .skip(skip)
        .take(top)
        .map(|c| folder_json(mb, c, mask))
        .collect();
    let mut out = json!({
        "@odata.context": format!("{}/$metadata#Collection(mailFolder)", links.base),
        "value": value,
    });
    if skip + top < all.len() {
        let mut query = format!("$top={top}&$skip={}", skip + top);
        if let Some(s) = req.param("$select") {
            query = format!("$select={}&{query}", protocol::query_value(s));
        }
        let path = format!("/mailFolders/{}/childFolders", protocol::segment(name));
        out["@odata.nextLink"] = json!(links.to(&path, &query));
    }
    Ok(Out::ok(out))
}

fn message_get(mb: &Mailbox, req: &Req<'_>, id: &str) -> Result<Out, Out> {
    req.only(&["$select", "$expand"])?;
    let mask = select(&MESSAGE_PROPS, req.param("$select"), "message")?;
    let (key, m) = mb.find_item(id).ok_or_else(Out::not_found)?;
    let mut body = message_json(mb, key, m, mask, req.prefer);
    if let Some(expand) = req.param("$expand") {
        body["singleValueExtendedProperties"] = expansion(m, &m.envelope.read(), expand)?;
    }
    Ok(Out::ok(body))
}

/// PATCH of the properties modelled (`categories`, `isRead`); answers the updated message.
fn message_patch(inner: &mut Inner, mailbox: u32, req: &Req<'_>, id: &str) -> Result<Out, Out> {
    req.only(&[])?;
    let Some(Value::Object(fields)) = req.body else {
        return Err(Out::bad("The request body must be a JSON object."));
    };
    let mut categories = None;
    let mut is_read = None;
    for (name, value) in fields {
        match (name.as_str(), value) {
            ("categories", Value::Array(list)) => {
                let list: Option<Vec<String>> =
                    list.iter().map(|v| v.as_str().map(str::to_owned)).collect();
                categories = Some(list.ok_or_else(|| Out::bad("categories must be strings."))?);
            }
            ("isRead", Value::Bool(b)) => is_read = Some(*b),
            _ => {
                return Err(Out::bad(&format!(
                    "Invalid value or property '{name}' for type 'microsoft.graph.message'."
                )));
            }
        }
    }
    let Inner { state, subs, .. } = inner;
    let mb = state
        .mailboxes
        .get_mut(&mailbox)
        .ok_or_else(Out::not_found)?;
    let (key, _) = mb.find_item(id).ok_or_else(Out::not_found)?;
    mb.modify(key, &mut state.counters, |m| {
        if let Some(c) = categories {
            m.extras_mut().categories = c;
        }
        if let Some(r) = is_read {
            m.is_read = r;
        }
    })
    .map_err(|_| Out::not_found())?;
    let now = jiff::Timestamp::now().to_string();
    subs.publish(
        mb,
        &[super::mailbox::Happened::Modified { item: key }],
        &now,
    );
    let m = mb.item(key).ok_or_else(Out::not_found)?;
    Ok(Out::ok(message_json(mb, key, m, u64::MAX, req.prefer)))
}

/// Answers a request whose mailbox is resolved, under the lock.
fn execute(
    inner: &mut Inner,
    mailbox: u32,
    user: &str,
    route: &Route,
    req: &Req<'_>,
    base: &str,
) -> Out {
    let links = Links { base, user };
    if let Route::Message(id) = route
        && req.method == Method::PATCH
    {
        let out = message_patch(inner, mailbox, req, id);
        inner.changed();
        return out.unwrap_or_else(|e| e);
    }
    let Some(mb) = inner.state.mailboxes.get(&mailbox) else {
        return Out::not_found();
    };
    let out = match route {
        Route::Folder(name) => req.only(&["$select"]).and_then(|()| {
            let mask = select(&FOLDER_PROPS, req.param("$select"), "mailFolder")?;
            let f = folder(mb, name)?;
            let f = mb.folders.get(&f).ok_or_else(Out::not_found)?;
            Ok(Out::ok(folder_json(mb, f, mask)))
        }),
        Route::ChildFolders(name) => child_folders(mb, req, name, &links),
        Route::FoldersDelta => folders_delta(mb, req, &links),
        Route::MessagesDelta(name) => req
            .param("$expand")
            .map_or(Ok(()), |_| {
                Err(Out::bad("$expand is not supported on delta queries."))
            })
            .and_then(|()| messages_delta(mb, req, name, &links)),
        Route::Message(id) => message_get(mb, req, id),
    };
    out.unwrap_or_else(|e| e)
}

/// The answer an injected fault stands for, in Graph's terms; `None` when the call goes on.
fn fault_out(kind: FaultKind) -> Option<Out> {
    let busy = |status, secs| {
        let (code, text) = if status == 429 {
            (
                "ApplicationThrottled",
                "Application is over its MailboxConcurrency limit.",
            )
        } else {
            (
                "ServiceUnavailable",
                "The service is temporarily unavailable.",
            )
        };
        Out::error(status, code, text).retry_after(secs)
    };
    Some(match kind {
        FaultKind::Http429 { retry_after_secs } => busy(429, retry_after_secs),
        FaultKind::Http503 { retry_after_secs } => busy(503, retry_after_secs),
        FaultKind::ServerBusyMessage { back_off_ms }
        | FaultKind::ServerBusyFault { back_off_ms } => busy(429, back_off_ms.div_ceil(1000)),
        FaultKind::Unauthorized => Out::error(
            401,
            "InvalidAuthenticationToken",
            "Lifetime validation failed, the token is expired.",
        ),
        FaultKind::InvalidSyncState => Out::error(
            410,
            "SyncStateNotFound",
            "The sync state is not found. It may have expired; start a new delta round.",
        ),
        FaultKind::MailboxMoveInProgress => Out::error(
            503,
            "ErrorMailboxMoveInProgress",
            "The mailbox is being moved to another database; try again later.",
        ),
        FaultKind::DropConnection | FaultKind::TruncateBody => Out {
            cut: Some(kind),
            ..Out::ok(Value::Null)
        },
        FaultKind::Refuse { code } => Out::error(400, &code, "Refused by an injected fault."),
        FaultKind::Delay { .. } => return None,
    })
}

/// The mailbox of `user` when the caller's app may open it with `method` (its scope and its
/// permissions); else Graph's 404 or 403.
fn mailbox_for(shared: &Shared, caller: &Caller, user: &str, method: &Method) -> Result<u32, Out> {
    let inner = shared.lock();
    let Ok(n) = inner.state.mailbox_number(user) else {
        return Err(Out::error(
            404,
            "ErrorInvalidUser",
            &format!("The requested user '{user}' is invalid."),
        ));
    };
    let acc = inner.state.accounts.get(&caller.account);
    let may = acc.is_some_and(|a| {
        a.impersonate_all || a.impersonate.contains(&key(user)) || a.mailbox == Some(n)
    });
    if !may || !caller.may(method) {
        return Err(Out::error(
            403,
            "ErrorAccessDenied",
            "Access is denied. Check credentials and try again.",
        ));
    }
    Ok(n)
}

/// The fault rules for `user`'s `operation`: delays are served here; an answer that stands for
/// a fault is `Err`; a cut connection is returned for the answer to carry.
async fn injected(shared: &Shared, user: &str, operation: &str) -> Result<Option<FaultKind>, Out> {
    let rules = shared.lock().faults.take(Some(user), operation);
    let mut cut = None;
    for kind in rules {
        match kind {
            FaultKind::Delay { ms } => tokio::time::sleep(Duration::from_millis(ms)).await,
            other => match fault_out(other) {
                Some(out) if out.cut.is_some() => cut = out.cut,
                Some(out) => return Err(out),
                None => {}
            },
        }
    }
    Ok(cut)
}

/// One request for `account`: the user resolved and in the app's scope, Graph's per-mailbox
/// concurrency, the fault rules, then the answer (whose body is filled in when it is not cut).
async fn one(
    shared: &Arc<Shared>,
    caller: &Caller,
    req: &Req<'_>,
    base: &str,
    record: &mut CallRecord,
) -> Out {
    let (user, route) = match route(&req.method, req.path) {
        Ok(r) => r,
        Err(out) => return out,
    };
    record.operation = route.operation(&req.method).to_owned();
    record.impersonated = Some(user.clone());
    let mailbox = match mailbox_for(shared, caller, &user, &req.method) {
        Ok(n) => n,
        Err(out) => return out,
    };
    let (_guard, _, in_mailbox, _) = InFlight::enter_both(shared, &caller.account, &key(&user));
    if in_mailbox > MAILBOX_CONCURRENCY {
        return Out::error(
            429,
            "ApplicationThrottled",
            "Application is over its MailboxConcurrency limit.",
        )
        .retry_after(1);
    }
    let cut = match injected(shared, &user, &record.operation).await {
        Ok(cut) => cut,
        Err(out) => return out,
    };
    let mut inner = shared.lock();
    let mut out = execute(&mut inner, mailbox, &user, &route, req, base);
    if inner.dirty {
        shared.persist_wake.notify_one();
    }
    out.cut = cut;
    out
}

/// `POST /$batch`: at most 20 requests, unique ids, each answered on its own (in any order).
async fn batch(
    shared: &Arc<Shared>,
    caller: &Caller,
    body: &Value,
    base: &str,
    record: &mut CallRecord,
) -> Out {
    let Some(requests) = body.get("requests").and_then(Value::as_array) else {
        return Out::bad("Invalid batch payload format: 'requests' is missing.");
    };
    if requests.len() > protocol::MAX_BATCH {
        return Out::bad(&format!(
            "Number of requests exceeds the limit of {}.",
            protocol::MAX_BATCH
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for r in requests {
        let id = r.get("id").and_then(Value::as_str).unwrap_or("");
        if id.is_empty() || !seen.insert(id.to_ascii_lowercase()) {
            return Out::bad(&format!("Request id '{id}' is missing or not unique."));
        }
    }
    let mut answers = Vec::with_capacity(requests.len());
    let mut results = Vec::with_capacity(requests.len());
    for r in requests {
        let mut item_record = record.clone();
        let out = batch_item(shared, caller, r, base, &mut item_record).await;
        results.push(format!("{}:{}", item_record.operation, out.result()));
        let mut headers = Map::new();
        headers.insert("Content-Type".into(), json!("application/json"));
        if let Some(s) = out.retry_after {
            headers.insert("Retry-After".into(), json!(s.to_string()));
        }
        answers.push(json!({
            "id": r.get("id"),
            "status": out.status,
            "headers": headers,
            "body": out.body,
        }));
    }
    fastrand::shuffle(&mut answers);
    record.operation = "$batch".into();
    Out {
        log: Some(results.join(",")),
        ..Out::ok(json!({ "responses": answers }))
    }
}

async fn batch_item(
    shared: &Arc<Shared>,
    caller: &Caller,
    r: &Value,
    base: &str,
    record: &mut CallRecord,
) -> Out {
    let text = |name: &str| r.get(name).and_then(Value::as_str).unwrap_or("");
    let Ok(method) = Method::from_bytes(text("method").to_ascii_uppercase().as_bytes()) else {
        return Out::bad("Invalid HTTP method.");
    };
    let url = text("url");
    if url.contains("://") {
        return Out::bad("Batch request URLs are relative to the version root, e.g. /users/{id}.");
    }
    let url = if url.starts_with('/') {
        url.to_owned()
    } else {
        format!("/{url}")
    };
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let headers = r.get("headers").and_then(Value::as_object);
    let header_value = |name: &str| {
        headers.and_then(|h| {
            h.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .and_then(|(_, v)| v.as_str())
        })
    };
    let body = r.get("body").filter(|b| !b.is_null());
    if body.is_some() && header_value("Content-Type").is_none() {
        return Out::bad("Content-Type header must be specified for a request with a body.");
    }
    let req = Req {
        method,
        path,
        query: query_pairs(query),
        prefer: Prefer::read(header_value("Prefer")),
        body,
    };
    let out = one(shared, caller, &req, base, record).await;
    match out.cut {
        Some(_) => Out::error(500, "UnknownError", "The request failed."),
        None => out,
    }
}

fn query_pairs(query: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Who calls: the account a Graph token proves and the application permissions it carries.
struct Caller {
    account: String,
    roles: Vec<String>,
}

impl Caller {
    /// Whether its permissions allow `method`: reading needs Mail.Read or Mail.ReadWrite,
    /// changing needs Mail.ReadWrite.
    fn may(&self, method: &Method) -> bool {
        let has = |r: &str| self.roles.iter().any(|x| x == r);
        has("Mail.ReadWrite") || (method == Method::GET && has("Mail.Read"))
    }
}

/// The caller a Graph token proves: one the token endpoint issued for a Graph scope.
fn bearer(shared: &Shared, headers: &HeaderMap) -> Option<Caller> {
    let auth = header_text(headers, "authorization")?;
    let (scheme, token) = auth.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    let inner = shared.lock();
    let scope = inner.state.token_scopes.get(token)?;
    if !scope.starts_with("https://graph.microsoft.com/") {
        return None;
    }
    Some(Caller {
        account: inner.state.bearer(token)?,
        roles: inner
            .state
            .token_roles
            .get(token)
            .cloned()
            .unwrap_or_default(),
    })
}

pub(crate) async fn http(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let mut record = CallRecord {
        at: jiff::Timestamp::now().to_string(),
        operation: "-".into(),
        account: None,
        impersonated: None,
        anchor_mailbox: None,
        result: String::new(),
        http_status: 0,
        bytes_in: body.len() as u64,
        bytes_out: 0,
        duration_ms: 0,
    };
    let host = header_text(&headers, "host").unwrap_or_else(|| "127.0.0.1".into());
    let base = format!("http://{host}{GRAPH_PATH}");
    let out = serve(&shared, &method, &uri, &headers, &body, &base, &mut record).await;
    let response = respond(out, &mut record);
    record.duration_ms = started.elapsed().as_millis() as u64;
    shared.lock().calls.record(record);
    response
}

async fn serve(
    shared: &Arc<Shared>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
    base: &str,
    record: &mut CallRecord,
) -> Out {
    let Some(caller) = bearer(shared, headers) else {
        return Out::error(
            401,
            "InvalidAuthenticationToken",
            "Access token is empty or was not issued for Microsoft Graph.",
        );
    };
    record.account = Some(caller.account.clone());
    let path = uri.path().strip_prefix(GRAPH_PATH).unwrap_or("");
    let json_body = if body.is_empty() {
        None
    } else {
        let is_json = header_text(headers, "content-type")
            .is_some_and(|c| c.to_ascii_lowercase().starts_with("application/json"));
        match serde_json::from_slice::<Value>(body) {
            Ok(v) if is_json => Some(v),
            Ok(_) => return Out::bad("Content-Type must be application/json."),
            Err(e) => return Out::bad(&format!("Unable to read JSON request payload: {e}.")),
        }
    };
    if path == "/subscriptions" || path.starts_with("/subscriptions/") {
        let id = path.strip_prefix("/subscriptions/").map(decode);
        return subscriptions(shared, &caller, method, id, json_body.as_ref(), record).await;
    }
    if path == "/$batch" {
        if method != Method::POST {
            return Out::error(405, "Request_BadRequest", "Use POST for $batch.");
        }
        let Some(payload) = json_body else {
            return Out::bad("Invalid batch payload format.");
        };
        return batch(shared, &caller, &payload, base, record).await;
    }
    let req = Req {
        method: method.clone(),
        path,
        query: query_pairs(uri.query().unwrap_or("")),
        prefer: Prefer::read(header_text(headers, "prefer").as_deref()),
        body: json_body.as_ref(),
    };
    one(shared, &caller, &req, base, record).await
}

fn respond(out: Out, record: &mut CallRecord) -> Response {
    record.http_status = out.status;
    record.result = out.log.clone().unwrap_or_else(|| out.result());
    let text = out.body.as_ref().map(Value::to_string).unwrap_or_default();
    record.bytes_out = text.len() as u64;
    let body = match out.cut {
        Some(FaultKind::DropConnection) => {
            record.result = "dropped".into();
            Body::from_stream(futures_util::stream::once(async {
                Err::<Bytes, std::io::Error>(std::io::Error::other("connection dropped"))
            }))
        }
        Some(FaultKind::TruncateBody) => {
            record.result = format!("{} (truncated)", record.result);
            let half = Bytes::from(text.into_bytes());
            let cut = half.len() / 2;
            Body::from_stream(futures_util::stream::iter([
                Ok(half.slice(..cut)),
                Err(std::io::Error::other("body truncated")),
            ]))
        }
        _ => Body::from(text),
    };
    let mut r = Response::new(body);
    *r.status_mut() = StatusCode::from_u16(out.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(secs) = out.retry_after {
        h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    if out.status == 401 {
        h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    r
}

/// `/subscriptions[/{id}]`: change notification subscriptions on one folder's messages
/// (`graph_notify.rs` holds them and delivers their notifications).
async fn subscriptions(
    shared: &Arc<Shared>,
    caller: &Caller,
    method: &Method,
    id: Option<String>,
    body: Option<&Value>,
    record: &mut CallRecord,
) -> Out {
    let operation = match (method.as_str(), &id) {
        ("POST", None) => "subscriptions.create",
        ("GET", None) => "subscriptions.list",
        ("GET", Some(_)) => "subscriptions.get",
        ("PATCH", Some(_)) => "subscriptions.update",
        ("DELETE", Some(_)) => "subscriptions.delete",
        _ => {
            return Out::error(
                405,
                "Request_BadRequest",
                &format!("The HTTP method '{method}' is not allowed on this resource."),
            );
        }
    };
    record.operation = operation.into();
    // Subscribing to messages needs Mail.Read (or Mail.ReadWrite), whatever the method.
    if !caller.may(&Method::GET) {
        return Out::error(
            403,
            "ErrorAccessDenied",
            "Access is denied. Check credentials and try again.",
        );
    }
    let now = jiff::Timestamp::now();
    match (operation, id) {
        ("subscriptions.create", _) => subscription_create(shared, caller, body, record).await,
        ("subscriptions.list", _) => {
            let subs = shared.lock().subs.graph.of_owner(&caller.account, now);
            let value: Vec<Value> = subs.iter().map(|s| s.json(&caller.account)).collect();
            Out::ok(json!({ "value": value }))
        }
        (_, Some(id)) => subscription_change(shared, caller, operation, &id, body, record).await,
        _ => Out::not_found(),
    }
}

fn invalid(message: &str) -> Out {
    Out::error(400, "InvalidRequest", message)
}

/// An `expirationDateTime` Graph accepts: in the future, at most the maximum lifetime ahead;
/// granted up to the simulator's lifetime cap.
fn expiry(
    shared: &Shared,
    text: Option<&str>,
    now: jiff::Timestamp,
) -> Result<jiff::Timestamp, Out> {
    let asked: jiff::Timestamp = text
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| invalid("expirationDateTime must be an ISO 8601 date and time."))?;
    let max = protocol::subscription::MAX_LIFETIME;
    if asked <= now {
        return Err(invalid(
            "Subscription expiration can only be in the future.",
        ));
    }
    let latest = now + jiff::SignedDuration::try_from(max).unwrap_or_default();
    if asked > latest + jiff::SignedDuration::from_secs(60) {
        return Err(invalid(&format!(
            "Subscription expiration can only be {} minutes in the future.",
            max.as_secs() / 60
        )));
    }
    let cap = shared.lock().subs.graph.lifetime_cap;
    Ok(
        match cap.and_then(|c| jiff::SignedDuration::try_from(c).ok()) {
            Some(c) => asked.min(now + c),
            None => asked,
        },
    )
}

/// `users/{user}/mailFolders('{id}')/messages` (or `…/mailFolders/{id}/messages`): the user
/// and the folder.
fn subscribed_folder(resource: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = resource.trim_matches('/').split('/').collect();
    let (users, user, folder, messages) = match parts.as_slice() {
        [users, user, folders, folder, messages] if folders.eq_ignore_ascii_case("mailFolders") => {
            (*users, *user, *folder, *messages)
        }
        [users, user, keyed, messages] => {
            let (name, rest) = keyed.split_once('(')?;
            if !name.eq_ignore_ascii_case("mailFolders") {
                return None;
            }
            let folder = rest.strip_suffix(')')?;
            let folder = folder
                .strip_prefix('\'')
                .and_then(|f| f.strip_suffix('\''))?;
            (*users, *user, folder, *messages)
        }
        _ => return None,
    };
    let ok = users.eq_ignore_ascii_case("users") && messages.eq_ignore_ascii_case("messages");
    ok.then(|| (decode(user), decode(folder)))
}

async fn subscription_create(
    shared: &Arc<Shared>,
    caller: &Caller,
    body: Option<&Value>,
    record: &mut CallRecord,
) -> Out {
    let Some(Value::Object(fields)) = body else {
        return Out::bad("The request body must be a JSON object.");
    };
    const KNOWN: [&str; 8] = [
        "changeType",
        "notificationUrl",
        "lifecycleNotificationUrl",
        "resource",
        "expirationDateTime",
        "clientState",
        "latestSupportedTlsVersion",
        "includeResourceData",
    ];
    if let Some(name) = fields.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Out::bad(&format!(
            "Invalid property '{name}' for type 'microsoft.graph.subscription'."
        ));
    }
    let text = |name: &str| {
        fields
            .get(name)
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
    };
    for required in [
        "changeType",
        "notificationUrl",
        "resource",
        "expirationDateTime",
    ] {
        if text(required).is_none() {
            return invalid(&format!("The '{required}' property is required."));
        }
    }
    if fields.get("includeResourceData") == Some(&Value::Bool(true)) {
        return invalid(
            "includeResourceData needs an encryptionCertificate (not modelled by the simulator).",
        );
    }
    let change_types: Vec<String> = text("changeType")
        .unwrap_or("")
        .split(',')
        .map(|c| c.trim().to_owned())
        .collect();
    if let Some(bad) = change_types
        .iter()
        .find(|c| !protocol::subscription::KNOWN_CHANGE_TYPES.contains(&c.as_str()))
    {
        return invalid(&format!(
            "'{bad}' is not a valid changeType; use created, updated and deleted."
        ));
    }
    let client_state = text("clientState").map(str::to_owned);
    if client_state
        .as_ref()
        .is_some_and(|c| c.len() > protocol::subscription::MAX_CLIENT_STATE)
    {
        return invalid("clientState must be at most 128 characters.");
    }
    let resource = text("resource").unwrap_or("").to_owned();
    let Some((user, folder_name)) = subscribed_folder(&resource) else {
        return Out::error(
            400,
            "ExtensionError",
            &format!(
                "Resource '{resource}' is not supported; subscribe to users/{{id}}/mailFolders('{{id}}')/messages."
            ),
        );
    };
    record.impersonated = Some(user.clone());
    let mailbox = match mailbox_for(shared, caller, &user, &Method::GET) {
        Ok(n) => n,
        Err(out) => return out,
    };
    if let Err(out) = injected(shared, &user, &record.operation).await {
        return out;
    }
    let now = jiff::Timestamp::now();
    let expires = match expiry(shared, text("expirationDateTime"), now) {
        Ok(t) => t,
        Err(out) => return out,
    };
    let folder_number = {
        let inner = shared.lock();
        let Some(mb) = inner.state.mailboxes.get(&mailbox) else {
            return Out::not_found();
        };
        match folder(mb, &folder_name) {
            Ok(n) => n,
            Err(out) => return out,
        }
    };
    let notification_url = text("notificationUrl").unwrap_or("").to_owned();
    let lifecycle_url = text("lifecycleNotificationUrl").map(str::to_owned);
    let mut urls = vec![notification_url.clone()];
    urls.extend(lifecycle_url.clone().filter(|u| *u != notification_url));
    for url in &urls {
        let checked = match super::graph_notify::loopback_only(url) {
            Ok(u) => super::graph_notify::validate(&u).await,
            Err(message) => Err(message),
        };
        if let Err(message) = checked {
            return Out::error(400, "ValidationError", &message);
        }
    }
    let made = shared
        .lock()
        .subs
        .graph
        .add(super::graph_notify::GraphSubscription {
            id: String::new(),
            owner: caller.account.clone(),
            mailbox,
            folder: folder_number,
            change_types,
            notification_url,
            lifecycle_url,
            client_state,
            resource,
            expires,
        });
    Out {
        status: 201,
        ..Out::ok(made.json(&caller.account))
    }
}

/// GET, PATCH (a renewal) or DELETE of one subscription of the caller's app.
async fn subscription_change(
    shared: &Arc<Shared>,
    caller: &Caller,
    operation: &str,
    id: &str,
    body: Option<&Value>,
    record: &mut CallRecord,
) -> Out {
    let gone = || {
        Out::error(
            404,
            "ResourceNotFound",
            &format!("The object '{id}' was not found."),
        )
    };
    let now = jiff::Timestamp::now();
    let user = {
        let mut inner = shared.lock();
        let Inner { state, subs, .. } = &mut *inner;
        let Some(s) = subs.graph.get_mut(id, &caller.account, now) else {
            return gone();
        };
        let Some(mb) = state.mailboxes.get(&s.mailbox) else {
            return gone();
        };
        mb.address.clone()
    };
    record.impersonated = Some(user.clone());
    if let Err(out) = injected(shared, &user, operation).await {
        return out;
    }
    let expires = match operation {
        "subscriptions.update" => {
            let Some(Value::Object(fields)) = body else {
                return Out::bad("The request body must be a JSON object.");
            };
            if let Some(name) = fields.keys().find(|k| *k != "expirationDateTime") {
                return Out::bad(&format!(
                    "Property '{name}' cannot be updated; renew with expirationDateTime."
                ));
            }
            let text = fields.get("expirationDateTime").and_then(Value::as_str);
            match expiry(shared, text, now) {
                Ok(t) => Some(t),
                Err(out) => return out,
            }
        }
        _ => None,
    };
    let mut inner = shared.lock();
    let registry = &mut inner.subs.graph;
    if operation == "subscriptions.delete" {
        registry.remove(id);
        return Out {
            status: 204,
            body: None,
            ..Out::ok(Value::Null)
        };
    }
    match registry.get_mut(id, &caller.account, now) {
        Some(s) => {
            if let Some(t) = expires {
                s.expires = t;
            }
            Out::ok(s.json(&caller.account))
        }
        None => gone(),
    }
}

/// Delivers queued change notifications until the simulator stops: one POST per URL with what
/// is due for it, 3 s to answer 2xx, else tried again later (`graph_notify.rs` decides when).
pub(crate) async fn deliver_notifications(shared: Arc<Shared>) {
    let Ok(client) = super::graph_notify::http() else {
        return;
    };
    let wake = shared.lock().subs.graph.wake.clone();
    loop {
        let batches = shared.lock().subs.graph.take_due(Instant::now());
        for (url, batch) in batches {
            let taken = super::graph_notify::post(&client, &url, &batch).await;
            let registry = &mut shared.lock().subs.graph;
            if taken {
                registry.delivered += batch.len() as u64;
            } else {
                registry.retry(batch, Instant::now());
            }
        }
        let next = shared.lock().subs.graph.next_due();
        let notified = wake.notified();
        match next {
            Some(at) => {
                tokio::select! {
                    () = notified => {}
                    () = tokio::time::sleep_until(tokio::time::Instant::from_std(at)) => {}
                }
            }
            None => notified.await,
        }
    }
}
