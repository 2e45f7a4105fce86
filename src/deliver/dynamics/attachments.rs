//! Attachments as activitymimeattachment rows of the email activity (optional, off by default;
//! server-side sync's "promote attachments"): each file of the mail up to the configured size
//! is read from the mailbox and written as Base64 under the email, before it is completed (a
//! completed email is read-only). Files already written by an interrupted try are not written
//! again; a file over the size, an attached mail, or a mail that moved before its attachments
//! could be read is noted in the item's history instead.
//! <https://learn.microsoft.com/en-us/power-apps/developer/data-platform/reference/entities/activitymimeattachment>

use super::DynamicsSink;
use super::api::{API_PATH, Call, query_path};
use super::metadata::rows;
use super::outcome::{Doing, outcome};
use crate::deliver::policy::DeliveryError;
use crate::feed::{self, Attachment, FolderFeed};
use crate::tracking::TrackingRequest;
use serde_json::json;
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Dataverse's default `maxuploadfilesize` (5 MB) applies to the Base64 text: about this many
/// bytes of file.
pub const DEFAULT_MAX_BYTES: u64 = 5_242_880 / 4 * 3;

/// `attachmentinvalidfilesize`: over the organisation's upload limit.
const TOO_BIG: &str = "0x80044a02";

/// Where the sink reads attachments from: the mailbox (a feed).
pub trait AttachmentSource: Send + Sync + 'static {
    fn attachments<'a>(
        &'a self,
        mailbox: &'a str,
        item_id: &'a str,
        max_bytes: u64,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Attachment>, feed::Error>> + Send + 'a>>;
}

impl<F: FolderFeed> AttachmentSource for F {
    fn attachments<'a>(
        &'a self,
        mailbox: &'a str,
        item_id: &'a str,
        max_bytes: u64,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Attachment>, feed::Error>> + Send + 'a>> {
        Box::pin(FolderFeed::attachments(self, mailbox, item_id, max_bytes))
    }
}

/// Copying attachments: from where, and up to which size.
pub struct Attachments {
    pub source: Arc<dyn AttachmentSource>,
    pub max_bytes: u64,
}

impl DynamicsSink {
    /// Writes the mail's attachments under the open email `id`.
    pub(super) async fn attach(
        &self,
        request: &TrackingRequest,
        id: &str,
        caller: Option<&str>,
    ) -> Result<(), DeliveryError> {
        let Some(copy) = &self.attachments else {
            return Ok(());
        };
        if !request.message.has_attachments {
            return Ok(());
        }
        let m = &request.message;
        let files = match copy
            .source
            .attachments(&request.mailbox, &m.item_id, copy.max_bytes)
            .await
        {
            Ok(files) => files,
            // Moved since it was read (a new ItemId), or unreadable: the mail is written without.
            Err(e) if e.action() == crate::feed::Action::FailItem => {
                self.note(request, format!("Dataverse: attachments not copied: {e}"));
                return Ok(());
            }
            Err(e) => {
                return Err(DeliveryError::Transient {
                    reason: format!("reading the attachments: {e}"),
                    retry_after: None,
                });
            }
        };
        let doing = Doing {
            what: "writing an attachment",
            regarding: None,
            acting_for: caller.map(|_| request.mailbox.as_str()),
        };
        let done = self.written(id).await.map_err(|e| outcome(e, &doing))?;
        for file in files {
            if done.contains(&file.name) {
                continue;
            }
            self.write_one(request, id, caller, &file, copy.max_bytes, &doing)
                .await?;
        }
        Ok(())
    }

    /// The file names already written under the email.
    async fn written(&self, id: &str) -> Result<HashSet<String>, super::api::ApiError> {
        let path = query_path(
            "activitymimeattachments",
            "filename",
            &format!("_objectid_value eq {id}"),
            None,
        );
        let body = self.api.send(Call::get(path)).await?.body;
        Ok(rows(&body)
            .filter_map(|r| r["filename"].as_str().map(str::to_owned))
            .collect())
    }

    async fn write_one(
        &self,
        request: &TrackingRequest,
        id: &str,
        caller: Option<&str>,
        file: &Attachment,
        max_bytes: u64,
        doing: &Doing<'_>,
    ) -> Result<(), DeliveryError> {
        let Some(content) = &file.content else {
            self.note(
                request,
                format!(
                    "Dataverse: attachment {} ({} bytes) not copied: larger than attachment_max_bytes ({max_bytes}), or not a file",
                    file.name, file.size
                ),
            );
            return Ok(());
        };
        let body = json!({
            "filename": file.name,
            "mimetype": file.content_type.as_deref().unwrap_or("application/octet-stream"),
            "body": content,
            // `objectid` targets the activity table, with the activity's own table named.
            "objecttypecode": "email",
            "objectid_activitypointer@odata.bind": format!("/activitypointers({id})"),
        });
        let call = Call::post(format!("{API_PATH}/activitymimeattachments"), &body, caller);
        match self.api.send(call).await {
            Ok(_) => Ok(()),
            Err(e) if e.code().eq_ignore_ascii_case(TOO_BIG) => {
                self.note(
                    request,
                    format!(
                        "Dataverse: attachment {} ({} bytes) not copied: over the organisation's upload limit",
                        file.name, file.size
                    ),
                );
                Ok(())
            }
            Err(e) => Err(outcome(e, doing)),
        }
    }
}
