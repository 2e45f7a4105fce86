//! [`SledStore`]: the only code that names sled. One `Db`, one tree per [`Tree`], one
//! multi-tree transaction per commit, a flush before anything is acknowledged.
//!
//! Transactions and flushes never overlap: sled 0.34 guards both with one process-wide
//! reader-writer lock, and a flush that waits for the log while a transaction waits to stage
//! deadlocks (seen under 1,000 mailboxes' first syncs). So every transaction and every flush
//! takes `writing`, and sled's own background flusher is off — foldertrack flushes after every
//! commit anyway.
//!
//! Entry counts are kept in memory (counted once at open, then moved by every committed
//! transaction), so status and `/metrics` never walk a tree. An I/O error, corruption or a bug
//! report from sled is final for the open `Db` (sled keeps failing after it): the store says
//! so through [`Store::failed`], and the agent stops with that reason for its service manager
//! to restart it.
//!
//! sled drops a log tail it cannot read (zeroed or torn by a failing disk) without a word, and
//! a restored backup is just as silent: both make the store go back in time and deliver again
//! what was delivered. So every acknowledged delivery also moves a checksummed high-water mark
//! in a file of its own ([`HIGH_WATER`]), and a store that ends before it is refused at open.
//!
//! sled 0.34 never gives back the space of removed and overwritten entries (its segment
//! cleaning settings do nothing), so [`SledStore::reclaim`] rewrites the live entries into a
//! fresh `Db` beside the store and swaps the two folders in one atomic rename while commits
//! wait; reads go on meanwhile against the old `Db`, which nothing changes.

