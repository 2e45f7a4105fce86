//! I/O to Exchange: the HTTP transports (EWS here, Microsoft Graph in [`graph`]),
//! authentication, the call gate and retry decisions. Uses [`crate::ews`] and [`crate::graph`]
//! for every byte on the wire; never touches the store.
//!
//! [`EwsClient::send`] writes an operation, waits at the [`Gate`] (back-off, rate limits,
//! concurrency), posts it with the mailbox's `X-AnchorMailbox` (and `ExchangeImpersonation`
//! when configured), reads the answer and maps it to a parsed response or an [`Error`] naming
//! the mailbox and operation. Server back-off signals (ServerBusy's `BackOffMilliseconds`,
//! `Retry-After`) are fed back into the gate. What to do about an error is [`retry::action`].

pub mod auth;
pub mod graph;
pub mod http;
pub mod retry;
pub mod throttle;

pub use crate::http::Timeouts;
pub use auth::Auth;
pub use graph::GraphClient;
pub use retry::{Action, Outcome, Target, TransportFailure, action};
pub use throttle::{Gate, GateStats, Limits, Window};

use crate::ews::{
    self, ConnectingSid, ExchangeVersion, Fault, Mailbox, Operation, RequestHeader, Response,
    ResponseCode,
};
use auth::Authenticator;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use url::Url;

/// The wait put on the account when the server says it is busy without saying how long.
pub const DEFAULT_BUSY_BACK_OFF: Duration = Duration::from_secs(10);

/// Everything an [`EwsClient`] needs. Debug shows no secret.
#[derive(Clone, Debug)]
pub struct ClientSettings {
    /// The EWS endpoint, `https://host/EWS/Exchange.asmx`.
    pub url: Url,
    pub auth: Auth,
    /// Act as each mailbox through the `ExchangeImpersonation` header.
    pub impersonation: bool,
    pub version: ExchangeVersion,
    pub timeouts: Timeouts,
    pub limits: Limits,
    /// A PEM file of extra root certificates to trust (an internal CA), next to the system's.
    pub extra_roots: Option<PathBuf>,
    /// The largest answer read; a larger one fails its call (`limits.max_response_bytes`).
    pub max_response_bytes: u64,
}

impl ClientSettings {
    /// Settings with the default version, timeouts and limits.
    pub fn new(url: Url, auth: Auth) -> Self {
        Self {
            url,
            auth,
            impersonation: true,
            version: ExchangeVersion::default(),
            timeouts: Timeouts::default(),
            limits: Limits::default(),
            extra_roots: None,
            max_response_bytes: crate::http::DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

/// One call: which operation, for which mailbox. Every call error carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub mailbox: Mailbox,
    pub operation: &'static str,
}

impl std::fmt::Display for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} for {}", self.operation, self.mailbox)
    }
}

