//! The tracking request — the contract between the watcher and every sink — and the record
//! foldertrack keeps per message: its identity (R18), where it was seen (R19), its regarding
//! and its history (R13). PURE: [`MessageRecord::sight`] decides what a sighting means.

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// A record in the system of record.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Regarding {
    /// The table's logical name, e.g. `account`.
    pub entity: String,
    /// The row's id (a GUID).
    pub id: String,
}

impl fmt::Display for Regarding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.entity, self.id)
    }
}

/// What identifies a message across moves, copies and mailboxes (R18). Never the ItemId.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Identity {
    /// The normalised InternetMessageId.
    MessageId(String),
    /// No InternetMessageId (drafts, some system mail): mailbox + PR_SEARCH_KEY.
    SearchKey { mailbox: String, key: String },
}

impl Identity {
    /// The identity of a message from what Exchange returned, or `None` when it has neither
    /// an InternetMessageId nor a search key.
    pub fn of(
        mailbox: &str,
        internet_message_id: Option<&str>,
        search_key: Option<&str>,
    ) -> Option<Self> {
        if let Some(id) = internet_message_id.and_then(normalise_message_id) {
            return Some(Self::MessageId(id));
        }
        let key = search_key?.trim();
        (!key.is_empty()).then(|| Self::SearchKey {
            mailbox: mailbox.to_ascii_lowercase(),
            key: key.to_owned(),
        })
    }

    /// The stable tracking request id: the same message gets the same id on every run and
    /// every machine (R21).
    pub fn request_id(&self) -> String {
        let mut h = Sha256::new();
        match self {
            Self::MessageId(id) => {
                h.update(b"imid\0");
                h.update(id.as_bytes());
            }
            Self::SearchKey { mailbox, key } => {
                h.update(b"searchkey\0");
                h.update(mailbox.as_bytes());
                h.update(b"\0");
                h.update(key.as_bytes());
            }
        }
        hex::encode(&h.finalize()[..16])
    }

    pub fn source(&self) -> IdentitySource {
        match self {
            Self::MessageId(_) => IdentitySource::InternetMessageId,
            Self::SearchKey { .. } => IdentitySource::SearchKey,
        }
    }
}

/// Normalises an InternetMessageId: surrounding space trimmed, angle brackets kept (added when
/// missing), the domain part lower-cased, the local part left as it is (it is case-sensitive).
pub fn normalise_message_id(raw: &str) -> Option<String> {
    let inner = raw
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    if inner.is_empty() {
        return None;
    }
    Some(match inner.rsplit_once('@') {
        Some((local, domain)) => format!("<{local}@{}>", domain.to_ascii_lowercase()),
        None => format!("<{inner}>"),
    })
}

/// Which identity a record is keyed on.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum IdentitySource {
    InternetMessageId,
    /// The message had no InternetMessageId; mailbox + PR_SEARCH_KEY was used.
    SearchKey,
}

/// Why a tracking request was emitted.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The message appeared in a mapped folder (R11), or was there at the first sync of a
    /// mapping with `track_existing` (R10).
    MovedIn,
    /// The message's regarding changed: moved to a mapped folder with another regarding (R12,
    /// R14) or its mapping was re-pointed (R8).
    Relinked,
}

/// One tracking request: a line of the JSONL sink, the body of a webhook call.
/// Schema: `schemas/tracking_request.v1.json`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrackingRequest {
    /// Stable per message (R21): derived from its identity, never from its ItemId.
    pub id: String,
    /// Stable per event: `{id}.{sequence}`. Sinks deduplicate on it.
    pub event_id: String,
    /// 1 for the first event about the message, then counting up.
    pub sequence: u32,
    pub event: EventKind,
    /// The mailbox (primary SMTP address) the message was seen in.
    pub mailbox: String,
    pub folder: FolderLocation,
    /// The configured mapping (its folder path or id as written in the config).
    pub mapping: String,
    /// The record the message is to be linked to; absent when the mapping has none.
    pub regarding: Option<Regarding>,
    /// For a re-link: the record foldertrack had linked it to, so a sink can tell a change made
    /// in the target system from its own (R24).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_regarding: Option<Regarding>,
    pub message: MessageInfo,
    /// When foldertrack saw the change (RFC 3339).
    #[schemars(with = "String")]
    pub detected_at: Timestamp,
}

/// A mailbox folder: the id is what counts, the path is for people.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FolderLocation {
    pub id: String,
    pub path: String,
}

