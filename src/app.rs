//! Wiring: the config becomes a client, a feed, watchers and an outbox drain; `once` runs one
//! pass, `run` keeps every mailbox on its cadence until shutdown.

use crate::client::{self, ClientSettings, EwsClient, Limits, Timeouts};
use crate::config::{self, Config, Sink};
use crate::deliver::jsonl::{Appended, JsonlFile};
use crate::ews::ExchangeVersion;
use crate::feed::FolderFeed;
use crate::feed::ews::EwsFeed;
use crate::store::{self, Store};
use crate::watch::mailbox::{MailboxWatcher, PassReport, Progress};
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
    let auth = match &ex.auth {
        config::Auth::Basic {
            username,
            password_env,
            password_file,
        } => client::Auth::Basic {
            username: username.clone(),
            password: config::resolve_secret(
                "exchange.auth.password",
                password_env.as_deref(),
                password_file.as_deref(),
            )?,
        },
        config::Auth::Ntlm {
            username,
            domain,
            password_env,
            password_file,
        } => client::Auth::Ntlm {
            domain: domain.clone().unwrap_or_default(),
            username: username.clone(),
            password: config::resolve_secret(
                "exchange.auth.password",
                password_env.as_deref(),
                password_file.as_deref(),
            )?,
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
    summary.delivered = drain(config, store.as_ref()).await?;
    Ok(summary)
}

/// Delivers the outbox to the JSONL sink, oldest first; an entry leaves the outbox only after
/// the line is on disk, and a line already in the file is not written again (R21).
pub async fn drain<S: Store>(config: &Config, store: &S) -> Result<usize, Error> {
    let Sink::Jsonl { path, rotate_bytes } = &config.sink else {
        // The webhook and Dynamics sinks deliver through their own loop (not in this build).
        return Ok(0);
    };
    let mut file = JsonlFile::open(path, *rotate_bytes).map_err(|e| Error::Sink(e.to_string()))?;
    let mut delivered = 0;
    loop {
        let batch = store.outbox(256)?;
        if batch.is_empty() {
            return Ok(delivered);
        }
        // Each line is fsynced before its batch is acknowledged; a crash in between offers
        // the batch again and the file skips what it holds.
        let mut done = Vec::with_capacity(batch.len());
        for (seq, request) in batch {
            let line = serde_json::to_string(&request).expect("requests always serialise");
            if file
                .append(&request.event_id, &line)
                .map_err(|e| Error::Sink(e.to_string()))?
                == Appended::Written
            {
                delivered += 1;
            }
            done.push(seq);
        }
        store.ack(&done).await?;
    }
}

/// Keeps every mailbox on its cadence until `shutdown`, applying reloaded configs as they
/// come (R9). Each page's commit is atomic, so stopping between any two loses nothing.
pub async fn run<F: FolderFeed, S: Store>(
    config: Config,
    feed: Arc<F>,
    store: Arc<S>,
    shutdown: CancellationToken,
    mut reloads: mpsc::UnboundedReceiver<Config>,
) -> Result<Arc<Supervisor<F, S>>, Error> {
    let supervisor = Supervisor::new(
        feed,
        store.clone(),
        config.cadence.settings(),
        config.health.policy(),
        shutdown.clone(),
    );
    supervisor.apply(&config.mailbox);
    tracing::info!(event = "agent_started", mailboxes = config.mailbox.len());
    let deliver = {
        let (store, shutdown, outbox) =
            (store.clone(), shutdown.clone(), supervisor.outbox.clone());
        let config = config.clone();
        async move {
            loop {
                if let Err(e) = drain(&config, store.as_ref()).await {
                    tracing::error!(event = "delivery_failed", error = %e);
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
                        ("exchange", format!("{:?}", new.exchange) != format!("{:?}", config.exchange)),
                        ("store", format!("{:?}", new.store) != format!("{:?}", config.store)),
                        ("sink", format!("{:?}", new.sink) != format!("{:?}", config.sink)),
                        ("limits", format!("{:?}", new.limits) != format!("{:?}", config.limits)),
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
