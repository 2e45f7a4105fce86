//! Graph's error body, `{"error": {"code", "message", "innerError": {…}}}`, read leniently:
//! the code decides, the message is for people. Outlook answers with Exchange-style PascalCase
//! codes (`ErrorItemNotFound`, `SyncStateNotFound`) where the documentation lists camelCase
//! ones (`itemNotFound`, `syncStateNotFound`), so codes compare case-insensitively.
//! <https://learn.microsoft.com/graph/errors>

use serde::{Deserialize, Serialize};

/// What an error answer says.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    #[serde(default)]
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Deserialize)]
struct Body {
    error: ErrorDetail,
}

/// The error of an answer body, if it is Graph's error shape.
pub fn read(body: &[u8]) -> Option<ErrorDetail> {
    serde_json::from_slice::<Body>(body).ok().map(|b| b.error)
}

/// The body Graph sends with an error (what the simulator writes).
pub fn body(code: &str, message: &str) -> serde_json::Value {
    serde_json::json!({
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": jiff::Timestamp::now().to_string(),
                "request-id": format!("{:032x}", fastrand::u128(..)),
            }
        }
    })
}

/// True when `code` names the same error as `known`, in either case convention.
pub fn is(code: &str, known: &str) -> bool {
    code.eq_ignore_ascii_case(known)
}

/// The delta token can no longer be used: the folder must be listed again (a re-baseline).
pub fn is_resync(code: &str) -> bool {
    ["SyncStateNotFound", "SyncStateInvalid", "ResyncRequired"]
        .iter()
        .any(|k| is(code, k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_are_read_whatever_the_case_of_their_code() {
        let text = r#"{"error":{"code":"SyncStateNotFound","message":"The sync state generation is not found; generation=149;[highest=157][157][155][156].","innerError":{"request-id":"x","date":"2018-01-01T00:00:00"}}}"#;
        let e = read(text.as_bytes()).unwrap();
        assert!(is_resync(&e.code));
        assert!(is_resync("syncStateNotFound") && is_resync("resyncRequired"));
        assert!(!is_resync("ErrorItemNotFound"));
        assert_eq!(read(b"<html>").map(|e| e.code), None);
        assert_eq!(read(b"{\"error\":{}}").unwrap().code, "");
    }
}
