//! The simulator against Microsoft's material in ../shared/ews-reference: what it sends
//! validates against the official schema, and every published request sample for an operation
//! it implements gets a well-formed answer that is not a fault. Also every request foldertrack
//! itself can build. Without the material (or xmllint) a test says it was skipped; under CI it
//! fails (see tests/required).

mod required;
mod sim_support;

use foldertrack::ews::folder::FolderShape;
use foldertrack::ews::get_attachment::GetAttachment;
use foldertrack::ews::get_folder::GetFolder;
use foldertrack::ews::get_item::GetItem;
use foldertrack::ews::item::ItemShape;
use foldertrack::ews::sync_folder_items::SyncFolderItems;
use foldertrack::ews::{self, DistinguishedFolder, ItemId, ItemRef};
use foldertrack::sim::ops::{Request, read_operation};
use foldertrack::sim::{FaultKind, FaultRule, NewMessage, NotificationNs, ResponseStyle};
use sim_support::*;
use std::path::PathBuf;

/// The reference's `validate` script, when it and xmllint are both there to validate with.
fn validator() -> Option<PathBuf> {
    let validate = required::reference("validate")?;
    required::xmllint().then_some(validate)
}

fn message(subject: &str) -> NewMessage {
    NewMessage {
        subject: subject.into(),
        from: "Buyer <buyer@contoso.com>".into(),
        to: vec![ALICE.into()],
        cc: vec!["carol@example.com".into()],
        body: Some("<p>Hi &amp; bye</p>".into()),
        body_type: Some("HTML".into()),
        categories: vec!["Red".into()],
        ..NewMessage::default()
    }
}

/// Is this response a SOAP fault? Panics when it is not well-formed.
fn is_fault(xml: &str) -> bool {
    match ews::envelope::read_response(xml, |r, el| r.skip(el)) {
        Ok(_) => false,
        Err(ews::Error::Fault(_)) => true,
        Err(e) => panic!("not a well-formed response ({e}): {xml}"),
    }
}

