//! Human-friendly duration parsing ("500ms", "2s", "1m", "1.5s"): the
//! manifest's parser, with the two rules this service adds on top.

use std::time::Duration;

/// Longest duration accepted anywhere. Capping keeps every `Instant + Duration`
/// in the service free of overflow without checking each addition.
const MAX: Duration = Duration::from_secs(366 * 24 * 3600);

/// Parses a duration such as `500ms`, `2s`, `1.5s`, `1m` or `1h`, as the
/// manifest does ([`orchestra_manifest::parse_duration`]).
///
/// A number needs a unit, except a bare `0`: a bare `5` is ambiguous
/// between seconds and milliseconds, so it is rejected. At most 366 days.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    if text.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    let d = orchestra_manifest::parse_duration(text).map_err(|e| {
        format!("invalid duration {text:?}: {e} (expected e.g. 500ms, 2s, 1.5s, 1m)")
    })?;
    if d > MAX {
        return Err(format!("duration {text:?} is too long (at most 366 days)"));
    }
    Ok(d)
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
