//! Notifications: the events GetEvents and GetStreamingEvents carry, and the splitter that cuts a
//! streaming response — several complete SOAP envelopes on one chunked body — into documents.
//! Events only say *that* something changed; SyncFolderItems says *what*.
//! <https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/notification-ex15websvcsmessagesref>

use super::Error;
use super::folder::read_folder_ref;
use super::ids::{FolderRef, ItemRef, SubscriptionId, Watermark};
use super::item::read_item_ref;
use super::xml::{Element, XmlReader};
use serde::Serialize;

/// One `Notification` (servers send it in the messages namespace, the schema says types: both
/// are read).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Notification {
    pub subscription_id: Option<SubscriptionId>,
    pub previous_watermark: Option<Watermark>,
    pub more_events: bool,
    pub events: Vec<Event>,
}

/// An event's kind: the element name without `Event`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum EventKind {
    Copied,
    Created,
    Deleted,
    Modified,
    Moved,
    NewMail,
    FreeBusyChanged,
    Status,
}

impl EventKind {
    pub const ALL: [Self; 8] = [
        Self::Copied,
        Self::Created,
        Self::Deleted,
        Self::Modified,
        Self::Moved,
        Self::NewMail,
        Self::FreeBusyChanged,
        Self::Status,
    ];

    /// The wire name, e.g. `CreatedEvent`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Copied => "CopiedEvent",
            Self::Created => "CreatedEvent",
            Self::Deleted => "DeletedEvent",
            Self::Modified => "ModifiedEvent",
            Self::Moved => "MovedEvent",
            Self::NewMail => "NewMailEvent",
            Self::FreeBusyChanged => "FreeBusyChangedEvent",
            Self::Status => "StatusEvent",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s.trim())
    }
}

/// One event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Event {
    pub kind: EventKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watermark: Option<Watermark>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item_id: Option<ItemRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub folder_id: Option<FolderRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_folder_id: Option<FolderRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_item_id: Option<ItemRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_folder_id: Option<FolderRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_parent_folder_id: Option<FolderRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unread_count: Option<u32>,
}

impl Notification {
    pub fn read(r: &mut XmlReader<'_>, el: &Element<'_>) -> Result<Self, Error> {
        let mut n = Notification::default();
        while let Some(child) = r.next_child(el)? {
            match child.name() {
                "SubscriptionId" => n.subscription_id = Some(SubscriptionId(r.trimmed(&child)?)),
                "PreviousWatermark" => n.previous_watermark = Some(Watermark(r.trimmed(&child)?)),
                "MoreEvents" => n.more_events = r.bool(&child)?,
                name => match EventKind::parse(name) {
                    Some(kind) => n.events.push(read_event(r, &child, kind)?),
                    None => r.skip(&child)?,
                },
            }
        }
        Ok(n)
    }
}

fn read_event(r: &mut XmlReader<'_>, el: &Element<'_>, kind: EventKind) -> Result<Event, Error> {
    let mut e = Event {
        kind,
        watermark: None,
        timestamp: None,
        item_id: None,
        folder_id: None,
        parent_folder_id: None,
        old_item_id: None,
        old_folder_id: None,
        old_parent_folder_id: None,
        unread_count: None,
    };
    while let Some(child) = r.next_child(el)? {
        match child.name() {
            "Watermark" => e.watermark = Some(Watermark(r.trimmed(&child)?)),
            "TimeStamp" => e.timestamp = Some(r.trimmed(&child)?),
            "ItemId" => e.item_id = Some(read_item_ref(r, &child)?),
            "FolderId" => e.folder_id = Some(read_folder_ref(r, &child)?),
            "ParentFolderId" => e.parent_folder_id = Some(read_folder_ref(r, &child)?),
            "OldItemId" => e.old_item_id = Some(read_item_ref(r, &child)?),
            "OldFolderId" => e.old_folder_id = Some(read_folder_ref(r, &child)?),
            "OldParentFolderId" => e.old_parent_folder_id = Some(read_folder_ref(r, &child)?),
            "UnreadCount" => e.unread_count = Some(r.number(&child)?),
            _ => r.skip(&child)?,
        }
    }
    Ok(e)
}

/// Cuts a stream of concatenated XML documents into whole documents as bytes arrive: a document
/// ends when element depth returns to zero — never found by searching for a closing tag, which
/// could also appear inside text, an attribute, a comment or CDATA. Bytes are kept until their
/// document is complete, so chunks may split tags and multi-byte characters anywhere.
#[derive(Debug, Default)]
pub struct StreamSplitter {
    buf: Vec<u8>,
    pos: usize,
    state: Scan,
    doc_start: Option<usize>,
    tag_start: usize,
    depth: usize,
}

