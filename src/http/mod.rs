//! HTTP plumbing every outbound connection shares — EWS, the webhook and Dataverse sinks, the
//! OAuth token endpoint, the CLI's admin client: the one place reqwest clients are built (rustls
//! with the ring provider, installed here and nowhere else), timeouts, extra root certificates,
//! redirects never followed, `Retry-After`, answers read under a size cap ([`read_capped`]),
//! and URLs made fit to print ([`redact`]). Knows nothing of EWS or of any sink.

pub mod oauth;

use reqwest::header::{self, HeaderMap, HeaderValue};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Why no HTTP client could be built.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("http client: {0}; check this machine's TLS setup")]
    Build(#[source] reqwest::Error),
    #[error("extra root certificates {path}: {source}; point the setting at a readable PEM file")]
    RootCertificates {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("extra root certificates {path}: no PEM certificate in it; give a PEM bundle")]
    BadRootCertificates { path: PathBuf },
}

/// Why an answer was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(
        "the answer is larger than limits.max_response_bytes ({} MiB){}; no legitimate answer is this big, so the server or a proxy in between is misbehaving",
        .limit >> 20,
        .announced.map(|n| format!(", {n} bytes announced")).unwrap_or_default()
    )]
    TooLarge { limit: u64, announced: Option<u64> },
    #[error("{0}")]
    Body(#[source] reqwest::Error),
}

/// The default of `limits.max_response_bytes`. The largest legitimate EWS answers are GetItem
/// batches: 100 items with many recipients measure well under 4 MiB, and a single mail's body
/// is held to Exchange's message size limit; 64 MiB is far above both.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 64 << 20;

