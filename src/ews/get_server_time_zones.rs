//! GetServerTimeZones: the Windows time zones the server knows (`UTC`, `W. Europe Standard
//! Time`, …), all of them or the ones asked for, optionally with their periods and transitions.
//! <https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/getservertimezones-operation>

use super::xml::{Element, XmlReader, XmlWriter};
use super::{Error, Operation};
use serde::Serialize;

/// `m:GetServerTimeZones`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GetServerTimeZones {
    /// `m:Ids/t:Id`; empty asks for every zone.
    pub ids: Vec<String>,
    pub return_full_data: bool,
}

/// One `t:TimeZoneDefinition` (its id and name; the rules are not read back).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TimeZoneDefinition {
    pub id: String,
    pub name: String,
}

/// One `m:GetServerTimeZonesResponseMessage`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TimeZonesMessage {
    pub zones: Vec<TimeZoneDefinition>,
}

impl Operation for GetServerTimeZones {
    const NAME: &'static str = "GetServerTimeZones";
    type Message = TimeZonesMessage;

    fn write_body(&self, w: &mut XmlWriter) {
        w.element("m:GetServerTimeZones")
            .attr(
                "ReturnFullTimeZoneData",
                if self.return_full_data {
                    "true"
                } else {
                    "false"
                },
            )
            .open();
        if !self.ids.is_empty() {
            w.element("m:Ids").open();
            for id in &self.ids {
                w.leaf("t:Id", id);
            }
            w.close("m:Ids");
        }
        w.close("m:GetServerTimeZones");
    }

    fn read_body<'i>(r: &mut XmlReader<'i>, el: &Element<'i>) -> Result<Self, Error> {
        let mut op = GetServerTimeZones {
            ids: Vec::new(),
            return_full_data: el.attr("ReturnFullTimeZoneData").as_deref() == Some("true"),
        };
        while let Some(child) = r.next_child(el)? {
            if child.name() == "Ids" {
                while let Some(id) = r.next_child(&child)? {
                    op.ids.push(r.trimmed(&id)?);
                }
            } else {
                r.skip(&child)?;
            }
        }
        Ok(op)
    }

    fn read_field<'i>(
        r: &mut XmlReader<'i>,
        el: &Element<'i>,
        m: &mut TimeZonesMessage,
    ) -> Result<bool, Error> {
        if el.name() != "TimeZoneDefinitions" {
            return Ok(false);
        }
        while let Some(zone) = r.next_child(el)? {
            m.zones.push(TimeZoneDefinition {
                id: zone.attr("Id").unwrap_or_default(),
                name: zone.attr("Name").unwrap_or_default(),
            });
            r.skip(&zone)?;
        }
        Ok(true)
    }
}