#[tokio::test]
async fn every_kind_of_response_validates_against_the_official_schema() {
    let Some(validate) = validator() else { return };
    let sim = start().await;
    let c = sim.control();
    c.set_style(ResponseStyle {
        notification_ns: NotificationNs::Types,
        ..ResponseStyle::default()
    });
    let folder = c.create_folder(ALICE, "Inbox/Deals").unwrap();
    let id = c
        .deliver(ALICE, "Inbox", &message("first"))
        .unwrap()
        .item_id;
    c.deliver(ALICE, "Inbox", &message("second")).unwrap();
    let mut docs: Vec<(String, String)> = Vec::new();
    let mut keep = |name: &str, (_, body): (u16, String)| docs.push((name.to_owned(), body));

    let get_folder = GetFolder {
        shape: FolderShape {
            base: ews::folder::BaseShape::AllProperties,
            ..FolderShape::default()
        },
        folders: vec![
            DistinguishedFolder::Inbox.into(),
            ews::FolderId(folder.clone()).into(),
        ],
    };
    keep("GetFolder", call(&sim, AS_ALICE, None, &get_folder).await);
    let find = envelope(
        r#"<m:FindFolder Traversal="Deep"><m:FolderShape><t:BaseShape>AllProperties</t:BaseShape><t:AdditionalProperties><t:ExtendedFieldURI PropertyTag="4340" PropertyType="Boolean"/></t:AdditionalProperties></m:FolderShape><m:IndexedPageFolderView MaxEntriesReturned="5" Offset="0" BasePoint="Beginning"/><m:ParentFolderIds><t:DistinguishedFolderId Id="msgfolderroot"/></m:ParentFolderIds></m:FindFolder>"#,
        None,
    );
    keep("FindFolder", post(&sim, AS_ALICE, None, find).await);
    let hierarchy = envelope(
        r#"<m:SyncFolderHierarchy><m:FolderShape><t:BaseShape>AllProperties</t:BaseShape></m:FolderShape></m:SyncFolderHierarchy>"#,
        None,
    );
    let (s, body) = post(&sim, AS_ALICE, None, hierarchy).await;
    let state = first_text(&body, "SyncState").unwrap();
    keep("SyncFolderHierarchy", (s, body));
    c.rename_folder(ALICE, "Inbox/Deals", "Deals 2").unwrap();
    c.create_folder(ALICE, "Inbox/Gone").unwrap();
    let gone_state = {
        let req = envelope(
            &format!(
                r#"<m:SyncFolderHierarchy><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape><m:SyncState>{state}</m:SyncState></m:SyncFolderHierarchy>"#
            ),
            None,
        );
        let (s, body) = post(&sim, AS_ALICE, None, req).await;
        let next = first_text(&body, "SyncState").unwrap();
        keep("SyncFolderHierarchy-update", (s, body));
        next
    };
    c.delete_folder(ALICE, "Inbox/Gone").unwrap();
    let req = envelope(
        &format!(
            r#"<m:SyncFolderHierarchy><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape><m:SyncState>{gone_state}</m:SyncState></m:SyncFolderHierarchy>"#
        ),
        None,
    );
    keep(
        "SyncFolderHierarchy-delete",
        post(&sim, AS_ALICE, None, req).await,
    );

    let mut sync = SyncFolderItems::page(DistinguishedFolder::Inbox.into(), None, 512);
    sync.shape.base = ews::folder::BaseShape::AllProperties;
    let (s, body) = call(&sim, AS_ALICE, None, &sync).await;
    let state = ews::read_response::<SyncFolderItems>(&body)
        .unwrap()
        .messages[0]
        .as_ref()
        .unwrap()
        .sync_state
        .clone();
    keep("SyncFolderItems-initial", (s, body));
    c.mark_read(ALICE, &id, true).unwrap();
    let second = c.messages(ALICE, "Inbox").unwrap()[1].item_id.clone();
    c.set_categories(ALICE, &second, &["Blue".into()]).unwrap();
    c.deliver(ALICE, "Inbox", &message("third")).unwrap();
    let moved = c.move_message(ALICE, &second, "Inbox/Deals 2").unwrap();
    let _ = moved;
    sync.sync_state = state;
    keep(
        "SyncFolderItems-changes",
        call(&sim, AS_ALICE, None, &sync).await,
    );
    sync.sync_state = Some(ews::SyncState("bad".into()));
    keep(
        "SyncFolderItems-invalid-state",
        call(&sim, AS_ALICE, None, &sync).await,
    );

    let get = GetItem {
        shape: ItemShape {
            base: ews::folder::BaseShape::AllProperties,
            ..ItemShape::for_tracking(true)
        },
        items: vec![
            ItemRef {
                id: ItemId(id.clone()),
                change_key: None,
            },
            ItemRef {
                id: ItemId(second.clone()),
                change_key: None,
            },
        ],
    };
    keep("GetItem", call(&sim, AS_ALICE, None, &get).await);
    // A mail with a file: GetItem lists it, GetAttachment returns it.
    let mut with_file = message("with a file");
    with_file.attachments = vec![foldertrack::sim::NewAttachment {
        name: "offer & terms.pdf".into(),
        content_type: "application/pdf".into(),
        content: "JVBERi0xLjQK".into(),
    }];
    let filed = c.deliver(ALICE, "Inbox", &with_file).unwrap().item_id;
    let list = GetItem {
        shape: ItemShape {
            properties: vec!["item:Attachments".into(), "item:HasAttachments".into()],
            ..ItemShape::default()
        },
        items: vec![ItemRef {
            id: ItemId(filed),
            change_key: None,
        }],
    };
    let (s, body) = call(&sim, AS_ALICE, None, &list).await;
    let attachment = ews::read_response::<GetItem>(&body).unwrap().messages[0]
        .as_ref()
        .unwrap()
        .items[0]
        .attachments[0]
        .clone();
    assert_eq!(attachment.name.as_deref(), Some("offer & terms.pdf"));
    keep("GetItem-attachments", (s, body));
    let get_file = GetAttachment {
        ids: vec![attachment.id, "AAMkAGI2bm9uZQ==".into()],
    };
    let (s, body) = call(&sim, AS_ALICE, None, &get_file).await;
    let got = ews::read_response::<GetAttachment>(&body).unwrap().messages;
    assert_eq!(
        got[0].as_ref().unwrap().attachments[0].content.as_deref(),
        Some("JVBERi0xLjQK")
    );
    assert!(got[1].is_err(), "an unknown id fails alone");
    keep("GetAttachment", (s, body));
    for example in ews::examples::requests() {
        let (name, xml) = example;
        if name.contains("Subscribe") || name.contains("Events") || name.contains("Unsubscribe") {
            continue;
        }
        keep(
            &format!("example-{name}"),
            send_as_written(&sim, &xml).await,
        );
    }

    let sub = envelope(
        r#"<m:Subscribe><m:PullSubscriptionRequest><t:FolderIds><t:DistinguishedFolderId Id="inbox"/></t:FolderIds><t:EventTypes><t:EventType>CreatedEvent</t:EventType><t:EventType>MovedEvent</t:EventType><t:EventType>ModifiedEvent</t:EventType></t:EventTypes><t:Timeout>10</t:Timeout></m:PullSubscriptionRequest></m:Subscribe>"#,
        None,
    );
    let (s, body) = post(&sim, AS_ALICE, None, sub).await;
    let pull = first_text(&body, "SubscriptionId").unwrap();
    let mark = first_text(&body, "Watermark").unwrap();
    keep("Subscribe-pull", (s, body));
    let d = c.deliver(ALICE, "Inbox", &message("evented")).unwrap();
    c.move_message(ALICE, &d.item_id, "Inbox/Deals 2").unwrap();
    let get_events = envelope(
        &format!(
            "<m:GetEvents><m:SubscriptionId>{pull}</m:SubscriptionId><m:Watermark>{mark}</m:Watermark></m:GetEvents>"
        ),
        None,
    );
    keep("GetEvents", post(&sim, AS_ALICE, None, get_events).await);
    let stream_sub = envelope(
        r#"<m:Subscribe><m:StreamingSubscriptionRequest><t:FolderIds><t:DistinguishedFolderId Id="inbox"/></t:FolderIds><t:EventTypes><t:EventType>CreatedEvent</t:EventType></t:EventTypes></m:StreamingSubscriptionRequest></m:Subscribe>"#,
        None,
    );
    let (s, body) = post(&sim, AS_ALICE, None, stream_sub).await;
    let streaming = first_text(&body, "SubscriptionId").unwrap();
    keep("Subscribe-streaming", (s, body));
    let req = envelope(
        &format!(
            "<m:GetStreamingEvents><m:SubscriptionIds><t:SubscriptionId>{streaming}</t:SubscriptionId></m:SubscriptionIds><m:ConnectionTimeout>1</m:ConnectionTimeout></m:GetStreamingEvents>"
        ),
        None,
    );
    let streamed = http()
        .post(sim.ews_url())
        .basic_auth(ALICE, Some(PW))
        .body(req)
        .send();
    let deliver = async {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        c.deliver(ALICE, "Inbox", &message("streamed")).unwrap();
    };
    let (streamed, ()) = tokio::join!(streamed, deliver);
    let streamed = streamed.unwrap().text().await.unwrap();
    for (i, envelope) in streamed.split_inclusive("</s:Envelope>").enumerate() {
        keep(
            &format!("GetStreamingEvents-{i}"),
            (200, envelope.to_owned()),
        );
    }
    let bad_stream = envelope(
        &format!(
            "<m:GetStreamingEvents><m:SubscriptionIds><t:SubscriptionId>{pull}</t:SubscriptionId></m:SubscriptionIds><m:ConnectionTimeout>1</m:ConnectionTimeout></m:GetStreamingEvents>"
        ),
        None,
    );
    keep(
        "GetStreamingEvents-error",
        post(&sim, AS_ALICE, None, bad_stream).await,
    );
    let unsub = envelope(
        &format!("<m:Unsubscribe><m:SubscriptionId>{pull}</m:SubscriptionId></m:Unsubscribe>"),
        None,
    );
    keep(
        "Unsubscribe",
        post(&sim, AS_ALICE, None, unsub.clone()).await,
    );
    keep(
        "Unsubscribe-not-found",
        post(&sim, AS_ALICE, None, unsub).await,
    );

    // Error messages. (SOAP faults are SOAP, not EWS schema: the other tests read them back.)
    for fault in [
        FaultKind::ServerBusyMessage { back_off_ms: 5000 },
        FaultKind::InvalidSyncState,
        FaultKind::MailboxMoveInProgress,
    ] {
        let name = format!("fault-{fault:?}");
        c.add_fault(FaultRule {
            mailbox: None,
            operation: None,
            fault,
            count: Some(1),
            probability: None,
        });
        keep(&name, call(&sim, AS_ALICE, None, &sync).await);
    }
    sim.shutdown().await;
    validate_all(&validate, &docs);
}

