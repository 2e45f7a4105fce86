//! XML reading and writing helpers shared by every operation.
//!
//! Reading walks a document as a tree of elements with namespace-resolved names: callers match
//! on [`Ns`] + local name, never on prefixes (servers use `m:`, `s:`, default namespaces, and
//! more). Text is gathered untrimmed across entity references: quick-xml splits text at every
//! `&…;` since 0.38, and trimming each piece would turn `Deal &amp; quote` into `Deal&quote`.
//! Writing escapes and sanitises every string, because EWS rejects XML-illegal characters.

use super::Error;
use quick_xml::NsReader;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use std::borrow::Cow;
use std::fmt::Write as _;

/// The namespaces EWS uses; anything else is `Other`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ns {
    /// `http://schemas.xmlsoap.org/soap/envelope/`
    Soap,
    /// `http://schemas.microsoft.com/exchange/services/2006/messages`
    Messages,
    /// `http://schemas.microsoft.com/exchange/services/2006/types`
    Types,
    /// `http://schemas.microsoft.com/exchange/services/2006/errors`
    Errors,
    /// Unbound, unknown or foreign.
    Other,
}

pub const NS_SOAP: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub const NS_MESSAGES: &str = "http://schemas.microsoft.com/exchange/services/2006/messages";
pub const NS_TYPES: &str = "http://schemas.microsoft.com/exchange/services/2006/types";
pub const NS_ERRORS: &str = "http://schemas.microsoft.com/exchange/services/2006/errors";

impl Ns {
    fn from_uri(uri: &str) -> Self {
        match uri {
            NS_SOAP => Self::Soap,
            NS_MESSAGES => Self::Messages,
            NS_TYPES => Self::Types,
            NS_ERRORS => Self::Errors,
            _ => Self::Other,
        }
    }
}

/// A start tag (or an empty element) with its resolved namespace.
#[derive(Debug)]
pub struct Element<'i> {
    pub ns: Ns,
    start: BytesStart<'i>,
    /// `<x/>`: there is no content and no end tag to read.
    pub empty: bool,
}

impl Element<'_> {
    /// The local name (`ItemId` for `t:ItemId`).
    pub fn name(&self) -> &str {
        self.start.local_name().into_inner()
    }

    /// True when this is `{ns}name`.
    pub fn is(&self, ns: Ns, name: &str) -> bool {
        self.ns == ns && self.name() == name
    }

    /// True when the local name is `name` and the namespace is `ns` or none at all: for the
    /// operation elements, which some published requests leave unqualified.
    pub fn is_lenient(&self, ns: Ns, name: &str) -> bool {
        (self.ns == ns || self.ns == Ns::Other) && self.name() == name
    }

    /// An attribute's value by local name, entities decoded. Attributes in EWS are unprefixed;
    /// namespace declarations are never returned.
    pub fn attr(&self, name: &str) -> Option<String> {
        // Duplicate checking allocates on every call; a duplicate attribute changes nothing
        // for a reader that takes the first match.
        self.start
            .attributes()
            .with_checks(false)
            .flatten()
            .find_map(|a| {
                let key = a.key;
                let is_xmlns = key.as_namespace_binding().is_some();
                if is_xmlns || key.local_name().into_inner() != name {
                    return None;
                }
                Some(unescape_lenient(&a.value))
            })
    }
}

fn unescape_lenient(raw: &str) -> String {
    quick_xml::escape::unescape(raw)
        .map(|c| c.into_owned())
        .unwrap_or_else(|_| raw.to_owned())
}

/// A forward-only reader over one document held in memory.
pub struct XmlReader<'i> {
    inner: NsReader<&'i [u8]>,
    input: &'i str,
}

impl<'i> XmlReader<'i> {
    pub fn new(input: &'i str) -> Self {
        let mut inner = NsReader::from_str(input);
        let config = inner.config_mut();
        config.trim_text_start = false;
        config.trim_text_end = false;
        config.check_end_names = true;
        config.expand_empty_elements = false;
        Self { inner, input }
    }

