//! Latency histogram with fixed log-linear buckets (the HDR layout), recorded lock-free.
//!
//! Values are microseconds. Below 128 µs every microsecond has its own bucket; above, each power
//! of two is split into 64 linear buckets, so a bucket is at most 1/64 (1.6 %) of its value wide.
//! Values at or above 2^26 µs (~67 s) land in the top bucket. The layout is fixed, so two
//! snapshots subtract bucket by bucket: that is how the verifier gets a window ([`Histogram::since`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// log2 of the linear buckets per power of two (64).
const SUB_BITS: u32 = 6;
const SUB: usize = 1 << SUB_BITS;
/// Largest value with its own bucket: 2^26 - 1 µs.
const MAX_VALUE: u64 = (1 << 26) - 1;
/// Number of buckets: the index of `MAX_VALUE` plus one.
pub(crate) const BUCKETS: usize = index(MAX_VALUE) + 1;

/// Bucket index of a value in microseconds.
const fn index(us: u64) -> usize {
    let v = if us > MAX_VALUE { MAX_VALUE } else { us };
    let bits = 64 - v.leading_zeros();
    let shift = bits.saturating_sub(SUB_BITS + 1);
    (shift as usize) * SUB + (v >> shift) as usize
}

/// Lowest and highest value (µs, inclusive) that fall into bucket `idx`.
fn bounds(idx: usize) -> (u64, u64) {
    if idx < 2 * SUB {
        return (idx as u64, idx as u64);
    }
    let shift = idx / SUB - 1;
    let low = ((idx - shift * SUB) as u64) << shift;
    (low, low + (1u64 << shift) - 1)
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// A snapshot of latencies: a plain value, cheap to clone and subtract.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Histogram {
    /// Per-bucket counts; empty means all zero.
    counts: Vec<u64>,
}

impl Histogram {
    /// Adds one latency (for load generators and tests; the proxy records through atomics).
    pub fn record(&mut self, latency: Duration) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS];
        }
        self.counts[index(micros(latency))] += 1;
    }

    /// Number of recorded latencies.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The latency at quantile `q` (0.0..=1.0), reported as the upper edge of its bucket so an
    /// SLO check errs on the strict side; zero when empty.
    pub fn quantile(&self, q: f64) -> Duration {
        let total = self.count();
        if total == 0 {
            return Duration::ZERO;
        }
        let q = if q.is_nan() { 1.0 } else { q.clamp(0.0, 1.0) };
        // The rank of the value we want, 1-based: ceil(q * total), at least the first one.
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (idx, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Duration::from_micros(bounds(idx).1);
            }
        }
        Duration::from_micros(MAX_VALUE)
    }

    /// Latencies recorded at or below `bound`, for cumulative buckets at other bounds (such as
    /// Prometheus's). The bucket that straddles `bound` counts as above it, so a count is at
    /// most one bucket (1/64 of the bound) strict. The top bucket, which holds everything from
    /// ~67 s up, is above every bound.
    pub fn count_at_or_below(&self, bound: Duration) -> u64 {
        let bound = micros(bound);
        self.counts
            .iter()
            .enumerate()
            .take_while(|(idx, _)| *idx < BUCKETS - 1 && bounds(*idx).1 <= bound)
            .map(|(_, c)| *c)
            .sum()
    }

    /// [`Histogram::count_at_or_below`] for each of `bounds` (in increasing order), in one pass.
    pub fn cumulative(&self, bounds_in: &[Duration]) -> Vec<u64> {
        let mut out = Vec::with_capacity(bounds_in.len());
        let mut seen = 0u64;
        let mut idx = 0usize;
        let last = self.counts.len().min(BUCKETS - 1);
        for b in bounds_in {
            let bound = micros(*b);
            while idx < last && bounds(idx).1 <= bound {
                seen += self.counts[idx];
                idx += 1;
            }
            out.push(seen);
        }
        out
    }

    /// Mean latency, from bucket midpoints.
    pub fn mean(&self) -> Duration {
        let total = self.count();
        if total == 0 {
            return Duration::ZERO;
        }
        let sum: u128 = self
            .counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(idx, &c)| {
                let (lo, hi) = bounds(idx);
                u128::from(c) * u128::from((lo + hi) / 2)
            })
            .sum();
        Duration::from_micros(u64::try_from(sum / u128::from(total)).unwrap_or(u64::MAX))
    }

    /// What was recorded after `earlier` (an older snapshot of the same recorder).
    pub fn since(&self, earlier: &Histogram) -> Histogram {
        if earlier.counts.is_empty() {
            return self.clone();
        }
        if self.counts.is_empty() {
            return Histogram::default();
        }
        let counts = self
            .counts
            .iter()
            .zip(&earlier.counts)
            .map(|(now, before)| now.saturating_sub(*before))
            .collect();
        Histogram { counts }
    }

    /// Adds another histogram's counts to this one.
    pub fn merge(&mut self, other: &Histogram) {
        if other.counts.is_empty() {
            return;
        }
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS];
        }
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
    }
}

