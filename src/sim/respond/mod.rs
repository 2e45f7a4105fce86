//! Writing the simulator's responses: the SOAP envelope, response messages, faults, folders and
//! items — with its own code (never the request writers of `ews/`), so a serialiser bug on one
//! side cannot hide behind the same bug on the other.
//!
//! The response style is a knob: Exchange 2013+ prefixes (`s:`, `m:`, `t:`, `h:`), the classic
//! `soap:` spelling, a default messages namespace, or unusual prefixes; the streaming
//! `Notification` in either namespace; and unknown extra elements sprinkled in, so foldertrack's
//! parsers meet variation rather than one spelling. Owns XML output only; no state decisions.
//!
//! This file writes the envelope, response messages and faults; `folders.rs`, `items.rs`,
//! `events.rs` and `directory.rs` write the objects inside them. A SOAP fault has no
//! `ServerVersionInfo` header, as on Exchange: clients read the server's version from it.

pub mod directory;
pub mod events;
pub mod folders;
pub mod items;

use crate::ews::ResponseCode;
use crate::ews::xml::{NS_ERRORS, NS_MESSAGES, NS_SOAP, NS_TYPES, XmlWriter};
use serde::{Deserialize, Serialize};

/// How namespace prefixes are spelled in responses.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Prefixes {
    /// Exchange 2013 and later: `s:Envelope`, `h:ServerVersionInfo`, `m:`, `t:`.
    #[default]
    Exchange,
    /// Exchange 2007/2010 and the docs: `soap:Envelope`, `t:ServerVersionInfo`.
    Classic,
    /// The messages namespace as the default namespace of each response element.
    DefaultNamespace,
    /// Prefixes no server uses (`env:`, `ex:`, `ty:`): parsers must resolve namespaces.
    Unusual,
}

/// Which namespace the streaming `Notification` element is written in.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum NotificationNs {
    /// `m:Notification`, what Exchange sends.
    #[default]
    Messages,
    /// `t:Notification`, what the schema says.
    Types,
}

/// The response style knobs.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(default, deny_unknown_fields)]
pub struct ResponseStyle {
    pub prefixes: Prefixes,
    pub notification_ns: NotificationNs,
    /// Sprinkle unknown elements (a newer server's additions) into responses.
    pub extra_elements: bool,
    /// Leave out `IncludesLastItemInRange` / `IncludesLastFolderInRange` of sync answers, as
    /// the schema allows (`minOccurs="0"`).
    pub omit_includes_last: bool,
}

/// A response being written in a given style.
pub struct Out {
    pub w: XmlWriter,
    style: ResponseStyle,
    soap: &'static str,
    m: &'static str,
    t: &'static str,
    names: std::collections::HashMap<(&'static str, &'static str), String>,
    /// The first error code written: what the call log records as the result.
    first_error: Option<String>,
}

/// A written response and the result the call log records for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Doc {
    pub xml: String,
    /// `NoError` or the first error code in the document.
    pub result: String,
}

/// A per-message error: its code, text and `MessageXml` values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageError {
    pub code: ResponseCode,
    pub text: String,
    pub values: Vec<(&'static str, String)>,
}

impl MessageError {
    pub fn new(code: ResponseCode, text: impl Into<String>) -> Self {
        Self {
            code,
            text: text.into(),
            values: Vec::new(),
        }
    }

    pub fn with(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.values.push((name, value.into()));
        self
    }
}

impl Out {
    pub fn new(style: ResponseStyle) -> Self {
        let (soap, m, t) = match style.prefixes {
            Prefixes::Exchange => ("s", "m", "t"),
            Prefixes::Classic => ("soap", "m", "t"),
            Prefixes::DefaultNamespace => ("s", "", "t"),
            Prefixes::Unusual => ("env", "ex", "ty"),
        };
        Self {
            w: XmlWriter::new(),
            style,
            soap,
            m,
            t,
            names: std::collections::HashMap::new(),
            first_error: None,
        }
    }

    pub fn style(&self) -> ResponseStyle {
        self.style
    }

