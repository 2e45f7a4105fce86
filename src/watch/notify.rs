//! Notifications as hints (R40): the pure decisions of the notifier — which mailboxes share a
//! streaming connection, how long to wait before reconnecting, what a server's refusal means
//! for a mailbox, how long a notified mailbox sleeps between backstop syncs — and [`Hints`],
//! where the notifier and the mailbox tasks meet: the folders each mailbox watches, the wake
//! that starts its normal sync pass, and whether it is notified or polled, and why.

use crate::ews::notification::EventKind;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// The most subscriptions one streaming connection serves (an affinity group, ews-protocol
/// §1.4).
pub const GROUP_SIZE: usize = 200;

/// How many of the latest changes [`Hints`] keeps for [`Hints::changes_since`]; a group that
/// fell further behind looks at all its members.
const RECENT_CHANGES: usize = 4096;

/// How the notifier runs; from `[notifications]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotifySettings {
    pub enabled: bool,
    /// Pull subscriptions for every mailbox (`mode = "pull"`); otherwise streaming, with pull
    /// for a mailbox whose server will not stream.
    pub pull_only: bool,
    /// How often a pull subscription's events are read.
    pub pull_every: Duration,
    /// The interval of a notified mailbox's backstop syncs.
    pub backstop: Duration,
    /// Streaming connections one budget may hold open (HangingConnectionLimit).
    pub connections: usize,
    /// Impersonated connections are charged to the mailbox they act as (each group's anchor),
    /// so one per group opens whatever their number; else all are the service account's.
    pub charged_to_anchor: bool,
    /// Minutes the server holds a connection open.
    pub connection_minutes: u32,
}

impl Default for NotifySettings {
    fn default() -> Self {
        Self {
            enabled: true,
            pull_only: false,
            pull_every: Duration::from_secs(30),
            backstop: Duration::from_secs(3_600),
            connections: 3,
            charged_to_anchor: true,
            connection_minutes: 30,
        }
    }
}

impl NotifySettings {
    /// The most connections the agent may open: unbounded when each is charged to its own
    /// anchor mailbox (one per group, within any limit of at least one).
    pub fn most_connections(&self) -> Option<usize> {
        (!self.charged_to_anchor && !self.pull_only).then_some(self.connections)
    }
}

/// Graph change notifications; from `[notifications]` with `api = "graph"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GraphNotifySettings {
    /// The public URL Graph posts to (notifications and lifecycle events alike).
    pub url: url::Url,
    /// Where the receiver listens.
    pub listen: std::net::SocketAddr,
    /// The lifetime asked for each subscription.
    pub lifetime: Duration,
}

/// Whether a mailbox's changes wake it at once, and if not, why.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Delivery {
    /// A streaming subscription (EWS) or change notifications (Graph) wake its sync within
    /// seconds; polling is the backstop.
    Notified,
    /// A pull subscription's events, read every `every_secs`, wake its sync; polling is the
    /// backstop. `reason`: why not streaming (empty when `mode = "pull"` asked for it).
    Pulled { every_secs: u64, reason: String },
    /// Synced on the adaptive cadence only.
    Polled { reason: String },
    /// Not subscribed yet (the first pass has not resolved its folders).
    #[default]
    Pending,
}

impl Delivery {
    /// Its name in `/metrics`.
    pub fn label(&self) -> &'static str {
        match self {
            Delivery::Notified => "notified",
            Delivery::Pulled { .. } => "pulled",
            Delivery::Polled { .. } => "polled",
            Delivery::Pending => "pending",
        }
    }

    /// One line for `status`.
    pub fn describe(&self) -> String {
        match self {
            Delivery::Notified => {
                "notified: changes wake its sync at once; polling is the backstop".into()
            }
            Delivery::Pulled { every_secs, reason } if reason.is_empty() => format!(
                "pulled every {every_secs} s: changes wake its sync within that; polling is the backstop"
            ),
            Delivery::Pulled { every_secs, reason } => format!(
                "pulled every {every_secs} s ({reason}): changes wake its sync within that; polling is the backstop"
            ),
            Delivery::Polled { reason } => format!("polled: {reason}"),
            Delivery::Pending => "notifications: subscribing after its first sync".into(),
        }
    }
}

