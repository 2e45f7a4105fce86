//! The notifier (R40): streaming subscriptions on each mailbox's watched folders, grouped onto
//! at most `hanging_connection_limit` GetStreamingEvents connections of up to 200
//! subscriptions, each group pinned to its anchor's server; pull subscriptions, read with
//! GetEvents every `pull_interval_secs`, with `mode = "pull"` or for a mailbox whose server
//! does not stream. An event only wakes the mailbox's normal sync pass ([`Hints::wake`]);
//! nothing is tracked from it. The decisions are the pure functions of [`super::notify`]; this
//! is their I/O.

use super::notify::{self, Delivery, Hints, NotifySettings, Refusal};
use crate::client::{Affinity, Outcome};
use crate::ews::Mailbox;
use crate::ews::subscribe::Mode;
use crate::feed::ews_notifications::{Change, EventStream, EwsNotifications, StreamEvent};
use crate::store::Store;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A connection without a byte for this long is dead: Exchange sends a keep-alive about every
/// 45 s (the EWS Managed API gives up after two missed ones).
const SILENCE: Duration = Duration::from_secs(90);

/// How long the watched folders must stay unchanged before the groups are redrawn, and the
/// longest wait for that.
const SETTLE: Duration = Duration::from_millis(300);
const SETTLE_AT_MOST: Duration = Duration::from_secs(3);

/// How often a group with nothing to stream or pull looks again.
const IDLE_LOOK: Duration = Duration::from_secs(60);

/// How long a clean stop waits for the agent's subscriptions to be ended; what is left then is
/// ended at the next start.
const UNSUBSCRIBE_AT_STOP: Duration = Duration::from_secs(5);

/// Where the ids of the subscriptions the agent holds are kept across runs: the store.
pub trait Ledger: Send + Sync + 'static {
    /// The subscriptions held, as (mailbox, id).
    fn held(&self) -> Vec<(String, String)>;
    fn note(&self, mailbox: &str, id: &str, held: bool);
}

impl<S: Store> Ledger for S {
    fn held(&self) -> Vec<(String, String)> {
        self.subscriptions().unwrap_or_else(|e| {
            tracing::warn!(event = "subscriptions_unreadable", error = %e);
            Vec::new()
        })
    }

    fn note(&self, mailbox: &str, id: &str, held: bool) {
        if let Err(e) = self.note_subscription(mailbox, id, held) {
            tracing::warn!(event = "subscription_unnoted", mailbox, error = %e);
        }
    }
}

/// Ends subscriptions in the background (a lapsed one is fine), and forgets each the server
/// answered for; the ones it did not are tried again at the next start.
#[derive(Clone)]
struct Retirer {
    ews: EwsNotifications,
    ledger: Arc<dyn Ledger>,
    tasks: TaskTracker,
}

impl Retirer {
    fn retire(&self, old: Vec<(String, String)>) {
        if old.is_empty() {
            return;
        }
        let (ews, ledger) = (self.ews.clone(), self.ledger.clone());
        self.tasks.spawn(async move {
            for (mailbox, id) in old {
                if ews.unsubscribe(&mailbox, &id).await.is_ok() {
                    ledger.note(&mailbox, &id, false);
                }
            }
        });
    }
}

/// The response code a failed call carries, if it carries one.
fn code_of(e: &crate::feed::Error) -> Option<String> {
    match e {
        crate::feed::Error::Refused { code, .. } => Some(code.as_str().to_owned()),
        crate::feed::Error::Call(c) => match c.outcome() {
            Some(Outcome::Code { code, .. }) => Some(code.as_str().to_owned()),
            _ => None,
        },
        _ => None,
    }
}

/// What a failed call means for the notifier.
fn refusal_of(e: &crate::feed::Error) -> Refusal {
    code_of(e).map_or(Refusal::Retry, |c| notify::refusal(&c))
}

