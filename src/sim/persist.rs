//! Optional persistence: the durable state as one JSON snapshot, loaded at start, written shortly
//! after changes and at shutdown (to a temporary file, then renamed), so a watcher can be tested
//! across simulator restarts. Owns the file; never what is in the state.

use super::shared::{Error, Shared};
use super::state::State;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Reads a snapshot; `None` when the file does not exist yet.
pub fn load(path: &Path) -> Result<Option<State>, Error> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::Snapshot {
                path: path.to_owned(),
                message: e.to_string(),
            });
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| Error::Snapshot {
            path: path.to_owned(),
            message: format!("not a simulator snapshot ({e})"),
        })
}

/// Writes the snapshot now.
pub(crate) fn write_now(shared: &Shared, path: &Path) -> Result<(), Error> {
    let text = {
        let mut inner = shared.lock();
        inner.dirty = false;
        serde_json::to_string(&inner.state)
    }
    .map_err(|e| Error::Snapshot {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| Error::Snapshot {
            path: path.to_owned(),
            message: e.to_string(),
        })
}

/// Writes the snapshot after each burst of changes.
pub(crate) async fn run(shared: Arc<Shared>, path: std::path::PathBuf) {
    loop {
        shared.persist_wake.notified().await;
        // Let a burst of changes settle into one write.
        tokio::time::sleep(Duration::from_millis(50)).await;
        if shared.lock().dirty
            && let Err(e) = write_now(&shared, &path)
        {
            tracing::warn!(error = %e, "simulator snapshot not written");
        }
    }
}
