//! The folder element GetFolder, FindFolder and SyncFolderHierarchy return, the folder shape
//! requests ask for, and how a request names folders.
//! <https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/folder>

use super::Error;
use super::ids::{ChangeKey, DistinguishedFolder, FolderId, FolderRef, FolderSelector};
use super::xml::{Element, Ns, XmlReader, XmlWriter};
use serde::{Deserialize, Serialize};

/// A folder as the server describes it. Which fields are present depends on the shape asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Folder {
    /// The element it came in: `Folder`, `CalendarFolder`, `SearchFolder`, …
    pub kind: String,
    pub id: Option<FolderRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<FolderRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub folder_class: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub child_folder_count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unread_count: Option<u32>,
}

/// The element names that hold a folder.
pub const FOLDER_KINDS: [&str; 5] = [
    "Folder",
    "CalendarFolder",
    "ContactsFolder",
    "SearchFolder",
    "TasksFolder",
];

impl Folder {
    /// True when `el` is one of the folder elements.
    pub fn is_folder(el: &Element<'_>) -> bool {
        el.ns == Ns::Types && FOLDER_KINDS.contains(&el.name())
    }

    /// Reads a `t:Folder` (or another folder kind); unknown children are skipped.
    pub fn read(r: &mut XmlReader<'_>, el: &Element<'_>) -> Result<Self, Error> {
        let mut f = Folder {
            kind: el.name().to_owned(),
            ..Folder::default()
        };
        while let Some(child) = r.next_child(el)? {
            match child.name() {
                "FolderId" => f.id = Some(read_folder_ref(r, &child)?),
                "ParentFolderId" => f.parent_id = Some(read_folder_ref(r, &child)?),
                "FolderClass" => f.folder_class = Some(r.text(&child)?),
                "DisplayName" => f.display_name = Some(r.text(&child)?),
                "TotalCount" => f.total_count = Some(r.number(&child)?),
                "ChildFolderCount" => f.child_folder_count = Some(r.number(&child)?),
                "UnreadCount" => f.unread_count = Some(r.number(&child)?),
                _ => r.skip(&child)?,
            }
        }
        Ok(f)
    }

    /// Reads every folder element inside `el` (e.g. `m:Folders`), skipping anything else.
    pub fn read_all(r: &mut XmlReader<'_>, el: &Element<'_>) -> Result<Vec<Self>, Error> {
        let mut out = Vec::new();
        while let Some(child) = r.next_child(el)? {
            if Self::is_folder(&child) {
                out.push(Self::read(r, &child)?);
            } else {
                r.skip(&child)?;
            }
        }
        Ok(out)
    }
}

/// Reads `Id` and `ChangeKey` of a `t:FolderId`-like element.
pub fn read_folder_ref(r: &mut XmlReader<'_>, el: &Element<'_>) -> Result<FolderRef, Error> {
    let id = el
        .attr("Id")
        .ok_or_else(|| r.error(&format!("<{}> without an Id", el.name())))?;
    r.skip(el)?;
    Ok(FolderRef {
        id: FolderId(id),
        change_key: el.attr("ChangeKey").map(ChangeKey),
    })
}

/// Writes one folder selector (`t:FolderId` or `t:DistinguishedFolderId`).
pub fn write_selector(w: &mut XmlWriter, folder: &FolderSelector) {
    match folder {
        FolderSelector::Id(f) => w
            .element("t:FolderId")
            .attr("Id", f.id.as_str())
            .attr_opt("ChangeKey", f.change_key.as_ref().map(|c| c.as_str()))
            .empty(),
        FolderSelector::Distinguished(d) => w
            .element("t:DistinguishedFolderId")
            .attr("Id", d.as_str())
            .empty(),
    }
}

/// Writes `name` wrapping the selectors, e.g. `m:FolderIds` or `m:ParentFolderIds`.
pub fn write_selectors(w: &mut XmlWriter, name: &str, folders: &[FolderSelector]) {
    w.element(name).open();
    for f in folders {
        write_selector(w, f);
    }
    w.close(name);
}

