//! The item operations: SyncFolderItems, GetItem, and the writes UpdateItem (with the ChangeKey
//! conflict rules), CreateItem and MoveItem, which tell subscribers what happened. Items are
//! written with `respond/items.rs`; per-item problems become per-message errors in request
//! order.

use super::context::{
    Answer, Ctx, fault, fault_answer, invalid_sync_state, mailbox, no_mailbox, ok, resolve,
};
use crate::ews::ResponseCode;
use crate::ews::create_item::CreateItem;
use crate::ews::get_item::GetItem;
use crate::ews::item::Item;
use crate::ews::move_item::MoveItem;
use crate::ews::sync_folder_items::{MAX_CHANGES, SyncFolderItems};
use crate::ews::update_item::{ConflictResolution, Update, UpdateItem};
use crate::sim::ids::{self, ItemKey};
use crate::sim::mailbox::Happened;
use crate::sim::message::{self, Message, NewMessage};
use crate::sim::respond::items::{item_fields, write_item, write_item_change};
use crate::sim::respond::{MessageError, Out, ResponseStyle, sync_error_document};
use crate::sim::shared::Inner;
use std::collections::HashSet;

pub(super) fn sync_folder_items(inner: &mut Inner, ctx: &Ctx<'_>, op: &SyncFolderItems) -> Answer {
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
                o.includes_last("IncludesLastItemInRange", page.last);
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
    style: ResponseStyle,
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

pub(super) fn get_item(inner: &mut Inner, ctx: &Ctx<'_>, op: &GetItem) -> Answer {
    let Some(mb) = mailbox(inner, ctx) else {
        return no_mailbox(inner);
    };
    let fields = item_fields(&op.shape, false);
    let results: Vec<Result<ItemKey, MessageError>> = op
        .items
        .iter()
        .map(|r| {
            let key = mb.item_by_id(r.id.as_str()).map(|(k, _)| k);
            match inner.unreadable.get(r.id.as_str()) {
                Some(code) if key.is_some() => Err(fault(
                    code.clone(),
                    "The item could not be read from the store.",
                )),
                _ => key.ok_or_else(|| item_error(r.id.as_str())),
            }
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

pub(super) fn update_item(inner: &mut Inner, ctx: &Ctx<'_>, op: &UpdateItem) -> Answer {
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
    let now = message::format_time(ctx.now);
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

pub(super) fn create_item(inner: &mut Inner, ctx: &Ctx<'_>, op: &CreateItem) -> Answer {
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

pub(super) fn move_item(inner: &mut Inner, ctx: &Ctx<'_>, op: &MoveItem) -> Answer {
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
