//! What a rule reports: severity, confidence, message and annotated locations.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::source::{SourceFile, Span};

/// How bad a finding is. Ordered: `Info < Low < Medium < High < Critical`.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; never fails a build by default.
    Info,
    /// Hygiene.
    #[default]
    Low,
    /// Likely to bite in production.
    Medium,
    /// A real risk (security, outage).
    High,
    /// Exploitable now (e.g. a live secret).
    Critical,
}

impl Severity {
    /// All severities, lowest first.
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// Lowercase name (`"high"`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "info" => Ok(Severity::Info),
            "low" => Ok(Severity::Low),
            "medium" => Ok(Severity::Medium),
            "high" => Ok(Severity::High),
            "critical" => Ok(Severity::Critical),
            other => Err(format!(
                "unknown severity `{other}` (expected info, low, medium, high or critical)"
            )),
        }
    }
}

/// How sure the rule is that the finding is real.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    /// A heuristic that may be wrong.
    Low,
    /// Usually right.
    #[default]
    Medium,
    /// Certain from the text alone.
    High,
}

impl Confidence {
    /// Lowercase name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::Low => "low",
            Confidence::Medium => "medium",
            Confidence::High => "high",
        }
    }
}

impl fmt::Display for Confidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One annotated place in one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// Path relative to the audited root, `/`-separated.
    pub path: String,
    /// What is pointed at.
    pub span: Span,
    /// A short note shown next to the caret ("pinned to 3.10 here").
    pub label: String,
    /// Mask the spanned text in every output (secrets).
    pub redact: bool,
}

impl Location {
    /// A location in `file`.
    #[must_use]
    pub fn new(file: &SourceFile, span: Span, label: impl Into<String>) -> Self {
        Self {
            path: file.path.clone(),
            span,
            label: label.into(),
            redact: false,
        }
    }

    /// A location that names a file without pointing inside it (e.g. a missing file).
    #[must_use]
    pub fn whole_file(path: impl Into<String>, label: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            span: Span::default(),
            label: label.into(),
            redact: false,
        }
    }
}

/// What a finding is about beyond its rule and file, so that reports can group repeats:
/// the same secret in five files is one secret to rotate, one stale id 14 times in a
/// file is one thing to rename.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Subject {
    /// Nothing beyond rule and file.
    #[default]
    None,
    /// A secret, by a hash of its value ([`secret_id`]). The hash never reaches any
    /// output: reports name a secret by its findings and locations.
    Secret(u64),
    /// A named thing that is not secret (a stale identifier).
    Name(String),
}

/// The [`Subject::Secret`] hash of a secret value. Rules pass the value in one canonical
/// form (a PEM key as its base64 body) so the same secret groups wherever it appears.
#[must_use]
pub fn secret_id(value: &str) -> u64 {
    fnv1a(&["orchestra-secret-value", value])
}

/// A problem found by a rule. The first location is the primary one.
#[derive(Clone, Debug)]
pub struct Finding {
    /// Stable kebab-case rule id.
    pub rule: &'static str,
    /// Severity (after config overrides).
    pub severity: Severity,
    /// Confidence.
    pub confidence: Confidence,
    /// What is wrong, specific to this occurrence. Never contains a secret value.
    pub message: String,
    /// How to fix it (usually the rule's static help: borrowed, not copied per finding).
    pub help: Cow<'static, str>,
    /// Annotated locations; the first is primary. Never empty once emitted.
    pub locations: Vec<Location>,
    /// Stable identity without line numbers, for baselines (filled by the runner).
    pub fingerprint: String,
    /// What it is about, for grouping in reports (not part of the fingerprint).
    pub subject: Subject,
}

impl Finding {
    /// The primary location.
    #[must_use]
    pub fn primary(&self) -> Option<&Location> {
        self.locations.first()
    }

    /// Sort key: path, line, column, rule, message.
    fn sort_key(&self) -> (&str, u32, u32, &'static str, &str) {
        let (path, line, col) = self.primary().map_or(("", 0, 0), |l| {
            (l.path.as_str(), l.span.start.line, l.span.start.col)
        });
        (path, line, col, self.rule, self.message.as_str())
    }

    /// Order by path, line, column, rule, message.
    pub(crate) fn cmp_sort_key(&self, other: &Self) -> std::cmp::Ordering {
        self.sort_key().cmp(&other.sort_key())
    }
}

/// Replace all but a short prefix of a secret with `*`, for messages.
///
/// Short values are masked entirely so nothing useful leaks.
#[must_use]
pub fn redact(value: &str) -> String {
    let n = value.chars().count();
    if n <= 8 {
        return "*".repeat(n.max(3));
    }
    let prefix: String = value.chars().take(4).collect();
    format!("{prefix}{}", "*".repeat(n.saturating_sub(4).min(12)))
}

/// 64-bit FNV-1a (the `fnv` crate): a stable hash for fingerprints.
#[must_use]
pub fn fnv1a(parts: &[&str]) -> u64 {
    let mut h = Fnv1a::new();
    for part in parts {
        h.part(part);
    }
    h.finish()
}

/// Incremental [`fnv1a`]: `part` hashes one part and its terminating zero byte; `bytes`
/// + `end_part` do the same for a part fed in pieces.
#[derive(Default)]
pub(crate) struct Fnv1a(fnv::FnvHasher);

impl Fnv1a {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn bytes(&mut self, bytes: &[u8]) {
        // `Hasher::write` feeds the bytes as they are (`Hash for str` would add a 0xff).
        std::hash::Hasher::write(&mut self.0, bytes);
    }

    pub(crate) fn end_part(&mut self) {
        self.bytes(&[0]);
    }

    pub(crate) fn part(&mut self, part: &str) {
        self.bytes(part.as_bytes());
        self.end_part();
    }

    pub(crate) fn finish(self) -> u64 {
        std::hash::Hasher::finish(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_orders_and_parses() {
        assert!(Severity::Critical > Severity::High);
        assert_eq!("HIGH".parse::<Severity>(), Ok(Severity::High));
        assert!("nope".parse::<Severity>().is_err());
    }

    #[test]
    fn redaction_hides_the_tail() {
        assert_eq!(redact("abc"), "***");
        let r = redact("sk-live-0123456789abcdef");
        assert!(r.starts_with("sk-l"));
        assert!(!r.contains("0123"));
    }

    /// Pins the fingerprint hash: fingerprints are compared against earlier
    /// reports (baselines, SARIF), so they must not change.
    #[test]
    fn fnv1a_is_pinned() {
        assert_eq!(fnv1a(&[]), 0xcbf2_9ce4_8422_2325);
        assert_eq!(
            fnv1a(&["rule", "path", "a b", "msg"]),
            0xe29b_b1ac_da90_1cd6
        );
        let mut h = Fnv1a::new();
        h.part("rule");
        h.part("path");
        h.bytes(b"a");
        h.bytes(b" ");
        h.bytes(b"b");
        h.end_part();
        h.part("msg");
        assert_eq!(h.finish(), 0xe29b_b1ac_da90_1cd6);
    }
}
