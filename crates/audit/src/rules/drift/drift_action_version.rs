//! `drift-action-version`: one GitHub action used at different major versions across
//! workflows (`actions/checkout@v3` here, `@v4` there).

use std::collections::BTreeMap;

use crate::collect::FileKind;
use crate::finding::{Confidence, Location, Severity};
use crate::parse::Document;
use crate::repo::Repository;
use crate::rule::{Rule, RuleMeta, Sink};
use crate::rules::workflows::{ActionRef, major_of, uses_nodes};

/// Cross-file: one finding per action used at several major versions.
pub struct ActionVersion;

static META: RuleMeta = RuleMeta {
    id: "drift-action-version",
    title: "Action used at different major versions",
    family: "drift",
    severity: Severity::Low,
    confidence: Confidence::High,
    help: "Move every workflow to the same major version of the action (the newest one \
           usually), and let Dependabot's `github-actions` ecosystem keep them together.",
};

impl Rule for ActionVersion {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_repository(&self, repo: &Repository, out: &mut Sink) {
        // action (lowercase) → major → locations
        let mut seen: BTreeMap<String, BTreeMap<u64, Vec<Location>>> = BTreeMap::new();
        for file in repo
            .files
            .iter()
            .filter(|f| matches!(f.kind, FileKind::Workflow | FileKind::Action))
        {
            let Document::Yaml(docs) = &file.doc else {
                continue;
            };
            for root in docs {
                for node in uses_nodes(root) {
                    let Some(a) = node.as_str().and_then(ActionRef::parse) else {
                        continue;
                    };
                    let Some(r) = a.git_ref else { continue };
                    let line = file.source.line(node.span.start.line);
                    let Some(major) = major_of(r, line) else {
                        continue;
                    };
                    let locs = seen
                        .entry(a.path.to_ascii_lowercase())
                        .or_default()
                        .entry(major)
                        .or_default();
                    // One location per file and major is enough.
                    if !locs.iter().any(|l| l.path == file.path()) {
                        locs.push(Location::new(&file.source, node.span, format!("v{major}")));
                    }
                }
            }
        }
        for (action, majors) in &seen {
            if majors.len() < 2 {
                continue;
            }
            // Most common major, ties → newest (iteration is ascending).
            let Some(target) = majors
                .iter()
                .max_by(|a, b| a.1.len().cmp(&b.1.len()).then(a.0.cmp(b.0)))
                .map(|(m, _)| *m)
            else {
                continue;
            };
            let parts: Vec<String> = majors
                .iter()
                .rev()
                .map(|(m, locs)| {
                    let files: Vec<&str> = locs.iter().map(|l| l.path.as_str()).collect();
                    format!("v{m} ({})", files.join(", "))
                })
                .collect();
            let mut locs: Vec<&Location> = Vec::new();
            for (m, l) in majors {
                if *m != target {
                    locs.extend(l);
                }
            }
            for (m, l) in majors {
                if *m == target {
                    locs.extend(l);
                }
            }
            let mut b = out.report(
                locs[0].clone(),
                format!(
                    "`{action}` is used at {} major versions: {}; converge on v{target}",
                    majors.len(),
                    parts.join(", ")
                ),
            );
            for l in &locs[1..] {
                b = b.related((*l).clone());
            }
            b.emit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::run_rule;

    #[test]
    fn flags_mixed_majors() {
        let a = "on: push\njobs:\n  a:\n    steps:\n      - uses: actions/checkout@v3\n      - uses: actions/setup-python@v5\n";
        let b = "on: push\njobs:\n  b:\n    steps:\n      - uses: actions/checkout@v4.1.1\n      - uses: actions/checkout@8e5e7e5ab8b370d6c329ec480221332ada57f0ab # v4.1.7\n";
        let c = "on: push\njobs:\n  c:\n    steps:\n      - uses: actions/checkout@v4\n      - uses: actions/setup-python@v5.1.0\n";
        let f = run_rule(
            &ActionVersion,
            &[
                (".github/workflows/a.yml", a),
                (".github/workflows/b.yml", b),
                (".github/workflows/c.yml", c),
            ],
        );
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(
            f[0].message,
            "`actions/checkout` is used at 2 major versions: v4 (.github/workflows/b.yml, .github/workflows/c.yml), v3 (.github/workflows/a.yml); converge on v4"
        );
        assert_eq!(f[0].locations[0].path, ".github/workflows/a.yml");
        assert_eq!(f[0].locations.len(), 3);
    }

    #[test]
    fn same_major_and_branches_are_fine() {
        let a = "on: push\njobs:\n  a:\n    steps:\n      - uses: actions/checkout@v4\n      - uses: x/y@main\n";
        let b = "on: push\njobs:\n  a:\n    steps:\n      - uses: actions/checkout@v4.2.0\n      - uses: x/y@v1\n";
        let f = run_rule(
            &ActionVersion,
            &[
                (".github/workflows/a.yml", a),
                (".github/workflows/b.yml", b),
            ],
        );
        assert!(f.is_empty(), "{f:?}");
    }
}
