//! The Dynamics 365 sink, through the Dataverse Web API: find the email activity by its message
//! id, create it when missing (subject, sender and recipients as activity parties, times,
//! direction, body when the mapping allows), then set or change its regarding record.
//! <https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/overview>
//!
//! The requests' URLs and bodies and what an answer means are pure functions; [`DynamicsSink`]
//! does the calls.

use super::Sink;
use super::policy::DeliveryError;
use crate::http::oauth::TokenSource;
use crate::tracking::{Direction, TrackingRequest};
use secrecy::SecretString;
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// Where the organisation is and how to sign in to it.
#[derive(Debug)]
pub struct DynamicsSettings {
    /// `https://{org}.crm.dynamics.com`
    pub org: url::Url,
    pub token_url: url::Url,
    pub client_id: String,
    pub client_secret: SecretString,
    /// Act on behalf of the mailbox owner (CallerObjectId).
    pub act_as_owner: bool,
}

/// The Dataverse sink: OAuth client credentials for the organisation, then per request a
/// lookup by message id, a create or a re-link, optionally as the mailbox's owner.
pub struct DynamicsSink {
    http: reqwest::Client,
    org: url::Url,
    tokens: TokenSource,
    act_as_owner: bool,
    /// Mailbox → the owner's Entra object id, looked up once.
    owners: tokio::sync::Mutex<HashMap<String, String>>,
}

impl DynamicsSink {
    pub fn new(settings: DynamicsSettings) -> Result<Self, crate::http::Error> {
        let http = crate::http::client(&crate::http::Timeouts::default())?;
        let org = settings.org;
        let scope = format!("{}/.default", org.as_str().trim_end_matches('/'));
        Ok(Self {
            tokens: TokenSource::new(
                settings.token_url,
                settings.client_id,
                settings.client_secret,
                scope,
                http.clone(),
            ),
            http,
            org,
            act_as_owner: settings.act_as_owner,
            owners: Default::default(),
        })
    }

    fn url(&self, path_and_query: &str) -> String {
        format!(
            "{}{path_and_query}",
            self.org.as_str().trim_end_matches('/')
        )
    }

    /// One Web API call; a JSON answer or the error it stands for.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        caller: Option<&str>,
    ) -> Result<Value, DeliveryError> {
        let token = self.tokens.token().await.map_err(|e| {
            if e.is_rejected() {
                DeliveryError::Rejected {
                    reason: format!("Dataverse sign-in: {e}"),
                }
            } else {
                DeliveryError::Transient {
                    reason: format!("Dataverse sign-in: {e}"),
                    retry_after: None,
                }
            }
        })?;
        let mut request = self
            .http
            .request(method, self.url(path))
            .bearer_auth(token.secret())
            .header("OData-Version", "4.0")
            .header("OData-MaxVersion", "4.0")
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(id) = caller {
            request = request.header("CallerObjectId", id);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let answer = request
            .send()
            .await
            .map_err(|e| super::transport_error("Dataverse", &e))?;
        let status = answer.status().as_u16();
        let retry_after = crate::http::retry_after(answer.headers(), std::time::SystemTime::now());
        let text = answer
            .text()
            .await
            .map_err(|e| super::transport_error("Dataverse", &e))?;
        let json: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::Null)
        };
        if (200..300).contains(&status) {
            Ok(json)
        } else {
            Err(error_outcome(status, &json, retry_after))
        }
    }

    /// The Entra object id of the mailbox's owner, for `CallerObjectId` (R34).
    async fn owner(&self, mailbox: &str) -> Result<String, DeliveryError> {
        if let Some(id) = self.owners.lock().await.get(mailbox) {
            return Ok(id.clone());
        }
        let answer = self
            .call(reqwest::Method::GET, &owner_path(mailbox), None, None)
            .await?;
        let id = answer["value"]
            .get(0)
            .and_then(|u| u["azureactivedirectoryobjectid"].as_str())
            .ok_or_else(|| DeliveryError::Rejected {
                reason: format!("Dataverse has no user with the address {mailbox}; add the user, or set act_as_owner = false"),
            })?
            .to_owned();
        self.owners
            .lock()
            .await
            .insert(mailbox.to_owned(), id.clone());
        Ok(id)
    }
}