/// The message, as far as a record needs it (R35: a body only when the mapping asks).
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MessageInfo {
    /// Normalised, angle brackets kept; absent for drafts and some system mail.
    pub internet_message_id: Option<String>,
    pub identity: Option<IdentitySource>,
    /// The current EWS ItemId (changes on every move; never an identity).
    pub item_id: String,
    pub change_key: Option<String>,
    pub conversation_id: Option<String>,
    pub subject: Option<String>,
    pub from: Option<Address>,
    #[serde(default)]
    pub to: Vec<Address>,
    #[serde(default)]
    pub cc: Vec<Address>,
    #[schemars(with = "Option<String>")]
    pub sent_at: Option<Timestamp>,
    #[schemars(with = "Option<String>")]
    pub received_at: Option<Timestamp>,
    pub size: Option<u64>,
    #[serde(default)]
    pub has_attachments: bool,
    /// `outgoing` when the mailbox owner sent it (R16).
    pub direction: Option<Direction>,
    /// Plain text; only with `include_body = true` on the mapping.
    pub body: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Address {
    pub name: Option<String>,
    pub address: String,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Incoming,
    Outgoing,
}

/// schemas/tracking_request.v1.json, generated from [`TrackingRequest`].
pub fn schema_json() -> String {
    let schema = schemars::schema_for!(TrackingRequest);
    serde_json::to_string_pretty(&schema).expect("a schema always serialises") + "\n"
}

/// Where a message was seen: a mapped folder of a mailbox. Stored in every message record,
/// hence the short field names.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Place {
    #[serde(rename = "m")]
    pub mailbox: String,
    #[serde(rename = "f")]
    pub folder_id: String,
    #[serde(rename = "p")]
    pub path: String,
}

impl Place {
    fn location(&self) -> Location {
        Location {
            folder_id: self.folder_id.clone(),
            path: self.path.clone(),
        }
    }
}

/// A folder of the record owner's mailbox.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Location {
    #[serde(rename = "f")]
    pub folder_id: String,
    #[serde(rename = "p")]
    pub path: String,
}

/// A message appearing in a mapped folder, with what its mapping says.
#[derive(Clone, Debug, PartialEq)]
pub struct Sighting {
    pub place: Place,
    pub mapping: String,
    pub regarding: Option<Regarding>,
    pub at: Timestamp,
}

/// What foldertrack remembers about one message (one per identity, R19/R20). One per tracked
/// message, kept for good: hence the short field names (see docs/benchmarks.md).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct MessageRecord {
    /// The request id; the store's key, not repeated in the value.
    #[serde(skip)]
    pub id: String,
    /// The mailbox that filed it first: moves inside it re-link, other mailboxes are sightings.
    #[serde(rename = "o")]
    pub owner: String,
    /// The normalised InternetMessageId, when it has one: `explain` shows it.
    #[serde(rename = "i", default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// The subject when first tracked: `explain` finds a mail by a fragment of it.
    #[serde(rename = "j", default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The owner's folder the message sits in, as far as foldertrack knows; `None` after it
    /// left every mapped folder.
    #[serde(rename = "l", default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    pub regarding: Option<Regarding>,
    /// Events emitted so far (the next one gets `events + 1`).
    #[serde(rename = "e")]
    pub events: u32,
    /// The latest event the sink confirmed: an older one is never sent after it (R21).
    #[serde(rename = "d", default, skip_serializing_if = "is_zero")]
    pub delivered: u32,
    /// Other mailboxes that filed the same message (R19).
    #[serde(rename = "s", default, skip_serializing_if = "Vec::is_empty")]
    pub sightings: Vec<Place>,
    /// Sightings in a folder whose regarding differs from the record's (R19).
    #[serde(rename = "c", default, skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<Regarding>,
    #[serde(rename = "h")]
    pub history: Vec<HistoryEntry>,
    /// The dead letter of its latest event given up (R27): moving the mail out and in again
    /// puts it back in the outbox. 0 when none.
    #[serde(rename = "f", default, skip_serializing_if = "is_zero_seq")]
    pub failed: u64,
}

fn is_zero_seq(n: &u64) -> bool {
    *n == 0
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// One line of a message's history, shown by `foldertrack items`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct HistoryEntry {
    #[serde(rename = "t", with = "jiff::fmt::serde::timestamp::second::required")]
    pub at: Timestamp,
    #[serde(rename = "w")]
    pub what: String,
}

/// What a sighting means for the sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Emit this event.
    Emit(EventKind),
    /// Recorded on the record; nothing for the sink.
    Recorded,
}

