//! Durable state: per folder its sync cursor, per message its identity and history, per
//! mapping its resolution, and the outbox of tracking requests waiting for delivery.
//!
//! A backend provides five primitives (one atomic transaction over named trees, point reads,
//! prefix scans, a flush, its size); everything foldertrack stores is written once, in the
//! provided methods of [`Store`], so [`SledStore`] (the only code that names sled) and
//! [`MemStore`] (for unit tests) keep the same contract.

pub mod handover;
pub mod keys;
mod mem;
pub mod records;
mod sled;

pub use self::sled::{HIGH_WATER, SledStore, cache_bytes};
pub use mem::MemStore;
pub use records::{
    DeadEntry, Failed, FolderRecord, HoldRecord, MappingRecord, MappingState, MarkEntry, MarkKind,
    OutboxEntry, PendingItem, SeenRecord, SinkOutage,
};

use crate::tracking::{
    EventKind, FolderLocation, Identity, MessageInfo, MessageRecord, Sighting, TrackingRequest,
    Verdict,
};
use jiff::Timestamp;
use serde::{Serialize, de::DeserializeOwned};
use std::cell::RefCell;
use std::collections::HashSet;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

/// The format this build writes into `meta/format`; a store with a larger one is refused.
pub const FORMAT: u32 = 1;

/// The trees of the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tree {
    Meta,
    Mappings,
    Folders,
    Seen,
    Messages,
    Outbox,
    Dead,
    Marks,
    Pending,
    Holds,
    Baseline,
}

impl Tree {
    pub const ALL: [Tree; 11] = [
        Tree::Meta,
        Tree::Mappings,
        Tree::Folders,
        Tree::Seen,
        Tree::Messages,
        Tree::Outbox,
        Tree::Dead,
        Tree::Marks,
        Tree::Pending,
        Tree::Holds,
        Tree::Baseline,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Tree::Meta => "meta",
            Tree::Mappings => "mappings",
            Tree::Folders => "folders",
            Tree::Seen => "seen",
            Tree::Messages => "messages",
            Tree::Outbox => "outbox",
            Tree::Dead => "dead",
            Tree::Marks => "marks",
            Tree::Pending => "pending",
            Tree::Holds => "holds",
            Tree::Baseline => "baseline",
        }
    }
}

/// A store failure, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "store {path}: written by a newer foldertrack (store format {found}, this build reads up to {FORMAT}); run that newer version, or set store.path to another folder"
    )]
    NewerFormat { path: PathBuf, found: u32 },
    #[error("store {path} cannot be opened: {reason}. {}", open_advice(reason))]
    Open { path: PathBuf, reason: String },
    /// Another process holds the store's lock.
    #[error(
        "store {path} is in use by another process, most likely a running foldertrack: stop it first (`systemctl stop foldertrack`), or, while it runs, use its admin API (`foldertrack status`, `items`, `retry` and `explain` go through it); the store is intact"
    )]
    InUse { path: PathBuf },
    #[error("store: {0}")]
    Storage(String),
    /// The store holds fewer requests than were delivered from it: it went back in time.
    #[error(
        "store {path} went back in time: requests up to {delivered} were delivered from it, but it now ends at {found} (a restored backup, or a disk that lost its last writes). Starting would send up to {} requests again. Put the newest copy of the store back; or, to accept the resends, delete {} and start again",
        delivered - found,
        high_water.display()
    )]
    RolledBack {
        path: PathBuf,
        high_water: PathBuf,
        delivered: u64,
        found: u64,
    },
    /// The disk under the store failed (full, read-only, an I/O error): final for this run.
    #[error(
        "store: the disk failed: {0}. foldertrack stops so that its service manager restarts it; free space or fix the disk or its permissions first. Nothing is lost: what was not recorded is done again at the next start"
    )]
    Disk(String),
    #[error("store: unreadable record in {tree}: {reason}")]
    Corrupt { tree: &'static str, reason: String },
}

/// What to do about a store that cannot be opened, by why: advice that loses nothing first.
fn open_advice(reason: &str) -> &'static str {
    let has = |needles: &[&str]| needles.iter().any(|n| reason.contains(n));
    if has(&[
        "os error 13",
        "os error 30",
        "os error 1)",
        "ermission denied",
        "ead-only",
    ]) {
        "The store is intact: make its folder and files writable by the agent's user (permissions, a read-only mount, `chattr -i`) and start again; do not move it aside"
    } else if has(&["os error 28", "os error 27", "No space left"]) {
        "The store is intact: free space on its disk and start again; do not move it aside"
    } else if has(&[self::sled::HIGH_WATER]) {
        ""
    } else {
        "If another foldertrack uses it, stop that one. If it is corrupt, restore the folder from a backup (one older than the last delivery is refused until you accept the resends). Only as a last resort move it aside: every folder is then baselined afresh, so mail filed into mapped folders until the restart is not tracked, and messages already tracked may be sent again"
    }
}

/// A key and its value.
pub type Entry = (Vec<u8>, Vec<u8>);

/// Why a transaction did not complete.
#[derive(Debug)]
pub enum TxError {
    /// A concurrent transaction touched the same keys: the backend runs the closure again.
    Conflict,
    /// Stop: nothing is written.
    Abort(Error),
}

impl From<Error> for TxError {
    fn from(e: Error) -> Self {
        TxError::Abort(e)
    }
}

/// The view of the store inside one transaction. Everything written through it lands
/// together or not at all.
pub trait Txn {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, TxError>;
    fn put(&self, tree: Tree, key: &[u8], value: Vec<u8>) -> Result<(), TxError>;
    fn remove(&self, tree: Tree, key: &[u8]) -> Result<(), TxError>;
}

/// A message that appeared in a watched folder, fetched.
#[derive(Clone, Debug, PartialEq)]
pub struct Arrival {
    pub identity: Identity,
    pub message: MessageInfo,
    pub sighting: Sighting,
    /// Why it is here: it appeared (R11), or its mapping was re-pointed (R8).
    pub cause: Cause,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    Appeared,
    Repointed,
    /// A given-up mail whose failure category the user removed (R27).
    Reconsidered,
}

