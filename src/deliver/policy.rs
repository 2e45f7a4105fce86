//! What to do after a delivery attempt failed (tracking-rules R30, R32): retry later with
//! back-off, or give up as `undeliverable` after the last attempt, or `rejected` at once when the
//! sink's answer is final. PURE: attempts and errors in, a decision out.

use std::time::Duration;

/// How a sink failed one delivery.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Worth another try: 5xx, timeouts, connection errors, 429. `retry_after` is the sink's hint.
    #[error("{reason}")]
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Final for this request: 400, 403, a missing privilege. Never retried by itself.
    #[error("{reason}")]
    Rejected { reason: String },
}

/// The decision after a failed attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// Try again after this long.
    RetryIn(Duration),
    /// Out of attempts: mark the mail "Tracking failed"; `foldertrack retry` can re-queue it.
    Undeliverable,
    /// The sink refused it for good.
    Rejected,
}

/// The retry schedule: `base` doubled per attempt up to `cap`, at most `max_attempts` in all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeliveryPolicy {
    pub max_attempts: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for DeliveryPolicy {
    /// Five attempts, as Dynamics makes before it calls a mail undeliverable.
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base: Duration::from_secs(2),
            cap: Duration::from_secs(300),
        }
    }
}

impl DeliveryPolicy {
    /// `attempts` counts the attempts made so far, the failed one included.
    pub fn next(&self, error: &DeliveryError, attempts: u32) -> Next {
        match error {
            DeliveryError::Rejected { .. } => Next::Rejected,
            DeliveryError::Transient { .. } if attempts >= self.max_attempts => Next::Undeliverable,
            DeliveryError::Transient { retry_after, .. } => {
                let doubling = 2u32.saturating_pow(attempts.saturating_sub(1));
                let delay = self.base.saturating_mul(doubling).min(self.cap);
                Next::RetryIn(retry_after.map_or(delay, |hint| delay.max(hint)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transient(hint: Option<u64>) -> DeliveryError {
        DeliveryError::Transient {
            reason: "HTTP 503".into(),
            retry_after: hint.map(Duration::from_secs),
        }
    }

    #[test]
    fn decision_table() {
        let p = DeliveryPolicy::default();
        let secs = Duration::from_secs;
        let rows = [
            (transient(None), 1, Next::RetryIn(secs(2))),
            (transient(None), 2, Next::RetryIn(secs(4))),
            (transient(None), 4, Next::RetryIn(secs(16))),
            (transient(None), 5, Next::Undeliverable),
            (transient(Some(60)), 1, Next::RetryIn(secs(60))),
            (transient(Some(60)), 5, Next::Undeliverable),
            (
                DeliveryError::Rejected {
                    reason: "403: missing prvAppendToAccount".into(),
                },
                1,
                Next::Rejected,
            ),
        ];
        for (error, attempts, want) in rows {
            assert_eq!(p.next(&error, attempts), want, "{error:?} after {attempts}");
        }
    }

    #[test]
    fn the_delay_is_capped() {
        let p = DeliveryPolicy {
            max_attempts: 100,
            ..DeliveryPolicy::default()
        };
        assert_eq!(p.next(&transient(None), 40), Next::RetryIn(p.cap));
    }
}
