//! Reading the requests of the operations whose request types `ews/` does not define (FindFolder,
//! SyncFolderHierarchy and the notification operations), with the shared [`XmlReader`]: only
//! the fields the simulator acts on. Everything else is read by `ews/` itself.

use crate::ews::Error;
use crate::ews::folder::{BaseShape, read_selector, read_selectors};
use crate::ews::ids::FolderSelector;
use crate::ews::item::ExtendedFieldUri;
use crate::ews::xml::{Element, XmlReader};

/// A folder shape with its extended properties (FindFolder asks for PR_ATTR_HIDDEN).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Shape {
    pub base: BaseShape,
    pub properties: Vec<String>,
    pub extended: Vec<ExtendedFieldUri>,
}

pub fn read_shape(r: &mut XmlReader<'_>, el: &Element<'_>) -> Result<Shape, Error> {
    let mut shape = Shape::default();
    while let Some(child) = r.next_child(el)? {
        match child.name() {
            "BaseShape" => {
                let s = r.trimmed(&child)?;
                shape.base = BaseShape::parse(&s)
                    .ok_or_else(|| r.error(&format!("unknown BaseShape {s:?}")))?;
            }
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

/// `m:FindFolder`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FindFolder {
    pub deep: bool,
    pub shape: Shape,
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
        shape: Shape::default(),
        max_entries: None,
        offset: 0,
        from_end: false,
        parents: Vec::new(),
        display_name: None,
    };
    while let Some(child) = r.next_child(el)? {
        match child.name() {
            "FolderShape" => op.shape = read_shape(r, &child)?,
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

/// `m:SyncFolderHierarchy`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncFolderHierarchy {
    pub shape: Shape,
    pub root: Option<FolderSelector>,
    pub sync_state: Option<String>,
}

pub fn sync_folder_hierarchy(
    r: &mut XmlReader<'_>,
    el: &Element<'_>,
) -> Result<SyncFolderHierarchy, Error> {
    let mut op = SyncFolderHierarchy {
        shape: Shape::default(),
        root: None,
        sync_state: None,
    };
    while let Some(child) = r.next_child(el)? {
        match child.name() {
            "FolderShape" => op.shape = read_shape(r, &child)?,
            "SyncFolderId" => {
                while let Some(f) = r.next_child(&child)? {
                    op.root = op.root.or(read_selector(r, &f)?);
                }
            }
            "SyncState" => {
                let s = r.trimmed(&child)?;
                op.sync_state = (!s.is_empty()).then_some(s);
            }
            _ => r.skip(&child)?,
        }
    }
    Ok(op)
}

/// `m:Subscribe`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscribe {
    /// `Pull`, `Push` or `Streaming`.
    pub kind: String,
    pub all_folders: bool,
    pub folders: Vec<FolderSelector>,
    pub event_types: Vec<String>,
    pub watermark: Option<String>,
    /// Pull: minutes without a GetEvents before the subscription lapses.
    pub timeout_minutes: Option<u32>,
}

pub fn subscribe(r: &mut XmlReader<'_>, el: &Element<'_>) -> Result<Subscribe, Error> {
    let mut op = Subscribe {
        kind: String::new(),
        all_folders: false,
        folders: Vec::new(),
        event_types: Vec::new(),
        watermark: None,
        timeout_minutes: None,
    };
    while let Some(request) = r.next_child(el)? {
        let Some(kind) = request.name().strip_suffix("SubscriptionRequest") else {
            r.skip(&request)?;
            continue;
        };
        op.kind = kind.to_owned();
        op.all_folders = request.attr("SubscribeToAllFolders").as_deref() == Some("true");
        while let Some(child) = r.next_child(&request)? {
            match child.name() {
                "FolderIds" => op.folders = read_selectors(r, &child)?,
                "EventTypes" => {
                    while let Some(t) = r.next_child(&child)? {
                        op.event_types.push(r.trimmed(&t)?);
                    }
                }
                "Watermark" => op.watermark = Some(r.trimmed(&child)?),
                "Timeout" => op.timeout_minutes = Some(r.number(&child)?),
                _ => r.skip(&child)?,
            }
        }
    }
    if op.kind.is_empty() {
        return Err(r.error("Subscribe without a subscription request"));
    }
    Ok(op)
}

/// `m:GetEvents`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetEvents {
    pub subscription_id: String,
    pub watermark: String,
}

pub fn get_events(r: &mut XmlReader<'_>, el: &Element<'_>) -> Result<GetEvents, Error> {
    let mut op = GetEvents {
        subscription_id: String::new(),
        watermark: String::new(),
    };
    while let Some(child) = r.next_child(el)? {
        match child.name() {
            "SubscriptionId" => op.subscription_id = r.trimmed(&child)?,
            "Watermark" => op.watermark = r.trimmed(&child)?,
            _ => r.skip(&child)?,
        }
    }
    Ok(op)
}

/// `m:GetStreamingEvents`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetStreamingEvents {
    pub subscription_ids: Vec<String>,
    pub timeout_minutes: u32,
}

pub fn get_streaming_events(
    r: &mut XmlReader<'_>,
    el: &Element<'_>,
) -> Result<GetStreamingEvents, Error> {
    let mut op = GetStreamingEvents {
        subscription_ids: Vec::new(),
        timeout_minutes: 30,
    };
    while let Some(child) = r.next_child(el)? {
        match child.name() {
            "SubscriptionIds" => {
                while let Some(id) = r.next_child(&child)? {
                    op.subscription_ids.push(r.trimmed(&id)?);
                }
            }
            "ConnectionTimeout" => op.timeout_minutes = r.number(&child)?,
            _ => r.skip(&child)?,
        }
    }
    Ok(op)
}

/// `m:Unsubscribe`.
pub fn unsubscribe(r: &mut XmlReader<'_>, el: &Element<'_>) -> Result<String, Error> {
    let mut id = String::new();
    while let Some(child) = r.next_child(el)? {
        match child.name() {
            "SubscriptionId" => id = r.trimmed(&child)?,
            _ => r.skip(&child)?,
        }
    }
    Ok(id)
}
