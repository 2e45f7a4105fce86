//! Writing folders into responses: which properties a folder shape asks for, and the `Folder`
//! element of GetFolder, FindFolder and SyncFolderHierarchy. Owns XML output only; which
//! folders to write is the operations' business.

use super::Out;
use crate::ews::folder::BaseShape;
use crate::ews::item::ExtendedFieldUri;
use crate::sim::mailbox::Mailbox;

/// Which folder properties a shape asks for.
pub struct FolderFields {
    parent: bool,
    class: bool,
    name: bool,
    counts: bool,
    hidden: bool,
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
    let hidden_tag = ExtendedFieldUri {
        property_tag: Some("0x10f4".into()),
        property_type: "Boolean".into(),
        ..ExtendedFieldUri::default()
    };
    FolderFields {
        parent: all || has("folder:ParentFolderId"),
        class: all || has("folder:FolderClass"),
        name: default || has("folder:DisplayName"),
        counts: default
            || has("folder:TotalCount")
            || has("folder:ChildFolderCount")
            || has("folder:UnreadCount"),
        hidden: extended.iter().any(|e| e.same_property(&hidden_tag)),
    }
}

/// Writes one `Folder` element with the fields asked for.
pub fn write_folder(o: &mut Out, mb: &Mailbox, folder: u32, fields: &FolderFields) {
    let Some(f) = mb.folders.get(&folder) else {
        return;
    };
    o.t_open("Folder");
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
    if fields.class {
        o.t_leaf("FolderClass", &f.class);
    }
    if fields.name {
        o.t_leaf("DisplayName", &f.name);
    }
    if fields.counts {
        o.t_leaf("TotalCount", &f.items.len().to_string());
        o.t_leaf("ChildFolderCount", &mb.children(folder).count().to_string());
    }
    if fields.hidden {
        o.t_open("ExtendedProperty");
        let n = o.t("ExtendedFieldURI");
        o.w.element(&n)
            .attr("PropertyTag", "0x10f4")
            .attr("PropertyType", "Boolean")
            .empty();
        o.t_leaf("Value", "false");
        o.t_close("ExtendedProperty");
    }
    if fields.counts {
        let unread = f.items.values().filter(|m| !m.is_read).count();
        o.t_leaf("UnreadCount", &unread.to_string());
    }
    o.extra();
    o.t_close("Folder");
}