use super::{Entry, Error, FORMAT, ReclaimPolicy, Reclaimed, Store, Tree, TxError, Txn, records};
use sled::Transactional;
use sled::transaction::{
    ConflictableTransactionError, TransactionError, TransactionalTree, UnabortableTransactionError,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// The delivered high-water mark's file, in the store's folder next to sled's files.
pub const HIGH_WATER: &str = "delivered.hwm";

/// sled's cache for `mailboxes` configured mailboxes (sled's default is 1 GiB; the store's
/// working set is far smaller). What stays hot per mailbox is its folder records (a cursor of a
/// few hundred bytes per watched folder, ~1 KiB for a mailbox's usual 2-3 mapped folders), its
/// mapping records and the index pages above them, and sled holds a page in memory at about
/// twice its size on disk: 4 KiB a mailbox. Message records, seen items and outbox entries
/// are read once per arrival or delivery and need no cache; 8 MiB covers the tree roots and one
/// page commit's leaves. 64 MiB (reached at ~14,000 mailboxes) is where the old fixed size
/// was, and a larger cache did not make commits faster (docs/benchmarks.md).
pub fn cache_bytes(mailboxes: usize) -> u64 {
    const FLOOR: u64 = 8 << 20;
    const PER_MAILBOX: u64 = 4 << 10;
    const CEILING: u64 = 64 << 20;
    PER_MAILBOX
        .saturating_mul(mailboxes as u64)
        .saturating_add(FLOOR)
        .min(CEILING)
}

/// The sibling folder a reclaim (or `compact`) writes the fresh copy into. It is never the only
/// copy of the store: one left by a crash is removed at the next open.
const COMPACTING: &str = ".compacting";

/// What a fresh copy takes on disk per entry until this process made one and measured it. A
/// tracked message is two entries (its record and its seen item); a fresh copy took 704 B per
/// message at a million messages and 948 B at 300,000 (docs/benchmarks.md). The smaller figure
/// errs towards one reclaim too many after a start, not towards a store left wasteful.
const FRESH_BYTES_PER_ENTRY: f64 = 352.0;

/// sled's handles; replaced whole when a reclaim swaps in the fresh copy.
struct Handles {
    db: sled::Db,
    trees: Vec<sled::Tree>,
}

/// How long `open` waits for a lock that is busy: sled releases the file lock of a dropped
/// handle only when that handle's last background write ends, so a store this process just
/// closed (compact, a restart in tests) can look in use for a moment.
const LOCK_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

pub struct SledStore {
    /// Every read holds this for the duration of its sled call, so a reclaim can close the
    /// old `Db` before the swap: sled opens blob files by path, and after the swap the path
    /// names the fresh copy. `None` only after a reclaim failed to reopen the fresh copy (the
    /// store is then broken).
    live: Arc<RwLock<Option<Handles>>>,
    path: PathBuf,
    cache_bytes: u64,
    /// Held by every transaction and every flush (see the module doc).
    writing: Arc<Mutex<()>>,
    /// One flush at a time goes to a blocking thread; the commits waiting for theirs wait here
    /// as tasks. Before, each waited on `writing` in a blocking thread of its own: the office
    /// preset's commits held up to 512 threads (docs/benchmarks.md, "Where the memory goes").
    flush_turn: tokio::sync::Mutex<()>,
    /// Transactions committed, and how many of them the last finished flush covered: a commit
    /// whose transaction a flush started after it already made durable needs no flush of its own.
    committed: AtomicU64,
    flushed: AtomicU64,
    /// Entries per tree.
    counts: Vec<AtomicI64>,
    /// The first error sled cannot recover from, once there is one.
    broken: tokio::sync::watch::Sender<Option<String>>,
    /// The highest outbox sequence number known delivered (as in [`HIGH_WATER`]).
    high_water: Arc<Mutex<u64>>,
    /// Bytes on disk per entry of the last fresh copy, once this process made one.
    fresh_per_entry: Mutex<Option<f64>>,
    /// The file system cannot swap folders atomically: reclaim is off for this run.
    no_exchange: AtomicBool,
}

/// sled flushes when its last handle drops; after a failed write that flush can wait forever
/// and hold the process that should exit so its service manager restarts it. A broken store
/// keeps its handles alive instead: nothing more can be written anyway, and what was committed
/// is on disk.
impl Drop for SledStore {
    fn drop(&mut self) {
        if self.broken.borrow().is_some()
            && let Some(handles) = self.live.write().unwrap_or_else(|p| p.into_inner()).take()
        {
            std::mem::forget(handles);
        }
    }
}

/// How sled words a lock held by another handle.
const LOCKED: &str = "could not acquire lock";

/// Opens sled's `Db`, waiting up to [`LOCK_GRACE`] while its lock is busy.
fn open_db(path: &Path, cache_bytes: u64) -> sled::Result<sled::Db> {
    let config = sled::Config::new()
        .path(path)
        .cache_capacity(cache_bytes)
        .flush_every_ms(None);
    let deadline = std::time::Instant::now() + LOCK_GRACE;
    loop {
        match config.open() {
            Err(sled::Error::Io(e))
                if e.to_string().contains(LOCKED) && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// Opens sled's `Db` at `path` and its trees, saying in one line why not.
fn open_handles(path: &Path, cache_bytes: u64) -> Result<Handles, Error> {
    let open_error = |reason: String| Error::Open {
        path: path.to_owned(),
        reason,
    };
    let db = open_db(path, cache_bytes).map_err(|e| match e.to_string() {
        reason if reason.contains(LOCKED) => Error::InUse {
            path: path.to_owned(),
        },
        // sled's corruption error ends in an empty " backtrace ()": noise to an operator.
        reason => open_error(match reason.split_once(" backtrace (") {
            Some((what, _)) => what.to_owned(),
            None => reason,
        }),
    })?;
    let trees = Tree::ALL
        .iter()
        .map(|t| db.open_tree(t.name()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| open_error(e.to_string()))?;
    Ok(Handles { db, trees })
}

/// Removes the snapshot files sled was still writing when its process was killed. sled
/// 0.34.7 writes `snap.<lsn>.generating`, syncs it and only then renames it, yet at open reads
/// the highest `snap.*` file, `.generating` included: a kill during that write left a store
/// that no longer opens ("Read corrupted data", seen once in `tests/crash.rs` under load). The
/// finished snapshot before it is still there, and sled reads the log from it. Only when no
/// other process holds the store's lock: there the file may be one being written.
fn drop_unfinished_snapshots(path: &Path) {
    let Ok(db) = std::fs::File::open(path.join("db")) else {
        return;
    };
    if db.try_lock().is_err() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => {
                    tracing::warn!(event = "store_snapshot_dropped", file = %name, "an unfinished snapshot a killed run left was removed")
                }
                Err(e) => tracing::warn!(event = "store_snapshot_kept", file = %name, error = %e),
            }
        }
    }
}

/// `path` with `suffix` added to its last component.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The folder holding `path`.
fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Writes the entries of `trees` into a fresh `Db` at `to`, flushes and closes it. Returns the
/// entries copied per tree and the copy's size on disk.
fn copy_trees(trees: &[sled::Tree], to: &Path, cache_bytes: u64) -> Result<(Vec<u64>, u64), Error> {
    const BATCH: u64 = 10_000;
    let fresh = open_handles(to, cache_bytes)?;
    let mut copied = vec![0; trees.len()];
    for ((from, into), n) in trees.iter().zip(&fresh.trees).zip(&mut copied) {
        let mut batch = sled::Batch::default();
        for entry in from.iter() {
            let (k, v) = entry.map_err(storage)?;
            batch.insert(k, v);
            *n += 1;
            if *n % BATCH == 0 {
                into.apply_batch(std::mem::take(&mut batch))
                    .map_err(storage)?;
            }
        }
        into.apply_batch(batch).map_err(storage)?;
    }
    fresh.db.flush().map_err(storage)?;
    let size = fresh.db.size_on_disk().map_err(storage)?;
    Ok((copied, size))
}

/// Copies the high-water file of the store at `from` (if any) into the copy at `to`, then
/// makes the copy's folder durable: sled syncs its files, not the folder's entries.
fn carry_high_water(from: &Path, to: &Path) -> std::io::Result<()> {
    match std::fs::copy(from.join(HIGH_WATER), to.join(HIGH_WATER)) {
        Ok(_) => std::fs::File::open(to.join(HIGH_WATER))?.sync_all()?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    if to.join("blobs").exists() {
        sync_dir(&to.join("blobs"))?;
    }
    sync_dir(to)
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Swaps the folders `a` and `b` in one step, so that both names always name a whole store.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        std::ffi::CString::new(p.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))
    };
    let (a, b) = (c(a)?, c(b)?);
    // SAFETY: both are valid C strings; AT_FDCWD resolves relative paths as `std::fs` does.
    let swapped = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if swapped != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

/// The file system (or kernel) has no atomic exchange of two names.
fn cannot_exchange(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS))
        || e.kind() == std::io::ErrorKind::Unsupported
}

