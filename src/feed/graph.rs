//! The Microsoft Graph change feed (Exchange Online): a folder's changes from
//! `messages/delta`, the folder tree listed with `childFolders` and kept current with
//! `mailFolders/delta`, details by `$batch`, the write-back as PATCHes in a `$batch`. Every call
//! goes through [`GraphClient`] (the shared call gate with Graph's mailbox limits).
//!
//! How Graph's documented behaviour maps onto the feed:
//! - Ids are immutable ids (requested on every call), so a message keeps its id when it moves
//!   inside the mailbox. Nothing relies on it: identity is the InternetMessageId (R18), and a
//!   message whose id changed anyway (an archive mailbox, an export and import) is simply an
//!   arrival whose identity is already known.
//! - A delta round reports created and updated messages alike, as they are now, with the
//!   envelope of the `$select`: every such entry is [`FeedChange::Added`] carrying its details
//!   (the watcher's seen set tells a new message from an edited one), so tracking it costs no
//!   second call. A read-flag change comes as a partial object and is [`FeedChange::ReadFlag`];
//!   `@removed` (reason `deleted` or `changed`) is [`FeedChange::Removed`]. Duplicates and
//!   replays in a round are harmless for the same reason.
//! - The cursor is the `@odata.nextLink` or `@odata.deltaLink` as Graph sent it, kept where EWS
//!   keeps its SyncState; a link that does not point under the configured Graph root is never
//!   followed (the folder is listed again instead).
//! - The first listing of the folder tree walks `childFolders` from the top of the mailbox
//!   (documented to be complete), then starts a `mailFolders/delta` round for what changes
//!   later. That the folder delta covers nested folders is observed, not documented.
//! - A message without an `internetMessageId` is read by id for its search key (PR_SEARCH_KEY),
//!   since `$expand` fails on delta queries; so is every message whose body is delivered.
//! - Message size is not a Graph property and is left out.

use super::{
    Attachment, Cursor, Error, FeedChange, Fetch, Fetched, FolderEvent, FolderFeed, FolderNode,
    HierarchyPage, ItemRef, Page, Unreadable, WellKnown,
};
use crate::client::graph::{Answer, Request, item_error};
use crate::client::{Action, GraphClient, Target};
use crate::ews::Mailbox;
use crate::graph::attachment::{Attachment as GraphAttachment, AttachmentList};
use crate::graph::batch::{BatchAnswer, BatchItem};
use crate::graph::delta::{self, Entry};
use crate::graph::folder::{self, FolderList, MailFolder};
use crate::graph::message::{CategoriesPatch, Message, Recipient};
use crate::graph::{self as protocol, MAX_BATCH};
use crate::tracking::{Address, MessageInfo, normalise_message_id};
use std::sync::Arc;
use std::time::Duration;

/// Folders per `childFolders` page.
const FOLDER_PAGE: u32 = 100;
/// Rounds of a `$batch` whose items were throttled before the fetch gives up for this pass.
const THROTTLED_ROUNDS: usize = 3;

/// The Graph implementation of [`FolderFeed`].
#[derive(Clone, Debug)]
pub struct GraphFeed {
    client: GraphClient,
    page_size: u32,
    batch: usize,
}

impl GraphFeed {
    pub fn new(client: GraphClient) -> Self {
        Self {
            client,
            page_size: protocol::PAGE_SIZE,
            batch: MAX_BATCH,
        }
    }

    /// Messages per delta page (asked for with `Prefer: odata.maxpagesize`) and requests per
    /// `$batch` (1..=20).
    pub fn with_sizes(mut self, page_size: u32, batch: usize) -> Self {
        self.page_size = page_size.max(1);
        self.batch = batch.clamp(1, MAX_BATCH);
        self
    }

    pub fn client(&self) -> &GraphClient {
        &self.client
    }

    async fn get(
        &self,
        mailbox: &str,
        operation: &'static str,
        target: Target,
        url: url::Url,
        page_size: Option<u32>,
    ) -> Result<Answer, Error> {
        let request = Request::get(operation, target, url, protocol::prefer(page_size, false));
        Ok(self.client.send(&Mailbox::from(mailbox), request).await?)
    }

