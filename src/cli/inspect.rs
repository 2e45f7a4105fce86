//! Questions and small actions: `status`, `sync-now`, `items`, `retry` and `explain` (asked of the running
//! agent through its admin API, or of the store when no agent runs), `folders` and
//! `check-config` (asked of the server), and `compact`.

use super::render::{self, item_line, local, print_line};
use anyhow::{Context, Result};
use foldertrack::admin::client::AdminClient;
use foldertrack::agent::{self, checks, files::AgentFiles};
use foldertrack::config::{Check, Config};
use foldertrack::deliver::explain;
use foldertrack::deliver::items::{self, ItemLine, ItemState};
use foldertrack::feed::AnyFeed;
use foldertrack::store::{SledStore, Store};
use foldertrack::watch::supervisor::SyncNow;
use std::path::Path;
use std::process::ExitCode;

/// The admin client for the agent at `addr`, with the configured token.
pub(super) fn admin_client(config: &Config, addr: &str) -> Result<AdminClient> {
    Ok(AdminClient::new(addr, config.admin_settings()?.token)?)
}

/// The running agent's admin API, or the configured address if no agent file says otherwise.
fn agent_client(config: &Config) -> Result<AdminClient> {
    let addr = AgentFiles::beside(&config.store.path)
        .running()
        .unwrap_or(config.admin.listen.clone());
    admin_client(config, &addr)
}

