//! `.orchestra-audit.toml`: disabled rules, severity overrides, per-path ignores (with an
//! optional expiry date), stale ids, the OSV database and per-rule options.
//!
//! Loaded in two stages: a strict raw model (unknown keys rejected) validated into
//! [`Config`]; every problem is collected and reported at once.
//!
//! ```toml
//! disable = ["dockerfile-missing-healthcheck"]
//! stale-ids = ["old-project-123"]
//! osv-db = "~/.cache/osv-scanner"
//! fail-on = "medium"
//!
//! [severity]
//! compose-no-resource-limits = "info"
//!
//! [[ignore]]
//! paths = ["examples/**", "tests/fixtures/**"]
//! rules = ["dockerfile-root-user"]     # omit to ignore every rule there
//! reason = "throwaway examples"
//! expires = 2027-01-01
//!
//! [rules.workflow-unpinned-action]
//! pin = "tag"                           # sha | tag | any
//! ```

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::Deserialize;

use crate::AuditError;
use crate::finding::Severity;

/// The file looked up at the audited root when `--config` is not given.
pub const CONFIG_FILE: &str = ".orchestra-audit.toml";

/// A calendar date (for ignore expiry), ordered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    /// Year.
    pub year: i32,
    /// Month 1–12.
    pub month: u8,
    /// Day 1–31.
    pub day: u8,
}

impl Date {
    /// Parse `YYYY-MM-DD`.
    #[must_use]
    pub fn parse(s: &str) -> Option<Date> {
        let mut it = s.trim().splitn(3, '-');
        let year = it.next()?.parse().ok()?;
        let month: u8 = it.next()?.parse().ok()?;
        let day: u8 = it.next()?.get(..2)?.parse().ok()?;
        ((1..=12).contains(&month) && (1..=31).contains(&day)).then_some(Date { year, month, day })
    }

    /// Today in UTC, from the system clock.
    #[must_use]
    pub fn today() -> Date {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Date::from_days((secs / 86_400) as i64)
    }

    /// The civil date `days` after 1970-01-01 (Howard Hinnant's algorithm).
    #[must_use]
    pub fn from_days(days: i64) -> Date {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
        Date { year, month, day }
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawConfig {
    #[serde(default)]
    disable: Vec<String>,
    #[serde(default)]
    severity: BTreeMap<String, String>,
    #[serde(default)]
    ignore: Vec<RawIgnore>,
    #[serde(default)]
    stale_ids: Vec<String>,
    osv_db: Option<String>,
    fail_on: Option<String>,
    #[serde(default)]
    rules: BTreeMap<String, toml::Table>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIgnore {
    #[serde(default)]
    paths: Vec<String>,
    path: Option<String>,
    #[serde(default)]
    rules: Vec<String>,
    reason: Option<String>,
    expires: Option<toml::value::Datetime>,
}

/// A per-path ignore.
#[derive(Clone, Debug)]
pub struct PathIgnore {
    /// The glob patterns as written.
    pub patterns: Vec<String>,
    globs: GlobSet,
    /// Rules ignored there (empty: every rule).
    pub rules: Vec<String>,
    /// Why.
    pub reason: Option<String>,
    /// After this date the ignore stops applying.
    pub expires: Option<Date>,
}

impl PathIgnore {
    /// Does this ignore cover `rule` at `path` on `today`?
    #[must_use]
    pub fn covers(&self, rule: &str, path: &str, today: Date) -> bool {
        if self.expires.is_some_and(|e| today > e) {
            return false;
        }
        (self.rules.is_empty() || self.rules.iter().any(|r| r == rule)) && self.globs.is_match(path)
    }
}

/// `--fail-on` threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailOn {
    /// Exit 1 when a finding is at least this severe.
    Severity(Severity),
    /// Always exit 0 on findings.
    Never,
}

impl std::str::FromStr for FailOn {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("never") || s.eq_ignore_ascii_case("none") {
            Ok(FailOn::Never)
        } else {
            s.parse::<Severity>()
                .map(FailOn::Severity)
                .map_err(|e| format!("{e}, or never"))
        }
    }
}

/// Validated configuration.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// Where it was read from.
    pub path: Option<PathBuf>,
    /// Rules not run at all.
    pub disabled: HashSet<String>,
    /// Severity overrides.
    pub severity: HashMap<String, Severity>,
    /// Per-path ignores.
    pub ignores: Vec<PathIgnore>,
    /// Identifiers that must not appear.
    pub stale_ids: Vec<String>,
    /// OSV database directory (relative to the config file).
    pub osv_db: Option<PathBuf>,
    /// Default `--fail-on`.
    pub fail_on: Option<FailOn>,
    /// `[rules.<id>]` option tables.
    pub rule_options: HashMap<String, toml::Table>,
}