/// Reads one selector; `None` for an element that is neither kind.
pub fn read_selector(
    r: &mut XmlReader<'_>,
    el: &Element<'_>,
) -> Result<Option<FolderSelector>, Error> {
    match el.name() {
        "FolderId" => Ok(Some(FolderSelector::Id(read_folder_ref(r, el)?))),
        "DistinguishedFolderId" => {
            let id = el.attr("Id").unwrap_or_default();
            r.skip(el)?;
            DistinguishedFolder::parse(&id)
                .map(|d| Some(FolderSelector::Distinguished(d)))
                .ok_or_else(|| r.error(&format!("unknown distinguished folder {id:?}")))
        }
        _ => {
            r.skip(el)?;
            Ok(None)
        }
    }
}

/// The first selector inside a wrapper such as `m:ToFolderId` or `m:SyncFolderId`.
pub fn read_wrapped_selector(
    r: &mut XmlReader<'_>,
    el: &Element<'_>,
) -> Result<Option<FolderSelector>, Error> {
    Ok(read_selectors(r, el)?.into_iter().next())
}

/// A `SyncState` element; empty (as in ErrorInvalidSyncStateData answers) reads as none.
pub fn read_sync_state(
    r: &mut XmlReader<'_>,
    el: &Element<'_>,
) -> Result<Option<super::ids::SyncState>, Error> {
    let s = r.trimmed(el)?;
    Ok((!s.is_empty()).then_some(super::ids::SyncState(s)))
}

/// `t:BaseShape`, shared by folder and item shapes.
pub fn read_base_shape(r: &mut XmlReader<'_>, el: &Element<'_>) -> Result<BaseShape, Error> {
    let s = r.trimmed(el)?;
    BaseShape::parse(&s).ok_or_else(|| r.error(&format!("unknown BaseShape {s:?}")))
}

/// Reads every selector inside `el` (`m:FolderIds`, `m:SyncFolderId`, …).
pub fn read_selectors(
    r: &mut XmlReader<'_>,
    el: &Element<'_>,
) -> Result<Vec<FolderSelector>, Error> {
    let mut out = Vec::new();
    while let Some(child) = r.next_child(el)? {
        out.extend(read_selector(r, &child)?);
    }
    Ok(out)
}

/// `BaseShape` of a folder or item shape.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum BaseShape {
    #[default]
    IdOnly,
    Default,
    AllProperties,
}

impl BaseShape {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::IdOnly => "IdOnly",
            Self::Default => "Default",
            Self::AllProperties => "AllProperties",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::IdOnly, Self::Default, Self::AllProperties]
            .into_iter()
            .find(|b| b.as_str() == s.trim())
    }
}

/// The folder properties foldertrack asks for beyond the base shape.
pub const FOLDER_PROPERTIES: [&str; 4] = [
    "folder:DisplayName",
    "folder:ParentFolderId",
    "folder:FolderClass",
    "folder:ChildFolderCount",
];

/// `m:FolderShape`: a base shape plus field URIs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FolderShape {
    pub base: BaseShape,
    pub properties: Vec<String>,
}

impl FolderShape {
    /// IdOnly plus what mapping resolution needs: name, parent, class, child count.
    pub fn for_resolution() -> Self {
        Self {
            base: BaseShape::IdOnly,
            properties: FOLDER_PROPERTIES.iter().map(|p| (*p).to_owned()).collect(),
        }
    }

    pub fn write(&self, w: &mut XmlWriter) {
        w.element("m:FolderShape").open();
        w.leaf("t:BaseShape", self.base.as_str());
        if !self.properties.is_empty() {
            w.element("t:AdditionalProperties").open();
            for p in &self.properties {
                w.element("t:FieldURI").attr("FieldURI", p).empty();
            }
            w.close("t:AdditionalProperties");
        }
        w.close("m:FolderShape");
    }

    /// Reads a folder or item shape's base shape and `t:FieldURI`s.
    pub fn read(r: &mut XmlReader<'_>, el: &Element<'_>) -> Result<Self, Error> {
        let mut shape = Self::default();
        while let Some(child) = r.next_child(el)? {
            match child.name() {
                "BaseShape" => shape.base = read_base_shape(r, &child)?,
                "AdditionalProperties" => {
                    while let Some(p) = r.next_child(&child)? {
                        if let Some(uri) = p.attr("FieldURI") {
                            shape.properties.push(uri);
                        }
                        r.skip(&p)?;
                    }
                }
                _ => r.skip(&child)?,
            }
        }
        Ok(shape)
    }
}
