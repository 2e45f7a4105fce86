//! `foldertrack ews decode`: any saved EWS document in — a whole envelope, a bare `soap:Body`,
//! `*Response`, `*ResponseMessage` or `soap:Header`, or a raw HTTP message — and what foldertrack
//! understood of it out, as JSON. Operations foldertrack does not implement still decode as
//! response messages (class, code, text, MessageXml); their requests are refused.

use super::envelope::{Fault, Header};
use super::xml::{Element, Ns, XmlReader};
use super::{Error, Operation, response};
use serde::Serialize;
use serde_json::{Map, Value, json};

type Decoder = for<'i> fn(&mut XmlReader<'i>, &Element<'i>) -> Result<Value, Error>;

/// How to read one operation's request, response and single response message.
struct Decoders {
    name: &'static str,
    request: Decoder,
    response: Decoder,
    message: Decoder,
}

fn decoders<O>() -> Decoders
where
    O: Operation + Serialize,
    O::Message: Serialize,
{
    Decoders {
        name: O::NAME,
        request: |r, el| Ok(to_json(&O::read_body(r, el)?)),
        response: |r, el| Ok(to_json(&response::read_messages(r, el, O::read_field)?)),
        message: |r, el| Ok(to_json(&response::read_message(r, el, O::read_field)?)),
    }
}

/// Response messages of an operation foldertrack does not implement: the common fields only.
fn generic_response(r: &mut XmlReader<'_>, el: &Element<'_>) -> Result<Value, Error> {
    Ok(to_json(&response::read_messages::<()>(
        r,
        el,
        |_, _, _| Ok(false),
    )?))
}

fn generic_message(r: &mut XmlReader<'_>, el: &Element<'_>) -> Result<Value, Error> {
    Ok(to_json(&response::read_message::<()>(r, el, |_, _, _| {
        Ok(false)
    })?))
}

fn to_json(value: &impl Serialize) -> Value {
    // Serialising plain data structures to a Value cannot fail.
    serde_json::to_value(value).unwrap_or(Value::Null)
}

fn operations() -> Vec<Decoders> {
    use super::*;
    vec![
        decoders::<get_folder::GetFolder>(),
        decoders::<sync_folder_items::SyncFolderItems>(),
        decoders::<get_item::GetItem>(),
        decoders::<get_attachment::GetAttachment>(),
        decoders::<update_item::UpdateItem>(),
        decoders::<create_item::CreateItem>(),
        decoders::<move_item::MoveItem>(),
        decoders::<find_folder::FindFolder>(),
        decoders::<sync_folder_hierarchy::SyncFolderHierarchy>(),
        decoders::<subscribe::Subscribe>(),
        decoders::<get_events::GetEvents>(),
        decoders::<get_streaming_events::GetStreamingEvents>(),
        decoders::<unsubscribe::Unsubscribe>(),
        decoders::<find_item::FindItem>(),
        decoders::<delete_item::DeleteItem>(),
        decoders::<copy_item::CopyItem>(),
        decoders::<create_folder::CreateFolder>(),
        decoders::<resolve_names::ResolveNames>(),
        decoders::<get_server_time_zones::GetServerTimeZones>(),
        decoders::<convert_id::ConvertId>(),
    ]
}

/// The operations whose requests and responses are read in full.
pub fn operation_names() -> Vec<&'static str> {
    operations().iter().map(|d| d.name).collect()
}

/// Decodes one document. An HTTP preamble (request or status line and headers) is skipped.
pub fn decode(text: &str) -> Result<Value, Error> {
    let xml = strip_http(text);
    let mut r = XmlReader::new(xml);
    let root = r.root()?;
    let mut out = Map::new();
    if root.is(Ns::Soap, "Envelope") {
        let mut body_seen = false;
        while let Some(part) = r.next_child(&root)? {
            if part.is(Ns::Soap, "Header") {
                out.insert("header".into(), to_json(&Header::read(&mut r, &part)?));
            } else if part.is(Ns::Soap, "Body") {
                body_seen = true;
                read_body(&mut r, &part, &mut out)?;
            } else {
                r.skip(&part)?;
            }
        }
        if !body_seen {
            return Err(r.error("a soap:Envelope without a soap:Body"));
        }
    } else if root.is(Ns::Soap, "Body") {
        read_body(&mut r, &root, &mut out)?;
    } else if root.is(Ns::Soap, "Header") {
        out.insert("header".into(), to_json(&Header::read(&mut r, &root)?));
    } else {
        read_part(&mut r, &root, &mut out)?;
    }
    Ok(Value::Object(out))
}

