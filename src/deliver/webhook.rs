//! The webhook sink: an HTTPS POST of the tracking request's JSON, signed with HMAC-SHA256 over
//! the exact body bytes, with the event id as `Idempotency-Key` so the receiver can deduplicate.
//! 2xx = delivered, 409 = already delivered, 400/401/403 = rejected, other 4xx = refused
//! (tried a few times), 408, 429, 5xx and timeouts = retried with back-off.

use super::Sink;
use super::policy::DeliveryError;
use crate::tracking::TrackingRequest;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use std::time::{Duration, SystemTime};

/// Requests in flight at once to the receiver.
const IN_FLIGHT: usize = 16;

/// POSTs each tracking request to the receiver, signed.
pub struct WebhookSink {
    http: reqwest::Client,
    url: url::Url,
    secret: SecretString,
}

impl WebhookSink {
    pub fn new(
        url: url::Url,
        secret: SecretString,
        timeout: Duration,
    ) -> Result<Self, crate::http::Error> {
        let timeouts = crate::http::Timeouts {
            connect: timeout.min(Duration::from_secs(10)),
            request: timeout,
        };
        let http = crate::http::client(&timeouts)?;
        Ok(Self { http, url, secret })
    }
}

impl Sink for WebhookSink {
    async fn deliver(&self, request: &TrackingRequest) -> Result<(), DeliveryError> {
        let body = serde_json::to_vec(request).expect("requests always serialise");
        let answer = self
            .http
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(
                SIGNATURE_HEADER,
                sign(self.secret.expose_secret().as_bytes(), &body),
            )
            .header(IDEMPOTENCY_HEADER, &request.event_id)
            .body(body)
            .send()
            .await
            .map_err(|e| super::transport_error("webhook", &e))?;
        let retry_after = crate::http::retry_after(answer.headers(), SystemTime::now());
        outcome(answer.status().as_u16(), retry_after).map(drop)
    }

    async fn deliver_all(&self, requests: &[&TrackingRequest]) -> Vec<Result<(), DeliveryError>> {
        let mut out = Vec::with_capacity(requests.len());
        for chunk in requests.chunks(IN_FLIGHT) {
            let calls: Vec<_> = chunk.iter().map(|r| self.deliver(r)).collect();
            out.extend(futures_util::future::join_all(calls).await);
        }
        out
    }
}

/// The header carrying the body's signature: `sha256=<hex of HMAC-SHA256(secret, body)>`.
pub const SIGNATURE_HEADER: &str = "X-Foldertrack-Signature";
/// The header carrying the event id.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// The signature header's value for `body`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks a signature header the way a receiver should: constant-time.
pub fn verify(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

/// A receiver's accepted answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accepted {
    Created,
    /// 409: the receiver already has this event.
    AlreadyDelivered,
}

/// What a receiver's HTTP status means for the delivery. `retry_after` is the parsed
/// `Retry-After` header, if any.
pub fn outcome(status: u16, retry_after: Option<Duration>) -> Result<Accepted, DeliveryError> {
    match status {
        200..=299 => Ok(Accepted::Created),
        409 => Ok(Accepted::AlreadyDelivered),
        408 | 429 | 500..=599 => Err(DeliveryError::Transient {
            reason: format!("webhook answered HTTP {status}"),
            retry_after,
        }),
        400 | 401 | 403 => Err(DeliveryError::Rejected {
            reason: format!(
                "webhook answered HTTP {status}; fix the receiver, then `foldertrack retry`"
            ),
        }),
        _ => Err(DeliveryError::Refused {
            reason: format!("webhook answered HTTP {status}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_a_known_vector_and_verifies() {
        // RFC 4231 test case 2.
        let sig = sign(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(verify(b"Jefe", b"what do ya want for nothing?", &sig));
        assert!(!verify(b"Jefe", b"what do ya want for nothing!", &sig));
        assert!(!verify(b"other", b"what do ya want for nothing?", &sig));
        assert!(!verify(b"Jefe", b"x", "md5=00"));
    }

    #[test]
    fn status_table() {
        let hint = Some(Duration::from_secs(30));
        assert_eq!(outcome(201, None), Ok(Accepted::Created));
        assert_eq!(outcome(409, None), Ok(Accepted::AlreadyDelivered));
        for status in [408, 429, 500, 502, 503] {
            assert!(
                matches!(outcome(status, hint), Err(DeliveryError::Transient { retry_after, .. }) if retry_after == hint),
                "{status}"
            );
        }
        for status in [400, 401, 403] {
            assert!(
                matches!(outcome(status, None), Err(DeliveryError::Rejected { .. })),
                "{status}"
            );
        }
        for status in [404, 410, 422, 302] {
            assert!(
                matches!(outcome(status, None), Err(DeliveryError::Refused { .. })),
                "{status}"
            );
        }
    }
}
