//! One mailbox in memory: its folder tree (the standard folders of `layout.rs` and any depth
//! of subfolders) and the messages in each folder, with what SyncFolderItems and
//! SyncFolderHierarchy need. Paths name folders from the top of the information store
//! (`Inbox/Customers`); a path starting with `/` starts at the root (`/Recoverable Items`).
//!
//! There is no change log. Every message remembers when it entered its folder and when it last
//! changed; a deleted or moved-out message leaves a tombstone. A sync state is a position in the
//! mailbox's change sequence, so the changes since a state are computed and coalesced the way
//! Exchange coalesces them (create then update: one Create; create then delete: nothing), and a
//! folder that did not change answers in O(1). A move gives the message a NEW item number, so a
//! new ItemId. Owns the tree and its rules; never HTTP, XML or users.

use super::ids::{self, ItemKey};
use super::layout::{FolderKind, STANDARD};
use super::message::{Address, EnvelopeFields, Message, MessageView, NewMessage, Packed};
use crate::ews::DistinguishedFolder;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// A message that left a folder (moved out or deleted).
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Tombstone {
    pub item: u64,
    /// The message's [`Message::origin`], for Graph's immutable ids.
    #[serde(default)]
    pub origin: u64,
    pub created_seq: u64,
    pub deleted_seq: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Folder {
    pub number: u32,
    pub parent: Option<u32>,
    pub name: String,
    pub distinguished: Option<DistinguishedFolder>,
    /// What it holds (mail, calendar, contacts, tasks, a search).
    #[serde(default)]
    pub kind: FolderKind,
    /// The container class (`IPF.Note`, `IPF.Appointment`, …); system folders have none.
    pub class: Option<String>,
    /// Clients do not show it (`PR_ATTR_HIDDEN`).
    #[serde(default)]
    pub hidden: bool,
    pub version: u32,
    pub created_seq: u64,
    pub modified_seq: u64,
    /// The latest change to any message in it: an unchanged folder syncs in O(1).
    pub items_seq: u64,
    pub items: HashMap<u64, Message>,
    pub tombstones: Vec<Tombstone>,
}

/// What a new folder is.
#[derive(Clone, Copy, Debug)]
pub struct NewFolder<'a> {
    pub name: &'a str,
    pub class: Option<&'a str>,
    pub kind: FolderKind,
    pub hidden: bool,
}

impl<'a> NewFolder<'a> {
    /// A mail folder (`IPF.Note`), what a person creates.
    pub fn mail(name: &'a str) -> Self {
        Self {
            name,
            class: Some("IPF.Note"),
            kind: FolderKind::Generic,
            hidden: false,
        }
    }
}

/// A change of one item since a sync state, coalesced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemChange {
    Create(u64),
    Update(u64),
    ReadFlag(u64),
    Delete(u64),
}

/// A change of one folder since a hierarchy sync state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FolderChange {
    Create(u32),
    Update(u32),
    Delete(u32),
}

/// A page of changes: the changes, the new position, and whether nothing is left.
pub struct Page<C> {
    pub changes: Vec<C>,
    pub seq: u64,
    pub last: bool,
}

/// What became of a folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FolderHappening {
    Created,
    Renamed,
    /// Moved from under `from`.
    Moved {
        from: u32,
    },
}

/// What happened, for notification subscribers.
#[derive(Clone, Debug)]
pub enum Happened {
    Created {
        item: ItemKey,
        new_mail: bool,
    },
    Modified {
        item: ItemKey,
    },
    Deleted {
        item: ItemKey,
    },
    Moved {
        item: ItemKey,
        old: ItemKey,
    },
    FolderChanged {
        mailbox: u32,
        folder: u32,
        how: FolderHappening,
    },
}

impl Happened {
    /// The mailbox it happened in.
    pub fn mailbox(&self) -> u32 {
        match self {
            Self::Created { item, .. }
            | Self::Modified { item }
            | Self::Deleted { item }
            | Self::Moved { item, .. } => item.mailbox,
            Self::FolderChanged { mailbox, .. } => *mailbox,
        }
    }
}

/// Counters shared by every mailbox: the change sequence and item numbers.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Counters {
    pub seq: u64,
    pub item: u64,
}

