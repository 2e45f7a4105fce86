//! The EWS operations the simulator answers, one function each, acting on the mailbox a call is
//! for. Requests are read with `ews/` (FindFolder with `requests.rs`, which also reads the
//! restriction and extended properties that `ews/` does not need);
//! responses are written with `respond.rs`. Per-item problems become per-message errors in
//! request order; request-level problems become SOAP faults. Owns EWS semantics over the
//! state; never HTTP, authentication or fault injection.

use super::Inner;
use super::ids::{self, ItemKey};
use super::mailbox::{FolderChange, Happened, Mailbox};
use super::message::{Message, NewMessage};
use super::notify::{self, Event, Kind, Subscription};
use super::requests;
use super::respond::events::write_event;
use super::respond::folders::{folder_fields, write_folder};
use super::respond::items::{item_fields, write_item, write_item_change};
use super::respond::{Doc, MessageError, Out, sync_error_document};
use crate::ews::create_item::CreateItem;
use crate::ews::get_events::GetEvents;
use crate::ews::get_folder::GetFolder;
use crate::ews::get_item::GetItem;
use crate::ews::get_streaming_events::GetStreamingEvents;
use crate::ews::ids::FolderSelector;
use crate::ews::item::Item;
use crate::ews::move_item::MoveItem;
use crate::ews::subscribe::{Mode, Subscribe};
use crate::ews::sync_folder_hierarchy::SyncFolderHierarchy;
use crate::ews::sync_folder_items::{MAX_CHANGES, SyncFolderItems};
use crate::ews::unsubscribe::Unsubscribe;
use crate::ews::update_item::{ConflictResolution, Update, UpdateItem};
use crate::ews::xml::{Element, Ns, XmlReader};
use crate::ews::{Error as EwsError, Operation, ResponseCode};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// A request the simulator understands.
#[derive(Debug)]
pub enum Request {
    GetFolder(GetFolder),
    FindFolder(requests::FindFolder),
    SyncFolderHierarchy(SyncFolderHierarchy),
    SyncFolderItems(SyncFolderItems),
    GetItem(GetItem),
    UpdateItem(UpdateItem),
    CreateItem(CreateItem),
    MoveItem(MoveItem),
    Subscribe(Subscribe),
    GetEvents(GetEvents),
    GetStreamingEvents(GetStreamingEvents),
    Unsubscribe(Unsubscribe),
    /// An operation the simulator does not implement.
    Unsupported(String),
}

/// Reads the operation element inside `soap:Body`.
pub fn read_operation<'i>(r: &mut XmlReader<'i>, el: &Element<'i>) -> Result<Request, EwsError> {
    if el.ns != Ns::Messages {
        let name = el.name().to_owned();
        r.skip(el)?;
        return Ok(Request::Unsupported(name));
    }
    Ok(match el.name() {
        GetFolder::NAME => Request::GetFolder(GetFolder::read_body(r, el)?),
        "FindFolder" => Request::FindFolder(requests::find_folder(r, el)?),
        SyncFolderHierarchy::NAME => {
            Request::SyncFolderHierarchy(SyncFolderHierarchy::read_body(r, el)?)
        }
        SyncFolderItems::NAME => Request::SyncFolderItems(SyncFolderItems::read_body(r, el)?),
        GetItem::NAME => Request::GetItem(GetItem::read_body(r, el)?),
        UpdateItem::NAME => Request::UpdateItem(UpdateItem::read_body(r, el)?),
        CreateItem::NAME => Request::CreateItem(CreateItem::read_body(r, el)?),
        MoveItem::NAME => Request::MoveItem(MoveItem::read_body(r, el)?),
        Subscribe::NAME => Request::Subscribe(Subscribe::read_body(r, el)?),
        GetEvents::NAME => Request::GetEvents(GetEvents::read_body(r, el)?),
        GetStreamingEvents::NAME => {
            Request::GetStreamingEvents(GetStreamingEvents::read_body(r, el)?)
        }
        Unsubscribe::NAME => Request::Unsubscribe(Unsubscribe::read_body(r, el)?),
        other => {
            let name = other.to_owned();
            r.skip(el)?;
            Request::Unsupported(name)
        }
    })
}

