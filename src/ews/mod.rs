//! The EWS protocol as foldertrack speaks it: requests written, responses read, no I/O.
//!
//! One file per operation, named after it, each implementing [`Operation`]. Parsers match
//! namespace + local name (prefixes vary by server), skip what they do not know, keep text
//! exactly, and read each response message on its own so one bad item never loses a batch.
//! Requests can be read back too: the simulator and `foldertrack ews decode` need that.
//! <https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/ews-reference-for-exchange>

pub mod convert_id;
pub mod copy_item;
pub mod create_folder;
pub mod create_item;
pub mod decode;
pub mod delete_item;
pub mod envelope;
pub mod examples;
pub mod find_folder;
pub mod find_item;
pub mod folder;
pub mod get_attachment;
pub mod get_events;
pub mod get_folder;
pub mod get_item;
pub mod get_server_time_zones;
pub mod get_streaming_events;
pub mod ids;
pub mod item;
pub mod move_item;
pub mod notification;
pub mod property;
pub mod resolve_names;
pub mod response;
pub mod restriction;
pub mod subscribe;
pub mod sync_folder_hierarchy;
pub mod sync_folder_items;
pub mod unsubscribe;
pub mod update_item;
pub mod xml;

pub use envelope::{ConnectingSid, ExchangeVersion, Fault, RequestHeader};
pub use ids::*;
pub use response::{MessageResult, Response, ResponseClass, ResponseCode, ResponseError};

use xml::{Element, Ns, XmlReader, XmlWriter};

/// A document that could not be read as what it should be, or a SOAP fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not well-formed XML, or well-formed but not the expected shape.
    #[error("line {line}, column {column}: {message}")]
    Malformed {
        line: u64,
        column: u64,
        message: String,
    },
    /// The server answered with a SOAP fault (a request-level failure).
    #[error("SOAP fault {0}")]
    Fault(Box<Fault>),
}

/// One EWS operation: how its request is written and read, and how its response messages are
/// read. The response envelope and the common message fields are handled once, in
/// [`read_response`].
pub trait Operation: Sized {
    /// The operation's element name, e.g. `GetFolder`.
    const NAME: &'static str;
    /// The payload of one successful `*ResponseMessage`.
    type Message: Default;

    /// Writes the `m:<NAME>` element.
    fn write_body(&self, w: &mut XmlWriter);

    /// Reads the `m:<NAME>` element back.
    fn read_body<'i>(r: &mut XmlReader<'i>, el: &Element<'i>) -> Result<Self, Error>;

    /// Reads one operation-specific child of a response message into `message`; returns
    /// `false` for children it does not know (they are skipped).
    fn read_field<'i>(
        r: &mut XmlReader<'i>,
        el: &Element<'i>,
        message: &mut Self::Message,
    ) -> Result<bool, Error>;
}

/// The request for `op` as sent on the wire.
pub fn write_request<O: Operation>(op: &O, header: &RequestHeader) -> String {
    request_with(XmlWriter::new(), op, header)
}

/// The request for `op`, indented for people (snapshots, `foldertrack ews requests`).
pub fn write_request_pretty<O: Operation>(op: &O, header: &RequestHeader) -> String {
    request_with(XmlWriter::pretty(), op, header)
}

fn request_with<O: Operation>(mut w: XmlWriter, op: &O, header: &RequestHeader) -> String {
    w.declaration();
    envelope::write_request(header, &mut w, |w| op.write_body(w));
    w.finish()
}

/// Reads a request envelope for `O`.
pub fn read_request<O: Operation>(xml: &str) -> Result<(RequestHeader, O), Error> {
    envelope::read_request(xml, read_request_body::<O>)
}

/// Reads the `m:<NAME>` element of a request for `O`.
pub fn read_request_body<'i, O: Operation>(
    r: &mut XmlReader<'i>,
    el: &Element<'i>,
) -> Result<O, Error> {
    if !el.is_lenient(Ns::Messages, O::NAME) {
        return Err(r.unexpected(&format!("m:{}", O::NAME), el));
    }
    O::read_body(r, el)
}

/// Reads a response envelope for `O`: every response message, in order.
pub fn read_response<O: Operation>(xml: &str) -> Result<Response<O::Message>, Error> {
    let (server_version, messages) = envelope::read_response(xml, read_response_body::<O>)?;
    Ok(Response {
        server_version,
        messages,
    })
}

/// Reads the `m:<NAME>Response` element of a response for `O`.
pub fn read_response_body<'i, O: Operation>(
    r: &mut XmlReader<'i>,
    el: &Element<'i>,
) -> Result<Vec<MessageResult<O::Message>>, Error> {
    if !el.is_lenient(Ns::Messages, &format!("{}Response", O::NAME)) {
        return Err(r.unexpected(&format!("m:{}Response", O::NAME), el));
    }
    response::read_messages(r, el, O::read_field)
}