/// Waits (up to [`LOCK_GRACE`]) until no handle holds sled's lock on the `db` file: a dropped
/// `Db` releases it when its last background write ends, and only then has it stopped using
/// its folder.
fn wait_released(db: &Path) {
    let Ok(file) = std::fs::File::open(db) else {
        return;
    };
    let deadline = Instant::now() + LOCK_GRACE;
    while file.try_lock().is_err() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The free space `open` asks for. sled writes while it recovers at open; on a full disk that
/// write fails half-way and leaves files every later open reads as corrupt (seen by `bench
/// soak`: one start on a full disk, then "Read corrupted data" forever). So a store is not
/// opened, and nothing is written, unless its disk has this much room.
const MIN_FREE_BYTES: u64 = 16 << 20;

/// Free space for an unprivileged writer on the file system holding `path` (or, before the
/// store exists, its nearest existing parent); `None` when it cannot be read.
fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let existing = path.ancestors().find(|p| p.exists())?;
    let name = std::ffi::CString::new(existing.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `name` is a valid C string and `st` a buffer statvfs fills when it returns 0.
    let st = unsafe {
        if libc::statvfs(name.as_ptr(), st.as_mut_ptr()) != 0 {
            return None;
        }
        st.assume_init()
    };
    // The fields are u64 on 64-bit Linux, narrower on some 32-bit targets.
    #[allow(clippy::useless_conversion)]
    let (blocks, size) = (u64::from(st.f_bavail), u64::from(st.f_frsize));
    Some(blocks.saturating_mul(size))
}

/// How a transaction's attempt moved each tree's entry count.
type Deltas = [i64; Tree::ALL.len()];

impl SledStore {
    /// Opens (or creates) the store at `path` with the small cache of a tool that only reads
    /// or edits a few records; the agent uses [`SledStore::open_for`].
    pub fn open(path: &Path) -> Result<Self, Error> {
        Self::open_for(path, 0)
    }

    /// Opens (or creates) the store at `path` for an agent watching `mailboxes` mailboxes,
    /// refusing one written by a newer format or one that went back in time. sled panics on
    /// some corrupt files: that becomes an error too.
    pub fn open_for(path: &Path, mailboxes: usize) -> Result<Self, Error> {
        let cache = cache_bytes(mailboxes);
        survive(path, || Self::open_files(path, cache))
    }

    fn open_files(path: &Path, cache_bytes: u64) -> Result<Self, Error> {
        if let Some(free) = free_bytes(path).filter(|f| *f < MIN_FREE_BYTES) {
            return Err(Error::Open {
                path: path.to_owned(),
                reason: format!(
                    "No space left on its disk ({} KiB free; opening needs {} MiB)",
                    free / 1024,
                    MIN_FREE_BYTES >> 20
                ),
            });
        }
        drop_unfinished_snapshots(path);
        let handles = open_handles(path, cache_bytes)?;
        // The store's lock is held now, so no reclaim or compact is writing this copy: it is
        // what a crash left behind.
        let leftover = sibling(path, COMPACTING);
        if leftover.exists()
            && let Err(e) = std::fs::remove_dir_all(&leftover)
        {
            tracing::warn!(event = "store_leftover_kept", path = %leftover.display(), error = %e, "an unfinished copy of the store could not be removed");
        }
        let counts = handles
            .trees
            .iter()
            .map(|t| AtomicI64::new(t.len() as i64))
            .collect();
        let store = Self {
            live: Arc::new(RwLock::new(Some(handles))),
            path: path.to_owned(),
            cache_bytes,
            writing: Arc::default(),
            flush_turn: tokio::sync::Mutex::const_new(()),
            committed: AtomicU64::new(0),
            flushed: AtomicU64::new(0),
            counts,
            broken: tokio::sync::watch::Sender::new(None),
            high_water: Arc::default(),
            fresh_per_entry: Mutex::new(None),
            no_exchange: AtomicBool::new(false),
        };
        store.check_format()?;
        store.check_high_water()?;
        Ok(store)
    }

    /// Rewrites the store at `path` with only its live entries, since sled does not give the
    /// space of removed and overwritten entries back by itself. The store must not be in use.
    /// Returns its size on disk before and after.
    pub fn compact(path: &Path) -> Result<(u64, u64), Error> {
        survive(path, || Self::compact_files(path))
    }

    fn compact_files(path: &Path) -> Result<(u64, u64), Error> {
        let old = Self::open(path)?;
        let before = old.bytes_on_disk()?;
        let (fresh, retired) = (sibling(path, COMPACTING), sibling(path, ".retired"));
        let io = |e: std::io::Error| Error::Storage(format!("compacting {}: {e}", path.display()));
        if retired.exists() {
            std::fs::remove_dir_all(&retired).map_err(io)?;
        }
        let (_, after) = old.with(|h| copy_trees(&h.trees, &fresh, old.cache_bytes))?;
        carry_high_water(path, &fresh).map_err(io)?;
        drop(old);
        match exchange(path, &fresh) {
            Ok(()) => std::fs::remove_dir_all(&fresh).map_err(io)?,
            Err(e) if cannot_exchange(&e) => {
                std::fs::rename(path, &retired).map_err(io)?;
                std::fs::rename(&fresh, path).map_err(io)?;
                std::fs::remove_dir_all(&retired).map_err(io)?;
            }
            Err(e) => return Err(io(e)),
        }
        Ok((before, after))
    }

    /// Rewrites the store's live entries into a fresh copy beside it and swaps that in, while
    /// commits and flushes wait (reads go on until the swap itself). A crash at any moment
    /// leaves a whole store at its path, the old or the new one. `None` when it did not run:
    /// the store is broken, its file system cannot swap folders atomically (said once), or
    /// its disk has no room for the copy.
    pub fn reclaim(&self) -> Result<Option<Reclaimed>, Error> {
        off_worker(|| survive(&self.path, || self.reclaim_now()))
    }

    /// [`SledStore::reclaim`] when `policy` says the store wastes enough to be worth it; the
    /// figures it decides from are kept in memory or cheap to read (sled's size on disk).
    fn reclaim_if_due(&self, policy: &ReclaimPolicy) -> Result<Option<Reclaimed>, Error> {
        let on_disk = self.bytes_on_disk()?;
        let fresh = self.fresh_estimate();
        if on_disk < policy.floor || on_disk as f64 <= policy.slack * fresh as f64 {
            return Ok(None);
        }
        self.reclaim()
    }

    /// Entries in all trees.
    fn entries(&self) -> u64 {
        let all = self.counts.iter().map(|c| c.load(Ordering::Relaxed).max(0));
        all.sum::<i64>() as u64
    }

    /// What a fresh copy of the store would take on disk now.
    fn fresh_estimate(&self) -> u64 {
        let known = *self
            .fresh_per_entry
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        (known.unwrap_or(FRESH_BYTES_PER_ENTRY) * self.entries() as f64) as u64
    }

    fn reclaim_now(&self) -> Result<Option<Reclaimed>, Error> {
        if self.broken.borrow().is_some() || self.no_exchange.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let failed = |what: String| {
            Error::Storage(format!(
                "reclaiming the space of {}: {what}",
                self.path.display()
            ))
        };
        let fresh = sibling(&self.path, COMPACTING);
        let writing = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        let started = Instant::now();
        let before = self.bytes_on_disk()?;
        let room = self.fresh_estimate().saturating_mul(2) + MIN_FREE_BYTES;
        if let Some(free) = free_bytes(&self.path).filter(|free| *free < room) {
            tracing::warn!(
                event = "store_reclaim_skipped",
                free,
                needs = room,
                "too little free space on the store's disk for a fresh copy"
            );
            return Ok(None);
        }
        if fresh.exists() {
            std::fs::remove_dir_all(&fresh).map_err(|e| failed(e.to_string()))?;
        }
        let discard = |what: String| {
            let _ = std::fs::remove_dir_all(&fresh);
            failed(what)
        };
        let (copied, after) = self
            .with(|h| copy_trees(&h.trees, &fresh, self.cache_bytes))
            .map_err(|e| discard(e.to_string()))?;
        for ((tree, count), copied) in Tree::ALL.iter().zip(&self.counts).zip(&copied) {
            let counted = count.load(Ordering::Relaxed).max(0) as u64;
            if counted != *copied {
                return Err(discard(format!(
                    "the copy of tree {} holds {copied} entries where the store counts {counted}; the store is left as it was",
                    tree.name()
                )));
            }
        }
        // A delivery's mark lands in the old folder before the swap or in the new one after.
        let high_water = self.high_water.lock().unwrap_or_else(|p| p.into_inner());
        carry_high_water(&self.path, &fresh)
            .map_err(|e| discard(format!("copying {HIGH_WATER}: {e}")))?;
        let mut live = self.live.write().unwrap_or_else(|p| p.into_inner());
        // Closed before the swap: a `Db` opens blob files by path, which then names the copy.
        drop(live.take());
        wait_released(&self.path.join("db"));
        if let Err(e) = exchange(&self.path, &fresh) {
            let reopened = open_handles(&self.path, self.cache_bytes);
            let _ = std::fs::remove_dir_all(&fresh);
            match reopened {
                Ok(handles) => *live = Some(handles),
                Err(reopen) => {
                    return self.checked(Err(Error::Disk(format!(
                        "reopening {} after a failed reclaim: {reopen}",
                        self.path.display()
                    ))));
                }
            }
            if cannot_exchange(&e) {
                self.no_exchange.store(true, Ordering::Relaxed);
                tracing::warn!(event = "store_reclaim_unsupported", path = %self.path.display(), error = %e, "the store's file system cannot swap folders atomically, so its space is not reclaimed while the agent runs; stop the agent now and then and run `foldertrack compact`");
                return Ok(None);
            }
            return Err(failed(format!("swapping in the fresh copy: {e}")));
        }
        if let Err(e) = sync_dir(parent(&self.path)) {
            tracing::warn!(event = "store_sync_failed", error = %e);
        }
        match open_handles(&self.path, self.cache_bytes) {
            Ok(handles) => *live = Some(handles),
            Err(e) => {
                return self.checked(Err(Error::Disk(format!(
                    "reopening {} after reclaiming its space: {e}",
                    self.path.display()
                ))));
            }
        }
        drop((live, high_water, writing));
        let paused = started.elapsed();
        *self
            .fresh_per_entry
            .lock()
            .unwrap_or_else(|p| p.into_inner()) =
            Some(after as f64 / copied.iter().sum::<u64>().max(1) as f64);
        // The old store, now at the sibling path; a crash before this removes it at the next open.
        if let Err(e) = std::fs::remove_dir_all(&fresh) {
            tracing::warn!(event = "store_leftover_kept", path = %fresh.display(), error = %e, "the old copy of the store could not be removed; the next start removes it");
        }
        Ok(Some(Reclaimed {
            before,
            after,
            paused,
        }))
    }

    /// Runs `f` on the live handles, holding them against a swap meanwhile.
    fn with<T>(&self, f: impl FnOnce(&Handles) -> Result<T, Error>) -> Result<T, Error> {
        let live = self.live.read().unwrap_or_else(|p| p.into_inner());
        match live.as_ref() {
            Some(handles) => f(handles),
            None => Err(Error::Disk(format!(
                "{} was not reopened after reclaiming its space",
                self.path.display()
            ))),
        }
    }

    /// Transactions committed since the store was opened.
    pub fn transactions(&self) -> u64 {
        self.committed.load(Ordering::Acquire)
    }

    /// `result`, noting an error sled cannot recover from (the first one is kept).
    fn checked<T>(&self, result: Result<T, Error>) -> Result<T, Error> {
        if let Err(Error::Disk(reason)) = &result {
            self.broken.send_if_modified(|broken| {
                let first = broken.is_none();
                if first {
                    *broken = Some(reason.clone());
                }
                first
            });
        }
        result
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Refuses a store that ends before the delivered high-water mark (see the module doc).
    fn check_high_water(&self) -> Result<(), Error> {
        let file = self.path.join(HIGH_WATER);
        let refuse = |reason: String| Error::Open {
            path: self.path.clone(),
            reason,
        };
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(refuse(format!("cannot read {}: {e}", file.display()))),
        };
        let delivered = text
            .split_once(' ')
            .and_then(|(seq, _)| seq.parse::<u64>().ok())
            .filter(|seq| seal(*seq) == text)
            .ok_or_else(|| {
                refuse(format!(
                    "{} is damaged, so whether the store went back in time is unknown; delete it to start without that check",
                    file.display()
                ))
            })?;
        let found = match self.with(|h| {
            h.trees[Tree::Meta as usize]
                .get(super::OUTBOX_SEQ)
                .map_err(storage)
        })? {
            Some(bytes) => records::decode::<u64>(&bytes).map_err(|e| Error::Corrupt {
                tree: Tree::Meta.name(),
                reason: e.to_string(),
            })?,
            None => 0,
        };
        if delivered > found {
            return Err(Error::RolledBack {
                path: self.path.clone(),
                high_water: file,
                delivered,
                found,
            });
        }
        *self.high_water.lock().unwrap_or_else(|p| p.into_inner()) = delivered;
        Ok(())
    }

    fn check_format(&self) -> Result<(), Error> {
        let meta = |f: &dyn Fn(&sled::Tree) -> sled::Result<Option<sled::IVec>>| {
            self.with(|h| f(&h.trees[Tree::Meta as usize]).map_err(storage))
        };
        match meta(&|t| t.get(b"format"))? {
            None => {
                meta(&|t| t.insert(b"format", records::encode(&FORMAT)))?;
                self.counts[Tree::Meta as usize].fetch_add(1, Ordering::Relaxed);
                meta(&|t| t.flush().map(|_| None))?;
                Ok(())
            }
            Some(bytes) => {
                let found: u32 = records::decode(&bytes).map_err(|reason| Error::Open {
                    path: self.path.clone(),
                    reason: format!("its format marker is unreadable ({reason})"),
                })?;
                if found > FORMAT {
                    return Err(Error::NewerFormat {
                        path: self.path.clone(),
                        found,
                    });
                }
                Ok(())
            }
        }
    }
}

fn storage(e: sled::Error) -> Error {
    match e {
        sled::Error::Io(_) | sled::Error::Corruption { .. } | sled::Error::ReportableBug(_) => {
            Error::Disk(e.to_string())
        }
        e => Error::Storage(e.to_string()),
    }
}

/// Runs `f` on the store at `path`, turning a panic of sled's (a corrupt file) into an error,
/// the one line the caller prints: the panic's own multi-line report stays unprinted.
fn survive<T>(path: &Path, f: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    let survived = silently(|| std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
    survived.unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(Error::Open {
            path: path.to_owned(),
            reason: format!("its files are corrupt (sled failed reading them: {what})"),
        })
    })
}