impl Request {
    pub fn name(&self) -> &str {
        match self {
            Self::GetFolder(_) => "GetFolder",
            Self::FindFolder(_) => "FindFolder",
            Self::SyncFolderHierarchy(_) => "SyncFolderHierarchy",
            Self::SyncFolderItems(_) => "SyncFolderItems",
            Self::GetItem(_) => "GetItem",
            Self::UpdateItem(_) => "UpdateItem",
            Self::CreateItem(_) => "CreateItem",
            Self::MoveItem(_) => "MoveItem",
            Self::Subscribe(_) => "Subscribe",
            Self::GetEvents(_) => "GetEvents",
            Self::GetStreamingEvents(_) => "GetStreamingEvents",
            Self::Unsubscribe(_) => "Unsubscribe",
            Self::Unsupported(name) => name,
        }
    }
}

/// Who is calling and for which mailbox.
pub struct Ctx<'a> {
    pub account: &'a str,
    pub mailbox: u32,
    pub now: i64,
    /// The length of one EWS "minute" (shortened in tests).
    pub minute: Duration,
}

/// What the HTTP layer sends.
pub enum Answer {
    /// HTTP 200 (or 500 for a fault) with this document.
    Doc { status: u16, doc: Doc },
    /// A GetStreamingEvents connection: these subscriptions until the deadline.
    Stream(StreamPlan),
}

pub struct StreamPlan {
    pub subscriptions: Vec<(u64, String)>,
    pub wakes: Vec<Arc<Notify>>,
    pub timeout: Duration,
}

pub fn fault(code: ResponseCode, text: impl Into<String>) -> MessageError {
    MessageError::new(code, text)
}

fn fault_answer(inner: &Inner, e: &MessageError) -> Answer {
    Answer::Doc {
        status: 500,
        doc: super::respond::fault_document(inner.style, e),
    }
}

fn ok(doc: Doc) -> Answer {
    Answer::Doc { status: 200, doc }
}

/// Answers one request.
pub fn handle(inner: &mut Inner, ctx: &Ctx<'_>, request: Request) -> Answer {
    match request {
        Request::GetFolder(op) => get_folder(inner, ctx, &op),
        Request::FindFolder(op) => find_folder(inner, ctx, &op),
        Request::SyncFolderHierarchy(op) => sync_folder_hierarchy(inner, ctx, &op),
        Request::SyncFolderItems(op) => sync_folder_items(inner, ctx, &op),
        Request::GetItem(op) => get_item(inner, ctx, &op),
        Request::UpdateItem(op) => update_item(inner, ctx, &op),
        Request::CreateItem(op) => create_item(inner, ctx, &op),
        Request::MoveItem(op) => move_item(inner, ctx, &op),
        Request::Subscribe(op) => subscribe(inner, ctx, &op),
        Request::GetEvents(op) => get_events(inner, ctx, &op),
        Request::GetStreamingEvents(op) => get_streaming_events(inner, ctx, &op),
        Request::Unsubscribe(op) => unsubscribe(inner, ctx, op.subscription_id.as_str()),
        Request::Unsupported(name) => fault_answer(
            inner,
            &fault(
                ResponseCode::ErrorInvalidRequest,
                format!("The request is invalid: the simulator does not implement {name}."),
            ),
        ),
    }
}

fn mailbox<'a>(inner: &'a Inner, ctx: &Ctx<'_>) -> Option<&'a Mailbox> {
    inner.state.mailboxes.get(&ctx.mailbox)
}

fn no_mailbox(inner: &Inner) -> Answer {
    fault_answer(
        inner,
        &fault(
            ResponseCode::ErrorNonExistentMailbox,
            "The mailbox no longer exists.",
        ),
    )
}

/// The folder a selector names in `mb`.
fn resolve(mb: &Mailbox, f: &FolderSelector) -> Result<u32, MessageError> {
    match f {
        FolderSelector::Distinguished(d) => mb.distinguished(*d).ok_or_else(|| {
            fault(
                ResponseCode::ErrorFolderNotFound,
                "The specified folder could not be found in the store.",
            )
        }),
        FolderSelector::Id(r) => {
            if ids::parse_folder_id(r.id.as_str()).is_none() {
                return Err(fault(
                    ResponseCode::ErrorInvalidIdMalformed,
                    "Id is malformed.",
                ));
            }
            mb.folder_by_id(r.id.as_str()).ok_or_else(|| {
                fault(
                    ResponseCode::ErrorFolderNotFound,
                    "The specified folder could not be found in the store.",
                )
            })
        }
    }
}