/// A failed EWS call, or a client that could not be built.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Http(#[from] crate::http::Error),
    #[error(
        "{}: credentials would travel unencrypted; use https (plain http is allowed only \
         to a loopback address)",
        crate::http::redact(url)
    )]
    InsecureUrl { url: Url },
    #[error(
        "ntlm authentication is not in this build; rebuild with `--features ntlm`, or use \
         basic or oauth"
    )]
    NtlmNotBuilt,
    #[error(
        "{call}: HTTP 401, the server refused the credentials; check the service account's \
         password, or the app's secret and its full_access_as_app permission"
    )]
    Unauthorized { call: Call },
    #[error(
        "{call}: HTTP 403, EWS is blocked for this account or app; ask the Exchange admin to \
         allow EWS for it (EWSEnabled, EWSAllowedAppIDs)"
    )]
    Forbidden { call: Call },
    #[error(
        "{call}: the server is throttling (HTTP {status}{}); foldertrack waits and retries",
        .retry_after.map(|d| format!(", retry after {} s", d.as_secs())).unwrap_or_default()
    )]
    Throttled {
        call: Call,
        status: u16,
        retry_after: Option<Duration>,
    },
    #[error(
        "{call}: HTTP {status} without an EWS answer; foldertrack retries; if it persists, \
         check the Exchange server's health"
    )]
    ServerError { call: Call, status: u16 },
    #[error(
        "{call}: redirected (HTTP {status}) to {location}; set the exchange url to the EWS \
         endpoint itself (…/EWS/Exchange.asmx)"
    )]
    Redirected {
        call: Call,
        status: u16,
        location: String,
    },
    #[error("{call}: HTTP {status}; check that the exchange url ends in /EWS/Exchange.asmx")]
    UnexpectedStatus { call: Call, status: u16 },
    #[error("{call}: the server answered with a fault, {fault}")]
    Fault { call: Call, fault: Box<Fault> },
    #[error("{call}: the answer is not a readable EWS response ({source}); foldertrack retries")]
    Malformed {
        call: Call,
        #[source]
        source: ews::Error,
    },
    #[error("{call}: {source}")]
    TooLarge {
        call: Call,
        #[source]
        source: crate::http::ReadError,
    },
    #[error("{call}: no answer in time; foldertrack retries; if it persists, check the server")]
    Timeout {
        call: Call,
        #[source]
        source: reqwest::Error,
    },
    #[error("{call}: cannot connect ({source}); check the exchange url, DNS and firewalls")]
    Connect {
        call: Call,
        #[source]
        source: reqwest::Error,
    },
    #[error(
        "{call}: TLS with the server failed: {problem}; if its certificate is signed by your \
         own CA, trust that CA with exchange.extra_root_certs = \"/path/to/ca.pem\""
    )]
    Tls {
        call: Call,
        /// rustls' words for it, e.g. `invalid peer certificate: UnknownIssuer`.
        problem: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{call}: the connection broke ({source}); foldertrack retries")]
    Transport {
        call: Call,
        #[source]
        source: reqwest::Error,
    },
    #[error("{call}: {source}")]
    Token {
        call: Call,
        #[source]
        source: Box<crate::http::oauth::Error>,
    },
    #[error("{call}: ntlm: {reason}; check the account's domain, name and password")]
    Ntlm { call: Call, reason: String },
    #[error(
        "{call}: HTTP {status}{}{}; {}",
        if code.is_empty() { String::new() } else { format!(" {code}") },
        message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default(),
        graph::hint(*status, code, *retry_after)
    )]
    GraphRefused {
        call: Call,
        status: u16,
        /// The `code` of Graph's error body; empty when there was none.
        code: String,
        /// Graph's `message`, for people (never a token or a body).
        message: Option<String>,
        retry_after: Option<Duration>,
        target: Target,
    },
    #[error(
        "{call}: the answer is not the JSON Microsoft Graph sends ({what}); foldertrack retries"
    )]
    GraphMalformed { call: Call, what: String },
    #[error(
        "microsoft graph takes OAuth client credentials only; set exchange.auth to kind = \"oauth\" \
         with the app's tenant_id, client_id and secret"
    )]
    GraphNeedsOAuth,
}

impl Error {
    /// Classifies a reqwest failure of `call`.
    pub(crate) fn transport(call: &Call, source: reqwest::Error) -> Self {
        let call = call.clone();
        let source = crate::http::redact_error(source);
        if source.is_timeout() {
            Error::Timeout { call, source }
        } else if let Some(problem) = crate::http::tls_problem(&source) {
            Error::Tls {
                call,
                problem,
                source,
            }
        } else if source.is_connect() {
            Error::Connect { call, source }
        } else {
            Error::Transport { call, source }
        }
    }

    /// The call this error is about, when it is about one.
    pub fn call(&self) -> Option<&Call> {
        match self {
            Error::Http(_)
            | Error::InsecureUrl { .. }
            | Error::NtlmNotBuilt
            | Error::GraphNeedsOAuth => None,
            Error::Unauthorized { call }
            | Error::Forbidden { call }
            | Error::Throttled { call, .. }
            | Error::ServerError { call, .. }
            | Error::Redirected { call, .. }
            | Error::UnexpectedStatus { call, .. }
            | Error::Fault { call, .. }
            | Error::Malformed { call, .. }
            | Error::TooLarge { call, .. }
            | Error::Timeout { call, .. }
            | Error::Connect { call, .. }
            | Error::Tls { call, .. }
            | Error::Transport { call, .. }
            | Error::Token { call, .. }
            | Error::Ntlm { call, .. }
            | Error::GraphRefused { call, .. }
            | Error::GraphMalformed { call, .. } => Some(call),
        }
    }

