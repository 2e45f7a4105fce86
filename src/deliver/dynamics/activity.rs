//! The email activity a tracking request becomes, as server-side sync would have made it:
//! subject, message id, sender and recipients as activity parties, the direction (a mail the
//! owner sent is outgoing), when it was sent and received — through `actualstart`,
//! `actualend` and `sortdate`, since `senton` is not valid for create — and, once written,
//! completed with the status Received or Sent. PURE: the request in, JSON bodies out.
//! <https://learn.microsoft.com/en-us/power-apps/developer/data-platform/reference/entities/email>

use crate::tracking::{Direction, TrackingRequest};
use jiff::Timestamp;
use serde_json::{Map, Value, json};

/// `email.subject`'s maximum length.
const SUBJECT_MAX: usize = 800;
/// `email.messageid`'s maximum length.
pub const MESSAGE_ID_MAX: usize = 320;

/// `statecode` Completed.
const COMPLETED: u8 = 1;
/// `statuscode` Sent and Received (state Completed).
const SENT: u8 = 3;
const RECEIVED: u8 = 4;

/// The fields of an email activity foldertrack writes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EmailActivity {
    pub message_id: String,
    pub subject: Option<String>,
    pub from: Option<String>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub sent_at: Option<Timestamp>,
    pub received_at: Option<Timestamp>,
    /// True when the mailbox owner sent it.
    pub outgoing: bool,
    /// Only when the mapping says `include_body`.
    pub body: Option<String>,
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
            sent_at: m.sent_at,
            received_at: m.received_at,
            outgoing: m.direction == Some(Direction::Outgoing),
            body: m.body.clone(),
        }
    }

    /// When the mail left or arrived: received for incoming mail, sent for outgoing.
    fn finished_at(&self) -> Option<Timestamp> {
        match self.outgoing {
            true => self.sent_at.or(self.received_at),
            false => self.received_at.or(self.sent_at),
        }
    }

    /// The columns of the create (parties and regarding are added by the caller): the email
    /// is created open, as the service creates activities only in their default state.
    pub fn columns(&self) -> Map<String, Value> {
        let mut body = Map::new();
        body.insert("messageid".into(), json!(self.message_id));
        if let Some(s) = &self.subject {
            body.insert(
                "subject".into(),
                json!(s.chars().take(SUBJECT_MAX).collect::<String>()),
            );
        }
        body.insert("directioncode".into(), json!(self.outgoing));
        if let Some(t) = self.sent_at.or(self.received_at) {
            body.insert("actualstart".into(), json!(utc(t)));
        }
        if let Some(t) = self.finished_at() {
            body.insert("actualend".into(), json!(utc(t)));
            body.insert("sortdate".into(), json!(utc(t)));
        }
        if let Some(b) = &self.body {
            body.insert("description".into(), json!(b));
        }
        body
    }

    /// The update that completes the email: Sent for outgoing mail, Received otherwise.
    pub fn completion(&self) -> Value {
        json!({"statecode": COMPLETED, "statuscode": if self.outgoing { SENT } else { RECEIVED }})
    }
}

/// UTC to the second, `Z`-suffixed.
fn utc(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `{nav}@odata.bind: "/{set}({id})"`.
pub fn bind(nav: &str, set: &str, id: &str) -> (String, Value) {
    (format!("{nav}@odata.bind"), json!(format!("/{set}({id})")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_go_to_writable_columns_and_the_state_follows_the_direction() {
        let sent: Timestamp = "2026-11-24T09:30:00.123Z".parse().unwrap();
        let received: Timestamp = "2026-11-24T09:31:05Z".parse().unwrap();
        let incoming = EmailActivity {
            message_id: "<m@x>".into(),
            sent_at: Some(sent),
            received_at: Some(received),
            ..EmailActivity::default()
        };
        let c = incoming.columns();
        assert_eq!(c["actualstart"], "2026-11-24T09:30:00Z");
        assert_eq!(c["actualend"], "2026-11-24T09:31:05Z");
        assert_eq!(c["directioncode"], false);
        assert!(!c.contains_key("senton") && !c.contains_key("statecode"));
        assert_eq!(
            incoming.completion(),
            json!({"statecode": 1, "statuscode": 4})
        );
        let outgoing = EmailActivity {
            outgoing: true,
            ..incoming
        };
        assert_eq!(outgoing.columns()["actualend"], "2026-11-24T09:30:00Z");
        assert_eq!(
            outgoing.completion(),
            json!({"statecode": 1, "statuscode": 3})
        );
    }
}
