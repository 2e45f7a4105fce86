//! A folder's changes, protocol-neutral: the watcher's only view of a mailbox. EWS for
//! Exchange on-premises ([`ews::EwsFeed`]), Microsoft Graph delta queries for Exchange Online
//! ([`graph::GraphFeed`]), and [`AnyFeed`], the one the config chose — everything above the
//! feed treats ids and cursors as opaque strings.

pub mod ews;
pub mod ews_notifications;
pub mod graph;
pub mod graph_subscriptions;

use crate::tracking::{Address, Direction, Identity, IdentitySource, MessageInfo};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Where a folder's change stream stands. Opaque: stored and handed back as is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor(pub String);

/// An item as the feed names it: its current id and version (ChangeKey).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ItemRef {
    pub id: String,
    pub version: Option<String>,
    /// What a tracking request needs of the item, when its change brought it along (Graph's
    /// delta pages do, EWS's do not): [`FolderFeed::fetch`] then needs no call for it.
    pub details: Option<Arc<Fetched>>,
    /// The InternetMessageId, when the change brought it along: a baseline remembers it (R10).
    pub message_id: Option<String>,
}

impl ItemRef {
    /// An item known by id and version only.
    pub fn new(id: impl Into<String>, version: Option<String>) -> Self {
        Self {
            id: id.into(),
            version,
            details: None,
            message_id: None,
        }
    }

    /// The InternetMessageId the change brought along, normalised (R18).
    pub fn message_id(&self) -> Option<String> {
        let raw = self.message_id.as_deref().or_else(|| {
            let d = self.details.as_deref()?;
            d.message.internet_message_id.as_deref()
        })?;
        crate::tracking::normalise_message_id(raw)
    }
}

/// One change in a folder.
#[derive(Clone, Debug, PartialEq)]
pub enum FeedChange {
    /// The item appeared in the folder (new, moved or copied in).
    Added(ItemRef),
    /// The item was edited (subject, categories, our own write-back…).
    Changed(ItemRef),
    /// The item left the folder (moved out or deleted); only its id is known.
    Removed(String),
    /// Only the read flag changed.
    ReadFlag(String),
    /// The server sent a change that could not be read; the rest of the page is intact.
    Unreadable(String),
}

/// A page of a folder's changes.
#[derive(Clone, Debug, PartialEq)]
pub struct Page {
    pub changes: Vec<FeedChange>,
    pub cursor: Cursor,
    /// The server has more changes after this page.
    pub more: bool,
}

/// A mail folder of the mailbox's tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FolderNode {
    pub id: String,
    pub parent: Option<String>,
    pub name: String,
}

/// A change in the mailbox's folder tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FolderEvent {
    /// Created, renamed or moved: the folder as it is now.
    Upsert(FolderNode),
    Removed(String),
}

/// A page of folder tree changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HierarchyPage {
    pub events: Vec<FolderEvent>,
    pub cursor: Cursor,
    pub more: bool,
}

/// The folders mapping paths start from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WellKnown {
    /// The top of the mail folder tree (`msgfolderroot`): paths are relative to it.
    pub top: String,
    pub inbox: String,
    pub sent: String,
}

/// What a tracking request needs of one message.
#[derive(Clone, Debug, PartialEq)]
pub struct Fetched {
    pub message: MessageInfo,
    /// PR_SEARCH_KEY as Exchange sent it, the identity of last resort (R18).
    pub search_key: Option<String>,
    /// The mail's categories, which the write-back keeps (R26).
    pub categories: Vec<String>,
}

/// R16: outgoing when the mailbox owner sent it.
pub fn direction(mailbox: &str, from: Option<&Address>) -> Option<Direction> {
    from.map(|f| {
        if f.address.eq_ignore_ascii_case(mailbox) {
            Direction::Outgoing
        } else {
            Direction::Incoming
        }
    })
}

/// R18: what the message's identity will rest on, from its (normalised) InternetMessageId or
/// its search key.
pub fn identity_source(
    mailbox: &str,
    internet_message_id: Option<&str>,
    search_key: Option<&str>,
) -> Option<IdentitySource> {
    Identity::of(mailbox, internet_message_id, search_key).map(|i| i.source())
}

/// What a fetch brought back.
#[derive(Debug, Default)]
pub struct Fetch {
    pub fetched: Vec<Fetched>,
    /// Items the server answered with an error of their own (a corrupt item, a property it
    /// cannot return): the others are not held back by them (R33).
    pub unreadable: Vec<Unreadable>,
}

/// An item the server could not read.
#[derive(Debug)]
pub struct Unreadable {
    pub item: ItemRef,
    pub error: Error,
}

/// A file attached to a message, with its content when it was not over the size asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    pub name: String,
    pub content_type: Option<String>,
    /// Bytes.
    pub size: u64,
    /// Base64; `None` when over the limit (or not a file: an attached mail).
    pub content: Option<String>,
}

/// What to do about a failed call: the one decision vocabulary of every back-end, decided by
/// the pure table in [`crate::client::retry`].
pub use crate::client::Action;

/// A failed feed call, with what to do about it ([`Error::action`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The call failed as a whole (transport, HTTP status, SOAP fault, a Graph error, an
    /// unreadable answer), or one item of a Graph `$batch` failed.
    #[error(transparent)]
    Call(#[from] crate::client::Error),
    /// The server answered and refused this request.
    #[error("{operation} for {mailbox}: {code:?}{}", text.as_deref().map(|t| format!(" ({t})")).unwrap_or_default())]
    Refused {
        operation: &'static str,
        mailbox: String,
        code: crate::ews::ResponseCode,
        text: Option<String>,
        action: Action,
    },
    /// The answer lacks what the call needs.
    #[error("{operation} for {mailbox}: {what}")]
    Incomplete {
        operation: &'static str,
        mailbox: String,
        what: String,
    },
    /// A stored cursor this feed cannot use (not one it made): the folder is listed again.
    #[error("{mailbox}: the folder's sync cursor is not usable here ({why}); it is listed again")]
    Cursor { mailbox: String, why: String },
}

