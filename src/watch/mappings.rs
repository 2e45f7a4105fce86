//! PURE: the mailbox's folder tree and what each configured mapping points at (R1–R6).
//! A mapping is resolved by path once; from then on it is its FolderId: a rename keeps it
//! (R4), a move out of the Inbox pauses it (R5), a deletion orphans it for good (R6).

use super::FolderMapping;
use crate::feed::{FolderEvent, FolderNode, WellKnown};
use crate::store::{MappingRecord, MappingState};
use crate::tracking::Regarding;
use std::sync::Arc;

/// The folder tree of one mailbox, kept current from hierarchy changes. Every watcher keeps
/// its mailbox's tree between passes, so it is kept small: a folder id (about 120 bytes over
/// EWS) is stored once, shared by the folder and its children's parent links, and the folders
/// lie in a vector sorted by id, with no hash table's spare room (docs/benchmarks.md, "Where
/// the memory goes").
#[derive(Clone, Debug)]
pub struct FolderTree {
    pub well_known: WellKnown,
    nodes: Vec<(Arc<str>, Node)>,
}

#[derive(Clone, Debug)]
struct Node {
    parent: Option<Arc<str>>,
    name: Box<str>,
}

/// A folder of the tree, as [`FolderTree::children`] lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Folder<'a> {
    pub id: &'a str,
    pub name: &'a str,
}

impl FolderTree {
    pub fn new(well_known: WellKnown) -> Self {
        Self {
            well_known,
            nodes: Vec::new(),
        }
    }

    pub fn apply(&mut self, events: impl IntoIterator<Item = FolderEvent>) {
        for e in events {
            match e {
                FolderEvent::Upsert(FolderNode { id, parent, name }) => {
                    let parent = parent.map(|p| self.shared_id(p));
                    let node = Node {
                        parent,
                        name: name.into_boxed_str(),
                    };
                    match self.position(&id) {
                        Ok(i) => self.nodes[i].1 = node,
                        Err(i) => self.nodes.insert(i, (Arc::from(id), node)),
                    }
                }
                FolderEvent::Removed(id) => {
                    if let Ok(i) = self.position(&id) {
                        self.nodes.remove(i);
                    }
                }
            }
        }
        self.nodes.shrink_to_fit();
    }

    /// Where the folder `id` is in `nodes`, or where it would go.
    fn position(&self, id: &str) -> Result<usize, usize> {
        self.nodes
            .binary_search_by(|(known, _)| known.as_ref().cmp(id))
    }

    fn get(&self, id: &str) -> Option<(&Arc<str>, &Node)> {
        let i = self.position(id).ok()?;
        self.nodes.get(i).map(|(id, node)| (id, node))
    }

    /// The tree's own copy of `id` when it knows the folder; a new one otherwise.
    fn shared_id(&self, id: String) -> Arc<str> {
        self.get(&id)
            .map_or_else(|| Arc::from(id), |(known, _)| known.clone())
    }

    pub fn contains(&self, id: &str) -> bool {
        self.position(id).is_ok()
    }

    /// The ancestors of a folder up to (not including) the top, nearest first, as (id, node);
    /// `None` when it is not below the top (deleted, or outside the mail folders).
    fn ancestry(&self, id: &str) -> Option<Vec<(&str, &Node)>> {
        let mut chain = Vec::new();
        let (mut at_id, mut at) = self.get(id)?;
        loop {
            chain.push((at_id.as_ref(), at));
            match at.parent.as_deref() {
                Some(p) if p == self.well_known.top => return Some(chain),
                Some(p) if chain.len() < 256 => (at_id, at) = self.get(p)?,
                _ => return None,
            }
        }
    }

    /// `Inbox/Customers/Contoso`: the display path below the top.
    pub fn path(&self, id: &str) -> Option<String> {
        let chain = self.ancestry(id)?;
        let names: Vec<&str> = chain.iter().rev().map(|(_, n)| n.name.as_ref()).collect();
        Some(names.join("/"))
    }