impl Sink for DynamicsSink {
    async fn deliver(&self, request: &TrackingRequest) -> Result<(), DeliveryError> {
        let caller = match self.act_as_owner {
            true => Some(self.owner(&request.mailbox).await?),
            false => None,
        };
        let caller = caller.as_deref();
        let email = EmailActivity::of(request);
        let found = self
            .call(
                reqwest::Method::GET,
                &lookup_path(&email.message_id),
                None,
                caller,
            )
            .await?;
        match (found_activity(&found), &request.regarding) {
            // Known already: set or change its regarding (R12, R8); nothing else to do.
            (Some(id), Some(regarding)) => {
                let path = format!("{API_PATH}/emails({id})");
                self.call(
                    reqwest::Method::PATCH,
                    &path,
                    Some(&relink_body(regarding)),
                    caller,
                )
                .await?;
            }
            (Some(_), None) => {}
            (None, regarding) => {
                let path = format!("{API_PATH}/emails");
                self.call(
                    reqwest::Method::POST,
                    &path,
                    Some(&create_body(&email, regarding.as_ref())),
                    caller,
                )
                .await?;
            }
        }
        Ok(())
    }
}

/// The query that finds a Dataverse user by mailbox address.
pub fn owner_path(mailbox: &str) -> String {
    let literal = mailbox.replace('\'', "''");
    format!(
        "{API_PATH}/systemusers?$select=azureactivedirectoryobjectid&$filter=internalemailaddress eq '{}'",
        percent_encode(&literal)
    )
}

/// The Web API's path under the organisation URL.
pub const API_PATH: &str = "/api/data/v9.2";

/// `participationtypemask` of an email's activity parties.
/// <https://learn.microsoft.com/en-us/power-apps/developer/data-platform/activityparty-entity>
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Participation {
    Sender = 1,
    To = 2,
    Cc = 3,
}

/// The fields of an email activity foldertrack writes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EmailActivity {
    pub message_id: String,
    pub subject: Option<String>,
    pub from: Option<String>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    /// RFC 3339, UTC.
    pub sent_at: Option<String>,
    /// True when the mailbox owner sent it.
    pub outgoing: bool,
    /// Only when the mapping says `include_body`.
    pub body: Option<String>,
}

pub use crate::tracking::Regarding;

/// The entity set (URL collection) of a table: Dataverse's plural of the logical name.
pub fn entity_set(entity: &str) -> String {
    if let Some(stem) = entity
        .strip_suffix('y')
        .filter(|s| !s.ends_with(['a', 'e', 'o', 'u']))
    {
        format!("{stem}ies")
    } else if entity.ends_with('s') || entity.ends_with('x') {
        format!("{entity}es")
    } else {
        format!("{entity}s")
    }
}

/// The `@odata.bind` pair that sets an email's regarding to this record.
fn binding(regarding: &Regarding) -> (String, Value) {
    (
        format!("regardingobjectid_{}@odata.bind", regarding.entity),
        json!(format!(
            "/{}({})",
            entity_set(&regarding.entity),
            regarding.id
        )),
    )
}

impl EmailActivity {
    /// The activity a tracking request describes.
    pub fn of(request: &TrackingRequest) -> Self {
        let m = &request.message;
        let address = |a: &crate::tracking::Address| a.address.clone();
        Self {
            message_id: m
                .internet_message_id
                .clone()
                .unwrap_or_else(|| format!("<{}@foldertrack>", request.id)),
            subject: m.subject.clone(),
            from: m.from.as_ref().map(address),
            to: m.to.iter().map(address).collect(),
            cc: m.cc.iter().map(address).collect(),
            sent_at: m.sent_at.map(|t| t.to_string()),
            outgoing: m.direction == Some(Direction::Outgoing),
            body: m.body.clone(),
        }
    }
}

/// The query that finds an email activity by its message id.
pub fn lookup_path(message_id: &str) -> String {
    // OData string literals double their single quotes.
    let literal = message_id.replace('\'', "''");
    format!(
        "{API_PATH}/emails?$select=activityid&$filter=messageid eq '{}'",
        percent_encode(&literal)
    )
}

/// The activity id in a lookup answer, if the email exists.
pub fn found_activity(answer: &Value) -> Option<String> {
    answer["value"].get(0)?["activityid"]
        .as_str()
        .map(str::to_owned)
}

