//! GetAttachment: the content of attachments, by the AttachmentIds GetItem listed (the item's
//! `item:Attachments` property). A file attachment comes back with its content in Base64; an
//! item attachment (an attached mail) is listed without one. One response message per id.
//! <https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/getattachment-operation>

use super::xml::{Element, XmlReader, XmlWriter};
use super::{Error, Operation};
use serde::{Deserialize, Serialize};

/// An attachment as GetItem lists it (no content) or GetAttachment returns it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// `FileAttachment`, `ItemAttachment` or `ReferenceAttachment`.
    pub kind: String,
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default)]
    pub is_inline: bool,
    /// Base64, as sent (file attachments from GetAttachment only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

const KINDS: [&str; 3] = ["FileAttachment", "ItemAttachment", "ReferenceAttachment"];

impl Attachment {
    /// Reads one attachment element; unknown children are skipped.
    pub fn read(r: &mut XmlReader<'_>, el: &Element<'_>) -> Result<Self, Error> {
        let mut a = Attachment {
            kind: el.name().to_owned(),
            ..Attachment::default()
        };
        while let Some(child) = r.next_child(el)? {
            match child.name() {
                "AttachmentId" => {
                    a.id = child
                        .attr("Id")
                        .ok_or_else(|| r.error("<AttachmentId> without an Id"))?;
                    r.skip(&child)?;
                }
                "Name" => a.name = Some(r.text(&child)?),
                "ContentType" => a.content_type = Some(r.trimmed(&child)?),
                "Size" => a.size = Some(r.number(&child)?),
                "IsInline" => a.is_inline = r.bool(&child)?,
                "Content" => a.content = Some(r.trimmed(&child)?),
                _ => r.skip(&child)?,
            }
        }
        Ok(a)
    }

    /// Writes it in schema order (AttachmentType, then FileAttachmentType's Content).
    pub fn write(&self, w: &mut XmlWriter) {
        let kind = if self.kind.is_empty() {
            "FileAttachment"
        } else {
            &self.kind
        };
        let name = format!("t:{kind}");
        w.element(&name).open();
        w.element("t:AttachmentId").attr("Id", &self.id).empty();
        if let Some(n) = &self.name {
            w.leaf("t:Name", n);
        }
        if let Some(c) = &self.content_type {
            w.leaf("t:ContentType", c);
        }
        if let Some(s) = self.size {
            w.leaf("t:Size", &s.to_string());
        }
        w.leaf("t:IsInline", if self.is_inline { "true" } else { "false" });
        if let Some(c) = &self.content {
            w.leaf("t:Content", c);
        }
        w.close(&name);
    }
}

/// Reads the attachment elements inside `el` (`t:Attachments`, `m:Attachments`).
pub fn read_attachments(r: &mut XmlReader<'_>, el: &Element<'_>) -> Result<Vec<Attachment>, Error> {
    let mut out = Vec::new();
    while let Some(child) = r.next_child(el)? {
        if KINDS.contains(&child.name()) {
            out.push(Attachment::read(r, &child)?);
        } else {
            r.skip(&child)?;
        }
    }
    Ok(out)
}

/// Writes `name` wrapping the attachments.
pub fn write_attachments(w: &mut XmlWriter, name: &str, attachments: &[Attachment]) {
    w.element(name).open();
    for a in attachments {
        a.write(w);
    }
    w.close(name);
}

/// `m:GetAttachment`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GetAttachment {
    pub ids: Vec<String>,
}

/// One `m:GetAttachmentResponseMessage`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AttachmentsMessage {
    pub attachments: Vec<Attachment>,
}

impl Operation for GetAttachment {
    const NAME: &'static str = "GetAttachment";
    type Message = AttachmentsMessage;

    fn write_body(&self, w: &mut XmlWriter) {
        w.element("m:GetAttachment").open();
        w.element("m:AttachmentIds").open();
        for id in &self.ids {
            w.element("t:AttachmentId").attr("Id", id).empty();
        }
        w.close("m:AttachmentIds");
        w.close("m:GetAttachment");
    }

    fn read_body<'i>(r: &mut XmlReader<'i>, el: &Element<'i>) -> Result<Self, Error> {
        let mut ids = Vec::new();
        while let Some(child) = r.next_child(el)? {
            if child.name() != "AttachmentIds" {
                r.skip(&child)?;
                continue;
            }
            while let Some(id) = r.next_child(&child)? {
                if id.name() == "AttachmentId"
                    && let Some(value) = id.attr("Id")
                {
                    ids.push(value);
                }
                r.skip(&id)?;
            }
        }
        if ids.is_empty() {
            return Err(r.error("GetAttachment without an AttachmentId"));
        }
        Ok(GetAttachment { ids })
    }

    fn read_field<'i>(
        r: &mut XmlReader<'i>,
        el: &Element<'i>,
        m: &mut AttachmentsMessage,
    ) -> Result<bool, Error> {
        if el.name() != "Attachments" {
            return Ok(false);
        }
        m.attachments = read_attachments(r, el)?;
        Ok(true)
    }
}