/// Splits the mailboxes (sorted) into connection groups of at most [`GROUP_SIZE`], at most
/// `connections` of them when bounded; returns the groups (each one's anchor is its first
/// member) and the mailboxes left without a connection.
pub fn groups(
    mut mailboxes: Vec<String>,
    connections: Option<usize>,
) -> (Vec<Vec<String>>, Vec<String>) {
    mailboxes.sort();
    let capacity = connections.map_or(usize::MAX, |c| GROUP_SIZE.saturating_mul(c));
    let rest = mailboxes.split_off(capacity.min(mailboxes.len()));
    let groups = mailboxes
        .chunks(GROUP_SIZE)
        .map(<[String]>::to_vec)
        .collect();
    (groups, rest)
}

/// When to renew a streaming connection ourselves, before the server's timeout of `minutes`:
/// a minute early (a tenth early for short ones), so no gap opens while the server closes it.
pub fn renewal(minutes: u32) -> Duration {
    let timeout = Duration::from_secs(u64::from(minutes) * 60);
    timeout - (timeout / 10).min(Duration::from_secs(60))
}

/// The idle timeout asked for a pull subscription read every `every`: three missed reads and
/// at least ten minutes, so a busy server's slow answers do not let it lapse, while one a
/// stopped agent leaves behind lapses soon.
pub fn pull_timeout_minutes(every: Duration) -> u32 {
    let minutes = (3 * every.as_secs()).div_ceil(60);
    u32::try_from(minutes).unwrap_or(u32::MAX).clamp(10, 1440)
}

/// The wait before reconnect attempt `failures` (1, 2, …): 1 s doubling to 5 minutes, ± 20 %
/// (`jitter_sample` uniform in [-1, 1]) so many connections do not come back at once.
pub fn reconnect_delay(failures: u32, jitter_sample: f64) -> Duration {
    const BASE: Duration = Duration::from_secs(1);
    const CAP: Duration = Duration::from_secs(300);
    let exp = failures.saturating_sub(1).min(16);
    let delay = BASE.saturating_mul(1 << exp).min(CAP);
    delay.mul_f64(1.0 + 0.2 * jitter_sample.clamp(-1.0, 1.0))
}

/// After a Graph subscription's renewal failed for the `failures`th time: the pause before
/// the next try, if it comes before the subscription expires in `left`; `None`: it lapses, and
/// the mailbox is polled until a new one is made.
pub fn renewal_retry(failures: u32, left: Duration, jitter_sample: f64) -> Option<Duration> {
    Some(reconnect_delay(failures, jitter_sample)).filter(|pause| *pause < left)
}

/// Whether a refusal of streaming says the server does not offer it, so a pull subscription
/// may still work (Exchange 2007 and 2010 before SP1 have pull only).
pub fn streaming_unoffered(code: &str) -> bool {
    matches!(
        code,
        "ErrorInvalidServerVersion" | "ErrorInvalidRequest" | "ErrorInvalidOperation"
    )
}

/// What a server's refusal of a subscription or connection means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The subscriptions are gone or events were missed: sync what they covered at once and
    /// subscribe again.
    Resubscribe,
    /// This server will not stream for the mailbox (version, policy): poll it; `retry` when
    /// to ask again, if ever.
    Poll {
        reason: String,
        retry: Option<Duration>,
    },
    /// Transient (busy, a dropped connection): back off and try again.
    Retry,
}

/// How long a mailbox Exchange refused more subscriptions for is polled before asking again.
pub const SUBSCRIPTION_COUNT_RETRY: Duration = Duration::from_secs(900);