/// The body that creates the email activity, with its regarding when there is one.
pub fn create_body(email: &EmailActivity, regarding: Option<&Regarding>) -> Value {
    let mut body = Map::new();
    body.insert("messageid".into(), json!(email.message_id));
    if let Some(s) = &email.subject {
        body.insert("subject".into(), json!(s));
    }
    if let Some(t) = &email.sent_at {
        body.insert("senton".into(), json!(t));
        body.insert("actualend".into(), json!(t));
    }
    body.insert("directioncode".into(), json!(email.outgoing));
    if let Some(b) = &email.body {
        body.insert("description".into(), json!(b));
    }
    let parties: Vec<Value> = email
        .from
        .iter()
        .map(|a| (Participation::Sender, a))
        .chain(email.to.iter().map(|a| (Participation::To, a)))
        .chain(email.cc.iter().map(|a| (Participation::Cc, a)))
        .map(|(kind, address)| json!({"participationtypemask": kind as u8, "addressused": address}))
        .collect();
    body.insert("email_activity_parties".into(), Value::Array(parties));
    if let Some(r) = regarding {
        let (k, v) = binding(r);
        body.insert(k, v);
    }
    Value::Object(body)
}

/// The body that re-links an existing email to `regarding`.
pub fn relink_body(regarding: &Regarding) -> Value {
    let (k, v) = binding(regarding);
    json!({ k: v })
}

/// What a Dataverse error answer means. 403s and privilege errors are final and name the
/// missing privilege when the message does (`prvAppendToAccount`, …).
pub fn error_outcome(
    status: u16,
    answer: &Value,
    retry_after: Option<std::time::Duration>,
) -> DeliveryError {
    let message = answer["error"]["message"].as_str().unwrap_or("").trim();
    let privilege = message
        .split(|c: char| !c.is_ascii_alphanumeric())
        .find(|w| w.starts_with("prv"));
    match status {
        408 | 429 | 500..=599 => DeliveryError::Transient {
            reason: format!("Dataverse answered HTTP {status}: {message}"),
            retry_after,
        },
        _ => DeliveryError::Rejected {
            reason: match privilege {
                Some(p) => format!(
                    "Dataverse refused (HTTP {status}): the user lacks the privilege {p}; grant it in a security role, then `foldertrack retry`"
                ),
                None => format!("Dataverse refused (HTTP {status}): {message}"),
            },
        },
    }
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'\'' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regarding(entity: &str) -> Regarding {
        Regarding {
            entity: entity.into(),
            id: "5f2c0b8e-1111-4c2f-9d1a-000000000001".into(),
        }
    }

    #[test]
    fn entity_sets_follow_dataverse_plurals() {
        for (entity, set) in [
            ("account", "accounts"),
            ("contact", "contacts"),
            ("opportunity", "opportunities"),
            ("incident", "incidents"),
            ("new_survey", "new_surveys"),
            ("new_address", "new_addresses"),
            ("new_key", "new_keys"),
        ] {
            assert_eq!(entity_set(entity), set);
        }
    }

    #[test]
    fn create_body_carries_parties_direction_and_regarding() {
        let email = EmailActivity {
            message_id: "<a'b@example.com>".into(),
            subject: Some("Quote & terms".into()),
            from: Some("buyer@contoso.com".into()),
            to: vec!["alice@example.com".into()],
            cc: vec!["bob@example.com".into()],
            sent_at: Some("2026-11-24T09:30:00Z".into()),
            outgoing: false,
            body: None,
        };
        let body = create_body(&email, Some(&regarding("account")));
        assert_eq!(body["messageid"], "<a'b@example.com>");
        assert_eq!(body["directioncode"], false);
        assert!(body.get("description").is_none());
        assert_eq!(
            body["regardingobjectid_account@odata.bind"],
            "/accounts(5f2c0b8e-1111-4c2f-9d1a-000000000001)"
        );
        let masks: Vec<u64> = body["email_activity_parties"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["participationtypemask"].as_u64().unwrap())
            .collect();
        assert_eq!(masks, [1, 2, 3]);
        assert_eq!(
            lookup_path(&email.message_id),
            "/api/data/v9.2/emails?$select=activityid&$filter=messageid eq '%3Ca''b%40example.com%3E'"
        );
    }

    #[test]
    fn privilege_errors_are_final_and_name_the_privilege() {
        let answer = json!({"error": {"code": "0x80040220", "message": "Principal user (Id=1) is missing prvAppendToAccount privilege (Id=2) on OTC=1"}});
        let DeliveryError::Rejected { reason } = error_outcome(403, &answer, None) else {
            panic!("a 403 must be final");
        };
        assert!(reason.contains("prvAppendToAccount"), "{reason}");
        assert!(matches!(
            error_outcome(503, &json!({}), None),
            DeliveryError::Transient { .. }
        ));
        assert_eq!(
            found_activity(&json!({"value": [{"activityid": "abc"}]})),
            Some("abc".into())
        );
        assert_eq!(found_activity(&json!({"value": []})), None);
    }
}
