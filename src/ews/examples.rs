//! One example of every request foldertrack can build, as `foldertrack ews requests` writes them,
//! so anyone can validate them against Microsoft's schema: the ones it sends, and the ones of
//! other clients the simulator answers.

use super::convert_id::{AlternateId, ConvertId};
use super::copy_item::CopyItem;
use super::create_folder::CreateFolder;
use super::create_item::{CreateItem, MessageDisposition};
use super::delete_item::{DeleteItem, DeleteType};
use super::envelope::{ConnectingSid, RequestHeader};
use super::find_folder::{FindFolder, Page, Traversal};
use super::find_item::{FindItem, ItemTraversal, ItemView};
use super::folder::Folder;
use super::folder::FolderShape;
use super::get_attachment::GetAttachment;
use super::get_events::GetEvents;
use super::get_folder::GetFolder;
use super::get_item::GetItem;
use super::get_server_time_zones::GetServerTimeZones;
use super::get_streaming_events::GetStreamingEvents;
use super::ids::{
    ChangeKey, DistinguishedFolder, FolderId, FolderSelector, ItemId, ItemRef, SyncState,
};
use super::ids::{SubscriptionId, Watermark};
use super::item::{EmailAddress, ExtendedProperty, Item, ItemShape, tracking_property};
use super::move_item::MoveItem;
use super::notification::EventKind;
use super::resolve_names::ResolveNames;
use super::restriction::{Comparison, FieldOrder, FieldPath, Operand, Restriction};
use super::subscribe::{Mode, Subscribe};
use super::sync_folder_hierarchy::SyncFolderHierarchy;
use super::sync_folder_items::SyncFolderItems;
use super::unsubscribe::Unsubscribe;
use super::update_item::{ConflictResolution, ItemChange, Update, UpdateItem};
use super::{Operation, write_request_pretty};

fn item(id: &str) -> ItemRef {
    ItemRef {
        id: ItemId(format!("AAMkAGI2{id}AAA=")),
        change_key: Some(ChangeKey("CQAAABYAAAD1".into())),
    }
}

fn folder() -> FolderSelector {
    FolderId("AAMkAGI2TG93AAA=".into()).into()
}

fn header() -> RequestHeader {
    RequestHeader {
        impersonation: Some(ConnectingSid::PrimarySmtpAddress(
            "alice@example.com".into(),
        )),
        ..RequestHeader::default()
    }
}

fn file<O: Operation>(op: &O) -> (String, String) {
    named(O::NAME, op)
}

fn named<O: Operation>(name: &str, op: &O) -> (String, String) {
    (format!("{name}.xml"), write_request_pretty(op, &header()))
}

fn subscribe(mode: Mode) -> Subscribe {
    Subscribe {
        mode,
        folders: vec![folder()],
        all_folders: false,
        events: vec![EventKind::Created, EventKind::Moved, EventKind::Deleted],
    }
}

fn subscription() -> SubscriptionId {
    SubscriptionId("JgBibDFwcjA2bWIyMjEubmFtcHJkMDYucHJvZC5vdXRsb29rLmNvbRAAAAA=".into())
}

/// `(file name, request document)` for every operation: what foldertrack sends, then the
/// requests other clients send that the simulator answers.
pub fn requests() -> Vec<(String, String)> {
    let mut out = sent();
    out.extend(sent_watching());
    out.extend(other_clients());
    out.extend(other_clients_services());
    out
}

/// The item requests foldertrack itself sends (and plants mail with).
fn sent() -> Vec<(String, String)> {
    vec![
        file(&GetFolder {
            shape: FolderShape::for_resolution(),
            folders: vec![DistinguishedFolder::Inbox.into(), folder()],
        }),
        file(&SyncFolderItems::page(
            folder(),
            Some(SyncState("H4sIAAAAAAAEAO29B2AcSZY=".into())),
            512,
        )),
        file(&GetItem {
            shape: ItemShape::for_tracking(true),
            items: vec![item("1"), item("2")],
        }),
        file(&GetAttachment {
            ids: vec!["AAMkAGI2AttachmentAAABEgAQAA1=".into()],
        }),
        file(&UpdateItem {
            conflict_resolution: ConflictResolution::AutoResolve,
            changes: vec![ItemChange {
                item: item("1"),
                updates: vec![
                    Update::SetCategories(vec!["Tracked".into()]),
                    Update::SetExtended(ExtendedProperty {
                        field: tracking_property(),
                        value: Some("tr-1f0c;moved_in".into()),
                        values: Vec::new(),
                    }),
                ],
            }],
        }),
        file(&CreateItem::save(
            folder(),
            vec![Item {
                kind: "Message".into(),
                subject: Some("Quote for 40 units".into()),
                to: vec![EmailAddress::smtp("alice@example.com", Some("Alice"))],
                from: Some(EmailAddress::smtp("buyer@contoso.com", None)),
                internet_message_id: Some("<quote-40@contoso.com>".into()),
                is_read: Some(false),
                ..Item::default()
            }],
        )),
        file(&MoveItem {
            to_folder: folder(),
            items: vec![item("1")],
        }),
    ]
}

