//! PURE: what to do after any call to Exchange — EWS or Microsoft Graph — that did not simply
//! succeed. One function, [`action`], maps every [`Outcome`] — an HTTP status, a transport
//! failure, an unreadable answer, a SOAP fault, a per-message response code or a Graph error —
//! to one [`Action`]. No clock, no I/O: the callers (the clients, the feeds, the watcher) act on
//! the answer. EWS decisions follow ews-protocol.md section 7; the table test below covers every
//! code the schema defines. Graph decisions ([`for_graph`]) follow Graph's error and throttling
//! documentation and the codes Outlook is seen to send.
//!
//! The action names map onto the feed's `Retry` as: `RetryAfter` = `After`, `Rebaseline` =
//! `ResetCursor`; `DisableMailbox`, `FailItem` and `Resubscribe` are finer than `Fatal` /
//! `ParkMailbox` and let the watcher say exactly why it stopped.

use crate::ews::{Fault, ResponseCode, ResponseError};
use std::time::Duration;

/// What happened to one call (or one response message of it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// An HTTP status that is not 200 and carried no SOAP fault we could read (a 5xx HTML
    /// page, 401, 403, 429, 503, …). `retry_after` is the `Retry-After` header, if any.
    /// A 401 reaches here only after the client refreshed its token once.
    Status {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// A 3xx answer; `to_error_page` when it points at Exchange's generic error page
    /// (`/ews/genericerrorpage.htm`), which Exchange uses for transient failures.
    Redirect { to_error_page: bool },
    /// The request never got a complete answer.
    Transport(TransportFailure),
    /// The body was not the EWS response it should be (often a truncated body).
    Malformed,
    /// The token endpoint (OAuth) or the NTLM handshake failed; `rejected` when the identity
    /// provider refused the credentials rather than being unreachable.
    Credentials { rejected: bool },
    /// A response code, from a SOAP fault or from one response message.
    Code {
        code: &'a ResponseCode,
        /// `BackOffMilliseconds` from its `MessageXml`.
        back_off: Option<Duration>,
        /// `InnerErrorResponseCode` (inside `ErrorInternalServerError`).
        inner: Option<ResponseCode>,
    },
    /// A Microsoft Graph error answer (or one item of a `$batch`): its status, the `code` of
    /// its error body (empty when it had none), its `Retry-After`, and what it was about.
    Graph {
        status: u16,
        code: &'a str,
        retry_after: Option<Duration>,
        target: Target,
    },
}

/// What a Graph request was about: it decides what "not found" means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The mailbox itself (its well-known folders): not found means no such mailbox.
    Mailbox,
    /// A folder (its listing or its delta): not found means the folder is gone.
    Folder,
    /// One message: not found means it moved on or was deleted.
    Item,
}

/// Why no complete answer arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportFailure {
    /// Connect or request timeout.
    Timeout,
    /// DNS, refused connection, unreachable host.
    Connect,
    /// The connection was reset or closed mid-answer.
    Reset,
}

impl<'a> Outcome<'a> {
    /// The outcome a SOAP fault stands for; a fault without a code is treated as unreadable.
    pub fn from_fault(fault: &'a Fault) -> Self {
        match &fault.code {
            Some(code) => Outcome::Code {
                code,
                back_off: server_back_off(fault.back_off()),
                inner: fault.message_xml.inner_code(),
            },
            None => Outcome::Malformed,
        }
    }

    /// The outcome one failed response message stands for.
    pub fn from_message(error: &'a ResponseError) -> Self {
        Outcome::Code {
            code: &error.code,
            back_off: server_back_off(error.back_off()),
            inner: error.message_xml.inner_code(),
        }
    }
}

/// `BackOffMilliseconds`, held to [`crate::http::MAX_SERVER_WAIT`] (the client logs the
/// clamp once per call).
fn server_back_off(asked: Option<Duration>) -> Option<Duration> {
    asked.map(|d| d.min(crate::http::MAX_SERVER_WAIT))
}

