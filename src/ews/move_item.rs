//! MoveItem: moves items to another folder. A moved item gets a NEW ItemId, returned here.
//! <https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/moveitem-operation>

use super::folder::{read_wrapped_selector, write_selector};
use super::get_item::{ItemsMessage, read_items_field};
use super::ids::{FolderSelector, ItemRef};
use super::item::{read_item_refs, write_item_refs};
use super::xml::{Element, XmlReader, XmlWriter};
use super::{Error, Operation};
use serde::Serialize;

/// `m:MoveItem`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MoveItem {
    pub to_folder: FolderSelector,
    pub items: Vec<ItemRef>,
}

impl Operation for MoveItem {
    const NAME: &'static str = "MoveItem";
    type Message = ItemsMessage;

    fn write_body(&self, w: &mut XmlWriter) {
        w.element("m:MoveItem").open();
        w.element("m:ToFolderId").open();
        write_selector(w, &self.to_folder);
        w.close("m:ToFolderId");
        write_item_refs(w, "m:ItemIds", &self.items);
        w.close("m:MoveItem");
    }

    fn read_body<'i>(r: &mut XmlReader<'i>, el: &Element<'i>) -> Result<Self, Error> {
        let mut to_folder = None;
        let mut items = Vec::new();
        while let Some(child) = r.next_child(el)? {
            match child.name() {
                "ToFolderId" => to_folder = read_wrapped_selector(r, &child)?,
                "ItemIds" => items = read_item_refs(r, &child)?,
                _ => r.skip(&child)?,
            }
        }
        let to_folder = to_folder.ok_or_else(|| r.error("MoveItem without a ToFolderId"))?;
        Ok(MoveItem { to_folder, items })
    }

    fn read_field<'i>(
        r: &mut XmlReader<'i>,
        el: &Element<'i>,
        m: &mut ItemsMessage,
    ) -> Result<bool, Error> {
        read_items_field(r, el, m)
    }
}
