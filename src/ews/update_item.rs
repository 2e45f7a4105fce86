//! UpdateItem: foldertrack's write-back — a category and the tracking extended property on a
//! tracked message, against its current ChangeKey.
//! <https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/updateitem-operation>

use super::get_item::ItemsMessage;
use super::ids::ItemRef;
use super::item::{ExtendedFieldUri, ExtendedProperty, Item, read_item_ref, write_item_ref};
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
        }
    }

    /// Reads a `t:SetItemField` / `t:DeleteItemField`; `None` for fields foldertrack never sets.
    fn read(r: &mut XmlReader<'_>, el: &Element<'_>) -> Result<Option<Self>, Error> {
        let mut field_uri = None;
        let mut extended = None;
        let mut item = None;
        while let Some(child) = r.next_child(el)? {
            match child.name() {
                "FieldURI" => {
                    field_uri = child.attr("FieldURI");
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
        let delete = el.name() == "DeleteItemField";
        Ok(match (field_uri.as_deref(), extended, item) {
            (Some("item:Categories"), _, Some(i)) if !delete => {
                Some(Update::SetCategories(i.categories))
            }
            (Some("item:Categories"), _, None) if delete => Some(Update::SetCategories(Vec::new())),
            (_, Some(field), _) if delete => Some(Update::DeleteExtended(field)),
            (_, Some(field), Some(i)) => i
                .extended_properties
                .into_iter()
                .find(|p| p.field.same_property(&field))
                .map(Update::SetExtended),
            _ => None,
        })
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
                                updates.extend(Update::read(r, &u)?);
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
