//! EWS streaming notifications, as hints: a subscription per mailbox on its watched folders,
//! and GetStreamingEvents connections that say *which subscription saw a change* — never what
//! changed; the watcher's sync pass finds that out (ews-protocol §3.6).

use super::Error;
use crate::client::{self, Affinity, EwsClient};
use crate::ews::get_streaming_events::{ConnectionStatus, GetStreamingEvents};
use crate::ews::notification::{EventKind, StreamSplitter};
use crate::ews::subscribe::{Mode, Subscribe};
use crate::ews::unsubscribe::Unsubscribe;
use crate::ews::{
    self, FolderId, FolderRef, FolderSelector, Mailbox, ResponseCode, SubscriptionId,
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

/// A new subscription and the affinity cookie the server set with it, if it did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscribed {
    pub id: String,
    pub cookie: Option<String>,
}

/// What one envelope of a streaming connection said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamEvent {
    /// These subscriptions saw changes.
    Changed(Vec<String>),
    /// The server refused the connection's subscriptions (expired, not found, events missed).
    Lost(ResponseCode),
    /// A keep-alive.
    Alive,
    /// The server ends the connection (its timeout): open a new one.
    Closed,
}

/// Subscribe / GetStreamingEvents / Unsubscribe over an [`EwsClient`].
#[derive(Clone, Debug)]
pub struct EwsStreaming {
    client: EwsClient,
}

impl EwsStreaming {
    pub fn new(client: EwsClient) -> Self {
        Self { client }
    }

    /// A streaming subscription on `folders` of `mailbox`, made with the group's affinity.
    pub async fn subscribe(
        &self,
        mailbox: &str,
        folders: &[String],
        affinity: &Affinity,
    ) -> Result<Subscribed, Error> {
        let op = Subscribe {
            mode: Mode::Streaming,
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
        let (response, cookie) = self
            .client
            .send_affine(&Mailbox(mailbox.to_owned()), &op, Some(affinity))
            .await?;
        let message = response
            .messages
            .into_iter()
            .next()
            .ok_or_else(|| incomplete(mailbox, "no response message"))?
            .map_err(|e| refused("Subscribe", mailbox, &e))?;
        let id = message
            .subscription_id
            .ok_or_else(|| incomplete(mailbox, "no SubscriptionId"))?;
        Ok(Subscribed { id: id.0, cookie })
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

fn incomplete(mailbox: &str, what: &str) -> Error {
    Error::Incomplete {
        operation: "Subscribe",
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
    let changed: Vec<String> = m
        .notifications
        .iter()
        .filter(|n| n.events.iter().any(|e| e.kind != EventKind::Status))
        .filter_map(|n| n.subscription_id.as_ref().map(|s| s.0.clone()))
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
