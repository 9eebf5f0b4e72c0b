//! Schedules: when a scheduled job (or anything else that runs on a timetable) fires.
//!
//! Two forms, as written in a manifest's `schedule:`:
//!
//! - a 5-field cron expression (`minute hour day-of-month month day-of-week`, Vixie
//!   syntax with names, ranges, steps and lists; `@hourly`, `@daily`... too), evaluated in
//!   an IANA timezone (`timezone:`, default UTC) by `croner`, which resolves DST gaps and
//!   overlaps;
//! - `@every DURATION` (`@every 2s`, `@every 1h30m`), the manifest's duration syntax:
//!   ticks at a fixed interval from when the schedule starts.
//!
//! [`parse_schedule`] is the one parser every part of the manifest uses, so that all
//! `schedule:` fields accept and reject the same text with the same messages.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use serde::{Deserialize, Serialize};

use crate::units::parse_duration;

/// The five fields of a cron expression, in order, as messages name them.
pub const CRON_FIELDS: [&str; 5] = ["minute", "hour", "day-of-month", "month", "day-of-week"];

/// What each of [`CRON_FIELDS`] takes, for messages.
const CRON_ALLOWED: [&str; 5] = [
    "0-59",
    "0-23",
    "1-31, L or W",
    "1-12 or JAN-DEC",
    "0-7 or SUN-SAT (0 and 7 are Sunday), # or L",
];

/// What a schedule looks like, for messages.
pub const SCHEDULE_EXPECTED: &str = "a 5-field cron expression such as \"*/15 * * * *\", or \"@every DURATION\" such as \"@every 1h30m\"";

/// When something runs: a cron expression in a timezone, or a fixed interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Schedule {
    /// A cron expression evaluated in `timezone`.
    Cron {
        /// The expression as written (5 fields, or a nickname such as `@daily`).
        expr: String,
        /// IANA timezone name (`UTC`, `Europe/Paris`).
        timezone: String,
    },
    /// Every `every`, from when the schedule starts.
    Every {
        /// The interval (greater than zero).
        every: Duration,
    },
}

/// Why a schedule does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The text is empty.
    #[error("empty schedule")]
    Empty,
    /// `@every` without a valid, positive duration.
    #[error("invalid `@every` interval {text:?}: {reason}")]
    Every {
        /// The interval as written.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Not five fields.
    #[error(
        "a cron expression has 5 fields (minute hour day-of-month month day-of-week), found {found}"
    )]
    FieldCount {
        /// How many there are.
        found: usize,
    },
    /// One field of the expression is wrong.
    #[error(
        "invalid {field} field {text:?} in cron expression: {reason} ({field} takes {allowed})"
    )]
    Field {
        /// Which field ([`CRON_FIELDS`]).
        field: &'static str,
        /// What the field takes.
        allowed: &'static str,
        /// The field as written.
        text: String,
        /// Byte offset of the field in the schedule text.
        offset: usize,
        /// What croner says about it.
        reason: String,
    },
    /// The expression as a whole is wrong (a nickname croner does not know...).
    #[error("invalid cron expression {text:?}: {reason}")]
    Expression {
        /// The expression.
        text: String,
        /// What croner says about it.
        reason: String,
    },
    /// Not an IANA timezone name.
    #[error("unknown timezone {0:?}")]
    Timezone(String),
    /// A timezone given with `@every`, which has none.
    #[error("`timezone` applies to cron expressions only, not to `@every`")]
    TimezoneWithEvery,
}

impl ScheduleError {
    /// Byte offset into the schedule text of what is wrong, when one field is.
    #[must_use]
    pub fn offset(&self) -> usize {
        match self {
            ScheduleError::Field { offset, .. } => *offset,
            _ => 0,
        }
    }
}

