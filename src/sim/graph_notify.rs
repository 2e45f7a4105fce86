//! Graph change notifications in the simulator: the subscriptions (`POST`, `PATCH`, `DELETE`,
//! `GET /subscriptions`, answered by `graph.rs`), the validation handshake that must succeed
//! before one is created, and the deliverer that POSTs notifications to their URL.
//!
//! As Graph documents it (<https://learn.microsoft.com/graph/change-notifications-delivery-webhooks>,
//! <https://learn.microsoft.com/graph/change-notifications-lifecycle-events>):
//! - creating a subscription first POSTs `{notificationUrl}?validationToken=…` (and the same to
//!   a different `lifecycleNotificationUrl`); unless each answers 200 with exactly the token
//!   within 10 s, creation fails with 400 `ValidationError`;
//! - a message subscription lives at most 10,080 minutes; an expired one is gone: it delivers
//!   nothing and cannot be renewed (404);
//! - every change in a subscribed folder is POSTed as `{"value": [...]}` with `subscriptionId`,
//!   `subscriptionExpirationDateTime`, `clientState`, `changeType`, `resource`, `resourceData`
//!   and `tenantId`, notifications waiting for the same URL batched in one POST; a mail moved
//!   in is `created` in its new folder and `deleted` in the old;
//! - a POST not answered 2xx within 3 s is retried with exponential back-off (1 s doubling,
//!   at most 5 min between tries) for up to 4 hours, then dropped;
//! - lifecycle notifications go to `lifecycleNotificationUrl` only (none without one).
//!
//! Only loopback URLs (127.0.0.0/8) are posted to: the simulator never sends traffic off the
//! machine; any other URL is refused as Graph refuses an unreachable one. Not modelled: the
//! slow/drop marking of endpoints that answer in over 10 s, notifications with resource data
//! (encrypted content), the validation tokens Graph adds to each POST, rich notifications,
//! and subscriptions on anything but one folder's messages.

use super::ids::ItemKey;
use super::mailbox::{Happened, Mailbox};
use crate::graph::subscription::{self as protocol, Lifecycle, Notification, Notifications};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// How long Graph goes on retrying a notification.
pub const RETRY_FOR: Duration = Duration::from_secs(4 * 3600);
/// The longest pause between two tries.
const RETRY_CAP: Duration = Duration::from_secs(300);
/// The tenant id the simulator's notifications carry.
pub const TENANT_ID: &str = "00000000-0000-0000-0000-0000000c0de0";

/// One Graph subscription.
#[derive(Clone, Debug)]
pub struct GraphSubscription {
    pub id: String,
    /// The account of the app that made it (only it may see, renew or delete it).
    pub owner: String,
    pub mailbox: u32,
    pub folder: u32,
    pub change_types: Vec<String>,
    pub notification_url: String,
    pub lifecycle_url: Option<String>,
    pub client_state: Option<String>,
    /// As the creator wrote it.
    pub resource: String,
    pub expires: jiff::Timestamp,
}

impl GraphSubscription {
    /// The subscription as Graph answers it.
    pub fn json(&self, application_id: &str) -> serde_json::Value {
        serde_json::json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#subscriptions/$entity",
            "id": self.id,
            "resource": self.resource,
            "applicationId": application_id,
            "changeType": self.change_types.join(","),
            "clientState": self.client_state,
            "notificationUrl": self.notification_url,
            "lifecycleNotificationUrl": self.lifecycle_url,
            "expirationDateTime": format_time(self.expires),
            "creatorId": self.owner,
            "latestSupportedTlsVersion": "v1_2",
            "notificationUrlAppId": null,
            "includeResourceData": false,
        })
    }

    fn notification(&self) -> Notification {
        Notification {
            subscription_id: self.id.clone(),
            subscription_expiration_date_time: Some(format_time(self.expires)),
            client_state: self.client_state.clone(),
            tenant_id: Some(TENANT_ID.to_owned()),
            ..Notification::default()
        }
    }
}

/// Graph's timestamps: UTC with seven fractional digits.
pub fn format_time(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.7fZ").to_string()
}

/// A notification waiting to be POSTed.
#[derive(Clone, Debug)]
pub struct Outgoing {
    url: String,
    subscription: String,
    notification: Notification,
    /// Lifecycle notifications go even for a subscription that is gone.
    lifecycle: bool,
    attempts: u32,
    due: Instant,
    first: Instant,
}

/// What a subscription looks like to a test.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SubscriptionView {
    pub id: String,
    pub folder_id: String,
    pub notification_url: String,
    pub expiration_date_time: String,
}

