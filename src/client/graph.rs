//! Microsoft Graph over HTTP: the transport of the Graph feed. Every request passes the same
//! call gate as EWS ([`Gate`]) with Graph's mailbox limits added — 10,000 requests per mailbox
//! in 10 minutes, a `$batch` counting each request in it, and never more than
//! [`throttle::MAILBOX_CONCURRENCY`] call in flight per mailbox (Graph allows 4). Tokens come
//! from OAuth client credentials through [`crate::http::oauth`] (refreshed once on 401).
//! 429 and 503 with `Retry-After` (decimal seconds) hold that mailbox in the gate: Graph's
//! budgets are per app and mailbox. Links from answers are followed only when they point under
//! the configured Graph root, so a token never goes anywhere else. Never logs a body or a token.

use super::auth::{self, Authenticator};
use super::http::{Reply, request_id};
use super::throttle::{self, Gate, Limits, Window};
use super::{Auth, Call, ClientSettings, DEFAULT_BUSY_BACK_OFF, Error, Target, busy_wait};
use crate::ews::Mailbox;
use crate::graph::{self, batch};
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{Method, RequestBuilder};
use serde::de::DeserializeOwned;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use url::Url;

const _: () = assert!(throttle::MAILBOX_CONCURRENCY <= graph::MAILBOX_CONCURRENCY);

/// The client of one Entra app. Cheap to clone; clones share connections, tokens and the gate.
#[derive(Clone)]
pub struct GraphClient {
    inner: Arc<Inner>,
}

struct Inner {
    /// The Graph root without a trailing slash: `https://graph.microsoft.com/v1.0`.
    base: Url,
    auth: Authenticator,
    gate: Gate,
    /// The largest answer read (`limits.max_response_bytes`).
    max_response: u64,
}

/// One request.
pub struct Request<'a> {
    /// A short name for logs, metrics and errors: `messages.delta`, `mailFolders.get`, ….
    pub operation: &'static str,
    pub target: Target,
    pub method: Method,
    pub url: Url,
    /// The `Prefer` header ([`graph::prefer`]).
    pub prefer: String,
    pub body: Option<&'a serde_json::Value>,
}

impl Request<'_> {
    /// A GET with the `Prefer` header every request carries.
    pub fn get(operation: &'static str, target: Target, url: Url, prefer: String) -> Self {
        Self {
            operation,
            target,
            method: Method::GET,
            url,
            prefer,
            body: None,
        }
    }
}

/// A successful answer, read to its end.
#[derive(Debug)]
pub struct Answer {
    pub call: Call,
    pub status: u16,
    pub body: String,
}

impl Answer {
    /// The body as `T`; an unreadable body is [`Error::GraphMalformed`] (retried later).
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_str(&self.body).map_err(|e| self.malformed(e))
    }

    /// The error of a body that could not be read as what it should be.
    pub fn malformed(&self, e: impl std::fmt::Display) -> Error {
        Error::GraphMalformed {
            call: self.call.clone(),
            what: e.to_string(),
        }
    }
}

/// The error of one `$batch` item that did not succeed.
pub fn item_error(call: &Call, answer: &batch::BatchAnswer, target: Target) -> Error {
    let detail = answer
        .body
        .as_ref()
        .and_then(|b| serde_json::from_value::<ErrorBody>(b.clone()).ok())
        .map(|b| b.error)
        .unwrap_or_default();
    Error::GraphRefused {
        call: call.clone(),
        status: answer.status,
        code: detail.code,
        message: detail.message,
        retry_after: answer
            .header("Retry-After")
            .and_then(|v| crate::http::retry_after_value(v, SystemTime::now())),
        target,
    }
}

#[derive(serde::Deserialize)]
struct ErrorBody {
    error: graph::error::ErrorDetail,
}

impl GraphClient {
    /// A client for `settings.url` (the Graph root); OAuth client credentials only.
    pub fn new(settings: ClientSettings) -> Result<Self, Error> {
        auth::require_tls(&settings.url)?;
        if !matches!(settings.auth, Auth::OAuth { .. }) {
            return Err(Error::GraphNeedsOAuth);
        }
        let limits = Limits {
            mailbox_window: Some(Window {
                requests: const { NonZeroU32::new(graph::MAILBOX_REQUESTS).unwrap() },
                per: graph::MAILBOX_WINDOW,
            }),
            ..settings.limits
        };
        let auth = Authenticator::new(
            &settings.auth,
            &settings.timeouts,
            settings.extra_roots.as_deref(),
            limits.account_concurrency,
        )?;
        let mut base = settings.url;
        let trimmed = base.path().trim_end_matches('/').to_owned();
        base.set_path(&trimmed);
        base.set_query(None);
        Ok(Self {
            inner: Arc::new(Inner {
                base,
                auth,
                gate: Gate::new(limits),
                max_response: settings.max_response_bytes,
            }),
        })
    }