/// Runs until `stop`: ends the subscriptions an earlier run left, regroups the mailboxes
/// whenever the set of mailboxes changes, one task per group, and at the stop ends the
/// subscriptions it made (waiting `UNSUBSCRIBE_AT_STOP` at most).
pub async fn run(
    ews: EwsNotifications,
    hints: Arc<Hints>,
    settings: NotifySettings,
    ledger: Arc<dyn Ledger>,
    stop: CancellationToken,
) {
    let retirer = Retirer {
        ews,
        ledger: ledger.clone(),
        tasks: TaskTracker::new(),
    };
    retirer.retire(ledger.held());
    let mut current: Option<Vec<Vec<String>>> = None;
    let mut membership = None;
    let mut tasks = JoinSet::new();
    let mut epoch = stop.child_token();
    loop {
        let changed = hints.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        // A change of folders alone is the groups' business; the groups themselves change
        // only when mailboxes come or go.
        let now = hints.membership();
        if membership != Some(now) {
            membership = Some(now);
            let mailboxes = hints.mailboxes();
            let total = mailboxes.len();
            let (groups, rest) = notify::groups(mailboxes, settings.most_connections());
            for m in &rest {
                hints.set_delivery(
                    m,
                    Delivery::Polled {
                        reason: format!(
                            "no streaming connection free: notifications.hanging_connection_limit = {} connections serve {} of {total} mailboxes",
                            settings.connections,
                            notify::GROUP_SIZE * settings.connections
                        ),
                    },
                );
            }
            if current.as_ref() != Some(&groups) {
                epoch.cancel();
                while tasks.join_next().await.is_some() {}
                epoch = stop.child_token();
                for members in &groups {
                    let group =
                        Group::new(members.clone(), retirer.clone(), hints.clone(), settings);
                    tasks.spawn(group.run(epoch.clone()));
                }
                current = Some(groups);
            }
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = changed => settle(&hints, &stop).await,
        }
    }
    while tasks.join_next().await.is_some() {}
    retirer.tasks.close();
    let _ = tokio::time::timeout(UNSUBSCRIBE_AT_STOP, retirer.tasks.wait()).await;
}

/// Waits until the set of mailboxes and folders has been still for [`SETTLE`] (at most
/// [`SETTLE_AT_MOST`]): at start a thousand first syncs report their folders one by one, and
/// regrouping after each would replace every connection and subscription each time.
async fn settle(hints: &Hints, stop: &CancellationToken) {
    let give_up = Instant::now() + SETTLE_AT_MOST;
    loop {
        let changed = hints.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep_until(give_up) => return,
            _ = tokio::time::sleep(SETTLE) => return,
            _ = changed => {}
        }
    }
}

/// A pull subscription: its id, where its next read starts, the folders it covers.
struct Pull {
    id: String,
    watermark: String,
    folders: Vec<String>,
}

/// One connection's mailboxes and their subscriptions.
struct Group {
    members: Vec<String>,
    ews: EwsNotifications,
    retirer: Retirer,
    hints: Arc<Hints>,
    settings: NotifySettings,
    affinity: Affinity,
    /// Mailbox → (streaming subscription id, the folders it covers).
    subs: HashMap<String, (String, Vec<String>)>,
    /// Mailbox → its pull subscription.
    pulls: HashMap<String, Pull>,
    /// Mailboxes whose server will not stream, with what it said: they are pulled.
    unstreamable: HashMap<String, String>,
    /// When the pull subscriptions are read next.
    next_pull: Instant,
    /// Mailboxes not to subscribe before the instant (`None`: not again).
    held: HashMap<String, Option<Instant>>,
    failures: u32,
    /// [`Hints::version`] when the members' folders were last read.
    subscribed_at: u64,
    /// Look at every member at the next subscribing, not just those changed since
    /// `subscribed_at` (at first, and after the subscriptions were lost).
    rescan: bool,
    /// The last connection was left with events possibly in flight: wake every member once
    /// the next one is open.
    catch_up: bool,
}

/// Why a connection ended.
enum Ended {
    /// The server closed it at its timeout, after everything it had: reopen now.
    Closed,
    /// We left it (renewal before the server's timeout, or the folders to watch changed):
    /// reopen now, and sync its mailboxes once the new one is open, since an event the server
    /// had already written to the old connection is lost with it.
    Left,
    /// Its subscriptions were lost or refused: subscribe again after a pause.
    Broken(String),
    /// The connection broke (network, silence): reopen it on the same subscriptions after a
    /// pause, and sync its mailboxes once it is open; should the subscriptions be gone, the
    /// server says so then.
    Dropped(String),
    Stopped,
}

