//! What to do after a delivery attempt failed (tracking-rules R30, R32): retry later with
//! back-off, or give up as `undeliverable`, or `rejected` at once when the sink's answer is
//! final. PURE: an entry's failures and the error in, a decision out.
//!
//! Transient failures (no connection, a timeout, 5xx, 408, 429) say nothing about the request
//! itself: they are retried with exponential back-off and jitter, up to an hour apart, for a
//! configured period (a day by default) before the request is undeliverable. Only refusals —
//! a 4xx that is not a final rejection — count toward the small attempt limit.
//!
//! Two waits are no attempt at all: when the sink asked every caller to slow down (service
//! protection), and while the regarding record is unavailable (R25): every entry regarding it is
//! held, and one of them probes it every `probe`.

use crate::tracking::Regarding;
use std::time::Duration;

/// How a sink failed one delivery.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Worth another try: 5xx, 408, 429, timeouts, connection errors. `retry_after` is the
    /// sink's hint.
    #[error("{reason}")]
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// The sink refused this request (a 4xx such as 404 or 422): tried again a few times, in
    /// case the receiver is being fixed, then undeliverable.
    #[error("{reason}")]
    Refused { reason: String },
    /// Final for this request: 400, 401, 403, a missing privilege. Never retried by itself.
    #[error("{reason}")]
    Rejected { reason: String },
    /// The sink asked every caller to wait (service protection): the request was not looked
    /// at, so this is no attempt.
    #[error("{reason}")]
    Throttled {
        reason: String,
        retry_after: Duration,
    },
    /// The regarding record is gone, or may not be appended to (R25): every entry regarding
    /// it waits — only `mailbox`'s when the refusal was that mailbox owner's.
    #[error("{reason}")]
    RegardingUnavailable {
        regarding: Regarding,
        mailbox: Option<String>,
        reason: String,
    },
}

impl DeliveryError {
    pub fn is_transient(&self) -> bool {
        matches!(self, DeliveryError::Transient { .. })
    }

    /// Whether the request was tried at all: a wait the sink asked for, or a regarding held
    /// (R25), is no attempt.
    pub fn is_attempt(&self) -> bool {
        !matches!(
            self,
            DeliveryError::Throttled { .. } | DeliveryError::RegardingUnavailable { .. }
        )
    }
}

/// The decision after a failed attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// Try again after this long.
    RetryIn(Duration),
    /// Out of attempts or out of time: mark the mail "Tracking failed"; `foldertrack retry`
    /// can re-queue it.
    Undeliverable,
    /// The sink refused it for good.
    Rejected,
    /// Try again after this long, with no attempt counted.
    Wait(Duration),
    /// Hold it, and every entry regarding the same record, until a probe succeeds (R25).
    Hold,
}

/// A request's failures so far, the one just seen included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failures {
    /// Every failed attempt: the back-off grows with it.
    pub attempts: u32,
    /// Refusals: they count toward `max_attempts`.
    pub refused: u32,
    /// How long its transient failures have lasted.
    pub failing_for: Duration,
}

/// The retry schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeliveryPolicy {
    /// Refusals before a request is undeliverable.
    pub max_attempts: u32,
    /// The first wait; doubled per failed attempt.
    pub base: Duration,
    /// The longest wait between two attempts (and between two probes of a sink that is down).
    pub cap: Duration,
    /// How long transient failures of one request are retried before it is undeliverable.
    pub retry_for: Duration,
    /// How often a held regarding is probed (R25).
    pub probe: Duration,
}

impl Default for DeliveryPolicy {
    /// Five refusals, as Dynamics makes before it calls a mail undeliverable; transient
    /// failures for a day, at most an hour apart.
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base: Duration::from_secs(2),
            cap: Duration::from_secs(3600),
            retry_for: Duration::from_secs(24 * 3600),
            probe: Duration::from_secs(300),
        }
    }
}

