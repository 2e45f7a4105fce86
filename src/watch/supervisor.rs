//! The supervisor: one task per mailbox, each on its own cadence (R37) and health (R29, R31),
//! never syncing twice at once (R39), woken at once by track-now (R38) or a reload (R9).
//! One failing mailbox only ever delays itself (R33). Track-now answers once the mailbox's
//! requests are in the sink, or says what they wait for ([`super::track_now`]).

use super::MailboxConfig;
use super::cadence::{Cadence, CadenceSettings, Outcome};
use super::health::{Failure, Health, HealthPolicy};
use super::mailbox::{MailboxWatcher, PassReport};
use super::notify::{self, Delivery, Hints};
pub use super::track_now::SyncNow;
use crate::feed::{Action, FolderFeed};
use crate::store::Store;
use jiff::Timestamp;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// What a mailbox's task shows to status and the admin API.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
pub struct MailboxStatus {
    pub address: String,
    pub health: Health,
    /// The current cadence interval, in seconds.
    pub interval_secs: u64,
    /// Where that interval stands: `busy`, `normal` or `quiet` (R37).
    #[serde(default)]
    pub cadence: String,
    /// Why the next sync is when it is.
    #[serde(default)]
    pub next_why: String,
    pub syncing: bool,
    pub last_sync_started: Option<Timestamp>,
    pub last_sync_finished: Option<Timestamp>,
    pub next_sync: Option<Timestamp>,
    /// The achieved cycle: seconds between the starts of its last two passes.
    #[serde(default)]
    pub cycle_secs: Option<u64>,
    pub syncs: u64,
    pub tracked: u64,
    pub failed_syncs: u64,
    /// Mappings not watched now, with their state.
    pub not_watched: Vec<(String, String)>,
    /// Whether notifications wake its syncs (then polling is the backstop), and if not, why.
    #[serde(default)]
    pub notifications: Delivery,
}

type Waiter = oneshot::Sender<SyncNow>;

struct Handle {
    config: watch::Sender<Arc<MailboxConfig>>,
    sync_now: mpsc::UnboundedSender<Waiter>,
    stop: CancellationToken,
    status: Arc<Mutex<MailboxStatus>>,
    /// Set while the task runs: a removed mailbox's pass may still be committing.
    running: Arc<AtomicBool>,
}

/// Runs the mailboxes' tasks; cheap to share (the admin API holds one).
pub struct Supervisor<F, S> {
    feed: Arc<F>,
    store: Arc<S>,
    cadence: CadenceSettings,
    health: HealthPolicy,
    /// The write-back's failure category (R27), for every mailbox's watcher.
    failed_category: Option<String>,
    handles: Mutex<HashMap<String, Handle>>,
    /// Where notifications wake mailboxes.
    hints: Arc<Hints>,
    /// Removed mailboxes whose task may still be finishing a pass.
    retiring: Mutex<HashMap<String, Arc<AtomicBool>>>,
    tasks: Mutex<JoinSet<()>>,
    /// Permits for [`PASSES_AT_ONCE`] passes, and for [`URGENT_PASSES_AT_ONCE`] more.
    passes: Arc<Semaphore>,
    urgent_passes: Arc<Semaphore>,
    shutdown: CancellationToken,
    /// Notified after every sync that put something into the outbox.
    pub outbox: Arc<tokio::sync::Notify>,
    /// Ticks whenever delivery changed the outbox; track-now waits on it.
    pub delivered: Arc<watch::Sender<u64>>,
}

impl<F: FolderFeed, S: Store> Supervisor<F, S> {
    pub fn new(
        feed: Arc<F>,
        store: Arc<S>,
        cadence: CadenceSettings,
        health: HealthPolicy,
        failed_category: Option<String>,
        hints: Arc<Hints>,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        Arc::new(Self {
            feed,
            store,
            cadence,
            health,
            failed_category,
            handles: Mutex::default(),
            hints,
            retiring: Mutex::default(),
            tasks: Mutex::default(),
            passes: Arc::new(Semaphore::new(PASSES_AT_ONCE)),
            urgent_passes: Arc::new(Semaphore::new(URGENT_PASSES_AT_ONCE)),
            shutdown,
            outbox: Arc::default(),
            delivered: Arc::new(watch::Sender::new(0)),
        })
    }

