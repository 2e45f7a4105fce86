//! The SOAP envelope around every request and response: the headers foldertrack sends
//! (`RequestServerVersion`, `ExchangeImpersonation`), the one it reads (`ServerVersionInfo`),
//! and SOAP faults, which carry request-level failures such as `ErrorServerBusy`.
//! <https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/exchangeimpersonation>

use super::Error;
use super::response::{MessageXml, ResponseCode, ServerVersionInfo};
use super::xml::{Element, NS_MESSAGES, NS_SOAP, NS_TYPES, Ns, XmlReader, XmlWriter};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// `RequestServerVersion`: the schema version the request is written against. Variant names
/// are the wire names.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExchangeVersion {
    Exchange2010_SP1,
    Exchange2010_SP2,
    #[default]
    Exchange2013_SP1,
    Exchange2016,
}

impl ExchangeVersion {
    pub const ALL: [Self; 4] = [
        Self::Exchange2010_SP1,
        Self::Exchange2010_SP2,
        Self::Exchange2013_SP1,
        Self::Exchange2016,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exchange2010_SP1 => "Exchange2010_SP1",
            Self::Exchange2010_SP2 => "Exchange2010_SP2",
            Self::Exchange2013_SP1 => "Exchange2013_SP1",
            Self::Exchange2016 => "Exchange2016",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s.trim())
    }
}

/// Whom an impersonated request acts as (`t:ConnectingSID`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectingSid {
    PrimarySmtpAddress(String),
    SmtpAddress(String),
    PrincipalName(String),
    Sid(String),
}

impl ConnectingSid {
    fn element(&self) -> (&'static str, &str) {
        match self {
            Self::PrimarySmtpAddress(v) => ("t:PrimarySmtpAddress", v),
            Self::SmtpAddress(v) => ("t:SmtpAddress", v),
            Self::PrincipalName(v) => ("t:PrincipalName", v),
            Self::Sid(v) => ("t:SID", v),
        }
    }

    /// The address or name it carries, whatever its kind.
    pub fn value(&self) -> &str {
        self.element().1
    }
}

/// The SOAP headers of a request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestHeader {
    pub version: ExchangeVersion,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub impersonation: Option<ConnectingSid>,
}

/// Writes a whole request envelope; `body` writes the operation element.
pub fn write_request(header: &RequestHeader, w: &mut XmlWriter, body: impl FnOnce(&mut XmlWriter)) {
    w.element("soap:Envelope")
        .attr("xmlns:soap", NS_SOAP)
        .attr("xmlns:m", NS_MESSAGES)
        .attr("xmlns:t", NS_TYPES)
        .open();
    w.element("soap:Header").open();
    w.element("t:RequestServerVersion")
        .attr("Version", header.version.as_str())
        .empty();
    if let Some(sid) = &header.impersonation {
        let (name, value) = sid.element();
        w.element("t:ExchangeImpersonation").open();
        w.element("t:ConnectingSID").open();
        w.leaf(name, value);
        w.close("t:ConnectingSID");
        w.close("t:ExchangeImpersonation");
    }
    w.close("soap:Header");
    w.element("soap:Body").open();
    body(w);
    w.close("soap:Body");
    w.close("soap:Envelope");
}

/// What the SOAP header of a request or response says, as far as foldertrack cares.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Header {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_version: Option<ExchangeVersion>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub impersonation: Option<ConnectingSid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_version: Option<ServerVersionInfo>,
}

impl Header {
    /// Reads a `soap:Header`; headers foldertrack does not use are skipped.
    pub fn read(r: &mut XmlReader<'_>, el: &Element<'_>) -> Result<Self, Error> {
        let mut header = Header::default();
        while let Some(h) = r.next_child(el)? {
            match h.name() {
                "RequestServerVersion" => {
                    header.request_version =
                        h.attr("Version").and_then(|v| ExchangeVersion::parse(&v));
                    r.skip(&h)?;
                }
                "ServerVersionInfo" => {
                    header.server_version = Some(ServerVersionInfo::read(&h));
                    r.skip(&h)?;
                }
                "ExchangeImpersonation" => header.impersonation = read_impersonation(r, &h)?,
                _ => r.skip(&h)?,
            }
        }
        Ok(header)
    }
}

/// Walks an envelope: the header, then `body` on the first element inside `soap:Body`.
fn read_envelope<'i, T>(
    xml: &'i str,
    body: impl FnOnce(&mut XmlReader<'i>, &Element<'i>) -> Result<T, Error>,
) -> Result<(Header, T), Error> {
    let mut r = XmlReader::new(xml);
    let root = r.root()?;
    if !root.is(Ns::Soap, "Envelope") {
        return Err(r.unexpected("a SOAP soap:Envelope", &root));
    }
    let mut header = Header::default();
    while let Some(part) = r.next_child(&root)? {
        if part.is(Ns::Soap, "Header") {
            header = Header::read(&mut r, &part)?;
        } else if part.is(Ns::Soap, "Body") {
            let first = r
                .next_child(&part)?
                .ok_or_else(|| r.error("an empty soap:Body; expected an EWS element"))?;
            let value = body(&mut r, &first)?;
            return Ok((header, value));
        } else {
            r.skip(&part)?;
        }
    }
    Err(r.error("no soap:Body in the envelope"))
}

