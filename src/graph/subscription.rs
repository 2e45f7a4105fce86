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

/// `resource` of a subscription on one folder's messages; the address and the id are
/// percent-encoded as in a request path, so a `/` in an id does not split the resource.
pub fn folder_messages(mailbox: &str, folder: &str) -> String {
    let (mailbox, folder) = (super::segment(mailbox), super::segment(folder));
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

/// The changes foldertrack subscribes to: a mail moved in arrives as `created` in the folder it
/// lands in; `updated` and `deleted` keep the folder's delta pass as current as the poll's.
pub const CHANGE_TYPES: &str = "created,updated,deleted";
/// The change types Outlook message subscriptions take.
pub const KNOWN_CHANGE_TYPES: [&str; 3] = ["created", "updated", "deleted"];

impl Subscription {
    /// A subscription on one folder's messages, its lifecycle notifications sent to the same
    /// URL (the receiver tells them apart by `lifecycleEvent`).
    pub fn on_folder(
        mailbox: &str,
        folder: &str,
        notification_url: &str,
        client_state: &str,
        expiration_date_time: String,
    ) -> Self {
        Self {
            id: None,
            change_type: CHANGE_TYPES.to_owned(),
            notification_url: notification_url.to_owned(),
            lifecycle_notification_url: Some(notification_url.to_owned()),
            resource: folder_messages(mailbox, folder),
            expiration_date_time,
            client_state: Some(client_state.to_owned()),
        }
    }
}

/// The mailbox a subscription's `resource` names (`users/{mailbox}/…`), if it names one.
pub fn resource_mailbox(resource: &str) -> Option<&str> {
    let mut parts = resource.trim_start_matches('/').split('/');
    let users = parts.next()?;
    let mailbox = parts.next()?;
    (users.eq_ignore_ascii_case("users") && !mailbox.is_empty()).then_some(mailbox)
}

/// `expirationDateTime` of a subscription that lives `lifetime` from `now` (never longer than
/// [`MAX_LIFETIME`]).
pub fn expiration(now: jiff::Timestamp, lifetime: Duration) -> String {
    let lifetime = lifetime.min(MAX_LIFETIME);
    let at = now
        .checked_add(jiff::SignedDuration::try_from(lifetime).unwrap_or(jiff::SignedDuration::ZERO))
        .unwrap_or(now);
    at.round(jiff::Unit::Millisecond).unwrap_or(at).to_string()
}

/// How long until `expiration_date_time`; `None` when it is unreadable, zero when it passed.
pub fn remaining(expiration_date_time: &str, now: jiff::Timestamp) -> Option<Duration> {
    let at: jiff::Timestamp = expiration_date_time.parse().ok()?;
    Some(Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO))
}

/// When to renew a subscription that expires in `remaining`: after three quarters of it, so a
/// failed renewal has a quarter of the lifetime left to be retried before notifications stop.
pub fn renew_in(remaining: Duration) -> Duration {
    remaining.mul_f64(0.75)
}

/// The token of a validation request, decoded, from the request's query string; the receiver
/// answers it as `text/plain` with status 200 within [`VALIDATION_TIMEOUT`].
pub fn validation_token(query: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == VALIDATION_TOKEN)
        .map(|(_, v)| v.into_owned())
}

/// What one received notification asks of the receiver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Received {
    /// Something changed in the subscription's folder: sync it.
    Changed { subscription_id: String },
    /// A lifecycle event of the subscription.
    Lifecycle {
        subscription_id: String,
        event: Lifecycle,
    },
    /// The `clientState` is missing or not ours: not from Graph, or not for us; never acted on.
    Forged,
    /// A lifecycle event this build does not know: nothing to do.
    Unknown,
}

/// Sorts a notification by what it asks, checking its `clientState` against `client_state`
/// (every notification Graph sends for our subscriptions carries it, lifecycle ones too).
pub fn receive(n: &Notification, client_state: &str) -> Received {
    let ours = n
        .client_state
        .as_deref()
        .is_some_and(|c| same_secret(c.as_bytes(), client_state.as_bytes()));
    if !ours || n.subscription_id.is_empty() {
        return Received::Forged;
    }
    let subscription_id = n.subscription_id.clone();
    match n.lifecycle_event.as_deref() {
        None => Received::Changed { subscription_id },
        Some(text) => match Lifecycle::parse(text) {
            Some(event) => Received::Lifecycle {
                subscription_id,
                event,
            },
            None => Received::Unknown,
        },
    }
}

