//! Graph change notifications (R40, the Graph counterpart of [`super::notifier`]): a receiver
//! Microsoft Graph posts to, and a subscription on each watched folder's messages, created
//! once the mailbox's first pass resolved its folders, renewed before it expires and deleted
//! at a clean stop (and what an earlier run left on the same URL, at start). A notification only wakes the mailbox's normal delta pass
//! ([`Hints::wake`], coalesced); nothing is tracked from it. Every notification must carry
//! this agent's `clientState` (a random secret made at start): one that does not is counted
//! and ignored. Lifecycle events: `reauthorizationRequired` renews the subscription,
//! `subscriptionRemoved` creates it again and syncs the mailbox at once, `missed` syncs it at
//! once. A mailbox all of whose folders are subscribed is notified (its poll stretches to the
//! backstop); one whose subscriptions cannot be made or kept is polled, and status says why.
//! The protocol is [`crate::graph::subscription`]; the calls [`GraphSubscriptions`].

use super::notify::{self, Delivery, GraphNotifySettings, Hints};
use crate::feed::graph_subscriptions::{GraphSubscriptions, refused_status};
use crate::graph::subscription::{self as protocol, Lifecycle, Notifications, Received};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long a clean stop waits for the subscriptions' deletion (the agent's grace is 10 s);
/// what is left lapses at its expiry.
const DELETE_GRACE: Duration = Duration::from_secs(5);

/// What the receiver and the subscription manager share.
struct Shared {
    client_state: String,
    hints: Arc<Hints>,
    /// Subscription id → its mailbox.
    routes: Mutex<HashMap<String, String>>,
    lifecycle: mpsc::UnboundedSender<(String, Lifecycle)>,
    /// Forged notifications so far (the log names the first and every hundredth).
    forged: std::sync::atomic::AtomicU64,
}

impl Shared {
    fn mailbox_of(&self, id: &str) -> Option<String> {
        let routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        routes.get(id).cloned()
    }

    fn route(&self, id: &str, mailbox: Option<&str>) {
        let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        match mailbox {
            Some(m) => routes.insert(id.to_owned(), m.to_owned()),
            None => routes.remove(id),
        };
    }

    /// Acts on one notification of a POST.
    fn handle(&self, n: &protocol::Notification) {
        let outcome = match protocol::receive(n, &self.client_state) {
            Received::Changed { subscription_id } => match self.mailbox_of(&subscription_id) {
                Some(mailbox) => {
                    self.hints.wake_for_change(&mailbox);
                    "change"
                }
                None => "unknown_subscription",
            },
            Received::Lifecycle {
                subscription_id,
                event,
            } => match self.mailbox_of(&subscription_id) {
                Some(_) => {
                    let _ = self.lifecycle.send((subscription_id, event));
                    event.as_str()
                }
                None => "unknown_subscription",
            },
            Received::Forged => {
                let seen = 1 + (self.forged).fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                // Anyone who finds the URL can post: a flood must not flood the log too.
                if seen == 1 || seen.is_multiple_of(100) {
                    tracing::warn!(
                        event = "graph_notification_forged",
                        forged_so_far = seen,
                        "a notification without this agent's clientState was ignored"
                    );
                }
                "client_state_mismatch"
            }
            Received::Unknown => "unknown_lifecycle_event",
        };
        count(outcome);
    }
}

fn count(outcome: &str) {
    crate::telemetry::metrics().count(
        "foldertrack_graph_notifications_total",
        &[("outcome", outcome)],
        1,
    );
}

/// A new `clientState`: 32 random bytes in hex (64 characters, under Graph's 128).
fn new_client_state() -> String {
    let mut bytes = [0u8; 32];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if read.is_err() {
        // fastrand's seed comes from the OS as well (through std's RandomState).
        bytes.iter_mut().for_each(|b| *b = fastrand::u8(..));
    }
    hex::encode(bytes)
}

