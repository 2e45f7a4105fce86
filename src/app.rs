//! Wiring: the config becomes a client, a feed, watchers and an outbox drain; `once` runs one
//! pass, `run` keeps every mailbox on its cadence until shutdown.

use crate::cli::ItemState;
use crate::client::{self, ClientSettings, EwsClient, Limits, Timeouts};
use crate::config::{self, Config};
use crate::deliver::{AnySink, Deliverer, Drained, Sink};
use crate::ews::ExchangeVersion;
use crate::feed::FolderFeed;
use crate::feed::ews::EwsFeed;
use crate::store::MappingState;
use crate::store::{self, Store};
use crate::watch::mailbox::{MailboxWatcher, PassReport, Progress};
use crate::watch::mappings::{self, FolderTree};
use crate::watch::supervisor::Supervisor;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Why the agent could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] config::Error),
    #[error("exchange: {0}")]
    Client(#[from] client::Error),
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error("sink: {0}")]
    Sink(String),
    #[error("{0}")]
    Invalid(String),
}

/// The EWS client the config describes, secrets resolved.
pub fn client_settings(config: &Config) -> Result<ClientSettings, Error> {
    let ex = &config.exchange;
    let url = url::Url::parse(&ex.url)
        .map_err(|e| Error::Invalid(format!("exchange.url {:?}: {e}", ex.url)))?;
    let password = |env: &Option<String>, file: &Option<std::path::PathBuf>| {
        config::resolve_secret("exchange.auth.password", env.as_deref(), file.as_deref())
    };
    let auth = match &ex.auth {
        config::Auth::Basic {
            username,
            password_env,
            password_file,
        } => client::Auth::Basic {
            username: username.clone(),
            password: password(password_env, password_file)?,
        },
        config::Auth::Ntlm {
            username,
            domain,
            password_env,
            password_file,
        } => client::Auth::Ntlm {
            domain: domain.clone().unwrap_or_default(),
            username: username.clone(),
            password: password(password_env, password_file)?,
        },
        config::Auth::Oauth {
            tenant_id,
            client_id,
            client_secret_env,
            client_secret_file,
            scope,
            token_url,
        } => {
            let token_url = token_url.clone().unwrap_or_else(|| {
                format!("https://login.microsoftonline.com/{tenant_id}/oauth2/v2.0/token")
            });
            client::Auth::OAuth {
                token_url: url::Url::parse(&token_url)
                    .map_err(|e| Error::Invalid(format!("exchange.auth.token_url: {e}")))?,
                client_id: client_id.clone(),
                client_secret: config::resolve_secret(
                    "exchange.auth.client_secret",
                    client_secret_env.as_deref(),
                    client_secret_file.as_deref(),
                )?,
                scope: scope.clone(),
            }
        }
    };
    let per_second = |n: u32| NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
    Ok(ClientSettings {
        impersonation: ex.impersonation,
        version: ExchangeVersion::parse(&ex.server_version).unwrap_or_default(),
        timeouts: Timeouts {
            connect: Duration::from_secs(ex.connect_timeout_secs),
            request: Duration::from_secs(ex.request_timeout_secs),
        },
        limits: Limits {
            account_concurrency: config.limits.max_concurrent_calls.max(1) as usize,
            account_per_second: per_second(config.limits.calls_per_second),
            mailbox_per_second: per_second(config.limits.mailbox_calls_per_second),
            ..Limits::default()
        },
        extra_roots: ex.extra_root_certs.clone(),
        ..ClientSettings::new(url, auth)
    })
}

/// The EWS feed the config describes.
pub fn feed(config: &Config) -> Result<EwsFeed, Error> {
    let client = EwsClient::new(client_settings(config)?)?;
    Ok(EwsFeed::new(client).with_sizes(
        config.limits.sync_page_size.min(u16::MAX as u32) as u16,
        config.limits.get_item_batch as usize,
    ))
}

