//! The domain loop: pure decisions (classify, cadence, health, mappings) and the per-mailbox
//! tasks that apply them. What a mailbox is told to watch is declared here, next to the code
//! that watches it; the config file's `[[mailbox]]` sections are these types.

pub mod cadence;
pub mod capacity;
pub mod classify;
pub mod cluster;
pub mod graph_notifier;
pub mod health;
pub mod mailbox;
pub mod mappings;
pub mod notifier;
pub mod notify;
pub mod supervisor;
pub mod track_now;

use crate::tracking::Regarding;
use schemars::JsonSchema;
use serde::Deserialize;

/// `[[mailbox]]`
#[derive(Clone, Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MailboxConfig {
    /// The mailbox's SMTP address.
    pub address: String,
    /// Also watch Sent Items.
    #[serde(default)]
    pub track_sent_items: bool,
    /// The mapped folders.
    #[serde(default)]
    pub folder: Vec<FolderMapping>,
}

/// `[[mailbox.folder]]`: one mapped folder.
#[derive(Clone, Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FolderMapping {
    /// The folder by path, e.g. `Inbox/Customers/Contoso`.
    pub path: Option<String>,
    /// The folder by its EWS FolderId.
    pub id: Option<String>,
    /// The record mail in this folder is regarding.
    pub regarding: Option<Regarding>,
    /// Also track the folder's subfolders, present and future.
    #[serde(default)]
    pub include_subfolders: bool,
    /// Track what is already in the folder at the first sync (default: a baseline).
    #[serde(default)]
    pub track_existing: bool,
    /// Allow a folder outside the Inbox tree.
    #[serde(default)]
    pub allow_outside_inbox: bool,
    /// Deliver message bodies.
    #[serde(default)]
    pub include_body: bool,
}
