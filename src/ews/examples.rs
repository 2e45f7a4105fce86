//! One example of every request foldertrack can build, as `foldertrack ews requests` writes them,
//! so anyone can validate them against Microsoft's schema.

use super::create_item::CreateItem;
use super::envelope::{ConnectingSid, RequestHeader};
use super::folder::FolderShape;
use super::get_folder::GetFolder;
use super::get_item::GetItem;
use super::ids::{
    ChangeKey, DistinguishedFolder, FolderId, FolderSelector, ItemId, ItemRef, SyncState,
};
use super::item::{EmailAddress, ExtendedProperty, Item, ItemShape, tracking_property};
use super::move_item::MoveItem;
use super::sync_folder_items::SyncFolderItems;
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
    (
        format!("{}.xml", O::NAME),
        write_request_pretty(op, &header()),
    )
}

/// `(file name, request document)` for every operation.
pub fn requests() -> Vec<(String, String)> {
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
        file(&CreateItem {
            folder: folder(),
            items: vec![Item {
                kind: "Message".into(),
                subject: Some("Quote for 40 units".into()),
                to: vec![EmailAddress::smtp("alice@example.com", Some("Alice"))],
                from: Some(EmailAddress::smtp("buyer@contoso.com", None)),
                internet_message_id: Some("<quote-40@contoso.com>".into()),
                is_read: Some(false),
                ..Item::default()
            }],
        }),
        file(&MoveItem {
            to_folder: folder(),
            items: vec![item("1")],
        }),
    ]
}
