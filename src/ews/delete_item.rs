//! DeleteItem: delete items for good, into Recoverable Items, or into Deleted Items (a move
//! with a new ItemId). One response message per item, in request order; nothing else in it.
//! <https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/deleteitem-operation>

use super::ids::ItemRef;
use super::item::{read_item_refs, write_item_refs};
use super::xml::{Element, XmlReader, XmlWriter};
use super::{Error, Operation};
use serde::Serialize;

/// `DeleteType` (`DisposalType`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub enum DeleteType {
    /// Gone: no client can recover it.
    HardDelete,
    /// Into the Recoverable Items folder (the dumpster).
    SoftDelete,
    /// Into Deleted Items.
    #[default]
    MoveToDeletedItems,
}

impl DeleteType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HardDelete => "HardDelete",
            Self::SoftDelete => "SoftDelete",
            Self::MoveToDeletedItems => "MoveToDeletedItems",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Self::HardDelete, Self::SoftDelete, Self::MoveToDeletedItems]
            .into_iter()
            .find(|d| d.as_str() == s.trim())
    }
}

/// `m:DeleteItem`. The meeting and task attributes are read past: they concern calendar and
/// task items only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeleteItem {
    pub delete_type: DeleteType,
    pub items: Vec<ItemRef>,
}

impl Operation for DeleteItem {
    const NAME: &'static str = "DeleteItem";
    type Message = ();

    fn write_body(&self, w: &mut XmlWriter) {
        w.element("m:DeleteItem")
            .attr("DeleteType", self.delete_type.as_str())
            .open();
        write_item_refs(w, "m:ItemIds", &self.items);
        w.close("m:DeleteItem");
    }

    fn read_body<'i>(r: &mut XmlReader<'i>, el: &Element<'i>) -> Result<Self, Error> {
        let kind = el.attr("DeleteType").unwrap_or_default();
        let delete_type = DeleteType::parse(&kind)
            .ok_or_else(|| r.error(&format!("DeleteType {kind:?} is not a DisposalType value")))?;
        let mut items = Vec::new();
        while let Some(child) = r.next_child(el)? {
            if child.name() == "ItemIds" {
                items = read_item_refs(r, &child)?;
            } else {
                r.skip(&child)?;
            }
        }
        Ok(DeleteItem { delete_type, items })
    }

    fn read_field<'i>(_: &mut XmlReader<'i>, _: &Element<'i>, _: &mut ()) -> Result<bool, Error> {
        Ok(false)
    }
}
