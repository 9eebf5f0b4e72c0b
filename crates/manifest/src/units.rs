//! Scalar formats: durations, memory sizes, signal names, shell-like argv.

use std::time::Duration;

/// What a duration looks like, for messages.
pub(crate) const DURATION_EXPECTED: &str = "a duration such as 500ms, 2s, 1m30s";

/// Parses a Compose-style duration: one or more `<number><unit>` parts, where the number
/// may have a fraction and the unit is `ns`, `us`/`µs`, `ms`, `s`, `m` or `h`
/// (`"500ms"`, `"2s"`, `"1m30s"`, `"1.5s"`). A bare number has no unit and is an error.
///
/// # Errors
/// A short description of what is wrong, e.g. `missing unit after "5"`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration".to_owned());
    }
    let mut rest = s;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, after) = rest.split_at(num_len);
        if num.is_empty() {
            return Err(format!("expected a number at {rest:?}"));
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let nanos_per_unit: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(format!("missing unit after {num:?}")),
            other => return Err(format!("unknown unit {other:?}")),
        };
        total = total
            .checked_add(
                scaled(num, nanos_per_unit).ok_or_else(|| format!("invalid number {num:?}"))?,
            )
            .ok_or_else(|| "duration too large".to_owned())?;
        rest = next;
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| "duration too large".to_owned())?;
    let nanos =
        u32::try_from(total % 1_000_000_000).map_err(|_| "duration too large".to_owned())?;
    Ok(Duration::new(secs, nanos))
}

/// `num` (decimal, optional fraction) times `unit`, exactly, truncated to an integer.
fn scaled(num: &str, unit: u128) -> Option<u128> {
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if int.is_empty() && frac.is_empty() || frac.contains('.') {
        return None;
    }
    let int: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut value = int.checked_mul(unit)?;
    if !frac.is_empty() {
        // Digits beyond nanosecond precision of the largest unit cannot matter.
        let frac = &frac[..frac.len().min(18)];
        let f: u128 = frac.parse().ok()?;
        let scale = 10u128.checked_pow(u32::try_from(frac.len()).ok()?)?;
        value = value.checked_add(f.checked_mul(unit)? / scale)?;
    }
    Some(value)
}

/// What a memory size looks like, for messages.
pub(crate) const MEMORY_EXPECTED: &str =
    "a size such as 512Mi, 1Gi, 512m, 256MB or a number of bytes";

/// Parses a memory size into bytes. Units are case-insensitive and binary, as Docker reads
/// them: `b`, `k`/`kb`/`ki`, `m`/`mb`/`mi`, `g`/`gb`/`gi`, `t`/`tb`/`ti`; no unit means bytes.
pub(crate) fn parse_memory(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    if num.is_empty() {
        return Err("expected a number".to_owned());
    }
    let multiplier: u128 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "ki" | "kib" => 1 << 10,
        "m" | "mb" | "mi" | "mib" => 1 << 20,
        "g" | "gb" | "gi" | "gib" => 1 << 30,
        "t" | "tb" | "ti" | "tib" => 1 << 40,
        other => return Err(format!("unknown unit {other:?}")),
    };
    let bytes = scaled(num, multiplier).ok_or_else(|| format!("invalid number {num:?}"))?;
    if bytes == 0 {
        return Err("must be greater than zero".to_owned());
    }
    u64::try_from(bytes).map_err(|_| "too large".to_owned())
}

/// Signal names a service may stop with (POSIX and Linux), without the `SIG` prefix.
const SIGNALS: &[&str] = &[
    "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
    "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
    "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
];

/// `"int"`, `"SIGINT"`, `"sigint"` -> `"SIGINT"`; `Err` carries the closest name, if any.
pub(crate) fn normalize_signal(s: &str) -> Result<String, Option<String>> {
    let upper = s.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    if SIGNALS.contains(&bare) {
        return Ok(format!("SIG{bare}"));
    }
    Err(crate::suggest::closest(bare, SIGNALS.iter().copied()).map(|c| format!("SIG{c}")))
}

/// Splits a command string into argv on whitespace. Single quotes are literal, double
/// quotes group and allow `\"` and `\\`, a backslash outside quotes escapes the next char.
/// No variables, globs or operators: it is not a shell.
pub(crate) fn shell_split(s: &str) -> Result<Vec<String>, String> {
    let mut args = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    args.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err("unterminated single quote".to_owned()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$')) => cur.push(c),
                            Some(c) => {
                                cur.push('\\');
                                cur.push(c);
                            }
                            None => return Err("unterminated double quote".to_owned()),
                        },
                        Some(c) => cur.push(c),
                        None => return Err("unterminated double quote".to_owned()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    cur.push(c);
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        args.push(cur);
    }
    Ok(args)
}
