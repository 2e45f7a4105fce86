//! The values stored in each tree: JSON behind a leading format byte, so a record written by a
//! newer foldertrack is recognised rather than misread.

use crate::tracking::{Regarding, TrackingRequest};
use jiff::Timestamp;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// The record format this build writes.
const RECORD_VERSION: u8 = 1;

/// A watched folder: its cursor and where it stands (folders tree).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FolderRecord {
    pub mailbox: String,
    pub folder_id: String,
    /// For people: the path when last seen.
    pub path: String,
    /// The mapping that makes this folder watched.
    pub mapping: String,
    /// The opaque sync cursor; `None` before the first page and after a reset (R23).
    pub cursor: Option<String>,
    /// A full sync has completed once: from then on, whatever appears is a tracking request
    /// (R10), and a cursor reset re-baselines without forgetting what was seen (R23).
    pub baselined: bool,
    /// When its first sync ran: what was in the folder then is its baseline (R10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Timestamp>,
}

/// How a mapping stands (R5, R6).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case", tag = "state", content = "reason")]
pub enum MappingState {
    Active,
    /// Not watched for now, for the reason given (e.g. `folder_moved_outside_inbox`).
    Paused(String),
    /// The folder was deleted: what was tracked stays tracked; never re-attached by name.
    Orphaned,
    /// The configured path names no folder (yet).
    NotFound,
}

impl MappingState {
    /// The state in words, e.g. `paused: folder_moved_outside_inbox`.
    pub fn describe(&self) -> String {
        match self {
            MappingState::Active => "active".to_owned(),
            MappingState::Paused(reason) => format!("paused: {reason}"),
            MappingState::Orphaned => "orphaned: the folder was deleted".to_owned(),
            MappingState::NotFound => "not found".to_owned(),
        }
    }
}

/// A configured mapping, keyed by FolderId once resolved (mappings tree).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct MappingRecord {
    pub mailbox: String,
    /// As written in the config: the path or the FolderId.
    pub name: String,
    pub folder_id: Option<String>,
    pub path: Option<String>,
    /// The regarding the items from this mapping were last linked to (R8 compares).
    pub regarding: Option<Regarding>,
    pub state: MappingState,
    /// With `include_subfolders`: the subfolders there were when it was first watched have been
    /// recorded (as baselines); a subfolder found later is new and tracked from its creation
    /// (R2).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub subfolders: bool,
}

/// An item seen in a watched folder (seen tree), keyed by a hash of its ItemId.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SeenRecord {
    /// The request id of the message, when it was tracked or is known.
    #[serde(rename = "m", default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// An item that appeared in a watched folder but could not be read from Exchange (pending
/// tree, keyed like the seen tree): retried on every later pass until it is read, or is gone
/// from the folder (R33).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PendingItem {
    pub mailbox: String,
    pub folder_id: String,
    /// For people: the folder's path when it was last tried.
    pub path: String,
    pub item_id: String,
    /// Waiting to be re-linked after its mapping was re-pointed (R8), not to be tracked.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub repointed: bool,
    /// What the server answered last.
    pub error: String,
    pub attempts: u32,
    pub first_at: Timestamp,
    pub last_at: Timestamp,
}

/// A tracking request waiting for delivery (outbox tree, keyed by sequence).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct OutboxEntry {
    pub request: TrackingRequest,
    /// Failed attempts so far.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempts: u32,
    /// Not before this time (after a failed attempt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_try: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When its transient failures began, while the sink took other requests: they are
    /// retried for the configured period from here, then it is undeliverable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<Timestamp>,
    /// Refusals so far (a 4xx other than a final rejection): they count toward the attempt
    /// limit; transient failures do not.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub refused: u32,
}

