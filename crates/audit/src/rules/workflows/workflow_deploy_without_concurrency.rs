//! `workflow-deploy-without-concurrency`: a deploying workflow without a `concurrency`
//! group, so two runs can deploy at once and an older commit can land last.

use super::deploys;
use crate::finding::{Confidence, Severity};
use crate::rule::{FileCx, Rule, RuleMeta, Sink};
use crate::views::Workflow;

/// Flags deploy jobs (deploy commands, deploy actions or `environment:`) when neither the
/// workflow nor the job sets `concurrency`.
pub struct DeployWithoutConcurrency;

static META: RuleMeta = RuleMeta {
    id: "workflow-deploy-without-concurrency",
    title: "Deploy workflow has no concurrency group",
    family: "workflows",
    severity: Severity::Medium,
    confidence: Confidence::Medium,
    help: "Serialize deploys: add `concurrency: { group: deploy-${{ github.ref }}, \
           cancel-in-progress: false }` at the top of the workflow (or on the deploy job) so \
           two pushes cannot deploy at the same time or out of order.",
};

impl Rule for DeployWithoutConcurrency {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_workflow(&self, cx: &FileCx<'_>, wf: &Workflow<'_>, out: &mut Sink) {
        if wf.root.get("concurrency").is_some() {
            return;
        }
        for job in &wf.jobs {
            if job.node.get("concurrency").is_some() {
                continue;
            }
            let found = deploys(cx.source(), job);
            let Some(first) = found.first() else {
                continue;
            };
            let targets: Vec<&str> = found.iter().map(|d| d.target.label.as_str()).collect();
            out.report(
                cx.loc(job.key.span, "no concurrency"),
                format!(
                    "job `{}` deploys ({}) without a `concurrency` group",
                    job.id,
                    targets.join(", ")
                ),
            )
            .related(cx.loc(first.span, "deploys here"))
            .emit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::run_rule;

    #[test]
    fn flags_deploy_jobs_without_concurrency() {
        let w = "on:\n  push:\n    branches: [main]\njobs:\n  deploy:\n    environment: production\n    steps:\n      - run: gcloud run deploy api --region us-central1 --image x\n";
        let f = run_rule(
            &DeployWithoutConcurrency,
            &[(".github/workflows/deploy.yml", w)],
        );
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(
            f[0].message
                .contains("Cloud Run service `api`, environment `production`"),
            "{}",
            f[0].message
        );
        assert_eq!(f[0].locations[0].span.start.line, 5);
        assert_eq!(f[0].locations[1].span.start.line, 8);
    }

    #[test]
    fn accepts_concurrency_and_non_deploy_jobs() {
        let a = "on: push\nconcurrency: deploy\njobs:\n  d:\n    steps:\n      - run: firebase deploy\n";
        let b = "on: push\njobs:\n  d:\n    concurrency:\n      group: prod\n    steps:\n      - run: kubectl apply -f k8s/\n  test:\n    steps:\n      - run: pytest\n";
        let f = run_rule(
            &DeployWithoutConcurrency,
            &[
                (".github/workflows/a.yml", a),
                (".github/workflows/b.yml", b),
            ],
        );
        assert!(f.is_empty(), "{f:?}");
    }
}