/// The folder and notification requests foldertrack sends.
fn sent_watching() -> Vec<(String, String)> {
    vec![
        file(&FindFolder {
            traversal: Traversal::Deep,
            shape: FolderShape::for_resolution(),
            page: Some(Page {
                max_entries: 1000,
                offset: 0,
                from_end: false,
            }),
            restriction: None,
            parents: vec![DistinguishedFolder::MsgFolderRoot.into()],
        }),
        file(&SyncFolderHierarchy {
            shape: FolderShape::for_resolution(),
            root: Some(DistinguishedFolder::MsgFolderRoot.into()),
            sync_state: Some(SyncState("H4sIAAAAAAAEAO29B2AcSZY=".into())),
        }),
        named(
            "Subscribe-pull",
            &subscribe(Mode::Pull {
                watermark: None,
                timeout_minutes: 30,
            }),
        ),
        named("Subscribe-streaming", &subscribe(Mode::Streaming)),
        file(&GetEvents {
            subscription_id: subscription(),
            watermark: Watermark("AQAAAPRh0wMN9PdGrXyrHxFmXXUhhQAAAAAAAAA=".into()),
        }),
        file(&GetStreamingEvents {
            subscription_ids: vec![subscription()],
            connection_timeout: 30,
        }),
        file(&Unsubscribe {
            subscription_id: subscription(),
        }),
    ]
}

/// Item requests of other EWS clients: querying, deleting, copying, updating, sending.
fn other_clients() -> Vec<(String, String)> {
    let subject = FieldPath::Field("item:Subject".into());
    vec![
        file(&FindItem {
            traversal: ItemTraversal::Shallow,
            shape: ItemShape {
                properties: vec!["item:Subject".into(), "item:DateTimeReceived".into()],
                ..ItemShape::default()
            },
            view: Some(ItemView::Indexed {
                max_entries: Some(25),
                offset: 0,
                from_end: false,
            }),
            grouping: None,
            restriction: Some(Restriction::And(vec![
                Restriction::Contains {
                    field: subject.clone(),
                    value: "Quote".into(),
                    mode: Some("Substring".into()),
                    comparison: Some("IgnoreCase".into()),
                },
                Restriction::Not(Box::new(Restriction::Compare {
                    op: Comparison::IsEqualTo,
                    field: FieldPath::Field("item:Categories".into()),
                    value: Operand::Constant("Tracked".into()),
                })),
            ])),
            sort: vec![FieldOrder {
                field: FieldPath::Field("item:DateTimeReceived".into()),
                descending: true,
            }],
            parents: vec![DistinguishedFolder::Inbox.into()],
            query_string: None,
        }),
        file(&DeleteItem {
            delete_type: DeleteType::MoveToDeletedItems,
            items: vec![item("1")],
        }),
        file(&CopyItem {
            to_folder: folder(),
            items: vec![item("2")],
        }),
        named(
            "UpdateItem-fields",
            &UpdateItem {
                conflict_resolution: ConflictResolution::AutoResolve,
                changes: vec![ItemChange {
                    item: item("1"),
                    updates: vec![
                        Update::SetSubject("Quote for 40 units (read)".into()),
                        Update::SetIsRead(true),
                        Update::SetImportance("High".into()),
                    ],
                }],
            },
        ),
        named(
            "CreateItem-send",
            &CreateItem {
                disposition: MessageDisposition::SendAndSaveCopy,
                folder: Some(DistinguishedFolder::SentItems.into()),
                items: vec![Item {
                    kind: "Message".into(),
                    subject: Some("Quote accepted".into()),
                    to: vec![EmailAddress::smtp("buyer@contoso.com", None)],
                    ..Item::default()
                }],
            },
        ),
    ]
}

/// Folder and directory requests of other EWS clients.
fn other_clients_services() -> Vec<(String, String)> {
    vec![
        file(&CreateFolder {
            parent: DistinguishedFolder::Inbox.into(),
            folders: vec![Folder {
                kind: "Folder".into(),
                display_name: Some("Customers".into()),
                folder_class: Some("IPF.Note".into()),
                ..Folder::default()
            }],
        }),
        file(&ResolveNames {
            entry: "alice".into(),
            return_full_contact_data: false,
            search_scope: None,
            parent_folders: Vec::new(),
        }),
        file(&GetServerTimeZones {
            ids: vec!["W. Europe Standard Time".into()],
            return_full_data: true,
        }),
        file(&ConvertId {
            destination_format: "EntryId".into(),
            ids: vec![AlternateId {
                format: "EwsId".into(),
                id: "AAMkAGI2AAA=".into(),
                mailbox: "alice@example.com".into(),
                is_archive: None,
            }],
        }),
    ]
}