impl OutboxEntry {
    /// A request not tried yet.
    pub fn new(request: TrackingRequest) -> Self {
        Self {
            request,
            attempts: 0,
            next_try: None,
            last_error: None,
            failing_since: None,
            refused: 0,
        }
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Why a request left the outbox without being delivered.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Failed {
    /// Out of attempts (R30); `foldertrack retry` re-queues it.
    Undeliverable,
    /// Refused for good by the sink (R32).
    Rejected,
}

/// A request that could not be delivered (dead tree, keyed by its outbox sequence).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DeadEntry {
    pub request: TrackingRequest,
    pub state: Failed,
    pub reason: String,
    pub attempts: u32,
    pub at: Timestamp,
}

/// A regarding record delivery waits for (R25): the sink said it is gone or may not be
/// appended to. Entries regarding it — only `mailbox`'s, when the refusal was that mailbox
/// owner's — stay in the outbox untried until a probe gets one through (holds tree).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct HoldRecord {
    pub regarding: Regarding,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mailbox: Option<String>,
    /// What the sink said, with what to do.
    pub reason: String,
    pub since: Timestamp,
    /// When one held entry is tried again.
    pub next_probe: Timestamp,
}

impl HoldRecord {
    /// `entity \0 id \0 mailbox`: one hold per record and scope.
    pub fn key(&self) -> Vec<u8> {
        [
            self.regarding.entity.as_str(),
            &self.regarding.id.to_ascii_lowercase(),
            self.mailbox.as_deref().unwrap_or(""),
        ]
        .join("\0")
        .into_bytes()
    }

    /// Whether this hold keeps `request` waiting.
    pub fn covers(&self, request: &TrackingRequest) -> bool {
        request.regarding.as_ref().is_some_and(|r| {
            r.entity == self.regarding.entity && r.id.eq_ignore_ascii_case(&self.regarding.id)
        }) && self
            .mailbox
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(&request.mailbox))
    }
}

/// Which category the write-back puts on the mail (R26, R27).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MarkKind {
    Tracked,
    Failed,
}

/// A pending write-back (marks tree, keyed by request id: one per message, the latest wins).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct MarkEntry {
    pub mailbox: String,
    /// The message's ItemId as last seen; updated when it shows up again after a move (R28).
    pub item_id: String,
    pub kind: MarkKind,
    /// Failed tries so far.
    #[serde(default)]
    pub attempts: u32,
    /// Not before this time (after a failed try); `None` is due now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_try: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// The sink does not answer: one state for the whole sink instead of a failure per request
/// (meta tree). While it lasts the deliverer probes with one request at a time.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SinkOutage {
    /// The first failed attempt of the outage.
    pub since: Timestamp,
    /// The last failure, as the sink or the network gave it.
    pub reason: String,
    /// Failed probes since it began.
    pub probes: u32,
    /// When the next probe goes out.
    pub next_probe: Timestamp,
}

/// `[version byte] JSON`.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![RECORD_VERSION];
    serde_json::to_writer(&mut out, value).expect("records always serialise");
    out
}

/// What is wrong with a stored record.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("record format {0}, this build reads {RECORD_VERSION}: a newer foldertrack wrote it")]
    NewerFormat(u8),
    #[error("empty record")]
    Empty,
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// Reads a record.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    match bytes.split_first() {
        Some((&RECORD_VERSION, json)) => Ok(serde_json::from_slice(json)?),
        Some((v, _)) => Err(DecodeError::NewerFormat(*v)),
        None => Err(DecodeError::Empty),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_newer_ones_are_refused() {
        let seen = SeenRecord {
            message: Some("ab".into()),
        };
        let bytes = encode(&seen);
        assert_eq!(decode::<SeenRecord>(&bytes).unwrap(), seen);
        let mut newer = bytes.clone();
        newer[0] = 9;
        assert!(
            decode::<SeenRecord>(&newer)
                .unwrap_err()
                .to_string()
                .contains("newer")
        );
        assert!(decode::<SeenRecord>(&[]).is_err());
        assert_eq!(
            encode(&SeenRecord::default()).len(),
            3,
            "an untracked item costs 3 bytes"
        );
    }
}
