//! One function per fuzz target: the input goes through the same entry points the agent uses on
//! what a server (or an operator) hands it. A panic, a hang or runaway memory is a finding;
//! an `Err` is the right answer to garbage.

use foldertrack::ews::{self, Operation};
use foldertrack::graph;
use std::borrow::Cow;
use std::fmt::Debug;

/// A response body as the EWS client takes it: UTF-8, or converted lossily when it is not.
fn text(data: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(data)
}

/// Uses a value the way a caller would (formatting walks every field).
fn touch(value: &impl Debug) {
    std::hint::black_box(format!("{value:?}"));
}

/// `foldertrack ews decode`: any EWS document — envelope, body, response, message, request,
/// fault — read by the XML reader and every operation's decoders.
pub fn ews_decode(data: &[u8]) {
    if let Ok(value) = ews::decode::decode(&text(data)) {
        touch(&serde_json::to_string(&value));
    }
}

fn response<O: Operation>(text: &str)
where
    O::Message: Debug,
{
    touch(&ews::read_response::<O>(text));
}

/// The client's path: the body of an HTTP answer read as the response of each operation.
pub fn ews_responses(data: &[u8]) {
    use ews::*;
    let text = text(data);
    response::<get_folder::GetFolder>(&text);
    response::<sync_folder_items::SyncFolderItems>(&text);
    response::<get_item::GetItem>(&text);
    response::<get_attachment::GetAttachment>(&text);
    response::<update_item::UpdateItem>(&text);
    response::<create_item::CreateItem>(&text);
    response::<move_item::MoveItem>(&text);
    response::<find_folder::FindFolder>(&text);
    response::<sync_folder_hierarchy::SyncFolderHierarchy>(&text);
    response::<subscribe::Subscribe>(&text);
    response::<get_events::GetEvents>(&text);
    response::<get_streaming_events::GetStreamingEvents>(&text);
    response::<unsubscribe::Unsubscribe>(&text);
    response::<find_item::FindItem>(&text);
    response::<delete_item::DeleteItem>(&text);
    response::<copy_item::CopyItem>(&text);
    response::<create_folder::CreateFolder>(&text);
    response::<resolve_names::ResolveNames>(&text);
    response::<get_server_time_zones::GetServerTimeZones>(&text);
    response::<convert_id::ConvertId>(&text);
}

/// A streaming body arriving in chunks (the first byte picks the chunk size): the splitter cuts
/// it into envelopes, each read as a GetStreamingEvents response.
pub fn ews_stream(data: &[u8]) {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(first % 64) + 1;
    let mut splitter = ews::notification::StreamSplitter::new();
    for piece in body.chunks(chunk) {
        for doc in splitter.push(piece) {
            response::<ews::get_streaming_events::GetStreamingEvents>(&doc);
        }
    }
}

/// Every Graph JSON body the agent reads: delta pages of messages and folders, errors, folder
/// and attachment lists, batches, subscriptions and change notifications.
pub fn graph_json(data: &[u8]) {
    use graph::*;
    if let Ok(page) = delta::read::<message::Message>(data) {
        for entry in &page.entries {
            if let delta::Entry::Item(m) = entry {
                touch(&(m.is_read_flag_only(), m.search_key()));
            }
        }
        touch(&page);
    }
    touch(&delta::read::<folder::MailFolder>(data));
    touch(&error::read(data));
    touch(&serde_json::from_slice::<folder::FolderList>(data));
    touch(&serde_json::from_slice::<attachment::AttachmentList>(data));
    if let Ok(a) = serde_json::from_slice::<attachment::Attachment>(data) {
        touch(&(a.is_file(), a));
    }
    if let Ok(batch) = serde_json::from_slice::<batch::BatchResponse>(data) {
        for answer in &batch.responses {
            touch(&answer.header("Retry-After"));
        }
    }
    touch(&serde_json::from_slice::<subscription::SubscriptionList>(
        data,
    ));
    if let Ok(n) = serde_json::from_slice::<subscription::Notifications>(data) {
        for one in &n.value {
            touch(
                &one.lifecycle_event
                    .as_deref()
                    .map(subscription::Lifecycle::parse),
            );
        }
    }
}

/// The config loader: TOML syntax, the types, validation and the line finder for problems.
pub fn config_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return; // `Config::load` reads the file as UTF-8 and names the error otherwise
    };
    match foldertrack::config::Config::from_toml_str(text, std::path::Path::new("fuzz.toml")) {
        Ok(config) => touch(&(config.non_defaults(), config.settings())),
        Err(e) => touch(&e.to_string()),
    }
}
