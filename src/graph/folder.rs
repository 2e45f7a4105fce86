//! `mailFolder`: the properties foldertrack reads, and the well-known names usable in place of
//! an id. Folder ids are constant ("container types … their regular IDs were already
//! constant"): a rename or a move keeps a folder's id, as EWS FolderIds do.
//! <https://learn.microsoft.com/graph/api/resources/mailfolder>

use serde::{Deserialize, Serialize};

/// What a folder listing or a folder delta selects (the id always comes).
pub const SELECT: &str = "displayName,parentFolderId,childFolderCount";

/// The top of the mail folder tree: mapping paths are relative to it.
pub const MSG_FOLDER_ROOT: &str = "msgfolderroot";
pub const INBOX: &str = "inbox";
pub const SENT_ITEMS: &str = "sentitems";

/// Every well-known folder name v1.0 documents (locale-independent).
pub const WELL_KNOWN: [&str; 17] = [
    "archive",
    "clutter",
    "conflicts",
    "conversationhistory",
    "deleteditems",
    "drafts",
    "inbox",
    "junkemail",
    "localfailures",
    "msgfolderroot",
    "outbox",
    "recoverableitemsdeletions",
    "scheduled",
    "searchfolders",
    "sentitems",
    "serverfailures",
    "syncissues",
];

/// A mail folder as listed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MailFolder {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub parent_folder_id: Option<String>,
    /// Immediate subfolders.
    #[serde(default)]
    pub child_folder_count: Option<u32>,
    #[serde(default)]
    pub is_hidden: Option<bool>,
}

/// One page of a folder listing (`childFolders`).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct FolderList {
    #[serde(default)]
    pub value: Vec<MailFolder>,
    #[serde(rename = "@odata.nextLink", default)]
    pub next_link: Option<String>,
}