fn get_folder(inner: &mut Inner, ctx: &Ctx<'_>, op: &GetFolder) -> Answer {
    let Some(mb) = mailbox(inner, ctx) else {
        return no_mailbox(inner);
    };
    let fields = folder_fields(op.shape.base, &op.shape.properties, &[]);
    ok(Out::document(inner.style, |o| {
        o.response("GetFolder", |o| {
            for sel in &op.folders {
                match resolve(mb, sel) {
                    Ok(f) => o.message("GetFolder", Ok(()), |o| {
                        o.m_open("Folders");
                        write_folder(o, mb, f, &fields);
                        o.m_close("Folders");
                    }),
                    Err(e) => o.message("GetFolder", Err(&e), |_| {}),
                }
            }
        })
    }))
}

/// EWSFindCountLimit: what one FindFolder returns at most without paging.
const FIND_COUNT_LIMIT: usize = 1000;

fn find_folder(inner: &mut Inner, ctx: &Ctx<'_>, op: &requests::FindFolder) -> Answer {
    let Some(mb) = mailbox(inner, ctx) else {
        return no_mailbox(inner);
    };
    let fields = folder_fields(op.shape.base, &op.shape.properties, &op.shape.extended);
    ok(Out::document(inner.style, |o| {
        o.response("FindFolder", |o| {
            for sel in &op.parents {
                let parent = match resolve(mb, sel) {
                    Ok(p) => p,
                    Err(e) => {
                        o.message("FindFolder", Err(&e), |_| {});
                        continue;
                    }
                };
                let mut found: Vec<u32> = if op.deep {
                    mb.descendants(parent)
                } else {
                    mb.children(parent).map(|f| f.number).collect()
                };
                if let Some(name) = &op.display_name {
                    found.retain(|f| mb.folders.get(f).is_some_and(|x| &x.name == name));
                }
                let total = found.len();
                let max = op
                    .max_entries
                    .unwrap_or(FIND_COUNT_LIMIT)
                    .min(FIND_COUNT_LIMIT);
                let start = if op.from_end {
                    total.saturating_sub(op.offset + max)
                } else {
                    op.offset.min(total)
                };
                let end = (start + max).min(total);
                let page = &found[start..end];
                o.message("FindFolder", Ok(()), |o| {
                    let n = o.m("RootFolder");
                    o.w.element(&n)
                        .attr_display("IndexedPagingOffset", end)
                        .attr_display("TotalItemsInView", total)
                        .attr(
                            "IncludesLastItemInRange",
                            if end >= total { "true" } else { "false" },
                        )
                        .open();
                    o.t_open("Folders");
                    for f in page {
                        write_folder(o, mb, *f, &fields);
                    }
                    o.t_close("Folders");
                    o.w.close(&n);
                });
            }
        })
    }))
}

fn invalid_sync_state() -> MessageError {
    fault(
        ResponseCode::ErrorInvalidSyncStateData,
        "Synchronization state data is corrupt or otherwise invalid.",
    )
}

fn sync_folder_hierarchy(inner: &mut Inner, ctx: &Ctx<'_>, op: &SyncFolderHierarchy) -> Answer {
    const OP: &str = "SyncFolderHierarchy";
    let current = inner.state.counters.seq;
    let Some(mb) = mailbox(inner, ctx) else {
        return no_mailbox(inner);
    };
    let root = match &op.root {
        Some(sel) => resolve(mb, sel),
        None => mb
            .distinguished(crate::ews::DistinguishedFolder::MsgFolderRoot)
            .ok_or_else(invalid_sync_state),
    };
    let root = match root {
        Ok(r) => r,
        Err(e) => return ok(sync_error_document(inner.style, OP, &e)),
    };
    let since = match &op.sync_state {
        None => 0,
        Some(s) => match ids::parse_hierarchy_sync_state(s.as_str()) {
            Some((m, r, seq)) if m == mb.number && r == root && seq <= current => seq,
            _ => return ok(sync_error_document(inner.style, OP, &invalid_sync_state())),
        },
    };
    let page = mb.folder_changes(root, since, usize::MAX);
    let fields = folder_fields(op.shape.base, &op.shape.properties, &[]);
    ok(Out::document(inner.style, |o| {
        o.response(OP, |o| {
            o.message(OP, Ok(()), |o| {
                o.m_leaf(
                    "SyncState",
                    &ids::hierarchy_sync_state(mb.number, root, page.seq),
                );
                o.m_leaf(
                    "IncludesLastFolderInRange",
                    if page.last { "true" } else { "false" },
                );
                o.m_open("Changes");
                for c in &page.changes {
                    match c {
                        FolderChange::Create(f) | FolderChange::Update(f) => {
                            let name = if matches!(c, FolderChange::Create(_)) {
                                "Create"
                            } else {
                                "Update"
                            };
                            o.t_open(name);
                            write_folder(o, mb, *f, &fields);
                            o.t_close(name);
                        }
                        FolderChange::Delete(f) => {
                            o.t_open("Delete");
                            o.t_id("FolderId", &mb.folder_id(*f), None);
                            o.t_close("Delete");
                        }
                    }
                }
                o.m_close("Changes");
            })
        })
    }))
}

