//! The files a running agent keeps beside its store: its pid (for `reload` and for telling
//! whether an agent runs), the config it applied last (for `reload --dry-run`) and its admin
//! API's bound address (for the commands that ask a running agent).

use std::path::{Path, PathBuf};

#[derive(Clone)]
pub struct AgentFiles {
    pub pid: PathBuf,
    pub applied: PathBuf,
    /// The admin API's bound address (`admin.listen` may ask for port 0).
    pub admin: PathBuf,
}

impl AgentFiles {
    pub fn beside(store: &Path) -> Self {
        let beside = |suffix: &str| {
            let mut name = store.as_os_str().to_owned();
            name.push(suffix);
            PathBuf::from(name)
        };
        Self {
            pid: beside(".pid"),
            applied: beside(".applied.toml"),
            admin: beside(".admin"),
        }
    }

    /// Written at start: this process's pid and the config it runs. The admin address of an
    /// earlier life (one that was killed) goes, so nobody reads it as this one's.
    pub fn write(&self, config: &Path) -> Result<(), Error> {
        let _ = std::fs::remove_file(&self.admin);
        replace(&self.pid, std::process::id().to_string().as_bytes())?;
        self.applied_now(config)
    }

    pub fn applied_now(&self, config: &Path) -> Result<(), Error> {
        let text = std::fs::read(config).map_err(|e| Error::new(&self.applied, e))?;
        replace(&self.applied, &text)
    }

    /// Written once the admin API listens, so commands find it even on port 0.
    pub fn admin_listens(&self, addr: std::net::SocketAddr) -> Result<(), Error> {
        replace(&self.admin, addr.to_string().as_bytes())
    }

    /// The pid of the agent running on this store, if one is.
    pub fn running_pid(&self) -> Option<i32> {
        let pid: i32 = std::fs::read_to_string(&self.pid)
            .ok()?
            .trim()
            .parse()
            .ok()?;
        // Signal 0 checks that the process exists without touching it.
        // SAFETY: kill(2) with signal 0 only checks for the process's existence.
        (pid > 0 && unsafe { libc::kill(pid, 0) } == 0).then_some(pid)
    }

    /// The admin address of the agent running on this store, if one is.
    pub fn running(&self) -> Option<String> {
        self.running_pid()?;
        std::fs::read_to_string(&self.admin)
            .ok()
            .map(|a| a.trim().to_owned())
    }

    pub fn remove(&self) {
        for file in [&self.pid, &self.applied, &self.admin] {
            let _ = std::fs::remove_file(file);
        }
    }
}

/// Replaces `path` with `bytes` at once (a temporary file renamed over it): a command reading
/// it while the agent writes sees the old whole file or the new one, never an empty one.
fn replace(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    std::fs::write(&partial, bytes)
        .and_then(|()| std::fs::rename(&partial, path))
        .map_err(|e| Error::new(path, e))
}

/// A file beside the store that cannot be written.
#[derive(Debug, thiserror::Error)]
#[error("{path}: cannot write: {source}")]
pub struct Error {
    path: String,
    #[source]
    source: std::io::Error,
}

impl Error {
    fn new(path: &Path, source: std::io::Error) -> Self {
        Self {
            path: path.display().to_string(),
            source,
        }
    }
}
