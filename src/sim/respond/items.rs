//! Writing messages into responses: which properties an item shape asks for, the `Message`
//! element of GetItem and SyncFolderItems (body conversion, recipients, extended properties
//! with the computed ones), and one SyncFolderItems change. Owns XML output only; which items
//! to write is the operations' business.

use super::Out;
use crate::ews::folder::BaseShape;
use crate::ews::item::{ExtendedFieldUri, ExtendedProperty, ItemShape};
use crate::sim::ids::{self, ItemKey};
use crate::sim::mailbox::{ItemChange, Mailbox};
use crate::sim::message::{self, Message, NewAttachment, conversation_id};
use std::collections::HashSet;

/// Which item properties a shape asks for.
#[derive(Default)]
pub struct ItemFields {
    parent: bool,
    class: bool,
    subject: bool,
    body: Option<String>,
    received: bool,
    size: bool,
    categories: bool,
    sent: bool,
    attachments: bool,
    /// The attachments themselves (`item:Attachments`), without content.
    attachment_list: bool,
    conversation: bool,
    sender: bool,
    to: bool,
    cc: bool,
    topic: bool,
    from: bool,
    imid: bool,
    is_read: bool,
    extended: Vec<ExtendedFieldUri>,
}

/// The fields to write for `shape`; SyncFolderItems (`for_sync`) gets the light set.
pub fn item_fields(shape: &ItemShape, for_sync: bool) -> ItemFields {
    let has = |p: &str| shape.properties.iter().any(|x| x == p);
    let all = shape.base == BaseShape::AllProperties;
    let default = shape.base == BaseShape::Default || all;
    // SyncFolderItems, like FindItem, never returns the body or recipient lists.
    let heavy = !for_sync;
    ItemFields {
        parent: all || has("item:ParentFolderId"),
        class: default || has("item:ItemClass"),
        subject: default || has("item:Subject"),
        body: ((all || has("item:Body")) && heavy)
            .then(|| shape.body_type.clone().unwrap_or_else(|| "Best".into())),
        received: default || has("item:DateTimeReceived"),
        size: default || has("item:Size"),
        categories: all || has("item:Categories"),
        sent: default || has("item:DateTimeSent"),
        attachments: default || has("item:HasAttachments"),
        attachment_list: heavy && (all || has("item:Attachments")),
        conversation: all || has("item:ConversationId"),
        sender: all || has("message:Sender"),
        to: heavy && (all || has("message:ToRecipients")),
        cc: heavy && (all || has("message:CcRecipients")),
        topic: all || has("message:ConversationTopic"),
        from: default || has("message:From"),
        imid: all || has("message:InternetMessageId"),
        is_read: default || has("message:IsRead"),
        extended: shape.extended.clone(),
    }
}

/// One `FileAttachment`, in schema order; its content only for GetAttachment.
pub fn write_attachment(o: &mut Out, id: &str, a: &NewAttachment, content: bool) {
    use base64::Engine as _;
    let size = base64::engine::general_purpose::STANDARD
        .decode(&a.content)
        .map_or(0, |b| b.len());
    o.t_open("FileAttachment");
    let n = o.t("AttachmentId");
    o.w.element(&n).attr("Id", id).empty();
    o.t_leaf("Name", &a.name);
    o.t_leaf("ContentType", &a.content_type);
    o.t_leaf("Size", &size.to_string());
    o.t_leaf("IsInline", "false");
    if content {
        o.t_leaf("Content", &a.content);
    }
    o.t_close("FileAttachment");
}

/// Writes one `Message` element with the fields asked for.
pub fn write_item(o: &mut Out, mb: &Mailbox, key: ItemKey, m: &Message, f: &ItemFields) {
    let e = m.envelope.read();
    o.t_open("Message");
    o.t_id(
        "ItemId",
        &ids::item_id(key),
        Some(&mb.item_change_key(key, m)),
    );
    if f.parent {
        let ck = mb.folders.get(&key.folder).map(|x| mb.folder_change_key(x));
        o.t_id("ParentFolderId", &mb.folder_id(key.folder), ck.as_deref());
    }
    if f.class {
        o.t_leaf("ItemClass", "IPM.Note");
    }
    if f.subject {
        o.t_leaf("Subject", e.subject);
    }
    if let (Some(want), Some(body)) = (&f.body, &m.body) {
        let body_type = match want.as_str() {
            "HTML" | "Text" => want.as_str(),
            _ => body.body_type.as_str(),
        };
        let text = if body_type == body.body_type {
            body.text.clone()
        } else if body_type == "HTML" {
            format!(
                "<html><body><pre>{}</pre></body></html>",
                html_escape(&body.text)
            )
        } else {
            strip_tags(&body.text)
        };
        let n = o.t("Body");
        o.w.element(&n)
            .attr("BodyType", body_type)
            .attr("IsTruncated", "false")
            .text(&text);
    }
    if f.attachment_list && !m.attachments().is_empty() {
        o.t_open("Attachments");
        for (i, a) in m.attachments().iter().enumerate() {
            write_attachment(o, &ids::attachment_id(key, i), a, false);
        }
        o.t_close("Attachments");
    }
    if f.received {
        o.t_leaf("DateTimeReceived", &message::format_time(e.received));
    }
    if f.size {
        o.t_leaf("Size", &e.size.to_string());
    }
    if f.categories && !m.categories().is_empty() {
        o.t_open("Categories");
        for c in m.categories() {
            o.t_leaf("String", c);
        }
        o.t_close("Categories");
    }
    if f.sent {
        o.t_leaf("DateTimeSent", &message::format_time(e.sent));
    }
    if f.attachments {
        o.t_leaf(
            "HasAttachments",
            if e.has_attachments { "true" } else { "false" },
        );
    }
    for field in &f.extended {
        if let Some(p) = extended_value(m, e.internet_message_id, field) {
            write_extended(o, &p);
        }
    }
    if f.conversation {
        o.t_id("ConversationId", &conversation_id(&e), None);
    }
    if f.sender {
        write_mailboxes(o, "Sender", &[e.from]);
    }
    if f.to && !e.to.is_empty() {
        write_mailboxes(o, "ToRecipients", &e.to);
    }
    if f.cc && !e.cc.is_empty() {
        write_mailboxes(o, "CcRecipients", &e.cc);
    }
    if f.topic {
        o.t_leaf("ConversationTopic", e.subject);
    }
    if f.from {
        write_mailboxes(o, "From", &[e.from]);
    }
    if f.imid {
        o.t_leaf("InternetMessageId", e.internet_message_id);
    }
    if f.is_read {
        o.t_leaf("IsRead", if m.is_read { "true" } else { "false" });
    }
    o.extra();
    o.t_close("Message");
}

