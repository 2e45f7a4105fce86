//! What every operation shares: who is calling (`Ctx`), what goes back (`Answer`), and the
//! lookups and errors the operations start with (the caller's mailbox, a folder selector).

use crate::ews::ResponseCode;
use crate::ews::ids::FolderSelector;
use crate::sim::ids;
use crate::sim::mailbox::Mailbox;
use crate::sim::respond::{self, Doc, MessageError};
use crate::sim::shared::Inner;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

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

/// A streaming connection to hold open: its subscriptions (number and id), what wakes it, and
/// how long it lasts.
pub struct StreamPlan {
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

/// The mailbox the call is for, unless it was deleted meanwhile.
pub(super) fn mailbox<'a>(inner: &'a Inner, ctx: &Ctx<'_>) -> Option<&'a Mailbox> {
    inner.state.mailboxes.get(&ctx.mailbox)
}

/// The fault for a call whose mailbox is gone.
pub(super) fn no_mailbox(inner: &Inner) -> Answer {
    fault_answer(
        inner,
        &fault(
            ResponseCode::ErrorNonExistentMailbox,
            "The mailbox no longer exists.",
        ),
    )
}

/// The folder a selector names in `mb`.
pub(super) fn resolve(mb: &Mailbox, f: &FolderSelector) -> Result<u32, MessageError> {
    let not_found = || {
        fault(
            ResponseCode::ErrorFolderNotFound,
            "The specified folder could not be found in the store.",
        )
    };
    match f {
        FolderSelector::Distinguished(d) => mb.distinguished(*d).ok_or_else(not_found),
        FolderSelector::Id(r) => {
            if ids::parse_folder_id(r.id.as_str()).is_none() {
                return Err(fault(
                    ResponseCode::ErrorInvalidIdMalformed,
                    "Id is malformed.",
                ));
            }
            mb.folder_by_id(r.id.as_str()).ok_or_else(not_found)
        }
    }
}

pub(super) fn invalid_sync_state() -> MessageError {
    fault(
        ResponseCode::ErrorInvalidSyncStateData,
        "Synchronization state data is corrupt or otherwise invalid.",
    )
}
