//! The item elements (`t:Message`, `t:MeetingRequest`, `t:Item`, …) that SyncFolderItems,
//! GetItem, UpdateItem, CreateItem and MoveItem carry, and the item shape requests ask for.
//! <https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/message-ex15websvcsotherref>

use super::Error;
use super::folder::BaseShape;
use super::ids::{ChangeKey, FolderId, FolderRef, ItemId, ItemRef};
pub use super::property::{ExtendedFieldUri, ExtendedProperty};
use super::xml::{Element, Ns, XmlReader, XmlWriter};
use serde::{Deserialize, Serialize};

/// The element names that hold an item.
pub const ITEM_KINDS: [&str; 11] = [
    "Message",
    "Item",
    "MeetingMessage",
    "MeetingRequest",
    "MeetingResponse",
    "MeetingCancellation",
    "CalendarItem",
    "Contact",
    "DistributionList",
    "Task",
    "PostItem",
];

/// A mailbox as EWS names one (`t:Mailbox`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailAddress {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mailbox_type: Option<String>,
}

impl EmailAddress {
    /// An SMTP address with an optional display name.
    pub fn smtp(address: &str, name: Option<&str>) -> Self {
        Self {
            name: name.map(str::to_owned),
            address: Some(address.to_owned()),
            routing_type: Some("SMTP".into()),
            mailbox_type: None,
        }
    }

    /// Reads a `t:Mailbox`-like element.
    pub fn read(r: &mut XmlReader<'_>, mailbox: &Element<'_>) -> Result<Self, Error> {
        let mut a = Self::default();
        while let Some(child) = r.next_child(mailbox)? {
            match child.name() {
                "Name" => a.name = Some(r.text(&child)?),
                "EmailAddress" => a.address = Some(r.trimmed(&child)?),
                "RoutingType" => a.routing_type = Some(r.trimmed(&child)?),
                "MailboxType" => a.mailbox_type = Some(r.trimmed(&child)?),
                _ => r.skip(&child)?,
            }
        }
        Ok(a)
    }

    /// The `t:Mailbox` elements inside `el` (`t:From`, `t:ToRecipients`, …).
    fn read_list(r: &mut XmlReader<'_>, el: &Element<'_>) -> Result<Vec<Self>, Error> {
        let mut out = Vec::new();
        while let Some(child) = r.next_child(el)? {
            if child.name() == "Mailbox" {
                out.push(Self::read(r, &child)?);
            } else {
                r.skip(&child)?;
            }
        }
        Ok(out)
    }

    /// Writes a `t:Mailbox`.
    pub fn write(&self, w: &mut XmlWriter) {
        w.element("t:Mailbox").open();
        if let Some(n) = &self.name {
            w.leaf("t:Name", n);
        }
        if let Some(a) = &self.address {
            w.leaf("t:EmailAddress", a);
        }
        if let Some(rt) = &self.routing_type {
            w.leaf("t:RoutingType", rt);
        }
        w.close("t:Mailbox");
    }
}

/// `t:Body`: text or HTML, entity-escaped on the wire.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Body {
    /// `HTML` or `Text`.
    pub body_type: String,
    pub text: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_truncated: bool,
}

/// The named property foldertrack writes back onto a tracked message: the tracking request's
/// id and event (PS_PUBLIC_STRINGS, name `foldertrack.tracking`, a string).
pub fn tracking_property() -> ExtendedFieldUri {
    ExtendedFieldUri {
        distinguished_property_set_id: Some("PublicStrings".into()),
        property_name: Some("foldertrack.tracking".into()),
        property_type: "String".into(),
        ..ExtendedFieldUri::default()
    }
}

/// PR_SEARCH_KEY (0x300B, binary): the identity fallback when a message has no
/// InternetMessageId (tracking-rules R18).
pub fn search_key_property() -> ExtendedFieldUri {
    ExtendedFieldUri {
        property_tag: Some("0x300B".into()),
        property_type: "Binary".into(),
        ..ExtendedFieldUri::default()
    }
}