    /// Starts, stops and re-configures mailbox tasks to match `mailboxes` (start and R9).
    pub fn apply(self: &Arc<Self>, mailboxes: &[Arc<MailboxConfig>]) {
        let mut handles = self.handles.lock().expect("unpoisoned");
        let mut retiring = self.retiring.lock().expect("unpoisoned");
        handles.retain(|address, h| {
            let keep = mailboxes.iter().any(|m| &m.address == address);
            if !keep {
                tracing::info!(event = "mailbox_removed", mailbox = %address);
                h.stop.cancel();
                self.hints.remove(address);
                retiring.insert(address.clone(), h.running.clone());
            }
            keep
        });
        retiring.retain(|_, running| running.load(Ordering::Acquire));
        for m in mailboxes {
            match handles.get(&m.address) {
                Some(h) => {
                    h.config.send_if_modified(|current| {
                        let changed = current != m;
                        if changed {
                            *current = m.clone();
                        }
                        changed
                    });
                }
                None => {
                    let handle = self.spawn(m.clone());
                    handles.insert(m.address.clone(), handle);
                }
            }
        }
    }

    /// Starts watching one more mailbox (one handed over to this agent), unless it is watched.
    pub fn watch(self: &Arc<Self>, mailbox: &Arc<MailboxConfig>) {
        let mut handles = self.handles.lock().expect("unpoisoned");
        if !handles.contains_key(&mailbox.address) {
            let handle = self.spawn(mailbox.clone());
            handles.insert(mailbox.address.clone(), handle);
        }
    }

    fn spawn(self: &Arc<Self>, config: Arc<MailboxConfig>) -> Handle {
        let (config_tx, config_rx) = watch::channel(config.clone());
        let (sync_tx, sync_rx) = mpsc::unbounded_channel();
        let stop = self.shutdown.child_token();
        let status = Arc::new(Mutex::new(MailboxStatus {
            address: config.address.clone(),
            interval_secs: self.cadence.normal.as_secs(),
            cadence: "normal".into(),
            next_why: "the first sync, at start".into(),
            ..MailboxStatus::default()
        }));
        let wake = self.hints.wake_of(&config.address);
        let running = Arc::new(AtomicBool::new(true));
        let task = MailboxTask {
            feed: self.feed.clone(),
            watcher: MailboxWatcher::new(self.feed.clone(), self.store.clone(), config)
                .with_failed_category(self.failed_category.clone()),
            cadence: Cadence::new(self.cadence),
            health: Health::default(),
            policy: self.health,
            config: config_rx,
            sync_now: sync_rx,
            stop: stop.clone(),
            status: status.clone(),
            outbox: self.outbox.clone(),
            wake,
            hints: self.hints.clone(),
            passes: self.passes.clone(),
            urgent_passes: self.urgent_passes.clone(),
        };
        let finished = running.clone();
        self.tasks.lock().expect("unpoisoned").spawn(async move {
            task.run().await;
            finished.store(false, Ordering::Release);
        });
        Handle {
            config: config_tx,
            sync_now: sync_tx,
            stop,
            status,
            running,
        }
    }

    /// Track-now: syncs the mailbox at once (or right after the sync in progress), waits a
    /// few seconds at most for its requests to reach the sink, and says how it went (R38).
    pub async fn sync_now(&self, address: &str) -> SyncNow {
        let (tx, rx) = oneshot::channel();
        let (sent, mailbox) = {
            let handles = self.handles.lock().expect("unpoisoned");
            let Some(h) = handles
                .get(&address.to_ascii_lowercase())
                .or_else(|| handles.get(address))
            else {
                return SyncNow::UnknownMailbox;
            };
            let mailbox = h.status.lock().expect("unpoisoned").address.clone();
            (h.sync_now.send(tx).is_ok(), mailbox)
        };
        match (sent, rx.await) {
            (true, Ok(SyncNow::Done { tracked })) => {
                let settled = super::track_now::settle(
                    self.store.as_ref(),
                    &self.delivered,
                    &mailbox,
                    tracked,
                );
                settled.await.unwrap_or_else(|e| SyncNow::Fallback {
                    reason: format!("synced, but the outbox cannot be read: {e}"),
                    next_sync: None,
                })
            }
            (true, Ok(answer)) => answer,
            _ => SyncNow::Fallback {
                reason: "the agent is shutting down".into(),
                next_sync: None,
            },
        }
    }

