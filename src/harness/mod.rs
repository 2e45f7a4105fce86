//! Harnesses that drive the agent against the built-in simulator: `foldertrack demo` and
//! `foldertrack bench`. They sit above the agent and use it as an operator would.

pub mod bench;
pub mod demo;
pub mod soak;

/// Why a demo or a benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Agent(#[from] crate::agent::Error),
    #[error(transparent)]
    Config(#[from] crate::config::Error),
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    #[error(transparent)]
    Simulator(#[from] crate::sim::Error),
    #[error(transparent)]
    Admin(#[from] crate::admin::client::ClientError),
    #[error(transparent)]
    AgentFiles(#[from] crate::agent::files::Error),
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Stalled(String),
}

/// Writes a secret file readable by its owner only (the agent warns about any other).
fn write_secret(path: &std::path::Path, text: &str) -> Result<(), Error> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })
}
