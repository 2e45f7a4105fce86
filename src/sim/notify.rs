//! Notification subscriptions (pull and streaming): which folders of which mailbox each one
//! watches, the queue of events it has not yet handed out, its watermarks and its expiry.
//! Events are rendered into ids at the moment they happen (a later move must not change what an
//! earlier event said). Owns the queues; the HTTP layer streams them, `respond/events.rs`
//! writes them.

use super::ids;
use super::mailbox::{FolderHappening, Happened, Mailbox};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// The event types a subscription may ask for (`t:EventType`).
pub const EVENT_TYPES: [&str; 6] = [
    "CopiedEvent",
    "CreatedEvent",
    "DeletedEvent",
    "ModifiedEvent",
    "MovedEvent",
    "NewMailEvent",
];

/// One event, with the ids it names already written out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: &'static str,
    pub time: String,
    /// `(is_folder, id, change key)` of the object.
    pub object: (bool, String, Option<String>),
    pub parent: (String, String),
    /// For moves: the old item id and the old parent folder id.
    pub old: Option<(String, String)>,
    pub unread_count: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Pull { timeout: Duration },
    Streaming,
}

pub struct Subscription {
    pub owner: String,
    pub mailbox: u32,
    /// `None`: every folder (SubscribeToAllFolders).
    pub folders: Option<HashSet<u32>>,
    pub event_types: HashSet<String>,
    pub kind: Kind,
    /// Events not yet acknowledged, each with its number (its watermark).
    pub queue: VecDeque<(u64, Event)>,
    pub next_event: u64,
    pub last_access: Instant,
    pub wake: Arc<Notify>,
    /// A streaming connection currently serves it.
    pub streaming: bool,
    /// The back end affinity pinned it to: only requests routed there (by the
    /// `X-BackEndOverrideCookie`) find it.
    pub backend: Option<String>,
}

impl Subscription {
    fn watches(&self, folder: u32) -> bool {
        self.folders.as_ref().is_none_or(|f| f.contains(&folder))
    }

    fn push(&mut self, e: Event) {
        if !self.event_types.contains(e.kind) {
            return;
        }
        self.next_event += 1;
        self.queue.push_back((self.next_event, e));
    }

    pub fn expired(&self, now: Instant) -> bool {
        match self.kind {
            Kind::Pull { timeout } => now.duration_since(self.last_access) > timeout,
            Kind::Streaming => false,
        }
    }

    /// The watermark after the last event handed out (or the initial one).
    pub fn watermark(&self, id: u64, event: u64) -> String {
        ids::watermark(id, event)
    }
}

#[derive(Default)]
pub struct Subscriptions {
    pub subs: HashMap<u64, Subscription>,
    next: u64,
    /// Bumped by `drop_streams`: a connection opened before breaks.
    pub streams_epoch: u64,
    /// Subscriptions ended because their events were lost: a connection that served one
    /// names it under ErrorMissedNotificationEvents rather than ErrorSubscriptionNotFound.
    pub missed: HashSet<u64>,
    /// Graph's subscriptions, fed by the same changes.
    pub graph: super::graph_notify::Registry,
}

/// Why the simulator ends a mailbox's subscriptions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// It lapsed (or the server restarted): ErrorSubscriptionNotFound.
    Lapsed,
    /// Its event queue was lost: ErrorMissedNotificationEvents, to be re-created.
    MissedEvents,
}

impl Subscriptions {
    /// Removes the mailbox's subscriptions, waking the connections that serve them so they
    /// report them gone, and why; returns how many there were.
    pub fn end(&mut self, mailbox: u32, why: Ending) -> usize {
        let gone: Vec<u64> = self
            .subs
            .iter()
            .filter(|(_, s)| s.mailbox == mailbox)
            .map(|(n, _)| *n)
            .collect();
        for n in &gone {
            if let Some(s) = self.subs.remove(n) {
                s.wake.notify_one();
            }
            if why == Ending::MissedEvents {
                self.missed.insert(*n);
            }
        }
        gone.len()
    }

    /// Breaks every open streaming connection.
    pub fn drop_streams(&mut self) {
        self.streams_epoch += 1;
        for s in self.subs.values() {
            s.wake.notify_one();
        }
    }

    pub fn add(&mut self, sub: Subscription) -> u64 {
        self.next += 1;
        self.subs.insert(self.next, sub);
        self.next
    }