/// The table of refusals (ews-protocol §3.6, §6.2), by response code name.
pub fn refusal(code: &str) -> Refusal {
    match code {
        "ErrorSubscriptionNotFound"
        | "ErrorExpiredSubscription"
        | "ErrorInvalidSubscription"
        | "ErrorMissedNotificationEvents"
        | "ErrorReadEventsFailed"
        | "ErrorEventNotFound"
        | "ErrorInvalidWatermark"
        | "ErrorNewEventStreamConnectionOpened" => Refusal::Resubscribe,
        "ErrorInvalidServerVersion" | "ErrorInvalidRequest" | "ErrorInvalidOperation" => {
            Refusal::Poll {
                reason: format!("Exchange does not offer streaming notifications here ({code})"),
                retry: None,
            }
        }
        "ErrorExceededConnectionCount" => Refusal::Poll {
            reason: format!(
                "Exchange refuses another streaming connection ({code}: HangingConnectionLimit reached; lower notifications.hanging_connection_limit to the server's, or raise the server's); asked again in {} min",
                SUBSCRIPTION_COUNT_RETRY.as_secs() / 60
            ),
            retry: Some(SUBSCRIPTION_COUNT_RETRY),
        },
        "ErrorExceededSubscriptionCount" => Refusal::Poll {
            reason: format!(
                "Exchange refuses more subscriptions on this mailbox ({code}: other applications hold its EWSMaxSubscriptions); asked again in {} min",
                SUBSCRIPTION_COUNT_RETRY.as_secs() / 60
            ),
            retry: Some(SUBSCRIPTION_COUNT_RETRY),
        },
        "ErrorSubscriptionAccessDenied" | "ErrorSubscriptionDelegateAccessNotSupported" => {
            Refusal::Poll {
                reason: format!("the service account may not subscribe to this mailbox ({code})"),
                retry: None,
            }
        }
        _ => Refusal::Retry,
    }
}

/// The delay until a mailbox's next sync: the cadence's while it is polled; the backstop
/// (never shorter than the cadence's) while notifications wake it.
pub fn poll_delay(cadence: Duration, delivery: &Delivery, backstop: Duration) -> Duration {
    match delivery {
        Delivery::Notified | Delivery::Pulled { .. } => cadence.max(backstop),
        Delivery::Polled { .. } | Delivery::Pending => cadence,
    }
}

/// What a notification event asks of its mailbox, from least to most.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Hint {
    /// Nothing: a mail in a folder subscribed only for its subfolders, or that folder's own
    /// counts.
    Ignore,
    /// Its normal sync pass.
    Sync,
    /// A sync pass that checks the folder tree first: a folder was created, moved, renamed or
    /// deleted where the mappings look.
    SyncTree,
}

/// The hint of one event about `folder` (a folder's event; `None`: a mail's) held by
/// `parent`, for a mailbox that watches `watched` and subscribes to `tree` for their
/// subfolders only. A watched folder's ModifiedEvent is its contents changing (a rename looks
/// the same, and is seen at the next tree check); anything unknown syncs.
pub fn hint(
    kind: EventKind,
    folder: Option<&str>,
    parent: Option<&str>,
    watched: &[String],
    tree: &[String],
) -> Hint {
    let has = |set: &[String], id: &str| set.iter().any(|f| f == id);
    match (kind, folder) {
        (EventKind::Status, _) => Hint::Ignore,
        (EventKind::Modified, Some(f)) if has(watched, f) => Hint::Sync,
        (EventKind::Modified, Some(f)) if has(tree, f) => Hint::Ignore,
        (_, Some(_)) => Hint::SyncTree,
        (_, None) if parent.is_some_and(|p| has(tree, p)) => Hint::Ignore,
        (_, None) => Hint::Sync,
    }
}

/// One mailbox's meeting point.
#[derive(Debug, Default)]
struct Slot {
    wake: Arc<Notify>,
    /// The folders its last pass watched (ids), sorted.
    folders: Vec<String>,
    /// The folders subscribed to for their subfolders only (ids), sorted.
    tree: Vec<String>,
    /// A notification said the folder tree changed: the next pass checks it.
    tree_changed: bool,
    /// A notification woke it: its next pass goes ahead of scheduled ones.
    urgent: bool,
    delivery: Delivery,
}