/// What a pass over every mailbox did.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub mailboxes: usize,
    pub failed: Vec<(String, String)>,
    pub folders: usize,
    pub changes: usize,
    pub tracked: usize,
    pub recorded: usize,
    pub not_watched: Vec<(String, String)>,
    pub delivered: usize,
    /// Requests that became undeliverable or were rejected in this pass.
    pub undelivered: usize,
}

impl Summary {
    fn add(&mut self, mailbox: &str, result: Result<PassReport, String>) {
        self.mailboxes += 1;
        match result {
            Ok(r) => {
                self.folders += r.folders;
                self.changes += r.changes;
                self.tracked += r.emitted.len();
                self.recorded += r.recorded;
                self.not_watched.extend(
                    r.not_watched
                        .into_iter()
                        .map(|(m, s)| (format!("{mailbox} {m}"), format!("{s:?}"))),
                );
            }
            Err(e) => self.failed.push((mailbox.to_owned(), e)),
        }
    }
}

/// One sync pass over every mapping of every mailbox, then the outbox drained to the sink.
pub async fn once<F: FolderFeed, S: Store>(
    config: &Config,
    feed: Arc<F>,
    store: Arc<S>,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Result<Summary, Error> {
    let mut summary = Summary::default();
    for mailbox in &config.mailbox {
        let mut watcher = MailboxWatcher::new(feed.clone(), store.clone(), mailbox.clone());
        let result = watcher.sync(progress).await;
        // A store failure stops everything; a mailbox's failure is that mailbox's.
        if let Err(crate::watch::mailbox::Error::Store(e)) = result {
            return Err(e.into());
        }
        summary.add(&mailbox.address, result.map_err(|e| e.to_string()));
    }
    let deliverer = Deliverer::new(AnySink::from_config(config).map_err(Error::Sink)?, config);
    let drained = deliver(config, &deliverer, feed.as_ref(), store.as_ref()).await?;
    summary.delivered = drained.delivered;
    summary.undelivered = drained.undeliverable + drained.rejected;
    Ok(summary)
}

/// Delivers what is due in the outbox, then writes the results back to the mailboxes.
pub async fn deliver<F: FolderFeed, S: Store, K: Sink>(
    config: &Config,
    deliverer: &Deliverer<K>,
    feed: &F,
    store: &S,
) -> Result<Drained, Error> {
    let drained = deliverer.drain(store).await?;
    if config.writeback.enabled {
        crate::deliver::writeback::write_back(feed, store, &config.writeback).await?;
    }
    Ok(drained)
}

/// Keeps every mailbox on its cadence until `shutdown`, applying reloaded configs as they
/// come (R9). Each page's commit is atomic, so stopping between any two loses nothing.
pub async fn run<F: FolderFeed, S: Store>(
    config: Config,
    feed: Arc<F>,
    store: Arc<S>,
    shutdown: CancellationToken,
    mut reloads: mpsc::UnboundedReceiver<Config>,
    listening: impl FnOnce(std::net::SocketAddr),
) -> Result<Arc<Supervisor<F, S>>, Error> {
    let deliverer = Deliverer::new(AnySink::from_config(&config).map_err(Error::Sink)?, &config);
    let supervisor = Supervisor::new(
        feed.clone(),
        store.clone(),
        config.cadence.settings(),
        config.health.policy(),
        shutdown.clone(),
    );
    supervisor.apply(&config.mailbox);
    let token = match (&config.admin.token_env, &config.admin.token_file) {
        (None, None) => None,
        (env, file) => Some(config::resolve_secret(
            "admin.token",
            env.as_deref(),
            file.as_deref(),
        )?),
    };
    let admin = Arc::new(crate::admin::Admin {
        supervisor: supervisor.clone(),
        store: store.clone(),
        token,
    });
    let listen = crate::admin::serve(&config.admin.listen, admin, shutdown.clone())
        .await
        .map_err(|e| {
            Error::Invalid(format!(
                "admin.listen {}: {e}; pick a free address",
                config.admin.listen
            ))
        })?;
    tracing::info!(event = "agent_started", mailboxes = config.mailbox.len(), admin = %listen);
    listening(listen);
    let deliver = {
        let (store, shutdown, outbox) =
            (store.clone(), shutdown.clone(), supervisor.outbox.clone());
        let config = config.clone();
        async move {
            loop {
                if let Err(e) = deliver(&config, &deliverer, feed.as_ref(), store.as_ref()).await {
                    tracing::error!(event = "delivery_stopped", error = %e);
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = outbox.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    };
    let reload = async {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                Some(new) = reloads.recv() => {
                    let restart: Vec<&str> = [
                        ("exchange", new.exchange != config.exchange),
                        ("store", new.store != config.store),
                        ("sink", new.sink != config.sink),
                        ("limits", new.limits != config.limits),
                    ]
                    .into_iter()
                    .filter_map(|(section, changed)| changed.then_some(section))
                    .collect();
                    if !restart.is_empty() {
                        tracing::warn!(event = "reload_needs_restart", sections = ?restart, "these sections apply at the next start");
                    }
                    supervisor.apply(&new.mailbox);
                    tracing::info!(event = "config_reloaded", mailboxes = new.mailbox.len());
                }
            }
        }
    };
    tokio::join!(deliver, reload, supervisor.join());
    tracing::info!(event = "agent_stopped");
    Ok(supervisor)
}

/// One problem item, as `foldertrack items` and the admin API show it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ItemLine {
    pub state: ItemState,
    pub id: String,
    pub event_id: String,
    pub mailbox: String,
    pub folder: String,
    pub attempts: u32,
    pub reason: String,
    /// When it failed last (retrying: when the next attempt is due).
    pub at: Option<jiff::Timestamp>,
    /// Outbox or dead-letter sequence: what `retry` re-queues.
    #[serde(skip)]
    pub seq: u64,
}

/// Items that failed at least once, oldest first: retrying ones from the outbox, undeliverable
/// and rejected ones from the dead letters.
pub fn problem_items<S: Store>(
    store: &S,
    state: Option<ItemState>,
) -> Result<Vec<ItemLine>, store::Error> {
    let mut out = Vec::new();
    if state.is_none_or(|s| s == ItemState::Retrying) {
        for (seq, e) in store.outbox(usize::MAX)? {
            if e.attempts > 0 {
                out.push(ItemLine {
                    state: ItemState::Retrying,
                    id: e.request.id.clone(),
                    event_id: e.request.event_id.clone(),
                    mailbox: e.request.mailbox.clone(),
                    folder: e.request.folder.path.clone(),
                    attempts: e.attempts,
                    reason: e.last_error.unwrap_or_default(),
                    at: e.next_try,
                    seq,
                });
            }
        }
    }
    for (seq, d) in store.dead(usize::MAX)? {
        let s = match d.state {
            store::Failed::Undeliverable => ItemState::Undeliverable,
            store::Failed::Rejected => ItemState::Rejected,
        };
        if state.is_none_or(|wanted| wanted == s) {
            out.push(ItemLine {
                state: s,
                id: d.request.id,
                event_id: d.request.event_id,
                mailbox: d.request.mailbox,
                folder: d.request.folder.path,
                attempts: d.attempts,
                reason: d.reason,
                at: Some(d.at),
                seq,
            });
        }
    }
    Ok(out)
}

/// Re-queues undeliverable and rejected items, filtered by mailbox and time; with `dry_run`
/// only says which (R30).
pub async fn retry<S: Store>(
    store: &S,
    mailbox: Option<&str>,
    since: Option<jiff::Timestamp>,
    dry_run: bool,
) -> Result<Vec<ItemLine>, store::Error> {
    let chosen: Vec<ItemLine> = problem_items(store, None)?
        .into_iter()
        .filter(|i| i.state != ItemState::Retrying)
        .filter(|i| mailbox.is_none_or(|m| i.mailbox.eq_ignore_ascii_case(m)))
        .filter(|i| since.is_none_or(|t| i.at.is_some_and(|at| at >= t)))
        .collect();
    if !dry_run {
        let seqs: Vec<u64> = chosen.iter().map(|i| i.seq).collect();
        store.requeue(&seqs).await?;
    }
    Ok(chosen)
}

/// The mailbox's folder tree, as the feed sees it now.
async fn folder_tree<F: FolderFeed>(
    feed: &F,
    mailbox: &str,
) -> Result<FolderTree, crate::feed::Error> {
    let mut tree = FolderTree::new(feed.well_known(mailbox).await?);
    let mut cursor = None;
    loop {
        let page = feed.hierarchy(mailbox, cursor.as_ref()).await?;
        tree.apply(page.events);
        cursor = Some(page.cursor);
        if !page.more {
            return Ok(tree);
        }
    }
}

/// One folder of `foldertrack folders`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FolderLine {
    pub depth: usize,
    pub name: String,
    pub id: String,
    /// The mapping that covers it, if any.
    pub mapping: Option<String>,
}

