//! One message as the simulator keeps it: its immutable envelope packed into a single byte
//! buffer (10,000 mailboxes × 5 folders × 100 messages must fit in well under 2 GiB), its
//! mutable state (read flag, categories, extended properties, version) beside it, and the body
//! shared behind an `Arc`. Owns the packing and the public views; never the folder logic.

use super::ids;
use crate::ews::item::{Body, ExtendedProperty};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// An address with an optional display name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Address {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub address: String,
}

impl Address {
    /// Reads `Name <a@b>` or a bare `a@b`.
    pub fn parse(text: &str) -> Self {
        let text = text.trim();
        match (text.rfind('<'), text.ends_with('>')) {
            (Some(open), true) => {
                let name = text[..open].trim().trim_matches('"').trim();
                Self {
                    name: (!name.is_empty()).then(|| name.to_owned()),
                    address: text[open + 1..text.len() - 1].trim().to_owned(),
                }
            }
            _ => Self {
                name: None,
                address: text.to_owned(),
            },
        }
    }
}

/// What a new message is made of (control API `deliver`, and CreateItem).
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct NewMessage {
    pub subject: String,
    /// `Name <address>` or a bare address.
    pub from: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    /// Generated (`<…@sim.foldertrack>`) when absent.
    pub internet_message_id: Option<String>,
    /// Generated when absent.
    pub conversation_id: Option<String>,
    /// RFC 3339; now when absent.
    pub sent: Option<String>,
    /// RFC 3339; now when absent.
    pub received: Option<String>,
    /// `Text` or `HTML`.
    pub body_type: Option<String>,
    pub body: Option<String>,
    pub categories: Vec<String>,
    /// Set by itself when `attachments` has any.
    pub has_attachments: bool,
    /// Files attached (GetItem lists them, GetAttachment returns them).
    pub attachments: Vec<NewAttachment>,
    pub is_read: bool,
    /// Bytes; estimated from the content when absent.
    pub size: Option<u32>,
}

/// A file attached to a new message.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct NewAttachment {
    pub name: String,
    pub content_type: String,
    /// The content, Base64.
    pub content: String,
}

/// The immutable part of a message in one allocation: numbers, then length-prefixed strings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packed(Box<[u8]>);

/// A borrowed view of [`Packed`].
pub struct Envelope<'a> {
    pub sent: i64,
    pub received: i64,
    pub size: u32,
    pub has_attachments: bool,
    pub internet_message_id: &'a str,
    pub conversation_id: &'a str,
    pub subject: &'a str,
    pub from: (Option<&'a str>, &'a str),
    pub to: Vec<(Option<&'a str>, &'a str)>,
    pub cc: Vec<(Option<&'a str>, &'a str)>,
}

impl Envelope<'_> {
    /// What the ConversationId derives from: the one given at delivery, else the
    /// InternetMessageId (stored once, not twice; stable across moves either way).
    pub fn conversation_key(&self) -> &str {
        if self.conversation_id.is_empty() {
            self.internet_message_id
        } else {
            self.conversation_id
        }
    }
}

/// The ConversationId EWS shows for a message.
pub fn conversation_id(e: &Envelope<'_>) -> String {
    ids::change_key(u64::from(fnv(e.conversation_key())), 1)
}

/// The PR_SEARCH_KEY value EWS shows for a message: stable across moves, derived from its
/// InternetMessageId.
pub fn search_key(internet_message_id: &str) -> String {
    ids::change_key(u64::from(fnv(internet_message_id)), 0)
}

