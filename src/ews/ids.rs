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

/// Well-known folders (`t:DistinguishedFolderId`), the ones foldertrack names.
/// <https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/distinguishedfolderid>
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DistinguishedFolder {
    Root,
    MsgFolderRoot,
    Inbox,
    SentItems,
    DeletedItems,
    Drafts,
    JunkEmail,
    Outbox,
}

impl DistinguishedFolder {
    /// Every variant, for parsers and the simulator.
    pub const ALL: [Self; 8] = [
        Self::Root,
        Self::MsgFolderRoot,
        Self::Inbox,
        Self::SentItems,
        Self::DeletedItems,
        Self::Drafts,
        Self::JunkEmail,
        Self::Outbox,
    ];

    /// The wire name (`Id="inbox"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Root => "root",
            Self::MsgFolderRoot => "msgfolderroot",
            Self::Inbox => "inbox",
            Self::SentItems => "sentitems",
            Self::DeletedItems => "deleteditems",
            Self::Drafts => "drafts",
            Self::JunkEmail => "junkemail",
            Self::Outbox => "outbox",
        }
    }

    /// Reads a wire name; `None` for the distinguished folders foldertrack never uses.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == s)
    }
}

/// A folder as a request names it: by id or by well-known name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FolderSelector {
    Id(FolderRef),
    Distinguished(DistinguishedFolder),
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
    fn from(d: DistinguishedFolder) -> Self {
        Self::Distinguished(d)
    }
}