    /// What happened, in the terms of [`retry::action`]; `None` for set-up errors.
    pub fn outcome(&self) -> Option<Outcome<'_>> {
        let status = |status: &u16, retry_after| Outcome::Status {
            status: *status,
            retry_after,
        };
        Some(match self {
            Error::Http(_)
            | Error::InsecureUrl { .. }
            | Error::NtlmNotBuilt
            | Error::GraphNeedsOAuth
            | Error::Tls { .. } => return None,
            Error::Unauthorized { .. } => status(&401, None),
            Error::Forbidden { .. } => status(&403, None),
            Error::Throttled {
                status: s,
                retry_after,
                ..
            } => status(s, *retry_after),
            Error::ServerError { status: s, .. } | Error::UnexpectedStatus { status: s, .. } => {
                status(s, None)
            }
            Error::Redirected { location, .. } => Outcome::Redirect {
                to_error_page: location.to_ascii_lowercase().contains("genericerrorpage"),
            },
            Error::Fault { fault, .. } => Outcome::from_fault(fault),
            Error::Malformed { .. } | Error::GraphMalformed { .. } | Error::TooLarge { .. } => {
                Outcome::Malformed
            }
            Error::GraphRefused {
                status: s,
                code,
                retry_after,
                target,
                ..
            } => Outcome::Graph {
                status: *s,
                code,
                retry_after: *retry_after,
                target: *target,
            },
            Error::Timeout { .. } => Outcome::Transport(TransportFailure::Timeout),
            Error::Connect { .. } => Outcome::Transport(TransportFailure::Connect),
            Error::Transport { .. } => Outcome::Transport(TransportFailure::Reset),
            Error::Token { source, .. } => Outcome::Credentials {
                rejected: source.is_rejected(),
            },
            Error::Ntlm { .. } => Outcome::Credentials { rejected: true },
        })
    }

    /// A short label for metrics: the status, fault code or transport failure.
    pub fn metric_label(&self) -> String {
        match self.outcome() {
            Some(Outcome::Status { status, .. }) => format!("HTTP {status}"),
            Some(Outcome::Code { code, .. }) => format!("{code:?}"),
            Some(Outcome::Transport(t)) => format!("{t:?}").to_lowercase(),
            Some(Outcome::Redirect { .. }) => "redirect".into(),
            Some(Outcome::Malformed) => "malformed".into(),
            Some(Outcome::Credentials { .. }) => "credentials".into(),
            Some(Outcome::Graph {
                status, code: "", ..
            }) => format!("HTTP {status}"),
            Some(Outcome::Graph { code, .. }) => code.to_owned(),
            None => "setup".into(),
        }
    }

    /// True when the answer was larger than `limits.max_response_bytes`.
    pub fn is_too_large(&self) -> bool {
        matches!(self, Error::TooLarge { .. })
    }

    /// What to do about this error; set-up errors are fatal.
    pub fn action(&self) -> Action {
        self.outcome().as_ref().map_or(Action::Fatal, action)
    }
}

/// Server affinity of a group of subscriptions (ews-protocol §1.4): every Subscribe and the
/// group's GetStreamingEvents name the group's anchor mailbox and prefer its server; once
/// the server set its `X-BackEndOverrideCookie`, it is sent back on each of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Affinity {
    pub anchor: Mailbox,
    pub cookie: Option<String>,
}

/// The client of one Exchange service account. Cheap to clone; clones share connections,
/// tokens and the call gate.
#[derive(Clone)]
pub struct EwsClient {
    inner: Arc<Inner>,
}

struct Inner {
    url: Url,
    impersonation: bool,
    version: ExchangeVersion,
    auth: Authenticator,
    gate: Gate,
    /// The largest answer read (`limits.max_response_bytes`).
    max_response: u64,
}

impl EwsClient {
    pub fn new(settings: ClientSettings) -> Result<Self, Error> {
        auth::require_tls(&settings.url)?;
        let auth = Authenticator::new(
            &settings.auth,
            &settings.timeouts,
            settings.extra_roots.as_deref(),
            settings.limits.account_concurrency,
        )?;
        Ok(Self {
            inner: Arc::new(Inner {
                url: settings.url,
                impersonation: settings.impersonation,
                version: settings.version,
                auth,
                gate: Gate::new(settings.limits),
                max_response: settings.max_response_bytes,
            }),
        })
    }

    /// The call gate, for metrics ([`Gate::stats`]) and for the watcher's own back-offs.
    pub fn gate(&self) -> &Gate {
        &self.inner.gate
    }

