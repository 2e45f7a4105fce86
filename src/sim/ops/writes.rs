//! The item writes: UpdateItem (with the ChangeKey conflict rules), CreateItem (save, or send
//! to the simulator's own mailboxes), MoveItem, CopyItem and DeleteItem. Each tells
//! subscribers what happened and answers one message per item, in request order, with the
//! item's new ItemId and ChangeKey where the operation returns one.

use super::context::{Answer, At, Ctx, fault, locate, locate_item, own_mailbox, publish};
use super::items::items_response;
use crate::ews::copy_item::CopyItem;
use crate::ews::create_item::CreateItem;
use crate::ews::delete_item::{DeleteItem, DeleteType};
use crate::ews::item::Item;
use crate::ews::move_item::MoveItem;
use crate::ews::update_item::{ConflictResolution, Update, UpdateItem};
use crate::ews::{DistinguishedFolder, FolderSelector, ItemRef, ResponseCode};
use crate::sim::ids::{self, ItemKey};
use crate::sim::mailbox::{Counters, Happened, Mailbox, TreeError};
use crate::sim::message::{Address, Message, NewMessage};
use crate::sim::respond::MessageError;
use crate::sim::shared::Inner;
use crate::sim::state::State;
use std::sync::Arc;

/// Tells subscribers what happened, then answers one message per item with the `t:Message`
/// (ItemId and ChangeKey) of each item returned (an empty `m:Items` for `None`).
fn changed_items<K: Copy + Into<Option<ItemKey>>>(
    inner: &mut Inner,
    ctx: &Ctx<'_>,
    op: &'static str,
    happened: &[Happened],
    results: &[Result<K, MessageError>],
) -> Answer {
    publish(inner, ctx, happened);
    let state = &inner.state;
    items_response(inner.style, op, results, |o, k| {
        let Some(k) = (*k).into() else {
            return;
        };
        if let Some(mb) = state.mailboxes.get(&k.mailbox)
            && let Some(m) = mb.item(k)
        {
            o.t_open("Message");
            o.t_id("ItemId", &ids::item_id(k), Some(&mb.item_change_key(k, m)));
            o.t_close("Message");
        }
    })
}

/// The mailbox and the shared counters, borrowed together for a change.
fn mailbox_mut(
    state: &mut State,
    mailbox: u32,
) -> Result<(&mut Mailbox, &mut Counters), MessageError> {
    let State {
        mailboxes,
        counters,
        ..
    } = state;
    let mb = mailboxes.get_mut(&mailbox).ok_or_else(|| {
        fault(
            ResponseCode::ErrorItemNotFound,
            "The specified object was not found in the store.",
        )
    })?;
    Ok((mb, counters))
}

/// Checks a ChangeKey against the message under UpdateItem's `ConflictResolution`.
///
/// [MS-OXWSCORE] 3.1.4.9.4.1 is followed: NeverOverwrite fails with ErrorIrresolvableConflict
/// when the item changed since the key; AutoResolve "automatically resolves any conflict", in
/// most cases by overwriting the property, and AlwaysOverwrite overwrites. The EWS Managed
/// API describes its AutoResolve as applying "unless the server-side copy is more recent",
/// but that documents the client library's enum; the protocol specification says what the
/// server does. A key that never belonged to the item is ErrorInvalidChangeKey, except with
/// AlwaysOverwrite.
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
    match (seen, mode) {
        (_, ConflictResolution::AlwaysOverwrite) => Ok(()),
        (None, _) => Err(fault(
            ResponseCode::ErrorInvalidChangeKey,
            "The change key is invalid.",
        )),
        (Some(v), ConflictResolution::NeverOverwrite) if v != m.version => Err(fault(
            ResponseCode::ErrorIrresolvableConflict,
            "The send or update operation could not be performed because the change key passed in the request does not match the current change key for the item.",
        )),
        (Some(_), _) => Ok(()),
    }
}

/// Refuses a change the simulator cannot apply, by name, instead of dropping it.
fn check_update(u: &Update) -> Result<(), MessageError> {
    match u {
        Update::Other { action, field } => Err(fault(
            ResponseCode::ErrorInvalidPropertySet,
            format!(
                "The simulator cannot apply {action} to {field}; it does not store that property."
            ),
        )
        .with("FieldURI", field.as_str())),
        _ => Ok(()),
    }
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
        Update::SetSubject(s) => m.set_subject(s),
        Update::SetIsRead(r) => m.is_read = *r,
        Update::SetImportance(i) => m.extras_mut().importance = Some(i.clone()),
        Update::SetSensitivity(s) => m.extras_mut().sensitivity = Some(s.clone()),
        Update::SetBody(b) => m.body = Some(Arc::new(b.clone())),
        Update::Other { .. } => {}
    }
    m.compact();
}

