//! The write-back (R26–R28): after delivery the mail gets the `Tracked` category, after a final
//! failure `Tracking failed`, through UpdateItem with its current ItemId and ChangeKey. The
//! user's own categories are kept. A mail that moved on meanwhile is found again when it shows
//! up in a mapped folder (the store updates the pending mark's ItemId); after a bounded number
//! of tries the mark is given up, with a line in the message's history. Delivery is never undone.

use crate::feed::{Action, FolderFeed, ItemRef};
use crate::store::{self, MarkKind, Store};
use schemars::JsonSchema;
use serde::Deserialize;

/// `[writeback]`: what is written onto tracked mail (R26, R27).
#[derive(Clone, Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Writeback {
    /// Write the categories at all.
    pub enabled: bool,
    /// After delivery.
    pub tracked_category: String,
    /// After a final failure.
    pub failed_category: String,
}

impl Default for Writeback {
    fn default() -> Self {
        Self {
            enabled: true,
            tracked_category: "Tracked".into(),
            failed_category: "Tracking failed".into(),
        }
    }
}

/// Why the write-back stopped: the store failed, or the feed said a mark can never be written
/// (a bug or a configuration error, not a passing failure).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error("write-back: {0}")]
    Feed(#[from] crate::feed::Error),
}

/// Tries per mark before it is given up.
pub const MAX_TRIES: u32 = 5;

/// What one round of write-backs did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Marked {
    pub done: usize,
    pub waiting: usize,
    pub given_up: usize,
}

/// The categories a mail should carry: the user's own, with ours swapped in.
pub fn categories(current: &[String], kind: MarkKind, names: &Writeback) -> Vec<String> {
    let (ours, other) = match kind {
        MarkKind::Tracked => (&names.tracked_category, &names.failed_category),
        MarkKind::Failed => (&names.failed_category, &names.tracked_category),
    };
    let mut out: Vec<String> = current
        .iter()
        .filter(|c| !c.eq_ignore_ascii_case(other) && !c.eq_ignore_ascii_case(ours))
        .cloned()
        .collect();
    out.push(ours.clone());
    out
}

/// Writes every pending mark once.
pub async fn write_back<F: FolderFeed, S: Store>(
    feed: &F,
    store: &S,
    names: &Writeback,
) -> Result<Marked, Error> {
    let mut marked = Marked::default();
    for (id, mut mark) in store.marks(usize::MAX)? {
        let item = ItemRef {
            id: mark.item_id.clone(),
            version: None,
        };
        let result = async {
            let mut current = feed
                .fetch(&mark.mailbox, std::slice::from_ref(&item), false)
                .await?;
            if let Some(unreadable) = current.unreadable.pop() {
                return Err(unreadable.error);
            }
            let Some(found) = current.fetched.first() else {
                return Ok(None);
            };
            let item = ItemRef {
                id: found.message.item_id.clone(),
                version: found.message.change_key.clone(),
            };
            let wanted = categories(&found.categories, mark.kind, names);
            feed.mark(&mark.mailbox, &item, &wanted).await.map(Some)
        }
        .await;
        match result {
            Ok(Some(_)) => {
                marked.done += 1;
                store.mark_done(&id, None, None).await?;
            }
            Err(e) if e.action() == Action::Fatal => return Err(Error::Feed(e)),
            outcome => {
                mark.attempts += 1;
                let why = match outcome {
                    Err(e) => e.to_string(),
                    _ => "the mail was not found where it was (moved or deleted)".into(),
                };
                if mark.attempts >= MAX_TRIES {
                    marked.given_up += 1;
                    tracing::warn!(event = "writeback_given_up", mailbox = %mark.mailbox, id = %id, reason = %why);
                    let note = format!("category not written after {} tries: {why}", mark.attempts);
                    store.mark_done(&id, None, Some(note)).await?;
                } else {
                    marked.waiting += 1;
                    store.mark_done(&id, Some(mark), None).await?;
                }
            }
        }
    }
    Ok(marked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r26_r27_our_category_is_swapped_in_and_the_users_are_kept() {
        let names = Writeback::default();
        let s = |v: &[&str]| v.iter().map(|c| c.to_string()).collect::<Vec<_>>();
        assert_eq!(
            categories(&s(&["Red"]), MarkKind::Tracked, &names),
            s(&["Red", "Tracked"])
        );
        assert_eq!(
            categories(&s(&["Tracking failed", "Red"]), MarkKind::Tracked, &names),
            s(&["Red", "Tracked"])
        );
        assert_eq!(
            categories(&s(&["Tracked"]), MarkKind::Failed, &names),
            s(&["Tracking failed"])
        );
        assert_eq!(
            categories(&s(&["tracked"]), MarkKind::Tracked, &names),
            s(&["Tracked"])
        );
    }
}