    /// The URL a cursor stands for: a link Graph sent, under the configured root.
    fn follow(&self, mailbox: &str, cursor: &Cursor) -> Result<url::Url, Error> {
        self.client.link(&cursor.0).ok_or_else(|| Error::Cursor {
            mailbox: mailbox.to_owned(),
            why: "it is not a link under the configured Graph root".into(),
        })
    }

    /// The next page of a listing: its `@odata.nextLink`, which must be under the root.
    fn next_link(&self, answer: &Answer, link: Option<&str>) -> Result<Option<url::Url>, Error> {
        match link.map(|l| self.client.link(l)) {
            Some(Some(next)) => Ok(Some(next)),
            Some(None) => Err(answer.malformed("a nextLink outside the Graph root").into()),
            None => Ok(None),
        }
    }

    /// Every folder below the top of the mailbox, listed with `childFolders` (paged).
    async fn walk(&self, mailbox: &str) -> Result<Vec<FolderEvent>, Error> {
        let mut events = Vec::new();
        let mut parents = vec![folder::MSG_FOLDER_ROOT.to_owned()];
        while let Some(parent) = parents.pop() {
            let path = protocol::child_folders(mailbox, &parent, FOLDER_PAGE);
            let mut url = self.client.url(&path);
            loop {
                let answer = self
                    .get(
                        mailbox,
                        "mailFolders.childFolders",
                        Target::Folder,
                        url,
                        None,
                    )
                    .await?;
                let list: FolderList = answer.json()?;
                for f in list.value {
                    if f.child_folder_count.unwrap_or(1) > 0 {
                        parents.push(f.id.clone());
                    }
                    events.push(FolderEvent::Upsert(node(f)));
                }
                match self.next_link(&answer, list.next_link.as_deref())? {
                    Some(next) => url = next,
                    None => break,
                }
            }
        }
        Ok(events)
    }

    /// Reads a batch of messages by id into `out`; those gone (moved on, deleted) are left
    /// out, those the server cannot read are [`Fetch::unreadable`]; an error about the mailbox
    /// (access, a mailbox move, throttling that outlasts the retries) fails the call.
    async fn read(
        &self,
        mailbox: &str,
        items: &[&ItemRef],
        with_body: bool,
        out: &mut Fetch,
    ) -> Result<(), Error> {
        let mut pending: Vec<&ItemRef> = items.to_vec();
        for round in 0..THROTTLED_ROUNDS {
            let prefer = protocol::prefer(None, with_body);
            let batch = pending
                .iter()
                .enumerate()
                .map(|(n, item)| {
                    let url = protocol::message_get(mailbox, &item.id, with_body);
                    BatchItem::get(n, url, &prefer)
                })
                .collect();
            let answers = self
                .client
                .batch(&Mailbox::from(mailbox), "messages.get", Target::Item, batch)
                .await?;
            let mut throttled = Vec::new();
            for (item, a) in pending.iter().zip(&answers) {
                match read_one(mailbox, a, with_body) {
                    Read::Found(f) => out.fetched.push(*f),
                    Read::Gone => {}
                    Read::Unreadable(error) => out.unreadable.push(Unreadable {
                        item: ItemRef::clone(item),
                        error,
                    }),
                    Read::AboutTheMailbox(e) => return Err(e),
                    Read::Throttled(e) if round + 1 == THROTTLED_ROUNDS => return Err(e),
                    Read::Throttled(_) => throttled.push(*item),
                }
            }
            if throttled.is_empty() {
                break;
            }
            // The client held the mailbox for the longest Retry-After: the next round waits.
            pending = throttled;
        }
        Ok(())
    }
}

/// What became of one message read in a batch.
enum Read {
    Found(Box<Fetched>),
    /// Moved on or deleted since the delta: it shows up where it went.
    Gone,
    Throttled(Error),
    /// An error of this message's own.
    Unreadable(Error),
    /// An error about the mailbox (access, a move): the whole fetch fails.
    AboutTheMailbox(Error),
}