/// Compares two secrets in time that depends on their length only, so a forger learns nothing
/// from how fast a guess is refused.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(client_state: Option<&str>, lifecycle: Option<&str>) -> Notification {
        Notification {
            subscription_id: "sub-1".into(),
            client_state: client_state.map(str::to_owned),
            lifecycle_event: lifecycle.map(str::to_owned),
            change_type: lifecycle.is_none().then(|| "created".to_owned()),
            ..Notification::default()
        }
    }

    #[test]
    fn notifications_are_sorted_by_client_state_then_lifecycle_event() {
        let changed = Received::Changed {
            subscription_id: "sub-1".into(),
        };
        assert_eq!(receive(&note(Some("s3cret"), None), "s3cret"), changed);
        assert_eq!(
            receive(&note(Some("s3cret"), Some("subscriptionRemoved")), "s3cret"),
            Received::Lifecycle {
                subscription_id: "sub-1".into(),
                event: Lifecycle::SubscriptionRemoved
            }
        );
        assert_eq!(
            receive(&note(Some("s3cret"), Some("missed")), "s3cret"),
            Received::Lifecycle {
                subscription_id: "sub-1".into(),
                event: Lifecycle::Missed
            }
        );
        assert_eq!(
            receive(&note(Some("s3cret"), Some("somethingNew")), "s3cret"),
            Received::Unknown
        );
        for forged in [
            note(Some("s3creT"), None),
            note(Some("s3cre"), None),
            note(None, None),
            note(Some("wrong"), Some("missed")),
            Notification {
                subscription_id: String::new(),
                ..note(Some("s3cret"), None)
            },
        ] {
            assert_eq!(receive(&forged, "s3cret"), Received::Forged, "{forged:?}");
        }
    }

    #[test]
    fn a_notification_post_reads_as_graph_sends_it() {
        let body = r##"{"value":[{"subscriptionId":"7f1","subscriptionExpirationDateTime":"2026-12-02T10:00:00.000Z","changeType":"created","resource":"Users/a/Messages/AAM=","resourceData":{"@odata.type":"#Microsoft.Graph.Message","id":"AAM="},"clientState":"x","tenantId":"t"},{"lifecycleEvent":"missed","subscriptionId":"7f1","clientState":"x"}]}"##;
        let n: Notifications = serde_json::from_str(body).unwrap();
        assert_eq!(n.value.len(), 2);
        assert_eq!(n.value[0].change_type.as_deref(), Some("created"));
        assert_eq!(n.value[1].lifecycle_event.as_deref(), Some("missed"));
    }

    #[test]
    fn lifetimes_are_capped_and_renewed_at_three_quarters() {
        let now: jiff::Timestamp = "2026-12-01T10:00:00Z".parse().unwrap();
        let exp = expiration(now, Duration::from_secs(3600));
        assert_eq!(exp, "2026-12-01T11:00:00Z");
        assert_eq!(remaining(&exp, now), Some(Duration::from_secs(3600)));
        let capped = expiration(now, Duration::from_secs(30 * 86_400));
        assert_eq!(remaining(&capped, now), Some(MAX_LIFETIME));
        assert_eq!(remaining("2026-12-01T09:00:00Z", now), Some(Duration::ZERO));
        assert_eq!(remaining("yesterday", now), None);
        assert_eq!(
            renew_in(Duration::from_secs(4)),
            Duration::from_secs(3),
            "a quarter is left to retry"
        );
    }

    #[test]
    fn a_subscription_on_a_folder_names_its_messages_and_our_secret() {
        let s = Subscription::on_folder("a@x", "AQM=", "https://h/n", "s", "T".into());
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["resource"], "users/a@x/mailFolders('AQM%3D')/messages");
        assert_eq!(json["changeType"], "created,updated,deleted");
        assert_eq!(json["lifecycleNotificationUrl"], "https://h/n");
        assert_eq!(json["clientState"], "s");
        assert!(json.get("id").is_none());
    }

    #[test]
    fn a_folder_id_with_a_slash_stays_one_segment_of_the_resource() {
        assert_eq!(
            folder_messages("a@x", "AQMk/1+="),
            "users/a@x/mailFolders('AQMk%2F1%2B%3D')/messages"
        );
    }

    #[test]
    fn a_resource_names_its_mailbox() {
        assert_eq!(
            resource_mailbox(&folder_messages("a@x", "AQM=")),
            Some("a@x")
        );
        assert_eq!(resource_mailbox("/Users/b@x/messages"), Some("b@x"));
        assert_eq!(resource_mailbox("groups/g/threads"), None);
        assert_eq!(resource_mailbox("users"), None);
    }

    #[test]
    fn the_validation_token_is_decoded_from_the_query() {
        assert_eq!(
            validation_token("validationToken=Validation%3a+Testing+client+application"),
            Some("Validation: Testing client application".into())
        );
        assert_eq!(validation_token("other=1"), None);
    }
}