    /// The document's root element (declaration, comments and whitespace skipped).
    pub fn root(&mut self) -> Result<Element<'i>, Error> {
        loop {
            match self.event()? {
                Step::Open(el) => return Ok(el),
                Step::Close => return Err(self.error("a closing tag before any element")),
                Step::Eof => return Err(self.error("an empty document; expected an XML element")),
                Step::Text(_) | Step::Skip => {}
            }
        }
    }

    /// The next child element of `parent`, or `None` once `parent` has ended (its end tag is
    /// consumed). Text between elements is ignored. Every child returned must be consumed with
    /// [`Self::text`], [`Self::skip`] or its own `next_child` loop before the next call.
    pub fn next_child(&mut self, parent: &Element<'_>) -> Result<Option<Element<'i>>, Error> {
        if parent.empty {
            return Ok(None);
        }
        loop {
            match self.event()? {
                Step::Open(el) => return Ok(Some(el)),
                Step::Close => return Ok(None),
                Step::Eof => return Err(self.ended_inside(parent)),
                Step::Text(_) | Step::Skip => {}
            }
        }
    }

    /// All text inside `el`, exactly as sent (entities decoded, nothing trimmed). Child elements,
    /// if any, are skipped.
    pub fn text(&mut self, el: &Element<'_>) -> Result<String, Error> {
        self.text_cow(el).map(Cow::into_owned)
    }

    /// Like [`Self::text`], borrowed from the input when it is one text node (the common case).
    fn text_cow(&mut self, el: &Element<'_>) -> Result<Cow<'i, str>, Error> {
        if el.empty {
            return Ok(Cow::Borrowed(""));
        }
        let mut out: Cow<'i, str> = Cow::Borrowed("");
        loop {
            match self.event()? {
                Step::Text(piece) if out.is_empty() => out = piece,
                Step::Text(piece) => out.to_mut().push_str(&piece),
                Step::Open(child) => self.skip(&child)?,
                Step::Close => return Ok(out),
                Step::Eof => return Err(self.ended_inside(el)),
                Step::Skip => {}
            }
        }
    }

    /// Text with surrounding whitespace removed: for codes, numbers and booleans only.
    pub fn trimmed(&mut self, el: &Element<'_>) -> Result<String, Error> {
        Ok(self.text_cow(el)?.trim().to_owned())
    }

    /// `true`/`false` (also `1`/`0`, as xs:boolean allows).
    pub fn bool(&mut self, el: &Element<'_>) -> Result<bool, Error> {
        let text = self.text_cow(el)?;
        match text.trim() {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            s => Err(self.error(&format!(
                "<{}> should be true or false, not {s:?}",
                el.name()
            ))),
        }
    }

    /// A number of any integer type.
    pub fn number<T: std::str::FromStr>(&mut self, el: &Element<'_>) -> Result<T, Error> {
        let text = self.text_cow(el)?;
        let s = text.trim();
        s.parse()
            .map_err(|_| self.error(&format!("<{}> should be a number, not {s:?}", el.name())))
    }

    /// Skips `el` and everything inside it.
    pub fn skip(&mut self, el: &Element<'_>) -> Result<(), Error> {
        if el.empty {
            return Ok(());
        }
        let end = el.start.to_end();
        let name = end.name();
        self.inner
            .read_to_end(name)
            .map(|_| ())
            .map_err(|e| self.error(&e.to_string()))
    }

    /// An error at the reader's current position.
    pub fn error(&self, message: &str) -> Error {
        let pos = usize::try_from(self.inner.buffer_position()).unwrap_or(usize::MAX);
        error_at(self.input, pos, message)
    }

    /// An error saying which element was expected where another was found.
    pub fn unexpected(&self, expected: &str, found: &Element<'_>) -> Error {
        self.error(&format!("expected {expected}, found <{}>", found.name()))
    }

    fn ended_inside(&self, el: &Element<'_>) -> Error {
        self.error(&format!("the document ends inside <{}>", el.name()))
    }

    fn event(&mut self) -> Result<Step<'i>, Error> {
        // Only start tags are resolved: the namespace of an end tag or text is never asked for.
        let event = match self.inner.read_event() {
            Ok(event) => event,
            Err(e) => {
                let pos = usize::try_from(self.inner.error_position()).unwrap_or(usize::MAX);
                return Err(error_at(self.input, pos, &e.to_string()));
            }
        };
        Ok(match event {
            Event::Start(start) => Step::Open(Element {
                ns: self.namespace(&start),
                start,
                empty: false,
            }),
            Event::Empty(start) => Step::Open(Element {
                ns: self.namespace(&start),
                start,
                empty: true,
            }),
            Event::End(_) => Step::Close,
            Event::Eof => Step::Eof,
            Event::Text(t) => Step::Text(t.xml10_content()),
            Event::CData(c) => Step::Text(c.xml10_content()),
            Event::GeneralRef(r) => Step::Text(self.entity(&r)?),
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => Step::Skip,
        })
    }

    fn namespace(&self, start: &BytesStart<'_>) -> Ns {
        match self.inner.resolver().resolve_element(start.name()) {
            (ResolveResult::Bound(ns), _) => Ns::from_uri(ns.into_inner()),
            _ => Ns::Other,
        }
    }

    fn entity(&self, r: &quick_xml::events::BytesRef<'_>) -> Result<Cow<'static, str>, Error> {
        if r.is_char_ref() {
            return match r.resolve_char_ref() {
                Ok(Some(c)) => Ok(Cow::Owned(c.to_string())),
                _ => Err(self.error("an invalid character reference")),
            };
        }
        let name: &str = r;
        match quick_xml::escape::resolve_predefined_entity(name) {
            Some(s) => Ok(Cow::Borrowed(s)),
            None => Err(self.error(&format!("an unknown entity &{name};"))),
        }
    }
}

enum Step<'i> {
    Open(Element<'i>),
    Close,
    Text(Cow<'i, str>),
    Skip,
    Eof,
}

/// An error at byte `pos` of `input`, with 1-based line and column.
pub fn error_at(input: &str, pos: usize, message: &str) -> Error {
    let before = &input.as_bytes()[..pos.min(input.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count() as u64
        + 1;
    Error::Malformed {
        line,
        column,
        message: message.to_owned(),
    }
}

/// Writes XML into a string, escaping and sanitising every value.
///
/// Compact by default (what goes on the wire); [`XmlWriter::pretty`] indents, for snapshots and
/// for `foldertrack ews requests`.
#[derive(Default)]
pub struct XmlWriter {
    out: String,
    pretty: bool,
    depth: usize,
    /// The element last opened has child elements (so its end tag goes on its own line).
    nested: bool,
}

impl XmlWriter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn pretty() -> Self {
        Self {
            pretty: true,
            ..Self::default()
        }
    }

    /// `<?xml version="1.0" encoding="utf-8"?>`
    pub fn declaration(&mut self) {
        self.out
            .push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>");
    }

    /// Starts an element: `w.element("t:ItemId").attr("Id", id).empty()`.
    pub fn element<'w>(&'w mut self, name: &'w str) -> ElementWriter<'w> {
        self.indent();
        self.out.push('<');
        self.out.push_str(name);
        ElementWriter { w: self, name }
    }

    /// `<name>text</name>`.
    pub fn leaf(&mut self, name: &str, text: &str) {
        self.element(name).text(text);
    }

    /// Ends the element `name` opened with [`ElementWriter::open`].
    pub fn close(&mut self, name: &str) {
        self.depth = self.depth.saturating_sub(1);
        if self.nested {
            self.indent();
        }
        self.nested = true;
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
    }

    /// The document written so far.
    pub fn finish(self) -> String {
        let mut out = self.out;
        if self.pretty {
            out.push('\n');
        }
        out
    }

    fn indent(&mut self) {
        if self.pretty && !self.out.is_empty() {
            self.out.push('\n');
            for _ in 0..self.depth {
                self.out.push_str("  ");
            }
        }
    }

    fn escaped(&mut self, s: &str) {
        push_escaped(&mut self.out, s);
    }
}

/// An element being written; see [`XmlWriter::element`].
pub struct ElementWriter<'w> {
    w: &'w mut XmlWriter,
    name: &'w str,
}

impl<'w> ElementWriter<'w> {
    pub fn attr(self, name: &str, value: &str) -> Self {
        self.w.out.push(' ');
        self.w.out.push_str(name);
        self.w.out.push_str("=\"");
        self.w.escaped(value);
        self.w.out.push('"');
        self
    }

    /// An attribute written only when there is a value.
    pub fn attr_opt(self, name: &str, value: Option<&str>) -> Self {
        match value {
            Some(v) => self.attr(name, v),
            None => self,
        }
    }

    /// An attribute whose value is a number or other `Display`.
    pub fn attr_display(self, name: &str, value: impl std::fmt::Display) -> Self {
        let _ = write!(self.w.out, " {name}=\"{value}\"");
        self
    }

    /// `<name …/>`
    pub fn empty(self) {
        self.w.out.push_str("/>");
        self.w.nested = true;
    }

    /// `<name …>`: children follow, then [`XmlWriter::close`].
    pub fn open(self) {
        self.w.out.push('>');
        self.w.depth += 1;
        self.w.nested = false;
    }

    /// `<name …>text</name>`
    pub fn text(self, text: &str) {
        self.w.out.push('>');
        self.w.escaped(text);
        self.w.out.push_str("</");
        self.w.out.push_str(self.name);
        self.w.out.push('>');
        self.w.nested = true;
    }
}

/// Appends `s` escaped for text or attribute content, dropping characters XML cannot carry
/// (C0 controls other than TAB, LF, CR; U+FFFE and U+FFFF), which Exchange would reject.
pub fn push_escaped(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' => out.push(c),
            // A literal CR would be normalised away by the reader; keep it as a reference.
            '\r' => out.push_str("&#13;"),
            '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => {}
            _ => out.push(c),
        }
    }
}

