//! The command line (clap derive). No logic: each command calls into the library.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Watches Exchange folders over EWS and turns every mail moved into one into a tracking request.
#[derive(Debug, Parser)]
#[command(name = "foldertrack", version, about)]
pub struct Cli {
    /// The configuration file.
    #[arg(
        long,
        global = true,
        env = "FOLDERTRACK_CONFIG",
        default_value = "foldertrack.toml"
    )]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Work with saved EWS documents.
    #[command(subcommand)]
    Ews(EwsCommand),
}

#[derive(Debug, Subcommand)]
pub enum EwsCommand {
    /// Print what foldertrack understands of saved EWS requests or responses, as JSON.
    Decode {
        /// Files holding an envelope, a bare EWS element, or a raw HTTP message.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Write one example of every request foldertrack builds, one file each.
    Requests {
        /// The folder to write them into (created when missing).
        #[arg(long)]
        out: PathBuf,
    },
}