/// Everything one page of changes produced, committed in ONE transaction (R22).
#[derive(Clone, Debug, PartialEq)]
pub struct PageCommit {
    /// The folder's record with its new cursor.
    pub folder: FolderRecord,
    /// Items to remember without tracking them (a baseline, R10).
    pub seen: Vec<String>,
    /// The InternetMessageIds of the baseline's items that have one: remembered (as hashes)
    /// so `explain` can say a mail was there before tracking started.
    pub baselined: Vec<String>,
    pub arrived: Vec<Arrival>,
    /// Items that left the folder (R13).
    pub left: Vec<String>,
    /// A mapping record to save with the page (a re-pointed regarding, R8).
    pub mapping: Option<MappingRecord>,
    /// Items the server could not read this time: kept (or kept again) as pending (R33).
    pub unreadable: Vec<Unreadable>,
    /// Pending items that are gone from the folder: forgotten.
    pub gone: Vec<String>,
    pub at: Timestamp,
}

/// An item of the page the server could not read, with its error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unreadable {
    pub item_id: String,
    pub error: String,
    /// Waiting for a re-link (R8) rather than to be tracked.
    pub repointed: bool,
}

/// What a committed page produced.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Committed {
    /// The tracking requests put into the outbox, in order.
    pub emitted: Vec<TrackingRequest>,
    /// Arrivals that were already known here (a page applied twice) or elsewhere (a sighting).
    pub recorded: usize,
}

/// How a write-back try ended, for [`Store::marks_written`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MarkOutcome {
    /// The category is on the mail: the mark is done.
    Written,
    /// Not this time: the mark as it is to be kept (its count and next try).
    Later(MarkEntry),
    /// Given up, with a line for the message's history.
    GivenUp(String),
}

/// Where a request that entered the outbox stands.
#[derive(Clone, Debug, PartialEq)]
pub enum Whereabouts {
    /// Still in the outbox.
    Outbox(OutboxEntry),
    /// Undeliverable or rejected.
    Dead(DeadEntry),
    /// Gone from both: the sink took it.
    Delivered,
}

/// What [`Store::requeue`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Requeued {
    /// Put back into the outbox.
    pub requeued: usize,
    /// Left out, because a later event of the same message already reached the sink (R21):
    /// sending the older one now would undo it. They leave the dead letters with a history line.
    pub superseded: Vec<u64>,
}

/// Counts for status and the benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub messages: usize,
    pub seen: usize,
    pub folders: usize,
    pub outbox: usize,
    pub dead: usize,
    pub marks: usize,
    /// Items that could not be read from Exchange yet.
    #[serde(default)]
    pub pending: usize,
    pub bytes_on_disk: u64,
}

/// When the agent's periodic check reclaims space ([`Store::reclaim_space`]).
#[derive(Clone, Copy, Debug)]
pub struct ReclaimPolicy {
    /// A store smaller than this is never rewritten: its waste costs less than the pause.
    pub floor: u64,
    /// Rewrite once the size on disk exceeds this many times what a fresh copy would take.
    pub slack: f64,
}

impl Default for ReclaimPolicy {
    /// Within 1.4 times a fresh copy: under 1 KiB per tracked message where a fresh copy takes
    /// under ~730 B (704 B at a million messages; at 300,000 it takes 948 B, so the store runs
    /// at 1.2-1.8 KiB there: docs/benchmarks.md). A lower factor rewrites more often for
    /// little: each reclaim pauses commits ~20 ms per MiB. Below 256 MiB a store is small
    /// whatever its waste: with a 64 MiB floor the enterprise preset's store (10,000
    /// mailboxes, 80 MiB) was reclaimed during its run, which gave back 13 MiB of disk for 56
    /// MiB more resident memory (the copy's own sled) and commits paused 2.5 s.
    fn default() -> Self {
        Self {
            floor: 256 << 20,
            slack: 1.4,
        }
    }
}

/// What one reclaim did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reclaimed {
    pub before: u64,
    pub after: u64,
    /// How long commits and flushes waited for it.
    pub paused: Duration,
}

