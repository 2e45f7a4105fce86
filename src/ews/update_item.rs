//! UpdateItem: foldertrack's write-back — a category and the tracking extended property on a
//! tracked message, against its current ChangeKey. Requests are read with the other simple
//! field changes clients send (subject, read flag, importance, sensitivity, body); any other
//! change is kept by name, so a server can refuse it rather than drop it.
//! <https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/updateitem-operation>

use super::get_item::ItemsMessage;
use super::ids::ItemRef;
use super::item::{Body, ExtendedFieldUri, ExtendedProperty, Item, read_item_ref, write_item_ref};
use super::xml::{Element, XmlReader, XmlWriter};
use super::{Error, Operation};
use serde::Serialize;

/// `ConflictResolution`: what the server does when the ChangeKey is stale.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub enum ConflictResolution {
    NeverOverwrite,
    #[default]
    AutoResolve,
    AlwaysOverwrite,
}

impl ConflictResolution {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NeverOverwrite => "NeverOverwrite",
            Self::AutoResolve => "AutoResolve",
            Self::AlwaysOverwrite => "AlwaysOverwrite",
        }
    }

    fn parse(s: &str) -> Self {
        [Self::NeverOverwrite, Self::AlwaysOverwrite]
            .into_iter()
            .find(|c| c.as_str() == s.trim())
            .unwrap_or_default()
    }
}

/// One field change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Update {
    /// Replaces the item's categories.
    SetCategories(Vec<String>),
    SetExtended(ExtendedProperty),
    DeleteExtended(ExtendedFieldUri),
    SetSubject(String),
    SetIsRead(bool),
    SetImportance(String),
    SetSensitivity(String),
    SetBody(Body),
    /// Any other change: the action (`SetItemField`, `AppendToItemField`, `DeleteItemField`)
    /// and the field it names.
    Other {
        action: String,
        field: String,
    },
}

/// The changes to one item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ItemChange {
    pub item: ItemRef,
    pub updates: Vec<Update>,
}

/// `m:UpdateItem`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UpdateItem {
    pub conflict_resolution: ConflictResolution,
    pub changes: Vec<ItemChange>,
}

impl Update {
    fn write(&self, w: &mut XmlWriter) {
        match self {
            Update::SetCategories(categories) => {
                w.element("t:SetItemField").open();
                w.element("t:FieldURI")
                    .attr("FieldURI", "item:Categories")
                    .empty();
                w.element("t:Message").open();
                w.element("t:Categories").open();
                for c in categories {
                    w.leaf("t:String", c);
                }
                w.close("t:Categories");
                w.close("t:Message");
                w.close("t:SetItemField");
            }
            Update::SetExtended(p) => {
                w.element("t:SetItemField").open();
                p.field.write(w);
                w.element("t:Message").open();
                p.write(w);
                w.close("t:Message");
                w.close("t:SetItemField");
            }
            Update::DeleteExtended(field) => {
                w.element("t:DeleteItemField").open();
                field.write(w);
                w.close("t:DeleteItemField");
            }
            Update::SetSubject(_)
            | Update::SetIsRead(_)
            | Update::SetImportance(_)
            | Update::SetSensitivity(_)
            | Update::SetBody(_) => self.write_simple(w),
            Update::Other { action, field } => {
                let name = format!("t:{action}");
                w.element(&name).open();
                w.element("t:FieldURI").attr("FieldURI", field).empty();
                w.close(&name);
            }
        }
    }

    /// A `t:SetItemField` of one of the simple properties, with the message carrying its value.
    fn write_simple(&self, w: &mut XmlWriter) {
        let mut item = Item {
            kind: "Message".into(),
            ..Item::default()
        };
        let uri = match self {
            Update::SetSubject(s) => {
                item.subject = Some(s.clone());
                "item:Subject"
            }
            Update::SetIsRead(r) => {
                item.is_read = Some(*r);
                "message:IsRead"
            }
            Update::SetImportance(i) => {
                item.importance = Some(i.clone());
                "item:Importance"
            }
            Update::SetSensitivity(s) => {
                item.sensitivity = Some(s.clone());
                "item:Sensitivity"
            }
            Update::SetBody(b) => {
                item.body = Some(b.clone());
                "item:Body"
            }
            _ => return,
        };
        w.element("t:SetItemField").open();
        w.element("t:FieldURI").attr("FieldURI", uri).empty();
        item.write(w);
        w.close("t:SetItemField");
    }