impl Error {
    pub fn action(&self) -> Action {
        match self {
            Error::Call(e) => e.action(),
            Error::Refused { action, .. } => *action,
            Error::Incomplete { .. } => Action::Backoff,
            Error::Cursor { .. } => Action::Rebaseline,
        }
    }
}

/// "Give me the changes in this folder since this cursor", and the few other things the
/// watcher asks of a mailbox.
pub trait FolderFeed: Send + Sync + 'static {
    /// The ids of the folders mapping paths start from.
    fn well_known(&self, mailbox: &str) -> impl Future<Output = Result<WellKnown, Error>> + Send;

    /// Changes to the mail folder tree after `cursor`; `None` lists every folder as an
    /// upsert. Folders that hold no mail (calendars, contacts, tasks) are left out.
    fn hierarchy(
        &self,
        mailbox: &str,
        cursor: Option<&Cursor>,
    ) -> impl Future<Output = Result<HierarchyPage, Error>> + Send;

    /// Changes in a folder after `cursor`; `None` lists everything in it as Added.
    fn next_page(
        &self,
        mailbox: &str,
        folder_id: &str,
        cursor: Option<&Cursor>,
    ) -> impl Future<Output = Result<Page, Error>> + Send;

    /// The details of these items, in as few calls as the server allows. Items that no
    /// longer exist (moved on meanwhile) are left out: they show up where they went. An item
    /// the server answers with an error of its own is [`Fetch::unreadable`]; an error about
    /// the mailbox or the server (busy, access refused) fails the call.
    fn fetch(
        &self,
        mailbox: &str,
        items: &[ItemRef],
        with_body: bool,
    ) -> impl Future<Output = Result<Fetch, Error>> + Send;

    /// How long the server asked to leave this mailbox alone (throttling), if it did.
    fn paused_for(&self, mailbox: &str) -> Option<Duration>;

    /// The attachments of an item, the content of each file up to `max_bytes` fetched (larger
    /// ones and attached mails are listed without content). An item that moved since its id
    /// was read is not found: its id changed.
    fn attachments(
        &self,
        mailbox: &str,
        item_id: &str,
        max_bytes: u64,
    ) -> impl Future<Output = Result<Vec<Attachment>, Error>> + Send;

    /// Sets the categories of several items in one call (the write-back): for each item, in
    /// order, its new version or why it was not changed. An error of the whole call changed
    /// nothing.
    fn mark(
        &self,
        mailbox: &str,
        items: &[(ItemRef, Vec<String>)],
    ) -> impl Future<Output = Result<Vec<Result<ItemRef, Error>>, Error>> + Send;

    /// EWS notification subscriptions, when the back-end offers them (EWS).
    fn notifications(&self) -> Option<ews_notifications::EwsNotifications> {
        None
    }

    /// Change notification subscriptions, when the back-end offers them (Graph).
    fn graph_subscriptions(&self) -> Option<graph_subscriptions::GraphSubscriptions> {
        None
    }
}

/// The feed the config chose: EWS or Microsoft Graph, one type for the agent to hold.
#[derive(Clone, Debug)]
pub enum AnyFeed {
    Ews(ews::EwsFeed),
    Graph(graph::GraphFeed),
}

/// Calls the same method on whichever feed it is.
macro_rules! each {
    ($self:ident, $feed:ident => $call:expr) => {
        match $self {
            AnyFeed::Ews($feed) => $call,
            AnyFeed::Graph($feed) => $call,
        }
    };
}

impl FolderFeed for AnyFeed {
    async fn well_known(&self, mailbox: &str) -> Result<WellKnown, Error> {
        each!(self, f => f.well_known(mailbox).await)
    }

    async fn hierarchy(
        &self,
        mailbox: &str,
        cursor: Option<&Cursor>,
    ) -> Result<HierarchyPage, Error> {
        each!(self, f => f.hierarchy(mailbox, cursor).await)
    }

    async fn next_page(
        &self,
        mailbox: &str,
        folder_id: &str,
        cursor: Option<&Cursor>,
    ) -> Result<Page, Error> {
        each!(self, f => f.next_page(mailbox, folder_id, cursor).await)
    }

    async fn fetch(
        &self,
        mailbox: &str,
        items: &[ItemRef],
        with_body: bool,
    ) -> Result<Fetch, Error> {
        each!(self, f => f.fetch(mailbox, items, with_body).await)
    }

    fn paused_for(&self, mailbox: &str) -> Option<Duration> {
        each!(self, f => f.paused_for(mailbox))
    }

    fn notifications(&self) -> Option<ews_notifications::EwsNotifications> {
        each!(self, f => f.notifications())
    }

    fn graph_subscriptions(&self) -> Option<graph_subscriptions::GraphSubscriptions> {
        each!(self, f => f.graph_subscriptions())
    }

    async fn attachments(
        &self,
        mailbox: &str,
        item_id: &str,
        max_bytes: u64,
    ) -> Result<Vec<Attachment>, Error> {
        each!(self, f => f.attachments(mailbox, item_id, max_bytes).await)
    }

    async fn mark(
        &self,
        mailbox: &str,
        items: &[(ItemRef, Vec<String>)],
    ) -> Result<Vec<Result<ItemRef, Error>>, Error> {
        each!(self, f => f.mark(mailbox, items).await)
    }
}