    /// Sends `op` for `mailbox` and returns every response message. Per-message errors are
    /// in the response (see [`Outcome::from_message`]); request-level failures are errors.
    pub async fn send<O: Operation>(
        &self,
        mailbox: &Mailbox,
        op: &O,
    ) -> Result<Response<O::Message>, Error> {
        self.send_affine(mailbox, op, None)
            .await
            .map(|(response, _)| response)
    }

    /// [`Self::send`] with server affinity (ews-protocol §1.4): the call is routed by the
    /// group's anchor and prefers its server; returns the `X-BackEndOverrideCookie` the server
    /// set, if it did.
    pub async fn send_affine<O: Operation>(
        &self,
        mailbox: &Mailbox,
        op: &O,
        affinity: Option<&Affinity>,
    ) -> Result<(Response<O::Message>, Option<String>), Error> {
        let inner = &self.inner;
        let call = Call {
            mailbox: mailbox.clone(),
            operation: O::NAME,
        };
        let body = ews::write_request(op, &self.header(mailbox));
        let request_id = http::request_id();
        let anchor = affinity.map_or(mailbox, |a| &a.anchor);
        let asked = tokio::time::Instant::now();
        let permit = inner.gate.enter(mailbox).await;
        let started = tokio::time::Instant::now();
        let metrics = crate::telemetry::metrics();
        metrics.observe(
            "foldertrack_gate_wait_seconds",
            &[],
            started.duration_since(asked).as_secs_f64(),
        );
        let reply = inner
            .auth
            .send(&call, inner.max_response, |client| {
                let request =
                    http::ews_request(client, &inner.url, anchor, O::NAME, &request_id, &body);
                http::with_affinity(request, affinity)
            })
            .await;
        drop(permit);
        let cookie = reply
            .as_ref()
            .ok()
            .and_then(|r| http::affinity_cookie(&r.headers));
        let result = reply.and_then(|reply| http::interpret::<O>(&reply, &call, SystemTime::now()));
        self.heed_back_off(mailbox, &result);
        let outcome = match &result {
            Ok(r) => r
                .messages
                .iter()
                .find_map(|m| m.as_ref().err())
                .map_or("NoError".to_owned(), |e| format!("{:?}", e.code)),
            Err(e) => e.metric_label(),
        };
        metrics.count(
            "foldertrack_ews_calls_total",
            &[("operation", O::NAME), ("outcome", &outcome)],
            1,
        );
        tracing::debug!(
            mailbox = %mailbox,
            op = O::NAME,
            request_id,
            ok = result.is_ok(),
            elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "ews call"
        );
        result.map(|r| (r, cookie))
    }

    /// The SOAP header of a call acting on `mailbox`.
    fn header(&self, mailbox: &Mailbox) -> RequestHeader {
        RequestHeader {
            version: self.inner.version,
            impersonation: self
                .inner
                .impersonation
                .then(|| ConnectingSid::PrimarySmtpAddress(mailbox.as_str().to_owned())),
        }
    }

    /// Opens a long-lived call (GetStreamingEvents) as the affinity group's anchor and hands
    /// back its answer unread, to be read as it arrives. It does not pass the call gate: a
    /// streaming connection counts against the account's HangingConnectionLimit, not against
    /// its concurrent calls, and must never hold a slot that syncs wait for. `timeout` bounds
    /// the whole connection.
    pub async fn open_stream<O: Operation>(
        &self,
        affinity: &Affinity,
        op: &O,
        timeout: Duration,
    ) -> Result<reqwest::Response, Error> {
        let inner = &self.inner;
        let mailbox = &affinity.anchor;
        let call = Call {
            mailbox: mailbox.clone(),
            operation: O::NAME,
        };
        let body = ews::write_request(op, &self.header(mailbox));
        let request_id = http::request_id();
        let response = inner
            .auth
            .open(&call, |client| {
                let request =
                    http::ews_request(client, &inner.url, mailbox, O::NAME, &request_id, &body);
                http::with_affinity(request, Some(affinity)).timeout(timeout)
            })
            .await?;
        if response.status() == reqwest::StatusCode::OK {
            return Ok(response);
        }
        // Not a stream: read the answer and say what it means.
        let reply = http::Reply::read(response, &call, inner.max_response).await?;
        let result = http::interpret::<O>(&reply, &call, SystemTime::now());
        self.heed_back_off(mailbox, &result);
        result?;
        Err(Error::UnexpectedStatus {
            call,
            status: reply.status.as_u16(),
        })
    }