/// What the caller should do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Wait exactly this long (the server said so), then retry the same call.
    RetryAfter(Duration),
    /// Transient: retry with the caller's exponential back-off (mailbox health counts tries).
    Backoff,
    /// The sync cursor is unusable: drop it and resync the folder as a baseline.
    Rebaseline,
    /// The folder id no longer resolves: find the folder again by path.
    ResolveFolder,
    /// The mailbox is unavailable for minutes (being moved): park it and probe slowly.
    ParkMailbox,
    /// Access to the mailbox is refused or it does not exist: disable it with the reason,
    /// probe rarely, resume when an admin fixes the cause.
    DisableMailbox,
    /// The notification subscription is gone: subscribe again and catch up by syncing.
    Resubscribe,
    /// This item cannot be served: skip it; the next sync reconciles.
    FailItem,
    /// A bug or a configuration error on our side (bad request, bad URL, TLS): stop and alert.
    Fatal,
}

/// The one decision table. Exhaustive over [`Outcome`]; for response codes see [`for_code`].
pub fn action(outcome: &Outcome<'_>) -> Action {
    match outcome {
        Outcome::Status {
            status,
            retry_after,
        } => for_status(*status, *retry_after),
        Outcome::Redirect { to_error_page } => {
            if *to_error_page {
                Action::Backoff
            } else {
                // A redirect elsewhere means the configured URL is wrong (or a login page).
                Action::Fatal
            }
        }
        Outcome::Transport(TransportFailure::Timeout)
        | Outcome::Transport(TransportFailure::Connect)
        | Outcome::Transport(TransportFailure::Reset)
        | Outcome::Malformed => Action::Backoff,
        Outcome::Credentials { rejected: true } => Action::DisableMailbox,
        Outcome::Credentials { rejected: false } => Action::Backoff,
        Outcome::Code {
            code,
            back_off,
            inner,
        } => for_code(code, *back_off, inner.as_ref()),
        Outcome::Graph {
            status,
            code,
            retry_after,
            target,
        } => for_graph(*status, code, *retry_after, *target),
    }
}

fn for_status(status: u16, retry_after: Option<Duration>) -> Action {
    match status {
        // Already retried once with fresh credentials by the client.
        401 => Action::DisableMailbox,
        // Exchange Online: EWS blocked for this app or tenant; on-prem: no EWS access.
        403 => Action::DisableMailbox,
        429 | 503 => busy(retry_after),
        500..=599 => Action::Backoff,
        // 400, 404, 405, 413 …: our request or the configured URL is wrong.
        _ => Action::Fatal,
    }
}

/// The decision for a Graph error: by its code first (compared case-insensitively: Outlook
/// sends Exchange-style `ErrorItemNotFound` where the documentation lists `itemNotFound`), then
/// by its status. Unknown codes fall back on the status.
pub fn for_graph(status: u16, code: &str, retry_after: Option<Duration>, target: Target) -> Action {
    let is = |names: &[&str]| names.iter().any(|n| code.eq_ignore_ascii_case(n));
    let not_found = match target {
        Target::Mailbox => Action::DisableMailbox,
        Target::Folder => Action::ResolveFolder,
        Target::Item => Action::FailItem,
    };
    if is(&["SyncStateNotFound", "SyncStateInvalid", "ResyncRequired"]) {
        Action::Rebaseline
    } else if is(&[
        "ErrorMailboxMoveInProgress",
        "ErrorQuotaExceeded",
        "quotaLimitReached",
    ]) {
        // The mailbox is moving, or full (delta writes sync state into it): minutes at least.
        Action::ParkMailbox
    } else if is(&["ErrorSyncFolderNotFound", "ErrorFolderNotFound"]) {
        Action::ResolveFolder
    } else if is(&[
        "ErrorItemNotFound",
        "itemNotFound",
        "ErrorInvalidIdMalformed",
    ]) {
        not_found
    } else if is(&[
        "ErrorInvalidUser",
        "MailboxNotEnabledForRESTAPI",
        "ResourceNotFound",
        "Request_ResourceNotFound",
        "ErrorNonExistentMailbox",
        "ErrorAccessDenied",
        "accessDenied",
        "InvalidAuthenticationToken",
    ]) {
        Action::DisableMailbox
    } else if is(&["ErrorIrresolvableConflict"]) {
        // The item changed under the write: read it again and retry on the next round.
        Action::FailItem
    } else {
        match status {
            // 401 only after the client refreshed its token once.
            401 | 403 => Action::DisableMailbox,
            404 => not_found,
            // 410 Gone without a code: a synchronization reset.
            410 => Action::Rebaseline,
            412 => Action::FailItem,
            429 | 503 => busy(retry_after),
            500..=599 => Action::Backoff,
            // 400, 405, 413 …: our request or the configured URL is wrong.
            _ => Action::Fatal,
        }
    }
}

