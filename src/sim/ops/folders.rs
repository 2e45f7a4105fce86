//! The folder operations: GetFolder, FindFolder (paged, optionally deep and by display name)
//! and SyncFolderHierarchy. Folders are written with `respond/folders.rs`.

use super::context::{Answer, Ctx, invalid_sync_state, mailbox, no_mailbox, ok, resolve};
use crate::ews::get_folder::GetFolder;
use crate::ews::sync_folder_hierarchy::SyncFolderHierarchy;
use crate::sim::ids;
use crate::sim::mailbox::FolderChange;
use crate::sim::requests;
use crate::sim::respond::folders::{folder_fields, write_folder};
use crate::sim::respond::{Out, sync_error_document};
use crate::sim::shared::Inner;

pub(super) fn get_folder(inner: &mut Inner, ctx: &Ctx<'_>, op: &GetFolder) -> Answer {
    let Some(mb) = mailbox(inner, ctx) else {
        return no_mailbox(inner);
    };
    let fields = folder_fields(op.shape.base, &op.shape.properties, &[]);
    ok(Out::document(inner.style, |o| {
        o.response("GetFolder", |o| {
            for sel in &op.folders {
                match resolve(mb, sel) {
                    Ok(f) => o.message("GetFolder", Ok(()), |o| {
                        o.m_open("Folders");
                        write_folder(o, mb, f, &fields);
                        o.m_close("Folders");
                    }),
                    Err(e) => o.message("GetFolder", Err(&e), |_| {}),
                }
            }
        })
    }))
}

/// EWSFindCountLimit: what one FindFolder returns at most without paging.
const FIND_COUNT_LIMIT: usize = 1000;

pub(super) fn find_folder(inner: &mut Inner, ctx: &Ctx<'_>, op: &requests::FindFolder) -> Answer {
    let Some(mb) = mailbox(inner, ctx) else {
        return no_mailbox(inner);
    };
    let fields = folder_fields(op.shape.base, &op.shape.properties, &op.shape.extended);
    ok(Out::document(inner.style, |o| {
        o.response("FindFolder", |o| {
            for sel in &op.parents {
                let parent = match resolve(mb, sel) {
                    Ok(p) => p,
                    Err(e) => {
                        o.message("FindFolder", Err(&e), |_| {});
                        continue;
                    }
                };
                let mut found: Vec<u32> = if op.deep {
                    mb.descendants(parent)
                } else {
                    mb.children(parent).map(|f| f.number).collect()
                };
                if let Some(name) = &op.display_name {
                    found.retain(|f| mb.folders.get(f).is_some_and(|x| &x.name == name));
                }
                let total = found.len();
                let max = op
                    .max_entries
                    .unwrap_or(FIND_COUNT_LIMIT)
                    .min(FIND_COUNT_LIMIT);
                let start = if op.from_end {
                    total.saturating_sub(op.offset + max)
                } else {
                    op.offset.min(total)
                };
                let end = (start + max).min(total);
                let page = &found[start..end];
                o.message("FindFolder", Ok(()), |o| {
                    let n = o.m("RootFolder");
                    o.w.element(&n)
                        .attr_display("IndexedPagingOffset", end)
                        .attr_display("TotalItemsInView", total)
                        .attr(
                            "IncludesLastItemInRange",
                            if end >= total { "true" } else { "false" },
                        )
                        .open();
                    o.t_open("Folders");
                    for f in page {
                        write_folder(o, mb, *f, &fields);
                    }
                    o.t_close("Folders");
                    o.w.close(&n);
                });
            }
        })
    }))
}

pub(super) fn sync_folder_hierarchy(
    inner: &mut Inner,
    ctx: &Ctx<'_>,
    op: &SyncFolderHierarchy,
) -> Answer {
    const OP: &str = "SyncFolderHierarchy";
    let current = inner.state.counters.seq;
    let Some(mb) = mailbox(inner, ctx) else {
        return no_mailbox(inner);
    };
    let root = match &op.root {
        Some(sel) => resolve(mb, sel),
        None => mb
            .distinguished(crate::ews::DistinguishedFolder::MsgFolderRoot)
            .ok_or_else(invalid_sync_state),
    };
    let root = match root {
        Ok(r) => r,
        Err(e) => return ok(sync_error_document(inner.style, OP, &e)),
    };
    let since = match &op.sync_state {
        None => 0,
        Some(s) => match ids::parse_hierarchy_sync_state(s.as_str()) {
            Some((m, r, seq)) if m == mb.number && r == root && seq <= current => seq,
            _ => return ok(sync_error_document(inner.style, OP, &invalid_sync_state())),
        },
    };
    let page = mb.folder_changes(root, since, usize::MAX);
    let fields = folder_fields(op.shape.base, &op.shape.properties, &[]);
    ok(Out::document(inner.style, |o| {
        o.response(OP, |o| {
            o.message(OP, Ok(()), |o| {
                o.m_leaf(
                    "SyncState",
                    &ids::hierarchy_sync_state(mb.number, root, page.seq),
                );
                o.includes_last("IncludesLastFolderInRange", page.last);
                o.m_open("Changes");
                for c in &page.changes {
                    match c {
                        FolderChange::Create(f) | FolderChange::Update(f) => {
                            let name = if matches!(c, FolderChange::Create(_)) {
                                "Create"
                            } else {
                                "Update"
                            };
                            o.t_open(name);
                            write_folder(o, mb, *f, &fields);
                            o.t_close(name);
                        }
                        FolderChange::Delete(f) => {
                            o.t_open("Delete");
                            o.t_id("FolderId", &mb.folder_id(*f), None);
                            o.t_close("Delete");
                        }
                    }
                }
                o.m_close("Changes");
            })
        })
    }))
}
