//! Subscribe: ask for notifications on a mailbox's folders (pull or streaming). Events only
//! trigger syncs; the change feed stays SyncFolderItems.
//! <https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/subscribe-operation>

use super::folder::{read_selectors, write_selectors};
use super::ids::{FolderSelector, SubscriptionId, Watermark};
use super::notification::EventKind;
use super::xml::{Element, XmlReader, XmlWriter};
use super::{Error, Operation};
use serde::Serialize;

/// How events are fetched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Mode {
    /// GetEvents polls; the subscription lapses after `timeout_minutes` (1–1440) unpolled.
    Pull {
        watermark: Option<Watermark>,
        timeout_minutes: u32,
    },
    /// GetStreamingEvents holds a connection open.
    Streaming,
    /// The server posts to `url` (read for `ews decode`; foldertrack does not push).
    Push { url: String, status_frequency: u32 },
}

/// `m:Subscribe`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Subscribe {
    pub mode: Mode,
    /// Empty with `all_folders`.
    pub folders: Vec<FolderSelector>,
    pub all_folders: bool,
    pub events: Vec<EventKind>,
}

/// One `m:SubscribeResponseMessage`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SubscribeMessage {
    pub subscription_id: Option<SubscriptionId>,
    pub watermark: Option<Watermark>,
}

impl Operation for Subscribe {
    const NAME: &'static str = "Subscribe";
    type Message = SubscribeMessage;

    fn write_body(&self, w: &mut XmlWriter) {
        let name = match self.mode {
            Mode::Pull { .. } => "m:PullSubscriptionRequest",
            Mode::Streaming => "m:StreamingSubscriptionRequest",
            Mode::Push { .. } => "m:PushSubscriptionRequest",
        };
        w.element("m:Subscribe").open();
        let mut e = w.element(name);
        if self.all_folders {
            e = e.attr("SubscribeToAllFolders", "true");
        }
        e.open();
        if !self.all_folders {
            write_selectors(w, "t:FolderIds", &self.folders);
        }
        w.element("t:EventTypes").open();
        for kind in &self.events {
            w.leaf("t:EventType", kind.as_str());
        }
        w.close("t:EventTypes");
        match &self.mode {
            Mode::Pull {
                watermark,
                timeout_minutes,
            } => {
                if let Some(wm) = watermark {
                    w.leaf("t:Watermark", wm.as_str());
                }
                w.leaf("t:Timeout", &timeout_minutes.to_string());
            }
            Mode::Streaming => {}
            Mode::Push {
                url,
                status_frequency,
            } => {
                w.leaf("t:StatusFrequency", &status_frequency.to_string());
                w.leaf("t:URL", url);
            }
        }
        w.close(name);
        w.close("m:Subscribe");
    }

    fn read_body<'i>(r: &mut XmlReader<'i>, el: &Element<'i>) -> Result<Self, Error> {
        let request = r
            .next_child(el)?
            .ok_or_else(|| r.error("an empty Subscribe; expected a subscription request"))?;
        let mut op = Subscribe {
            mode: Mode::Streaming,
            folders: Vec::new(),
            all_folders: request.attr("SubscribeToAllFolders").as_deref() == Some("true"),
            events: Vec::new(),
        };
        let (mut watermark, mut timeout, mut url, mut frequency) = (None, 30, String::new(), 1);
        while let Some(child) = r.next_child(&request)? {
            match child.name() {
                "FolderIds" => op.folders = read_selectors(r, &child)?,
                "EventTypes" => {
                    while let Some(t) = r.next_child(&child)? {
                        let name = r.trimmed(&t)?;
                        op.events.push(
                            EventKind::parse(&name)
                                .ok_or_else(|| r.error(&format!("unknown event type {name:?}")))?,
                        );
                    }
                }
                "Watermark" => watermark = Some(Watermark(r.trimmed(&child)?)),
                "Timeout" => timeout = r.number(&child)?,
                "StatusFrequency" => frequency = r.number(&child)?,
                "URL" => url = r.trimmed(&child)?,
                _ => r.skip(&child)?,
            }
        }
        op.mode = match request.name() {
            "PullSubscriptionRequest" => Mode::Pull {
                watermark,
                timeout_minutes: timeout,
            },
            "PushSubscriptionRequest" => Mode::Push {
                url,
                status_frequency: frequency,
            },
            _ => Mode::Streaming,
        };
        while let Some(rest) = r.next_child(el)? {
            r.skip(&rest)?;
        }
        Ok(op)
    }

    fn read_field<'i>(
        r: &mut XmlReader<'i>,
        el: &Element<'i>,
        m: &mut SubscribeMessage,
    ) -> Result<bool, Error> {
        match el.name() {
            "SubscriptionId" => m.subscription_id = Some(SubscriptionId(r.trimmed(el)?)),
            "Watermark" => m.watermark = Some(Watermark(r.trimmed(el)?)),
            _ => return Ok(false),
        }
        Ok(true)
    }
}
