//! The EWS operations the simulator answers, acting on the mailbox a call is for: this file
//! reads the operation element into a `Request` and dispatches it; `folders.rs`, `items.rs` and
//! `notifications.rs` answer it, with what `context.rs` shares. Requests are read with `ews/`
//! (FindFolder with `requests.rs`, which also reads the restriction and extended properties
//! that `ews/` does not need); responses are written with `respond/`. Per-item problems become
//! per-message errors in request order; request-level problems become SOAP faults. Owns EWS
//! semantics over the state; never HTTP, authentication or fault injection.

mod context;
mod folders;
mod items;
mod notifications;

pub use context::{Answer, Ctx, StreamPlan, fault};
pub use notifications::stream_envelope;

use crate::ews::create_item::CreateItem;
use crate::ews::get_events::GetEvents;
use crate::ews::get_folder::GetFolder;
use crate::ews::get_item::GetItem;
use crate::ews::get_streaming_events::GetStreamingEvents;
use crate::ews::move_item::MoveItem;
use crate::ews::subscribe::Subscribe;
use crate::ews::sync_folder_hierarchy::SyncFolderHierarchy;
use crate::ews::sync_folder_items::SyncFolderItems;
use crate::ews::unsubscribe::Unsubscribe;
use crate::ews::update_item::UpdateItem;
use crate::ews::xml::{Element, Ns, XmlReader};
use crate::ews::{Error as EwsError, Operation, ResponseCode};
use crate::sim::requests;
use crate::sim::shared::Inner;

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

/// Answers one request.
pub fn handle(inner: &mut Inner, ctx: &Ctx<'_>, request: Request) -> Answer {
    match request {
        Request::GetFolder(op) => folders::get_folder(inner, ctx, &op),
        Request::FindFolder(op) => folders::find_folder(inner, ctx, &op),
        Request::SyncFolderHierarchy(op) => folders::sync_folder_hierarchy(inner, ctx, &op),
        Request::SyncFolderItems(op) => items::sync_folder_items(inner, ctx, &op),
        Request::GetItem(op) => items::get_item(inner, ctx, &op),
        Request::UpdateItem(op) => items::update_item(inner, ctx, &op),
        Request::CreateItem(op) => items::create_item(inner, ctx, &op),
        Request::MoveItem(op) => items::move_item(inner, ctx, &op),
        Request::Subscribe(op) => notifications::subscribe(inner, ctx, &op),
        Request::GetEvents(op) => notifications::get_events(inner, ctx, &op),
        Request::GetStreamingEvents(op) => notifications::get_streaming_events(inner, ctx, &op),
        Request::Unsubscribe(op) => {
            notifications::unsubscribe(inner, ctx, op.subscription_id.as_str())
        }
        Request::Unsupported(name) => context::fault_answer(
            inner,
            &fault(
                ResponseCode::ErrorInvalidRequest,
                format!("The request is invalid: the simulator does not implement {name}."),
            ),
        ),
    }
}
