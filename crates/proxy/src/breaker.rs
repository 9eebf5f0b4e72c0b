//! Per-upstream circuit breaker: closed → open (after N consecutive failures) → half-open (one
//! probe after the cooldown) → closed on a success, open again on a failure.
//!
//! Lock-free: two atomics. Time is passed in as microseconds since the proxy's epoch, so the state
//! machine is tested with plain numbers and never reads a clock itself.
//!
//! Half-open needs no third state: once the cooldown has passed, the first caller of
//! [`Breaker::try_acquire`] moves `open_until` one cooldown further with a compare-and-swap and
//! becomes the probe; everyone else sees the breaker open until the probe reports. A probe that
//! never reports (its client went away) just lets another probe through one cooldown later.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// What a breaker looks like at a given time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

pub(crate) struct Breaker {
    /// Failures that open the breaker; 0 disables it.
    threshold: u32,
    cooldown_us: u64,
    /// Consecutive failures so far.
    failures: AtomicU32,
    /// 0 when closed, else the time (µs since epoch) from which a probe may go through.
    open_until: AtomicU64,
}

impl Breaker {
    pub(crate) fn new(threshold: u32, cooldown: Duration) -> Self {
        Breaker {
            threshold,
            cooldown_us: u64::try_from(cooldown.as_micros()).unwrap_or(u64::MAX),
            failures: AtomicU32::new(0),
            open_until: AtomicU64::new(0),
        }
    }

    fn reopen_at(&self, now_us: u64) -> u64 {
        now_us.saturating_add(self.cooldown_us).max(1)
    }

    pub(crate) fn state(&self, now_us: u64) -> BreakerState {
        match self.open_until.load(Ordering::Acquire) {
            0 => BreakerState::Closed,
            until if now_us < until => BreakerState::Open,
            _ => BreakerState::HalfOpen,
        }
    }

    /// The common case, decided without a clock.
    pub(crate) fn is_closed(&self) -> bool {
        self.open_until.load(Ordering::Acquire) == 0
    }

    /// Whether a request could go to this upstream now (closed, or half-open with the probe free).
    pub(crate) fn is_available(&self, now_us: u64) -> bool {
        self.state(now_us) != BreakerState::Open
    }

    /// Claims the right to send a request: always when closed, never when open, and for exactly
    /// one caller per cooldown when half-open.
    pub(crate) fn try_acquire(&self, now_us: u64) -> bool {
        let until = self.open_until.load(Ordering::Acquire);
        if until == 0 {
            return true;
        }
        if now_us < until {
            return false;
        }
        self.open_until
            .compare_exchange(
                until,
                self.reopen_at(now_us),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    /// A response below 500 arrived: reset and close. Reads before writing so the common case
    /// does not bounce the cache line between cores.
    pub(crate) fn on_success(&self) {
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Relaxed);
        }
        if self.open_until.load(Ordering::Relaxed) != 0 {
            self.open_until.store(0, Ordering::Release);
        }
    }

    /// A connect failure, timeout or 5xx: count it, and open (or re-open) at the threshold.
    pub(crate) fn on_failure(&self, now_us: u64) {
        if self.threshold == 0 {
            return;
        }
        let failures = self
            .failures
            .fetch_add(1, Ordering::AcqRel)
            .saturating_add(1);
        if failures >= self.threshold {
            self.open_until
                .store(self.reopen_at(now_us), Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOL: u64 = 1_000_000;

    fn breaker() -> Breaker {
        Breaker::new(3, Duration::from_micros(COOL))
    }

    #[test]
    fn opens_after_consecutive_failures_only() {
        let b = breaker();
        b.on_failure(10);
        b.on_failure(11);
        b.on_success();
        b.on_failure(12);
        b.on_failure(13);
        assert_eq!(b.state(14), BreakerState::Closed);
        assert!(b.is_closed());
        b.on_failure(15);
        assert!(!b.is_closed());
        assert_eq!(b.state(16), BreakerState::Open);
        assert!(!b.try_acquire(16));
        assert!(!b.is_available(15 + COOL - 1));
    }

    #[test]
    fn half_open_lets_exactly_one_probe_through() {
        let b = breaker();
        for t in 0..3 {
            b.on_failure(t);
        }
        let t = 2 + COOL;
        assert_eq!(b.state(t), BreakerState::HalfOpen);
        assert!(b.is_available(t));
        assert!(b.try_acquire(t));
        assert!(!b.try_acquire(t));
        assert_eq!(b.state(t + 1), BreakerState::Open);
    }

    #[test]
    fn probe_success_closes() {
        let b = breaker();
        for t in 0..3 {
            b.on_failure(t);
        }
        assert!(b.try_acquire(5 + COOL));
        b.on_success();
        assert_eq!(b.state(6 + COOL), BreakerState::Closed);
        // A fresh run of failures is needed to open it again.
        b.on_failure(7 + COOL);
        assert_eq!(b.state(8 + COOL), BreakerState::Closed);
    }

    #[test]
    fn probe_failure_reopens_for_a_full_cooldown() {
        let b = breaker();
        for t in 0..3 {
            b.on_failure(t);
        }
        let t = 10 + COOL;
        assert!(b.try_acquire(t));
        b.on_failure(t + 5);
        assert_eq!(b.state(t + 5 + COOL - 1), BreakerState::Open);
        assert_eq!(b.state(t + 5 + COOL), BreakerState::HalfOpen);
    }

    #[test]
    fn abandoned_probe_is_replaced_after_another_cooldown() {
        let b = breaker();
        for t in 0..3 {
            b.on_failure(t);
        }
        let t = 2 + COOL;
        assert!(b.try_acquire(t));
        assert!(!b.try_acquire(t + COOL - 1));
        assert!(b.try_acquire(t + COOL));
    }

    #[test]
    fn zero_threshold_never_opens() {
        let b = Breaker::new(0, Duration::from_secs(1));
        for t in 0..100 {
            b.on_failure(t);
        }
        assert_eq!(b.state(100), BreakerState::Closed);
    }

    #[test]
    fn opening_at_time_zero_is_not_mistaken_for_closed() {
        let b = Breaker::new(1, Duration::ZERO);
        b.on_failure(0);
        assert_ne!(b.state(0), BreakerState::Closed);
    }
}
