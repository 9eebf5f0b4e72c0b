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

/// RFC 3339 UTC with milliseconds (`2024-05-01T12:34:56.789Z`), from ms since the epoch.
#[must_use]
pub fn format_ms(ms: i64) -> String {
    let (date, rem) = civil(ms);
    format!("{date}T{}.{:03}Z", hms(rem), ms.rem_euclid(1000))
}

/// RFC 3339 UTC to the second (`2024-05-01T12:34:56Z`), from ms since the epoch.
#[must_use]
pub fn format_secs(ms: i64) -> String {
    let (date, rem) = civil(ms);
    format!("{date}T{}Z", hms(rem))
}

fn hms(rem: i64) -> String {
    format!("{:02}:{:02}:{:02}", rem / 3600, (rem % 3600) / 60, rem % 60)
}

/// The date (`YYYY-MM-DD`) and the seconds into that day.
fn civil(ms: i64) -> (String, i64) {
    let secs = ms.div_euclid(1000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    (format!("{y:04}-{m:02}-{d:02}"), secs.rem_euclid(86_400))
}

// Howard Hinnant's days-to-civil algorithm: avoids a date crate for one format.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_secs(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_secs(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(format_secs(1_714_566_896_789), "2024-05-01T12:34:56Z");
        assert_eq!(format_ms(1_714_566_896_789), "2024-05-01T12:34:56.789Z");
        assert_eq!(format_ms(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn now_is_after_2020_and_does_not_go_back() {
        let a = now_ms();
        let b = now_ms();
        assert!(a > 1_577_836_800_000, "{a}");
        assert!(b >= a);
    }
}
