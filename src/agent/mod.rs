//! The agent, wired: the config becomes a feed, a store's watchers, a sink's delivery loop and
//! the admin API. [`once`] runs one pass over every mailbox; [`run`] keeps every mailbox on its
//! cadence until shutdown, applying reloaded configs as they come (R9).

pub mod checks;
pub mod cluster;
pub mod delivery;
pub mod files;
mod history;
mod space;
pub mod stored;

use crate::admin::server::Admin;
use crate::config::{self, Config};
use crate::deliver::{self, AnySink, Deliverer};
use crate::feed::ews::EwsFeed;
use crate::feed::graph::GraphFeed;
use crate::feed::{AnyFeed, FolderFeed};
use crate::store::{self, Store};
use crate::watch::mailbox::{self, MailboxWatcher, PassReport, Progress};
use crate::watch::notify::Hints;
use crate::watch::supervisor::Supervisor;
use std::sync::{Arc, PoisonError};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Why the agent could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] config::Error),
    #[error("exchange: {0}")]
    Client(#[from] crate::client::Error),
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error(transparent)]
    Sink(#[from] deliver::Error),
    #[error("notifications.graph_listen {listen}: {source}; pick a free address")]
    GraphListen {
        listen: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("admin.listen {listen}: {source}; pick a free address")]
    AdminListen {
        listen: String,
        #[source]
        source: std::io::Error,
    },
}

/// The EWS feed the config describes.
pub fn ews_feed(config: &Config) -> Result<EwsFeed, Error> {
    let client = crate::client::EwsClient::new(config.client_settings()?)?;
    Ok(EwsFeed::new(client).with_sizes(
        config.limits.sync_page_size.min(u32::from(u16::MAX)) as u16,
        config.limits.get_item_batch as usize,
    ))
}

/// The Graph feed the config describes (`api = "graph"`): delta pages of `sync_page_size`,
/// `$batch`es of at most 20.
pub fn graph_feed(config: &Config) -> Result<GraphFeed, Error> {
    let client = crate::client::GraphClient::new(config.client_settings()?)?;
    Ok(GraphFeed::new(client).with_sizes(
        config.limits.sync_page_size,
        config.limits.get_item_batch as usize,
    ))
}

/// The feed of the API the config chose.
pub fn feed(config: &Config) -> Result<AnyFeed, Error> {
    Ok(match config.exchange.api {
        config::Api::Ews => AnyFeed::Ews(ews_feed(config)?),
        config::Api::Graph => AnyFeed::Graph(graph_feed(config)?),
    })
}

/// Says in the log, at start and on reload, when the limits cannot keep the cadence.
fn warn_capacity(config: &Config) {
    if let Some(advice) = config.capacity().advice {
        tracing::warn!(event = "cadence_not_kept", advice = %advice);
    }
}

/// What a pass over every mailbox did.
#[derive(Debug, Default)]
pub struct Summary {
    pub mailboxes: usize,
    pub failed: Vec<(String, mailbox::Error)>,
    pub folders: usize,
    pub changes: usize,
    pub tracked: usize,
    pub recorded: usize,
    /// Mails already in folders at their first sync, remembered without tracking (R10).
    pub baselined: usize,
    /// Mappings not watched: (mailbox and mapping, why and what to do).
    pub not_watched: Vec<(String, String)>,
    pub delivered: usize,
    /// Requests that became undeliverable or were rejected in this pass.
    pub undelivered: usize,
    /// Set when the sink did not answer: the requests wait in the outbox.
    pub sink_unavailable: Option<store::SinkOutage>,
    /// Requests still in the outbox after the pass (waiting for the sink or a retry).
    pub waiting: usize,
}

