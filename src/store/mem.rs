//! [`MemStore`]: the store contract in memory, for unit tests. Transactions write to an
//! overlay that is applied under one lock, so they are atomic like sled's.

use super::{Entry, Error, Store, Tree, TxError, Txn};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Writes of a transaction by (tree, key); `None` is a removal.
type Overlay = BTreeMap<(usize, Vec<u8>), Option<Vec<u8>>>;

type Trees = [BTreeMap<Vec<u8>, Vec<u8>>; Tree::ALL.len()];

#[derive(Default)]
pub struct MemStore {
    trees: Mutex<Trees>,
}

impl MemStore {
    pub fn new() -> Self {
        Self::default()
    }
}

struct MemTxn<'a> {
    base: &'a Trees,
    /// Writes of this transaction: `None` is a removal.
    overlay: RefCell<Overlay>,
}

impl Txn for MemTxn<'_> {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, TxError> {
        let t = tree as usize;
        Ok(match self.overlay.borrow().get(&(t, key.to_vec())) {
            Some(v) => v.clone(),
            None => self.base[t].get(key).cloned(),
        })
    }

    fn put(&self, tree: Tree, key: &[u8], value: Vec<u8>) -> Result<(), TxError> {
        self.overlay
            .borrow_mut()
            .insert((tree as usize, key.to_vec()), Some(value));
        Ok(())
    }

    fn remove(&self, tree: Tree, key: &[u8]) -> Result<(), TxError> {
        self.overlay
            .borrow_mut()
            .insert((tree as usize, key.to_vec()), None);
        Ok(())
    }
}

impl Store for MemStore {
    fn transact(&self, f: &dyn Fn(&dyn Txn) -> Result<(), TxError>) -> Result<(), Error> {
        let mut trees = self.trees.lock().expect("a store lock is never poisoned");
        let txn = MemTxn {
            base: &trees,
            overlay: RefCell::default(),
        };
        match f(&txn) {
            Ok(()) => {}
            Err(TxError::Abort(e)) => return Err(e),
            Err(TxError::Conflict) => unreachable!("a locked memory store has no conflicts"),
        }
        for ((t, key), value) in txn.overlay.into_inner() {
            match value {
                Some(v) => trees[t].insert(key, v),
                None => trees[t].remove(&key),
            };
        }
        Ok(())
    }

    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.trees.lock().expect("unpoisoned")[tree as usize]
            .get(key)
            .cloned())
    }

    fn scan(&self, tree: Tree, prefix: &[u8], limit: usize) -> Result<Vec<Entry>, Error> {
        let trees = self.trees.lock().expect("unpoisoned");
        Ok(trees[tree as usize]
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn scan_from(&self, tree: Tree, start: &[u8], limit: usize) -> Result<Vec<Entry>, Error> {
        let trees = self.trees.lock().expect("unpoisoned");
        Ok(trees[tree as usize]
            .range(start.to_vec()..)
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn count(&self, tree: Tree) -> Result<usize, Error> {
        Ok(self.trees.lock().expect("unpoisoned")[tree as usize].len())
    }

    async fn flush(&self) -> Result<(), Error> {
        Ok(())
    }

    fn bytes_on_disk(&self) -> Result<u64, Error> {
        Ok(0)
    }
}
