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

/// Everything the proxy counts about one revision, for `/metrics` ([`crate::Proxy::traffic`]):
/// the verifier's figures plus what they are made of.
#[derive(Clone, Debug, Default)]
pub struct RevisionTraffic {
    /// The service the revision belongs to (from the first table that named it).
    pub service: String,
    /// Its route: `[host]/prefix`.
    pub route: String,
    /// The revision.
    pub revision: String,
    /// Requests, errors and the latency histogram.
    pub stats: RevisionStats,
    /// Answers by status class: `[1xx, 2xx, 3xx, 4xx, 5xx]` (the proxy's own 502/503/504 count
    /// as 5xx).
    pub by_class: [u64; 5],
    /// Sum of the recorded latencies (exact, unlike the histogram's buckets).
    pub latency_sum: Duration,
    /// Attempts that could not connect to a replica (each retry counts).
    pub connect_errors: u64,
    /// Attempts that got no response headers in time.
    pub timeouts: u64,
    /// Requests open now.
    pub in_flight: u64,
    /// Its weight in the table in force; `None` once no route names it (warm or draining).
    pub weight: Option<u32>,
    /// Its replicas' circuit breakers now (empty when not in the table).
    pub breakers: BreakerCounts,
}

/// How many of a revision's replicas have their circuit breaker in each state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BreakerCounts {
    /// Requests flow.
    pub closed: u64,
    /// No requests until the cooldown ends.
    pub open: u64,
    /// The cooldown ended: one probe request may go.
    pub half_open: u64,
}

/// How a request the revision took ended, for its counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Upstream answered with this status.
    Status(u16),
    /// The proxy answered 5xx itself (no replica could take it, or the upstream failed).
    Failed,
}

/// The live counters behind [`RevisionStats`], updated with atomics on the request path.
pub(crate) struct RevisionMetrics {
    service: String,
    route: String,
    revision: String,
    requests: AtomicU64,
    errors: AtomicU64,
    in_flight: AtomicU64,
    latency: AtomicHistogram,
    latency_sum_us: AtomicU64,
    by_class: [AtomicU64; 5],
    connect_errors: AtomicU64,
    timeouts: AtomicU64,
}

impl RevisionMetrics {
    fn new(revision: &str, service: &str, route: &str) -> Self {
        RevisionMetrics {
            service: service.to_owned(),
            route: route.to_owned(),
            revision: revision.to_owned(),
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            latency: AtomicHistogram::new(),
            latency_sum_us: AtomicU64::new(0),
            by_class: Default::default(),
            connect_errors: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
        }
    }

    pub(crate) fn revision(&self) -> &str {
        &self.revision
    }

    pub(crate) fn record(&self, latency: Duration, outcome: Outcome) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let (class, error) = match outcome {
            Outcome::Status(s) => (usize::from(s / 100).clamp(1, 5) - 1, s >= 500),
            Outcome::Failed => (4, true),
        };
        if error {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        self.by_class[class].fetch_add(1, Ordering::Relaxed);
        self.latency.record(latency);
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// One attempt could not connect to a replica.
    pub(crate) fn connect_error(&self) {
        self.connect_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// One attempt got no response headers in time.
    pub(crate) fn timeout(&self) {
        self.timeouts.fetch_add(1, Ordering::Relaxed);
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

    /// Everything counted, without the table's part (weight, breakers).
    pub(crate) fn traffic(&self) -> RevisionTraffic {
        RevisionTraffic {
            service: self.service.clone(),
            route: self.route.clone(),
            revision: self.revision.clone(),
            stats: self.snapshot(),
            by_class: std::array::from_fn(|i| self.by_class[i].load(Ordering::Relaxed)),
            latency_sum: Duration::from_micros(self.latency_sum_us.load(Ordering::Relaxed)),
            connect_errors: self.connect_errors.load(Ordering::Relaxed),
            timeouts: self.timeouts.load(Ordering::Relaxed),
            in_flight: self.in_flight(),
            weight: None,
            breakers: BreakerCounts::default(),
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
    /// The revision's counters; `service` and `route` label them when they are new.
    pub(crate) fn get_or_create(
        &self,
        revision: &str,
        service: &str,
        route: &str,
    ) -> Arc<RevisionMetrics> {
        let mut map = self.by_revision.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(revision.to_string())
            .or_insert_with(|| Arc::new(RevisionMetrics::new(revision, service, route)))
            .clone()
    }

    /// Every revision's counters, in no particular order.
    pub(crate) fn all(&self) -> Vec<Arc<RevisionMetrics>> {
        let map = self.by_revision.lock().unwrap_or_else(|e| e.into_inner());
        map.values().cloned().collect()
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
        let m = RevisionMetrics::new("v1", "api", "/api");
        m.record(Duration::from_millis(1), Outcome::Status(200));
        let before = m.snapshot();
        m.record(Duration::from_millis(2), Outcome::Status(503));
        m.record(Duration::from_millis(3), Outcome::Status(404));
        let w = m.snapshot().since(&before);
        assert_eq!(w.requests, 2);
        assert_eq!(w.errors, 1);
        assert_eq!(w.latency.count(), 2);
        assert!((w.error_rate() - 0.5).abs() < f64::EPSILON);
        assert_eq!(RevisionStats::default().error_rate(), 0.0);
    }

    #[test]
    fn answers_are_counted_by_status_class_with_an_exact_latency_sum() {
        let m = RevisionMetrics::new("v1", "api", "/api");
        m.record(Duration::from_micros(1500), Outcome::Status(204));
        m.record(Duration::from_micros(500), Outcome::Status(302));
        m.record(Duration::from_micros(10), Outcome::Status(101));
        m.record(Duration::from_micros(1), Outcome::Failed);
        m.record(Duration::from_micros(2), Outcome::Status(599));
        m.connect_error();
        m.timeout();
        m.timeout();
        let t = m.traffic();
        assert_eq!(t.by_class, [1, 1, 1, 0, 2]);
        assert_eq!(t.stats.requests, 5);
        assert_eq!(t.stats.errors, 2);
        assert_eq!(t.latency_sum, Duration::from_micros(2013));
        assert_eq!((t.connect_errors, t.timeouts), (1, 2));
        assert_eq!((t.service.as_str(), t.route.as_str()), ("api", "/api"));
        assert_eq!(t.weight, None);
    }

    #[test]
    fn registry_keeps_one_counter_per_revision() {
        let r = MetricsRegistry::default();
        let a = r.get_or_create("v1", "api", "/api");
        a.enter();
        assert_eq!(r.get_or_create("v1", "other", "/").in_flight(), 1);
        assert_eq!(r.get_or_create("v1", "other", "/").traffic().service, "api");
        assert_eq!(r.all().len(), 1);
        assert!(r.get("v2").is_none());
        a.leave();
        assert_eq!(r.get("v1").map(|m| m.in_flight()), Some(0));
    }
}
