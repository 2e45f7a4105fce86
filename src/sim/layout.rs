//! The folders every new mailbox starts with, shaped like an Exchange 2016 mailbox: the root,
//! the system folders under it that clients never show (the non-IPM subtree: search folders,
//! Recoverable Items, views), the top of the information store and the standard folders below
//! it, each with its container class and kind, hidden ones marked. Folders that need a feature
//! the simulator has no notion of (an archive, Unified Messaging, public folders, Exchange
//! Online's additions) are left out, so asking for them finds nothing, as on such a server.
//! Owns the table only; `mailbox.rs` builds the tree from it.

use crate::ews::DistinguishedFolder as D;
use serde::{Deserialize, Serialize};

/// What a folder holds; it decides how a protocol presents the folder (EWS: `t:Folder`,
/// `t:CalendarFolder`, `t:ContactsFolder`, `t:TasksFolder`, `t:SearchFolder`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FolderKind {
    /// Mail, notes, journal, system folders.
    #[default]
    Generic,
    Calendar,
    Contacts,
    Tasks,
    /// A search folder: a saved query, its contents computed.
    Search,
}

/// One standard folder.
#[derive(Clone, Copy, Debug)]
pub struct Standard {
    pub id: Option<D>,
    pub name: &'static str,
    /// The (distinguished) folder it sits in; `None` for the root.
    pub parent: Option<D>,
    /// The container class (`PR_CONTAINER_CLASS`); system folders have none.
    pub class: Option<&'static str>,
    pub kind: FolderKind,
    /// `PR_ATTR_HIDDEN`: clients do not show it.
    pub hidden: bool,
}

const fn folder(
    id: Option<D>,
    name: &'static str,
    parent: D,
    class: Option<&'static str>,
    kind: FolderKind,
    hidden: bool,
) -> Standard {
    Standard {
        id,
        name,
        parent: Some(parent),
        class,
        kind,
        hidden,
    }
}

/// A mail folder of the information store.
const fn mail(id: D, name: &'static str) -> Standard {
    folder(
        Some(id),
        name,
        D::MsgFolderRoot,
        Some("IPF.Note"),
        FolderKind::Generic,
        false,
    )
}

/// A system folder outside the information store: hidden, no class.
const fn system(id: Option<D>, name: &'static str, parent: D) -> Standard {
    folder(id, name, parent, None, FolderKind::Generic, true)
}

use FolderKind::{Calendar, Contacts, Generic, Search, Tasks};

/// The standard folders, parents before children. The first eight keep the numbers (and so
/// the FolderIds) that mailboxes had before the others were added.
pub const STANDARD: &[Standard] = &[
    Standard {
        id: Some(D::Root),
        name: "Root",
        parent: None,
        class: None,
        kind: Generic,
        hidden: false,
    },
    folder(
        Some(D::MsgFolderRoot),
        "Top of Information Store",
        D::Root,
        None,
        Generic,
        false,
    ),
    mail(D::Inbox, "Inbox"),
    mail(D::SentItems, "Sent Items"),
    mail(D::DeletedItems, "Deleted Items"),
    mail(D::Drafts, "Drafts"),
    mail(D::JunkEmail, "Junk Email"),
    mail(D::Outbox, "Outbox"),
    folder(
        Some(D::Calendar),
        "Calendar",
        D::MsgFolderRoot,
        Some("IPF.Appointment"),
        Calendar,
        false,
    ),
    folder(
        Some(D::Contacts),
        "Contacts",
        D::MsgFolderRoot,
        Some("IPF.Contact"),
        Contacts,
        false,
    ),
    folder(
        Some(D::RecipientCache),
        "Recipient Cache",
        D::Contacts,
        Some("IPF.Contact.RecipientCache"),
        Contacts,
        true,
    ),
    folder(
        Some(D::QuickContacts),
        "{06967759-274D-40B2-A3EB-D7F9E73727D7}",
        D::Contacts,
        Some("IPF.Contact.MOC.QuickContacts"),
        Contacts,
        true,
    ),
    folder(
        Some(D::ImContactList),
        "{A9E2BC46-B3A0-4243-B315-60D991004455}",
        D::Contacts,
        Some("IPF.Contact.MOC.ImContactList"),
        Contacts,
        true,
    ),
    folder(
        Some(D::Tasks),
        "Tasks",
        D::MsgFolderRoot,
        Some("IPF.Task"),
        Tasks,
        false,
    ),
    folder(
        Some(D::Notes),
        "Notes",
        D::MsgFolderRoot,
        Some("IPF.StickyNote"),
        Generic,
        false,
    ),
    folder(
        Some(D::Journal),
        "Journal",
        D::MsgFolderRoot,
        Some("IPF.Journal"),
        Generic,
        false,
    ),
    mail(D::SyncIssues, "Sync Issues"),
    folder(
        Some(D::Conflicts),
        "Conflicts",
        D::SyncIssues,
        Some("IPF.Note"),
        Generic,
        false,
    ),
    folder(
        Some(D::LocalFailures),
        "Local Failures",
        D::SyncIssues,
        Some("IPF.Note"),
        Generic,
        false,
    ),
    folder(
        Some(D::ServerFailures),
        "Server Failures",
        D::SyncIssues,
        Some("IPF.Note"),
        Generic,
        false,
    ),
    // A hidden folder inside the information store, as Microsoft's deep FindFolder sample
    // shows one.
    folder(
        None,
        "Conversation Action Settings",
        D::MsgFolderRoot,
        Some("IPF.Configuration"),
        Generic,
        true,
    ),
    system(Some(D::SearchFolders), "Finder", D::Root),
    folder(
        Some(D::ToDoSearch),
        "To-Do Search",
        D::SearchFolders,
        Some("IPF.Task"),
        Search,
        true,
    ),
    system(Some(D::RecoverableItemsRoot), "Recoverable Items", D::Root),
    system(
        Some(D::RecoverableItemsDeletions),
        "Deletions",
        D::RecoverableItemsRoot,
    ),
    system(
        Some(D::RecoverableItemsVersions),
        "Versions",
        D::RecoverableItemsRoot,
    ),
    system(
        Some(D::RecoverableItemsPurges),
        "Purges",
        D::RecoverableItemsRoot,
    ),
    system(None, "Common Views", D::Root),
    system(None, "Deferred Action", D::Root),
    system(None, "Freebusy Data", D::Root),
    system(None, "Schedule", D::Root),
    system(None, "Shortcuts", D::Root),
    system(None, "Spooler Queue", D::Root),
    system(None, "Views", D::Root),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_come_first_and_distinguished_ids_are_unique() {
        let mut seen: Vec<D> = Vec::new();
        for (i, s) in STANDARD.iter().enumerate() {
            match s.parent {
                None => assert_eq!(i, 0, "only the root has no parent"),
                Some(p) => assert!(seen.contains(&p), "{} before its parent", s.name),
            }
            if let Some(id) = s.id {
                assert!(!seen.contains(&id), "{id:?} twice");
                seen.push(id);
            }
        }
    }
}