fn sync_folder_items(inner: &mut Inner, ctx: &Ctx<'_>, op: &SyncFolderItems) -> Answer {
    const OP: &str = "SyncFolderItems";
    if op.max_changes == 0 || op.max_changes > MAX_CHANGES {
        return fault_answer(
            inner,
            &fault(
                ResponseCode::ErrorSchemaValidation,
                "The request failed schema validation: MaxChangesReturned must be 1 to 512.",
            )
            .with("Violation", "MaxChangesReturned out of range"),
        );
    }
    let current = inner.state.counters.seq;
    let Some(mb) = mailbox(inner, ctx) else {
        return no_mailbox(inner);
    };
    let folder = match resolve(mb, &op.folder) {
        Ok(f) => f,
        Err(mut e) => {
            if e.code == ResponseCode::ErrorFolderNotFound {
                e.code = ResponseCode::ErrorSyncFolderNotFound;
            }
            return ok(sync_error_document(inner.style, OP, &e));
        }
    };
    let since = match &op.sync_state {
        None => 0,
        Some(s) => match ids::parse_item_sync_state(s.as_str()) {
            Some((m, f, seq)) if m == mb.number && f == folder && seq <= current => seq,
            _ => return ok(sync_error_document(inner.style, OP, &invalid_sync_state())),
        },
    };
    let Some(page) = mb.item_changes(folder, since, usize::from(op.max_changes)) else {
        return ok(sync_error_document(
            inner.style,
            OP,
            &fault(ResponseCode::ErrorSyncFolderNotFound, "The folder is gone."),
        ));
    };
    let ignore: HashSet<&str> = op.ignore.iter().map(|i| i.id.as_str()).collect();
    let fields = item_fields(&op.shape, true);
    ok(Out::document(inner.style, |o| {
        o.response(OP, |o| {
            o.message(OP, Ok(()), |o| {
                o.m_leaf(
                    "SyncState",
                    &ids::item_sync_state(mb.number, folder, page.seq),
                );
                o.m_leaf(
                    "IncludesLastItemInRange",
                    if page.last { "true" } else { "false" },
                );
                o.m_open("Changes");
                for c in &page.changes {
                    write_item_change(o, mb, folder, *c, &fields, &ignore);
                }
                o.m_close("Changes");
            })
        })
    }))
}

fn item_error(id: &str) -> MessageError {
    if ids::parse_item_id(id).is_none() {
        fault(ResponseCode::ErrorInvalidIdMalformed, "Id is malformed.")
    } else {
        fault(
            ResponseCode::ErrorItemNotFound,
            "The specified object was not found in the store.",
        )
    }
}

/// Writes one `ItemInfo` message per item, in request order.
fn items_response<T>(
    style: super::respond::ResponseStyle,
    op: &'static str,
    results: &[Result<T, MessageError>],
    mut write: impl FnMut(&mut Out, &T),
) -> Answer {
    ok(Out::document(style, |o| {
        o.response(op, |o| {
            for r in results {
                match r {
                    Ok(v) => o.message(op, Ok(()), |o| {
                        o.m_open("Items");
                        write(o, v);
                        o.m_close("Items");
                    }),
                    Err(e) => o.message(op, Err(e), |o| {
                        o.m_open("Items");
                        o.m_close("Items");
                    }),
                }
            }
        })
    }))
}

