//! A cache where concurrent callers asking for the same missing key share one look-up
//! (deliveries run side by side; without this each would ask Dataverse the same question).
//! A failed look-up is not kept; entries may expire.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::OnceCell;
use tokio::time::Instant;

type Cell<V> = (Arc<OnceCell<V>>, Instant);

/// Values by key, each looked up once (per `ttl`, when one is set).
pub struct Memo<V> {
    cells: Mutex<HashMap<String, Cell<V>>>,
    ttl: Option<Duration>,
}

impl<V: Clone> Memo<V> {
    pub fn new(ttl: Option<Duration>) -> Self {
        Self {
            cells: Mutex::new(HashMap::new()),
            ttl,
        }
    }

    /// The value of `key`, from `look_up` when it is not known (or has expired).
    pub async fn get_or_try<E, F, Fut>(&self, key: &str, look_up: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let cell = {
            let mut cells = self.cells.lock().expect("unpoisoned");
            let fresh = |(_, at): &Cell<V>| self.ttl.is_none_or(|ttl| at.elapsed() < ttl);
            match cells.get(key).filter(|c| fresh(c)) {
                Some((cell, _)) => cell.clone(),
                None => {
                    let cell = Arc::new(OnceCell::new());
                    cells.insert(key.to_owned(), (cell.clone(), Instant::now()));
                    cell
                }
            }
        };
        cell.get_or_try_init(look_up).await.cloned()
    }

    /// Forgets every value.
    pub fn clear(&self) {
        self.cells.lock().expect("unpoisoned").clear();
    }
}

impl<V: Clone> Default for Memo<V> {
    fn default() -> Self {
        Self::new(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn callers_asking_at_once_share_one_look_up() {
        let memo: Memo<u32> = Memo::default();
        let calls = std::sync::atomic::AtomicU32::new(0);
        let look_up = || async {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::task::yield_now().await;
            Ok::<_, ()>(7)
        };
        let (a, b) = tokio::join!(memo.get_or_try("k", look_up), memo.get_or_try("k", look_up));
        assert_eq!((a, b), (Ok(7), Ok(7)));
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(memo.get_or_try("k", || async { Err(()) }).await, Ok(7));
    }
}