pub(super) fn update_item(inner: &mut Inner, ctx: &Ctx<'_>, op: &UpdateItem) -> Answer {
    let mut happened = Vec::new();
    let results: Vec<Result<ItemKey, MessageError>> = op
        .changes
        .iter()
        .map(|change| {
            let key = locate_item(inner, ctx, change.item.id.as_str())?;
            let (mb, counters) = mailbox_mut(&mut inner.state, key.mailbox)?;
            let m = mb.item(key).ok_or_else(no_item)?;
            check_change_key(
                key,
                m,
                change.item.change_key.as_ref().map(|c| c.as_str()),
                op.conflict_resolution,
            )?;
            change.updates.iter().try_for_each(check_update)?;
            mb.modify(key, counters, |m| {
                for u in &change.updates {
                    apply_update(m, u);
                }
            })
            .map_err(|_| no_item())?;
            happened.push(Happened::Modified { item: key });
            Ok(key)
        })
        .collect();
    changed_items(inner, ctx, "UpdateItem", &happened, &results)
}

fn no_item() -> MessageError {
    fault(
        ResponseCode::ErrorItemNotFound,
        "The specified object was not found in the store.",
    )
}

/// `Name <address>` or the bare address of a CreateItem mailbox.
fn address_text(a: &crate::ews::item::EmailAddress) -> String {
    match (&a.name, &a.address) {
        (Some(n), Some(x)) => format!("{n} <{x}>"),
        (None, Some(x)) => x.clone(),
        (Some(n), None) => n.clone(),
        (None, None) => String::new(),
    }
}

/// A new message from a CreateItem item; `from` when the item names no sender.
fn new_message(item: &Item, from: &str) -> NewMessage {
    NewMessage {
        subject: item.subject.clone().unwrap_or_default(),
        from: item
            .from
            .as_ref()
            .or(item.sender.as_ref())
            .map(address_text)
            .unwrap_or_else(|| from.to_owned()),
        to: item.to.iter().map(address_text).collect(),
        cc: item.cc.iter().map(address_text).collect(),
        internet_message_id: item.internet_message_id.clone(),
        conversation_id: None,
        sent: item.date_time_sent.clone(),
        received: item.date_time_received.clone(),
        body_type: item.body.as_ref().map(|b| b.body_type.clone()),
        body: item.body.as_ref().map(|b| b.text.clone()),
        categories: item.categories.clone(),
        has_attachments: false,
        attachments: Vec::new(),
        is_read: item.is_read.unwrap_or(false),
        size: None,
    }
}

/// Saves `new` into `at`, with the item's extended properties and flags.
fn save(
    state: &mut State,
    at: At,
    item: &Item,
    new: &NewMessage,
    now: i64,
) -> Result<ItemKey, MessageError> {
    let (mb, counters) = mailbox_mut(state, at.mailbox)?;
    let save_error = |e: TreeError| fault(ResponseCode::ErrorItemSave, e.to_string());
    let (key, _) = mb
        .deliver(at.folder, new, now, counters)
        .map_err(save_error)?;
    let extras = !item.extended_properties.is_empty()
        || item.importance.is_some()
        || item.sensitivity.is_some();
    if extras {
        mb.modify(key, counters, |m| {
            let x = m.extras_mut();
            x.extended = item.extended_properties.clone();
            x.importance = item.importance.clone();
            x.sensitivity = item.sensitivity.clone();
            m.compact();
        })
        .map_err(save_error)?;
    }
    Ok(key)
}

/// Sends a message: every recipient with a mailbox here gets it in their Inbox, unread;
/// other recipients are outside the simulated organisation and get nothing.
fn send(state: &mut State, new: &NewMessage, now: i64, happened: &mut Vec<Happened>) {
    let mut message = new.clone();
    message.is_read = false;
    message
        .sent
        .get_or_insert_with(|| crate::sim::message::format_time(now));
    if message.internet_message_id.is_none() {
        message.internet_message_id = Some(format!("<{:016x}@sim.foldertrack>", fastrand::u64(..)));
    }
    let mut seen = std::collections::HashSet::new();
    for to in new.to.iter().chain(&new.cc) {
        let address = Address::parse(to).address;
        let Ok(number) = state.mailbox_number(&address) else {
            continue;
        };
        if !seen.insert(number) {
            continue;
        }
        let Ok((mb, counters)) = mailbox_mut(state, number) else {
            continue;
        };
        if let Some(inbox) = mb.distinguished(DistinguishedFolder::Inbox)
            && let Ok((key, _)) = mb.deliver(inbox, &message, now, counters)
        {
            happened.push(Happened::Created {
                item: key,
                new_mail: true,
            });
        }
    }
}

