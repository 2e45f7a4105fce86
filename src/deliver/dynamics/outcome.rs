//! What a failed Web API call means for the tracking request, with what to do about it:
//! service protection is a wait, not an attempt; a regarding record that is gone or may not be
//! appended to holds its mapping (R25); a missing privilege is final and named (R32); a
//! refused fresh token is a configuration error; 5xx and transport failures are retried.
//! <https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/compose-http-requests-handle-errors>

use super::api::ApiError;
use crate::deliver::policy::DeliveryError;
use crate::tracking::Regarding;

/// What was being done when the call failed.
pub struct Doing<'a> {
    /// "creating the email activity", …
    pub what: &'a str,
    /// The regarding the call links to, if it does.
    pub regarding: Option<&'a Regarding>,
    /// The mailbox whose owner the call acted as, if it did.
    pub acting_for: Option<&'a str>,
}

/// `CannotActOnBehalfOfAnotherUser`.
const NO_DELEGATE: &str = "0x8004a110";
/// `DuplicateRecordsFound` (duplicate detection, which is off unless asked for).
const DUPLICATES: &str = "0x80040333";

/// The delivery outcome of `error`.
pub fn outcome(error: ApiError, doing: &Doing<'_>) -> DeliveryError {
    let what = doing.what;
    match &error {
        ApiError::Throttled(wait) => DeliveryError::Throttled {
            reason: format!("{what}: {error}"),
            retry_after: *wait,
        },
        ApiError::Transport { .. } => DeliveryError::Transient {
            reason: format!("{what}: {error}"),
            retry_after: None,
        },
        ApiError::SignIn(e) if e.is_rejected() => DeliveryError::Rejected {
            reason: format!("{what}: {error}"),
        },
        ApiError::SignIn(_) => DeliveryError::Transient {
            reason: format!("{what}: {error}"),
            retry_after: None,
        },
        ApiError::Refused { status, .. } => refused(*status, &error, doing),
    }
}

fn refused(status: u16, error: &ApiError, doing: &Doing<'_>) -> DeliveryError {
    let what = doing.what;
    let code = error.code().to_ascii_lowercase();
    let message = error.message();
    if let Some(r) = doing.regarding
        && let Some(held) = regarding_unavailable(status, message, r, doing)
    {
        return held;
    }
    let privilege = missing_privilege(message);
    let reason = match (status, code.as_str(), privilege) {
        (401, ..) => format!(
            "{what}: Dataverse refused a freshly issued token; check that the app registration has an application user in this environment, with a security role"
        ),
        (403, NO_DELEGATE, _) => format!(
            "{what}: the application user may not act for mailbox owners (it lacks prvActOnBehalfOfAnotherUser, in the Delegate role); grant it, or set act_as_owner = false, then `foldertrack retry`"
        ),
        (_, _, Some(p)) => format!(
            "{what}: Dataverse refused (HTTP {status}): {} lacks the privilege {p}; grant it in a security role, then `foldertrack retry`",
            if doing.acting_for.is_some() {
                "the mailbox owner or the application user"
            } else {
                "the application user"
            }
        ),
        (408 | 500..=599, c, _) if c != DUPLICATES => {
            return DeliveryError::Transient {
                reason: format!("{what}: {error}"),
                retry_after: None,
            };
        }
        _ => format!("{what}: {error}"),
    };
    DeliveryError::Rejected { reason }
}

/// A privilege a refusal names (`… is missing prvAppendToAccount privilege …`).
pub fn missing_privilege(message: &str) -> Option<&str> {
    message
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .find(|w| w.starts_with("prv") && w.len() > 3)
}

/// The regarding record is gone (404 naming it) or may not be appended to (403 for append-to
/// on its table, or a record-level refusal naming it): hold it (R25).
fn regarding_unavailable(
    status: u16,
    message: &str,
    r: &Regarding,
    doing: &Doing<'_>,
) -> Option<DeliveryError> {
    let names_record = message
        .to_ascii_lowercase()
        .contains(&r.id.to_ascii_lowercase());
    let lacks_append_to = missing_privilege(message).is_some_and(|p| {
        p.to_ascii_lowercase().starts_with("prvappendto")
            && message
                .to_ascii_lowercase()
                .contains(&format!("for entity '{}'", r.entity.to_ascii_lowercase()))
    });
    let (reason, mailbox) = match status {
        404 if names_record => (
            format!(
                "the regarding record {r} does not exist in Dataverse (HTTP 404); restore it, or point the mapping's regarding at another record and `foldertrack reload`"
            ),
            None,
        ),
        403 if lacks_append_to => (
            format!(
                "{} may not append to {r} ({}); grant it in a security role, or point the mapping's regarding elsewhere and `foldertrack reload`",
                doing
                    .acting_for
                    .map_or("the application user".to_owned(), |m| format!(
                        "the owner of {m}"
                    )),
                missing_privilege(message).unwrap_or("prvAppendTo")
            ),
            doing.acting_for.map(str::to_owned),
        ),
        403 if names_record => (
            format!(
                "{} has no append-to access to the record {r}; share it or change its owner, or point the mapping's regarding elsewhere and `foldertrack reload`",
                doing
                    .acting_for
                    .map_or("the application user".to_owned(), |m| format!(
                        "the owner of {m}"
                    ))
            ),
            doing.acting_for.map(str::to_owned),
        ),
        _ => return None,
    };
    Some(DeliveryError::RegardingUnavailable {
        regarding: r.clone(),
        mailbox,
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(status: u16, code: &str, message: &str) -> ApiError {
        ApiError::Refused {
            status,
            code: code.into(),
            message: message.into(),
        }
    }

    #[test]
    fn privilege_errors_are_final_and_name_the_privilege() {
        let doing = Doing {
            what: "creating the email activity",
            regarding: None,
            acting_for: None,
        };
        let e = outcome(
            refused(
                403,
                "0x80040220",
                "Principal user (Id=1) is missing prvCreateActivity privilege (Id=2) on OTC=4202 for entity 'email'",
            ),
            &doing,
        );
        let DeliveryError::Rejected { reason } = e else {
            panic!("a 403 must be final");
        };
        assert!(reason.contains("prvCreateActivity"), "{reason}");
        assert!(matches!(
            outcome(refused(503, "", ""), &doing),
            DeliveryError::Transient { .. }
        ));
        assert!(matches!(
            outcome(refused(500, "0x80040333", "duplicate"), &doing),
            DeliveryError::Rejected { .. }
        ));
    }
}