fn read_one(mailbox: &str, a: &BatchAnswer, with_body: bool) -> Read {
    let call = crate::client::Call {
        mailbox: Mailbox::from(mailbox),
        operation: "messages.get",
    };
    if (200..300).contains(&a.status) {
        let message = a
            .body
            .clone()
            .and_then(|b| serde_json::from_value::<Message>(b).ok());
        return match message.and_then(|m| fetched(mailbox, &m, with_body)) {
            Some(f) => Read::Found(Box::new(f)),
            None => Read::Unreadable(
                crate::client::Error::GraphMalformed {
                    call,
                    what: format!("batch item {}: not a message", a.id),
                }
                .into(),
            ),
        };
    }
    let error = item_error(&call, a, Target::Item);
    match error.action() {
        Action::FailItem => Read::Gone,
        _ if matches!(a.status, 429 | 503) && error.action() != Action::ParkMailbox => {
            Read::Throttled(error.into())
        }
        Action::RetryAfter(_) | Action::ParkMailbox | Action::DisableMailbox => {
            Read::AboutTheMailbox(error.into())
        }
        _ => Read::Unreadable(error.into()),
    }
}

/// Whether an attachment's content is read: a file, not over `max_bytes`.
fn wanted(a: &GraphAttachment, max_bytes: u64) -> bool {
    a.is_file() && a.size.unwrap_or(0) <= max_bytes
}

fn attachment(a: GraphAttachment, content: Option<String>) -> Attachment {
    Attachment {
        name: a.name.unwrap_or_default(),
        content_type: a.content_type,
        size: a.size.unwrap_or(0),
        content,
    }
}

fn node(f: MailFolder) -> FolderNode {
    FolderNode {
        id: f.id,
        parent: f.parent_folder_id,
        name: f.display_name.unwrap_or_default(),
    }
}

fn address(r: &Recipient) -> Option<Address> {
    Some(Address {
        name: r.email_address.name.clone().filter(|n| !n.is_empty()),
        address: r.email_address.address.clone()?,
    })
}

fn time(text: &Option<String>) -> Option<jiff::Timestamp> {
    text.as_deref().and_then(|t| t.parse().ok())
}

/// The protocol-neutral view of a message; `None` for a partial object (a read-flag change).
pub fn fetched(mailbox: &str, m: &Message, with_body: bool) -> Option<Fetched> {
    if m.is_read_flag_only() {
        return None;
    }
    let internet_message_id = m
        .internet_message_id
        .as_deref()
        .and_then(normalise_message_id);
    let search_key = m.search_key().map(str::to_owned);
    let from = m.from.as_ref().or(m.sender.as_ref()).and_then(address);
    let direction = super::direction(mailbox, from.as_ref());
    let identity = super::identity_source(
        mailbox,
        internet_message_id.as_deref(),
        search_key.as_deref(),
    );
    let recipients = |list: &Option<Vec<Recipient>>| -> Vec<Address> {
        list.iter().flatten().filter_map(address).collect()
    };
    Some(Fetched {
        message: MessageInfo {
            internet_message_id,
            identity,
            item_id: m.id.clone(),
            change_key: m.change_key.clone(),
            conversation_id: m.conversation_id.clone(),
            subject: m.subject.clone(),
            from,
            to: recipients(&m.to_recipients),
            cc: recipients(&m.cc_recipients),
            sent_at: time(&m.sent_date_time),
            received_at: time(&m.received_date_time),
            size: None,
            has_attachments: m.has_attachments.unwrap_or(false),
            direction,
            body: with_body
                .then(|| m.body.as_ref().map(|b| b.content.clone()))
                .flatten(),
        },
        search_key,
        categories: m.categories.clone().unwrap_or_default(),
    })
}

/// A delta entry as a change; full messages carry their details when they have an identity.
fn change(mailbox: &str, entry: Entry<Message>) -> FeedChange {
    match entry {
        Entry::Removed { id, .. } => FeedChange::Removed(id),
        Entry::Unreadable(why) => FeedChange::Unreadable(why),
        Entry::Item(m) if m.is_read_flag_only() => FeedChange::ReadFlag(m.id),
        Entry::Item(m) => FeedChange::Added(ItemRef {
            details: fetched(mailbox, &m, false)
                .filter(|f| f.message.internet_message_id.is_some())
                .map(Arc::new),
            id: m.id,
            version: m.change_key,
            message_id: None,
        }),
    }
}