fn busy(back_off: Option<Duration>) -> Action {
    back_off.map_or(Action::Backoff, Action::RetryAfter)
}

/// `ErrorInternalServerError`: the inner code says why. Act on it when it names a recovery
/// (busy, resync, …); otherwise the error may pass, so back off and let mailbox health count
/// the tries.
fn internal(inner: Option<&ResponseCode>, back_off: Option<Duration>) -> Action {
    match inner {
        Some(ResponseCode::ErrorInternalServerError) | None => busy(back_off),
        Some(inner) => match for_code(inner, back_off, None) {
            Action::FailItem | Action::Fatal => busy(back_off),
            recovery => recovery,
        },
    }
}

/// The decision for a response code. The codes foldertrack acts on are listed by name; every
/// other code — the rest of the schema's 514 and any unknown `Other` — is an item failure:
/// the server understood the request and could not serve this one thing, so the item is
/// skipped and the next sync reconciles. Request-level bugs are listed as `Fatal` by name.
pub fn for_code(
    code: &ResponseCode,
    back_off: Option<Duration>,
    inner: Option<&ResponseCode>,
) -> Action {
    use ResponseCode as C;
    match code {
        C::ErrorServerBusy => busy(back_off),
        C::ErrorInternalServerError => internal(inner, back_off),
        C::ErrorInternalServerTransientError
        | C::ErrorTimeoutExpired
        | C::ErrorExceededConnectionCount
        | C::ErrorTooManyObjectsOpened
        | C::ErrorMailboxStoreUnavailable
        | C::ErrorConnectionFailed
        | C::ErrorADUnavailable
        | C::ErrorBatchProcessingStopped
        | C::ErrorInsufficientResources
        | C::ErrorNotEnoughMemory
        | C::ErrorMailboxFailover
        | C::ErrorProxyCallFailed
        | C::ErrorProxyRequestProcessingFailed
        | C::ErrorNoRespondingCASInDestinationSite
        | C::ErrorNoApplicableProxyCASServersAvailable
        | C::ErrorClientDisconnected
        | C::ErrorRequestAborted
        | C::ErrorExceededSubscriptionCount => busy(back_off),
        C::ErrorMailboxMoveInProgress => Action::ParkMailbox,
        C::ErrorInvalidSyncStateData
        | C::ErrorInvalidIdMalformed
        | C::ErrorInvalidIdEmpty
        | C::ErrorInvalidIdMalformedEwsLegacyIdFormat => Action::Rebaseline,
        C::ErrorFolderNotFound
        | C::ErrorSyncFolderNotFound
        | C::ErrorInvalidFolderId
        | C::ErrorParentFolderNotFound
        | C::ErrorToFolderNotFound => Action::ResolveFolder,
        C::ErrorAccessDenied
        | C::ErrorNonExistentMailbox
        | C::ErrorImpersonateUserDenied
        | C::ErrorImpersonationDenied
        | C::ErrorImpersonationFailed
        | C::ErrorAccountDisabled
        | C::ErrorMailboxLogonFailed
        | C::ErrorInvalidMailbox
        | C::ErrorMailboxConfiguration
        | C::ErrorPasswordExpired
        | C::ErrorPasswordChangeRequired
        | C::ErrorOrganizationAccessBlocked
        | C::ErrorInvalidLicense
        | C::ErrorCallerIsInvalidADAccount
        | C::ErrorNoOAuthServerAvailableForRequest => Action::DisableMailbox,
        C::ErrorInvalidSubscription
        | C::ErrorExpiredSubscription
        | C::ErrorSubscriptionNotFound
        | C::ErrorSubscriptionUnsubscribed
        | C::ErrorSubscriptionAccessDenied
        | C::ErrorInvalidWatermark
        | C::ErrorEventNotFound
        | C::ErrorReadEventsFailed
        | C::ErrorMissedNotificationEvents
        | C::ErrorNewEventStreamConnectionOpened
        | C::ErrorInvalidPullSubscriptionId => Action::Resubscribe,
        C::ErrorSchemaValidation
        | C::ErrorInvalidRequest
        | C::ErrorInvalidExchangeImpersonationHeaderData
        | C::ErrorInvalidServerVersion
        | C::ErrorIncorrectSchemaVersion
        | C::ErrorInvalidSchemaVersionForMailboxVersion
        | C::ErrorDuplicateSOAPHeader
        | C::ErrorInvalidPropertyRequest
        | C::ErrorExceededFindCountLimit
        | C::ErrorInvalidSubscriptionRequest => Action::Fatal,
        // The documented rule for everything else (ItemNotFound among them).
        _ => Action::FailItem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ews::ResponseClass;
    use crate::ews::response::MessageXml;
    use std::collections::HashMap;

    const MS: Option<Duration> = Some(Duration::from_millis(5000));

    /// The documented table: every code with an action other than `FailItem`, written out by
    /// name, so a change to [`for_code`] must change this list too.
    const ACTED_ON: &[(&str, Action)] = &[
        ("ErrorServerBusy", Action::Backoff),
        ("ErrorInternalServerError", Action::Backoff),
        ("ErrorInternalServerTransientError", Action::Backoff),
        ("ErrorTimeoutExpired", Action::Backoff),
        ("ErrorExceededConnectionCount", Action::Backoff),
        ("ErrorTooManyObjectsOpened", Action::Backoff),
        ("ErrorMailboxStoreUnavailable", Action::Backoff),
        ("ErrorConnectionFailed", Action::Backoff),
        ("ErrorADUnavailable", Action::Backoff),
        ("ErrorBatchProcessingStopped", Action::Backoff),
        ("ErrorInsufficientResources", Action::Backoff),
        ("ErrorNotEnoughMemory", Action::Backoff),
        ("ErrorMailboxFailover", Action::Backoff),
        ("ErrorProxyCallFailed", Action::Backoff),
        ("ErrorProxyRequestProcessingFailed", Action::Backoff),
        ("ErrorNoRespondingCASInDestinationSite", Action::Backoff),
        ("ErrorNoApplicableProxyCASServersAvailable", Action::Backoff),
        ("ErrorClientDisconnected", Action::Backoff),
        ("ErrorRequestAborted", Action::Backoff),
        ("ErrorExceededSubscriptionCount", Action::Backoff),
        ("ErrorMailboxMoveInProgress", Action::ParkMailbox),
        ("ErrorInvalidSyncStateData", Action::Rebaseline),
        ("ErrorInvalidIdMalformed", Action::Rebaseline),
        ("ErrorInvalidIdEmpty", Action::Rebaseline),
        (
            "ErrorInvalidIdMalformedEwsLegacyIdFormat",
            Action::Rebaseline,
        ),
        ("ErrorFolderNotFound", Action::ResolveFolder),
        ("ErrorSyncFolderNotFound", Action::ResolveFolder),
        ("ErrorInvalidFolderId", Action::ResolveFolder),
        ("ErrorParentFolderNotFound", Action::ResolveFolder),
        ("ErrorToFolderNotFound", Action::ResolveFolder),
        ("ErrorAccessDenied", Action::DisableMailbox),
        ("ErrorNonExistentMailbox", Action::DisableMailbox),
        ("ErrorImpersonateUserDenied", Action::DisableMailbox),
        ("ErrorImpersonationDenied", Action::DisableMailbox),
        ("ErrorImpersonationFailed", Action::DisableMailbox),
        ("ErrorAccountDisabled", Action::DisableMailbox),
        ("ErrorMailboxLogonFailed", Action::DisableMailbox),
        ("ErrorInvalidMailbox", Action::DisableMailbox),
        ("ErrorMailboxConfiguration", Action::DisableMailbox),
        ("ErrorPasswordExpired", Action::DisableMailbox),
        ("ErrorPasswordChangeRequired", Action::DisableMailbox),
        ("ErrorOrganizationAccessBlocked", Action::DisableMailbox),
        ("ErrorInvalidLicense", Action::DisableMailbox),
        ("ErrorCallerIsInvalidADAccount", Action::DisableMailbox),
        (
            "ErrorNoOAuthServerAvailableForRequest",
            Action::DisableMailbox,
        ),
        ("ErrorInvalidSubscription", Action::Resubscribe),
        ("ErrorExpiredSubscription", Action::Resubscribe),
        ("ErrorSubscriptionNotFound", Action::Resubscribe),
        ("ErrorSubscriptionUnsubscribed", Action::Resubscribe),
        ("ErrorSubscriptionAccessDenied", Action::Resubscribe),
        ("ErrorInvalidWatermark", Action::Resubscribe),
        ("ErrorEventNotFound", Action::Resubscribe),
        ("ErrorReadEventsFailed", Action::Resubscribe),
        ("ErrorMissedNotificationEvents", Action::Resubscribe),
        ("ErrorNewEventStreamConnectionOpened", Action::Resubscribe),
        ("ErrorInvalidPullSubscriptionId", Action::Resubscribe),
        ("ErrorSchemaValidation", Action::Fatal),
        ("ErrorInvalidRequest", Action::Fatal),
        ("ErrorInvalidExchangeImpersonationHeaderData", Action::Fatal),
        ("ErrorInvalidServerVersion", Action::Fatal),
        ("ErrorIncorrectSchemaVersion", Action::Fatal),
        ("ErrorInvalidSchemaVersionForMailboxVersion", Action::Fatal),
        ("ErrorDuplicateSOAPHeader", Action::Fatal),
        ("ErrorInvalidPropertyRequest", Action::Fatal),
        ("ErrorExceededFindCountLimit", Action::Fatal),
        ("ErrorInvalidSubscriptionRequest", Action::Fatal),
    ];

    fn code_action(code: &ResponseCode) -> Action {
        action(&Outcome::Code {
            code,
            back_off: None,
            inner: None,
        })
    }

    #[test]
    fn every_schema_code_lands_where_the_table_says() {
        let table: HashMap<&str, Action> = ACTED_ON.iter().copied().collect();
        assert_eq!(table.len(), ACTED_ON.len(), "a code is listed twice");
        for (name, _) in ACTED_ON {
            assert!(
                !matches!(ResponseCode::parse(name), ResponseCode::Other(_)),
                "{name} is not a schema code"
            );
        }
        let mut item_failures = 0;
        for code in ResponseCode::ALL {
            let expected = table
                .get(code.as_str())
                .copied()
                .unwrap_or(Action::FailItem);
            assert_eq!(code_action(code), expected, "{code}");
            item_failures += usize::from(expected == Action::FailItem);
        }
        assert_eq!(item_failures, ResponseCode::ALL.len() - ACTED_ON.len());
    }

    #[test]
    fn the_codes_the_protocol_notes_name_get_their_action() {
        let rows = [
            ("ErrorItemNotFound", Action::FailItem),
            ("ErrorInvalidSyncStateData", Action::Rebaseline),
            ("ErrorFolderNotFound", Action::ResolveFolder),
            ("ErrorSyncFolderNotFound", Action::ResolveFolder),
            ("ErrorMailboxMoveInProgress", Action::ParkMailbox),
            ("ErrorMailboxStoreUnavailable", Action::Backoff),
            ("ErrorConnectionFailed", Action::Backoff),
            ("ErrorImpersonateUserDenied", Action::DisableMailbox),
            ("ErrorImpersonationDenied", Action::DisableMailbox),
            ("ErrorNonExistentMailbox", Action::DisableMailbox),
            ("ErrorAccessDenied", Action::DisableMailbox),
            ("ErrorSchemaValidation", Action::Fatal),
            ("ErrorQuotaExceeded", Action::FailItem),
            ("NoError", Action::FailItem),
        ];
        for (name, expected) in rows {
            assert_eq!(code_action(&ResponseCode::parse(name)), expected, "{name}");
        }
    }

    #[test]
    fn unknown_codes_are_item_failures() {
        let code = ResponseCode::parse("ErrorSomethingNewer");
        assert_eq!(code_action(&code), Action::FailItem);
    }

    #[test]
    fn server_busy_waits_exactly_what_the_server_asked_in_both_forms() {
        let xml = MessageXml {
            values: vec![("BackOffMilliseconds".into(), "5000".into())],
            elements: vec![],
        };
        let fault = Fault {
            code: Some(ResponseCode::ErrorServerBusy),
            message_xml: xml.clone(),
            ..Fault::default()
        };
        let message = ResponseError {
            class: ResponseClass::Error,
            code: ResponseCode::ErrorServerBusy,
            text: None,
            message_xml: xml,
        };
        let five = Action::RetryAfter(Duration::from_secs(5));
        assert_eq!(action(&Outcome::from_fault(&fault)), five);
        assert_eq!(action(&Outcome::from_message(&message)), five);
        let no_hint = Outcome::Code {
            code: &ResponseCode::ErrorServerBusy,
            back_off: None,
            inner: None,
        };
        assert_eq!(action(&no_hint), Action::Backoff);
    }

    #[test]
    fn internal_server_error_with_an_inner_busy_backs_off() {
        let code = ResponseCode::ErrorInternalServerError;
        let inner_busy = Outcome::Code {
            code: &code,
            back_off: MS,
            inner: Some(ResponseCode::ErrorServerBusy),
        };
        assert_eq!(action(&inner_busy), Action::RetryAfter(MS.unwrap()));
        let inner_other = Outcome::Code {
            code: &code,
            back_off: None,
            inner: Some(ResponseCode::ErrorItemSave),
        };
        assert_eq!(action(&inner_other), Action::Backoff);
        let inner_sync_state = Outcome::Code {
            code: &code,
            back_off: None,
            inner: Some(ResponseCode::ErrorInvalidSyncStateData),
        };
        assert_eq!(action(&inner_sync_state), Action::Rebaseline);
    }

    #[test]
    fn graph_errors_by_code_then_by_status() {
        use Target::{Folder, Item, Mailbox};
        let wait = Duration::from_millis(2128);
        let two = Some(wait);
        let rows: &[(u16, &str, Option<Duration>, Target, Action)] = &[
            (410, "SyncStateNotFound", None, Folder, Action::Rebaseline),
            (410, "syncStateNotFound", None, Folder, Action::Rebaseline),
            (400, "SyncStateInvalid", None, Folder, Action::Rebaseline),
            (400, "resyncRequired", None, Folder, Action::Rebaseline),
            (410, "", None, Folder, Action::Rebaseline),
            (
                404,
                "ErrorItemNotFound",
                None,
                Folder,
                Action::ResolveFolder,
            ),
            (404, "ErrorItemNotFound", None, Item, Action::FailItem),
            (
                404,
                "ErrorItemNotFound",
                None,
                Mailbox,
                Action::DisableMailbox,
            ),
            (400, "ErrorInvalidIdMalformed", None, Item, Action::FailItem),
            (
                404,
                "ErrorSyncFolderNotFound",
                None,
                Folder,
                Action::ResolveFolder,
            ),
            (
                404,
                "ErrorInvalidUser",
                None,
                Mailbox,
                Action::DisableMailbox,
            ),
            (
                400,
                "MailboxNotEnabledForRESTAPI",
                None,
                Folder,
                Action::DisableMailbox,
            ),
            (403, "ErrorAccessDenied", None, Item, Action::DisableMailbox),
            (
                401,
                "InvalidAuthenticationToken",
                None,
                Mailbox,
                Action::DisableMailbox,
            ),
            (403, "ErrorQuotaExceeded", None, Folder, Action::ParkMailbox),
            (
                503,
                "ErrorMailboxMoveInProgress",
                None,
                Item,
                Action::ParkMailbox,
            ),
            (
                412,
                "ErrorIrresolvableConflict",
                None,
                Item,
                Action::FailItem,
            ),
            (
                429,
                "ApplicationThrottled",
                two,
                Item,
                Action::RetryAfter(wait),
            ),
            (429, "TooManyRequests", None, Folder, Action::Backoff),
            (
                503,
                "serviceNotAvailable",
                two,
                Folder,
                Action::RetryAfter(wait),
            ),
            (500, "generalException", None, Folder, Action::Backoff),
            (504, "", None, Folder, Action::Backoff),
            (400, "BadRequest", None, Folder, Action::Fatal),
            (404, "", None, Folder, Action::ResolveFolder),
            (405, "", None, Item, Action::Fatal),
        ];
        for (status, code, retry_after, target, expected) in rows {
            let outcome = Outcome::Graph {
                status: *status,
                code,
                retry_after: *retry_after,
                target: *target,
            };
            assert_eq!(action(&outcome), *expected, "{status} {code} {target:?}");
        }
    }

    #[test]
    fn a_fault_without_a_code_is_unreadable_and_transient() {
        let fault = Fault {
            fault_code: "soap:Server".into(),
            ..Fault::default()
        };
        assert_eq!(action(&Outcome::from_fault(&fault)), Action::Backoff);
    }

    #[test]
    fn http_and_transport_outcomes() {
        let status = |status, retry_after| Outcome::Status {
            status,
            retry_after,
        };
        let rows = [
            (status(401, None), Action::DisableMailbox),
            (status(403, None), Action::DisableMailbox),
            (status(429, MS), Action::RetryAfter(MS.unwrap())),
            (status(503, MS), Action::RetryAfter(MS.unwrap())),
            (status(503, None), Action::Backoff),
            (status(429, None), Action::Backoff),
            (status(500, None), Action::Backoff),
            (status(502, None), Action::Backoff),
            (status(504, None), Action::Backoff),
            (status(400, None), Action::Fatal),
            (status(404, None), Action::Fatal),
            (
                Outcome::Redirect {
                    to_error_page: true,
                },
                Action::Backoff,
            ),
            (
                Outcome::Redirect {
                    to_error_page: false,
                },
                Action::Fatal,
            ),
            (
                Outcome::Transport(TransportFailure::Timeout),
                Action::Backoff,
            ),
            (
                Outcome::Transport(TransportFailure::Connect),
                Action::Backoff,
            ),
            (Outcome::Transport(TransportFailure::Reset), Action::Backoff),
            (Outcome::Malformed, Action::Backoff),
            (
                Outcome::Credentials { rejected: true },
                Action::DisableMailbox,
            ),
            (Outcome::Credentials { rejected: false }, Action::Backoff),
        ];
        for (outcome, expected) in rows {
            assert_eq!(action(&outcome), expected, "{outcome:?}");
        }
    }
}