/// 32-bit FNV-1a: a stable digest for the ids above.
fn fnv(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

const HEADER: usize = 8 + 8 + 4 + 1;

fn push_str(out: &mut Vec<u8>, s: &str) {
    let bytes = &s.as_bytes()[..s.len().min(usize::from(u16::MAX))];
    out.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn push_addresses(out: &mut Vec<u8>, list: &[Address]) {
    out.extend_from_slice(&(list.len().min(usize::from(u16::MAX)) as u16).to_le_bytes());
    for a in list.iter().take(usize::from(u16::MAX)) {
        push_str(out, a.name.as_deref().unwrap_or(""));
        push_str(out, &a.address);
    }
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn u16(&mut self) -> usize {
        let v = self
            .bytes
            .get(self.at..self.at + 2)
            .map_or(0, |b| u16::from_le_bytes([b[0], b[1]]));
        self.at += 2;
        usize::from(v)
    }

    fn str(&mut self) -> &'a str {
        let len = self.u16();
        let s = self
            .bytes
            .get(self.at..self.at + len)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or("");
        self.at += len;
        s
    }

    fn address(&mut self) -> (Option<&'a str>, &'a str) {
        let name = self.str();
        ((!name.is_empty()).then_some(name), self.str())
    }

    fn addresses(&mut self) -> Vec<(Option<&'a str>, &'a str)> {
        (0..self.u16()).map(|_| self.address()).collect()
    }
}

/// The fields [`Packed::new`] stores.
pub struct EnvelopeFields<'a> {
    pub sent: i64,
    pub received: i64,
    pub size: u32,
    pub has_attachments: bool,
    pub internet_message_id: &'a str,
    pub conversation_id: &'a str,
    pub subject: &'a str,
    pub from: &'a Address,
    pub to: &'a [Address],
    pub cc: &'a [Address],
}

impl Packed {
    pub fn new(f: &EnvelopeFields<'_>) -> Self {
        let mut out = Vec::with_capacity(
            HEADER + f.internet_message_id.len() + f.subject.len() + f.from.address.len() + 64,
        );
        out.extend_from_slice(&f.sent.to_le_bytes());
        out.extend_from_slice(&f.received.to_le_bytes());
        out.extend_from_slice(&f.size.to_le_bytes());
        out.push(u8::from(f.has_attachments));
        push_str(&mut out, f.internet_message_id);
        push_str(&mut out, f.conversation_id);
        push_str(&mut out, f.subject);
        push_addresses(&mut out, std::slice::from_ref(f.from));
        push_addresses(&mut out, f.to);
        push_addresses(&mut out, f.cc);
        Self(out.into_boxed_slice())
    }

    pub fn read(&self) -> Envelope<'_> {
        let b = &self.0;
        let num = |at: usize| {
            b.get(at..at + 8)
                .and_then(|s| s.try_into().ok())
                .map_or(0, i64::from_le_bytes)
        };
        let size = b
            .get(16..20)
            .and_then(|s| s.try_into().ok())
            .map_or(0, u32::from_le_bytes);
        let mut c = Cursor {
            bytes: b,
            at: HEADER,
        };
        let internet_message_id = c.str();
        let conversation_id = c.str();
        let subject = c.str();
        let from = c.addresses().into_iter().next().unwrap_or((None, ""));
        Envelope {
            sent: num(0),
            received: num(8),
            size,
            has_attachments: b.get(20) == Some(&1),
            internet_message_id,
            conversation_id,
            subject,
            from,
            to: c.addresses(),
            cc: c.addresses(),
        }
    }
}

impl Serialize for Packed {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Packed {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD
            .decode(text)
            .map(|b| Self(b.into_boxed_slice()))
            .map_err(serde::de::Error::custom)
    }
}

/// Categories, extended properties and the flags a client may set: most messages have none,
/// so they cost one pointer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extras {
    pub categories: Vec<String>,
    pub extended: Vec<ExtendedProperty>,
    /// `Low`, `Normal` or `High`; `None` is `Normal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub importance: Option<String>,
    /// `Normal`, `Personal`, `Private` or `Confidential`; `None` is `Normal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensitivity: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<NewAttachment>,
}

impl Extras {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// A message in a folder.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Message {
    pub envelope: Packed,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Arc<Body>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extras: Option<Box<Extras>>,
    /// When it entered this folder (delivered, created or moved in).
    pub created_seq: u64,
    /// Its last change other than the read flag.
    pub content_seq: u64,
    /// Its last read-flag change.
    pub read_seq: u64,
    /// Bumped on every change: the ChangeKey.
    pub version: u32,
    pub is_read: bool,
    /// The item number it got when it was created, kept across moves: its Graph immutable id.
    #[serde(default)]
    pub origin: u64,
}

impl Message {
    pub fn categories(&self) -> &[String] {
        self.extras.as_deref().map_or(&[], |e| &e.categories)
    }

