//! FindItem: the items of a folder that match a restriction, sorted and paged
//! (IndexedPageItemView or FractionalPageItemView), with the totals a client pages by.
//! foldertrack follows folders with SyncFolderItems instead; the simulator answers FindItem
//! for the clients that query.
//! <https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/finditem-operation>

use super::find_folder::Paging;
use super::folder::{read_selectors, write_selectors};
use super::ids::FolderSelector;
use super::item::{Item, ItemShape};
use super::restriction::{FieldOrder, Restriction, read_sort_order, write_sort_order};
use super::xml::{Element, XmlReader, XmlWriter};
use super::{Error, Operation};
use serde::Serialize;

/// `Traversal` (`ItemQueryTraversalType`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub enum ItemTraversal {
    #[default]
    Shallow,
    SoftDeleted,
    Associated,
}

impl ItemTraversal {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Shallow => "Shallow",
            Self::SoftDeleted => "SoftDeleted",
            Self::Associated => "Associated",
        }
    }
}

/// Which page of the result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum ItemView {
    /// `m:IndexedPageItemView`: `offset` items from the beginning (or the end).
    Indexed {
        max_entries: Option<u32>,
        offset: u32,
        from_end: bool,
    },
    /// `m:FractionalPageItemView`: from `numerator / denominator` of the way through.
    Fractional {
        max_entries: Option<u32>,
        numerator: u32,
        denominator: u32,
    },
    /// A view of another kind (`CalendarView`, `ContactsView`, `SeekToConditionPageItemView`),
    /// kept by name.
    Other(String),
}

/// `m:FindItem`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FindItem {
    pub traversal: ItemTraversal,
    pub shape: ItemShape,
    pub view: Option<ItemView>,
    /// `GroupBy` or `DistinguishedGroupBy`, kept by name.
    pub grouping: Option<String>,
    pub restriction: Option<Restriction>,
    pub sort: Vec<FieldOrder>,
    pub parents: Vec<FolderSelector>,
    /// `m:QueryString` (an AQS search).
    pub query_string: Option<String>,
}

/// One `m:FindItemResponseMessage`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FindItemMessage {
    #[serde(flatten)]
    pub paging: Paging,
    pub items: Vec<Item>,
}

impl ItemView {
    fn write(&self, w: &mut XmlWriter) {
        match self {
            Self::Indexed {
                max_entries,
                offset,
                from_end,
            } => w
                .element("m:IndexedPageItemView")
                .attr_opt(
                    "MaxEntriesReturned",
                    max_entries.map(|m| m.to_string()).as_deref(),
                )
                .attr_display("Offset", offset)
                .attr("BasePoint", if *from_end { "End" } else { "Beginning" })
                .empty(),
            Self::Fractional {
                max_entries,
                numerator,
                denominator,
            } => w
                .element("m:FractionalPageItemView")
                .attr_opt(
                    "MaxEntriesReturned",
                    max_entries.map(|m| m.to_string()).as_deref(),
                )
                .attr_display("Numerator", numerator)
                .attr_display("Denominator", denominator)
                .empty(),
            Self::Other(name) => w.element(&format!("m:{name}")).empty(),
        }
    }

    fn read(r: &XmlReader<'_>, el: &Element<'_>) -> Result<Self, Error> {
        let num = |n: &str| el.attr(n).and_then(|v| v.trim().parse::<u32>().ok());
        let need = |n: &str| {
            num(n).ok_or_else(|| r.error(&format!("{} without a numeric {n}", el.name())))
        };
        Ok(match el.name() {
            "IndexedPageItemView" => Self::Indexed {
                max_entries: num("MaxEntriesReturned"),
                offset: need("Offset")?,
                from_end: el.attr("BasePoint").as_deref() == Some("End"),
            },
            "FractionalPageItemView" => Self::Fractional {
                max_entries: num("MaxEntriesReturned"),
                numerator: need("Numerator")?,
                denominator: need("Denominator")?,
            },
            other => Self::Other(other.to_owned()),
        })
    }
}

const VIEWS: [&str; 5] = [
    "IndexedPageItemView",
    "FractionalPageItemView",
    "SeekToConditionPageItemView",
    "CalendarView",
    "ContactsView",
];

impl Operation for FindItem {
    const NAME: &'static str = "FindItem";
    type Message = FindItemMessage;

    fn write_body(&self, w: &mut XmlWriter) {
        w.element("m:FindItem")
            .attr("Traversal", self.traversal.as_str())
            .open();
        self.shape.write(w);
        if let Some(v) = &self.view {
            v.write(w);
        }
        if let Some(r) = &self.restriction {
            r.write_wrapper(w);
        }
        write_sort_order(w, &self.sort);
        write_selectors(w, "m:ParentFolderIds", &self.parents);
        if let Some(q) = &self.query_string {
            w.leaf("m:QueryString", q);
        }
        w.close("m:FindItem");
    }

    fn read_body<'i>(r: &mut XmlReader<'i>, el: &Element<'i>) -> Result<Self, Error> {
        let traversal = match el.attr("Traversal").as_deref().map(str::trim) {
            Some("Shallow") => ItemTraversal::Shallow,
            Some("SoftDeleted") => ItemTraversal::SoftDeleted,
            Some("Associated") => ItemTraversal::Associated,
            other => {
                return Err(r.error(&format!(
                    "FindItem Traversal {other:?} is not an ItemQueryTraversalType value"
                )));
            }
        };
        let mut op = FindItem {
            traversal,
            shape: ItemShape::default(),
            view: None,
            grouping: None,
            restriction: None,
            sort: Vec::new(),
            parents: Vec::new(),
            query_string: None,
        };
        while let Some(child) = r.next_child(el)? {
            match child.name() {
                "ItemShape" => op.shape = ItemShape::read(r, &child)?,
                name if VIEWS.contains(&name) => {
                    op.view = Some(ItemView::read(r, &child)?);
                    r.skip(&child)?;
                }
                "GroupBy" | "DistinguishedGroupBy" => {
                    op.grouping = Some(child.name().to_owned());
                    r.skip(&child)?;
                }
                "Restriction" => op.restriction = Some(Restriction::read_wrapper(r, &child)?),
                "SortOrder" => op.sort = read_sort_order(r, &child)?,
                "ParentFolderIds" => op.parents = read_selectors(r, &child)?,
                "QueryString" => op.query_string = Some(r.text(&child)?),
                _ => r.skip(&child)?,
            }
        }
        Ok(op)
    }

    fn read_field<'i>(
        r: &mut XmlReader<'i>,
        el: &Element<'i>,
        m: &mut FindItemMessage,
    ) -> Result<bool, Error> {
        if el.name() != "RootFolder" {
            return Ok(false);
        }
        m.paging = Paging::read_root_folder(r, el, "Items", |r, child| {
            m.items = Item::read_all(r, child)?;
            Ok(())
        })?;
        Ok(true)
    }
}
