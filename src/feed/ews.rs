//! The EWS change feed: SyncFolderHierarchy for the folder tree, SyncFolderItems pages of up to
//! 512 changes for a folder, batched GetItem for what a tracking request needs, UpdateItem for
//! the write-back. Every call goes through [`EwsClient`] (back-off gate, limiter, semaphore).

use super::{
    Action, Attachment, Cursor, Error, FeedChange, Fetch, Fetched, FolderEvent, FolderFeed,
    FolderNode, HierarchyPage, ItemRef, Page, Unreadable, WellKnown,
};
use crate::client::{self, EwsClient, Outcome};
use crate::ews::folder::{Folder, FolderShape};
use crate::ews::get_attachment::GetAttachment;
use crate::ews::get_folder::GetFolder;
use crate::ews::get_item::GetItem;
use crate::ews::item::{EmailAddress, Item, ItemShape, search_key_property};
use crate::ews::sync_folder_hierarchy::{FolderChange, SyncFolderHierarchy};
use crate::ews::sync_folder_items::{Change, MAX_CHANGES, SyncFolderItems};
use crate::ews::update_item::{ConflictResolution, ItemChange, Update, UpdateItem};
use crate::ews::{
    self, ChangeKey, DistinguishedFolder, FolderId, FolderSelector, Mailbox, Operation,
    ResponseCode, ResponseError, SyncState,
};
use crate::tracking::{Address, MessageInfo, normalise_message_id};

/// GetItem batch size: Exchange answers 10–25 ids per call comfortably.
pub const DEFAULT_BATCH: usize = 20;
/// The most ids one GetItem call carries.
pub const MAX_BATCH: usize = 100;

/// The EWS implementation of [`FolderFeed`].
#[derive(Clone, Debug)]
pub struct EwsFeed {
    client: EwsClient,
    page_size: u16,
    batch: usize,
}

impl EwsFeed {
    pub fn new(client: EwsClient) -> Self {
        Self {
            client,
            page_size: MAX_CHANGES,
            batch: DEFAULT_BATCH,
        }
    }

    /// Changes per SyncFolderItems page (1..=512) and ids per GetItem call (1..=100).
    pub fn with_sizes(mut self, page_size: u16, batch: usize) -> Self {
        self.page_size = page_size.clamp(1, MAX_CHANGES);
        self.batch = batch.clamp(1, MAX_BATCH);
        self
    }

    pub fn client(&self) -> &EwsClient {
        &self.client
    }

    async fn call<O: Operation>(
        &self,
        mailbox: &str,
        op: &O,
    ) -> Result<Vec<Result<O::Message, ResponseError>>, Error> {
        let response = self.client.send(&Mailbox(mailbox.to_owned()), op).await?;
        Ok(response.messages)
    }

    /// The single message of a one-message call.
    async fn call_one<O: Operation>(&self, mailbox: &str, op: &O) -> Result<O::Message, Error> {
        self.call(mailbox, op)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| incomplete(O::NAME, mailbox, "no response message"))?
            .map_err(|e| message_error(O::NAME, mailbox, &e))
    }
}

fn message_error(operation: &'static str, mailbox: &str, e: &ResponseError) -> Error {
    Error::Refused {
        operation,
        mailbox: mailbox.to_owned(),
        code: e.code.clone(),
        text: e.text.clone(),
        action: client::action(&Outcome::from_message(e)),
    }
}

/// True when a per-item error is really about the mailbox or the server — throttling, access,
/// a mailbox move — so the whole call should be retried later rather than the item set aside.
fn about_the_mailbox(e: &ResponseError, action: Action) -> bool {
    let busy = |c: &ResponseCode| *c == ResponseCode::ErrorServerBusy;
    busy(&e.code)
        || e.message_xml.inner_code().as_ref().is_some_and(busy)
        || matches!(
            action,
            Action::RetryAfter(_) | Action::ParkMailbox | Action::DisableMailbox
        )
}

