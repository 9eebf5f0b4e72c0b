//! `workflow-missing-permissions`: no `permissions:` at the top or on a job, so the
//! GITHUB_TOKEN gets the repository's default (often read/write on everything).

use crate::finding::{Confidence, Severity};
use crate::rule::{FileCx, Rule, RuleMeta, Sink};
use crate::views::Workflow;

/// Flags workflows where some job runs with the default token permissions.
pub struct MissingPermissions;

static META: RuleMeta = RuleMeta {
    id: "workflow-missing-permissions",
    title: "Workflow does not restrict GITHUB_TOKEN permissions",
    family: "workflows",
    severity: Severity::Medium,
    confidence: Confidence::High,
    help: "Add `permissions: contents: read` at the top of the workflow and grant more per \
           job only where needed (`packages: write`, `id-token: write`, …).",
};

impl Rule for MissingPermissions {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_workflow(&self, cx: &FileCx<'_>, wf: &Workflow<'_>, out: &mut Sink) {
        if wf.root.get("permissions").is_some() || wf.jobs.is_empty() {
            return;
        }
        // A reusable workflow runs with its caller's token: the caller sets permissions.
        let t = super::Triggers::of(wf);
        if !t.events.is_empty() && t.events.iter().all(|e| e == "workflow_call") {
            return;
        }
        let missing: Vec<_> = wf
            .jobs
            .iter()
            .filter(|j| j.node.get("permissions").is_none())
            .collect();
        let Some(first) = missing.first() else {
            return;
        };
        let names: Vec<String> = missing.iter().map(|j| format!("`{}`", j.id)).collect();
        let message = if missing.len() == wf.jobs.len() {
            "no `permissions:` in this workflow: every job gets the default token permissions"
                .to_string()
        } else {
            format!(
                "no top-level `permissions:` and job(s) {} set none: they get the default token permissions",
                names.join(", ")
            )
        };
        let mut b = out.report(cx.loc(first.key.span, "default permissions"), message);
        for j in missing.iter().skip(1) {
            b = b.related(cx.loc(j.key.span, "default permissions"));
        }
        b.emit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::run_rule;

    #[test]
    fn flags_workflows_without_any_permissions() {
        let w = "on: push\njobs:\n  test:\n    runs-on: x\n  lint:\n    runs-on: x\n    permissions:\n      contents: read\n  build:\n    runs-on: x\n";
        let f = run_rule(&MissingPermissions, &[(".github/workflows/ci.yml", w)]);
        assert_eq!(f.len(), 1);
        assert!(f[0].message.contains("`test`, `build`"), "{}", f[0].message);
        assert_eq!(f[0].locations.len(), 2);
        assert_eq!(f[0].locations[0].span.start.line, 3);
    }

    #[test]
    fn accepts_top_level_or_per_job_permissions() {
        let top = "on: push\npermissions:\n  contents: read\njobs:\n  a:\n    runs-on: x\n";
        let jobs = "on: push\njobs:\n  a:\n    permissions: read-all\n    runs-on: x\n";
        let f = run_rule(
            &MissingPermissions,
            &[
                (".github/workflows/a.yml", top),
                (".github/workflows/b.yml", jobs),
                ("ci/not-a-workflow.yml", "jobs:\n  a: {}\n"),
                (
                    ".github/workflows/reusable.yml",
                    "on:\n  workflow_call:\njobs:\n  a:\n    runs-on: x\n",
                ),
            ],
        );
        assert!(f.is_empty(), "{f:?}");
    }
}
