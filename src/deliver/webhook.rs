//! The webhook sink: an HTTPS POST of the tracking request's JSON, signed with HMAC-SHA256 over
//! the time of sending and the exact body bytes (so a receiver can refuse a replayed request),
//! with the event id as `Idempotency-Key` so the receiver can deduplicate.
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
            // Signed per attempt: a retry carries the time it was sent.
            .header(
                SIGNATURE_HEADER,
                sign(self.secret.expose_secret().as_bytes(), unix_now(), &body),
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

/// The header carrying the signature: `t=<unix seconds>,v1=<hex of HMAC-SHA256(secret,
/// "<t>.<body>")>`. The scheme replaced `sha256=<hex HMAC(secret, body)>`, which signed no time.
pub const SIGNATURE_HEADER: &str = "X-Foldertrack-Signature";
/// The header carrying the event id.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";
/// How far from its own clock a receiver should accept a signature's time (README: Webhook).
pub const TOLERANCE_SECS: u64 = 300;

/// Now, in Unix seconds (what [`sign`] and [`verify`] take).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn mac(secret: &[u8], timestamp: u64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The signature header's value for `body` sent at `timestamp` (Unix seconds).
pub fn sign(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    let sig = mac(secret, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(sig))
}

/// Checks a signature header the way a receiver should: the time within `tolerance_secs` of
/// `now` (Unix seconds), any `v1` matching, compared in constant time.
pub fn verify(secret: &[u8], body: &[u8], header: &str, now: u64, tolerance_secs: u64) -> bool {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<u64>().ok(),
            Some(("v1", v)) => signatures.extend(hex::decode(v).ok()),
            _ => {}
        }
    }
    let Some(t) = timestamp else {
        return false;
    };
    t.abs_diff(now) <= tolerance_secs
        && signatures
            .iter()
            .any(|sig| mac(secret, t, body).verify_slice(sig).is_ok())
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
    fn signature_covers_time_and_body_and_verifies_within_the_tolerance() {
        // RFC 4231 test case 2, with the message being "<t>.<body>".
        let sig = sign(b"Jefe", 1_700_000_000, b"what do ya want for nothing?");
        let mut expected = <Hmac<Sha256> as Mac>::new_from_slice(b"Jefe").unwrap();
        expected.update(b"1700000000.what do ya want for nothing?");
        let hex = hex::encode(expected.finalize().into_bytes());
        assert_eq!(sig, format!("t=1700000000,v1={hex}"));
        let ok = |secret: &[u8], body: &[u8], header: &str, now| {
            verify(secret, body, header, now, TOLERANCE_SECS)
        };
        let body = b"what do ya want for nothing?";
        assert!(ok(b"Jefe", body, &sig, 1_700_000_000));
        assert!(ok(b"Jefe", body, &sig, 1_700_000_300));
        assert!(!ok(b"Jefe", body, &sig, 1_700_000_301), "too old: a replay");
        assert!(!ok(b"Jefe", body, &sig, 1_699_999_699), "too far ahead");
        assert!(!ok(
            b"Jefe",
            b"what do ya want for nothing!",
            &sig,
            1_700_000_000
        ));
        assert!(!ok(b"other", body, &sig, 1_700_000_000));
        let moved = sig.replace("t=1700000000", "t=1700000001");
        assert!(!ok(b"Jefe", body, &moved, 1_700_000_000), "tampered time");
        // A second v1 (a receiver rotating secrets sees several) is accepted if any matches.
        let other = sign(b"other", 1_700_000_000, body);
        let both = format!("{other},{}", sig.split_once(',').unwrap().1);
        assert!(ok(b"Jefe", body, &both, 1_700_000_000));
        assert!(!ok(b"Jefe", body, "sha256=00", 1_700_000_000));
        assert!(!ok(b"Jefe", body, "v1=00", 1_700_000_000));
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
