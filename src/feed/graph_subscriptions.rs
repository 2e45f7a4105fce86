//! Graph change notifications, the calls: create, renew and delete a subscription on one
//! folder's messages, through [`GraphClient`] so the call gate, throttling and the token apply
//! as to every other Graph call. A notification is only a hint that the folder changed; the
//! watcher's delta pass finds out what. The payloads are [`crate::graph::subscription`]'s.

use crate::client::graph::Request;
use crate::client::{self, GraphClient, Target};
use crate::ews::Mailbox;
use crate::graph::subscription::SubscriptionList;
use crate::graph::{self, subscription::Renewal, subscription::Subscription};

/// The name `GET /subscriptions` is gated and logged under: it belongs to no one mailbox.
const APP: &str = "(subscriptions)";
/// The most pages of subscriptions read (Graph pages them by 100 or so).
const MAX_PAGES: usize = 100;
use reqwest::Method;

/// `POST`, `PATCH` and `DELETE` on `/subscriptions`.
#[derive(Clone, Debug)]
pub struct GraphSubscriptions {
    client: GraphClient,
}

impl GraphSubscriptions {
    pub fn new(client: GraphClient) -> Self {
        Self { client }
    }

    /// Creates `wanted` (Graph validates its URL before it answers); returns it with its id
    /// and the expiry Graph granted.
    pub async fn create(
        &self,
        mailbox: &str,
        wanted: &Subscription,
    ) -> Result<Subscription, client::Error> {
        let body = to_json(wanted);
        let url = self.client.url("/subscriptions");
        self.call(
            mailbox,
            "subscriptions.create",
            Method::POST,
            url,
            Some(&body),
        )
        .await?
        .json()
    }

    /// Moves the subscription's expiry to `expiration_date_time`; returns what Graph granted.
    pub async fn renew(
        &self,
        mailbox: &str,
        id: &str,
        expiration_date_time: String,
    ) -> Result<Subscription, client::Error> {
        let body = to_json(&Renewal {
            expiration_date_time,
        });
        let url = self.subscription_url(id);
        self.call(
            mailbox,
            "subscriptions.update",
            Method::PATCH,
            url,
            Some(&body),
        )
        .await?
        .json()
    }

    /// Every subscription of the app (all its agents and mailboxes).
    pub async fn list(&self) -> Result<Vec<Subscription>, client::Error> {
        let mut url = self.client.url("/subscriptions");
        let mut all = Vec::new();
        for _ in 0..MAX_PAGES {
            let page: SubscriptionList = self
                .call(APP, "subscriptions.list", Method::GET, url, None)
                .await?
                .json()?;
            all.extend(page.value);
            match page.next_link.as_deref().and_then(|l| self.client.link(l)) {
                Some(next) => url = next,
                None => break,
            }
        }
        Ok(all)
    }

    /// Ends a subscription.
    pub async fn delete(&self, mailbox: &str, id: &str) -> Result<(), client::Error> {
        let url = self.subscription_url(id);
        self.call(mailbox, "subscriptions.delete", Method::DELETE, url, None)
            .await
            .map(drop)
    }

    fn subscription_url(&self, id: &str) -> url::Url {
        self.client
            .url(&format!("/subscriptions/{}", graph::segment(id)))
    }

    async fn call(
        &self,
        mailbox: &str,
        operation: &'static str,
        method: Method,
        url: url::Url,
        body: Option<&serde_json::Value>,
    ) -> Result<client::graph::Answer, client::Error> {
        let request = Request {
            operation,
            target: Target::Folder,
            method,
            url,
            prefer: graph::prefer(None, false),
            body,
        };
        self.client
            .send(&Mailbox(mailbox.to_owned()), request)
            .await
    }
}

/// The JSON of a payload that is plain strings: it always serialises.
fn to_json(value: &impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or_default()
}

/// The HTTP status of a refused call (404: the subscription is gone).
pub fn refused_status(e: &client::Error) -> Option<u16> {
    match e {
        client::Error::GraphRefused { status, .. } => Some(*status),
        _ => None,
    }
}
