//! `message`: the properties a tracking request needs, as Graph sends them. Ids are immutable
//! ids (see [`super::IMMUTABLE_ID`]); `changeKey` is the version. A delta round carries these
//! fields for every message it reports, so tracking needs no second call except for a body or
//! the search key of a message without an `internetMessageId`.
//! <https://learn.microsoft.com/graph/api/resources/message>

use serde::{Deserialize, Serialize};

/// The `$select` of a message delta, and of a message read: the envelope of a tracking request.
/// (`$expand` on delta queries fails on the service, so the search key is read by id.)
pub const DELTA_SELECT: &str = "changeKey,parentFolderId,internetMessageId,subject,from,sender,\
toRecipients,ccRecipients,sentDateTime,receivedDateTime,hasAttachments,conversationId,categories";

/// PR_SEARCH_KEY (binary, 0x300B) as a Graph extended property id: the identity of last
/// resort when a message has no `internetMessageId` (R18).
pub const SEARCH_KEY: &str = "Binary 0x300B";

/// `$expand` that brings the search key along with a message.
pub fn expand_search_key() -> String {
    format!("singleValueExtendedProperties($filter=id eq '{SEARCH_KEY}')")
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailAddress {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
}

/// `{"emailAddress": {"name", "address"}}`
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recipient {
    #[serde(default)]
    pub email_address: EmailAddress,
}

/// `{"contentType": "text"|"html", "content"}`
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemBody {
    #[serde(default)]
    pub content_type: Option<String>,
    #[serde(default)]
    pub content: String,
}

/// `{"id": "Binary 0x300b", "value": "<base64>"}`
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtendedProperty {
    pub id: String,
    #[serde(default)]
    pub value: Option<String>,
}

/// A message as a delta page or a read returns it. Absent properties stay `None`: a read-flag
/// change arrives as `{id, isRead, parentFolderId}` only.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: String,
    #[serde(default)]
    pub change_key: Option<String>,
    #[serde(default)]
    pub parent_folder_id: Option<String>,
    #[serde(default)]
    pub is_read: Option<bool>,
    #[serde(default)]
    pub internet_message_id: Option<String>,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub from: Option<Recipient>,
    #[serde(default)]
    pub sender: Option<Recipient>,
    #[serde(default)]
    pub to_recipients: Option<Vec<Recipient>>,
    #[serde(default)]
    pub cc_recipients: Option<Vec<Recipient>>,
    #[serde(default)]
    pub sent_date_time: Option<String>,
    #[serde(default)]
    pub received_date_time: Option<String>,
    #[serde(default)]
    pub has_attachments: Option<bool>,
    #[serde(default)]
    pub conversation_id: Option<String>,
    #[serde(default)]
    pub categories: Option<Vec<String>>,
    #[serde(default)]
    pub body: Option<ItemBody>,
    #[serde(default)]
    pub single_value_extended_properties: Option<Vec<ExtendedProperty>>,
}

impl Message {
    /// True for the partial object of a read-flag change: none of the selected envelope
    /// properties came, only the id and the flag.
    pub fn is_read_flag_only(&self) -> bool {
        self.is_read.is_some()
            && self.received_date_time.is_none()
            && self.subject.is_none()
            && self.internet_message_id.is_none()
            && self.categories.is_none()
    }

    /// The search key, when it was expanded.
    pub fn search_key(&self) -> Option<&str> {
        self.single_value_extended_properties
            .iter()
            .flatten()
            .find(|p| p.id.eq_ignore_ascii_case(SEARCH_KEY))
            .and_then(|p| p.value.as_deref())
    }
}

/// The body of the write-back: the categories as a whole (Graph replaces the list).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoriesPatch {
    pub categories: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_flag_change_is_told_from_a_full_message() {
        let partial: Message = serde_json::from_str(
            r#"{"@odata.etag":"W/\"CQ\"","id":"AAMk1","isRead":true,"parentFolderId":"AQMk"}"#,
        )
        .unwrap();
        assert!(partial.is_read_flag_only());
        let full: Message = serde_json::from_str(
            r#"{"id":"AAMk1","changeKey":"CQ","subject":"Quote","receivedDateTime":"2026-11-24T09:30:00Z",
                "internetMessageId":"<a@b>","from":{"emailAddress":{"name":"B","address":"b@c"}},
                "toRecipients":[],"categories":[],
                "singleValueExtendedProperties":[{"id":"Binary 0x300b","value":"AAEC"}]}"#,
        )
        .unwrap();
        assert!(!full.is_read_flag_only());
        assert_eq!(full.search_key(), Some("AAEC"));
        assert_eq!(
            full.from.unwrap().email_address.address.as_deref(),
            Some("b@c")
        );
    }
}
