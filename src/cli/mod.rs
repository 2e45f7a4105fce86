//! The command line: clap's types, and [`run`], which hands each subcommand to the function
//! that does it — the agent's lifecycle in [`agent`], questions to the store or a running agent
//! in [`inspect`], tools beside the agent in [`tools`]; output is formatted in [`render`]. Part of the binary, not
//! of the library: the library knows nothing of clap.

mod agent;
mod handover;
mod inspect;
mod render;
mod tools;

use anyhow::Result;
use clap::{Parser, Subcommand};
use foldertrack::deliver::items::ItemState;
use foldertrack::telemetry::LogFormat;
use std::path::PathBuf;
use std::process::ExitCode;

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
    /// Log format on stderr: text or json.
    #[arg(long, global = true, default_value = "text")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Warnings and errors only: asked for with `--quiet`, or the demo without `-v`, whose
    /// story is its output and would drown in the agent's INFO lines.
    pub fn quiet_logs(&self) -> bool {
        #[cfg(feature = "sim")]
        if matches!(self.command, Command::Demo { .. }) && self.verbose == 0 {
            return true;
        }
        self.quiet
    }

    /// The parsed command line. `--config` is global for the commands that read the file; the
    /// tools that never do (the simulator, the demo, the benchmarks, `ews`) leave it out of
    /// their help: a hidden local `--config` there keeps clap from copying the global one in.
    pub fn parse_args() -> Self {
        use clap::{CommandFactory, FromArgMatches};
        let mut command = Self::command();
        for tool in ["sim", "demo", "bench", "ews"] {
            command = command.mut_subcommand(tool, |c| {
                c.arg(
                    clap::Arg::new("config")
                        .long("config")
                        .hide(true)
                        .value_parser(clap::value_parser!(PathBuf)),
                )
            });
        }
        Self::from_arg_matches(&command.get_matches()).unwrap_or_else(|e| e.exit())
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Watch every mapped folder until stopped.
    Run,
    /// One sync pass over every mapping, then exit.
    Once,
    /// Health, cadence and counts of every mailbox and mapping, from the running agent; with
    /// none running, what the store knows (mappings, baselines, tracked counts, queues).
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
    Folders {
        /// The mailbox's SMTP address, as in a `[[mailbox]]` of the config.
        address: String,
    },
    /// Sync one mailbox now (track-now; needs the running agent).
    SyncNow {
        /// The mailbox's SMTP address, as in a `[[mailbox]]` of the config.
        address: String,
    },
    /// List items by state (undeliverable, rejected, retrying).
    Items {
        /// Only items in this state: retrying, undeliverable, rejected or unreadable (default: all).
        #[arg(long)]
        state: Option<ItemState>,
        /// JSON lines for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Re-queue undeliverable and rejected items (through the running agent, or in the store
    /// when none runs).
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
    /// Why a mail was tracked or not: its story in plain words (from a running agent, or the
    /// store when none runs). Give a Message-ID, a subject fragment, or a mailbox and folder.
    Explain {
        /// The mail's Internet Message-ID, e.g. `<abc@contoso.com>`.
        #[arg(long)]
        message_id: Option<String>,
        /// A fragment of a tracked mail's subject (case-insensitive).
        #[arg(long)]
        subject: Option<String>,
        /// The mailbox's SMTP address (with --folder).
        #[arg(long)]
        mailbox: Option<String>,
        /// The folder's path, e.g. `Inbox/Customers/Contoso`, or its FolderId (with --mailbox).
        #[arg(long)]
        folder: Option<String>,
        /// JSON, as the admin API answers.
        #[arg(long)]
        json: bool,
    },
    /// Apply config changes to a running agent (it re-reads its config file).
    Reload {
        /// Show which mappings would change, and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Rewrite the store with only its live data, giving unused space back (agent stopped).
    Compact,
    /// Move a mailbox's state to the member that owns it after `cluster.members` changed.
    #[command(subcommand)]
    Handover(HandoverCommand),
    /// A self-contained demonstration against the built-in simulator.
    #[cfg(feature = "sim")]
    Demo {
        /// Leave the simulator and the agent running afterwards.
        #[arg(long)]
        keep: bool,
        /// The API the agent speaks to the simulator: ews (Exchange on-premises) or graph
        /// (Exchange Online).
        #[arg(long, default_value = "ews", value_parser = ["ews", "graph"])]
        api: String,
    },
    /// Serve the Exchange simulator on loopback until Ctrl-C.
    #[cfg(feature = "sim")]
    #[command(after_long_help = foldertrack::sim::CONTROL_HELP)]
    Sim {
        /// Where to listen; port 0 picks a free one.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
        /// Keep the simulator's state in this file across restarts.
        #[arg(long)]
        persist: Option<PathBuf>,
    },
    /// End-to-end benchmarks.
    #[cfg(feature = "sim")]
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

#[cfg(feature = "sim")]
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// The agent end to end against the simulator: tracked, lost, duplicated, latency, calls,
    /// bytes, memory, CPU.
    E2e {
        /// small (10 mailboxes, under a minute), office (1,000), enterprise (10,000 × 5), huge
        /// (100,000 × 5: where one agent gives way first; no goal), or burst (40 mails filed in one mailbox while another tracks one with track-now).
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
        /// Poll only: streaming notifications off (`notifications.mode = "off"`).
        #[arg(long, conflicts_with = "pull")]
        polling: bool,
        /// Pull subscriptions instead of streaming (`notifications.mode = "pull"`).
        #[arg(long)]
        pull: bool,
        /// Notification trouble during the drags about every SECS seconds: a random mailbox's
        /// subscriptions expire or lose their events, or every streaming connection drops.
        #[arg(long, value_name = "SECS")]
        chaos_every: Option<f64>,
        /// burst: the number of rounds.
        #[arg(long)]
        rounds: Option<usize>,
        /// The API the agent speaks to the simulator: ews or graph.
        #[arg(long, default_value = "ews", value_parser = ["ews", "graph"])]
        api: String,
        /// Also write the report as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// The agent for a long time under trouble of every kind (Exchange faults, sink outages,
    /// SIGKILLs, a full disk when a tmpfs can be mounted): lost, duplicated, memory over time.
    Soak(SoakArgs),
}

/// `foldertrack bench soak`.
#[cfg(feature = "sim")]
#[derive(Debug, clap::Args)]
pub struct SoakArgs {
    /// Minutes of filing mail under trouble.
    #[arg(long, default_value_t = 10, conflicts_with = "seconds")]
    minutes: u64,
    /// Seconds instead of minutes (short runs).
    #[arg(long)]
    seconds: Option<u64>,
    #[arg(long, default_value_t = 5)]
    mailboxes: usize,
    /// Mails filed per second, over all mailboxes.
    #[arg(long, default_value_t = 2.0)]
    rate: f64,
    /// Seconds between two kinds of trouble.
    #[arg(long, default_value_t = 15.0)]
    chaos_every: f64,
    /// Seconds to wait after the trouble for the last mails.
    #[arg(long, default_value_t = 600)]
    settle: u64,
    /// Leave out the full-disk trouble (it needs a tmpfs mount, so root).
    #[arg(long)]
    no_disk_full: bool,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum HandoverCommand {
    /// Print a mailbox's state (sync states, seen items, records) as JSON, on the member that
    /// owned it, once it delivered the mailbox's requests.
    Export {
        /// The mailbox's SMTP address.
        #[arg(long)]
        mailbox: String,
    },
    /// Take a mailbox's state from a file `handover export` wrote, on the member that owns it
    /// now; it then starts watching the mailbox where the previous owner stopped.
    Import {
        /// The file `handover export` wrote.
        file: PathBuf,
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

/// Runs one command; the exit code says whether it did what was asked.
pub async fn run(cli: Cli) -> Result<ExitCode> {
    let config = cli.config;
    match cli.command {
        Command::Run => agent::run(&config).await,
        Command::Once => agent::once(&config).await,
        Command::Reload { dry_run } => agent::reload(&config, dry_run),
        Command::Status { json } => inspect::status(&config, json).await,
        Command::CheckConfig { offline } => inspect::check_config(&config, offline).await,
        Command::Folders { address } => inspect::folders(&config, &address).await,
        Command::SyncNow { address } => inspect::sync_now(&config, &address).await,
        Command::Items { state, json } => inspect::items(&config, state, json).await,
        Command::Retry {
            dry_run,
            mailbox,
            since,
        } => inspect::retry(&config, dry_run, mailbox.as_deref(), since.as_deref()).await,
        Command::Explain {
            message_id,
            subject,
            mailbox,
            folder,
            json,
        } => {
            let query = foldertrack::deliver::explain::Query::from_parts(
                message_id, subject, mailbox, folder,
            )
            .map_err(anyhow::Error::msg)?;
            inspect::explain(&config, &query, json).await
        }
        Command::Compact => inspect::compact(&config),
        Command::Handover(HandoverCommand::Export { mailbox }) => {
            handover::export(&config, &mailbox).await
        }
        Command::Handover(HandoverCommand::Import { file }) => {
            handover::import(&config, &file).await
        }
        #[cfg(feature = "sim")]
        Command::Demo { keep, api } => tools::demo(keep, &api).await,
        #[cfg(feature = "sim")]
        Command::Sim { listen, persist } => tools::sim(listen, persist).await,
        #[cfg(feature = "sim")]
        Command::Bench(bench) => tools::bench(bench).await,
        Command::Schema { write } => tools::schema(write),
        Command::Ews(EwsCommand::Decode { files }) => tools::decode(&files),
        Command::Ews(EwsCommand::Requests { out }) => tools::requests(&out),
    }
}