    /// Feeds the server's back-off signals into the gate. With impersonation, Exchange
    /// charges a call to the budget of the mailbox it acts as, so a busy answer holds that
    /// mailbox only; account-wide signals (see [`Scope`]), and every signal when the service
    /// account acts as itself, hold the whole account.
    fn heed_back_off<T>(&self, mailbox: &Mailbox, result: &Result<Response<T>, Error>) {
        let outcomes: Vec<Outcome<'_>> = match result {
            Ok(response) => response
                .messages
                .iter()
                .filter_map(|m| m.as_ref().err())
                .map(Outcome::from_message)
                .collect(),
            Err(e) => e.outcome().into_iter().collect(),
        };
        for asked in raw_back_offs(result) {
            crate::http::clamp_server_wait(asked, "BackOffMilliseconds");
        }
        let signals = outcomes
            .iter()
            .filter_map(|o| busy_wait(o).map(|w| (w, scope(o))));
        let (mut account, mut own) = (None::<Duration>, None::<Duration>);
        for (wait, scope) in signals {
            let slot = match (scope, self.inner.impersonation) {
                (Scope::Mailbox, true) => &mut own,
                _ => &mut account,
            };
            *slot = Some(slot.map_or(wait, |w| w.max(wait)));
        }
        if let Some(wait) = account {
            throttled("account", mailbox, wait);
            self.inner.gate.back_off_account(wait);
        }
        if let Some(wait) = own {
            throttled("mailbox", mailbox, wait);
            self.inner.gate.back_off_mailbox(mailbox, wait);
        }
    }
}

/// The server asked for a pause: one throttling episode, logged and counted.
fn throttled(scope: &'static str, mailbox: &Mailbox, wait: Duration) {
    let wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
    tracing::info!(event = "server_throttled", scope, mailbox = %mailbox, wait_ms);
    crate::telemetry::metrics().count("foldertrack_server_throttled_total", &[("scope", scope)], 1);
}

/// `BackOffMilliseconds` as the server sent them, before the clamp.
fn raw_back_offs<T>(result: &Result<Response<T>, Error>) -> Vec<Duration> {
    match result {
        Ok(response) => response
            .messages
            .iter()
            .filter_map(|m| m.as_ref().err()?.back_off())
            .collect(),
        Err(Error::Fault { fault, .. }) => fault.back_off().into_iter().collect(),
        Err(_) => Vec::new(),
    }
}

/// Whose budget a busy signal is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    /// The budget of the caller as Exchange sees it: with impersonation, the mailbox acted as
    /// (`ErrorServerBusy`, with or without `BackOffMilliseconds`, also as an inner code).
    Mailbox,
    /// The service account or the server itself: HTTP 503 (IIS queueing) and 429, and
    /// `ErrorExceededConnectionCount` (the service account's own concurrency budget).
    Account,
}

fn scope(outcome: &Outcome<'_>) -> Scope {
    match outcome {
        Outcome::Code { code, .. } if **code == ResponseCode::ErrorExceededConnectionCount => {
            Scope::Account
        }
        Outcome::Code { .. } => Scope::Mailbox,
        _ => Scope::Account,
    }
}

/// How long the caller should pause after `outcome`: the server's own figure, or
/// [`DEFAULT_BUSY_BACK_OFF`] for a busy signal without one.
fn busy_wait(outcome: &Outcome<'_>) -> Option<Duration> {
    if let Action::RetryAfter(wait) = action(outcome) {
        return Some(wait);
    }
    let busy = match outcome {
        Outcome::Status { status, .. } => matches!(status, 429 | 503),
        Outcome::Code { code, inner, .. } => {
            **code == ResponseCode::ErrorServerBusy
                || inner.as_ref() == Some(&ResponseCode::ErrorServerBusy)
        }
        Outcome::Graph { status, .. } => matches!(status, 429 | 503),
        Outcome::Redirect { .. }
        | Outcome::Transport(_)
        | Outcome::Malformed
        | Outcome::Credentials { .. } => false,
    };
    busy.then_some(DEFAULT_BUSY_BACK_OFF)
}

