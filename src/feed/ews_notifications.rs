//! EWS notifications, as hints: a subscription per mailbox on its watched folders, and either
//! GetStreamingEvents connections or GetEvents reads (pull) that say *which subscription saw a
//! change*, and whether a mail or a folder changed where — never what changed; the watcher's
//! sync pass finds that out (ews-protocol §3.6).

use super::Error;
use crate::client::{self, Affinity, EwsClient};
use crate::ews::get_events::GetEvents;
use crate::ews::get_streaming_events::{ConnectionStatus, GetStreamingEvents};
use crate::ews::notification::{EventKind, StreamSplitter};
use crate::ews::subscribe::{Mode, Subscribe};
use crate::ews::unsubscribe::Unsubscribe;
use crate::ews::{
    self, FolderId, FolderRef, FolderSelector, Mailbox, ResponseCode, SubscriptionId, Watermark,
};
use std::collections::VecDeque;
use std::time::Duration;

/// The events that can change what a watched folder holds or how a tracked mail looks.
const EVENTS: [EventKind; 6] = [
    EventKind::Created,
    EventKind::NewMail,
    EventKind::Moved,
    EventKind::Copied,
    EventKind::Deleted,
    EventKind::Modified,
];

/// A new subscription, the affinity cookie the server set with it, if it did, and (pull) the
/// watermark its events are read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscribed {
    pub id: String,
    pub cookie: Option<String>,
    pub watermark: Option<String>,
}

/// One event, reduced to what decides the hint: its kind, the folder it is about (`None`
/// for a mail) and the folder that holds the object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub subscription: String,
    pub kind: EventKind,
    pub folder: Option<String>,
    pub parent: Option<String>,
}

impl Change {
    fn of(subscription: &str, e: &crate::ews::notification::Event) -> Self {
        Self {
            subscription: subscription.to_owned(),
            kind: e.kind,
            folder: e.folder_id.as_ref().map(|f| f.id.0.clone()),
            parent: e.parent_folder_id.as_ref().map(|f| f.id.0.clone()),
        }
    }
}

/// The changes a notification carries (status events are not changes).
fn changes(n: &crate::ews::notification::Notification, subscription: &str) -> Vec<Change> {
    let id = n
        .subscription_id
        .as_ref()
        .map_or(subscription, |s| s.0.as_str());
    (n.events.iter())
        .filter(|e| e.kind != EventKind::Status)
        .map(|e| Change::of(id, e))
        .collect()
}

/// What one read of a pull subscription said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pulled {
    /// What the subscription saw.
    pub changes: Vec<Change>,
    /// Where the next read starts.
    pub watermark: String,
    /// More events are waiting: read again at once.
    pub more: bool,
}

/// What one envelope of a streaming connection said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamEvent {
    /// Subscriptions saw these changes.
    Changed(Vec<Change>),
    /// The server refused the connection's subscriptions (expired, not found, events missed).
    Lost(ResponseCode),
    /// A keep-alive.
    Alive,
    /// The server ends the connection (its timeout): open a new one.
    Closed,
}

/// Subscribe / GetStreamingEvents / GetEvents / Unsubscribe over an [`EwsClient`].
#[derive(Clone, Debug)]
pub struct EwsNotifications {
    client: EwsClient,
}

impl EwsNotifications {
    pub fn new(client: EwsClient) -> Self {
        Self { client }
    }

    /// A streaming or pull subscription on `folders` of `mailbox`, made with the group's
    /// affinity.
    pub async fn subscribe(
        &self,
        mailbox: &str,
        folders: &[String],
        affinity: &Affinity,
        mode: Mode,
    ) -> Result<Subscribed, Error> {
        let pull = matches!(mode, Mode::Pull { .. });
        let op = Subscribe {
            mode,
            folders: folders
                .iter()
                .map(|f| {
                    FolderSelector::Id(FolderRef {
                        id: FolderId::from(f.as_str()),
                        change_key: None,
                    })
                })
                .collect(),
            all_folders: false,
            events: EVENTS.to_vec(),
        };
        let (message, cookie) = self.call(mailbox, &op, affinity).await?;
        let id = message
            .subscription_id
            .ok_or_else(|| incomplete("Subscribe", mailbox, "no SubscriptionId"))?;
        if pull && message.watermark.is_none() {
            return Err(incomplete("Subscribe", mailbox, "no Watermark"));
        }
        Ok(Subscribed {
            id: id.0,
            cookie,
            watermark: message.watermark.map(|w| w.0),
        })
    }

    /// Sends `op` on `mailbox` with the group's affinity: its one response message (or the
    /// error that message carries) and the affinity cookie the server set, if it did.
    async fn call<O: ews::Operation>(
        &self,
        mailbox: &str,
        op: &O,
        affinity: &Affinity,
    ) -> Result<(O::Message, Option<String>), Error> {
        let (response, cookie) = self
            .client
            .send_affine(&Mailbox(mailbox.to_owned()), op, Some(affinity))
            .await?;
        let message = response
            .messages
            .into_iter()
            .next()
            .ok_or_else(|| incomplete(O::NAME, mailbox, "no response message"))?
            .map_err(|e| refused(O::NAME, mailbox, &e))?;
        Ok((message, cookie))
    }

