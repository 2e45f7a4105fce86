//! The folder element GetFolder, FindFolder and SyncFolderHierarchy return, the folder shape
//! requests ask for, and how a request names folders.
//! <https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/folder>

use super::Error;
use super::ids::{ChangeKey, DistinguishedFolder, FolderId, FolderRef, FolderSelector};
use super::property::ExtendedFieldUri;
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

    /// Writes the folder as CreateFolder describes a new one: its kind, class and name.
    pub fn write_new(&self, w: &mut XmlWriter) {
        let kind = if self.kind.is_empty() {
            "Folder"
        } else {
            &self.kind
        };
        let name = format!("t:{kind}");
        w.element(&name).open();
        if let Some(c) = &self.folder_class {
            w.leaf("t:FolderClass", c);
        }
        if let Some(n) = &self.display_name {
            w.leaf("t:DisplayName", n);
        }
        w.close(&name);
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
        FolderSelector::Distinguished {
            folder,
            mailbox: None,
        } => w
            .element("t:DistinguishedFolderId")
            .attr("Id", folder.as_str())
            .empty(),
        FolderSelector::Distinguished {
            folder,
            mailbox: Some(m),
        } => {
            w.element("t:DistinguishedFolderId")
                .attr("Id", folder.as_str())
                .open();
            w.element("t:Mailbox").open();
            w.leaf("t:EmailAddress", m.as_str());
            w.close("t:Mailbox");
            w.close("t:DistinguishedFolderId");
        }
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
            let folder = DistinguishedFolder::parse(&id).ok_or_else(|| {
                r.error(&format!(
                    "DistinguishedFolderId Id={id:?} is not a DistinguishedFolderIdNameType value"
                ))
            })?;
            let mut mailbox = None;
            while let Some(child) = r.next_child(el)? {
                if child.name() == "Mailbox" {
                    mailbox = read_mailbox_address(r, &child)?;
                } else {
                    r.skip(&child)?;
                }
            }
            Ok(Some(FolderSelector::Distinguished { folder, mailbox }))
        }
        _ => {
            r.skip(el)?;
            Ok(None)
        }
    }
}

/// The `t:EmailAddress` of a `t:Mailbox` (other children are skipped).
fn read_mailbox_address(
    r: &mut XmlReader<'_>,
    el: &Element<'_>,
) -> Result<Option<super::ids::Mailbox>, Error> {
    let mut address = None;
    while let Some(child) = r.next_child(el)? {
        if child.name() == "EmailAddress" {
            address = Some(super::ids::Mailbox(r.trimmed(&child)?));
        } else {
            r.skip(&child)?;
        }
    }
    Ok(address)
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

/// `m:FolderShape`: a base shape plus field URIs and extended properties.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FolderShape {
    pub base: BaseShape,
    pub properties: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extended: Vec<ExtendedFieldUri>,
}

impl FolderShape {
    /// IdOnly plus what mapping resolution needs: name, parent, class, child count.
    pub fn for_resolution() -> Self {
        Self {
            base: BaseShape::IdOnly,
            properties: FOLDER_PROPERTIES.iter().map(|p| (*p).to_owned()).collect(),
            extended: Vec::new(),
        }
    }

    pub fn write(&self, w: &mut XmlWriter) {
        w.element("m:FolderShape").open();
        w.leaf("t:BaseShape", self.base.as_str());
        if !self.properties.is_empty() || !self.extended.is_empty() {
            w.element("t:AdditionalProperties").open();
            for p in &self.properties {
                w.element("t:FieldURI").attr("FieldURI", p).empty();
            }
            for e in &self.extended {
                e.write(w);
            }
            w.close("t:AdditionalProperties");
        }
        w.close("m:FolderShape");
    }

    /// Reads a folder shape's base shape, `t:FieldURI`s and `t:ExtendedFieldURI`s.
    pub fn read(r: &mut XmlReader<'_>, el: &Element<'_>) -> Result<Self, Error> {
        let mut shape = Self::default();
        while let Some(child) = r.next_child(el)? {
            match child.name() {
                "BaseShape" => shape.base = read_base_shape(r, &child)?,
                "AdditionalProperties" => {
                    while let Some(p) = r.next_child(&child)? {
                        match p.name() {
                            "FieldURI" => shape.properties.extend(p.attr("FieldURI")),
                            "ExtendedFieldURI" => shape.extended.push(ExtendedFieldUri::read(&p)),
                            _ => {}
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
