//! PURE: one page of a folder's changes → what to fetch (candidates for tracking), what to
//! remember without tracking (a baseline), what left the folder, and what is ignored and why.
//! The identity checks that need other folders and mailboxes (R12, R19) happen when the page is
//! committed: see `MessageRecord::sight`.

use crate::feed::{FeedChange, ItemRef};
use std::collections::HashSet;

/// How the folder stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The first full sync of a new mapping (R10).
    Baseline { track_existing: bool },
    /// After the baseline, including a re-sync after a lost cursor (R23).
    Track,
}

/// Why a change produces nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The item is known in this folder already (a replayed page, a re-baseline).
    AlreadySeen,
    /// An edit — subject, categories, our own write-back: only appearing in a folder counts (R15).
    Edited,
    ReadFlag,
    /// A removal of an item foldertrack never saw here.
    UnknownRemoval,
    Unreadable(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ignored {
    pub item: String,
    pub reason: Reason,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Classified {
    /// Fetch these: each may become a tracking request.
    pub fetch: Vec<ItemRef>,
    /// Remember these as seen, untracked (a baseline without `track_existing`).
    pub seen_only: Vec<String>,
    /// The InternetMessageIds of `seen_only`'s items that brought one along.
    pub baselined: Vec<String>,
    /// These left the folder (moved out or deleted, R13).
    pub left: Vec<String>,
    /// Known items that were edited: ignored, unless a given-up mail lost its failure
    /// category (R27), which the caller checks.
    pub edited: Vec<ItemRef>,
    pub ignored: Vec<Ignored>,
}

/// Classifies a page. `seen` holds the ids of this page's items that the folder already knew.
pub fn classify(changes: &[FeedChange], mode: Mode, seen: &HashSet<String>) -> Classified {
    let mut out = Classified::default();
    let mut this_page = HashSet::new();
    let ignore = |out: &mut Classified, item: &str, reason| {
        out.ignored.push(Ignored {
            item: item.to_owned(),
            reason,
        })
    };
    for change in changes {
        match change {
            FeedChange::Added(item) => {
                if seen.contains(&item.id) || !this_page.insert(item.id.as_str()) {
                    ignore(&mut out, &item.id, Reason::AlreadySeen);
                } else if mode
                    == (Mode::Baseline {
                        track_existing: false,
                    })
                {
                    out.seen_only.push(item.id.clone());
                    out.baselined.extend(item.message_id());
                } else {
                    out.fetch.push(item.clone());
                }
            }
            FeedChange::Changed(item) => {
                if seen.contains(&item.id) {
                    out.edited.push(item.clone());
                }
                ignore(&mut out, &item.id, Reason::Edited)
            }
            FeedChange::Removed(id) if seen.contains(id) => out.left.push(id.clone()),
            FeedChange::Removed(id) => ignore(&mut out, id, Reason::UnknownRemoval),
            FeedChange::ReadFlag(id) => ignore(&mut out, id, Reason::ReadFlag),
            FeedChange::Unreadable(why) => ignore(&mut out, "", Reason::Unreadable(why.clone())),
        }
    }
    out
}

/// The ids a page's classification needs looked up in the folder's seen set.
pub fn lookups(changes: &[FeedChange]) -> Vec<&str> {
    changes
        .iter()
        .filter_map(|c| match c {
            FeedChange::Added(item) | FeedChange::Changed(item) => Some(item.id.as_str()),
            FeedChange::Removed(id) => Some(id.as_str()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn added(id: &str) -> FeedChange {
        FeedChange::Added(ItemRef::new(id, Some("v1".into())))
    }

    fn ids(refs: &[ItemRef]) -> Vec<&str> {
        refs.iter().map(|r| r.id.as_str()).collect()
    }

    fn seen(ids: &[&str]) -> HashSet<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    const BASELINE: Mode = Mode::Baseline {
        track_existing: false,
    };

    #[test]
    fn r10_the_first_sync_of_a_new_mapping_is_a_baseline() {
        let c = classify(&[added("a"), added("b"), added("c")], BASELINE, &seen(&[]));
        assert!(c.fetch.is_empty());
        assert_eq!(c.seen_only, ["a", "b", "c"]);
    }

    #[test]
    fn r10_a_baseline_remembers_the_message_ids_the_changes_brought() {
        let with_id = FeedChange::Added(ItemRef {
            message_id: Some(" <M1@Example.com> ".into()),
            ..ItemRef::new("a", None)
        });
        let c = classify(&[with_id.clone(), added("b")], BASELINE, &seen(&[]));
        assert_eq!(c.baselined, ["<M1@example.com>"]);
        let tracked = classify(&[with_id], Mode::Track, &seen(&[]));
        assert!(tracked.baselined.is_empty());
    }

    #[test]
    fn r10_track_existing_makes_the_baseline_tracking_requests() {
        let mode = Mode::Baseline {
            track_existing: true,
        };
        let c = classify(&[added("a"), added("b"), added("c")], mode, &seen(&[]));
        assert_eq!(ids(&c.fetch), ["a", "b", "c"]);
        assert!(c.seen_only.is_empty());
    }

    #[test]
    fn r11_an_item_that_appears_after_the_baseline_is_a_candidate() {
        let c = classify(&[added("new")], Mode::Track, &seen(&["old"]));
        assert_eq!(ids(&c.fetch), ["new"]);
    }

    #[test]
    fn r13_an_item_that_leaves_is_recorded_not_untracked() {
        let changes = [
            FeedChange::Removed("t".into()),
            FeedChange::Removed("x".into()),
        ];
        let c = classify(&changes, Mode::Track, &seen(&["t"]));
        assert_eq!(c.left, ["t"]);
        assert!(c.fetch.is_empty());
        assert_eq!(c.ignored[0].reason, Reason::UnknownRemoval);
    }

    #[test]
    fn r15_edits_and_our_own_write_back_are_never_requests() {
        let changes = [
            FeedChange::Changed(ItemRef::new("t", Some("v2".into()))),
            FeedChange::ReadFlag("t".into()),
        ];
        let c = classify(&changes, Mode::Track, &seen(&["t"]));
        assert!(c.fetch.is_empty() && c.seen_only.is_empty() && c.left.is_empty());
        let reasons: Vec<_> = c.ignored.iter().map(|i| i.reason.clone()).collect();
        assert_eq!(reasons, [Reason::Edited, Reason::ReadFlag]);
    }

    #[test]
    fn r22_a_replayed_page_fetches_nothing_already_seen() {
        let c = classify(&[added("a"), added("b")], Mode::Track, &seen(&["a"]));
        assert_eq!(ids(&c.fetch), ["b"]);
        assert_eq!(c.ignored[0].reason, Reason::AlreadySeen);
    }

    #[test]
    fn r23_a_resync_after_a_lost_cursor_fetches_only_unknown_items() {
        // A lost cursor lists the whole folder again as Added; the folder is past its baseline.
        let c = classify(
            &[added("known"), added("arrived")],
            Mode::Track,
            &seen(&["known"]),
        );
        assert_eq!(ids(&c.fetch), ["arrived"]);
    }

    #[test]
    fn the_same_item_twice_in_a_page_is_one_candidate() {
        let c = classify(&[added("a"), added("a")], Mode::Track, &seen(&[]));
        assert_eq!(ids(&c.fetch), ["a"]);
    }

    #[test]
    fn unreadable_changes_are_reported_not_dropped_silently() {
        let c = classify(
            &[FeedChange::Unreadable("bad date".into())],
            Mode::Track,
            &seen(&[]),
        );
        assert_eq!(c.ignored[0].reason, Reason::Unreadable("bad date".into()));
    }

    #[test]
    fn lookups_name_added_and_removed_items() {
        let changes = [
            added("a"),
            FeedChange::Removed("b".into()),
            FeedChange::ReadFlag("c".into()),
        ];
        assert_eq!(lookups(&changes), ["a", "b"]);
    }
}