    /// `IncludesLast…InRange` of a sync answer, unless the style leaves it out.
    pub fn includes_last(&mut self, name: &'static str, last: bool) {
        if !self.style.omit_includes_last {
            self.m_leaf(name, if last { "true" } else { "false" });
        }
    }

    fn qualified(&mut self, prefix: &'static str, name: &'static str) -> String {
        self.names
            .entry((prefix, name))
            .or_insert_with(|| {
                if prefix.is_empty() {
                    name.to_owned()
                } else {
                    format!("{prefix}:{name}")
                }
            })
            .clone()
    }

    /// The qualified name of a messages-namespace element.
    pub fn m(&mut self, name: &'static str) -> String {
        self.qualified(self.m, name)
    }

    /// The qualified name of a types-namespace element.
    pub fn t(&mut self, name: &'static str) -> String {
        self.qualified(self.t, name)
    }

    fn s(&mut self, name: &'static str) -> String {
        self.qualified(self.soap, name)
    }

    /// `<t:name>text</t:name>`
    pub fn t_leaf(&mut self, name: &'static str, text: &str) {
        let n = self.t(name);
        self.w.leaf(&n, text);
    }

    /// `<m:name>text</m:name>`
    pub fn m_leaf(&mut self, name: &'static str, text: &str) {
        let n = self.m(name);
        self.w.leaf(&n, text);
    }

    pub fn t_open(&mut self, name: &'static str) {
        let n = self.t(name);
        self.w.element(&n).open();
    }

    pub fn t_close(&mut self, name: &'static str) {
        let n = self.t(name);
        self.w.close(&n);
    }

    pub fn m_open(&mut self, name: &'static str) {
        let n = self.m(name);
        self.w.element(&n).open();
    }

    pub fn m_close(&mut self, name: &'static str) {
        let n = self.m(name);
        self.w.close(&n);
    }

    /// `<t:name Id=".." ChangeKey=".."/>`
    pub fn t_id(&mut self, name: &'static str, id: &str, change_key: Option<&str>) {
        let n = self.t(name);
        self.w
            .element(&n)
            .attr("Id", id)
            .attr_opt("ChangeKey", change_key)
            .empty();
    }

    /// An element a newer server might add; parsers must skip it.
    pub fn extra(&mut self) {
        if self.style.extra_elements {
            let n = self.t("SimulatorExtension");
            self.w
                .element(&n)
                .attr("Added", "2027")
                .text("parsers skip what they do not know");
        }
    }

    /// A whole response document: declaration, envelope, header, body.
    pub fn document(style: ResponseStyle, body: impl FnOnce(&mut Out)) -> Doc {
        Self::envelope(style, true, body)
    }

    /// An envelope, with or without the XML declaration (streamed envelopes have none).
    pub fn envelope(style: ResponseStyle, declaration: bool, body: impl FnOnce(&mut Out)) -> Doc {
        Self::build(style, declaration, true, body)
    }

    /// The envelope of a SOAP fault: no header, so no `ServerVersionInfo` a client could take
    /// for the version that failed.
    pub fn fault_envelope(style: ResponseStyle, e: &MessageError) -> Doc {
        Self::build(style, true, false, |o| o.fault(e))
    }

    fn build(
        style: ResponseStyle,
        declaration: bool,
        header: bool,
        body: impl FnOnce(&mut Out),
    ) -> Doc {
        let mut o = Out::new(style);
        if declaration {
            o.w.declaration();
        }
        let env = o.s("Envelope");
        let mut e =
            o.w.element(&env)
                .attr(&format!("xmlns:{}", o.soap), NS_SOAP);
        if style.prefixes == Prefixes::Unusual {
            // The SOAP namespace declared twice under two prefixes, as one real sample does.
            e = e.attr("xmlns:soap12ish", NS_SOAP);
        }
        e.open();
        if header {
            o.version_header();
        }
        let b = o.s("Body");
        o.w.element(&b).open();
        body(&mut o);
        o.w.close(&b);
        o.w.close(&env);
        let result = o.first_error.take().unwrap_or_else(|| "NoError".to_owned());
        Doc {
            xml: o.w.finish(),
            result,
        }
    }

