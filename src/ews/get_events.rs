//! GetEvents: poll a pull subscription for the events after a watermark (at most 50 a call;
//! `MoreEvents` says to call again at once).
//! <https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/getevents-operation>

use super::ids::{SubscriptionId, Watermark};
use super::notification::Notification;
use super::xml::{Element, XmlReader, XmlWriter};
use super::{Error, Operation};
use serde::Serialize;

/// `m:GetEvents`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GetEvents {
    pub subscription_id: SubscriptionId,
    pub watermark: Watermark,
}

/// One `m:GetEventsResponseMessage`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GetEventsMessage {
    pub notification: Option<Notification>,
}

impl Operation for GetEvents {
    const NAME: &'static str = "GetEvents";
    type Message = GetEventsMessage;

    fn write_body(&self, w: &mut XmlWriter) {
        w.element("m:GetEvents").open();
        w.leaf("m:SubscriptionId", self.subscription_id.as_str());
        w.leaf("m:Watermark", self.watermark.as_str());
        w.close("m:GetEvents");
    }

    fn read_body<'i>(r: &mut XmlReader<'i>, el: &Element<'i>) -> Result<Self, Error> {
        let (mut id, mut watermark) = (None, None);
        while let Some(child) = r.next_child(el)? {
            match child.name() {
                "SubscriptionId" => id = Some(SubscriptionId(r.trimmed(&child)?)),
                "Watermark" => watermark = Some(Watermark(r.trimmed(&child)?)),
                _ => r.skip(&child)?,
            }
        }
        match (id, watermark) {
            (Some(subscription_id), Some(watermark)) => Ok(GetEvents {
                subscription_id,
                watermark,
            }),
            _ => Err(r.error("GetEvents needs a SubscriptionId and a Watermark")),
        }
    }

    fn read_field<'i>(
        r: &mut XmlReader<'i>,
        el: &Element<'i>,
        m: &mut GetEventsMessage,
    ) -> Result<bool, Error> {
        if el.name() != "Notification" {
            return Ok(false);
        }
        m.notification = Some(Notification::read(r, el)?);
        Ok(true)
    }
}
