//! The foldertrack binary: parse the command line, call the library, print one line on error.

use anyhow::{Context, Result};
use clap::Parser;
use foldertrack::cli::{BenchCommand, Cli, Command, EwsCommand};
use foldertrack::config::Config;
use foldertrack::feed::ews::EwsFeed;
use foldertrack::store::{MappingState, SledStore};
use foldertrack::watch::health::Health;
use foldertrack::watch::supervisor::SyncNow;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    foldertrack::telemetry::init(cli.log_format, cli.verbose, cli.quiet);
    match run(cli) {
        Ok(code) => code,
        // A closed pipe (`foldertrack … | head`) is the reader's choice, not a failure.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Ews(EwsCommand::Decode { files }) => {
            for file in files {
                let text = std::fs::read_to_string(&file)
                    .with_context(|| format!("{}: cannot read", file.display()))?;
                let value = foldertrack::ews::decode::decode(&text)
                    .with_context(|| format!("{}", file.display()))?;
                print_line(&serde_json::to_string_pretty(&value)?)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Ews(EwsCommand::Requests { out }) => {
            std::fs::create_dir_all(&out)
                .with_context(|| format!("{}: cannot create the folder", out.display()))?;
            for (name, xml) in foldertrack::ews::examples::requests() {
                let path = out.join(name);
                std::fs::write(&path, xml)
                    .with_context(|| format!("{}: cannot write", path.display()))?;
                print_line(&path.display().to_string())?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Schema { write } => {
            for (file, text) in foldertrack::schemas() {
                if write {
                    let path = std::path::Path::new("schemas").join(file);
                    std::fs::create_dir_all("schemas")
                        .context("schemas: cannot create the folder")?;
                    std::fs::write(&path, text)
                        .with_context(|| format!("{}: cannot write", path.display()))?;
                    print_line(&format!("wrote {}", path.display()))?;
                } else {
                    print_line(&text)?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckConfig { offline } => {
            let mut failed = false;
            let mut checks = check_config(&cli.config);
            if !offline
                && checks.iter().all(Result::is_ok)
                && let Ok(config) = Config::load(&cli.config)
            {
                let _ = rustls::crypto::ring::default_provider().install_default();
                let runtime =
                    tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
                checks.extend(runtime.block_on(foldertrack::app::check_server(&config)));
            }
            for check in checks {
                failed |= check.is_err();
                match check {
                    Ok(what) => print_line(&format!("ok   {what}"))?,
                    Err(problem) => print_line(&format!("FAIL {problem}"))?,
                }
            }
            Ok(if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Sim { listen, persist } => {
            let runtime =
                tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            runtime.block_on(async {
                let options = foldertrack::sim::SimOptions {
                    persist,
                    ..Default::default()
                };
                let shutdown = async {
                    let _ = tokio::signal::ctrl_c().await;
                };
                let served = foldertrack::sim::serve_until(options, listen, shutdown)
                    .await
                    .with_context(|| format!("{listen}: cannot start the simulator"))?;
                print_line(&format!("EWS:     {}", served.ews_url))?;
                print_line(&format!("control: {}", served.control_url))?;
                print_line("serving until Ctrl-C; `foldertrack sim --help` lists the control API")?;
                served.done.notified().await;
                Ok(ExitCode::SUCCESS)
            })
        }
        Command::Once => agent(&cli.config, |config, feed, store| async move {
            let terminal = std::io::stderr().is_terminal();
            let pages = std::sync::atomic::AtomicUsize::new(0);
            let progress = |p: foldertrack::watch::mailbox::Progress<'_>| {
                let n = pages.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if terminal {
                    eprint!(
                        "\r\x1b[2K{n} pages  {} {}  (+{} changes)",
                        p.mailbox, p.path, p.changes
                    );
                }
            };
            let summary = foldertrack::app::once(&config, feed, store, &progress).await?;
            if terminal {
                eprint!("\r\x1b[2K");
            }
            for (mailbox, error) in &summary.failed {
                print_line(&format!("FAIL {mailbox}: {error}"))?;
            }
            for (mapping, state) in &summary.not_watched {
                print_line(&format!("not watched: {mapping}: {state}"))?;
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
            Ok(if summary.failed.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }),
        Command::Items { state, json } => {
            let config = Config::load(&cli.config)?;
            let items = match AgentFiles::new(&config).running() {
                Some(addr) => block_on(admin_client(&config, &addr)?.items(state))??,
                None => {
                    foldertrack::app::problem_items(&SledStore::open(&config.store.path)?, state)?
                }
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
        Command::Retry {
            dry_run,
            mailbox,
            since,
        } => {
            let since = since.as_deref().map(parse_since).transpose()?;
            let config = Config::load(&cli.config)?;
            let items = match AgentFiles::new(&config).running() {
                Some(addr) => block_on(admin_client(&config, &addr)?.retry(
                    mailbox.as_deref(),
                    since,
                    dry_run,
                ))??,
                None => {
                    let store = SledStore::open(&config.store.path)?;
                    block_on(foldertrack::app::retry(
                        &store,
                        mailbox.as_deref(),
                        since,
                        dry_run,
                    ))??
                }
            };
            for item in &items {
                print_line(&item_line(item))?;
            }
            let verb = if dry_run {
                "would re-queue"
            } else {
                "re-queued"
            };
            print_line(&format!(
                "{verb} {} item(s){}",
                items.len(),
                if dry_run {
                    ""
                } else {
                    "; the agent delivers them at its next round"
                }
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { json } => {
            let config = Config::load(&cli.config)?;
            let addr = AgentFiles::new(&config)
                .running()
                .unwrap_or(config.admin.listen.clone());
            let status = block_on(admin_client(&config, &addr)?.status())??;
            if json {
                print_line(&serde_json::to_string_pretty(&status)?)?;
            } else {
                print_status(&status)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::SyncNow { address } => {
            let config = Config::load(&cli.config)?;
            let addr = AgentFiles::new(&config)
                .running()
                .unwrap_or(config.admin.listen.clone());
            match block_on(admin_client(&config, &addr)?.sync_now(&address))?? {
                SyncNow::Done { tracked } => {
                    print_line(&format!(
                        "{address}: synced now, {tracked} tracking request(s)"
                    ))?;
                    Ok(ExitCode::SUCCESS)
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
        Command::Folders { address } => {
            let config = Config::load(&cli.config)?;
            let _ = rustls::crypto::ring::default_provider().install_default();
            let feed = foldertrack::app::feed(&config)?;
            let lines = block_on(foldertrack::app::folders(&config, &feed, &address))?
                .map_err(anyhow::Error::msg)?;
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
        Command::Demo { keep } => {
            let dir = std::env::temp_dir().join(format!("foldertrack-demo-{}", std::process::id()));
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("{}: cannot create", dir.display()))?;
            let _ = rustls::crypto::ring::default_provider().install_default();
            let runtime =
                tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            let summary = runtime.block_on(async {
                let stop = tokio_util::sync::CancellationToken::new();
                let ctrl_c = stop.clone();
                tokio::spawn(async move {
                    let _ = tokio::signal::ctrl_c().await;
                    ctrl_c.cancel();
                });
                foldertrack::demo::run(&dir, keep, stop, |line| {
                    let _ = print_line(&line);
                })
                .await
            })?;
            print_line(&format!(
                "summary: moved in {}, tracked {}, re-linked {}, duplicates {}, failures {}, EWS calls {} ({} answered busy), {:.0} s",
                summary.moved_in,
                summary.tracked,
                summary.relinked,
                summary.duplicates,
                summary.failures,
                summary.ews_calls,
                summary.throttled,
                summary.seconds
            ))?;
            print_line(&format!("tracking requests: {}", summary.output.display()))?;
            Ok(if summary.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Bench(BenchCommand::E2e {
            preset,
            mailboxes,
            folders,
            duration,
            rate,
            idle,
            track_now,
            json,
        }) => {
            let mut o = foldertrack::bench::Options::preset(&preset).with_context(|| {
                format!("--preset {preset:?}: choose small, office or enterprise")
            })?;
            o.mailboxes = mailboxes.unwrap_or(o.mailboxes).max(1);
            o.folders = folders.unwrap_or(o.folders).max(1);
            o.duration = duration.unwrap_or(o.duration);
            o.rate = rate.unwrap_or(o.rate).max(0.01);
            o.idle = idle.unwrap_or(o.idle);
            o.track_now = track_now;
            let command = std::env::args().collect::<Vec<_>>().join(" ");
            let agent = std::env::current_exe().context("cannot find this program's path")?;
            let _ = rustls::crypto::ring::default_provider().install_default();
            let report = block_on(foldertrack::bench::e2e(o, &agent, command, |line| {
                eprintln!("{line}");
            }))?
            .map_err(anyhow::Error::msg)?;
            let text = serde_json::to_string_pretty(&report)?;
            if let Some(path) = json {
                std::fs::write(&path, &text)
                    .with_context(|| format!("{}: cannot write", path.display()))?;
            }
            print_line(&text)?;
            eprint!("{}", foldertrack::bench::table(&report));
            Ok(if report.lost == 0 && report.duplicated == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Compact => {
            let config = Config::load(&cli.config)?;
            let (before, after) = SledStore::compact(&config.store.path)?;
            print_line(&format!(
                "{}: {} MiB -> {} MiB",
                config.store.path.display(),
                before >> 20,
                after >> 20
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Run => {
            let path = cli.config.clone();
            agent(&cli.config, |config, feed, store| async move {
                let agent_files = AgentFiles::new(&config);
                agent_files.write(&path)?;
                let shutdown = tokio_util::sync::CancellationToken::new();
                let (reload_tx, reloads) = tokio::sync::mpsc::unbounded_channel();
                tokio::spawn(signals(
                    shutdown.clone(),
                    reload_tx,
                    path,
                    agent_files.clone(),
                ));
                let admin_file = agent_files.admin.clone();
                let result = foldertrack::app::run(config, feed, store, shutdown, reloads, |addr| {
                    if let Err(e) = std::fs::write(&admin_file, addr.to_string()) {
                        tracing::warn!(event = "agent_file_unwritable", path = %admin_file.display(), error = %e);
                    }
                })
                .await;
                agent_files.remove();
                result?;
                Ok(ExitCode::SUCCESS)
            })
        }
        Command::Reload { dry_run } => {
            let config = Config::load(&cli.config)?;
            let files = AgentFiles::new(&config);
            let applied = Config::load(&files.applied).with_context(|| {
                format!(
                    "no running agent found for store {} (start one with `foldertrack run`)",
                    config.store.path.display()
                )
            })?;
            let changes = foldertrack::config::mapping_changes(&applied, &config);
            for line in &changes {
                print_line(line)?;
            }
            if changes.is_empty() {
                print_line("no mailbox or mapping changes")?;
            }
            if !dry_run {
                let pid = std::fs::read_to_string(&files.pid)
                    .with_context(|| format!("{}: no running agent", files.pid.display()))?;
                let status = std::process::Command::new("kill")
                    .args(["-HUP", pid.trim()])
                    .status()
                    .context("cannot run `kill`")?;
                anyhow::ensure!(
                    status.success(),
                    "agent {} is not running; remove {}",
                    pid.trim(),
                    files.pid.display()
                );
                print_line(&format!("asked agent {} to reload", pid.trim()))?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Loads the config, opens the store, builds the feed, and runs `f` on a runtime.
fn agent<Fut>(
    path: &std::path::Path,
    f: impl FnOnce(Config, Arc<EwsFeed>, Arc<SledStore>) -> Fut,
) -> Result<ExitCode>
where
    Fut: std::future::Future<Output = Result<ExitCode>>,
{
    let config = Config::load(path)?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let feed = Arc::new(foldertrack::app::feed(&config)?);
    let store = Arc::new(SledStore::open(&config.store.path)?);
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(f(config, feed, store))
}

/// Runs a future on a fresh runtime (for the CLI's one-shot calls).
fn block_on<T>(f: impl std::future::Future<Output = T>) -> Result<T> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    Ok(runtime.block_on(f))
}

fn admin_client(config: &Config, addr: &str) -> Result<foldertrack::admin::AdminClient> {
    let token = match (&config.admin.token_env, &config.admin.token_file) {
        (None, None) => None,
        (env, file) => Some(foldertrack::config::resolve_secret(
            "admin.token",
            env.as_deref(),
            file.as_deref(),
        )?),
    };
    foldertrack::admin::AdminClient::new(addr, token).map_err(anyhow::Error::msg)
}

/// A time for people: local date and time to the second.
fn local(t: jiff::Timestamp) -> String {
    t.to_zoned_datetime(jiff::tz::TimeZone::system())
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string()
}

fn print_status(status: &foldertrack::admin::StatusView) -> Result<()> {
    print_line(&format!(
        "{:<28} {:<9} {:>8}  {:<19}  {:<19}  {:>7}  {:>6}",
        "MAILBOX", "HEALTH", "INTERVAL", "LAST SYNC", "NEXT SYNC", "TRACKED", "FAILED"
    ))?;
    for m in &status.mailboxes {
        let s = &m.status;
        let time = |t: Option<jiff::Timestamp>| t.map(local).unwrap_or_else(|| "-".into());
        print_line(&format!(
            "{:<28} {:<9} {:>7}s  {:<19}  {:<19}  {:>7}  {:>6}",
            s.address,
            s.health.label(),
            s.interval_secs,
            time(s.last_sync_finished),
            time(s.next_sync),
            s.tracked,
            s.failed_syncs
        ))?;
        match &s.health {
            Health::Retrying { last_error, .. } | Health::Parked { last_error, .. } => {
                print_line(&format!("    last error: {last_error}"))?
            }
            Health::Disabled { error, fix } => {
                print_line(&format!("    error: {error}"))?;
                print_line(&format!("    fix: {fix}"))?;
            }
            Health::Healthy => {}
        }
        for mapping in &m.mappings {
            let state = match &mapping.state {
                MappingState::Active => "active".to_owned(),
                MappingState::Paused(reason) => format!("paused: {reason}"),
                MappingState::Orphaned => "orphaned: the folder was deleted".to_owned(),
                MappingState::NotFound => "not found".to_owned(),
            };
            print_line(&format!(
                "    {:<40} {:<36} {}",
                mapping.path.as_deref().unwrap_or(&mapping.name),
                state,
                mapping.folder_id.as_deref().unwrap_or("-")
            ))?;
        }
    }
    print_line(&format!(
        "outbox {} · undeliverable or rejected {} · write-backs pending {}",
        status.outbox, status.undelivered, status.pending_write_backs
    ))?;
    Ok(())
}

/// One problem item on one line.
fn item_line(i: &foldertrack::app::ItemLine) -> String {
    let state = format!("{:?}", i.state).to_lowercase();
    let at =
        i.at.map(|t| t.strftime("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default();
    format!(
        "{state:<13} {at:<19}  {}  {} {}  attempts {}  {}",
        i.event_id, i.mailbox, i.folder, i.attempts, i.reason
    )
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

/// The files a running agent keeps beside its store: its pid (for `reload`), the config it
/// applied last (for `reload --dry-run`) and its admin API's address (for the CLI).
#[derive(Clone)]
struct AgentFiles {
    pid: std::path::PathBuf,
    applied: std::path::PathBuf,
    /// The admin API's bound address (`admin.listen` may ask for port 0).
    admin: std::path::PathBuf,
}

impl AgentFiles {
    fn new(config: &Config) -> Self {
        let beside = |suffix: &str| {
            let mut name = config.store.path.as_os_str().to_owned();
            name.push(suffix);
            std::path::PathBuf::from(name)
        };
        Self {
            pid: beside(".pid"),
            applied: beside(".applied.toml"),
            admin: beside(".admin"),
        }
    }

    fn write(&self, config: &std::path::Path) -> Result<()> {
        std::fs::write(&self.pid, std::process::id().to_string())
            .with_context(|| format!("{}: cannot write", self.pid.display()))?;
        self.applied_now(config)
    }

    fn applied_now(&self, config: &std::path::Path) -> Result<()> {
        std::fs::copy(config, &self.applied)
            .map(drop)
            .with_context(|| format!("{}: cannot write", self.applied.display()))
    }

    /// The admin address of the agent running on this store, if one is.
    fn running(&self) -> Option<String> {
        let pid = std::fs::read_to_string(&self.pid).ok()?;
        let alive = std::path::Path::new("/proc").join(pid.trim()).exists();
        alive
            .then(|| std::fs::read_to_string(&self.admin).ok())
            .flatten()
            .map(|a| a.trim().to_owned())
    }

    fn remove(&self) {
        for file in [&self.pid, &self.applied, &self.admin] {
            let _ = std::fs::remove_file(file);
        }
    }
}

/// Ctrl-C or SIGTERM stop the agent; SIGHUP reloads its config file (R9).
async fn signals(
    shutdown: tokio_util::sync::CancellationToken,
    reloads: tokio::sync::mpsc::UnboundedSender<Config>,
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

/// The offline checks: the file parses and validates, and every secret it names resolves.
fn check_config(path: &std::path::Path) -> Vec<Result<String, String>> {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(foldertrack::config::Error::Invalid { problems, .. }) => {
            return problems.into_iter().map(Err).collect();
        }
        Err(e) => return vec![Err(e.to_string())],
    };
    let mut checks = vec![Ok(format!("{}: syntax and values", path.display()))];
    checks.extend(foldertrack::config::secret_checks(&config));
    checks
}

/// Prints one line to stdout, reporting a closed pipe as an error instead of panicking.
fn print_line(line: &str) -> std::io::Result<()> {
    writeln!(std::io::stdout().lock(), "{line}")
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}