/// Durable state behind a backend's five primitives.
pub trait Store: Send + Sync + 'static {
    /// Runs `f` atomically. It may be run more than once (optimistic concurrency): keep it
    /// free of I/O and side effects.
    fn transact(&self, f: &dyn Fn(&dyn Txn) -> Result<(), TxError>) -> Result<(), Error>;
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, Error>;
    /// Up to `limit` entries whose key starts with `prefix`, in key order.
    fn scan(&self, tree: Tree, prefix: &[u8], limit: usize) -> Result<Vec<Entry>, Error>;
    /// Up to `limit` entries from `start` on, in key order.
    fn scan_from(&self, tree: Tree, start: &[u8], limit: usize) -> Result<Vec<Entry>, Error>;
    fn count(&self, tree: Tree) -> Result<usize, Error>;
    /// Makes every completed transaction durable.
    fn flush(&self) -> impl Future<Output = Result<(), Error>> + Send;
    fn bytes_on_disk(&self) -> Result<u64, Error>;
    /// Gives back the space of removed and overwritten entries when `policy` says it is worth
    /// a pause of commits; blocks meanwhile. `None` when it did not run.
    fn reclaim_space(&self, policy: &ReclaimPolicy) -> Result<Option<Reclaimed>, Error> {
        let _ = policy;
        Ok(None)
    }
    /// Resolves when the backend failed for good (its disk failed under it), with why; the
    /// agent then stops. Never resolves for a backend that cannot fail so.
    fn failed(&self) -> impl Future<Output = String> + Send {
        std::future::pending()
    }
    /// Records, outside the store's own files, that requests up to `seq` reached the sink, so
    /// that a store which later goes back in time is noticed before it sends them again.
    fn mark_high_water(&self, seq: u64) -> impl Future<Output = Result<(), Error>> + Send {
        let _ = seq;
        std::future::ready(Ok(()))
    }

    /// Runs `f` atomically and returns what its last (successful) run produced.
    fn transaction<R>(&self, f: impl Fn(&dyn Txn) -> Result<R, TxError>) -> Result<R, Error>
    where
        Self: Sized,
    {
        let out = RefCell::new(None);
        self.transact(&|tx| {
            *out.borrow_mut() = Some(f(tx)?);
            Ok(())
        })?;
        Ok(out
            .into_inner()
            .expect("a committed transaction ran its closure"))
    }

    fn read<T: DeserializeOwned>(&self, tree: Tree, key: &[u8]) -> Result<Option<T>, Error>
    where
        Self: Sized,
    {
        self.get(tree, key)?.map(|v| decode(tree, &v)).transpose()
    }

    fn folder(&self, mailbox: &str, folder_id: &str) -> Result<Option<FolderRecord>, Error>
    where
        Self: Sized,
    {
        self.read(Tree::Folders, &keys::folder(mailbox, folder_id))
    }

    /// Every watched folder of a mailbox.
    fn folders(&self, mailbox: &str) -> Result<Vec<FolderRecord>, Error>
    where
        Self: Sized,
    {
        scan_decoded(self, Tree::Folders, &keys::mailbox_prefix(mailbox))
    }

    fn seen(
        &self,
        mailbox: &str,
        folder_id: &str,
        item_id: &str,
    ) -> Result<Option<SeenRecord>, Error>
    where
        Self: Sized,
    {
        self.read(Tree::Seen, &keys::seen(mailbox, folder_id, item_id))
    }

    /// Whether the message was in the folder when its baseline ran (R10).
    fn baselined(&self, mailbox: &str, folder_id: &str, message_id: &str) -> Result<bool, Error>
    where
        Self: Sized,
    {
        Ok(self
            .get(
                Tree::Baseline,
                &keys::baseline(mailbox, folder_id, message_id),
            )?
            .is_some())
    }

    /// How many mails with a message id the folder's baseline found (R10).
    fn baselined_in(&self, mailbox: &str, folder_id: &str) -> Result<usize, Error>
    where
        Self: Sized,
    {
        let prefix = keys::seen_prefix(mailbox, folder_id);
        Ok(self.scan(Tree::Baseline, &prefix, usize::MAX)?.len())
    }

    /// Every message record, for a search by subject.
    fn messages(&self) -> Result<Vec<MessageRecord>, Error>
    where
        Self: Sized,
    {
        self.scan(Tree::Messages, &[], usize::MAX)?
            .into_iter()
            .map(|(k, v)| {
                let r: MessageRecord = decode(Tree::Messages, &v)?;
                Ok(MessageRecord {
                    id: String::from_utf8_lossy(&k).into_owned(),
                    ..r
                })
            })
            .collect()
    }

    /// The tracked items seen in a folder (those a re-pointed mapping re-links).
    fn tracked_in(&self, mailbox: &str, folder_id: &str) -> Result<Vec<SeenRecord>, Error>
    where
        Self: Sized,
    {
        let all: Vec<SeenRecord> =
            scan_decoded(self, Tree::Seen, &keys::seen_prefix(mailbox, folder_id))?;
        Ok(all.into_iter().filter(|s| s.message.is_some()).collect())
    }

    /// The items of a folder that could not be read from Exchange yet (R33).
    fn pending_in(&self, mailbox: &str, folder_id: &str) -> Result<Vec<PendingItem>, Error>
    where
        Self: Sized,
    {
        let all: Vec<PendingItem> =
            scan_decoded(self, Tree::Pending, &keys::seen_prefix(mailbox, folder_id))?;
        // The prefix is a hash: keep only this folder's.
        Ok(all
            .into_iter()
            .filter(|p| p.mailbox == mailbox && p.folder_id == folder_id)
            .collect())
    }

    /// Up to `limit` items that could not be read from Exchange yet, in every folder.
    fn pending(&self, limit: usize) -> Result<Vec<PendingItem>, Error>
    where
        Self: Sized,
    {
        self.scan(Tree::Pending, &[], limit)?
            .iter()
            .map(|(_, v)| decode(Tree::Pending, v))
            .collect()
    }

    fn mapping(&self, mailbox: &str, name: &str) -> Result<Option<MappingRecord>, Error>
    where
        Self: Sized,
    {
        self.read(Tree::Mappings, &keys::mapping(mailbox, name))
    }

    fn mappings(&self, mailbox: &str) -> Result<Vec<MappingRecord>, Error>
    where
        Self: Sized,
    {
        scan_decoded(self, Tree::Mappings, &keys::mailbox_prefix(mailbox))
    }

    /// Every watched folder of every mailbox.
    fn all_folders(&self) -> Result<Vec<FolderRecord>, Error>
    where
        Self: Sized,
    {
        scan_decoded(self, Tree::Folders, &[])
    }

    /// Every mapping of every mailbox.
    fn all_mappings(&self) -> Result<Vec<MappingRecord>, Error>
    where
        Self: Sized,
    {
        scan_decoded(self, Tree::Mappings, &[])
    }

    fn message(&self, id: &str) -> Result<Option<MessageRecord>, Error>
    where
        Self: Sized,
    {
        let record: Option<MessageRecord> = self.read(Tree::Messages, id.as_bytes())?;
        Ok(record.map(|r| MessageRecord {
            id: id.to_owned(),
            ..r
        }))
    }

    /// Saves mapping and folder records (resolution, pause, orphaning), durably.
    fn save_mappings(
        &self,
        mappings: Vec<MappingRecord>,
        folders: Vec<FolderRecord>,
    ) -> impl Future<Output = Result<(), Error>> + Send
    where
        Self: Sized,
    {
        async move {
            self.transaction(|tx| {
                for m in &mappings {
                    tx.put(
                        Tree::Mappings,
                        &keys::mapping(&m.mailbox, &m.name),
                        records::encode(m),
                    )?;
                }
                for f in &folders {
                    tx.put(
                        Tree::Folders,
                        &keys::folder(&f.mailbox, &f.folder_id),
                        records::encode(f),
                    )?;
                }
                Ok(())
            })?;
            self.flush().await
        }
    }

    /// Drops a folder's cursor so its next sync is a baseline that remembers what was seen
    /// (R23).
    fn reset_cursor(
        &self,
        mailbox: &str,
        folder_id: &str,
    ) -> impl Future<Output = Result<(), Error>> + Send
    where
        Self: Sized,
    {
        async move {
            let key = keys::folder(mailbox, folder_id);
            self.transaction(|tx| {
                if let Some(bytes) = tx.get(Tree::Folders, &key)? {
                    let mut f: FolderRecord = decode(Tree::Folders, &bytes)?;
                    f.cursor = None;
                    tx.put(Tree::Folders, &key, records::encode(&f))?;
                }
                Ok(())
            })?;
            self.flush().await
        }
    }

    /// Applies one page in ONE transaction — cursor, seen items, message records, outbox —
    /// and makes it durable before returning (R22). Applying the same page twice (a crash
    /// between commit and the next call) emits nothing the second time.
    fn commit_page(&self, page: PageCommit) -> impl Future<Output = Result<Committed, Error>> + Send
    where
        Self: Sized,
    {
        async move {
            let committed = self.transaction(|tx| apply_page(tx, &page))?;
            self.flush().await?;
            Ok(committed)
        }
    }

    /// The oldest `limit` entries of the outbox.
    fn outbox(&self, limit: usize) -> Result<Vec<(u64, OutboxEntry)>, Error>
    where
        Self: Sized,
    {
        sequenced(self, Tree::Outbox, limit)
    }

    /// Up to `limit` outbox entries due at `now`, oldest first. Entries waiting for a retry
    /// are passed over, so one failing item never blocks the others (R33); an entry whose
    /// message has an earlier event still in the outbox waits for it, so the events of one
    /// message reach the sink in order (R21); an entry regarding a held record waits for the
    /// hold to end (R25).
    fn due(&self, now: Timestamp, limit: usize) -> Result<Vec<(u64, OutboxEntry)>, Error>
    where
        Self: Sized,
    {
        let holds = self.holds()?;
        let mut out = Vec::new();
        let mut earlier: HashSet<String> = HashSet::new();
        let mut after: Option<u64> = None;
        while out.len() < limit {
            let from = after.map_or(0, |s| s + 1);
            let batch = self.scan_from(Tree::Outbox, &keys::outbox(from), 1024)?;
            let Some((last, _)) = batch.last() else { break };
            after = Some(outbox_seq(last)?);
            for (k, v) in batch {
                let entry: OutboxEntry = decode(Tree::Outbox, &v)?;
                let first = earlier.insert(entry.request.id.clone());
                let held = holds.iter().any(|h| h.covers(&entry.request));
                if first && !held && entry.next_try.is_none_or(|t| t <= now) {
                    out.push((outbox_seq(&k)?, entry));
                }
            }
        }
        out.truncate(limit);
        Ok(out)
    }

    /// Where the request that entered the outbox as `seq` stands.
    fn whereabouts(&self, seq: u64) -> Result<Whereabouts, Error>
    where
        Self: Sized,
    {
        let key = keys::outbox(seq);
        if let Some(entry) = self.read(Tree::Outbox, &key)? {
            return Ok(Whereabouts::Outbox(entry));
        }
        Ok(self
            .read(Tree::Dead, &key)?
            .map_or(Whereabouts::Delivered, Whereabouts::Dead))
    }

    /// The outbox entries of one mailbox, oldest first.
    fn outbox_of(&self, mailbox: &str) -> Result<Vec<(u64, OutboxEntry)>, Error>
    where
        Self: Sized,
    {
        let mut all = self.outbox(usize::MAX)?;
        all.retain(|(_, e)| e.request.mailbox.eq_ignore_ascii_case(mailbox));
        Ok(all)
    }

    /// The sink confirmed these: they leave the outbox, and their mails are queued for the
    /// `Tracked` category when write-back is on — one transaction (R26).
    fn delivered(&self, seqs: &[u64], mark: bool) -> impl Future<Output = Result<(), Error>> + Send
    where
        Self: Sized,
    {
        async move {
            self.transaction(|tx| {
                for seq in seqs {
                    let key = keys::outbox(*seq);
                    let Some(entry) = read_tx::<OutboxEntry>(tx, Tree::Outbox, &key)? else {
                        continue;
                    };
                    tx.remove(Tree::Outbox, &key)?;
                    if mark {
                        queue_mark(tx, &entry.request, MarkKind::Tracked)?;
                    }
                    let id = entry.request.id.as_str();
                    if let Some(mut record) = read_message(tx, id)?
                        && record.delivered < entry.request.sequence
                    {
                        record.delivered = entry.request.sequence;
                        tx.put(Tree::Messages, id.as_bytes(), records::encode(&record))?;
                    }
                }
                Ok(())
            })?;
            self.flush().await?;
            match seqs.iter().max() {
                Some(&seq) => self.mark_high_water(seq).await,
                None => Ok(()),
            }
        }
    }

    /// Failed attempts to be retried later: the entries stay, with their counts and next
    /// times — one transaction for all of them.
    fn retry_later(
        &self,
        entries: &[(u64, OutboxEntry)],
    ) -> impl Future<Output = Result<(), Error>> + Send
    where
        Self: Sized,
    {
        async move {
            self.transaction(|tx| {
                for (seq, entry) in entries {
                    tx.put(Tree::Outbox, &keys::outbox(*seq), records::encode(entry))?;
                }
                Ok(())
            })?;
            self.flush().await
        }
    }

    /// Gives up on an entry (R30, R32): it moves to the dead tree with its reason, and its mail
    /// is queued for the `Tracking failed` category when write-back is on (R27).
    fn dead_letter(
        &self,
        seq: u64,
        dead: DeadEntry,
        mark: bool,
    ) -> impl Future<Output = Result<(), Error>> + Send
    where
        Self: Sized,
    {
        async move {
            self.transaction(|tx| {
                tx.remove(Tree::Outbox, &keys::outbox(seq))?;
                tx.put(Tree::Dead, &keys::outbox(seq), records::encode(&dead))?;
                if mark {
                    queue_mark(tx, &dead.request, MarkKind::Failed)?;
                }
                let id = dead.request.id.as_str();
                if let Some(mut record) = read_message(tx, id)? {
                    record.note(
                        dead.at,
                        format!("{:?}: {}", dead.state, dead.reason).to_lowercase(),
                    );
                    record.failed = seq;
                    tx.put(Tree::Messages, id.as_bytes(), records::encode(&record))?;
                }
                Ok(())
            })?;
            self.flush().await
        }
    }

    /// Undeliverable and rejected requests, oldest first.
    fn dead(&self, limit: usize) -> Result<Vec<(u64, DeadEntry)>, Error>
    where
        Self: Sized,
    {
        sequenced(self, Tree::Dead, limit)
    }

    /// Puts dead entries back into the outbox with a fresh count (`foldertrack retry`), except
    /// those a later delivered event of their message supersedes (R21).
    fn requeue(&self, seqs: &[u64]) -> impl Future<Output = Result<Requeued, Error>> + Send
    where
        Self: Sized,
    {
        async move {
            let done = self.transaction(|tx| {
                let mut done = Requeued::default();
                for seq in seqs {
                    let key = keys::outbox(*seq);
                    let Some(dead) = read_tx::<DeadEntry>(tx, Tree::Dead, &key)? else {
                        continue;
                    };
                    tx.remove(Tree::Dead, &key)?;
                    let id = dead.request.id.as_str();
                    match read_message(tx, id)? {
                        Some(mut record) if record.superseded(dead.request.sequence) => {
                            record.note(
                                Timestamp::now(),
                                format!(
                                    "retry: event {} not re-sent, the later event {} is in the sink",
                                    dead.request.sequence, record.delivered
                                ),
                            );
                            tx.put(Tree::Messages, id.as_bytes(), records::encode(&record))?;
                            done.superseded.push(*seq);
                        }
                        record => {
                            if let Some(mut record) = record.filter(|r| r.failed == *seq) {
                                record.failed = 0;
                                tx.put(Tree::Messages, id.as_bytes(), records::encode(&record))?;
                            }
                            let entry = OutboxEntry::new(dead.request);
                            tx.put(Tree::Outbox, &key, records::encode(&entry))?;
                            done.requeued += 1;
                        }
                    }
                }
                Ok(done)
            })?;
            self.flush().await?;
            Ok(done)
        }
    }

    /// Pending write-backs, by request id.
    fn marks(&self, limit: usize) -> Result<Vec<(String, MarkEntry)>, Error>
    where
        Self: Sized,
    {
        self.scan(Tree::Marks, &[], limit)?
            .into_iter()
            .map(|(k, v)| {
                Ok((
                    String::from_utf8_lossy(&k).into_owned(),
                    decode(Tree::Marks, &v)?,
                ))
            })
            .collect()
    }

    /// Pending write-backs due at `now` (those waiting for a retry are passed over).
    fn marks_due(&self, now: Timestamp) -> Result<Vec<(String, MarkEntry)>, Error>
    where
        Self: Sized,
    {
        let mut all = self.marks(usize::MAX)?;
        all.retain(|(_, m)| m.next_try.is_none_or(|t| t <= now));
        Ok(all)
    }

    /// Records how write-back tries ended, in one transaction. Each outcome names the mark as
    /// it was read: a mark replaced meanwhile (a later event delivered, or the mail seen again
    /// after a move) is newer than the try and is kept as it is.
    fn marks_written(
        &self,
        outcomes: &[(String, MarkEntry, MarkOutcome)],
    ) -> impl Future<Output = Result<(), Error>> + Send
    where
        Self: Sized,
    {
        async move {
            self.transaction(|tx| {
                for (id, tried, outcome) in outcomes {
                    let key = id.as_bytes();
                    if read_tx::<MarkEntry>(tx, Tree::Marks, key)?.as_ref() != Some(tried) {
                        continue;
                    }
                    match outcome {
                        MarkOutcome::Written => tx.remove(Tree::Marks, key)?,
                        MarkOutcome::Later(mark) => {
                            tx.put(Tree::Marks, key, records::encode(mark))?
                        }
                        MarkOutcome::GivenUp(note) => {
                            tx.remove(Tree::Marks, key)?;
                            if let Some(mut record) = read_message(tx, id)? {
                                record.note(Timestamp::now(), note.clone());
                                tx.put(Tree::Messages, key, records::encode(&record))?;
                            }
                        }
                    }
                }
                Ok(())
            })?;
            self.flush().await
        }
    }

    /// The sink's outage, while it lasts.
    fn sink_outage(&self) -> Result<Option<SinkOutage>, Error>
    where
        Self: Sized,
    {
        self.read(Tree::Meta, SINK_OUTAGE)
    }

    /// Records the sink's outage (`None`: it answers again), durably.
    fn set_sink_outage(
        &self,
        outage: Option<SinkOutage>,
    ) -> impl Future<Output = Result<(), Error>> + Send
    where
        Self: Sized,
    {
        async move {
            self.transaction(|tx| match &outage {
                Some(o) => tx.put(Tree::Meta, SINK_OUTAGE, records::encode(o)),
                None => tx.remove(Tree::Meta, SINK_OUTAGE),
            })?;
            self.flush().await
        }
    }

    /// The notification subscriptions the agent holds, as (mailbox, id): EWS cannot list a
    /// mailbox's subscriptions, so this is how a run ends the ones a killed run left, which
    /// would count against the mailbox's EWSMaxSubscriptions until they lapse.
    fn subscriptions(&self) -> Result<Vec<(String, String)>, Error> {
        let entries = self.scan(Tree::Meta, &keys::subscriptions_prefix(), usize::MAX)?;
        Ok(entries
            .iter()
            .filter_map(|(key, _)| keys::parse_subscription(key))
            .collect())
    }

    /// Notes that the agent holds (`held`) or has ended a subscription. Not flushed: one lost
    /// in a crash only lapses on the server's own time.
    fn note_subscription(&self, mailbox: &str, id: &str, held: bool) -> Result<(), Error> {
        let key = keys::subscription(mailbox, id);
        self.transact(&|tx| match held {
            true => tx.put(Tree::Meta, &key, Vec::new()),
            false => tx.remove(Tree::Meta, &key),
        })
    }

    /// The regarding records delivery holds for (R25).
    fn holds(&self) -> Result<Vec<HoldRecord>, Error>
    where
        Self: Sized,
    {
        scan_decoded(self, Tree::Holds, &[])
    }

    /// Up to `limit` outbox entries a hold keeps waiting, oldest first.
    fn held(&self, hold: &HoldRecord, limit: usize) -> Result<Vec<(u64, OutboxEntry)>, Error>
    where
        Self: Sized,
    {
        let all: Vec<(u64, OutboxEntry)> = sequenced(self, Tree::Outbox, usize::MAX)?;
        Ok(all
            .into_iter()
            .filter(|(_, e)| hold.covers(&e.request))
            .take(limit)
            .collect())
    }

    /// An entry met an unavailable regarding: it stays in the outbox as it was (no attempt
    /// counted) with the reason, and the hold is saved — the first one's time and probe kept
    /// when the record is already held.
    fn hold(
        &self,
        seq: u64,
        entry: OutboxEntry,
        hold: HoldRecord,
    ) -> impl Future<Output = Result<(), Error>> + Send
    where
        Self: Sized,
    {
        async move {
            let key = hold.key();
            self.transaction(|tx| {
                tx.put(Tree::Outbox, &keys::outbox(seq), records::encode(&entry))?;
                let saved = match read_tx::<HoldRecord>(tx, Tree::Holds, &key)? {
                    Some(old) => HoldRecord {
                        reason: hold.reason.clone(),
                        ..old
                    },
                    None => hold.clone(),
                };
                tx.put(Tree::Holds, &key, records::encode(&saved))
            })?;
            self.flush().await
        }
    }

    /// Saves a hold as it is now (its next probe), or drops it when `keep` is false.
    fn update_hold(
        &self,
        hold: &HoldRecord,
        keep: bool,
    ) -> impl Future<Output = Result<(), Error>> + Send
    where
        Self: Sized,
    {
        async move {
            let key = hold.key();
            self.transaction(|tx| match keep {
                true => tx.put(Tree::Holds, &key, records::encode(hold)),
                false => tx.remove(Tree::Holds, &key),
            })?;
            self.flush().await
        }
    }

    /// Adds lines to messages' histories (what a sink left out and why).
    fn note_history(
        &self,
        notes: &[(String, String)],
    ) -> impl Future<Output = Result<(), Error>> + Send
    where
        Self: Sized,
    {
        async move {
            let at = Timestamp::now();
            self.transaction(|tx| {
                for (id, what) in notes {
                    if let Some(mut record) = read_message(tx, id)? {
                        record.note(at, what.clone());
                        tx.put(Tree::Messages, id.as_bytes(), records::encode(&record))?;
                    }
                }
                Ok(())
            })?;
            self.flush().await
        }
    }

    /// Prunes the history of up to `limit` message records from key `start` on (R41): lines
    /// older than `cutoff` go. Returns how many lines went and the key to go on from, `None`
    /// once the last record was read. Chunked, so a large store is pruned a bit at a time.
    fn prune_history(
        &self,
        cutoff: Timestamp,
        start: &[u8],
        limit: usize,
    ) -> impl Future<Output = Result<(usize, Option<Vec<u8>>), Error>> + Send
    where
        Self: Sized,
    {
        async move {
            let chunk = self.scan_from(Tree::Messages, start, limit)?;
            let next = match chunk.last() {
                Some((key, _)) if chunk.len() == limit => Some([key.as_slice(), &[0]].concat()),
                _ => None,
            };
            let mut stale = Vec::new();
            for (key, bytes) in chunk {
                let mut record: MessageRecord = decode(Tree::Messages, &bytes)?;
                if record.prune_history(cutoff) > 0 {
                    stale.push(key);
                }
            }
            if stale.is_empty() {
                return Ok((0, next));
            }
            // Re-read inside the transaction: a page committed since the scan may have added a
            // line; prune what is there now.
            let lines = self.transaction(|tx| {
                let mut lines = 0;
                for key in &stale {
                    if let Some(mut record) = read_message(tx, &String::from_utf8_lossy(key))? {
                        lines += record.prune_history(cutoff);
                        tx.put(Tree::Messages, key, records::encode(&record))?;
                    }
                }
                Ok(lines)
            })?;
            self.flush().await?;
            Ok((lines, next))
        }
    }

    fn stats(&self) -> Result<Stats, Error>
    where
        Self: Sized,
    {
        Ok(Stats {
            messages: self.count(Tree::Messages)?,
            seen: self.count(Tree::Seen)?,
            folders: self.count(Tree::Folders)?,
            outbox: self.count(Tree::Outbox)?,
            dead: self.count(Tree::Dead)?,
            marks: self.count(Tree::Marks)?,
            pending: self.count(Tree::Pending)?,
            bytes_on_disk: self.bytes_on_disk()?,
        })
    }
}

