//! SyncFolderHierarchy: folder creations, renames, moves and deletions since a sync state — how
//! foldertrack notices that a mapped folder was renamed (still tracked), moved out of the Inbox
//! (paused) or deleted (orphaned).
//! <https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/syncfolderhierarchy-operation>

use super::folder::{
    Folder, FolderShape, read_folder_ref, read_sync_state, read_wrapped_selector, write_selector,
};
use super::ids::{FolderRef, FolderSelector, SyncState};
use super::xml::{Element, XmlReader, XmlWriter};
use super::{Error, Operation};
use serde::Serialize;

/// `m:SyncFolderHierarchy`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SyncFolderHierarchy {
    pub shape: FolderShape,
    /// The root to sync under; must be the same on every call of one sync state.
    pub root: Option<FolderSelector>,
    pub sync_state: Option<SyncState>,
}

/// One folder change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum FolderChange {
    Create(Folder),
    Update(Folder),
    Delete(FolderRef),
}

/// One `m:SyncFolderHierarchyResponseMessage`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SyncFolderHierarchyMessage {
    pub sync_state: Option<SyncState>,
    /// `IncludesLastFolderInRange`; optional in the schema, and absent means the last page.
    pub includes_last_folder_in_range: bool,
    pub changes: Vec<FolderChange>,
}

impl Default for SyncFolderHierarchyMessage {
    fn default() -> Self {
        Self {
            sync_state: None,
            includes_last_folder_in_range: true,
            changes: Vec::new(),
        }
    }
}

impl Operation for SyncFolderHierarchy {
    const NAME: &'static str = "SyncFolderHierarchy";
    type Message = SyncFolderHierarchyMessage;

    fn write_body(&self, w: &mut XmlWriter) {
        w.element("m:SyncFolderHierarchy").open();
        self.shape.write(w);
        if let Some(root) = &self.root {
            w.element("m:SyncFolderId").open();
            write_selector(w, root);
            w.close("m:SyncFolderId");
        }
        if let Some(s) = &self.sync_state {
            w.leaf("m:SyncState", s.as_str());
        }
        w.close("m:SyncFolderHierarchy");
    }

    fn read_body<'i>(r: &mut XmlReader<'i>, el: &Element<'i>) -> Result<Self, Error> {
        let mut op = SyncFolderHierarchy {
            shape: FolderShape::default(),
            root: None,
            sync_state: None,
        };
        while let Some(child) = r.next_child(el)? {
            match child.name() {
                "FolderShape" => op.shape = FolderShape::read(r, &child)?,
                "SyncFolderId" => op.root = read_wrapped_selector(r, &child)?,
                "SyncState" => op.sync_state = read_sync_state(r, &child)?,
                _ => r.skip(&child)?,
            }
        }
        Ok(op)
    }

    fn read_field<'i>(
        r: &mut XmlReader<'i>,
        el: &Element<'i>,
        m: &mut SyncFolderHierarchyMessage,
    ) -> Result<bool, Error> {
        match el.name() {
            "SyncState" => m.sync_state = read_sync_state(r, el)?,
            "IncludesLastFolderInRange" => m.includes_last_folder_in_range = r.bool(el)?,
            "Changes" => {
                while let Some(change) = r.next_child(el)? {
                    let kind = change.name().to_owned();
                    while let Some(inner) = r.next_child(&change)? {
                        match kind.as_str() {
                            "Create" | "Update" if Folder::is_folder(&inner) => {
                                let f = Folder::read(r, &inner)?;
                                m.changes.push(if kind == "Create" {
                                    FolderChange::Create(f)
                                } else {
                                    FolderChange::Update(f)
                                });
                            }
                            "Delete" if inner.name() == "FolderId" => {
                                m.changes
                                    .push(FolderChange::Delete(read_folder_ref(r, &inner)?));
                            }
                            _ => r.skip(&inner)?,
                        }
                    }
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}