impl Group {
    fn new(
        members: Vec<String>,
        retirer: Retirer,
        hints: Arc<Hints>,
        settings: NotifySettings,
    ) -> Self {
        let anchor = Mailbox(members.first().cloned().unwrap_or_default());
        Self {
            members,
            ews: retirer.ews.clone(),
            retirer,
            hints,
            settings,
            affinity: Affinity {
                anchor,
                cookie: None,
            },
            subs: HashMap::new(),
            pulls: HashMap::new(),
            unstreamable: HashMap::new(),
            next_pull: Instant::now(),
            held: HashMap::new(),
            failures: 0,
            subscribed_at: 0,
            rescan: true,
            catch_up: false,
        }
    }

    async fn run(mut self, stop: CancellationToken) {
        let hints = self.hints.clone();
        loop {
            let changed = hints.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            self.subscribe_members().await;
            let ids: Vec<String> = self.subs.values().map(|(id, _)| id.clone()).collect();
            if ids.is_empty() {
                // Nothing to stream: read the pull subscriptions when due, or look again later.
                let next = if self.pulls.is_empty() {
                    Instant::now() + IDLE_LOOK
                } else {
                    self.next_pull
                };
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = changed => {}
                    _ = tokio::time::sleep_until(next) => self.pull_all().await,
                }
                continue;
            }
            let minutes = self.settings.connection_minutes;
            let ended = match self.ews.open(&ids, &self.affinity, minutes).await {
                Ok(stream) => {
                    if std::mem::take(&mut self.catch_up) {
                        for m in self.subs.keys() {
                            hints.wake(m);
                        }
                    }
                    self.listen(stream, &stop).await
                }
                Err(e) => self.refused(&e),
            };
            match ended {
                Ended::Stopped => break,
                Ended::Closed => {}
                Ended::Left => self.catch_up = true,
                Ended::Broken(reason) => {
                    self.lose_all(&reason);
                    if self.pause_after(&reason, &stop).await {
                        break;
                    }
                }
                Ended::Dropped(reason) => {
                    self.drop_all(&reason);
                    if self.pause_after(&reason, &stop).await {
                        break;
                    }
                }
            }
        }
        let mut old: Vec<(String, String)> =
            self.subs.drain().map(|(m, (id, _))| (m, id)).collect();
        old.extend(self.pulls.drain().map(|(m, p)| (m, p.id)));
        self.retire(old);
    }

    /// Waits the reconnect delay after a failure; true when stopped meanwhile.
    async fn pause_after(&mut self, reason: &str, stop: &CancellationToken) -> bool {
        self.failures += 1;
        let pause = notify::reconnect_delay(self.failures, fastrand::f64() * 2.0 - 1.0);
        tracing::warn!(event = "notifications_broken", anchor = %self.affinity.anchor, reason, retry_in_ms = pause.as_millis() as u64);
        tokio::select! {
            _ = stop.cancelled() => true,
            _ = tokio::time::sleep(pause) => false,
        }
    }

    /// Subscribes every member whose folders are known and not yet (or differently)
    /// subscribed, and not held back; each new subscription wakes its mailbox once, so what
    /// happened before it existed is synced.
    async fn subscribe_members(&mut self) {
        let (version, changed) = self.hints.changes_since(self.subscribed_at);
        self.subscribed_at = version;
        let look_at = match changed.filter(|_| !std::mem::take(&mut self.rescan)) {
            // Those changed since, and those held back (their hold may be over).
            Some(changed) => {
                let mut look_at = self.members_among(changed);
                look_at.extend(self.held.keys().cloned());
                look_at.sort();
                look_at.dedup();
                look_at
            }
            None => self.members.clone(),
        };
        let folders = self.hints.subscribed_of(&look_at);
        let now = Instant::now();
        let mut retired = Vec::new();
        for m in look_at {
            let want = folders.get(&m).cloned().unwrap_or_default();
            if self.covered(&m) == Some(&want) {
                continue;
            }
            if let Some((id, _)) = self.subs.remove(&m) {
                retired.push((m.clone(), id));
            }
            if let Some(p) = self.pulls.remove(&m) {
                retired.push((m.clone(), p.id));
            }
            if want.is_empty() || self.held.get(&m).is_some_and(|h| h.is_none_or(|t| now < t)) {
                continue;
            }
            self.subscribe(&m, want).await;
        }
        self.retire(retired);
    }

    /// The folders a member's subscription covers, if it has one.
    fn covered(&self, mailbox: &str) -> Option<&Vec<String>> {
        match self.subs.get(mailbox) {
            Some((_, folders)) => Some(folders),
            None => self.pulls.get(mailbox).map(|p| &p.folders),
        }
    }

    /// Subscribes a member, by streaming unless its server will not stream (or `mode =
    /// "pull"`); a server that turns streaming down is asked for a pull subscription at once.
    /// The new subscription wakes the mailbox, so what happened before it existed is synced.
    async fn subscribe(&mut self, mailbox: &str, folders: Vec<String>) {
        loop {
            let pull = self.settings.pull_only || self.unstreamable.contains_key(mailbox);
            let mode = if pull {
                Mode::Pull {
                    watermark: None,
                    timeout_minutes: notify::pull_timeout_minutes(self.settings.pull_every),
                }
            } else {
                Mode::Streaming
            };
            let e = match self
                .ews
                .subscribe(mailbox, &folders, &self.affinity, mode)
                .await
            {
                Ok(s) => {
                    self.retirer.ledger.note(mailbox, &s.id, true);
                    if s.cookie.is_some() {
                        self.affinity.cookie = s.cookie;
                    }
                    self.held.remove(mailbox);
                    match s.watermark.filter(|_| pull) {
                        Some(watermark) => {
                            self.hints.set_delivery(mailbox, self.pulled(mailbox));
                            let p = Pull {
                                id: s.id,
                                watermark,
                                folders,
                            };
                            self.pulls.insert(mailbox.to_owned(), p);
                        }
                        None => {
                            self.subs.insert(mailbox.to_owned(), (s.id, folders));
                        }
                    }
                    self.hints.wake(mailbox);
                    return;
                }
                Err(e) => e,
            };
            match code_of(&e).filter(|c| !pull && notify::streaming_unoffered(c)) {
                Some(code) => {
                    tracing::info!(
                        event = "streaming_unoffered",
                        mailbox,
                        code,
                        "pulled instead"
                    );
                    self.unstreamable
                        .insert(mailbox.to_owned(), unoffered_reason(&code));
                }
                None => return self.subscribe_failed(mailbox, &e),
            }
        }
    }

    /// The delivery of a pulled member: why it is not streamed, if it could have been.
    fn pulled(&self, mailbox: &str) -> Delivery {
        Delivery::Pulled {
            every_secs: self.settings.pull_every.as_secs(),
            reason: self.unstreamable.get(mailbox).cloned().unwrap_or_default(),
        }
    }

    /// Reads every pull subscription's events (again at once while the server has more), and
    /// wakes the mailboxes that saw changes. A subscription the server lost is made again,
    /// which wakes its mailbox to sync what it missed.
    async fn pull_all(&mut self) {
        self.next_pull = Instant::now() + self.settings.pull_every;
        let members: Vec<String> = self.pulls.keys().cloned().collect();
        for m in members {
            while let Some(p) = self.pulls.get_mut(&m) {
                match self.ews.pull(&m, &p.id, &p.watermark, &self.affinity).await {
                    Ok(read) => {
                        p.watermark = read.watermark;
                        hint(&self.hints, &m, &read.changes);
                        if !read.more {
                            break;
                        }
                    }
                    Err(e) => {
                        self.pull_failed(&m, &e).await;
                        break;
                    }
                }
            }
        }
    }

    async fn pull_failed(&mut self, mailbox: &str, e: &crate::feed::Error) {
        tracing::warn!(event = "pull_failed", mailbox, error = %e);
        match refusal_of(e) {
            // Busy or unreachable: the next read tries again, within the subscription's timeout.
            Refusal::Retry => {}
            Refusal::Resubscribe => {
                if let Some(p) = self.pulls.remove(mailbox) {
                    self.retirer.ledger.note(mailbox, &p.id, false);
                    self.subscribe(mailbox, p.folders).await;
                }
            }
            Refusal::Poll { reason, retry } => {
                if let Some(p) = self.pulls.remove(mailbox) {
                    self.retire(vec![(mailbox.to_owned(), p.id)]);
                }
                self.held
                    .insert(mailbox.to_owned(), retry.map(|d| Instant::now() + d));
                self.hints
                    .set_delivery(mailbox, Delivery::Polled { reason });
            }
        }
    }

    fn subscribe_failed(&mut self, mailbox: &str, e: &crate::feed::Error) {
        let (reason, hold) = match refusal_of(e) {
            Refusal::Poll { reason, retry } => (reason, retry),
            Refusal::Retry | Refusal::Resubscribe => {
                let pause = notify::reconnect_delay(self.failures + 1, fastrand::f64() * 2.0 - 1.0);
                (
                    format!("subscribing failed ({e}); trying again"),
                    Some(pause),
                )
            }
        };
        tracing::warn!(event = "subscribe_failed", mailbox, error = %e);
        self.held
            .insert(mailbox.to_owned(), hold.map(|d| Instant::now() + d));
        self.hints
            .set_delivery(mailbox, Delivery::Polled { reason });
    }

    /// A connection that could not be opened. A server that does not stream has its members
    /// pulled instead, subscribed again at once.
    fn refused(&mut self, e: &crate::feed::Error) -> Ended {
        if let Some(code) = code_of(e).filter(|c| notify::streaming_unoffered(c)) {
            return self.unstreamed(&code);
        }
        let broken = format!("the streaming connection failed ({e})");
        self.ended_by(refusal_of(e), broken)
    }

    /// The server said it does not stream (`code`): the connection's members are pulled from
    /// now on, subscribed again at once.
    fn unstreamed(&mut self, code: &str) -> Ended {
        let reason = unoffered_reason(code);
        for m in self.subs.keys() {
            self.unstreamable.insert(m.clone(), reason.clone());
        }
        self.lose_all(&reason);
        Ended::Closed
    }

    /// A refusal's end of the connection: a server that will not stream for these mailboxes
    /// (for now) holds them back, polled for the reason it gave; anything else is `broken`.
    fn ended_by(&mut self, refusal: Refusal, broken: String) -> Ended {
        match refusal {
            Refusal::Poll { reason, retry } => {
                let until = retry.map(|d| Instant::now() + d);
                for m in self.subs.keys() {
                    self.held.insert(m.clone(), until);
                }
                Ended::Broken(reason)
            }
            Refusal::Resubscribe | Refusal::Retry => Ended::Broken(broken),
        }
    }

    /// Reads the connection until it ends; every change wakes its mailbox.
    async fn listen(&mut self, mut stream: EventStream, stop: &CancellationToken) -> Ended {
        let by_id: HashMap<String, String> = self
            .subs
            .iter()
            .map(|(m, (id, _))| (id.clone(), m.clone()))
            .collect();
        for m in self.subs.keys() {
            self.hints.set_delivery(m, Delivery::Notified);
        }
        let renew_at = Instant::now() + notify::renewal(self.settings.connection_minutes);
        let hints = self.hints.clone();
        let mut seen = self.subscribed_at;
        loop {
            let changed = hints.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            // Checked after enabling the wait, so a change in between is not missed.
            if hints.version() != seen {
                let differs;
                (seen, differs) = self.folders_changed(seen);
                if differs {
                    return Ended::Left;
                }
            }
            let next = tokio::select! {
                _ = stop.cancelled() => return Ended::Stopped,
                _ = tokio::time::sleep_until(renew_at) => return Ended::Left,
                _ = changed => continue,
                _ = tokio::time::sleep_until(self.next_pull), if !self.pulls.is_empty() => {
                    self.pull_all().await;
                    continue;
                }
                next = tokio::time::timeout(SILENCE, stream.next()) => next,
            };
            match next {
                Ok(Ok(Some(StreamEvent::Changed(changes)))) => {
                    self.failures = 0;
                    let mut by_mailbox: HashMap<&str, Vec<Change>> = HashMap::new();
                    for c in changes {
                        if let Some(m) = by_id.get(&c.subscription) {
                            by_mailbox.entry(m).or_default().push(c);
                        }
                    }
                    for (m, changes) in by_mailbox {
                        hint(&self.hints, m, &changes);
                    }
                }
                Ok(Ok(Some(StreamEvent::Alive))) => self.failures = 0,
                Ok(Ok(Some(StreamEvent::Closed))) => return Ended::Closed,
                Ok(Ok(Some(StreamEvent::Lost(code)))) => {
                    if notify::streaming_unoffered(code.as_str()) {
                        return self.unstreamed(code.as_str());
                    }
                    let broken = format!("Exchange dropped the subscriptions ({code:?})");
                    return self.ended_by(notify::refusal(code.as_str()), broken);
                }
                Ok(Ok(None)) => return Ended::Dropped("the streaming connection ended".into()),
                Ok(Err(e)) => {
                    return Ended::Dropped(format!("the streaming connection broke ({e})"));
                }
                Err(_) => {
                    return Ended::Dropped(format!(
                        "the streaming connection was silent for {} s",
                        SILENCE.as_secs()
                    ));
                }
            }
        }
    }

    /// The members among `mailboxes`. A group's members are a slice of the sorted mailboxes.
    fn members_among(&self, mailboxes: Vec<String>) -> Vec<String> {
        (mailboxes.into_iter())
            .filter(|m| self.members.binary_search(m).is_ok())
            .collect()
    }

    /// Whether the watched folders of a member changed since version `since` differ from what
    /// its subscription covers; returns the version now too.
    fn folders_changed(&self, since: u64) -> (u64, bool) {
        let (version, changed) = self.hints.changes_since(since);
        let look_at = match changed {
            Some(changed) => self.members_among(changed),
            None => self.members.clone(),
        };
        if look_at.is_empty() {
            return (version, false);
        }
        let folders = self.hints.subscribed_of(&look_at);
        let none = Vec::new();
        let differs = look_at.iter().any(|m| {
            let want = folders.get(m).unwrap_or(&none);
            self.covered(m).unwrap_or(&none) != want
        });
        (version, differs)
    }

    /// After a broken connection or lost subscriptions: every subscription is replaced (what
    /// the old ones missed is synced when the new ones wake their mailboxes), and until then
    /// the mailboxes are polled, visibly.
    fn lose_all(&mut self, reason: &str) {
        let old: Vec<(String, String)> = self.subs.drain().map(|(m, (id, _))| (m, id)).collect();
        self.rescan = true;
        for (m, _) in &old {
            self.hints.set_delivery(
                m,
                Delivery::Polled {
                    reason: format!("{reason}; subscribing again"),
                },
            );
        }
        for (m, until) in &self.held {
            if until.is_none() {
                self.hints.set_delivery(
                    m,
                    Delivery::Polled {
                        reason: reason.to_owned(),
                    },
                );
            }
        }
        self.retire(old);
    }

    /// After a broken connection: the subscriptions stay (the next connection names them
    /// again), the mailboxes are polled until it is open and synced once it is.
    fn drop_all(&mut self, reason: &str) {
        self.catch_up = true;
        for m in self.subs.keys() {
            self.hints.set_delivery(
                m,
                Delivery::Polled {
                    reason: format!("{reason}; reconnecting"),
                },
            );
        }
    }

    /// Ends subscriptions no longer used, so they do not count against the mailbox's
    /// EWSMaxSubscriptions until they lapse.
    fn retire(&self, old: Vec<(String, String)>) {
        self.retirer.retire(old);
    }
}

/// Passes the events one read of `mailbox`'s subscription brought on as one hint.
fn hint(hints: &Hints, mailbox: &str, changes: &[Change]) {
    let events = changes
        .iter()
        .map(|c| (c.kind, c.folder.as_deref(), c.parent.as_deref()));
    hints.hint(mailbox, events);
}

/// Why a mailbox is pulled rather than streamed.
fn unoffered_reason(code: &str) -> String {
    format!("Exchange does not offer streaming notifications here ({code})")
}
