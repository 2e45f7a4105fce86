//! `attachment`: a message's attachments as Graph lists them. A `fileAttachment` carries its
//! file as `contentBytes` (Base64) when read by id; an `itemAttachment` (an attached mail) and a
//! `referenceAttachment` (a link) have none. The list is asked for without content, so a file
//! over the size cap is never downloaded.
//! <https://learn.microsoft.com/graph/api/message-list-attachments>
//! <https://learn.microsoft.com/graph/api/resources/fileattachment>

use serde::{Deserialize, Serialize};

/// The `@odata.type` of a file attachment.
pub const FILE: &str = "#microsoft.graph.fileAttachment";

/// The base `attachment` properties the list selects (no `contentBytes`).
pub const SELECT: &str = "id,name,contentType,size,isInline";

/// One attachment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    #[serde(rename = "@odata.type", default)]
    pub odata_type: String,
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub content_type: Option<String>,
    /// Bytes.
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub is_inline: Option<bool>,
    /// Base64; file attachments only.
    #[serde(default)]
    pub content_bytes: Option<String>,
}

impl Attachment {
    pub fn is_file(&self) -> bool {
        self.odata_type.eq_ignore_ascii_case(FILE)
    }
}

/// A page of `GET /users/{id}/messages/{id}/attachments`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentList {
    #[serde(default)]
    pub value: Vec<Attachment>,
    #[serde(rename = "@odata.nextLink", default)]
    pub next_link: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_told_from_an_attached_mail() {
        let list: AttachmentList = serde_json::from_str(
            r##"{"value":[
                {"@odata.type":"#microsoft.graph.fileAttachment","id":"AAMkF","name":"offer.pdf",
                 "contentType":"application/pdf","size":2048,"isInline":false},
                {"@odata.type":"#microsoft.graph.itemAttachment","id":"AAMkI","name":"Fwd: offer",
                 "contentType":null,"size":9000,"isInline":false}]}"##,
        )
        .unwrap();
        assert!(list.value[0].is_file() && !list.value[1].is_file());
        assert_eq!(list.value[0].size, Some(2048));
        assert_eq!(list.next_link, None);
    }
}