fn decode<T: DeserializeOwned>(tree: Tree, bytes: &[u8]) -> Result<T, Error> {
    records::decode(bytes).map_err(|e| Error::Corrupt {
        tree: tree.name(),
        reason: e.to_string(),
    })
}

fn outbox_seq(key: &[u8]) -> Result<u64, Error> {
    keys::outbox_seq(key).ok_or_else(|| Error::Corrupt {
        tree: Tree::Outbox.name(),
        reason: format!("a key of {} bytes", key.len()),
    })
}

/// The entries of a tree keyed by sequence, oldest first.
fn sequenced<S: Store, T: DeserializeOwned>(
    store: &S,
    tree: Tree,
    limit: usize,
) -> Result<Vec<(u64, T)>, Error> {
    store
        .scan(tree, &[], limit)?
        .into_iter()
        .map(|(k, v)| Ok((outbox_seq(&k)?, decode(tree, &v)?)))
        .collect()
}

/// Queues the write-back of `kind` for the request's mail, replacing any earlier one.
fn queue_mark(tx: &dyn Txn, request: &TrackingRequest, kind: MarkKind) -> Result<(), TxError> {
    let mark = MarkEntry {
        mailbox: request.mailbox.clone(),
        item_id: request.message.item_id.clone(),
        kind,
        attempts: 0,
        next_try: None,
        last_error: None,
    };
    tx.put(Tree::Marks, request.id.as_bytes(), records::encode(&mark))
}

