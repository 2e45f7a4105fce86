//! FindFolder: resolve a configured folder path to a FolderId, by walking the tree under a
//! parent, paged with IndexedPageFolderView until IncludesLastItemInRange. Requests are read
//! with the restriction other clients send (a folder by display name, say).
//! <https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/findfolder-operation>

use super::folder::{self, Folder, FolderShape};
use super::ids::FolderSelector;
use super::restriction::Restriction;
use super::xml::{Element, XmlReader, XmlWriter};
use super::{Error, Operation};
use serde::Serialize;

/// `Traversal`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub enum Traversal {
    #[default]
    Shallow,
    Deep,
}

/// `m:IndexedPageFolderView`: a page of the result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Page {
    pub max_entries: u32,
    pub offset: u32,
    /// `BasePoint="End"`: the offset counts from the end.
    pub from_end: bool,
}

/// `m:FindFolder`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FindFolder {
    pub traversal: Traversal,
    pub shape: FolderShape,
    pub page: Option<Page>,
    pub restriction: Option<Restriction>,
    pub parents: Vec<FolderSelector>,
}

/// The paging attributes of `m:RootFolder` (FindFolder and FindItem): how many match, whether
/// this page holds the last of them, and where the next page starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Paging {
    pub total_items_in_view: Option<u32>,
    pub includes_last_item_in_range: bool,
    /// With an indexed view: the offset of the next page.
    pub indexed_paging_offset: Option<u32>,
    /// With a fractional view: the numerator of the next page, over `absolute_denominator`.
    pub numerator_offset: Option<u32>,
    pub absolute_denominator: Option<u32>,
}

impl Paging {
    /// Reads `m:RootFolder`: its attributes, and the child named `payload` with `read`.
    pub fn read_root_folder<'i>(
        r: &mut XmlReader<'i>,
        el: &Element<'i>,
        payload: &str,
        mut read: impl FnMut(&mut XmlReader<'i>, &Element<'i>) -> Result<(), Error>,
    ) -> Result<Self, Error> {
        let num = |n: &str| el.attr(n).and_then(|v| v.trim().parse().ok());
        let paging = Paging {
            total_items_in_view: num("TotalItemsInView"),
            includes_last_item_in_range: el.attr("IncludesLastItemInRange").as_deref()
                != Some("false"),
            indexed_paging_offset: num("IndexedPagingOffset"),
            numerator_offset: num("NumeratorOffset"),
            absolute_denominator: num("AbsoluteDenominator"),
        };
        while let Some(child) = r.next_child(el)? {
            if child.name() == payload {
                read(r, &child)?;
            } else {
                r.skip(&child)?;
            }
        }
        Ok(paging)
    }
}

/// One `m:FindFolderResponseMessage`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FindFolderMessage {
    #[serde(flatten)]
    pub paging: Paging,
    pub folders: Vec<Folder>,
}

impl Operation for FindFolder {
    const NAME: &'static str = "FindFolder";
    type Message = FindFolderMessage;

    fn write_body(&self, w: &mut XmlWriter) {
        let traversal = match self.traversal {
            Traversal::Shallow => "Shallow",
            Traversal::Deep => "Deep",
        };
        w.element("m:FindFolder")
            .attr("Traversal", traversal)
            .open();
        self.shape.write(w);
        if let Some(p) = self.page {
            w.element("m:IndexedPageFolderView")
                .attr_display("MaxEntriesReturned", p.max_entries)
                .attr_display("Offset", p.offset)
                .attr("BasePoint", if p.from_end { "End" } else { "Beginning" })
                .empty();
        }
        if let Some(r) = &self.restriction {
            r.write_wrapper(w);
        }
        folder::write_selectors(w, "m:ParentFolderIds", &self.parents);
        w.close("m:FindFolder");
    }

    fn read_body<'i>(r: &mut XmlReader<'i>, el: &Element<'i>) -> Result<Self, Error> {
        let mut op = FindFolder {
            traversal: match el.attr("Traversal").as_deref() {
                Some("Deep") => Traversal::Deep,
                _ => Traversal::Shallow,
            },
            shape: FolderShape::default(),
            page: None,
            restriction: None,
            parents: Vec::new(),
        };
        while let Some(child) = r.next_child(el)? {
            match child.name() {
                "FolderShape" => op.shape = FolderShape::read(r, &child)?,
                "IndexedPageFolderView" => {
                    let num = |n: &str| child.attr(n).and_then(|v| v.trim().parse().ok());
                    op.page = Some(Page {
                        max_entries: num("MaxEntriesReturned").unwrap_or(1000),
                        offset: num("Offset").unwrap_or(0),
                        from_end: child.attr("BasePoint").as_deref() == Some("End"),
                    });
                    r.skip(&child)?;
                }
                "Restriction" => op.restriction = Some(Restriction::read_wrapper(r, &child)?),
                "ParentFolderIds" => op.parents = folder::read_selectors(r, &child)?,
                _ => r.skip(&child)?,
            }
        }
        Ok(op)
    }

    fn read_field<'i>(
        r: &mut XmlReader<'i>,
        el: &Element<'i>,
        m: &mut FindFolderMessage,
    ) -> Result<bool, Error> {
        if el.name() != "RootFolder" {
            return Ok(false);
        }
        m.paging = Paging::read_root_folder(r, el, "Folders", |r, child| {
            m.folders = Folder::read_all(r, child)?;
            Ok(())
        })?;
        Ok(true)
    }
}
