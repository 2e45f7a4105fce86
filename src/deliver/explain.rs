//! "Why wasn't my email tracked?": a mail's story told from what the store keeps — where it was
//! seen, its mapping and regarding, what was emitted, delivered, written back, retried or
//! rejected — or why nothing happened, with the fix, in the words of tracking-rules.md.
//! [`gather`] reads the store; [`tell`] is PURE over what it read, so `foldertrack explain`
//! (agent stopped) and `GET /v1/explain` (agent running) say the same.

use super::writeback::Writeback;
use crate::store::{
    self, DeadEntry, Failed, FolderRecord, HoldRecord, MappingRecord, MappingState, MarkEntry,
    MarkKind, OutboxEntry, PendingItem, SinkOutage, Store, Tree,
};
use crate::tracking::{Identity, MessageRecord, Regarding, normalise_message_id};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// What to explain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Query {
    /// An Internet Message-ID, e.g. `<abc@contoso.com>`.
    MessageId(String),
    /// A fragment of the subject (case-insensitive).
    Subject(String),
    /// A mailbox's folder, by path (`Inbox/Customers/Contoso`) or FolderId.
    Folder { mailbox: String, folder: String },
}

impl Query {
    /// The query from optional parts (CLI flags, API parameters); one line saying what to give
    /// when they do not make one query.
    pub fn from_parts(
        message_id: Option<String>,
        subject: Option<String>,
        mailbox: Option<String>,
        folder: Option<String>,
    ) -> Result<Self, String> {
        let usage = "give a Message-ID, a subject fragment, or a mailbox with a folder path";
        match (message_id, subject, mailbox, folder) {
            (Some(id), None, None, None) => normalise_message_id(&id)
                .map(Self::MessageId)
                .ok_or_else(|| format!("message id {id:?} is empty: {usage}")),
            (None, Some(s), None, None) if !s.trim().is_empty() => {
                Ok(Self::Subject(s.trim().to_owned()))
            }
            (None, None, Some(mailbox), Some(folder)) => Ok(Self::Folder {
                mailbox: mailbox.trim().to_owned(),
                folder: folder.trim().trim_matches('/').to_owned(),
            }),
            (None, None, Some(_), None) => Err(format!("a mailbox needs a folder too: {usage}")),
            (None, None, None, Some(_)) => Err(format!("a folder needs its mailbox too: {usage}")),
            _ => Err(format!("{usage} (one of them)")),
        }
    }
}

/// What the configuration says beyond the store.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// Each configured mailbox and whether it tracks Sent Items (R16).
    pub mailboxes: Vec<(String, bool)>,
    pub writeback: Writeback,
}

/// A tracked message and everything the store holds about it.
#[derive(Clone, Debug)]
pub struct Found {
    pub record: MessageRecord,
    pub outbox: Vec<OutboxEntry>,
    pub dead: Vec<DeadEntry>,
    pub mark: Option<MarkEntry>,
    /// Folders whose baseline found it (R10).
    pub baselines: Vec<FolderRecord>,
}

/// What the store says about a folder asked for.
#[derive(Clone, Debug, Default)]
pub struct FolderFacts {
    pub record: Option<FolderRecord>,
    pub mapping: Option<MappingRecord>,
    /// Mails with a Message-ID its baseline found.
    pub baselined: usize,
    pub pending: Vec<PendingItem>,
}

/// Everything [`tell`] needs, read by [`gather`].
#[derive(Clone, Debug)]
pub struct Evidence {
    pub query: Query,
    pub found: Vec<Found>,
    /// Message-ID query: folders whose baseline found it, when it was never tracked.
    pub baselined: Vec<FolderRecord>,
    pub folder: Option<FolderFacts>,
    pub mappings: Vec<MappingRecord>,
    pub folders: Vec<FolderRecord>,
    pub holds: Vec<HoldRecord>,
    pub outage: Option<SinkOutage>,
}

