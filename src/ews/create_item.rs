//! CreateItem: saves a message into a folder (the simulator's, the demo's and the tests' way to
//! plant mail). Always `MessageDisposition="SaveOnly"`: foldertrack never sends mail.
//! <https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/createitem-operation>

use super::folder::{read_wrapped_selector, write_selector};
use super::get_item::{ItemsMessage, read_items_field};
use super::ids::FolderSelector;
use super::item::Item;
use super::xml::{Element, XmlReader, XmlWriter};
use super::{Error, Operation};
use serde::Serialize;

/// `m:CreateItem`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CreateItem {
    pub folder: FolderSelector,
    pub items: Vec<Item>,
}

impl Operation for CreateItem {
    const NAME: &'static str = "CreateItem";
    type Message = ItemsMessage;

    fn write_body(&self, w: &mut XmlWriter) {
        w.element("m:CreateItem")
            .attr("MessageDisposition", "SaveOnly")
            .open();
        w.element("m:SavedItemFolderId").open();
        write_selector(w, &self.folder);
        w.close("m:SavedItemFolderId");
        w.element("m:Items").open();
        for item in &self.items {
            item.write(w);
        }
        w.close("m:Items");
        w.close("m:CreateItem");
    }

    fn read_body<'i>(r: &mut XmlReader<'i>, el: &Element<'i>) -> Result<Self, Error> {
        let mut folder = None;
        let mut items = Vec::new();
        while let Some(child) = r.next_child(el)? {
            match child.name() {
                "SavedItemFolderId" => folder = read_wrapped_selector(r, &child)?,
                "Items" => items = Item::read_all(r, &child)?,
                _ => r.skip(&child)?,
            }
        }
        // Without SavedItemFolderId, EWS saves into Drafts.
        let folder = folder.unwrap_or(super::DistinguishedFolder::Drafts.into());
        Ok(CreateItem { folder, items })
    }

    fn read_field<'i>(
        r: &mut XmlReader<'i>,
        el: &Element<'i>,
        m: &mut ItemsMessage,
    ) -> Result<bool, Error> {
        read_items_field(r, el, m)
    }
}
