//! Mailbox health (tracking-rules R29, R31): healthy → retrying with back-off → parked and probed
//! at a low rate → healthy again by itself; permanent failures (401, impersonation denied,
//! mailbox not found) disable the mailbox at once, and it is probed rarely so it resumes by
//! itself once an admin fixes the cause. PURE: the caller supplies outcomes, gets delays.

use serde::Serialize;
use std::time::Duration;

/// Why a sync failed, as far as health cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Network, timeouts, 5xx, throttling, mailbox moving: try again later. `hint` is the wait
    /// the server asked for, if any.
    Transient {
        error: String,
        hint: Option<Duration>,
    },
    /// Credentials refused, impersonation denied, no such mailbox: nothing to gain by retrying
    /// soon. `fix` says what an admin should do.
    Permanent { error: String, fix: String },
}

/// A mailbox's health, shown in status and metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Health {
    #[default]
    Healthy,
    /// Failing transiently; `attempt` failures in a row so far.
    Retrying { attempt: u32, last_error: String },
    /// Failed `attempt` times in a row; probed at a low rate until the server answers again.
    Parked { attempt: u32, last_error: String },
    /// Failed permanently; probed rarely until the cause is fixed.
    Disabled { error: String, fix: String },
}

/// The share of a retry or probe delay that is random.
pub const JITTER: f64 = 0.2;

/// The numbers behind the back-off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthPolicy {
    /// First retry delay; doubled per attempt.
    pub base: Duration,
    /// Longest delay between retries while not yet parked.
    pub cap: Duration,
    /// Failures in a row before a mailbox is parked.
    pub park_after: u32,
    /// How often a parked mailbox is probed.
    pub parked_probe: Duration,
    /// How often a disabled mailbox is probed.
    pub disabled_probe: Duration,
}

impl Default for HealthPolicy {
    /// 10 attempts over about an hour (10 s doubling, capped at 15 min: 66 min in all), then a
    /// probe every 30 min; a disabled mailbox hourly.
    fn default() -> Self {
        Self {
            base: Duration::from_secs(10),
            cap: Duration::from_secs(15 * 60),
            park_after: 10,
            parked_probe: Duration::from_secs(30 * 60),
            disabled_probe: Duration::from_secs(60 * 60),
        }
    }
}

impl Health {
    /// A sync succeeded: whatever the state was, the mailbox is healthy again.
    pub fn on_success(&mut self) {
        *self = Health::Healthy;
    }

    /// A sync failed: the new state and how long to wait before trying again. `spread`, in
    /// -1..=1, moves the delay by up to [`JITTER`] of itself, so mailboxes that failed together
    /// (a revoked credential, a server outage) are not probed together.
    pub fn on_failure(&mut self, failure: Failure, policy: &HealthPolicy, spread: f64) -> Duration {
        let jitter = |d: Duration| d.mul_f64(1.0 + JITTER * spread.clamp(-1.0, 1.0));
        match failure {
            Failure::Permanent { error, fix } => {
                *self = Health::Disabled { error, fix };
                jitter(policy.disabled_probe)
            }
            Failure::Transient { error, hint } => {
                let attempt = match self {
                    Health::Retrying { attempt, .. } | Health::Parked { attempt, .. } => {
                        *attempt + 1
                    }
                    Health::Healthy | Health::Disabled { .. } => 1,
                };
                let delay = if attempt >= policy.park_after {
                    *self = Health::Parked {
                        attempt,
                        last_error: error,
                    };
                    policy.parked_probe
                } else {
                    *self = Health::Retrying {
                        attempt,
                        last_error: error,
                    };
                    let doubling = 2u32.saturating_pow(attempt - 1);
                    policy.base.saturating_mul(doubling).min(policy.cap)
                };
                // A server's own hint is honoured even when it is longer than our schedule.
                let delay = jitter(delay);
                hint.map_or(delay, |h| delay.max(h))
            }
        }
    }

    /// True while regular syncs run (healthy or retrying); parked and disabled mailboxes are
    /// only probed.
    pub fn is_active(&self) -> bool {
        matches!(self, Health::Healthy | Health::Retrying { .. })
    }

