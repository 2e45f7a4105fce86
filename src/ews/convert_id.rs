//! ConvertId: the same item or folder id in another format (`EwsId`, `EwsLegacyId`,
//! `EntryId`, `HexEntryId`, `StoreId`, `OwaId`); one response message per id. Clients also
//! send it with a dummy id to learn the server's version from the response header.
//! <https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/convertid-operation>

use super::xml::{Element, XmlReader, XmlWriter};
use super::{Error, Operation};
use serde::Serialize;

/// `IdFormatType`.
pub const ID_FORMATS: [&str; 6] = [
    "EwsLegacyId",
    "EwsId",
    "EntryId",
    "HexEntryId",
    "StoreId",
    "OwaId",
];

/// `t:AlternateId`: an id, its format and the mailbox it belongs to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AlternateId {
    pub format: String,
    pub id: String,
    pub mailbox: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_archive: Option<bool>,
}

impl AlternateId {
    fn read(r: &XmlReader<'_>, el: &Element<'_>) -> Result<Self, Error> {
        let need = |n: &str| {
            el.attr(n)
                .ok_or_else(|| r.error(&format!("{} without {n}", el.name())))
        };
        Ok(Self {
            format: need("Format")?,
            id: need("Id")?,
            mailbox: need("Mailbox")?,
            is_archive: el.attr("IsArchive").map(|v| v.trim() == "true"),
        })
    }

    fn write(&self, w: &mut XmlWriter) {
        w.element("t:AlternateId")
            .attr("Format", &self.format)
            .attr("Id", &self.id)
            .attr("Mailbox", &self.mailbox)
            .attr_opt(
                "IsArchive",
                self.is_archive.map(|a| if a { "true" } else { "false" }),
            )
            .empty();
    }
}

/// `m:ConvertId`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConvertId {
    pub destination_format: String,
    /// `t:AlternateId`s; public folder ids (`t:AlternatePublicFolderId…`) are kept as
    /// unconvertible entries with their element name as the format.
    pub ids: Vec<AlternateId>,
}

/// One `m:ConvertIdResponseMessage`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ConvertIdMessage {
    pub id: Option<AlternateId>,
}

impl Operation for ConvertId {
    const NAME: &'static str = "ConvertId";
    type Message = ConvertIdMessage;

    fn write_body(&self, w: &mut XmlWriter) {
        w.element("m:ConvertId")
            .attr("DestinationFormat", &self.destination_format)
            .open();
        w.element("m:SourceIds").open();
        for id in &self.ids {
            id.write(w);
        }
        w.close("m:SourceIds");
        w.close("m:ConvertId");
    }

    fn read_body<'i>(r: &mut XmlReader<'i>, el: &Element<'i>) -> Result<Self, Error> {
        let destination_format = el.attr("DestinationFormat").unwrap_or_default();
        if !ID_FORMATS.contains(&destination_format.as_str()) {
            return Err(r.error(&format!(
                "DestinationFormat {destination_format:?} is not an IdFormatType value"
            )));
        }
        let mut ids = Vec::new();
        while let Some(child) = r.next_child(el)? {
            if child.name() != "SourceIds" {
                r.skip(&child)?;
                continue;
            }
            while let Some(id) = r.next_child(&child)? {
                ids.push(if id.name() == "AlternateId" {
                    AlternateId::read(r, &id)?
                } else {
                    AlternateId {
                        format: id.name().to_owned(),
                        ..AlternateId::default()
                    }
                });
                r.skip(&id)?;
            }
        }
        Ok(ConvertId {
            destination_format,
            ids,
        })
    }

    fn read_field<'i>(
        r: &mut XmlReader<'i>,
        el: &Element<'i>,
        m: &mut ConvertIdMessage,
    ) -> Result<bool, Error> {
        if el.name() != "AlternateId" {
            return Ok(false);
        }
        m.id = Some(AlternateId::read(r, el)?);
        r.skip(el)?;
        Ok(true)
    }
}
