//! What the store knows when no agent runs: the mailboxes' mappings, their folders' baselines
//! and tracked counts, and the delivery queues. No live health: that lives in a running agent.

use crate::config::Config;
use crate::store::{self, Store};
use jiff::Timestamp;
use serde::Serialize;

/// `status` without a running agent.
#[derive(Debug, Serialize)]
pub struct StoredStatus {
    pub mailboxes: Vec<StoredMailbox>,
    pub stats: store::Stats,
}

#[derive(Debug, Serialize)]
pub struct StoredMailbox {
    pub address: String,
    pub folders: Vec<StoredFolder>,
}

/// A mapping as the store last saw it.
#[derive(Debug, Serialize)]
pub struct StoredFolder {
    /// The folder's path when last seen, or the mapping as configured.
    pub path: String,
    pub state: String,
    /// When its first sync ran (what was there then is its baseline); `None` before it.
    pub baselined_since: Option<Timestamp>,
    pub tracked: usize,
}

/// Reads what `config`'s mailboxes left in `store`.
pub fn status(config: &Config, store: &impl Store) -> Result<StoredStatus, store::Error> {
    let mut mailboxes = Vec::new();
    for mailbox in &config.mailbox {
        let address = &mailbox.address;
        let folders = store.folders(address)?;
        let mut stored = Vec::new();
        for mapping in store.mappings(address)? {
            let folder = folders
                .iter()
                .find(|f| Some(&f.folder_id) == mapping.folder_id.as_ref());
            let tracked = match &mapping.folder_id {
                Some(id) => store.tracked_in(address, id)?.len(),
                None => 0,
            };
            stored.push(StoredFolder {
                path: folder
                    .map(|f| f.path.clone())
                    .or(mapping.path.clone())
                    .unwrap_or(mapping.name.clone()),
                state: mapping.state.describe(),
                baselined_since: folder.filter(|f| f.baselined).and_then(|f| f.since),
                tracked,
            });
        }
        mailboxes.push(StoredMailbox {
            address: address.clone(),
            folders: stored,
        });
    }
    Ok(StoredStatus {
        mailboxes,
        stats: store.stats()?,
    })
}