/// An item as the server describes it. Which fields are present depends on the shape.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// The element it came in: `Message`, `MeetingRequest`, `Item`, …
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item_id: Option<ItemRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_folder_id: Option<FolderRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item_class: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// `Normal`, `Personal`, `Private` or `Confidential`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensitivity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Body>,
    /// The attachments, as `item:Attachments` lists them (without content).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<super::get_attachment::Attachment>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date_time_received: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    /// `Low`, `Normal` or `High`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub importance: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date_time_sent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_attachments: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extended_properties: Vec<ExtendedProperty>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender: Option<EmailAddress>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<EmailAddress>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cc: Vec<EmailAddress>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_topic: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<EmailAddress>,
    /// As sent, angle brackets included; entities decoded exactly once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub internet_message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_read: Option<bool>,
}

impl Item {
    /// True when `el` is one of the item elements.
    pub fn is_item(el: &Element<'_>) -> bool {
        el.ns == Ns::Types && ITEM_KINDS.contains(&el.name())
    }

    /// `DateTimeSent` as a timestamp; a zone-less value is read as UTC, a bad one as absent.
    pub fn sent_at(&self) -> Option<jiff::Timestamp> {
        self.date_time_sent.as_deref().and_then(parse_time)
    }

    /// `DateTimeReceived` as a timestamp.
    pub fn received_at(&self) -> Option<jiff::Timestamp> {
        self.date_time_received.as_deref().and_then(parse_time)
    }

    /// The value of an extended property, whatever the spelling of its tag.
    pub fn extended(&self, field: &ExtendedFieldUri) -> Option<&ExtendedProperty> {
        self.extended_properties
            .iter()
            .find(|p| p.field.same_property(field))
    }

    /// Reads an item element; unknown children are skipped.
    pub fn read(r: &mut XmlReader<'_>, el: &Element<'_>) -> Result<Self, Error> {
        let mut item = Item {
            kind: el.name().to_owned(),
            ..Item::default()
        };
        while let Some(child) = r.next_child(el)? {
            match child.name() {
                "ItemId" => item.item_id = Some(read_item_ref(r, &child)?),
                "ParentFolderId" => {
                    item.parent_folder_id = Some(super::folder::read_folder_ref(r, &child)?)
                }
                "ItemClass" => item.item_class = Some(r.text(&child)?),
                "Subject" => item.subject = Some(r.text(&child)?),
                "Sensitivity" => item.sensitivity = Some(r.trimmed(&child)?),
                "Importance" => item.importance = Some(r.trimmed(&child)?),
                "Body" => {
                    item.body = Some(Body {
                        body_type: child.attr("BodyType").unwrap_or_default(),
                        is_truncated: child.attr("IsTruncated").as_deref() == Some("true"),
                        text: r.text(&child)?,
                    })
                }
                "Attachments" => {
                    item.attachments = super::get_attachment::read_attachments(r, &child)?
                }
                "DateTimeReceived" => item.date_time_received = Some(r.trimmed(&child)?),
                "DateTimeSent" => item.date_time_sent = Some(r.trimmed(&child)?),
                "Size" => item.size = Some(r.number(&child)?),
                "HasAttachments" => item.has_attachments = Some(r.bool(&child)?),
                "IsRead" => item.is_read = Some(r.bool(&child)?),
                "Categories" => {
                    while let Some(s) = r.next_child(&child)? {
                        item.categories.push(r.text(&s)?);
                    }
                }
                "ExtendedProperty" => item
                    .extended_properties
                    .push(ExtendedProperty::read(r, &child)?),
                "ConversationId" => {
                    item.conversation_id = child.attr("Id");
                    r.skip(&child)?;
                }
                "ConversationTopic" => item.conversation_topic = Some(r.text(&child)?),
                "InternetMessageId" => item.internet_message_id = Some(r.text(&child)?),
                "From" => item.from = EmailAddress::read_list(r, &child)?.into_iter().next(),
                "Sender" => item.sender = EmailAddress::read_list(r, &child)?.into_iter().next(),
                "ToRecipients" => item.to = EmailAddress::read_list(r, &child)?,
                "CcRecipients" => item.cc = EmailAddress::read_list(r, &child)?,
                _ => r.skip(&child)?,
            }
        }
        Ok(item)
    }