    /// The application permissions the app's token carries (`check-config`); `None` when
    /// the token does not show them.
    pub async fn app_roles(&self) -> Result<Option<Vec<String>>, crate::http::oauth::Error> {
        self.inner.auth.roles().await
    }

    /// The call gate, for metrics and for the watcher's own back-offs.
    pub fn gate(&self) -> &Gate {
        &self.inner.gate
    }

    pub fn base(&self) -> &Url {
        &self.inner.base
    }

    /// The root plus a path from [`crate::graph`] (`/users/…`).
    pub fn url(&self, path: &str) -> Url {
        let text = format!("{}{path}", self.inner.base.as_str().trim_end_matches('/'));
        // The root is a valid URL and the paths are percent-encoded: this cannot fail, but an
        // odd path falls back on the root rather than panicking.
        Url::parse(&text).unwrap_or_else(|_| self.inner.base.clone())
    }

    /// A link from an answer (`@odata.nextLink`, `@odata.deltaLink`), when it points under the
    /// configured root; `None` for anything else, which is never followed.
    pub fn link(&self, link: &str) -> Option<Url> {
        let url = Url::parse(link).ok()?;
        let base = &self.inner.base;
        let under = url.scheme() == base.scheme()
            && url.host_str() == base.host_str()
            && url.port_or_known_default() == base.port_or_known_default()
            && url
                .path()
                .strip_prefix(base.path())
                .is_some_and(|rest| rest.starts_with('/'));
        under.then_some(url)
    }

    /// Sends one request for `mailbox`; a status other than 2xx is an error.
    pub async fn send(&self, mailbox: &Mailbox, request: Request<'_>) -> Result<Answer, Error> {
        let call = Call {
            mailbox: mailbox.clone(),
            operation: request.operation,
        };
        let build = |http: &reqwest::Client| {
            let mut b = headers(http.request(request.method.clone(), request.url.clone()))
                .header("Prefer", request.prefer.as_str());
            if let Some(body) = request.body {
                b = b
                    .header(CONTENT_TYPE, "application/json")
                    .body(body.to_string());
            }
            b
        };
        let reply = self.exchange(mailbox, &call, 1, build).await;
        let result = reply.and_then(|r| answer(call.clone(), r, request.target));
        self.heed_back_off(mailbox, result.as_ref().err().and_then(Error::outcome));
        count(
            request.operation,
            &result
                .as_ref()
                .map_or_else(|e| e.metric_label(), |_| "ok".into()),
        );
        result
    }