    /// A short name for metrics and tables.
    /// What an admin can do about it; `None` while nothing needs doing.
    pub fn fix(&self) -> Option<&str> {
        match self {
            Health::Parked { .. } => Some(
                "Exchange keeps failing for this mailbox: check that the server at exchange.url answers and is not overloaded; foldertrack probes it at a low rate, and track-now tries at once",
            ),
            Health::Disabled { fix, .. } => Some(fix),
            Health::Healthy | Health::Retrying { .. } => None,
        }
    }

    pub fn label(&self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Retrying { .. } => "retrying",
            Health::Parked { .. } => "parked",
            Health::Disabled { .. } => "disabled",
        }
    }
}

/// The fix an admin applies for a permanent failure (R31): the mailbox is disabled with it,
/// and `check-config` prints it.
pub const PERMANENT_FIX: &str = "check the service account's credentials and grant it ApplicationImpersonation on this mailbox (Exchange Online: the app's full_access_as_app consent), or remove the mailbox from the config; it resumes by itself once fixed";

#[cfg(test)]
mod tests {
    use super::*;

    fn transient(hint: Option<u64>) -> Failure {
        Failure::Transient {
            error: "HTTP 503".into(),
            hint: hint.map(Duration::from_secs),
        }
    }

    #[test]
    fn transient_failures_back_off_then_park_after_about_an_hour() {
        let policy = HealthPolicy::default();
        let mut h = Health::Healthy;
        let delays: Vec<u64> = (0..10)
            .map(|_| h.on_failure(transient(None), &policy, 0.0).as_secs())
            .collect();
        assert_eq!(delays, [10, 20, 40, 80, 160, 320, 640, 900, 900, 1800]);
        let before_parking: u64 = delays[..9].iter().sum();
        assert!((3000..=4500).contains(&before_parking), "{before_parking}");
        assert_eq!(h.label(), "parked");
        assert!(!h.is_active());
        assert_eq!(h.on_failure(transient(None), &policy, 0.0).as_secs(), 1800);
    }

    #[test]
    fn a_parked_mailbox_resumes_by_itself_on_success() {
        let mut h = Health::Parked {
            attempt: 12,
            last_error: "x".into(),
        };
        h.on_success();
        assert_eq!(h, Health::Healthy);
        assert!(h.is_active());
    }

    #[test]
    fn permanent_failures_disable_at_once_and_are_probed_hourly() {
        let mut h = Health::Healthy;
        let d = h.on_failure(
            Failure::Permanent {
                error: "HTTP 401".into(),
                fix: "check the service account's password".into(),
            },
            &HealthPolicy::default(),
            0.0,
        );
        assert_eq!(d, Duration::from_secs(3600));
        assert_eq!(h.label(), "disabled");
        // Fixed by an admin: the next probe succeeds and the mailbox is healthy again.
        h.on_success();
        assert_eq!(h, Health::Healthy);
    }

    #[test]
    fn probes_of_mailboxes_that_failed_together_are_spread_out() {
        let policy = HealthPolicy::default();
        let probe = |spread| {
            let mut h = Health::Healthy;
            let permanent = Failure::Permanent {
                error: "HTTP 401".into(),
                fix: "x".into(),
            };
            h.on_failure(permanent, &policy, spread).as_secs()
        };
        assert_eq!((probe(-1.0), probe(0.0), probe(1.0)), (2880, 3600, 4320));
        let mut parked = Health::Parked {
            attempt: 12,
            last_error: "x".into(),
        };
        let d = parked.on_failure(transient(None), &policy, 0.5);
        assert_eq!(d.as_secs(), 1980);
    }

    #[test]
    fn a_server_hint_longer_than_the_schedule_wins() {
        let mut h = Health::Healthy;
        let d = h.on_failure(transient(Some(300)), &HealthPolicy::default(), 0.0);
        assert_eq!(d, Duration::from_secs(300));
        let d = h.on_failure(transient(Some(1)), &HealthPolicy::default(), 0.0);
        assert_eq!(d, Duration::from_secs(20));
    }
}