impl Summary {
    fn add(&mut self, mailbox: &str, result: Result<PassReport, mailbox::Error>) {
        self.mailboxes += 1;
        match result {
            Ok(r) => {
                self.folders += r.folders;
                self.changes += r.changes;
                self.tracked += r.emitted.len();
                self.recorded += r.recorded;
                self.baselined += r.baselined;
                self.not_watched
                    .extend(r.not_watched.into_iter().filter_map(|(m, s)| {
                        let problem = checks::mapping_problem(mailbox, &m, &s)?;
                        Some((format!("{mailbox} {m}"), problem))
                    }));
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
    crate::telemetry::set_log_subjects(config.log_subjects);
    let mut summary = Summary::default();
    for mailbox in &cluster::plan(config, store.as_ref())?.watched {
        let mut watcher = MailboxWatcher::new(feed.clone(), store.clone(), mailbox.clone())
            .with_failed_category(config.failed_category());
        let result = watcher.sync(progress).await;
        // A store failure stops everything; a mailbox's failure is that mailbox's.
        if let Err(mailbox::Error::Store(e)) = result {
            return Err(e.into());
        }
        summary.add(&mailbox.address, result);
    }
    let deliverer = Deliverer::new(
        AnySink::open(config.sink_settings()?)?.with_feed(feed.clone()),
        &config.delivery_settings(),
    );
    let drained = delivery::deliver(&deliverer, feed.as_ref(), store.as_ref()).await?;
    summary.delivered = drained.delivered;
    summary.undelivered = drained.undeliverable + drained.rejected;
    summary.sink_unavailable = store.sink_outage()?;
    summary.waiting = store.stats()?.outbox;
    Ok(summary)
}

/// The settings and the offline `check-config` checks, as the admin API shows them.
fn config_view(config: &Config) -> crate::admin::ConfigView {
    let checks = config::secret_checks(config)
        .into_iter()
        .chain([config.capacity_check()])
        .chain(config.cluster_check())
        .chain(config.notifications_check())
        .map(|check| {
            let (level, text) = match check {
                config::Check::Ok(t) => ("ok", t),
                config::Check::Warn(t) => ("warn", t),
                config::Check::Fail(t) => ("fail", t),
            };
            crate::admin::CheckLine {
                level: level.into(),
                text,
            }
        })
        .collect();
    crate::admin::ConfigView {
        settings: config.settings(),
        checks,
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
    listening: impl FnOnce(std::net::SocketAddr),
) -> Result<Arc<Supervisor<F, S>>, Error> {
    let settings = config.admin_settings()?;
    let deliverer = Deliverer::new(
        AnySink::open(config.sink_settings()?)?.with_feed(feed.clone()),
        &config.delivery_settings(),
    );
    let notify = config.notify_settings();
    let ews_notify = feed.notifications().filter(|_| notify.enabled);
    let graph_notify = match (feed.graph_subscriptions(), config.graph_notify_settings()?) {
        (Some(subscriptions), Some(settings)) => {
            let listener = crate::watch::graph_notifier::bind(settings.listen)
                .await
                .map_err(|source| Error::GraphListen {
                    listen: settings.listen,
                    source,
                })?;
            Some((listener, subscriptions, settings))
        }
        _ => None,
    };
    let hints = Arc::new(match config.notify_off_reason() {
        _ if ews_notify.is_some() || graph_notify.is_some() => Hints::new(notify.backstop),
        reason => Hints::off(reason.unwrap_or("notifications are off")),
    });
    let supervisor = Supervisor::new(
        feed.clone(),
        store.clone(),
        config.cadence_settings(),
        config.health_policy(),
        config.failed_category(),
        hints.clone(),
        shutdown.clone(),
    );
    let plan = cluster::plan(&config, store.as_ref())?;
    supervisor.apply(&plan.watched);
    crate::telemetry::set_log_subjects(config.log_subjects);
    let admin = Arc::new(Admin {
        cluster: std::sync::Mutex::new((plan.view, plan.awaiting)),
        supervisor: supervisor.clone(),
        store: store.clone(),
        token: settings.token,
        capacity: std::sync::Mutex::new(Some(config.capacity())),
        explain: std::sync::Mutex::new(config.explain_settings()),
        config: std::sync::Mutex::new(config_view(&config)),
    });
    warn_capacity(&config);
    let listen = crate::admin::serve(&settings.listen, admin.clone(), shutdown.clone())
        .await
        .map_err(|source| Error::AdminListen {
            listen: settings.listen.clone(),
            source,
        })?;
    tracing::info!(event = "agent_started", mailboxes = plan.watched.len(), admin = %listen);
    listening(listen);
    let signals = delivery::Signals {
        outbox: supervisor.outbox.clone(),
        delivered: supervisor.delivered.clone(),
    };
    let prune = history::prune(store.clone(), config.store.history_days, shutdown.clone());
    let reclaim = space::reclaim(store.clone(), shutdown.clone());
    let failure = stop_on_store_failure(store.clone(), shutdown.clone());
    let broken = store.clone();
    let deliver = delivery::run(deliverer, feed, store.clone(), signals, shutdown.clone());
    let reload = async {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                Some(new) = reloads.recv() => apply_reload(&config, &new, &supervisor, &admin, store.as_ref()),
            }
        }
    };
    let notifier = async {
        if let Some(ews) = ews_notify {
            let ledger = store.clone();
            crate::watch::notifier::run(ews, hints.clone(), notify, ledger, shutdown.clone()).await;
        }
        if let Some((listener, subscriptions, settings)) = graph_notify {
            let stop = shutdown.clone();
            crate::watch::graph_notifier::run(listener, subscriptions, hints, settings, stop).await;
        }
    };
    let work = async {
        tokio::join!(
            deliver,
            reload,
            prune,
            supervisor.join(),
            failure,
            notifier,
            reclaim
        )
        .4
    };
    let failure = tokio::select! {
        failure = work => failure,
        () = grace_expired(&shutdown) => {
            tracing::warn!(event = "stop_grace_expired", seconds = STOP_GRACE.as_secs(), "stopping with work in flight; it is redone at the next start");
            // A store failure that started the stop is still the reason to exit with.
            tokio::time::timeout(std::time::Duration::from_millis(1), broken.failed()).await.ok()
        }
    };
    tracing::info!(event = "agent_stopped");
    match failure {
        Some(reason) => Err(store::Error::Disk(reason).into()),
        None => Ok(supervisor),
    }
}

/// Applies a reloaded config (R9): the mailboxes this member watches now, and what the admin
/// API shows. Sections read only at start are named in a warning.
fn apply_reload<F: FolderFeed, S: Store>(
    config: &Config,
    new: &Config,
    supervisor: &Arc<Supervisor<F, S>>,
    admin: &Admin<F, S>,
    store: &S,
) {
    let restart = config::diff::restart_sections(config, new);
    if !restart.is_empty() {
        tracing::warn!(event = "reload_needs_restart", sections = ?restart, "these sections apply at the next start");
    }
    match cluster::plan(new, store) {
        Ok(plan) => {
            supervisor.apply(&plan.watched);
            *admin.cluster.lock().unwrap_or_else(PoisonError::into_inner) =
                (plan.view, plan.awaiting);
        }
        Err(e) => tracing::error!(event = "reload_failed", error = %e),
    }
    crate::telemetry::set_log_subjects(new.log_subjects);
    warn_capacity(new);
    *admin
        .capacity
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = Some(new.capacity());
    *admin.explain.lock().unwrap_or_else(PoisonError::into_inner) = new.explain_settings();
    *admin.config.lock().unwrap_or_else(PoisonError::into_inner) = config_view(new);
    tracing::info!(event = "config_reloaded", mailboxes = new.mailbox.len());
}

/// How long a stopping agent lets work in flight (a sink call, a pass, write-backs) finish,
/// well under a service manager's stop timeout (the shipped unit's is 30 s). What is cut off is
/// durable as it was: every page commit and delivery acknowledgement is atomic.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Resolves [`STOP_GRACE`] after `shutdown`.
async fn grace_expired(shutdown: &CancellationToken) {
    shutdown.cancelled().await;
    tokio::time::sleep(STOP_GRACE).await;
}

/// Stops the agent when the store fails for good: every later pass would fail too, and only
/// a new process (its service manager restarts it) can open the store again.
async fn stop_on_store_failure<S: Store>(
    store: Arc<S>,
    shutdown: CancellationToken,
) -> Option<String> {
    tokio::select! {
        _ = shutdown.cancelled() => None,
        reason = store.failed() => {
            tracing::error!(event = "store_failed", reason = %reason, "the store's disk failed; stopping");
            shutdown.cancel();
            Some(reason)
        }
    }
}