/// The receiver: the validation handshake (`?validationToken=` → 200, the token as plain
/// text) and notification POSTs (202 at once; the passes they wake run afterwards). Any path:
/// a proxy in front may map the public URL's path onto another.
async fn receive(
    State(shared): State<Arc<Shared>>,
    method: Method,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    if method != Method::POST {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    if let Some(token) = query.as_deref().and_then(protocol::validation_token) {
        count("validation");
        // Echoed as plain text that no browser may sniff into markup.
        let headers = [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ];
        return (StatusCode::OK, headers, token).into_response();
    }
    match serde_json::from_slice::<Notifications>(&body) {
        Ok(batch) => {
            batch.value.iter().for_each(|n| shared.handle(n));
            StatusCode::ACCEPTED.into_response()
        }
        Err(_) => {
            count("unreadable");
            StatusCode::BAD_REQUEST.into_response()
        }
    }
}

/// Binds the receiver's address (at start, so a taken port stops the agent with its reason).
pub async fn bind(listen: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(listen).await
}

/// Runs the receiver on `listener` and keeps every watched folder subscribed until `stop`;
/// then deletes the subscriptions.
pub async fn run(
    listener: tokio::net::TcpListener,
    subscriptions: GraphSubscriptions,
    hints: Arc<Hints>,
    settings: GraphNotifySettings,
    stop: CancellationToken,
) {
    let (lifecycle, events) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        client_state: new_client_state(),
        hints,
        routes: Mutex::default(),
        lifecycle,
        forged: Default::default(),
    });
    let router = axum::Router::new()
        .fallback(receive)
        .with_state(shared.clone());
    let server =
        axum::serve(listener, router).with_graceful_shutdown(stop.clone().cancelled_owned());
    let manager = Manager {
        subscriptions,
        shared,
        settings,
        live: HashMap::new(),
        held: HashMap::new(),
    };
    let (served, ()) = tokio::join!(server, manager.run(events, stop));
    if let Err(e) = served {
        tracing::error!(event = "graph_receiver_failed", error = %e);
    }
}

/// A subscription Graph confirmed.
struct Live {
    id: String,
    renew_at: Instant,
    expires_at: Instant,
    failures: u32,
}

/// Keeps the subscriptions.
struct Manager {
    subscriptions: GraphSubscriptions,
    shared: Arc<Shared>,
    settings: GraphNotifySettings,
    /// (mailbox, folder id) → its subscription.
    live: HashMap<(String, String), Live>,
    /// Mailboxes whose subscribing failed: not before the instant; how many failures.
    held: HashMap<String, (Instant, u32)>,
}

