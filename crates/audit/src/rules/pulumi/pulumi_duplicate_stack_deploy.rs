//! `pulumi-duplicate-stack-deploy`: several workflows run `pulumi up` on the same stack
//! on a push to the same branch. Pulumi locks the stack, so one of them fails with "the
//! stack is currently being updated", and whichever runs last decides what is deployed.

use std::collections::BTreeMap;

use super::{StackUse, stack_uses};
use crate::finding::{Confidence, Severity};
use crate::repo::Repository;
use crate::rule::{Rule, RuleMeta, Sink};
use crate::rules::workflows::{overlapping, shared_branches};

/// Cross-file: one finding per stack updated by two or more workflows on the same push.
pub struct DuplicateStackDeploy;

static META: RuleMeta = RuleMeta {
    id: "pulumi-duplicate-stack-deploy",
    title: "Several workflows run `pulumi up` on the same stack",
    family: "pulumi",
    severity: Severity::Medium,
    confidence: Confidence::Medium,
    help: "Keep one workflow responsible for updating each stack (merge the others into it \
           or make them `pulumi preview`), and give it a `concurrency` group so runs queue \
           instead of racing for the stack lock.",
};

impl Rule for DuplicateStackDeploy {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_repository(&self, repo: &Repository, out: &mut Sink) {
        // (project, stack) → the first `up` of each workflow that runs on push.
        let mut by_stack: BTreeMap<(String, String), Vec<StackUse>> = BTreeMap::new();
        for u in stack_uses(repo) {
            if u.command != "up" || u.push_branches.is_none() {
                continue;
            }
            let project = u.project_dir.clone().unwrap_or_else(|| "?".into());
            let hits = by_stack
                .entry((project, u.short().to_string()))
                .or_default();
            if !hits.iter().any(|h| h.workflow == u.workflow) {
                hits.push(u);
            }
        }
        for ((_, stack), hits) in by_stack {
            let (mut involved, shared) = overlapping(
                &hits,
                |a, b| match (&a.push_branches, &b.push_branches) {
                    (Some(x), Some(y)) => shared_branches(x, y),
                    _ => Vec::new(),
                },
                |v, h| v.workflow == h.workflow,
            );
            if involved.len() < 2 {
                continue;
            }
            involved.sort_by(|a, b| a.workflow.cmp(&b.workflow));
            let branches = if shared.iter().any(|b| b == "*") {
                "any branch".to_string()
            } else {
                let b: Vec<String> = shared.iter().map(|b| format!("`{b}`")).collect();
                b.join(", ")
            };
            let names: Vec<&str> = involved.iter().map(|h| h.workflow.as_str()).collect();
            let mut f = out.report(
                involved[0].loc.clone(),
                format!(
                    "stack `{stack}` is updated by {} workflows on push to {branches}: {}",
                    involved.len(),
                    names.join(", ")
                ),
            );
            for h in &involved[1..] {
                f = f.related(h.loc.clone());
            }
            f.emit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::run_rule;

    const PROJECT: (&str, &str) = ("infra/Pulumi.yaml", "name: api\nruntime: go\n");

    fn wf(on: &str, cmd: &str) -> String {
        format!("on:\n{on}\njobs:\n  d:\n    steps:\n      - run: pulumi {cmd} --cwd infra\n")
    }

    #[test]
    fn two_workflows_update_one_stack() {
        let push = "  push:\n    branches: [main]";
        let action = "on: push\njobs:\n  d:\n    steps:\n      - uses: pulumi/actions@v5\n        with:\n          command: up\n          stack-name: acme/api/prod\n          work-dir: infra\n";
        let f = run_rule(
            &DuplicateStackDeploy,
            &[
                PROJECT,
                (
                    ".github/workflows/deploy.yml",
                    &wf(push, "up --yes -s prod"),
                ),
                (".github/workflows/release.yml", action),
            ],
        );
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(
            f[0].message,
            "stack `prod` is updated by 2 workflows on push to `main`: \
             .github/workflows/deploy.yml, .github/workflows/release.yml"
        );
        assert_eq!(f[0].locations.len(), 2);
    }

    #[test]
    fn previews_other_stacks_branches_and_manual_runs_are_fine() {
        let main = "  push:\n    branches: [main]";
        let f = run_rule(
            &DuplicateStackDeploy,
            &[
                PROJECT,
                (".github/workflows/a.yml", &wf(main, "up -s prod")),
                (".github/workflows/b.yml", &wf(main, "preview -s prod")),
                (".github/workflows/c.yml", &wf(main, "up -s staging")),
                (
                    ".github/workflows/d.yml",
                    &wf("  push:\n    branches: [release]", "up -s prod"),
                ),
                (
                    ".github/workflows/e.yml",
                    &wf("  workflow_dispatch:", "up -s prod"),
                ),
            ],
        );
        assert!(f.is_empty(), "{f:?}");
    }
}
