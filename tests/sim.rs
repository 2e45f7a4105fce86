//! The simulator behaves like Exchange: every behaviour through real HTTP on 127.0.0.1, read
//! back with foldertrack's own parsers, and driven through the Rust control API.

mod sim_support;

use foldertrack::ews::create_item::CreateItem;
use foldertrack::ews::folder::FolderShape;
use foldertrack::ews::get_folder::GetFolder;
use foldertrack::ews::get_item::GetItem;
use foldertrack::ews::item::{ExtendedProperty, Item, ItemShape, tracking_property};
use foldertrack::ews::move_item::MoveItem;
use foldertrack::ews::sync_folder_items::{Change, SyncFolderItems};
use foldertrack::ews::update_item::{ConflictResolution, ItemChange, Update, UpdateItem};
use foldertrack::ews::{
    self, ChangeKey, DistinguishedFolder, FolderId, FolderSelector, ItemId, ItemRef, ResponseCode,
    SyncState,
};
use foldertrack::sim::{
    FaultKind, FaultRule, NewMessage, NotificationNs, Prefixes, ResponseStyle, SimOptions,
};
use sim_support::*;
use std::time::Duration;

fn msg(subject: &str) -> NewMessage {
    NewMessage {
        subject: subject.into(),
        from: "Buyer <buyer@contoso.com>".into(),
        to: vec![ALICE.into()],
        body: Some("Hello & welcome".into()),
        ..NewMessage::default()
    }
}

fn inbox_folder() -> GetFolder {
    GetFolder {
        shape: FolderShape::for_resolution(),
        folders: vec![DistinguishedFolder::Inbox.into()],
    }
}

fn item_ref(id: &str) -> ItemRef {
    ItemRef {
        id: ItemId(id.into()),
        change_key: None,
    }
}

fn folder(id: &str) -> FolderSelector {
    FolderId(id.into()).into()
}

fn fault_of(body: &str) -> Box<ews::Fault> {
    match ews::read_response::<GetFolder>(body) {
        Err(ews::Error::Fault(f)) => f,
        other => panic!("expected a SOAP fault, got {other:?}: {body}"),
    }
}