impl Counters {
    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn next_item(&mut self) -> u64 {
        self.item += 1;
        self.item
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Mailbox {
    pub number: u32,
    pub address: String,
    pub folders: HashMap<u32, Folder>,
    pub folder_tombstones: Vec<(u32, u64, u64)>,
    next_folder: u32,
    /// Graph delta tokens of an older epoch have expired (410 SyncStateNotFound).
    #[serde(default)]
    pub delta_epoch: u64,
}

/// Why a mailbox operation could not be done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    #[error("folder {0:?} does not exist")]
    NoFolder(String),
    #[error("folder {0:?} already exists")]
    FolderExists(String),
    #[error("folder {0:?} is a distinguished folder and cannot be renamed, moved or deleted")]
    Distinguished(String),
    #[error("folder {0:?} cannot be moved under itself")]
    Cycle(String),
    #[error("item {0:?} does not exist (moved, deleted or never there)")]
    NoItem(String),
    #[error("{0}")]
    Invalid(String),
}

impl Mailbox {
    pub fn new(number: u32, address: &str, counters: &mut Counters) -> Self {
        let mut m = Mailbox {
            number,
            address: address.to_owned(),
            folders: HashMap::new(),
            folder_tombstones: Vec::new(),
            next_folder: 0,
            delta_epoch: 0,
        };
        for s in STANDARD {
            let parent = s.parent.and_then(|p| m.distinguished(p));
            let spec = NewFolder {
                name: s.name,
                class: s.class,
                kind: s.kind,
                hidden: s.hidden,
            };
            let n = m.add_folder(parent, &spec, counters);
            if let Some(f) = m.folders.get_mut(&n) {
                f.distinguished = s.id;
            }
        }
        m
    }

    fn add_folder(
        &mut self,
        parent: Option<u32>,
        spec: &NewFolder<'_>,
        counters: &mut Counters,
    ) -> u32 {
        self.next_folder += 1;
        let seq = counters.next_seq();
        let n = self.next_folder;
        self.folders.insert(
            n,
            Folder {
                number: n,
                parent,
                name: spec.name.to_owned(),
                distinguished: None,
                kind: spec.kind,
                class: spec.class.map(str::to_owned),
                hidden: spec.hidden,
                version: 1,
                created_seq: seq,
                modified_seq: seq,
                items_seq: seq,
                items: HashMap::new(),
                tombstones: Vec::new(),
            },
        );
        n
    }

    pub fn distinguished(&self, d: DistinguishedFolder) -> Option<u32> {
        self.folders
            .values()
            .find(|f| f.distinguished == Some(d))
            .map(|f| f.number)
    }

    pub fn folder_id(&self, folder: u32) -> String {
        ids::folder_id(self.number, folder)
    }

    pub fn folder_change_key(&self, f: &Folder) -> String {
        ids::change_key(u64::from(f.number) | 1 << 40, f.version)
    }

    pub fn item_key(&self, folder: u32, item: u64) -> ItemKey {
        ItemKey {
            mailbox: self.number,
            folder,
            item,
        }
    }

    /// A folder by the id a request sent; `None` for another mailbox's or an unknown id.
    pub fn folder_by_id(&self, id: &str) -> Option<u32> {
        let (mailbox, folder) = ids::parse_folder_id(id)?;
        (mailbox == self.number && self.folders.contains_key(&folder)).then_some(folder)
    }

    pub fn children(&self, parent: u32) -> impl Iterator<Item = &Folder> {
        let mut v: Vec<&Folder> = self
            .folders
            .values()
            .filter(|f| f.parent == Some(parent))
            .collect();
        v.sort_by_key(|f| f.number);
        v.into_iter()
    }

    /// Every folder below `root` (not `root` itself), parents before children.
    pub fn descendants(&self, root: u32) -> Vec<u32> {
        let mut out = Vec::new();
        let mut stack = vec![root];
        while let Some(f) = stack.pop() {
            let kids: Vec<u32> = self.children(f).map(|c| c.number).collect();
            for k in kids.iter().rev() {
                stack.push(*k);
            }
            if f != root {
                out.push(f);
            }
        }
        // Parents before children: a depth-first order already guarantees it.
        out
    }

    fn is_below(&self, folder: u32, ancestor: u32) -> bool {
        let mut at = Some(folder);
        while let Some(f) = at {
            if f == ancestor {
                return true;
            }
            at = self.folders.get(&f).and_then(|x| x.parent);
        }
        false
    }

