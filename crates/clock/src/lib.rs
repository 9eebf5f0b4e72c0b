//! Wall-clock time, one copy for every crate.
//!
//! Timestamps that are stored or shown (events, log lines, probe results,
//! failure reports) are milliseconds since the Unix epoch and come from
//! [`now_ms`]. Durations and deadlines are not measured here: the runtime
//! uses tokio's clock for those, so that tests can pause and advance it.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch; 0 if the system clock is before it,
/// `i64::MAX` if it is absurdly far after.
#[must_use]
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::now_ms;

    #[test]
    fn now_is_after_2020_and_does_not_go_back() {
        let a = now_ms();
        let b = now_ms();
        assert!(a > 1_577_836_800_000, "{a}");
        assert!(b >= a);
    }
}
