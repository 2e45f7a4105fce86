//! Change notifications: a subscription on a folder's messages, the validation handshake, the
//! notifications Graph posts (several per POST, possibly for several subscriptions), and the
//! lifecycle notifications (`reauthorizationRequired`, `subscriptionRemoved`, `missed`).
//! A message subscription lives at most 10,080 minutes; every notification carries the
//! subscription's `clientState`, which the receiver checks.
//! <https://learn.microsoft.com/graph/change-notifications-delivery-webhooks>,
//! <https://learn.microsoft.com/graph/change-notifications-lifecycle-events>

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The longest life of a subscription on Outlook messages (without resource data).
pub const MAX_LIFETIME: Duration = Duration::from_secs(10_080 * 60);
/// The longest `clientState`.
pub const MAX_CLIENT_STATE: usize = 128;
/// Graph waits this long for the answer to the validation request.
pub const VALIDATION_TIMEOUT: Duration = Duration::from_secs(10);
/// Graph waits this long for the answer to a notification before it retries.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(3);
/// The query parameter of the validation request.
pub const VALIDATION_TOKEN: &str = "validationToken";

/// `resource` of a subscription on one folder's messages.
pub fn folder_messages(mailbox: &str, folder: &str) -> String {
    format!("users/{mailbox}/mailFolders('{folder}')/messages")
}

/// A subscription, as created and as Graph returns it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default)]
    pub change_type: String,
    #[serde(default)]
    pub notification_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_notification_url: Option<String>,
    #[serde(default)]
    pub resource: String,
    /// RFC 3339.
    #[serde(default)]
    pub expiration_date_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_state: Option<String>,
}

/// `PATCH /subscriptions/{id}`: a renewal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Renewal {
    pub expiration_date_time: String,
}

/// `GET /subscriptions`: the app's subscriptions.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct SubscriptionList {
    #[serde(default)]
    pub value: Vec<Subscription>,
    #[serde(rename = "@odata.nextLink", default)]
    pub next_link: Option<String>,
}

/// One notification: a change, or a lifecycle event.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    #[serde(default)]
    pub subscription_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_expiration_date_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// `reauthorizationRequired`, `subscriptionRemoved` or `missed` on a lifecycle notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_event: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_data: Option<serde_json::Value>,
}

/// The body of one POST from Graph.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notifications {
    #[serde(default)]
    pub value: Vec<Notification>,
}

/// A lifecycle event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    /// Renew (or reauthorize) the subscription, or it is removed.
    ReauthorizationRequired,
    /// The subscription is gone: create it again, and catch up with a delta pass.
    SubscriptionRemoved,
    /// Notifications were lost: catch up with a delta pass.
    Missed,
}

impl Lifecycle {
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            t if t.eq_ignore_ascii_case("reauthorizationRequired") => Self::ReauthorizationRequired,
            t if t.eq_ignore_ascii_case("subscriptionRemoved") => Self::SubscriptionRemoved,
            t if t.eq_ignore_ascii_case("missed") => Self::Missed,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReauthorizationRequired => "reauthorizationRequired",
            Self::SubscriptionRemoved => "subscriptionRemoved",
            Self::Missed => "missed",
        }
    }
}