/// The characters of `s` that [`push_escaped`] keeps: what a reader gets back after a round trip.
pub fn sanitised(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_leaf(xml: &str) -> String {
        let mut r = XmlReader::new(xml);
        let root = r.root().unwrap();
        r.text(&root).unwrap()
    }

    #[test]
    fn text_is_kept_exactly_across_entities_and_spaces() {
        assert_eq!(read_leaf("<a>  Deal &amp; quote  </a>"), "  Deal & quote  ");
        assert_eq!(read_leaf("<a>&lt;id@host&gt;</a>"), "<id@host>");
        assert_eq!(
            read_leaf("<a>Caf&#233; &#x263A; Zürich</a>"),
            "Café ☺ Zürich"
        );
        assert_eq!(read_leaf("<a><![CDATA[<b>raw</b>]]></a>"), "<b>raw</b>");
        assert_eq!(read_leaf("<a/>"), "");
    }

    #[test]
    fn names_resolve_through_any_prefix_or_default_namespace() {
        for xml in [
            r#"<m:X xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"/>"#,
            r#"<X xmlns="http://schemas.microsoft.com/exchange/services/2006/messages"/>"#,
            r#"<zz:X xmlns:zz="http://schemas.microsoft.com/exchange/services/2006/messages"/>"#,
        ] {
            let mut r = XmlReader::new(xml);
            assert!(r.root().unwrap().is(Ns::Messages, "X"), "{xml}");
        }
        let mut r = XmlReader::new(r#"<m:X xmlns:m="urn:other"/>"#);
        assert_eq!(r.root().unwrap().ns, Ns::Other);
    }

    #[test]
    fn children_are_walked_and_unknown_ones_skipped() {
        let xml = "<a><unknown><deep>1</deep></unknown><b Id=\"x&amp;y\"/><c>t</c></a>";
        let mut r = XmlReader::new(xml);
        let root = r.root().unwrap();
        let mut seen = Vec::new();
        while let Some(child) = r.next_child(&root).unwrap() {
            match child.name() {
                "b" => seen.push(child.attr("Id").unwrap()),
                "c" => seen.push(r.text(&child).unwrap()),
                _ => r.skip(&child).unwrap(),
            }
        }
        assert_eq!(seen, ["x&y", "t"]);
    }

    #[test]
    fn errors_name_line_and_column() {
        let mut r = XmlReader::new("<a>\n  <b></c>\n</a>");
        let root = r.root().unwrap();
        let b = r.next_child(&root).unwrap().unwrap();
        let err = r.text(&b).unwrap_err().to_string();
        assert!(err.starts_with("line 2, column"), "{err}");
    }

    #[test]
    fn writer_escapes_and_drops_illegal_characters() {
        let mut w = XmlWriter::new();
        w.element("t:X")
            .attr("A", "\"q\" & 'a'")
            .text("a<b>\u{0}\u{1}c\u{fffe}\r\n");
        let xml = w.finish();
        assert_eq!(
            xml,
            "<t:X A=\"&quot;q&quot; &amp; &apos;a&apos;\">a&lt;b&gt;c&#13;\n</t:X>"
        );
        let mut r = XmlReader::new(&xml);
        let root = r.root().unwrap();
        assert_eq!(r.text(&root).unwrap(), "a<b>c\r\n");
    }

    #[test]
    fn pretty_writer_indents_nested_elements() {
        let mut w = XmlWriter::pretty();
        w.element("a").open();
        w.element("b").attr("x", "1").empty();
        w.leaf("c", "t");
        w.close("a");
        assert_eq!(w.finish(), "<a>\n  <b x=\"1\"/>\n  <c>t</c>\n</a>\n");
    }
}
