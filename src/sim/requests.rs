//! Reading FindFolder requests with the shared [`XmlReader`], including what `ews/`'s FindFolder
//! type leaves out because foldertrack never sends it: a DisplayName restriction and extended
//! properties in the shape (Microsoft's samples ask for PR_ATTR_HIDDEN). Every other request is
//! read by `ews/` itself.

use crate::ews::Error;
use crate::ews::folder::read_selectors;
use crate::ews::ids::FolderSelector;
use crate::ews::item::ItemShape;
use crate::ews::xml::{Element, XmlReader};

/// `m:FindFolder`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FindFolder {
    pub deep: bool,
    /// Read as an item shape: the same children, extended properties included.
    pub shape: ItemShape,
    pub max_entries: Option<usize>,
    pub offset: usize,
    pub from_end: bool,
    pub parents: Vec<FolderSelector>,
    /// `IsEqualTo folder:DisplayName` restriction, the one used to find a folder by name.
    pub display_name: Option<String>,
}

pub fn find_folder(r: &mut XmlReader<'_>, el: &Element<'_>) -> Result<FindFolder, Error> {
    let traversal = el.attr("Traversal").unwrap_or_default();
    let mut op = FindFolder {
        deep: traversal.trim() == "Deep",
        shape: ItemShape::default(),
        max_entries: None,
        offset: 0,
        from_end: false,
        parents: Vec::new(),
        display_name: None,
    };
    while let Some(child) = r.next_child(el)? {
        match child.name() {
            "FolderShape" => op.shape = ItemShape::read(r, &child)?,
            "IndexedPageFolderView" => {
                op.max_entries = child
                    .attr("MaxEntriesReturned")
                    .and_then(|v| v.trim().parse().ok());
                op.offset = child
                    .attr("Offset")
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                op.from_end = child.attr("BasePoint").as_deref() == Some("End");
                r.skip(&child)?;
            }
            "Restriction" => op.display_name = read_name_restriction(r, &child)?,
            "ParentFolderIds" => op.parents = read_selectors(r, &child)?,
            _ => r.skip(&child)?,
        }
    }
    Ok(op)
}

/// Finds `IsEqualTo(folder:DisplayName, value)` anywhere inside a restriction.
fn read_name_restriction(r: &mut XmlReader<'_>, el: &Element<'_>) -> Result<Option<String>, Error> {
    let mut found = None;
    let mut field = None;
    while let Some(child) = r.next_child(el)? {
        match child.name() {
            "FieldURI" => {
                field = child.attr("FieldURI");
                r.skip(&child)?;
            }
            "Constant" => {
                if field.as_deref() == Some("folder:DisplayName") {
                    found = child.attr("Value");
                }
                r.skip(&child)?;
            }
            _ => {
                if let Some(v) = read_name_restriction(r, &child)? {
                    found = Some(v);
                }
            }
        }
    }
    Ok(found)
}
