//! `workflow-unknown-runner`: a `runs-on` label that no GitHub-hosted runner has (a typo,
//! a retired image), with no `self-hosted` label: the job waits for a runner forever.

use crate::finding::{Confidence, Severity};
use crate::knowledge::{HOSTED_RUNNER_LABELS, RETIRED_RUNNER_LABELS};
use crate::parse::Node;
use crate::registry::closest;
use crate::rule::{FileCx, Rule, RuleMeta, Sink};
use crate::views::{Job, Workflow};

/// Flags `runs-on` labels that are not GitHub-hosted runner labels.
pub struct UnknownRunner;

static META: RuleMeta = RuleMeta {
    id: "workflow-unknown-runner",
    title: "`runs-on` names no GitHub-hosted runner",
    family: "workflows",
    severity: Severity::Medium,
    confidence: Confidence::High,
    help: "Use a current hosted label (`ubuntu-24.04`, `ubuntu-latest`, `windows-2025`, \
           `macos-15`), add `self-hosted` to the labels of a self-hosted runner, or use \
           `runs-on: {group: …}` for a larger runner.",
};

impl Rule for UnknownRunner {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_job(&self, cx: &FileCx<'_>, _wf: &Workflow<'_>, job: &Job<'_>, out: &mut Sink) {
        let Some(runs_on) = job.node.get("runs-on") else {
            return;
        };
        // `{group: …, labels: …}`: a runner group or larger runner, configured elsewhere.
        if runs_on.is_map() {
            return;
        }
        let labels: Vec<&Node> = if runs_on.is_seq() {
            runs_on.items().iter().collect()
        } else {
            vec![runs_on]
        };
        let texts: Vec<&str> = labels.iter().filter_map(|n| n.as_str()).collect();
        if texts.len() != labels.len()
            || texts.iter().any(|t| t.contains("${{"))
            || texts.iter().any(|t| t.eq_ignore_ascii_case("self-hosted"))
        {
            return;
        }
        for (node, label) in labels.iter().zip(&texts) {
            let lower = label.to_ascii_lowercase();
            if HOSTED_RUNNER_LABELS.contains(&lower.as_str()) {
                continue;
            }
            let loc = cx.loc(node.span, "unknown runner");
            if RETIRED_RUNNER_LABELS.contains(&lower.as_str()) {
                out.report(
                    loc,
                    format!(
                        "job `{}` runs on `{label}`, a retired GitHub-hosted image: the job \
                         never starts",
                        job.id
                    ),
                )
                .emit();
            } else if let Some(near) =
                closest(&lower, HOSTED_RUNNER_LABELS).filter(|n| edit_close(&lower, n))
            {
                out.report(
                    loc,
                    format!(
                        "job `{}` runs on `{label}`, which no GitHub-hosted runner has (did \
                         you mean `{near}`?)",
                        job.id
                    ),
                )
                .emit();
            } else {
                out.report(
                    loc,
                    format!(
                        "job `{}` runs on `{label}`, which no GitHub-hosted runner has: unless \
                         it is a larger runner of your organization, the job waits forever",
                        job.id
                    ),
                )
                .confidence(Confidence::Low)
                .emit();
            }
        }
    }
}

/// Close enough to be a typo (`ubuntu-lastest`, `ubuntu-24.4`), not a custom name
/// (`ubuntu-latest-16-cores`).
fn edit_close(label: &str, hosted: &str) -> bool {
    !label.starts_with(hosted) && label.len().abs_diff(hosted.len()) <= 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::run_rule;

    fn run(runs_on: &str) -> Vec<crate::Finding> {
        let w = format!(
            "on: push\njobs:\n  build:\n    runs-on: {runs_on}\n    steps:\n      - run: make\n"
        );
        run_rule(&UnknownRunner, &[(".github/workflows/ci.yml", w.as_str())])
    }

    #[test]
    fn flags_typos_retired_and_unknown_labels() {
        let f = run("ubuntu-lastest");
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(
            f[0].message.contains("did you mean `ubuntu-latest`"),
            "{}",
            f[0].message
        );
        assert_eq!(f[0].confidence, Confidence::High);
        assert_eq!(f[0].locations[0].span.start.line, 4);
        let f = run("[ubuntu-20.04]");
        assert!(f[0].message.contains("retired"), "{f:?}");
        let f = run("linux-xl-16core");
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].confidence, Confidence::Low);
    }

    #[test]
    fn accepts_hosted_self_hosted_expressions_and_groups() {
        for ok in [
            "ubuntu-latest",
            "Ubuntu-24.04",
            "macos-15-xlarge",
            "[self-hosted, linux, gpu]",
            "${{ matrix.os }}",
            "\"${{ inputs.runner }}\"",
            "{group: large-runners}",
            "\n      group: ubuntu-runners\n      labels: ubuntu-24.04-16core",
        ] {
            assert!(run(ok).is_empty(), "{ok}: {:?}", run(ok));
        }
    }
}