pub(super) fn create_item(inner: &mut Inner, ctx: &Ctx<'_>, op: &CreateItem) -> Answer {
    let target = op.saved_in().map(|sel| locate(inner, ctx, &sel));
    let sender = own_mailbox(ctx)
        .ok()
        .and_then(|n| inner.state.mailboxes.get(&n))
        .map(|mb| mb.address.clone())
        .unwrap_or_default();
    let sends = op.disposition.sends();
    let mut happened = Vec::new();
    let results: Vec<Result<Option<ItemKey>, MessageError>> = op
        .items
        .iter()
        .map(|item| {
            let new = new_message(item, &sender);
            let saved = match &target {
                Some(at) => {
                    let mut copy = new.clone();
                    copy.is_read |= sends;
                    let key = save(&mut inner.state, at.clone()?, item, &copy, ctx.now)?;
                    happened.push(Happened::Created {
                        item: key,
                        new_mail: false,
                    });
                    Some(key)
                }
                None => None,
            };
            if sends {
                send(&mut inner.state, &new, ctx.now, &mut happened);
            }
            // Exchange answers a send with an empty m:Items: the saved copy is not returned.
            Ok(saved.filter(|_| !sends))
        })
        .collect();
    changed_items(inner, ctx, "CreateItem", &happened, &results)
}

/// The target of a move or copy, which must be in the item's mailbox.
fn same_mailbox(to: &Result<At, MessageError>, key: ItemKey) -> Result<At, MessageError> {
    let to = to.clone()?;
    if to.mailbox != key.mailbox {
        return Err(fault(
            ResponseCode::ErrorCrossMailboxMoveCopy,
            "The simulator moves and copies items within one mailbox only.",
        ));
    }
    Ok(to)
}

/// Moves or copies each item into `to`; answers with the new ItemIds.
fn move_or_copy(
    inner: &mut Inner,
    ctx: &Ctx<'_>,
    op: &'static str,
    to: &FolderSelector,
    items: &[ItemRef],
) -> Answer {
    let to = locate(inner, ctx, to);
    let mut happened = Vec::new();
    let results: Vec<Result<ItemKey, MessageError>> = items
        .iter()
        .map(|r| {
            let key = locate_item(inner, ctx, r.id.as_str())?;
            let to = same_mailbox(&to, key)?;
            let (mb, counters) = mailbox_mut(&mut inner.state, key.mailbox)?;
            let new = if op == "MoveItem" {
                let new = mb.move_item(key, to.folder, counters);
                new.inspect(|n| happened.push(Happened::Moved { item: *n, old: key }))
            } else {
                let new = mb.copy_item(key, to.folder, counters);
                new.inspect(|n| {
                    happened.push(Happened::Created {
                        item: *n,
                        new_mail: false,
                    })
                })
            };
            new.map_err(|_| no_item())
        })
        .collect();
    changed_items(inner, ctx, op, &happened, &results)
}

pub(super) fn move_item(inner: &mut Inner, ctx: &Ctx<'_>, op: &MoveItem) -> Answer {
    move_or_copy(inner, ctx, "MoveItem", &op.to_folder, &op.items)
}

pub(super) fn copy_item(inner: &mut Inner, ctx: &Ctx<'_>, op: &CopyItem) -> Answer {
    move_or_copy(inner, ctx, "CopyItem", &op.to_folder, &op.items)
}

/// Deletes one item the way `kind` says; what happened, for subscribers.
fn delete_one(state: &mut State, key: ItemKey, kind: DeleteType) -> Result<Happened, MessageError> {
    let (mb, counters) = mailbox_mut(state, key.mailbox)?;
    let deleted_items = mb.distinguished(DistinguishedFolder::DeletedItems);
    // Deleting from Deleted Items moves on to Recoverable Items, as Outlook's delete does.
    let kind = match kind {
        DeleteType::MoveToDeletedItems if deleted_items == Some(key.folder) => {
            DeleteType::SoftDelete
        }
        k => k,
    };
    let to = match kind {
        DeleteType::HardDelete => {
            mb.delete_item(key, counters).map_err(|_| no_item())?;
            return Ok(Happened::Deleted { item: key });
        }
        DeleteType::SoftDelete => mb.distinguished(DistinguishedFolder::RecoverableItemsDeletions),
        DeleteType::MoveToDeletedItems => deleted_items,
    };
    let to = to.ok_or_else(|| {
        fault(
            ResponseCode::ErrorFolderNotFound,
            "The folder deleted items go to does not exist in this mailbox.",
        )
    })?;
    let new = mb.move_item(key, to, counters).map_err(|_| no_item())?;
    Ok(Happened::Moved {
        item: new,
        old: key,
    })
}

pub(super) fn delete_item(inner: &mut Inner, ctx: &Ctx<'_>, op: &DeleteItem) -> Answer {
    let mut happened = Vec::new();
    let results: Vec<Result<(), MessageError>> = op
        .items
        .iter()
        .map(|r| {
            let key = locate_item(inner, ctx, r.id.as_str())?;
            happened.push(delete_one(&mut inner.state, key, op.delete_type)?);
            Ok(())
        })
        .collect();
    publish(inner, ctx, &happened);
    let style = inner.style;
    super::context::ok(crate::sim::respond::Out::document(style, |o| {
        o.response("DeleteItem", |o| {
            for r in &results {
                o.message("DeleteItem", r.as_ref().map(|_| ()), |_| {});
            }
        })
    }))
}