/// Every Graph subscription and the notifications on their way.
#[derive(Default)]
pub struct Registry {
    subs: BTreeMap<String, GraphSubscription>,
    next: u64,
    outbox: VecDeque<Outgoing>,
    /// Mailbox → how many of its next change notifications are lost.
    drop_next: HashMap<u32, u32>,
    /// A test knob: grant no subscription more than this (Graph grants what it is asked, up
    /// to its maximum; a short lifetime lets a test see renewals).
    pub lifetime_cap: Option<Duration>,
    /// Wakes the deliverer.
    pub wake: Arc<Notify>,
    /// Notifications POSTed and answered 2xx, and given up.
    pub delivered: u64,
    pub given_up: u64,
}

impl Registry {
    /// A new subscription's id (a GUID's shape, as Graph's).
    pub fn add(&mut self, mut sub: GraphSubscription) -> GraphSubscription {
        self.next += 1;
        sub.id = format!(
            "{:08x}-5eb5-4c1d-9a7e-{:012x}",
            fastrand::u32(..),
            self.next
        );
        self.subs.insert(sub.id.clone(), sub.clone());
        sub
    }

    /// A live subscription of `owner` (an expired one is removed first).
    pub fn get_mut(
        &mut self,
        id: &str,
        owner: &str,
        now: jiff::Timestamp,
    ) -> Option<&mut GraphSubscription> {
        self.purge(now);
        self.subs.get_mut(id).filter(|s| s.owner == owner)
    }

    pub fn remove(&mut self, id: &str) -> Option<GraphSubscription> {
        self.subs.remove(id)
    }

    /// The live subscriptions of `owner`.
    pub fn of_owner(&mut self, owner: &str, now: jiff::Timestamp) -> Vec<GraphSubscription> {
        self.purge(now);
        (self.subs.values())
            .filter(|s| s.owner == owner)
            .cloned()
            .collect()
    }

    /// Expired subscriptions are gone, as in Graph.
    fn purge(&mut self, now: jiff::Timestamp) {
        self.subs.retain(|_, s| s.expires > now);
    }

    /// The live subscriptions on `mailbox`'s folders.
    pub fn views(&mut self, mb: &Mailbox) -> Vec<SubscriptionView> {
        self.purge(jiff::Timestamp::now());
        (self.subs.values())
            .filter(|s| s.mailbox == mb.number)
            .map(|s| SubscriptionView {
                id: s.id.clone(),
                folder_id: mb.folder_id(s.folder),
                notification_url: s.notification_url.clone(),
                expiration_date_time: format_time(s.expires),
            })
            .collect()
    }

    /// Queues a notification for every subscription that watches a folder where something
    /// happened.
    pub fn publish(&mut self, mb: &Mailbox, what: &[Happened]) {
        if self.subs.values().all(|s| s.mailbox != mb.number) {
            return;
        }
        self.purge(jiff::Timestamp::now());
        let now = Instant::now();
        for (key, change) in what.iter().flat_map(changes) {
            let matching: Vec<&GraphSubscription> = (self.subs.values())
                .filter(|s| s.mailbox == mb.number && s.folder == key.folder)
                .filter(|s| s.change_types.iter().any(|c| c == change))
                .collect();
            for s in matching {
                if let Some(n) = self.drop_next.get_mut(&mb.number).filter(|n| **n > 0) {
                    *n -= 1;
                    continue;
                }
                let id = super::ids::item_id(key);
                let notification = Notification {
                    change_type: Some(change.to_owned()),
                    resource: Some(format!("Users/{}/Messages/{id}", mb.address)),
                    resource_data: Some(serde_json::json!({
                        "@odata.type": "#Microsoft.Graph.Message",
                        "@odata.id": format!("Users/{}/Messages/{id}", mb.address),
                        "id": id,
                    })),
                    ..s.notification()
                };
                self.outbox.push_back(Outgoing {
                    url: s.notification_url.clone(),
                    subscription: s.id.clone(),
                    notification,
                    lifecycle: false,
                    attempts: 0,
                    due: now,
                    first: now,
                });
            }
        }
        self.wake.notify_one();
    }

    /// Sends `event` for every subscription on `mailbox` (to its lifecycle URL, if it has
    /// one); `subscriptionRemoved` also ends them. Returns how many subscriptions there were.
    pub fn lifecycle(&mut self, mailbox: u32, event: Lifecycle) -> usize {
        self.purge(jiff::Timestamp::now());
        let ids: Vec<String> = (self.subs.values())
            .filter(|s| s.mailbox == mailbox)
            .map(|s| s.id.clone())
            .collect();
        let now = Instant::now();
        for id in &ids {
            let Some(s) = self.subs.get(id) else { continue };
            if let Some(url) = &s.lifecycle_url {
                let notification = Notification {
                    lifecycle_event: Some(event.as_str().to_owned()),
                    resource: Some(s.resource.clone()),
                    ..s.notification()
                };
                self.outbox.push_back(Outgoing {
                    url: url.clone(),
                    subscription: id.clone(),
                    notification,
                    lifecycle: true,
                    attempts: 0,
                    due: now,
                    first: now,
                });
            }
            if event == Lifecycle::SubscriptionRemoved {
                self.subs.remove(id);
            }
        }
        self.wake.notify_one();
        ids.len()
    }

