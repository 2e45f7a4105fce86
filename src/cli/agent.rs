//! The agent's lifecycle from the command line: `run` until a signal, `once` for one pass, and
//! `reload`, which shows what a changed config would change and asks the running agent to
//! apply it.

use super::render::{one_line, print_line};
use anyhow::{Context, Result};
use foldertrack::agent::{self, files::AgentFiles};
use foldertrack::config::{self, Config};
use foldertrack::feed::AnyFeed;
use foldertrack::store::SledStore;
use foldertrack::watch::mailbox::Progress;
use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The config, the feed it describes (EWS or Graph) and its store.
fn open(path: &Path) -> Result<(Config, Arc<AnyFeed>, Arc<SledStore>)> {
    let config = Config::load(path)?;
    let feed = Arc::new(agent::feed(&config)?);
    let store = Arc::new(SledStore::open_for(
        &config.store.path,
        config.mailbox.len(),
    )?);
    Ok((config, feed, store))
}

/// `foldertrack run`: watches until Ctrl-C or SIGTERM; SIGHUP reloads the config (R9).
pub async fn run(path: &Path) -> Result<ExitCode> {
    let (config, feed, store) = open(path)?;
    let files = AgentFiles::beside(&config.store.path);
    files.write(path)?;
    let shutdown = CancellationToken::new();
    let (reload_tx, reloads) = mpsc::unbounded_channel();
    tokio::spawn(signals(
        shutdown.clone(),
        reload_tx,
        path.to_owned(),
        files.clone(),
    ));
    let listening = files.clone();
    let result = agent::run(config, feed, store, shutdown, reloads, |addr| {
        if let Err(e) = listening.admin_listens(addr) {
            tracing::warn!(event = "agent_file_unwritable", error = %e);
        }
    })
    .await;
    files.remove();
    result?;
    Ok(ExitCode::SUCCESS)
}

/// `foldertrack once`: one pass over every mapping, a progress line on a terminal, a summary.
pub async fn once(path: &Path) -> Result<ExitCode> {
    let (config, feed, store) = open(path)?;
    let terminal = std::io::stderr().is_terminal();
    let pages = std::sync::atomic::AtomicUsize::new(0);
    let progress = |p: Progress<'_>| {
        let n = pages.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if terminal {
            eprint!(
                "\r\x1b[2K{n} pages  {} {}  (+{} changes)",
                p.mailbox, p.path, p.changes
            );
        }
    };
    let summary = agent::once(&config, feed, store, &progress).await?;
    if terminal {
        eprint!("\r\x1b[2K");
    }
    for (mailbox, error) in &summary.failed {
        print_line(&one_line(&format!("FAIL {mailbox}: {error}")))?;
    }
    for (_, problem) in &summary.not_watched {
        print_line(&one_line(&format!("not watched: {problem}")))?;
    }
    print_line(&format!(
        "{} mailboxes ({} failed), {} folders, {} changes: {} tracking requests, {} sightings recorded, {} delivered",
        summary.mailboxes,
        summary.failed.len(),
        summary.folders,
        summary.changes,
        summary.tracked,
        summary.recorded,
        summary.delivered
    ))?;
    if summary.baselined > 0 {
        print_line(&format!(
            "{} mails were already in mapped folders at their first sync (the baseline): remembered, not tracked (track_existing = true tracks them)",
            summary.baselined
        ))?;
    }
    if let Some(o) = &summary.sink_unavailable {
        print_line(&format!(
            "the sink is unavailable since {} ({}): {} requests wait in the outbox and are delivered when it answers",
            super::render::local(o.since),
            one_line(&o.reason),
            summary.waiting
        ))?;
    } else if summary.waiting > 0 {
        print_line(&format!(
            "{} requests wait in the outbox for a retry (`foldertrack items` shows why)",
            summary.waiting
        ))?;
    }
    Ok(
        if summary.failed.is_empty() && summary.not_watched.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        },
    )
}

/// `foldertrack reload [--dry-run]`: what the edited config changes, then SIGHUP to the agent.
pub fn reload(path: &Path, dry_run: bool) -> Result<ExitCode> {
    let config = Config::load(path)?;
    let files = AgentFiles::beside(&config.store.path);
    let applied = Config::load(&files.applied).with_context(|| {
        format!(
            "no running agent found for store {} (start one with `foldertrack run`)",
            config.store.path.display()
        )
    })?;
    let changes = config::diff::mapping_changes(&applied, &config);
    for line in &changes {
        print_line(line)?;
    }
    if changes.is_empty() {
        print_line("no mailbox or mapping changes")?;
    }
    if !dry_run {
        let pid = signal_reload(&files)?;
        print_line(&format!("asked agent {pid} to reload"))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Asks the agent running on this store to re-read its config file (SIGHUP).
fn signal_reload(files: &AgentFiles) -> Result<i32> {
    let pid = files.running_pid().with_context(|| {
        format!(
            "no running agent for this store ({} names none that is alive); start one with `foldertrack run`",
            files.pid.display()
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

/// Ctrl-C or SIGTERM stop the agent; SIGHUP reloads its config file (R9).
async fn signals(
    shutdown: CancellationToken,
    reloads: mpsc::UnboundedSender<Config>,
    path: std::path::PathBuf,
    files: AgentFiles,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!(
            event = "signals_unavailable",
            "stop with Ctrl-C; reload is not available"
        );
        let _ = tokio::signal::ctrl_c().await;
        shutdown.cancel();
        return;
    };
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = hup.recv() => match Config::load(&path) {
                Ok(config) => {
                    let _ = files.applied_now(&path);
                    let _ = reloads.send(config);
                }
                Err(e) => tracing::error!(event = "reload_refused", error = %e, "still running the previous config"),
            },
        }
    }
    shutdown.cancel();
}
