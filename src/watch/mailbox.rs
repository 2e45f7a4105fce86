//! One mailbox's sync pass: refresh the folder tree, resolve the mappings, then per watched
//! folder: pages → classify → fetch → one store commit per page, the cursor advancing only
//! with what the page produced (R22).

use super::classify::{self, Mode, Reason};
use super::mappings::{self, FolderTree, Target};
use super::{FolderMapping, MailboxConfig};
use crate::feed::{self, Action, Cursor, FeedChange, Fetched, FolderFeed, ItemRef};
use crate::store::{self, Arrival, Cause, FolderRecord, MappingState, PageCommit, Store};
use crate::tracking::{Identity, Place, Sighting, TrackingRequest};
use jiff::Timestamp;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why a pass stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Feed(#[from] feed::Error),
    #[error(transparent)]
    Store(#[from] store::Error),
}

impl Error {
    /// What the scheduler should do: store failures are not the server's fault.
    pub fn action(&self) -> Action {
        match self {
            Error::Feed(e) => e.action(),
            Error::Store(_) => Action::Fatal,
        }
    }
}

/// What a pass did.
#[derive(Clone, Debug, Default)]
pub struct PassReport {
    pub folders: usize,
    pub pages: usize,
    pub changes: usize,
    /// Tracking requests put into the outbox.
    pub emitted: Vec<TrackingRequest>,
    /// Sightings recorded without an event (R12, R19).
    pub recorded: usize,
    /// Mails found in a folder by its first sync and remembered without tracking (R10).
    pub baselined: usize,
    /// Mappings not being watched, with their state.
    pub not_watched: Vec<(String, MappingState)>,
    /// Folders that stopped at [`PAGES_PER_PASS`] with more changes waiting: the next pass
    /// goes on from their committed cursor.
    pub unfinished: usize,
    /// The ids of the folders the pass watched (what notifications subscribe to).
    pub watched: Vec<String>,
    /// The ids of the folders whose subfolders decide what the mappings watch (see
    /// `tree_folder`): notifications subscribe to them too, for folder changes only.
    pub tree: Vec<String>,
}

/// Progress of a pass, for a progress bar: a page of a folder was committed.
#[derive(Clone, Debug)]
pub struct Progress<'a> {
    pub mailbox: &'a str,
    pub path: &'a str,
    pub changes: usize,
}

/// The most pages one folder takes in one pass (512 changes each): a pass that reaches it
/// commits what it has and the next pass continues, so a huge or endless change stream never
/// holds a mailbox in one pass.
pub const PAGES_PER_PASS: usize = 50;

/// The most pages a listing that must be complete (the folder tree, a re-pointed folder) may
/// take: a server that never says "last page" fails the pass instead of holding it forever.
pub const MAX_LISTING_PAGES: usize = 10_000;

/// How often the folder tree is checked for renames, moves and new subfolders when nothing
/// else asks for it.
pub const HIERARCHY_EVERY: Duration = Duration::from_secs(600);

/// The folder whose subfolders decide what a mapping watches: its folder's parent (which
/// sees it moved away or deleted) or, while its path is not found, the deepest folder of the
/// path (where the rest will be made). Subscribed to, it shows such changes at once (R40).
fn tree_folder(
    tree: &FolderTree,
    m: &FolderMapping,
    record: &store::MappingRecord,
) -> Option<String> {
    match record.folder_id.as_deref().filter(|id| tree.contains(id)) {
        Some(id) => tree.parent(id).map(str::to_owned),
        None => m
            .path
            .as_deref()
            .and_then(|p| tree.deepest(p))
            .map(|(id, _)| id),
    }
}

/// A listing that never reached its last page.
fn endless(operation: &'static str, mailbox: &str) -> Error {
    Error::Feed(feed::Error::Incomplete {
        operation,
        mailbox: mailbox.to_owned(),
        what: format!("no last page after {MAX_LISTING_PAGES} pages"),
    })
}