/// How the first line of a record's history begins.
const TRACKED_FROM: &str = "tracked from";

impl MessageRecord {
    /// When it was first tracked, while its history still has that line (R41 prunes it after
    /// `store.history_days`).
    pub fn tracked_at(&self) -> Option<Timestamp> {
        self.history
            .first()
            .filter(|h| h.what.starts_with(TRACKED_FROM))
            .map(|h| h.at)
    }

    /// When something last happened to it.
    pub fn last_change(&self) -> Option<Timestamp> {
        self.history.last().map(|h| h.at)
    }

    /// The record of a message seen for the first time.
    pub fn first(id: String, s: &Sighting) -> Self {
        Self {
            id,
            location: Some(s.place.location()),
            owner: s.place.mailbox.clone(),
            message_id: None,
            subject: None,
            regarding: s.regarding.clone(),
            events: 0,
            delivered: 0,
            sightings: Vec::new(),
            conflicts: Vec::new(),
            history: vec![HistoryEntry {
                at: s.at,
                what: format!("{TRACKED_FROM} {}", s.place.path),
            }],
            failed: 0,
        }
    }

    /// Applies a later sighting of the same message (R12, R14, R19, R20).
    pub fn sight(&mut self, s: &Sighting) -> Verdict {
        if s.place.mailbox != self.owner {
            // Another mailbox filed the same message: one record, one more sighting.
            if !self.sightings.contains(&s.place) {
                self.sightings.push(s.place.clone());
            }
            let mut what = format!("also filed by {} in {}", s.place.mailbox, s.place.path);
            if let Some(r) = &s.regarding
                && self.regarding.as_ref() != Some(r)
            {
                if !self.conflicts.contains(r) {
                    self.conflicts.push(r.clone());
                }
                what += &format!(" (conflict: that folder is regarding {r})");
            }
            self.note(s.at, what);
            return Verdict::Recorded;
        }
        self.location = Some(s.place.location());
        match &s.regarding {
            Some(r) if self.regarding.as_ref() != Some(r) => {
                self.regarding = Some(r.clone());
                self.note(s.at, format!("moved to {}: re-linked to {r}", s.place.path));
                Verdict::Emit(EventKind::Relinked)
            }
            _ => {
                self.note(s.at, format!("moved to {}", s.place.path));
                Verdict::Recorded
            }
        }
    }

    /// The mapping of the folder the message sits in now points at `regarding` (R8).
    pub fn repoint(&mut self, regarding: &Regarding, at: Timestamp) -> Verdict {
        if self.regarding.as_ref() == Some(regarding) {
            return Verdict::Recorded;
        }
        self.regarding = Some(regarding.clone());
        self.note(at, format!("mapping re-pointed: re-linked to {regarding}"));
        Verdict::Emit(EventKind::Relinked)
    }

    /// The message left a mapped folder (moved out or deleted, R13): recorded, nothing sent.
    pub fn left(&mut self, folder_id: &str, path: &str, at: Timestamp) {
        if self
            .location
            .as_ref()
            .is_some_and(|l| l.folder_id == folder_id)
        {
            self.location = None;
        }
        self.note(at, format!("left {path} (moved out or deleted)"));
    }

    /// Whether a later event than `sequence` already reached the sink.
    pub fn superseded(&self, sequence: u32) -> bool {
        self.delivered > sequence
    }

    pub fn note(&mut self, at: Timestamp, what: String) {
        self.history.push(HistoryEntry { at, what });
    }

    /// Forgets history lines older than `cutoff` (R41), keeping the latest line so the record
    /// still says what last happened. Returns how many lines went.
    pub fn prune_history(&mut self, cutoff: Timestamp) -> usize {
        let keep_from = self
            .history
            .iter()
            .position(|h| h.at >= cutoff)
            .unwrap_or(self.history.len())
            .min(self.history.len().saturating_sub(1));
        self.history.drain(..keep_from).count()
    }