    /// Loses the next `count` change notifications of `mailbox`.
    pub fn drop_next(&mut self, mailbox: u32, count: u32) {
        self.drop_next.insert(mailbox, count);
    }

    /// When the next notification is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.outbox.iter().map(|o| o.due).min()
    }

    /// Takes what is due, batched by URL.
    pub fn take_due(&mut self, now: Instant) -> Vec<(String, Vec<Outgoing>)> {
        let nowt = jiff::Timestamp::now();
        self.purge(nowt);
        let subs = &self.subs;
        // A change notification of a subscription that expired or was deleted is not sent.
        self.outbox
            .retain(|o| o.lifecycle || subs.contains_key(&o.subscription));
        let mut batches: Vec<(String, Vec<Outgoing>)> = Vec::new();
        let mut waiting = VecDeque::new();
        for o in self.outbox.drain(..) {
            if o.due > now {
                waiting.push_back(o);
                continue;
            }
            match batches.iter_mut().find(|(u, _)| *u == o.url) {
                Some((_, list)) => list.push(o),
                None => batches.push((o.url.clone(), vec![o])),
            }
        }
        self.outbox = waiting;
        batches
    }

    /// Puts back a batch its receiver did not take, to be tried again later (or given up
    /// after [`RETRY_FOR`]).
    pub fn retry(&mut self, batch: Vec<Outgoing>, now: Instant) {
        for mut o in batch {
            o.attempts += 1;
            let pause = Duration::from_secs(1)
                .saturating_mul(1 << o.attempts.min(16).saturating_sub(1))
                .min(RETRY_CAP);
            if now + pause > o.first + RETRY_FOR {
                self.given_up += 1;
                continue;
            }
            o.due = now + pause;
            self.outbox.push_back(o);
        }
    }
}

/// The message changes one happening makes, by folder.
fn changes(h: &Happened) -> Vec<(ItemKey, &'static str)> {
    match h {
        Happened::Created { item, .. } => vec![(*item, "created")],
        Happened::Modified { item } => vec![(*item, "updated")],
        Happened::Deleted { item } => vec![(*item, "deleted")],
        Happened::Moved { item, old } => vec![(*item, "created"), (*old, "deleted")],
        Happened::FolderChanged { .. } => Vec::new(),
    }
}

/// Whether the simulator may POST to `url`: http(s) to a 127.0.0.0/8 address only.
pub fn loopback_only(url: &str) -> Result<url::Url, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("'{url}' is not a valid URL ({e})"))?;
    let loopback = matches!(parsed.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback());
    if !matches!(parsed.scheme(), "http" | "https") || !loopback {
        return Err(format!(
            "Subscription validation request failed. The notification endpoint '{url}' is not reachable: the simulator posts only to 127.0.0.0/8."
        ));
    }
    Ok(parsed)
}

/// The simulator's client for Graph's outbound POSTs (no proxy: loopback only).
pub fn http() -> Result<reqwest::Client, String> {
    let timeouts = crate::http::Timeouts {
        connect: protocol::DELIVERY_TIMEOUT,
        request: protocol::VALIDATION_TIMEOUT,
    };
    crate::http::builder(&timeouts, None)
        .map_err(|e| e.to_string())?
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())
}

/// The validation handshake against one URL: `Err` is the message of Graph's 400.
pub async fn validate(url: &url::Url) -> Result<(), String> {
    let token = format!(
        "Validation: Testing client application reachability for subscription Request-Id: {:08x}",
        fastrand::u32(..)
    );
    let mut target = url.clone();
    target
        .query_pairs_mut()
        .append_pair(protocol::VALIDATION_TOKEN, &token);
    let failed = "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request.";
    let answer = http()?
        .post(target)
        .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .timeout(protocol::VALIDATION_TIMEOUT)
        .send()
        .await;
    let answer = match answer {
        Ok(a) => a,
        Err(e) if e.is_timeout() => {
            return Err("Subscription validation request timed out.".into());
        }
        Err(_) => return Err(failed.into()),
    };
    if answer.status() != reqwest::StatusCode::OK {
        return Err(failed.into());
    }
    match answer.text().await {
        Ok(text) if text == token => Ok(()),
        _ => Err("Subscription validation request failed. Response must exactly match validationToken query parameter.".into()),
    }
}

/// POSTs one batch to `url`: whether the receiver took it (2xx within 3 s).
pub async fn post(client: &reqwest::Client, url: &str, batch: &[Outgoing]) -> bool {
    let body = Notifications {
        value: batch.iter().map(|o| o.notification.clone()).collect(),
    };
    let sent = client
        .post(url)
        .json(&body)
        .timeout(protocol::DELIVERY_TIMEOUT)
        .send()
        .await;
    sent.is_ok_and(|r| r.status().is_success())
}
