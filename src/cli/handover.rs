//! `handover export` and `handover import`: a mailbox's state moved from the member that owned
//! it to the member that owns it after a change of `cluster.members` — through the running
//! agents' admin APIs, or through the stores of stopped ones.

use super::inspect::admin_client;
use super::render::print_line;
use anyhow::{Context, Result};
use foldertrack::agent::files::AgentFiles;
use foldertrack::config::Config;
use foldertrack::store::SledStore;
use foldertrack::store::handover::{self, Handover};
use foldertrack::watch::cluster::owner;
use std::path::Path;
use std::process::ExitCode;

/// The member that owns `mailbox` under `config`, and this agent's number.
fn owners(config: &Config, mailbox: &str) -> (u32, u32) {
    (owner(mailbox, config.cluster.members()), config.member())
}

/// Prints `mailbox`'s state as JSON, for `handover import` on its new owner.
pub async fn export(path: &Path, mailbox: &str) -> Result<ExitCode> {
    let config = Config::load(path)?;
    let (owner, me) = owners(&config, mailbox);
    if owner == me {
        anyhow::bail!(
            "{mailbox} is owned by this member ({me} of cluster.members = {}): set the new member count here first (and reload), so that this agent stops watching it",
            config.cluster.members()
        );
    }
    let state = match AgentFiles::beside(&config.store.path).running() {
        Some(addr) => {
            admin_client(&config, &addr)?
                .handover_export(mailbox)
                .await?
        }
        None => {
            let store = SledStore::open(&config.store.path)?;
            let state = handover::export(&store, mailbox)?;
            handover::handed_away(&store, mailbox).await?;
            state
        }
    };
    print_line(&serde_json::to_string(&state)?)?;
    Ok(ExitCode::SUCCESS)
}

/// Gives the state in `file` (from `handover export`) to this agent.
pub async fn import(path: &Path, file: &Path) -> Result<ExitCode> {
    let config = Config::load(path)?;
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("{}: cannot read the handover file", file.display()))?;
    let state: Handover = serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: not a handover file; write one with `foldertrack handover export`",
            file.display()
        )
    })?;
    let (owner, me) = owners(&config, &state.mailbox);
    if owner != me {
        anyhow::bail!(
            "{} is owned by member {owner}, not this one ({me}); import it there",
            state.mailbox
        );
    }
    let entries = match AgentFiles::beside(&config.store.path).running() {
        Some(addr) => {
            let answer = admin_client(&config, &addr)?
                .handover_import(&state)
                .await?;
            answer["entries"].as_u64().unwrap_or_default() as usize
        }
        None => handover::import(&SledStore::open(&config.store.path)?, &state).await?,
    };
    print_line(&format!(
        "{}: {entries} entries handed over; this agent goes on from the previous owner's sync state",
        state.mailbox
    ))?;
    Ok(ExitCode::SUCCESS)
}