/// How a story ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Delivered to the sink, linked to its regarding.
    Delivered,
    /// Delivered, but its mapping has no regarding: linked to nothing (R7).
    NoRegarding,
    /// In the outbox, not tried yet (or the sink is unavailable).
    Waiting,
    /// Failed at least once, retried later (R30).
    Retrying,
    /// Its regarding record is unavailable: waits for it (R25).
    Held,
    Undeliverable,
    Rejected,
    /// It was in the folder before tracking started (R10).
    Baseline,
    /// The folder is not mapped (R2).
    NotMapped,
    /// The folder's mapping is paused, orphaned or names no folder (R5, R6).
    MappingPaused,
    /// Sent Items is not watched (R16).
    SentNotTracked,
    /// foldertrack never saw it in a mapped folder.
    NotSeen,
    /// A mapped folder and what happened in it.
    Watched,
}

/// One line of a story.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Line {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Timestamp>,
    pub what: String,
}

/// One mail's (or one folder's) story.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Story {
    pub outcome: Outcome,
    /// What it is about: the mail (Message-ID, subject) or the folder.
    pub title: String,
    /// The tracking request id (R21), when it was tracked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regarding: Option<Regarding>,
    /// The rules of tracking-rules.md behind the outcome.
    pub rules: Vec<String>,
    pub lines: Vec<Line>,
    /// What to do, when something should be done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// The answer: the query and its stories.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    pub query: Query,
    pub stories: Vec<Story>,
}

/// Reads what the store knows about `query`.
pub fn gather<S: Store>(store: &S, query: &Query) -> Result<Evidence, store::Error> {
    let folders = store.all_folders()?;
    let mut ev = Evidence {
        query: query.clone(),
        found: Vec::new(),
        baselined: Vec::new(),
        folder: None,
        mappings: store.all_mappings()?,
        folders,
        holds: store.holds()?,
        outage: store.sink_outage()?,
    };
    let records = match query {
        Query::MessageId(id) => {
            let request = Identity::MessageId(id.clone()).request_id();
            ev.baselined = baselines_of(store, &ev.folders, id)?;
            store.message(&request)?.into_iter().collect()
        }
        Query::Subject(fragment) => {
            let fragment = fragment.to_lowercase();
            let mut all = store.messages()?;
            all.retain(|r| {
                (r.subject.as_deref()).is_some_and(|s| s.to_lowercase().contains(&fragment))
            });
            all
        }
        Query::Folder { mailbox, folder } => {
            let facts = folder_facts(store, &ev, mailbox, folder)?;
            let here = facts
                .record
                .as_ref()
                .map(|f| (f.mailbox.clone(), f.folder_id.clone()));
            ev.folder = Some(facts);
            let mut all = store.messages()?;
            all.retain(|r| here.as_ref().is_some_and(|(m, f)| sits_in(r, m, f)));
            all
        }
    };
    for record in records {
        let found = found(store, &ev.folders, record)?;
        ev.found.push(found);
    }
    if !ev.found.is_empty() {
        ev.baselined.clear();
    }
    Ok(ev)
}

/// Whether the message sits in the folder (as its owner's, or as a sighting, R19).
fn sits_in(r: &MessageRecord, mailbox: &str, folder_id: &str) -> bool {
    let owned = r.owner.eq_ignore_ascii_case(mailbox)
        && r.location
            .as_ref()
            .is_some_and(|l| l.folder_id == folder_id);
    owned
        || r.sightings
            .iter()
            .any(|p| p.mailbox.eq_ignore_ascii_case(mailbox) && p.folder_id == folder_id)
}

fn baselines_of<S: Store>(
    store: &S,
    folders: &[FolderRecord],
    message_id: &str,
) -> Result<Vec<FolderRecord>, store::Error> {
    let mut out = Vec::new();
    for f in folders {
        if store.baselined(&f.mailbox, &f.folder_id, message_id)? {
            out.push(f.clone());
        }
    }
    Ok(out)
}

