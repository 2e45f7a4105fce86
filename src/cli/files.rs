//! The files a running agent keeps beside its store: its pid (for `reload` and for telling
//! whether an agent runs), the config it applied last (for `reload --dry-run`) and its admin
//! API's bound address (for the commands that ask a running agent).

use anyhow::{Context, Result};
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

    /// Written at start: this process's pid and the config it runs.
    pub fn write(&self, config: &Path) -> Result<()> {
        std::fs::write(&self.pid, std::process::id().to_string())
            .with_context(|| format!("{}: cannot write", self.pid.display()))?;
        self.applied_now(config)
    }

    pub fn applied_now(&self, config: &Path) -> Result<()> {
        std::fs::copy(config, &self.applied)
            .map(drop)
            .with_context(|| format!("{}: cannot write", self.applied.display()))
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

    /// Asks the running agent to re-read its config file (SIGHUP).
    pub fn reload(&self) -> Result<i32> {
        let pid = self.running_pid().with_context(|| {
            format!(
                "no running agent for this store ({} names none that is alive); start one with `foldertrack run`",
                self.pid.display()
            )
        })?;
        // SAFETY: kill(2) sends SIGHUP to a pid read from our own pid file.
        if unsafe { libc::kill(pid, libc::SIGHUP) } != 0 {
            anyhow::bail!(
                "agent {pid}: cannot signal it: {}",
                std::io::Error::last_os_error()
            );
        }
        Ok(pid)
    }

    pub fn remove(&self) {
        for file in [&self.pid, &self.applied, &self.admin] {
            let _ = std::fs::remove_file(file);
        }
    }
}
