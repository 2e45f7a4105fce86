//! The folder operations: GetFolder (one message per folder asked for, any distinguished name
//! of the schema), FindFolder (paged, optionally deep, restricted), SyncFolderHierarchy (of
//! the whole mailbox, or below a folder) and CreateFolder. Folders are written with
//! `respond/folders.rs`.

use super::context::{
    Answer, At, Ctx, fault, invalid_sync_state, locate, ok, own_mailbox, per_result, publish,
};
use super::query::{self, Props, Value};
use crate::ews::ResponseCode;
use crate::ews::create_folder::CreateFolder;
use crate::ews::find_folder::{FindFolder, Traversal};
use crate::ews::find_item::ItemView;
use crate::ews::folder::{Folder as FolderSpec, FolderShape};
use crate::ews::get_folder::GetFolder;
use crate::ews::restriction::FieldPath;
use crate::ews::sync_folder_hierarchy::SyncFolderHierarchy;
use crate::ews::{DistinguishedFolder, FolderSelector};
use crate::sim::ids;
use crate::sim::layout::FolderKind;
use crate::sim::mailbox::{
    Folder, FolderChange, FolderHappening, Happened, Mailbox, NewFolder, TreeError,
};
use crate::sim::respond::folders::{FolderFields, folder_fields, write_folder};
use crate::sim::respond::{MessageError, Out, find_page, sync_error_document};
use crate::sim::shared::Inner;
use crate::sim::state::State;

fn fields(shape: &FolderShape) -> FolderFields {
    folder_fields(shape.base, &shape.properties, &shape.extended)
}

/// Writes one `<op>ResponseMessage` per located folder: the folder, or the error.
fn folders_response(
    inner: &Inner,
    op: &str,
    found: Vec<Result<At, MessageError>>,
    fields: &FolderFields,
) -> Answer {
    let found: Vec<Result<(At, ()), MessageError>> =
        found.into_iter().map(|r| r.map(|at| (at, ()))).collect();
    per_result(inner, op, &found, |o, mb, at, ()| {
        o.message(op, Ok(()), |o| {
            o.m_open("Folders");
            write_folder(o, mb, at.folder, fields);
            o.m_close("Folders");
        })
    })
}

pub(super) fn get_folder(inner: &mut Inner, ctx: &Ctx<'_>, op: &GetFolder) -> Answer {
    let found: Vec<_> = op.folders.iter().map(|s| locate(inner, ctx, s)).collect();
    folders_response(inner, "GetFolder", found, &fields(&op.shape))
}

/// A folder as restrictions see it.
struct FolderProps<'a> {
    mb: &'a Mailbox,
    folder: &'a Folder,
}

impl Props for FolderProps<'_> {
    fn supports(path: &FieldPath) -> bool {
        matches!(path, FieldPath::Field(uri) if [
            "folder:DisplayName",
            "folder:FolderClass",
            "folder:TotalCount",
            "folder:ChildFolderCount",
            "folder:UnreadCount",
        ]
        .contains(&uri.as_str()))
    }

    fn prop(&self, path: &FieldPath) -> Value<'_> {
        let FieldPath::Field(uri) = path else {
            return Value::Missing;
        };
        let count = |n: usize| Value::Number(i64::try_from(n).unwrap_or(i64::MAX));
        match uri.as_str() {
            "folder:DisplayName" => query::text(&self.folder.name),
            "folder:FolderClass" => self
                .folder
                .class
                .as_deref()
                .map_or(Value::Missing, query::text),
            "folder:TotalCount" => count(self.folder.items.len()),
            "folder:ChildFolderCount" => count(self.mb.children(self.folder.number).count()),
            "folder:UnreadCount" => {
                count(self.folder.items.values().filter(|m| !m.is_read).count())
            }
            _ => Value::Missing,
        }
    }
}

pub(super) fn find_folder(inner: &mut Inner, ctx: &Ctx<'_>, op: &FindFolder) -> Answer {
    const OP: &str = "FindFolder";
    let fields = fields(&op.shape);
    let checked = op
        .restriction
        .as_ref()
        .map_or(Ok(()), query::check::<FolderProps>);
    let found: Vec<Result<(At, Vec<u32>), MessageError>> = op
        .parents
        .iter()
        .map(|sel| {
            checked.clone()?;
            let at = locate(inner, ctx, sel)?;
            let mb = inner.state.mailboxes.get(&at.mailbox).ok_or_else(gone)?;
            let mut list: Vec<u32> = match op.traversal {
                Traversal::Deep => mb.descendants(at.folder),
                Traversal::Shallow => mb.children(at.folder).map(|f| f.number).collect(),
            };
            if let Some(r) = &op.restriction {
                list.retain(|f| {
                    mb.folders
                        .get(f)
                        .is_some_and(|folder| query::matches(r, &FolderProps { mb, folder }))
                });
            }
            Ok((at, list))
        })
        .collect();
    per_result(inner, OP, &found, |o, mb, _, list| {
        write_page(o, mb, list, op.page, &fields)
    })
}

/// One FindFolder message: the page of `list` the view asks for, with the paging totals.
fn write_page(
    o: &mut Out,
    mb: &Mailbox,
    list: &[u32],
    page: Option<crate::ews::find_folder::Page>,
    fields: &FolderFields,
) {
    let view = page.map(|p| ItemView::Indexed {
        max_entries: Some(p.max_entries),
        offset: p.offset,
        from_end: p.from_end,
    });
    let (start, end) = query::page_of(view.as_ref(), list.len());
    find_page(o, "FindFolder", false, (end, list.len()), "Folders", |o| {
        for f in &list[start..end] {
            write_folder(o, mb, *f, fields);
        }
    });
}

