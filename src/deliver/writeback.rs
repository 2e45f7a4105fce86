//! The write-back (R26–R28): after delivery the mail gets the `Tracked` category, after a final
//! failure `Tracking failed`, with its current id and version. The user's own categories are
//! kept. Marks are written in batches — one read and one write for up to `batch` mails of a
//! mailbox (GetItem and UpdateItem on EWS, two `$batch` calls on Microsoft Graph). A mark that could not be written stays in
//! the store and is tried again on later rounds with back-off; a mail that moved on meanwhile
//! is found again when it shows up in a mapped folder (the store re-points the pending mark and
//! makes it due). After a bounded number of tries the mark is given up, with a line in the
//! message's history. Delivery is never undone.

use crate::feed::{Action, FolderFeed, ItemRef};
use crate::store::{self, MarkEntry, MarkKind, MarkOutcome, Store};
use jiff::Timestamp;
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// `[writeback]`: what is written onto tracked mail (R26, R27).
#[derive(Clone, Debug, PartialEq, Deserialize, serde::Serialize, JsonSchema)]
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

/// How pending marks are retried (R28).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarkPolicy {
    /// The wait after the first failed try; doubled per try.
    pub base: Duration,
    /// The longest wait between two tries.
    pub cap: Duration,
    /// Tries before a mark is given up.
    pub max_tries: u32,
    /// Mails per GetItem and UpdateItem call (`limits.get_item_batch`).
    pub batch: usize,
}

impl Default for MarkPolicy {
    /// Twelve tries over about five hours: a passing Exchange hiccup, a throttled or moving
    /// mailbox, or a mail that moves on right after delivery do not lose the mark.
    fn default() -> Self {
        Self {
            base: Duration::from_secs(15),
            cap: Duration::from_secs(3600),
            max_tries: 12,
            batch: 20,
        }
    }
}

impl MarkPolicy {
    /// The wait after `tries` failed tries, the upper half of it chosen by `jitter` in [0, 1).
    pub fn backoff(&self, tries: u32, jitter: f64) -> Duration {
        super::policy::backoff(self.base, self.cap, tries, jitter)
    }
}

/// What one round of write-backs did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Marked {
    pub done: usize,
    pub waiting: usize,
    pub given_up: usize,
}

