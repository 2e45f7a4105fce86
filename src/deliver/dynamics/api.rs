//! One Web API call, done the way Dataverse asks: the OData headers, a bearer token (an
//! expired one is refreshed once and the call retried), `CallerObjectId` when acting as a
//! user, `If-Match: *` on updates, and service protection honoured for every call of the
//! sink — after a 429 nothing is sent until its `Retry-After` has passed (calling inside the
//! window only lengthens it), and no more than the configured number of calls are in flight
//! (the service refuses more than 52 per user at once).
//! <https://learn.microsoft.com/en-us/power-apps/developer/data-platform/api-limits>

use crate::http::oauth::{self, Token, TokenSource};
use serde_json::Value;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// The Web API's path under the organisation URL.
pub const API_PATH: &str = "/api/data/v9.2";

/// The most calls the service takes at once from one user.
pub const CONCURRENCY_LIMIT: usize = 52;

/// The wait after a 429 that names none (the service always sends one; this is a guard).
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(30);

/// Why a call did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Service protection: nothing may be sent for this long.
    #[error("Dataverse asked to wait {}s (service protection limits)", .0.as_secs())]
    Throttled(Duration),
    #[error("Dataverse {url}: {what}")]
    Transport { url: String, what: String },
    #[error("Dataverse sign-in: {0}")]
    SignIn(#[source] oauth::Error),
    /// The service answered with an error.
    #[error("Dataverse answered HTTP {status}{}: {message}", if code.is_empty() { String::new() } else { format!(" ({code})") })]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
}

impl ApiError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn code(&self) -> &str {
        match self {
            ApiError::Refused { code, .. } => code,
            _ => "",
        }
    }

    pub fn message(&self) -> &str {
        match self {
            ApiError::Refused { message, .. } => message,
            _ => "",
        }
    }
}

/// A successful answer: its JSON body (`Null` when empty) and, for a create, the new row's URL.
#[derive(Debug)]
pub struct Reply {
    pub body: Value,
    pub entity_id: Option<String>,
}

impl Reply {
    /// The id in `OData-EntityId: …/emails(<id>)`.
    pub fn created_id(&self) -> Option<String> {
        let url = self.entity_id.as_deref()?;
        let inner = url.rsplit_once('(')?.1.strip_suffix(')')?;
        Some(inner.to_owned())
    }
}

/// One request.
#[derive(Debug)]
pub struct Call<'a> {
    pub method: reqwest::Method,
    /// Path and query under the organisation URL, already encoded.
    pub path: String,
    pub body: Option<&'a Value>,
    /// The Entra object id of the user to act as.
    pub caller: Option<&'a str>,
}

impl<'a> Call<'a> {
    pub fn get(path: String) -> Self {
        Self {
            method: reqwest::Method::GET,
            path,
            body: None,
            caller: None,
        }
    }

    pub fn post(path: String, body: &'a Value, caller: Option<&'a str>) -> Self {
        Self {
            method: reqwest::Method::POST,
            path,
            body: Some(body),
            caller,
        }
    }

    /// An update of an existing row only (`If-Match: *`: a PATCH without it creates the row
    /// when it is missing).
    pub fn update(path: String, body: &'a Value, caller: Option<&'a str>) -> Self {
        Self {
            method: reqwest::Method::PATCH,
            path,
            body: Some(body),
            caller,
        }
    }
}

/// The organisation's Web API, shared by every delivery of the sink.
pub struct Api {
    http: reqwest::Client,
    base: String,
    tokens: TokenSource,
    permits: Semaphore,
    /// Nothing is sent before this (after a 429).
    blocked_until: std::sync::Mutex<Option<Instant>>,
}

impl Api {
    pub fn new(
        http: reqwest::Client,
        org: &url::Url,
        tokens: TokenSource,
        concurrency: usize,
    ) -> Self {
        Self {
            http,
            base: org.as_str().trim_end_matches('/').to_owned(),
            tokens,
            permits: Semaphore::new(concurrency.clamp(1, CONCURRENCY_LIMIT)),
            blocked_until: std::sync::Mutex::new(None),
        }
    }

    /// The organisation URL, without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A token now (for check-config's sign-in check).
    pub async fn token(&self) -> Result<Token, ApiError> {
        self.tokens.token().await.map_err(ApiError::SignIn)
    }

    /// How long calls must still wait after a 429, if they must.
    fn blocked(&self) -> Option<Duration> {
        let until = (*self.blocked_until.lock().expect("unpoisoned"))?;
        until
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
    }

    fn block_for(&self, wait: Duration) {
        let mut until = self.blocked_until.lock().expect("unpoisoned");
        let new = Instant::now() + wait;
        if until.is_none_or(|u| u < new) {
            *until = Some(new);
        }
    }