fn exit(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `status`: the running agent's live view, or — when none runs — what its store knows,
/// marked as such.
pub async fn status(path: &Path, json: bool) -> Result<ExitCode> {
    let config = Config::load(path)?;
    let files = AgentFiles::beside(&config.store.path);
    if files.running_pid().is_none() {
        let stored = agent::stored::status(&config, &SledStore::open(&config.store.path)?)?;
        if json {
            print_line(&serde_json::to_string_pretty(&stored)?)?;
        } else {
            render::stored_status(&stored, &config.store.path)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let status = agent_client(&config)?.status().await?;
    if json {
        print_line(&serde_json::to_string_pretty(&status)?)?;
    } else {
        render::status(&status)?;
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn sync_now(path: &Path, address: &str) -> Result<ExitCode> {
    let config = Config::load(path)?;
    match agent_client(&config)?.sync_now(address).await? {
        SyncNow::Done { tracked } => {
            print_line(&format!(
                "{address}: synced now, {tracked} tracking request(s) found; every request of this mailbox is in the sink"
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        SyncNow::Waiting {
            message, waiting, ..
        } => {
            print_line(&format!("{address}: {message}"))?;
            for p in &waiting {
                print_line(&render::pending_line(p))?;
            }
            Ok(ExitCode::FAILURE)
        }
        SyncNow::Fallback { reason, next_sync } => {
            let when = next_sync
                .map(|t| format!(" (due {})", local(t)))
                .unwrap_or_default();
            print_line(&format!(
                "{address}: could not sync now: {reason}; the next regular sync{when} picks the mail up"
            ))?;
            Ok(ExitCode::FAILURE)
        }
        SyncNow::UnknownMailbox => anyhow::bail!("{address}: not a configured mailbox"),
    }
}

pub async fn items(path: &Path, state: Option<ItemState>, json: bool) -> Result<ExitCode> {
    let config = Config::load(path)?;
    let items = match AgentFiles::beside(&config.store.path).running() {
        Some(addr) => admin_client(&config, &addr)?.items(state).await?,
        None => items::problem_items(&SledStore::open(&config.store.path)?, state)?,
    };
    for item in &items {
        if json {
            print_line(&serde_json::to_string(item)?)?;
        } else {
            print_line(&item_line(item))?;
        }
    }
    if items.is_empty() && !json {
        print_line("no items waiting, undeliverable or rejected")?;
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn retry(
    path: &Path,
    dry_run: bool,
    mailbox: Option<&str>,
    since: Option<&str>,
) -> Result<ExitCode> {
    let since = since.map(parse_since).transpose()?;
    let config = Config::load(path)?;
    let (items, waiting) = match AgentFiles::beside(&config.store.path).running() {
        Some(addr) => {
            let admin = admin_client(&config, &addr)?;
            let items = admin.retry(mailbox, since, dry_run).await?;
            (items, admin.status().await?.outbox)
        }
        None => {
            let store = SledStore::open(&config.store.path)?;
            let items = items::retry(&store, mailbox, since, dry_run).await?;
            (items, store.stats()?.outbox)
        }
    };
    for item in &items {
        print_line(&item_line(item))?;
    }
    let skipped: Vec<&ItemLine> = items.iter().filter(|i| i.superseded_by.is_some()).collect();
    let queued = items.len() - skipped.len();
    print_line(&if dry_run {
        format!("would re-queue {queued} item(s)")
    } else {
        format!("re-queued {queued} item(s); the agent delivers them at its next round")
    })?;
    if waiting > 0 {
        // Not the problem items retry is for, but what a user looking for a lost mail means.
        print_line(&format!(
            "{waiting} request(s) wait in the outbox: the agent sends them by itself when the sink answers (`foldertrack items` shows why they wait)"
        ))?;
    }
    for item in skipped {
        print_line(&format!(
            "{}: not sent again, the later event {} of the same message is already in the sink and sending the older one would undo it{}",
            item.event_id,
            item.superseded_by.as_deref().unwrap_or(""),
            if dry_run {
                ""
            } else {
                " (removed from the problem items)"
            }
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `explain`: the running agent tells, or the store when none runs.
pub async fn explain(path: &Path, query: &explain::Query, json: bool) -> Result<ExitCode> {
    let config = Config::load(path)?;
    let answer = match AgentFiles::beside(&config.store.path).running() {
        Some(addr) => admin_client(&config, &addr)?.explain(query).await?,
        None => {
            let store = SledStore::open(&config.store.path)?;
            explain::tell(&explain::gather(&store, query)?, &config.explain_settings())
        }
    };
    if json {
        print_line(&serde_json::to_string_pretty(&answer)?)?;
    } else {
        print_line(answer.text().trim_end())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `--since`: an RFC 3339 time or a date (midnight UTC).
fn parse_since(s: &str) -> Result<jiff::Timestamp> {
    s.parse::<jiff::Timestamp>()
        .or_else(|_| format!("{s}T00:00:00Z").parse::<jiff::Timestamp>())
        .with_context(|| {
            format!(
                "--since {s:?}: give an RFC 3339 time (2026-11-27T09:00:00Z) or a date (2026-11-27)"
            )
        })
}

pub async fn folders(path: &Path, address: &str) -> Result<ExitCode> {
    let config = Config::load(path)?;
    let feed = agent::feed(&config)?;
    let lines = checks::folders(&config.mailbox, &feed, address).await?;
    let width = lines
        .iter()
        .map(|l| l.depth * 2 + l.name.chars().count())
        .max()
        .unwrap_or(0);
    for l in &lines {
        let name = format!("{}{}", "  ".repeat(l.depth), l.name);
        let mapped = l
            .mapping
            .as_deref()
            .map(|m| format!("  [mapped: {m}]"))
            .unwrap_or_default();
        print_line(&format!("{name:<width$}  {}{mapped}", l.id))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `check-config`: the file and its secrets, then (unless `offline`) every mailbox and mapping
/// against the server; one line per check.
pub async fn check_config(path: &Path, offline: bool) -> Result<ExitCode> {
    let mut checks = match Config::load(path) {
        Ok(config) => {
            let mut checks = vec![Check::Ok(format!("{}: syntax and values", path.display()))];
            checks.extend(foldertrack::config::secret_checks(&config));
            checks.push(config.capacity_check());
            checks.extend(config.cluster_check());
            checks.extend(config.notifications_check());
            if !offline && !checks.iter().any(|c| matches!(c, Check::Fail(_))) {
                match agent::feed(&config) {
                    Ok(feed) => {
                        if let AnyFeed::Graph(graph) = &feed {
                            let roles = graph.client().app_roles().await;
                            checks.push(checks::graph_permission(
                                roles.map_err(|e| e.to_string()),
                                config.writeback.enabled,
                            ));
                        }
                        let owned = config.share().all();
                        checks.extend(checks::check_server(&owned, &feed).await)
                    }
                    Err(e) => checks.push(Check::Fail(e.to_string())),
                }
                checks.extend(checks::check_sink(&config).await);
            }
            checks
        }
        Err(foldertrack::config::Error::Invalid { problems, .. }) => {
            problems.into_iter().map(Check::Fail).collect()
        }
        Err(e) => vec![Check::Fail(e.to_string())],
    };
    let mut ok = true;
    for check in checks.drain(..) {
        match check {
            Check::Ok(what) => print_line(&format!("ok   {what}"))?,
            Check::Warn(what) => print_line(&format!("WARN {what}"))?,
            Check::Fail(problem) => {
                ok = false;
                print_line(&format!("FAIL {problem}"))?
            }
        }
    }
    Ok(exit(ok))
}

pub fn compact(path: &Path) -> Result<ExitCode> {
    let config = Config::load(path)?;
    let (before, after) = SledStore::compact(&config.store.path)?;
    print_line(&format!(
        "{}: {} MiB -> {} MiB",
        config.store.path.display(),
        before >> 20,
        after >> 20
    ))?;
    Ok(ExitCode::SUCCESS)
}
