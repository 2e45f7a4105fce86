//! The EWS operations the simulator answers, acting on the mailboxes a call may reach: this
//! file reads the operation element into a `Request` and dispatches it; `folders.rs`,
//! `items.rs` (reading), `writes.rs` (changing items), `directory.rs` (names, time zones, id
//! formats) and `notifications.rs` answer it, with what `context.rs` shares and `query.rs`
//! evaluates. Requests are read with `ews/`; responses are written with `respond/`. Per-item
//! problems become per-message errors in request order; request-level problems become SOAP
//! faults; an operation the simulator does not implement is named in its fault. Owns EWS
//! semantics over the state; never HTTP, authentication or fault injection.

mod context;
mod directory;
mod folders;
mod items;
mod notifications;
mod query;
mod writes;

pub use context::{Affinity, Answer, Ctx, StreamPlan, backend_of, fault};
pub use notifications::stream_envelope;

use crate::ews::convert_id::ConvertId;
use crate::ews::copy_item::CopyItem;
use crate::ews::create_folder::CreateFolder;
use crate::ews::create_item::CreateItem;
use crate::ews::delete_item::DeleteItem;
use crate::ews::find_folder::FindFolder;
use crate::ews::find_item::FindItem;
use crate::ews::get_attachment::GetAttachment;
use crate::ews::get_events::GetEvents;
use crate::ews::get_folder::GetFolder;
use crate::ews::get_item::GetItem;
use crate::ews::get_server_time_zones::GetServerTimeZones;
use crate::ews::get_streaming_events::GetStreamingEvents;
use crate::ews::move_item::MoveItem;
use crate::ews::resolve_names::ResolveNames;
use crate::ews::subscribe::Subscribe;
use crate::ews::sync_folder_hierarchy::SyncFolderHierarchy;
use crate::ews::sync_folder_items::SyncFolderItems;
use crate::ews::unsubscribe::Unsubscribe;
use crate::ews::update_item::UpdateItem;
use crate::ews::xml::{Element, Ns, XmlReader};
use crate::ews::{Error as EwsError, Operation, ResponseCode};
use crate::sim::shared::Inner;

macro_rules! requests {
    ($($op:ident),* $(,)?) => {
        /// A request the simulator understands.
        #[derive(Debug)]
        pub enum Request {
            $($op($op),)*
            /// An EWS operation the simulator does not implement, and where it was.
            Unsupported { name: String, line: u64, column: u64 },
        }

        /// Reads the operation element inside `soap:Body`.
        pub fn read_operation<'i>(
            r: &mut XmlReader<'i>,
            el: &Element<'i>,
        ) -> Result<Request, EwsError> {
            // Unqualified operation elements are read too: some published requests have them.
            if !matches!(el.ns, Ns::Messages | Ns::Other) {
                return Err(r.error(&format!(
                    "<{}> is not in the EWS messages namespace, so it is no EWS operation",
                    el.name()
                )));
            }
            Ok(match el.name() {
                $($op::NAME => Request::$op($op::read_body(r, el)?),)*
                other => {
                    let (line, column) = match r.error("") {
                        EwsError::Malformed { line, column, .. } => (line, column),
                        EwsError::Fault(_) => (0, 0),
                    };
                    let name = other.to_owned();
                    r.skip(el)?;
                    Request::Unsupported { name, line, column }
                }
            })
        }

        impl Request {
            pub fn name(&self) -> &str {
                match self {
                    $(Self::$op(_) => $op::NAME,)*
                    Self::Unsupported { name, .. } => name,
                }
            }
        }
    };
}

requests! {
    GetFolder, FindFolder, SyncFolderHierarchy, CreateFolder, SyncFolderItems, GetItem,
    GetAttachment,
    FindItem, UpdateItem, CreateItem, MoveItem, CopyItem, DeleteItem, Subscribe, GetEvents,
    GetStreamingEvents, Unsubscribe, ResolveNames, GetServerTimeZones, ConvertId,
}

/// Answers one request.
pub fn handle(inner: &mut Inner, ctx: &Ctx<'_>, request: Request) -> Answer {
    match request {
        Request::GetFolder(op) => folders::get_folder(inner, ctx, &op),
        Request::FindFolder(op) => folders::find_folder(inner, ctx, &op),
        Request::SyncFolderHierarchy(op) => folders::sync_folder_hierarchy(inner, ctx, &op),
        Request::CreateFolder(op) => folders::create_folder(inner, ctx, &op),
        Request::SyncFolderItems(op) => items::sync_folder_items(inner, ctx, &op),
        Request::GetItem(op) => items::get_item(inner, ctx, &op),
        Request::GetAttachment(op) => items::get_attachment(inner, ctx, &op),
        Request::FindItem(op) => items::find_item(inner, ctx, &op),
        Request::UpdateItem(op) => writes::update_item(inner, ctx, &op),
        Request::CreateItem(op) => writes::create_item(inner, ctx, &op),
        Request::MoveItem(op) => writes::move_item(inner, ctx, &op),
        Request::CopyItem(op) => writes::copy_item(inner, ctx, &op),
        Request::DeleteItem(op) => writes::delete_item(inner, ctx, &op),
        Request::Subscribe(op) => notifications::subscribe(inner, ctx, &op),
        Request::GetEvents(op) => notifications::get_events(inner, ctx, &op),
        Request::GetStreamingEvents(op) => notifications::get_streaming_events(inner, ctx, &op),
        Request::Unsubscribe(op) => {
            notifications::unsubscribe(inner, ctx, op.subscription_id.as_str())
        }
        Request::ResolveNames(op) => directory::resolve_names(inner, &op),
        Request::GetServerTimeZones(op) => directory::get_server_time_zones(inner, &op),
        Request::ConvertId(op) => directory::convert_id(inner, &op),
        // Not ErrorInvalidRequest: clients read that as a wrong RequestServerVersion and retry
        // under every older version.
        Request::Unsupported { name, line, column } => context::fault_answer(
            inner,
            &fault(
                ResponseCode::ErrorInvalidOperation,
                format!(
                    "The simulator does not implement the EWS operation {name} (line {line}, column {column})."
                ),
            )
            .with("LineNumber", line.to_string())
            .with("LinePosition", column.to_string())
            .with("Operation", name),
        ),
    }
}