impl std::fmt::Debug for EwsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EwsClient")
            .field("url", &self.inner.url.as_str())
            .field("impersonation", &self.inner.impersonation)
            .field("version", &self.inner.version)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn basic(url: &str) -> ClientSettings {
        ClientSettings::new(
            Url::parse(url).unwrap(),
            Auth::Basic {
                username: "svc".into(),
                password: SecretString::from("hunter2-password"),
            },
        )
    }

    #[test]
    fn settings_never_show_secrets() {
        let mut settings = basic("https://mail.example.com/EWS/Exchange.asmx");
        let shown = format!("{settings:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        settings.auth = Auth::OAuth {
            token_url: Url::parse("https://login.example.com/token").unwrap(),
            client_id: "app".into(),
            client_secret: SecretString::from("client-secret-value"),
            scope: "https://outlook.office365.com/.default".into(),
        };
        let shown = format!("{settings:?}");
        assert!(!shown.contains("client-secret-value"), "{shown}");
        let client = EwsClient::new(settings).unwrap();
        assert!(!format!("{client:?}").contains("secret-value"));
    }

    #[test]
    fn credentials_go_over_plain_http_only_to_loopback() {
        assert!(EwsClient::new(basic("http://127.0.0.1:8080/EWS/Exchange.asmx")).is_ok());
        assert!(EwsClient::new(basic("http://localhost/EWS/Exchange.asmx")).is_ok());
        assert!(EwsClient::new(basic("http://[::1]:9/EWS/Exchange.asmx")).is_ok());
        let err = EwsClient::new(basic("http://mail.example.com/EWS/Exchange.asmx")).unwrap_err();
        assert!(matches!(err, Error::InsecureUrl { .. }));
        assert!(err.to_string().contains("use https"), "{err}");
        let mut oauth = basic("https://mail.example.com/EWS/Exchange.asmx");
        oauth.auth = Auth::OAuth {
            token_url: Url::parse("http://login.example.com/token").unwrap(),
            client_id: "app".into(),
            client_secret: SecretString::from("x"),
            scope: "s".into(),
        };
        assert!(matches!(
            EwsClient::new(oauth).unwrap_err(),
            Error::InsecureUrl { .. }
        ));
    }

    #[cfg(not(feature = "ntlm"))]
    #[test]
    fn ntlm_without_the_feature_says_how_to_get_it() {
        let mut settings = basic("https://mail.example.com/EWS/Exchange.asmx");
        settings.auth = Auth::Ntlm {
            domain: "CORP".into(),
            username: "svc".into(),
            password: SecretString::from("x"),
        };
        let err = EwsClient::new(settings).unwrap_err();
        assert!(err.to_string().contains("--features ntlm"), "{err}");
    }

    #[test]
    fn a_busy_mailbox_budget_is_the_mailboxs_and_server_queues_are_the_accounts() {
        let busy = ResponseCode::ErrorServerBusy;
        let connections = ResponseCode::ErrorExceededConnectionCount;
        let code = |code| Outcome::Code {
            code,
            back_off: None,
            inner: None,
        };
        assert_eq!(scope(&code(&busy)), Scope::Mailbox);
        assert_eq!(scope(&code(&connections)), Scope::Account);
        for status in [429, 503] {
            let outcome = Outcome::Status {
                status,
                retry_after: None,
            };
            assert_eq!(scope(&outcome), Scope::Account);
        }
    }

    #[test]
    fn busy_signals_become_a_pause() {
        let five = Some(Duration::from_secs(5));
        let status = |status, retry_after| Outcome::Status {
            status,
            retry_after,
        };
        assert_eq!(busy_wait(&status(503, five)), five);
        assert_eq!(busy_wait(&status(429, None)), Some(DEFAULT_BUSY_BACK_OFF));
        assert_eq!(busy_wait(&status(500, None)), None);
        let busy = ResponseCode::ErrorServerBusy;
        let code = |back_off| Outcome::Code {
            code: &busy,
            back_off,
            inner: None,
        };
        assert_eq!(busy_wait(&code(five)), five);
        assert_eq!(busy_wait(&code(None)), Some(DEFAULT_BUSY_BACK_OFF));
        let not_found = ResponseCode::ErrorItemNotFound;
        let item = Outcome::Code {
            code: &not_found,
            back_off: None,
            inner: None,
        };
        assert_eq!(busy_wait(&item), None);
    }
}