    pub fn extended(&self) -> &[ExtendedProperty] {
        self.extras.as_deref().map_or(&[], |e| &e.extended)
    }

    pub fn attachments(&self) -> &[NewAttachment] {
        self.extras.as_deref().map_or(&[], |e| &e.attachments)
    }

    pub fn extras_mut(&mut self) -> &mut Extras {
        self.extras.get_or_insert_with(Box::default)
    }

    /// `Normal` unless set otherwise.
    pub fn importance(&self) -> &str {
        self.extras
            .as_deref()
            .and_then(|e| e.importance.as_deref())
            .unwrap_or("Normal")
    }

    /// `Normal` unless set otherwise.
    pub fn sensitivity(&self) -> &str {
        self.extras
            .as_deref()
            .and_then(|e| e.sensitivity.as_deref())
            .unwrap_or("Normal")
    }

    /// Drops the extras when nothing is left in them.
    pub fn compact(&mut self) {
        if self.extras.as_deref().is_some_and(Extras::is_empty) {
            self.extras = None;
        }
    }

    /// Replaces the subject (the envelope is repacked; everything else is kept).
    pub fn set_subject(&mut self, subject: &str) {
        let e = self.envelope.read();
        let from = owned(e.from);
        let to: Vec<Address> = e.to.iter().map(|a| owned(*a)).collect();
        let cc: Vec<Address> = e.cc.iter().map(|a| owned(*a)).collect();
        let packed = Packed::new(&EnvelopeFields {
            sent: e.sent,
            received: e.received,
            size: e.size,
            has_attachments: e.has_attachments,
            internet_message_id: e.internet_message_id,
            conversation_id: e.conversation_id,
            subject,
            from: &from,
            to: &to,
            cc: &cc,
        });
        self.envelope = packed;
    }

    /// The sequence of its latest change of any kind.
    pub fn last_seq(&self) -> u64 {
        self.created_seq.max(self.content_seq).max(self.read_seq)
    }
}

/// A message as the control API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MessageView {
    pub mailbox: String,
    /// The folder's path from the top of the mailbox, e.g. `Inbox/Customers`.
    pub folder: String,
    pub folder_id: String,
    pub item_id: String,
    /// Its Graph immutable id, which a move inside the mailbox keeps.
    pub immutable_id: String,
    pub change_key: String,
    pub internet_message_id: String,
    pub conversation_id: String,
    pub subject: String,
    pub from: Address,
    pub to: Vec<Address>,
    pub cc: Vec<Address>,
    pub sent: String,
    pub received: String,
    pub size: u32,
    pub has_attachments: bool,
    pub is_read: bool,
    pub categories: Vec<String>,
    /// Extended properties as `(name or tag, value)`.
    pub extended: Vec<(String, String)>,
}

/// Formats seconds since the epoch as EWS does (`2026-11-24T09:30:00Z`).
pub fn format_time(secs: i64) -> String {
    jiff::Timestamp::from_second(secs)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

pub fn owned(a: (Option<&str>, &str)) -> Address {
    Address {
        name: a.0.map(str::to_owned),
        address: a.1.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_envelope_packs_and_unpacks() {
        let from = Address::parse("Buyer Person <buyer@contoso.com>");
        let to = [Address::parse("alice@example.com")];
        let p = Packed::new(&EnvelopeFields {
            sent: 1_700_000_000,
            received: 1_700_000_060,
            size: 1234,
            has_attachments: true,
            internet_message_id: "<m1@contoso.com>",
            conversation_id: "conv",
            subject: "Deal & Quote – 見積",
            from: &from,
            to: &to,
            cc: &[],
        });
        let e = p.read();
        assert_eq!(e.subject, "Deal & Quote – 見積");
        assert_eq!(e.from, (Some("Buyer Person"), "buyer@contoso.com"));
        assert_eq!(e.to, [(None, "alice@example.com")]);
        assert!(e.cc.is_empty());
        assert_eq!(
            (e.sent, e.received, e.size),
            (1_700_000_000, 1_700_000_060, 1234)
        );
        assert!(e.has_attachments);
        assert_eq!(e.internet_message_id, "<m1@contoso.com>");
    }
}