/// Writes one SyncFolderItems change, unless the item is in the request's `Ignore` list.
pub fn write_item_change(
    o: &mut Out,
    mb: &Mailbox,
    folder: u32,
    change: ItemChange,
    fields: &ItemFields,
    ignore: &HashSet<&str>,
) {
    let (n, name) = match change {
        ItemChange::Create(n) => (n, "Create"),
        ItemChange::Update(n) => (n, "Update"),
        ItemChange::ReadFlag(n) => (n, "ReadFlagChange"),
        ItemChange::Delete(n) => (n, "Delete"),
    };
    let key = mb.item_key(folder, n);
    let id = ids::item_id(key);
    if ignore.contains(id.as_str()) {
        return;
    }
    let item = mb.item(key);
    o.t_open(name);
    match (change, item) {
        (ItemChange::Create(_) | ItemChange::Update(_), Some(m)) => {
            write_item(o, mb, key, m, fields)
        }
        (ItemChange::ReadFlag(_), Some(m)) => {
            o.t_id("ItemId", &id, Some(&mb.item_change_key(key, m)));
            o.t_leaf("IsRead", if m.is_read { "true" } else { "false" });
        }
        _ => o.t_id("ItemId", &id, None),
    }
    o.t_close(name);
}

fn write_mailbox(o: &mut Out, a: (Option<&str>, &str)) {
    o.t_open("Mailbox");
    if let Some(n) = a.0 {
        o.t_leaf("Name", n);
    }
    o.t_leaf("EmailAddress", a.1);
    o.t_leaf("RoutingType", "SMTP");
    o.t_leaf("MailboxType", "OneOff");
    o.t_close("Mailbox");
}

fn write_mailboxes(o: &mut Out, name: &'static str, list: &[(Option<&str>, &str)]) {
    o.t_open(name);
    for a in list {
        write_mailbox(o, *a);
    }
    o.t_close(name);
}

fn write_extended(o: &mut Out, p: &ExtendedProperty) {
    o.t_open("ExtendedProperty");
    let n = o.t("ExtendedFieldURI");
    let f = &p.field;
    o.w.element(&n)
        .attr_opt(
            "DistinguishedPropertySetId",
            f.distinguished_property_set_id.as_deref(),
        )
        .attr_opt("PropertySetId", f.property_set_id.as_deref())
        .attr_opt("PropertyTag", f.property_tag.as_deref())
        .attr_opt("PropertyName", f.property_name.as_deref())
        .attr_opt("PropertyId", f.property_id.as_deref())
        .attr("PropertyType", &f.property_type)
        .empty();
    match &p.value {
        Some(v) => o.t_leaf("Value", v),
        None => {
            o.t_open("Values");
            for v in &p.values {
                o.t_leaf("Value", v);
            }
            o.t_close("Values");
        }
    }
    o.t_close("ExtendedProperty");
}

/// The value of an extended property a shape asks for, if the message has it.
fn extended_value(m: &Message, imid: &str, field: &ExtendedFieldUri) -> Option<ExtendedProperty> {
    let imid_tag = ExtendedFieldUri {
        property_tag: Some("0x1035".into()),
        property_type: "String".into(),
        ..ExtendedFieldUri::default()
    };
    let search_key = crate::ews::item::search_key_property();
    let mut echoed = field.clone();
    if let Some(tag) = &field.property_tag {
        // Exchange echoes tags in lowercase hex, whatever the request said.
        let n = tag
            .strip_prefix("0x")
            .or_else(|| tag.strip_prefix("0X"))
            .map_or_else(|| tag.parse().ok(), |h| u32::from_str_radix(h, 16).ok());
        if let Some(n) = n {
            echoed.property_tag = Some(format!("0x{n:x}"));
        }
    }
    let value = |v: String| ExtendedProperty {
        field: echoed.clone(),
        value: Some(v),
        values: Vec::new(),
    };
    if field.same_property(&imid_tag) {
        return Some(value(imid.to_owned()));
    }
    if field.same_property(&search_key) {
        return Some(value(message::search_key(imid)));
    }
    m.extended()
        .iter()
        .find(|p| p.field.same_property(field))
        .map(|p| ExtendedProperty {
            field: echoed.clone(),
            value: p.value.clone(),
            values: p.values.clone(),
        })
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    crate::ews::xml::push_escaped(&mut out, s);
    out
}

fn strip_tags(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}
