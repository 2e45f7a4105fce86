//! Microsoft Graph (v1.0), the mail part foldertrack uses, as data: paths and query options,
//! the JSON of folders, messages, delta pages, `$batch`, errors and change notifications, with
//! no I/O. The Exchange Online counterpart of [`crate::ews`]; the transport is
//! [`crate::client::graph`], the change feed [`crate::feed::graph`].
//!
//! References: <https://learn.microsoft.com/graph/api/resources/mail-api-overview>,
//! <https://learn.microsoft.com/graph/delta-query-messages>,
//! <https://learn.microsoft.com/graph/json-batching>,
//! <https://learn.microsoft.com/graph/throttling-limits#outlook-service-limits>.

pub mod attachment;
pub mod batch;
pub mod delta;
pub mod error;
pub mod folder;
pub mod message;
pub mod subscription;

use std::time::Duration;

/// The Graph endpoint foldertrack talks to by default.
pub const DEFAULT_BASE: &str = "https://graph.microsoft.com/v1.0";
/// The OAuth scope of app-only Graph tokens: every application permission the admin consented.
pub const SCOPE: &str = "https://graph.microsoft.com/.default";
/// The application permission foldertrack needs: delta, read and the category write-back.
pub const PERMISSION: &str = "Mail.ReadWrite";
/// At most this many requests in one `$batch`.
pub const MAX_BATCH: usize = 20;
/// Outlook's limits per app and mailbox: requests in flight at once…
pub const MAILBOX_CONCURRENCY: usize = 4;
/// …and requests per window (10,000 per 10 minutes).
pub const MAILBOX_REQUESTS: u32 = 10_000;
pub const MAILBOX_WINDOW: Duration = Duration::from_secs(600);
/// Items per delta page when the request asks for none (Graph's own default).
pub const DEFAULT_PAGE: u32 = 10;
/// What foldertrack asks per delta page: large pages, few calls (Graph documents no maximum).
pub const PAGE_SIZE: u32 = 200;

/// The `Prefer` preference that makes message ids survive moves inside the mailbox. It holds
/// for the one request that carries it, so every request (and every `$batch` item) sends it.
pub const IMMUTABLE_ID: &str = "IdType=\"ImmutableId\"";
/// The `Prefer` preference for plain-text bodies (EWS's `BodyType Text`).
pub const TEXT_BODY: &str = "outlook.body-content-type=\"text\"";

/// The `Prefer` header of a request: immutable ids always, a page size for delta queries, and
/// text bodies when a body is asked for.
pub fn prefer(page_size: Option<u32>, text_body: bool) -> String {
    let mut out = IMMUTABLE_ID.to_owned();
    if let Some(n) = page_size {
        out += &format!(", odata.maxpagesize={n}");
    }
    if text_body {
        out += ", ";
        out += TEXT_BODY;
    }
    out
}

/// Percent-encodes one path segment (a mailbox address or an id): everything but unreserved
/// characters and `@`, so `/`, `+` and `=` in an id never change the path.
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'@') {
            out.push(char::from(b));
        } else {
            out += &format!("%{b:02X}");
        }
    }
    out
}

/// Percent-encodes a query value (`$select` lists, `$filter` expressions).
pub fn query_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b',' | b'$') {
            out.push(char::from(b));
        } else {
            out += &format!("%{b:02X}");
        }
    }
    out
}

/// `/users/{mailbox}`: every mail path starts here (app-only tokens have no `/me`).
pub fn user(mailbox: &str) -> String {
    format!("/users/{}", segment(mailbox))
}

/// `/users/{mailbox}/mailFolders/{folder}`; `folder` is an id or a well-known name.
pub fn folder_path(mailbox: &str, folder: &str) -> String {
    format!("{}/mailFolders/{}", user(mailbox), segment(folder))
}

/// `/users/{mailbox}/messages/{id}`
pub fn message_path(mailbox: &str, id: &str) -> String {
    format!("{}/messages/{}", user(mailbox), segment(id))
}

/// The first request of a message delta round of `folder`: only what tracking needs.
pub fn messages_delta(mailbox: &str, folder: &str) -> String {
    format!(
        "{}/messages/delta?$select={}",
        folder_path(mailbox, folder),
        query_value(message::DELTA_SELECT)
    )
}

/// The first request of a folder delta round over the whole mailbox.
pub fn folders_delta(mailbox: &str) -> String {
    format!(
        "{}/mailFolders/delta?$select={}",
        user(mailbox),
        query_value(folder::SELECT)
    )
}

/// One page of a folder's subfolders.
pub fn child_folders(mailbox: &str, folder: &str, page_size: u32) -> String {
    format!(
        "{}/childFolders?$select={}&$top={page_size}",
        folder_path(mailbox, folder),
        query_value(folder::SELECT)
    )
}

/// A message's attachments, without their content.
pub fn attachments(mailbox: &str, id: &str) -> String {
    format!(
        "{}/attachments?$select={}",
        message_path(mailbox, id),
        query_value(attachment::SELECT)
    )
}

/// One attachment with its content (`contentBytes` for a file).
pub fn attachment(mailbox: &str, id: &str, attachment_id: &str) -> String {
    format!(
        "{}/attachments/{}",
        message_path(mailbox, id),
        segment(attachment_id)
    )
}

/// One message with what a tracking request needs (and its body when asked for).
pub fn message_get(mailbox: &str, id: &str, with_body: bool) -> String {
    let mut select = message::DELTA_SELECT.to_owned();
    if with_body {
        select += ",body";
    }
    format!(
        "{}?$select={}&$expand={}",
        message_path(mailbox, id),
        query_value(&select),
        query_value(&message::expand_search_key())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_encode_what_would_change_them() {
        assert_eq!(
            folder_path("alice@example.com", "AAMk/a+b=="),
            "/users/alice@example.com/mailFolders/AAMk%2Fa%2Bb%3D%3D"
        );
        assert!(
            messages_delta("a@x", "inbox")
                .starts_with("/users/a@x/mailFolders/inbox/messages/delta?$select=changeKey,")
        );
        assert!(
            message_get("a@x", "id", true).contains("%20eq%20%27Binary%200x300B%27"),
            "{}",
            message_get("a@x", "id", true)
        );
    }

    #[test]
    fn every_request_asks_for_immutable_ids() {
        assert_eq!(prefer(None, false), "IdType=\"ImmutableId\"");
        assert_eq!(
            prefer(Some(200), true),
            "IdType=\"ImmutableId\", odata.maxpagesize=200, outlook.body-content-type=\"text\""
        );
    }
}