/// Reads a request envelope (the simulator's and `ews decode`'s side): its headers, then `body`
/// on the operation element.
pub fn read_request<'i, T>(
    xml: &'i str,
    body: impl FnOnce(&mut XmlReader<'i>, &Element<'i>) -> Result<T, Error>,
) -> Result<(RequestHeader, T), Error> {
    let (header, value) = read_envelope(xml, body)?;
    let header = RequestHeader {
        version: header.request_version.unwrap_or_default(),
        impersonation: header.impersonation,
    };
    Ok((header, value))
}

fn read_impersonation(
    r: &mut XmlReader<'_>,
    el: &Element<'_>,
) -> Result<Option<ConnectingSid>, Error> {
    let mut sid = None;
    while let Some(connecting) = r.next_child(el)? {
        while let Some(v) = r.next_child(&connecting)? {
            let text = r.trimmed(&v)?;
            sid = match v.name() {
                "PrimarySmtpAddress" => Some(ConnectingSid::PrimarySmtpAddress(text)),
                "SmtpAddress" => Some(ConnectingSid::SmtpAddress(text)),
                "PrincipalName" => Some(ConnectingSid::PrincipalName(text)),
                "SID" => Some(ConnectingSid::Sid(text)),
                _ => sid,
            };
        }
    }
    Ok(sid)
}

/// Reads a response envelope: `ServerVersionInfo` from the header, then `body` on the first
/// element inside `soap:Body`. A SOAP fault becomes [`Error::Fault`].
pub fn read_response<'i, T>(
    xml: &'i str,
    body: impl FnOnce(&mut XmlReader<'i>, &Element<'i>) -> Result<T, Error>,
) -> Result<(Option<ServerVersionInfo>, T), Error> {
    let (header, value) = read_envelope(xml, |r, el| {
        if el.is(Ns::Soap, "Fault") {
            return Err(Error::Fault(Box::new(Fault::read(r, el)?)));
        }
        body(r, el)
    })?;
    Ok((header.server_version, value))
}

/// A SOAP 1.1 fault: a request-level failure (HTTP 500).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Fault {
    /// `faultcode` as sent, e.g. `a:ErrorServerBusy`.
    pub fault_code: String,
    /// `faultstring`: localised text; never matched on.
    pub fault_string: String,
    /// `detail/e:ResponseCode`, else the local part of `faultcode`.
    pub code: Option<ResponseCode>,
    /// `detail/e:Message`.
    pub message: Option<String>,
    pub message_xml: MessageXml,
}

impl Fault {
    /// The back-off a busy server asked for.
    pub fn back_off(&self) -> Option<Duration> {
        self.message_xml.back_off()
    }

    /// Reads a `soap:Fault`.
    pub fn read(r: &mut XmlReader<'_>, el: &Element<'_>) -> Result<Self, Error> {
        let mut fault = Fault::default();
        while let Some(child) = r.next_child(el)? {
            match child.name() {
                "faultcode" => fault.fault_code = r.trimmed(&child)?,
                "faultstring" => fault.fault_string = r.text(&child)?,
                "detail" => {
                    while let Some(d) = r.next_child(&child)? {
                        match d.name() {
                            "ResponseCode" => fault.code = Some(ResponseCode::parse(&r.text(&d)?)),
                            "Message" => fault.message = Some(r.text(&d)?),
                            "MessageXml" => fault.message_xml = MessageXml::read(r, &d)?,
                            _ => r.skip(&d)?,
                        }
                    }
                }
                _ => r.skip(&child)?,
            }
        }
        if fault.code.is_none() {
            let local = fault.fault_code.rsplit(':').next().unwrap_or_default();
            if local.starts_with("Error") {
                fault.code = Some(ResponseCode::parse(local));
            }
        }
        Ok(fault)
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.code {
            Some(code) => write!(f, "{code}")?,
            None => write!(f, "{}", self.fault_code)?,
        }
        let text = self.message.as_deref().unwrap_or(&self.fault_string).trim();
        if !text.is_empty() {
            write!(f, ": {text}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_headers_round_trip() {
        let header = RequestHeader {
            version: ExchangeVersion::Exchange2016,
            impersonation: Some(ConnectingSid::PrimarySmtpAddress(
                "alice@example.com".into(),
            )),
        };
        let mut w = XmlWriter::new();
        write_request(&header, &mut w, |w| w.element("m:GetFolder").empty());
        let xml = w.finish();
        let (read, op) = read_request(&xml, |_, el| Ok(el.name().to_owned())).unwrap();
        assert_eq!(read, header);
        assert_eq!(op, "GetFolder");
    }

    #[test]
    fn fault_with_back_off_is_read_in_any_prefix() {
        let xml = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">
          <s:Body><s:Fault>
            <faultcode xmlns:a="http://schemas.microsoft.com/exchange/services/2006/types">a:ErrorServerBusy</faultcode>
            <faultstring xml:lang="en-US">The server cannot service this request right now.</faultstring>
            <detail>
              <e:ResponseCode xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">ErrorServerBusy</e:ResponseCode>
              <t:MessageXml xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">
                <t:Value Name="BackOffMilliseconds">5000</t:Value>
              </t:MessageXml>
            </detail>
          </s:Fault></s:Body></s:Envelope>"#;
        let Err(Error::Fault(fault)) = read_response(xml, |_, _| Ok(())) else {
            panic!("expected a fault");
        };
        assert_eq!(fault.code, Some(ResponseCode::ErrorServerBusy));
        assert_eq!(fault.back_off(), Some(Duration::from_secs(5)));
    }
}