    /// Reads a pull subscription's events after `watermark` (which also keeps it alive).
    pub async fn pull(
        &self,
        mailbox: &str,
        id: &str,
        watermark: &str,
        affinity: &Affinity,
    ) -> Result<Pulled, Error> {
        let op = GetEvents {
            subscription_id: SubscriptionId(id.to_owned()),
            watermark: Watermark(watermark.to_owned()),
        };
        let (message, _) = self.call(mailbox, &op, affinity).await?;
        let n = message
            .notification
            .ok_or_else(|| incomplete("GetEvents", mailbox, "no Notification"))?;
        // Each event carries the watermark after it; a status event the one after the last.
        let watermark = n
            .events
            .iter()
            .rev()
            .find_map(|e| e.watermark.clone())
            .or(n.previous_watermark.clone())
            .map_or_else(|| watermark.to_owned(), |w| w.0);
        Ok(Pulled {
            changes: changes(&n, id),
            watermark,
            more: n.more_events,
        })
    }

    /// Ends a subscription; one that already lapsed is fine.
    pub async fn unsubscribe(&self, mailbox: &str, id: &str) -> Result<(), Error> {
        let op = Unsubscribe {
            subscription_id: SubscriptionId(id.to_owned()),
        };
        self.client.send(&Mailbox(mailbox.to_owned()), &op).await?;
        Ok(())
    }

    /// Opens a GetStreamingEvents connection for `ids`, held by the server for `minutes`.
    pub async fn open(
        &self,
        ids: &[String],
        affinity: &Affinity,
        minutes: u32,
    ) -> Result<EventStream, Error> {
        let op = GetStreamingEvents {
            subscription_ids: ids.iter().map(|i| SubscriptionId(i.clone())).collect(),
            connection_timeout: minutes,
        };
        // The server closes at its timeout; a connection still open a minute later is dead.
        let timeout = Duration::from_secs(u64::from(minutes) * 60 + 60);
        let response = self.client.open_stream(affinity, &op, timeout).await?;
        Ok(EventStream {
            response,
            splitter: StreamSplitter::new(),
            pending: VecDeque::new(),
            call: client::Call {
                mailbox: affinity.anchor.clone(),
                operation: "GetStreamingEvents",
            },
        })
    }
}

fn incomplete(operation: &'static str, mailbox: &str, what: &str) -> Error {
    Error::Incomplete {
        operation,
        mailbox: mailbox.to_owned(),
        what: what.to_owned(),
    }
}

fn refused(operation: &'static str, mailbox: &str, e: &ews::ResponseError) -> Error {
    Error::Refused {
        operation,
        mailbox: mailbox.to_owned(),
        code: e.code.clone(),
        text: e.text.clone(),
        action: client::action(&client::Outcome::from_message(e)),
    }
}

/// An open streaming connection, read envelope by envelope as the server writes them.
pub struct EventStream {
    response: reqwest::Response,
    splitter: StreamSplitter,
    pending: VecDeque<StreamEvent>,
    call: client::Call,
}

impl EventStream {
    /// The next thing the server said; `None` when the connection ended.
    pub async fn next(&mut self) -> Result<Option<StreamEvent>, Error> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Ok(Some(e));
            }
            let chunk = self
                .response
                .chunk()
                .await
                .map_err(|e| client::Error::transport(&self.call, e))?;
            let Some(chunk) = chunk else {
                return Ok(None);
            };
            for doc in self.splitter.push(&chunk) {
                self.read(&doc)?;
            }
        }
    }

    fn read(&mut self, doc: &str) -> Result<(), Error> {
        let response =
            ews::read_response::<GetStreamingEvents>(doc).map_err(|e| Error::Incomplete {
                operation: "GetStreamingEvents",
                mailbox: self.call.mailbox.to_string(),
                what: format!("an unreadable envelope: {e}"),
            })?;
        for message in response.messages {
            self.pending.extend(events(message));
        }
        Ok(())
    }
}

/// What one response message says, in order: changes, then the connection's status.
fn events(
    message: Result<ews::get_streaming_events::GetStreamingEventsMessage, ews::ResponseError>,
) -> Vec<StreamEvent> {
    let m = match message {
        Ok(m) => m,
        Err(e) => return vec![StreamEvent::Lost(e.code)],
    };
    let mut out = Vec::new();
    let changed: Vec<Change> = (m.notifications.iter())
        .filter_map(|n| Some(changes(n, &n.subscription_id.as_ref()?.0)))
        .flatten()
        .collect();
    if !changed.is_empty() {
        out.push(StreamEvent::Changed(changed));
    }
    if !m.error_subscription_ids.is_empty() {
        out.push(StreamEvent::Lost(ResponseCode::ErrorSubscriptionNotFound));
    }
    match m.connection_status {
        Some(ConnectionStatus::Closed) => out.push(StreamEvent::Closed),
        Some(ConnectionStatus::Ok) => out.push(StreamEvent::Alive),
        None => {}
    }
    out
}