    pub fn is_under(&self, id: &str, ancestor: &str) -> bool {
        self.ancestry(id)
            .is_some_and(|chain| chain.iter().any(|(id, _)| *id == ancestor))
    }

    /// Finds a folder by path; names compare case-insensitively, as Outlook's do. The first
    /// segment `Inbox` is the Inbox whatever its display name (localised mailboxes).
    pub fn find(&self, path: &str) -> Option<String> {
        self.deepest(path)
            .filter(|(_, whole)| *whole)
            .map(|(id, _)| id)
    }

    /// The deepest folder of `path` that exists (the top when not even its first does), and
    /// whether it is the whole path; `None` for an empty path.
    pub fn deepest(&self, path: &str) -> Option<(String, bool)> {
        let mut segments = path.split('/').map(str::trim).filter(|s| !s.is_empty());
        let first = segments.next()?;
        let found = if first.eq_ignore_ascii_case("inbox") {
            Some(self.well_known.inbox.clone())
        } else {
            self.child(&self.well_known.top, first)
        };
        let Some(mut at) = found else {
            return Some((self.well_known.top.clone(), false));
        };
        for name in segments {
            match self.child(&at, name) {
                Some(next) => at = next,
                None => return Some((at, false)),
            }
        }
        Some((at, true))
    }

    /// The folder that holds `id`.
    pub fn parent(&self, id: &str) -> Option<&str> {
        self.get(id)?.1.parent.as_deref()
    }

    /// The folders directly below `parent`, by name.
    pub fn children(&self, parent: &str) -> Vec<Folder<'_>> {
        let mut out: Vec<Folder<'_>> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.parent.as_deref() == Some(parent))
            .map(|(id, n)| Folder { id, name: &n.name })
            .collect();
        out.sort_by(|a, b| {
            a.name
                .to_lowercase()
                .cmp(&b.name.to_lowercase())
                .then(a.id.cmp(b.id))
        });
        out
    }

    fn child(&self, parent: &str, name: &str) -> Option<String> {
        let mut matches: Vec<Folder<'_>> = self
            .children(parent)
            .into_iter()
            .filter(|f| f.name.eq_ignore_ascii_case(name))
            .collect();
        // Same-named siblings: prefer the exact spelling, then a stable order.
        matches.sort_by_key(|f| (f.name != name, f.id));
        matches.first().map(|f| f.id.to_owned())
    }

    /// Every folder below `id`, at any depth.
    pub fn descendants(&self, id: &str) -> Vec<String> {
        let mut out: Vec<String> = self
            .nodes
            .iter()
            .filter(|(k, _)| k.as_ref() != id && self.is_under(k, id))
            .map(|(k, _)| k.to_string())
            .collect();
        out.sort();
        out
    }
}

/// A folder to sync, and what its mapping says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub mapping: String,
    pub folder_id: String,
    pub path: String,
    pub regarding: Option<Regarding>,
    pub track_existing: bool,
    pub include_body: bool,
}

/// The name a mapping is stored under: its path or id as configured.
pub fn mapping_name(m: &FolderMapping) -> String {
    m.path.clone().or_else(|| m.id.clone()).unwrap_or_default()
}

