//! The item reads: SyncFolderItems, GetItem and FindItem (restricted, sorted and paged the
//! way a client pages: IndexedPageItemView or FractionalPageItemView until
//! IncludesLastItemInRange). Items are written with `respond/items.rs`; per-item problems
//! become per-message errors in request order.

use super::context::{
    Answer, At, Ctx, fault, fault_answer, invalid_sync_state, locate, locate_item, ok, per_result,
};
use super::query::{self, Props, Value};
use crate::ews::ResponseCode;
use crate::ews::find_item::{FindItem, ItemTraversal, ItemView};
use crate::ews::get_attachment::GetAttachment;
use crate::ews::get_item::GetItem;
use crate::ews::restriction::{FieldOrder, FieldPath};
use crate::ews::sync_folder_items::{MAX_CHANGES, SyncFolderItems};
use crate::sim::ids::{self, ItemKey};
use crate::sim::mailbox::Mailbox;
use crate::sim::message::{Envelope, Message, NewAttachment};
use crate::sim::respond::items::{
    ItemFields, item_fields, write_attachment, write_item, write_item_change,
};
use crate::sim::respond::{MessageError, Out, ResponseStyle, find_page, sync_error_document};
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
    let at = match locate(inner, ctx, &op.folder) {
        Ok(at) => at,
        Err(mut e) => {
            if e.code == ResponseCode::ErrorFolderNotFound {
                e.code = ResponseCode::ErrorSyncFolderNotFound;
            }
            return ok(sync_error_document(inner.style, OP, &e));
        }
    };
    let Some(mb) = inner.state.mailboxes.get(&at.mailbox) else {
        return ok(sync_error_document(inner.style, OP, &invalid_sync_state()));
    };
    let folder = at.folder;
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

/// Writes one `ItemInfo` message per item, in request order (`m:Items` empty on an error).
pub(super) fn items_response<T>(
    style: ResponseStyle,
    op: &'static str,
    results: &[Result<T, MessageError>],
    write: impl FnMut(&mut Out, &T),
) -> Answer {
    list_response(style, op, "Items", results, write)
}

/// One response message per result, the successful ones with `container` filled by `write`.
fn list_response<T>(
    style: ResponseStyle,
    op: &'static str,
    container: &'static str,
    results: &[Result<T, MessageError>],
    mut write: impl FnMut(&mut Out, &T),
) -> Answer {
    ok(Out::document(style, |o| {
        o.response(op, |o| {
            for r in results {
                match r {
                    Ok(v) => o.message(op, Ok(()), |o| {
                        o.m_open(container);
                        write(o, v);
                        o.m_close(container);
                    }),
                    Err(e) => o.message(op, Err(e), |o| {
                        o.m_open(container);
                        o.m_close(container);
                    }),
                }
            }
        })
    }))
}

/// GetAttachment: a file attachment with its content, by the id GetItem listed. An id of an
/// item that has moved since is no longer valid, as in Exchange.
pub(super) fn get_attachment(inner: &mut Inner, ctx: &Ctx<'_>, op: &GetAttachment) -> Answer {
    let invalid = || {
        fault(
            ResponseCode::ErrorInvalidAttachmentId,
            "The attachment id is not valid.",
        )
    };
    let results: Vec<Result<(String, NewAttachment), MessageError>> = op
        .ids
        .iter()
        .map(|id| {
            let (key, index) = ids::parse_attachment_id(id).ok_or_else(invalid)?;
            // The item must still be there, and reachable by the caller.
            let key = locate_item(inner, ctx, &ids::item_id(key)).map_err(|_| invalid())?;
            let mb = inner
                .state
                .mailboxes
                .get(&key.mailbox)
                .ok_or_else(invalid)?;
            let a = mb
                .item(key)
                .and_then(|m| m.attachments().get(index).cloned());
            a.map(|a| (id.clone(), a)).ok_or_else(invalid)
        })
        .collect();
    list_response(
        inner.style,
        "GetAttachment",
        "Attachments",
        &results,
        |o, (id, a)| write_attachment(o, id, a, true),
    )
}

pub(super) fn get_item(inner: &mut Inner, ctx: &Ctx<'_>, op: &GetItem) -> Answer {
    let fields = item_fields(&op.shape, false);
    let results: Vec<Result<ItemKey, MessageError>> = op
        .items
        .iter()
        .map(|r| {
            let key = locate_item(inner, ctx, r.id.as_str())?;
            match inner.unreadable.get(r.id.as_str()) {
                Some(code) => Err(fault(
                    code.clone(),
                    "The item could not be read from the store.",
                )),
                None => Ok(key),
            }
        })
        .collect();
    let state = &inner.state;
    items_response(inner.style, "GetItem", &results, |o, k| {
        if let Some(mb) = state.mailboxes.get(&k.mailbox)
            && let Some(m) = mb.item(*k)
        {
            write_item(o, mb, *k, m, &fields);
        }
    })
}

/// A message as restrictions and sort orders see it.
struct MessageProps<'a> {
    m: &'a Message,
    e: Envelope<'a>,
}