fn found<S: Store>(
    store: &S,
    folders: &[FolderRecord],
    record: MessageRecord,
) -> Result<Found, store::Error> {
    let mine = |r: &crate::tracking::TrackingRequest| r.id == record.id;
    let outbox = store.outbox(usize::MAX)?.into_iter().map(|(_, e)| e);
    let dead = store.dead(usize::MAX)?.into_iter().map(|(_, d)| d);
    let baselines = match &record.message_id {
        Some(id) => baselines_of(store, folders, id)?,
        None => Vec::new(),
    };
    Ok(Found {
        outbox: outbox.filter(|e| mine(&e.request)).collect(),
        dead: dead.filter(|d| mine(&d.request)).collect(),
        mark: store.read(Tree::Marks, record.id.as_bytes())?,
        baselines,
        record,
    })
}

fn folder_facts<S: Store>(
    store: &S,
    ev: &Evidence,
    mailbox: &str,
    folder: &str,
) -> Result<FolderFacts, store::Error> {
    let record = ev
        .folders
        .iter()
        .find(|f| {
            f.mailbox.eq_ignore_ascii_case(mailbox)
                && (f.path.eq_ignore_ascii_case(folder) || f.folder_id == folder)
        })
        .cloned();
    let mapping = ev
        .mappings
        .iter()
        .find(|m| {
            m.mailbox.eq_ignore_ascii_case(mailbox)
                && match &record {
                    Some(f) => m.name == f.mapping,
                    None => {
                        m.name.eq_ignore_ascii_case(folder)
                            || m.path
                                .as_deref()
                                .is_some_and(|p| p.eq_ignore_ascii_case(folder))
                    }
                }
        })
        .cloned();
    let (baselined, pending) = match &record {
        Some(f) => (
            store.baselined_in(&f.mailbox, &f.folder_id)?,
            store.pending_in(&f.mailbox, &f.folder_id)?,
        ),
        None => (0, Vec::new()),
    };
    Ok(FolderFacts {
        record,
        mapping,
        baselined,
        pending,
    })
}

/// PURE: the stories of what was gathered.
pub fn tell(ev: &Evidence, settings: &Settings) -> Explanation {
    let mut stories: Vec<Story> = Vec::new();
    if let (Query::Folder { mailbox, folder }, Some(facts)) = (&ev.query, &ev.folder) {
        stories.push(folder_story(mailbox, folder, facts, settings));
    }
    stories.extend(ev.found.iter().map(|f| message_story(f, ev, settings)));
    for f in &ev.baselined {
        stories.push(baseline_story(&ev.query, f));
    }
    if stories.is_empty() {
        stories.push(not_seen(ev, settings));
    }
    Explanation {
        query: ev.query.clone(),
        stories,
    }
}

fn line(at: Timestamp, what: impl Into<String>) -> Line {
    Line {
        at: Some(at),
        what: what.into(),
    }
}

fn note(what: impl Into<String>) -> Line {
    Line {
        at: None,
        what: what.into(),
    }
}

fn rules(list: &[&str]) -> Vec<String> {
    list.iter().map(|r| (*r).to_owned()).collect()
}

const MOVE_OUT_AND_IN: &str = "move the mail out of the folder and back in: appearing in a mapped folder is a tracking request (R11)";

fn baseline_story(query: &Query, f: &FolderRecord) -> Story {
    let message_id = match query {
        Query::MessageId(id) => Some(id.clone()),
        _ => None,
    };
    let mut lines = Vec::new();
    if let Some(since) = f.since {
        lines.push(line(
            since,
            format!("tracking of {} in {} started", f.path, f.mailbox),
        ));
    }
    lines.push(note(format!(
        "the mail was already in {} then: the first sync is a baseline, what it finds is remembered and not tracked (R10)",
        f.path
    )));
    Story {
        outcome: Outcome::Baseline,
        title: message_id.clone().unwrap_or_else(|| f.path.clone()),
        id: None,
        message_id,
        subject: None,
        regarding: None,
        rules: rules(&["R10", "R11"]),
        lines,
        fix: Some(format!(
            "{MOVE_OUT_AND_IN}; a mapping created with track_existing = true tracks what is already there"
        )),
    }
}