    /// Reads every item element inside `el` (e.g. `m:Items`), skipping anything else.
    pub fn read_all(r: &mut XmlReader<'_>, el: &Element<'_>) -> Result<Vec<Self>, Error> {
        let mut out = Vec::new();
        while let Some(child) = r.next_child(el)? {
            if Self::is_item(&child) {
                out.push(Self::read(r, &child)?);
            } else {
                r.skip(&child)?;
            }
        }
        Ok(out)
    }

    /// Writes the item for CreateItem: the settable fields, in schema order.
    pub fn write(&self, w: &mut XmlWriter) {
        let kind = if self.kind.is_empty() {
            "Message"
        } else {
            &self.kind
        };
        let name = format!("t:{kind}");
        w.element(&name).open();
        if let Some(c) = &self.item_class {
            w.leaf("t:ItemClass", c);
        }
        if let Some(s) = &self.subject {
            w.leaf("t:Subject", s);
        }
        if let Some(s) = &self.sensitivity {
            w.leaf("t:Sensitivity", s);
        }
        if let Some(b) = &self.body {
            w.element("t:Body")
                .attr("BodyType", &b.body_type)
                .text(&b.text);
        }
        if !self.categories.is_empty() {
            w.element("t:Categories").open();
            for c in &self.categories {
                w.leaf("t:String", c);
            }
            w.close("t:Categories");
        }
        if let Some(i) = &self.importance {
            w.leaf("t:Importance", i);
        }
        for p in &self.extended_properties {
            p.write(w);
        }
        if let Some(s) = &self.sender {
            write_mailboxes(w, "t:Sender", std::slice::from_ref(s));
        }
        if !self.to.is_empty() {
            write_mailboxes(w, "t:ToRecipients", &self.to);
        }
        if !self.cc.is_empty() {
            write_mailboxes(w, "t:CcRecipients", &self.cc);
        }
        if let Some(f) = &self.from {
            write_mailboxes(w, "t:From", std::slice::from_ref(f));
        }
        if let Some(id) = &self.internet_message_id {
            w.leaf("t:InternetMessageId", id);
        }
        if let Some(read) = self.is_read {
            w.leaf("t:IsRead", if read { "true" } else { "false" });
        }
        w.close(&name);
    }
}

fn write_mailboxes(w: &mut XmlWriter, name: &str, list: &[EmailAddress]) {
    w.element(name).open();
    for a in list {
        a.write(w);
    }
    w.close(name);
}

/// An xs:dateTime as a timestamp; one without a zone is read as UTC, a bad one as absent.
pub fn parse_time(s: &str) -> Option<jiff::Timestamp> {
    s.parse::<jiff::Timestamp>().ok().or_else(|| {
        let civil: jiff::civil::DateTime = s.parse().ok()?;
        civil
            .to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .ok()
            .map(|z| z.timestamp())
    })
}

/// Reads `Id` and `ChangeKey` of a `t:ItemId`-like element. The change key is optional: one
/// published SyncFolderItems sample omits it.
pub fn read_item_ref(r: &mut XmlReader<'_>, el: &Element<'_>) -> Result<ItemRef, Error> {
    let id = el
        .attr("Id")
        .ok_or_else(|| r.error(&format!("<{}> without an Id", el.name())))?;
    let change_key = el.attr("ChangeKey").map(ChangeKey);
    r.skip(el)?;
    Ok(ItemRef {
        id: ItemId(id),
        change_key,
    })
}