    /// True for the top of the information store and every folder below it: the folders
    /// clients show (the IPM subtree).
    pub fn is_ipm(&self, folder: u32) -> bool {
        self.distinguished(DistinguishedFolder::MsgFolderRoot)
            .is_some_and(|top| self.is_below(folder, top))
    }

    /// The path from the top of the information store (`Inbox/Customers/Contoso`), or from the
    /// root with a leading `/` for a folder outside it (`/Recoverable Items/Deletions`).
    pub fn path(&self, folder: u32) -> String {
        let top = self.distinguished(DistinguishedFolder::MsgFolderRoot);
        let mut parts = Vec::new();
        let mut at = Some(folder);
        let mut in_store = false;
        while let Some(f) = at {
            if Some(f) == top {
                in_store = true;
                break;
            }
            let Some(x) = self.folders.get(&f) else { break };
            if x.parent.is_none() {
                break;
            }
            parts.push(x.name.as_str());
            at = x.parent;
        }
        parts.reverse();
        let path = parts.join("/");
        if in_store { path } else { format!("/{path}") }
    }

    /// A folder by path (names compare case-insensitively, like Outlook): from the top of the
    /// information store (`""` is the top itself), or from the root when it starts with `/`.
    pub fn folder_by_path(&self, path: &str) -> Result<u32, TreeError> {
        let start = if path.starts_with('/') {
            DistinguishedFolder::Root
        } else {
            DistinguishedFolder::MsgFolderRoot
        };
        let mut at = self
            .distinguished(start)
            .ok_or_else(|| TreeError::NoFolder(path.to_owned()))?;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            at = self
                .children(at)
                .find(|c| c.name.eq_ignore_ascii_case(part))
                .map(|c| c.number)
                .ok_or_else(|| TreeError::NoFolder(path.to_owned()))?;
        }
        Ok(at)
    }

    fn touch_folder(&mut self, folder: u32, counters: &mut Counters) {
        let seq = counters.next_seq();
        if let Some(f) = self.folders.get_mut(&folder) {
            f.version += 1;
            f.modified_seq = seq;
        }
    }

