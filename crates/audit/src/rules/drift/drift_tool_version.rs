//! `drift-tool-version`: one tool (Python, Node, Terraform, Poetry, pip, uv) pinned to
//! different versions across files, or pinned outside a declared constraint.

use std::collections::BTreeMap;

use super::{TOOLS, ToolPin, converge, granularity, satisfies, show, tool_pins};
use crate::finding::{Confidence, Severity};
use crate::repo::Repository;
use crate::rule::{Rule, RuleMeta, Sink};

/// Cross-file: one finding per tool whose pins disagree.
pub struct ToolVersion;

static META: RuleMeta = RuleMeta {
    id: "drift-tool-version",
    title: "Tool pinned to different versions across files",
    family: "drift",
    severity: Severity::Medium,
    confidence: Confidence::High,
    help: "Pick one version and use it everywhere (CI setup actions, Dockerfiles, version \
           files, installers), ideally from a single source such as `.tool-versions` or a \
           shared ARG; keep constraints such as `requires-python` compatible with it.",
};

fn describe(pins: &[&ToolPin]) -> String {
    match pins {
        [one] => format!("`{}`", one.loc.path),
        many => format!("{} files", many.len()),
    }
}

impl Rule for ToolVersion {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_repository(&self, repo: &Repository, out: &mut Sink) {
        let ignored: Vec<String> = repo
            .settings
            .option(META.id, "ignore-tools")
            .and_then(toml::Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(toml::Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let pins = tool_pins(repo);
        for (tool, gran) in TOOLS {
            if ignored.iter().any(|t| t == tool) {
                continue;
            }
            let exact: Vec<&ToolPin> = pins
                .iter()
                .filter(|p| p.tool == *tool && p.constraint.is_none())
                .collect();
            if exact.is_empty() {
                continue;
            }
            let constraints: Vec<&ToolPin> = pins
                .iter()
                .filter(|p| p.tool == *tool && p.constraint.is_some())
                .collect();
            let mut by_key: BTreeMap<Vec<u64>, Vec<&ToolPin>> = BTreeMap::new();
            for p in &exact {
                by_key.entry(p.key.clone()).or_default().push(p);
            }
            let violated: Vec<(&ToolPin, Vec<String>)> = constraints
                .iter()
                .filter_map(|c| {
                    let text = c.constraint.as_deref()?;
                    let bad: Vec<String> = by_key
                        .keys()
                        .filter(|k| satisfies(text, k, *gran) == Some(false))
                        .map(|k| show(k))
                        .collect();
                    (!bad.is_empty()).then_some((*c, bad))
                })
                .collect();
            if by_key.len() < 2 && violated.is_empty() {
                continue;
            }
            // Converge on the most common version that every constraint allows.
            let allowed = |k: &Vec<u64>| {
                constraints.iter().all(|c| {
                    c.constraint
                        .as_deref()
                        .and_then(|t| satisfies(t, k, granularity(tool)))
                        != Some(false)
                })
            };
            let counts: BTreeMap<Vec<u64>, (usize, &str)> = by_key
                .iter()
                .filter(|(k, _)| allowed(k))
                .map(|(k, v)| (k.clone(), (v.len(), v[0].version.as_str())))
                .collect();
            let (advice, target_key) = match converge(&counts) {
                Some((target, key)) => (format!("converge on {tool} {target}"), Some(key)),
                None => {
                    let allowed: Vec<String> = constraints
                        .iter()
                        .filter_map(|c| c.constraint.as_deref())
                        .map(|c| format!("`{c}`"))
                        .collect();
                    (
                        format!(
                            "converge on a {tool} version that {} allows",
                            allowed.join(" and ")
                        ),
                        None,
                    )
                }
            };
            let mut parts: Vec<(usize, String)> = by_key
                .iter()
                .map(|(k, v)| (v.len(), format!("{} in {}", show(k), describe(v))))
                .collect();
            parts.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
            let mut message = format!(
                "{tool} is pinned to {}",
                parts
                    .into_iter()
                    .map(|(_, s)| s)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            for (c, bad) in &violated {
                message.push_str(&format!(
                    "; `{}` in `{}` excludes {}",
                    c.constraint.as_deref().unwrap_or(""),
                    c.loc.path,
                    bad.join(", ")
                ));
            }
            message.push_str(&format!("; {advice}"));
            // Primary: the first place that must change.
            let primary = exact
                .iter()
                .find(|p| target_key.as_ref().is_none_or(|t| &p.key != t))
                .copied()
                .or_else(|| violated.first().map(|(c, _)| *c))
                .unwrap_or(exact[0]);
            let mut b = out.report(primary.loc.clone(), message);
            for p in exact.iter().chain(constraints.iter()) {
                if !std::ptr::eq(*p, primary) {
                    b = b.related(p.loc.clone());
                }
            }
            b.emit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::Settings;
    use crate::testing::{run_rule, run_rule_with};

    const CI: &str = "on: push\njobs:\n  test:\n    steps:\n      - uses: actions/setup-python@v5\n        with:\n          python-version: \"3.11\"\n      - run: pip install poetry==1.8.2\n";

    #[test]
    fn python_minor_and_poetry_drift() {
        let f = run_rule(
            &ToolVersion,
            &[
                (".github/workflows/ci.yml", CI),
                (
                    "api/Dockerfile",
                    "FROM python:3.10-slim\nRUN pip install \"poetry==1.7.1\"\n",
                ),
                (
                    "worker/Dockerfile",
                    "FROM python:3.11-slim\nENV POETRY_VERSION=1.8.2\n",
                ),
                (".python-version", "3.11.9\n"),
            ],
        );
        assert_eq!(f.len(), 2, "{f:?}");
        let py = f.iter().find(|x| x.message.starts_with("python")).unwrap();
        assert_eq!(
            py.message,
            "python is pinned to 3.11 in 3 files, 3.10 in `api/Dockerfile`; converge on python 3.11"
        );
        assert_eq!(py.locations[0].path, "api/Dockerfile");
        assert_eq!(py.locations.len(), 4);
        let poetry = f.iter().find(|x| x.message.starts_with("poetry")).unwrap();
        assert!(
            poetry.message.contains("converge on poetry 1.8.2"),
            "{}",
            poetry.message
        );
        assert_eq!(poetry.locations[0].span.start.line, 2);
    }

    #[test]
    fn ties_go_to_the_newest_and_constraints_count() {
        let f = run_rule(
            &ToolVersion,
            &[
                (".nvmrc", "v18.19.0\n"),
                ("web/Dockerfile", "FROM node:20-alpine\n"),
                ("web/package.json", "{\"engines\": {\"node\": \">=20\"}}\n"),
            ],
        );
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(
            f[0].message
                .contains("`>=20` in `web/package.json` excludes 18"),
            "{}",
            f[0].message
        );
        assert!(f[0].message.ends_with("converge on node 20"));
        assert_eq!(f[0].locations[0].path, ".nvmrc");
    }

    #[test]
    fn terraform_constraint_violation_alone_is_drift() {
        let f = run_rule(
            &ToolVersion,
            &[
                (
                    "infra/versions.tf",
                    "terraform {\n  required_version = \"~> 1.6.0\"\n}\n",
                ),
                (".tool-versions", "terraform 1.5.7\npython 3.12.1\n"),
            ],
        );
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(
            f[0].message,
            "terraform is pinned to 1.5 in `.tool-versions`; `~> 1.6.0` in `infra/versions.tf` \
             excludes 1.5; converge on a terraform version that `~> 1.6.0` allows"
        );
    }

    #[test]
    fn agreeing_pins_matrices_and_ignored_tools() {
        let ci = "on: push\njobs:\n  t:\n    strategy:\n      matrix:\n        py: [\"3.10\", \"3.11\"]\n    steps:\n      - uses: actions/setup-python@v5\n        with:\n          python-version: ${{ matrix.py }}\n";
        let files = [
            (".github/workflows/ci.yml", ci),
            ("Dockerfile", "FROM python:3.12-slim\n"),
            (
                "pyproject.toml",
                "[project]\nrequires-python = \">=3.10\"\n",
            ),
            (".python-version", "3.12\n"),
            (
                "README.md",
                "Use python:3.9 locally, or POETRY_VERSION=1.0.0\n",
            ),
        ];
        assert!(run_rule(&ToolVersion, &files).is_empty());
        let drift = [
            ("Dockerfile", "FROM python:3.12-slim\n"),
            (".python-version", "3.10\n"),
        ];
        let mut s = Settings::default();
        s.rule_options.insert(
            META.id.into(),
            toml::from_str("ignore-tools = [\"python\"]").unwrap(),
        );
        assert!(run_rule_with(&ToolVersion, &drift, s).is_empty());
    }
}
