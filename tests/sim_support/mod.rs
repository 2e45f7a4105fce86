//! Helpers shared by the simulator's test files: start a simulator with short timings, an HTTP
//! client, and EWS calls over real HTTP.
#![allow(dead_code)]

use foldertrack::ews::{self, ConnectingSid, Operation, RequestHeader};
use foldertrack::sim::{SimHandle, SimOptions, Simulator};
use std::time::Duration;

pub const ALICE: &str = "alice@example.com";
pub const BOB: &str = "bob@example.com";
pub const SVC: &str = "svc-tracking@example.com";
pub const PW: &str = "alice-pw";
pub const SVC_PW: &str = "svc-pw";

/// The tests' raw HTTP client, built the way the product builds its own.
pub fn http() -> reqwest::Client {
    foldertrack::http::client(&foldertrack::http::Timeouts {
        connect: Duration::from_secs(5),
        request: Duration::from_secs(20),
    })
    .unwrap()
}

pub fn quick_options() -> SimOptions {
    SimOptions {
        minute: Duration::from_millis(400),
        keep_alive: Duration::from_millis(150),
        ..SimOptions::default()
    }
}

/// A simulator with alice (password), bob (impersonation only) and a service account that may
/// impersonate alice but not bob.
pub async fn start() -> SimHandle {
    start_with(quick_options()).await
}

pub async fn start_with(options: SimOptions) -> SimHandle {
    let sim = Simulator::start(options).await.unwrap();
    let c = sim.control();
    c.create_user(ALICE, PW).unwrap();
    c.create_mailbox(BOB).unwrap();
    c.create_service_account(SVC, SVC_PW).unwrap();
    c.grant_impersonation(SVC, ALICE).unwrap();
    sim
}

#[derive(Clone, Copy)]
pub enum Auth<'a> {
    Basic(&'a str, &'a str),
    Bearer(&'a str),
}

pub const AS_ALICE: Auth<'static> = Auth::Basic(ALICE, PW);
pub const AS_SVC: Auth<'static> = Auth::Basic(SVC, SVC_PW);

/// POSTs raw XML; returns the status and the body.
pub async fn post(
    sim: &SimHandle,
    auth: Auth<'_>,
    anchor: Option<&str>,
    xml: String,
) -> (u16, String) {
    let mut req = http()
        .post(sim.ews_url())
        .header("content-type", "text/xml; charset=utf-8")
        .body(xml);
    req = match auth {
        Auth::Basic(u, p) => req.basic_auth(u, Some(p)),
        Auth::Bearer(t) => req.bearer_auth(t),
    };
    if let Some(a) = anchor {
        req = req.header("X-AnchorMailbox", a);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

pub fn header(impersonate: Option<&str>) -> RequestHeader {
    RequestHeader {
        impersonation: impersonate.map(|m| ConnectingSid::PrimarySmtpAddress(m.to_owned())),
        ..RequestHeader::default()
    }
}

/// Sends `op` as `auth`, impersonating `impersonate` (with X-AnchorMailbox) when given.
pub async fn call<O: Operation>(
    sim: &SimHandle,
    auth: Auth<'_>,
    impersonate: Option<&str>,
    op: &O,
) -> (u16, String) {
    let xml = ews::write_request(op, &header(impersonate));
    post(sim, auth, impersonate, xml).await
}

/// Sends `op` as alice and reads the response; panics on a fault.
pub async fn alice<O: Operation>(sim: &SimHandle, op: &O) -> ews::Response<O::Message> {
    let (status, body) = call(sim, AS_ALICE, None, op).await;
    assert_eq!(status, 200, "{body}");
    ews::read_response::<O>(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// A raw request envelope around `body` (for operations `ews/` has no request type for).
pub fn envelope(body: &str, impersonate: Option<&str>) -> String {
    let imp = impersonate
        .map(|m| {
            format!(
                "<t:ExchangeImpersonation><t:ConnectingSID><t:PrimarySmtpAddress>{m}</t:PrimarySmtpAddress></t:ConnectingSID></t:ExchangeImpersonation>"
            )
        })
        .unwrap_or_default();
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><soap:Header><t:RequestServerVersion Version="Exchange2013_SP1"/>{imp}</soap:Header><soap:Body>{body}</soap:Body></soap:Envelope>"#
    )
}

/// The text of the first element named `name` (any prefix) in `xml`.
pub fn first_text(xml: &str, name: &str) -> Option<String> {
    all_texts(xml, name).into_iter().next()
}

/// The texts of every element named `name` (any prefix), in document order.
pub fn all_texts(xml: &str, name: &str) -> Vec<String> {
    use foldertrack::ews::xml::XmlReader;
    fn walk(
        r: &mut XmlReader<'_>,
        el: &foldertrack::ews::xml::Element<'_>,
        name: &str,
        out: &mut Vec<String>,
    ) {
        while let Some(child) = r.next_child(el).unwrap() {
            if child.name() == name {
                out.push(r.text(&child).unwrap());
            } else {
                walk(r, &child, name, out);
            }
        }
    }
    let mut r = XmlReader::new(xml);
    let root = r.root().unwrap();
    let mut out = Vec::new();
    walk(&mut r, &root, name, &mut out);
    out
}

/// The `Id` attributes of every element named `name`.
pub fn all_ids(xml: &str, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = xml;
    let needle = format!(":{name} Id=\"");
    while let Some(at) = rest.find(&needle) {
        rest = &rest[at + needle.len()..];
        if let Some(end) = rest.find('"') {
            out.push(rest[..end].to_owned());
        }
    }
    out
}