/// The link to go on with and whether the round has more; neither link is an incomplete page.
fn next(
    mailbox: &str,
    operation: &'static str,
    next_link: Option<String>,
    delta_link: Option<String>,
) -> Result<(Cursor, bool), Error> {
    match (next_link, delta_link) {
        (Some(next), _) => Ok((Cursor(next), true)),
        (None, Some(delta)) => Ok((Cursor(delta), false)),
        (None, None) => Err(Error::Incomplete {
            operation,
            mailbox: mailbox.to_owned(),
            what: "the page has neither a nextLink nor a deltaLink".into(),
        }),
    }
}

impl FolderFeed for GraphFeed {
    fn graph_subscriptions(&self) -> Option<super::graph_subscriptions::GraphSubscriptions> {
        Some(super::graph_subscriptions::GraphSubscriptions::new(
            self.client.clone(),
        ))
    }

    fn paused_for(&self, mailbox: &str) -> Option<Duration> {
        self.client
            .gate()
            .back_off_remaining(&Mailbox::from(mailbox))
    }

    async fn well_known(&self, mailbox: &str) -> Result<WellKnown, Error> {
        let names = [folder::MSG_FOLDER_ROOT, folder::INBOX, folder::SENT_ITEMS];
        let prefer = protocol::prefer(None, false);
        let items = names
            .iter()
            .enumerate()
            .map(|(n, name)| {
                let url = format!("{}?$select=id", protocol::folder_path(mailbox, name));
                BatchItem::get(n, url, &prefer)
            })
            .collect();
        let call = crate::client::Call {
            mailbox: Mailbox::from(mailbox),
            operation: "mailFolders.get",
        };
        let answers = self
            .client
            .batch(&call.mailbox, call.operation, Target::Mailbox, items)
            .await?;
        let mut ids = Vec::with_capacity(names.len());
        for (a, name) in answers.iter().zip(names) {
            if !(200..300).contains(&a.status) {
                return Err(item_error(&call, a, Target::Mailbox).into());
            }
            let id = a.body.as_ref().and_then(|b| b.get("id")?.as_str());
            ids.push(id.map(str::to_owned).ok_or_else(|| Error::Incomplete {
                operation: call.operation,
                mailbox: mailbox.to_owned(),
                what: format!("no id for {name}"),
            })?);
        }
        let [top, inbox, sent]: [String; 3] = ids.try_into().map_err(|_| Error::Incomplete {
            operation: call.operation,
            mailbox: mailbox.to_owned(),
            what: "fewer folders than asked for".into(),
        })?;
        Ok(WellKnown { top, inbox, sent })
    }

    async fn hierarchy(
        &self,
        mailbox: &str,
        cursor: Option<&Cursor>,
    ) -> Result<HierarchyPage, Error> {
        let (mut events, url) = match cursor {
            Some(c) => (Vec::new(), self.follow(mailbox, c)?),
            None => (
                self.walk(mailbox).await?,
                self.client.url(&protocol::folders_delta(mailbox)),
            ),
        };
        let operation = "mailFolders.delta";
        let answer = self
            .get(
                mailbox,
                operation,
                Target::Mailbox,
                url,
                Some(self.page_size),
            )
            .await?;
        let page =
            delta::read::<MailFolder>(answer.body.as_bytes()).map_err(|e| answer.malformed(e))?;
        for entry in page.entries {
            match entry {
                Entry::Item(f) => events.push(FolderEvent::Upsert(node(f))),
                Entry::Removed { id, .. } => events.push(FolderEvent::Removed(id)),
                Entry::Unreadable(why) => {
                    tracing::warn!(event = "folder_change_unreadable", mailbox, reason = %why);
                }
            }
        }
        let (cursor, more) = next(mailbox, operation, page.next_link, page.delta_link)?;
        Ok(HierarchyPage {
            events,
            cursor,
            more,
        })
    }

    async fn next_page(
        &self,
        mailbox: &str,
        folder: &str,
        cursor: Option<&Cursor>,
    ) -> Result<Page, Error> {
        let url = match cursor {
            Some(c) => self.follow(mailbox, c)?,
            None => self.client.url(&protocol::messages_delta(mailbox, folder)),
        };
        let operation = "messages.delta";
        let answer = self
            .get(
                mailbox,
                operation,
                Target::Folder,
                url,
                Some(self.page_size),
            )
            .await?;
        let page =
            delta::read::<Message>(answer.body.as_bytes()).map_err(|e| answer.malformed(e))?;
        let changes = page
            .entries
            .into_iter()
            .map(|e| change(mailbox, e))
            .collect();
        let (cursor, more) = next(mailbox, operation, page.next_link, page.delta_link)?;
        Ok(Page {
            changes,
            cursor,
            more,
        })
    }