/// Resolves one mapping against the tree, starting from what was stored. Returns the
/// mapping's record as it stands now and the folders to sync.
pub fn resolve(
    mailbox: &str,
    m: &FolderMapping,
    stored: Option<&MappingRecord>,
    tree: &FolderTree,
) -> (MappingRecord, Vec<Target>) {
    let name = mapping_name(m);
    let folder_id = match stored.and_then(|s| s.folder_id.clone()) {
        Some(id) => Some(id),
        None => {
            m.id.clone()
                .or_else(|| m.path.as_deref().and_then(|p| tree.find(p)))
        }
    };
    let record = |folder_id: Option<String>, path: Option<String>, state| MappingRecord {
        mailbox: mailbox.to_owned(),
        name: name.clone(),
        folder_id,
        path,
        // Kept as stored until the watcher has re-linked (R8); new mappings take the config's.
        regarding: stored.map_or_else(|| m.regarding.clone(), |s| s.regarding.clone()),
        state,
        subfolders: m.include_subfolders && stored.is_some_and(|s| s.subfolders),
    };
    let Some(id) = folder_id else {
        return (record(None, None, MappingState::NotFound), Vec::new());
    };
    let last_path = stored.and_then(|s| s.path.clone());
    if stored.is_some_and(|s| s.state == MappingState::Orphaned) || !tree.contains(&id) {
        // Resolved once and gone now: deleted. Never re-attached to a namesake (R6).
        let state = if stored.is_some_and(|s| s.folder_id.is_some()) {
            MappingState::Orphaned
        } else {
            MappingState::NotFound
        };
        return (record(Some(id), last_path, state), Vec::new());
    }
    let path = tree.path(&id);
    let inside = id == tree.well_known.inbox || tree.is_under(&id, &tree.well_known.inbox);
    if path.is_none() || (!inside && !m.allow_outside_inbox) {
        let reason = if path.is_none() {
            "folder_outside_mail_folders"
        } else {
            "folder_moved_outside_inbox"
        };
        return (
            record(
                Some(id),
                path.or(last_path),
                MappingState::Paused(reason.into()),
            ),
            Vec::new(),
        );
    }
    let path = path.unwrap_or_default();
    let mut folders = vec![id.clone()];
    if m.include_subfolders {
        folders.extend(tree.descendants(&id));
    }
    let targets = folders
        .into_iter()
        .map(|f| Target {
            mapping: name.clone(),
            path: tree.path(&f).unwrap_or_else(|| path.clone()),
            folder_id: f,
            regarding: m.regarding.clone(),
            track_existing: m.track_existing,
            include_body: m.include_body,
        })
        .collect();
    (record(Some(id), Some(path), MappingState::Active), targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> FolderTree {
        let mut t = FolderTree::new(WellKnown {
            top: "top".into(),
            inbox: "inbox".into(),
            sent: "sent".into(),
        });
        let n = |id: &str, parent: &str, name: &str| {
            FolderEvent::Upsert(FolderNode {
                id: id.into(),
                parent: Some(parent.into()),
                name: name.into(),
            })
        };
        t.apply([
            n("inbox", "top", "Posteingang"),
            n("sent", "top", "Sent Items"),
            n("cust", "inbox", "Customers"),
            n("contoso", "cust", "Contoso"),
            n("sub", "contoso", "2026"),
            n("archive", "top", "Archive"),
        ]);
        t
    }

    fn mapping(path: &str) -> FolderMapping {
        FolderMapping {
            path: Some(path.into()),
            id: None,
            regarding: None,
            include_subfolders: false,
            track_existing: false,
            allow_outside_inbox: false,
            include_body: false,
        }
    }

    #[test]
    fn r1_a_path_resolves_to_a_folder_id_even_in_a_localised_mailbox() {
        let t = tree();
        assert_eq!(
            t.find("Inbox/customers/Contoso").as_deref(),
            Some("contoso")
        );
        assert_eq!(
            t.path("contoso").as_deref(),
            Some("Posteingang/Customers/Contoso")
        );
        let (rec, targets) = resolve("a@x", &mapping("Inbox/Customers/Contoso"), None, &t);
        assert_eq!(rec.state, MappingState::Active);
        assert_eq!(targets.len(), 1);
        assert_eq!(targets[0].folder_id, "contoso");
    }

    #[test]
    fn r2_include_subfolders_extends_the_mapping_to_present_subfolders() {
        let mut m = mapping("Inbox/Customers");
        m.include_subfolders = true;
        let (_, targets) = resolve("a@x", &m, None, &tree());
        let ids: Vec<_> = targets.iter().map(|t| t.folder_id.as_str()).collect();
        assert_eq!(ids, ["cust", "contoso", "sub"]);
    }

    #[test]
    fn r3_outside_the_inbox_needs_allow_outside_inbox() {
        let (rec, _) = resolve("a@x", &mapping("Archive"), None, &tree());
        assert_eq!(
            rec.state,
            MappingState::Paused("folder_moved_outside_inbox".into())
        );
        let mut m = mapping("Archive");
        m.allow_outside_inbox = true;
        assert_eq!(
            resolve("a@x", &m, None, &tree()).0.state,
            MappingState::Active
        );
    }

    #[test]
    fn r4_a_renamed_folder_stays_tracked_and_shows_its_new_path() {
        let m = mapping("Inbox/Customers/Contoso");
        let mut t = tree();
        let (first, _) = resolve("a@x", &m, None, &t);
        t.apply([FolderEvent::Upsert(FolderNode {
            id: "contoso".into(),
            parent: Some("cust".into()),
            name: "Contoso Ltd".into(),
        })]);
        let (rec, targets) = resolve("a@x", &m, Some(&first), &t);
        assert_eq!(rec.state, MappingState::Active);
        assert_eq!(targets[0].path, "Posteingang/Customers/Contoso Ltd");
    }

    #[test]
    fn r5_a_folder_moved_out_of_the_inbox_pauses_the_mapping_with_its_reason() {
        let m = mapping("Inbox/Customers/Contoso");
        let mut t = tree();
        let (first, _) = resolve("a@x", &m, None, &t);
        t.apply([FolderEvent::Upsert(FolderNode {
            id: "contoso".into(),
            parent: Some("archive".into()),
            name: "Contoso".into(),
        })]);
        let (rec, targets) = resolve("a@x", &m, Some(&first), &t);
        assert_eq!(
            rec.state,
            MappingState::Paused("folder_moved_outside_inbox".into())
        );
        assert!(targets.is_empty());
        // Moved back: tracked again.
        t.apply([FolderEvent::Upsert(FolderNode {
            id: "contoso".into(),
            parent: Some("cust".into()),
            name: "Contoso".into(),
        })]);
        assert_eq!(
            resolve("a@x", &m, Some(&rec), &t).0.state,
            MappingState::Active
        );
    }

    #[test]
    fn r6_a_deleted_folder_orphans_the_mapping_and_a_namesake_is_never_attached() {
        let m = mapping("Inbox/Customers/Contoso");
        let mut t = tree();
        let (first, _) = resolve("a@x", &m, None, &t);
        t.apply([FolderEvent::Removed("contoso".into())]);
        let (orphaned, targets) = resolve("a@x", &m, Some(&first), &t);
        assert_eq!(orphaned.state, MappingState::Orphaned);
        assert!(targets.is_empty());
        t.apply([FolderEvent::Upsert(FolderNode {
            id: "new".into(),
            parent: Some("cust".into()),
            name: "Contoso".into(),
        })]);
        let (still, targets) = resolve("a@x", &m, Some(&orphaned), &t);
        assert_eq!(still.state, MappingState::Orphaned);
        assert!(targets.is_empty());
    }

    #[test]
    fn a_path_that_names_no_folder_is_not_found_and_resolves_once_created() {
        let (rec, _) = resolve("a@x", &mapping("Inbox/Later"), None, &tree());
        assert_eq!(rec.state, MappingState::NotFound);
        let mut t = tree();
        t.apply([FolderEvent::Upsert(FolderNode {
            id: "later".into(),
            parent: Some("inbox".into()),
            name: "Later".into(),
        })]);
        assert_eq!(
            resolve("a@x", &mapping("Inbox/Later"), Some(&rec), &t)
                .0
                .state,
            MappingState::Active
        );
    }
}