/// Validates every `(name, document)` with the reference's `validate` script; all must pass.
fn validate_all(validate: &std::path::Path, docs: &[(String, String)]) {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (i, (name, body)) in docs.iter().enumerate() {
        let path = dir.path().join(format!(
            "{i:02}-{}.xml",
            name.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_")
        ));
        std::fs::write(&path, body).unwrap();
        files.push(path);
    }
    let out = std::process::Command::new(validate)
        .args(&files)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        report.contains(&format!("{} passed, 0 failed", files.len())),
        "{report}"
    );
    required::checked(files.len(), "simulator responses");
}

#[tokio::test]
async fn the_responses_to_other_clients_operations_validate_against_the_official_schema() {
    let Some(validate) = validator() else { return };
    let sim = start().await;
    let c = sim.control();
    c.create_mailbox("alicia@example.com").unwrap();
    let target = c.create_folder(ALICE, "Inbox/Deals").unwrap();
    let ids: Vec<String> = ["Quote 1", "Quote 2", "Lunch"]
        .iter()
        .map(|s| c.deliver(ALICE, "Inbox", &message(s)).unwrap().item_id)
        .collect();
    let mut docs: Vec<(String, String)> = Vec::new();
    let mut keep = |name: &str, body: &str| docs.push((name.to_owned(), envelope(body, None)));
    let every_folder: String = DistinguishedFolder::ALL
        .iter()
        .map(|d| format!(r#"<t:DistinguishedFolderId Id="{}"/>"#, d.as_str()))
        .collect();
    let all_props = r#"<m:FolderShape><t:BaseShape>AllProperties</t:BaseShape><t:AdditionalProperties><t:FieldURI FieldURI="folder:DistinguishedFolderId"/><t:ExtendedFieldURI PropertyTag="0x10f4" PropertyType="Boolean"/></t:AdditionalProperties></m:FolderShape>"#;
    keep(
        "GetFolder-every-distinguished-folder",
        &format!("<m:GetFolder>{all_props}<m:FolderIds>{every_folder}</m:FolderIds></m:GetFolder>"),
    );
    keep(
        "FindFolder-deep-from-root",
        &format!(
            r#"<m:FindFolder Traversal="Deep">{all_props}<m:IndexedPageFolderView MaxEntriesReturned="100" Offset="0" BasePoint="Beginning"/><m:Restriction><t:Not><t:IsEqualTo><t:FieldURI FieldURI="folder:DisplayName"/><t:FieldURIOrConstant><t:Constant Value="Views"/></t:FieldURIOrConstant></t:IsEqualTo></t:Not></m:Restriction><m:ParentFolderIds><t:DistinguishedFolderId Id="root"/></m:ParentFolderIds></m:FindFolder>"#
        ),
    );
    keep(
        "SyncFolderHierarchy-whole-mailbox",
        &format!("<m:SyncFolderHierarchy>{all_props}</m:SyncFolderHierarchy>"),
    );
    let shape = r#"<m:ItemShape><t:BaseShape>Default</t:BaseShape><t:AdditionalProperties><t:FieldURI FieldURI="item:Categories"/></t:AdditionalProperties></m:ItemShape>"#;
    keep(
        "FindItem-indexed",
        &format!(
            r#"<m:FindItem Traversal="Shallow">{shape}<m:IndexedPageItemView MaxEntriesReturned="2" Offset="1" BasePoint="Beginning"/><m:Restriction><t:Or><t:Contains ContainmentMode="Prefixed" ContainmentComparison="IgnoreCase"><t:FieldURI FieldURI="item:Subject"/><t:Constant Value="quote"/></t:Contains><t:IsEqualTo><t:FieldURI FieldURI="item:Categories"/><t:FieldURIOrConstant><t:Constant Value="Red"/></t:FieldURIOrConstant></t:IsEqualTo></t:Or></m:Restriction><m:SortOrder><t:FieldOrder Order="Ascending"><t:FieldURI FieldURI="item:Subject"/></t:FieldOrder></m:SortOrder><m:ParentFolderIds><t:DistinguishedFolderId Id="inbox"/></m:ParentFolderIds></m:FindItem>"#
        ),
    );
    keep(
        "FindItem-fractional",
        &format!(
            r#"<m:FindItem Traversal="Shallow">{shape}<m:FractionalPageItemView MaxEntriesReturned="10" Numerator="1" Denominator="2"/><m:ParentFolderIds><t:DistinguishedFolderId Id="inbox"/></m:ParentFolderIds></m:FindItem>"#
        ),
    );
    keep(
        "FindItem-unsupported-path",
        &format!(
            r#"<m:FindItem Traversal="Shallow">{shape}<m:Restriction><t:Exists><t:FieldURI FieldURI="item:Body"/></t:Exists></m:Restriction><m:ParentFolderIds><t:DistinguishedFolderId Id="inbox"/></m:ParentFolderIds></m:FindItem>"#
        ),
    );
    let item = |id: &str| format!(r#"<t:ItemId Id="{id}"/>"#);
    keep(
        "CopyItem",
        &format!(
            r#"<m:CopyItem><m:ToFolderId><t:FolderId Id="{target}"/></m:ToFolderId><m:ItemIds>{}</m:ItemIds></m:CopyItem>"#,
            item(&ids[0])
        ),
    );
    keep(
        "UpdateItem-fields",
        &format!(
            r#"<m:UpdateItem ConflictResolution="AutoResolve" MessageDisposition="SaveOnly"><m:ItemChanges><t:ItemChange>{}<t:Updates><t:SetItemField><t:FieldURI FieldURI="item:Subject"/><t:Message><t:Subject>Quote 1 (read)</t:Subject></t:Message></t:SetItemField><t:SetItemField><t:FieldURI FieldURI="message:IsRead"/><t:Message><t:IsRead>1</t:IsRead></t:Message></t:SetItemField></t:Updates></t:ItemChange><t:ItemChange>{}<t:Updates><t:SetItemField><t:FieldURI FieldURI="item:ReminderIsSet"/><t:Message><t:ReminderIsSet>true</t:ReminderIsSet></t:Message></t:SetItemField></t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>"#,
            item(&ids[0]),
            item(&ids[1])
        ),
    );
    keep(
        "DeleteItem",
        &format!(
            r#"<m:DeleteItem DeleteType="MoveToDeletedItems"><m:ItemIds>{}{}</m:ItemIds></m:DeleteItem>"#,
            item(&ids[2]),
            item(&ids[2])
        ),
    );
    keep(
        "CreateItem-send",
        &format!(
            r#"<m:CreateItem MessageDisposition="SendAndSaveCopy"><m:SavedItemFolderId><t:DistinguishedFolderId Id="sentitems"/></m:SavedItemFolderId><m:Items><t:Message><t:Subject>Hello</t:Subject><t:ToRecipients><t:Mailbox><t:EmailAddress>{BOB}</t:EmailAddress></t:Mailbox></t:ToRecipients></t:Message></m:Items></m:CreateItem>"#
        ),
    );
    keep(
        "CreateFolder",
        r#"<m:CreateFolder><m:ParentFolderId><t:DistinguishedFolderId Id="inbox"/></m:ParentFolderId><m:Folders><t:Folder><t:DisplayName>New</t:DisplayName></t:Folder><t:ContactsFolder><t:DisplayName>Buyers</t:DisplayName></t:ContactsFolder><t:Folder><t:DisplayName>deals</t:DisplayName></t:Folder></m:Folders></m:CreateFolder>"#,
    );
    for entry in ["bob", "ali", "zed"] {
        keep(
            &format!("ResolveNames-{entry}"),
            &format!(
                r#"<m:ResolveNames ReturnFullContactData="false"><m:UnresolvedEntry>{entry}</m:UnresolvedEntry></m:ResolveNames>"#
            ),
        );
    }
    keep(
        "GetServerTimeZones-full",
        r#"<m:GetServerTimeZones ReturnFullTimeZoneData="true"/>"#,
    );
    // Only the error answer: a converted id is `m:AlternateId xsi:type="t:AlternateIdType"`,
    // and the reference validator re-serialises each part with new prefixes but leaves the
    // QName inside xsi:type as it was, so no such answer can pass it. tests/sim_clients.rs
    // reads converted ids back instead.
    keep(
        "ConvertId-malformed",
        &format!(
            r#"<m:ConvertId DestinationFormat="HexEntryId"><m:SourceIds><t:AlternateId Format="EwsId" Id="DUMMY" Mailbox="{ALICE}"/></m:SourceIds></m:ConvertId>"#
        ),
    );
    let mut answers = Vec::new();
    for (name, request) in docs {
        let (status, body) = post(&sim, AS_ALICE, None, request).await;
        assert_eq!(status, 200, "{name}: {body}");
        assert!(!is_fault(&body), "{name}: {body}");
        answers.push((name, body));
    }
    sim.shutdown().await;
    validate_all(&validate, &answers);
}

/// Sends a request document as written; when it impersonates someone, gives them a mailbox the
/// service account may impersonate and sends it as the service account.
async fn send_as_written(sim: &foldertrack::sim::SimHandle, xml: &str) -> (u16, String) {
    let (header, _) = ews::envelope::read_request(xml, |r, el| r.skip(el)).unwrap();
    match &header.impersonation {
        Some(sid) => {
            let who = sid.value();
            let _ = sim.control().create_mailbox(who);
            sim.control().grant_impersonation(SVC, who).unwrap();
            post(sim, AS_SVC, Some(who), xml.to_owned()).await
        }
        None => post(sim, AS_ALICE, None, xml.to_owned()).await,
    }
}

#[tokio::test]
async fn every_published_request_sample_gets_a_sensible_answer() {
    let Some(dir) = required::reference("samples") else {
        return;
    };
    let sim = start().await;
    let mut samples: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.contains("-request") && name.ends_with(".xml")
        })
        .collect();
    samples.sort();
    let mut answered = 0;
    for path in samples {
        let xml = std::fs::read_to_string(&path).unwrap();
        let xml = xml.trim_start_matches('\u{feff}');
        let Ok((_, request)) = ews::envelope::read_request(xml, read_operation) else {
            panic!("{}: the simulator cannot read it", path.display());
        };
        if matches!(request, Request::Unsupported { .. }) {
            println!("not implemented, skipped: {}", path.display());
            continue;
        }
        let (status, body) = send_as_written(&sim, xml).await;
        assert!(
            !is_fault(&body),
            "{}: HTTP {status}, a fault instead of an answer: {body}",
            path.display()
        );
        assert_eq!(status, 200, "{}", path.display());
        answered += 1;
    }
    assert!(answered >= 15, "only {answered} samples answered");
    sim.shutdown().await;
}

#[tokio::test]
async fn every_request_foldertrack_builds_gets_an_answer_that_is_not_a_fault() {
    let sim = start().await;
    for (name, xml) in ews::examples::requests() {
        let (status, body) = send_as_written(&sim, &xml).await;
        assert!(!is_fault(&body), "{name}: HTTP {status}: {body}");
    }
    sim.shutdown().await;
}
