//! Writing one notification event (`CreatedEvent`, `MovedEvent`, …) into a GetEvents or
//! GetStreamingEvents response. Owns XML output only; the queues belong to `notify.rs`.

use super::Out;
use crate::sim::notify::Event;

/// Writes one event element.
pub fn write_event(o: &mut Out, e: &Event, watermark: Option<&str>) {
    o.t_open(e.kind);
    if let Some(w) = watermark {
        o.t_leaf("Watermark", w);
    }
    o.t_leaf("TimeStamp", &e.time);
    let (is_folder, id, ck) = &e.object;
    o.t_id(
        if *is_folder { "FolderId" } else { "ItemId" },
        id,
        ck.as_deref(),
    );
    o.t_id("ParentFolderId", &e.parent.0, Some(&e.parent.1));
    if let Some((old_id, old_parent)) = &e.old {
        let old = if *is_folder {
            "OldFolderId"
        } else {
            "OldItemId"
        };
        o.t_id(old, old_id, None);
        o.t_id("OldParentFolderId", old_parent, None);
    }
    if let Some(u) = e.unread_count {
        o.t_leaf("UnreadCount", &u.to_string());
    }
    o.t_close(e.kind);
}
