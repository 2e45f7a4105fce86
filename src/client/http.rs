//! HTTP for EWS: the headers of an EWS call, and the mapping of an HTTP answer — status,
//! `Retry-After`, body — to a parsed response or a [`client::Error`](super::Error). Clients
//! are built by [`crate::http`]. Never logs a body or a credential.
//!
//! Answers are read under `limits.max_response_bytes`. EWS answers are UTF-8 (the XML reader
//! reads nothing else): invalid bytes become U+FFFD, so text fields reach the sink with the
//! replacement character where the bytes were, identifiers holding one fail when used, and
//! each such answer is logged (`invalid_utf8`) with its call.

use super::{Call, Error};
use crate::ews::{self, Mailbox, Operation, Response};
use reqwest::header::{self, HeaderMap};
use reqwest::{RequestBuilder, StatusCode};

use std::time::SystemTime;

/// The SOAP POST of one EWS call, before authentication.
pub(crate) fn ews_request(
    http: &reqwest::Client,
    url: &url::Url,
    mailbox: &Mailbox,
    operation: &str,
    request_id: &str,
    body: &str,
) -> RequestBuilder {
    http.post(url.clone())
        .header(header::CONTENT_TYPE, "text/xml; charset=utf-8")
        .header(header::ACCEPT, "text/xml")
        .header(
            "SOAPAction",
            format!("\"http://schemas.microsoft.com/exchange/services/2006/messages/{operation}\""),
        )
        .header("X-AnchorMailbox", mailbox.as_str())
        .header("client-request-id", request_id)
        .header("return-client-request-id", "true")
        .body(body.to_owned())
}

/// Adds the affinity headers (ews-protocol §1.4) to a request whose `X-AnchorMailbox` already
/// names the group's anchor: `X-PreferServerAffinity: true`, and the `X-BackEndOverrideCookie`
/// as a cookie once known.
pub(crate) fn with_affinity(
    request: RequestBuilder,
    affinity: Option<&super::Affinity>,
) -> RequestBuilder {
    let Some(a) = affinity else {
        return request;
    };
    let request = request.header("X-PreferServerAffinity", "true");
    match &a.cookie {
        Some(c) => request.header(header::COOKIE, format!("{AFFINITY_COOKIE}={c}")),
        None => request,
    }
}

/// The cookie that pins a group of subscriptions to its mailbox server.
pub const AFFINITY_COOKIE: &str = "X-BackEndOverrideCookie";

/// The `X-BackEndOverrideCookie` value a `Set-Cookie` header carries, if any.
pub(crate) fn affinity_cookie(headers: &HeaderMap) -> Option<String> {
    headers.get_all(header::SET_COOKIE).iter().find_map(|v| {
        let text = v.to_str().ok()?;
        let pair = text.split(';').next()?;
        let (name, value) = pair.split_once('=')?;
        (name.trim() == AFFINITY_COOKIE).then(|| value.trim().to_owned())
    })
}

/// A random id in UUID v4 form, sent as `client-request-id` so a call can be found in the
/// server's logs.
pub(crate) fn request_id() -> String {
    let v = fastrand::u128(..);
    let v = (v & !(0xf << 76)) | (0x4 << 76); // version 4
    let v = (v & !(0x3 << 62)) | (0x2 << 62); // RFC 4122 variant
    let hex = format!("{v:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// An answer read to its end.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    /// Reads the answer to its end, at most `limit` bytes.
    pub(crate) async fn read(
        response: reqwest::Response,
        call: &Call,
        limit: u64,
    ) -> Result<Self, Error> {
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = crate::http::read_capped(response, limit)
            .await
            .map_err(|e| match e {
                crate::http::ReadError::Body(e) => Error::transport(call, e),
                too_large => Error::TooLarge {
                    call: call.clone(),
                    source: too_large,
                },
            })?;
        Ok(Self {
            status,
            headers,
            body: utf8(bytes, call),
        })
    }
}

/// The body as text; invalid UTF-8 is replaced by U+FFFD and logged with the call.
fn utf8(bytes: Vec<u8>, call: &Call) -> String {
    match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let first = e.utf8_error().valid_up_to();
            let bytes = e.into_bytes();
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let replaced = text.matches('\u{fffd}').count();
            tracing::warn!(
                event = "invalid_utf8",
                operation = call.operation,
                mailbox = %call.mailbox,
                first_at = first,
                replaced,
                "the answer is not valid UTF-8; text fields carry U+FFFD where the bytes were"
            );
            text
        }
    }
}