/// The recording side: one atomic counter per bucket, so threads record without a lock.
pub(crate) struct AtomicHistogram {
    counts: Box<[AtomicU64]>,
}

impl AtomicHistogram {
    pub(crate) fn new() -> Self {
        AtomicHistogram {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    pub(crate) fn record(&self, latency: Duration) {
        self.counts[index(micros(latency))].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Histogram {
        Histogram {
            counts: self
                .counts
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_cover_every_value() {
        let mut prev_high = None;
        for idx in 0..BUCKETS {
            let (lo, hi) = bounds(idx);
            assert!(lo <= hi);
            if let Some(p) = prev_high {
                assert_eq!(lo, p + 1, "gap before bucket {idx}");
            }
            assert_eq!(index(lo), idx);
            assert_eq!(index(hi), idx);
            prev_high = Some(hi);
        }
        assert_eq!(prev_high, Some(MAX_VALUE));
        assert_eq!(index(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn bucket_width_is_within_relative_precision() {
        for idx in 2 * SUB..BUCKETS {
            let (lo, hi) = bounds(idx);
            assert!((hi - lo + 1) as f64 / lo as f64 <= 1.0 / SUB as f64);
        }
    }

    #[test]
    fn quantiles_of_a_uniform_range() {
        let mut h = Histogram::default();
        for ms in 1..=1000u64 {
            h.record(Duration::from_millis(ms));
        }
        assert_eq!(h.count(), 1000);
        let close = |got: Duration, want_ms: f64| {
            let got = got.as_secs_f64() * 1000.0;
            assert!(
                (got - want_ms).abs() / want_ms <= 0.02,
                "got {got} want {want_ms}"
            );
        };
        close(h.quantile(0.5), 500.0);
        close(h.quantile(0.99), 990.0);
        close(h.quantile(1.0), 1000.0);
        close(h.quantile(0.0), 1.0);
        close(h.mean(), 500.5);
    }

    #[test]
    fn small_values_are_exact() {
        let mut h = Histogram::default();
        h.record(Duration::from_micros(7));
        h.record(Duration::from_micros(100));
        assert_eq!(h.quantile(0.5), Duration::from_micros(7));
        assert_eq!(h.quantile(1.0), Duration::from_micros(100));
    }

    #[test]
    fn empty_histogram_reports_zero() {
        let h = Histogram::default();
        assert_eq!(h.count(), 0);
        assert_eq!(h.quantile(0.99), Duration::ZERO);
        assert_eq!(h.mean(), Duration::ZERO);
    }

    #[test]
    fn huge_values_clamp_to_top_bucket() {
        let mut h = Histogram::default();
        h.record(Duration::from_secs(3600));
        assert_eq!(h.quantile(1.0), Duration::from_micros(MAX_VALUE));
    }

    #[test]
    fn since_is_the_window_between_two_snapshots() {
        let rec = AtomicHistogram::new();
        for _ in 0..10 {
            rec.record(Duration::from_millis(1));
        }
        let before = rec.snapshot();
        for _ in 0..5 {
            rec.record(Duration::from_millis(100));
        }
        let window = rec.snapshot().since(&before);
        assert_eq!(window.count(), 5);
        assert!(window.quantile(0.0) >= Duration::from_millis(99));
        assert_eq!(rec.snapshot().since(&Histogram::default()).count(), 15);
        assert_eq!(Histogram::default().since(&before).count(), 0);
    }

    #[test]
    fn counts_at_or_below_a_bound_are_cumulative_and_err_strict() {
        let mut h = Histogram::default();
        for us in [3, 100, 4_000, 5_000, 9_000, 70_000_000] {
            h.record(Duration::from_micros(us));
        }
        let at = |ms: u64| h.count_at_or_below(Duration::from_millis(ms));
        assert_eq!(at(1), 2);
        // 5,000 µs shares a bucket with 5,055 µs: it counts above 5 ms.
        assert_eq!(at(5), 3);
        assert_eq!(at(10), 5);
        assert_eq!(at(100_000), 5, "the top bucket is above every bound");
        assert_eq!(
            Histogram::default().count_at_or_below(Duration::from_secs(1)),
            0
        );
    }

    #[test]
    fn merge_adds_counts() {
        let mut a = Histogram::default();
        a.record(Duration::from_micros(5));
        let mut b = Histogram::default();
        b.record(Duration::from_micros(9));
        a.merge(&b);
        a.merge(&Histogram::default());
        assert_eq!(a.count(), 2);
        assert_eq!(a.quantile(1.0), Duration::from_micros(9));
    }
}