impl DeliveryPolicy {
    /// The decision after `error`. `jitter` in [0, 1) spreads the wait over its upper half,
    /// so requests that failed together do not come back together.
    pub fn next(&self, error: &DeliveryError, failed: Failures, jitter: f64) -> Next {
        let wait = self.backoff(failed.attempts, jitter);
        match error {
            DeliveryError::Rejected { .. } => Next::Rejected,
            DeliveryError::Throttled { retry_after, .. } => Next::Wait(*retry_after),
            DeliveryError::RegardingUnavailable { .. } => Next::Hold,
            DeliveryError::Refused { .. } if failed.refused >= self.max_attempts => {
                Next::Undeliverable
            }
            DeliveryError::Refused { .. } => Next::RetryIn(wait),
            DeliveryError::Transient { .. } if failed.failing_for >= self.retry_for => {
                Next::Undeliverable
            }
            DeliveryError::Transient { retry_after, .. } => {
                Next::RetryIn(retry_after.map_or(wait, |hint| wait.max(hint.min(self.cap))))
            }
        }
    }

    /// The wait after `attempts` failed attempts: `base` doubled per attempt up to `cap`, the
    /// upper half of it chosen by `jitter` in [0, 1).
    pub fn backoff(&self, attempts: u32, jitter: f64) -> Duration {
        backoff(self.base, self.cap, attempts, jitter)
    }
}

/// `base` doubled per failed try after the first, up to `cap`; `jitter` in [0, 1) picks a
/// point in the upper half of it.
pub fn backoff(base: Duration, cap: Duration, tries: u32, jitter: f64) -> Duration {
    let doubling = 2u32.saturating_pow(tries.saturating_sub(1).min(31));
    let full = base.saturating_mul(doubling).min(cap);
    full.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
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

    fn refused() -> DeliveryError {
        DeliveryError::Refused {
            reason: "HTTP 404".into(),
        }
    }

    fn failed(attempts: u32, refused: u32, hours: u64) -> Failures {
        Failures {
            attempts,
            refused,
            failing_for: Duration::from_secs(hours * 3600),
        }
    }

    #[test]
    fn d5_r30_decision_table() {
        let p = DeliveryPolicy::default();
        let secs = Duration::from_secs;
        let rows = [
            (transient(None), failed(1, 0, 0), Next::RetryIn(secs(2))),
            (transient(None), failed(2, 0, 0), Next::RetryIn(secs(4))),
            (transient(None), failed(4, 0, 0), Next::RetryIn(secs(16))),
            // Transient failures do not run out of attempts, only out of time.
            (
                transient(None),
                failed(40, 0, 23),
                Next::RetryIn(secs(3600)),
            ),
            (transient(None), failed(40, 0, 24), Next::Undeliverable),
            (
                transient(Some(60)),
                failed(1, 0, 0),
                Next::RetryIn(secs(60)),
            ),
            (
                transient(Some(1 << 40)),
                failed(1, 0, 0),
                Next::RetryIn(secs(3600)),
            ),
            (refused(), failed(1, 1, 0), Next::RetryIn(secs(2))),
            (refused(), failed(9, 4, 0), Next::RetryIn(secs(512))),
            (refused(), failed(9, 5, 0), Next::Undeliverable),
            (
                DeliveryError::Rejected {
                    reason: "403: missing prvAppendToAccount".into(),
                },
                failed(1, 0, 0),
                Next::Rejected,
            ),
            // Service protection and an unavailable regarding are no attempt.
            (
                DeliveryError::Throttled {
                    reason: "429".into(),
                    retry_after: secs(7),
                },
                failed(40, 0, 30),
                Next::Wait(secs(7)),
            ),
            (
                DeliveryError::RegardingUnavailable {
                    regarding: Regarding {
                        entity: "account".into(),
                        id: "gone".into(),
                    },
                    mailbox: None,
                    reason: "404".into(),
                },
                failed(40, 5, 30),
                Next::Hold,
            ),
        ];
        for (error, failures, want) in rows {
            assert_eq!(
                p.next(&error, failures, 1.0),
                want,
                "{error:?} after {failures:?}"
            );
        }
    }

    #[test]
    fn the_wait_is_capped_and_jittered_over_its_upper_half() {
        let p = DeliveryPolicy::default();
        assert_eq!(p.backoff(40, 1.0), p.cap);
        assert_eq!(p.backoff(u32::MAX, 1.0), p.cap);
        assert_eq!(p.backoff(40, 0.0), p.cap / 2);
        assert_eq!(p.backoff(3, 0.5), Duration::from_secs(6));
    }
}