    /// Looks a subscription up by its wire id, dropping it first if it has expired.
    pub fn get_mut(&mut self, id: &str, now: Instant) -> Option<(u64, &mut Subscription)> {
        let n = ids::parse_subscription_id(id)?;
        if self.subs.get(&n).is_some_and(|s| s.expired(now)) {
            self.subs.remove(&n);
        }
        self.subs.get_mut(&n).map(|s| (n, s))
    }

    /// Routes what happened in `mb` to the subscriptions watching it.
    pub fn publish(&mut self, mb: &Mailbox, what: &[Happened], now: &str) {
        self.graph.publish(mb, what);
        if self.subs.values().all(|s| s.mailbox != mb.number) {
            return;
        }
        for h in what {
            for (folder, event) in events(mb, h, now) {
                for s in self.subs.values_mut() {
                    if s.mailbox == mb.number && folder.iter().any(|f| s.watches(*f)) {
                        s.push(event.clone());
                        s.wake.notify_one();
                    }
                }
            }
        }
    }
}

fn folder_ref(mb: &Mailbox, folder: u32) -> (String, String) {
    let ck = mb
        .folders
        .get(&folder)
        .map(|f| mb.folder_change_key(f))
        .unwrap_or_default();
    (mb.folder_id(folder), ck)
}

fn parent_of(mb: &Mailbox, folder: u32) -> u32 {
    mb.folders
        .get(&folder)
        .and_then(|f| f.parent)
        .unwrap_or(folder)
}

/// The events one happening produces, each with the folders it concerns.
fn events(mb: &Mailbox, h: &Happened, now: &str) -> Vec<(Vec<u32>, Event)> {
    let item = |k: super::ids::ItemKey, kind: &'static str| {
        let ck = mb.item(k).map(|m| mb.item_change_key(k, m));
        Event {
            kind,
            time: now.to_owned(),
            object: (false, ids::item_id(k), ck),
            parent: folder_ref(mb, k.folder),
            old: None,
            unread_count: None,
        }
    };
    let folder_modified = |folder: u32| {
        let unread = mb
            .folders
            .get(&folder)
            .map(|f| f.items.values().filter(|m| !m.is_read).count() as u32);
        let (id, ck) = folder_ref(mb, folder);
        (
            vec![folder],
            Event {
                kind: "ModifiedEvent",
                time: now.to_owned(),
                object: (true, id, Some(ck)),
                parent: folder_ref(mb, parent_of(mb, folder)),
                old: None,
                unread_count: unread,
            },
        )
    };
    match h {
        Happened::Created { item: k, new_mail } => {
            let mut out = vec![(vec![k.folder], item(*k, "CreatedEvent"))];
            if *new_mail {
                out.push((vec![k.folder], item(*k, "NewMailEvent")));
            }
            out.push(folder_modified(k.folder));
            out
        }
        Happened::Modified { item: k } => vec![(vec![k.folder], item(*k, "ModifiedEvent"))],
        Happened::Deleted { item: k } => vec![
            (vec![k.folder], item(*k, "DeletedEvent")),
            folder_modified(k.folder),
        ],
        Happened::Moved { item: k, old } => {
            let mut e = item(*k, "MovedEvent");
            e.old = Some((ids::item_id(*old), mb.folder_id(old.folder)));
            vec![
                (vec![k.folder, old.folder], e),
                folder_modified(old.folder),
                folder_modified(k.folder),
            ]
        }
        // A folder is an object in its parent: its creation, rename or move is an event
        // there (and a rename also one of its own).
        Happened::FolderChanged { folder, how, .. } => {
            let parent = parent_of(mb, *folder);
            let (id, ck) = folder_ref(mb, *folder);
            let event = |kind, old| Event {
                kind,
                time: now.to_owned(),
                object: (true, id.clone(), Some(ck.clone())),
                parent: folder_ref(mb, parent),
                old,
                unread_count: None,
            };
            match how {
                FolderHappening::Created => vec![(vec![parent], event("CreatedEvent", None))],
                FolderHappening::Renamed => {
                    let (folders, e) = folder_modified(*folder);
                    vec![(folders, e), (vec![parent], event("ModifiedEvent", None))]
                }
                FolderHappening::Moved { from } => {
                    let old = Some((id.clone(), mb.folder_id(*from)));
                    vec![(vec![parent, *from], event("MovedEvent", old))]
                }
            }
        }
    }
}
