//! Replays fixtures/ews (our own hand-written responses): fixture in, typed value out. Every
//! operation has a success, a per-item or operation error, and a throttling fixture.

use foldertrack::ews::convert_id::ConvertId;
use foldertrack::ews::copy_item::CopyItem;
use foldertrack::ews::create_folder::CreateFolder;
use foldertrack::ews::delete_item::DeleteItem;
use foldertrack::ews::find_folder::FindFolder;
use foldertrack::ews::find_item::FindItem;
use foldertrack::ews::get_attachment::GetAttachment;
use foldertrack::ews::get_events::GetEvents;
use foldertrack::ews::get_folder::GetFolder;
use foldertrack::ews::get_item::GetItem;
use foldertrack::ews::get_server_time_zones::GetServerTimeZones;
use foldertrack::ews::get_streaming_events::{ConnectionStatus, GetStreamingEvents};
use foldertrack::ews::move_item::MoveItem;
use foldertrack::ews::notification::{EventKind, StreamSplitter};
use foldertrack::ews::resolve_names::ResolveNames;
use foldertrack::ews::sync_folder_hierarchy::{FolderChange, SyncFolderHierarchy};
use foldertrack::ews::sync_folder_items::{Change, SyncFolderItems};
use foldertrack::ews::update_item::UpdateItem;
use foldertrack::ews::{self, Error, Operation, ResponseCode};
use std::path::PathBuf;
use std::time::Duration;

