//! HTTP for EWS: the one place reqwest clients are built (rustls with the ring provider,
//! timeouts, optional extra root certificates, no redirects followed), the headers of an EWS
//! call, and the mapping of an HTTP answer — status, `Retry-After`, body — to a parsed
//! response or a [`client::Error`](super::Error). Never logs a body or a credential.

use super::{Call, Error};
use crate::ews::{self, Mailbox, Operation, Response};
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{RequestBuilder, StatusCode};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Time limits of every call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// To establish the TCP + TLS connection.
    pub connect: Duration,
    /// For the whole call, from sending to the last byte of the answer.
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            request: Duration::from_secs(100),
        }
    }
}

/// Builds a reqwest client with foldertrack's TLS and timeouts; every client is made here.
pub fn http_client(timeouts: &Timeouts) -> Result<reqwest::Client, Error> {
    builder(timeouts, None)?
        .build()
        .map_err(Error::BuildHttpClient)
}

/// A client builder with the rustls ring provider installed, the timeouts set, redirects
/// off (a redirect is reported, never followed: it could carry credentials elsewhere) and
/// the PEM certificates in `extra_roots` trusted next to the system's.
pub(crate) fn builder(
    timeouts: &Timeouts,
    extra_roots: Option<&Path>,
) -> Result<reqwest::ClientBuilder, Error> {
    // Err means a provider is already installed, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .connect_timeout(timeouts.connect)
        .timeout(timeouts.request)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("foldertrack/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = extra_roots {
        let pem = std::fs::read(path).map_err(|source| Error::RootCertificates {
            path: path.to_owned(),
            source,
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .ok()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| Error::BadRootCertificates {
                path: path.to_owned(),
            })?;
        builder = builder.tls_certs_merge(certs);
    }
    Ok(builder)
}

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
    pub(crate) async fn read(response: reqwest::Response) -> Result<Self, reqwest::Error> {
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await?;
        Ok(Self {
            status,
            headers,
            body,
        })
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
            retry_after: retry_after(&reply.headers, now),
        }),
        300..=399 => Err(Error::Redirected {
            call: call(),
            status,
            location: reply
                .headers
                .get(header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .unwrap_or("nowhere")
                .to_owned(),
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

/// `Retry-After` in seconds or as an HTTP date; a date in the past means no wait.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The value of an `Authorization` header, marked sensitive so no debug output shows it.
pub(crate) fn sensitive(value: &str) -> Option<HeaderValue> {
    let mut v = HeaderValue::from_str(value).ok()?;
    v.set_sensitive(true);
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ews::get_folder::GetFolder;

    fn headers(retry: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::RETRY_AFTER, HeaderValue::from_str(retry).unwrap());
        h
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2026 07:28:00 GMT").unwrap();
        assert_eq!(
            retry_after(&headers("120"), now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            retry_after(&headers("Wed, 21 Oct 2026 07:28:30 GMT"), now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after(&headers("Wed, 21 Oct 2026 07:00:00 GMT"), now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&headers("soon"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
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