impl Slot {
    /// Starts its pass ahead of scheduled and catch-up passes.
    fn wake_urgently(&mut self) {
        self.urgent = true;
        self.wake.notify_one();
    }

    /// What an EWS subscription covers: the watched folders and those whose subfolders
    /// matter, sorted.
    fn covered(&self) -> Vec<String> {
        let mut all = [self.folders.as_slice(), self.tree.as_slice()].concat();
        all.sort();
        all
    }
}

/// Where the notifier and the mailbox tasks meet. Cheap to share.
#[derive(Debug)]
pub struct Hints {
    slots: Mutex<HashMap<String, Slot>>,
    /// Ticks when a mailbox's folders change or a mailbox comes or goes.
    pub changed: Notify,
    /// Counts those changes, so a change while nobody waited is not missed.
    version: std::sync::atomic::AtomicU64,
    /// The latest changes (version, mailbox), oldest first: a connection group looks at its
    /// members that changed rather than at all of them. Redrawing all 500 groups' members on
    /// each of 100,000 first syncs was most of the agent's CPU at the start (`--preset huge`).
    recent: Mutex<VecDeque<(u64, String)>>,
    /// Counts mailboxes made and removed: the groups are redrawn only when it moves.
    membership: std::sync::atomic::AtomicU64,
    /// Notifications are off for every mailbox, and why.
    off: Option<String>,
    backstop: Duration,
}

impl Default for Hints {
    fn default() -> Self {
        Self::new(NotifySettings::default().backstop)
    }
}

impl Hints {
    /// Hints for a notifier whose mailboxes sync every `backstop` while notified.
    pub fn new(backstop: Duration) -> Self {
        Self {
            slots: Mutex::default(),
            changed: Notify::new(),
            version: Default::default(),
            recent: Mutex::default(),
            membership: Default::default(),
            off: None,
            backstop,
        }
    }

    /// Hints with every mailbox polled for `reason` (notifications off, or Graph).
    pub fn off(reason: &str) -> Self {
        Self {
            off: Some(reason.to_owned()),
            ..Self::default()
        }
    }

    /// The interval of a notified mailbox's backstop syncs.
    pub fn backstop(&self) -> Duration {
        self.backstop
    }

    /// The wake of a mailbox (made on first use).
    pub fn wake_of(&self, mailbox: &str) -> Arc<Notify> {
        let mut slots = self.slots.lock().expect("unpoisoned");
        if !slots.contains_key(mailbox) {
            self.membership.fetch_add(1, SeqCst);
        }
        slots.entry(mailbox.to_owned()).or_default().wake.clone()
    }

    /// Starts a mailbox's normal sync pass (coalesced: many wakes before it runs are one).
    pub fn wake(&self, mailbox: &str) {
        if let Some(s) = self.slots.lock().expect("unpoisoned").get(mailbox) {
            s.wake.notify_one();
        }
    }

    /// Records the folders a pass watched, and those whose subfolders decide what its
    /// mappings watch; ticks `changed` when they differ. A mailbox removed meanwhile (its last
    /// pass ending) stays removed.
    pub fn set_folders(&self, mailbox: &str, mut folders: Vec<String>, mut tree: Vec<String>) {
        folders.sort();
        folders.dedup();
        tree.sort();
        tree.dedup();
        tree.retain(|f| folders.binary_search(f).is_err());
        let mut slots = self.slots.lock().expect("unpoisoned");
        let Some(slot) = slots.get_mut(mailbox) else {
            return;
        };
        if slot.folders != folders || slot.tree != tree {
            slot.folders = folders;
            slot.tree = tree;
            drop(slots);
            self.tick(mailbox);
        }
    }

