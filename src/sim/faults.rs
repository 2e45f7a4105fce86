//! Fault injection: rules that make the next N calls (or a share of calls), for a mailbox and/or
//! an operation, fail the way Exchange and its front ends fail — ServerBusy as a message or as a
//! SOAP fault, 503/429 with Retry-After, 401, a bad sync state, a mailbox move, slowness,
//! dropped connections and truncated bodies. Owns matching and counting; the HTTP layer acts.

use serde::{Deserialize, Serialize};

/// What an injected fault does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// HTTP 200, a response message `ErrorServerBusy` with `BackOffMilliseconds`.
    ServerBusyMessage { back_off_ms: u64 },
    /// HTTP 500, a SOAP fault `ErrorServerBusy` with `BackOffMilliseconds`.
    ServerBusyFault { back_off_ms: u64 },
    /// HTTP 503 with `Retry-After` (seconds).
    Http503 { retry_after_secs: u64 },
    /// HTTP 429 with `Retry-After` (seconds).
    Http429 { retry_after_secs: u64 },
    /// HTTP 401, as when credentials were revoked.
    Unauthorized,
    /// A response message `ErrorInvalidSyncStateData` (with an empty SyncState on syncs).
    InvalidSyncState,
    /// A response message `ErrorMailboxMoveInProgress`.
    MailboxMoveInProgress,
    /// The call is answered normally after this delay.
    Delay { ms: u64 },
    /// The connection is closed without a complete response.
    DropConnection,
    /// The response is cut after half of its bytes (Content-Length still says the whole).
    TruncateBody,
    /// A response message with this code, e.g. `ErrorInvalidServerVersion` on Subscribe (a
    /// server without streaming) or `ErrorExceededSubscriptionCount`.
    Refuse { code: String },
}

/// One rule: which calls, how often, what happens.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FaultRule {
    /// Only calls acting on this mailbox (any when absent).
    #[serde(default)]
    pub mailbox: Option<String>,
    /// Only this operation, e.g. `SyncFolderItems` (any when absent).
    #[serde(default)]
    pub operation: Option<String>,
    #[serde(flatten)]
    pub fault: FaultKind,
    /// The next N matching calls; unlimited when absent.
    #[serde(default)]
    pub count: Option<u32>,
    /// Each matching call fails with this probability (0..=1); always when absent.
    #[serde(default)]
    pub probability: Option<f64>,
}

/// The active rules, in the order they were added.
#[derive(Debug, Default)]
pub struct Faults {
    rules: Vec<FaultRule>,
}

impl Faults {
    pub fn add(&mut self, rule: FaultRule) {
        self.rules.push(rule);
    }

    pub fn clear(&mut self) {
        self.rules.clear();
    }

    pub fn list(&self) -> Vec<FaultRule> {
        self.rules.clone()
    }

    /// The faults that hit this call: at most one delay and at most one other fault, from the
    /// first rules that match and fire. Rules used up are dropped.
    pub fn take(&mut self, mailbox: Option<&str>, operation: &str) -> Vec<FaultKind> {
        let mut out: Vec<FaultKind> = Vec::new();
        for rule in &mut self.rules {
            let mailbox_ok = match (&rule.mailbox, mailbox) {
                (None, _) => true,
                (Some(want), Some(got)) => want.eq_ignore_ascii_case(got),
                (Some(_), None) => false,
            };
            let op_ok = rule.operation.as_deref().is_none_or(|o| o == operation);
            if !mailbox_ok || !op_ok || rule.count == Some(0) {
                continue;
            }
            let is_delay = matches!(rule.fault, FaultKind::Delay { .. });
            if out
                .iter()
                .any(|f| matches!(f, FaultKind::Delay { .. }) == is_delay)
            {
                continue;
            }
            if rule.probability.is_some_and(|p| fastrand::f64() >= p) {
                continue;
            }
            if let Some(c) = &mut rule.count {
                *c -= 1;
            }
            out.push(rule.fault.clone());
        }
        self.rules.retain(|r| r.count != Some(0));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(mailbox: Option<&str>, op: Option<&str>, count: Option<u32>) -> FaultRule {
        FaultRule {
            mailbox: mailbox.map(str::to_owned),
            operation: op.map(str::to_owned),
            fault: FaultKind::Unauthorized,
            count,
            probability: None,
        }
    }

    #[test]
    fn rules_match_mailbox_and_operation_and_run_out() {
        let mut f = Faults::default();
        f.add(rule(Some("a@x"), Some("GetItem"), Some(2)));
        assert!(f.take(Some("b@x"), "GetItem").is_empty());
        assert!(f.take(Some("A@x"), "SyncFolderItems").is_empty());
        assert_eq!(f.take(Some("a@x"), "GetItem").len(), 1);
        assert_eq!(f.take(Some("a@x"), "GetItem").len(), 1);
        assert!(f.take(Some("a@x"), "GetItem").is_empty());
        assert!(f.list().is_empty());
    }

    #[test]
    fn a_delay_combines_with_one_other_fault() {
        let mut f = Faults::default();
        f.add(FaultRule {
            fault: FaultKind::Delay { ms: 5 },
            ..rule(None, None, None)
        });
        f.add(rule(None, None, None));
        f.add(rule(None, None, None));
        assert_eq!(f.take(None, "GetItem").len(), 2);
    }
}