fn get_item(inner: &mut Inner, ctx: &Ctx<'_>, op: &GetItem) -> Answer {
    let Some(mb) = mailbox(inner, ctx) else {
        return no_mailbox(inner);
    };
    let fields = item_fields(&op.shape, false);
    let results: Vec<Result<ItemKey, MessageError>> = op
        .items
        .iter()
        .map(|r| {
            mb.item_by_id(r.id.as_str())
                .map(|(k, _)| k)
                .ok_or_else(|| item_error(r.id.as_str()))
        })
        .collect();
    items_response(inner.style, "GetItem", &results, |o, k| {
        if let Some(m) = mb.item(*k) {
            write_item(o, mb, *k, m, &fields);
        }
    })
}

/// Checks a ChangeKey against the message under the conflict rules of UpdateItem:
/// NeverOverwrite fails on any stale key; AutoResolve accepts a stale key when only the read
/// flag changed since; AlwaysOverwrite accepts any key.
fn check_change_key(
    key: ItemKey,
    m: &Message,
    sent: Option<&str>,
    mode: ConflictResolution,
) -> Result<(), MessageError> {
    let Some(sent) = sent else {
        return Ok(());
    };
    let seen = (1..=m.version)
        .rev()
        .find(|v| ids::change_key(key.item, *v) == sent);
    let conflict = || {
        fault(
            ResponseCode::ErrorIrresolvableConflict,
            "The send or update operation could not be performed because the change key passed in the request does not match the current change key for the item.",
        )
    };
    match (seen, mode) {
        (None, ConflictResolution::AlwaysOverwrite) => Ok(()),
        (None, _) => Err(fault(
            ResponseCode::ErrorInvalidChangeKey,
            "The change key is invalid.",
        )),
        (Some(v), _) if v == m.version => Ok(()),
        (Some(_), ConflictResolution::AlwaysOverwrite) => Ok(()),
        (Some(v), ConflictResolution::AutoResolve) if v >= m.content_version => Ok(()),
        (Some(_), _) => Err(conflict()),
    }
}

fn update_item(inner: &mut Inner, ctx: &Ctx<'_>, op: &UpdateItem) -> Answer {
    let Some(mb) = inner.state.mailboxes.get_mut(&ctx.mailbox) else {
        return no_mailbox(inner);
    };
    let counters = &mut inner.state.counters;
    let mut happened = Vec::new();
    let results: Vec<Result<ItemKey, MessageError>> = op
        .changes
        .iter()
        .map(|change| {
            let id = change.item.id.as_str();
            let (key, m) = mb.item_by_id(id).ok_or_else(|| item_error(id))?;
            check_change_key(
                key,
                m,
                change.item.change_key.as_ref().map(|c| c.as_str()),
                op.conflict_resolution,
            )?;
            mb.modify(key, counters, |m| {
                for u in &change.updates {
                    apply_update(m, u);
                }
            })
            .map_err(|_| item_error(id))?;
            happened.push(Happened::Modified { item: key });
            Ok(key)
        })
        .collect();
    changed_items(inner, ctx, "UpdateItem", &happened, &results)
}

/// After a write: marks the state changed, tells subscribers, answers one message per item
/// with its (new) ItemId and ChangeKey.
fn changed_items(
    inner: &mut Inner,
    ctx: &Ctx<'_>,
    op: &'static str,
    happened: &[Happened],
    results: &[Result<ItemKey, MessageError>],
) -> Answer {
    inner.changed();
    let now = super::message::format_time(ctx.now);
    let style = inner.style;
    let Inner { state, subs, .. } = &mut *inner;
    let mb = state.mailboxes.get(&ctx.mailbox);
    if let Some(mb) = mb {
        subs.publish(mb, happened, &now);
    }
    items_response(style, op, results, |o, k| {
        if let Some((mb, m)) = mb.and_then(|mb| mb.item(*k).map(|m| (mb, m))) {
            o.t_open("Message");
            o.t_id(
                "ItemId",
                &ids::item_id(*k),
                Some(&mb.item_change_key(*k, m)),
            );
            o.t_close("Message");
        }
    })
}

fn apply_update(m: &mut Message, u: &Update) {
    match u {
        Update::SetCategories(c) => m.extras_mut().categories = c.clone(),
        Update::SetExtended(p) => {
            let list = &mut m.extras_mut().extended;
            list.retain(|x| !x.field.same_property(&p.field));
            list.push(p.clone());
        }
        Update::DeleteExtended(f) => m
            .extras_mut()
            .extended
            .retain(|x| !x.field.same_property(f)),
    }
    if m.extras
        .as_deref()
        .is_some_and(|e| e.categories.is_empty() && e.extended.is_empty())
    {
        m.extras = None;
    }
}