fn fixture(path: &str) -> String {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/ews")
        .join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

fn messages<O: Operation>(path: &str) -> Vec<ews::MessageResult<O::Message>> {
    ews::read_response::<O>(&fixture(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .messages
}

fn all_fixtures() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/ews");
    let mut out = Vec::new();
    for dir in std::fs::read_dir(&root).unwrap() {
        for file in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            let path = file.unwrap().path();
            if path.extension().is_some_and(|e| e == "xml") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_fixture_decodes() {
    let files = all_fixtures();
    assert!(files.len() >= 40, "{} fixtures", files.len());
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let v = ews::decode::decode(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let in_faults = path.parent().unwrap().ends_with("faults");
        assert_eq!(
            v["kind"] == "fault",
            in_faults && v["operation"].is_null(),
            "{}",
            path.display()
        );
    }
}

#[test]
fn every_operation_has_success_error_and_throttling_fixtures() {
    let ops = [
        "get_folder",
        "find_folder",
        "sync_folder_hierarchy",
        "sync_folder_items",
        "get_item",
        "get_attachment",
        "update_item",
        "create_item",
        "move_item",
        "subscribe",
        "get_events",
        "get_streaming_events",
        "unsubscribe",
        "find_item",
        "delete_item",
        "copy_item",
        "create_folder",
        "resolve_names",
        "get_server_time_zones",
        "convert_id",
    ];
    for op in ops {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/ews")
            .join(op);
        let texts: Vec<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|_| panic!("fixtures/ews/{op} is missing"))
            .map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap())
            .collect();
        let has = |needle: &str| texts.iter().any(|t| t.contains(needle));
        assert!(has("ResponseClass=\"Success\""), "{op}: no success fixture");
        assert!(
            has("ResponseClass=\"Error\"")
                && texts.iter().any(
                    |t| t.contains("ResponseClass=\"Error\"") && !t.contains("ErrorServerBusy")
                ),
            "{op}: no error fixture"
        );
        assert!(has("BackOffMilliseconds"), "{op}: no throttling fixture");
    }
}

#[test]
fn throttling_messages_carry_their_back_off() {
    for path in all_fixtures()
        .iter()
        .filter(|p| p.ends_with("server_busy.xml"))
    {
        let v = ews::decode::decode(&std::fs::read_to_string(path).unwrap()).unwrap();
        let first = &v["messages"][0]["Err"];
        assert_eq!(first["code"], "ErrorServerBusy", "{}", path.display());
        assert_eq!(
            first["message_xml"]["values"][0][1],
            "5000",
            "{}",
            path.display()
        );
    }
    let messages = messages::<GetItem>("get_item/server_busy.xml");
    let busy = messages[0].as_ref().unwrap_err();
    assert_eq!(busy.back_off(), Some(Duration::from_secs(5)));
}

#[test]
fn attachments_come_with_their_content_and_a_bad_id_fails_alone() {
    let m = messages::<GetAttachment>("get_attachment/files_and_a_mail.xml");
    let file = &m[0].as_ref().unwrap().attachments[0];
    assert_eq!(
        (file.kind.as_str(), file.id.as_str()),
        ("FileAttachment", "AAMkAGI2QXR0YWNoMQ==")
    );
    assert_eq!(
        file.name.as_deref(),
        Some("Angebot Q4 – Müller & Söhne.pdf")
    );
    assert_eq!(file.content_type.as_deref(), Some("application/pdf"));
    assert_eq!(
        file.content.as_deref(),
        Some("JVBERi0xLjQKJcOkw7zDtsOfCg==")
    );
    assert_eq!((file.size, file.is_inline), (Some(23), false));
    let mail = &m[1].as_ref().unwrap().attachments[0];
    assert_eq!(mail.kind, "ItemAttachment");
    assert_eq!(mail.content, None, "an attached mail has no file content");
    let bad = messages::<GetAttachment>("get_attachment/invalid_id.xml");
    assert_eq!(
        bad[0].as_ref().unwrap_err().code,
        ResponseCode::ErrorInvalidAttachmentId
    );
}

#[test]
fn sync_page_keeps_every_readable_change_and_marks_the_bad_one() {
    let m = messages::<SyncFolderItems>("sync_folder_items/changes.xml");
    let page = m[0].as_ref().unwrap();
    assert!(page.includes_last_item_in_range);
    assert_eq!(page.changes.len(), 6);
    let Change::Create(first) = &page.changes[0] else {
        panic!("{:?}", page.changes[0])
    };
    assert_eq!(first.subject.as_deref(), Some(" Deal & Quote – 見積もり "));
    assert_eq!(
        first.internet_message_id.as_deref(),
        Some("<quote-1@mail.contoso.com>")
    );
    let Change::Create(meeting) = &page.changes[1] else {
        panic!()
    };
    assert_eq!(meeting.kind, "MeetingRequest");
    assert_eq!(meeting.subject.as_deref(), Some("Café review"));
    assert!(
        matches!(&page.changes[2], Change::Update(i) if i.item_id.as_ref().unwrap().change_key.as_ref().unwrap().as_str() == "CQAAABYAAABupdated")
    );
    assert!(matches!(
        &page.changes[3],
        Change::ReadFlagChange { is_read: true, .. }
    ));
    assert!(matches!(&page.changes[4], Change::Delete(r) if r.change_key.is_none()));
    assert!(matches!(
        &page.changes[5],
        Change::Unreadable { index: 5, .. }
    ));
    let more = messages::<SyncFolderItems>("sync_folder_items/page_more.xml");
    assert!(!more[0].as_ref().unwrap().includes_last_item_in_range);
    let bad = messages::<SyncFolderItems>("sync_folder_items/invalid_sync_state.xml");
    assert_eq!(
        bad[0].as_ref().unwrap_err().code,
        ResponseCode::ErrorInvalidSyncStateData
    );
}

#[test]
fn get_item_batch_keeps_request_order_and_per_item_errors() {
    let m = messages::<GetItem>("get_item/batch_with_missing_item.xml");
    assert_eq!(m.len(), 3);
    let first = &m[0].as_ref().unwrap().items[0];
    assert_eq!(
        first.body.as_ref().unwrap().text,
        "<html><body><p>Hello Alice,&nbsp;the quote &amp; terms</p></body></html>"
    );
    assert_eq!(first.to[0].address.as_deref(), Some("alice@example.com"));
    assert_eq!(first.sent_at().unwrap().to_string(), "2026-11-24T09:31:02Z");
    assert_eq!(
        m[1].as_ref().unwrap_err().code,
        ResponseCode::ErrorItemNotFound
    );
    assert_eq!(
        m[2].as_ref().unwrap().items[0].subject.as_deref(),
        Some("  Re: Quote  ")
    );
    let invalid = messages::<GetItem>("get_item/invalid_property.xml");
    assert_eq!(
        invalid[0].as_ref().unwrap_err().message_xml.elements,
        ["message:ConversationIndex"]
    );
}

#[test]
fn write_back_and_move_return_new_versions() {
    let m = messages::<UpdateItem>("update_item/tracked_category.xml");
    let item = &m[0].as_ref().unwrap().items[0];
    assert_eq!(
        item.item_id
            .as_ref()
            .unwrap()
            .change_key
            .as_ref()
            .unwrap()
            .as_str(),
        "CQAAABYAAABafterwriteback"
    );
    let conflict = messages::<UpdateItem>("update_item/conflict.xml");
    assert_eq!(
        conflict[0].as_ref().unwrap_err().code,
        ResponseCode::ErrorIrresolvableConflict
    );
    let moved = messages::<MoveItem>("move_item/moved_new_id.xml");
    assert_eq!(
        moved[0].as_ref().unwrap().items[0]
            .item_id
            .as_ref()
            .unwrap()
            .id
            .as_str(),
        "AAMkADQ1Y2movedAAA="
    );
    assert!(moved[1].is_err());
}

#[test]
fn folders_resolve_with_exact_names_and_hierarchy_changes() {
    let m = messages::<FindFolder>("find_folder/customers_tree.xml");
    let names: Vec<_> = m[0]
        .as_ref()
        .unwrap()
        .folders
        .iter()
        .map(|f| f.display_name.clone().unwrap())
        .collect();
    assert_eq!(names, ["Customers", "Contoso & Partners", " Müller GmbH "]);
    let paged = messages::<FindFolder>("find_folder/paged.xml");
    assert!(
        !paged[0]
            .as_ref()
            .unwrap()
            .paging
            .includes_last_item_in_range
    );
    let g = messages::<GetFolder>("get_folder/inbox_and_missing.xml");
    assert!(g[0].is_ok() && g[1].as_ref().unwrap_err().code == ResponseCode::ErrorFolderNotFound);
    let h = messages::<SyncFolderHierarchy>("sync_folder_hierarchy/rename_move_delete.xml");
    let changes = &h[0].as_ref().unwrap().changes;
    assert!(
        matches!(&changes[0], FolderChange::Create(f) if f.display_name.as_deref() == Some("Neu – Kunden"))
    );
    assert!(matches!(&changes[1], FolderChange::Update(_)));
    assert!(matches!(&changes[2], FolderChange::Delete(_)));
}

#[test]
fn the_operations_of_other_clients_read_back() {
    let found = messages::<FindItem>("find_item/paged.xml");
    let page = found[0].as_ref().unwrap();
    assert_eq!(
        (
            page.paging.total_items_in_view,
            page.paging.indexed_paging_offset
        ),
        (Some(5), Some(2))
    );
    assert!(!page.paging.includes_last_item_in_range);
    let subjects: Vec<_> = page
        .items
        .iter()
        .map(|i| i.subject.clone().unwrap())
        .collect();
    assert_eq!(
        subjects,
        ["Quote follow-up & price – 見積", " Quote request 1001 "]
    );
    let bad_path = messages::<FindItem>("find_item/unsupported_path.xml");
    assert_eq!(
        bad_path[0].as_ref().unwrap_err().code,
        ResponseCode::ErrorUnsupportedPathForQuery
    );
    let deleted = messages::<DeleteItem>("delete_item/deleted_and_missing.xml");
    assert!(deleted[0].is_ok());
    assert_eq!(
        deleted[1].as_ref().unwrap_err().code,
        ResponseCode::ErrorItemNotFound
    );
    let copied = messages::<CopyItem>("copy_item/copied.xml");
    let copy = copied[0].as_ref().unwrap().items[0]
        .item_id
        .clone()
        .unwrap();
    assert_eq!(copy.id.as_str(), "AAMkAGNvcHkx");
    assert!(copied[1].is_err());
    let created = messages::<CreateFolder>("create_folder/created.xml");
    assert!(created[0].as_ref().unwrap().folders[0].id.is_some());
    let exists = messages::<CreateFolder>("create_folder/exists.xml");
    assert_eq!(
        exists[0].as_ref().unwrap_err().code,
        ResponseCode::ErrorFolderExists
    );
    let one = messages::<ResolveNames>("resolve_names/one.xml");
    let r = &one[0].as_ref().unwrap().resolutions[0];
    assert_eq!(
        (r.name.as_deref(), r.address.as_deref()),
        (Some("Alice Ådahl"), Some("alice@example.com"))
    );
    let several = messages::<ResolveNames>("resolve_names/several.xml");
    let warning = several[0].as_ref().unwrap_err();
    assert_eq!(warning.class, ews::ResponseClass::Warning);
    assert_eq!(
        warning.code,
        ResponseCode::ErrorNameResolutionMultipleResults
    );
    let none = messages::<ResolveNames>("resolve_names/none.xml");
    assert_eq!(
        none[0].as_ref().unwrap_err().code,
        ResponseCode::ErrorNameResolutionNoResults
    );
    let zones = messages::<GetServerTimeZones>("get_server_time_zones/zones.xml");
    let ids: Vec<_> = zones[0]
        .as_ref()
        .unwrap()
        .zones
        .iter()
        .map(|z| z.id.as_str())
        .collect();
    assert_eq!(ids, ["UTC", "W. Europe Standard Time"]);
    let converted = messages::<ConvertId>("convert_id/converted_and_malformed.xml");
    let id = converted[0].as_ref().unwrap().id.clone().unwrap();
    assert_eq!(
        (id.format.as_str(), id.mailbox.as_str()),
        ("EntryId", "alice@example.com")
    );
    assert_eq!(
        converted[1].as_ref().unwrap_err().code,
        ResponseCode::ErrorInvalidIdMalformed
    );
}

#[test]
fn notifications_in_either_namespace_and_streams_split_into_envelopes() {
    let m = messages::<GetEvents>("get_events/moved.xml");
    let n = m[0].as_ref().unwrap().notification.as_ref().unwrap();
    assert_eq!(n.events[0].kind, EventKind::Moved);
    assert_eq!(
        n.events[0].old_item_id.as_ref().unwrap().id.as_str(),
        "AAMkOLD="
    );
    assert_eq!(n.events[1].unread_count, Some(1));
    let stream = fixture("get_streaming_events/stream_events_ok_closed.xml");
    let mut splitter = StreamSplitter::new();
    let docs: Vec<String> = stream
        .as_bytes()
        .chunks(97)
        .flat_map(|c| splitter.push(c))
        .collect();
    assert_eq!(docs.len(), 3);
    let statuses: Vec<_> = docs
        .iter()
        .map(|d| {
            ews::read_response::<GetStreamingEvents>(d)
                .unwrap()
                .messages
                .remove(0)
                .unwrap()
        })
        .collect();
    assert_eq!(
        statuses[0].notifications[0].events[0].kind,
        EventKind::Created
    );
    assert_eq!(statuses[1].connection_status, Some(ConnectionStatus::Ok));
    assert_eq!(
        statuses[2].connection_status,
        Some(ConnectionStatus::Closed)
    );
}

#[test]
fn faults_are_errors_with_their_code_and_back_off() {
    let busy = ews::read_response::<SyncFolderItems>(&fixture("faults/server_busy_fault.xml"));
    let Err(Error::Fault(f)) = busy else {
        panic!("{busy:?}")
    };
    assert_eq!(f.code, Some(ResponseCode::ErrorServerBusy));
    assert_eq!(f.back_off(), Some(Duration::from_millis(297_749)));
    let inner = messages::<GetItem>("faults/internal_error_inner_busy.xml");
    let e = inner[0].as_ref().unwrap_err();
    assert_eq!(
        e.message_xml.inner_code(),
        Some(ResponseCode::ErrorServerBusy)
    );
    for (file, code) in [
        (
            "faults/impersonate_denied_fault.xml",
            ResponseCode::ErrorImpersonateUserDenied,
        ),
        (
            "faults/non_existent_mailbox_fault.xml",
            ResponseCode::ErrorNonExistentMailbox,
        ),
        (
            "faults/schema_validation_fault.xml",
            ResponseCode::ErrorSchemaValidation,
        ),
    ] {
        let Err(Error::Fault(f)) = ews::read_response::<GetFolder>(&fixture(file)) else {
            panic!("{file}")
        };
        assert_eq!(f.code, Some(code), "{file}");
    }
}

#[test]
fn requests_match_their_snapshots() {
    for (name, xml) in ews::examples::requests() {
        insta::assert_snapshot!(name, xml);
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_input_never_panics(input in ".{0,400}") {
        let _ = ews::decode::decode(&input);
        let _ = ews::read_response::<SyncFolderItems>(&input);
    }

    #[test]
    fn truncated_fixtures_never_panic(cut in 0usize..4000, pick in 0usize..64) {
        let files = all_fixtures();
        let text = std::fs::read_to_string(&files[pick % files.len()]).unwrap();
        let mut end = cut.min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let piece = &text[..end];
        let _ = ews::decode::decode(piece);
        let _ = ews::read_response::<GetItem>(piece);
        let _ = ews::read_response::<SyncFolderItems>(piece);
    }

    #[test]
    fn any_text_round_trips_through_writer_and_reader(s in "\\PC*") {
        let mut w = ews::xml::XmlWriter::new();
        w.leaf("a", &s);
        let xml = w.finish();
        let mut r = ews::xml::XmlReader::new(&xml);
        let root = r.root().unwrap();
        proptest::prop_assert_eq!(r.text(&root).unwrap(), ews::xml::sanitised(&s));
    }
}
