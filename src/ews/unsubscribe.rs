//! Unsubscribe: end a subscription (ErrorSubscriptionNotFound when it had already lapsed).
//! <https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/unsubscribe-operation>

use super::ids::SubscriptionId;
use super::xml::{Element, XmlReader, XmlWriter};
use super::{Error, Operation};
use serde::Serialize;

/// `m:Unsubscribe`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Unsubscribe {
    pub subscription_id: SubscriptionId,
}

impl Operation for Unsubscribe {
    const NAME: &'static str = "Unsubscribe";
    type Message = ();

    fn write_body(&self, w: &mut XmlWriter) {
        w.element("m:Unsubscribe").open();
        w.leaf("m:SubscriptionId", self.subscription_id.as_str());
        w.close("m:Unsubscribe");
    }

    fn read_body<'i>(r: &mut XmlReader<'i>, el: &Element<'i>) -> Result<Self, Error> {
        let mut id = None;
        while let Some(child) = r.next_child(el)? {
            if child.name() == "SubscriptionId" {
                id = Some(SubscriptionId(r.trimmed(&child)?));
            } else {
                r.skip(&child)?;
            }
        }
        let subscription_id = id.ok_or_else(|| r.error("Unsubscribe without a SubscriptionId"))?;
        Ok(Unsubscribe { subscription_id })
    }

    fn read_field<'i>(_: &mut XmlReader<'i>, _: &Element<'i>, _: &mut ()) -> Result<bool, Error> {
        Ok(false)
    }
}
