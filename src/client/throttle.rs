//! The call gate every EWS call of one service account passes, in this order:
//! 1. **back-off gate**: a deadline for the account and one per mailbox. `BackOffMilliseconds`
//!    and `Retry-After` move a deadline later, never earlier; nothing passes before it.
//! 2. **rate limiters** (governor): one for the account (the process talks to one Exchange
//!    account, so this is also the global limit) and one keyed per mailbox, with jitter.
//!    With a [`Window`] (Microsoft Graph: 10,000 requests per mailbox in 10 minutes), a third
//!    keyed limiter counts requests rather than calls: a `$batch` of 20 takes 20 cells.
//! 3. **semaphores**: [`MAILBOX_CONCURRENCY`] call in flight per mailbox, at most
//!    `account_concurrency` for the account — taken last, so no permit is held while waiting on
//!    1 or 2. A back-off that arrives while a call waits for its permit sends it back to step 1.
//!
//! governor waits on its own clock, which tokio's paused test clock does not move; here it
//! reads [`TokioClock`] and we sleep with `tokio::time`, so one paused clock drives everything.
//! Owns waiting only: it never sends anything and never decides what an error means.

use crate::ews::Mailbox;
use governor::clock::{Clock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{NotUntil, Quota, RateLimiter};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::ops::Add;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Calls in flight at once for one mailbox: one, under EWS's budget and Graph's four.
pub const MAILBOX_CONCURRENCY: usize = 1;

/// A budget of requests per mailbox over a window of time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub requests: NonZeroU32,
    pub per: Duration,
}

/// The numbers of the gate; defaults stay well under Exchange's 27 concurrent calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Calls in flight at once for the service account.
    pub account_concurrency: usize,
    /// Calls per second for the service account (and so for the process).
    pub account_per_second: NonZeroU32,
    /// Calls per second for one mailbox.
    pub mailbox_per_second: NonZeroU32,
    /// Up to this much random delay is added to every rate-limit wait, so waiting calls do
    /// not all wake at the same instant.
    pub jitter: Duration,
    /// Requests per mailbox per window, counted by weight (see [`Gate::enter_weighted`]).
    pub mailbox_window: Option<Window>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            account_concurrency: 8,
            account_per_second: const { NonZeroU32::new(200).unwrap() },
            mailbox_per_second: const { NonZeroU32::new(5).unwrap() },
            jitter: Duration::from_millis(20),
            mailbox_window: None,
        }
    }
}

/// A governor clock that reads `tokio::time::Instant`, so a paused test clock drives the
/// limiters too.
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioClock;

/// A `tokio::time::Instant` as governor sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TokioInstant(Instant);

impl Add<Nanos> for TokioInstant {
    type Output = Self;
    fn add(self, rhs: Nanos) -> Self {
        Self(self.0 + Duration::from(rhs))
    }
}

impl Reference for TokioInstant {
    fn duration_since(&self, earlier: Self) -> Nanos {
        self.0.saturating_duration_since(earlier.0).into()
    }

    fn saturating_sub(&self, duration: Nanos) -> Self {
        Self(self.0.checked_sub(duration.into()).unwrap_or(self.0))
    }
}

impl Clock for TokioClock {
    type Instant = TokioInstant;
    fn now(&self) -> TokioInstant {
        TokioInstant(Instant::now())
    }
}

type DirectLimiter = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<TokioInstant>>;
type KeyedLimiter =
    RateLimiter<Mailbox, DefaultKeyedStateStore<Mailbox>, TokioClock, NoOpMiddleware<TokioInstant>>;

/// The gate of one service account. Cheap to clone; clones share all state.
#[derive(Clone)]
pub struct Gate {
    inner: Arc<Inner>,
}

struct Inner {
    limits: Limits,
    account_until: Mutex<Option<Instant>>,
    mailbox_until: Mutex<HashMap<Mailbox, Instant>>,
    account_rate: DirectLimiter,
    mailbox_rate: KeyedLimiter,
    mailbox_window: Option<KeyedLimiter>,
    account_permits: Arc<Semaphore>,
    mailbox_permits: Mutex<HashMap<Mailbox, Arc<Semaphore>>>,
    stats: Counters,
}