/// Parses `text` (`schedule:`) with an optional `timezone:` (IANA name; UTC when `None`).
///
/// # Errors
/// [`ScheduleError`] naming the field and the reason.
pub fn parse_schedule(text: &str, timezone: Option<&str>) -> Result<Schedule, ScheduleError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(ScheduleError::Empty);
    }
    if let Some(rest) = t.strip_prefix("@every") {
        if timezone.is_some() {
            return Err(ScheduleError::TimezoneWithEvery);
        }
        let d = rest.trim();
        let every = parse_duration(d).map_err(|reason| ScheduleError::Every {
            text: d.to_owned(),
            reason,
        })?;
        if every.is_zero() {
            return Err(ScheduleError::Every {
                text: d.to_owned(),
                reason: "must be greater than zero".to_owned(),
            });
        }
        return Ok(Schedule::Every { every });
    }
    let tz = timezone.unwrap_or("UTC");
    chrono_tz::Tz::from_str(tz).map_err(|_| ScheduleError::Timezone(tz.to_owned()))?;
    if !t.starts_with('@') {
        let fields = fields_with_offsets(text);
        if fields.len() != 5 {
            return Err(ScheduleError::FieldCount {
                found: fields.len(),
            });
        }
        if let Err(e) = cron(t) {
            // Name the first field that is wrong on its own.
            for (i, (offset, field)) in fields.iter().enumerate() {
                let mut probe = ["*"; 5];
                probe[i] = field;
                if let Err(fe) = cron(&probe.join(" ")) {
                    return Err(ScheduleError::Field {
                        field: CRON_FIELDS[i],
                        allowed: CRON_ALLOWED[i],
                        text: (*field).to_owned(),
                        offset: *offset,
                        reason: reason(&fe),
                    });
                }
            }
            return Err(ScheduleError::Expression {
                text: t.to_owned(),
                reason: reason(&e),
            });
        }
    } else if let Err(e) = cron(t) {
        return Err(ScheduleError::Expression {
            text: t.to_owned(),
            reason: reason(&e),
        });
    }
    Ok(Schedule::Cron {
        expr: t.to_owned(),
        timezone: tz.to_owned(),
    })
}

fn cron(expr: &str) -> Result<Cron, croner::errors::CronError> {
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(expr)
}

fn reason(e: &croner::errors::CronError) -> String {
    use croner::errors::CronError as E;
    let text = match e {
        E::InvalidPattern(m) | E::IllegalCharacters(m) | E::ComponentError(m) => m.clone(),
        other => other.to_string(),
    };
    // croner writes sentences; these read as a clause after a colon.
    let text = text.trim().trim_end_matches('.');
    let mut chars = text.chars();
    chars
        .next()
        .map_or_else(String::new, |c| c.to_lowercase().chain(chars).collect())
}

/// Whitespace-separated fields and their byte offsets.
fn fields_with_offsets(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                out.push((s, &text[s..i]));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, &text[s..]));
    }
    out
}

impl Schedule {
    /// The first tick strictly after `after_ms` (ms since the epoch). For `@every`,
    /// ticks are `anchor_ms + k * every`: `anchor_ms` is when the schedule started.
    /// `None` when a cron expression never matches again (e.g. `0 0 30 2 *`).
    #[must_use]
    pub fn next_after(&self, after_ms: i64, anchor_ms: i64) -> Option<i64> {
        match self {
            Schedule::Every { every } => {
                let step = i64::try_from(every.as_millis()).ok()?.max(1);
                if after_ms < anchor_ms {
                    return Some(anchor_ms);
                }
                let k = (after_ms - anchor_ms) / step + 1;
                anchor_ms.checked_add(k.checked_mul(step)?)
            }
            Schedule::Cron { expr, timezone } => {
                let tz = chrono_tz::Tz::from_str(timezone).ok()?;
                let cron = cron(expr).ok()?;
                let at: DateTime<Utc> = Utc.timestamp_millis_opt(after_ms).single()?;
                let local = at.with_timezone(&tz);
                let next = cron.find_next_occurrence(&local, false).ok()?;
                Some(next.with_timezone(&Utc).timestamp_millis())
            }
        }
    }

    /// The schedule as a manifest writes it (`*/5 * * * * (Europe/Paris)`, `@every 2s`).
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Schedule::Cron { expr, timezone } if timezone == "UTC" => expr.clone(),
            Schedule::Cron { expr, timezone } => format!("{expr} ({timezone})"),
            Schedule::Every { every } => format!("@every {}", format_every(*every)),
        }
    }
}

