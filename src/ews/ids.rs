//! Identifiers EWS hands out. All are opaque, case-sensitive strings, compared byte for byte
//! (<https://learn.microsoft.com/en-us/exchange/client-developer/exchange-web-services/ews-identifiers-in-exchange>).

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! opaque_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// The id as EWS sent it.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }
    };
}

opaque_id!(
    /// An item's id. Changes on every move: never a message's identity.
    ItemId
);
opaque_id!(
    /// A folder's id. Stable across renames and moves: mappings key on it.
    FolderId
);
opaque_id!(
    /// The version stamp of an item or folder; a new one on every change.
    ChangeKey
);
opaque_id!(
    /// The opaque state SyncFolderItems/SyncFolderHierarchy return; stored verbatim.
    SyncState
);
opaque_id!(
    /// A notification subscription's id.
    SubscriptionId
);
opaque_id!(
    /// A pull subscription's position in the mailbox event queue.
    Watermark
);

/// The SMTP address of a mailbox (the one impersonated and named in `X-AnchorMailbox`).
#[derive(
    Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(transparent)]
pub struct Mailbox(pub String);

impl Mailbox {
    /// The address as configured.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Mailbox {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mailbox({:?})", self.0)
    }
}

/// An item id with the change key it was seen with (`t:ItemId Id ChangeKey`).
/// The change key is optional: one published SyncFolderItems sample omits it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ItemRef {
    pub id: ItemId,
    pub change_key: Option<ChangeKey>,
}

/// A folder id with its change key (`t:FolderId Id ChangeKey`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FolderRef {
    pub id: FolderId,
    pub change_key: Option<ChangeKey>,
}

macro_rules! distinguished_folders {
    ($($variant:ident = $wire:literal),* $(,)?) => {
        /// Well-known folders (`t:DistinguishedFolderId`): every value of the schema's
        /// `DistinguishedFolderIdNameType`, in schema order. A mailbox need not have each one
        /// (no archive, no Unified Messaging, an Exchange Online feature).
        /// <https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/distinguishedfolderid>
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum DistinguishedFolder {
            $(#[serde(rename = $wire)] $variant,)*
        }

        impl DistinguishedFolder {
            /// Every value, in schema order.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)*];

            /// The wire name (`Id="inbox"`).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $wire,)*
                }
            }

            /// Reads a wire name; `None` for a name the schema does not define.
            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($wire => Some(Self::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

// The schema's enumeration in its order; a test compares it with
// shared/ews-reference/xsd/types.xsd when that is present.
distinguished_folders! {
    Calendar = "calendar", Contacts = "contacts", DeletedItems = "deleteditems",
    Drafts = "drafts", Inbox = "inbox", Journal = "journal", Notes = "notes",
    Outbox = "outbox", SentItems = "sentitems", Tasks = "tasks",
    MsgFolderRoot = "msgfolderroot", PublicFoldersRoot = "publicfoldersroot", Root = "root",
    JunkEmail = "junkemail", SearchFolders = "searchfolders", VoiceMail = "voicemail",
    RecoverableItemsRoot = "recoverableitemsroot",
    RecoverableItemsDeletions = "recoverableitemsdeletions",
    RecoverableItemsVersions = "recoverableitemsversions",
    RecoverableItemsPurges = "recoverableitemspurges",
    RecoverableItemsDiscoveryHolds = "recoverableitemsdiscoveryholds",
    ArchiveRoot = "archiveroot", ArchiveMsgFolderRoot = "archivemsgfolderroot",
    ArchiveDeletedItems = "archivedeleteditems", ArchiveInbox = "archiveinbox",
    ArchiveRecoverableItemsRoot = "archiverecoverableitemsroot",
    ArchiveRecoverableItemsDeletions = "archiverecoverableitemsdeletions",
    ArchiveRecoverableItemsVersions = "archiverecoverableitemsversions",
    ArchiveRecoverableItemsPurges = "archiverecoverableitemspurges",
    ArchiveRecoverableItemsDiscoveryHolds = "archiverecoverableitemsdiscoveryholds",
    SyncIssues = "syncissues", Conflicts = "conflicts", LocalFailures = "localfailures",
    ServerFailures = "serverfailures", RecipientCache = "recipientcache",
    QuickContacts = "quickcontacts", ConversationHistory = "conversationhistory",
    AdminAuditLogs = "adminauditlogs", ToDoSearch = "todosearch", MyContacts = "mycontacts",
    Directory = "directory", ImContactList = "imcontactlist", PeopleConnect = "peopleconnect",
    Favorites = "favorites", MeContact = "mecontact", PersonMetadata = "personmetadata",
    TeamSpaceActivity = "teamspaceactivity", TeamSpaceMessaging = "teamspacemessaging",
    TeamSpaceWorkItems = "teamspaceworkitems", Scheduled = "scheduled",
    OrionNotes = "orionnotes", TagItems = "tagitems", AllTaggedItems = "alltaggeditems",
    ExternalContacts = "externalcontacts", TeamChat = "teamchat", YammerRoot = "yammerroot",
    YammerInbound = "yammerinbound", YammerOutbound = "yammeroutbound",
    YammerFeeds = "yammerfeeds", OneDriveRoot = "onedriveroot",
    // Spelled as in the schema.
    OneDriveRecyleBin = "onedriverecylebin", OneDriveSystem = "onedrivesystem",
    OneDriveVolume = "onedrivevolume",
}

/// A folder as a request names it: by id or by well-known name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FolderSelector {
    Id(FolderRef),
    /// A well-known folder of the mailbox the call acts on, or of `mailbox` when given
    /// (`t:DistinguishedFolderId/t:Mailbox`: delegate access).
    Distinguished {
        folder: DistinguishedFolder,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mailbox: Option<Mailbox>,
    },
}

impl From<FolderId> for FolderSelector {
    fn from(id: FolderId) -> Self {
        Self::Id(FolderRef {
            id,
            change_key: None,
        })
    }
}

impl From<DistinguishedFolder> for FolderSelector {
    fn from(folder: DistinguishedFolder) -> Self {
        Self::Distinguished {
            folder,
            mailbox: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_distinguished_folder_name_reads_back_and_case_matters() {
        // tests/reference_samples.rs checks the names against the official schema.
        for d in DistinguishedFolder::ALL {
            assert_eq!(DistinguishedFolder::parse(d.as_str()), Some(*d));
        }
        assert_eq!(DistinguishedFolder::parse("Inbox"), None);
    }
}