thread_local! {
    /// Set while this thread runs [`silently`].
    static SILENT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with the panic hook quiet on this thread (other threads report as before).
fn silently<T>(f: impl FnOnce() -> T) -> T {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !SILENT.with(std::cell::Cell::get) {
                report(info);
            }
        }));
    });
    let was = SILENT.with(|s| s.replace(true));
    let result = f();
    SILENT.with(|s| s.set(was));
    result
}

/// The high-water mark file's text for `seq`: the number and a checksum of it.
fn seal(seq: u64) -> String {
    use sha2::Digest;
    let sum = sha2::Sha256::digest(format!("foldertrack delivered high-water mark {seq}"));
    format!("{seq} {sum:x}\n")
}

/// Replaces `path` with `text`, durably and never half-written.
fn write_durably(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut name = path.as_os_str().to_owned();
    name.push(".new");
    let tmp = PathBuf::from(name);
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Up to `limit` entries of a sled iterator.
fn entries(iter: sled::Iter, limit: usize) -> Result<Vec<Entry>, Error> {
    iter.take(limit)
        .map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(storage))
        .collect()
}

fn from_sled(e: UnabortableTransactionError) -> TxError {
    match e {
        UnabortableTransactionError::Conflict => TxError::Conflict,
        UnabortableTransactionError::Storage(e) => TxError::Abort(storage(e)),
    }
}