    /// Whether no task of this mailbox runs, not even one finishing its last pass: its state
    /// in the store no longer changes (but for deliveries).
    pub fn stopped(&self, address: &str) -> bool {
        let watched = self
            .handles
            .lock()
            .expect("unpoisoned")
            .keys()
            .any(|a| a.eq_ignore_ascii_case(address));
        let finishing = self
            .retiring
            .lock()
            .expect("unpoisoned")
            .iter()
            .any(|(a, running)| a.eq_ignore_ascii_case(address) && running.load(Ordering::Acquire));
        !watched && !finishing
    }

    /// Every mailbox's status, sorted by address.
    pub fn status(&self) -> Vec<MailboxStatus> {
        let handles = self.handles.lock().expect("unpoisoned");
        let mut out: Vec<MailboxStatus> = handles
            .values()
            .map(|h| {
                let mut s = h.status.lock().expect("unpoisoned").clone();
                s.notifications = self.hints.delivery(&s.address);
                s
            })
            .collect();
        out.sort_by(|a, b| a.address.cmp(&b.address));
        out
    }

    /// Waits until every task has stopped (after the shutdown token is cancelled).
    pub async fn join(&self) {
        let mut tasks = std::mem::take(&mut *self.tasks.lock().expect("unpoisoned"));
        while tasks.join_next().await.is_some() {}
    }
}

struct MailboxTask<F, S> {
    feed: Arc<F>,
    watcher: MailboxWatcher<F, S>,
    cadence: Cadence,
    health: Health,
    policy: HealthPolicy,
    config: watch::Receiver<Arc<MailboxConfig>>,
    sync_now: mpsc::UnboundedReceiver<Waiter>,
    stop: CancellationToken,
    status: Arc<Mutex<MailboxStatus>>,
    outbox: Arc<tokio::sync::Notify>,
    /// Woken by a notification: a normal pass at once.
    wake: Arc<tokio::sync::Notify>,
    hints: Arc<Hints>,
    passes: Arc<Semaphore>,
    urgent_passes: Arc<Semaphore>,
}

/// The most passes that run at once over all mailboxes. A pass spends most of its time waiting
/// for the call gate, which lets at most 26 calls through at once (`limits.max_concurrent_calls`),
/// so more passes add no speed, only memory: at start all 10,000 mailboxes of the enterprise
/// preset began their first pass together, each holding its pass state and a written request
/// at the gate (docs/benchmarks.md, "Where the memory goes"). Waiting passes queue in order.
pub const PASSES_AT_ONCE: usize = 64;

/// Passes a track-now or a notification started, beyond [`PASSES_AT_ONCE`]: they do not queue
/// behind the scheduled and catch-up passes. Each new subscription wakes its mailbox once to
/// catch up, and a mail moved meanwhile waited for thousands of them: p95 20 s at 10,000
/// mailboxes, minutes at 100,000 (docs/benchmarks.md).
pub const URGENT_PASSES_AT_ONCE: usize = 16;

/// The pause before the next pass when a folder stopped at its page bound.
const UNFINISHED_PAUSE: Duration = Duration::from_secs(1);

