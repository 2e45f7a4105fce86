//! Problem items (R30, R32, R33, R41): requests that failed at least once — retrying ones still
//! in the outbox, undeliverable and rejected ones in the dead letters — and items Exchange could
//! not read, as `foldertrack items` and the admin API list them; and `retry`, which re-queues
//! the dead ones.

use crate::store::{self, Store};

/// The states `foldertrack items` can filter on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemState {
    /// Failed at least once, waiting for the next attempt.
    Retrying,
    /// Out of attempts (`retry` re-queues it).
    Undeliverable,
    /// Refused for good by the sink.
    Rejected,
    /// Appeared in a watched folder but could not be read from Exchange; tried again on every
    /// pass until it is read or gone (R33).
    Unreadable,
}

impl ItemState {
    pub const ALL: [ItemState; 4] = [
        Self::Retrying,
        Self::Undeliverable,
        Self::Rejected,
        Self::Unreadable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Retrying => "retrying",
            Self::Undeliverable => "undeliverable",
            Self::Rejected => "rejected",
            Self::Unreadable => "unreadable",
        }
    }
}

impl std::fmt::Display for ItemState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ItemState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("{s:?}: choose retrying, undeliverable, rejected or unreadable"))
    }
}

/// One problem item, as `foldertrack items` and the admin API show it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ItemLine {
    pub state: ItemState,
    pub id: String,
    pub event_id: String,
    pub mailbox: String,
    pub folder: String,
    pub attempts: u32,
    pub reason: String,
    /// When it failed last (retrying: when the next attempt is due).
    pub at: Option<jiff::Timestamp>,
    /// For `retry`: the later event of the same message that is already in the sink, so this
    /// one is not sent again — it would undo the later one (R21).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<String>,
    /// The mail's subject and Message-ID, for finding it (absent for unreadable items).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internet_message_id: Option<String>,
    /// Outbox or dead-letter sequence: what `retry` re-queues.
    #[serde(skip)]
    pub seq: u64,
    /// The event's place among its message's events.
    #[serde(skip)]
    pub sequence: u32,
}

impl ItemLine {
    /// Whether `query` (case-insensitive) is its mailbox, part of its subject, its Message-ID
    /// (brackets optional) or its request or event id.
    pub fn matches(&self, query: &str) -> bool {
        let q = query.trim().trim_start_matches('<').trim_end_matches('>');
        let has = |field: &str| field.to_lowercase().contains(&q.to_lowercase());
        q.is_empty()
            || self.mailbox.eq_ignore_ascii_case(q)
            || self.subject.as_deref().is_some_and(has)
            || self.internet_message_id.as_deref().is_some_and(has)
            || self.id == q
            || self.event_id == q
    }
}

/// Items that failed at least once, oldest first: retrying ones from the outbox, undeliverable
/// and rejected ones from the dead letters.
pub fn problem_items<S: Store>(
    store: &S,
    state: Option<ItemState>,
) -> Result<Vec<ItemLine>, store::Error> {
    let mut out = Vec::new();
    if state.is_none_or(|s| s == ItemState::Retrying) {
        for (seq, e) in store.outbox(usize::MAX)? {
            if e.attempts > 0 {
                out.push(ItemLine {
                    state: ItemState::Retrying,
                    id: e.request.id.clone(),
                    event_id: e.request.event_id.clone(),
                    mailbox: e.request.mailbox.clone(),
                    folder: e.request.folder.path.clone(),
                    attempts: e.attempts,
                    reason: e.last_error.unwrap_or_default(),
                    at: e.next_try,
                    superseded_by: None,
                    subject: e.request.message.subject.clone(),
                    internet_message_id: e.request.message.internet_message_id.clone(),
                    seq,
                    sequence: e.request.sequence,
                });
            }
        }
    }
    if state.is_none_or(|s| s == ItemState::Unreadable) {
        out.extend(store.pending(usize::MAX)?.into_iter().map(unreadable_line));
    }
    for (seq, d) in store.dead(usize::MAX)? {
        let s = match d.state {
            store::Failed::Undeliverable => ItemState::Undeliverable,
            store::Failed::Rejected => ItemState::Rejected,
        };
        if state.is_none_or(|wanted| wanted == s) {
            out.push(ItemLine {
                state: s,
                id: d.request.id,
                event_id: d.request.event_id,
                mailbox: d.request.mailbox,
                folder: d.request.folder.path,
                attempts: d.attempts,
                reason: d.reason,
                at: Some(d.at),
                superseded_by: None,
                subject: d.request.message.subject,
                internet_message_id: d.request.message.internet_message_id,
                seq,
                sequence: d.request.sequence,
            });
        }
    }
    Ok(out)
}

/// An item Exchange could not read: no request exists yet, so it is named by its ItemId.
fn unreadable_line(p: store::PendingItem) -> ItemLine {
    ItemLine {
        state: ItemState::Unreadable,
        id: p.item_id,
        event_id: String::new(),
        mailbox: p.mailbox,
        folder: p.path,
        attempts: p.attempts,
        reason: format!(
            "{} (since {})",
            p.error,
            p.first_at.strftime("%Y-%m-%d %H:%M:%S")
        ),
        at: Some(p.last_at),
        superseded_by: None,
        subject: None,
        internet_message_id: None,
        seq: 0,
        sequence: 0,
    }
}

/// Re-queues undeliverable and rejected items, filtered by mailbox and time; with `dry_run`
/// only says which (R30). An item whose message has a later event in the sink is not sent
/// again: it comes back with `superseded_by` naming that event (R21).
pub async fn retry<S: Store>(
    store: &S,
    mailbox: Option<&str>,
    since: Option<jiff::Timestamp>,
    dry_run: bool,
) -> Result<Vec<ItemLine>, store::Error> {
    retry_chosen(store, &of(mailbox, since), dry_run).await
}

/// `retry`'s filter: the items of `mailbox` that failed at or after `since` (each when given).
pub fn of(
    mailbox: Option<&str>,
    since: Option<jiff::Timestamp>,
) -> impl Fn(&ItemLine) -> bool + Sync {
    move |i| {
        mailbox.is_none_or(|m| i.mailbox.eq_ignore_ascii_case(m))
            && since.is_none_or(|t| i.at.is_some_and(|at| at >= t))
    }
}

/// [`retry`] of the undeliverable and rejected items `chosen` picks (the console's search).
pub async fn retry_chosen<S: Store>(
    store: &S,
    chosen: &(dyn Fn(&ItemLine) -> bool + Sync),
    dry_run: bool,
) -> Result<Vec<ItemLine>, store::Error> {
    let mut chosen: Vec<ItemLine> = problem_items(store, None)?
        .into_iter()
        .filter(|i| matches!(i.state, ItemState::Undeliverable | ItemState::Rejected))
        .filter(|i| chosen(i))
        .collect();
    for item in &mut chosen {
        if let Some(record) = store.message(&item.id)?
            && record.superseded(item.sequence)
        {
            item.superseded_by = Some(format!("{}.{}", item.id, record.delivered));
        }
    }
    if !dry_run {
        let seqs: Vec<u64> = chosen.iter().map(|i| i.seq).collect();
        let done = store.requeue(&seqs).await?;
        for item in &mut chosen {
            if !done.superseded.contains(&item.seq) {
                item.superseded_by = None;
            } else if item.superseded_by.is_none() {
                item.superseded_by = Some("a later event".into());
            }
        }
    }
    Ok(chosen)
}
