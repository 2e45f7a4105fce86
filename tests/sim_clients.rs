//! The simulator answers what other EWS clients send, the way Exchange does: mailboxes shaped
//! like Exchange's (every standard folder with its kind and class, hidden and system folders),
//! delegate access by `DistinguishedFolderId/Mailbox`, FindItem, DeleteItem, CopyItem,
//! CreateFolder, sending, UpdateItem of simple fields, ResolveNames, GetServerTimeZones and
//! ConvertId. Real HTTP on 127.0.0.1, read back with foldertrack's own parsers; and exchangelib,
//! a Python EWS client nobody here wrote, making its usual calls against `foldertrack sim`.

mod required;
mod sim_support;

use foldertrack::ews::convert_id::{AlternateId, ConvertId};
use foldertrack::ews::copy_item::CopyItem;
use foldertrack::ews::create_folder::CreateFolder;
use foldertrack::ews::create_item::{CreateItem, MessageDisposition};
use foldertrack::ews::delete_item::{DeleteItem, DeleteType};
use foldertrack::ews::find_folder::{FindFolder, Traversal};
use foldertrack::ews::find_item::{FindItem, FindItemMessage, ItemTraversal, ItemView};
use foldertrack::ews::folder::{BaseShape, Folder, FolderShape};
use foldertrack::ews::get_events::GetEvents;
use foldertrack::ews::get_folder::GetFolder;
use foldertrack::ews::get_item::GetItem;
use foldertrack::ews::get_server_time_zones::GetServerTimeZones;
use foldertrack::ews::item::{EmailAddress, ExtendedFieldUri, Item, ItemShape};
use foldertrack::ews::resolve_names::ResolveNames;
use foldertrack::ews::restriction::{Comparison, FieldOrder, FieldPath, Operand, Restriction};
use foldertrack::ews::subscribe::{Mode, Subscribe};
use foldertrack::ews::sync_folder_hierarchy::{FolderChange, SyncFolderHierarchy};
use foldertrack::ews::sync_folder_items::{Change, SyncFolderItems};
use foldertrack::ews::update_item::{ConflictResolution, ItemChange, Update, UpdateItem};
use foldertrack::ews::{
    self, DistinguishedFolder, FolderId, FolderSelector, ItemId, ItemRef, Mailbox, ResponseClass,
    ResponseCode,
};
use foldertrack::sim::NewMessage;
use sim_support::*;

fn msg(subject: &str, received: &str, categories: &[&str]) -> NewMessage {
    NewMessage {
        subject: subject.into(),
        from: "Buyer <buyer@contoso.com>".into(),
        to: vec![ALICE.into()],
        received: Some(received.into()),
        categories: categories.iter().map(|c| (*c).to_owned()).collect(),
        ..NewMessage::default()
    }
}

fn item_ref(id: &str) -> ItemRef {
    ItemRef {
        id: ItemId(id.into()),
        change_key: None,
    }
}

fn field(uri: &str) -> FieldPath {
    FieldPath::Field(uri.into())
}

fn all_properties() -> FolderShape {
    FolderShape {
        base: BaseShape::AllProperties,
        properties: vec!["folder:DistinguishedFolderId".into()],
        extended: vec![ExtendedFieldUri {
            property_tag: Some("4340".into()),
            property_type: "Boolean".into(),
            ..ExtendedFieldUri::default()
        }],
    }
}

fn distinguished_in(folder: DistinguishedFolder, mailbox: &str) -> FolderSelector {
    FolderSelector::Distinguished {
        folder,
        mailbox: Some(Mailbox(mailbox.into())),
    }
}