    /// Acts on the events one read of a mailbox's subscription brought, as `(kind, folder,
    /// parent)` (see [`hint`]): one wake for all of them, so a move's several events start one
    /// pass, not one each.
    pub fn hint<'e>(
        &self,
        mailbox: &str,
        events: impl IntoIterator<Item = (EventKind, Option<&'e str>, Option<&'e str>)>,
    ) {
        let mut slots = self.slots.lock().expect("unpoisoned");
        let Some(s) = slots.get_mut(mailbox) else {
            return;
        };
        let most = (events.into_iter())
            .map(|(kind, folder, parent)| hint(kind, folder, parent, &s.folders, &s.tree))
            .max()
            .unwrap_or(Hint::Ignore);
        tracing::debug!(event = "hint", mailbox, hint = ?most);
        if most == Hint::SyncTree {
            s.tree_changed = true;
        }
        if most != Hint::Ignore {
            s.wake_urgently();
        }
    }

    /// Whether a notification said the mailbox's folder tree changed since the last call.
    pub fn take_tree_changed(&self, mailbox: &str) -> bool {
        self.take(mailbox, |s| &mut s.tree_changed)
    }

    /// Starts a mailbox's pass for a change a notification reported: ahead of scheduled and
    /// catch-up passes (see [`Hints::take_urgent`]).
    pub fn wake_for_change(&self, mailbox: &str) {
        if let Some(s) = self.slots.lock().expect("unpoisoned").get_mut(mailbox) {
            s.wake_urgently();
        }
    }

    /// Whether a notification woke the mailbox since the last call (the catch-up wakes of
    /// [`Hints::wake`] are not urgent).
    pub fn take_urgent(&self, mailbox: &str) -> bool {
        self.take(mailbox, |s| &mut s.urgent)
    }

    /// Reads and clears one of a mailbox's flags.
    fn take(&self, mailbox: &str, flag: impl FnOnce(&mut Slot) -> &mut bool) -> bool {
        let mut slots = self.slots.lock().expect("unpoisoned");
        slots
            .get_mut(mailbox)
            .is_some_and(|s| std::mem::take(flag(s)))
    }

    /// Forgets a mailbox removed from the config.
    pub fn remove(&self, mailbox: &str) {
        if self
            .slots
            .lock()
            .expect("unpoisoned")
            .remove(mailbox)
            .is_some()
        {
            self.membership.fetch_add(1, SeqCst);
        }
        self.tick(mailbox);
    }

    fn tick(&self, mailbox: &str) {
        {
            let mut recent = self.recent.lock().expect("unpoisoned");
            let version = self.version.fetch_add(1, SeqCst) + 1;
            if recent.len() == RECENT_CHANGES {
                recent.pop_front();
            }
            recent.push_back((version, mailbox.to_owned()));
        }
        self.changed.notify_waiters();
    }

    /// The number of changes to mailboxes and their folders so far.
    pub fn version(&self) -> u64 {
        self.version.load(SeqCst)
    }

    /// The number of mailboxes made or removed so far.
    pub fn membership(&self) -> u64 {
        self.membership.load(SeqCst)
    }

    /// The version now, and the mailboxes changed after version `since`; `None` when the
    /// changes kept no longer reach back that far (look at every mailbox then).
    pub fn changes_since(&self, since: u64) -> (u64, Option<Vec<String>>) {
        let recent = self.recent.lock().expect("unpoisoned");
        let version = self.version.load(SeqCst);
        let reaches = recent
            .front()
            .map_or(version == since, |(v, _)| *v <= since + 1);
        let changed = reaches.then(|| {
            let mut changed: Vec<String> = (recent.iter())
                .filter(|(v, _)| *v > since)
                .map(|(_, m)| m.clone())
                .collect();
            changed.sort();
            changed.dedup();
            changed
        });
        (version, changed)
    }

    /// Every mailbox with the folders it watches.
    pub fn folders(&self) -> HashMap<String, Vec<String>> {
        let slots = self.slots.lock().expect("unpoisoned");
        slots
            .iter()
            .map(|(m, s)| (m.clone(), s.folders.clone()))
            .collect()
    }

    /// Every mailbox it knows (names only: the notifier's top loop asks on every change).
    pub fn mailboxes(&self) -> Vec<String> {
        self.slots
            .lock()
            .expect("unpoisoned")
            .keys()
            .cloned()
            .collect()
    }

    /// The folders an EWS subscription covers for each of `mailboxes` it knows: those it
    /// watches and those whose subfolders matter (sorted). A connection group asks for its own
    /// members only: every first sync changes the hints, and 50 groups each copying all 10,000
    /// mailboxes' folders on every change held the enterprise preset's start for minutes.
    pub fn subscribed_of(&self, mailboxes: &[String]) -> HashMap<String, Vec<String>> {
        let slots = self.slots.lock().expect("unpoisoned");
        mailboxes
            .iter()
            .filter_map(|m| slots.get(m).map(|s| (m.clone(), s.covered())))
            .collect()
    }

    /// Says whether a mailbox is notified or polled. A mailbox that stops being notified is
    /// woken, so its long backstop sleep gives way to the cadence at once.
    pub fn set_delivery(&self, mailbox: &str, delivery: Delivery) {
        let mut slots = self.slots.lock().expect("unpoisoned");
        if let Some(s) = slots.get_mut(mailbox)
            && s.delivery != delivery
        {
            tracing::info!(event = "notifications", mailbox, state = ?delivery);
            if matches!(s.delivery, Delivery::Notified | Delivery::Pulled { .. }) {
                s.wake.notify_one();
            }
            s.delivery = delivery;
        }
    }

    pub fn delivery(&self, mailbox: &str) -> Delivery {
        if let Some(reason) = &self.off {
            return Delivery::Polled {
                reason: reason.clone(),
            };
        }
        let slots = self.slots.lock().expect("unpoisoned");
        slots
            .get(mailbox)
            .map(|s| s.delivery.clone())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_renewed_before_the_server_closes_them() {
        assert_eq!(renewal(30), Duration::from_secs(29 * 60));
        assert_eq!(renewal(1), Duration::from_secs(54));
        for minutes in 1..=30 {
            let timeout = Duration::from_secs(u64::from(minutes) * 60);
            assert!(
                renewal(minutes) < timeout && timeout - renewal(minutes) >= Duration::from_secs(6)
            );
        }
    }

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("m{i:04}@x")).collect()
    }

    #[test]
    fn groups_fill_connections_in_address_order_and_leave_the_rest() {
        let (g, rest) = groups(names(450), Some(3));
        assert_eq!(g.iter().map(Vec::len).collect::<Vec<_>>(), [200, 200, 50]);
        assert!(rest.is_empty());
        assert_eq!(
            g[1][0], "m0200@x",
            "the anchor is the group's first address"
        );
        let (g, rest) = groups(names(700), Some(3));
        assert_eq!(g.len(), 3);
        assert_eq!(rest.len(), 100);
        assert_eq!(rest[0], "m0600@x");
        // Charged to their anchors: every mailbox has a connection.
        let (g, rest) = groups(names(1_000), None);
        assert_eq!(g.len(), 5);
        assert!(rest.is_empty());
        let mut shuffled = names(5);
        shuffled.reverse();
        assert_eq!(groups(shuffled, Some(1)).0[0], names(5));
        assert_eq!(
            groups(Vec::new(), Some(3)),
            (Vec::<Vec<String>>::new(), Vec::new())
        );
    }

    #[test]
    fn reconnects_back_off_exponentially_with_bounded_jitter() {
        let secs = |f, j| reconnect_delay(f, j).as_secs_f64();
        assert_eq!(secs(1, 0.0), 1.0);
        assert_eq!(secs(2, 0.0), 2.0);
        assert_eq!(secs(5, 0.0), 16.0);
        assert_eq!(secs(30, 0.0), 300.0);
        assert_eq!(secs(3, 1.0), 4.8);
        assert_eq!(secs(3, -1.0), 3.2);
        assert_eq!(secs(3, 9.0), 4.8, "the sample is clamped");
    }

    #[test]
    fn a_failed_renewal_is_retried_only_while_the_subscription_lives() {
        let s = Duration::from_secs;
        assert_eq!(renewal_retry(1, s(10), 0.0), Some(s(1)));
        assert_eq!(renewal_retry(3, s(10), 0.0), Some(s(4)));
        assert_eq!(
            renewal_retry(3, s(4), 0.0),
            None,
            "the retry would come too late"
        );
        assert_eq!(renewal_retry(1, s(1), 0.0), None);
        assert_eq!(renewal_retry(20, s(86_400), 0.0), Some(s(300)), "capped");
    }

    #[test]
    fn refusals_resubscribe_poll_or_retry() {
        for code in [
            "ErrorSubscriptionNotFound",
            "ErrorExpiredSubscription",
            "ErrorMissedNotificationEvents",
        ] {
            assert_eq!(refusal(code), Refusal::Resubscribe, "{code}");
        }
        assert!(matches!(
            refusal("ErrorInvalidServerVersion"),
            Refusal::Poll { retry: None, reason } if reason.contains("ErrorInvalidServerVersion")
        ));
        assert!(matches!(
            refusal("ErrorExceededSubscriptionCount"),
            Refusal::Poll { retry: Some(_), reason } if reason.contains("EWSMaxSubscriptions")
        ));
        assert_eq!(refusal("ErrorServerBusy"), Refusal::Retry);
    }

    #[test]
    fn a_notified_mailbox_sleeps_to_the_backstop_a_polled_one_on_its_cadence() {
        let s = Duration::from_secs;
        let polled = Delivery::Polled {
            reason: "off".into(),
        };
        assert_eq!(poll_delay(s(300), &Delivery::Notified, s(3600)), s(3600));
        assert_eq!(poll_delay(s(7200), &Delivery::Notified, s(3600)), s(7200));
        let pulled = Delivery::Pulled {
            every_secs: 30,
            reason: String::new(),
        };
        assert_eq!(poll_delay(s(300), &pulled, s(3600)), s(3600));
        assert_eq!(poll_delay(s(300), &polled, s(3600)), s(300));
        assert_eq!(poll_delay(s(300), &Delivery::Pending, s(3600)), s(300));
    }

    #[test]
    fn a_pull_subscription_outlives_three_missed_reads_and_ten_minutes() {
        assert_eq!(pull_timeout_minutes(Duration::from_secs(5)), 10);
        assert_eq!(pull_timeout_minutes(Duration::from_secs(200)), 10);
        assert_eq!(pull_timeout_minutes(Duration::from_secs(600)), 30);
        assert_eq!(
            pull_timeout_minutes(Duration::from_secs(u64::MAX / 4)),
            1440
        );
    }

    #[test]
    fn folder_events_check_the_tree_and_mails_outside_watched_folders_are_ignored() {
        use EventKind::*;
        let watched = ["W".to_owned()];
        let tree = ["T".to_owned()];
        let h = |kind, folder, parent| hint(kind, folder, parent, &watched, &tree);
        // Mails.
        assert_eq!(h(Created, None, Some("W")), Hint::Sync);
        assert_eq!(h(Moved, None, Some("W")), Hint::Sync);
        assert_eq!(
            h(NewMail, None, Some("T")),
            Hint::Ignore,
            "new mail in the Inbox"
        );
        assert_eq!(
            h(Created, None, Some("?")),
            Hint::Sync,
            "an unknown folder syncs"
        );
        assert_eq!(h(Created, None, None), Hint::Sync);
        // Folders.
        assert_eq!(h(Modified, Some("W"), Some("T")), Hint::Sync, "its counts");
        assert_eq!(
            h(Modified, Some("T"), None),
            Hint::Ignore,
            "the Inbox's counts"
        );
        assert_eq!(
            h(Created, Some("N"), Some("W")),
            Hint::SyncTree,
            "a new subfolder"
        );
        assert_eq!(
            h(Created, Some("N"), Some("T")),
            Hint::SyncTree,
            "a mapped path made"
        );
        assert_eq!(
            h(Modified, Some("X"), Some("T")),
            Hint::SyncTree,
            "a sibling renamed"
        );
        assert_eq!(
            h(Moved, Some("W"), Some("T")),
            Hint::SyncTree,
            "a watched one moved"
        );
        assert_eq!(h(Deleted, Some("W"), Some("T")), Hint::SyncTree);
        assert_eq!(h(Status, None, None), Hint::Ignore);
    }

    #[test]
    fn hints_tick_only_on_changed_folders_and_off_overrides() {
        let h = Hints::default();
        let wake = h.wake_of("a@x");
        h.set_folders(
            "a@x",
            vec!["2".into(), "1".into()],
            vec!["0".into(), "1".into()],
        );
        assert_eq!(h.folders()["a@x"], ["1", "2"]);
        assert_eq!(
            h.subscribed_of(&["a@x".into()])["a@x"],
            ["0", "1", "2"],
            "a watched folder once"
        );
        h.wake("a@x");
        h.wake("a@x");
        use futures_util::FutureExt;
        assert!(wake.notified().now_or_never().is_some());
        assert!(
            wake.notified().now_or_never().is_none(),
            "two wakes before the pass are one"
        );
        h.set_delivery("a@x", Delivery::Notified);
        assert_eq!(h.delivery("a@x"), Delivery::Notified);
        h.remove("a@x");
        h.set_folders("a@x", vec!["1".into()], Vec::new());
        assert!(
            h.folders().is_empty(),
            "a removed mailbox's last pass does not bring it back"
        );
        let off = Hints::off("notifications are off");
        assert!(matches!(off.delivery("a@x"), Delivery::Polled { .. }));
    }

    #[test]
    fn a_notification_makes_the_next_pass_urgent_and_a_catch_up_wake_does_not() {
        let h = Hints::default();
        h.wake_of("a@x");
        h.set_folders("a@x", vec!["W".into()], Vec::new());
        h.wake("a@x");
        assert!(
            !h.take_urgent("a@x"),
            "a catch-up wake queues with the schedule"
        );
        h.hint("a@x", [(EventKind::Status, None, None)]);
        assert!(!h.take_urgent("a@x"), "nothing to sync, nothing urgent");
        h.hint("a@x", [(EventKind::Created, Some("W"), Some("W"))]);
        assert!(h.take_urgent("a@x"));
        assert!(!h.take_urgent("a@x"), "taken once");
        h.wake_for_change("a@x");
        assert!(
            h.take_urgent("a@x"),
            "a Graph change notification is urgent too"
        );
    }

    #[test]
    fn changes_since_names_the_mailboxes_changed_and_gives_up_past_what_it_keeps() {
        let h = Hints::default();
        let (start, changed) = h.changes_since(0);
        assert_eq!((start, changed), (0, Some(Vec::new())));
        let members = h.membership();
        h.wake_of("a@x");
        h.wake_of("b@x");
        h.wake_of("a@x");
        assert_eq!(h.membership(), members + 2, "made once each");
        h.set_folders("a@x", vec!["1".into()], Vec::new());
        h.set_folders("a@x", vec!["1".into()], Vec::new());
        let (after_a, changed) = h.changes_since(start);
        assert_eq!(
            changed.unwrap(),
            ["a@x"],
            "an unchanged repeat is no change"
        );
        h.set_folders("b@x", vec!["2".into()], Vec::new());
        let (now, changed) = h.changes_since(after_a);
        assert_eq!(
            (now, changed.unwrap()),
            (after_a + 1, vec!["b@x".to_owned()])
        );
        assert_eq!(h.changes_since(now).1.unwrap(), Vec::<String>::new());
        for i in 0..=RECENT_CHANGES {
            h.set_folders("a@x", vec![i.to_string()], Vec::new());
        }
        assert_eq!(
            h.changes_since(now).1,
            None,
            "too far behind: look at everyone"
        );
        assert_eq!(h.changes_since(now + 1).1.unwrap(), ["a@x"], "each once");
        h.remove("b@x");
        assert_eq!(h.membership(), members + 3);
    }
}