    /// Creates every missing folder on `path` (like `mkdir -p`); returns the last one.
    pub fn create_folder(&mut self, path: &str, counters: &mut Counters) -> Result<u32, TreeError> {
        let root = if path.starts_with('/') { "/" } else { "" };
        let mut at = self.folder_by_path(root)?;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            let existing = self
                .children(at)
                .find(|c| c.name.eq_ignore_ascii_case(part))
                .map(|c| c.number);
            at = match existing {
                Some(n) => n,
                None => self.add_folder(Some(at), &NewFolder::mail(part), counters),
            };
        }
        Ok(at)
    }

    /// Creates one folder under `parent` (CreateFolder); a sibling of the same name is an error.
    pub fn create_child(
        &mut self,
        parent: u32,
        spec: &NewFolder<'_>,
        counters: &mut Counters,
    ) -> Result<u32, TreeError> {
        if !self.folders.contains_key(&parent) {
            return Err(TreeError::NoFolder(format!("#{parent}")));
        }
        if spec.name.trim().is_empty() || spec.name.contains('/') {
            return Err(TreeError::Invalid(format!(
                "folder name {:?} must be non-empty and hold no '/'",
                spec.name
            )));
        }
        if self
            .children(parent)
            .any(|c| c.name.eq_ignore_ascii_case(spec.name))
        {
            return Err(TreeError::FolderExists(spec.name.to_owned()));
        }
        Ok(self.add_folder(Some(parent), spec, counters))
    }

    fn movable(&self, path: &str) -> Result<u32, TreeError> {
        let f = self.folder_by_path(path)?;
        match self.folders.get(&f) {
            Some(x) if x.distinguished.is_none() => Ok(f),
            _ => Err(TreeError::Distinguished(path.to_owned())),
        }
    }

    pub fn rename_folder(
        &mut self,
        path: &str,
        new_name: &str,
        counters: &mut Counters,
    ) -> Result<u32, TreeError> {
        let f = self.movable(path)?;
        if new_name.is_empty() || new_name.contains('/') {
            return Err(TreeError::Invalid(format!(
                "folder name {new_name:?} must be non-empty and hold no '/'"
            )));
        }
        let parent = self.folders.get(&f).and_then(|x| x.parent).unwrap_or(0);
        if self
            .children(parent)
            .any(|c| c.number != f && c.name.eq_ignore_ascii_case(new_name))
        {
            return Err(TreeError::FolderExists(new_name.to_owned()));
        }
        if let Some(x) = self.folders.get_mut(&f) {
            x.name = new_name.to_owned();
        }
        self.touch_folder(f, counters);
        Ok(f)
    }

    pub fn move_folder(
        &mut self,
        path: &str,
        new_parent: &str,
        counters: &mut Counters,
    ) -> Result<u32, TreeError> {
        let f = self.movable(path)?;
        let to = self.folder_by_path(new_parent)?;
        if self.is_below(to, f) {
            return Err(TreeError::Cycle(path.to_owned()));
        }
        let name = self
            .folders
            .get(&f)
            .map(|x| x.name.clone())
            .unwrap_or_default();
        if self
            .children(to)
            .any(|c| c.number != f && c.name.eq_ignore_ascii_case(&name))
        {
            return Err(TreeError::FolderExists(format!("{new_parent}/{name}")));
        }
        if let Some(x) = self.folders.get_mut(&f) {
            x.parent = Some(to);
        }
        self.touch_folder(f, counters);
        Ok(f)
    }

    /// Deletes a folder and everything below it (a hard delete).
    pub fn delete_folder(&mut self, path: &str, counters: &mut Counters) -> Result<(), TreeError> {
        let f = self.movable(path)?;
        let mut gone = self.descendants(f);
        gone.push(f);
        for g in gone {
            if let Some(x) = self.folders.remove(&g) {
                let seq = counters.next_seq();
                self.folder_tombstones.push((g, x.created_seq, seq));
            }
        }
        Ok(())
    }

    /// Puts a new message into `folder`.
    pub fn deliver(
        &mut self,
        folder: u32,
        m: &NewMessage,
        now: i64,
        counters: &mut Counters,
    ) -> Result<(ItemKey, String), TreeError> {
        if !self.folders.contains_key(&folder) {
            return Err(TreeError::NoFolder(format!("#{folder}")));
        }
        let item = counters.next_item();
        let seq = counters.next_seq();
        let imid = m
            .internet_message_id
            .clone()
            .unwrap_or_else(|| format!("<{:016x}.{item}@sim.foldertrack>", fastrand::u64(..)));
        let conversation = m.conversation_id.clone().unwrap_or_default();
        let time = |t: &Option<String>| {
            t.as_deref()
                .and_then(|s| s.parse::<jiff::Timestamp>().ok())
                .map_or(now, |t| t.as_second())
        };
        let from = Address::parse(&m.from);
        let to: Vec<Address> = m.to.iter().map(|a| Address::parse(a)).collect();
        let cc: Vec<Address> = m.cc.iter().map(|a| Address::parse(a)).collect();
        let body_len = m.body.as_ref().map_or(0, String::len);
        let size = m
            .size
            .unwrap_or_else(|| u32::try_from(512 + m.subject.len() + body_len).unwrap_or(u32::MAX));
        let message = Message {
            envelope: Packed::new(&EnvelopeFields {
                sent: time(&m.sent),
                received: time(&m.received),
                size,
                has_attachments: m.has_attachments || !m.attachments.is_empty(),
                internet_message_id: &imid,
                conversation_id: &conversation,
                subject: &m.subject,
                from: &from,
                to: &to,
                cc: &cc,
            }),
            body: m.body.as_ref().map(|text| {
                Arc::new(crate::ews::item::Body {
                    body_type: m.body_type.clone().unwrap_or_else(|| "Text".to_owned()),
                    text: text.clone(),
                    is_truncated: false,
                })
            }),
            extras: (!m.categories.is_empty() || !m.attachments.is_empty()).then(|| {
                Box::new(super::message::Extras {
                    categories: m.categories.clone(),
                    attachments: m.attachments.clone(),
                    ..Default::default()
                })
            }),
            created_seq: seq,
            content_seq: seq,
            read_seq: seq,
            version: 1,
            is_read: m.is_read,
            origin: item,
        };
        let f = self
            .folders
            .get_mut(&folder)
            .ok_or_else(|| TreeError::NoFolder(format!("#{folder}")))?;
        f.items.insert(item, message);
        f.items_seq = seq;
        Ok((self.item_key(folder, item), imid))
    }

    /// The message an ItemId names, if it is (still) in this mailbox.
    pub fn item(&self, key: ItemKey) -> Option<&Message> {
        if key.mailbox != self.number {
            return None;
        }
        self.folders.get(&key.folder)?.items.get(&key.item)
    }

    pub fn item_by_id(&self, id: &str) -> Option<(ItemKey, &Message)> {
        let key = ids::parse_item_id(id)?;
        self.item(key).map(|m| (key, m))
    }

    /// A message by either id Graph may use: an ItemId or an immutable id.
    pub fn find_item(&self, id: &str) -> Option<(ItemKey, &Message)> {
        if let Some(found) = self.item_by_id(id) {
            return Some(found);
        }
        let (mailbox, origin) = ids::parse_immutable_id(id)?;
        if mailbox != self.number {
            return None;
        }
        self.all_items().find(|(_, m)| m.origin == origin)
    }

    /// The id Graph gives a message: immutable or the ItemId.
    pub fn graph_id(&self, key: ItemKey, origin: u64, immutable: bool) -> String {
        if immutable {
            ids::immutable_id(self.number, origin)
        } else {
            ids::item_id(key)
        }
    }

    pub fn item_change_key(&self, key: ItemKey, m: &Message) -> String {
        ids::change_key(key.item, m.version)
    }

    /// Changes a message in place (categories, extended properties): new version, new
    /// ChangeKey, an Update for syncing clients.
    pub fn modify(
        &mut self,
        key: ItemKey,
        counters: &mut Counters,
        change: impl FnOnce(&mut Message),
    ) -> Result<(), TreeError> {
        let seq = counters.next_seq();
        let f = self
            .folders
            .get_mut(&key.folder)
            .filter(|_| key.mailbox == self.number)
            .ok_or_else(|| TreeError::NoItem(ids::item_id(key)))?;
        let m = f
            .items
            .get_mut(&key.item)
            .ok_or_else(|| TreeError::NoItem(ids::item_id(key)))?;
        let was_read = m.is_read;
        let before = (m.extras.clone(), m.body.clone(), m.envelope.clone());
        change(m);
        m.version += 1;
        if m.extras != before.0 || m.body != before.1 || m.envelope != before.2 {
            m.content_seq = seq;
        }
        if m.is_read != was_read {
            m.read_seq = seq;
        }
        f.items_seq = seq;
        Ok(())
    }

    fn take(&mut self, key: ItemKey, counters: &mut Counters) -> Result<Message, TreeError> {
        let seq = counters.next_seq();
        let f = self
            .folders
            .get_mut(&key.folder)
            .filter(|_| key.mailbox == self.number)
            .ok_or_else(|| TreeError::NoItem(ids::item_id(key)))?;
        let m = f
            .items
            .remove(&key.item)
            .ok_or_else(|| TreeError::NoItem(ids::item_id(key)))?;
        f.tombstones.push(Tombstone {
            item: key.item,
            origin: m.origin,
            created_seq: m.created_seq,
            deleted_seq: seq,
        });
        f.items_seq = seq;
        Ok(m)
    }

    /// Moves a message: it leaves a tombstone in the source and arrives in `to` with a new
    /// item number, so a new ItemId and ChangeKey.
    pub fn move_item(
        &mut self,
        key: ItemKey,
        to: u32,
        counters: &mut Counters,
    ) -> Result<ItemKey, TreeError> {
        if !self.folders.contains_key(&to) {
            return Err(TreeError::NoFolder(format!("#{to}")));
        }
        let m = self.take(key, counters)?;
        self.arrive(m, to, counters)
    }

    /// Copies a message into `to`: a new message with its own ItemId; the original stays.
    pub fn copy_item(
        &mut self,
        key: ItemKey,
        to: u32,
        counters: &mut Counters,
    ) -> Result<ItemKey, TreeError> {
        let m = self
            .item(key)
            .cloned()
            .ok_or_else(|| TreeError::NoItem(ids::item_id(key)))?;
        self.arrive(m, to, counters)
    }

    /// Puts a moved or copied message into `to` as a new item: new number, first version.
    fn arrive(
        &mut self,
        mut m: Message,
        to: u32,
        counters: &mut Counters,
    ) -> Result<ItemKey, TreeError> {
        let item = counters.next_item();
        let seq = counters.next_seq();
        m.created_seq = seq;
        m.content_seq = seq;
        m.read_seq = seq;
        m.version = 1;
        let f = self
            .folders
            .get_mut(&to)
            .ok_or_else(|| TreeError::NoFolder(format!("#{to}")))?;
        f.items.insert(item, m);
        f.items_seq = seq;
        Ok(self.item_key(to, item))
    }

    pub fn delete_item(&mut self, key: ItemKey, counters: &mut Counters) -> Result<(), TreeError> {
        self.take(key, counters).map(|_| ())
    }

    /// The changes in `folder` after `since`, oldest first, at most `max`.
    pub fn item_changes(&self, folder: u32, since: u64, max: usize) -> Option<Page<ItemChange>> {
        let f = self.folders.get(&folder)?;
        if f.items_seq <= since {
            return Some(Page {
                changes: Vec::new(),
                seq: since,
                last: true,
            });
        }
        let mut all: Vec<(u64, ItemChange)> = Vec::new();
        for (&n, m) in &f.items {
            let last = m.last_seq();
            if last <= since {
                continue;
            }
            let change = if m.created_seq > since {
                ItemChange::Create(n)
            } else if m.content_seq > since {
                ItemChange::Update(n)
            } else {
                ItemChange::ReadFlag(n)
            };
            all.push((last, change));
        }
        for t in &f.tombstones {
            if t.deleted_seq > since && t.created_seq <= since {
                all.push((t.deleted_seq, ItemChange::Delete(t.item)));
            }
        }
        all.sort_unstable_by_key(|(seq, _)| *seq);
        let last = all.len() <= max;
        let seq = if last {
            f.items_seq.max(since)
        } else {
            all[max - 1].0
        };
        all.truncate(max);
        Some(Page {
            changes: all.into_iter().map(|(_, c)| c).collect(),
            seq,
            last,
        })
    }

    /// The folder changes below `root` after `since`, oldest first, at most `max`.
    pub fn folder_changes(&self, root: u32, since: u64, max: usize) -> Page<FolderChange> {
        let mut all: Vec<(u64, FolderChange)> = Vec::new();
        for f in self.folders.values() {
            if f.number == root || f.modified_seq <= since {
                continue;
            }
            let inside = self.is_below(f.number, root);
            let change = match (inside, f.created_seq > since) {
                (true, true) => FolderChange::Create(f.number),
                (true, false) => FolderChange::Update(f.number),
                // Moved out of the synced subtree: gone, as far as this sync root knows.
                (false, false) => FolderChange::Delete(f.number),
                (false, true) => continue,
            };
            all.push((f.modified_seq, change));
        }
        for &(n, created, deleted) in &self.folder_tombstones {
            if deleted > since && created <= since {
                all.push((deleted, FolderChange::Delete(n)));
            }
        }
        all.sort_unstable_by_key(|(seq, _)| *seq);
        let last = all.len() <= max;
        let high = self
            .folders
            .values()
            .map(|f| f.modified_seq)
            .chain(self.folder_tombstones.iter().map(|t| t.2))
            .max()
            .unwrap_or(0);
        let seq = if last {
            high.max(since)
        } else {
            all[max - 1].0
        };
        all.truncate(max);
        Page {
            changes: all.into_iter().map(|(_, c)| c).collect(),
            seq,
            last,
        }
    }

    /// A message as the control API shows it.
    pub fn view(&self, key: ItemKey, m: &Message) -> MessageView {
        let e = m.envelope.read();
        MessageView {
            mailbox: self.address.clone(),
            folder: self.path(key.folder),
            folder_id: self.folder_id(key.folder),
            item_id: ids::item_id(key),
            immutable_id: ids::immutable_id(self.number, m.origin),
            change_key: self.item_change_key(key, m),
            internet_message_id: e.internet_message_id.to_owned(),
            conversation_id: super::message::conversation_id(&e),
            subject: e.subject.to_owned(),
            from: super::message::owned(e.from),
            to: e.to.into_iter().map(super::message::owned).collect(),
            cc: e.cc.into_iter().map(super::message::owned).collect(),
            sent: super::message::format_time(e.sent),
            received: super::message::format_time(e.received),
            size: e.size,
            has_attachments: e.has_attachments,
            is_read: m.is_read,
            categories: m.categories().to_vec(),
            extended: m
                .extended()
                .iter()
                .map(|p| {
                    let f = &p.field;
                    let name = f
                        .property_name
                        .clone()
                        .or_else(|| f.property_tag.clone())
                        .or_else(|| f.property_id.clone())
                        .unwrap_or_default();
                    let value = p.value.clone().unwrap_or_else(|| p.values.join(","));
                    (name, value)
                })
                .collect(),
        }
    }

    /// Every message, with its key.
    pub fn all_items(&self) -> impl Iterator<Item = (ItemKey, &Message)> {
        self.folders.values().flat_map(move |f| {
            f.items
                .iter()
                .map(move |(&n, m)| (self.item_key(f.number, n), m))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailbox() -> (Mailbox, Counters) {
        let mut c = Counters::default();
        (Mailbox::new(1, "alice@example.com", &mut c), c)
    }

    fn msg(subject: &str) -> NewMessage {
        NewMessage {
            subject: subject.into(),
            from: "buyer@contoso.com".into(),
            ..NewMessage::default()
        }
    }

    #[test]
    fn changes_are_coalesced_per_item_like_exchange() {
        let (mut m, mut c) = mailbox();
        let inbox = m.folder_by_path("Inbox").unwrap();
        let (a, _) = m.deliver(inbox, &msg("a"), 0, &mut c).unwrap();
        let first = m.item_changes(inbox, 0, 512).unwrap();
        assert_eq!(first.changes, [ItemChange::Create(a.item)]);
        let state = first.seq;
        assert!(
            m.item_changes(inbox, state, 512)
                .unwrap()
                .changes
                .is_empty()
        );

        // Created then updated since the state: one Create.
        let (b, _) = m.deliver(inbox, &msg("b"), 0, &mut c).unwrap();
        m.modify(b, &mut c, |x| x.extras_mut().categories.push("X".into()))
            .unwrap();
        // Created then deleted: nothing. Existing then read: ReadFlagChange.
        let (d, _) = m.deliver(inbox, &msg("d"), 0, &mut c).unwrap();
        m.delete_item(d, &mut c).unwrap();
        m.modify(a, &mut c, |x| x.is_read = true).unwrap();
        let page = m.item_changes(inbox, state, 512).unwrap();
        assert_eq!(
            page.changes,
            [ItemChange::Create(b.item), ItemChange::ReadFlag(a.item)]
        );
    }

    #[test]
    fn a_move_is_a_delete_in_the_source_and_a_create_with_a_new_id_in_the_target() {
        let (mut m, mut c) = mailbox();
        let inbox = m.folder_by_path("Inbox").unwrap();
        let target = m.create_folder("Inbox/Customers/Contoso", &mut c).unwrap();
        let (a, _) = m.deliver(inbox, &msg("a"), 0, &mut c).unwrap();
        let s_in = m.item_changes(inbox, 0, 512).unwrap().seq;
        let s_t = m.item_changes(target, 0, 512).unwrap().seq;
        let moved = m.move_item(a, target, &mut c).unwrap();
        assert_ne!(ids::item_id(moved), ids::item_id(a));
        assert!(m.item(a).is_none());
        assert_eq!(
            m.item_changes(inbox, s_in, 512).unwrap().changes,
            [ItemChange::Delete(a.item)]
        );
        assert_eq!(
            m.item_changes(target, s_t, 512).unwrap().changes,
            [ItemChange::Create(moved.item)]
        );
        assert_eq!(m.path(target), "Inbox/Customers/Contoso");
    }

    #[test]
    fn paging_walks_every_change_once() {
        let (mut m, mut c) = mailbox();
        let inbox = m.folder_by_path("Inbox").unwrap();
        for i in 0..5 {
            m.deliver(inbox, &msg(&i.to_string()), 0, &mut c).unwrap();
        }
        let mut seen = 0;
        let mut seq = 0;
        loop {
            let p = m.item_changes(inbox, seq, 2).unwrap();
            seen += p.changes.len();
            seq = p.seq;
            if p.last {
                break;
            }
        }
        assert_eq!(seen, 5);
    }
}
