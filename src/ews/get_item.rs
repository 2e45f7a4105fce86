//! GetItem: the details of items, batched; one response message per id, in request order, so an
//! item that moved on (ErrorItemNotFound) fails alone.
//! <https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/getitem-operation>

use super::ids::ItemRef;
use super::item::{Item, ItemShape, read_item_refs, write_item_refs};
use super::xml::{Element, XmlReader, XmlWriter};
use super::{Error, Operation};
use serde::Serialize;

/// `m:GetItem`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GetItem {
    pub shape: ItemShape,
    pub items: Vec<ItemRef>,
}

/// One `m:GetItemResponseMessage`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ItemsMessage {
    pub items: Vec<Item>,
}

/// Reads `m:Items`, the payload GetItem, CreateItem, UpdateItem and MoveItem messages share.
pub fn read_items_field<'i>(
    r: &mut XmlReader<'i>,
    el: &Element<'i>,
    m: &mut ItemsMessage,
) -> Result<bool, Error> {
    if el.name() != "Items" {
        return Ok(false);
    }
    m.items = Item::read_all(r, el)?;
    Ok(true)
}

impl Operation for GetItem {
    const NAME: &'static str = "GetItem";
    type Message = ItemsMessage;

    fn write_body(&self, w: &mut XmlWriter) {
        w.element("m:GetItem").open();
        self.shape.write(w);
        write_item_refs(w, "m:ItemIds", &self.items);
        w.close("m:GetItem");
    }

    fn read_body<'i>(r: &mut XmlReader<'i>, el: &Element<'i>) -> Result<Self, Error> {
        let mut op = GetItem {
            shape: ItemShape::default(),
            items: Vec::new(),
        };
        while let Some(child) = r.next_child(el)? {
            match child.name() {
                "ItemShape" => op.shape = ItemShape::read(r, &child)?,
                "ItemIds" => op.items = read_item_refs(r, &child)?,
                _ => r.skip(&child)?,
            }
        }
        Ok(op)
    }

    fn read_field<'i>(
        r: &mut XmlReader<'i>,
        el: &Element<'i>,
        m: &mut ItemsMessage,
    ) -> Result<bool, Error> {
        read_items_field(r, el, m)
    }
}
