//! GetStreamingEvents: a long-lived connection on which the server writes one complete SOAP
//! envelope after another (events, `ConnectionStatus` OK keep-alives, finally `Closed`). Cut the
//! body into documents with [`super::notification::StreamSplitter`], then read each with
//! [`super::read_response`].
//! <https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/getstreamingevents-operation>

use super::ids::SubscriptionId;
use super::notification::Notification;
use super::xml::{Element, XmlReader, XmlWriter};
use super::{Error, Operation};
use serde::Serialize;

/// `m:GetStreamingEvents`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GetStreamingEvents {
    pub subscription_ids: Vec<SubscriptionId>,
    /// Minutes the server keeps the connection open (1–30).
    pub connection_timeout: u32,
}

/// `ConnectionStatus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ConnectionStatus {
    Ok,
    Closed,
}

/// One `m:GetStreamingEventsResponseMessage`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GetStreamingEventsMessage {
    pub notifications: Vec<Notification>,
    pub error_subscription_ids: Vec<SubscriptionId>,
    pub connection_status: Option<ConnectionStatus>,
}

impl Operation for GetStreamingEvents {
    const NAME: &'static str = "GetStreamingEvents";
    type Message = GetStreamingEventsMessage;

    fn write_body(&self, w: &mut XmlWriter) {
        w.element("m:GetStreamingEvents").open();
        w.element("m:SubscriptionIds").open();
        for id in &self.subscription_ids {
            w.leaf("t:SubscriptionId", id.as_str());
        }
        w.close("m:SubscriptionIds");
        w.leaf("m:ConnectionTimeout", &self.connection_timeout.to_string());
        w.close("m:GetStreamingEvents");
    }

    fn read_body<'i>(r: &mut XmlReader<'i>, el: &Element<'i>) -> Result<Self, Error> {
        let mut op = GetStreamingEvents {
            subscription_ids: Vec::new(),
            connection_timeout: 30,
        };
        while let Some(child) = r.next_child(el)? {
            match child.name() {
                "SubscriptionIds" => {
                    while let Some(id) = r.next_child(&child)? {
                        op.subscription_ids.push(SubscriptionId(r.trimmed(&id)?));
                    }
                }
                "ConnectionTimeout" => op.connection_timeout = r.number(&child)?,
                _ => r.skip(&child)?,
            }
        }
        Ok(op)
    }

    fn read_field<'i>(
        r: &mut XmlReader<'i>,
        el: &Element<'i>,
        m: &mut GetStreamingEventsMessage,
    ) -> Result<bool, Error> {
        match el.name() {
            "Notifications" => {
                while let Some(n) = r.next_child(el)? {
                    if n.name() == "Notification" {
                        m.notifications.push(Notification::read(r, &n)?);
                    } else {
                        r.skip(&n)?;
                    }
                }
            }
            "ErrorSubscriptionIds" => {
                while let Some(id) = r.next_child(el)? {
                    m.error_subscription_ids
                        .push(SubscriptionId(r.trimmed(&id)?));
                }
            }
            "ConnectionStatus" => {
                m.connection_status = match r.trimmed(el)?.as_str() {
                    "Closed" => Some(ConnectionStatus::Closed),
                    _ => Some(ConnectionStatus::Ok),
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}
