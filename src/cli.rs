//! The command line (clap derive). No logic: each command calls into the library.

use clap::{Parser, Subcommand, ValueEnum};
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
    /// More log output (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only warnings and errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The states `foldertrack items` can filter on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemState {
    /// Failed at least once, waiting for the next attempt.
    Retrying,
    /// Out of attempts (`retry` re-queues it).
    Undeliverable,
    /// Refused for good by the sink.
    Rejected,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Watch every mapped folder until stopped.
    Run,
    /// One sync pass over every mapping, then exit.
    Once,
    /// Health, cadence and counts of every mailbox and mapping.
    Status {
        /// JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Validate the config file, then check every mailbox against the server.
    CheckConfig {
        /// Only the file and its secrets; no call to the server.
        #[arg(long)]
        offline: bool,
    },
    /// Print a mailbox's folder tree with FolderIds, marking the mapped ones.
    Folders { address: String },
    /// Sync one mailbox now (track-now).
    SyncNow { address: String },
    /// List items by state (undeliverable, rejected, retrying).
    Items {
        /// Only items in this state (default: every problem item).
        #[arg(long, value_enum)]
        state: Option<ItemState>,
        /// JSON lines for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Re-queue undeliverable and rejected items (agent stopped).
    Retry {
        /// Say what would be re-queued, and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Only this mailbox's items.
        #[arg(long)]
        mailbox: Option<String>,
        /// Only items that failed at or after this time (RFC 3339, or a date: 2026-11-27).
        #[arg(long)]
        since: Option<String>,
    },
    /// Apply config changes to a running agent (it re-reads its config file).
    Reload {
        /// Show which mappings would change, and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Rewrite the store with only its live data, giving unused space back (agent stopped).
    Compact,
    /// A self-contained demonstration against the built-in simulator.
    Demo {
        /// Leave the simulator and the agent running afterwards.
        #[arg(long)]
        keep: bool,
    },
    /// Serve the Exchange simulator on loopback until Ctrl-C.
    #[command(after_long_help = crate::sim::CONTROL_HELP)]
    Sim {
        /// Where to listen; port 0 picks a free one.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
        /// Keep the simulator's state in this file across restarts.
        #[arg(long)]
        persist: Option<PathBuf>,
    },
    /// End-to-end benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Print the JSON schemas generated from the code, or write them into schemas/.
    Schema {
        #[arg(long)]
        write: bool,
    },
    /// Work with saved EWS documents.
    #[command(subcommand)]
    Ews(EwsCommand),
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// The agent end to end against the simulator: tracked, lost, duplicated, latency, calls,
    /// bytes, memory, CPU.
    E2e {
        /// small (10 mailboxes, under a minute), office (1,000) or enterprise (10,000 × 5).
        #[arg(long, default_value = "small")]
        preset: String,
        #[arg(long)]
        mailboxes: Option<usize>,
        /// Mapped folders per mailbox.
        #[arg(long)]
        folders: Option<usize>,
        /// Seconds of dragging mail into mapped folders.
        #[arg(long)]
        duration: Option<u64>,
        /// Mails dragged per second, over all mailboxes.
        #[arg(long)]
        rate: Option<f64>,
        /// Seconds of the idle window measured afterwards.
        #[arg(long)]
        idle: Option<u64>,
        /// Ask for a track-now after every drag.
        #[arg(long)]
        track_now: bool,
        /// Also write the report as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
    },
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
