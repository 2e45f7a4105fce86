//! The adaptive sync cadence (tracking-rules R37): each mailbox has its own interval, 5 minutes
//! by default, shrinking toward 2 while syncs keep finding tracking requests and growing toward
//! 12 after consecutive empty syncs. PURE: no clock, no randomness — the jitter sample is passed
//! in, so every branch is a plain table test.

use std::time::Duration;

/// The numbers that shape the cadence; every one configurable.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CadenceSettings {
    /// The interval of a mailbox with no history yet, and the one a quiet mailbox snaps back
    /// to when it finds something.
    pub normal: Duration,
    /// The shortest interval: a busy mailbox.
    pub busy: Duration,
    /// The longest interval: a quiet mailbox.
    pub quiet: Duration,
    /// ± this fraction of the interval, so thousands of mailboxes never fire together.
    pub jitter: f64,
}

impl Default for CadenceSettings {
    fn default() -> Self {
        Self {
            normal: Duration::from_secs(300),
            busy: Duration::from_secs(120),
            quiet: Duration::from_secs(720),
            jitter: 0.1,
        }
    }
}

/// How a sync ended, as far as the cadence cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The sync produced this many tracking requests (0 = changes, but nothing to track).
    Tracked(usize),
    /// Nothing changed in any mapped folder.
    Idle,
    /// The server has more pages: go on at once (paging, not a new cycle).
    MoreAvailable,
    /// The server asked for a pause of at least this long.
    Throttled(Duration),
    /// The sync failed; mailbox health decides the retry, the interval stays.
    Failed,
}

/// Each busy sync halves the interval (down to `busy`); each quiet one stretches it by half
/// (up to `quiet`): 5 → 2.5 → 2 minutes busy, 5 → 7.5 → 11.25 → 12 minutes quiet.
const SHRINK: f64 = 0.5;
const GROW: f64 = 1.5;

/// A mailbox's cadence state.
#[derive(Clone, Debug, PartialEq)]
pub struct Cadence {
    settings: CadenceSettings,
    interval: Duration,
}

impl Cadence {
    pub fn new(settings: CadenceSettings) -> Self {
        Self {
            settings,
            interval: settings.normal,
        }
    }

    /// The current interval, before jitter.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The tier the interval stands at: `busy` below the normal interval (syncs keep finding
    /// mail), `quiet` above it (nothing found lately), `normal` at it.
    pub fn tier(&self) -> &'static str {
        match self.interval.cmp(&self.settings.normal) {
            std::cmp::Ordering::Less => "busy",
            std::cmp::Ordering::Equal => "normal",
            std::cmp::Ordering::Greater => "quiet",
        }
    }

    /// Folds a sync's outcome in and returns the delay until the next sync starts, counted from
    /// the end of this one. `jitter_sample` is uniform in [-1, 1].
    pub fn next_delay(&mut self, outcome: Outcome, jitter_sample: f64) -> Duration {
        let s = self.settings;
        match outcome {
            Outcome::MoreAvailable => return Duration::ZERO,
            Outcome::Tracked(n) if n > 0 => {
                // A quiet mailbox that finds something is back to normal at once.
                let from = self.interval.min(s.normal);
                self.interval = from.mul_f64(SHRINK).max(s.busy);
            }
            Outcome::Tracked(_) | Outcome::Idle => {
                self.interval = self.interval.mul_f64(GROW).min(s.quiet);
            }
            Outcome::Throttled(_) | Outcome::Failed => {}
        }
        let jitter = s.jitter.clamp(0.0, 1.0) * jitter_sample.clamp(-1.0, 1.0);
        let delay = self.interval.mul_f64(1.0 + jitter);
        match outcome {
            Outcome::Throttled(pause) => delay.max(pause),
            _ => delay,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn outcome_table() {
        // (interval before, outcome, jitter, interval after, delay)
        let rows = [
            (5 * MIN, Outcome::Tracked(3), 0.0, 150, 150),
            (150, Outcome::Tracked(1), 0.0, 2 * MIN, 2 * MIN),
            (12 * MIN, Outcome::Tracked(1), 0.0, 150, 150),
            (5 * MIN, Outcome::Idle, 0.0, 450, 450),
            (5 * MIN, Outcome::Tracked(0), 0.0, 450, 450),
            (11 * MIN, Outcome::Idle, 0.0, 12 * MIN, 12 * MIN),
            (5 * MIN, Outcome::MoreAvailable, 1.0, 5 * MIN, 0),
            (5 * MIN, Outcome::Failed, 0.0, 5 * MIN, 5 * MIN),
            (5 * MIN, Outcome::Throttled(secs(900)), 0.0, 5 * MIN, 900),
            (5 * MIN, Outcome::Throttled(secs(5)), 0.0, 5 * MIN, 5 * MIN),
            (5 * MIN, Outcome::Failed, 1.0, 5 * MIN, 330),
            (5 * MIN, Outcome::Failed, -1.0, 5 * MIN, 270),
        ];
        for (before, outcome, jitter, after, delay) in rows {
            let mut c = Cadence::new(CadenceSettings::default());
            c.interval = secs(before);
            let got = c.next_delay(outcome, jitter);
            assert_eq!(
                (c.interval, got),
                (secs(after), secs(delay)),
                "{before} {outcome:?}"
            );
        }
    }

    #[test]
    fn the_tier_says_which_way_the_interval_moved_from_normal() {
        let mut c = Cadence::new(CadenceSettings::default());
        assert_eq!(c.tier(), "normal");
        c.next_delay(Outcome::Tracked(1), 0.0);
        assert_eq!(c.tier(), "busy");
        c.next_delay(Outcome::Idle, 0.0);
        c.next_delay(Outcome::Idle, 0.0);
        assert_eq!(c.tier(), "quiet");
        c.next_delay(Outcome::Failed, 0.0);
        assert_eq!(c.tier(), "quiet", "a failure leaves the interval");
    }

    #[test]
    fn busy_and_quiet_mailboxes_converge_to_the_bounds() {
        let mut busy = Cadence::new(CadenceSettings::default());
        let mut quiet = Cadence::new(CadenceSettings::default());
        for _ in 0..10 {
            busy.next_delay(Outcome::Tracked(2), 0.0);
            quiet.next_delay(Outcome::Idle, 0.0);
        }
        assert_eq!(busy.interval(), secs(2 * MIN));
        assert_eq!(quiet.interval(), secs(12 * MIN));
    }

    #[test]
    fn jitter_stays_within_its_fraction_and_never_beyond_the_quiet_bound_plus_jitter() {
        let mut c = Cadence::new(CadenceSettings::default());
        for i in 0..=20 {
            let sample = f64::from(i) / 10.0 - 1.0;
            let d = c.next_delay(Outcome::Idle, sample);
            assert!(d <= secs(12 * MIN).mul_f64(1.1), "{d:?}");
            assert!(d >= c.interval().mul_f64(0.9), "{d:?}");
        }
    }
}
