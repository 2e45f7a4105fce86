//! What every operation shares: who is calling (`Ctx`), what goes back (`Answer`), and the
//! lookups and errors the operations start with: which folder a selector and which item an
//! ItemId name, in which mailbox, and whether the caller may reach it.

use crate::ews::ResponseCode;
use crate::ews::ids::FolderSelector;
use crate::sim::ids::{self, ItemKey};
use crate::sim::mailbox::Happened;
use crate::sim::mailbox::Mailbox;
use crate::sim::message;
use crate::sim::respond::{self, Doc, MessageError, Out};
use crate::sim::shared::Inner;
use crate::sim::state::key;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Who is calling and for which mailbox.
pub struct Ctx<'a> {
    pub account: &'a str,
    /// The mailbox the call acts on: the impersonated one, else the account's own; `None` for
    /// an account without a mailbox that impersonates no one.
    pub mailbox: Option<u32>,
    pub now: i64,
    /// The length of one EWS "minute" (shortened in tests).
    pub minute: Duration,
    /// Server affinity: the back end `X-PreferServerAffinity` pins a new subscription to (the
    /// anchor mailbox's), and the one the request's `X-BackEndOverrideCookie` routes it to.
    pub affinity: Affinity,
}

/// The affinity headers of a request (ews-protocol §1.4).
#[derive(Clone, Debug, Default)]
pub struct Affinity {
    /// Set when the request asked for affinity: the back end of its `X-AnchorMailbox`.
    pub preferred: Option<String>,
    /// The back end its `X-BackEndOverrideCookie` names.
    pub routed_to: Option<String>,
}

/// The name of the simulated mailbox server that holds `anchor`'s subscriptions.
pub fn backend_of(anchor: &str) -> String {
    format!("sim-be-{}", crate::sim::state::key(anchor))
}

/// What the HTTP layer sends.
pub enum Answer {
    /// HTTP 200 (or 500 for a fault) with this document.
    Doc { status: u16, doc: Doc },
    /// A GetStreamingEvents connection: these subscriptions until the deadline.
    Stream(StreamPlan),
}

/// A streaming connection to hold open: its subscriptions (number and id), what wakes it, and
/// how long it lasts.
pub struct StreamPlan {
    /// The budget the connection is charged to (HangingConnectionLimit).
    pub charged_to: String,
    pub subscriptions: Vec<(u64, String)>,
    pub wakes: Vec<Arc<Notify>>,
    pub timeout: Duration,
}

/// A per-message error or fault with this code and text.
pub fn fault(code: ResponseCode, text: impl Into<String>) -> MessageError {
    MessageError::new(code, text)
}

/// A SOAP fault, sent with HTTP 500.
pub(super) fn fault_answer(inner: &Inner, e: &MessageError) -> Answer {
    Answer::Doc {
        status: 500,
        doc: respond::fault_document(inner.style, e),
    }
}

/// A document sent with HTTP 200.
pub(super) fn ok(doc: Doc) -> Answer {
    Answer::Doc { status: 200, doc }
}

/// A folder a request names: the mailbox it is in and its number there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct At {
    pub mailbox: u32,
    pub folder: u32,
}

/// May the caller act on this mailbox? Its own (or the impersonated one), or one its account
/// has full access to.
pub(super) fn reachable(inner: &Inner, ctx: &Ctx<'_>, mailbox: u32) -> bool {
    if ctx.mailbox == Some(mailbox) {
        return true;
    }
    let Some(mb) = inner.state.mailboxes.get(&mailbox) else {
        return false;
    };
    inner
        .state
        .accounts
        .get(ctx.account)
        .is_some_and(|a| a.full_access.contains(&key(&mb.address)))
}

fn folder_not_found() -> MessageError {
    fault(
        ResponseCode::ErrorFolderNotFound,
        "The specified folder could not be found in the store.",
    )
}