/// Writes a `t:ItemId`.
pub fn write_item_ref(w: &mut XmlWriter, item: &ItemRef) {
    w.element("t:ItemId")
        .attr("Id", item.id.as_str())
        .attr_opt("ChangeKey", item.change_key.as_ref().map(|c| c.as_str()))
        .empty();
}

/// Writes `name` wrapping `t:ItemId`s (`m:ItemIds`).
pub fn write_item_refs(w: &mut XmlWriter, name: &str, items: &[ItemRef]) {
    w.element(name).open();
    for i in items {
        write_item_ref(w, i);
    }
    w.close(name);
}

/// Reads the `t:ItemId`s inside `el`, skipping anything else.
pub fn read_item_refs(r: &mut XmlReader<'_>, el: &Element<'_>) -> Result<Vec<ItemRef>, Error> {
    let mut out = Vec::new();
    while let Some(child) = r.next_child(el)? {
        if child.name() == "ItemId" {
            out.push(read_item_ref(r, &child)?);
        } else {
            r.skip(&child)?;
        }
    }
    Ok(out)
}

/// The message properties a tracking request needs (ews-protocol.md 3.5).
pub const TRACKING_PROPERTIES: [&str; 15] = [
    "item:ItemClass",
    "item:Subject",
    "item:DateTimeReceived",
    "item:Size",
    "item:Categories",
    "item:DateTimeSent",
    "item:HasAttachments",
    "item:ParentFolderId",
    "item:ConversationId",
    "message:Sender",
    "message:ToRecipients",
    "message:CcRecipients",
    "message:ConversationTopic",
    "message:From",
    "message:InternetMessageId",
];

/// `m:ItemShape`: a base shape, a body type, field URIs and extended properties.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemShape {
    pub base: BaseShape,
    /// `HTML`, `Text` or `Best`; only meaningful when the body is asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_type: Option<String>,
    pub properties: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extended: Vec<ExtendedFieldUri>,
}

impl ItemShape {
    /// IdOnly plus the item class and the InternetMessageId: what a sync page needs (one
    /// store call per item, not one per property). The id lets a baseline remember which
    /// mails were already there (tracking-rules R10) without a GetItem.
    pub fn for_sync() -> Self {
        Self {
            properties: vec!["item:ItemClass".into(), "message:InternetMessageId".into()],
            ..Self::default()
        }
    }

    /// What a tracking request needs; the body only when the mapping asks for it.
    pub fn for_tracking(with_body: bool) -> Self {
        let mut properties: Vec<String> = TRACKING_PROPERTIES
            .iter()
            .map(|p| (*p).to_owned())
            .collect();
        if with_body {
            properties.push("item:Body".into());
        }
        Self {
            base: BaseShape::IdOnly,
            body_type: with_body.then(|| "Text".to_owned()),
            properties,
            extended: vec![tracking_property(), search_key_property()],
        }
    }

    pub fn write(&self, w: &mut XmlWriter) {
        w.element("m:ItemShape").open();
        w.leaf("t:BaseShape", self.base.as_str());
        if let Some(b) = &self.body_type {
            w.leaf("t:BodyType", b);
        }
        if !self.properties.is_empty() || !self.extended.is_empty() {
            w.element("t:AdditionalProperties").open();
            for p in &self.properties {
                w.element("t:FieldURI").attr("FieldURI", p).empty();
            }
            for e in &self.extended {
                e.write(w);
            }
            w.close("t:AdditionalProperties");
        }
        w.close("m:ItemShape");
    }

    pub fn read(r: &mut XmlReader<'_>, el: &Element<'_>) -> Result<Self, Error> {
        let mut shape = Self::default();
        while let Some(child) = r.next_child(el)? {
            match child.name() {
                "BaseShape" => shape.base = super::folder::read_base_shape(r, &child)?,
                "BodyType" => shape.body_type = Some(r.trimmed(&child)?),
                "AdditionalProperties" => {
                    while let Some(p) = r.next_child(&child)? {
                        match p.name() {
                            "FieldURI" => shape.properties.extend(p.attr("FieldURI")),
                            "ExtendedFieldURI" => shape.extended.push(ExtendedFieldUri::read(&p)),
                            _ => {}
                        }
                        r.skip(&p)?;
                    }
                }
                _ => r.skip(&child)?,
            }
        }
        Ok(shape)
    }
}