    /// The next event's sequence number and id.
    pub fn next_event(&mut self) -> (u32, String) {
        self.events += 1;
        (self.events, format!("{}.{}", self.id, self.events))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> Timestamp {
        Timestamp::from_second(1_800_000_000).unwrap()
    }

    fn sighting(mailbox: &str, folder: &str, regarding: Option<&str>) -> Sighting {
        Sighting {
            place: Place {
                mailbox: mailbox.into(),
                folder_id: folder.into(),
                path: format!("Inbox/{folder}"),
            },
            mapping: format!("Inbox/{folder}"),
            regarding: regarding.map(|id| Regarding {
                entity: "account".into(),
                id: id.into(),
            }),
            at: at(),
        }
    }

    #[test]
    fn r18_message_ids_are_normalised_but_the_local_part_keeps_its_case() {
        let cases = [
            ("  <AbC@Example.COM> ", Some("<AbC@example.com>")),
            ("AbC@example.com", Some("<AbC@example.com>")),
            ("<no-at-sign>", Some("<no-at-sign>")),
            ("   ", None),
            ("<>", None),
        ];
        for (raw, want) in cases {
            assert_eq!(normalise_message_id(raw).as_deref(), want, "{raw:?}");
        }
        assert_ne!(normalise_message_id("<a@x>"), normalise_message_id("<A@x>"));
    }

    #[test]
    fn r18_without_a_message_id_the_search_key_of_the_mailbox_is_the_identity() {
        let a = Identity::of("Alice@example.com", None, Some("0A0B")).unwrap();
        assert_eq!(a.source(), IdentitySource::SearchKey);
        let b = Identity::of("alice@example.com", Some(" "), Some("0A0B")).unwrap();
        assert_eq!(a.request_id(), b.request_id());
        let other = Identity::of("bob@example.com", None, Some("0A0B")).unwrap();
        assert_ne!(a.request_id(), other.request_id());
        assert_eq!(Identity::of("a@x", None, None), None);
    }

    #[test]
    fn r21_the_request_id_is_stable_and_ignores_formatting() {
        let a = Identity::of("a@x", Some("<m1@Example.com>"), None).unwrap();
        let b = Identity::of("b@x", Some(" m1@example.com "), Some("FF")).unwrap();
        assert_eq!(a.request_id(), b.request_id());
        // A fixed value: the id must never change between versions or machines.
        assert_eq!(
            a.request_id(),
            Identity::MessageId("<m1@example.com>".into()).request_id()
        );
        assert_eq!(a.request_id().len(), 32);
    }

    #[test]
    fn r12_a_move_to_a_folder_with_another_regarding_relinks() {
        let mut r = MessageRecord::first("id".into(), &sighting("a", "A", Some("x")));
        assert_eq!(
            r.sight(&sighting("a", "B", Some("y"))),
            Verdict::Emit(EventKind::Relinked)
        );
        assert_eq!(r.regarding.as_ref().unwrap().id, "y");
        assert_eq!(r.location.as_ref().unwrap().folder_id, "B");
    }

    #[test]
    fn r12_a_move_to_a_folder_without_regarding_keeps_the_record() {
        let mut r = MessageRecord::first("id".into(), &sighting("a", "A", Some("x")));
        assert_eq!(r.sight(&sighting("a", "B", None)), Verdict::Recorded);
        assert_eq!(r.regarding.as_ref().unwrap().id, "x");
    }

    #[test]
    fn r14_moved_out_and_back_in_is_not_a_new_record_and_relinks_only_on_difference() {
        let mut r = MessageRecord::first("id".into(), &sighting("a", "A", Some("x")));
        r.left("A", "Inbox/A", at());
        assert_eq!(r.location, None);
        assert_eq!(r.sight(&sighting("a", "A", Some("x"))), Verdict::Recorded);
        assert_eq!(r.events, 0);
        assert_eq!(r.history.len(), 3);
    }

    #[test]
    fn r19_another_mailbox_is_a_sighting_and_a_different_regarding_a_conflict() {
        let mut r = MessageRecord::first("id".into(), &sighting("a", "A", Some("x")));
        assert_eq!(r.sight(&sighting("b", "B", Some("x"))), Verdict::Recorded);
        assert_eq!(r.sight(&sighting("c", "C", Some("z"))), Verdict::Recorded);
        assert_eq!(r.sightings.len(), 2);
        assert_eq!(r.conflicts.len(), 1);
        assert_eq!(r.regarding.as_ref().unwrap().id, "x", "the first one wins");
        // The same sighting again (a retried page) adds nothing.
        r.sight(&sighting("b", "B", Some("x")));
        assert_eq!(r.sightings.len(), 2);
    }

    #[test]
    fn r8_repointing_relinks_once() {
        let mut r = MessageRecord::first("id".into(), &sighting("a", "A", Some("x")));
        let y = Regarding {
            entity: "account".into(),
            id: "y".into(),
        };
        assert_eq!(r.repoint(&y, at()), Verdict::Emit(EventKind::Relinked));
        assert_eq!(r.repoint(&y, at()), Verdict::Recorded);
    }
}