/// A new message from a CreateItem item.
fn new_message(item: &Item) -> NewMessage {
    let addr = |a: &crate::ews::item::EmailAddress| match (&a.name, &a.address) {
        (Some(n), Some(x)) => format!("{n} <{x}>"),
        (None, Some(x)) => x.clone(),
        (Some(n), None) => n.clone(),
        (None, None) => String::new(),
    };
    NewMessage {
        subject: item.subject.clone().unwrap_or_default(),
        from: item
            .from
            .as_ref()
            .or(item.sender.as_ref())
            .map(addr)
            .unwrap_or_default(),
        to: item.to.iter().map(addr).collect(),
        cc: item.cc.iter().map(addr).collect(),
        internet_message_id: item.internet_message_id.clone(),
        conversation_id: None,
        sent: item.date_time_sent.clone(),
        received: item.date_time_received.clone(),
        body_type: item.body.as_ref().map(|b| b.body_type.clone()),
        body: item.body.as_ref().map(|b| b.text.clone()),
        categories: item.categories.clone(),
        has_attachments: false,
        is_read: item.is_read.unwrap_or(false),
        size: None,
    }
}

fn create_item(inner: &mut Inner, ctx: &Ctx<'_>, op: &CreateItem) -> Answer {
    let Some(mb) = inner.state.mailboxes.get_mut(&ctx.mailbox) else {
        return no_mailbox(inner);
    };
    let folder = match resolve(mb, &op.folder) {
        Ok(f) => f,
        Err(e) => {
            let results: Vec<Result<ItemKey, MessageError>> =
                op.items.iter().map(|_| Err(e.clone())).collect();
            return items_response(inner.style, "CreateItem", &results, |_, _| {});
        }
    };
    let counters = &mut inner.state.counters;
    let mut happened = Vec::new();
    let results: Vec<Result<ItemKey, MessageError>> = op
        .items
        .iter()
        .map(|item| {
            let new = new_message(item);
            let (key, _) = mb
                .deliver(folder, &new, ctx.now, counters)
                .map_err(|e| fault(ResponseCode::ErrorItemSave, e.to_string()))?;
            if !item.extended_properties.is_empty() {
                let props = item.extended_properties.clone();
                mb.modify(key, counters, |m| m.extras_mut().extended = props)
                    .map_err(|e| fault(ResponseCode::ErrorItemSave, e.to_string()))?;
            }
            happened.push(Happened::Created {
                item: key,
                new_mail: false,
            });
            Ok(key)
        })
        .collect();
    changed_items(inner, ctx, "CreateItem", &happened, &results)
}

fn move_item(inner: &mut Inner, ctx: &Ctx<'_>, op: &MoveItem) -> Answer {
    let Some(mb) = inner.state.mailboxes.get_mut(&ctx.mailbox) else {
        return no_mailbox(inner);
    };
    let to = resolve(mb, &op.to_folder);
    let counters = &mut inner.state.counters;
    let mut happened = Vec::new();
    let results: Vec<Result<ItemKey, MessageError>> = op
        .items
        .iter()
        .map(|r| {
            let to = to.clone()?;
            let id = r.id.as_str();
            let (key, _) = mb.item_by_id(id).ok_or_else(|| item_error(id))?;
            let new = mb
                .move_item(key, to, counters)
                .map_err(|_| item_error(id))?;
            happened.push(Happened::Moved {
                item: new,
                old: key,
            });
            Ok(new)
        })
        .collect();
    changed_items(inner, ctx, "MoveItem", &happened, &results)
}

/// EWSMaxSubscriptions in Exchange Online: per target mailbox.
const MAX_SUBSCRIPTIONS_PER_MAILBOX: usize = 20;

