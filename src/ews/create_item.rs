//! CreateItem: saves a message into a folder (the simulator's, the demo's and the tests' way to
//! plant mail), or sends it (`MessageDisposition` SendOnly / SendAndSaveCopy, as other clients
//! do; foldertrack never sends mail).
//! <https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/createitem-operation>

use super::DistinguishedFolder;
use super::folder::{read_wrapped_selector, write_selector};
use super::get_item::{ItemsMessage, read_items_field};
use super::ids::FolderSelector;
use super::item::Item;
use super::xml::{Element, XmlReader, XmlWriter};
use super::{Error, Operation};
use serde::Serialize;

/// `MessageDisposition`: what happens to a new message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub enum MessageDisposition {
    /// Saved in the folder (Drafts when none is named); nothing is sent.
    #[default]
    SaveOnly,
    /// Sent; no copy is kept.
    SendOnly,
    /// Sent, and a copy saved in the folder (Sent Items when none is named).
    SendAndSaveCopy,
}

impl MessageDisposition {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SaveOnly => "SaveOnly",
            Self::SendOnly => "SendOnly",
            Self::SendAndSaveCopy => "SendAndSaveCopy",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Self::SaveOnly, Self::SendOnly, Self::SendAndSaveCopy]
            .into_iter()
            .find(|d| d.as_str() == s.trim())
    }

    /// Whether the message is sent.
    pub fn sends(self) -> bool {
        self != Self::SaveOnly
    }
}

/// `m:CreateItem`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CreateItem {
    pub disposition: MessageDisposition,
    /// `m:SavedItemFolderId`; when absent, Drafts (SaveOnly) or Sent Items (SendAndSaveCopy).
    pub folder: Option<FolderSelector>,
    pub items: Vec<Item>,
}

impl CreateItem {
    /// Saves `items` into `folder`, what foldertrack's tools do.
    pub fn save(folder: FolderSelector, items: Vec<Item>) -> Self {
        Self {
            disposition: MessageDisposition::SaveOnly,
            folder: Some(folder),
            items,
        }
    }

    /// Where a copy is saved, if anywhere.
    pub fn saved_in(&self) -> Option<FolderSelector> {
        match (self.disposition, &self.folder) {
            (MessageDisposition::SendOnly, _) => None,
            (_, Some(f)) => Some(f.clone()),
            (MessageDisposition::SaveOnly, None) => Some(DistinguishedFolder::Drafts.into()),
            (MessageDisposition::SendAndSaveCopy, None) => {
                Some(DistinguishedFolder::SentItems.into())
            }
        }
    }
}

impl Operation for CreateItem {
    const NAME: &'static str = "CreateItem";
    type Message = ItemsMessage;

    fn write_body(&self, w: &mut XmlWriter) {
        w.element("m:CreateItem")
            .attr("MessageDisposition", self.disposition.as_str())
            .open();
        if let Some(folder) = &self.folder {
            w.element("m:SavedItemFolderId").open();
            write_selector(w, folder);
            w.close("m:SavedItemFolderId");
        }
        w.element("m:Items").open();
        for item in &self.items {
            item.write(w);
        }
        w.close("m:Items");
        w.close("m:CreateItem");
    }

    fn read_body<'i>(r: &mut XmlReader<'i>, el: &Element<'i>) -> Result<Self, Error> {
        let disposition = match el.attr("MessageDisposition") {
            None => MessageDisposition::SaveOnly,
            Some(d) => MessageDisposition::parse(&d).ok_or_else(|| {
                r.error(&format!(
                    "MessageDisposition {d:?} is not a MessageDispositionType value"
                ))
            })?,
        };
        let mut folder = None;
        let mut items = Vec::new();
        while let Some(child) = r.next_child(el)? {
            match child.name() {
                "SavedItemFolderId" => folder = read_wrapped_selector(r, &child)?,
                "Items" => items = Item::read_all(r, &child)?,
                _ => r.skip(&child)?,
            }
        }
        Ok(CreateItem {
            disposition,
            folder,
            items,
        })
    }

    fn read_field<'i>(
        r: &mut XmlReader<'i>,
        el: &Element<'i>,
        m: &mut ItemsMessage,
    ) -> Result<bool, Error> {
        read_items_field(r, el, m)
    }
}
