//! FindFolder: resolve a configured folder path to a FolderId, by walking the tree under a
//! parent, paged with IndexedPageFolderView until IncludesLastItemInRange.
//! <https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/findfolder-operation>

use super::folder::{self, Folder, FolderShape};
use super::ids::FolderSelector;
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
}

/// `m:FindFolder`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FindFolder {
    pub traversal: Traversal,
    pub shape: FolderShape,
    pub page: Option<Page>,
    pub parents: Vec<FolderSelector>,
}

/// One `m:FindFolderResponseMessage`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FindFolderMessage {
    pub total_items_in_view: Option<u32>,
    pub includes_last_item_in_range: bool,
    pub indexed_paging_offset: Option<u32>,
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
                .attr("BasePoint", "Beginning")
                .empty();
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
                    });
                    r.skip(&child)?;
                }
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
        let num = |n: &str| el.attr(n).and_then(|v| v.trim().parse().ok());
        m.total_items_in_view = num("TotalItemsInView");
        m.indexed_paging_offset = num("IndexedPagingOffset");
        m.includes_last_item_in_range =
            el.attr("IncludesLastItemInRange").as_deref() != Some("false");
        while let Some(child) = r.next_child(el)? {
            if child.name() == "Folders" {
                m.folders = Folder::read_all(r, &child)?;
            } else {
                r.skip(&child)?;
            }
        }
        Ok(true)
    }
}