fn scan_decoded<S: Store, T: DeserializeOwned>(
    store: &S,
    tree: Tree,
    prefix: &[u8],
) -> Result<Vec<T>, Error> {
    store
        .scan(tree, prefix, usize::MAX)?
        .iter()
        .map(|(_, v)| decode(tree, v))
        .collect()
}

fn read_tx<T: DeserializeOwned>(
    tx: &dyn Txn,
    tree: Tree,
    key: &[u8],
) -> Result<Option<T>, TxError> {
    Ok(tx.get(tree, key)?.map(|v| decode(tree, &v)).transpose()?)
}

fn read_message(tx: &dyn Txn, id: &str) -> Result<Option<MessageRecord>, TxError> {
    let record: Option<MessageRecord> = read_tx(tx, Tree::Messages, id.as_bytes())?;
    Ok(record.map(|r| MessageRecord {
        id: id.to_owned(),
        ..r
    }))
}

pub(crate) const OUTBOX_SEQ: &[u8] = b"outbox_seq";
const SINK_OUTAGE: &[u8] = b"sink_outage";

/// The body of [`Store::commit_page`]: pure over the transaction.
fn apply_page(tx: &dyn Txn, page: &PageCommit) -> Result<Committed, TxError> {
    let folder = &page.folder;
    let mut out = Committed::default();
    let mut outbox = OutboxSeq::default();
    for item_id in &page.seen {
        let key = keys::seen(&folder.mailbox, &folder.folder_id, item_id);
        if tx.get(Tree::Seen, &key)?.is_none() {
            tx.put(Tree::Seen, &key, records::encode(&SeenRecord::default()))?;
        }
    }
    for message_id in &page.baselined {
        let key = keys::baseline(&folder.mailbox, &folder.folder_id, message_id);
        tx.put(Tree::Baseline, &key, Vec::new())?;
    }
    for item_id in &page.left {
        apply_left(tx, page, item_id)?;
    }
    for arrival in &page.arrived {
        apply_arrival(tx, page, arrival, &mut outbox, &mut out)?;
    }
    apply_pending(tx, page)?;
    if let Some(last) = outbox.last {
        tx.put(Tree::Meta, OUTBOX_SEQ, records::encode(&last))?;
    }
    if let Some(m) = &page.mapping {
        tx.put(
            Tree::Mappings,
            &keys::mapping(&m.mailbox, &m.name),
            records::encode(m),
        )?;
    }
    let key = keys::folder(&folder.mailbox, &folder.folder_id);
    let before = read_tx::<FolderRecord>(tx, Tree::Folders, &key)?;
    let record = FolderRecord {
        since: (folder.since)
            .or(before.and_then(|b| b.since))
            .or(Some(page.at)),
        ..folder.clone()
    };
    tx.put(Tree::Folders, &key, records::encode(&record))?;
    Ok(out)
}