    /// Reads a `t:SetItemField`, `t:AppendToItemField` or `t:DeleteItemField`.
    fn read(r: &mut XmlReader<'_>, el: &Element<'_>) -> Result<Self, Error> {
        let mut field_uri = None;
        let mut extended = None;
        let mut item = None;
        while let Some(child) = r.next_child(el)? {
            match child.name() {
                "FieldURI" => {
                    field_uri = child.attr("FieldURI");
                    r.skip(&child)?;
                }
                "IndexedFieldURI" => {
                    let uri = child.attr("FieldURI").unwrap_or_default();
                    let index = child.attr("FieldIndex").unwrap_or_default();
                    field_uri = Some(format!("{uri}[{index}]"));
                    r.skip(&child)?;
                }
                "ExtendedFieldURI" => {
                    extended = Some(ExtendedFieldUri::read(&child));
                    r.skip(&child)?;
                }
                _ if Item::is_item(&child) => item = Some(Item::read(r, &child)?),
                _ => r.skip(&child)?,
            }
        }
        let action = el.name();
        let other = |field: &str| Update::Other {
            action: action.to_owned(),
            field: field.to_owned(),
        };
        let (set, delete) = (action == "SetItemField", action == "DeleteItemField");
        Ok(match (field_uri.as_deref(), extended, item) {
            (Some("item:Categories"), _, Some(i)) if set => Update::SetCategories(i.categories),
            (Some("item:Categories"), _, None) if delete => Update::SetCategories(Vec::new()),
            (Some(uri), _, Some(i)) if set => Self::simple(uri, i).unwrap_or_else(|| other(uri)),
            (_, Some(field), _) if delete => Update::DeleteExtended(field),
            (_, Some(field), Some(i)) if set => i
                .extended_properties
                .into_iter()
                .find(|p| p.field.same_property(&field))
                .map_or_else(|| other(&format!("{field:?}")), Update::SetExtended),
            (uri, extended, _) => other(
                &uri.map(str::to_owned)
                    .or_else(|| extended.map(|e| format!("{e:?}")))
                    .unwrap_or_default(),
            ),
        })
    }

    /// A simple property set from the item that carries its value.
    fn simple(uri: &str, i: Item) -> Option<Self> {
        match uri {
            "item:Subject" => i.subject.map(Update::SetSubject),
            "message:IsRead" => i.is_read.map(Update::SetIsRead),
            "item:Importance" => i.importance.map(Update::SetImportance),
            "item:Sensitivity" => i.sensitivity.map(Update::SetSensitivity),
            "item:Body" => i.body.map(Update::SetBody),
            _ => None,
        }
    }
}

impl Operation for UpdateItem {
    const NAME: &'static str = "UpdateItem";
    type Message = ItemsMessage;

    fn write_body(&self, w: &mut XmlWriter) {
        w.element("m:UpdateItem")
            .attr("MessageDisposition", "SaveOnly")
            .attr("ConflictResolution", self.conflict_resolution.as_str())
            .open();
        w.element("m:ItemChanges").open();
        for change in &self.changes {
            w.element("t:ItemChange").open();
            write_item_ref(w, &change.item);
            w.element("t:Updates").open();
            for u in &change.updates {
                u.write(w);
            }
            w.close("t:Updates");
            w.close("t:ItemChange");
        }
        w.close("m:ItemChanges");
        w.close("m:UpdateItem");
    }

    fn read_body<'i>(r: &mut XmlReader<'i>, el: &Element<'i>) -> Result<Self, Error> {
        let mut op = UpdateItem {
            conflict_resolution: ConflictResolution::parse(
                &el.attr("ConflictResolution").unwrap_or_default(),
            ),
            changes: Vec::new(),
        };
        while let Some(child) = r.next_child(el)? {
            if child.name() != "ItemChanges" {
                r.skip(&child)?;
                continue;
            }
            while let Some(change) = r.next_child(&child)? {
                let mut item = None;
                let mut updates = Vec::new();
                while let Some(part) = r.next_child(&change)? {
                    match part.name() {
                        "ItemId" => item = Some(read_item_ref(r, &part)?),
                        "Updates" => {
                            while let Some(u) = r.next_child(&part)? {
                                updates.push(Update::read(r, &u)?);
                            }
                        }
                        _ => r.skip(&part)?,
                    }
                }
                let item = item.ok_or_else(|| r.error("an ItemChange without an ItemId"))?;
                op.changes.push(ItemChange { item, updates });
            }
        }
        Ok(op)
    }

    fn read_field<'i>(
        r: &mut XmlReader<'i>,
        el: &Element<'i>,
        m: &mut ItemsMessage,
    ) -> Result<bool, Error> {
        super::get_item::read_items_field(r, el, m)
    }
}