    /// Sends up to [`graph::MAX_BATCH`] requests in one `$batch`; returns their answers in the
    /// order of `items`. The batch counts as one request per item against the mailbox window.
    /// Throttled items hold the mailbox in the gate for their longest `Retry-After`.
    pub async fn batch(
        &self,
        mailbox: &Mailbox,
        operation: &'static str,
        target: Target,
        items: Vec<batch::BatchItem>,
    ) -> Result<Vec<batch::BatchAnswer>, Error> {
        let call = Call {
            mailbox: mailbox.clone(),
            operation,
        };
        let ids: Vec<String> = items.iter().map(|i| i.id.clone()).collect();
        let body =
            serde_json::to_string(&batch::BatchRequest { requests: items }).map_err(|e| {
                Error::GraphMalformed {
                    call: call.clone(),
                    what: e.to_string(),
                }
            })?;
        let url = self.url("/$batch");
        let build = |http: &reqwest::Client| {
            headers(http.post(url.clone()))
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone())
        };
        let weight = u32::try_from(ids.len()).unwrap_or(u32::MAX);
        let reply = self.exchange(mailbox, &call, weight, build).await;
        let result = reply
            .and_then(|r| answer(call.clone(), r, target))
            .and_then(|a| in_order(&a, &ids));
        match &result {
            Ok(answers) => {
                let busy = answers
                    .iter()
                    .filter(|a| matches!(a.status, 429 | 503))
                    .map(|a| item_error(&call, a, target))
                    .filter_map(|e| e.outcome().as_ref().and_then(busy_wait))
                    .max();
                if let Some(wait) = busy {
                    self.hold(mailbox, wait);
                }
                for a in answers {
                    let label = if (200..300).contains(&a.status) {
                        "ok".into()
                    } else {
                        item_error(&call, a, target).metric_label()
                    };
                    count(operation, &label);
                }
            }
            Err(e) => {
                self.heed_back_off(mailbox, e.outcome());
                count(operation, &e.metric_label());
            }
        }
        result
    }

    /// Waits at the gate, sends with a token, reads the whole answer.
    async fn exchange(
        &self,
        mailbox: &Mailbox,
        call: &Call,
        weight: u32,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Reply, Error> {
        let asked = tokio::time::Instant::now();
        let permit = self.inner.gate.enter_weighted(mailbox, weight).await;
        let started = tokio::time::Instant::now();
        crate::telemetry::metrics().observe(
            "foldertrack_gate_wait_seconds",
            &[],
            started.duration_since(asked).as_secs_f64(),
        );
        let reply = self
            .inner
            .auth
            .send(call, self.inner.max_response, build)
            .await;
        drop(permit);
        tracing::debug!(
            mailbox = %mailbox,
            op = call.operation,
            status = reply.as_ref().map_or(0, |r| r.status.as_u16()),
            elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "graph call"
        );
        reply
    }

    /// Graph's budgets are per app and mailbox: a busy answer holds that mailbox only.
    fn heed_back_off(&self, mailbox: &Mailbox, outcome: Option<super::Outcome<'_>>) {
        if let Some(wait) = outcome.as_ref().and_then(busy_wait) {
            self.hold(mailbox, wait);
        }
    }

    fn hold(&self, mailbox: &Mailbox, wait: Duration) {
        super::throttled("mailbox", mailbox, wait);
        self.inner.gate.back_off_mailbox(mailbox, wait);
    }
}

/// The headers of every Graph request but `Prefer` and the body's.
fn headers(b: RequestBuilder) -> RequestBuilder {
    b.header(ACCEPT, "application/json")
        .header("client-request-id", request_id())
        .header("return-client-request-id", "true")
}

fn count(operation: &'static str, outcome: &str) {
    crate::telemetry::metrics().count(
        "foldertrack_graph_requests_total",
        &[("operation", operation), ("outcome", outcome)],
        1,
    );
}

/// A 2xx answer, or the error the status and body stand for.
fn answer(call: Call, reply: Reply, target: Target) -> Result<Answer, Error> {
    let status = reply.status.as_u16();
    if (200..300).contains(&status) {
        return Ok(Answer {
            call,
            status,
            body: reply.body,
        });
    }
    let detail = graph::error::read(reply.body.as_bytes()).unwrap_or_default();
    Err(Error::GraphRefused {
        call,
        status,
        code: detail.code,
        message: detail.message.map(|m| m.chars().take(300).collect()),
        retry_after: crate::http::retry_after(&reply.headers, SystemTime::now()),
        target,
    })
}

/// The batch's answers in the order of the request's ids; a missing answer is malformed.
fn in_order(answer: &Answer, ids: &[String]) -> Result<Vec<batch::BatchAnswer>, Error> {
    let mut got: batch::BatchResponse = answer.json()?;
    ids.iter()
        .map(|id| {
            let at = got
                .responses
                .iter()
                .position(|r| r.id.eq_ignore_ascii_case(id))
                .ok_or_else(|| answer.malformed(format!("no answer for batch item {id}")))?;
            Ok(got.responses.swap_remove(at))
        })
        .collect()
}