struct SledTxn<'a> {
    trees: &'a [TransactionalTree],
    deltas: std::cell::RefCell<Deltas>,
}

impl Txn for SledTxn<'_> {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, TxError> {
        Ok(self.trees[tree as usize]
            .get(key)
            .map_err(from_sled)?
            .map(|v| v.to_vec()))
    }

    fn put(&self, tree: Tree, key: &[u8], value: Vec<u8>) -> Result<(), TxError> {
        let old = self.trees[tree as usize]
            .insert(key, value)
            .map_err(from_sled)?;
        if old.is_none() {
            self.deltas.borrow_mut()[tree as usize] += 1;
        }
        Ok(())
    }

    fn remove(&self, tree: Tree, key: &[u8]) -> Result<(), TxError> {
        if self.trees[tree as usize]
            .remove(key)
            .map_err(from_sled)?
            .is_some()
        {
            self.deltas.borrow_mut()[tree as usize] -= 1;
        }
        Ok(())
    }
}

impl SledStore {
    /// One transaction on this thread; `writing` may wait for a flush of another task.
    fn transact_now(&self, f: &dyn Fn(&dyn Txn) -> Result<(), TxError>) -> Result<(), Error> {
        let _writing = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        // The count changes of the attempt that committed (an attempt may be run again).
        let committed = std::cell::Cell::new(Deltas::default());
        let result = self.with(|h| {
            let result = h.trees.as_slice().transaction(|view| {
                let txn = SledTxn {
                    trees: view,
                    deltas: Default::default(),
                };
                f(&txn).map_err(|e| match e {
                    TxError::Conflict => ConflictableTransactionError::Conflict,
                    TxError::Abort(e) => ConflictableTransactionError::Abort(e),
                })?;
                committed.set(txn.deltas.into_inner());
                Ok(())
            });
            result.map_err(|e| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(e) => storage(e),
            })
        });
        if result.is_ok() {
            for (count, delta) in self.counts.iter().zip(committed.get()) {
                count.fetch_add(delta, Ordering::Relaxed);
            }
            self.committed.fetch_add(1, Ordering::AcqRel);
        }
        self.checked(result)
    }
}