/// The story of a tracked message.
fn message_story(f: &Found, ev: &Evidence, settings: &Settings) -> Story {
    let r = &f.record;
    let mut lines: Vec<Line> = r.history.iter().map(|h| line(h.at, &h.what)).collect();
    if let Some(first) = lines.first_mut() {
        first.what = format!("{} ({})", first.what, r.owner);
    }
    for b in &f.baselines {
        lines.push(note(format!(
            "it had been in {} of {} before tracking started there: that baseline did not track it (R10)",
            b.path, b.mailbox
        )));
    }
    let mapping = mapping_of(f, ev);
    lines.push(note(match (&mapping, &r.regarding) {
        (Some(m), Some(g)) => format!("mapping {m}, regarding {g}"),
        (Some(m), None) => format!("mapping {m}, without a regarding"),
        (None, Some(g)) => format!("regarding {g}"),
        (None, None) => "without a regarding".to_owned(),
    }));
    if !r.conflicts.is_empty() {
        let others: Vec<String> = r.conflicts.iter().map(ToString::to_string).collect();
        lines.push(note(format!(
            "conflict: also filed in folders regarding {}; the first filing's regarding stays (R19)",
            others.join(", ")
        )));
    }
    lines.push(note(format!(
        "{} event(s) emitted; the sink confirmed {}",
        r.events,
        match r.delivered {
            0 => "none yet".to_owned(),
            n => format!("up to event {n}"),
        }
    )));
    let (outcome, fix) = delivery(f, ev, &mut lines);
    let (outcome, fix) = match (outcome, &r.regarding) {
        (Outcome::Delivered, None) => (
            Outcome::NoRegarding,
            Some(format!(
                "give mapping {} a regarding: re-pointing re-links every mail in the folder (R8); or move the mail into a folder mapped with one (R12)",
                mapping.as_deref().unwrap_or("of its folder")
            )),
        ),
        _ => (outcome, fix),
    };
    if r.delivered > 0 {
        lines.push(note(write_back(f, settings)));
    }
    Story {
        outcome,
        title: r.message_id.clone().unwrap_or_else(|| r.id.clone()),
        id: Some(r.id.clone()),
        message_id: r.message_id.clone(),
        subject: r.subject.clone(),
        regarding: r.regarding.clone(),
        rules: rules(rules_of(outcome)),
        lines,
        fix,
    }
}

fn rules_of(outcome: Outcome) -> &'static [&'static str] {
    match outcome {
        Outcome::Delivered => &["R11", "R21", "R26"],
        Outcome::Watched => &["R2", "R10", "R11"],
        Outcome::NoRegarding => &["R7", "R8", "R11"],
        Outcome::Waiting => &["R21"],
        Outcome::Retrying | Outcome::Undeliverable => &["R30"],
        Outcome::Held => &["R25"],
        Outcome::Rejected => &["R32"],
        Outcome::Baseline => &["R10", "R11"],
        Outcome::NotMapped => &["R2"],
        Outcome::MappingPaused => &["R5", "R6"],
        Outcome::SentNotTracked => &["R16"],
        Outcome::NotSeen => &["R2", "R10", "R16"],
    }
}

/// The mapping the message was tracked by: its latest request's, or its folder's.
fn mapping_of(f: &Found, ev: &Evidence) -> Option<String> {
    let requests = f.outbox.iter().map(|e| &e.request);
    if let Some(r) = requests.chain(f.dead.iter().map(|d| &d.request)).last() {
        return Some(r.mapping.clone());
    }
    let at = f.record.location.as_ref()?;
    ev.folders
        .iter()
        .find(|x| x.mailbox == f.record.owner && x.folder_id == at.folder_id)
        .map(|x| x.mapping.clone())
}

/// Where its requests stand: lines, the outcome and the fix.
fn delivery(f: &Found, ev: &Evidence, lines: &mut Vec<Line>) -> (Outcome, Option<String>) {
    let mut outcome = Outcome::Delivered;
    let mut fix = None;
    for d in &f.dead {
        let n = d.request.sequence;
        let (o, what, todo) = match d.state {
            Failed::Rejected => (
                Outcome::Rejected,
                format!("event {n} rejected by the sink: {} (R32)", d.reason),
                "fix what the sink said (e.g. grant the missing privilege), then `foldertrack retry`",
            ),
            Failed::Undeliverable => (
                Outcome::Undeliverable,
                format!(
                    "event {n} undeliverable after {} attempt(s): {} (R30)",
                    d.attempts, d.reason
                ),
                "once the sink answers again, `foldertrack retry` re-queues it",
            ),
        };
        lines.push(line(d.at, what));
        outcome = o;
        fix = Some(todo.to_owned());
    }
    for e in &f.outbox {
        let (o, what) = waiting(e, ev);
        lines.push(note(what));
        if fix.is_none() {
            outcome = o;
        }
    }
    (outcome, fix)
}