/// Maps an answer to the parsed response or the error it stands for.
pub(crate) fn interpret<O: Operation>(
    reply: &Reply,
    call: &Call,
    now: SystemTime,
) -> Result<Response<O::Message>, Error> {
    let call = || call.clone();
    let status = reply.status.as_u16();
    match status {
        200 => ews::read_response::<O>(&reply.body).map_err(|e| from_ews(e, call())),
        401 => Err(Error::Unauthorized { call: call() }),
        403 => Err(Error::Forbidden { call: call() }),
        429 | 503 => Err(Error::Throttled {
            call: call(),
            status,
            retry_after: crate::http::retry_after(&reply.headers, now),
        }),
        300..=399 => Err(Error::Redirected {
            call: call(),
            status,
            location: crate::http::redact_text(
                reply
                    .headers
                    .get(header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .unwrap_or("nowhere"),
            ),
        }),
        // Request-level failures are SOAP faults with HTTP 500; an HTML error page is not.
        500..=599 => match ews::read_response::<O>(&reply.body) {
            Err(ews::Error::Fault(fault)) => Err(Error::Fault {
                call: call(),
                fault,
            }),
            _ => Err(Error::ServerError {
                call: call(),
                status,
            }),
        },
        _ => Err(Error::UnexpectedStatus {
            call: call(),
            status,
        }),
    }
}

fn from_ews(e: ews::Error, call: Call) -> Error {
    match e {
        ews::Error::Fault(fault) => Error::Fault { call, fault },
        malformed @ ews::Error::Malformed { .. } => Error::Malformed {
            call,
            source: malformed,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ews::get_folder::GetFolder;
    use reqwest::header::HeaderValue;
    use std::time::Duration;

    fn headers(retry: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::RETRY_AFTER, HeaderValue::from_str(retry).unwrap());
        h
    }

    fn reply(status: u16, headers: HeaderMap, body: &str) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).unwrap(),
            headers,
            body: body.into(),
        }
    }

    fn call() -> Call {
        Call {
            mailbox: Mailbox::from("alice@example.com"),
            operation: "GetFolder",
        }
    }

    const BUSY_FAULT: &str = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault>
        <faultcode xmlns:a="http://schemas.microsoft.com/exchange/services/2006/types">a:ErrorServerBusy</faultcode>
        <faultstring>busy</faultstring><detail>
        <e:ResponseCode xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">ErrorServerBusy</e:ResponseCode>
        <t:MessageXml xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><t:Value Name="BackOffMilliseconds">5000</t:Value></t:MessageXml>
        </detail></s:Fault></s:Body></s:Envelope>"#;

    fn interpret_one(
        r: Reply,
    ) -> Result<Response<crate::ews::get_folder::GetFolderMessage>, Error> {
        interpret::<GetFolder>(&r, &call(), SystemTime::UNIX_EPOCH)
    }

    #[test]
    fn statuses_become_errors_that_name_the_call() {
        let cases: [(Reply, &str); 6] = [
            (reply(401, HeaderMap::new(), ""), "Unauthorized"),
            (reply(403, HeaderMap::new(), ""), "Forbidden"),
            (reply(503, headers("7"), ""), "Throttled"),
            (
                reply(
                    500,
                    HeaderMap::new(),
                    "<html>Server Error in '/EWS' Application</html>",
                ),
                "ServerError",
            ),
            (reply(302, HeaderMap::new(), ""), "Redirected"),
            (reply(404, HeaderMap::new(), ""), "UnexpectedStatus"),
        ];
        for (r, variant) in cases {
            let err = interpret_one(r).unwrap_err();
            assert!(format!("{err:?}").starts_with(variant), "{err:?}");
            assert!(
                err.to_string().contains("GetFolder for alice@example.com"),
                "{err}"
            );
        }
        let Err(Error::Throttled { retry_after, .. }) = interpret_one(reply(429, headers("7"), ""))
        else {
            panic!("429 is throttling");
        };
        assert_eq!(retry_after, Some(Duration::from_secs(7)));
    }

    #[test]
    fn a_fault_with_http_500_is_read_with_its_back_off() {
        let err = interpret_one(reply(500, HeaderMap::new(), BUSY_FAULT)).unwrap_err();
        let Error::Fault { fault, .. } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(fault.back_off(), Some(Duration::from_secs(5)));
        assert_eq!(
            err.action(),
            crate::client::Action::RetryAfter(Duration::from_secs(5))
        );
    }

    #[test]
    fn an_unreadable_200_is_malformed_with_its_position() {
        let err = interpret_one(reply(200, HeaderMap::new(), "<s:Envelope")).unwrap_err();
        assert!(matches!(err, Error::Malformed { .. }), "{err:?}");
        assert!(err.to_string().contains("line"), "{err}");
    }

    #[test]
    fn request_ids_look_like_uuids() {
        let id = request_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
        assert_ne!(id, request_id());
    }
}
