//! The Dynamics 365 sink, through the Dataverse Web API: find the email activity by its message
//! id, create it when missing (subject, sender and recipients as activity parties, times,
//! direction, body when the mapping allows), then set or change its regarding record.
//! <https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/overview>
//!
//! This file holds the pure parts: the requests' URLs and bodies, and what an answer means.

use super::policy::DeliveryError;
use serde_json::{Map, Value, json};

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

/// The record an email is "regarding": a table's logical name and the row's id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Regarding {
    pub entity: String,
    pub id: String,
}

impl Regarding {
    /// The entity set (URL collection) of the table: Dataverse's plural of the logical name.
    pub fn entity_set(&self) -> String {
        let e = self.entity.as_str();
        if let Some(stem) = e
            .strip_suffix('y')
            .filter(|s| !s.ends_with(['a', 'e', 'o', 'u']))
        {
            format!("{stem}ies")
        } else if e.ends_with('s') || e.ends_with('x') {
            format!("{e}es")
        } else {
            format!("{e}s")
        }
    }

    /// The `@odata.bind` pair that sets an email's regarding to this record.
    fn binding(&self) -> (String, Value) {
        (
            format!("regardingobjectid_{}@odata.bind", self.entity),
            json!(format!("/{}({})", self.entity_set(), self.id)),
        )
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
        let (k, v) = r.binding();
        body.insert(k, v);
    }
    Value::Object(body)
}

/// The body that re-links an existing email to `regarding`.
pub fn relink_body(regarding: &Regarding) -> Value {
    let (k, v) = regarding.binding();
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
            assert_eq!(regarding(entity).entity_set(), set);
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