    async fn fetch(
        &self,
        mailbox: &str,
        items: &[ItemRef],
        with_body: bool,
    ) -> Result<Fetch, Error> {
        let mut out = Fetch::default();
        let mut to_read = Vec::new();
        for item in items {
            match &item.details {
                Some(details) if !with_body => out.fetched.push(Fetched::clone(details)),
                _ => to_read.push(item),
            }
        }
        for chunk in to_read.chunks(self.batch) {
            self.read(mailbox, chunk, with_body, &mut out).await?;
        }
        Ok(out)
    }

    async fn attachments(
        &self,
        mailbox: &str,
        item_id: &str,
        max_bytes: u64,
    ) -> Result<Vec<Attachment>, Error> {
        let mut listed = Vec::new();
        let mut url = self.client.url(&protocol::attachments(mailbox, item_id));
        loop {
            let answer = self
                .get(mailbox, "message.attachments", Target::Item, url, None)
                .await?;
            let page: AttachmentList = answer.json()?;
            listed.extend(page.value);
            match self.next_link(&answer, page.next_link.as_deref())? {
                Some(next) => url = next,
                None => break,
            }
        }
        let mut out = Vec::with_capacity(listed.len());
        for a in listed {
            // Files under the cap are read one by one, with their content.
            let content = if wanted(&a, max_bytes) {
                let path = protocol::attachment(mailbox, item_id, &a.id);
                let url = self.client.url(&path);
                let answer = self
                    .get(mailbox, "message.attachment", Target::Item, url, None)
                    .await?;
                answer.json::<GraphAttachment>()?.content_bytes
            } else {
                None
            };
            out.push(attachment(a, content));
        }
        Ok(out)
    }

    async fn mark(
        &self,
        mailbox: &str,
        items: &[(ItemRef, Vec<String>)],
    ) -> Result<Vec<Result<ItemRef, Error>>, Error> {
        let call = crate::client::Call {
            mailbox: Mailbox::from(mailbox),
            operation: "messages.update",
        };
        let prefer = protocol::prefer(None, false);
        let mut out = Vec::with_capacity(items.len());
        for chunk in items.chunks(self.batch) {
            let batch = chunk
                .iter()
                .enumerate()
                .map(|(n, (item, categories))| {
                    let body = CategoriesPatch {
                        categories: categories.clone(),
                    };
                    let body = serde_json::to_value(body).unwrap_or_default();
                    BatchItem::patch(n, protocol::message_path(mailbox, &item.id), &prefer, body)
                })
                .collect();
            match self
                .client
                .batch(&call.mailbox, call.operation, Target::Item, batch)
                .await
            {
                Ok(answers) => out.extend(answers.iter().map(|a| marked(&call, a))),
                // Nothing written yet: the whole call failed.
                Err(e) if out.is_empty() => return Err(e.into()),
                // Earlier chunks were written: this chunk's items failed, each on its own.
                Err(e) => {
                    let what = e.to_string();
                    out.extend(chunk.iter().map(|_| {
                        Err(Error::Incomplete {
                            operation: call.operation,
                            mailbox: mailbox.to_owned(),
                            what: what.clone(),
                        })
                    }));
                }
            }
        }
        Ok(out)
    }
}