/// The watcher of one mailbox. Holds the folder tree between passes and checks it only every
/// [`HIERARCHY_EVERY`], or at once after a reload or a folder that no longer resolves: an idle
/// pass costs one call per watched folder. A mailbox with an `include_subfolders` mapping
/// checks it every pass (one more call), so a new subfolder is watched from its creation.
pub struct MailboxWatcher<F, S> {
    feed: Arc<F>,
    store: Arc<S>,
    config: Arc<MailboxConfig>,
    tree: Option<KnownTree>,
    hierarchy_every: Duration,
    /// The write-back's failure category (R27); `None` without write-back.
    failed_category: Option<String>,
}

/// The folder tree as of `checked`, and the cursor to ask for what changed since.
struct KnownTree {
    folders: FolderTree,
    cursor: Cursor,
    checked: Instant,
    /// Check it on the next pass whatever its age.
    stale: bool,
}

impl<F: FolderFeed, S: Store> MailboxWatcher<F, S> {
    pub fn new(feed: Arc<F>, store: Arc<S>, config: impl Into<Arc<MailboxConfig>>) -> Self {
        Self {
            feed,
            store,
            config: config.into(),
            tree: None,
            hierarchy_every: HIERARCHY_EVERY,
            failed_category: None,
        }
    }

    /// The category whose removal makes a given-up mail eligible again (R27).
    pub fn with_failed_category(mut self, category: Option<String>) -> Self {
        self.failed_category = category;
        self
    }

    /// Checks the folder tree at least this often (tests and benchmarks shorten it).
    pub fn with_hierarchy_every(mut self, every: Duration) -> Self {
        self.hierarchy_every = every;
        self
    }

    /// Checks the folder tree on the next pass (a notification said it changed).
    pub fn mark_tree_stale(&mut self) {
        if let Some(t) = &mut self.tree {
            t.stale = true;
        }
    }

    pub fn address(&self) -> &str {
        &self.config.address
    }

    /// Applies a reloaded configuration of this mailbox (R9): the next pass resolves added
    /// mappings, drops removed ones and re-links re-pointed ones.
    pub fn reconfigure(&mut self, config: Arc<MailboxConfig>) {
        self.config = config;
        self.mark_tree_stale();
    }

