//! Writing folders into responses: which properties a folder shape asks for, and the folder
//! element of GetFolder, FindFolder, SyncFolderHierarchy and CreateFolder — `t:Folder`,
//! `t:CalendarFolder`, `t:ContactsFolder`, `t:TasksFolder` or `t:SearchFolder` by the folder's
//! kind, with the children each type allows in schema order. Owns XML output only; which
//! folders to write is the operations' business.

use super::Out;
use crate::ews::folder::BaseShape;
use crate::ews::item::ExtendedFieldUri;
use crate::sim::layout::FolderKind;
use crate::sim::mailbox::Mailbox;

/// Which folder properties a shape asks for.
pub struct FolderFields {
    parent: bool,
    class: bool,
    name: bool,
    counts: bool,
    hidden: Option<ExtendedFieldUri>,
    rights: bool,
    distinguished: bool,
}

/// PR_ATTR_HIDDEN, the extended property clients ask for to skip hidden folders.
fn hidden_property() -> ExtendedFieldUri {
    ExtendedFieldUri {
        property_tag: Some("0x10f4".into()),
        property_type: "Boolean".into(),
        ..ExtendedFieldUri::default()
    }
}

/// The fields to write for a folder shape (its base, properties and extended properties).
pub fn folder_fields(
    base: BaseShape,
    props: &[String],
    extended: &[ExtendedFieldUri],
) -> FolderFields {
    let has = |p: &str| props.iter().any(|x| x == p);
    let all = base == BaseShape::AllProperties;
    let default = base == BaseShape::Default || all;
    let hidden = hidden_property();
    FolderFields {
        parent: all || has("folder:ParentFolderId"),
        class: all || has("folder:FolderClass"),
        name: default || has("folder:DisplayName"),
        counts: default
            || has("folder:TotalCount")
            || has("folder:ChildFolderCount")
            || has("folder:UnreadCount"),
        hidden: extended
            .iter()
            .any(|e| e.same_property(&hidden))
            .then_some(hidden),
        rights: all || has("folder:EffectiveRights"),
        distinguished: has("folder:DistinguishedFolderId"),
    }
}

/// The element a folder of this kind is written as.
fn element(kind: FolderKind) -> &'static str {
    match kind {
        FolderKind::Generic => "Folder",
        FolderKind::Calendar => "CalendarFolder",
        FolderKind::Contacts => "ContactsFolder",
        FolderKind::Tasks => "TasksFolder",
        FolderKind::Search => "SearchFolder",
    }
}

/// Writes one folder element with the fields asked for.
pub fn write_folder(o: &mut Out, mb: &Mailbox, folder: u32, fields: &FolderFields) {
    let Some(f) = mb.folders.get(&folder) else {
        return;
    };
    let name = element(f.kind);
    o.t_open(name);
    o.t_id(
        "FolderId",
        &mb.folder_id(folder),
        Some(&mb.folder_change_key(f)),
    );
    if fields.parent
        && let Some(p) = f.parent
    {
        let ck = mb.folders.get(&p).map(|x| mb.folder_change_key(x));
        o.t_id("ParentFolderId", &mb.folder_id(p), ck.as_deref());
    }
    if fields.class
        && let Some(class) = &f.class
    {
        o.t_leaf("FolderClass", class);
    }
    if fields.name {
        o.t_leaf("DisplayName", &f.name);
    }
    if fields.counts {
        o.t_leaf("TotalCount", &f.items.len().to_string());
        o.t_leaf("ChildFolderCount", &mb.children(folder).count().to_string());
    }
    if let Some(hidden) = &fields.hidden {
        o.t_open("ExtendedProperty");
        let n = o.t("ExtendedFieldURI");
        o.w.element(&n)
            .attr_opt("PropertyTag", hidden.property_tag.as_deref())
            .attr("PropertyType", &hidden.property_type)
            .empty();
        o.t_leaf("Value", if f.hidden { "true" } else { "false" });
        o.t_close("ExtendedProperty");
    }
    if fields.rights {
        // The owner (or whoever acts as the owner) may do everything.
        o.t_open("EffectiveRights");
        for right in [
            "CreateAssociated",
            "CreateContents",
            "CreateHierarchy",
            "Delete",
            "Modify",
            "Read",
            "ViewPrivateItems",
        ] {
            o.t_leaf(right, "true");
        }
        o.t_close("EffectiveRights");
    }
    if fields.distinguished
        && let Some(d) = f.distinguished
    {
        o.t_leaf("DistinguishedFolderId", d.as_str());
    }
    // Only FolderType and the types derived from it have an UnreadCount.
    let has_unread = matches!(
        f.kind,
        FolderKind::Generic | FolderKind::Tasks | FolderKind::Search
    );
    if fields.counts && has_unread {
        let unread = f.items.values().filter(|m| !m.is_read).count();
        o.t_leaf("UnreadCount", &unread.to_string());
    }
    o.extra();
    o.t_close(name);
}
