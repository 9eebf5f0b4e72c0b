//! Repeats grouped for a report a team can act on: the same secret wherever it occurs is
//! one secret to rotate, one rule firing 14 times in a file is one thing to fix there.
//!
//! [`group`] is a pure function of the findings (in report order); text output prints
//! one block per group, JSON lists the groups next to the findings (by index). A finding
//! is in exactly one group:
//!
//! - [`GroupKind::Secret`]: findings about the same secret value ([`Subject::Secret`]),
//!   across files and rules;
//! - [`GroupKind::Name`]: one rule about one named thing in one file (a stale id,
//!   [`Subject::Name`]);
//! - [`GroupKind::File`]: everything else, by rule and file.
//!
//! Name and file groups hold findings of one severity (a rule may grade occurrences
//! differently); a secret group takes its most severe finding's.

use crate::finding::{Finding, Severity, Subject};

/// What a group's findings have in common.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GroupKind {
    /// The same secret value (wherever it occurs, whichever rule found it).
    Secret,
    /// One rule, one named thing (a stale identifier), one file.
    Name,
    /// One rule, one file.
    File,
}

impl GroupKind {
    /// Lowercase name, as written in JSON.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            GroupKind::Secret => "secret",
            GroupKind::Name => "name",
            GroupKind::File => "file",
        }
    }
}

/// Findings that belong together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// What they have in common.
    pub kind: GroupKind,
    /// The rule of the first (most severe) finding.
    pub rule: &'static str,
    /// Every rule among the findings, first seen first (several only for secrets).
    pub rules: Vec<&'static str>,
    /// The highest severity among the findings.
    pub severity: Severity,
    /// The file, for name and file groups.
    pub path: Option<String>,
    /// The named thing, for name groups.
    pub name: Option<String>,
    /// Indexes into the findings, most severe first, then in report order.
    pub findings: Vec<usize>,
}

impl Group {
    /// How many findings.
    #[must_use]
    pub fn count(&self) -> usize {
        self.findings.len()
    }
}

/// The grouping key of one finding.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Key<'f> {
    Secret(u64),
    Name(&'static str, &'f str, &'f str, Severity),
    File(&'static str, &'f str, Severity),
}

/// Group `findings` (in report order). Groups come most severe first; at equal severity
/// secrets first, then in the order of their first finding.
#[must_use]
pub fn group(findings: &[Finding]) -> Vec<Group> {
    let mut index: std::collections::HashMap<Key<'_>, usize> = std::collections::HashMap::new();
    let mut groups: Vec<Group> = Vec::new();
    for (i, f) in findings.iter().enumerate() {
        let path = f.primary().map_or("", |l| l.path.as_str());
        let (key, kind) = match &f.subject {
            Subject::Secret(h) => (Key::Secret(*h), GroupKind::Secret),
            Subject::Name(n) => (Key::Name(f.rule, path, n, f.severity), GroupKind::Name),
            Subject::None => (Key::File(f.rule, path, f.severity), GroupKind::File),
        };
        let g = *index.entry(key).or_insert_with(|| {
            groups.push(Group {
                kind,
                rule: f.rule,
                rules: Vec::new(),
                severity: f.severity,
                path: (kind != GroupKind::Secret).then(|| path.to_string()),
                name: match &f.subject {
                    Subject::Name(n) => Some(n.clone()),
                    _ => None,
                },
                findings: Vec::new(),
            });
            groups.len() - 1
        });
        groups[g].findings.push(i);
    }
    for g in &mut groups {
        // Stable: report order among equally severe findings.
        g.findings
            .sort_by_key(|&i| std::cmp::Reverse(findings[i].severity));
        g.severity = findings[g.findings[0]].severity;
        g.rule = findings[g.findings[0]].rule;
        for &i in &g.findings {
            if !g.rules.contains(&findings[i].rule) {
                g.rules.push(findings[i].rule);
            }
        }
    }
    groups.sort_by_key(|g| {
        (
            std::cmp::Reverse(g.severity),
            g.kind != GroupKind::Secret,
            g.findings.iter().min().copied().unwrap_or(0),
        )
    });
    groups
}