/// The outbox sequence numbers one transaction hands out.
#[derive(Default)]
struct OutboxSeq {
    last: Option<u64>,
}

impl OutboxSeq {
    fn next(&mut self, tx: &dyn Txn) -> Result<u64, TxError> {
        let last = match self.last {
            Some(s) => s,
            None => read_tx::<u64>(tx, Tree::Meta, OUTBOX_SEQ)?.unwrap_or(0),
        };
        self.last = Some(last + 1);
        Ok(last + 1)
    }
}

/// Pending items (R33): the ones read or gone now are forgotten, the unreadable ones are kept
/// with their latest error and one more attempt.
fn apply_pending(tx: &dyn Txn, page: &PageCommit) -> Result<(), TxError> {
    let folder = &page.folder;
    let key = |item_id: &str| keys::seen(&folder.mailbox, &folder.folder_id, item_id);
    let read = page.arrived.iter().map(|a| a.message.item_id.as_str());
    for item_id in read.chain(page.left.iter().map(String::as_str)) {
        tx.remove(Tree::Pending, &key(item_id))?;
    }
    for item_id in &page.gone {
        tx.remove(Tree::Pending, &key(item_id))?;
    }
    for u in &page.unreadable {
        let key = key(&u.item_id);
        let before = read_tx::<PendingItem>(tx, Tree::Pending, &key)?;
        let pending = PendingItem {
            mailbox: folder.mailbox.clone(),
            folder_id: folder.folder_id.clone(),
            path: folder.path.clone(),
            item_id: u.item_id.clone(),
            repointed: u.repointed,
            error: u.error.clone(),
            attempts: before.as_ref().map_or(0, |b| b.attempts) + 1,
            first_at: before.map_or(page.at, |b| b.first_at),
            last_at: page.at,
        };
        tx.put(Tree::Pending, &key, records::encode(&pending))?;
    }
    Ok(())
}