fn strip_http(text: &str) -> &str {
    let text = text.trim_start_matches('\u{feff}');
    let is_http = text.starts_with("HTTP/")
        || ["POST ", "GET ", "PUT "]
            .iter()
            .any(|m| text.starts_with(m));
    match text.find('<') {
        Some(start) if is_http => &text[start..],
        _ => text,
    }
}

fn read_body<'i>(
    r: &mut XmlReader<'i>,
    body: &Element<'_>,
    out: &mut Map<String, Value>,
) -> Result<(), Error> {
    let first = r
        .next_child(body)?
        .ok_or_else(|| r.error("an empty soap:Body; expected an EWS element"))?;
    read_part(r, &first, out)?;
    while let Some(rest) = r.next_child(body)? {
        r.skip(&rest)?;
    }
    Ok(())
}

fn read_part<'i>(
    r: &mut XmlReader<'i>,
    el: &Element<'i>,
    out: &mut Map<String, Value>,
) -> Result<(), Error> {
    if el.is(Ns::Soap, "Fault") {
        out.insert("kind".into(), json!("fault"));
        out.insert("fault".into(), to_json(&Fault::read(r, el)?));
        return Ok(());
    }
    if !matches!(el.ns, Ns::Messages | Ns::Other) {
        return Err(r.unexpected("an EWS operation, response or SOAP fault", el));
    }
    let name = el.name().to_owned();
    let ops = operations();
    let find = |op: &str| ops.iter().find(|d| d.name == op);
    let (kind, operation, value) = if let Some(op) = name.strip_suffix("ResponseMessage") {
        let value = match find(op) {
            Some(d) => (d.message)(r, el)?,
            None => generic_message(r, el)?,
        };
        ("response_message", op, value)
    } else if let Some(op) = name.strip_suffix("Response") {
        let value = match find(op) {
            Some(d) => (d.response)(r, el)?,
            None => generic_response(r, el)?,
        };
        ("response", op, value)
    } else if name == "SendNotification" {
        // A push notification: the server's request to us, carrying response messages.
        ("notification", name.as_str(), generic_response(r, el)?)
    } else {
        let Some(d) = find(&name) else {
            let known: Vec<&str> = ops.iter().map(|d| d.name).collect();
            return Err(r.error(&format!(
                "unknown EWS operation <{name}>; foldertrack reads requests of {}",
                known.join(", ")
            )));
        };
        ("request", name.as_str(), (d.request)(r, el)?)
    };
    out.insert("kind".into(), json!(kind));
    out.insert("operation".into(), json!(operation));
    let key = if kind == "request" {
        "request"
    } else {
        "messages"
    };
    out.insert(key.into(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_http_response_with_header_decodes() {
        let text = "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Header><h:ServerVersionInfo xmlns:h=\"http://schemas.microsoft.com/exchange/services/2006/types\" MajorVersion=\"15\"/></s:Header><s:Body><m:DeleteItemResponse xmlns:m=\"http://schemas.microsoft.com/exchange/services/2006/messages\"><m:ResponseMessages><m:DeleteItemResponseMessage ResponseClass=\"Error\"><m:ResponseCode>ErrorItemNotFound</m:ResponseCode></m:DeleteItemResponseMessage></m:ResponseMessages></m:DeleteItemResponse></s:Body></s:Envelope>";
        let v = decode(text).unwrap();
        assert_eq!(v["operation"], "DeleteItem");
        assert_eq!(v["header"]["server_version"]["major"], 15);
        assert_eq!(v["messages"][0]["Err"]["code"], "ErrorItemNotFound");
    }

    #[test]
    fn unknown_request_and_non_ews_documents_are_refused_with_a_position() {
        let err = decode("<m:GetInboxRules xmlns:m=\"http://schemas.microsoft.com/exchange/services/2006/messages\"/>")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown EWS operation <GetInboxRules>"),
            "{err}"
        );
        let err = decode("<html>\n<body/></html>").unwrap_err().to_string();
        assert!(err.starts_with("line 1"), "{err}");
        assert!(decode("not xml at all").is_err());
    }
}