fn incomplete(operation: &'static str, mailbox: &str, what: impl Into<String>) -> Error {
    Error::Incomplete {
        operation,
        mailbox: mailbox.to_owned(),
        what: what.into(),
    }
}

fn folder_id(f: &Folder) -> Option<String> {
    f.id.as_ref().map(|r| r.id.0.clone())
}

/// A mail folder of the tree; `None` for a folder without an id, and for one that holds no
/// mail (calendars, contacts, tasks, notes, configuration: a container class other than
/// `IPF.Note…`), so the feed reports mail folders only, as Graph's mailFolders do.
fn node(f: &Folder) -> Option<FolderNode> {
    let mail = f
        .folder_class
        .as_deref()
        .is_none_or(|c| c == "IPF.Note" || c.starts_with("IPF.Note."));
    if !mail {
        return None;
    }
    Some(FolderNode {
        id: folder_id(f)?,
        parent: f.parent_id.as_ref().map(|p| p.id.0.clone()),
        name: f.display_name.clone().unwrap_or_default(),
    })
}

fn item_ref(r: &ews::ItemRef) -> ItemRef {
    ItemRef::new(r.id.0.clone(), r.change_key.as_ref().map(|c| c.0.clone()))
}

fn ews_ref(r: &ItemRef) -> ews::ItemRef {
    ews::ItemRef {
        id: r.id.as_str().into(),
        change_key: r.version.as_deref().map(ChangeKey::from),
    }
}

fn address(a: &EmailAddress) -> Option<Address> {
    Some(Address {
        name: a.name.clone().filter(|n| !n.is_empty()),
        address: a.address.clone()?,
    })
}

/// The protocol-neutral view of a fetched message.
pub fn fetched(mailbox: &str, item: &Item, with_body: bool) -> Option<Fetched> {
    let id = item.item_id.as_ref()?;
    let internet_message_id = item
        .internet_message_id
        .as_deref()
        .and_then(normalise_message_id);
    let search_key = item
        .extended(&search_key_property())
        .and_then(|p| p.value.clone());
    let from = item
        .from
        .as_ref()
        .or(item.sender.as_ref())
        .and_then(address);
    let direction = super::direction(mailbox, from.as_ref());
    let identity = super::identity_source(
        mailbox,
        internet_message_id.as_deref(),
        search_key.as_deref(),
    );
    Some(Fetched {
        message: MessageInfo {
            internet_message_id,
            identity,
            item_id: id.id.0.clone(),
            change_key: id.change_key.as_ref().map(|c| c.0.clone()),
            conversation_id: item.conversation_id.clone(),
            subject: item.subject.clone(),
            from,
            to: item.to.iter().filter_map(address).collect(),
            cc: item.cc.iter().filter_map(address).collect(),
            sent_at: item.sent_at(),
            received_at: item.received_at(),
            size: item.size,
            has_attachments: item.has_attachments.unwrap_or(false),
            direction,
            body: with_body
                .then(|| item.body.as_ref().map(|b| b.text.clone()))
                .flatten(),
        },
        search_key,
        categories: item.categories.clone(),
    })
}

impl FolderFeed for EwsFeed {
    fn notifications(&self) -> Option<super::ews_notifications::EwsNotifications> {
        Some(super::ews_notifications::EwsNotifications::new(
            self.client.clone(),
        ))
    }

    fn paused_for(&self, mailbox: &str) -> Option<std::time::Duration> {
        self.client
            .gate()
            .back_off_remaining(&Mailbox(mailbox.to_owned()))
    }

    async fn well_known(&self, mailbox: &str) -> Result<WellKnown, Error> {
        let wanted = [
            DistinguishedFolder::MsgFolderRoot,
            DistinguishedFolder::Inbox,
            DistinguishedFolder::SentItems,
        ];
        let op = GetFolder {
            shape: FolderShape::for_resolution(),
            folders: wanted.iter().map(|d| FolderSelector::from(*d)).collect(),
        };
        let mut ids = Vec::with_capacity(3);
        for (message, which) in self.call(mailbox, &op).await?.into_iter().zip(wanted) {
            let message = message.map_err(|e| message_error(GetFolder::NAME, mailbox, &e))?;
            ids.push(message.folders.first().and_then(folder_id).ok_or_else(|| {
                incomplete(
                    GetFolder::NAME,
                    mailbox,
                    format!("no id for {}", which.as_str()),
                )
            })?);
        }
        let [top, inbox, sent]: [String; 3] = ids
            .try_into()
            .map_err(|_| incomplete(GetFolder::NAME, mailbox, "fewer folders than asked for"))?;
        Ok(WellKnown { top, inbox, sent })
    }