/// An item left the folder (R13): its message's history says so; it is no longer seen here.
fn apply_left(tx: &dyn Txn, page: &PageCommit, item_id: &str) -> Result<(), TxError> {
    let folder = &page.folder;
    let key = keys::seen(&folder.mailbox, &folder.folder_id, item_id);
    let Some(seen) = read_tx::<SeenRecord>(tx, Tree::Seen, &key)? else {
        return Ok(());
    };
    if let Some(id) = &seen.message
        && let Some(mut record) = read_message(tx, id)?
    {
        record.left(&folder.folder_id, &folder.path, page.at);
        tx.put(Tree::Messages, id.as_bytes(), records::encode(&record))?;
    }
    tx.remove(Tree::Seen, &key)
}

/// Moves the message's dead letter back into the outbox as a request for the item where it
/// is now (R27). False when the dead letter is gone already (retried meanwhile).
fn revive(
    tx: &dyn Txn,
    record: &mut MessageRecord,
    page: &PageCommit,
    arrival: &Arrival,
    outbox: &mut OutboxSeq,
    out: &mut Committed,
) -> Result<bool, TxError> {
    let dead_key = keys::outbox(record.failed);
    record.failed = 0;
    let Some(dead) = read_tx::<DeadEntry>(tx, Tree::Dead, &dead_key)? else {
        return Ok(false);
    };
    tx.remove(Tree::Dead, &dead_key)?;
    let mut request = dead.request;
    request.message = arrival.message.clone();
    request.folder = FolderLocation {
        id: page.folder.folder_id.clone(),
        path: page.folder.path.clone(),
    };
    request.mapping = arrival.sighting.mapping.clone();
    request.regarding = record.regarding.clone();
    record.note(
        page.at,
        match arrival.cause {
            Cause::Reconsidered => "its failure category was removed: eligible again".into(),
            _ => format!(
                "moved into {} again after tracking failed: eligible again",
                page.folder.path
            ),
        },
    );
    let seq = outbox.next(tx)?;
    tx.put(
        Tree::Outbox,
        &keys::outbox(seq),
        records::encode(&OutboxEntry::new(request.clone())),
    )?;
    out.emitted.push(request);
    Ok(true)
}