#[tokio::test]
async fn a_new_mailbox_has_exchanges_standard_folders_with_their_kinds_and_classes() {
    let sim = start().await;
    // One GetFolder with every distinguished name of the schema: one answer each, in order.
    let op = GetFolder {
        shape: all_properties(),
        folders: DistinguishedFolder::ALL
            .iter()
            .map(|d| (*d).into())
            .collect(),
    };
    let (status, body) = call(&sim, AS_ALICE, None, &op).await;
    assert_eq!(status, 200, "{body}");
    let answer = ews::read_response::<GetFolder>(&body).unwrap();
    assert_eq!(answer.messages.len(), DistinguishedFolder::ALL.len());
    let mut present = Vec::new();
    for (d, m) in DistinguishedFolder::ALL.iter().zip(&answer.messages) {
        match m {
            Ok(m) => present.push((d.as_str(), m.folders[0].clone())),
            Err(e) => assert_eq!(e.code, ResponseCode::ErrorFolderNotFound, "{d:?}"),
        }
    }
    let get = |name: &str| {
        present
            .iter()
            .find(|(d, _)| *d == name)
            .map(|(_, f)| f)
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    for (name, kind, class, display) in [
        ("inbox", "Folder", Some("IPF.Note"), "Inbox"),
        (
            "calendar",
            "CalendarFolder",
            Some("IPF.Appointment"),
            "Calendar",
        ),
        (
            "contacts",
            "ContactsFolder",
            Some("IPF.Contact"),
            "Contacts",
        ),
        ("tasks", "TasksFolder", Some("IPF.Task"), "Tasks"),
        ("notes", "Folder", Some("IPF.StickyNote"), "Notes"),
        ("journal", "Folder", Some("IPF.Journal"), "Journal"),
        (
            "todosearch",
            "SearchFolder",
            Some("IPF.Task"),
            "To-Do Search",
        ),
        (
            "recipientcache",
            "ContactsFolder",
            Some("IPF.Contact.RecipientCache"),
            "Recipient Cache",
        ),
        ("searchfolders", "Folder", None, "Finder"),
        ("recoverableitemsdeletions", "Folder", None, "Deletions"),
        ("msgfolderroot", "Folder", None, "Top of Information Store"),
    ] {
        let f = get(name);
        assert_eq!(f.kind, kind, "{name}");
        assert_eq!(f.folder_class.as_deref(), class, "{name}");
        assert_eq!(f.display_name.as_deref(), Some(display), "{name}");
    }
    // Features this mailbox does not have: no archive, no Unified Messaging, no public folders.
    let absent: Vec<&str> = DistinguishedFolder::ALL
        .iter()
        .map(|d| d.as_str())
        .filter(|n| !present.iter().any(|(d, _)| d == n))
        .collect();
    for name in [
        "archiveroot",
        "archiveinbox",
        "voicemail",
        "publicfoldersroot",
    ] {
        assert!(absent.contains(&name), "{name} should be missing");
    }
    assert!(present.len() >= 25, "{} folders", present.len());
    assert!(body.contains("<t:DistinguishedFolderId>calendar</t:DistinguishedFolderId>"));
    sim.shutdown().await;
}

#[tokio::test]
async fn the_information_store_holds_the_visible_tree_and_the_root_the_system_folders() {
    let sim = start().await;
    sim.control()
        .create_folder(ALICE, "Inbox/Customers")
        .unwrap();
    let find = |root: DistinguishedFolder| FindFolder {
        traversal: Traversal::Deep,
        shape: all_properties(),
        page: None,
        restriction: None,
        parents: vec![root.into()],
    };
    let store = alice(&sim, &find(DistinguishedFolder::MsgFolderRoot)).await;
    let (_, body) = call(&sim, AS_ALICE, None, &find(DistinguishedFolder::Root)).await;
    let whole = ews::read_response::<FindFolder>(&body).unwrap();
    let names = |m: &ews::find_folder::FindFolderMessage| -> Vec<String> {
        m.folders
            .iter()
            .map(|f| f.display_name.clone().unwrap())
            .collect()
    };
    let store = names(store.messages[0].as_ref().unwrap());
    let whole = names(whole.messages[0].as_ref().unwrap());
    for visible in ["Inbox", "Customers", "Calendar", "Sync Issues", "Conflicts"] {
        assert!(store.contains(&visible.to_owned()), "{visible}: {store:?}");
    }
    for system in ["Finder", "Recoverable Items", "Deletions", "Views"] {
        assert!(!store.contains(&system.to_owned()), "{system}: {store:?}");
        assert!(whole.contains(&system.to_owned()), "{system}: {whole:?}");
    }
    assert!(whole.contains(&"Top of Information Store".to_owned()));
    // PR_ATTR_HIDDEN, asked for by its decimal tag, comes back in hex with each folder's value.
    let hidden = |name: &str| {
        let at = body.find(&format!(">{name}<")).unwrap();
        let rest = &body[at..];
        let value = rest.find("PropertyTag=\"0x10f4\"").unwrap();
        rest[value..]
            .split("<t:Value>")
            .nth(1)
            .unwrap()
            .starts_with("true")
    };
    assert!(hidden("Recipient Cache") && hidden("Conversation Action Settings"));
    assert!(!hidden("Calendar") && !hidden("Customers"));
    sim.shutdown().await;
}

#[tokio::test]
async fn a_hierarchy_sync_without_a_root_covers_the_whole_mailbox() {
    let sim = start().await;
    let whole = SyncFolderHierarchy {
        shape: FolderShape::for_resolution(),
        root: None,
        sync_state: None,
    };
    let first = alice(&sim, &whole).await;
    let first = first.messages[0].as_ref().unwrap();
    let created: Vec<String> = first
        .changes
        .iter()
        .filter_map(|c| match c {
            FolderChange::Create(f) => f.display_name.clone(),
            _ => None,
        })
        .collect();
    for name in [
        "Top of Information Store",
        "Inbox",
        "Recoverable Items",
        "Finder",
    ] {
        assert!(created.contains(&name.to_owned()), "{name}: {created:?}");
    }
    // The state of "no root" is not one of the explicit root, as Exchange keeps them apart.
    let as_root = SyncFolderHierarchy {
        root: Some(DistinguishedFolder::Root.into()),
        sync_state: first.sync_state.clone(),
        ..whole.clone()
    };
    let answer = alice(&sim, &as_root).await;
    assert_eq!(
        answer.messages[0].as_ref().unwrap_err().code,
        ResponseCode::ErrorInvalidSyncStateData
    );
    let again = SyncFolderHierarchy {
        sync_state: first.sync_state.clone(),
        ..whole
    };
    assert!(
        alice(&sim, &again).await.messages[0]
            .as_ref()
            .unwrap()
            .changes
            .is_empty()
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_folder_of_another_mailbox_is_reached_only_with_full_access() {
    let sim = start().await;
    let c = sim.control();
    let bobs = c
        .deliver(BOB, "Inbox", &msg("For Bob", "2026-11-20T09:00:00Z", &[]))
        .unwrap()
        .item_id;
    let inbox_of = |who: &str| GetFolder {
        shape: FolderShape::for_resolution(),
        folders: vec![distinguished_in(DistinguishedFolder::Inbox, who)],
    };
    let code = |r: &ews::Response<ews::get_folder::GetFolderMessage>| {
        r.messages[0]
            .as_ref()
            .map(|_| ())
            .map_err(|e| e.code.clone())
    };
    let nobody = alice(&sim, &inbox_of("nobody@example.com")).await;
    assert_eq!(code(&nobody), Err(ResponseCode::ErrorNonExistentMailbox));
    let denied = alice(&sim, &inbox_of(BOB)).await;
    assert_eq!(code(&denied), Err(ResponseCode::ErrorFolderNotFound));
    let get_bobs = GetItem {
        shape: ItemShape::default(),
        items: vec![item_ref(&bobs)],
    };
    assert_eq!(
        alice(&sim, &get_bobs).await.messages[0]
            .as_ref()
            .unwrap_err()
            .code,
        ResponseCode::ErrorItemNotFound
    );
    // The caller's own address in t:Mailbox is the caller's own folder.
    let own = alice(&sim, &inbox_of(ALICE)).await;
    let own_id = own.messages[0].as_ref().unwrap().folders[0].id.clone();

    c.grant_full_access(ALICE, BOB).unwrap();
    let granted = alice(&sim, &inbox_of(BOB)).await;
    let bob_inbox = granted.messages[0].as_ref().unwrap().folders[0].id.clone();
    assert_ne!(bob_inbox, own_id);
    assert!(alice(&sim, &get_bobs).await.messages[0].is_ok());
    // Delegates cannot subscribe, as on Exchange.
    let subscribe = Subscribe {
        mode: Mode::Pull {
            watermark: None,
            timeout_minutes: 10,
        },
        folders: vec![distinguished_in(DistinguishedFolder::Inbox, BOB)],
        all_folders: false,
        events: vec![ews::notification::EventKind::Created],
    };
    assert_eq!(
        alice(&sim, &subscribe).await.messages[0]
            .as_ref()
            .unwrap_err()
            .code,
        ResponseCode::ErrorSubscriptionDelegateAccessNotSupported
    );
    // A service account without a mailbox of its own names one, and needs the grant too.
    let (_, body) = call(&sim, AS_SVC, None, &inbox_of(BOB)).await;
    let r = ews::read_response::<GetFolder>(&body).unwrap();
    assert_eq!(code(&r), Err(ResponseCode::ErrorFolderNotFound));
    c.grant_full_access(SVC, BOB).unwrap();
    let (_, body) = call(&sim, AS_SVC, None, &inbox_of(BOB)).await;
    assert!(ews::read_response::<GetFolder>(&body).unwrap().messages[0].is_ok());
    c.revoke_full_access(ALICE, BOB).unwrap();
    assert_eq!(
        code(&alice(&sim, &inbox_of(BOB)).await),
        Err(ResponseCode::ErrorFolderNotFound)
    );
    sim.shutdown().await;
}

async fn find(sim: &foldertrack::sim::SimHandle, op: &FindItem) -> FindItemMessage {
    let r = alice(sim, op).await;
    r.messages.into_iter().next().unwrap().unwrap()
}

fn subjects(m: &FindItemMessage) -> Vec<String> {
    m.items.iter().map(|i| i.subject.clone().unwrap()).collect()
}

fn find_in_inbox(restriction: Option<Restriction>, sort: Vec<FieldOrder>) -> FindItem {
    FindItem {
        traversal: ItemTraversal::Shallow,
        shape: ItemShape {
            properties: vec!["item:Subject".into()],
            ..ItemShape::default()
        },
        view: None,
        grouping: None,
        restriction,
        sort,
        parents: vec![DistinguishedFolder::Inbox.into()],
        query_string: None,
    }
}

fn equal(uri: &str, value: &str) -> Restriction {
    Restriction::Compare {
        op: Comparison::IsEqualTo,
        field: field(uri),
        value: Operand::Constant(value.into()),
    }
}

#[tokio::test]
async fn find_item_filters_sorts_and_pages_like_exchange() {
    let sim = start().await;
    let c = sim.control();
    for (i, (subject, cats)) in [
        ("Quote request 1001", &["Customer"][..]),
        ("Invoice 2002", &[]),
        ("Quote follow-up 1001", &["Customer", "Urgent"]),
        ("Lunch", &[]),
        ("Weekly report", &[]),
    ]
    .into_iter()
    .enumerate()
    {
        c.deliver(
            ALICE,
            "Inbox",
            &msg(subject, &format!("2026-11-2{i}T09:00:00Z"), cats),
        )
        .unwrap();
    }
    // No sort asked: newest first.
    let all = find(&sim, &find_in_inbox(None, vec![])).await;
    assert_eq!(all.paging.total_items_in_view, Some(5));
    assert!(all.paging.includes_last_item_in_range);
    assert_eq!(subjects(&all)[0], "Weekly report");
    let by = |r| async { subjects(&find(&sim, &find_in_inbox(Some(r), vec![])).await) };
    assert_eq!(
        by(equal("item:Subject", "Invoice 2002")).await,
        ["Invoice 2002"]
    );
    // IsEqualTo is exact; Contains follows its ContainmentMode and ContainmentComparison.
    assert!(by(equal("item:Subject", "invoice 2002")).await.is_empty());
    let contains = Restriction::Contains {
        field: field("item:Subject"),
        value: "quote".into(),
        mode: Some("Substring".into()),
        comparison: Some("IgnoreCase".into()),
    };
    assert_eq!(
        by(contains.clone()).await,
        ["Quote follow-up 1001", "Quote request 1001"]
    );
    // A multi-valued property matches when one of its values does.
    assert_eq!(
        by(equal("item:Categories", "Urgent")).await,
        ["Quote follow-up 1001"]
    );
    let not_customer = Restriction::And(vec![
        contains,
        Restriction::Not(Box::new(equal("item:Categories", "Urgent"))),
    ]);
    assert_eq!(by(not_customer).await, ["Quote request 1001"]);
    let either = Restriction::Or(vec![
        equal("item:Subject", "Lunch"),
        Restriction::Compare {
            op: Comparison::IsLessThan,
            field: field("item:DateTimeReceived"),
            value: Operand::Constant("2026-11-21T00:00:00Z".into()),
        },
    ]);
    assert_eq!(by(either).await, ["Lunch", "Quote request 1001"]);
    let ascending = vec![FieldOrder {
        field: field("item:Subject"),
        descending: false,
    }];
    let sorted = find(&sim, &find_in_inbox(None, ascending)).await;
    assert_eq!(
        subjects(&sorted),
        [
            "Invoice 2002",
            "Lunch",
            "Quote follow-up 1001",
            "Quote request 1001",
            "Weekly report"
        ]
    );
    // Paging by offset until IncludesLastItemInRange, then by fraction.
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let mut op = find_in_inbox(None, vec![]);
        op.view = Some(ItemView::Indexed {
            max_entries: Some(2),
            offset,
            from_end: false,
        });
        let page = find(&sim, &op).await;
        assert_eq!(page.paging.total_items_in_view, Some(5));
        seen.extend(subjects(&page));
        offset = page.paging.indexed_paging_offset.unwrap();
        if page.paging.includes_last_item_in_range {
            break;
        }
    }
    assert_eq!(seen, subjects(&all));
    let mut op = find_in_inbox(None, vec![]);
    op.view = Some(ItemView::Fractional {
        max_entries: Some(10),
        numerator: 3,
        denominator: 5,
    });
    let tail = find(&sim, &op).await;
    assert_eq!(subjects(&tail), subjects(&all)[3..]);
    assert_eq!(
        (
            tail.paging.numerator_offset,
            tail.paging.absolute_denominator
        ),
        (Some(5), Some(5))
    );
    // What the simulator cannot evaluate is refused by name, never answered wrongly.
    let body = find_in_inbox(Some(equal("item:Body", "x")), vec![]);
    let refused = alice(&sim, &body).await;
    let e = refused.messages[0].as_ref().unwrap_err();
    assert_eq!(e.code, ResponseCode::ErrorUnsupportedPathForQuery);
    assert!(e.text.as_deref().unwrap_or_default().contains("item:Body"));
    let mut calendar_view = find_in_inbox(None, vec![]);
    calendar_view.view = Some(ItemView::Other("CalendarView".into()));
    let refused = alice(&sim, &calendar_view).await;
    assert_eq!(
        refused.messages[0].as_ref().unwrap_err().code,
        ResponseCode::ErrorInvalidOperation
    );
    sim.shutdown().await;
}

fn first_item(r: &ews::Response<ews::get_item::ItemsMessage>) -> String {
    r.messages[0].as_ref().unwrap().items[0]
        .item_id
        .clone()
        .unwrap()
        .id
        .0
}

#[tokio::test]
async fn delete_copy_and_field_updates_change_the_mailbox_as_exchange_does() {
    let sim = start().await;
    let c = sim.control();
    let deliver = |s: &str| {
        c.deliver(ALICE, "Inbox", &msg(s, "2026-11-20T09:00:00Z", &[]))
            .unwrap()
            .item_id
    };
    let (trash, hard, copied, updated) = (
        deliver("trash"),
        deliver("hard"),
        deliver("copy"),
        deliver("update"),
    );
    let delete = |id: &str, delete_type| DeleteItem {
        delete_type,
        items: vec![item_ref(id)],
    };
    assert!(
        alice(&sim, &delete(&trash, DeleteType::MoveToDeletedItems))
            .await
            .messages[0]
            .is_ok()
    );
    let in_trash = c.messages(ALICE, "Deleted Items").unwrap();
    assert_eq!(in_trash.len(), 1);
    assert_ne!(in_trash[0].item_id, trash, "a move gives a new id");
    // Deleted from Deleted Items: on to Recoverable Items, out of the client's sight.
    let again = delete(&in_trash[0].item_id, DeleteType::MoveToDeletedItems);
    assert!(alice(&sim, &again).await.messages[0].is_ok());
    assert!(c.messages(ALICE, "Deleted Items").unwrap().is_empty());
    let dumpster = c.messages(ALICE, "/Recoverable Items/Deletions").unwrap();
    assert_eq!(dumpster[0].subject, "trash");
    assert!(
        alice(&sim, &delete(&hard, DeleteType::HardDelete))
            .await
            .messages[0]
            .is_ok()
    );
    let gone = GetItem {
        shape: ItemShape::default(),
        items: vec![item_ref(&hard)],
    };
    assert_eq!(
        alice(&sim, &gone).await.messages[0]
            .as_ref()
            .unwrap_err()
            .code,
        ResponseCode::ErrorItemNotFound
    );
    let again = alice(&sim, &delete(&hard, DeleteType::HardDelete)).await;
    assert_eq!(
        again.messages[0].as_ref().unwrap_err().code,
        ResponseCode::ErrorItemNotFound
    );

    let target = c.create_folder(ALICE, "Inbox/Copies").unwrap();
    let copy = CopyItem {
        to_folder: FolderId(target).into(),
        items: vec![item_ref(&copied)],
    };
    let copy_id = first_item(&alice(&sim, &copy).await);
    assert_ne!(copy_id, copied);
    assert_eq!(c.message(ALICE, &copy_id).unwrap().subject, "copy");
    assert_eq!(c.message(ALICE, &copied).unwrap().folder, "Inbox");

    let inbox_sync = SyncFolderItems::page(DistinguishedFolder::Inbox.into(), None, 512);
    let state = alice(&sim, &inbox_sync).await.messages[0]
        .as_ref()
        .unwrap()
        .sync_state
        .clone();
    let update = |updates| UpdateItem {
        conflict_resolution: ConflictResolution::AutoResolve,
        changes: vec![ItemChange {
            item: item_ref(&updated),
            updates,
        }],
    };
    // Only the read flag: a ReadFlagChange for syncing clients.
    assert!(
        alice(&sim, &update(vec![Update::SetIsRead(true)]))
            .await
            .messages[0]
            .is_ok()
    );
    let after = SyncFolderItems::page(DistinguishedFolder::Inbox.into(), state, 512);
    let synced = alice(&sim, &after).await;
    let changes = &synced.messages[0].as_ref().unwrap().changes;
    assert!(
        matches!(
            changes.as_slice(),
            [Change::ReadFlagChange { is_read: true, .. }]
        ),
        "{changes:?}"
    );
    let ok = alice(
        &sim,
        &update(vec![
            Update::SetSubject("update (read)".into()),
            Update::SetImportance("High".into()),
        ]),
    )
    .await;
    assert!(ok.messages[0].is_ok());
    let view = c.message(ALICE, &updated).unwrap();
    assert_eq!(
        (view.subject.as_str(), view.is_read),
        ("update (read)", true)
    );
    // A property the simulator does not store is refused by name, and nothing changes.
    let refused = alice(
        &sim,
        &update(vec![
            Update::SetSubject("not applied".into()),
            Update::Other {
                action: "SetItemField".into(),
                field: "item:ReminderIsSet".into(),
            },
        ]),
    )
    .await;
    let e = refused.messages[0].as_ref().unwrap_err();
    assert_eq!(e.code, ResponseCode::ErrorInvalidPropertySet);
    assert!(
        e.text
            .as_deref()
            .unwrap_or_default()
            .contains("item:ReminderIsSet")
    );
    assert_eq!(c.message(ALICE, &updated).unwrap().subject, "update (read)");
    sim.shutdown().await;
}

#[tokio::test]
async fn sending_delivers_to_the_simulators_mailboxes_and_keeps_a_copy_if_asked() {
    let sim = start().await;
    let c = sim.control();
    c.grant_impersonation(SVC, BOB).unwrap();
    let watch = Subscribe {
        mode: Mode::Pull {
            watermark: None,
            timeout_minutes: 10,
        },
        folders: vec![DistinguishedFolder::Inbox.into()],
        all_folders: false,
        events: vec![ews::notification::EventKind::NewMail],
    };
    let (_, body) = call(&sim, AS_SVC, Some(BOB), &watch).await;
    let subscribed = ews::read_response::<Subscribe>(&body).unwrap();
    let subscribed = subscribed.messages[0].as_ref().unwrap();
    let send = |disposition, subject: &str| CreateItem {
        disposition,
        folder: None,
        items: vec![Item {
            kind: "Message".into(),
            subject: Some(subject.into()),
            to: vec![
                EmailAddress::smtp(BOB, Some("Bob")),
                EmailAddress::smtp("someone@elsewhere.example", None),
            ],
            ..Item::default()
        }],
    };
    let sent = alice(
        &sim,
        &send(MessageDisposition::SendAndSaveCopy, "Hello Bob"),
    )
    .await;
    assert!(
        sent.messages[0].as_ref().unwrap().items.is_empty(),
        "a send answers with an empty m:Items"
    );
    let bobs = c.messages(BOB, "Inbox").unwrap();
    assert_eq!(bobs.len(), 1);
    assert_eq!(
        (
            bobs[0].subject.as_str(),
            bobs[0].is_read,
            bobs[0].from.address.as_str()
        ),
        ("Hello Bob", false, ALICE)
    );
    let copy = c.messages(ALICE, "Sent Items").unwrap();
    assert_eq!(
        (copy[0].subject.as_str(), copy[0].is_read),
        ("Hello Bob", true)
    );
    let events = GetEvents {
        subscription_id: subscribed.subscription_id.clone().unwrap(),
        watermark: subscribed.watermark.clone().unwrap(),
    };
    let (_, body) = call(&sim, AS_SVC, Some(BOB), &events).await;
    let got = ews::read_response::<GetEvents>(&body).unwrap();
    let n = got.messages[0]
        .as_ref()
        .unwrap()
        .notification
        .clone()
        .unwrap();
    assert!(
        n.events
            .iter()
            .any(|e| e.kind == ews::notification::EventKind::NewMail),
        "{body}"
    );
    alice(&sim, &send(MessageDisposition::SendOnly, "No copy")).await;
    assert_eq!(c.messages(BOB, "Inbox").unwrap().len(), 2);
    assert_eq!(c.messages(ALICE, "Sent Items").unwrap().len(), 1);
    // SaveOnly without a folder: a draft, sent to nobody.
    let draft = alice(&sim, &send(MessageDisposition::SaveOnly, "Draft")).await;
    assert_eq!(draft.messages[0].as_ref().unwrap().items.len(), 1);
    assert_eq!(c.messages(ALICE, "Drafts").unwrap()[0].subject, "Draft");
    assert_eq!(c.messages(BOB, "Inbox").unwrap().len(), 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn create_folder_makes_folders_of_each_kind_and_refuses_a_duplicate_name() {
    let sim = start().await;
    let c = sim.control();
    let new = |kind: &str, name: &str| Folder {
        kind: kind.into(),
        display_name: Some(name.into()),
        ..Folder::default()
    };
    let op = CreateFolder {
        parent: DistinguishedFolder::Inbox.into(),
        folders: vec![
            new("Folder", "Customers"),
            new("ContactsFolder", "Buyers"),
            new("Folder", "customers"),
        ],
    };
    let answer = alice(&sim, &op).await;
    assert!(answer.messages[0].is_ok() && answer.messages[1].is_ok());
    assert_eq!(
        answer.messages[2].as_ref().unwrap_err().code,
        ResponseCode::ErrorFolderExists
    );
    let id = answer.messages[0].as_ref().unwrap().folders[0]
        .id
        .clone()
        .unwrap();
    assert_eq!(c.folder_id(ALICE, "Inbox/Customers").unwrap(), id.id.0);
    let get = GetFolder {
        shape: FolderShape {
            base: BaseShape::AllProperties,
            ..FolderShape::default()
        },
        folders: vec![FolderId(c.folder_id(ALICE, "Inbox/Buyers").unwrap()).into()],
    };
    let buyers = alice(&sim, &get).await;
    let f = &buyers.messages[0].as_ref().unwrap().folders[0];
    assert_eq!(
        (f.kind.as_str(), f.folder_class.as_deref()),
        ("ContactsFolder", Some("IPF.Contact"))
    );
    let orphan = CreateFolder {
        parent: FolderId(ews::FolderId("AQMkAAIlAAAAAQAAAIX3".into()).0).into(),
        folders: vec![new("Folder", "x")],
    };
    assert_eq!(
        alice(&sim, &orphan).await.messages[0]
            .as_ref()
            .unwrap_err()
            .code,
        ResponseCode::ErrorParentFolderNotFound
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn names_time_zones_and_id_formats_are_answered_like_exchange() {
    let sim = start().await;
    let c = sim.control();
    c.create_mailbox("alicia@example.com").unwrap();
    let resolve = |entry: &str| ResolveNames {
        entry: entry.into(),
        return_full_contact_data: false,
        search_scope: None,
        parent_folders: Vec::new(),
    };
    let one = alice(&sim, &resolve("bob")).await;
    let found = &one.messages[0].as_ref().unwrap().resolutions;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].address.as_deref(), Some(BOB));
    let several = alice(&sim, &resolve("smtp:ALI")).await;
    let warning = several.messages[0].as_ref().unwrap_err();
    assert_eq!(
        (warning.class, &warning.code),
        (
            ResponseClass::Warning,
            &ResponseCode::ErrorNameResolutionMultipleResults
        )
    );
    let none = alice(&sim, &resolve("zed")).await;
    assert_eq!(
        none.messages[0].as_ref().unwrap_err().code,
        ResponseCode::ErrorNameResolutionNoResults
    );

    let zones = alice(&sim, &GetServerTimeZones::default()).await;
    let ids: Vec<String> = zones.messages[0]
        .as_ref()
        .unwrap()
        .zones
        .iter()
        .map(|z| z.id.clone())
        .collect();
    assert!(ids.contains(&"UTC".to_owned()) && ids.contains(&"W. Europe Standard Time".to_owned()));
    let full = GetServerTimeZones {
        ids: vec!["W. Europe Standard Time".into()],
        return_full_data: true,
    };
    let (_, body) = call(&sim, AS_ALICE, None, &full).await;
    assert!(
        body.contains(r#"Bias="-PT1H""#) && body.contains("<t:Month>10</t:Month>"),
        "{body}"
    );

    let id = c
        .deliver(ALICE, "Inbox", &msg("id", "2026-11-20T09:00:00Z", &[]))
        .unwrap()
        .item_id;
    let convert = |format: &str, id: &str, to: &str| ConvertId {
        destination_format: to.into(),
        ids: vec![AlternateId {
            format: format.into(),
            id: id.into(),
            mailbox: ALICE.into(),
            is_archive: None,
        }],
    };
    let entry = alice(&sim, &convert("EwsId", &id, "EntryId")).await;
    let entry = entry.messages[0].as_ref().unwrap().id.clone().unwrap();
    assert_eq!(entry.format, "EntryId");
    assert_ne!(entry.id, id);
    let back = alice(&sim, &convert("EntryId", &entry.id, "EwsId")).await;
    assert_eq!(
        back.messages[0].as_ref().unwrap().id.as_ref().unwrap().id,
        id
    );
    // The probe clients send to learn the version: an error message, with the version header.
    let (status, body) = call(&sim, AS_ALICE, None, &convert("EwsId", "DUMMY", "EntryId")).await;
    assert_eq!(status, 200);
    assert!(body.contains("ServerVersionInfo"), "{body}");
    assert_eq!(
        ews::read_response::<ConvertId>(&body).unwrap().messages[0]
            .as_ref()
            .unwrap_err()
            .code,
        ResponseCode::ErrorInvalidIdMalformed
    );
    sim.shutdown().await;
}

/// The Python with exchangelib: `FOLDERTRACK_EXCHANGELIB_PYTHON`, or the virtual environment
/// `.ci/run` makes in target/exl-venv.
fn exchangelib_python() -> Option<std::path::PathBuf> {
    let python = std::env::var_os("FOLDERTRACK_EXCHANGELIB_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/exl-venv/bin/python")
        });
    let imports = std::process::Command::new(&python)
        .args(["-c", "import exchangelib"])
        .output()
        .is_ok_and(|o| o.status.success());
    if imports {
        Some(python)
    } else {
        required::missing(
            &format!("exchangelib for {}", python.display()),
            "run .ci/run, or: python3 -m venv target/exl-venv && \
             target/exl-venv/bin/pip install -r tests/exchangelib/requirements.txt",
        )
    }
}

/// A child process killed when the test ends, however it ends.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `foldertrack sim` on a free loopback port, with its EWS and control URLs, and its output,
/// kept open: the simulator stops when it cannot print.
fn sim_process() -> (Child, impl Sized, String, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_foldertrack"))
        .args(["sim", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let child = Child(child);
    let mut lines = std::io::BufReader::new(stdout).lines();
    let mut url = |label: &str| {
        let line = lines.next().unwrap().unwrap();
        line.strip_prefix(label)
            .unwrap_or_else(|| panic!("{line}"))
            .trim()
            .to_owned()
    };
    let ews = url("EWS:");
    url("Graph:");
    url("token:");
    let control = url("control:");
    (child, lines, ews, control)
}

#[test]
fn exchangelib_gets_the_answers_exchange_gives_to_every_call_it_makes() {
    let Some(python) = exchangelib_python() else {
        return;
    };
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/exchangelib/conformance.py");
    let (_sim, _output, ews, control) = sim_process();
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let mut run = Child(
        std::process::Command::new(python)
            .arg(&script)
            .args([&ews, &control])
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap(),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let status = loop {
        if let Some(status) = run.0.try_wait().unwrap() {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let report = std::fs::read_to_string(&out).unwrap();
    let errors = std::fs::read_to_string(&err).unwrap();
    let status = status.unwrap_or_else(|| panic!("still running after 120 s:\n{report}{errors}"));
    assert!(status.success(), "{report}\n{errors}");
    // Every check of the script ran and passed; none was skipped by a crash half-way.
    let calls = std::fs::read_to_string(&script)
        .unwrap()
        .matches("\n@check(")
        .count();
    assert!(
        report.contains(&format!("\n{calls} passed, 0 failed")),
        "{report}\n{errors}"
    );
    required::checked(calls, "exchangelib calls");
}
