//! Per-revision counters: requests, errors, latency and requests in flight.
//!
//! Latency is the time from picking the revision to receiving the upstream's response headers
//! (or the proxy giving up on it). That is what a canary verdict should judge: it excludes time a
//! request spent held on a paused route and time the client took to read a long body or stream.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::histogram::{AtomicHistogram, Histogram};

/// Cumulative counts for one revision since the proxy first saw it.
#[derive(Clone, Debug, Default)]
pub struct RevisionStats {
    /// Requests that were sent (or tried) upstream.
    pub requests: u64,
    /// 5xx answers from upstream plus connect failures and timeouts.
    pub errors: u64,
    /// Time to response headers.
    pub latency: Histogram,
}

impl RevisionStats {
    /// What happened after `earlier`, an older snapshot of the same revision.
    pub fn since(&self, earlier: &RevisionStats) -> RevisionStats {
        RevisionStats {
            requests: self.requests.saturating_sub(earlier.requests),
            errors: self.errors.saturating_sub(earlier.errors),
            latency: self.latency.since(&earlier.latency),
        }
    }

    /// Errors per request, 0.0 when there were no requests.
    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors as f64 / self.requests as f64
        }
    }
}

/// The live counters behind [`RevisionStats`], updated with atomics on the request path.
pub(crate) struct RevisionMetrics {
    requests: AtomicU64,
    errors: AtomicU64,
    in_flight: AtomicU64,
    latency: AtomicHistogram,
}

impl RevisionMetrics {
    fn new() -> Self {
        RevisionMetrics {
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            latency: AtomicHistogram::new(),
        }
    }

    pub(crate) fn record(&self, latency: Duration, error: bool) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if error {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        self.latency.record(latency);
    }

    pub(crate) fn enter(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn leave(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub(crate) fn snapshot(&self) -> RevisionStats {
        RevisionStats {
            requests: self.requests.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            latency: self.latency.snapshot(),
        }
    }
}

/// Revision name → its metrics. Touched only by table installs and the stats readers; the request
/// path reaches the metrics through the compiled route table.
#[derive(Default)]
pub(crate) struct MetricsRegistry {
    by_revision: Mutex<HashMap<String, Arc<RevisionMetrics>>>,
}

impl MetricsRegistry {
    pub(crate) fn get_or_create(&self, revision: &str) -> Arc<RevisionMetrics> {
        let mut map = self.by_revision.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(revision.to_string())
            .or_insert_with(|| Arc::new(RevisionMetrics::new()))
            .clone()
    }

    /// Drops a revision's counters (a later table naming it starts from zero).
    pub(crate) fn remove(&self, revision: &str) -> bool {
        let mut map = self.by_revision.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(revision).is_some()
    }

    pub(crate) fn get(&self, revision: &str) -> Option<Arc<RevisionMetrics>> {
        let map = self.by_revision.lock().unwrap_or_else(|e| e.into_inner());
        map.get(revision).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_and_error_rate() {
        let m = RevisionMetrics::new();
        m.record(Duration::from_millis(1), false);
        let before = m.snapshot();
        m.record(Duration::from_millis(2), true);
        m.record(Duration::from_millis(3), false);
        let w = m.snapshot().since(&before);
        assert_eq!(w.requests, 2);
        assert_eq!(w.errors, 1);
        assert_eq!(w.latency.count(), 2);
        assert!((w.error_rate() - 0.5).abs() < f64::EPSILON);
        assert_eq!(RevisionStats::default().error_rate(), 0.0);
    }

    #[test]
    fn registry_keeps_one_counter_per_revision() {
        let r = MetricsRegistry::default();
        let a = r.get_or_create("v1");
        a.enter();
        assert_eq!(r.get_or_create("v1").in_flight(), 1);
        assert!(r.get("v2").is_none());
        a.leave();
        assert_eq!(r.get("v1").map(|m| m.in_flight()), Some(0));
    }
}
