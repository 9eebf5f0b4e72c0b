//! `workflow-unpinned-action`: an action (or reusable workflow) referenced by a mutable
//! ref instead of a full commit SHA.

use super::{ActionRef, is_full_sha, is_version_tag, uses_nodes};
use crate::collect::FileKind;
use crate::finding::{Confidence, Severity};
use crate::parse::Node;
use crate::rule::{FileCx, Rule, RuleMeta, Sink};

/// Flags `uses: owner/repo@branch` always, and `@tag` of untrusted owners by default.
pub struct UnpinnedAction;

static META: RuleMeta = RuleMeta {
    id: "workflow-unpinned-action",
    title: "Action not pinned to a commit SHA",
    family: "workflows",
    severity: Severity::Medium,
    confidence: Confidence::High,
    help: "Pin the action to the full 40-character commit SHA of a release and keep the \
           tag in a comment (`uses: owner/action@<sha> # v4.1.0`); Dependabot and Renovate \
           update such pins.",
};

/// How strict the pinning policy is (`[rules.workflow-unpinned-action] pin = …`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pin {
    /// Every action must be pinned to a SHA (except trusted owners' version tags).
    Sha,
    /// Version tags are fine; branches and missing refs are not.
    Tag,
    /// Only `@main`/`@master`/`@HEAD` and missing refs are flagged.
    Any,
}

/// Owners whose version tags are accepted under `pin = "sha"` unless configured
/// otherwise (`trusted-owners = []` requires SHAs everywhere).
const DEFAULT_TRUSTED: &[&str] = &["actions", "github"];

fn is_branch_name(r: &str) -> bool {
    matches!(
        r.to_ascii_lowercase().as_str(),
        "main" | "master" | "head" | "latest" | "trunk" | "develop" | "dev" | "nightly"
    )
}

impl Rule for UnpinnedAction {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_yaml(&self, cx: &FileCx<'_>, docs: &[Node], out: &mut Sink) {
        if !matches!(cx.file.kind, FileKind::Workflow | FileKind::Action) {
            return;
        }
        let settings = &cx.repo.settings;
        let pin = match settings.option_str(META.id, "pin") {
            Some("tag") => Pin::Tag,
            Some("any") => Pin::Any,
            _ => Pin::Sha,
        };
        let trusted: Vec<String> = match settings
            .option(META.id, "trusted-owners")
            .and_then(toml::Value::as_array)
        {
            Some(list) => list
                .iter()
                .filter_map(toml::Value::as_str)
                .map(str::to_ascii_lowercase)
                .collect(),
            None => DEFAULT_TRUSTED.iter().map(|s| (*s).to_string()).collect(),
        };
        for root in docs {
            for node in uses_nodes(root) {
                let Some(text) = node.as_str() else { continue };
                let Some(a) = ActionRef::parse(text) else {
                    continue;
                };
                let loc = || cx.loc(node.span, "mutable ref");
                let Some(r) = a.git_ref else {
                    out.report(
                        loc(),
                        format!(
                            "`{}` has no ref, so it runs whatever the default branch holds",
                            a.path
                        ),
                    )
                    .severity(Severity::High)
                    .emit();
                    continue;
                };
                if is_full_sha(r) {
                    continue;
                }
                if is_branch_name(r) {
                    out.report(
                        loc(),
                        format!(
                            "`{}` follows the branch `{r}`: every push to it runs in this workflow",
                            a.path
                        ),
                    )
                    .severity(Severity::High)
                    .emit();
                    continue;
                }
                let trusted_owner = trusted.iter().any(|t| t == &a.owner().to_ascii_lowercase());
                let message = match pin {
                    Pin::Any => continue,
                    Pin::Tag if is_version_tag(r) => continue,
                    Pin::Sha if is_version_tag(r) && trusted_owner => continue,
                    _ if r.len() >= 7
                        && r.len() < 40
                        && r.bytes().all(|b| b.is_ascii_hexdigit()) =>
                    {
                        format!(
                            "`{}` is pinned to the short SHA `{r}`; use the full 40-character SHA",
                            a.path
                        )
                    }
                    _ if is_version_tag(r) => {
                        format!(
                            "`{}` is pinned to the tag `{r}`, which its owner can move",
                            a.path
                        )
                    }
                    _ => format!(
                        "`{}` is pinned to `{r}`, a branch or tag that can move",
                        a.path
                    ),
                };
                out.report(loc(), message).emit();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::Settings;
    use crate::testing::{run_rule, run_rule_with};

    const SHA: &str = "8e5e7e5ab8b370d6c329ec480221332ada57f0ab";

    fn wf() -> String {
        format!(
            "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      - uses: docker/build-push-action@v5\n      - uses: someone/tool@main\n      - uses: pinned/action@{SHA} # v2.0.0\n      - uses: ./local-action\n      - uses: other/short@8e5e7e5\n  reuse:\n    uses: org/shared/.github/workflows/deploy.yml@v1\n"
        )
    }

    #[test]
    fn default_policy_trusts_official_tags_only() {
        let w = wf();
        let f = run_rule(&UnpinnedAction, &[(".github/workflows/ci.yml", &w)]);
        let msgs: Vec<&str> = f.iter().map(|x| x.message.as_str()).collect();
        assert_eq!(f.len(), 4, "{msgs:?}");
        assert!(msgs[0].contains("docker/build-push-action"));
        assert!(msgs[1].contains("branch `main`"));
        assert_eq!(f[1].severity, Severity::High);
        assert!(msgs[2].contains("short SHA"));
        assert!(msgs[3].contains("org/shared/.github/workflows/deploy.yml"));
        assert_eq!(f[0].locations[0].span.start.line, 7);
    }

    fn with_pin(table: &str) -> Settings {
        let mut s = Settings::default();
        let t: toml::Table = toml::from_str(table).unwrap();
        s.rule_options.insert(META.id.to_string(), t);
        s
    }

    #[test]
    fn configurable_policy() {
        let w = wf();
        let files = [(".github/workflows/ci.yml", w.as_str())];
        let tag = run_rule_with(&UnpinnedAction, &files, with_pin("pin = \"tag\""));
        assert_eq!(tag.len(), 2, "{tag:?}"); // @main and the short SHA
        let any = run_rule_with(&UnpinnedAction, &files, with_pin("pin = \"any\""));
        assert_eq!(any.len(), 1, "{any:?}"); // @main only
        let strict = run_rule_with(
            &UnpinnedAction,
            &files,
            with_pin("pin = \"sha\"\ntrusted-owners = []"),
        );
        assert_eq!(strict.len(), 5, "{strict:?}");
    }

    #[test]
    fn composite_actions_and_clean_workflows() {
        let action = "runs:\n  using: composite\n  steps:\n    - uses: someone/tool@master\n";
        let f = run_rule(&UnpinnedAction, &[("action.yml", action)]);
        assert_eq!(f.len(), 1);
        let clean = format!(
            "on: push\njobs:\n  a:\n    steps:\n      - uses: x/y@{SHA}\n      - uses: actions/setup-node@v4\n"
        );
        let f = run_rule(&UnpinnedAction, &[(".github/workflows/a.yml", &clean)]);
        assert!(f.is_empty(), "{f:?}");
    }
}