/// An item arrived (or its mapping was re-pointed): a new record and a `moved_in`, a re-link,
/// or a sighting recorded on the existing record (R11, R12, R14, R19).
fn apply_arrival(
    tx: &dyn Txn,
    page: &PageCommit,
    arrival: &Arrival,
    outbox: &mut OutboxSeq,
    out: &mut Committed,
) -> Result<(), TxError> {
    let folder = &page.folder;
    let key = keys::seen(&folder.mailbox, &folder.folder_id, &arrival.message.item_id);
    let already = read_tx::<SeenRecord>(tx, Tree::Seen, &key)?;
    if arrival.cause == Cause::Appeared && already.as_ref().is_some_and(|s| s.message.is_some()) {
        out.recorded += 1;
        return Ok(());
    }
    let id = arrival.identity.request_id();
    let mut previous = None;
    let (mut record, verdict) = match read_message(tx, &id)? {
        None if arrival.cause == Cause::Reconsidered => {
            out.recorded += 1;
            return Ok(());
        }
        None => (
            MessageRecord::first(id.clone(), &arrival.sighting),
            Verdict::Emit(EventKind::MovedIn),
        ),
        Some(mut r) => {
            previous = r.regarding.clone();
            let v = match (&arrival.cause, &arrival.sighting.regarding) {
                (Cause::Repointed, Some(regarding)) => r.repoint(regarding, page.at),
                (Cause::Reconsidered, _) => Verdict::Recorded,
                _ => r.sight(&arrival.sighting),
            };
            (r, v)
        }
    };
    // Records written before these were kept learn them at the next sighting.
    if record.message_id.is_none() {
        record.message_id = arrival.message.internet_message_id.clone();
    }
    if record.subject.is_none() {
        record.subject = arrival.message.subject.clone();
    }
    // Given up before, and its owner moved it into a folder of the same regarding again or
    // removed its failure category: eligible again (R27). Its request goes back to the outbox,
    // carrying where it is now. (A move to another regarding is a re-link, which supersedes
    // the dead event, R21.)
    let revived = verdict == Verdict::Recorded
        && arrival.cause != Cause::Repointed
        && record.owner == folder.mailbox
        && record.failed != 0
        && revive(tx, &mut record, page, arrival, outbox, out)?;
    match verdict {
        Verdict::Recorded if revived => {}
        Verdict::Emit(event) => {
            let (sequence, event_id) = record.next_event();
            let entry = OutboxEntry::new(TrackingRequest {
                id: id.clone(),
                event_id,
                sequence,
                event,
                mailbox: folder.mailbox.clone(),
                folder: FolderLocation {
                    id: folder.folder_id.clone(),
                    path: folder.path.clone(),
                },
                mapping: arrival.sighting.mapping.clone(),
                regarding: record.regarding.clone(),
                previous_regarding: previous.filter(|_| event == EventKind::Relinked),
                message: arrival.message.clone(),
                detected_at: page.at,
            });
            let seq = outbox.next(tx)?;
            tx.put(Tree::Outbox, &keys::outbox(seq), records::encode(&entry))?;
            out.emitted.push(entry.request);
        }
        Verdict::Recorded => out.recorded += 1,
    }
    tx.put(Tree::Messages, id.as_bytes(), records::encode(&record))?;
    // A write-back that failed because the mail moved finds it here again, and is due at
    // once (R28).
    if let Some(mut mark) = read_tx::<MarkEntry>(tx, Tree::Marks, id.as_bytes())?
        && mark.mailbox == folder.mailbox
        && mark.item_id != arrival.message.item_id
    {
        mark.item_id = arrival.message.item_id.clone();
        mark.next_try = None;
        tx.put(Tree::Marks, id.as_bytes(), records::encode(&mark))?;
    }
    let seen = SeenRecord { message: Some(id) };
    tx.put(Tree::Seen, &key, records::encode(&seen))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store that only cannot be written is not to be moved aside: that would baseline every
    /// folder and lose the mail filed meanwhile.
    #[test]
    fn advice_for_a_store_that_cannot_be_opened_loses_nothing() {
        let open = |reason: &str| {
            Error::Open {
                path: "/var/lib/foldertrack/store".into(),
                reason: reason.into(),
            }
            .to_string()
        };
        for reason in [
            "IO error: Read-only file system (os error 30)",
            "IO error: Permission denied (os error 13)",
            "IO error: No space left on device (os error 28)",
        ] {
            let message = open(reason);
            assert!(message.contains("do not move it aside"), "{message}");
        }
        let corrupt = open("Read corrupted data at file offset None");
        assert!(
            corrupt.contains("restore the folder from a backup"),
            "{corrupt}"
        );
        assert!(corrupt.contains("not tracked"), "{corrupt}");
    }
}