fn subscribe(inner: &mut Inner, ctx: &Ctx<'_>, op: &Subscribe) -> Answer {
    const OP: &str = "Subscribe";
    let Some(mb) = mailbox(inner, ctx) else {
        return no_mailbox(inner);
    };
    let single_error = |inner: &Inner, e: MessageError| {
        ok(Out::document(inner.style, |o| {
            o.response(OP, |o| o.message(OP, Err(&e), |_| {}))
        }))
    };
    let kind = match &op.mode {
        Mode::Pull {
            timeout_minutes, ..
        } => Kind::Pull {
            timeout: ctx.minute * (*timeout_minutes).clamp(1, 1440),
        },
        Mode::Streaming => Kind::Streaming,
        Mode::Push { .. } => {
            return single_error(
                inner,
                fault(
                    ResponseCode::ErrorInvalidPushSubscriptionUrl,
                    "Push notifications are not supported by the simulator; use pull or streaming subscriptions.",
                ),
            );
        }
    };
    let folders = if op.all_folders {
        None
    } else {
        let mut set = HashSet::new();
        for sel in &op.folders {
            match resolve(mb, sel) {
                Ok(f) => {
                    set.insert(f);
                }
                Err(e) => return single_error(inner, e),
            }
        }
        Some(set)
    };
    let existing = inner
        .subs
        .subs
        .values()
        .filter(|s| s.mailbox == mb.number)
        .count();
    if existing >= MAX_SUBSCRIPTIONS_PER_MAILBOX {
        return single_error(
            inner,
            fault(
                ResponseCode::ErrorExceededSubscriptionCount,
                "You have exceeded the maximum number of subscriptions for this mailbox.",
            ),
        );
    }
    let event_types = op
        .events
        .iter()
        .map(|e| e.as_str())
        .filter(|t| notify::EVENT_TYPES.contains(t))
        .map(str::to_owned)
        .collect();
    let mailbox = mb.number;
    let n = inner.subs.add(Subscription {
        owner: ctx.account.to_owned(),
        mailbox,
        folders,
        event_types,
        kind,
        queue: Default::default(),
        next_event: 0,
        last_access: Instant::now(),
        wake: Arc::new(Notify::new()),
        streaming: false,
    });
    let pull = matches!(kind, Kind::Pull { .. });
    ok(Out::document(inner.style, |o| {
        o.response(OP, |o| {
            o.message(OP, Ok(()), |o| {
                o.m_leaf("SubscriptionId", &ids::subscription_id(n));
                if pull {
                    o.m_leaf("Watermark", &ids::watermark(n, 0));
                }
            })
        })
    }))
}

/// Looks up a subscription for its owner, or the error to send.
fn own_subscription<'a>(
    inner: &'a mut Inner,
    ctx: &Ctx<'_>,
    id: &str,
) -> Result<(u64, &'a mut Subscription), MessageError> {
    let (n, s) = inner.subs.get_mut(id, Instant::now()).ok_or_else(|| {
        fault(
            ResponseCode::ErrorSubscriptionNotFound,
            "The specified subscription was not found.",
        )
    })?;
    if s.owner != ctx.account {
        return Err(fault(
            ResponseCode::ErrorSubscriptionAccessDenied,
            "A subscription can only be read by the account that created it.",
        ));
    }
    Ok((n, s))
}

/// GetEvents returns at most this many events per call.
const MAX_EVENTS: usize = 50;

fn get_events(inner: &mut Inner, ctx: &Ctx<'_>, op: &GetEvents) -> Answer {
    const OP: &str = "GetEvents";
    let style = inner.style;
    let result = own_subscription(inner, ctx, op.subscription_id.as_str()).and_then(|(n, s)| {
        if !matches!(s.kind, Kind::Pull { .. }) {
            return Err(fault(
                ResponseCode::ErrorInvalidPullSubscriptionId,
                "The subscription is not a pull subscription.",
            ));
        }
        let seen = match ids::parse_watermark(op.watermark.as_str()) {
            Some((sub, e)) if sub == n && e <= s.next_event => e,
            _ => {
                return Err(fault(
                    ResponseCode::ErrorInvalidWatermark,
                    "The watermark is invalid.",
                ));
            }
        };
        s.last_access = Instant::now();
        while s.queue.front().is_some_and(|(e, _)| *e <= seen) {
            s.queue.pop_front();
        }
        let events: Vec<(u64, Event)> = s.queue.iter().take(MAX_EVENTS).cloned().collect();
        let more = s.queue.len() > MAX_EVENTS;
        Ok((n, seen, events, more))
    });
    ok(Out::document(style, |o| {
        o.response(OP, |o| match &result {
            Err(e) => o.message(OP, Err(e), |_| {}),
            Ok((n, seen, events, more)) => o.message(OP, Ok(()), |o| {
                o.m_open("Notification");
                o.t_leaf("SubscriptionId", &ids::subscription_id(*n));
                o.t_leaf("PreviousWatermark", &ids::watermark(*n, *seen));
                o.t_leaf("MoreEvents", if *more { "true" } else { "false" });
                if events.is_empty() {
                    o.t_open("StatusEvent");
                    o.t_leaf("Watermark", &ids::watermark(*n, *seen));
                    o.t_close("StatusEvent");
                }
                for (e, event) in events {
                    write_event(o, event, Some(&ids::watermark(*n, *e)));
                }
                o.m_close("Notification");
            }),
        })
    }))
}