/// The mailbox's mail folders, depth first, marking those a configured mapping covers.
pub async fn folders<F: FolderFeed>(
    config: &Config,
    feed: &F,
    mailbox: &str,
) -> Result<Vec<FolderLine>, String> {
    let tree = folder_tree(feed, mailbox)
        .await
        .map_err(|e| e.to_string())?;
    let mut mapped = std::collections::HashMap::new();
    if let Some(m) = config
        .mailbox
        .iter()
        .find(|m| m.address.eq_ignore_ascii_case(mailbox))
    {
        for f in &m.folder {
            for target in mappings::resolve(mailbox, f, None, &tree).1 {
                mapped.insert(target.folder_id, target.mapping);
            }
        }
    }
    let mut out = Vec::new();
    let mut stack: Vec<(usize, &crate::feed::FolderNode)> = tree
        .children(&tree.well_known.top)
        .into_iter()
        .rev()
        .map(|n| (0, n))
        .collect();
    while let Some((depth, node)) = stack.pop() {
        out.push(FolderLine {
            depth,
            name: node.name.clone(),
            id: node.id.clone(),
            mapping: mapped.get(&node.id).cloned(),
        });
        stack.extend(
            tree.children(&node.id)
                .into_iter()
                .rev()
                .map(|n| (depth + 1, n)),
        );
    }
    Ok(out)
}