    /// Sends `call`; a 401 gets one fresh token and one more try.
    pub async fn send(&self, call: Call<'_>) -> Result<Reply, ApiError> {
        if let Some(wait) = self.blocked() {
            return Err(ApiError::Throttled(wait));
        }
        let _permit = self.permits.acquire().await.expect("never closed");
        // A 429 may have come in while this call waited for its turn.
        if let Some(wait) = self.blocked() {
            return Err(ApiError::Throttled(wait));
        }
        let token = self.token().await?;
        let answer = match self.once(&call, &token).await? {
            Answer::Unauthorized => {
                let fresh = self
                    .tokens
                    .refresh(&token)
                    .await
                    .map_err(ApiError::SignIn)?;
                self.once(&call, &fresh).await?
            }
            other => other,
        };
        match answer {
            Answer::Ok(reply) => Ok(reply),
            Answer::Unauthorized => Err(ApiError::Refused {
                status: 401,
                code: String::new(),
                message: "a freshly issued token was refused".into(),
            }),
            Answer::Throttled(wait) => {
                let wait = wait.unwrap_or(DEFAULT_RETRY_AFTER);
                self.block_for(wait);
                tracing::warn!(
                    event = "dataverse_throttled",
                    retry_after_secs = wait.as_secs(),
                    "Dataverse service protection: every call waits"
                );
                Err(ApiError::Throttled(wait))
            }
            Answer::Error(e) => Err(e),
        }
    }

    async fn once(&self, call: &Call<'_>, token: &Token) -> Result<Answer, ApiError> {
        let url = format!("{}{}", self.base, call.path);
        let mut request = self
            .http
            .request(call.method.clone(), &url)
            .bearer_auth(token.secret())
            .header(reqwest::header::ACCEPT, "application/json")
            .header("OData-MaxVersion", "4.0")
            .header("OData-Version", "4.0");
        if let Some(id) = call.caller {
            request = request.header("CallerObjectId", id);
        }
        if call.method == reqwest::Method::PATCH {
            request = request.header(reqwest::header::IF_MATCH, "*");
        }
        if let Some(body) = call.body {
            request = request
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/json; charset=utf-8",
                )
                .body(body.to_string());
        }
        let transport = |e: reqwest::Error| ApiError::Transport {
            url: format!("{}{}", self.base, call.path.split('?').next().unwrap_or("")),
            what: crate::http::failure_words(&e),
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let retry_after =
            crate::http::retry_after(response.headers(), std::time::SystemTime::now());
        let entity_id = response
            .headers()
            .get("OData-EntityId")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = response.text().await.map_err(transport)?;
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(match status {
            200..=299 => Answer::Ok(Reply { body, entity_id }),
            401 => Answer::Unauthorized,
            429 => Answer::Throttled(retry_after),
            _ => Answer::Error(ApiError::Refused {
                status,
                code: body["error"]["code"].as_str().unwrap_or("").to_owned(),
                message: body["error"]["message"]
                    .as_str()
                    .unwrap_or("")
                    .trim()
                    .to_owned(),
            }),
        })
    }
}

enum Answer {
    Ok(Reply),
    Unauthorized,
    Throttled(Option<Duration>),
    Error(ApiError),
}

/// Encodes a query option's value: everything but unreserved characters and the few OData
/// keeps readable (`'`, `,`, `(`, `)`) is percent-encoded — `+` in particular, which the
/// service would read as a space.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'~'
            | b'\''
            | b','
            | b'('
            | b')' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// An OData string literal: single quotes doubled, then encoded for the query.
pub fn literal(s: &str) -> String {
    format!("'{}'", encode(&s.replace('\'', "''")))
}

/// `GET {set}?$select=…&$filter=…` (with `$top` when given).
pub fn query_path(set: &str, select: &str, filter: &str, top: Option<usize>) -> String {
    let mut path = format!(
        "{API_PATH}/{set}?$select={}&$filter={}",
        encode(select),
        filter
    );
    if let Some(n) = top {
        path += &format!("&$top={n}");
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_double_quotes_and_encode_what_the_service_would_misread() {
        assert_eq!(literal("<a'b+c@x.com>"), "'%3Ca''b%2Bc%40x.com%3E'");
        assert_eq!(
            query_path(
                "emails",
                "activityid",
                &format!("messageid eq {}", literal("a b")),
                Some(1)
            ),
            "/api/data/v9.2/emails?$select=activityid&$filter=messageid eq 'a%20b'&$top=1"
        );
        let reply = Reply {
            body: Value::Null,
            entity_id: Some("https://org.example.com/api/data/v9.2/emails(1d2c)".into()),
        };
        assert_eq!(reply.created_id().as_deref(), Some("1d2c"));
    }
}