impl<F: FolderFeed, S: Store> MailboxTask<F, S> {
    async fn run(mut self) {
        let mut delay = Duration::ZERO;
        loop {
            self.set_next(Some(delay));
            let mut waiters = Vec::new();
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
                Some(w) = self.sync_now.recv() => {
                    // Track-now that cannot run now: say so at once; the next sync is the
                    // schedule's, or the end of a throttling pause if that comes first.
                    if let Some(reason) = self.blocked() {
                        delay = self.after_the_pause();
                        self.set_next(Some(delay));
                        let _ = w.send(self.fallback(reason));
                        continue;
                    }
                    waiters.push(w);
                }
                () = self.wake.notified() => {
                    // A hint while parked waits for the schedule; one while throttled, for the
                    // end of the pause (a notified mailbox's schedule is the distant backstop:
                    // dropping the hint would hold its mail that long).
                    if self.blocked().is_some() {
                        delay = self.after_the_pause();
                        continue;
                    }
                }
                Ok(()) = self.config.changed() => {
                    let config = self.config.borrow_and_update().clone();
                    tracing::info!(event = "mailbox_reconfigured", mailbox = %config.address);
                    self.watcher.reconfigure(config);
                }
            }
            delay = self.sync_boxed(waiters).await;
            // Requests that arrived during the sync: one follow-up for all of them (R39).
            while !self.stop.is_cancelled() {
                let mut pending = Vec::new();
                while let Ok(w) = self.sync_now.try_recv() {
                    pending.push(w);
                }
                if pending.is_empty() {
                    break;
                }
                // The sync just ended may have paused or parked the mailbox: the same answer
                // at once as a request that arrives while idle (R38).
                if let Some(reason) = self.blocked() {
                    self.set_next(Some(delay));
                    for w in pending {
                        let _ = w.send(self.fallback(reason.clone()));
                    }
                    break;
                }
                delay = self.sync_boxed(pending).await;
            }
        }
    }

    /// [`Self::sync`] on the heap, once one of the [`PASSES_AT_ONCE`] permits is free: a pass's
    /// state machine is large, and ten thousand idle mailbox tasks should not each carry one
    /// while they sleep.
    async fn sync_boxed(&mut self, waiters: Vec<Waiter>) -> Duration {
        let urgent = !waiters.is_empty() || self.hints.take_urgent(self.watcher.address());
        // Stopping while queued: no pass; the waiters hear that the agent shuts down.
        let Some(_pass) = self.permit(urgent).await else {
            return Duration::ZERO;
        };
        Box::pin(self.sync(waiters)).await
    }

    /// A pass's permit, from the urgent permits or, in turn, from the scheduled ones; a
    /// notification while queued for a scheduled one moves the pass to the urgent ones (the
    /// pass starts after the notification, so it serves that wake too). `None` at a stop.
    async fn permit(&self, mut urgent: bool) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let address = self.watcher.address();
        loop {
            let pool = if urgent {
                &self.urgent_passes
            } else {
                &self.passes
            };
            tokio::select! {
                permit = pool.clone().acquire_owned() => return permit.ok(),
                () = self.stop.cancelled() => return None,
                () = self.wake.notified(), if !urgent => urgent = self.hints.take_urgent(address),
            }
        }
    }

    /// One pass; answers the track-now waiters; returns the delay until the next one.
    async fn sync(&mut self, waiters: Vec<Waiter>) -> Duration {
        self.update(|s| {
            let now = Timestamp::now();
            s.syncing = true;
            s.cycle_secs = s
                .last_sync_started
                .and_then(|last| u64::try_from(now.duration_since(last).as_secs()).ok());
            s.last_sync_started = Some(now);
        });
        let started = std::time::Instant::now();
        if self.hints.take_tree_changed(self.watcher.address()) {
            self.watcher.mark_tree_stale();
        }
        let result = self.watcher.sync(&|_| {}).await;
        crate::telemetry::metrics().observe(
            "foldertrack_sync_seconds",
            &[("result", if result.is_ok() { "ok" } else { "failed" })],
            started.elapsed().as_secs_f64(),
        );
        let (delay, answer, why) = match result {
            Ok(report) => self.succeeded(&report, started),
            Err(e) => self.failed(&e),
        };
        let health = self.health.clone();
        let interval = self.cadence.interval().as_secs();
        let tier = self.cadence.tier();
        self.update(|s| {
            s.syncing = false;
            s.last_sync_finished = Some(Timestamp::now());
            s.syncs += 1;
            s.health = health;
            s.interval_secs = interval;
            s.cadence = tier.into();
            s.next_why = why;
        });
        for w in waiters {
            let _ = w.send(answer.clone());
        }
        delay
    }

    /// After a good pass: health restored, the cadence told what it found; the delay, the
    /// answer and why the next sync comes then.
    fn succeeded(
        &mut self,
        report: &PassReport,
        started: std::time::Instant,
    ) -> (Duration, SyncNow, String) {
        self.health.on_success();
        let tracked = report.emitted.len();
        crate::telemetry::metrics().count(
            "foldertrack_tracking_requests_total",
            &[("outcome", "emitted")],
            tracked as u64,
        );
        if tracked > 0 {
            self.outbox.notify_one();
        }
        let outcome = if report.changes == 0 {
            Outcome::Idle
        } else {
            Outcome::Tracked(tracked)
        };
        tracing::info!(event = "sync_finished", mailbox = %self.watcher.address(), changes = report.changes, tracked, ms = started.elapsed().as_millis() as u64);
        self.record(report);
        let address = self.watcher.address();
        (self.hints).set_folders(address, report.watched.clone(), report.tree.clone());
        let cadence = self
            .cadence
            .next_delay(outcome, fastrand::f64() * 2.0 - 1.0);
        let mut delay = notify::poll_delay(
            cadence,
            &self.hints.delivery(address),
            self.hints.backstop(),
        );
        let why = if report.unfinished > 0 {
            // A folder stopped at its page bound with more waiting: go on soon.
            delay = delay.min(UNFINISHED_PAUSE);
            "a folder has more changes waiting: going on at once".to_owned()
        } else if delay > cadence {
            "notifications wake it when mail arrives: polled only as a backstop".to_owned()
        } else if tracked > 0 {
            format!(
                "the last sync found {tracked} tracking request(s): the interval shrinks toward the busy one"
            )
        } else {
            "the last sync found nothing to track: the interval stretches toward the quiet one"
                .to_owned()
        };
        (delay, SyncNow::Done { tracked }, why)
    }

    /// After a failed pass: health decides the retry (R29, R31); the caller hears the fallback.
    fn failed(&mut self, e: &super::mailbox::Error) -> (Duration, SyncNow, String) {
        let address = self.watcher.address().to_owned();
        let error = e.to_string();
        let action = e.action();
        let failure = match action {
            Action::DisableMailbox => Failure::Permanent {
                error: error.clone(),
                fix: super::health::PERMANENT_FIX.into(),
            },
            Action::RetryAfter(d) => Failure::Transient {
                error: error.clone(),
                hint: Some(d),
            },
            _ => Failure::Transient {
                error: error.clone(),
                hint: None,
            },
        };
        let was = self.health.label();
        let delay = self
            .health
            .on_failure(failure, &self.policy, fastrand::f64() * 2.0 - 1.0);
        if self.health.label() != was {
            tracing::warn!(event = "mailbox_health", mailbox = %address, health = self.health.label(), error = %error);
        } else {
            tracing::warn!(event = "sync_failed", mailbox = %address, error = %error, retry_in_secs = delay.as_secs());
        }
        // Keep the cadence's memory of recent activity; failures do not speed it up.
        let _ = self.cadence.next_delay(
            match action {
                Action::RetryAfter(d) => Outcome::Throttled(d),
                _ => Outcome::Failed,
            },
            0.0,
        );
        self.update(|s| s.failed_syncs += 1);
        let next = Timestamp::now().checked_add(delay).ok();
        let why = format!(
            "{}; the mailbox is {}",
            match action {
                Action::RetryAfter(_) => "Exchange asked for a pause (throttling)",
                _ => "the last sync failed",
            },
            self.health.label()
        );
        (
            delay,
            SyncNow::Fallback {
                reason: error,
                next_sync: next,
            },
            why,
        )
    }

    fn record(&self, report: &PassReport) {
        self.update(|s| {
            s.tracked += report.emitted.len() as u64;
            s.not_watched = report
                .not_watched
                .iter()
                .map(|(m, state)| (m.clone(), format!("{state:?}")))
                .collect();
        });
    }

    /// Why a track-now cannot run now, if it cannot: the mailbox is not active, or Exchange
    /// asked for a pause longer than track-now's promise.
    fn blocked(&self) -> Option<String> {
        if !self.health.is_active() {
            return Some(format!("the mailbox is {}", self.health.label()));
        }
        self.feed
            .paused_for(self.watcher.address())
            .filter(|d| *d > Duration::from_secs(1))
            .map(|d| {
                format!(
                    "Exchange asked for a pause of {} s (throttling)",
                    d.as_secs().max(1)
                )
            })
    }

    fn fallback(&self, reason: String) -> SyncNow {
        SyncNow::Fallback {
            reason,
            next_sync: self.status.lock().expect("unpoisoned").next_sync,
        }
    }

    /// The delay until the next sync for mail seen while blocked: the end of a throttling
    /// pause when that comes before the schedule (an active mailbox only), else the schedule.
    fn after_the_pause(&self) -> Duration {
        let scheduled = self.remaining();
        if !self.health.is_active() {
            return scheduled;
        }
        self.feed
            .paused_for(self.watcher.address())
            .map_or(scheduled, |pause| scheduled.min(pause))
    }

    /// Time left until the scheduled sync.
    fn remaining(&self) -> Duration {
        let next = self.status.lock().expect("unpoisoned").next_sync;
        next.and_then(|n| n.duration_since(Timestamp::now()).try_into().ok())
            .unwrap_or(Duration::ZERO)
    }

    fn set_next(&self, delay: Option<Duration>) {
        let next = delay.and_then(|d| Timestamp::now().checked_add(d).ok());
        self.update(|s| s.next_sync = next);
    }

    fn update(&self, f: impl FnOnce(&mut MailboxStatus)) {
        f(&mut self.status.lock().expect("unpoisoned"));
    }
}