#[derive(Default)]
struct Counters {
    waiting_back_off: AtomicUsize,
    waiting_rate: AtomicUsize,
    waiting_permit: AtomicUsize,
    in_flight: AtomicUsize,
    back_off_waited_ms: AtomicU64,
    rate_waited_ms: AtomicU64,
    permit_waited_ms: AtomicU64,
    entered: AtomicU64,
}

/// What the gate is doing right now, for metrics and status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GateStats {
    /// How long the account-wide back-off still holds every call.
    pub account_back_off: Duration,
    /// Mailboxes under their own back-off.
    pub mailboxes_backing_off: usize,
    /// Calls waiting at each stage.
    pub waiting_back_off: usize,
    pub waiting_rate: usize,
    pub waiting_permit: usize,
    /// Calls holding a permit.
    pub in_flight: usize,
    /// Total time calls have waited at each stage since start.
    pub back_off_waited: Duration,
    pub rate_waited: Duration,
    pub permit_waited: Duration,
}

/// Held for the duration of one call; dropping it lets the next call for the mailbox go.
pub struct Permit {
    _mailbox: OwnedSemaphorePermit,
    _account: OwnedSemaphorePermit,
    gate: Arc<Inner>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.gate.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// `now + wait`, never overflowing: callers clamp server waits, this is the last guard.
fn deadline(wait: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(wait.min(crate::http::MAX_SERVER_WAIT))
        .unwrap_or(now)
}

/// The whole budget of the mailbox window.
fn window_burst(limits: Limits) -> NonZeroU32 {
    limits
        .mailbox_window
        .map_or(NonZeroU32::MIN, |w| w.requests)
}

// Poisoning only means another call panicked mid-update of a plain map; the map is still valid.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Counts a task as waiting at one stage while it lives, and adds the time it waited.
struct Waiting<'a> {
    count: &'a AtomicUsize,
    total_ms: &'a AtomicU64,
    since: Instant,
}

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicUsize, total_ms: &'a AtomicU64) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self {
            count,
            total_ms,
            since: Instant::now(),
        }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::Relaxed);
        let ms = u64::try_from(self.since.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.total_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

impl Gate {
    pub fn new(limits: Limits) -> Self {
        let limits = Limits {
            account_concurrency: limits.account_concurrency.max(1),
            ..limits
        };
        Self {
            inner: Arc::new(Inner {
                account_until: Mutex::new(None),
                mailbox_until: Mutex::new(HashMap::new()),
                account_rate: RateLimiter::new(
                    Quota::per_second(limits.account_per_second),
                    InMemoryState::default(),
                    TokioClock,
                ),
                mailbox_rate: RateLimiter::new(
                    Quota::per_second(limits.mailbox_per_second),
                    DefaultKeyedStateStore::default(),
                    TokioClock,
                ),
                mailbox_window: limits.mailbox_window.and_then(|w| {
                    let quota =
                        Quota::with_period(w.per / w.requests.get())?.allow_burst(w.requests);
                    Some(RateLimiter::new(
                        quota,
                        DefaultKeyedStateStore::default(),
                        TokioClock,
                    ))
                }),
                account_permits: Arc::new(Semaphore::new(limits.account_concurrency)),
                mailbox_permits: Mutex::new(HashMap::new()),
                stats: Counters::default(),
                limits,
            }),
        }
    }

    pub fn limits(&self) -> Limits {
        self.inner.limits
    }

    /// Holds every call of the account until `now + wait` (or later, if already later).
    pub fn back_off_account(&self, wait: Duration) {
        let until = deadline(wait);
        let mut current = lock(&self.inner.account_until);
        if current.is_none_or(|c| c < until) {
            *current = Some(until);
        }
    }

    /// Holds every call for `mailbox` until `now + wait` (or later, if already later).
    pub fn back_off_mailbox(&self, mailbox: &Mailbox, wait: Duration) {
        let now = Instant::now();
        let until = deadline(wait);
        let mut map = lock(&self.inner.mailbox_until);
        map.retain(|_, t| *t > now);
        let entry = map.entry(mailbox.clone()).or_insert(until);
        if *entry < until {
            *entry = until;
        }
    }

    /// The later of the account's and the mailbox's back-off deadline, if still ahead.
    fn back_off_until(&self, mailbox: &Mailbox) -> Option<Instant> {
        let now = Instant::now();
        let account = *lock(&self.inner.account_until);
        let mailbox = lock(&self.inner.mailbox_until).get(mailbox).copied();
        account.max(mailbox).filter(|t| *t > now)
    }

    /// How long the server asked to leave the mailbox (or its whole account) alone, if it did.
    pub fn back_off_remaining(&self, mailbox: &Mailbox) -> Option<Duration> {
        self.back_off_until(mailbox)
            .map(|t| t.saturating_duration_since(Instant::now()))
    }

    /// Waits until a call for `mailbox` may go, then returns the permit it holds while it runs.
    pub async fn enter(&self, mailbox: &Mailbox) -> Permit {
        self.enter_weighted(mailbox, 1).await
    }

    /// [`Self::enter`] for a call that counts as `weight` requests against the mailbox's
    /// [`Window`] (a `$batch` counts each request in it); rate and concurrency count it once.
    pub async fn enter_weighted(&self, mailbox: &Mailbox, weight: u32) -> Permit {
        let inner = &self.inner;
        if inner.stats.entered.fetch_add(1, Ordering::Relaxed) % 1024 == 1023 {
            self.prune();
        }
        loop {
            self.wait_back_off(mailbox).await;
            self.wait_rate(mailbox, weight).await;
            let permit = self.acquire(mailbox).await;
            // A back-off that arrived while we waited for the permit applies to us too.
            if self.back_off_until(mailbox).is_none() {
                inner.stats.in_flight.fetch_add(1, Ordering::Relaxed);
                return permit;
            }
            drop(permit);
        }
    }

    async fn wait_back_off(&self, mailbox: &Mailbox) {
        let stats = &self.inner.stats;
        let mut waiting = None;
        while let Some(until) = self.back_off_until(mailbox) {
            waiting.get_or_insert_with(|| {
                Waiting::new(&stats.waiting_back_off, &stats.back_off_waited_ms)
            });
            tokio::time::sleep_until(until).await;
        }
    }

    /// Waits for the mailbox's limiters, then the account's: cells taken from each in turn,
    /// so a wait on one never costs a second cell of another.
    async fn wait_rate(&self, mailbox: &Mailbox, weight: u32) {
        let inner = &self.inner;
        let mut waiting = None;
        if let Some(window) = &inner.mailbox_window {
            let n = NonZeroU32::new(weight).unwrap_or(NonZeroU32::MIN);
            // A weight above the whole budget could never pass: it takes the whole budget.
            self.wait_limiter(&mut waiting, || {
                window.check_key_n(mailbox, n).unwrap_or_else(|_| {
                    window
                        .check_key_n(mailbox, window_burst(inner.limits))
                        .unwrap_or(Ok(()))
                })
            })
            .await;
        }
        self.wait_limiter(&mut waiting, || inner.mailbox_rate.check_key(mailbox))
            .await;
        self.wait_limiter(&mut waiting, || inner.account_rate.check())
            .await;
    }

    async fn wait_limiter<'a>(
        &'a self,
        waiting: &mut Option<Waiting<'a>>,
        check: impl Fn() -> Result<(), NotUntil<TokioInstant>>,
    ) {
        let stats = &self.inner.stats;
        while let Err(not_until) = check() {
            waiting.get_or_insert_with(|| Waiting::new(&stats.waiting_rate, &stats.rate_waited_ms));
            let wait = not_until.wait_time_from(TokioClock.now()) + self.jitter();
            tokio::time::sleep(wait).await;
        }
    }

    fn jitter(&self) -> Duration {
        let max = u64::try_from(self.inner.limits.jitter.as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(fastrand::u64(0..=max))
    }

    async fn acquire(&self, mailbox: &Mailbox) -> Permit {
        let inner = &self.inner;
        let _waiting = Waiting::new(&inner.stats.waiting_permit, &inner.stats.permit_waited_ms);
        let mailbox_semaphore = lock(&inner.mailbox_permits)
            .entry(mailbox.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(MAILBOX_CONCURRENCY)))
            .clone();
        // The mailbox first: a call queued behind its own mailbox holds no account permit.
        // Neither semaphore is ever closed, so acquiring cannot fail.
        let (Ok(mailbox_permit), Ok(account_permit)) = (
            mailbox_semaphore.acquire_owned().await,
            inner.account_permits.clone().acquire_owned().await,
        ) else {
            unreachable!("the gate never closes its semaphores")
        };
        Permit {
            _mailbox: mailbox_permit,
            _account: account_permit,
            gate: inner.clone(),
        }
    }

    /// Drops state of mailboxes that are idle: expired back-offs, fresh limiter keys, unused
    /// semaphores. Runs by itself now and then; callers may run it after removing mailboxes.
    pub fn prune(&self) {
        let now = Instant::now();
        lock(&self.inner.mailbox_until).retain(|_, t| *t > now);
        self.inner.mailbox_rate.retain_recent();
        if let Some(window) = &self.inner.mailbox_window {
            window.retain_recent();
        }
        lock(&self.inner.mailbox_permits)
            .retain(|_, s| Arc::strong_count(s) > 1 || s.available_permits() == 0);
    }

    /// The current waits, for metrics.
    pub fn stats(&self) -> GateStats {
        let now = Instant::now();
        let s = &self.inner.stats;
        let ms = |a: &AtomicU64| Duration::from_millis(a.load(Ordering::Relaxed));
        GateStats {
            account_back_off: lock(&self.inner.account_until)
                .map_or(Duration::ZERO, |t| t.saturating_duration_since(now)),
            mailboxes_backing_off: lock(&self.inner.mailbox_until)
                .values()
                .filter(|t| **t > now)
                .count(),
            waiting_back_off: s.waiting_back_off.load(Ordering::Relaxed),
            waiting_rate: s.waiting_rate.load(Ordering::Relaxed),
            waiting_permit: s.waiting_permit.load(Ordering::Relaxed),
            in_flight: s.in_flight.load(Ordering::Relaxed),
            back_off_waited: ms(&s.back_off_waited_ms),
            rate_waited: ms(&s.rate_waited_ms),
            permit_waited: ms(&s.permit_waited_ms),
        }
    }
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn mailbox(n: usize) -> Mailbox {
        Mailbox(format!("user{n}@example.com"))
    }

    fn generous() -> Limits {
        Limits {
            account_concurrency: 8,
            account_per_second: NonZeroU32::new(10_000).unwrap(),
            mailbox_per_second: NonZeroU32::new(10_000).unwrap(),
            jitter: Duration::ZERO,
            mailbox_window: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_5000_ms_back_off_no_call_passes_for_5_seconds() {
        let gate = Gate::new(generous());
        let start = Instant::now();
        gate.back_off_account(Duration::from_millis(5000));
        let calls: Vec<_> = (0..4)
            .map(|n| {
                let gate = gate.clone();
                tokio::spawn(async move {
                    let _p = gate.enter(&mailbox(n)).await;
                    Instant::now()
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(gate.stats().waiting_back_off, 4);
        for call in calls {
            let passed = call.await.unwrap();
            assert!(passed - start >= Duration::from_millis(5000));
        }
        assert!(gate.stats().back_off_waited >= Duration::from_secs(19));
    }

    #[tokio::test(start_paused = true)]
    async fn a_back_off_moves_later_never_earlier() {
        let gate = Gate::new(generous());
        let start = Instant::now();
        gate.back_off_account(Duration::from_secs(5));
        gate.back_off_account(Duration::from_secs(1));
        let _p = gate.enter(&mailbox(0)).await;
        assert!(start.elapsed() >= Duration::from_secs(5));
        drop(_p);
        gate.back_off_account(Duration::from_secs(2));
        gate.back_off_account(Duration::from_secs(7));
        let before = Instant::now();
        let _p = gate.enter(&mailbox(0)).await;
        assert!(before.elapsed() >= Duration::from_secs(7));
    }

    #[tokio::test(start_paused = true)]
    async fn a_mailbox_back_off_holds_only_that_mailbox() {
        let gate = Gate::new(generous());
        let start = Instant::now();
        gate.back_off_mailbox(&mailbox(1), Duration::from_secs(30));
        drop(gate.enter(&mailbox(2)).await);
        assert!(start.elapsed() < Duration::from_secs(1));
        assert_eq!(gate.stats().mailboxes_backing_off, 1);
        drop(gate.enter(&mailbox(1)).await);
        assert!(start.elapsed() >= Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn a_back_off_during_the_permit_wait_sends_the_call_back() {
        let gate = Gate::new(Limits {
            account_concurrency: 1,
            ..generous()
        });
        let busy = gate.enter(&mailbox(0)).await;
        let waiter = {
            let gate = gate.clone();
            tokio::spawn(async move {
                let _p = gate.enter(&mailbox(1)).await;
                Instant::now()
            })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        let signalled = Instant::now();
        gate.back_off_account(Duration::from_secs(5));
        drop(busy);
        let passed = waiter.await.unwrap();
        assert!(passed - signalled >= Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn the_mailbox_rate_follows_the_paused_clock() {
        let gate = Gate::new(Limits {
            mailbox_per_second: NonZeroU32::new(2).unwrap(),
            jitter: Duration::from_millis(10),
            ..generous()
        });
        let start = Instant::now();
        for _ in 0..4 {
            drop(gate.enter(&mailbox(0)).await);
        }
        // A burst of 2, then one every 500 ms.
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(1000), "{took:?}");
        assert!(took < Duration::from_millis(1100), "{took:?}");
        assert!(gate.stats().rate_waited >= Duration::from_millis(1000));
        // Another mailbox has its own budget.
        let other = Instant::now();
        drop(gate.enter(&mailbox(1)).await);
        assert!(other.elapsed() < Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn a_mailbox_window_counts_requests_by_weight() {
        // Graph's 10,000 requests in 10 minutes, scaled down: 40 in 10 minutes.
        let gate = Gate::new(Limits {
            mailbox_window: Some(Window {
                requests: NonZeroU32::new(40).unwrap(),
                per: Duration::from_secs(600),
            }),
            ..generous()
        });
        let start = Instant::now();
        drop(gate.enter_weighted(&mailbox(0), 20).await);
        drop(gate.enter_weighted(&mailbox(0), 20).await);
        assert!(start.elapsed() < Duration::from_secs(1), "the budget");
        // The next batch of 20 waits until 20 requests' worth of the window has passed.
        drop(gate.enter_weighted(&mailbox(0), 20).await);
        let waited = start.elapsed();
        assert!(waited >= Duration::from_secs(300), "{waited:?}");
        assert!(waited < Duration::from_secs(301), "{waited:?}");
        // Other mailboxes have their own window; a weight beyond the budget still passes.
        let other = Instant::now();
        drop(gate.enter_weighted(&mailbox(1), 500).await);
        assert!(other.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn the_account_rate_spans_all_mailboxes() {
        let gate = Gate::new(Limits {
            account_per_second: NonZeroU32::new(2).unwrap(),
            jitter: Duration::ZERO,
            ..generous()
        });
        let start = Instant::now();
        for n in 0..4 {
            drop(gate.enter(&mailbox(n)).await);
        }
        assert_eq!(start.elapsed(), Duration::from_millis(1000));
    }

    #[tokio::test(start_paused = true)]
    async fn the_concurrency_cap_is_never_exceeded() {
        let gate = Gate::new(Limits {
            account_concurrency: 3,
            ..generous()
        });
        let account = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let per_mailbox: Arc<Vec<AtomicUsize>> =
            Arc::new((0..5).map(|_| AtomicUsize::new(0)).collect());
        let tasks: Vec<_> = (0..40)
            .map(|n| {
                let (gate, account, peak, per_mailbox) = (
                    gate.clone(),
                    account.clone(),
                    peak.clone(),
                    per_mailbox.clone(),
                );
                tokio::spawn(async move {
                    let m = n % 5;
                    let _p = gate.enter(&mailbox(m)).await;
                    let now = account.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    assert_eq!(per_mailbox[m].fetch_add(1, Ordering::SeqCst), 0);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    per_mailbox[m].fetch_sub(1, Ordering::SeqCst);
                    account.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), 3);
        assert_eq!(gate.stats().in_flight, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn pruning_forgets_idle_mailboxes_only() {
        let gate = Gate::new(generous());
        let held = gate.enter(&mailbox(0)).await;
        drop(gate.enter(&mailbox(1)).await);
        gate.prune();
        let kept: Vec<Mailbox> = lock(&gate.inner.mailbox_permits).keys().cloned().collect();
        assert_eq!(kept, vec![mailbox(0)]);
        drop(held);
    }
}