fn gone() -> MessageError {
    fault(
        ResponseCode::ErrorFolderNotFound,
        "The specified folder could not be found in the store.",
    )
}

/// The root a hierarchy sync covers: the folder named, or the whole mailbox when none is
/// (then the sync state records root 0, so it is never taken for one of `root`).
fn sync_root(
    inner: &Inner,
    ctx: &Ctx<'_>,
    root: Option<&FolderSelector>,
) -> Result<(At, u32), MessageError> {
    match root {
        Some(sel) => locate(inner, ctx, sel).map(|at| (at, at.folder)),
        None => {
            let mailbox = own_mailbox(ctx)?;
            let folder = inner
                .state
                .mailboxes
                .get(&mailbox)
                .and_then(|mb| mb.distinguished(DistinguishedFolder::Root))
                .ok_or_else(gone)?;
            Ok((At { mailbox, folder }, 0))
        }
    }
}

pub(super) fn sync_folder_hierarchy(
    inner: &mut Inner,
    ctx: &Ctx<'_>,
    op: &SyncFolderHierarchy,
) -> Answer {
    const OP: &str = "SyncFolderHierarchy";
    let current = inner.state.counters.seq;
    let (root, tag) = match sync_root(inner, ctx, op.root.as_ref()) {
        Ok(r) => r,
        Err(e) => return ok(sync_error_document(inner.style, OP, &e)),
    };
    let Some(mb) = inner.state.mailboxes.get(&root.mailbox) else {
        return ok(sync_error_document(inner.style, OP, &gone()));
    };
    let since = match &op.sync_state {
        None => 0,
        Some(s) => match ids::parse_hierarchy_sync_state(s.as_str()) {
            Some((m, r, seq)) if m == mb.number && r == tag && seq <= current => seq,
            _ => return ok(sync_error_document(inner.style, OP, &invalid_sync_state())),
        },
    };
    let page = mb.folder_changes(root.folder, since, usize::MAX);
    let fields = fields(&op.shape);
    ok(Out::document(inner.style, |o| {
        o.response(OP, |o| {
            o.message(OP, Ok(()), |o| {
                o.m_leaf(
                    "SyncState",
                    &ids::hierarchy_sync_state(mb.number, tag, page.seq),
                );
                o.includes_last("IncludesLastFolderInRange", page.last);
                o.m_open("Changes");
                for c in &page.changes {
                    let (name, f) = match c {
                        FolderChange::Create(f) => ("Create", *f),
                        FolderChange::Update(f) => ("Update", *f),
                        FolderChange::Delete(f) => ("Delete", *f),
                    };
                    o.t_open(name);
                    if name == "Delete" {
                        o.t_id("FolderId", &mb.folder_id(f), None);
                    } else {
                        write_folder(o, mb, f, &fields);
                    }
                    o.t_close(name);
                }
                o.m_close("Changes");
            })
        })
    }))
}

/// The kind a CreateFolder element asks for, and the class it implies when none is given.
fn new_folder_kind(spec: &FolderSpec) -> (FolderKind, Option<&str>) {
    let class = spec.folder_class.as_deref();
    match spec.kind.as_str() {
        "CalendarFolder" => (FolderKind::Calendar, class.or(Some("IPF.Appointment"))),
        "ContactsFolder" => (FolderKind::Contacts, class.or(Some("IPF.Contact"))),
        "TasksFolder" => (FolderKind::Tasks, class.or(Some("IPF.Task"))),
        "SearchFolder" => (FolderKind::Search, class),
        _ => (FolderKind::Generic, class.or(Some("IPF.Note"))),
    }
}

/// Creates one folder of a CreateFolder request.
fn create_one(state: &mut State, at: At, spec: &FolderSpec) -> Result<u32, MessageError> {
    let (kind, class) = new_folder_kind(spec);
    if kind == FolderKind::Search {
        return Err(fault(
            ResponseCode::ErrorInvalidOperation,
            "The simulator does not create search folders.",
        ));
    }
    let name = spec.display_name.as_deref().unwrap_or_default();
    let new = NewFolder {
        name,
        class,
        kind,
        hidden: false,
    };
    let State {
        mailboxes,
        counters,
        ..
    } = state;
    let mb = mailboxes.get_mut(&at.mailbox).ok_or_else(gone)?;
    mb.create_child(at.folder, &new, counters)
        .map_err(|e| match e {
            TreeError::FolderExists(_) => fault(
                ResponseCode::ErrorFolderExists,
                "A folder with the specified name already exists.",
            ),
            other => fault(ResponseCode::ErrorFolderSave, other.to_string()),
        })
}

pub(super) fn create_folder(inner: &mut Inner, ctx: &Ctx<'_>, op: &CreateFolder) -> Answer {
    let parent = locate(inner, ctx, &op.parent).map_err(|mut e| {
        e.code = ResponseCode::ErrorParentFolderNotFound;
        e.text = "The parent folder could not be found.".into();
        e
    });
    let mut happened = Vec::new();
    let found: Vec<Result<At, MessageError>> = op
        .folders
        .iter()
        .map(|spec| {
            let at = parent.clone()?;
            let folder = create_one(&mut inner.state, at, spec)?;
            happened.push(Happened::FolderChanged {
                mailbox: at.mailbox,
                folder,
                how: FolderHappening::Created,
            });
            Ok(At {
                mailbox: at.mailbox,
                folder,
            })
        })
        .collect();
    publish(inner, ctx, &happened);
    let fields = folder_fields(crate::ews::folder::BaseShape::IdOnly, &[], &[]);
    folders_response(inner, "CreateFolder", found, &fields)
}