/// The item properties restrictions and sorts can use.
const QUERYABLE: [&str; 15] = [
    "item:Subject",
    "item:DateTimeReceived",
    "item:DateTimeSent",
    "item:DateTimeCreated",
    "item:Size",
    "item:Categories",
    "item:HasAttachments",
    "item:ItemClass",
    "item:Importance",
    "item:Sensitivity",
    "message:IsRead",
    "message:InternetMessageId",
    "message:ConversationTopic",
    "message:From",
    "message:Sender",
];

impl Props for MessageProps<'_> {
    fn supports(path: &FieldPath) -> bool {
        matches!(path, FieldPath::Field(uri) if QUERYABLE.contains(&uri.as_str()))
    }

    fn prop(&self, path: &FieldPath) -> Value<'_> {
        let FieldPath::Field(uri) = path else {
            return Value::Missing;
        };
        let e = &self.e;
        match uri.as_str() {
            "item:Subject" | "message:ConversationTopic" => query::text(e.subject),
            "item:DateTimeReceived" | "item:DateTimeCreated" => Value::Time(e.received),
            "item:DateTimeSent" => Value::Time(e.sent),
            "item:Size" => Value::Number(i64::from(e.size)),
            "item:Categories" if !self.m.categories().is_empty() => {
                Value::Texts(self.m.categories().iter().map(String::as_str).collect())
            }
            "item:HasAttachments" => query::flag(e.has_attachments),
            "item:ItemClass" => query::text("IPM.Note"),
            "item:Importance" => query::text(self.m.importance()),
            "item:Sensitivity" => query::text(self.m.sensitivity()),
            "message:IsRead" => query::flag(self.m.is_read),
            "message:InternetMessageId" => query::text(e.internet_message_id),
            "message:From" | "message:Sender" => query::text(e.from.1),
            _ => Value::Missing,
        }
    }
}

/// What FindItem asks that the simulator does not do, as the error to answer.
fn find_item_unsupported(op: &FindItem) -> Option<MessageError> {
    let not = |what: &str| {
        Some(fault(
            ResponseCode::ErrorInvalidOperation,
            format!("The simulator does not support {what} in FindItem."),
        ))
    };
    if let Some(ItemView::Other(name)) = &op.view {
        return not(name);
    }
    if let Some(g) = &op.grouping {
        return not(g);
    }
    if op.query_string.is_some() {
        return not("QueryString");
    }
    if op.traversal == ItemTraversal::SoftDeleted {
        return not("Traversal=\"SoftDeleted\"");
    }
    None
}

/// The items of one folder that match, in the order asked for (newest first by default).
fn find_in_folder(mb: &Mailbox, at: At, op: &FindItem) -> Vec<ItemKey> {
    let Some(folder) = mb.folders.get(&at.folder) else {
        return Vec::new();
    };
    if op.traversal == ItemTraversal::Associated {
        // The simulator keeps no folder-associated (hidden) items.
        return Vec::new();
    }
    let mut found: Vec<(u64, MessageProps<'_>)> = folder
        .items
        .iter()
        .map(|(n, m)| {
            let p = MessageProps {
                m,
                e: m.envelope.read(),
            };
            (*n, p)
        })
        .filter(|(_, p)| op.restriction.as_ref().is_none_or(|r| query::matches(r, p)))
        .collect();
    let newest_first = [FieldOrder {
        field: FieldPath::Field("item:DateTimeReceived".into()),
        descending: true,
    }];
    found.sort_by(|(na, a), (nb, b)| {
        query::order(&op.sort, a, b)
            .then_with(|| query::order(&newest_first, a, b))
            .then_with(|| nb.cmp(na))
    });
    found
        .into_iter()
        .map(|(n, _)| mb.item_key(at.folder, n))
        .collect()
}

pub(super) fn find_item(inner: &mut Inner, ctx: &Ctx<'_>, op: &FindItem) -> Answer {
    const OP: &str = "FindItem";
    let checks = find_item_unsupported(op)
        .map_or(Ok(()), Err)
        .and_then(|()| {
            op.restriction
                .as_ref()
                .map_or(Ok(()), query::check::<MessageProps>)?;
            query::check_sort::<MessageProps>(&op.sort)
        });
    let found: Vec<Result<(At, Vec<ItemKey>), MessageError>> = op
        .parents
        .iter()
        .map(|sel| {
            checks.clone()?;
            let at = locate(inner, ctx, sel)?;
            let mb = inner.state.mailboxes.get(&at.mailbox);
            Ok((
                at,
                mb.map(|mb| find_in_folder(mb, at, op)).unwrap_or_default(),
            ))
        })
        .collect();
    let fields = item_fields(&op.shape, true);
    per_result(inner, OP, &found, |o, mb, _, keys| {
        write_found(o, mb, keys, op.view.as_ref(), &fields)
    })
}

/// One FindItem message: the page of `keys` the view asks for, with the paging totals.
fn write_found(
    o: &mut Out,
    mb: &Mailbox,
    keys: &[ItemKey],
    view: Option<&ItemView>,
    fields: &ItemFields,
) {
    let (start, end) = query::page_of(view, keys.len());
    let fractional = matches!(view, Some(ItemView::Fractional { .. }));
    find_page(o, "FindItem", fractional, (end, keys.len()), "Items", |o| {
        for k in &keys[start..end] {
            if let Some(m) = mb.item(*k) {
                write_item(o, mb, *k, m, fields);
            }
        }
    });
}