/// How many findings of each severity, indexed by `Severity as usize`.
#[must_use]
pub fn by_severity(findings: &[Finding]) -> [usize; Severity::ALL.len()] {
    let mut counts = [0; Severity::ALL.len()];
    for f in findings {
        counts[f.severity as usize] += 1;
    }
    counts
}

/// `(rule, its most severe finding's severity, count)` for every rule with findings:
/// most severe first, then most findings, then by id.
#[must_use]
pub fn by_rule(findings: &[Finding]) -> Vec<(&'static str, Severity, usize)> {
    let mut rows: Vec<(&'static str, Severity, usize)> = Vec::new();
    for f in findings {
        match rows.iter_mut().find(|r| r.0 == f.rule) {
            Some(r) => {
                r.1 = r.1.max(f.severity);
                r.2 += 1;
            }
            None => rows.push((f.rule, f.severity, 1)),
        }
    }
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.cmp(&a.2)).then(a.0.cmp(b.0)));
    rows
}

/// The secrets to rotate first: secret groups above info severity (info marks samples
/// and test values), most severe first.
#[must_use]
pub fn to_rotate(groups: &[Group]) -> Vec<&Group> {
    groups
        .iter()
        .filter(|g| g.kind == GroupKind::Secret && g.severity > Severity::Info)
        .collect()
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::finding::{Confidence, Location, secret_id};
    use crate::source::{Pos, Span};

    fn finding(
        rule: &'static str,
        severity: Severity,
        path: &str,
        line: u32,
        subject: Subject,
    ) -> Finding {
        let pos = Pos {
            line,
            col: 1,
            ..Pos::default()
        };
        Finding {
            rule,
            severity,
            confidence: Confidence::High,
            message: format!("{rule} at {line}"),
            help: Cow::Borrowed(""),
            locations: vec![Location {
                path: path.to_string(),
                span: Span {
                    start: pos,
                    end: pos,
                },
                label: String::new(),
                redact: false,
            }],
            fingerprint: String::new(),
            subject,
        }
    }

    #[test]
    fn groups_secrets_by_value_across_files_and_rules() {
        let token = Subject::Secret(secret_id("token-one"));
        let other = Subject::Secret(secret_id("token-two"));
        let findings = vec![
            finding(
                "secret-provider-token",
                Severity::Critical,
                ".env",
                2,
                token.clone(),
            ),
            finding(
                "dockerfile-secret-in-env",
                Severity::High,
                "Dockerfile",
                3,
                token.clone(),
            ),
            finding(
                "secret-provider-token",
                Severity::Critical,
                "Dockerfile",
                9,
                other,
            ),
            finding(
                "secret-provider-token",
                Severity::Critical,
                "deploy/x.sh",
                4,
                token,
            ),
        ];
        let groups = group(&findings);
        assert_eq!(groups.len(), 2, "{groups:?}");
        assert_eq!(groups[0].kind, GroupKind::Secret);
        assert_eq!(
            groups[0].findings,
            [0, 3, 1],
            "most severe first, then report order"
        );
        assert_eq!(groups[0].severity, Severity::Critical);
        assert_eq!(
            groups[0].rules,
            ["secret-provider-token", "dockerfile-secret-in-env"]
        );
        assert_eq!(groups[0].path, None);
        assert_eq!(groups[1].findings, [2]);
        assert_eq!(to_rotate(&groups).len(), 2);
    }

    #[test]
    fn groups_repeats_by_rule_and_file_and_names_by_name() {
        let stale = |n: &str| Subject::Name(n.to_string());
        let findings = vec![
            finding(
                "compose-latest-tag",
                Severity::Medium,
                "compose.yaml",
                3,
                Subject::None,
            ),
            finding(
                "compose-latest-tag",
                Severity::Medium,
                "compose.yaml",
                9,
                Subject::None,
            ),
            finding(
                "stale-id",
                Severity::Medium,
                "deploy/x.yaml",
                3,
                stale("old-project"),
            ),
            finding(
                "stale-id",
                Severity::Medium,
                "deploy/x.yaml",
                4,
                stale("old-bucket"),
            ),
            finding(
                "stale-id",
                Severity::Medium,
                "deploy/x.yaml",
                9,
                stale("old-project"),
            ),
            finding(
                "stale-id",
                Severity::Medium,
                "deploy/y.yaml",
                1,
                stale("old-project"),
            ),
            finding(
                "compose-latest-tag",
                Severity::Medium,
                "other.yaml",
                1,
                Subject::None,
            ),
            // Another severity of the same rule in the same file is another group.
            finding(
                "compose-latest-tag",
                Severity::Low,
                "compose.yaml",
                12,
                Subject::None,
            ),
            finding(
                "compose-privileged",
                Severity::High,
                "compose.yaml",
                5,
                Subject::None,
            ),
        ];
        let groups = group(&findings);
        /// Kind, rule, path, name, findings.
        type Row<'a> = (
            GroupKind,
            &'a str,
            Option<&'a str>,
            Option<&'a str>,
            Vec<usize>,
        );
        let summary: Vec<Row<'_>> = groups
            .iter()
            .map(|g| {
                (
                    g.kind,
                    g.rule,
                    g.path.as_deref(),
                    g.name.as_deref(),
                    g.findings.clone(),
                )
            })
            .collect();
        use GroupKind::{File, Name};
        assert_eq!(
            summary,
            [
                (
                    File,
                    "compose-privileged",
                    Some("compose.yaml"),
                    None,
                    vec![8]
                ),
                (
                    File,
                    "compose-latest-tag",
                    Some("compose.yaml"),
                    None,
                    vec![0, 1]
                ),
                (
                    Name,
                    "stale-id",
                    Some("deploy/x.yaml"),
                    Some("old-project"),
                    vec![2, 4]
                ),
                (
                    Name,
                    "stale-id",
                    Some("deploy/x.yaml"),
                    Some("old-bucket"),
                    vec![3]
                ),
                (
                    Name,
                    "stale-id",
                    Some("deploy/y.yaml"),
                    Some("old-project"),
                    vec![5]
                ),
                (
                    File,
                    "compose-latest-tag",
                    Some("other.yaml"),
                    None,
                    vec![6]
                ),
                (
                    File,
                    "compose-latest-tag",
                    Some("compose.yaml"),
                    None,
                    vec![7]
                ),
            ]
        );
        assert!(to_rotate(&groups).is_empty());
        // Every finding is in exactly one group.
        let mut all: Vec<usize> = groups.iter().flat_map(|g| g.findings.clone()).collect();
        all.sort_unstable();
        assert_eq!(all, (0..findings.len()).collect::<Vec<_>>());
    }

    #[test]
    fn info_secrets_are_not_to_rotate_and_counts_are_ordered() {
        let findings = vec![
            finding(
                "secret-private-key",
                Severity::Info,
                "docs/a.txt",
                1,
                Subject::Secret(1),
            ),
            finding("stale-id", Severity::Medium, "a", 1, Subject::None),
            finding("stale-id", Severity::Medium, "b", 1, Subject::None),
            finding("compose-privileged", Severity::High, "c", 1, Subject::None),
            finding("drift-base-image", Severity::Medium, "d", 1, Subject::None),
        ];
        assert!(to_rotate(&group(&findings)).is_empty());
        assert_eq!(by_severity(&findings), [1, 0, 3, 1, 0]);
        assert_eq!(
            by_rule(&findings),
            [
                ("compose-privileged", Severity::High, 1),
                ("stale-id", Severity::Medium, 2),
                ("drift-base-image", Severity::Medium, 1),
                ("secret-private-key", Severity::Info, 1),
            ]
        );
        assert!(group(&[]).is_empty());
    }
}