/// Reads an answer's body, at most `limit` bytes: a `Content-Length` over it fails at once,
/// and a body without one is read chunk by chunk and dropped as soon as it passes the limit.
pub async fn read_capped(
    mut response: reqwest::Response,
    limit: u64,
) -> Result<Vec<u8>, ReadError> {
    let announced = response.content_length();
    if announced.is_some_and(|n| n > limit) {
        return Err(ReadError::TooLarge { limit, announced });
    }
    let mut body = Vec::with_capacity(announced.unwrap_or(0) as usize);
    while let Some(chunk) = response.chunk().await.map_err(ReadError::Body)? {
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(ReadError::TooLarge {
                limit,
                announced: None,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A URL fit for a log line or a stored reason: no user name or password, and no query or
/// fragment (they carry secrets, e.g. the `?code=` of an Azure Function); `?…` says that
/// something was left out.
pub fn redact(url: &url::Url) -> String {
    let mut clean = url.clone();
    let _ = clean.set_username("");
    let _ = clean.set_password(None);
    clean.set_fragment(None);
    let hidden = clean.query().is_some();
    clean.set_query(None);
    let mut text = clean.to_string();
    if hidden {
        text.push_str("?…");
    }
    text
}

/// [`redact`] for text that may not even parse as a URL (a value from the config file).
pub fn redact_text(text: &str) -> String {
    if let Ok(url) = url::Url::parse(text) {
        return redact(&url);
    }
    let (head, cut) = match text.find(['?', '#']) {
        Some(i) => (&text[..i], "?…"),
        None => (text, ""),
    };
    // `…//user:pass@host…` → `…//host…`
    let head = match (head.find("//"), head.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}{}", &head[..s + 2], &head[at + 1..]),
        _ => head.to_owned(),
    };
    format!("{head}{cut}")
}

/// A reqwest error whose message names the URL redacted (its Display includes the URL).
pub fn redact_error(e: reqwest::Error) -> reqwest::Error {
    match e.url().map(|u| url::Url::parse(&redact(u))) {
        Some(Ok(clean)) => e.with_url(clean),
        _ => e.without_url(),
    }
}

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

/// A client with foldertrack's TLS and timeouts.
pub fn client(timeouts: &Timeouts) -> Result<reqwest::Client, Error> {
    builder(timeouts, None)?.build().map_err(Error::Build)
}

/// A client builder with the rustls ring provider installed, the timeouts set, redirects off (a
/// redirect is reported, never followed: it could carry credentials elsewhere) and the PEM
/// certificates in `extra_roots` trusted next to the system's.
pub fn builder(
    timeouts: &Timeouts,
    extra_roots: Option<&Path>,
) -> Result<reqwest::ClientBuilder, Error> {
    // reqwest is built without a default provider; Err means one is installed already.
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

/// The longest wait a server may impose through `Retry-After` or `BackOffMilliseconds`: a
/// larger figure (a bug, a misconfigured proxy, a value near `u64::MAX`) would otherwise
/// pause a mailbox or the whole account for ever, or overflow a deadline.
pub const MAX_SERVER_WAIT: Duration = Duration::from_secs(15 * 60);

/// A wait the server asked for, held to [`MAX_SERVER_WAIT`]; a clamp is logged with the
/// figure asked for and where it came from.
pub fn clamp_server_wait(asked: Duration, source: &'static str) -> Duration {
    if asked <= MAX_SERVER_WAIT {
        return asked;
    }
    tracing::warn!(
        event = "server_wait_clamped",
        source,
        asked_secs = asked.as_secs(),
        clamped_secs = MAX_SERVER_WAIT.as_secs()
    );
    MAX_SERVER_WAIT
}

/// `Retry-After` in seconds or as an HTTP date; a date in the past means no wait; held to
/// [`MAX_SERVER_WAIT`].
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    retry_after_value(headers.get(header::RETRY_AFTER)?.to_str().ok()?, now)
}

/// A `Retry-After` value: whole or decimal seconds (Microsoft Graph sends `2.128`), or an HTTP
/// date; held to [`MAX_SERVER_WAIT`].
pub fn retry_after_value(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let asked = if let Ok(seconds) = value.parse::<u64>() {
        Duration::from_secs(seconds)
    } else if let Ok(seconds) = value.parse::<f64>() {
        if !(seconds.is_finite() && seconds >= 0.0) {
            return None;
        }
        Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX)
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(clamp_server_wait(asked, "Retry-After"))
}

/// A header value marked sensitive, so no debug output shows it (credentials, tokens).
pub fn sensitive(value: &str) -> Option<HeaderValue> {
    let mut v = HeaderValue::from_str(value).ok()?;
    v.set_sensitive(true);
    Some(v)
}

/// True for `localhost` and loopback addresses: the only places plain http may carry
/// credentials (the simulator in tests and the demo).
pub fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// A request that got no answer, in words for a log or an item's reason.
pub fn failure_words(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if let Some(problem) = tls_problem(e) {
        format!(
            "TLS failed: {problem}; check the server's certificate (the system's CAs are trusted)"
        )
    } else if e.is_connect() {
        "cannot connect".into()
    } else {
        "the connection failed".into()
    }
}

/// The TLS failure (certificate, handshake) among the error's causes, in rustls' words (e.g.
/// `invalid peer certificate: UnknownIssuer`), if there is one.
pub fn tls_problem(e: &reqwest::Error) -> Option<String> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(tls) = c.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        // An io::Error's source() skips the error it wraps: step into that one instead.
        cause = match c
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner),
            None => c.source(),
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_urls_keep_no_credentials_and_no_query() {
        let url =
            url::Url::parse("https://u:pw@example.com:8443/api/hook?code=SECRET#frag").unwrap();
        assert_eq!(redact(&url), "https://example.com:8443/api/hook?…");
        let plain = url::Url::parse("https://example.com/EWS/Exchange.asmx").unwrap();
        assert_eq!(redact(&plain), "https://example.com/EWS/Exchange.asmx");
        assert_eq!(
            redact_text("https://u:pw@host/x?code=S"),
            "https://host/x?…"
        );
        assert_eq!(redact_text("//u:pw@host/x?code=S"), "//host/x?…");
        assert_eq!(redact_text("not a url?code=S"), "not a url?…");
    }

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
        assert_eq!(
            retry_after(&headers("18000000000000000000"), now),
            Some(MAX_SERVER_WAIT)
        );
        assert_eq!(
            retry_after(&headers("Fri, 31 Dec 9999 23:59:59 GMT"), now),
            Some(MAX_SERVER_WAIT)
        );
        assert_eq!(
            retry_after(&headers("2.128"), now),
            Some(Duration::from_millis(2128))
        );
        assert_eq!(retry_after(&headers("-1.5"), now), None);
        assert_eq!(retry_after(&headers("NaN"), now), None);
        assert_eq!(retry_after(&headers("1e30"), now), Some(MAX_SERVER_WAIT));
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }
}