/// Runs a store call that may block (waiting for a flush to end, or on the disk) without
/// stalling the other tasks of its worker: `block_in_place` on the agent's multi-threaded
/// runtime; inline on a single-threaded one (tools, tests), where that is not possible.
fn off_worker<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

impl Store for SledStore {
    fn transact(&self, f: &dyn Fn(&dyn Txn) -> Result<(), TxError>) -> Result<(), Error> {
        off_worker(|| self.transact_now(f))
    }

    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        let got = self.with(|h| h.trees[tree as usize].get(key).map_err(storage));
        self.checked(got.map(|v| v.map(|v| v.to_vec())))
    }

    fn scan(&self, tree: Tree, prefix: &[u8], limit: usize) -> Result<Vec<Entry>, Error> {
        let found = self.with(|h| entries(h.trees[tree as usize].scan_prefix(prefix), limit));
        self.checked(found)
    }

    fn scan_from(&self, tree: Tree, start: &[u8], limit: usize) -> Result<Vec<Entry>, Error> {
        let found = self.with(|h| entries(h.trees[tree as usize].range(start..), limit));
        self.checked(found)
    }

    fn count(&self, tree: Tree) -> Result<usize, Error> {
        Ok(self.counts[tree as usize].load(Ordering::Relaxed).max(0) as usize)
    }

    async fn flush(&self) -> Result<(), Error> {
        let mine = self.committed.load(Ordering::Acquire);
        let _turn = self.flush_turn.lock().await;
        if self.flushed.load(Ordering::Acquire) >= mine {
            return Ok(());
        }
        let covers = self.committed.load(Ordering::Acquire);
        let (live, writing, path) = (self.live.clone(), self.writing.clone(), self.path.clone());
        let flushed = tokio::task::spawn_blocking(move || {
            let _writing = writing.lock().unwrap_or_else(|p| p.into_inner());
            // The handles of now: a reclaim may have swapped them since this flush was asked for.
            match live.read().unwrap_or_else(|p| p.into_inner()).as_ref() {
                Some(h) => h.db.flush().map(drop).map_err(storage),
                None => Err(Error::Disk(format!(
                    "{} was not reopened after reclaiming its space",
                    path.display()
                ))),
            }
        })
        .await
        .map_err(|e| Error::Storage(format!("flush: {e}")))
        .and_then(|r| r);
        if flushed.is_ok() {
            self.flushed.store(covers, Ordering::Release);
        }
        self.checked(flushed)
    }

    fn reclaim_space(&self, policy: &ReclaimPolicy) -> Result<Option<Reclaimed>, Error> {
        self.reclaim_if_due(policy)
    }

    fn bytes_on_disk(&self) -> Result<u64, Error> {
        let size = self.with(|h| h.db.size_on_disk().map_err(storage));
        self.checked(size)
    }

    async fn mark_high_water(&self, seq: u64) -> Result<(), Error> {
        let (file, high_water) = (self.path.join(HIGH_WATER), self.high_water.clone());
        let written = tokio::task::spawn_blocking(move || {
            let mut known = high_water.lock().unwrap_or_else(|p| p.into_inner());
            if seq > *known {
                write_durably(&file, &seal(seq))
                    .map_err(|e| Error::Disk(format!("{}: {e}", file.display())))?;
                *known = seq;
            }
            Ok(())
        })
        .await
        .unwrap_or_else(|e| Err(Error::Storage(format!("high-water mark: {e}"))));
        self.checked(written)
    }

    async fn failed(&self) -> String {
        let mut watch = self.broken.subscribe();
        let reason = watch
            .wait_for(Option::is_some)
            .await
            .map(|reason| reason.clone().unwrap_or_default());
        match reason {
            Ok(reason) => reason,
            // The store is gone: nothing more can fail.
            Err(_) => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kept counts match the trees through inserts, overwrites, removals and a reopen.
    #[test]
    fn entry_counts_are_kept_without_walking_the_trees() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(&dir.path().join("s")).unwrap();
        let put =
            |key: &str| store.transact(&|tx| tx.put(Tree::Seen, key.as_bytes(), b"v".to_vec()));
        for key in ["a", "b", "c", "a"] {
            put(key).unwrap();
        }
        store
            .transact(&|tx| {
                tx.remove(Tree::Seen, b"b")?;
                tx.remove(Tree::Seen, b"nothing")?;
                tx.put(Tree::Outbox, b"1", b"x".to_vec())
            })
            .unwrap();
        let real = |s: &SledStore, t: Tree| s.with(|h| Ok(h.trees[t as usize].len())).unwrap();
        assert_eq!(store.count(Tree::Seen).unwrap(), 2);
        assert_eq!(store.count(Tree::Seen).unwrap(), real(&store, Tree::Seen));
        assert_eq!(store.count(Tree::Outbox).unwrap(), 1);
        drop(store);
        let store = SledStore::open(&dir.path().join("s")).unwrap();
        for t in Tree::ALL {
            assert_eq!(store.count(t).unwrap(), real(&store, t), "{t:?}");
        }
    }

    /// sled's cache follows the mailboxes configured, between its floor and its ceiling.
    #[test]
    fn the_cache_grows_with_the_mailboxes_between_a_floor_and_a_ceiling() {
        assert_eq!(cache_bytes(0), 8 << 20);
        assert_eq!(cache_bytes(1_000), (8 << 20) + 1_000 * 4096);
        assert!(cache_bytes(10_000) < 64 << 20);
        assert_eq!(cache_bytes(100_000), 64 << 20);
        assert_eq!(cache_bytes(usize::MAX), 64 << 20);
    }

    /// A commit that waits on the disk (here: on another task, which stands for it) leaves the
    /// worker's other tasks running, even on a runtime with one worker: the admin API, health
    /// checks and SIGTERM still answer while a flush crawls. Without `block_in_place` the other
    /// task never runs and the wait below times out.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_commit_waiting_on_the_disk_leaves_the_other_tasks_running() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(&dir.path().join("s")).unwrap();
        // Both tasks on the one worker: the other is queued behind the commit.
        let commit = tokio::spawn(async move {
            let (done, waiting) = std::sync::mpsc::channel();
            let waiting = Mutex::new(waiting);
            let other = tokio::spawn(async move { done.send(()).unwrap() });
            let answered = std::sync::atomic::AtomicBool::new(false);
            store
                .transact(&|tx| {
                    let wait = std::time::Duration::from_secs(10);
                    answered.store(
                        waiting.lock().unwrap().recv_timeout(wait).is_ok(),
                        Ordering::Relaxed,
                    );
                    tx.put(Tree::Seen, b"k", b"v".to_vec())
                })
                .unwrap();
            other.await.unwrap();
            answered.load(Ordering::Relaxed)
        });
        assert!(
            commit.await.unwrap(),
            "the other task did not run while the commit waited"
        );
    }

    /// A panic inside sled (as corrupt files cause: `tried to serialize Uninitialized`)
    /// becomes the store's one-line open error, and the panic's report is not printed.
    #[test]
    fn a_panic_in_sled_becomes_a_one_line_error() {
        let path = Path::new("/srv/foldertrack/store");
        let got: Result<(), Error> = survive(path, || panic!("tried to serialize Uninitialized"));
        let line = got.unwrap_err().to_string();
        assert!(line.contains("/srv/foldertrack/store"), "{line}");
        assert!(line.contains("corrupt"), "{line}");
        assert!(line.contains("tried to serialize Uninitialized"), "{line}");
        assert!(!line.contains('\n'), "{line}");
    }
}