fn get_streaming_events(inner: &mut Inner, ctx: &Ctx<'_>, op: &GetStreamingEvents) -> Answer {
    const OP: &str = "GetStreamingEvents";
    if !(1..=30).contains(&op.connection_timeout) || op.subscription_ids.is_empty() {
        return fault_answer(
            inner,
            &fault(
                ResponseCode::ErrorSchemaValidation,
                "The request failed schema validation: ConnectionTimeout must be 1 to 30 and at least one SubscriptionId is required.",
            )
            .with("Violation", "ConnectionTimeout or SubscriptionIds"),
        );
    }
    let mut plan = StreamPlan {
        subscriptions: Vec::new(),
        wakes: Vec::new(),
        timeout: ctx.minute * op.connection_timeout,
    };
    let mut bad = Vec::new();
    for id in &op.subscription_ids {
        match own_subscription(inner, ctx, id.as_str()) {
            Ok((n, s)) if s.kind == Kind::Streaming => {
                s.streaming = true;
                plan.subscriptions.push((n, id.0.clone()));
                plan.wakes.push(s.wake.clone());
            }
            _ => bad.push(id.0.clone()),
        }
    }
    if bad.is_empty() {
        return Answer::Stream(plan);
    }
    let e = fault(
        ResponseCode::ErrorInvalidSubscription,
        "The subscription is invalid.",
    );
    ok(Out::document(inner.style, |o| {
        o.response(OP, |o| {
            o.message(OP, Err(&e), |o| {
                o.m_open("ErrorSubscriptionIds");
                for id in &bad {
                    o.t_leaf("SubscriptionId", id);
                }
                o.m_close("ErrorSubscriptionIds");
            })
        })
    }))
}

/// One streamed envelope: pending events of the plan's subscriptions, or a connection status.
pub fn stream_envelope(inner: &mut Inner, plan: &StreamPlan, status: Option<&str>) -> Option<Doc> {
    const OP: &str = "GetStreamingEvents";
    let mut batches: Vec<(String, Vec<Event>)> = Vec::new();
    for (n, id) in &plan.subscriptions {
        if let Some(s) = inner.subs.subs.get_mut(n)
            && !s.queue.is_empty()
        {
            batches.push((id.clone(), s.queue.drain(..).map(|(_, e)| e).collect()));
        }
    }
    if batches.is_empty() && status.is_none() {
        return None;
    }
    let types_ns = inner.style.notification_ns == super::respond::NotificationNs::Types;
    Some(Out::envelope(inner.style, false, |o| {
        o.response(OP, |o| {
            o.message(OP, Ok(()), |o| {
                if !batches.is_empty() {
                    o.m_open("Notifications");
                    for (id, events) in &batches {
                        if types_ns {
                            o.t_open("Notification");
                        } else {
                            o.m_open("Notification");
                        }
                        o.t_leaf("SubscriptionId", id);
                        for e in events {
                            write_event(o, e, None);
                        }
                        if types_ns {
                            o.t_close("Notification");
                        } else {
                            o.m_close("Notification");
                        }
                    }
                    o.m_close("Notifications");
                }
                if let Some(s) = status {
                    o.m_leaf("ConnectionStatus", s);
                }
            })
        })
    }))
}

fn unsubscribe(inner: &mut Inner, ctx: &Ctx<'_>, id: &str) -> Answer {
    const OP: &str = "Unsubscribe";
    let result = own_subscription(inner, ctx, id).map(|(n, _)| n);
    if let Ok(n) = result {
        inner.subs.subs.remove(&n);
    }
    ok(Out::document(inner.style, |o| {
        o.response(OP, |o| match &result {
            Ok(_) => o.message(OP, Ok(()), |_| {}),
            Err(e) => o.message(OP, Err(e), |_| {}),
        })
    }))
}
