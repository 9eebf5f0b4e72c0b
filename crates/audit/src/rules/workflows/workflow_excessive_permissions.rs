//! `workflow-excessive-permissions`: `write-all`, or write access to the repository in a
//! workflow that runs on pull requests.

use super::Triggers;
use crate::finding::{Confidence, Severity};
use crate::parse::Node;
use crate::rule::{FileCx, Rule, RuleMeta, Sink};
use crate::views::Workflow;

/// Flags `permissions: write-all` and `contents: write` on pull-request workflows.
pub struct ExcessivePermissions;

static META: RuleMeta = RuleMeta {
    id: "workflow-excessive-permissions",
    title: "Workflow grants more token permissions than it needs",
    family: "workflows",
    severity: Severity::High,
    confidence: Confidence::Medium,
    help: "Grant the least: `permissions: contents: read` at the top, and per job only the \
           scopes it uses. Workflows that run pull-request code should not be able to \
           push (`contents: write`); move publishing to a workflow on `push` or `release`.",
};

fn check(cx: &FileCx<'_>, perms: &Node, on_pr: bool, scope: &str, out: &mut Sink) {
    if perms.as_str() == Some("write-all") {
        out.report(
            cx.loc(perms.span, "write-all"),
            format!(
                "{scope} grants `write-all`: the token can push code, tags, releases and packages"
            ),
        )
        .emit();
        return;
    }
    if !on_pr {
        return;
    }
    if let Some(e) = perms.entry("contents")
        && e.value.as_str() == Some("write")
    {
        out.report(
            cx.loc(e.value.span, "contents: write"),
            format!("{scope} grants `contents: write` in a workflow that runs on pull requests"),
        )
        .emit();
    }
}

impl Rule for ExcessivePermissions {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_workflow(&self, cx: &FileCx<'_>, wf: &Workflow<'_>, out: &mut Sink) {
        let on_pr = Triggers::of(wf).on_pull_request();
        if let Some(p) = wf.root.get("permissions") {
            check(cx, p, on_pr, "the workflow", out);
        }
        for job in &wf.jobs {
            if let Some(p) = job.node.get("permissions") {
                check(cx, p, on_pr, &format!("job `{}`", job.id), out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::run_rule;

    #[test]
    fn flags_write_all_and_pr_contents_write() {
        let a = "on: push\npermissions: write-all\njobs:\n  a:\n    runs-on: x\n";
        let b = "on:\n  pull_request_target:\njobs:\n  label:\n    permissions:\n      contents: write\n      pull-requests: write\n    runs-on: x\n";
        let f = run_rule(
            &ExcessivePermissions,
            &[
                (".github/workflows/a.yml", a),
                (".github/workflows/b.yml", b),
            ],
        );
        assert_eq!(f.len(), 2, "{f:?}");
        assert!(f[0].message.contains("`write-all`"));
        assert!(f[1].message.contains("job `label`"));
        assert_eq!(f[1].locations[0].span.start.line, 6);
    }

    #[test]
    fn accepts_contents_write_on_push_and_read_on_pr() {
        let a = "on:\n  push:\n    branches: [main]\npermissions:\n  contents: write\njobs:\n  a:\n    runs-on: x\n";
        let b = "on: [pull_request]\npermissions:\n  contents: read\n  pull-requests: write\njobs:\n  a:\n    runs-on: x\n";
        let f = run_rule(
            &ExcessivePermissions,
            &[
                (".github/workflows/a.yml", a),
                (".github/workflows/b.yml", b),
            ],
        );
        assert!(f.is_empty(), "{f:?}");
    }
}