/// What to do about an error answer, in words: the end of [`Error::GraphRefused`]'s message.
pub fn hint(status: u16, code: &str, retry_after: Option<Duration>) -> String {
    use super::Action as A;
    match super::retry::for_graph(status, code, retry_after, Target::Folder) {
        A::RetryAfter(d) => format!(
            "Microsoft Graph is throttling this mailbox; foldertrack waits {:.1} s and retries",
            d.as_secs_f64()
        ),
        A::Backoff if matches!(status, 429 | 503) => format!(
            "Microsoft Graph is busy; foldertrack waits {} s and retries",
            DEFAULT_BUSY_BACK_OFF.as_secs()
        ),
        A::Backoff => "foldertrack retries; if it persists, check Microsoft 365 service health".into(),
        A::Rebaseline => "the delta token expired; foldertrack lists the folder again without tracking it twice".into(),
        A::ResolveFolder => "the folder is gone; foldertrack looks for it again by path".into(),
        A::ParkMailbox => "the mailbox is being moved or is full; foldertrack parks it and tries again later".into(),
        A::DisableMailbox if status == 401 => "the token was refused; check the app's client secret and its Mail.ReadWrite application permission (admin consent)".into(),
        A::DisableMailbox => "the app may not open this mailbox, or there is none: give the app Mail.ReadWrite and put the mailbox in its scope (RBAC for Applications or an application access policy), and check the address (Exchange Online only; on-premises mailboxes need api = \"ews\")".into(),
        A::FailItem => "this message is skipped; the next sync reconciles".into(),
        A::Resubscribe => "foldertrack subscribes again".into(),
        A::Fatal => "foldertrack cannot fix this by retrying; check the exchange url (the Graph root, e.g. https://graph.microsoft.com/v1.0)".into(),
    }
}

impl std::fmt::Debug for GraphClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphClient")
            .field("base", &self.inner.base.as_str())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn client(base: &str) -> GraphClient {
        GraphClient::new(ClientSettings::new(
            Url::parse(base).unwrap(),
            Auth::OAuth {
                token_url: Url::parse("http://127.0.0.1:9/t/oauth2/v2.0/token").unwrap(),
                client_id: "app".into(),
                client_secret: SecretString::from("s"),
                scope: graph::SCOPE.into(),
            },
        ))
        .unwrap()
    }

    #[test]
    fn links_are_followed_only_under_the_configured_root() {
        let c = client("https://graph.microsoft.com/v1.0/");
        assert_eq!(
            c.url("/users/a@b/mailFolders/inbox").as_str(),
            "https://graph.microsoft.com/v1.0/users/a@b/mailFolders/inbox"
        );
        let ok =
            "https://graph.microsoft.com/v1.0/users/a/mailFolders/x/messages/delta?$deltatoken=abc";
        assert!(c.link(ok).is_some());
        for foreign in [
            "https://evil.example/v1.0/users/a/messages/delta?$deltatoken=abc",
            "http://graph.microsoft.com/v1.0/users/a",
            "https://graph.microsoft.com/beta/users/a",
            "https://graph.microsoft.com/v1.0evil/users/a",
            "https://graph.microsoft.com:8443/v1.0/users/a",
            "not a url",
        ] {
            assert!(c.link(foreign).is_none(), "{foreign}");
        }
    }

    #[test]
    fn graph_takes_oauth_only() {
        let basic = ClientSettings::new(
            Url::parse("https://graph.microsoft.com/v1.0").unwrap(),
            Auth::Basic {
                username: "u".into(),
                password: SecretString::from("p"),
            },
        );
        assert!(matches!(
            GraphClient::new(basic),
            Err(Error::GraphNeedsOAuth)
        ));
    }

    #[test]
    fn errors_say_what_to_do() {
        let refused = |status, code: &str| Error::GraphRefused {
            call: Call {
                mailbox: Mailbox::from("alice@example.com"),
                operation: "messages.delta",
            },
            status,
            code: code.into(),
            message: Some("Access to OData is disabled.".into()),
            retry_after: Some(Duration::from_millis(2128)),
            target: Target::Folder,
        };
        let text = refused(403, "ErrorAccessDenied").to_string();
        assert!(text.starts_with("messages.delta for alice@example.com: HTTP 403 ErrorAccessDenied (Access to OData is disabled.)"), "{text}");
        assert!(text.contains("RBAC for Applications"), "{text}");
        assert!(
            refused(429, "ApplicationThrottled")
                .to_string()
                .contains("waits 2.1 s")
        );
        assert!(
            refused(410, "SyncStateNotFound")
                .to_string()
                .contains("lists the folder again")
        );
        assert_eq!(refused(429, "").metric_label(), "HTTP 429");
        assert_eq!(
            refused(403, "ErrorAccessDenied").metric_label(),
            "ErrorAccessDenied"
        );
    }
}