impl Manager {
    async fn run(
        mut self,
        mut events: mpsc::UnboundedReceiver<(String, Lifecycle)>,
        stop: CancellationToken,
    ) {
        self.sweep().await;
        let hints = self.shared.hints.clone();
        loop {
            let changed = hints.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            self.reconcile(&stop).await;
            let next = self.next_due();
            let due = async {
                match next {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = changed => {}
                Some((id, event)) = events.recv() => self.lifecycle(&id, event).await,
                () = due => self.renew_due().await,
            }
        }
        let live: Vec<((String, String), Live)> = self.live.drain().collect();
        let deletions = async {
            for ((mailbox, _), sub) in &live {
                let _ = self.subscriptions.delete(mailbox, &sub.id).await;
            }
        };
        if tokio::time::timeout(DELETE_GRACE, deletions).await.is_err() {
            tracing::warn!(
                event = "graph_subscriptions_left",
                "some subscriptions were not deleted in time; they lapse at their expiry"
            );
        }
    }

    /// Deletes what an earlier run left on this URL (it stopped without deleting, or crashed):
    /// those would post with a `clientState` this run refuses until they expire. Other URLs
    /// (other members of a cluster, other tools of the app) are left alone.
    async fn sweep(&self) {
        let ours = self.settings.url.as_str();
        let left = match self.subscriptions.list().await {
            Ok(all) => all,
            Err(e) => {
                tracing::warn!(event = "graph_subscriptions_unlisted", error = %e, "earlier subscriptions on this URL are left to expire");
                return;
            }
        };
        for old in left.iter().filter(|s| s.notification_url == ours) {
            let (Some(id), Some(mailbox)) = (&old.id, protocol::resource_mailbox(&old.resource))
            else {
                continue;
            };
            tracing::info!(
                event = "graph_subscription_swept",
                mailbox,
                "deleting a subscription an earlier run left"
            );
            let _ = self.subscriptions.delete(mailbox, id).await;
        }
    }

    /// The next renewal or retry (a hold that has passed waits for nothing).
    fn next_due(&self) -> Option<Instant> {
        let now = Instant::now();
        let renewals = self.live.values().map(|l| l.renew_at);
        let retries = self.held.values().map(|(at, _)| *at).filter(|at| *at > now);
        renewals.chain(retries).min()
    }

    /// Subscribes every watched folder not yet subscribed (mailboxes not held back) and
    /// deletes the subscriptions of folders no longer watched; gives way to `stop` between
    /// mailboxes.
    async fn reconcile(&mut self, stop: &CancellationToken) {
        let wanted = self.shared.hints.folders();
        self.held.retain(|m, _| wanted.contains_key(m));
        let stale: Vec<(String, String)> = (self.live.keys())
            .filter(|(m, f)| !wanted.get(m).is_some_and(|fs| fs.contains(f)))
            .cloned()
            .collect();
        for key in stale {
            if let Some(sub) = self.live.remove(&key) {
                self.retire(key.0, sub.id);
            }
        }
        let now = Instant::now();
        for (mailbox, folders) in wanted {
            if stop.is_cancelled() {
                return;
            }
            if folders.is_empty() {
                // Before its first pass a mailbox is pending; after it, one whose folders all
                // went away has nothing left that could notify it.
                if self.shared.hints.delivery(&mailbox) == Delivery::Notified {
                    let reason = "no mapped folder is watched: nothing to subscribe to".into();
                    (self.shared.hints).set_delivery(&mailbox, Delivery::Polled { reason });
                }
                continue;
            }
            let missing: Vec<&String> = (folders.iter())
                .filter(|f| !self.live.contains_key(&(mailbox.clone(), (*f).clone())))
                .collect();
            let held = self.held.get(&mailbox).is_some_and(|(at, _)| now < *at);
            if missing.is_empty() || held {
                continue;
            }
            let mut failed = None;
            for folder in missing {
                if let Err(e) = self.subscribe(&mailbox, folder).await {
                    failed = Some(e);
                    break;
                }
            }
            match failed {
                None => {
                    self.held.remove(&mailbox);
                    self.shared.hints.set_delivery(&mailbox, Delivery::Notified);
                    // What happened before the subscriptions existed is synced now.
                    self.shared.hints.wake(&mailbox);
                }
                Some(e) => {
                    let why = self.create_failed(&e);
                    self.hold(&mailbox, &why);
                }
            }
        }
    }

    /// Why a subscription could not be created, in words an admin can act on.
    fn create_failed(&self, e: &crate::client::Error) -> String {
        match e {
            crate::client::Error::GraphRefused { code, message, .. }
                if code.eq_ignore_ascii_case("ValidationError") =>
            {
                format!(
                    "Graph could not validate notifications.graph_notification_url {} ({}): make sure it reaches notifications.graph_listen {} and answers at once",
                    self.settings.url,
                    message.as_deref().unwrap_or("no detail"),
                    self.settings.listen
                )
            }
            _ => format!("creating its Graph subscription failed ({e})"),
        }
    }

    /// Polls `mailbox` for `why` and holds its subscribing back, doubling from 1 s to 5 min.
    fn hold(&mut self, mailbox: &str, why: &str) {
        let failures = self.held.get(mailbox).map_or(0, |(_, n)| *n) + 1;
        let pause = notify::reconnect_delay(failures, fastrand::f64() * 2.0 - 1.0);
        tracing::warn!(
            event = "graph_subscribe_failed",
            mailbox,
            reason = why,
            retry_in_ms = pause.as_millis() as u64
        );
        self.held
            .insert(mailbox.to_owned(), (Instant::now() + pause, failures));
        self.shared.hints.set_delivery(
            mailbox,
            Delivery::Polled {
                reason: format!("{why}; trying again in {} s", pause.as_secs().max(1)),
            },
        );
    }

    async fn subscribe(&mut self, mailbox: &str, folder: &str) -> Result<(), crate::client::Error> {
        let wanted = protocol::Subscription::on_folder(
            mailbox,
            folder,
            self.settings.url.as_str(),
            &self.shared.client_state,
            protocol::expiration(jiff::Timestamp::now(), self.settings.lifetime),
        );
        let made = self.subscriptions.create(mailbox, &wanted).await?;
        let Some(id) = made.id.filter(|id| !id.is_empty()) else {
            return Err(crate::client::Error::GraphMalformed {
                call: crate::client::Call {
                    mailbox: crate::ews::Mailbox(mailbox.to_owned()),
                    operation: "subscriptions.create",
                },
                what: "the created subscription has no id".into(),
            });
        };
        self.shared.route(&id, Some(mailbox));
        let (renew_at, expires_at) = self.schedule(&made.expiration_date_time);
        self.live.insert(
            (mailbox.to_owned(), folder.to_owned()),
            Live {
                id,
                renew_at,
                expires_at,
                failures: 0,
            },
        );
        Ok(())
    }

    /// When to renew a subscription Graph says expires at `expiration_date_time`, and when it
    /// expires (the lifetime asked for when Graph's answer is unreadable).
    fn schedule(&self, expiration_date_time: &str) -> (Instant, Instant) {
        let remaining = protocol::remaining(expiration_date_time, jiff::Timestamp::now())
            .unwrap_or(self.settings.lifetime);
        let now = Instant::now();
        (now + protocol::renew_in(remaining), now + remaining)
    }

    /// Renews every subscription due.
    async fn renew_due(&mut self) {
        let now = Instant::now();
        let due: Vec<(String, String)> = (self.live.iter())
            .filter(|(_, l)| l.renew_at <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            self.renew(&key).await;
        }
    }

    async fn renew(&mut self, key: &(String, String)) {
        let Some(id) = self.live.get(key).map(|l| l.id.clone()) else {
            return;
        };
        let mailbox = &key.0;
        let asked = protocol::expiration(jiff::Timestamp::now(), self.settings.lifetime);
        let result = self.subscriptions.renew(mailbox, &id, asked).await;
        match result {
            Ok(renewed) => {
                let (renew_at, expires_at) = self.schedule(&renewed.expiration_date_time);
                if let Some(l) = self.live.get_mut(key) {
                    (l.renew_at, l.expires_at, l.failures) = (renew_at, expires_at, 0);
                }
            }
            Err(e) if refused_status(&e) == Some(404) => {
                // Gone (expired, or removed by Graph): made again at once, then synced.
                self.drop_subscription(
                    key,
                    &format!("Graph no longer knows its subscription ({e})"),
                );
            }
            Err(e) => {
                let Some(l) = self.live.get_mut(key) else {
                    return;
                };
                l.failures += 1;
                let now = Instant::now();
                let left = l.expires_at.saturating_duration_since(now);
                let jitter = fastrand::f64() * 2.0 - 1.0;
                if let Some(pause) = notify::renewal_retry(l.failures, left, jitter) {
                    l.renew_at = now + pause;
                    tracing::warn!(event = "graph_renew_failed", mailbox = %mailbox, error = %e);
                } else {
                    let why =
                        format!("renewing its Graph subscription failed before it expired ({e})");
                    self.live.remove(key);
                    self.shared.route(&id, None);
                    self.hold(mailbox, &why);
                }
            }
        }
    }

    /// Forgets a subscription that is gone; the mailbox is polled and woken until it is
    /// subscribed again (at the next reconcile, at once).
    fn drop_subscription(&mut self, key: &(String, String), why: &str) {
        if let Some(sub) = self.live.remove(key) {
            self.shared.route(&sub.id, None);
        }
        tracing::info!(event = "graph_subscription_lost", mailbox = %key.0, reason = why);
        self.shared.hints.set_delivery(
            &key.0,
            Delivery::Polled {
                reason: format!("{why}; subscribing again"),
            },
        );
        self.shared.hints.wake(&key.0);
    }

    async fn lifecycle(&mut self, id: &str, event: Lifecycle) {
        let Some(key) = (self.live.iter())
            .find(|(_, l)| l.id == id)
            .map(|(k, _)| k.clone())
        else {
            return;
        };
        tracing::info!(event = "graph_lifecycle", mailbox = %key.0, lifecycle = event.as_str());
        match event {
            Lifecycle::ReauthorizationRequired => self.renew(&key).await,
            Lifecycle::SubscriptionRemoved => {
                self.drop_subscription(
                    &key,
                    "Graph removed its subscription (subscriptionRemoved)",
                );
            }
            Lifecycle::Missed => self.shared.hints.wake(&key.0),
        }
    }

    /// Deletes a subscription no longer needed, in the background.
    fn retire(&self, mailbox: String, id: String) {
        self.shared.route(&id, None);
        let subscriptions = self.subscriptions.clone();
        tokio::spawn(async move {
            let _ = subscriptions.delete(&mailbox, &id).await;
        });
    }
}