/// `check-config` against the server: per mailbox, access (credentials, impersonation), then
/// each mapping's folder. One line each, OK or what to fix.
pub async fn check_server(config: &Config) -> Vec<Result<String, String>> {
    let feed = match feed(config) {
        Ok(f) => f,
        Err(e) => return vec![Err(e.to_string())],
    };
    let mut checks = Vec::new();
    for m in &config.mailbox {
        let tree = match folder_tree(&feed, &m.address).await {
            Ok(t) => {
                checks.push(Ok(format!(
                    "{}: signed in and allowed to read the mailbox",
                    m.address
                )));
                t
            }
            Err(e) => {
                checks.push(Err(format!("{}: {e}", m.address)));
                continue;
            }
        };
        for f in &m.folder {
            let (record, _) = mappings::resolve(&m.address, f, None, &tree);
            let name = &record.name;
            checks.push(match record.state {
                MappingState::Active => Ok(format!(
                    "{} {name}: found ({})",
                    m.address,
                    record.path.unwrap_or_default()
                )),
                MappingState::NotFound | MappingState::Orphaned => Err(format!(
                    "{} {name}: no such folder; fix the path (`foldertrack folders {}` lists them) or create the folder",
                    m.address, m.address
                )),
                MappingState::Paused(reason) => Err(format!(
                    "{} {name}: {reason}; move the folder under the Inbox or set allow_outside_inbox = true",
                    m.address
                )),
            });
        }
    }
    checks
}