/// The mailbox a request means when it names none: the caller's own or the impersonated one.
pub(super) fn own_mailbox(ctx: &Ctx<'_>) -> Result<u32, MessageError> {
    ctx.mailbox.ok_or_else(|| {
        fault(
            ResponseCode::ErrorMissingEmailAddress,
            "When making a request as an account that does not have a mailbox, you must specify the mailbox primary SMTP address for any distinguished folder Ids.",
        )
    })
}

/// The folder a selector names. A distinguished folder is looked up in the mailbox it names
/// (`t:Mailbox`) or the caller's; a folder the caller may not reach is not found, as Exchange
/// answers delegates without rights.
pub(super) fn locate(
    inner: &Inner,
    ctx: &Ctx<'_>,
    selector: &FolderSelector,
) -> Result<At, MessageError> {
    let (mailbox, folder) = match selector {
        FolderSelector::Distinguished { folder, mailbox } => {
            let number = match mailbox {
                Some(address) => inner.state.mailbox_number(address.as_str()).map_err(|_| {
                    fault(
                        ResponseCode::ErrorNonExistentMailbox,
                        "The SMTP address has no mailbox associated with it.",
                    )
                    .with("SmtpAddress", address.as_str())
                })?,
                None => own_mailbox(ctx)?,
            };
            let found = inner
                .state
                .mailboxes
                .get(&number)
                .and_then(|mb| mb.distinguished(*folder));
            (number, found)
        }
        FolderSelector::Id(r) => {
            let (mailbox, folder) = ids::parse_folder_id(r.id.as_str())
                .ok_or_else(|| fault(ResponseCode::ErrorInvalidIdMalformed, "Id is malformed."))?;
            let found = inner
                .state
                .mailboxes
                .get(&mailbox)
                .and_then(|mb| mb.folders.contains_key(&folder).then_some(folder));
            (mailbox, found)
        }
    };
    match folder {
        Some(folder) if reachable(inner, ctx, mailbox) => Ok(At { mailbox, folder }),
        _ => Err(folder_not_found()),
    }
}

/// The item an ItemId names, if it exists and the caller may reach it.
pub(super) fn locate_item(inner: &Inner, ctx: &Ctx<'_>, id: &str) -> Result<ItemKey, MessageError> {
    let Some(key) = ids::parse_item_id(id) else {
        return Err(fault(
            ResponseCode::ErrorInvalidIdMalformed,
            "Id is malformed.",
        ));
    };
    let exists = inner
        .state
        .mailboxes
        .get(&key.mailbox)
        .is_some_and(|mb| mb.item(key).is_some());
    if exists && reachable(inner, ctx, key.mailbox) {
        Ok(key)
    } else {
        Err(fault(
            ResponseCode::ErrorItemNotFound,
            "The specified object was not found in the store.",
        ))
    }
}

/// A document with one message per result, in order: the error, or what `write` writes for a
/// success in the mailbox it concerns.
pub(super) fn per_result<T>(
    inner: &Inner,
    op: &str,
    results: &[Result<(At, T), MessageError>],
    mut write: impl FnMut(&mut Out, &Mailbox, At, &T),
) -> Answer {
    let state = &inner.state;
    ok(Out::document(inner.style, |o| {
        o.response(op, |o| {
            for r in results {
                match r {
                    Err(e) => o.message(op, Err(e), |_| {}),
                    Ok((at, value)) => {
                        if let Some(mb) = state.mailboxes.get(&at.mailbox) {
                            write(o, mb, *at, value);
                        }
                    }
                }
            }
        })
    }))
}

/// After a change: marks the state changed and tells each mailbox's subscribers what
/// happened in it.
pub(super) fn publish(inner: &mut Inner, ctx: &Ctx<'_>, happened: &[Happened]) {
    inner.changed();
    let now = message::format_time(ctx.now);
    let Inner { state, subs, .. } = inner;
    for h in happened {
        if let Some(mb) = state.mailboxes.get(&h.mailbox()) {
            subs.publish(mb, std::slice::from_ref(h), &now);
        }
    }
}

pub(super) fn invalid_sync_state() -> MessageError {
    fault(
        ResponseCode::ErrorInvalidSyncStateData,
        "Synchronization state data is corrupt or otherwise invalid.",
    )
}
