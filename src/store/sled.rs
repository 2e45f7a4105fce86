//! [`SledStore`]: the only code that names sled. One `Db`, one tree per [`Tree`], one
//! multi-tree transaction per commit, a flush before anything is acknowledged.
//!
//! Transactions and flushes never overlap: sled 0.34 guards both with one process-wide
//! reader-writer lock, and a flush that waits for the log while a transaction waits to stage
//! deadlocks (seen under 1,000 mailboxes' first syncs). So every transaction and every flush
//! takes `writing`, and sled's own background flusher is off — foldertrack flushes after every
//! commit anyway.

use super::{Entry, Error, FORMAT, Store, Tree, TxError, Txn, records};
use sled::Transactional;
use sled::transaction::{
    ConflictableTransactionError, TransactionError, TransactionalTree, UnabortableTransactionError,
};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// sled's default cache is 1 GiB; the store's working set is far smaller.
const CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// How long `open` waits for a lock that is busy: sled releases the file lock of a dropped
/// handle only when that handle's last background write ends, so a store this process just
/// closed (compact, a restart in tests) can look in use for a moment.
const LOCK_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

pub struct SledStore {
    db: sled::Db,
    trees: Vec<sled::Tree>,
    path: PathBuf,
    /// Held by every transaction and every flush (see the module doc).
    writing: Arc<Mutex<()>>,
}

/// Opens sled's `Db`, waiting up to [`LOCK_GRACE`] while its lock is busy.
fn open_db(path: &Path) -> sled::Result<sled::Db> {
    let config = sled::Config::new()
        .path(path)
        .cache_capacity(CACHE_BYTES)
        .flush_every_ms(None);
    let deadline = std::time::Instant::now() + LOCK_GRACE;
    loop {
        match config.open() {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

impl SledStore {
    /// Opens (or creates) the store at `path`, refusing one written by a newer format.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let open_error = |reason: String| Error::Open {
            path: path.to_owned(),
            reason,
        };
        let db = open_db(path).map_err(|e| open_error(e.to_string()))?;
        let trees = Tree::ALL
            .iter()
            .map(|t| db.open_tree(t.name()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| open_error(e.to_string()))?;
        let store = Self {
            db,
            trees,
            path: path.to_owned(),
            writing: Arc::default(),
        };
        store.check_format()?;
        Ok(store)
    }

    /// Rewrites the store at `path` with only its live entries, since sled does not give the
    /// space of removed and overwritten entries back by itself. The store must not be in use.
    /// Returns its size on disk before and after.
    pub fn compact(path: &Path) -> Result<(u64, u64), Error> {
        let old = Self::open(path)?;
        let before = old.bytes_on_disk()?;
        let sibling = |suffix: &str| {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            PathBuf::from(name)
        };
        let (fresh, retired) = (sibling(".compacting"), sibling(".retired"));
        let io = |e: std::io::Error| Error::Storage(format!("compacting {}: {e}", path.display()));
        for leftover in [&fresh, &retired] {
            if leftover.exists() {
                std::fs::remove_dir_all(leftover).map_err(io)?;
            }
        }
        let new = Self::open(&fresh)?;
        for tree in Tree::ALL {
            let mut batch = sled::Batch::default();
            for (n, entry) in old.tree(tree).iter().enumerate() {
                let (k, v) = entry.map_err(storage)?;
                batch.insert(k, v);
                if n % 10_000 == 9_999 {
                    new.tree(tree)
                        .apply_batch(std::mem::take(&mut batch))
                        .map_err(storage)?;
                }
            }
            new.tree(tree).apply_batch(batch).map_err(storage)?;
        }
        new.db.flush().map_err(storage)?;
        let after = new.bytes_on_disk()?;
        drop((old, new));
        std::fs::rename(path, &retired).map_err(io)?;
        std::fs::rename(&fresh, path).map_err(io)?;
        std::fs::remove_dir_all(&retired).map_err(io)?;
        Ok((before, after))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn tree(&self, tree: Tree) -> &sled::Tree {
        &self.trees[tree as usize]
    }

    fn check_format(&self) -> Result<(), Error> {
        let meta = self.tree(Tree::Meta);
        match meta.get(b"format").map_err(storage)? {
            None => {
                meta.insert(b"format", records::encode(&FORMAT))
                    .map_err(storage)?;
                meta.flush().map_err(storage)?;
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
    Error::Storage(e.to_string())
}

fn from_sled(e: UnabortableTransactionError) -> TxError {
    match e {
        UnabortableTransactionError::Conflict => TxError::Conflict,
        UnabortableTransactionError::Storage(e) => TxError::Abort(storage(e)),
    }
}

struct SledTxn<'a>(&'a [TransactionalTree]);

impl Txn for SledTxn<'_> {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, TxError> {
        Ok(self.0[tree as usize]
            .get(key)
            .map_err(from_sled)?
            .map(|v| v.to_vec()))
    }

    fn put(&self, tree: Tree, key: &[u8], value: Vec<u8>) -> Result<(), TxError> {
        self.0[tree as usize]
            .insert(key, value)
            .map_err(from_sled)?;
        Ok(())
    }

    fn remove(&self, tree: Tree, key: &[u8]) -> Result<(), TxError> {
        self.0[tree as usize].remove(key).map_err(from_sled)?;
        Ok(())
    }
}

impl Store for SledStore {
    fn transact(&self, f: &dyn Fn(&dyn Txn) -> Result<(), TxError>) -> Result<(), Error> {
        let _writing = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        let result = self.trees.as_slice().transaction(|view| {
            f(&SledTxn(view)).map_err(|e| match e {
                TxError::Conflict => ConflictableTransactionError::Conflict,
                TxError::Abort(e) => ConflictableTransactionError::Abort(e),
            })
        });
        result.map_err(|e| match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => storage(e),
        })
    }

    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        Ok(self
            .tree(tree)
            .get(key)
            .map_err(storage)?
            .map(|v| v.to_vec()))
    }

    fn scan(&self, tree: Tree, prefix: &[u8], limit: usize) -> Result<Vec<Entry>, Error> {
        self.tree(tree)
            .scan_prefix(prefix)
            .take(limit)
            .map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(storage))
            .collect()
    }

    fn scan_from(&self, tree: Tree, start: &[u8], limit: usize) -> Result<Vec<Entry>, Error> {
        self.tree(tree)
            .range(start..)
            .take(limit)
            .map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(storage))
            .collect()
    }

    fn count(&self, tree: Tree) -> Result<usize, Error> {
        Ok(self.tree(tree).len())
    }

    async fn flush(&self) -> Result<(), Error> {
        let (db, writing) = (self.db.clone(), self.writing.clone());
        tokio::task::spawn_blocking(move || {
            let _writing = writing.lock().unwrap_or_else(|p| p.into_inner());
            db.flush().map(drop).map_err(storage)
        })
        .await
        .map_err(|e| Error::Storage(format!("flush: {e}")))?
    }

    fn bytes_on_disk(&self) -> Result<u64, Error> {
        self.db.size_on_disk().map_err(storage)
    }
}