/// A folder id as a folder reference with no change key.
pub fn folder_ref(id: &FolderId) -> FolderRef {
    FolderRef {
        id: id.clone(),
        change_key: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_read_with_text_kept_exactly() {
        let xml = r#"<t:Message xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">
          <t:ItemId Id="AAMk=" ChangeKey="CQAA"/><t:Subject> Deal &amp; Quote – 見積 </t:Subject>
          <t:Body BodyType="HTML" IsTruncated="false">&lt;p&gt;Hi&lt;/p&gt;</t:Body>
          <t:DateTimeSent>2026-11-24T09:30:00Z</t:DateTimeSent><t:DateTimeReceived>2026-11-24T09:31:00</t:DateTimeReceived>
          <t:Categories><t:String>Tracked</t:String></t:Categories>
          <t:ExtendedProperty><t:ExtendedFieldURI PropertyTag="0x300b" PropertyType="Binary"/><t:Value>AQI=</t:Value></t:ExtendedProperty>
          <t:NewElementFromAFutureServer><t:X/></t:NewElementFromAFutureServer>
          <t:From><t:Mailbox><t:Name>Buyer</t:Name><t:EmailAddress>buyer@contoso.com</t:EmailAddress></t:Mailbox></t:From>
          <t:InternetMessageId>&lt;abc@contoso.com&gt;</t:InternetMessageId></t:Message>"#;
        let mut r = XmlReader::new(xml);
        let root = r.root().unwrap();
        let item = Item::read(&mut r, &root).unwrap();
        assert_eq!(item.subject.as_deref(), Some(" Deal & Quote – 見積 "));
        assert_eq!(item.body.as_ref().unwrap().text, "<p>Hi</p>");
        assert_eq!(
            item.internet_message_id.as_deref(),
            Some("<abc@contoso.com>")
        );
        assert_eq!(
            item.from.as_ref().unwrap().address.as_deref(),
            Some("buyer@contoso.com")
        );
        assert_eq!(item.sent_at().unwrap().to_string(), "2026-11-24T09:30:00Z");
        assert_eq!(
            item.received_at().unwrap().to_string(),
            "2026-11-24T09:31:00Z"
        );
        assert_eq!(item.categories, ["Tracked"]);
        assert_eq!(
            item.extended(&search_key_property())
                .unwrap()
                .value
                .as_deref(),
            Some("AQI=")
        );
    }

    #[test]
    fn a_written_item_reads_back() {
        let item = Item {
            kind: "Message".into(),
            subject: Some("a < b & \"c\"".into()),
            body: Some(Body {
                body_type: "Text".into(),
                text: "line 1\nline 2".into(),
                is_truncated: false,
            }),
            categories: vec!["Tracked".into()],
            extended_properties: vec![ExtendedProperty {
                field: tracking_property(),
                value: Some("id-1".into()),
                values: vec![],
            }],
            to: vec![EmailAddress::smtp("alice@example.com", Some("Alice"))],
            from: Some(EmailAddress::smtp("buyer@contoso.com", None)),
            internet_message_id: Some("<m1@contoso.com>".into()),
            is_read: Some(false),
            ..Item::default()
        };
        let mut w = XmlWriter::new();
        w.element("x")
            .attr("xmlns:t", super::super::xml::NS_TYPES)
            .open();
        item.write(&mut w);
        w.close("x");
        let xml = w.finish();
        let mut r = XmlReader::new(&xml);
        let root = r.root().unwrap();
        let back = Item::read_all(&mut r, &root).unwrap();
        assert_eq!(back, [item]);
    }
}
