//! A folder's changes, protocol-neutral: the watcher's only view of a mailbox. EWS now
//! ([`ews::EwsFeed`]); Microsoft Graph delta queries later — everything above the feed treats
//! ids and cursors as opaque strings.

pub mod ews;

use crate::tracking::MessageInfo;
use std::future::Future;
use std::time::Duration;

/// Where a folder's change stream stands. Opaque: stored and handed back as is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor(pub String);

/// An item as the feed names it: its current id and version (ChangeKey).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemRef {
    pub id: String,
    pub version: Option<String>,
}

/// One change in a folder.
#[derive(Clone, Debug, PartialEq, Eq)]
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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    pub changes: Vec<FeedChange>,
    pub cursor: Cursor,
    /// The server has more changes after this page.
    pub more: bool,
}

/// A folder of the mailbox's tree.
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

/// What to do about a failed call: the one decision vocabulary of every back-end, decided by
/// the pure table in [`crate::client::retry`] for EWS.
pub use crate::client::Action;

/// A failed feed call, with what to do about it ([`Error::action`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The call failed as a whole: transport, HTTP status, SOAP fault, unreadable answer.
    #[error(transparent)]
    Ews(#[from] crate::client::Error),
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
}

impl Error {
    pub fn action(&self) -> Action {
        match self {
            Error::Ews(e) => e.action(),
            Error::Refused { action, .. } => *action,
            Error::Incomplete { .. } => Action::Backoff,
        }
    }
}

/// "Give me the changes in this folder since this cursor", and the few other things the
/// watcher asks of a mailbox.
pub trait FolderFeed: Send + Sync + 'static {
    /// The ids of the folders mapping paths start from.
    fn well_known(&self, mailbox: &str) -> impl Future<Output = Result<WellKnown, Error>> + Send;

    /// Changes to the folder tree after `cursor`; `None` lists every folder as an upsert.
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

    /// Sets the categories of several items in one call (the write-back): for each item, in
    /// order, its new version or why it was not changed. An error of the whole call changed
    /// nothing.
    fn mark(
        &self,
        mailbox: &str,
        items: &[(ItemRef, Vec<String>)],
    ) -> impl Future<Output = Result<Vec<Result<ItemRef, Error>>, Error>> + Send;
}