/// Why an outbox entry waits.
fn waiting(e: &OutboxEntry, ev: &Evidence) -> (Outcome, String) {
    let n = e.request.sequence;
    if let Some(h) = ev.holds.iter().find(|h| h.covers(&e.request)) {
        return (
            Outcome::Held,
            format!(
                "event {n} waits: regarding {} is unavailable: {} (R25); it goes out once a probe gets through",
                h.regarding, h.reason
            ),
        );
    }
    if e.attempts > 0 || e.refused > 0 {
        let next = e
            .next_try
            .map(|t| format!("; next try at {t}"))
            .unwrap_or_default();
        return (
            Outcome::Retrying,
            format!(
                "event {n} failed {} time(s), last: {}{next} (R30)",
                e.attempts + e.refused,
                e.last_error.as_deref().unwrap_or("no reason given")
            ),
        );
    }
    if let Some(o) = &ev.outage {
        return (
            Outcome::Waiting,
            format!(
                "event {n} waits in the outbox: the sink is unavailable since {}: {}",
                o.since, o.reason
            ),
        );
    }
    (
        Outcome::Waiting,
        format!("event {n} waits in the outbox for delivery"),
    )
}

fn write_back(f: &Found, settings: &Settings) -> String {
    let w = &settings.writeback;
    if !w.enabled {
        return "write-back is off: no category is written (R26)".to_owned();
    }
    match &f.mark {
        Some(m) => {
            let category = match m.kind {
                MarkKind::Tracked => &w.tracked_category,
                MarkKind::Failed => &w.failed_category,
            };
            let tries = match (&m.last_error, m.attempts) {
                (Some(e), n) if n > 0 => format!(" ({n} failed tries, last: {e})"),
                _ => String::new(),
            };
            format!("the category {category:?} is still to be written to the mail{tries} (R28)")
        }
        None if f
            .record
            .history
            .iter()
            .any(|h| h.what.contains("not written")) =>
        {
            "the category could not be written to the mail (see above)".to_owned()
        }
        None => format!(
            "written back: the mail carries the category {:?} (R26)",
            w.tracked_category
        ),
    }
}

/// The story of a folder asked for by mailbox and path.
fn folder_story(mailbox: &str, folder: &str, facts: &FolderFacts, settings: &Settings) -> Story {
    let title = format!("{folder} of {mailbox}");
    let mut story = Story {
        outcome: Outcome::Watched,
        title,
        id: None,
        message_id: None,
        subject: None,
        regarding: None,
        rules: Vec::new(),
        lines: Vec::new(),
        fix: None,
    };
    match (&facts.record, &facts.mapping) {
        (_, Some(m)) if m.state != MappingState::Active => paused(&mut story, m),
        (Some(f), m) => watched(&mut story, f, m.as_ref(), facts),
        (None, _) if is_sent_items(folder) && !tracks_sent(settings, mailbox) => {
            story.outcome = Outcome::SentNotTracked;
            story.lines.push(note(format!(
                "Sent Items of {mailbox} is not watched: track_sent_items is off (R16)"
            )));
            story.fix = Some(format!(
                "set track_sent_items = true on the [[mailbox]] {mailbox}, or drag the sent mail into a mapped folder: it is tracked as outgoing (R16)"
            ));
        }
        (None, _) => {
            story.outcome = Outcome::NotMapped;
            story.lines.push(note(format!(
                "{folder} of {mailbox} is not a mapped folder: only mapped folders are tracked (R2)"
            )));
            story.fix = Some(format!(
                "move the mail into a mapped folder, or map this one: [[mailbox.folder]] path = {folder:?} under the [[mailbox]] {mailbox} (its first sync is a baseline, R10; track_existing = true tracks what is already there)"
            ));
        }
    }
    story.rules = rules(rules_of(story.outcome));
    story
}