/// The new version of a message the write-back changed.
fn marked(call: &crate::client::Call, a: &BatchAnswer) -> Result<ItemRef, Error> {
    if !(200..300).contains(&a.status) {
        return Err(item_error(call, a, Target::Item).into());
    }
    let m: Message = a
        .body
        .clone()
        .and_then(|b| serde_json::from_value(b).ok())
        .ok_or_else(|| crate::client::Error::GraphMalformed {
            call: call.clone(),
            what: format!("batch item {}: not a message", a.id),
        })?;
    Ok(ItemRef::new(m.id, m.change_key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracking::Direction;

    fn message(json: &str) -> Message {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn delta_entries_become_changes_with_their_details() {
        let full = message(
            r#"{"id":"A","changeKey":"CK1","internetMessageId":"<Q@Contoso.com>","subject":"Quote",
                "from":{"emailAddress":{"name":"Buyer","address":"buyer@contoso.com"}},
                "toRecipients":[{"emailAddress":{"address":"alice@example.com"}}],
                "receivedDateTime":"2026-11-24T09:30:00Z","sentDateTime":"2026-11-24T09:29:00Z",
                "hasAttachments":true,"categories":["Red"],"conversationId":"C1"}"#,
        );
        let FeedChange::Added(item) = change("alice@example.com", Entry::Item(full)) else {
            panic!("a full message is an arrival candidate");
        };
        assert_eq!(
            (item.id.as_str(), item.version.as_deref()),
            ("A", Some("CK1"))
        );
        let d = item.details.expect("the page carries its details");
        assert_eq!(
            d.message.internet_message_id.as_deref(),
            Some("<Q@contoso.com>")
        );
        assert_eq!(d.message.direction, Some(Direction::Incoming));
        assert_eq!(d.message.to[0].address, "alice@example.com");
        assert_eq!(d.categories, ["Red"]);
        assert!(d.message.has_attachments);
        assert_eq!(
            d.message.received_at.unwrap().to_string(),
            "2026-11-24T09:30:00Z"
        );
        assert_eq!(d.message.body, None);

        let partial = message(r#"{"id":"A","isRead":true,"parentFolderId":"F"}"#);
        assert_eq!(
            change("alice@example.com", Entry::Item(partial)),
            FeedChange::ReadFlag("A".into())
        );
        let draft =
            message(r#"{"id":"D","subject":"draft","receivedDateTime":"2026-11-24T09:30:00Z"}"#);
        let FeedChange::Added(item) = change("alice@example.com", Entry::Item(draft)) else {
            panic!("a draft is an arrival candidate");
        };
        assert!(item.details.is_none(), "read by id for its search key");
        let removed = Entry::Removed {
            id: "B".into(),
            reason: Some("changed".into()),
        };
        assert_eq!(
            change("alice@example.com", removed),
            FeedChange::Removed("B".into())
        );
    }

    #[test]
    fn only_files_under_the_cap_are_read_and_an_attached_mail_is_listed_without_content() {
        let list: AttachmentList = serde_json::from_str(
            r##"{"value":[
                {"@odata.type":"#microsoft.graph.fileAttachment","id":"F1","name":"a.pdf","contentType":"application/pdf","size":100},
                {"@odata.type":"#microsoft.graph.fileAttachment","id":"F2","name":"b.zip","size":5000},
                {"@odata.type":"#microsoft.graph.itemAttachment","id":"I1","name":"Fwd: c","size":10}]}"##,
        )
        .unwrap();
        let read: Vec<bool> = list.value.iter().map(|a| wanted(a, 1000)).collect();
        assert_eq!(read, [true, false, false]);
        let mail = attachment(list.value[2].clone(), None);
        assert_eq!(
            (mail.name.as_str(), mail.size, mail.content),
            ("Fwd: c", 10, None)
        );
    }

    #[test]
    fn a_message_the_owner_sent_is_outgoing() {
        let m = message(
            r#"{"id":"S","internetMessageId":"<s@x>","receivedDateTime":"2026-11-24T09:30:00Z",
                "sender":{"emailAddress":{"address":"Alice@Example.com"}}}"#,
        );
        let f = fetched("alice@example.com", &m, false).unwrap();
        assert_eq!(f.message.direction, Some(Direction::Outgoing));
    }

    #[test]
    fn a_round_goes_on_with_its_next_link_and_ends_with_its_delta_link() {
        let (c, more) = next("a", "messages.delta", Some("n".into()), None).unwrap();
        assert_eq!((c.0.as_str(), more), ("n", true));
        let (c, more) = next("a", "messages.delta", None, Some("d".into())).unwrap();
        assert_eq!((c.0.as_str(), more), ("d", false));
        let e = next("a", "messages.delta", None, None).unwrap_err();
        assert_eq!(e.action(), Action::Backoff);
    }
}
