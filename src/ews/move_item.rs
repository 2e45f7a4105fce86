//! MoveItem: moves items to another folder. A moved item gets a NEW ItemId, returned here.
//! CopyItem (`copy_item.rs`) has the same request and answer, so both are this one type.
//! <https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/moveitem-operation>

use super::folder::{read_wrapped_selector, write_selector};
use super::get_item::{ItemsMessage, read_items_field};
use super::ids::{FolderSelector, ItemRef};
use super::item::{read_item_refs, write_item_refs};
use super::xml::{Element, XmlReader, XmlWriter};
use super::{Error, Operation};
use serde::Serialize;

/// `m:MoveItem` (`COPY = false`) or `m:CopyItem` (`COPY = true`): `BaseMoveCopyItemType`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MoveOrCopy<const COPY: bool> {
    pub to_folder: FolderSelector,
    pub items: Vec<ItemRef>,
}

/// `m:MoveItem`.
pub type MoveItem = MoveOrCopy<false>;

impl<const COPY: bool> Operation for MoveOrCopy<COPY> {
    const NAME: &'static str = if COPY { "CopyItem" } else { "MoveItem" };
    type Message = ItemsMessage;

    fn write_body(&self, w: &mut XmlWriter) {
        let name = format!("m:{}", Self::NAME);
        w.element(&name).open();
        w.element("m:ToFolderId").open();
        write_selector(w, &self.to_folder);
        w.close("m:ToFolderId");
        write_item_refs(w, "m:ItemIds", &self.items);
        w.close(&name);
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
        let to_folder =
            to_folder.ok_or_else(|| r.error(&format!("{} without a ToFolderId", Self::NAME)))?;
        Ok(Self { to_folder, items })
    }

    fn read_field<'i>(
        r: &mut XmlReader<'i>,
        el: &Element<'i>,
        m: &mut ItemsMessage,
    ) -> Result<bool, Error> {
        read_items_field(r, el, m)
    }
}