fn paused(story: &mut Story, m: &MappingRecord) {
    story.outcome = Outcome::MappingPaused;
    let (what, fix) = match &m.state {
        MappingState::Paused(reason) if reason == "folder_moved_outside_inbox" => (
            format!("mapping {} is paused: its folder was moved outside the Inbox (R5)", m.name),
            "move the folder back under the Inbox, or set allow_outside_inbox = true on the mapping (R3)".to_owned(),
        ),
        MappingState::Paused(reason) => (
            format!("mapping {} is paused: {reason}", m.name),
            "see `foldertrack status` for the reason's fix".to_owned(),
        ),
        MappingState::Orphaned => (
            format!("mapping {} is orphaned: its folder was deleted (R6)", m.name),
            "map the new folder by its path or FolderId; a folder with the same name is never re-attached by itself (R6)".to_owned(),
        ),
        MappingState::NotFound => (
            format!("mapping {} names no folder (yet)", m.name),
            "check the path with `foldertrack folders <ADDRESS>` and correct it".to_owned(),
        ),
        MappingState::Active => return,
    };
    story.lines.push(note(what));
    story.fix = Some(fix);
}

fn watched(story: &mut Story, f: &FolderRecord, m: Option<&MappingRecord>, facts: &FolderFacts) {
    if let Some(since) = f.since {
        story
            .lines
            .push(line(since, format!("tracking of {} started", f.path)));
    }
    let regarding = m.and_then(|m| m.regarding.as_ref());
    story.lines.push(note(match regarding {
        Some(g) => format!("mapped by {}, regarding {g}", f.mapping),
        None => format!("mapped by {}, without a regarding", f.mapping),
    }));
    story.regarding = regarding.cloned();
    if facts.baselined > 0 {
        story.lines.push(note(format!(
            "{} mail(s) were already in the folder when tracking started: a baseline, not tracked (R10); to track one, {MOVE_OUT_AND_IN}",
            facts.baselined
        )));
    }
    for p in &facts.pending {
        story.lines.push(line(
            p.last_at,
            format!(
                "an item could not be read from Exchange after {} attempt(s): {}; tried again every pass (R33)",
                p.attempts, p.error
            ),
        ));
    }
}

fn is_sent_items(folder: &str) -> bool {
    folder.eq_ignore_ascii_case("Sent Items") || folder.eq_ignore_ascii_case("sentitems")
}

fn tracks_sent(settings: &Settings, mailbox: &str) -> bool {
    settings
        .mailboxes
        .iter()
        .any(|(m, sent)| m.eq_ignore_ascii_case(mailbox) && *sent)
}

/// Nothing found: what could explain it.
fn not_seen(ev: &Evidence, settings: &Settings) -> Story {
    let (title, message_id) = match &ev.query {
        Query::MessageId(id) => (id.clone(), Some(id.clone())),
        Query::Subject(s) => (format!("subject containing {s:?}"), None),
        Query::Folder { mailbox, folder } => (format!("{folder} of {mailbox}"), None),
    };
    let mut lines = vec![note(
        "foldertrack never tracked such a mail, and no baseline of a mapped folder found it",
    )];
    if matches!(ev.query, Query::Subject(_)) {
        lines.push(note("the subject is kept for tracked mail only: ask for a mail that was there before tracking started by its Message-ID or its folder"));
    }
    for m in ev
        .mappings
        .iter()
        .filter(|m| m.state != MappingState::Active)
    {
        let mut s = Story::from_title("");
        paused(&mut s, m);
        lines.extend(s.lines.into_iter().map(|l| Line {
            what: format!("if it is in that folder of {}: {}", m.mailbox, l.what),
            ..l
        }));
    }
    for (mailbox, _) in settings.mailboxes.iter().filter(|(_, sent)| !sent) {
        lines.push(note(format!(
            "if {mailbox} sent it and it sits in Sent Items: Sent Items is not watched there (track_sent_items is off, R16)"
        )));
    }
    lines.push(note(
        "if it sits in a folder that is not mapped: only mapped folders are tracked (R2)",
    ));
    lines.push(note(
        "if it was moved in after the last sync: `foldertrack sync-now <ADDRESS>` looks now (R38)",
    ));
    Story {
        outcome: Outcome::NotSeen,
        message_id,
        lines,
        fix: Some("move the mail into a mapped folder (it is then tracked, R11), or ask with --mailbox and --folder for the folder it sits in".to_owned()),
        rules: rules(rules_of(Outcome::NotSeen)),
        ..Story::from_title(&title)
    }
}