#[tokio::test]
async fn basic_and_bearer_authenticate_and_wrong_credentials_get_401() {
    let sim = start().await;
    let c = sim.control();
    assert_eq!(call(&sim, AS_ALICE, None, &inbox_folder()).await.0, 200);
    assert_eq!(
        call(&sim, Auth::Basic(ALICE, "wrong"), None, &inbox_folder())
            .await
            .0,
        401
    );
    assert_eq!(
        call(&sim, Auth::Bearer("tok-1"), None, &inbox_folder())
            .await
            .0,
        401
    );
    c.add_token("tok-1", ALICE).unwrap();
    assert_eq!(
        call(&sim, Auth::Bearer("tok-1"), None, &inbox_folder())
            .await
            .0,
        200
    );
    c.revoke_token("tok-1").unwrap();
    assert_eq!(
        call(&sim, Auth::Bearer("tok-1"), None, &inbox_folder())
            .await
            .0,
        401
    );
    c.set_password(ALICE, "new").unwrap();
    assert_eq!(call(&sim, AS_ALICE, None, &inbox_folder()).await.0, 401);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_service_account_impersonates_granted_mailboxes_only_and_anchor_is_logged() {
    let sim = start().await;
    let (status, body) = call(&sim, AS_SVC, Some(ALICE), &inbox_folder()).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(&sim, AS_SVC, Some(BOB), &inbox_folder()).await;
    assert_eq!(status, 500);
    assert_eq!(
        fault_of(&body).code,
        Some(ResponseCode::ErrorImpersonateUserDenied)
    );
    let (_, body) = call(&sim, AS_SVC, Some("nobody@example.com"), &inbox_folder()).await;
    let f = fault_of(&body);
    assert_eq!(f.code, Some(ResponseCode::ErrorNonExistentMailbox));
    assert_eq!(
        f.message_xml.value("SmtpAddress"),
        Some("nobody@example.com")
    );
    // Without impersonation a service account has no mailbox of its own: a distinguished
    // folder must name one.
    let (status, body) = call(&sim, AS_SVC, None, &inbox_folder()).await;
    assert_eq!(status, 200);
    let answer = ews::read_response::<GetFolder>(&body).unwrap();
    assert_eq!(
        answer.messages[0].as_ref().unwrap_err().code,
        ResponseCode::ErrorMissingEmailAddress
    );
    sim.control().grant_impersonation(SVC, BOB).unwrap();
    assert_eq!(call(&sim, AS_SVC, Some(BOB), &inbox_folder()).await.0, 200);
    sim.control().revoke_impersonation(SVC, BOB).unwrap();
    assert_eq!(call(&sim, AS_SVC, Some(BOB), &inbox_folder()).await.0, 500);

    let log = sim.control().calls();
    let first = &log[0];
    assert_eq!(first.operation, "GetFolder");
    assert_eq!(first.account.as_deref(), Some(SVC));
    assert_eq!(first.impersonated.as_deref(), Some(ALICE));
    assert_eq!(first.anchor_mailbox.as_deref(), Some(ALICE));
    assert_eq!(first.result, "NoError");
    assert!(first.bytes_in > 0 && first.bytes_out > 0);
    assert_eq!(log[1].result, "ErrorImpersonateUserDenied");
    sim.shutdown().await;
}

#[tokio::test]
async fn folders_keep_their_id_across_rename_and_move_while_change_keys_change() {
    let sim = start().await;
    let c = sim.control();
    let id = c.create_folder(ALICE, "Inbox/Customers/Contoso").unwrap();
    let get = GetFolder {
        shape: FolderShape::for_resolution(),
        folders: vec![folder(&id)],
    };
    let read = |r: ews::Response<ews::get_folder::GetFolderMessage>| {
        r.messages[0].as_ref().unwrap().folders[0].clone()
    };
    let before = read(alice(&sim, &get).await);
    assert_eq!(before.display_name.as_deref(), Some("Contoso"));
    assert_eq!(
        c.rename_folder(ALICE, "Inbox/Customers/Contoso", "Contoso Ltd")
            .unwrap(),
        id
    );
    let renamed = read(alice(&sim, &get).await);
    assert_eq!(renamed.display_name.as_deref(), Some("Contoso Ltd"));
    assert_eq!(renamed.id.as_ref().unwrap().id.as_str(), id);
    assert_ne!(
        renamed.id.as_ref().unwrap().change_key,
        before.id.as_ref().unwrap().change_key
    );
    c.create_folder(ALICE, "Archive").unwrap();
    assert_eq!(
        c.move_folder(ALICE, "Inbox/Customers/Contoso Ltd", "Archive")
            .unwrap(),
        id
    );
    assert_eq!(c.folder_id(ALICE, "Archive/Contoso Ltd").unwrap(), id);
    // Distinguished folders resolve; an unknown id is a per-message error.
    let get = GetFolder {
        shape: FolderShape::for_resolution(),
        folders: vec![
            DistinguishedFolder::SentItems.into(),
            folder("AAAA"),
            folder(&id),
        ],
    };
    let resp = alice(&sim, &get).await;
    assert_eq!(
        resp.messages[0].as_ref().unwrap().folders[0]
            .display_name
            .as_deref(),
        Some("Sent Items")
    );
    assert_eq!(
        resp.messages[1].as_ref().unwrap_err().code,
        ResponseCode::ErrorInvalidIdMalformed
    );
    assert!(resp.messages[2].is_ok());
    c.delete_folder(ALICE, "Archive").unwrap();
    let resp = alice(&sim, &get).await;
    assert_eq!(
        resp.messages[2].as_ref().unwrap_err().code,
        ResponseCode::ErrorFolderNotFound
    );
    assert!(
        c.delete_folder(ALICE, "Inbox").is_err(),
        "distinguished folders stay"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn find_folder_walks_shallow_and_deep_with_paging() {
    let sim = start().await;
    let c = sim.control();
    for p in ["Inbox/A", "Inbox/B/B1/B2", "Inbox/C"] {
        c.create_folder(ALICE, p).unwrap();
    }
    let find = |traversal: &str, max: usize, offset: usize| {
        envelope(
            &format!(
                r#"<m:FindFolder Traversal="{traversal}"><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape><m:IndexedPageFolderView MaxEntriesReturned="{max}" Offset="{offset}" BasePoint="Beginning"/><m:ParentFolderIds><t:DistinguishedFolderId Id="inbox"/></m:ParentFolderIds></m:FindFolder>"#
            ),
            None,
        )
    };
    let (_, body) = post(&sim, AS_ALICE, None, find("Shallow", 100, 0)).await;
    assert_eq!(all_texts(&body, "DisplayName"), ["A", "B", "C"]);
    let (_, body) = post(&sim, AS_ALICE, None, find("Deep", 100, 0)).await;
    assert_eq!(all_texts(&body, "DisplayName"), ["A", "B", "B1", "B2", "C"]);
    let (_, body) = post(&sim, AS_ALICE, None, find("Deep", 2, 2)).await;
    assert_eq!(all_texts(&body, "DisplayName"), ["B1", "B2"]);
    assert!(body.contains("IncludesLastItemInRange=\"false\""), "{body}");
    assert!(body.contains("TotalItemsInView=\"5\""), "{body}");
    sim.shutdown().await;
}

async fn sync_page(
    sim: &foldertrack::sim::SimHandle,
    folder: FolderSelector,
    state: Option<SyncState>,
    max: u16,
) -> Result<ews::sync_folder_items::SyncFolderItemsMessage, ews::ResponseError> {
    let op = SyncFolderItems::page(folder, state, max);
    alice(sim, &op).await.messages.into_iter().next().unwrap()
}

fn created_ids(changes: &[Change]) -> Vec<String> {
    changes
        .iter()
        .filter_map(|c| match c {
            Change::Create(i) => Some(i.item_id.as_ref().unwrap().id.0.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn sync_folder_items_pages_coalesces_and_shows_a_move_as_delete_and_create() {
    let sim = start().await;
    let c = sim.control();
    let target = c.create_folder(ALICE, "Inbox/Customers").unwrap();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            c.deliver(ALICE, "Inbox", &msg(&format!("m{i}")))
                .unwrap()
                .item_id,
        );
    }
    let inbox: FolderSelector = DistinguishedFolder::Inbox.into();
    // First sync: every existing item as a Create, in pages.
    let p1 = sync_page(&sim, inbox.clone(), None, 2).await.unwrap();
    assert!(!p1.includes_last_item_in_range);
    assert_eq!(created_ids(&p1.changes), ids[..2]);
    let p2 = sync_page(&sim, inbox.clone(), p1.sync_state.clone(), 2)
        .await
        .unwrap();
    let p3 = sync_page(&sim, inbox.clone(), p2.sync_state.clone(), 2)
        .await
        .unwrap();
    assert!(p3.includes_last_item_in_range);
    assert_eq!(created_ids(&p3.changes), ids[4..]);
    let inbox_state = p3.sync_state.clone();
    // Unchanged: nothing, same position.
    let idle = sync_page(&sim, inbox.clone(), inbox_state.clone(), 512)
        .await
        .unwrap();
    assert!(idle.changes.is_empty() && idle.includes_last_item_in_range);
    let t0 = sync_page(&sim, folder(&target), None, 512).await.unwrap();

    // A person drags m0 into Customers: Delete in Inbox, Create (new id) in Customers.
    let moved = c.move_message(ALICE, &ids[0], "Inbox/Customers").unwrap();
    assert_ne!(moved, ids[0]);
    // Created then categorised: one Create. Created then deleted: nothing. Read: ReadFlagChange.
    let fresh = c.deliver(ALICE, "Inbox", &msg("fresh")).unwrap().item_id;
    c.set_categories(ALICE, &fresh, &["Red".into()]).unwrap();
    let gone = c.deliver(ALICE, "Inbox", &msg("gone")).unwrap().item_id;
    c.delete_message(ALICE, &gone).unwrap();
    c.mark_read(ALICE, &ids[1], true).unwrap();
    c.set_categories(ALICE, &ids[2], &["Blue".into()]).unwrap();
    let page = sync_page(&sim, inbox.clone(), inbox_state, 512)
        .await
        .unwrap();
    let kinds: Vec<String> = page
        .changes
        .iter()
        .map(|c| match c {
            Change::Create(i) => format!("create {}", i.item_id.as_ref().unwrap().id),
            Change::Update(i) => format!("update {}", i.item_id.as_ref().unwrap().id),
            Change::Delete(r) => format!("delete {}", r.id),
            Change::ReadFlagChange { item_id, is_read } => format!("read {} {is_read}", item_id.id),
            Change::Unreadable { reason, .. } => panic!("{reason}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            format!("delete {}", ids[0]),
            format!("create {fresh}"),
            format!("read {} true", ids[1]),
            format!("update {}", ids[2]),
        ]
    );
    let t1 = sync_page(&sim, folder(&target), t0.sync_state, 512)
        .await
        .unwrap();
    assert_eq!(created_ids(&t1.changes), [moved]);

    // A bad, foreign or truncated sync state: ErrorInvalidSyncStateData.
    for bad in [
        SyncState("H4sIA=".into()),
        t1.sync_state.clone().unwrap(),
        SyncState(page.sync_state.clone().unwrap().0[..10].into()),
    ] {
        let e = sync_page(&sim, inbox.clone(), Some(bad), 512)
            .await
            .unwrap_err();
        assert_eq!(e.code, ResponseCode::ErrorInvalidSyncStateData);
    }
    let e = sync_page(&sim, folder("AQMkAAA="), None, 512)
        .await
        .unwrap_err();
    assert_eq!(e.code, ResponseCode::ErrorInvalidIdMalformed);
    sim.shutdown().await;
}

#[tokio::test]
async fn get_item_answers_a_batch_in_request_order_with_per_item_errors() {
    let sim = start().await;
    let c = sim.control();
    c.create_folder(ALICE, "Inbox/Deals").unwrap();
    let mut m = msg("Deal & Quote – 見積");
    m.cc = vec!["Carol <carol@example.com>".into()];
    m.internet_message_id = Some("<deal-1@contoso.com>".into());
    let a = c.deliver(ALICE, "Inbox", &m).unwrap();
    let b = c.deliver(ALICE, "Inbox", &msg("b")).unwrap().item_id;
    let moved_away = c.move_message(ALICE, &b, "Inbox/Deals").unwrap();
    let op = GetItem {
        shape: ItemShape::for_tracking(true),
        items: vec![
            item_ref(&a.item_id),
            item_ref(&b),
            item_ref("garbage"),
            item_ref(&moved_away),
        ],
    };
    let resp = alice(&sim, &op).await;
    let first = &resp.messages[0].as_ref().unwrap().items[0];
    assert_eq!(first.subject.as_deref(), Some("Deal & Quote – 見積"));
    assert_eq!(
        first.internet_message_id.as_deref(),
        Some("<deal-1@contoso.com>")
    );
    assert_eq!(
        first.from.as_ref().unwrap().address.as_deref(),
        Some("buyer@contoso.com")
    );
    assert_eq!(first.to[0].address.as_deref(), Some(ALICE));
    assert_eq!(first.cc[0].name.as_deref(), Some("Carol"));
    assert_eq!(first.body.as_ref().unwrap().text, "Hello & welcome");
    assert!(first.conversation_id.is_some() && first.sent_at().is_some());
    assert_eq!(
        resp.messages[1].as_ref().unwrap_err().code,
        ResponseCode::ErrorItemNotFound
    );
    assert_eq!(
        resp.messages[2].as_ref().unwrap_err().code,
        ResponseCode::ErrorInvalidIdMalformed
    );
    let last = &resp.messages[3].as_ref().unwrap().items[0];
    assert_eq!(last.item_id.as_ref().unwrap().id.as_str(), moved_away);
    // The search key survives the move (identity fallback), the item id does not.
    let views = c.find_by_internet_message_id("<deal-1@contoso.com>");
    assert_eq!(views.len(), 1);
    assert_eq!(views[0].folder, "Inbox");
    sim.shutdown().await;
}

fn set_categories(
    id: &str,
    ck: Option<&str>,
    mode: ConflictResolution,
    cats: &[&str],
) -> UpdateItem {
    UpdateItem {
        conflict_resolution: mode,
        changes: vec![ItemChange {
            item: ItemRef {
                id: ItemId(id.into()),
                change_key: ck.map(|c| ChangeKey(c.into())),
            },
            updates: vec![
                Update::SetCategories(cats.iter().map(|c| (*c).to_owned()).collect()),
                Update::SetExtended(ExtendedProperty {
                    field: tracking_property(),
                    value: Some("req-1".into()),
                    values: vec![],
                }),
            ],
        }],
    }
}

#[tokio::test]
async fn update_item_writes_categories_and_follows_the_change_key_rules() {
    let sim = start().await;
    let c = sim.control();
    let id = c.deliver(ALICE, "Inbox", &msg("m")).unwrap().item_id;
    let ck0 = c.message(ALICE, &id).unwrap().change_key;
    let resp = alice(
        &sim,
        &set_categories(
            &id,
            Some(&ck0),
            ConflictResolution::AutoResolve,
            &["Tracked"],
        ),
    )
    .await;
    let ck1 = resp.messages[0].as_ref().unwrap().items[0]
        .item_id
        .clone()
        .unwrap()
        .change_key
        .unwrap();
    assert_ne!(ck1.0, ck0);
    let view = c.message(ALICE, &id).unwrap();
    assert_eq!(view.categories, ["Tracked"]);
    assert_eq!(
        view.extended,
        [("foldertrack.tracking".to_owned(), "req-1".to_owned())]
    );
    assert_eq!(view.change_key, ck1.0);

    // The read flag changed since ck1: NeverOverwrite refuses, AutoResolve resolves.
    c.mark_read(ALICE, &id, true).unwrap();
    let never = alice(
        &sim,
        &set_categories(
            &id,
            Some(&ck1.0),
            ConflictResolution::NeverOverwrite,
            &["X"],
        ),
    )
    .await;
    assert_eq!(
        never.messages[0].as_ref().unwrap_err().code,
        ResponseCode::ErrorIrresolvableConflict
    );
    let auto = alice(
        &sim,
        &set_categories(&id, Some(&ck1.0), ConflictResolution::AutoResolve, &["Y"]),
    )
    .await;
    assert!(auto.messages[0].is_ok());
    // The person changed categories since: NeverOverwrite refuses; AutoResolve resolves by
    // overwriting ([MS-OXWSCORE] 3.1.4.9.4.1), as AlwaysOverwrite does.
    let stale = c.message(ALICE, &id).unwrap().change_key;
    c.set_categories(ALICE, &id, &["Person".into()]).unwrap();
    let never = alice(
        &sim,
        &set_categories(
            &id,
            Some(&stale),
            ConflictResolution::NeverOverwrite,
            &["Z"],
        ),
    )
    .await;
    assert_eq!(
        never.messages[0].as_ref().unwrap_err().code,
        ResponseCode::ErrorIrresolvableConflict
    );
    assert_eq!(c.message(ALICE, &id).unwrap().categories, ["Person"]);
    let auto = alice(
        &sim,
        &set_categories(&id, Some(&stale), ConflictResolution::AutoResolve, &["Y2"]),
    )
    .await;
    assert!(auto.messages[0].is_ok());
    assert_eq!(c.message(ALICE, &id).unwrap().categories, ["Y2"]);
    let always = alice(
        &sim,
        &set_categories(
            &id,
            Some(&stale),
            ConflictResolution::AlwaysOverwrite,
            &["Z"],
        ),
    )
    .await;
    assert!(always.messages[0].is_ok());
    assert_eq!(c.message(ALICE, &id).unwrap().categories, ["Z"]);
    let bad = alice(
        &sim,
        &set_categories(&id, Some("bogus"), ConflictResolution::AutoResolve, &["Z"]),
    )
    .await;
    assert_eq!(
        bad.messages[0].as_ref().unwrap_err().code,
        ResponseCode::ErrorInvalidChangeKey
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn create_item_and_move_item_work_and_a_moved_item_gets_a_new_id() {
    let sim = start().await;
    let c = sim.control();
    let target = c.create_folder(ALICE, "Inbox/Tracked").unwrap();
    let create = CreateItem::save(
        DistinguishedFolder::Inbox.into(),
        vec![Item {
            kind: "Message".into(),
            subject: Some("planted".into()),
            internet_message_id: Some("<planted@example.com>".into()),
            from: Some(ews::item::EmailAddress::smtp("x@example.com", None)),
            ..Item::default()
        }],
    );
    let created = alice(&sim, &create).await;
    let id = created.messages[0].as_ref().unwrap().items[0]
        .item_id
        .clone()
        .unwrap();
    let mv = MoveItem {
        to_folder: folder(&target),
        items: vec![id.clone(), item_ref("AAMkAGarbage")],
    };
    let moved = alice(&sim, &mv).await;
    let new_id = moved.messages[0].as_ref().unwrap().items[0]
        .item_id
        .clone()
        .unwrap();
    assert_ne!(new_id.id, id.id);
    assert!(moved.messages[1].is_err());
    let views = c.messages(ALICE, "Inbox/Tracked").unwrap();
    assert_eq!(views[0].item_id, new_id.id.0);
    assert_eq!(views[0].internet_message_id, "<planted@example.com>");
    let get = alice(
        &sim,
        &GetItem {
            shape: ItemShape::for_sync(),
            items: vec![id],
        },
    )
    .await;
    assert_eq!(
        get.messages[0].as_ref().unwrap_err().code,
        ResponseCode::ErrorItemNotFound
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn sync_folder_hierarchy_reports_creates_renames_and_deletes() {
    let sim = start().await;
    let c = sim.control();
    let sync = |state: Option<&str>| {
        let s = state
            .map(|s| format!("<m:SyncState>{s}</m:SyncState>"))
            .unwrap_or_default();
        envelope(
            &format!(
                r#"<m:SyncFolderHierarchy><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties><t:FieldURI FieldURI="folder:DisplayName"/></t:AdditionalProperties></m:FolderShape>{s}</m:SyncFolderHierarchy>"#
            ),
            None,
        )
    };
    let (_, body) = post(&sim, AS_ALICE, None, sync(None)).await;
    assert!(
        all_texts(&body, "DisplayName").contains(&"Inbox".to_owned()),
        "{body}"
    );
    let state = first_text(&body, "SyncState").unwrap();
    let id = c.create_folder(ALICE, "Inbox/New").unwrap();
    let (_, body) = post(&sim, AS_ALICE, None, sync(Some(&state))).await;
    assert_eq!(all_texts(&body, "DisplayName"), ["New"]);
    assert!(body.contains(":Create>"), "{body}");
    let state = first_text(&body, "SyncState").unwrap();
    c.rename_folder(ALICE, "Inbox/New", "Renamed").unwrap();
    c.create_folder(ALICE, "Inbox/Other").unwrap();
    c.delete_folder(ALICE, "Inbox/Other").unwrap();
    let (_, body) = post(&sim, AS_ALICE, None, sync(Some(&state))).await;
    assert_eq!(all_texts(&body, "DisplayName"), ["Renamed"]);
    assert!(
        body.contains(":Update>") && !body.contains(":Delete>"),
        "{body}"
    );
    let state = first_text(&body, "SyncState").unwrap();
    c.delete_folder(ALICE, "Inbox/Renamed").unwrap();
    let (_, body) = post(&sim, AS_ALICE, None, sync(Some(&state))).await;
    assert_eq!(all_ids(&body, "FolderId"), [id]);
    let (_, body) = post(&sim, AS_ALICE, None, sync(Some("bad"))).await;
    assert_eq!(
        first_text(&body, "ResponseCode").as_deref(),
        Some("ErrorInvalidSyncStateData")
    );
    sim.shutdown().await;
}

fn subscribe(kind: &str, extra: &str) -> String {
    subscribe_as(kind, extra, None)
}

fn subscribe_as(kind: &str, extra: &str, impersonate: Option<&str>) -> String {
    envelope(
        &format!(
            r#"<m:Subscribe><m:{kind}SubscriptionRequest><t:FolderIds><t:DistinguishedFolderId Id="inbox"/></t:FolderIds><t:EventTypes><t:EventType>CreatedEvent</t:EventType><t:EventType>MovedEvent</t:EventType><t:EventType>NewMailEvent</t:EventType></t:EventTypes>{extra}</m:{kind}SubscriptionRequest></m:Subscribe>"#
        ),
        impersonate,
    )
}

#[tokio::test]
async fn pull_subscriptions_hand_out_events_after_the_watermark_until_unsubscribed() {
    let sim = start().await;
    let c = sim.control();
    let (_, body) = post(
        &sim,
        AS_ALICE,
        None,
        subscribe("Pull", "<t:Timeout>10</t:Timeout>"),
    )
    .await;
    let sub = first_text(&body, "SubscriptionId").unwrap();
    let mark = first_text(&body, "Watermark").unwrap();
    let get = |w: &str| {
        envelope(
            &format!(
                "<m:GetEvents><m:SubscriptionId>{sub}</m:SubscriptionId><m:Watermark>{w}</m:Watermark></m:GetEvents>"
            ),
            None,
        )
    };
    let (_, body) = post(&sim, AS_ALICE, None, get(&mark)).await;
    assert!(body.contains("StatusEvent"), "{body}");
    let id = c.deliver(ALICE, "Inbox", &msg("new")).unwrap().item_id;
    c.create_folder(ALICE, "Inbox/T").unwrap();
    let moved = c.move_message(ALICE, &id, "Inbox/T").unwrap();
    let (_, body) = post(&sim, AS_ALICE, None, get(&mark)).await;
    assert!(body.contains("<m:Notification>"), "{body}");
    assert!(
        body.contains(":CreatedEvent>") && body.contains(":NewMailEvent>"),
        "{body}"
    );
    assert!(body.contains(":MovedEvent>"), "{body}");
    assert_eq!(all_ids(&body, "OldItemId"), [id]);
    let parsed = ews::read_response::<foldertrack::ews::get_events::GetEvents>(&body).unwrap();
    let note = parsed.messages[0]
        .as_ref()
        .unwrap()
        .notification
        .clone()
        .unwrap();
    let kinds: Vec<&str> = note.events.iter().map(|e| e.kind.as_str()).collect();
    assert!(
        kinds.contains(&"CreatedEvent") && kinds.contains(&"MovedEvent"),
        "{kinds:?}"
    );
    assert!(all_ids(&body, "ItemId").contains(&moved));
    let last = all_texts(&body, "Watermark").pop().unwrap();
    let (_, body) = post(&sim, AS_ALICE, None, get(&last)).await;
    assert!(
        body.contains("StatusEvent"),
        "acknowledged events are not repeated: {body}"
    );
    // Another account may not read it.
    c.add_token("bob-token", BOB).unwrap();
    let (_, body) = post(&sim, Auth::Bearer("bob-token"), None, get(&last)).await;
    assert_eq!(
        first_text(&body, "ResponseCode").as_deref(),
        Some("ErrorSubscriptionAccessDenied")
    );
    let unsub = envelope(
        &format!("<m:Unsubscribe><m:SubscriptionId>{sub}</m:SubscriptionId></m:Unsubscribe>"),
        None,
    );
    let (_, body) = post(&sim, AS_ALICE, None, unsub.clone()).await;
    assert_eq!(
        first_text(&body, "ResponseCode").as_deref(),
        Some("NoError")
    );
    let (_, body) = post(&sim, AS_ALICE, None, unsub).await;
    assert_eq!(
        first_text(&body, "ResponseCode").as_deref(),
        Some("ErrorSubscriptionNotFound")
    );
    sim.shutdown().await;
}

/// Sends GetStreamingEvents for `sub` (one EWS minute) as `user`, acting as `impersonate`.
fn get_streaming_events(
    sim: &foldertrack::sim::SimHandle,
    (user, password): (&str, &str),
    sub: &str,
    impersonate: Option<&str>,
) -> impl std::future::Future<Output = reqwest::Result<reqwest::Response>> {
    let req = envelope(
        &format!(
            "<m:GetStreamingEvents><m:SubscriptionIds><t:SubscriptionId>{sub}</t:SubscriptionId></m:SubscriptionIds><m:ConnectionTimeout>1</m:ConnectionTimeout></m:GetStreamingEvents>"
        ),
        impersonate,
    );
    http()
        .post(sim.ews_url())
        .basic_auth(user, Some(password))
        .body(req)
        .send()
}

/// An open stream and its first envelope's text.
async fn open_stream(
    sim: &foldertrack::sim::SimHandle,
    login: (&str, &str),
    sub: &str,
    impersonate: Option<&str>,
) -> (reqwest::Response, String) {
    let mut resp = get_streaming_events(sim, login, sub, impersonate)
        .await
        .unwrap();
    let first = resp.chunk().await.unwrap().unwrap();
    (resp, String::from_utf8_lossy(&first).into_owned())
}

#[tokio::test]
async fn streaming_events_arrive_as_several_envelopes_with_keep_alives_and_close_at_the_timeout() {
    let sim = start().await;
    let c = sim.control();
    let (_, body) = post(&sim, AS_ALICE, None, subscribe("Streaming", "")).await;
    let sub = first_text(&body, "SubscriptionId").unwrap();
    let (mut resp, first) = open_stream(&sim, (ALICE, PW), &sub, None).await;
    assert_eq!(resp.status(), 200);
    assert!(first.contains("ConnectionStatus>OK<"));
    let id = c.deliver(ALICE, "Inbox", &msg("streamed")).unwrap().item_id;
    let mut all = first;
    while let Some(chunk) = resp.chunk().await.unwrap() {
        all.push_str(&String::from_utf8_lossy(&chunk));
    }
    let envelopes = all.matches("</s:Envelope>").count();
    assert!(envelopes >= 3, "{all}");
    assert!(
        all.contains("<m:Notification>") && all_ids(&all, "ItemId").contains(&id),
        "{all}"
    );
    assert!(
        all.matches("ConnectionStatus>OK<").count() >= 2,
        "keep-alives: {all}"
    );
    assert!(all.trim_end().ends_with("</s:Envelope>") && all.contains("ConnectionStatus>Closed<"));
    // The schema's spelling on request.
    c.set_style(ResponseStyle {
        notification_ns: NotificationNs::Types,
        ..ResponseStyle::default()
    });
    let resp = get_streaming_events(&sim, (ALICE, PW), &sub, None);
    let deliver = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        c.deliver(ALICE, "Inbox", &msg("typed")).unwrap();
    };
    let (resp, ()) = tokio::join!(resp, deliver);
    let all = resp.unwrap().text().await.unwrap();
    assert!(all.contains("<t:Notification>"), "{all}");
    sim.shutdown().await;
}

/// Subscriptions whose events were lost are named on the open stream under
/// ErrorMissedNotificationEvents, lapsed ones under ErrorSubscriptionNotFound.
#[tokio::test]
async fn a_stream_says_which_subscriptions_missed_events_and_which_lapsed() {
    let sim = start().await;
    let c = sim.control();
    for (end, code) in [
        (true, "ErrorMissedNotificationEvents"),
        (false, "ErrorSubscriptionNotFound"),
    ] {
        let (_, body) = post(&sim, AS_ALICE, None, subscribe("Streaming", "")).await;
        let sub = first_text(&body, "SubscriptionId").unwrap();
        let (resp, first) = open_stream(&sim, (ALICE, PW), &sub, None).await;
        assert!(first.contains("ConnectionStatus>OK<"), "{first}");
        let ended = match end {
            true => c.miss_events(ALICE),
            false => c.expire_subscriptions(ALICE),
        };
        assert_eq!(ended.unwrap(), 1);
        let all = resp.text().await.unwrap();
        assert!(all.contains(&format!("ResponseCode>{code}<")), "{all}");
        assert_eq!(first_text(&all, "SubscriptionId"), Some(sub), "{all}");
    }
    sim.shutdown().await;
}

/// HangingConnectionLimit: open streaming connections per budget. An impersonated connection
/// is charged to the mailbox it acts as, so a service account holds one per mailbox; a closed
/// connection frees its place.
#[tokio::test]
async fn streaming_connections_are_limited_per_budget_and_impersonation_charges_the_mailbox() {
    let sim = start().await;
    let c = sim.control();
    c.set_hanging_connection_limit(1);
    c.grant_impersonation(SVC, BOB).unwrap();
    let open = async |mailbox: &str| {
        let (_, body) = post(
            &sim,
            AS_SVC,
            None,
            subscribe_as("Streaming", "", Some(mailbox)),
        )
        .await;
        let sub = first_text(&body, "SubscriptionId").unwrap();
        open_stream(&sim, (SVC, SVC_PW), &sub, Some(mailbox)).await
    };
    let (alice, first) = open(ALICE).await;
    assert!(first.contains("ConnectionStatus>OK<"), "{first}");
    let (_, refused) = open(ALICE).await;
    assert!(
        refused.contains("ResponseCode>ErrorExceededConnectionCount<"),
        "{refused}"
    );
    let (_bob, first) = open(BOB).await;
    assert!(
        first.contains("ConnectionStatus>OK<"),
        "bob's own budget: {first}"
    );
    drop(alice);
    let reopened = async || open(ALICE).await.1.contains("ConnectionStatus>OK<");
    let mut again = false;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !again && std::time::Instant::now() < deadline {
        again = reopened().await;
    }
    assert!(again, "a closed connection frees its place");
    sim.shutdown().await;
}

#[tokio::test]
async fn the_concurrency_budget_answers_server_busy_and_statistics_count_the_peak() {
    let sim = start().await;
    let c = sim.control();
    c.set_concurrency_limit(2);
    c.add_fault(FaultRule {
        mailbox: None,
        operation: None,
        fault: FaultKind::Delay { ms: 400 },
        count: None,
        probability: None,
    });
    let get = inbox_folder();
    let calls = (0..5).map(|_| call(&sim, AS_SVC, Some(ALICE), &get));
    let results = futures_util::future::join_all(calls).await;
    let busy: Vec<_> = results.iter().filter(|(s, _)| *s == 500).collect();
    assert_eq!(busy.len(), 3, "{results:?}");
    let f = fault_of(&busy[0].1);
    assert_eq!(f.code, Some(ResponseCode::ErrorServerBusy));
    assert_eq!(f.back_off(), Some(Duration::from_secs(1)));
    let stats = c.stats();
    // Refused calls count too: the peak is what the client attempted at once.
    assert!(stats.per_account[SVC].peak >= 3, "{stats:?}");
    assert_eq!(stats.per_account[SVC].current, 0);
    assert!(stats.per_mailbox[ALICE].peak >= 3, "{stats:?}");
    assert_eq!(stats.calls_per_operation["GetFolder"], 5);
    assert_eq!(stats.results["ErrorServerBusy"], 3);
    sim.shutdown().await;

    let sim = start_with(SimOptions {
        concurrency_limit: 0,
        over_budget: foldertrack::sim::OverBudget::TooManyObjectsOpened,
        ..quick_options()
    })
    .await;
    let resp = alice(&sim, &inbox_folder()).await;
    assert_eq!(
        resp.messages[0].as_ref().unwrap_err().code,
        ResponseCode::ErrorTooManyObjectsOpened
    );
    sim.shutdown().await;
}

/// Sends `sync` as the service account for alice; the raw response.
async fn send_sync(
    sim: &foldertrack::sim::SimHandle,
    sync: &SyncFolderItems,
) -> reqwest::Result<reqwest::Response> {
    http()
        .post(sim.ews_url())
        .basic_auth(SVC, Some(SVC_PW))
        .body(ews::write_request(sync, &header(Some(ALICE))))
        .send()
        .await
}

/// Sends `sync` and reads the whole body, surfacing transport errors.
async fn raw_sync(
    sim: &foldertrack::sim::SimHandle,
    sync: &SyncFolderItems,
) -> reqwest::Result<String> {
    send_sync(sim, sync).await?.text().await
}

fn rule(fault: FaultKind) -> FaultRule {
    FaultRule {
        mailbox: Some(ALICE.into()),
        operation: Some("SyncFolderItems".into()),
        fault,
        count: Some(1),
        probability: None,
    }
}

#[tokio::test]
async fn injected_faults_look_like_exchange_and_its_front_ends() {
    let sim = start().await;
    let c = sim.control();
    let sync = SyncFolderItems::page(DistinguishedFolder::Inbox.into(), None, 10);
    let as_svc = |sim| call(sim, AS_SVC, Some(ALICE), &sync);

    c.add_fault(rule(FaultKind::ServerBusyMessage { back_off_ms: 5000 }));
    let (status, body) = as_svc(&sim).await;
    assert_eq!(status, 200);
    let e = ews::read_response::<SyncFolderItems>(&body)
        .unwrap()
        .messages
        .remove(0)
        .unwrap_err();
    assert_eq!(e.back_off(), Some(Duration::from_secs(5)));
    assert_eq!(e.code, ResponseCode::ErrorServerBusy);

    c.add_fault(rule(FaultKind::ServerBusyFault {
        back_off_ms: 297_749,
    }));
    let (status, body) = as_svc(&sim).await;
    assert_eq!(status, 500);
    assert_eq!(
        fault_of(&body).back_off(),
        Some(Duration::from_millis(297_749))
    );

    for (kind, code) in [
        (
            FaultKind::Http503 {
                retry_after_secs: 7,
            },
            503,
        ),
        (
            FaultKind::Http429 {
                retry_after_secs: 7,
            },
            429,
        ),
    ] {
        c.add_fault(rule(kind));
        let resp = send_sync(&sim, &sync).await.unwrap();
        assert_eq!(resp.status().as_u16(), code);
        assert_eq!(resp.headers()["retry-after"], "7");
    }
    c.add_fault(rule(FaultKind::Unauthorized));
    assert_eq!(as_svc(&sim).await.0, 401);

    for (kind, code) in [
        (
            FaultKind::InvalidSyncState,
            ResponseCode::ErrorInvalidSyncStateData,
        ),
        (
            FaultKind::MailboxMoveInProgress,
            ResponseCode::ErrorMailboxMoveInProgress,
        ),
    ] {
        c.add_fault(rule(kind));
        let (_, body) = as_svc(&sim).await;
        let e = ews::read_response::<SyncFolderItems>(&body)
            .unwrap()
            .messages
            .remove(0)
            .unwrap_err();
        assert_eq!(e.code, code);
    }

    // Another mailbox and another operation are untouched; the rule ran out after one call.
    c.add_fault(rule(FaultKind::DropConnection));
    assert_eq!(
        call(&sim, AS_SVC, Some(ALICE), &inbox_folder()).await.0,
        200
    );
    assert!(
        raw_sync(&sim, &sync).await.is_err(),
        "a dropped connection is a transport error"
    );
    assert_eq!(as_svc(&sim).await.0, 200);

    c.add_fault(rule(FaultKind::TruncateBody));
    assert!(
        raw_sync(&sim, &sync).await.is_err(),
        "a cut body is a transport error"
    );

    c.add_fault(FaultRule {
        probability: Some(0.0),
        count: None,
        ..rule(FaultKind::Unauthorized)
    });
    assert_eq!(as_svc(&sim).await.0, 200);
    c.clear_faults();
    c.add_fault(rule(FaultKind::Delay { ms: 200 }));
    let started = std::time::Instant::now();
    assert_eq!(as_svc(&sim).await.0, 200);
    assert!(started.elapsed() >= Duration::from_millis(200));
    let results: Vec<String> = c.calls().into_iter().map(|r| r.result).collect();
    assert!(
        results.contains(&"HTTP 503".to_owned()) && results.contains(&"dropped".to_owned()),
        "{results:?}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn what_the_simulator_cannot_read_or_does_not_do_is_a_fault_that_names_it() {
    let sim = start().await;
    // An operation it does not implement: named, with where it stood; not ErrorInvalidRequest,
    // which clients read as a wrong RequestServerVersion.
    let (status, body) = post(&sim, AS_ALICE, None, envelope("<m:GetInboxRules/>", None)).await;
    assert_eq!(status, 500);
    let f = fault_of(&body);
    assert_eq!(f.code, Some(ResponseCode::ErrorInvalidOperation));
    assert!(f.fault_string.contains("GetInboxRules"), "{body}");
    assert_eq!(f.message_xml.value("Operation"), Some("GetInboxRules"));
    assert!(f.message_xml.value("LinePosition").is_some(), "{body}");
    // A fault carries no ServerVersionInfo, so no client takes it for a version answer.
    assert!(!body.contains("ServerVersionInfo"), "{body}");
    // A value the schema does not allow: ErrorSchemaValidation naming it and its place.
    let (status, body) = post(
        &sim,
        AS_ALICE,
        None,
        envelope(
            r#"<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape><m:FolderIds><t:DistinguishedFolderId Id="mailbox"/></m:FolderIds></m:GetFolder>"#,
            None,
        ),
    )
    .await;
    assert_eq!(status, 500);
    let f = fault_of(&body);
    assert_eq!(f.code, Some(ResponseCode::ErrorSchemaValidation));
    assert!(f.fault_string.contains("\"mailbox\""), "{body}");
    assert_eq!(f.message_xml.value("LineNumber"), Some("1"));
    let (status, body) = post(&sim, AS_ALICE, None, "<soap:Envelope><broken".into()).await;
    assert_eq!(status, 500);
    let f = fault_of(&body);
    assert_eq!(f.code, Some(ResponseCode::ErrorSchemaValidation));
    assert!(f.message_xml.value("LineNumber").is_some());
    let op = SyncFolderItems::page(DistinguishedFolder::Inbox.into(), None, 10);
    let xml = ews::write_request(&op, &header(None)).replace(">10<", ">0<");
    let (status, body) = post(&sim, AS_ALICE, None, xml).await;
    assert_eq!(
        (status, fault_of(&body).code),
        (500, Some(ResponseCode::ErrorSchemaValidation))
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn state_survives_a_restart_when_persisted() {
    let dir = tempfile::tempdir().unwrap();
    let options = SimOptions {
        persist: Some(dir.path().join("sim.json")),
        ..quick_options()
    };
    let sim = start_with(options.clone()).await;
    let c = sim.control();
    c.create_folder(ALICE, "Inbox/Kept").unwrap();
    let d = c.deliver(ALICE, "Inbox/Kept", &msg("kept")).unwrap();
    c.set_categories(ALICE, &d.item_id, &["Tracked".into()])
        .unwrap();
    let state = sync_page(&sim, DistinguishedFolder::Inbox.into(), None, 512)
        .await
        .unwrap()
        .sync_state;
    sim.shutdown().await;

    let sim = foldertrack::sim::Simulator::start(options).await.unwrap();
    let c = sim.control();
    let view = c.message(ALICE, &d.item_id).unwrap();
    assert_eq!(
        (view.subject.as_str(), view.categories.clone()),
        ("kept", vec!["Tracked".to_owned()])
    );
    // Sync states, passwords and grants survive too.
    let next = sync_page(&sim, DistinguishedFolder::Inbox.into(), state, 512)
        .await
        .unwrap();
    assert!(next.changes.is_empty());
    assert_eq!(
        call(&sim, AS_SVC, Some(ALICE), &inbox_folder()).await.0,
        200
    );
    let new = c.deliver(ALICE, "Inbox", &msg("after")).unwrap();
    assert_ne!(new.item_id, d.item_id);
    sim.shutdown().await;
}

#[tokio::test]
async fn every_response_style_reads_back_with_foldertracks_parsers() {
    let sim = start().await;
    let c = sim.control();
    let id = c.deliver(ALICE, "Inbox", &msg("styled")).unwrap().item_id;
    for prefixes in [
        Prefixes::Exchange,
        Prefixes::Classic,
        Prefixes::DefaultNamespace,
        Prefixes::Unusual,
    ] {
        for extra_elements in [false, true] {
            c.set_style(ResponseStyle {
                prefixes,
                extra_elements,
                ..ResponseStyle::default()
            });
            let get = GetItem {
                shape: ItemShape::for_tracking(true),
                items: vec![item_ref(&id)],
            };
            let (_, body) = call(&sim, AS_ALICE, None, &get).await;
            let resp =
                ews::read_response::<GetItem>(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
            let item = &resp.messages[0].as_ref().unwrap().items[0];
            assert_eq!(item.subject.as_deref(), Some("styled"), "{body}");
            assert_eq!(body.contains("SimulatorExtension"), extra_elements);
            let sync = SyncFolderItems::page(DistinguishedFolder::Inbox.into(), None, 10);
            let (_, body) = call(&sim, AS_ALICE, None, &sync).await;
            let resp = ews::read_response::<SyncFolderItems>(&body).unwrap();
            assert_eq!(
                resp.messages[0].as_ref().unwrap().changes.len(),
                1,
                "{body}"
            );
        }
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn the_json_control_api_mirrors_the_rust_one() {
    let sim = foldertrack::sim::Simulator::start(quick_options())
        .await
        .unwrap();
    let ctl = |cmd: &str, body: serde_json::Value| {
        let url = format!("{}/{cmd}", sim.control_url());
        async move {
            let r = http().post(url).json(&body).send().await.unwrap();
            (
                r.status().as_u16(),
                r.json::<serde_json::Value>().await.unwrap(),
            )
        }
    };
    let (s, _) = ctl(
        "create_user",
        serde_json::json!({"address": ALICE, "password": PW}),
    )
    .await;
    assert_eq!(s, 200);
    let (_, f) = ctl(
        "create_folder",
        serde_json::json!({"mailbox": ALICE, "path": "Inbox/Deals"}),
    )
    .await;
    assert!(f["folder_id"].as_str().is_some());
    let (_, d) = ctl(
        "deliver",
        serde_json::json!({"mailbox": ALICE, "folder": "Inbox", "message": {"subject": "Quote", "from": "Buyer <buyer@contoso.com>", "to": [ALICE]}}),
    )
    .await;
    let item = d["item_id"].as_str().unwrap().to_owned();
    let (_, m) = ctl(
        "move_message",
        serde_json::json!({"mailbox": ALICE, "item_id": item, "to": "Inbox/Deals"}),
    )
    .await;
    assert_ne!(m["item_id"].as_str().unwrap(), item);
    let (_, list) = ctl(
        "messages",
        serde_json::json!({"mailbox": ALICE, "folder": "Inbox/Deals"}),
    )
    .await;
    assert_eq!(list[0]["subject"], "Quote");
    let (s, _) = ctl(
        "add_fault",
        serde_json::json!({"rule": {"kind": "http503", "retry_after_secs": 3, "count": 1}}),
    )
    .await;
    assert_eq!(s, 200);
    let (_, faults) = ctl("faults", serde_json::json!({})).await;
    assert_eq!(faults[0]["kind"], "http503");
    let (s, e) = ctl("no_such_command", serde_json::json!({})).await;
    assert_eq!(s, 404, "{e}");
    let (s, e) = ctl(
        "create_folder",
        serde_json::json!({"mailbox": "nobody@x", "path": "Inbox/A"}),
    )
    .await;
    assert_eq!(s, 400);
    assert!(
        e["error"].as_str().unwrap().contains("does not exist"),
        "{e}"
    );
    let (_, stats) = ctl("stats", serde_json::json!({})).await;
    assert_eq!(stats["calls"], 0);
    sim.shutdown().await;
}

#[test]
fn the_control_api_reference_in_the_docs_is_the_one_the_binary_prints() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/simulator.md")).unwrap();
    assert!(
        doc.contains(foldertrack::sim::CONTROL_HELP.trim()),
        "docs/simulator.md: paste `foldertrack sim --help`'s control API reference"
    );
}