fn format_every(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let s = ms / 1000;
    let (h, m, s) = (s / 3600, (s % 3600) / 60, s % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// What happens when a tick comes while the previous run is still going.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Concurrency {
    /// Drop the tick (recorded as an event).
    #[default]
    Skip,
    /// Run once more right after the current run ends (ticks do not pile up: one waits).
    Queue,
}

/// A service's `schedule:` (with `timezone:` and `concurrency:`): it is a job the
/// scheduler starts at each tick, not a service `up` starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSchedule {
    /// When it runs.
    pub schedule: Schedule,
    /// What a tick does while a run is going.
    #[serde(default)]
    pub concurrency: Concurrency,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    #[test]
    fn every_parses_durations_and_ticks_from_its_anchor() {
        let s = parse_schedule("@every 1h30m", None).unwrap();
        assert_eq!(
            s,
            Schedule::Every {
                every: Duration::from_secs(5400)
            }
        );
        assert_eq!(s.describe(), "@every 1h30m");
        let two = parse_schedule("@every 2s", None).unwrap();
        assert_eq!(two.next_after(1000, 1000), Some(3000));
        assert_eq!(two.next_after(2999, 1000), Some(3000));
        assert_eq!(two.next_after(3000, 1000), Some(5000));
        assert_eq!(two.next_after(0, 1000), Some(1000));
    }

    #[test]
    fn every_rejects_missing_zero_and_unitless_intervals_and_timezones() {
        assert!(matches!(
            parse_schedule("@every", None),
            Err(ScheduleError::Every { .. })
        ));
        assert!(matches!(
            parse_schedule("@every 0s", None),
            Err(ScheduleError::Every { .. })
        ));
        let e = parse_schedule("@every 5", None).unwrap_err();
        assert!(e.to_string().contains("missing unit"), "{e}");
        assert_eq!(
            parse_schedule("@every 5s", Some("UTC")),
            Err(ScheduleError::TimezoneWithEvery)
        );
    }

    #[test]
    fn cron_next_tick_in_utc_and_in_a_timezone() {
        let s = parse_schedule("*/15 * * * *", None).unwrap();
        assert_eq!(
            s.next_after(ms("2026-03-01T10:07:00Z"), 0),
            Some(ms("2026-03-01T10:15:00Z"))
        );
        // Strictly after: a tick exactly on the instant is the next one.
        assert_eq!(
            s.next_after(ms("2026-03-01T10:15:00Z"), 0),
            Some(ms("2026-03-01T10:30:00Z"))
        );
        let paris = parse_schedule("0 9 * * MON-FRI", Some("Europe/Paris")).unwrap();
        // Saturday 2026-03-07 -> Monday 09:00 in Paris is 08:00 UTC (winter time).
        assert_eq!(
            paris.next_after(ms("2026-03-07T12:00:00Z"), 0),
            Some(ms("2026-03-09T08:00:00Z"))
        );
        assert_eq!(paris.describe(), "0 9 * * MON-FRI (Europe/Paris)");
    }

    #[test]
    fn cron_is_dst_safe() {
        // 2026-03-08: New York springs forward at 02:00 -> 03:00; 02:30 does not exist
        // that day. The job still runs once that day, and at 02:30 the next day.
        let ny = parse_schedule("30 2 * * *", Some("America/New_York")).unwrap();
        let first = ny.next_after(ms("2026-03-08T05:00:00Z"), 0).unwrap();
        assert!(
            first > ms("2026-03-08T05:00:00Z") && first < ms("2026-03-09T00:00:00Z"),
            "{first}"
        );
        assert_eq!(
            ny.next_after(first, 0),
            Some(ms("2026-03-09T06:30:00Z")),
            "02:30 EDT is 06:30 UTC"
        );
        // 2026-11-01: 01:30 happens twice in New York; it runs once.
        let fall = parse_schedule("30 1 * * *", Some("America/New_York")).unwrap();
        let a = fall.next_after(ms("2026-11-01T04:00:00Z"), 0).unwrap();
        let b = fall.next_after(a, 0).unwrap();
        assert!(b - a > 23 * 3_600_000, "ran twice: {a} then {b}");
    }

    #[test]
    fn cron_errors_name_the_field_and_where_it_is() {
        let e = parse_schedule("0 25 * * *", None).unwrap_err();
        match &e {
            ScheduleError::Field {
                field,
                text,
                offset,
                ..
            } => {
                assert_eq!((*field, text.as_str(), *offset), ("hour", "25", 2));
            }
            other => panic!("{other:?}"),
        }
        let e = parse_schedule("*/5  * * * FUNDAY", None).unwrap_err();
        assert!(
            matches!(
                e,
                ScheduleError::Field {
                    field: "day-of-week",
                    offset: 11,
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(
            parse_schedule("* * * *", None),
            Err(ScheduleError::FieldCount { found: 4 })
        );
        assert_eq!(
            parse_schedule("0 0 * * * *", None),
            Err(ScheduleError::FieldCount { found: 6 })
        );
        assert_eq!(
            parse_schedule("0 0 * * *", Some("Mars/Olympus")),
            Err(ScheduleError::Timezone("Mars/Olympus".into()))
        );
        assert!(parse_schedule("@daily", None).is_ok());
        assert!(matches!(
            parse_schedule("@sometimes", None),
            Err(ScheduleError::Expression { .. })
        ));
    }
}
