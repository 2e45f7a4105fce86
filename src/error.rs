//! The crate error: one variant per layer, each wrapping that layer's own error.

/// Any error foldertrack's library can return.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Ews(#[from] crate::ews::Error),
    #[error(transparent)]
    Config(#[from] crate::config::Error),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