    /// `s:Header` with the `ServerVersionInfo` of the server the style imitates.
    fn version_header(&mut self) {
        let o = self;
        let header = o.s("Header");
        o.w.element(&header).open();
        match o.style.prefixes {
            Prefixes::Exchange | Prefixes::DefaultNamespace => {
                o.w.element("h:ServerVersionInfo")
                    .attr("xmlns:h", NS_TYPES)
                    .attr("MajorVersion", "15")
                    .attr("MinorVersion", "1")
                    .attr("MajorBuildNumber", "2507")
                    .attr("MinorBuildNumber", "6")
                    .attr("Version", "V2017_07_11")
                    .empty()
            }
            Prefixes::Classic | Prefixes::Unusual => {
                let t = o.t;
                o.w.element(&format!("{t}:ServerVersionInfo"))
                    .attr(&format!("xmlns:{t}"), NS_TYPES)
                    .attr("MajorVersion", "15")
                    .attr("MinorVersion", "0")
                    .attr("MajorBuildNumber", "1497")
                    .attr("MinorBuildNumber", "2")
                    .empty()
            }
        }
        o.w.close(&header);
    }

    /// `<m:{op}Response><m:ResponseMessages>…</m:ResponseMessages></m:{op}Response>`, with the
    /// namespaces declared on the response element (so a fault never inherits them).
    pub fn response(&mut self, op: &str, messages: impl FnOnce(&mut Out)) {
        let name = if self.m.is_empty() {
            format!("{op}Response")
        } else {
            format!("{}:{op}Response", self.m)
        };
        let mut e = self.w.element(&name);
        e = if self.m.is_empty() {
            e.attr("xmlns", NS_MESSAGES)
        } else {
            e.attr(&format!("xmlns:{}", self.m), NS_MESSAGES)
        };
        e.attr(&format!("xmlns:{}", self.t), NS_TYPES).open();
        self.m_open("ResponseMessages");
        messages(self);
        self.m_close("ResponseMessages");
        self.w.close(&name);
    }

    /// One `*ResponseMessage`: Success with `payload`, or the error (then `on_error` writes
    /// what the schema or Exchange adds to an error, e.g. an empty SyncState).
    pub fn message(
        &mut self,
        op: &str,
        result: Result<(), &MessageError>,
        payload: impl FnOnce(&mut Out),
    ) {
        match result {
            Ok(()) => self.message_as(op, "Success", None, payload),
            Err(e) => self.message_as(op, "Error", Some(e), payload),
        }
    }

    /// A `*ResponseMessage` with `ResponseClass="Warning"`: the code and text, then `payload`
    /// (ResolveNames answers several matches so).
    pub fn warning(&mut self, op: &str, e: &MessageError, payload: impl FnOnce(&mut Out)) {
        self.message_as(op, "Warning", Some(e), payload);
    }

    fn message_as(
        &mut self,
        op: &str,
        class: &str,
        problem: Option<&MessageError>,
        payload: impl FnOnce(&mut Out),
    ) {
        let name = if self.m.is_empty() {
            format!("{op}ResponseMessage")
        } else {
            format!("{}:{op}ResponseMessage", self.m)
        };
        self.w.element(&name).attr("ResponseClass", class).open();
        match problem {
            None => self.m_leaf("ResponseCode", "NoError"),
            Some(e) => {
                if class == "Error" && self.first_error.is_none() {
                    self.first_error = Some(e.code.as_str().to_owned());
                }
                self.m_leaf("MessageText", &e.text);
                self.m_leaf("ResponseCode", e.code.as_str());
                self.m_leaf("DescriptiveLinkKey", "0");
                if !e.values.is_empty() {
                    self.m_open("MessageXml");
                    for (k, v) in &e.values {
                        let n = self.t("Value");
                        self.w.element(&n).attr("Name", k).text(v);
                    }
                    self.m_close("MessageXml");
                }
            }
        }
        payload(self);
        self.extra();
        self.w.close(&name);
    }

