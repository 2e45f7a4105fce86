//! SyncFolderItems: the change feed of one folder — pages of up to 512 changes after an opaque
//! sync state. Each change is read on its own: one unreadable change becomes
//! [`Change::Unreadable`] instead of failing a page of 512.
//! <https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/syncfolderitems-operation>

use super::folder::{read_sync_state, read_wrapped_selector, write_selector};
use super::ids::{FolderSelector, ItemRef, SyncState};
use super::item::{Item, ItemShape, read_item_ref, read_item_refs, write_item_refs};
use super::xml::{Element, XmlReader, XmlWriter};
use super::{Error, Operation};
use serde::Serialize;

/// The largest page EWS allows.
pub const MAX_CHANGES: u16 = 512;

/// `m:SyncFolderItems`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SyncFolderItems {
    pub shape: ItemShape,
    pub folder: FolderSelector,
    /// `None` on the first sync: every existing item comes back as a `Create`.
    pub sync_state: Option<SyncState>,
    pub ignore: Vec<ItemRef>,
    /// 1..=512.
    pub max_changes: u16,
    /// `NormalItems` (default) or `NormalAndAssociatedItems`.
    pub sync_scope: Option<String>,
}

impl SyncFolderItems {
    /// An IdOnly page of up to `max_changes` after `sync_state`.
    pub fn page(folder: FolderSelector, sync_state: Option<SyncState>, max_changes: u16) -> Self {
        Self {
            shape: ItemShape::for_sync(),
            folder,
            sync_state,
            ignore: Vec::new(),
            max_changes: max_changes.clamp(1, MAX_CHANGES),
            sync_scope: None,
        }
    }
}

/// One change in a page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Change {
    Create(Item),
    Update(Item),
    Delete(ItemRef),
    ReadFlagChange {
        item_id: ItemRef,
        is_read: bool,
    },
    /// A change that could not be read; the rest of the page is intact.
    Unreadable {
        index: usize,
        reason: String,
    },
}

/// One `m:SyncFolderItemsResponseMessage`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SyncFolderItemsMessage {
    pub sync_state: Option<SyncState>,
    /// `IncludesLastItemInRange`. The schema makes it optional (`minOccurs="0"`): an answer
    /// without it is the last page, or a folder would be paged forever.
    pub includes_last_item_in_range: bool,
    pub changes: Vec<Change>,
}

impl Default for SyncFolderItemsMessage {
    fn default() -> Self {
        Self {
            sync_state: None,
            includes_last_item_in_range: true,
            changes: Vec::new(),
        }
    }
}

impl Operation for SyncFolderItems {
    const NAME: &'static str = "SyncFolderItems";
    type Message = SyncFolderItemsMessage;

    fn write_body(&self, w: &mut XmlWriter) {
        w.element("m:SyncFolderItems").open();
        self.shape.write(w);
        w.element("m:SyncFolderId").open();
        write_selector(w, &self.folder);
        w.close("m:SyncFolderId");
        if let Some(s) = &self.sync_state {
            w.leaf("m:SyncState", s.as_str());
        }
        if !self.ignore.is_empty() {
            write_item_refs(w, "m:Ignore", &self.ignore);
        }
        w.leaf("m:MaxChangesReturned", &self.max_changes.to_string());
        if let Some(scope) = &self.sync_scope {
            w.leaf("m:SyncScope", scope);
        }
        w.close("m:SyncFolderItems");
    }

    fn read_body<'i>(r: &mut XmlReader<'i>, el: &Element<'i>) -> Result<Self, Error> {
        let mut op =
            SyncFolderItems::page(super::DistinguishedFolder::Inbox.into(), None, MAX_CHANGES);
        let mut folder = None;
        while let Some(child) = r.next_child(el)? {
            match child.name() {
                "ItemShape" => op.shape = ItemShape::read(r, &child)?,
                "SyncFolderId" => folder = read_wrapped_selector(r, &child)?,
                "SyncState" => op.sync_state = read_sync_state(r, &child)?,
                "Ignore" => op.ignore = read_item_refs(r, &child)?,
                "MaxChangesReturned" => op.max_changes = r.number(&child)?,
                "SyncScope" => op.sync_scope = Some(r.trimmed(&child)?),
                _ => r.skip(&child)?,
            }
        }
        op.folder = folder.ok_or_else(|| r.error("SyncFolderItems without a SyncFolderId"))?;
        Ok(op)
    }

    fn read_field<'i>(
        r: &mut XmlReader<'i>,
        el: &Element<'i>,
        m: &mut SyncFolderItemsMessage,
    ) -> Result<bool, Error> {
        match el.name() {
            "SyncState" => m.sync_state = read_sync_state(r, el)?,
            "IncludesLastItemInRange" => m.includes_last_item_in_range = r.bool(el)?,
            "Changes" => {
                while let Some(change) = r.next_child(el)? {
                    let index = m.changes.len();
                    m.changes.push(read_change(r, &change, index)?);
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// Reads one change. Structural problems inside it (no item, no id) make it `Unreadable`;
/// only XML that is not well-formed fails the page, since nothing after it could be trusted.
fn read_change(r: &mut XmlReader<'_>, change: &Element<'_>, index: usize) -> Result<Change, Error> {
    let kind = change.name().to_owned();
    let mut item = None;
    let mut item_id = None;
    let mut is_read = None;
    let mut problem = None;
    while let Some(child) = r.next_child(change)? {
        if Item::is_item(&child) {
            item = Some(Item::read(r, &child)?);
        } else if child.name() == "ItemId" {
            match read_item_ref(r, &child) {
                Ok(id) => item_id = Some(id),
                Err(e) => problem = Some(e.to_string()),
            }
        } else if child.name() == "IsRead" {
            is_read = r.bool(&child).ok();
        } else {
            r.skip(&child)?;
        }
    }
    let unreadable = |reason: String| Change::Unreadable { index, reason };
    Ok(match kind.as_str() {
        "Create" | "Update" => match item {
            Some(i) if i.item_id.is_some() => {
                if kind == "Create" {
                    Change::Create(i)
                } else {
                    Change::Update(i)
                }
            }
            Some(_) => unreadable(format!("{kind} of an item without an ItemId")),
            None => unreadable(format!("{kind} without an item")),
        },
        "Delete" => match item_id {
            Some(id) => Change::Delete(id),
            None => unreadable(problem.unwrap_or_else(|| "Delete without an ItemId".into())),
        },
        "ReadFlagChange" => match (item_id, is_read) {
            (Some(item_id), Some(is_read)) => Change::ReadFlagChange { item_id, is_read },
            _ => unreadable("ReadFlagChange without an ItemId or IsRead".into()),
        },
        other => unreadable(format!("unknown change <{other}>")),
    })
}