    async fn hierarchy(
        &self,
        mailbox: &str,
        cursor: Option<&Cursor>,
    ) -> Result<HierarchyPage, Error> {
        let op = SyncFolderHierarchy {
            shape: FolderShape::for_resolution(),
            root: None,
            sync_state: cursor.map(|c| SyncState(c.0.clone())),
        };
        let m = self.call_one(mailbox, &op).await?;
        let events = m
            .changes
            .iter()
            .filter_map(|c| match c {
                FolderChange::Create(f) | FolderChange::Update(f) => {
                    node(f).map(FolderEvent::Upsert)
                }
                FolderChange::Delete(r) => Some(FolderEvent::Removed(r.id.0.clone())),
            })
            .collect();
        Ok(HierarchyPage {
            events,
            cursor: Cursor(m.sync_state.map(|s| s.0).unwrap_or_default()),
            more: !m.includes_last_folder_in_range,
        })
    }

    async fn next_page(
        &self,
        mailbox: &str,
        folder: &str,
        cursor: Option<&Cursor>,
    ) -> Result<Page, Error> {
        let op = SyncFolderItems::page(
            FolderId::from(folder).into(),
            cursor.map(|c| SyncState(c.0.clone())),
            self.page_size,
        );
        let m = self.call_one(mailbox, &op).await?;
        let changes = m
            .changes
            .iter()
            .filter_map(|c| match c {
                Change::Create(item) => item.item_id.as_ref().map(|r| {
                    FeedChange::Added(ItemRef {
                        message_id: item.internet_message_id.clone(),
                        ..item_ref(r)
                    })
                }),
                Change::Update(item) => item
                    .item_id
                    .as_ref()
                    .map(|r| FeedChange::Changed(item_ref(r))),
                Change::Delete(r) => Some(FeedChange::Removed(r.id.0.clone())),
                Change::ReadFlagChange { item_id, .. } => {
                    Some(FeedChange::ReadFlag(item_id.id.0.clone()))
                }
                Change::Unreadable { index, reason } => {
                    Some(FeedChange::Unreadable(format!("change {index}: {reason}")))
                }
            })
            .collect();
        let cursor = m.sync_state.map(|s| Cursor(s.0)).ok_or_else(|| {
            incomplete(
                SyncFolderItems::NAME,
                mailbox,
                "the answer has no SyncState",
            )
        })?;
        Ok(Page {
            changes,
            cursor,
            more: !m.includes_last_item_in_range,
        })
    }