#[derive(Debug, Default, Clone, Copy)]
enum Scan {
    #[default]
    Text,
    /// Inside `<…>`, possibly inside a quoted attribute value.
    Tag { quote: Option<u8> },
    /// Inside a comment, CDATA section or processing instruction, until this terminator.
    Until(&'static [u8]),
}

impl StreamSplitter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes; returns every document they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        let len = self.buf.len();
        while self.pos < len {
            let rest = &self.buf[self.pos..];
            match self.state {
                Scan::Text if rest[0] == b'<' => {
                    let (state, skip) = match rest.get(1) {
                        None => break,
                        Some(b'?') => (Scan::Until(b"?>"), 2),
                        Some(b'!') if rest.len() < 4 => break,
                        Some(b'!') if rest.starts_with(b"<!--") => (Scan::Until(b"-->"), 4),
                        Some(b'!') if rest.len() < 9 => break,
                        Some(b'!') if rest.starts_with(b"<![CDATA[") => (Scan::Until(b"]]>"), 9),
                        Some(_) => (Scan::Tag { quote: None }, 1),
                    };
                    self.doc_start.get_or_insert(self.pos);
                    self.tag_start = self.pos;
                    self.state = state;
                    self.pos += skip;
                }
                Scan::Text => self.pos += 1,
                Scan::Tag { quote: Some(q) } => {
                    if rest[0] == q {
                        self.state = Scan::Tag { quote: None };
                    }
                    self.pos += 1;
                }
                Scan::Tag { quote: None } => match rest[0] {
                    q @ (b'"' | b'\'') => {
                        self.state = Scan::Tag { quote: Some(q) };
                        self.pos += 1;
                    }
                    b'>' => {
                        self.pos += 1;
                        self.state = Scan::Text;
                        self.end_tag(&mut out);
                    }
                    _ => self.pos += 1,
                },
                Scan::Until(end) => {
                    if rest.starts_with(end) {
                        self.pos += end.len();
                        self.state = Scan::Text;
                    } else if rest.len() < end.len() {
                        break; // the terminator may be split across pushes
                    } else {
                        self.pos += 1;
                    }
                }
            }
        }
        // Keep only what an unfinished document still needs.
        let keep_from = self.doc_start.unwrap_or(self.pos);
        self.buf.drain(..keep_from);
        self.pos -= keep_from;
        self.tag_start = self.tag_start.saturating_sub(keep_from);
        if let Some(start) = &mut self.doc_start {
            *start -= keep_from;
        }
        out
    }

    fn end_tag(&mut self, out: &mut Vec<String>) {
        let tag = &self.buf[self.tag_start..self.pos];
        let closes = if tag.starts_with(b"</") {
            self.depth = self.depth.saturating_sub(1);
            true
        } else if tag.starts_with(b"<!") {
            false // a DOCTYPE
        } else if tag.ends_with(b"/>") {
            true
        } else {
            self.depth += 1;
            false
        };
        if closes
            && self.depth == 0
            && let Some(start) = self.doc_start.take()
        {
            out.push(String::from_utf8_lossy(&self.buf[start..self.pos]).into_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = concat!(
        "<?xml version=\"1.0\"?><a x=\"1 > 0\"><!-- </a> --><b>caf\u{e9} &amp; <![CDATA[</a>]]></b></a>\r\n",
        "<a><c/></a>",
        "<a/>"
    );

    fn split(chunks: &[&[u8]]) -> Vec<String> {
        let mut s = StreamSplitter::new();
        chunks.iter().flat_map(|c| s.push(c)).collect()
    }

    #[test]
    fn documents_are_cut_at_depth_zero_whatever_the_chunking() {
        let bytes = STREAM.as_bytes();
        let whole = split(&[bytes]);
        assert_eq!(whole.len(), 3, "{whole:?}");
        assert!(whole[0].starts_with("<?xml") && whole[0].ends_with("</b></a>"));
        assert_eq!(whole[1], "<a><c/></a>");
        assert_eq!(whole[2], "<a/>");
        let byte_by_byte: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(split(&byte_by_byte), whole);
        for size in [2, 3, 5, 7, 11, 13] {
            let chunks: Vec<&[u8]> = bytes.chunks(size).collect();
            assert_eq!(split(&chunks), whole, "chunks of {size}");
        }
    }

    #[test]
    fn an_unfinished_document_waits_for_more() {
        let mut s = StreamSplitter::new();
        assert!(s.push(b"<a><b>").is_empty());
        assert_eq!(s.push(b"</b></a><a>"), ["<a><b></b></a>"]);
        assert_eq!(s.push(b"</a>"), ["<a></a>"]);
    }
}
