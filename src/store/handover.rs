//! A mailbox's state moved from one agent's store to another's when the member count changes:
//! its mappings, folder cursors, seen and baseline items, unreadable items and the message
//! records it owns, exactly as stored. The new owner goes on from the old owner's cursors, so
//! a mail moved in between is neither lost (a fresh baseline would swallow it) nor tracked
//! twice. Requests still waiting for the sink or for a write-back stay with the old owner,
//! which finishes them first: an export is refused until there are none.

use super::{Entry, Error, Store, Tree, TxError, decode, keys};
use crate::tracking::MessageRecord;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

/// The handover file's format.
pub const HANDOVER_FORMAT: u32 = 1;

/// Where a mailbox's state went, in the meta tree under `handover \0 address`: [`IN`] once
/// imported here, [`OUT`] once exported from here.
fn marker_key(mailbox: &str) -> Vec<u8> {
    [
        b"handover\0".as_slice(),
        mailbox.to_ascii_lowercase().as_bytes(),
    ]
    .concat()
}

const IN: &[u8] = b"in";
const OUT: &[u8] = b"out";

/// One mailbox's state, as `handover export` writes it and `handover import` reads it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Handover {
    pub format: u32,
    pub mailbox: String,
    /// `(tree, key, value)`, key and value in Base64.
    pub entries: Vec<(String, String, String)>,
}

/// Why a mailbox cannot be exported yet, or an import is refused.
#[derive(Debug, thiserror::Error)]
pub enum HandoverError {
    #[error(
        "{mailbox}: {outbox} request(s) still wait for the sink and {marks} for a write-back; export once this agent has delivered them (`foldertrack status` shows the outbox)"
    )]
    Unfinished {
        mailbox: String,
        outbox: usize,
        marks: usize,
    },
    #[error(
        "{0}: this store holds nothing of it; export it from the member that owned it before the member count changed"
    )]
    NoState(String),
    #[error(
        "the handover file has format {0}, this build reads {HANDOVER_FORMAT}; export it with the same foldertrack version"
    )]
    Format(u32),
    #[error("the handover file is damaged: {0}; export it again")]
    Damaged(String),
    #[error(transparent)]
    Store(#[from] Error),
}

/// Every stored entry of `mailbox`'s state, by tree.
fn entries_of<S: Store>(store: &S, mailbox: &str) -> Result<Vec<(Tree, Entry)>, Error> {
    let prefix = keys::mailbox_prefix(mailbox);
    let mut out = Vec::new();
    for tree in [Tree::Mappings, Tree::Folders] {
        out.extend(
            store
                .scan(tree, &prefix, usize::MAX)?
                .into_iter()
                .map(|e| (tree, e)),
        );
    }
    for folder in store.folders(mailbox)? {
        let prefix = keys::seen_prefix(mailbox, &folder.folder_id);
        for tree in [Tree::Seen, Tree::Baseline, Tree::Pending] {
            out.extend(
                store
                    .scan(tree, &prefix, usize::MAX)?
                    .into_iter()
                    .map(|e| (tree, e)),
            );
        }
    }
    for (key, value) in store.scan(Tree::Messages, &[], usize::MAX)? {
        let record: MessageRecord = decode(Tree::Messages, &value)?;
        if record.owner.eq_ignore_ascii_case(mailbox) {
            out.push((Tree::Messages, (key, value)));
        }
    }
    Ok(out)
}

/// `mailbox`'s state, once nothing of it waits for the sink or a write-back. The store keeps
/// a copy but remembers that it went ([`handed_away`]): should the mailbox come back, this
/// store's copy is stale, and the agent waits for the newer state rather than go on from it.
pub fn export<S: Store>(store: &S, mailbox: &str) -> Result<Handover, HandoverError> {
    let outbox = store.outbox_of(mailbox)?.len();
    let marks = store
        .marks(usize::MAX)?
        .iter()
        .filter(|(_, m)| m.mailbox.eq_ignore_ascii_case(mailbox))
        .count();
    if outbox + marks > 0 {
        return Err(HandoverError::Unfinished {
            mailbox: mailbox.to_owned(),
            outbox,
            marks,
        });
    }
    let entries: Vec<_> = entries_of(store, mailbox)?
        .into_iter()
        .map(|(tree, (k, v))| {
            (
                tree.name().to_owned(),
                STANDARD.encode(k),
                STANDARD.encode(v),
            )
        })
        .collect();
    if entries.is_empty() {
        return Err(HandoverError::NoState(mailbox.to_owned()));
    }
    Ok(Handover {
        format: HANDOVER_FORMAT,
        mailbox: mailbox.to_owned(),
        entries,
    })
}

/// Replaces `handover.mailbox`'s state in `store` with the handed-over one, in one transaction,
/// and remembers that the mailbox was handed over. Returns how many entries were written.
pub async fn import<S: Store>(store: &S, handover: &Handover) -> Result<usize, HandoverError> {
    if handover.format != HANDOVER_FORMAT {
        return Err(HandoverError::Format(handover.format));
    }
    let decoded = handover
        .entries
        .iter()
        .map(|(tree, k, v)| {
            let tree = Tree::ALL
                .into_iter()
                .find(|t| t.name() == tree)
                .ok_or_else(|| HandoverError::Damaged(format!("unknown tree {tree:?}")))?;
            let bytes = |s: &str| {
                STANDARD
                    .decode(s)
                    .map_err(|e| HandoverError::Damaged(e.to_string()))
            };
            Ok((tree, bytes(k)?, bytes(v)?))
        })
        .collect::<Result<Vec<_>, HandoverError>>()?;
    let stale = entries_of(store, &handover.mailbox)?;
    let marker = marker_key(&handover.mailbox);
    store.transaction(|tx| {
        for (tree, (key, _)) in &stale {
            tx.remove(*tree, key)?;
        }
        for (tree, key, value) in &decoded {
            tx.put(*tree, key, value.clone())?;
        }
        tx.put(Tree::Meta, &marker, IN.to_vec())?;
        Ok::<(), TxError>(())
    })?;
    store.flush().await?;
    Ok(decoded.len())
}

/// Remembers that `mailbox`'s state was exported from this store (after [`export`]).
pub async fn handed_away<S: Store>(store: &S, mailbox: &str) -> Result<(), Error> {
    let marker = marker_key(mailbox);
    store.transaction(|tx| tx.put(Tree::Meta, &marker, OUT.to_vec()))?;
    store.flush().await
}

/// Whether this store's state of `mailbox` is current: handed over to here, or watched here
/// and never handed away.
pub fn has_state<S: Store>(store: &S, mailbox: &str) -> Result<bool, Error> {
    Ok(
        match store.get(Tree::Meta, &marker_key(mailbox))?.as_deref() {
            Some(OUT) => false,
            Some(_) => true,
            None => !store
                .scan(Tree::Mappings, &keys::mailbox_prefix(mailbox), 1)?
                .is_empty(),
        },
    )
}