impl std::ops::AddAssign for Marked {
    fn add_assign(&mut self, o: Self) {
        self.done += o.done;
        self.waiting += o.waiting;
        self.given_up += o.given_up;
    }
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

/// The pending marks due at `now`, by mailbox.
pub fn due_by_mailbox<S: Store>(
    store: &S,
    now: Timestamp,
) -> Result<BTreeMap<String, Vec<(String, MarkEntry)>>, store::Error> {
    let mut out: BTreeMap<String, Vec<(String, MarkEntry)>> = BTreeMap::new();
    for (id, mark) in store.marks_due(now)? {
        out.entry(mark.mailbox.clone())
            .or_default()
            .push((id, mark));
    }
    Ok(out)
}

/// Writes every pending mark that is due, mailbox after mailbox.
pub async fn write_back<F: FolderFeed, S: Store>(
    feed: &F,
    store: &S,
    names: &Writeback,
    policy: &MarkPolicy,
) -> Result<Marked, store::Error> {
    let mut marked = Marked::default();
    for (mailbox, marks) in due_by_mailbox(store, Timestamp::now())? {
        marked += write_mailbox(feed, store, names, policy, &mailbox, &marks).await?;
    }
    Ok(marked)
}

/// Writes these marks of one mailbox, `policy.batch` mails per call, and records each outcome.
pub async fn write_mailbox<F: FolderFeed, S: Store>(
    feed: &F,
    store: &S,
    names: &Writeback,
    policy: &MarkPolicy,
    mailbox: &str,
    marks: &[(String, MarkEntry)],
) -> Result<Marked, store::Error> {
    let mut marked = Marked::default();
    for chunk in marks.chunks(policy.batch.max(1)) {
        let outcomes = write_chunk(feed, names, policy, mailbox, chunk).await;
        for (id, mark, outcome) in &outcomes {
            match outcome {
                MarkOutcome::Written => marked.done += 1,
                MarkOutcome::Later(next) => {
                    marked.waiting += 1;
                    tracing::info!(event = "writeback_retry", mailbox = %mailbox, id = %id, tries = next.attempts, reason = next.last_error.as_deref().unwrap_or(""));
                }
                MarkOutcome::GivenUp(why) => {
                    marked.given_up += 1;
                    tracing::warn!(event = "writeback_given_up", mailbox = %mailbox, id = %id, tries = mark.attempts + 1, reason = %why);
                }
            }
        }
        store.marks_written(&outcomes).await?;
    }
    Ok(marked)
}

/// One GetItem for the mails' current ChangeKeys and categories, one UpdateItem for all of
/// those found.
async fn write_chunk<F: FolderFeed>(
    feed: &F,
    names: &Writeback,
    policy: &MarkPolicy,
    mailbox: &str,
    chunk: &[(String, MarkEntry)],
) -> Vec<(String, MarkEntry, MarkOutcome)> {
    let failed = |(id, mark): &(String, MarkEntry), why: String, hint: Option<Duration>| {
        (id.clone(), mark.clone(), retry(mark, why, hint, policy))
    };
    let refs: Vec<ItemRef> = chunk
        .iter()
        .map(|(_, m)| ItemRef::new(m.item_id.clone(), None))
        .collect();
    let found = match feed.fetch(mailbox, &refs, false).await {
        Ok(found) => found,
        Err(e) => {
            return chunk
                .iter()
                .map(|m| failed(m, e.to_string(), hint(&e)))
                .collect();
        }
    };
    let by_id: HashMap<&str, &crate::feed::Fetched> = found
        .fetched
        .iter()
        .map(|f| (f.message.item_id.as_str(), f))
        .collect();
    let unreadable: HashMap<&str, &crate::feed::Error> = found
        .unreadable
        .iter()
        .map(|u| (u.item.id.as_str(), &u.error))
        .collect();
    let mut out = Vec::with_capacity(chunk.len());
    let mut marking = Vec::new();
    let mut changes = Vec::new();
    for m in chunk {
        if let Some(e) = unreadable.get(m.1.item_id.as_str()) {
            out.push(failed(m, e.to_string(), hint(e)));
            continue;
        }
        match by_id.get(m.1.item_id.as_str()) {
            Some(f) => {
                let item = ItemRef::new(f.message.item_id.clone(), f.message.change_key.clone());
                changes.push((item, categories(&f.categories, m.1.kind, names)));
                marking.push(m);
            }
            None => out.push(failed(
                m,
                "the mail was not found where it was (moved or deleted); the mark follows it when it shows up in a mapped folder".into(),
                None,
            )),
        }
    }
    if changes.is_empty() {
        return out;
    }
    match feed.mark(mailbox, &changes).await {
        Ok(results) => out.extend(marking.into_iter().zip(results).map(|(m, r)| match r {
            Ok(_) => (m.0.clone(), m.1.clone(), MarkOutcome::Written),
            Err(e) => failed(m, e.to_string(), hint(&e)),
        })),
        Err(e) => out.extend(
            marking
                .into_iter()
                .map(|m| failed(m, e.to_string(), hint(&e))),
        ),
    }
    out
}

/// The server's requested wait, if it gave one.
fn hint(e: &crate::feed::Error) -> Option<Duration> {
    match e.action() {
        Action::RetryAfter(d) => Some(d),
        _ => None,
    }
}

/// A failed try: the mark kept for a later one, or given up after the last.
fn retry(
    mark: &MarkEntry,
    why: String,
    hint: Option<Duration>,
    policy: &MarkPolicy,
) -> MarkOutcome {
    let tries = mark.attempts + 1;
    if tries >= policy.max_tries {
        return MarkOutcome::GivenUp(format!("category not written after {tries} tries: {why}"));
    }
    let wait = policy
        .backoff(tries, fastrand::f64())
        .max(hint.unwrap_or_default().min(policy.cap));
    let now = Timestamp::now();
    MarkOutcome::Later(MarkEntry {
        attempts: tries,
        next_try: Some(now.checked_add(wait).unwrap_or(now)),
        last_error: Some(why),
        ..mark.clone()
    })
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