    /// A SOAP fault (sent with HTTP 500).
    pub fn fault(&mut self, e: &MessageError) {
        self.first_error = Some(e.code.as_str().to_owned());
        let fault = self.s("Fault");
        self.w.element(&fault).open();
        self.w
            .element("faultcode")
            .attr("xmlns:a", NS_TYPES)
            .text(&format!("a:{}", e.code.as_str()));
        self.w
            .element("faultstring")
            .attr("xml:lang", "en-US")
            .text(&e.text);
        self.w.element("detail").open();
        self.w
            .element("e:ResponseCode")
            .attr("xmlns:e", NS_ERRORS)
            .text(e.code.as_str());
        self.w
            .element("e:Message")
            .attr("xmlns:e", NS_ERRORS)
            .text(&e.text);
        if !e.values.is_empty() {
            self.w
                .element("t:MessageXml")
                .attr("xmlns:t", NS_TYPES)
                .open();
            for (k, v) in &e.values {
                self.w.element("t:Value").attr("Name", k).text(v);
            }
            self.w.close("t:MessageXml");
        }
        self.w.close("detail");
        self.w.close(&fault);
    }
}

/// One FindFolder or FindItem message: `m:RootFolder` with the paging attributes of a page
/// ending at `end` of `total` (the next offset, or with a fractional view the next numerator
/// over the total), around `list` (`t:Folders` or `t:Items`) that `content` fills.
pub fn find_page(
    o: &mut Out,
    op: &str,
    fractional: bool,
    (end, total): (usize, usize),
    list: &'static str,
    content: impl FnOnce(&mut Out),
) {
    o.message(op, Ok(()), |o| {
        let n = o.m("RootFolder");
        let e = o.w.element(&n);
        let e = if fractional {
            e.attr_display("NumeratorOffset", end)
                .attr_display("AbsoluteDenominator", total)
        } else {
            e.attr_display("IndexedPagingOffset", end)
        };
        e.attr_display("TotalItemsInView", total)
            .attr(
                "IncludesLastItemInRange",
                if end >= total { "true" } else { "false" },
            )
            .open();
        o.t_open(list);
        content(o);
        o.t_close(list);
        o.w.close(&n);
    });
}

/// A whole fault document.
pub fn fault_document(style: ResponseStyle, e: &MessageError) -> Doc {
    Out::fault_envelope(style, e)
}

/// A whole document with one error message for `op` (e.g. a fault injected as a message).
pub fn error_document(style: ResponseStyle, op: &str, e: &MessageError) -> Doc {
    Out::document(style, |o| o.response(op, |o| o.message(op, Err(e), |_| {})))
}

/// A whole document with one sync error for `op`, with the empty SyncState and the
/// `IncludesLast…InRange` Exchange adds to it (also for an injected ErrorInvalidSyncStateData).
pub fn sync_error_document(style: ResponseStyle, op: &str, e: &MessageError) -> Doc {
    let last = if op == "SyncFolderHierarchy" {
        "IncludesLastFolderInRange"
    } else {
        "IncludesLastItemInRange"
    };
    Out::document(style, |o| {
        o.response(op, |o| {
            o.message(op, Err(e), |o| {
                o.m_leaf("SyncState", "");
                o.m_leaf(last, "true");
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ews::xml::{Ns, XmlReader};

    #[test]
    fn every_prefix_style_resolves_to_the_same_names() {
        for prefixes in [
            Prefixes::Exchange,
            Prefixes::Classic,
            Prefixes::DefaultNamespace,
            Prefixes::Unusual,
        ] {
            let style = ResponseStyle {
                prefixes,
                ..ResponseStyle::default()
            };
            let xml = error_document(
                style,
                "GetFolder",
                &MessageError::new(ResponseCode::ErrorFolderNotFound, "gone"),
            )
            .xml;
            let mut r = XmlReader::new(&xml);
            let env = r.root().unwrap();
            assert!(env.is(Ns::Soap, "Envelope"), "{xml}");
            let _header = r.next_child(&env).unwrap().unwrap();
            r.skip(&_header).unwrap();
            let body = r.next_child(&env).unwrap().unwrap();
            let resp = r.next_child(&body).unwrap().unwrap();
            assert!(resp.is(Ns::Messages, "GetFolderResponse"), "{xml}");
        }
    }
}