impl Story {
    fn from_title(title: &str) -> Self {
        Self {
            outcome: Outcome::NotSeen,
            title: title.to_owned(),
            id: None,
            message_id: None,
            subject: None,
            regarding: None,
            rules: Vec::new(),
            lines: Vec::new(),
            fix: None,
        }
    }
}

impl Explanation {
    /// Plain text for a terminal: each story, its lines, its fix; a blank line between stories.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for (n, s) in self.stories.iter().enumerate() {
            if n > 0 {
                out.push('\n');
            }
            out += &format!("{}: {}\n", s.title, s.outcome.words());
            if let Some(subject) = &s.subject {
                out += &format!("  subject: {subject}\n");
            }
            for l in &s.lines {
                match l.at {
                    Some(at) => {
                        out += &format!("  {} {}\n", at.strftime("%Y-%m-%d %H:%M:%SZ"), l.what)
                    }
                    None => out += &format!("  {}\n", l.what),
                }
            }
            if let Some(fix) = &s.fix {
                out += &format!("  fix: {fix}\n");
            }
            out += &format!("  rules: {}\n", s.rules.join(", "));
        }
        out
    }
}

impl Outcome {
    /// The outcome in words, as `explain` prints it.
    pub fn words(self) -> &'static str {
        match self {
            Outcome::Delivered => "tracked and delivered",
            Outcome::NoRegarding => "tracked without a regarding",
            Outcome::Waiting => "tracked, waiting for delivery",
            Outcome::Retrying => "tracked, delivery failed and is retried",
            Outcome::Held => "tracked, waiting for its regarding record",
            Outcome::Undeliverable => "tracked, undeliverable",
            Outcome::Rejected => "tracked, rejected by the sink",
            Outcome::Baseline => "not tracked: it was there before tracking started",
            Outcome::NotMapped => "not tracked: the folder is not mapped",
            Outcome::MappingPaused => "not tracked: the mapping is not active",
            Outcome::SentNotTracked => "not tracked: Sent Items is not watched",
            Outcome::NotSeen => "not tracked: never seen in a mapped folder",
            Outcome::Watched => "a mapped folder",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_is_one_of_three_and_says_what_to_give_otherwise() {
        let s = |v: &str| Some(v.to_owned());
        let ok = [
            (
                Query::from_parts(s(" m1@Example.com "), None, None, None),
                Query::MessageId("<m1@example.com>".into()),
            ),
            (
                Query::from_parts(None, s(" Quote "), None, None),
                Query::Subject("Quote".into()),
            ),
            (
                Query::from_parts(None, None, s("a@x"), s("/Inbox/C/")),
                Query::Folder {
                    mailbox: "a@x".into(),
                    folder: "Inbox/C".into(),
                },
            ),
        ];
        for (got, want) in ok {
            assert_eq!(got.unwrap(), want);
        }
        let refused = [
            (Query::from_parts(None, None, None, None), "one of them"),
            (Query::from_parts(s("<>"), None, None, None), "is empty"),
            (Query::from_parts(None, s("  "), None, None), "one of them"),
            (
                Query::from_parts(None, None, s("a@x"), None),
                "needs a folder",
            ),
            (
                Query::from_parts(None, None, None, s("Inbox")),
                "needs its mailbox",
            ),
            (
                Query::from_parts(s("<m@x>"), s("q"), None, None),
                "one of them",
            ),
        ];
        for (got, words) in refused {
            let e = got.unwrap_err();
            assert!(e.contains(words) && !e.contains('\n'), "{e}");
        }
    }
}
