//! Human-friendly duration parsing ("500ms", "2s", "1m", "1.5s").

use std::time::Duration;

/// Longest duration accepted anywhere. Capping keeps every `Instant + Duration`
/// in the service free of overflow without checking each addition.
const MAX: Duration = Duration::from_secs(366 * 24 * 3600);

/// Parses a duration such as `500ms`, `2s`, `1.5s`, `1m` or `1h`.
///
/// A number needs a unit (`ms`, `s`, `m`, `h`), except a bare `0`: a bare
/// `5` is ambiguous between seconds and milliseconds, so it is rejected.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("duration {text:?} needs a unit: ms, s, m or h (e.g. 500ms, 2s)"))?;
    let (number, unit) = s.split_at(split);
    if number.is_empty() {
        return Err(format!(
            "invalid duration {text:?}: expected a number and a unit, e.g. 500ms, 2s, 1.5s, 1m"
        ));
    }
    let nanos_per_unit: f64 = match unit {
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        "h" => 3600e9,
        _ => {
            return Err(format!(
                "duration {text:?} has unknown unit {unit:?}; use ms, s, m or h"
            ));
        }
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("duration {text:?} has an invalid number {number:?}"))?;
    // Rounding to whole nanoseconds makes "0.1s" exactly 100ms.
    let nanos = (value * nanos_per_unit).round();
    if !nanos.is_finite() || nanos > MAX.as_nanos() as f64 {
        return Err(format!("duration {text:?} is too long (at most 366 days)"));
    }
    Ok(Duration::from_nanos(nanos as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0.1s"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0ms"), Ok(Duration::ZERO));
        assert_eq!(parse_duration(" 3s "), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration(".5s"), Ok(Duration::from_millis(500)));
    }

    #[test]
    fn rejects_bad_input() {
        for bad in [
            "", "5", "s", "ms", "1x", "1.2.3s", "-1s", "1 s", "1e3s", "99999h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