impl Config {
    /// Parse and validate config text. `known_rules` are the registered ids.
    ///
    /// # Errors
    /// Lists every problem found.
    pub fn parse(text: &str, path: &Path, known_rules: &[&str]) -> Result<Config, AuditError> {
        let fail = |errors: Vec<String>| AuditError::Config {
            path: path.to_path_buf(),
            errors,
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| fail(vec![e.to_string()]))?;
        let mut errors = Vec::new();
        let known: HashSet<&str> = known_rules.iter().copied().collect();
        let check_rule = |id: &str, place: &str, errors: &mut Vec<String>| {
            if !known.contains(id) {
                let hint = crate::registry::closest(id, known_rules)
                    .map(|c| format!(" (did you mean `{c}`?)"))
                    .unwrap_or_default();
                errors.push(format!("{place}: unknown rule `{id}`{hint}"));
            }
        };
        for id in &raw.disable {
            check_rule(id, "disable", &mut errors);
        }
        let mut severity = HashMap::new();
        for (id, s) in &raw.severity {
            check_rule(id, "severity", &mut errors);
            match s.parse::<Severity>() {
                Ok(s) => {
                    severity.insert(id.clone(), s);
                }
                Err(e) => errors.push(format!("severity.{id}: {e}")),
            }
        }
        for id in raw.rules.keys() {
            check_rule(id, "rules", &mut errors);
        }
        let mut ignores = Vec::new();
        for (n, ig) in raw.ignore.into_iter().enumerate() {
            let place = format!("ignore[{n}]");
            let mut patterns = ig.paths;
            patterns.extend(ig.path);
            if patterns.is_empty() {
                errors.push(format!("{place}: give `paths` (globs)"));
            }
            let mut b = GlobSetBuilder::new();
            for p in &patterns {
                match Glob::new(p) {
                    Ok(g) => {
                        b.add(g);
                    }
                    Err(e) => errors.push(format!("{place}: bad glob `{p}`: {e}")),
                }
            }
            for id in &ig.rules {
                check_rule(id, &place, &mut errors);
            }
            let expires = match ig.expires {
                None => None,
                Some(d) => match Date::parse(&d.to_string()) {
                    Some(d) => Some(d),
                    None => {
                        errors.push(format!("{place}: `expires` must be a date like 2027-01-01"));
                        None
                    }
                },
            };
            match b.build() {
                Ok(globs) => ignores.push(PathIgnore {
                    patterns,
                    globs,
                    rules: ig.rules,
                    reason: ig.reason,
                    expires,
                }),
                Err(e) => errors.push(format!("{place}: {e}")),
            }
        }
        let fail_on = match raw.fail_on.as_deref().map(str::parse::<FailOn>) {
            None => None,
            Some(Ok(f)) => Some(f),
            Some(Err(e)) => {
                errors.push(format!("fail-on: {e}"));
                None
            }
        };
        if !errors.is_empty() {
            return Err(fail(errors));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        Ok(Config {
            path: Some(path.to_path_buf()),
            disabled: raw.disable.into_iter().collect(),
            severity,
            ignores,
            stale_ids: raw.stale_ids,
            osv_db: raw.osv_db.map(|p| base.join(p)),
            fail_on,
            rule_options: raw.rules.into_iter().collect(),
        })
    }

    /// Read `path`.
    ///
    /// # Errors
    /// Unreadable or invalid file.
    pub fn load(path: &Path, known_rules: &[&str]) -> Result<Config, AuditError> {
        let text = std::fs::read_to_string(path).map_err(|source| AuditError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path, known_rules)
    }

    /// Ignores whose date has passed (reported so they get cleaned up).
    pub fn expired_ignores(&self, today: Date) -> impl Iterator<Item = &PathIgnore> {
        self.ignores
            .iter()
            .filter(move |i| i.expires.is_some_and(|e| today > e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: &[&str] = &["a-rule", "b-rule"];

    #[test]
    fn parses_a_full_config() {
        let c = Config::parse(
            "disable = [\"a-rule\"]\nstale-ids = [\"old\"]\nfail-on = \"medium\"\n[severity]\nb-rule = \"info\"\n[[ignore]]\npaths = [\"examples/**\"]\nexpires = 2027-01-01\n[rules.b-rule]\npin = \"tag\"\n",
            Path::new(".orchestra-audit.toml"),
            RULES,
        )
        .unwrap();
        assert!(c.disabled.contains("a-rule"));
        assert_eq!(c.severity["b-rule"], Severity::Info);
        assert_eq!(c.fail_on, Some(FailOn::Severity(Severity::Medium)));
        let ig = &c.ignores[0];
        let before = Date::parse("2026-12-31").unwrap();
        let after = Date::parse("2027-01-02").unwrap();
        assert!(ig.covers("a-rule", "examples/x/Dockerfile", before));
        assert!(!ig.covers("a-rule", "examples/x/Dockerfile", after));
        assert!(!ig.covers("a-rule", "src/Dockerfile", before));
        assert_eq!(c.rule_options["b-rule"]["pin"].as_str(), Some("tag"));
    }

    #[test]
    fn collects_every_error() {
        let Err(AuditError::Config { errors, .. }) = Config::parse(
            "disable = [\"a-rul\"]\n[severity]\nb-rule = \"huge\"\n[[ignore]]\nrules = [\"zzz\"]\n",
            Path::new("x.toml"),
            RULES,
        ) else {
            panic!("expected errors");
        };
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert!(errors[0].contains("did you mean `a-rule`"));
    }

    #[test]
    fn rejects_unknown_keys() {
        assert!(Config::parse("disabled = []\n", Path::new("x"), RULES).is_err());
    }

    #[test]
    fn dates() {
        assert_eq!(Date::from_days(0).to_string(), "1970-01-01");
        assert_eq!(Date::from_days(19_723).to_string(), "2024-01-01");
        assert!(Date::parse("2027-01-01").unwrap() > Date::parse("2026-12-31").unwrap());
    }
}