    /// One sync pass over every mapping of the mailbox.
    pub async fn sync(
        &mut self,
        progress: &(dyn Fn(Progress<'_>) + Sync),
    ) -> Result<PassReport, Error> {
        let mut report = PassReport::default();
        // With subfolders included, a folder created since the last pass may already hold
        // mail: the tree is checked every pass (one call that returns nothing when idle).
        let subfolders = self.config.folder.iter().any(|f| f.include_subfolders);
        let due = subfolders
            || self
                .tree
                .as_ref()
                .is_none_or(|t| t.stale || t.checked.elapsed() >= self.hierarchy_every);
        if due {
            self.refresh_tree().await?;
        }
        let targets = self.resolve_mappings(&mut report).await?;
        if !report.not_watched.is_empty() {
            // A folder not found (yet) or moved away: look again next time.
            self.mark_tree_stale();
        }
        for (target, repoint) in &targets {
            let result = async {
                if *repoint {
                    self.repoint(target, &mut report).await?;
                }
                self.sync_folder(target, &mut report, progress).await
            }
            .await;
            match result {
                Ok(()) => {}
                // Deleted or moved since the tree was checked: the other folders go on, and the
                // next pass checks the tree and says what became of this one.
                Err(e) if e.action() == Action::ResolveFolder => {
                    tracing::warn!(event = "folder_gone", mailbox = %self.config.address, folder = %target.path, error = %e);
                    self.mark_tree_stale();
                }
                Err(e) => return Err(e),
            }
        }
        report.folders = targets.len();
        report.watched = targets.iter().map(|(t, _)| t.folder_id.clone()).collect();
        Ok(report)
    }

    async fn refresh_tree(&mut self) -> Result<(), Error> {
        let mailbox = self.config.address.as_str();
        let (mut tree, mut cursor) = match self.tree.take() {
            Some(known) => (known.folders, Some(known.cursor)),
            None => (FolderTree::new(self.feed.well_known(mailbox).await?), None),
        };
        for pages in 1.. {
            if pages > MAX_LISTING_PAGES {
                return Err(endless("folder tree", mailbox));
            }
            let page = match self.feed.hierarchy(mailbox, cursor.as_ref()).await {
                Err(e) if e.action() == Action::Rebaseline && cursor.is_some() => {
                    tree = FolderTree::new(tree.well_known);
                    cursor = None;
                    continue;
                }
                other => other?,
            };
            tree.apply(page.events);
            cursor = Some(page.cursor);
            if !page.more {
                break;
            }
        }
        self.tree = cursor.map(|cursor| KnownTree {
            folders: tree,
            cursor,
            checked: Instant::now(),
            stale: false,
        });
        Ok(())
    }

    /// The mappings of the config, plus Sent Items when `track_sent_items` (R16).
    fn mappings(&self, tree: &FolderTree) -> Vec<FolderMapping> {
        let mut out = self.config.folder.clone();
        if self.config.track_sent_items {
            out.push(FolderMapping {
                path: None,
                id: Some(tree.well_known.sent.clone()),
                regarding: None,
                include_subfolders: false,
                track_existing: false,
                allow_outside_inbox: true,
                include_body: false,
            });
        }
        out
    }

    /// Resolves every mapping, saves what changed, and returns the folders to sync, each with
    /// whether its mapping's regarding was re-pointed (R8).
    async fn resolve_mappings(
        &self,
        report: &mut PassReport,
    ) -> Result<Vec<(Target, bool)>, Error> {
        let Some(KnownTree { folders: tree, .. }) = &self.tree else {
            return Ok(Vec::new());
        };
        let mailbox = self.config.address.as_str();
        let mut changed = Vec::new();
        let mut new_folders = Vec::new();
        let mut targets = Vec::new();
        for m in self.mappings(tree) {
            let stored = self.store.mapping(mailbox, &mappings::mapping_name(&m))?;
            let (mut record, found) = mappings::resolve(mailbox, &m, stored.as_ref(), tree);
            report.tree.extend(tree_folder(tree, &m, &record));
            if m.include_subfolders && record.state == MappingState::Active {
                new_folders.extend(self.new_subfolders(&record, &found)?);
                record.subfolders = true;
            }
            let repoint =
                stored.is_some() && record.regarding != m.regarding && m.regarding.is_some();
            if stored.is_some() && m.regarding.is_none() {
                // R7: old links stay; new items go without a regarding.
                record.regarding = None;
            }
            if record.state != MappingState::Active {
                if stored.as_ref().map(|s| &s.state) != Some(&record.state) {
                    tracing::warn!(event = "mapping_not_watched", mailbox, mapping = %record.name, state = ?record.state);
                }
                report
                    .not_watched
                    .push((record.name.clone(), record.state.clone()));
            }
            if stored.as_ref() != Some(&record) && !repoint {
                changed.push(record);
            }
            targets.extend(found.into_iter().map(|t| (t, repoint)));
        }
        if !changed.is_empty() || !new_folders.is_empty() {
            self.store.save_mappings(changed, new_folders).await?;
        }
        Ok(targets)
    }

    /// The subfolders of an `include_subfolders` mapping that have no record yet (R2). When
    /// the mapping is first watched they are baselines, like its folder; once its subfolders
    /// were recorded, a new one was created (or moved in) since, and what it holds was put
    /// there since: its first sync tracks it.
    fn new_subfolders(
        &self,
        mapping: &store::MappingRecord,
        found: &[Target],
    ) -> Result<Vec<FolderRecord>, Error> {
        let mailbox = &self.config.address;
        let mut out = Vec::new();
        for t in found {
            if mapping.folder_id.as_ref() == Some(&t.folder_id)
                || self.store.folder(mailbox, &t.folder_id)?.is_some()
            {
                continue;
            }
            if mapping.subfolders {
                tracing::info!(event = "subfolder_found", mailbox = %mailbox, folder = %t.path, mapping = %t.mapping);
            }
            out.push(FolderRecord {
                mailbox: mailbox.clone(),
                folder_id: t.folder_id.clone(),
                path: t.path.clone(),
                mapping: t.mapping.clone(),
                cursor: None,
                baselined: mapping.subfolders,
                since: None,
            });
        }
        Ok(out)
    }

    fn folder_record(&self, target: &Target, stored: Option<FolderRecord>) -> FolderRecord {
        let mut record = stored.unwrap_or_else(|| FolderRecord {
            mailbox: self.config.address.clone(),
            folder_id: target.folder_id.clone(),
            path: target.path.clone(),
            mapping: target.mapping.clone(),
            cursor: None,
            baselined: false,
            since: None,
        });
        record.path = target.path.clone();
        record
    }

    async fn sync_folder(
        &self,
        target: &Target,
        report: &mut PassReport,
        progress: &(dyn Fn(Progress<'_>) + Sync),
    ) -> Result<(), Error> {
        let mailbox = self.config.address.as_str();
        let stored = self.store.folder(mailbox, &target.folder_id)?;
        let mut record = self.folder_record(target, stored.clone());
        self.retry_pending(target, &record, report).await?;
        let mut reset = false;
        let mut pages = 0;
        loop {
            pages += 1;
            let cursor = record.cursor.clone().map(Cursor);
            let page = match self
                .feed
                .next_page(mailbox, &target.folder_id, cursor.as_ref())
                .await
            {
                // R23: forget the cursor, keep what was seen, list the folder again.
                Err(e) if e.action() == Action::Rebaseline && !reset => {
                    tracing::warn!(event = "cursor_reset", mailbox, folder = %target.path, reason = %e);
                    self.store.reset_cursor(mailbox, &target.folder_id).await?;
                    record.cursor = None;
                    reset = true;
                    continue;
                }
                other => other?,
            };
            let mode = if record.baselined {
                Mode::Track
            } else {
                Mode::Baseline {
                    track_existing: target.track_existing,
                }
            };
            let seen = self.known(&target.folder_id, &page.changes)?;
            let classified = classify::classify(&page.changes, mode, &seen);
            for ignored in &classified.ignored {
                if let Reason::Unreadable(why) = &ignored.reason {
                    tracing::warn!(event = "change_unreadable", mailbox, folder = %target.path, reason = %why);
                }
            }
            let (mut arrived, unreadable) = self
                .arrivals(target, &classified.fetch, Cause::Appeared)
                .await?;
            arrived.extend(self.reconsidered(target, &classified.edited).await?);
            record.cursor = Some(page.cursor.0.clone());
            record.baselined |= !page.more;
            // An idle poll's page: nothing to write. Committing it anyway cost a transaction
            // and a flush per poll, most of an idle agent's CPU and its disk's growth.
            let idle = page.changes.is_empty()
                && arrived.is_empty()
                && unreadable.is_empty()
                && stored.as_ref() == Some(&record);
            let baselined = classified.seen_only.len();
            let commit = PageCommit {
                folder: record.clone(),
                seen: classified.seen_only,
                baselined: classified.baselined,
                arrived,
                left: classified.left,
                mapping: None,
                unreadable,
                gone: Vec::new(),
                at: Timestamp::now(),
            };
            if !idle {
                self.commit(commit, report).await?;
            }
            report.pages += 1;
            report.changes += page.changes.len();
            report.baselined += baselined;
            progress(Progress {
                mailbox,
                path: &target.path,
                changes: page.changes.len(),
            });
            if !page.more {
                return Ok(());
            }
            if pages >= PAGES_PER_PASS {
                tracing::info!(event = "folder_unfinished", mailbox, folder = %target.path, pages);
                report.unfinished += 1;
                return Ok(());
            }
        }
    }

    /// The items of a page that the folder already knows.
    fn known(&self, folder_id: &str, changes: &[FeedChange]) -> Result<HashSet<String>, Error> {
        let mut seen = HashSet::new();
        for id in classify::lookups(changes) {
            if self
                .store
                .seen(&self.config.address, folder_id, id)?
                .is_some()
            {
                seen.insert(id.to_owned());
            }
        }
        Ok(seen)
    }

    /// Commits a page and counts what it produced.
    async fn commit(&self, commit: PageCommit, report: &mut PassReport) -> Result<(), Error> {
        let mailbox = self.config.address.as_str();
        let path = commit.folder.path.clone();
        for u in &commit.unreadable {
            tracing::warn!(event = "item_unreadable", mailbox, folder = %path, error = %u.error);
        }
        let committed = self.store.commit_page(commit).await?;
        report.recorded += committed.recorded;
        for r in &committed.emitted {
            let subject = crate::telemetry::loggable_subject(r.message.subject.as_deref());
            tracing::info!(event = "item_tracked", mailbox, folder = %r.folder.path, id = %r.id, kind = ?r.event, subject);
        }
        report.emitted.extend(committed.emitted);
        Ok(())
    }

    /// Tries again the items of the folder the server could not read before (R33): read now,
    /// they are tracked (or re-linked); gone from the folder, they are forgotten; still
    /// unreadable, they wait for the next pass with their latest error.
    async fn retry_pending(
        &self,
        target: &Target,
        record: &FolderRecord,
        report: &mut PassReport,
    ) -> Result<(), Error> {
        let mailbox = self.config.address.as_str();
        let pending = self.store.pending_in(mailbox, &target.folder_id)?;
        if pending.is_empty() {
            return Ok(());
        }
        let mut arrived = Vec::new();
        let mut unreadable = Vec::new();
        for (cause, repointed) in [(Cause::Appeared, false), (Cause::Repointed, true)] {
            let items: Vec<ItemRef> = pending
                .iter()
                .filter(|p| p.repointed == repointed)
                .map(|p| ItemRef::new(p.item_id.clone(), None))
                .collect();
            let (a, u) = self.arrivals(target, &items, cause).await?;
            arrived.extend(a);
            unreadable.extend(u);
        }
        let still: HashSet<&str> = arrived
            .iter()
            .map(|a: &Arrival| a.message.item_id.as_str())
            .chain(
                unreadable
                    .iter()
                    .map(|u: &store::Unreadable| u.item_id.as_str()),
            )
            .collect();
        let gone = pending
            .iter()
            .filter(|p| !still.contains(p.item_id.as_str()))
            .map(|p| p.item_id.clone())
            .collect();
        let commit = PageCommit {
            folder: record.clone(),
            seen: Vec::new(),
            baselined: Vec::new(),
            arrived,
            left: Vec::new(),
            mapping: None,
            unreadable,
            gone,
            at: Timestamp::now(),
        };
        self.commit(commit, report).await
    }

    /// R8: the mapping's regarding changed; re-link every tracked item currently in the
    /// folder. The folder is listed afresh (the store keeps no ItemIds, only their hashes).
    async fn repoint(&self, target: &Target, report: &mut PassReport) -> Result<(), Error> {
        let mailbox = self.config.address.as_str();
        let mut tracked = Vec::new();
        let mut cursor = None;
        for pages in 1.. {
            if pages > MAX_LISTING_PAGES {
                return Err(endless("folder listing", mailbox));
            }
            let page = self
                .feed
                .next_page(mailbox, &target.folder_id, cursor.as_ref())
                .await?;
            for change in page.changes {
                if let FeedChange::Added(item) = change
                    && self
                        .store
                        .seen(mailbox, &target.folder_id, &item.id)?
                        .is_some_and(|s| s.message.is_some())
                {
                    tracked.push(item);
                }
            }
            cursor = Some(page.cursor);
            if !page.more {
                break;
            }
        }
        let (arrived, unreadable) = self.arrivals(target, &tracked, Cause::Repointed).await?;
        let mut mapping = self
            .store
            .mapping(mailbox, &target.mapping)?
            .expect("a re-pointed mapping was stored");
        mapping.regarding = target.regarding.clone();
        let stored = self.store.folder(mailbox, &target.folder_id)?;
        let committed = self
            .store
            .commit_page(PageCommit {
                folder: self.folder_record(target, stored),
                seen: Vec::new(),
                baselined: Vec::new(),
                arrived,
                left: Vec::new(),
                mapping: Some(mapping),
                unreadable,
                gone: Vec::new(),
                at: Timestamp::now(),
            })
            .await?;
        tracing::info!(event = "mapping_repointed", mailbox, mapping = %target.mapping, relinked = committed.emitted.len());
        report.emitted.extend(committed.emitted);
        Ok(())
    }

    /// R27: edited items that are given-up mail and no longer carry the failure category,
    /// as arrivals that put their requests back in the outbox.
    async fn reconsidered(
        &self,
        target: &Target,
        edited: &[ItemRef],
    ) -> Result<Vec<Arrival>, Error> {
        let Some(category) = &self.failed_category else {
            return Ok(Vec::new());
        };
        let mailbox = self.config.address.as_str();
        let mut failed = Vec::new();
        for item in edited {
            let seen = self.store.seen(mailbox, &target.folder_id, &item.id)?;
            if let Some(id) = seen.and_then(|s| s.message)
                && self.store.message(&id)?.is_some_and(|r| r.failed != 0)
            {
                failed.push(item.clone());
            }
        }
        let fetch = match failed.is_empty() {
            true => return Ok(Vec::new()),
            false => {
                self.feed
                    .fetch(mailbox, &failed, target.include_body)
                    .await?
            }
        };
        // Unreadable now: the next edit or move brings it back.
        let cleared = fetch
            .fetched
            .into_iter()
            .filter(|f| !f.categories.contains(category));
        Ok(cleared
            .map(|f| self.arrival(target, f, Cause::Reconsidered, Timestamp::now()))
            .collect())
    }

    /// Fetches candidates and turns them into arrivals with their identity (R18), and the
    /// items the server could not read into pending ones (R33).
    async fn arrivals(
        &self,
        target: &Target,
        items: &[ItemRef],
        cause: Cause,
    ) -> Result<(Vec<Arrival>, Vec<store::Unreadable>), Error> {
        if items.is_empty() {
            return Ok(Default::default());
        }
        let mailbox = self.config.address.as_str();
        let at = Timestamp::now();
        let fetch = self.feed.fetch(mailbox, items, target.include_body).await?;
        let unreadable = fetch
            .unreadable
            .into_iter()
            .map(|u| store::Unreadable {
                item_id: u.item.id,
                error: u.error.to_string(),
                repointed: cause == Cause::Repointed,
            })
            .collect();
        let arrived = fetch
            .fetched
            .into_iter()
            .map(|f| self.arrival(target, f, cause, at))
            .collect();
        Ok((arrived, unreadable))
    }

    /// A fetched item as an arrival in `target`, with its identity (R18).
    fn arrival(&self, target: &Target, f: Fetched, cause: Cause, at: Timestamp) -> Arrival {
        let mailbox = self.config.address.as_str();
        let identity = Identity::of(
            mailbox,
            f.message.internet_message_id.as_deref(),
            f.search_key.as_deref(),
        )
        .unwrap_or_else(|| {
            // Neither id nor search key: the item id is all there is; say so.
            tracing::warn!(event = "identity_missing", mailbox, folder = %target.path);
            Identity::SearchKey {
                mailbox: mailbox.to_ascii_lowercase(),
                key: format!("item:{}", f.message.item_id),
            }
        });
        Arrival {
            identity,
            sighting: Sighting {
                place: Place {
                    mailbox: mailbox.to_owned(),
                    folder_id: target.folder_id.clone(),
                    path: target.path.clone(),
                },
                mapping: target.mapping.clone(),
                regarding: target.regarding.clone(),
                at,
            },
            message: f.message,
            cause,
        }
    }
}
