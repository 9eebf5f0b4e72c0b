//! `workflow-deploy-on-any-branch`: a workflow triggered by a push to any branch deploys,
//! with no environment protection and no branch condition: every pushed branch goes live.

use std::sync::LazyLock;

use regex::Regex;

use super::deploys;
use crate::finding::{Confidence, Severity};
use crate::parse::Node;
use crate::rule::{FileCx, Rule, RuleMeta, Sink};
use crate::rules::scan::regex;
use crate::source::Span;
use crate::views::{Job, Workflow};

/// Flags deploy jobs of workflows that run on a push to any branch.
pub struct DeployOnAnyBranch;

static META: RuleMeta = RuleMeta {
    id: "workflow-deploy-on-any-branch",
    title: "Deploy runs on a push to any branch",
    family: "workflows",
    severity: Severity::Medium,
    confidence: Confidence::Medium,
    help: "Restrict the trigger (`on: push: branches: [main]`), guard the job \
           (`if: github.ref == 'refs/heads/main'`), or deploy through a protected \
           `environment:` that only allows the release branch.",
};

static PULUMI_UP: LazyLock<Regex> = LazyLock::new(|| regex(r"\bpulumi\s+up\b"));

/// The `on.push` node when a push to any branch runs the workflow (`Some(None)` for the
/// `on: push` / `on: [push]` shorthand).
fn any_branch_push<'a>(wf: &Workflow<'a>) -> Option<Option<&'a Node>> {
    let on = wf.triggers()?;
    if on.as_str() == Some("push") || on.items().iter().any(|i| i.as_str() == Some("push")) {
        return Some(None);
    }
    let push = on.get("push")?;
    for filter in ["branches-ignore", "tags", "tags-ignore"] {
        if push.get(filter).is_some() && push.get("branches").is_none() {
            return None; // tag pushes only, or some branches left out on purpose
        }
    }
    match push.get("branches") {
        None => Some(Some(push)),
        Some(b) => {
            let items: Vec<&str> = if let Some(s) = b.as_str() {
                vec![s]
            } else {
                b.items().iter().filter_map(Node::as_str).collect()
            };
            items
                .iter()
                .any(|p| matches!(*p, "*" | "**"))
                .then_some(Some(b))
        }
    }
}

fn mentions_ref(cond: Option<&str>) -> bool {
    cond.is_some_and(|c| {
        ["github.ref", "ref_name", "refs/heads", "github.event_name"]
            .iter()
            .any(|k| c.contains(k))
    })
}

/// The first production deploy of a job, as (what, where).
fn deploy_of(cx: &FileCx<'_>, job: &Job<'_>) -> Option<(String, Span)> {
    for d in deploys(cx.source(), job) {
        if d.target.environment_only || d.target.key.contains("${{") || d.target.key.contains('$') {
            continue;
        }
        let line = cx.source().line(d.span.start.line);
        if line.contains("--no-traffic") || line.contains("--tag") {
            continue; // a preview revision, no traffic
        }
        return Some((d.target.label, d.span));
    }
    for step in &job.steps {
        if let Some(run) = step.run()
            && let Some(script) = run.as_str()
            && let Some(m) = PULUMI_UP.find(script)
        {
            let span = cx
                .source()
                .find_in(run.span.range(), m.as_str())
                .unwrap_or(run.span);
            return Some(("a Pulumi stack".to_string(), span));
        }
    }
    None
}

impl Rule for DeployOnAnyBranch {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_workflow(&self, cx: &FileCx<'_>, wf: &Workflow<'_>, out: &mut Sink) {
        let Some(push) = any_branch_push(wf) else {
            return;
        };
        for job in &wf.jobs {
            if job.node.get("environment").is_some() || mentions_ref(job.node.get_str("if")) {
                continue;
            }
            if job.steps.iter().any(|s| mentions_ref(s.node.get_str("if"))) {
                continue; // deploy steps guarded by a branch condition
            }
            let Some((what, span)) = deploy_of(cx, job) else {
                continue;
            };
            let trigger = push
                .map(|p| p.span)
                .or_else(|| wf.triggers().map(|t| t.span));
            let mut b = out.report(
                cx.loc(span, "deploys"),
                format!(
                    "job `{}` deploys {what} on a push to any branch, with no environment \
                     protection or branch condition",
                    job.id
                ),
            );
            if let Some(t) = trigger {
                b = b.related(cx.loc(t, "any branch"));
            }
            b.emit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::run_rule;

    const JOB: &str = "jobs:\n  deploy:\n    runs-on: ubuntu-latest\n    steps:\n      - run: gcloud run deploy api --image x --region europe-west1\n";

    fn run(on: &str, jobs: &str) -> Vec<crate::Finding> {
        let w = format!("{on}{jobs}");
        run_rule(
            &DeployOnAnyBranch,
            &[(".github/workflows/deploy.yml", w.as_str())],
        )
    }

    #[test]
    fn flags_deploys_on_any_branch() {
        for on in [
            "on: push\n",
            "on: [push, pull_request]\n",
            "on:\n  push:\n    paths: [src/**]\n",
            "on:\n  push:\n    branches: ['**']\n",
        ] {
            let f = run(on, JOB);
            assert_eq!(f.len(), 1, "{on}: {f:?}");
            assert!(f[0].message.contains("Cloud Run service `api`"));
        }
        let f = run(
            "on: push\n",
            "jobs:\n  infra:\n    steps:\n      - run: pulumi up --yes --stack prod\n",
        );
        assert_eq!(f.len(), 1, "{f:?}");
    }

    #[test]
    fn accepts_filtered_protected_or_preview_deploys() {
        for (on, jobs) in [
            ("on:\n  push:\n    branches: [main]\n", JOB),
            ("on:\n  push:\n    tags: ['v*']\n", JOB),
            ("on: workflow_dispatch\n", JOB),
            (
                "on: push\n",
                "jobs:\n  deploy:\n    environment: production\n    steps:\n      - run: gcloud run deploy api --image x\n",
            ),
            (
                "on: push\n",
                "jobs:\n  deploy:\n    if: github.ref == 'refs/heads/main'\n    steps:\n      - run: gcloud run deploy api --image x\n",
            ),
            (
                "on: push\n",
                "jobs:\n  preview:\n    steps:\n      - run: gcloud run deploy api --image x --no-traffic --tag pr\n",
            ),
            (
                "on: push\n",
                "jobs:\n  test:\n    steps:\n      - run: cargo test\n",
            ),
        ] {
            let f = run(on, jobs);
            assert!(f.is_empty(), "{on}{jobs}: {f:?}");
        }
    }
}