    async fn fetch(
        &self,
        mailbox: &str,
        items: &[ItemRef],
        with_body: bool,
    ) -> Result<Fetch, Error> {
        let mut out = Fetch::default();
        let mut chunks: std::collections::VecDeque<&[ItemRef]> = items.chunks(self.batch).collect();
        while let Some(chunk) = chunks.pop_front() {
            let op = GetItem {
                shape: ItemShape::for_tracking(with_body),
                // By id only: the version in hand may already be stale (a read flag change).
                items: chunk
                    .iter()
                    .map(|r| ews_ref(&ItemRef::new(r.id.clone(), None)))
                    .collect(),
            };
            let messages = match self.call(mailbox, &op).await {
                // An answer over the size cap: read the batch item by item, and keep an item
                // whose answer alone is too large as unreadable (R33), so one huge mail never
                // stalls its folder.
                Err(Error::Call(e)) if e.is_too_large() => {
                    match chunk {
                        [item] => out.unreadable.push(Unreadable {
                            item: item.clone(),
                            error: Error::Call(e),
                        }),
                        _ => chunk.chunks(1).rev().for_each(|one| chunks.push_front(one)),
                    }
                    continue;
                }
                other => other?,
            };
            // One message per id, in request order. A server that answers fewer (one error
            // for the whole batch) or more has not said what became of each item: the call
            // failed, and the pass is tried again from the same cursor rather than skip any.
            if messages.len() != chunk.len() {
                return Err(incomplete(
                    GetItem::NAME,
                    mailbox,
                    format!(
                        "{} response messages for {} item ids",
                        messages.len(),
                        chunk.len()
                    ),
                ));
            }
            for (message, item) in messages.into_iter().zip(chunk) {
                match message {
                    Ok(m) => out.fetched.extend(
                        m.items
                            .iter()
                            .filter_map(|i| fetched(mailbox, i, with_body)),
                    ),
                    // Moved on since the sync: it will show up in the folder it went to.
                    Err(e) if e.code == ResponseCode::ErrorItemNotFound => {}
                    Err(e) => {
                        let error = message_error(GetItem::NAME, mailbox, &e);
                        if about_the_mailbox(&e, error.action()) {
                            return Err(error);
                        }
                        out.unreadable.push(Unreadable {
                            item: item.clone(),
                            error,
                        });
                    }
                }
            }
        }
        Ok(out)
    }

    async fn attachments(
        &self,
        mailbox: &str,
        item_id: &str,
        max_bytes: u64,
    ) -> Result<Vec<Attachment>, Error> {
        let op = GetItem {
            shape: ItemShape {
                properties: vec!["item:Attachments".into()],
                ..ItemShape::default()
            },
            items: vec![ews_ref(&ItemRef::new(item_id, None))],
        };
        let listed = self.call_one(mailbox, &op).await?;
        let files: Vec<&ews::get_attachment::Attachment> =
            listed.items.iter().flat_map(|i| &i.attachments).collect();
        let wanted: Vec<String> = files
            .iter()
            .filter(|a| a.kind == "FileAttachment" && a.size.unwrap_or(0) <= max_bytes)
            .map(|a| a.id.clone())
            .collect();
        let mut contents = std::collections::HashMap::new();
        if !wanted.is_empty() {
            let get = GetAttachment { ids: wanted };
            for message in self.call(mailbox, &get).await? {
                let m = message.map_err(|e| message_error(GetAttachment::NAME, mailbox, &e))?;
                contents.extend(m.attachments.into_iter().map(|a| (a.id, a.content)));
            }
        }
        Ok(files
            .into_iter()
            .map(|a| Attachment {
                name: a.name.clone().unwrap_or_default(),
                content_type: a.content_type.clone(),
                size: a.size.unwrap_or(0),
                content: contents.remove(&a.id).flatten(),
            })
            .collect())
    }

    async fn mark(
        &self,
        mailbox: &str,
        items: &[(ItemRef, Vec<String>)],
    ) -> Result<Vec<Result<ItemRef, Error>>, Error> {
        let op = UpdateItem {
            conflict_resolution: ConflictResolution::AutoResolve,
            changes: items
                .iter()
                .map(|(item, categories)| ItemChange {
                    item: ews_ref(item),
                    updates: vec![Update::SetCategories(categories.clone())],
                })
                .collect(),
        };
        let answers = self.call(mailbox, &op).await?;
        if answers.len() != items.len() {
            let what = format!("{} answers for {} items", answers.len(), items.len());
            return Err(incomplete(UpdateItem::NAME, mailbox, what));
        }
        Ok(answers
            .into_iter()
            .map(|answer| {
                let m = answer.map_err(|e| message_error(UpdateItem::NAME, mailbox, &e))?;
                m.items
                    .first()
                    .and_then(|i| i.item_id.as_ref())
                    .map(item_ref)
                    .ok_or_else(|| {
                        incomplete(UpdateItem::NAME, mailbox, "the answer names no item")
                    })
            })
            .collect())
    }
}
